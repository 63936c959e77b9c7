package policies

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Every record the policy controller creates carries its seal.
func TestReconcilerSealsRecords(t *testing.T) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	now := sealSince.Add(time.Hour)
	c := fake.NewClientBuilder().WithScheme(s).
		WithIndex(&v1alpha1.Remediation{}, IndexRemediationNode, func(o client.Object) []string {
			return []string{o.(*v1alpha1.Remediation).Spec.NodeName}
		}).
		WithObjects(
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}},
			&v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}, Status: v1alpha1.NodeDiagnosisStatus{
				Causes: []v1alpha1.DiagnosedCause{{Cause: v1alpha1.CauseKubeletDown, Since: metav1.NewTime(sealSince)}}}},
			&v1alpha1.RemediationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "restart", Generation: 2}, Spec: v1alpha1.RemediationPolicySpec{
				Causes: []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseKubeletDown}},
				Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet}, Mode: v1alpha1.ModeRequireApproval}},
		).Build()
	sealer, _ := NewSealer(sealKey)
	r := &Reconciler{Client: c, Clock: clocktesting.NewFakeClock(now), Recorder: events.NewFakeRecorder(10), Sealer: sealer}
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: "worker-1"}}); err != nil {
		t.Fatal(err)
	}
	list := &v1alpha1.RemediationList{}
	if err := c.List(context.Background(), list); err != nil || len(list.Items) != 1 {
		t.Fatalf("records %v, %v: want one", list.Items, err)
	}
	rem := &list.Items[0]
	if err := sealer.CheckSeal(rem); err != nil {
		t.Errorf("the created record's seal: %v", err)
	}
	if rem.Spec.Mode != v1alpha1.ModeRequireApproval || rem.Spec.PolicyGeneration != 2 {
		t.Errorf("record spec %+v", rem.Spec)
	}
}
