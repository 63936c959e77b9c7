package scenarios

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// A higher-priority policy that can't act (its window names a time zone
// that does not exist: admission can't know, the window code fails closed)
// says Ready=False with the reason, and the working lower-priority policy
// decides the node's remediation instead of being blocked by it.
func TestBrokenPolicyNeverBlocksAWorkingOne(t *testing.T) {
	c := startCluster(t, workers(2)...)
	ctx := context.Background()
	broken := policy("a-broken", nil, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 0)
	broken.Spec.Priority = 1000
	broken.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{Schedule: "@daily", Duration: metav1.Duration{Duration: time.Hour}, TimeZone: "Mars/Olympus"}}
	working := policy("z-working", nil, v1alpha1.ModeDryRun, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 0)
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
	eventually(t, 2*time.Minute, "a record by the working policy", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, "worker-1")
		if err != nil || len(recs) == 0 {
			return false, nil
		}
		if recs[0].Spec.Policy != "z-working" {
			t.Fatalf("record %s decided by %s, want z-working", recs[0].Name, recs[0].Spec.Policy)
		}
		return true, nil
	})
}
