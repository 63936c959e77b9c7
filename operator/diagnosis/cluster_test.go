package diagnosis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// clusterFixture is a ClusterDetector over a fake client holding one Lease
// per node in kube-node-lease, on a fake clock.
type clusterFixture struct {
	t     *testing.T
	c     client.Client
	clock *clocktesting.FakeClock
	rec   *events.FakeRecorder
	d     *ClusterDetector
}

func clusterNodeName(i int) string { return fmt.Sprintf("node-%02d", i) }

func newClusterFixture(t *testing.T, nodes int) *clusterFixture {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(now)
	var objs []client.Object
	for i := range nodes {
		objs = append(objs, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: NodeLeaseNamespace, Name: clusterNodeName(i)},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(clusterNodeName(i)), LeaseDurationSeconds: ptr.To[int32](40),
				RenewTime: &metav1.MicroTime{Time: now.Add(-2 * time.Second)}},
		})
	}
	// A Lease in another namespace (a controller's leader election) is not a node's.
	objs = append(objs, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-controller-manager"},
		Spec:       coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: now.Add(-time.Hour)}},
	})
	c := fake.NewClientBuilder().WithScheme(s).
		WithStatusSubresource(&v1alpha1.ClusterDiagnosis{}).
		WithObjects(objs...).Build()
	rec := events.NewFakeRecorder(10)
	return &clusterFixture{t: t, c: c, clock: clk, rec: rec, d: NewClusterDetector(c, clk, rec, DefaultThresholds())}
}

// renew sets the named nodes' Leases as renewed `ago` before the fake clock's now.
func (f *clusterFixture) renew(ago time.Duration, nodes ...string) {
	f.t.Helper()
	for _, n := range nodes {
		l := &coordinationv1.Lease{}
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: NodeLeaseNamespace, Name: n}, l); err != nil {
			f.t.Fatal(err)
		}
		l.Spec.RenewTime = &metav1.MicroTime{Time: f.clock.Now().Add(-ago)}
		if err := f.c.Update(context.Background(), l); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *clusterFixture) scan() {
	f.t.Helper()
	if err := f.d.Scan(context.Background()); err != nil {
		f.t.Fatalf("Scan: %v", err)
	}
}

// requeued drains the Requeue channel, sorted.
func (f *clusterFixture) requeued() []string {
	var out []string
	for {
		select {
		case e := <-f.d.Requeue:
			out = append(out, e.Object.GetName())
		default:
			slices.Sort(out)
			return out
		}
	}
}

func (f *clusterFixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (f *clusterFixture) diagnosis() (*v1alpha1.ClusterDiagnosis, bool) {
	f.t.Helper()
	cd := &v1alpha1.ClusterDiagnosis{}
	err := f.c.Get(context.Background(), client.ObjectKey{Name: v1alpha1.ClusterDiagnosisName}, cd)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return cd, true
}

// Fewer late nodes than MinNodes (2 of 9, though 22%), or fewer than Fraction
// (3 of 20, 15%): the nodes are at fault, not the control plane.
func TestClusterDetectorBelowThreshold(t *testing.T) {
	for _, tc := range []struct {
		name        string
		nodes, late int
	}{
		{"2 of 9 late, below MinNodes", 9, 2},
		{"3 of 20 late, below Fraction", 20, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newClusterFixture(t, tc.nodes)
			for i := range tc.late {
				f.renew(time.Minute, clusterNodeName(i))
			}
			f.scan()
			if st := f.d.State(); st.Degraded || st.Late != tc.late || st.Total != tc.nodes {
				t.Errorf("State = %+v, want not degraded, %d of %d late", st, tc.late, tc.nodes)
			}
			if _, ok := f.diagnosis(); ok {
				t.Error("a ClusterDiagnosis was created below the threshold")
			}
			// Each node whose Lease turned stale is re-diagnosed, and the
			// storm breaker sees it late.
			var late []string
			for i := range tc.late {
				late = append(late, clusterNodeName(i))
				if !f.d.Late(clusterNodeName(i)) {
					t.Errorf("Late(%s) = false", clusterNodeName(i))
				}
			}
			if f.d.Late(clusterNodeName(tc.nodes - 1)) {
				t.Errorf("Late(%s) = true for a fresh Lease", clusterNodeName(tc.nodes-1))
			}
			if got := f.requeued(); !slices.Equal(got, late) {
				t.Errorf("requeued %v, want the nodes turned late %v", got, late)
			}
			if len(f.d.Changed) != 1 {
				t.Error("no Changed notice for the new late nodes")
			}
			if got := f.events(); len(got) != 0 {
				t.Errorf("events %v, want none", got)
			}
			// The next scan sees nothing new: nothing requeued.
			<-f.d.Changed
			f.scan()
			if got := f.requeued(); len(got) != 0 || len(f.d.Changed) != 0 {
				t.Errorf("second scan requeued %v (changed %d), want nothing", got, len(f.d.Changed))
			}
		})
	}
}

