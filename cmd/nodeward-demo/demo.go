package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/nodeward/nodeward/e2e/controlplane"
	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

type demoOptions struct {
	scenario        string
	exit            bool
	nodes           int
	target          string
	dir             string
	controlPlaneDir string
	binDir          string
	timeout         time.Duration
	approveAfter    time.Duration
}

func runDemo(args []string) error {
	o := demoOptions{}
	fs := flag.NewFlagSet("nodeward-demo", flag.ContinueOnError)
	fs.StringVar(&o.scenario, "scenario", "kubelet-down", "Fault to inject once the cluster is up ("+faultNames()+"), "+
		ScenarioApproval+" (a RequireApproval drain of a node out of memory: plan, approval, drain, history), or none.")
	fs.BoolVar(&o.exit, "exit", false, "Exit when the scenario ends: status 0 if the node was remediated and is Ready, 1 if not.")
	fs.IntVar(&o.nodes, "nodes", 3, "Number of simulated worker nodes.")
	fs.StringVar(&o.target, "node", "worker-2", "The node the scenario breaks.")
	fs.StringVar(&o.dir, "dir", ".demo", "State directory: kubeconfig, logs, the control address for `nodeward-demo inject`.")
	fs.StringVar(&o.controlPlaneDir, "controlplane-dir", "", "Directory of the control-plane binaries (default: ~/.cache/nodeward/controlplane/"+controlplane.Version+").")
	fs.StringVar(&o.binDir, "bin-dir", "", "Directory of nodeward-operator and kubectl-nodeward (default: bin/).")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "How long the scenario may take before it counts as failed.")
	fs.DurationVar(&o.approveAfter, "approve-after", 30*time.Second, "In the "+ScenarioApproval+" scenario, how long to wait for a person to approve or reject before the demo approves as "+approverUser+".")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The agents of the simulated nodes log into a file; the narration is
	// what a person reads.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	_ = os.RemoveAll(filepath.Join(dir, "cluster"))
	if err := os.MkdirAll(filepath.Join(dir, "cluster"), 0o755); err != nil {
		return err
	}
	agentLog, err := os.Create(filepath.Join(dir, "agents.log"))
	if err != nil {
		return err
	}
	defer agentLog.Close()
	log.SetLogger(zap.New(zap.WriteTo(agentLog)))

	n := newNarrator(os.Stdout)
	n.say("Starting the control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler %s) on loopback", controlplane.Version)
	specs := make([]harness.NodeSpec, 0, o.nodes)
	for i := 1; i <= o.nodes; i++ {
		name := fmt.Sprintf("worker-%d", i)
		// The real kubelet's hostname label: the scheduler's default
		// topology spreading uses it.
		specs = append(specs, harness.NodeSpec{Name: name, Labels: map[string]string{"node-role.kubernetes.io/worker": "", "kubernetes.io/hostname": name}})
	}
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	c, err := harness.Start(startCtx, harness.Options{
		BinDir:       o.binDir,
		ControlPlane: controlplane.Options{BinDir: o.controlPlaneDir, Dir: filepath.Join(dir, "cluster"), Users: []controlplane.User{{Name: approverUser}}},
		Nodes:        specs,
	})
	cancel()
	if err != nil {
		return err
	}
	defer c.Stop()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := c.CP.WriteKubeconfig("admin", kubeconfig); err != nil {
		return err
	}
	n.say("Cluster up at %s with %d simulated workers, their node agents and nodeward-operator", c.CP.URL, o.nodes)
	n.say("kubeconfig: export KUBECONFIG=%s", kubeconfig)
	approverKubeconfig := filepath.Join(dir, "approver.kubeconfig")
	if err := setupApprover(ctx, c, approverKubeconfig); err != nil {
		return err
	}
	n.say("approver: %s (user %s, ClusterRole nodeward-approver)", approverKubeconfig, approverUser)

	if o.scenario != ScenarioApproval {
		if err := harness.ApplyFile(ctx, c.Client, filepath.Join(mustRepo(), "config", "samples", "kubelet-down.yaml")); err != nil {
			return fmt.Errorf("applying the example policy: %w", err)
		}
		n.say("Applied config/samples/kubelet-down.yaml: policy restart-dead-kubelet (KubeletDown for 10s → RestartKubelet, Automatic)")
	}
	if err := waitReports(ctx, c, specs); err != nil {
		return err
	}
	n.say("Every node agent has reported; all nodes Ready")
	if o.scenario == ScenarioApproval {
		if err := n.prepareApproval(ctx, c); err != nil {
			return err
		}
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	n.prime(ctx, c.Client)
	go n.watch(watchCtx, c.Client)
	if err := serveControl(watchCtx, c, dir, func(node, fault, desc string) { n.mark(node, fault, desc) }); err != nil {
		return err
	}

	ok := true
	if o.scenario != "none" {
		fault := o.scenario
		if fault == ScenarioApproval {
			fault = "memory-oom"
		}
		desc, err := inject(ctx, c, o.target, fault)
		if err != nil {
			return err
		}
		n.mark(o.target, fault, desc)
		switch cause := expectedCause[o.scenario]; {
		case o.scenario == ScenarioApproval:
			binDir := o.binDir
			if binDir == "" {
				binDir = filepath.Join(mustRepo(), "bin")
			}
			ok = n.approvalFlow(ctx, c, o.target, filepath.Join(binDir, "kubectl-nodeward"), relPath(kubeconfig), relPath(approverKubeconfig), o.approveAfter, o.timeout)
		case o.scenario == "kubelet-down" || o.scenario == "kubelet-crash":
			ok = n.waitRemediated(ctx, c.Client, o.target, o.timeout)
			n.summary(o.target)
		case o.scenario == ScenarioControlPlaneDegraded:
			ok = n.waitClusterDegraded(ctx, c.Client, o.timeout)
		case cause != "":
			ok = n.waitDiagnosed(ctx, c.Client, o.target, cause, o.timeout)
		}
	}
	if o.exit {
		if !ok && o.scenario == ScenarioApproval {
			return errors.New("the approval scenario did not end with the decided outcome")
		}
		if !ok {
			return errors.New("the scenario did not end with a remediated, Ready node")
		}
		n.say("Scenario passed")
		return nil
	}
	n.say("The cluster stays up until Ctrl-C. Try:")
	n.say("  export KUBECONFIG=%s", kubeconfig)
	n.say("  kubectl get nodes; kubectl get remediations; kubectl get nodediagnoses")
	n.say("  bin/kubectl-nodeward history   # or: kubectl nodeward history, with bin/ on PATH")
	n.say("  bin/kubectl-nodeward --kubeconfig %s approve NAME --reason \"...\"   # as %s", relPath(approverKubeconfig), approverUser)
	n.say("  bin/nodeward-demo inject --node worker-1 --fault kubelet-down   # faults: %s", faultNames())
	<-ctx.Done()
	n.say("Stopping the cluster")
	return nil
}

