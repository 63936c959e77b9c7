package policies

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

type lateSet map[string]bool

func (l lateSet) Late(n string) bool { return l[n] }

// The breaker counts a covered node once whether it has a NodeDiagnosis, a
// stale Lease, a running record, or all three; uncovered nodes never.
func TestStormCounts(t *testing.T) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	ready := []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	objs := []client.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Labels: map[string]string{"pool": "a"}}, Status: corev1.NodeStatus{Conditions: ready}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w2", Labels: map[string]string{"pool": "a"}}, Status: corev1.NodeStatus{Conditions: ready}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w3", Labels: map[string]string{"pool": "a"}}, Status: corev1.NodeStatus{Conditions: ready}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w4", Labels: map[string]string{"pool": "a"}}, Status: corev1.NodeStatus{Conditions: ready}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"pool": "b"}}, Status: corev1.NodeStatus{Conditions: ready}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp", Labels: map[string]string{LabelControlPlane: ""}}, Status: corev1.NodeStatus{Conditions: ready}},
		&v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: "w1"}},
		&v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
		&v1alpha1.Remediation{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: v1alpha1.RemediationSpec{NodeName: "w3"}, Status: v1alpha1.RemediationStatus{Phase: v1alpha1.PhaseRunning}},
		// A running Notify touches nothing: w4 is not being remediated.
		&v1alpha1.Remediation{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: v1alpha1.RemediationSpec{NodeName: "w4", Action: v1alpha1.Action{Type: v1alpha1.ActionNotify}}, Status: v1alpha1.RemediationStatus{Phase: v1alpha1.PhaseRunning}},
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
	p := policy("p", selector(map[string]string{"pool": "a"}))
	for _, tc := range []struct {
		name          string
		hb            Heartbeats
		wantUnhealthy int
	}{
		{"without heartbeats", nil, 2},                                            // w1 diagnosed, w3 running; w4's Notify not
		{"stale leases count", lateSet{"w1": true, "w2": true, "other": true}, 3}, // + w2; w1 once; other not covered
	} {
		t.Run(tc.name, func(t *testing.T) {
			unhealthy, covered, readyCP, err := StormCounts(context.Background(), c, &p, "", tc.hb)
			if err != nil {
				t.Fatal(err)
			}
			if unhealthy != tc.wantUnhealthy || covered != 4 || readyCP != 1 {
				t.Errorf("StormCounts = %d unhealthy, %d covered, %d Ready control-plane nodes; want %d, 4, 1", unhealthy, covered, readyCP, tc.wantUnhealthy)
			}
		})
	}
}