// 3 of 9 Leases stale: degraded, a ClusterDiagnosis, the late nodes requeued;
// fresh again: degraded until Hold has passed, then cleared, the
// ClusterDiagnosis deleted and the nodes that were late requeued.
func TestClusterDetectorDegradedThenRecovered(t *testing.T) {
	f := newClusterFixture(t, 9)
	late := []string{clusterNodeName(2), clusterNodeName(5), clusterNodeName(7)}
	var all []string
	for i := range 9 {
		all = append(all, clusterNodeName(i))
	}

	// 3 of 9 stale (30s, past LeaseStaleAfter 20s): degraded.
	f.renew(30*time.Second, late...)
	f.scan()
	st := f.d.State()
	if !st.Degraded || st.Late != 3 || st.Total != 9 || !st.Since.Equal(now) {
		t.Fatalf("State = %+v, want degraded since %s, 3 of 9 late", st, now)
	}
	if got := f.requeued(); !slices.Equal(got, late) {
		t.Errorf("requeued %v, want the late nodes %v", got, late)
	}
	cd, ok := f.diagnosis()
	if !ok {
		t.Fatal("no ClusterDiagnosis while degraded")
	}
	if cd.Status.LateNodes != 3 || cd.Status.TotalNodes != 9 || !slices.Equal(cd.Status.SampleNodes, late) {
		t.Errorf("ClusterDiagnosis status late %d, total %d, sample %v; want 3, 9, %v", cd.Status.LateNodes, cd.Status.TotalNodes, cd.Status.SampleNodes, late)
	}
	if len(cd.Status.Causes) != 1 || cd.Status.Causes[0].Cause != v1alpha1.CauseControlPlaneDegraded {
		t.Errorf("ClusterDiagnosis causes = %+v, want [ControlPlaneDegraded]", cd.Status.Causes)
	} else if ev := cd.Status.Causes[0].Evidence; len(ev) == 0 || !strings.Contains(ev[0].Message, "3 of 9 node Leases not renewed for 20s") {
		t.Errorf("ClusterDiagnosis evidence = %+v", ev)
	}
	if !strings.HasPrefix(cd.Status.Summary, "ControlPlaneDegraded: 3 of 9 nodes' heartbeats late at once") {
		t.Errorf("summary = %q", cd.Status.Summary)
	}
	// Late heartbeats from many nodes at once mean an overloaded control
	// plane or a partition (a zone cut off): the summary names both.
	for _, want := range []string{"control plane is overloaded", "etcd and the apiserver", "cut off from it", "network partition, e.g. a zone"} {
		if !strings.Contains(cd.Status.Summary, want) {
			t.Errorf("summary %q does not say %q", cd.Status.Summary, want)
		}
	}
	if got := f.events(); len(got) != 1 || !strings.HasPrefix(got[0], "Warning ControlPlaneDegraded ControlPlaneDegraded: 3 of 9") {
		t.Errorf("events = %q, want one Warning ControlPlaneDegraded", got)
	}
	rv := cd.ResourceVersion

	// Still degraded 5s later: no requeue, no event, no rewrite.
	f.clock.Step(5 * time.Second)
	f.scan()
	if got := f.requeued(); len(got) != 0 {
		t.Errorf("requeued %v while the state did not flip, want none", got)
	}
	if got := f.events(); len(got) != 0 {
		t.Errorf("events %q while the state did not flip, want none", got)
	}
	if cd, _ := f.diagnosis(); cd.ResourceVersion != rv {
		t.Errorf("unchanged ClusterDiagnosis rewritten: resourceVersion %s → %s", rv, cd.ResourceVersion)
	}

	// The control plane recovers: every Lease fresh. Degraded for Hold (2m)
	// after the last scan over the threshold (at now+5s).
	f.clock.Step(10 * time.Second)
	f.renew(time.Second, all...)
	f.scan()
	if st := f.d.State(); !st.Degraded || !st.Since.Equal(now) {
		t.Errorf("State = %+v right after recovery, want still degraded since %s (Hold)", st, now)
	}
	if _, ok := f.diagnosis(); !ok {
		t.Error("ClusterDiagnosis deleted before Hold passed")
	}
	// The nodes whose Leases are fresh again are re-diagnosed at once.
	if got := f.requeued(); !slices.Equal(got, late) {
		t.Errorf("requeued %v during Hold, want the nodes fresh again %v", got, late)
	}
	// A minute on, one other node is late (1 of 9, below the threshold):
	// still degraded, and that node may now carry the cluster cause too.
	f.clock.Step(time.Minute)
	f.renew(time.Second, all...)
	f.renew(30*time.Second, clusterNodeName(8))
	f.scan()
	if st := f.d.State(); !st.Degraded || st.Late != 1 {
		t.Errorf("State = %+v, want still degraded (Hold), 1 late", st)
	}
	if got := f.requeued(); !slices.Equal(got, []string{clusterNodeName(8)}) {
		t.Errorf("requeued %v, want the node turned late %s", got, clusterNodeName(8))
	}

	// Hold passed (2m after now+5s): cleared, deleted, every node that was
	// late while degraded requeued.
	late = append(late, clusterNodeName(8))
	f.clock.SetTime(now.Add(5*time.Second + 2*time.Minute))
	f.renew(time.Second, all...)
	f.scan()
	if st := f.d.State(); st.Degraded || st.Late != 0 || st.Total != 9 {
		t.Errorf("State = %+v after Hold, want cleared, 0 of 9 late", st)
	}
	if _, ok := f.diagnosis(); ok {
		t.Error("ClusterDiagnosis kept after recovery")
	}
	if got := f.requeued(); !slices.Equal(got, late) {
		t.Errorf("requeued %v after recovery, want the nodes that were late %v", got, late)
	}

	// Healthy scans after that write nothing and requeue nothing.
	f.clock.Step(5 * time.Second)
	f.renew(time.Second, all...)
	f.scan()
	if got := f.requeued(); len(got) != 0 {
		t.Errorf("requeued %v on a healthy scan, want none", got)
	}
	if _, ok := f.diagnosis(); ok {
		t.Error("ClusterDiagnosis recreated on a healthy scan")
	}
}

