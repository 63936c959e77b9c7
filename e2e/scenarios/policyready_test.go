package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// A higher-priority policy that can't act (its window names a time zone
// that does not exist: admission can't know, the window code fails closed)
// says Ready=False with the reason, and it still decides the nodes it covers:
// falling through to the working lower-priority policy could act where the
// broken one was written to hold back. Its record is held, naming the field
// at fault, and nothing acts — it blocks, but never silently.
func TestBrokenPolicyHoldsLoudly(t *testing.T) {
	c := startCluster(t, workers(2)...)
	ctx := context.Background()
	broken := policy("a-broken", nil, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 0)
	broken.Spec.Priority = 1000
	broken.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{Schedule: "@daily", Duration: metav1.Duration{Duration: time.Hour}, TimeZone: "Mars/Olympus"}}
	working := policy("z-working", nil, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 0)
	for _, p := range []*v1alpha1.RemediationPolicy{broken, working} {
		if err := c.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "the broken policy to say Ready=False", func(ctx context.Context) (bool, error) {
		p := &v1alpha1.RemediationPolicy{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: "a-broken"}, p); err != nil {
			return false, nil
		}
		r := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.PolicyConditionReady)
		if r != nil && r.Status == metav1.ConditionFalse && r.Reason == v1alpha1.PolicyReasonInvalidWindow {
			t.Logf("a-broken: Ready=False %s: %s", r.Reason, r.Message)
			return true, nil
		}
		return false, nil
	})
	breakKubelets(t, c, "worker-1")
	eventually(t, 2*time.Minute, "the broken policy's record, held saying why", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, "worker-1")
		if err != nil || len(recs) == 0 {
			return false, nil
		}
		r := recs[0]
		if r.Spec.Policy != "a-broken" {
			t.Fatalf("record %s decided by %s, want a-broken (the higher priority covers the node)", r.Name, r.Spec.Policy)
		}
		if r.Status.Phase != v1alpha1.PhasePending || r.Status.Reason != v1alpha1.PolicyReasonInvalidWindow {
			return false, nil
		}
		if !strings.Contains(r.Status.Message, "spec.maintenanceWindows[0].timeZone") {
			t.Fatalf("held record's message %q does not name the field", r.Status.Message)
		}
		t.Logf("%s held: %s", r.Name, r.Status.Message)
		return true, nil
	})
	// Held, not acted: no task, no restart, however long it waits.
	time.Sleep(5 * time.Second)
	if n := c.Node("worker-1").Host.Restarts(v1alpha1.UnitKubelet); n != 0 {
		t.Fatalf("kubelet restarted %d times under a policy that can't act", n)
	}
	tasks := &v1alpha1.NodeTaskList{}
	if err := c.Client.List(ctx, tasks); err != nil || len(tasks.Items) != 0 {
		t.Fatalf("NodeTasks = %d (err %v), want none", len(tasks.Items), err)
	}
}
