package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// agentEnv is the literal environment the DaemonSet gives the agent (the Go
// runtime's memory settings), without the D-Bus address.
func agentEnv(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ds := &appsv1.DaemonSet{}
	if err := yaml.Unmarshal(b, ds); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var env []string
	for _, c := range ds.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.ValueFrom == nil && e.Name != "DBUS_SYSTEM_BUS_ADDRESS" {
				env = append(env, e.Name+"="+e.Value)
			}
		}
	}
	return env, nil
}

// startAgentProcess runs bin/nodeward-bench-agent for node (a kwok node, which
// has no agent of its own) and samples its memory.
func (r *run) startAgentProcess(ctx context.Context, node string) (stop func(), err error) {
	kc, err := r.c.AgentKubeconfig(ctx, node)
	if err != nil {
		return nil, err
	}
	env, err := agentEnv(filepath.Join(r.repo, "config", "agent", "daemonset.yaml"))
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(r.dir, "agent-process.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(r.cfg.BinDir, "nodeward-bench-agent"), "--kubeconfig", kc, "--node-name", node)
	cmd.Stdout, cmd.Stderr, cmd.Env = logf, logf, append(os.Environ(), env...)
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
