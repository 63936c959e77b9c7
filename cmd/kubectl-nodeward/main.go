// Command kubectl-nodeward is nodeward's kubectl plugin: with it on PATH,
// `kubectl nodeward history|explain|diagnose` shows what nodeward diagnosed
// on a node and what it did about it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/nodeward/nodeward/cmd/kubectl-nodeward/cli"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// API server warnings reach the user through klog on stderr.
	ctrllog.SetLogger(klog.NewKlogr())
	return cli.Main(ctx, os.Args[0], os.Args[1:], cli.IOStreams{Out: os.Stdout})
}
