// Command nodeward-bench-agent is the node agent as a process of its own,
// started by `make bench` so that its memory can be measured: the same code
// as cmd/nodeward-agent (remediations/agent, the real /proc prober of this
// machine), with only the service manager simulated (no systemd on D-Bus
// here). The bench gives it the environment config/agent/daemonset.yaml sets.
package main

import (
	"flag"
	"fmt"
	"os"

	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/remediations/agent"
	"github.com/nodeward/nodeward/remediations/agent/host"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "nodeward-bench-agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("nodeward-bench-agent", flag.ContinueOnError)
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
