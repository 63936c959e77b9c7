// Command nodeward-bench measures nodeward on a real control plane with kwok
// nodes and pods: `make bench`. The logic is in e2e/bench.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nodeward/nodeward/e2e/bench"
)

func main() {
	cfg := bench.Config{Out: os.Stdout, Progress: os.Stderr}
	flag.IntVar(&cfg.Nodes, "nodes", 100, "kwok nodes")
	flag.IntVar(&cfg.PodsPerNode, "pods-per-node", 10, "pods bound to each kwok node")
	flag.BoolVar(&cfg.PodsRunning, "pods-running", true, "let kwok mark the pods Running (off: they stay Pending on their nodes; nodeward does not watch pods)")
	flag.IntVar(&cfg.SimNodes, "sim-nodes", 5, "simulated nodes with the real node agent")
	flag.IntVar(&cfg.Runs, "runs", 10, "kubelet-killed runs")
	flag.IntVar(&cfg.HungRuns, "hung-runs", 2, "heartbeat-stopped runs")
	flag.DurationVar(&cfg.StormObserve, "storm-observe", 100*time.Second, "how long to watch the storm")
	flag.DurationVar(&cfg.Steady, "steady", time.Minute, "steady-state window")
	flag.StringVar(&cfg.OutDir, "out", ".bench", "results directory")
	flag.StringVar(&cfg.ControlPlaneDir, "controlplane-dir", "", "control-plane binaries (default ~/.cache/nodeward/controlplane/<version>)")
	flag.StringVar(&cfg.BinDir, "bin-dir", "", "directory of nodeward-operator (default bin/)")
	flag.StringVar(&cfg.Kwok, "kwok", "bin/kwok-v0.8.0", "kwok binary")
	flag.StringVar(&cfg.KwokVersion, "kwok-version", "v0.8.0", "kwok version, for the record")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "nodeward-bench:", err)
		os.Exit(1)
	}
}
