package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/e2e/sim"
)

// ScenarioControlPlaneDegraded delays the heartbeats of a third of the nodes
// at once (seed 003) instead of breaking one node.
const ScenarioControlPlaneDegraded = "control-plane-degraded"

func faultNames() string {
	return strings.Join(append(sim.FaultNames(), ScenarioControlPlaneDegraded), ", ")
}

// inject applies a fault to a node (or, for control-plane-degraded, to a
// third of the nodes) and returns its description.
func inject(ctx context.Context, c *harness.Cluster, node, fault string) (string, error) {
	if fault == ScenarioControlPlaneDegraded {
		nodes := c.Nodes()
		n := max(3, len(nodes)/3)
		if n > len(nodes) {
			return "", fmt.Errorf("%s needs at least 3 nodes", fault)
		}
		var names []string
		for _, nd := range nodes[:n] {
			if _, err := sim.Inject(ctx, nd, "late-heartbeats"); err != nil {
				return "", err
			}
			names = append(names, nd.Name)
		}
		return fmt.Sprintf("seed 003: heartbeats of %d of %d nodes (%s) land 70s late at once, as when etcd is overloaded", n, len(nodes), strings.Join(names, ", ")), nil
	}
	n := c.Node(node)
	if n == nil {
		return "", fmt.Errorf("unknown node %q", node)
	}
	f, err := sim.Inject(ctx, n, fault)
	if err != nil {
		return "", err
	}
	if fault == "heal" && !n.AgentRunning() {
		if err := c.StartAgent(ctx, node); err != nil {
			return "", err
		}
	}
	return f.Desc, nil
}

// serveControl serves fault injection on loopback and writes its address to
// dir/control, where `nodeward-demo inject` finds it.
func serveControl(ctx context.Context, c *harness.Cluster, dir string, onInject func(node, fault, desc string)) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /inject", func(w http.ResponseWriter, r *http.Request) {
		node, fault := r.URL.Query().Get("node"), r.URL.Query().Get("fault")
		desc, err := inject(r.Context(), c, node, fault)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		onInject(node, fault, desc)
		fmt.Fprintf(w, "injected %s on %s: %s\n", fault, node, desc)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	go func() { _ = srv.Serve(l) }()
	return os.WriteFile(filepath.Join(dir, "control"), []byte(l.Addr().String()), 0o644)
}

func runInject(args []string) error {
	fs := flag.NewFlagSet("nodeward-demo inject", flag.ContinueOnError)
	node := fs.String("node", "", "Simulated node to break, e.g. worker-1.")
	fault := fs.String("fault", "kubelet-down", "Fault to inject: "+faultNames()+".")
	dir := fs.String("dir", ".demo", "The running demo's state directory.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *node == "" && *fault != ScenarioControlPlaneDegraded {
		return errors.New("--node is required")
	}
	addr, err := os.ReadFile(filepath.Join(*dir, "control"))
	if err != nil {
		return fmt.Errorf("no running demo found (%w); start one with make demo", err)
	}
	u := fmt.Sprintf("http://%s/inject?node=%s&fault=%s", strings.TrimSpace(string(addr)), url.QueryEscape(*node), url.QueryEscape(*fault))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Post(u, "text/plain", nil)
	if err != nil {
		return fmt.Errorf("reaching the demo: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", strings.TrimSpace(string(body)))
	}
	fmt.Print(string(body))
	return nil
}
