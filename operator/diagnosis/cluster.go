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
	"k8s.io/utils/ptr"
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
	// fleet: a fleet node fault stands; lastFleet are the nodes sharing it.
	fleet      bool
	fleetStart time.Time
	lastFleet  []string
	// observed is, per node, the Lease renewTime last seen and when it was
	// first seen (ObservedRenewal); its own lock, as the controller's workers
	// read it while a scan runs.
	obsMu    sync.RWMutex
	observed map[string]observation
	scans    uint64
	// lastPublish is when the ClusterDiagnosis was last written; while the
	// cluster stays degraded its counts are refreshed at most every
	// publishEvery (they move with every scan in a storm).
	lastPublish time.Time
}

// publishEvery bounds how often the counts of a standing ClusterDiagnosis
// are rewritten.
const publishEvery = 10 * time.Second

// DefaultMinNodes and DefaultFraction: at least this many nodes, and this
// fraction of all, make a cluster-wide pattern (late heartbeats, a shared
// fault). The snapshot's and the fleet rule's reading of counts use them.
const (
	DefaultMinNodes = 3
	DefaultFraction = 0.2
)

// NewClusterDetector returns a detector with the defaults: 3 nodes and 20%,
// a 2-minute hold, a scan every 500ms (a stale Lease is seen within half a
// second of turning stale; a scan reads the cache, no API request).
func NewClusterDetector(c client.Client, clk clock.Clock, rec events.EventRecorder, th Thresholds) *ClusterDetector {
	return &ClusterDetector{Client: c, Clock: clk, Recorder: rec, Thresholds: th,
		MinNodes: DefaultMinNodes, Fraction: DefaultFraction, Hold: 2 * time.Minute, Interval: 500 * time.Millisecond,
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

// observation is when the detector first saw a Lease's renewTime.
type observation struct {
	renew, at time.Time
	scan      uint64 // the scan that last saw the Lease, to forget deleted ones
}

// ObservedRenewal is the Lease's renewTime the detector last saw and when, by
// its own clock, it first saw it. Staleness measured from observedAt does not
// depend on the node's clock: a node whose clock is an hour behind still
// renews every 10s, and every renewal changes renewTime. ok is false before
// the first scan that saw the node's Lease.
func (d *ClusterDetector) ObservedRenewal(node string) (renewTime, observedAt time.Time, ok bool) {
	d.obsMu.RLock()
	defer d.obsMu.RUnlock()
	o, ok := d.observed[node]
	return o.renew, o.at, ok
}

// observe records the renewTimes of one scan and returns, per Lease, when
// its renewTime was first seen. A renewTime seen for the first time counts
// as seen now, also on the first scan after the operator started: for one
// LeaseStaleAfter after a restart every Lease looks fresh. That is the safe
// direction (a node is called late 20s later than it could be, never early).
func (d *ClusterDetector) observe(leases []coordinationv1.Lease, now time.Time) []time.Time {
	d.obsMu.Lock()
	defer d.obsMu.Unlock()
	if d.observed == nil {
		d.observed = make(map[string]observation, len(leases))
	}
	d.scans++
	at := make([]time.Time, len(leases))
	for i := range leases {
		rt := leases[i].Spec.RenewTime
		if rt == nil {
			continue
		}
		o, ok := d.observed[leases[i].Name]
		if !ok || !o.renew.Equal(rt.Time) {
			o = observation{renew: rt.Time, at: now}
		}
		o.scan = d.scans
		d.observed[leases[i].Name] = o
		at[i] = o.at
	}
	for n, o := range d.observed {
		if o.scan != d.scans {
			delete(d.observed, n)
		}
	}
	return at
}

// staleNode is what the detector reads about a node whose Lease is stale,
// from its cached NodeReport.
type staleNode struct {
	name string
	// agentOnTime: the agent reported within AgentSilentAfter intervals,
	// and after the node's heartbeats had gone stale.
	agentOnTime bool
	// kubeletDown: the agent (on time) says the kubelet unit is stopped.
	kubeletDown bool
	// fatal is the kubelet's newest journal line, numbers folded, when the
	// kubelet is not active and the agent is on time; "" otherwise.
	fatal string
}

// Scan counts late heartbeats once. The list is read from the informer's
// store without copies: the work is one pass over the Leases, a few
// microseconds per thousand nodes, and no API request; the NodeReports are
// read (from the cache) for the nodes whose Lease is stale only.
func (d *ClusterDetector) Scan(ctx context.Context) error {
	leases := &coordinationv1.LeaseList{}
	if err := d.Client.List(ctx, leases, client.InNamespace(NodeLeaseNamespace), client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	now := d.Clock.Now()
	observedAt := d.observe(leases.Items, now)
	var late []string
	lateSet := make(map[string]bool)
	lateAgentsOnTime := 0
	// faults counts the shared kubelet fatal lines over the nodes with a
	// stale Lease and an agent on time, late or not: a bad config rolled out
	// to a third of the nodes crash-loops their kubelets, which keeps them
	// out of "late" (no evidence against the control plane) but is a fleet
	// fault all the same.
	faults := map[string][]string{}
	for i := range leases.Items {
		if observedAt[i].IsZero() || now.Sub(observedAt[i]) < d.Thresholds.LeaseStaleAfter {
			continue
		}
		sn := d.readStale(ctx, leases.Items[i].Name, observedAt[i], now)
		if sn.fatal != "" {
			faults[sn.fatal] = append(faults[sn.fatal], sn.name)
		}
		if sn.kubeletDown {
			continue
		}
		late = append(late, sn.name)
		lateSet[sn.name] = true
		if sn.agentOnTime {
			lateAgentsOnTime++
		}
	}
	sort.Strings(late)
	total := len(leases.Items)
	fault, faultNodes := commonFault(faults)
	fleet := len(faultNodes) >= d.MinNodes && float64(len(faultNodes)) >= d.Fraction*float64(total)
	// Most late nodes' agents getting through after their heartbeats went
	// stale contradict an outage: not the control plane (then a fleet
	// fault, or hung kubelets). Once degraded, Hold carries the state over
	// the moment the writes resume, when the agents get through first.
	over := len(late) >= d.MinNodes && float64(len(late)) >= d.Fraction*float64(total) && 2*lateAgentsOnTime <= len(late)
	// The fleet fault wins over the control plane when most late nodes'
	// agents report on time through the same apiserver: a control-plane
	// outage (or a partition) would silence them too. The two never stand
	// together.
	fleetWins := fleet && 2*lateAgentsOnTime >= len(late)
	if fleetWins {
		over = false
	} else {
		fleet = false
	}

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
	prevFleet := d.fleet
	if over {
		d.lastOver = now
		if !prev.Degraded {
			d.state.Since = now
		}
		d.state.Degraded = true
	} else if prev.Degraded && (fleetWins || now.Sub(d.lastOver) >= d.Hold) {
		d.state = ClusterState{}
	}
	if fleet && !prevFleet {
		d.fleetStart = now
	}
	d.fleet = fleet
	d.state.Late, d.state.Total = len(late), total
	d.state.LateAgentsOnTime = &lateAgentsOnTime
	d.state.SameFault, d.state.SameFaultNodes = fault, len(faultNodes)
	cur := d.state
	fleetSince := d.fleetStart
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
	fleetFlipped := fleet != prevFleet
	var fleetRequeue []string
	if fleetFlipped {
		// The nodes sharing the fault (or that shared it) follow the verdict.
		fleetRequeue = append(d.lastFleet, faultNodes...)
	}
	if fleet {
		d.lastFleet = faultNodes
	} else {
		d.lastFleet = nil
	}
	d.mu.Unlock()

	log := klog.FromContext(ctx)
	if flipped {
		if cur.Degraded {
			log.Info("Control plane degraded: many nodes' heartbeats are late at once", "late", len(late), "total", total)
		} else {
			log.Info("Control plane recovered: heartbeats on time again")
		}
	} else {
		requeue = nil
	}
	if fleetFlipped {
		if fleet {
			log.Info("Fleet node fault: many nodes' kubelets fail with the same error", "nodes", len(faultNodes), "total", total, "fault", fault)
		} else {
			log.Info("Fleet node fault over")
		}
	}
	d.requeue(slices.Compact(slices.Sorted(slices.Values(append(append(requeue, edges...), fleetRequeue...)))))
	if len(edges) > 0 {
		select {
		case d.Changed <- event.GenericEvent{Object: &corev1.Node{}}:
		default: // one pending notice is enough
		}
	}
	switch {
	case fleet:
		return d.publish(ctx, cur, v1alpha1.CauseFleetNodeFault, fleetSince, faultNodes)
	case flipped || cur.Degraded:
		return d.publish(ctx, cur, v1alpha1.CauseControlPlaneDegraded, time.Time{}, late)
	case fleetFlipped:
		return d.publish(ctx, cur, "", time.Time{}, nil) // the fleet fault is over: delete
	}
	return nil
}

// commonFault is the most common fatal line and the nodes sharing it
// (sorted); ties go to the line that sorts first, so the verdict is stable.
func commonFault(faults map[string][]string) (string, []string) {
	var line string
	var nodes []string
	for l, ns := range faults {
		if len(ns) > len(nodes) || len(ns) == len(nodes) && l < line {
			line, nodes = l, ns
		}
	}
	slices.Sort(nodes)
	return line, nodes
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

// readStale reads the cached NodeReport of a node whose Lease is stale. A
// node whose agent (on time) says its kubelet is stopped has a stale Lease
// for a reason of its own: it is no evidence against the control plane.
func (d *ClusterDetector) readStale(ctx context.Context, node string, renewSeen, now time.Time) staleNode {
	sn := staleNode{name: node}
	rep := &v1alpha1.NodeReport{}
	if err := d.Client.Get(ctx, client.ObjectKey{Name: node}, rep); err != nil {
		return sn
	}
	st := &rep.Status
	if st.HeartbeatTime.IsZero() || now.Sub(agentHeartbeat(st)) >= time.Duration(d.Thresholds.AgentSilentAfter)*st.ReportInterval.Duration {
		return sn
	}
	// On time means the agent got a write through after the kubelet's
	// heartbeats had gone stale: an agent whose last report is merely
	// recent may have been cut off with its kubelet (seed 003).
	sn.agentOnTime = agentHeartbeat(st).After(renewSeen.Add(d.Thresholds.LeaseStaleAfter))
	u, ok := st.Unit(v1alpha1.UnitKubelet)
	if !ok {
		return sn
	}
	if !u.Active() {
		sn.fatal = FatalSignature(&u)
	}
	// A kubelet its agent reports stopped, or exiting on an error of its
	// own, explains its stale Lease.
	sn.kubeletDown = isDown(&u) || sn.fatal != ""
	return sn
}

// publish keeps the ClusterDiagnosis in line with the verdict (cause: the
// cluster's cause, "" for none; nodes: the nodes behind it), writing only
// when it changed.
func (d *ClusterDetector) publish(ctx context.Context, st ClusterState, cause v1alpha1.Cause, fleetSince time.Time, nodes []string) error {
	cd := &v1alpha1.ClusterDiagnosis{}
	err := d.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.ClusterDiagnosisName}, cd)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if cause == "" || cause == v1alpha1.CauseControlPlaneDegraded && !st.Degraded {
		if exists {
			return client.IgnoreNotFound(d.Client.Delete(ctx, cd))
		}
		return nil
	}
	sample := nodes
	if len(sample) > 20 {
		sample = sample[:20]
	}
	want := v1alpha1.ClusterDiagnosisStatus{LateNodes: int32(st.Late), TotalNodes: int32(st.Total), SampleNodes: sample,
		SameFault: st.SameFault, SameFaultNodes: int32(st.SameFaultNodes)}
	if st.LateAgentsOnTime != nil {
		want.LateAgentsOnTime = ptr.To(int32(*st.LateAgentsOnTime))
	}
	if cause == v1alpha1.CauseFleetNodeFault {
		onTime := 0
		if st.LateAgentsOnTime != nil {
			onTime = *st.LateAgentsOnTime
		}
		want.Summary = fmt.Sprintf("FleetNodeFault: %d of %d nodes' kubelets fail with the same error while their agents report on time "+
			"(not the control plane): %q; a change rolled out to these nodes (a config, an image, a package) is the likely cause: "+
			"a person must fix it, nothing is touched on the nodes", st.SameFaultNodes, st.Total, st.SameFault)
		want.Causes = []v1alpha1.DiagnosedCause{{Cause: v1alpha1.CauseFleetNodeFault, Since: metav1.NewTime(fleetSince.Truncate(time.Second)),
			Evidence: []v1alpha1.Evidence{
				{Source: SourceCluster, Supports: true, Message: fmt.Sprintf("%d of %d nodes' kubelets (not running, agents on time) last logged the same line: %s (threshold: %d nodes and %.0f%%)",
					st.SameFaultNodes, st.Total, st.SameFault, d.MinNodes, d.Fraction*100)},
				{Source: SourceCluster, Supports: true, Message: fmt.Sprintf("%d of the %d nodes with late heartbeats have agents reporting on time through the apiserver", onTime, st.Late)},
			}}}
	} else {
		want.Summary = fmt.Sprintf("ControlPlaneDegraded: %d of %d nodes' heartbeats late at once; the nodes themselves are not at fault: "+
			"either the control plane is overloaded (check etcd and the apiserver) or these nodes are cut off from it "+
			"(a network partition, e.g. a zone: check the network between the late nodes in sampleNodes and the control plane)", st.Late, st.Total)
		want.Causes = []v1alpha1.DiagnosedCause{{Cause: v1alpha1.CauseControlPlaneDegraded, Since: metav1.NewTime(st.Since.Truncate(time.Second)),
			Evidence: []v1alpha1.Evidence{{Source: SourceCluster, Supports: true,
				Message: fmt.Sprintf("%d of %d node Leases not renewed for %s (threshold: %d nodes and %.0f%%)", st.Late, st.Total, d.Thresholds.LeaseStaleAfter, d.MinNodes, d.Fraction*100)}}}}
	}
	sameCause := exists && len(cd.Status.Causes) == 1 && cd.Status.Causes[0].Cause == cause
	if sameCause {
		if cd.Status.LateNodes == want.LateNodes && cd.Status.TotalNodes == want.TotalNodes && cd.Status.Summary == want.Summary &&
			cd.Status.SameFaultNodes == want.SameFaultNodes && ptr.Equal(cd.Status.LateAgentsOnTime, want.LateAgentsOnTime) {
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
	}
	if !sameCause {
		d.Recorder.Eventf(cd, nil, corev1.EventTypeWarning, string(cause), "Diagnose", "%s", want.Summary)
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
