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

// renew sets the named nodes' Leases as renewed `ago` before the fake clock's
// now, and as seen by the detector when they were written (a node whose
// clock agrees with ours, watched without delay).
func (f *clusterFixture) renew(ago time.Duration, nodes ...string) {
	f.t.Helper()
	f.renewUnseen(ago, nodes...)
	f.d.obsMu.Lock()
	defer f.d.obsMu.Unlock()
	if f.d.observed == nil {
		f.d.observed = map[string]observation{}
	}
	for _, n := range nodes {
		f.d.observed[n] = observation{renew: f.clock.Now().Add(-ago), at: f.clock.Now().Add(-ago)}
	}
}

// renewUnseen sets the named nodes' Leases as renewed `ago` before the fake
// clock's now (by the node's clock); the detector sees them on its next scan.
func (f *clusterFixture) renewUnseen(ago time.Duration, nodes ...string) {
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

// agentReport stores a NodeReport for each node: the agent reported
// heartbeatAgo before the fake clock's now, with the given kubelet unit.
func (f *clusterFixture) agentReport(heartbeatAgo time.Duration, kubelet v1alpha1.UnitState, nodes ...string) {
	f.t.Helper()
	for _, n := range nodes {
		r := report(heartbeatAgo, kubelet)
		r.Name = n
		r.Status.HeartbeatTime = metav1.NewTime(f.clock.Now().Add(-heartbeatAgo))
		if err := f.c.Create(context.Background(), r); err != nil {
			f.t.Fatal(err)
		}
	}
}

func withLog(u v1alpha1.UnitState, text string) v1alpha1.UnitState {
	u.Logs = []v1alpha1.LogLine{{Source: "kubelet", Text: "an older line"}, {Source: "kubelet", Text: text}}
	return u
}

func clusterNodes(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, clusterNodeName(i))
	}
	return out
}

// Staleness is measured from when the detector saw a renewTime arrive, not
// from the renewTime the node wrote: a node whose clock is an hour behind
// but renews on time is never late, and after a restart every Lease is
// fresh for one LeaseStaleAfter (the detector has seen none arrive yet).
func TestClusterDetectorObservationTime(t *testing.T) {
	f := newClusterFixture(t, 9)
	skewed, stopped := clusterNodeName(0), clusterNodeName(1)
	// First scan after a start: the stopped node's renewTime is an hour
	// old, but the detector has not seen it arrive: fresh for now.
	f.renewUnseen(time.Hour, stopped)
	f.renewUnseen(time.Hour, skewed)
	f.scan()
	if f.d.Late(stopped) || f.d.Late(skewed) {
		t.Fatal("a Lease first seen on this scan counted late")
	}
	if rt, at, ok := f.d.ObservedRenewal(skewed); !ok || !at.Equal(now) || !rt.Equal(now.Add(-time.Hour)) {
		t.Errorf("ObservedRenewal(%s) = %s, %s, %t; want renewTime %s observed at %s", skewed, rt, at, ok, now.Add(-time.Hour), now)
	}
	// 25s on: the skewed node renewed (its clock still an hour behind), the
	// stopped one did not.
	for range 5 {
		f.clock.Step(5 * time.Second)
		f.renewUnseen(time.Hour, skewed)
		f.renewUnseen(0, clusterNodes(2, 9)...)
		f.scan()
	}
	if f.d.Late(skewed) {
		t.Error("a node renewing on time with its clock an hour behind counted late")
	}
	if !f.d.Late(stopped) {
		t.Error("a node that stopped renewing 25s ago is not late")
	}
	if _, at, _ := f.d.ObservedRenewal(stopped); !at.Equal(now) {
		t.Errorf("ObservedRenewal(%s) observed at %s, want the first scan %s", stopped, at, now)
	}
	if _, _, ok := f.d.ObservedRenewal("no-such-node"); ok {
		t.Error("ObservedRenewal of a node without a Lease is ok")
	}
}

