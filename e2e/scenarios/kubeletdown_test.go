package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Seed 000: after an OS upgrade and reboot kubelet.service is inactive (dead)
// and disabled. The real controller-manager marks the node NotReady; nodeward
// diagnoses KubeletDown, records a Remediation, has the node agent restart
// the kubelet, and sees the node Ready with a fresh Lease. On a node under a
// DryRun policy the record says what would have been done and the kubelet
// stays dead. A healthy node gets no record.
func TestKubeletDown(t *testing.T) {
	c := startCluster(t,
		harness.NodeSpec{Name: "worker-auto", Labels: map[string]string{"pool": "auto"}},
		harness.NodeSpec{Name: "worker-dry", Labels: map[string]string{"pool": "dry"}},
		harness.NodeSpec{Name: "worker-healthy", Labels: map[string]string{"pool": "auto"}},
	)
	ctx := context.Background()
	// "for: 60s" outlasts the controller-manager's 50s grace period, so the
	// node is NotReady before nodeward acts, as in the seed.
	for _, p := range []*v1alpha1.RemediationPolicy{
		policy("auto", map[string]string{"pool": "auto"}, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 60*time.Second),
		policy("dry", map[string]string{"pool": "dry"}, v1alpha1.ModeDryRun, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 60*time.Second),
	} {
		if err := c.Client.Create(ctx, p); err != nil {
			t.Fatalf("creating policy %s: %v", p.Name, err)
		}
	}
	for _, n := range []string{"worker-auto", "worker-dry", "worker-healthy"} {
		eventually(t, time.Minute, "NodeReport of "+n, func(ctx context.Context) (bool, error) {
			rep := &v1alpha1.NodeReport{}
			err := c.Client.Get(ctx, client.ObjectKey{Name: n}, rep)
			return err == nil && len(rep.Status.Units) > 0, nil
		})
	}

	auto, dry := c.Node("worker-auto"), c.Node("worker-dry")
	killed := time.Now()
	for _, n := range []*struct{ name string }{{"worker-auto"}, {"worker-dry"}} {
		node := c.Node(n.name)
		node.Host.SetEnabled(v1alpha1.UnitKubelet, false)
		if err := node.Host.Kill(v1alpha1.UnitKubelet, false); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("killed the kubelets of worker-auto and worker-dry")

	notReady := eventually(t, 2*time.Minute, "the controller-manager to mark worker-auto NotReady", func(ctx context.Context) (bool, error) {
		cond, err := readyCondition(ctx, c.Client, "worker-auto")
		return err == nil && cond != nil && cond.Status == corev1.ConditionUnknown && cond.Reason == "NodeStatusUnknown", nil
	})
	t.Logf("worker-auto NotReady (Ready=Unknown, NodeStatusUnknown) %s after the kill", notReady.Sub(killed).Round(time.Second))
	if n := len(mustRemediations(t, c, "worker-auto")); n != 0 {
		t.Fatalf("a remediation was created before the policy's 60s: %d records", n)
	}

	var rec v1alpha1.Remediation
	succeeded := eventually(t, 3*time.Minute, "worker-auto's remediation to succeed", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, "worker-auto")
		if err != nil || len(recs) == 0 {
			return false, nil
		}
		rec = recs[0]
		if rec.Status.Phase == v1alpha1.PhaseFailed {
			t.Fatalf("remediation failed: %s: %s", rec.Status.Reason, rec.Status.Message)
		}
		return rec.Status.Phase == v1alpha1.PhaseSucceeded, nil
	})
	t.Logf("remediation %s succeeded %s after the kill", rec.Name, succeeded.Sub(killed).Round(time.Second))
	for _, s := range rec.Status.Steps {
		t.Logf("  step %s %s %s→%s: %s", s.Name, s.Phase, s.StartedAt.Format(time.RFC3339), s.CompletedAt.Format(time.RFC3339), s.Message)
		if s.Phase != v1alpha1.StepSucceeded || s.StartedAt == nil || s.CompletedAt == nil {
			t.Errorf("step %s: phase %s, startedAt %v, completedAt %v; want Succeeded with both timestamps", s.Name, s.Phase, s.StartedAt, s.CompletedAt)
		}
	}
	if rec.Spec.Cause != v1alpha1.CauseKubeletDown || rec.Spec.Policy != "auto" || rec.Spec.Mode != v1alpha1.ModeAutomatic {
		t.Errorf("record spec = %s/%s/%s, want KubeletDown/auto/Automatic", rec.Spec.Cause, rec.Spec.Policy, rec.Spec.Mode)
	}
	if len(rec.Status.Steps) == 0 || !strings.Contains(rec.Status.Steps[0].Message, "disabled") {
		t.Errorf("the restart step should say the unit is disabled; got %q", rec.Status.Steps)
	}
	if got := auto.Host.Restarts(v1alpha1.UnitKubelet); got != 1 {
		t.Errorf("kubelet restarts on worker-auto = %d, want exactly 1", got)
	}
	cond, err := readyCondition(ctx, c.Client, "worker-auto")
	if err != nil || cond == nil || cond.Status != corev1.ConditionTrue {
		t.Errorf("worker-auto Ready = %v (%v), want True", cond, err)
	}

	// DryRun: a record that says what would have been done; nothing touched.
	var dryRec v1alpha1.Remediation
	eventually(t, time.Minute, "worker-dry's dry-run record", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, "worker-dry")
		if err != nil || len(recs) == 0 {
			return false, nil
		}
		dryRec = recs[0]
		return dryRec.Status.Phase.IsTerminal(), nil
	})
	if dryRec.Status.Phase != v1alpha1.PhaseSkipped || dryRec.Status.Reason != v1alpha1.ReasonDryRun {
		t.Errorf("dry-run record phase/reason = %s/%s, want Skipped/DryRun", dryRec.Status.Phase, dryRec.Status.Reason)
	}
	if !strings.Contains(dryRec.Status.Message, "would have run RestartKubelet") {
		t.Errorf("dry-run message %q does not say what would have been done", dryRec.Status.Message)
	}
	if got := dry.Host.Restarts(v1alpha1.UnitKubelet); got != 0 || dry.Kubelet.Running() {
		t.Errorf("dry run touched worker-dry: %d restarts, kubelet running %v", got, dry.Kubelet.Running())
	}
	tasks := &v1alpha1.NodeTaskList{}
	if err := c.Client.List(ctx, tasks, client.MatchingLabels{v1alpha1.LabelNode: "worker-dry"}); err != nil || len(tasks.Items) != 0 {
		t.Errorf("dry run created node tasks: %d (%v)", len(tasks.Items), err)
	}
	if n := len(mustRemediations(t, c, "worker-healthy")); n != 0 {
		t.Errorf("healthy node got %d remediations", n)
	}
}

func mustRemediations(t *testing.T, c *harness.Cluster, node string) []v1alpha1.Remediation {
	t.Helper()
	recs, err := remediationsFor(context.Background(), c.Client, node)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
