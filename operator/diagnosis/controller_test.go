package diagnosis

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// --- NodeHealthChanged ----------------------------------------------------

func TestNodeHealthChanged(t *testing.T) {
	base := func() *corev1.Node {
		n := node(readyTrue)
		n.Labels = map[string]string{"kubernetes.io/hostname": nodeName}
		n.ResourceVersion = "100"
		return n
	}
	tests := []struct {
		name   string
		change func(n *corev1.Node)
		want   bool
	}{
		{
			// The kubelet's periodic status update only moves heartbeat times → dropped.
			name: "heartbeat-only update",
			change: func(n *corev1.Node) {
				n.ResourceVersion = "101"
				n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(now)
			},
			want: false,
		},
		{
			// Other status churn (images, allocatable) does not change a diagnosis → dropped.
			name: "images changed",
			change: func(n *corev1.Node) {
				n.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}}}
			},
			want: false,
		},
		{
			// Ready True → Unknown (NodeStatusUnknown) → passed.
			name:   "Ready status changed",
			change: func(n *corev1.Node) { n.Status.Conditions[0] = statusUnknown },
			want:   true,
		},
		{
			// Status alone flips, same reason and message → passed.
			name:   "Ready status only changed",
			change: func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse },
			want:   true,
		},
		{
			// Same status, new message → passed.
			name:   "Ready message changed",
			change: func(n *corev1.Node) { n.Status.Conditions[0].Message = "container runtime is down" },
			want:   true,
		},
		{
			// A condition appears → passed.
			name: "condition added",
			change: func(n *corev1.Node) {
				n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse})
			},
			want: true,
		},
		{
			// The exclude label is set → passed (policies read labels).
			name:   "label added",
			change: func(n *corev1.Node) { n.Labels[v1alpha1.LabelExclude] = "true" },
			want:   true,
		},
	}
	p := NodeHealthChanged()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old, updated := base(), base()
			tc.change(updated)
			if got := p.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated}); got != tc.want {
				t.Fatalf("Update passed = %t, want %t", got, tc.want)
			}
		})
	}

	// Creation and deletion always pass.
	if !p.Create(event.CreateEvent{Object: base()}) {
		t.Error("Create dropped")
	}
	if !p.Delete(event.DeleteEvent{Object: base()}) {
		t.Error("Delete dropped")
	}
}

// --- ReportChanged --------------------------------------------------------

func TestReportChanged(t *testing.T) {
	base := func() *v1alpha1.NodeReport {
		return report(0, kubeletActive, runtimeActive)
	}
	tests := []struct {
		name   string
		change func(r *v1alpha1.NodeReport)
		want   bool
	}{
		{
			// The agent's periodic write (same units, heartbeat one interval later) → dropped.
			name: "heartbeat-only write",
			change: func(r *v1alpha1.NodeReport) {
				r.Status.HeartbeatTime = metav1.NewTime(r.Status.HeartbeatTime.Add(reportInterval + 2*time.Second))
			},
			want: false,
		},
		{
			// The kubelet stopped → passed.
			name: "unit state changed",
			change: func(r *v1alpha1.NodeReport) {
				r.Status.Units[0] = kubeletDisabled
			},
			want: true,
		},
		{
			// Same state, new since-time (the unit was restarted in between) → passed.
			name: "unit since changed",
			change: func(r *v1alpha1.NodeReport) {
				r.Status.Units[1].Since = &metav1.Time{Time: now}
			},
			want: true,
		},
		{
			// The agent comes back after a silence longer than AgentSilentAfter
			// intervals with the same units: the diagnosis said "agent silent"
			// and must now read the units again → passed.
			name: "agent back after a silence",
			change: func(r *v1alpha1.NodeReport) {
				r.Status.HeartbeatTime = metav1.NewTime(r.Status.HeartbeatTime.Add(10 * reportInterval))
			},
			want: true,
		},
	}
	p := ReportChanged()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old, updated := base(), base()
			tc.change(updated)
			if got := p.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated}); got != tc.want {
				t.Fatalf("Update passed = %t, want %t", got, tc.want)
			}
		})
	}
	if !p.Create(event.CreateEvent{Object: base()}) {
		t.Error("Create dropped")
	}
}

// --- Reconciler -----------------------------------------------------------

func newReconciler(t *testing.T, objs ...client.Object) (*Reconciler, client.Client) {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).
		WithStatusSubresource(&v1alpha1.NodeDiagnosis{}, &v1alpha1.NodeReport{}).
		// Node Events by the node they are about, as the manager's cache
		// indexes them for the diagnosis of OOM kills.
		WithIndex(&corev1.Event{}, "involvedObject.name", func(o client.Object) []string {
			return []string{o.(*corev1.Event).InvolvedObject.Name}
		}).
		WithObjects(objs...).Build()
	return &Reconciler{Client: c, Clock: clocktesting.NewFakeClock(now), Thresholds: DefaultThresholds()}, c
}

func reconcileNode(t *testing.T, r *Reconciler) reconcile.Result {
	t.Helper()
	res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: nodeName}})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	return res
}

func getDiagnosis(t *testing.T, c client.Client) (*v1alpha1.NodeDiagnosis, bool) {
	t.Helper()
	d := &v1alpha1.NodeDiagnosis{}
	err := c.Get(context.Background(), client.ObjectKey{Name: nodeName}, d)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return d, true
}

func objects(n *corev1.Node, l *coordinationv1.Lease, r *v1alpha1.NodeReport) []client.Object {
	objs := []client.Object{n}
	if l != nil {
		objs = append(objs, l)
	}
	if r != nil {
		objs = append(objs, r)
	}
	return objs
}

