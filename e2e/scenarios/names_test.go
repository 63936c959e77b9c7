package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Names real clusters use: a cloud node name of 49 characters (its records'
// names have 72), a node name of 253 characters (a DNS subdomain of four
// labels) and a policy name of 70 characters are all longer than a label
// value may be. Each node's dead kubelet is restarted exactly once, by the
// policy with the long name, and its record succeeds; every label nodeward
// wrote is a valid label value and the full names are in the spec fields.
func TestLongNames(t *testing.T) {
	cloud := "ip-10-100-123-234.ap-southeast-2.compute.internal"
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	policyName := "restart-dead-kubelets-on-every-worker-pool-in-every-zone-of-the-fleet1"
	if len(cloud) != 49 || len(long) != 253 || len(policyName) != 70 {
		t.Fatalf("name lengths %d, %d, %d", len(cloud), len(long), len(policyName))
	}
	if errs := validation.IsDNS1123Subdomain(long); len(errs) > 0 {
		t.Fatalf("the long node name is not a valid node name: %v", errs)
	}
	start := time.Now()
	c := startCluster(t,
		harness.NodeSpec{Name: cloud, Labels: map[string]string{"pool": "names"}},
		harness.NodeSpec{Name: long, Labels: map[string]string{"pool": "names"}},
	)
	t.Logf("cluster up in %s", time.Since(start).Round(time.Second))
	ctx := context.Background()
	p := policy(policyName, map[string]string{"pool": "names"}, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 0)
	// Both nodes of the pool fail, one after the other: the storm breaker's
	// default (30% of two nodes) would hold the second.
	p.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromString("100%"))
	if err := c.Client.Create(ctx, p); err != nil {
		t.Fatalf("creating policy %s: %v", policyName, err)
	}

	for _, node := range []string{cloud, long} {
		t.Run(map[string]string{cloud: "cloud name", long: "253 characters"}[node], func(t *testing.T) {
			eventually(t, time.Minute, "NodeReport of "+node, func(ctx context.Context) (bool, error) {
				rep := &v1alpha1.NodeReport{}
				err := c.Client.Get(ctx, client.ObjectKey{Name: node}, rep)
				return err == nil && len(rep.Status.Units) > 0, nil
			})
			n := c.Node(node)
			killed := time.Now()
			n.Host.SetEnabled(v1alpha1.UnitKubelet, false)
			if err := n.Host.Kill(v1alpha1.UnitKubelet, false); err != nil {
				t.Fatal(err)
			}
			var rec v1alpha1.Remediation
			done := eventually(t, 2*time.Minute, "the remediation of "+node+" to end", func(ctx context.Context) (bool, error) {
				recs, err := remediationsFor(ctx, c.Client, node)
				if err != nil || len(recs) == 0 {
					return false, nil
				}
				rec = recs[0]
				return rec.Status.Phase.IsTerminal(), nil
			})
			if rec.Status.Phase != v1alpha1.PhaseSucceeded {
				t.Fatalf("record %s: %s/%s: %s", rec.Name, rec.Status.Phase, rec.Status.Reason, rec.Status.Message)
			}
			t.Logf("record %s (%d chars) succeeded %s after the kill", rec.Name, len(rec.Name), done.Sub(killed).Round(100*time.Millisecond))
			if rec.Spec.NodeName != node || rec.Spec.Policy != policyName {
				t.Errorf("record spec names node %q, policy %q", rec.Spec.NodeName, rec.Spec.Policy)
			}
			if got := n.Host.Restarts(v1alpha1.UnitKubelet); got != 1 {
				t.Errorf("kubelet restarts = %d, want exactly 1", got)
			}
			if cond, err := readyCondition(ctx, c.Client, node); err != nil || cond == nil || cond.Status != corev1.ConditionTrue {
				t.Errorf("Ready = %v (%v), want True", cond, err)
			}
			wantLabels(t, "record "+rec.Name, rec.Labels, map[string]string{
				v1alpha1.LabelNode: node, v1alpha1.LabelPolicy: policyName, v1alpha1.LabelCause: string(v1alpha1.CauseKubeletDown)})

			// One NodeTask, named after the record, found by its node's
			// label value and naming the node in full.
			tasks := &v1alpha1.NodeTaskList{}
			if err := c.Client.List(ctx, tasks, client.MatchingLabels{v1alpha1.LabelNode: v1alpha1.LabelValue(node)}); err != nil {
				t.Fatal(err)
			}
			if len(tasks.Items) != 1 || tasks.Items[0].Name != rec.Name || tasks.Items[0].Spec.NodeName != node || tasks.Items[0].Spec.Remediation != rec.Name {
				t.Fatalf("NodeTasks of %s: %+v, want one named %s", node, tasks.Items, rec.Name)
			}
			wantLabels(t, "NodeTask", tasks.Items[0].Labels, map[string]string{v1alpha1.LabelNode: node, v1alpha1.LabelRemediation: rec.Name})
			rep := &v1alpha1.NodeReport{}
			if err := c.Client.Get(ctx, client.ObjectKey{Name: node}, rep); err != nil {
				t.Fatal(err)
			}
			wantLabels(t, "NodeReport", rep.Labels, map[string]string{v1alpha1.LabelNode: node})
		})
	}

	// The policy counts both records as its own (by its label value, then
	// spec.policy).
	eventually(t, 30*time.Second, "the policy to count its two records", func(ctx context.Context) (bool, error) {
		got := &v1alpha1.RemediationPolicy{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: policyName}, got); err != nil {
			return false, err
		}
		return got.Status.Completed == 2, nil
	})
	t.Logf("wall time %s", time.Since(start).Round(time.Second))
}

// wantLabels checks that each label is LabelValue of its full name, a valid
// label value.
func wantLabels(t *testing.T, what string, labels, full map[string]string) {
	t.Helper()
	for key, name := range full {
		got := labels[key]
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 || got != v1alpha1.LabelValue(name) {
			t.Errorf("%s label %s=%q, want %q (%v)", what, key, got, v1alpha1.LabelValue(name), errs)
		}
	}
}
