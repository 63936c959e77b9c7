package scenarios

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Each seed's fault, injected on its own node of one cluster, is diagnosed
// as its cause on that node and no other, with the evidence a person on call
// would have looked at. Healthy nodes keep the late ones below the
// control-plane threshold (3 of 16 late is under 20%).
func TestSeedDiagnoses(t *testing.T) {
	cases := []struct {
		node, fault string
		cause       v1alpha1.Cause
		evidence    string // a fragment of the cause's evidence
	}{
		{"seed001-memory", "memory-oom", v1alpha1.CauseMemoryExhausted, "System OOM encountered, victim process: java"},
		{"seed002-pleg", "pleg", v1alpha1.CausePLEGUnhealthy, "PLEG is not healthy"},
		{"seed004-runtime", "runtime-down", v1alpha1.CauseContainerRuntimeDown, "containerd.service is inactive"},
		{"seed004-network", "network-down", v1alpha1.CauseNetworkUnavailable, "NetworkPluginNotReady"},
		{"seed004-pids", "pid-exhaustion", v1alpha1.CausePIDExhausted, "of pid_max"},
		{"seed004-disk", "disk-pressure", v1alpha1.CauseDiskPressure, "inodes free"},
		{"seed004-down", "node-down", v1alpha1.CauseNodeUnreachable, "the node agent is silent too"},
		{"kubelet-hung", "kubelet-hung", v1alpha1.CauseKubeletHung, "so the node is up"},
		{"seed004-deadlock", "kernel-deadlock", v1alpha1.CauseKernelDeadlock, "blocked for more than 120 seconds"},
		{"seed004-systemd", "old-systemd-pleg", v1alpha1.CauseOldSystemd, "219-57"},
	}
	var nodes []harness.NodeSpec
	for _, tc := range cases {
		nodes = append(nodes, harness.NodeSpec{Name: tc.node})
	}
	for i := 0; i < 6; i++ {
		nodes = append(nodes, harness.NodeSpec{Name: fmt.Sprintf("healthy-%d", i)})
	}
	// A 10s report interval makes a silent agent count as silent after 30s.
	c := startClusterWith(t, harness.Options{Nodes: nodes, AgentReportInterval: 10 * time.Second})
	ctx := context.Background()
	for _, n := range nodes {
		waitReport(t, c, n.Name, func(r *v1alpha1.NodeReport) bool { return r.Status.Probes != nil })
	}
	for _, tc := range cases {
		if _, err := sim.Inject(ctx, c.Node(tc.node), tc.fault); err != nil {
			t.Fatalf("injecting %s on %s: %v", tc.fault, tc.node, err)
		}
	}
	for _, tc := range cases {
		t.Run(string(tc.cause), func(t *testing.T) {
			var diag v1alpha1.NodeDiagnosis
			evidence := func() string {
				dc, _ := diag.Status.Cause(tc.cause)
				var lines []string
				for _, e := range dc.Evidence {
					lines = append(lines, e.Message)
				}
				return strings.Join(lines, "\n")
			}
			// The evidence grows as the kubelet's conditions and the agent's
			// probes arrive; wait for the cause with the expected evidence.
			eventually(t, 3*time.Minute, fmt.Sprintf("%s diagnosed on %s with evidence %q", tc.cause, tc.node, tc.evidence), func(ctx context.Context) (bool, error) {
				if err := c.Client.Get(ctx, client.ObjectKey{Name: tc.node}, &diag); err != nil {
					return false, nil
				}
				_, ok := diag.Status.Cause(tc.cause)
				return ok && strings.Contains(evidence(), tc.evidence), nil
			})
			t.Logf("%s: %s\n%s", tc.node, diag.Status.Summary, evidence())
			for _, other := range diag.Status.Causes {
				if other.Cause == v1alpha1.CauseKubeletDown || (other.Cause == v1alpha1.CauseKubeletHung && tc.cause != v1alpha1.CauseKubeletHung) {
					t.Errorf("%s on %s was also diagnosed as %s", tc.fault, tc.node, other.Cause)
				}
			}
		})
	}
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("healthy-%d", i)
		if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.NodeDiagnosis{}); err == nil {
			t.Errorf("healthy node %s has a diagnosis", name)
		}
	}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.ClusterDiagnosisName}, &v1alpha1.ClusterDiagnosis{}); err == nil {
		t.Errorf("3 late nodes of 16 were diagnosed as a control-plane fault")
	}
}

// Seed 003: a third of the nodes' heartbeats land late at once. nodeward
// diagnoses the control plane, gives no node a node-level cause, and starts
// no remediation, although an Automatic policy would restart a hung kubelet
// at once.
func TestControlPlaneDegraded(t *testing.T) {
	var nodes []harness.NodeSpec
	for i := 1; i <= 9; i++ {
		nodes = append(nodes, harness.NodeSpec{Name: fmt.Sprintf("worker-%d", i)})
	}
	c := startCluster(t, nodes...)
	ctx := context.Background()
	p := policy("restart-hung", nil, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletHung, v1alpha1.ActionRestartKubelet, 0)
	p.Spec.Causes = append(p.Spec.Causes, v1alpha1.CauseMatch{Cause: v1alpha1.CauseKubeletDown})
	if err := c.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitReport(t, c, n.Name, func(r *v1alpha1.NodeReport) bool { return len(r.Status.Units) > 0 })
	}
	late := []string{"worker-1", "worker-2", "worker-3"}
	start := time.Now()
	for _, n := range late {
		if _, err := sim.Inject(ctx, c.Node(n), "late-heartbeats"); err != nil {
			t.Fatal(err)
		}
	}
	// Watch until the late nodes were marked NotReady by the controller-manager
	// and came back: at no point may a node have a node-level cause or a record.
	sawUnknown := map[string]bool{}
	sawCluster := false
	eventually(t, 3*time.Minute, "the late nodes to go NotReady and recover", func(ctx context.Context) (bool, error) {
		diags := &v1alpha1.NodeDiagnosisList{}
		if err := c.Client.List(ctx, diags); err != nil {
			return false, nil
		}
		for _, d := range diags.Items {
			for _, cause := range d.Status.Causes {
				if !cause.Cause.IsClusterWide() {
					t.Fatalf("%s got a node-level cause %s during a control-plane fault: %s", d.Name, cause.Cause, d.Status.Summary)
				}
			}
		}
		recs := &v1alpha1.RemediationList{}
		if err := c.Client.List(ctx, recs); err == nil && len(recs.Items) > 0 {
			t.Fatalf("a remediation was created during a control-plane fault: %s", recs.Items[0].Name)
		}
		if !sawCluster && c.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.ClusterDiagnosisName}, &v1alpha1.ClusterDiagnosis{}) == nil {
			sawCluster = true
			t.Logf("ClusterDiagnosis created %s after the heartbeats stopped", time.Since(start).Round(time.Second))
		}
		allBack := true
		for _, n := range late {
			cond, err := readyCondition(ctx, c.Client, n)
			if err != nil || cond == nil {
				return false, nil
			}
			if cond.Status != "True" {
				sawUnknown[n] = true
			}
			allBack = allBack && sawUnknown[n] && cond.Status == "True"
		}
		return allBack, nil
	})
	if !sawCluster {
		t.Errorf("no ClusterDiagnosis was created")
	}
	t.Logf("late nodes NotReady and back after %s; no node-level cause, no remediation", time.Since(start).Round(time.Second))
}
