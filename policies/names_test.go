package policies

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func namesClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return fake.NewClientBuilder().WithScheme(s).
		WithStatusSubresource(&v1alpha1.Remediation{}, &v1alpha1.RemediationPolicy{}, &v1alpha1.NodeDiagnosis{}).
		WithIndex(&v1alpha1.Remediation{}, IndexRemediationNode, func(o client.Object) []string {
			return []string{o.(*v1alpha1.Remediation).Spec.NodeName}
		}).
		WithObjects(objs...).Build()
}

// A node of 253 characters and a policy of 70 get a record whose name has at
// most 253 characters and whose labels are valid label values.
func TestRecordForLongNames(t *testing.T) {
	node := strings.Repeat("n", 63) + "." + strings.Repeat("o", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("e", 61)
	pol := "restart-dead-kubelets-on-every-worker-pool-in-every-zone-of-the-fleet1"
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	since := metav1.NewTime(now.Add(-time.Minute))
	c := namesClient(t,
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}},
		&v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: node},
			Status: v1alpha1.NodeDiagnosisStatus{Causes: []v1alpha1.DiagnosedCause{{Cause: v1alpha1.CauseKubeletDown, Since: since}}}},
		&v1alpha1.RemediationPolicy{ObjectMeta: metav1.ObjectMeta{Name: pol}, Spec: v1alpha1.RemediationPolicySpec{
			Causes: []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseKubeletDown}},
			Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet}, Mode: v1alpha1.ModeAutomatic}},
	)
	r := &Reconciler{Client: c, Clock: clocktesting.NewFakeClock(now), Recorder: events.NewFakeRecorder(10)}
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: node}}); err != nil {
		t.Fatal(err)
	}
	recs := &v1alpha1.RemediationList{}
	if err := c.List(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if len(recs.Items) != 1 {
		t.Fatalf("%d records, want 1", len(recs.Items))
	}
	rec := recs.Items[0]
	if errs := validation.IsDNS1123Subdomain(rec.Name); len(errs) > 0 {
		t.Errorf("record name %q (%d chars): %v", rec.Name, len(rec.Name), errs)
	}
	if rec.Spec.NodeName != node || rec.Spec.Policy != pol {
		t.Errorf("spec names node %q, policy %q", rec.Spec.NodeName, rec.Spec.Policy)
	}
	for key, full := range map[string]string{v1alpha1.LabelNode: node, v1alpha1.LabelPolicy: pol, v1alpha1.LabelCause: "KubeletDown"} {
		if got := rec.Labels[key]; got != v1alpha1.LabelValue(full) || len(validation.IsValidLabelValue(got)) > 0 {
			t.Errorf("label %s=%q, want %q", key, got, v1alpha1.LabelValue(full))
		}
	}
}

// A policy counts only its own records, even when another policy's name is
// its long name's label value.
func TestStatusCountsOwnRecordsOnly(t *testing.T) {
	long := "restart-dead-kubelets-on-every-worker-pool-in-every-zone-of-the-fleet1"
	twin := v1alpha1.LabelValue(long)
	rec := func(name, pol string, phase v1alpha1.RemediationPhase) *v1alpha1.Remediation {
		return &v1alpha1.Remediation{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelPolicy: v1alpha1.LabelValue(pol)}},
			Spec:       v1alpha1.RemediationSpec{NodeName: "w1", Policy: pol},
			Status:     v1alpha1.RemediationStatus{Phase: phase},
		}
	}
	pol := func(name string) *v1alpha1.RemediationPolicy {
		return &v1alpha1.RemediationPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.RemediationPolicySpec{
			Causes: []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseKubeletDown}},
			Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet}, Mode: v1alpha1.ModeAutomatic}}
	}
	c := namesClient(t, pol(long), pol(twin),
		rec("a", long, v1alpha1.PhaseRunning), rec("b", twin, v1alpha1.PhaseSucceeded), rec("c", twin, v1alpha1.PhaseSucceeded))
	r := &StatusReconciler{Client: c, Recorder: events.NewFakeRecorder(10)}
	for name, want := range map[string][2]int32{long: {1, 0}, twin: {0, 2}} {
		if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: name}}); err != nil {
			t.Fatal(err)
		}
		got := &v1alpha1.RemediationPolicy{}
		if err := c.Get(context.Background(), client.ObjectKey{Name: name}, got); err != nil {
			t.Fatal(err)
		}
		if got.Status.Running != want[0] || got.Status.Completed != want[1] {
			t.Errorf("policy %s counts running %d, completed %d; want %d, %d", name, got.Status.Running, got.Status.Completed, want[0], want[1])
		}
	}
}
