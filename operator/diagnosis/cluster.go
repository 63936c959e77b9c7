package diagnosis

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// ClusterDetector tells a control-plane fault from node faults (seed 003):
// every Interval it counts, from the cache, the node Leases that are stale;
// when at least MinNodes and at least Fraction of all nodes are late at
// once, the cluster is degraded and stays so until Hold has passed without
// that many. It publishes the state to the node diagnoses (State), keeps the
// ClusterDiagnosis object, and re-queues the late nodes whenever the state
// flips, so their diagnoses follow.
//
// It is also the one clock for stale Leases: a node whose Lease turns stale
// (or fresh again) is re-queued on the next scan, so no per-node timer is
// needed for healthy nodes, and Late tells the storm breaker which nodes'
// heartbeats have stopped before the controller-manager marks them.
type ClusterDetector struct {
	Client     client.Client
	Clock      clock.Clock
	Recorder   events.EventRecorder
	Thresholds Thresholds
	MinNodes   int
	Fraction   float64
	Hold       time.Duration
	Interval   time.Duration

	// Requeue receives the nodes whose Lease turned stale or fresh since
	// the last scan, and the late nodes when the state flips.
	Requeue chan event.GenericEvent
	// Changed receives an event whenever the set of late nodes changes (for
	// the storm breaker's counts).
	Changed chan event.GenericEvent

	mu       sync.Mutex
	state    ClusterState
	lastOver time.Time
	lastLate []string
	late     map[string]bool
	// lastPublish is when the ClusterDiagnosis was last written; while the
	// cluster stays degraded its counts are refreshed at most every
	// publishEvery (they move with every scan in a storm).
	lastPublish time.Time
}

// publishEvery bounds how often the counts of a standing ClusterDiagnosis
// are rewritten.
const publishEvery = 10 * time.Second

// NewClusterDetector returns a detector with the defaults: 3 nodes and 20%,
// a 2-minute hold, a scan every 500ms (a stale Lease is seen within half a
// second of turning stale; a scan reads the cache, no API request).
func NewClusterDetector(c client.Client, clk clock.Clock, rec events.EventRecorder, th Thresholds) *ClusterDetector {
	return &ClusterDetector{Client: c, Clock: clk, Recorder: rec, Thresholds: th,
		MinNodes: 3, Fraction: 0.2, Hold: 2 * time.Minute, Interval: 500 * time.Millisecond,
		Requeue: make(chan event.GenericEvent, 4096), Changed: make(chan event.GenericEvent, 1)}
}

// Late says whether the node's Lease was stale at the latest scan (and its
// agent did not explain it with a stopped kubelet).
func (d *ClusterDetector) Late(node string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.late[node]
}

// State is the latest cluster state.
func (d *ClusterDetector) State() ClusterState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// NeedLeaderElection: only the leader writes the ClusterDiagnosis.
func (d *ClusterDetector) NeedLeaderElection() bool { return true }