// A healthy node gets no NodeDiagnosis and no timer: only a change wakes it.
func TestReconcileHealthyNode(t *testing.T) {
	r, c := newReconciler(t, objects(node(readyTrue), lease(3*time.Second), report(10*time.Second, kubeletActive, runtimeActive))...)
	if res := reconcileNode(t, r); res != (reconcile.Result{}) {
		t.Errorf("result = %+v, want no requeue", res)
	}
	if _, ok := getDiagnosis(t, c); ok {
		t.Error("a healthy node got a NodeDiagnosis")
	}
}

// A suspect node (kubelet down, Lease still fresh) gets no NodeDiagnosis yet,
// but a timer for when its Lease turns stale.
func TestReconcileSuspectNode(t *testing.T) {
	r, c := newReconciler(t, objects(node(readyTrue), lease(5*time.Second), report(2*time.Second, kubeletDisabled, runtimeActive))...)
	if res := reconcileNode(t, r); res.RequeueAfter != 15*time.Second {
		t.Errorf("RequeueAfter = %s, want 15s", res.RequeueAfter)
	}
	if _, ok := getDiagnosis(t, c); ok {
		t.Error("a node that is not yet unhealthy got a NodeDiagnosis")
	}
}

// An unhealthy node gets a NodeDiagnosis owned by the Node, and it goes when
// the node is healthy again.
func TestReconcileUnhealthyThenHealthy(t *testing.T) {
	n := node(statusUnknown)
	n.UID = "node-uid"
	r, c := newReconciler(t, objects(n, lease(90*time.Second), report(10*time.Second, kubeletDisabled, runtimeActive))...)
	reconcileNode(t, r)
	d, ok := getDiagnosis(t, c)
	if !ok {
		t.Fatal("no NodeDiagnosis for an unhealthy node")
	}
	if got := causeNames(d.Status.Causes); len(got) != 1 || got[0] != v1alpha1.CauseKubeletDown {
		t.Errorf("causes = %v, want [KubeletDown]", got)
	}
	if d.Labels[v1alpha1.LabelNode] != nodeName {
		t.Errorf("label %s = %q, want %q", v1alpha1.LabelNode, d.Labels[v1alpha1.LabelNode], nodeName)
	}
	if len(d.OwnerReferences) != 1 || d.OwnerReferences[0].Kind != "Node" || d.OwnerReferences[0].UID != "node-uid" {
		t.Errorf("owner references = %+v, want the Node", d.OwnerReferences)
	}
	rv := d.ResourceVersion

	// Reconciling again with nothing changed does not rewrite it.
	reconcileNode(t, r)
	if d, _ := getDiagnosis(t, c); d.ResourceVersion != rv {
		t.Errorf("unchanged diagnosis rewritten: resourceVersion %s → %s", rv, d.ResourceVersion)
	}

	// The kubelet is back: Ready=True, Lease renewed, unit active.
	n = &corev1.Node{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: nodeName}, n); err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions = []corev1.NodeCondition{readyTrue}
	if err := c.Status().Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	l := &coordinationv1.Lease{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: NodeLeaseNamespace, Name: nodeName}, l); err != nil {
		t.Fatal(err)
	}
	l.Spec.RenewTime = &metav1.MicroTime{Time: now}
	if err := c.Update(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	rep := &v1alpha1.NodeReport{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: nodeName}, rep); err != nil {
		t.Fatal(err)
	}
	rep.Status.Units = []v1alpha1.UnitState{kubeletActive, runtimeActive}
	if err := c.Status().Update(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	reconcileNode(t, r)
	if _, ok := getDiagnosis(t, c); ok {
		t.Error("NodeDiagnosis kept for a node that is healthy again")
	}
}

// An agent that was silent comes back reporting the same units: its write
// must reach the diagnosis, which otherwise has no timer and would stay
// "cause unknown" (regression test for ReportChanged).
func TestReconcileAgentBackFromSilence(t *testing.T) {
	silent := report(4*time.Minute, kubeletDisabled, runtimeActive)
	r, c := newReconciler(t, objects(node(statusUnknown), lease(5*time.Minute), silent)...)
	if res := reconcileNode(t, r); res.RequeueAfter != 0 {
		t.Fatalf("RequeueAfter = %s with a silent agent and a stale Lease, want none", res.RequeueAfter)
	}
	d, ok := getDiagnosis(t, c)
	if !ok {
		t.Fatal("no NodeDiagnosis for a node that is not Ready")
	}
	if _, found := d.Status.Cause(v1alpha1.CauseKubeletDown); found {
		t.Fatalf("KubeletDown diagnosed from a silent agent's report: %s", d.Status.Summary)
	}

	// The agent writes again: same units, heartbeat now.
	old := &v1alpha1.NodeReport{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: nodeName}, old); err != nil {
		t.Fatal(err)
	}
	back := old.DeepCopy()
	back.Status.HeartbeatTime = metav1.NewTime(now)
	if err := c.Status().Update(context.Background(), back); err != nil {
		t.Fatal(err)
	}
	if !ReportChanged().Update(event.UpdateEvent{ObjectOld: old, ObjectNew: back}) {
		t.Fatal("ReportChanged dropped the agent's first write after its silence")
	}
	reconcileNode(t, r)
	d, _ = getDiagnosis(t, c)
	if got := causeNames(d.Status.Causes); len(got) != 1 || got[0] != v1alpha1.CauseKubeletDown {
		t.Fatalf("causes = %v after the agent came back, want [KubeletDown]", got)
	}
}