// The degraded state feeds the node diagnoses: a late node with its kubelet
// running gets ControlPlaneDegraded from the detector's State.
func TestClusterDetectorStateFeedsDiagnose(t *testing.T) {
	f := newClusterFixture(t, 9)
	f.renew(time.Minute, clusterNodeName(0), clusterNodeName(1), clusterNodeName(2))
	f.scan()
	in := Input{Node: node(statusUnknown), Lease: lease(time.Minute), Cluster: f.d.State(), Now: now,
		Report: report(10*time.Second, kubeletActive, runtimeActive)}
	if got := causeNames(Diagnose(in, DefaultThresholds()).Status.Causes); !slices.Equal(got, []v1alpha1.Cause{v1alpha1.CauseControlPlaneDegraded}) {
		t.Fatalf("causes = %v, want [ControlPlaneDegraded]", got)
	}
}

// While degraded, a change of the counts alone is written at most every
// publishEvery: in a storm they move with every scan.
func TestClusterDetectorCountsThrottled(t *testing.T) {
	f := newClusterFixture(t, 9)
	f.renew(30*time.Second, clusterNodeName(0), clusterNodeName(1), clusterNodeName(2))
	f.scan()
	cd, ok := f.diagnosis()
	if !ok || cd.Status.LateNodes != 3 {
		t.Fatalf("ClusterDiagnosis %v, want 3 late", cd)
	}
	rv := cd.ResourceVersion

	f.clock.Step(time.Second)
	f.renew(30*time.Second, clusterNodeName(3))
	f.scan()
	if cd, _ := f.diagnosis(); cd.ResourceVersion != rv || cd.Status.LateNodes != 3 {
		t.Errorf("counts rewritten %s after the last write (late %d, resourceVersion %s → %s), want none before %s",
			time.Second, cd.Status.LateNodes, rv, cd.ResourceVersion, publishEvery)
	}

	f.clock.Step(publishEvery)
	f.renew(40*time.Second, clusterNodeName(0), clusterNodeName(1), clusterNodeName(2), clusterNodeName(3))
	f.scan()
	if cd, _ := f.diagnosis(); cd.Status.LateNodes != 4 {
		t.Errorf("late %d after %s, want the new count 4", cd.Status.LateNodes, publishEvery)
	}
}