// Start scans until ctx ends.
func (d *ClusterDetector) Start(ctx context.Context) error {
	t := time.NewTicker(d.Interval)
	defer t.Stop()
	for {
		if err := d.Scan(ctx); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Scanning node leases failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Scan counts late heartbeats once. The list is read from the informer's
// store without copies: the work is one pass over the Leases, a few
// microseconds per thousand nodes, and no API request.
func (d *ClusterDetector) Scan(ctx context.Context) error {
	leases := &coordinationv1.LeaseList{}
	if err := d.Client.List(ctx, leases, client.InNamespace(NodeLeaseNamespace), client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	now := d.Clock.Now()
	var late []string
	lateSet := make(map[string]bool)
	for i := range leases.Items {
		rt := leases.Items[i].Spec.RenewTime
		if rt != nil && now.Sub(rt.Time) >= d.Thresholds.LeaseStaleAfter && !d.kubeletReportedDown(ctx, leases.Items[i].Name, now) {
			late = append(late, leases.Items[i].Name)
			lateSet[leases.Items[i].Name] = true
		}
	}
	sort.Strings(late)
	total := len(leases.Items)
	over := len(late) >= d.MinNodes && float64(len(late)) >= d.Fraction*float64(total)

	d.mu.Lock()
	// The nodes whose Lease turned stale or fresh since the last scan.
	var edges []string
	for n := range lateSet {
		if !d.late[n] {
			edges = append(edges, n)
		}
	}
	for n := range d.late {
		if !lateSet[n] {
			edges = append(edges, n)
		}
	}
	d.late = lateSet
	prev := d.state
	if over {
		d.lastOver = now
		if !prev.Degraded {
			d.state.Since = now
		}
		d.state.Degraded = true
	} else if prev.Degraded && now.Sub(d.lastOver) >= d.Hold {
		d.state = ClusterState{}
	}
	d.state.Late, d.state.Total = len(late), total
	cur := d.state
	flipped := cur.Degraded != prev.Degraded
	requeue := late
	if flipped && !cur.Degraded {
		requeue = d.lastLate // the nodes that were late, to drop their cluster cause
		d.lastLate = nil
	}
	if cur.Degraded {
		// Every node late while degraded may carry the cluster cause: keep
		// them all, not the latest scan's, which is empty during the Hold.
		d.lastLate = slices.Compact(slices.Sorted(slices.Values(append(d.lastLate, late...))))
	}
	d.mu.Unlock()

	if flipped {
		log := klog.FromContext(ctx)
		if cur.Degraded {
			log.Info("Control plane degraded: many nodes' heartbeats are late at once", "late", len(late), "total", total)
		} else {
			log.Info("Control plane recovered: heartbeats on time again")
		}
	} else {
		requeue = nil
	}
	d.requeue(slices.Compact(slices.Sorted(slices.Values(append(requeue, edges...)))))
	if len(edges) > 0 {
		select {
		case d.Changed <- event.GenericEvent{Object: &corev1.Node{}}:
		default: // one pending notice is enough
		}
	}
	if flipped || cur.Degraded {
		return d.publish(ctx, cur, late)
	}
	return nil
}

// requeue hands the nodes to the diagnosis controller.
func (d *ClusterDetector) requeue(nodes []string) {
	for _, n := range nodes {
		select {
		case d.Requeue <- event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}}:
		default: // a full queue means the controller is behind; its own events will catch up
		}
	}
}

// kubeletReportedDown: a node whose agent says its kubelet is stopped has a
// stale Lease for a reason of its own; it is no evidence against the control
// plane. (Read from the cache for late nodes only.)
func (d *ClusterDetector) kubeletReportedDown(ctx context.Context, node string, now time.Time) bool {
	rep := &v1alpha1.NodeReport{}
	if err := d.Client.Get(ctx, client.ObjectKey{Name: node}, rep); err != nil {
		return false
	}
	st := rep.Status
	if now.Sub(st.HeartbeatTime.Time) >= time.Duration(d.Thresholds.AgentSilentAfter)*st.ReportInterval.Duration {
		return false
	}
	u, ok := st.Unit(v1alpha1.UnitKubelet)
	return ok && isDown(&u)
}

// publish keeps the ClusterDiagnosis in line with the state, writing only
// when it changed.
func (d *ClusterDetector) publish(ctx context.Context, st ClusterState, late []string) error {
	cd := &v1alpha1.ClusterDiagnosis{}
	err := d.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.ClusterDiagnosisName}, cd)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if !st.Degraded {
		if exists {
			return client.IgnoreNotFound(d.Client.Delete(ctx, cd))
		}
		return nil
	}
	sample := late
	if len(sample) > 20 {
		sample = sample[:20]
	}
	want := v1alpha1.ClusterDiagnosisStatus{
		LateNodes: int32(st.Late), TotalNodes: int32(st.Total), SampleNodes: sample,
		Summary: fmt.Sprintf("ControlPlaneDegraded: %d of %d nodes' heartbeats late at once; the nodes themselves are not at fault: "+
			"either the control plane is overloaded (check etcd and the apiserver) or these nodes are cut off from it "+
			"(a network partition, e.g. a zone: check the network between the late nodes in sampleNodes and the control plane)", st.Late, st.Total),
		Causes: []v1alpha1.DiagnosedCause{{Cause: v1alpha1.CauseControlPlaneDegraded, Since: metav1.NewTime(st.Since.Truncate(time.Second)),
			Evidence: []v1alpha1.Evidence{{Source: SourceCluster, Supports: true,
				Message: fmt.Sprintf("%d of %d node Leases not renewed for %s (threshold: %d nodes and %.0f%%)", st.Late, st.Total, d.Thresholds.LeaseStaleAfter, d.MinNodes, d.Fraction*100)}}}},
	}
	if exists && len(cd.Status.Causes) == 1 {
		if cd.Status.LateNodes == want.LateNodes && cd.Status.TotalNodes == want.TotalNodes {
			return nil
		}
		if d.Clock.Since(d.lastPublish) < publishEvery {
			return nil // counts only: refreshed at most every publishEvery
		}
	}
	if !exists {
		cd = &v1alpha1.ClusterDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ClusterDiagnosisName}}
		if err := d.Client.Create(ctx, cd); err != nil {
			return err
		}
		d.Recorder.Eventf(cd, nil, corev1.EventTypeWarning, "ControlPlaneDegraded", "Diagnose", "%s", want.Summary)
	}
	before := cd.DeepCopy()
	cd.Status = want
	// A merge patch: this detector is the object's only writer, so no
	// optimistic lock (a stale cached copy must not fail the write).
	if err := d.Client.Status().Patch(ctx, cd, client.MergeFrom(before)); err != nil {
		return err
	}
	d.lastPublish = d.Clock.Now()
	return nil
}