// LateAgentsOnTime counts the late nodes whose agents report on time;
// SameFault is their kubelets' shared fatal line.
func TestClusterDetectorLateAgentsAndSameFault(t *testing.T) {
	const swap = `E1202 10:00:01.123 4321 run.go:74] "command failed" err="failed to run Kubelet: running with swap on is not supported, please disable swap!"`
	for _, tc := range []struct {
		name string
		// setup makes some of the 10 nodes late, with reports.
		setup                func(f *clusterFixture)
		wantLate, wantOnTime int
		wantFaultNodes       int
		wantCause            v1alpha1.Cause // "" for no ClusterDiagnosis
		wantDegraded         bool
	}{
		{"control plane: 4 late, agents silent", func(f *clusterFixture) {
			f.renew(time.Minute, clusterNodes(0, 4)...)
			f.agentReport(10*time.Minute, withLog(kubeletActive, "E1202 10:00:01 lease.go:250] failed to update lease"), clusterNodes(0, 4)...)
		}, 4, 0, 0, v1alpha1.CauseControlPlaneDegraded, true},
		{"fleet: 4 crash-looping kubelets (activating), agents on time: not late, a reason of their own", func(f *clusterFixture) {
			f.renew(time.Minute, clusterNodes(0, 4)...)
			for i, n := range clusterNodes(0, 4) {
				// The same line differing in timestamps and PIDs.
				f.agentReport(10*time.Second, withLog(kubeletActivating, strings.Replace(swap, "4321", fmt.Sprint(4000+i), 1)), n)
			}
		}, 0, 0, 4, v1alpha1.CauseFleetNodeFault, false},
		{"fleet: 3 kubelets down (not late), same line", func(f *clusterFixture) {
			f.renew(time.Minute, clusterNodes(0, 3)...)
			f.agentReport(10*time.Second, withLog(kubeletFailed, swap), clusterNodes(0, 3)...)
		}, 0, 0, 3, v1alpha1.CauseFleetNodeFault, false},
		{"fleet below the threshold: 2 kubelets down", func(f *clusterFixture) {
			f.renew(time.Minute, clusterNodes(0, 2)...)
			f.agentReport(10*time.Second, withLog(kubeletFailed, swap), clusterNodes(0, 2)...)
		}, 0, 0, 2, "", false},
		{"control plane wins: 6 late with silent agents, 3 crash-looping", func(f *clusterFixture) {
			f.renew(time.Minute, clusterNodes(0, 9)...)
			f.agentReport(10*time.Minute, kubeletActive, clusterNodes(0, 6)...)
			f.agentReport(10*time.Second, withLog(kubeletActivating, swap), clusterNodes(6, 9)...)
		}, 6, 0, 3, v1alpha1.CauseControlPlaneDegraded, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newClusterFixture(t, 10)
			tc.setup(f)
			f.scan()
			st := f.d.State()
			if st.Late != tc.wantLate || st.LateAgentsOnTime == nil || *st.LateAgentsOnTime != tc.wantOnTime ||
				st.SameFaultNodes != tc.wantFaultNodes || st.Degraded != tc.wantDegraded {
				t.Errorf("State = late %d, on time %v, same fault %d, degraded %t; want %d, %d, %d, %t",
					st.Late, ptr.Deref(st.LateAgentsOnTime, -1), st.SameFaultNodes, st.Degraded, tc.wantLate, tc.wantOnTime, tc.wantFaultNodes, tc.wantDegraded)
			}
			if tc.wantFaultNodes > 0 && st.SameFault != FatalSignature(&v1alpha1.UnitState{Logs: []v1alpha1.LogLine{{Text: swap}}}) {
				t.Errorf("SameFault = %q, want the folded swap line", st.SameFault)
			}
			cd, ok := f.diagnosis()
			switch {
			case tc.wantCause == "" && ok:
				t.Errorf("ClusterDiagnosis %+v, want none", cd.Status)
			case tc.wantCause != "" && !ok:
				t.Errorf("no ClusterDiagnosis, want %s", tc.wantCause)
			case ok && (len(cd.Status.Causes) != 1 || cd.Status.Causes[0].Cause != tc.wantCause):
				t.Errorf("ClusterDiagnosis causes %+v, want only %s", cd.Status.Causes, tc.wantCause)
			case ok && tc.wantCause == v1alpha1.CauseFleetNodeFault && !strings.Contains(cd.Status.Summary, "please disable swap"):
				t.Errorf("fleet summary %q does not quote the shared line", cd.Status.Summary)
			}
		})
	}
}

// A fleet fault found while the control plane is called degraded replaces
// it at once (no Hold): the two never stand together; when the fault is
// gone the ClusterDiagnosis goes.
func TestClusterDetectorFleetReplacesControlPlane(t *testing.T) {
	const line = `E1202 10:00:01.000 1 server.go:302] "Failed to run kubelet" err="failed to load kubelet config file, path: /var/lib/kubelet/config.yaml"`
	f := newClusterFixture(t, 10)
	f.renew(time.Minute, clusterNodes(0, 4)...)
	f.scan()
	if st := f.d.State(); !st.Degraded {
		t.Fatalf("State %+v, want degraded (no agents)", st)
	}
	f.requeued()
	f.clock.Step(time.Second)
	f.agentReport(time.Second, withLog(kubeletActivating, line), clusterNodes(0, 4)...)
	f.scan()
	if st := f.d.State(); st.Degraded || st.SameFaultNodes != 4 {
		t.Errorf("State %+v, want not degraded, 4 nodes sharing the fault", st)
	}
	if cd, ok := f.diagnosis(); !ok || len(cd.Status.Causes) != 1 || cd.Status.Causes[0].Cause != v1alpha1.CauseFleetNodeFault {
		t.Errorf("ClusterDiagnosis %+v, want FleetNodeFault only", cd)
	}
	if got := f.requeued(); !slices.Equal(got, clusterNodes(0, 4)) {
		t.Errorf("requeued %v, want the fleet's nodes", got)
	}
	// Fixed: the Leases are renewed.
	f.clock.Step(time.Second)
	f.renew(0, clusterNodes(0, 10)...)
	f.scan()
	if _, ok := f.diagnosis(); ok {
		t.Error("ClusterDiagnosis kept after the fleet fault was fixed")
	}
	if st := f.d.State(); st.Degraded || st.SameFaultNodes != 0 {
		t.Errorf("State %+v after the fix, want clear", st)
	}
}