// expectedCause is what each fault must be diagnosed as.
var expectedCause = map[string]v1alpha1.Cause{
	"kubelet-down": v1alpha1.CauseKubeletDown, "kubelet-crash": v1alpha1.CauseKubeletDown,
	"kubelet-hung": v1alpha1.CauseKubeletHung, "memory-oom": v1alpha1.CauseMemoryExhausted,
	"pleg": v1alpha1.CausePLEGUnhealthy, "runtime-down": v1alpha1.CauseContainerRuntimeDown,
	"network-down": v1alpha1.CauseNetworkUnavailable, "pid-exhaustion": v1alpha1.CausePIDExhausted,
	"disk-pressure": v1alpha1.CauseDiskPressure, "node-down": v1alpha1.CauseNodeUnreachable,
	"kernel-deadlock": v1alpha1.CauseKernelDeadlock, "old-systemd-pleg": v1alpha1.CauseOldSystemd,
}

func mustRepo() string {
	dir, err := harness.RepoDir()
	if err != nil {
		return "."
	}
	return dir
}

func waitReports(ctx context.Context, c *harness.Cluster, specs []harness.NodeSpec) error {
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, s := range specs {
			rep := &v1alpha1.NodeReport{}
			if err := c.Client.Get(ctx, client.ObjectKey{Name: s.Name}, rep); err != nil || len(rep.Status.Units) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
}
