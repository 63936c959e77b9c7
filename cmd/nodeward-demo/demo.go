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
}

func runDemo(args []string) error {
	o := demoOptions{}
	fs := flag.NewFlagSet("nodeward-demo", flag.ContinueOnError)
	fs.StringVar(&o.scenario, "scenario", "kubelet-down", "Fault to inject once the cluster is up ("+faultNames()+"), or none.")
	fs.BoolVar(&o.exit, "exit", false, "Exit when the scenario ends: status 0 if the node was remediated and is Ready, 1 if not.")
	fs.IntVar(&o.nodes, "nodes", 3, "Number of simulated worker nodes.")
	fs.StringVar(&o.target, "node", "worker-2", "The node the scenario breaks.")
	fs.StringVar(&o.dir, "dir", ".demo", "State directory: kubeconfig, logs, the control address for `nodeward-demo inject`.")
	fs.StringVar(&o.controlPlaneDir, "controlplane-dir", "", "Directory of the control-plane binaries (default: bin/controlplane/"+controlplane.Version+").")
	fs.StringVar(&o.binDir, "bin-dir", "", "Directory of nodeward-operator (default: bin/).")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "How long the scenario may take before it counts as failed.")
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
		specs = append(specs, harness.NodeSpec{Name: fmt.Sprintf("worker-%d", i), Labels: map[string]string{"node-role.kubernetes.io/worker": ""}})
	}
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	c, err := harness.Start(startCtx, harness.Options{
		BinDir:       o.binDir,
		ControlPlane: controlplane.Options{BinDir: o.controlPlaneDir, Dir: filepath.Join(dir, "cluster")},
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

	if err := harness.ApplyFile(ctx, c.Client, filepath.Join(mustRepo(), "config", "samples", "kubelet-down.yaml")); err != nil {
		return fmt.Errorf("applying the example policy: %w", err)
	}
	n.say("Applied config/samples/kubelet-down.yaml: policy restart-dead-kubelet (KubeletDown for 10s → RestartKubelet, Automatic)")
	if err := waitReports(ctx, c, specs); err != nil {
		return err
	}
	n.say("Every node agent has reported; all nodes Ready")

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	n.prime(ctx, c.Client)
	go n.watch(watchCtx, c.Client)
	if err := serveControl(watchCtx, c, dir, func(node, fault, desc string) { n.mark(node, fault, desc) }); err != nil {
		return err
	}

	ok := true
	if o.scenario != "none" {
		desc, err := inject(ctx, c, o.target, o.scenario)
		if err != nil {
			return err
		}
		n.mark(o.target, o.scenario, desc)
		switch cause := expectedCause[o.scenario]; {
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
