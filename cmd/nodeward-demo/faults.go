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
	"sort"
	"strings"
	"time"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// faults are what can be injected into a simulated node, by name.
var faults = map[string]struct {
	desc  string
	apply func(c *harness.Cluster, node string) error
}{
	"kubelet-down": {"kubelet.service stopped and disabled, as after seed 000's OS upgrade and reboot", func(c *harness.Cluster, node string) error {
		n := c.Node(node)
		n.Host.SetEnabled(v1alpha1.UnitKubelet, false)
		return n.Host.Kill(v1alpha1.UnitKubelet, false)
	}},
	"kubelet-crash": {"kubelet.service crashed (failed), still enabled", func(c *harness.Cluster, node string) error {
		return c.Node(node).Host.Kill(v1alpha1.UnitKubelet, true)
	}},
	"runtime-down": {"containerd.service stopped", func(c *harness.Cluster, node string) error {
		return c.Node(node).Host.Kill(v1alpha1.UnitContainerRuntime, false)
	}},
	"agent-stop": {"the node agent stops (nodeward goes blind on this node)", func(c *harness.Cluster, node string) error {
		return c.Node(node).StopAgent()
	}},
	"heal": {"every unit enabled and started again", func(c *harness.Cluster, node string) error {
		n := c.Node(node)
		for _, u := range []v1alpha1.Unit{v1alpha1.UnitKubelet, v1alpha1.UnitContainerRuntime} {
			n.Host.SetEnabled(u, true)
		}
		n.Host.Boot()
		return nil
	}},
}

func faultNames() string {
	names := make([]string, 0, len(faults))
	for n := range faults {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func inject(c *harness.Cluster, node, fault string) (string, error) {
	f, ok := faults[fault]
	if !ok {
		return "", fmt.Errorf("unknown fault %q; known: %s", fault, faultNames())
	}
	if c.Node(node) == nil {
		return "", fmt.Errorf("unknown node %q", node)
	}
	return f.desc, f.apply(c, node)
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
		desc, err := inject(c, node, fault)
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
	if *node == "" {
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
