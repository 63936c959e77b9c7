package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/remediations/agent"
	"github.com/nodeward/nodeward/remediations/agent/host"
)

// RunAgent is `nodeward-bench agent`: the node agent as a process of its
// own, so its memory can be measured. It runs the same code as
// cmd/nodeward-agent (remediations/agent) with the real /proc prober of this
// machine; only the service manager is simulated (this machine has no
// systemd on D-Bus).
func RunAgent(args []string) error {
	fs := flag.NewFlagSet("nodeward-bench agent", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "the agent's kubeconfig")
	node := fs.String("node-name", "", "the node")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *node == "" {
		return fmt.Errorf("--kubeconfig and --node-name are required")
	}
	ctrl.SetLogger(zap.New())
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	h := sim.NewHost(nil, nil)
	h.Boot()
	prober := host.NewProc(host.ProcOptions{Root: "/"})
	defer prober.Close()
	mgr, err := agent.NewManager(cfg, *node, "0")
	if err != nil {
		return err
	}
	if err := agent.Setup(mgr, agent.Options{NodeName: *node, Host: h, Prober: prober, Version: "bench"}); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}

// startAgentProcess runs `nodeward-bench agent` for node (a kwok node, which
// has no agent of its own) and samples its memory.
func (r *run) startAgentProcess(ctx context.Context, node string) (stop func(), err error) {
	kc, err := r.c.AgentKubeconfig(ctx, node)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(r.dir, "agent-process.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "agent", "--kubeconfig", kc, "--node-name", node)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	r.agentRSS = startRSS(cmd.Process.Pid)
	return func() {
		r.agentRSS.stop()
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		logf.Close()
	}, nil
}
