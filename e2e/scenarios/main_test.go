// Package scenarios holds nodeward's end-to-end scenarios: each runs on a real
// control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler) with simulated nodes, the real node agent and the
// operator's own binary.
package scenarios

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/nodeward/nodeward/e2e/controlplane"
	"github.com/nodeward/nodeward/e2e/harness"
)

// binDir holds a nodeward-operator built from this checkout.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Listing tests (go test -list, as make fuzz does) needs no cluster.
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run()
	}
	if _, err := controlplane.DefaultBinDir(); err != nil || !haveControlPlane() {
		if os.Getenv("NODEWARD_REQUIRE_CONTROLPLANE") == "1" {
			fmt.Fprintln(os.Stderr, "the control-plane binaries are missing: run make controlplane")
			return 1
		}
		fmt.Println("skipping e2e: control-plane binaries missing (make controlplane)")
		return 0
	}
	dir, err := os.MkdirTemp("", "nodeward-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	repo, err := harness.RepoDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Always test the operator binary of this checkout, never a stale one.
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/nodeward-operator")
	build.Dir, build.Stdout, build.Stderr = repo, os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building nodeward-operator:", err)
		return 1
	}
	binDir = dir
	// The simulated nodes' agents run in this process; their logs are noise
	// unless asked for.
	var agentLogs io.Writer = io.Discard
	if os.Getenv("NODEWARD_E2E_LOGS") == "1" {
		agentLogs = os.Stderr
	}
	log.SetLogger(zap.New(zap.WriteTo(agentLogs)))
	return m.Run()
}

func haveControlPlane() bool {
	dir, err := controlplane.DefaultBinDir()
	if err != nil {
		return false
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return false
		}
	}
	return true
}
