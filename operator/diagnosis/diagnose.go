// Package diagnosis turns what the cluster and the node agent say about a node
// into a ranked list of causes, each with the evidence for and against it,
// and keeps that diagnosis as a NodeDiagnosis object while the node is
// unhealthy. Diagnose is pure; the controller only gathers its inputs from
// the cache and writes its result when it changes.
package diagnosis

import (
	"fmt"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Evidence sources.
const (
	SourceNodeCondition = "NodeCondition"
	SourceLease         = "Lease"
	SourceNodeReport    = "NodeReport"
	SourceEvent         = "Event"
	SourceCluster       = "Cluster"
)

// Thresholds tune how the evidence is read.
type Thresholds struct {
	// LeaseStaleAfter: a node Lease not renewed for this long means the
	// kubelet's heartbeats stopped. The kubelet renews every 10s; two missed
	// renewals is a stop, not jitter.
	LeaseStaleAfter time.Duration
	// StormSettle: causes read from stopped heartbeats alone (KubeletHung,
	// NodeUnreachable) wait until the Lease has been stale this much longer.
	// In a control-plane storm every kubelet stops renewing at once, but
	// their renewals are spread over the 10s renew interval, so the nodes
	// turn stale one by one within 10s; by then the cluster detector has
	// seen them all and none of them gets a node-level cause (seed 003).
	StormSettle time.Duration
	// AgentSilentAfter is how many report intervals may pass without a
	// NodeReport write before the agent counts as silent.
	AgentSilentAfter int
	// MemoryAvailableLow: MemAvailable below this fraction of MemTotal is
	// memory exhaustion.
	MemoryAvailableLow float64
	// RecentOOM: a system OOM kill this recent counts.
	RecentOOM time.Duration
	// PIDsHigh: threads above this fraction of pid_max is PID exhaustion.
	PIDsHigh float64
	// DiskFreeLow and InodesFreeLow: free fractions below these are disk pressure.
	DiskFreeLow, InodesFreeLow float64
	// ClockSkewLimit: a node clock further than this from the apiserver's
	// (the agent's measure) or from nodeward's (a Lease renewal stamped
	// that far from when it arrived) is skewed.
	ClockSkewLimit time.Duration
	// CrashLoopRepeats and CrashLoopWindow: a unit that exited this many
	// times within the window with the same fatal line exits on its own.
	CrashLoopRepeats int
	CrashLoopWindow  time.Duration
	// PodFailures: this many distinct pods failing to start on a node is
	// a node-level failure, and RecentPodFailure how recent they must be.
	PodFailures      int
	RecentPodFailure time.Duration
}

// DefaultThresholds are used unless the operator is told otherwise.
func DefaultThresholds() Thresholds {
	return Thresholds{
		LeaseStaleAfter: 20 * time.Second, StormSettle: 10 * time.Second, AgentSilentAfter: 3,
		MemoryAvailableLow: 0.05, RecentOOM: 10 * time.Minute, PIDsHigh: 0.9,
		DiskFreeLow: 0.10, InodesFreeLow: 0.05,
		ClockSkewLimit: 30 * time.Second, CrashLoopRepeats: 3, CrashLoopWindow: 10 * time.Minute,
		PodFailures: 2, RecentPodFailure: 15 * time.Minute,
	}
}

// ClusterState is the cluster-wide view the diagnosis of one node needs: how
// many nodes' heartbeats are late at once.
type ClusterState struct {
	// Degraded: so many nodes' heartbeats are late at once that the control
	// plane, not the nodes, is the likely cause (seed 003).
	Degraded bool
	// Late and Total count nodes with stale Leases and all nodes.
	Late, Total int
	// LateAgentsOnTime is how many of the late nodes have an agent that
	// reports on time through the same apiserver (nil: not known). Agents
	// that get through contradict a control-plane outage.
	LateAgentsOnTime *int
	// SameFault is node-level evidence many nodes share right now (e.g.
	// the same kubelet fatal line), and SameFaultNodes how many share it.
	SameFault      string
	SameFaultNodes int
	// Since is when the cluster turned degraded.
	Since time.Time
}

// Input is everything Diagnose reads about one node.
type Input struct {
	Node   *corev1.Node
	Lease  *coordinationv1.Lease         // nil when the node has none
	Report *v1alpha1.NodeReport          // nil when the agent never reported
	Prev   *v1alpha1.NodeDiagnosisStatus // the previous diagnosis, for since-times
	// LeaseObservedAt is when nodeward saw the Lease's current renewTime
	// arrive, by its own clock (nil: not known). Heartbeat staleness is
	// measured from it, never from the time the node wrote.
	LeaseObservedAt *time.Time
	// Events are the Events about the Node.
	Events []corev1.Event
	// PodEvents are sandbox and container creation failures of pods on
	// the node, bounded and deduplicated.
	PodEvents []corev1.Event
	Cluster   ClusterState
	Now       time.Time
	// Unknown holds what is not known (Snapshot's UnknownPaths): missing
	// evidence, never a default value.
	Unknown map[string]bool
}

// Result is a diagnosis.
type Result struct {
	Status v1alpha1.NodeDiagnosisStatus
	// Unhealthy is true when the node needs a NodeDiagnosis object: it has a
	// cause, or it is not Ready.
	Unhealthy bool
	// Suspect is true when the agent reports a unit down on a node that is not
	// yet unhealthy (the heartbeats may go stale at RecheckAfter), or when
	// the Lease is stale on a node still Ready (the agent may go silent).
	Suspect bool
	// RecheckAfter, when non-zero, is when the diagnosis may change through
	// the passage of time alone (a Lease turning stale, an agent going silent).
	RecheckAfter time.Duration
}

// hbState is what is known of the kubelet's heartbeats.
type hbState int

const (
	hbUnknown hbState = iota // neither a Lease nor a Ready condition is known
	hbFresh
	hbStopped
)

type facts struct {
	in    Input
	th    Thresholds
	ready *corev1.NodeCondition
	conds map[corev1.NodeConditionType]*corev1.NodeCondition
	// condsKnown: the node's conditions are known (a snapshot may not know them).
	condsKnown bool
	probes     *v1alpha1.NodeProbes
	// agentAlive: the agent's last report is recent; reportKnown: its
	// content may be read (alive, or a snapshot that does not know when
	// it was written); agentSilent: known to be silent.
	agentAlive, reportKnown, agentSilent bool
	agentAge                             time.Duration
	leaseAge                             time.Duration
	leaseKnown                           bool
	// leaseByNodeClock: the age was measured from the time the node wrote
	// (no observation time known), so a skewed clock distorts it.
	leaseByNodeClock bool
	// skew is the node clock's offset, when known (agent probe or Lease).
	skew      time.Duration
	skewKnown bool
	kubelet   *v1alpha1.UnitState
	runtime   *v1alpha1.UnitState
	recheck   time.Duration
	checks    []v1alpha1.Evidence
	// detail of the cause being matched (set by its rule).
	detail string
}

// Diagnose reads the node's conditions, its Lease, its Events, its pods'
// failures and its agent's report.
func Diagnose(in Input, th Thresholds) Result {
	f := gather(in, th)
	var causes []v1alpha1.DiagnosedCause
	found := map[v1alpha1.Cause]bool{}
	for _, rule := range rules {
		f.detail = ""
		if ev, ok := rule.match(f, found); ok {
			found[rule.cause] = true
			causes = append(causes, v1alpha1.DiagnosedCause{Cause: rule.cause, Detail: f.detail, Since: f.since(rule.cause), Evidence: capEvidence(ev)})
		}
	}
	res := Result{RecheckAfter: f.recheck}
	res.Status.Causes = causes
	res.Status.Checks = capEvidence(f.checks)
	res.Unhealthy = f.ready == nil && f.condsKnown || f.ready != nil && f.ready.Status != corev1.ConditionTrue
	for _, c := range causes {
		res.Unhealthy = res.Unhealthy || c.Cause != v1alpha1.CauseOldSystemd && c.Cause != v1alpha1.CauseCgroupDriverMismatch
	}
	// A stale Lease on a node still marked Ready is suspect too: the agent
	// may go silent (NodeUnreachable) before the controller-manager marks the
	// node, so look again when that can change.
	res.Suspect = (f.kubelet != nil && isDown(f.kubelet)) || (f.runtime != nil && isDown(f.runtime)) ||
		(f.ready != nil && f.ready.Status == corev1.ConditionTrue && f.leaseKnown && f.leaseAge >= th.LeaseStaleAfter)
	res.Status.Summary = summary(f, causes)
	return res
}

// agentHeartbeat is when the agent last reported, by the apiserver's
// clock: the agent stamps its report with the node's clock, corrected here
// by the offset the agent measured.
// An offset under 2s is below what the measure can tell (the Date
// header's one-second resolution, read up to a second high) and is not
// applied: it would judge an agent silent up to a second early.
func agentHeartbeat(st *v1alpha1.NodeReportStatus) time.Time {
	t := st.HeartbeatTime.Time
	if p := st.Probes; p != nil && p.Clock != nil && p.Clock.OffsetMilli != nil {
		if off := time.Duration(*p.Clock.OffsetMilli) * time.Millisecond; off.Abs() >= minClockOffset {
			t = t.Add(-off)
		}
	}
	return t
}

// minClockOffset is the smallest clock offset the agent's measure can tell.
const minClockOffset = 2 * time.Second

// knows says whether the input knows the path (Snapshot's UnknownPaths).
func (in *Input) knows(path string) bool {
	for p := path; p != ""; {
		if in.Unknown[p] {
			return false
		}
		i := strings.LastIndex(p, ".")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return true
}

func gather(in Input, th Thresholds) *facts {
	f := &facts{in: in, th: th, conds: map[corev1.NodeConditionType]*corev1.NodeCondition{}, condsKnown: in.knows(UnknownNodeConditions)}
	for i := range in.Node.Status.Conditions {
		c := &in.Node.Status.Conditions[i]
		f.conds[c.Type] = c
	}
	f.ready = f.conds[corev1.NodeReady]
	switch {
	case f.ready == nil && f.condsKnown:
		f.check(false, SourceNodeCondition, nil, "the node has no Ready condition: the kubelet never posted status")
	case f.ready == nil:
		f.check(false, SourceNodeCondition, nil, "the node's conditions are not known")
	default:
		f.check(f.ready.Status == corev1.ConditionTrue, SourceNodeCondition, &f.ready.LastTransitionTime,
			"Ready=%s since %s, reason %s: %s", f.ready.Status, f.ready.LastTransitionTime.UTC().Format(time.RFC3339), f.ready.Reason, f.ready.Message)
	}

	// The node clock's offset, measured by the agent against the apiserver.
	if in.Report != nil && in.Report.Status.Probes != nil && in.Report.Status.Probes.Clock != nil && in.Report.Status.Probes.Clock.OffsetMilli != nil {
		f.skew, f.skewKnown = time.Duration(*in.Report.Status.Probes.Clock.OffsetMilli)*time.Millisecond, true
	}

	if in.Lease != nil && in.Lease.Spec.RenewTime != nil {
		f.leaseKnown = true
		renew := in.Lease.Spec.RenewTime.Time
		t := metav1.NewTime(renew)
		if in.LeaseObservedAt != nil {
			// Measured by nodeward's clock: when the renewal arrived.
			f.leaseAge = in.Now.Sub(*in.LeaseObservedAt)
			if d := renew.Sub(*in.LeaseObservedAt); !f.skewKnown && (d > th.ClockSkewLimit || d < -th.ClockSkewLimit) {
				f.skew, f.skewKnown = d, true
			}
		} else {
			// Only the node's own stamp is known: correct it by the
			// node's known offset.
			f.leaseByNodeClock = true
			f.leaseAge = in.Now.Sub(renew.Add(-f.skew))
		}
		fresh := f.leaseAge < th.LeaseStaleAfter
		f.check(fresh, SourceLease, &t, "Lease %s/%s renewed %s ago (stale after %s)", in.Lease.Namespace, in.Lease.Name, round(f.leaseAge), th.LeaseStaleAfter)
		if fresh {
			f.recheckIn(th.LeaseStaleAfter - f.leaseAge)
		}
	} else if in.knows(UnknownLease) {
		f.check(false, SourceLease, nil, "the node has no Lease in kube-node-lease")
	}

	if in.Report != nil {
		st := &in.Report.Status
		interval := st.ReportInterval.Duration
		if interval <= 0 {
			interval = time.Minute
		}
		silentAfter := time.Duration(th.AgentSilentAfter) * interval
		switch {
		case st.HeartbeatTime.IsZero() || !in.knows(UnknownReportHeartbeat):
			f.reportKnown = true
			f.check(false, SourceNodeReport, nil, "node agent: when it last reported is not known")
		default:
			f.agentAge = in.Now.Sub(agentHeartbeat(st))
			f.agentAlive = f.agentAge < silentAfter
			f.agentSilent = !f.agentAlive
			f.reportKnown = f.agentAlive
			f.check(f.agentAlive, SourceNodeReport, &st.HeartbeatTime, "node agent %s: last report %s ago (silent after %s)",
				map[bool]string{true: "alive", false: "silent"}[f.agentAlive], round(f.agentAge), silentAfter)
			if f.agentAlive {
				f.recheckIn(silentAfter - f.agentAge)
			}
		}
		if f.reportKnown {
			if u, ok := st.Unit(v1alpha1.UnitKubelet); ok {
				f.kubelet = &u
				if u.ActiveState != "" {
					f.check(u.Active(), SourceNodeReport, u.Since, "%s", describeUnit(u))
				}
			}
			if u, ok := st.Unit(v1alpha1.UnitContainerRuntime); ok {
				f.runtime = &u
				if u.ActiveState != "" {
					f.check(u.Active(), SourceNodeReport, u.Since, "%s", describeUnit(u))
				}
			}
			if st.Probes != nil {
				f.probes = st.Probes
				f.probeChecks()
			}
		}
	} else if in.knows(UnknownReport) {
		f.check(false, SourceNodeReport, nil, "no report from the node agent: it is not installed or has never run on this node")
	}
	return f
}

func (f *facts) check(ok bool, source string, at *metav1.Time, format string, args ...any) {
	f.checks = append(f.checks, v1alpha1.Evidence{Source: source, Message: fmt.Sprintf(format, args...), ObservedAt: at, Supports: ok})
}

func (f *facts) recheckIn(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	if f.recheck == 0 || d < f.recheck {
		f.recheck = d
	}
}

// since carries the since-time of a cause over from the previous diagnosis.
func (f *facts) since(c v1alpha1.Cause) metav1.Time {
	if f.in.Prev != nil {
		if prev, ok := f.in.Prev.Cause(c); ok {
			return prev.Since
		}
	}
	return metav1.NewTime(f.in.Now.Truncate(time.Second))
}

// clockSkewed: the node's clock is known to be off by more than the limit.
func (f *facts) clockSkewed() bool {
	return f.skewKnown && (f.skew > f.th.ClockSkewLimit || f.skew < -f.th.ClockSkewLimit)
}

// heartbeats says what is known of the kubelet's heartbeats, with the
// evidence that they stopped: its Lease went stale, or the node lifecycle
// controller already said so (NodeStatusUnknown, or NodeStatusNeverUpdated
// for a kubelet that registered the Node and never posted its status).
func (f *facts) heartbeats() ([]v1alpha1.Evidence, hbState) {
	if f.leaseKnown && f.leaseAge < f.th.LeaseStaleAfter {
		// The kubelet renewed its Lease just now: it heartbeats. A
		// Ready=Unknown beside a fresh Lease is older news (the controller
		// lags, or the kubelet has just come back and its next status
		// update corrects it), not evidence of a stop.
		return nil, hbFresh
	}
	var ev []v1alpha1.Evidence
	if f.leaseKnown && f.leaseAge >= f.th.LeaseStaleAfter {
		t := metav1.NewTime(f.in.Lease.Spec.RenewTime.Time)
		clock := "by when nodeward saw it arrive"
		if f.leaseByNodeClock {
			clock = "by the time the node wrote"
		}
		ev = append(ev, v1alpha1.Evidence{Source: SourceLease, ObservedAt: &t, Supports: true,
			Message: fmt.Sprintf("Lease not renewed for %s, %s (the kubelet renews every 10s)", round(f.leaseAge), clock)})
	}
	if f.ready != nil && (f.ready.Reason == "NodeStatusUnknown" || f.ready.Reason == "NodeStatusNeverUpdated" || strings.Contains(f.ready.Message, "stopped posting node status")) {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeCondition, ObservedAt: &f.ready.LastTransitionTime, Supports: true,
			Message: fmt.Sprintf("Ready=%s, reason %s: %s", f.ready.Status, f.ready.Reason, f.ready.Message)})
	}
	if len(ev) > 0 {
		return ev, hbStopped
	}
	if f.leaseKnown || f.ready != nil || f.condsKnown && f.in.knows(UnknownLease) {
		return nil, hbFresh
	}
	return nil, hbUnknown
}

// heartbeatsStopped is heartbeats for the rules that need a known stop.
func (f *facts) heartbeatsStopped() ([]v1alpha1.Evidence, bool) {
	ev, st := f.heartbeats()
	return ev, st == hbStopped
}

// stormSettled says whether heartbeats stopped long enough ago (StormSettle
// past LeaseStaleAfter) for a node-level cause read from them alone; if not
// yet, it looks again when they have. A node marked NodeStatusUnknown by the
// controller-manager without a Lease has been silent for its grace period.
func (f *facts) stormSettled() bool {
	if !f.leaseKnown {
		return true
	}
	if wait := f.th.LeaseStaleAfter + f.th.StormSettle - f.leaseAge; wait > 0 {
		f.recheckIn(wait)
		return false
	}
	return true
}

type rule struct {
	cause v1alpha1.Cause
	// match returns the evidence for the cause; found holds the causes
	// already diagnosed by the rules before it.
	match func(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool)
}

// rules, in the cause table's ranking order (TestRulesFollowCauseTable):
// a fault many nodes share first, then what a person must fix on the node
// (nodeward's own actions would only repeat the failure), direct evidence
// of a broken component, resource exhaustion, then what heartbeats alone
// can tell, then the causes of a node that is Ready but broken.
var rules = []rule{
	{v1alpha1.CauseFleetNodeFault, fleetNodeFault},
	{v1alpha1.CauseClockSkew, clockSkew},
	{v1alpha1.CauseKubeletCertificateExpired, kubeletCertExpired},
	{v1alpha1.CauseKubeletCrashLoop, kubeletCrashLoop},
	{v1alpha1.CauseKubeletDown, kubeletDown},
	{v1alpha1.CauseContainerRuntimeDown, runtimeDown},
	{v1alpha1.CauseContainerRuntimeHung, runtimeHung},
	{v1alpha1.CauseMemoryExhausted, memoryExhausted},
	{v1alpha1.CausePIDExhausted, pidExhausted},
	{v1alpha1.CauseDiskPressure, diskPressure},
	{v1alpha1.CausePLEGUnhealthy, plegUnhealthy},
	{v1alpha1.CauseNetworkUnavailable, networkUnavailable},
	{v1alpha1.CauseControlPlaneDegraded, controlPlaneDegraded},
	{v1alpha1.CauseKubeletHung, kubeletHung},
	{v1alpha1.CauseNodeUnreachable, nodeUnreachable},
	{v1alpha1.CauseKernelDeadlock, kernelDeadlock},
	{v1alpha1.CauseReadonlyFilesystem, readonlyFilesystem},
	{v1alpha1.CausePodStartFailures, podStartFailures},
	{v1alpha1.CauseOldSystemd, oldSystemd},
	{v1alpha1.CauseCgroupDriverMismatch, cgroupDriverMismatch},
}

func unitEvidence(u *v1alpha1.UnitState) v1alpha1.Evidence {
	return v1alpha1.Evidence{Source: SourceNodeReport, ObservedAt: u.Since, Supports: true, Message: describeUnit(*u)}
}

func lineEvidence(l v1alpha1.LogLine, note string) v1alpha1.Evidence {
	msg := l.Source + ": " + l.Text
	if l.Repeats() > 1 {
		msg = fmt.Sprintf("%s (x%d)", msg, l.Repeats())
	}
	if note != "" {
		msg += " — " + note
	}
	return v1alpha1.Evidence{Source: SourceNodeReport, ObservedAt: l.Time, Supports: true, Message: msg}
}

func (f *facts) condEvidence(c *corev1.NodeCondition, supports bool) v1alpha1.Evidence {
	return v1alpha1.Evidence{Source: SourceNodeCondition, ObservedAt: &c.LastTransitionTime, Supports: supports,
		Message: fmt.Sprintf("%s=%s, reason %s: %s", c.Type, c.Status, c.Reason, c.Message)}
}

func eventEvidence(e corev1.Event, source string) v1alpha1.Evidence {
	var at *metav1.Time
	if t := eventTime(e); !t.IsZero() {
		mt := metav1.NewTime(t)
		at = &mt
	}
	subject := "Event"
	if e.InvolvedObject.Kind == "Pod" && e.InvolvedObject.Name != "" {
		subject = "Event on pod " + e.InvolvedObject.Namespace + "/" + e.InvolvedObject.Name
	}
	return v1alpha1.Evidence{Source: source, ObservedAt: at, Supports: true,
		Message: fmt.Sprintf("%s %s (x%d): %s", subject, e.Reason, max(e.Count, 1), e.Message)}
}

// condTrue returns the condition of that type if it is True.
func (f *facts) condTrue(t corev1.NodeConditionType) *corev1.NodeCondition {
	if c := f.conds[t]; c != nil && c.Status == corev1.ConditionTrue {
		return c
	}
	return nil
}

// readySays returns the Ready condition if it is not True and its message
// contains one of the fragments.
func (f *facts) readySays(fragments ...string) *corev1.NodeCondition {
	if f.ready == nil || f.ready.Status == corev1.ConditionTrue {
		return nil
	}
	if containsAny(f.ready.Message, fragments) {
		return f.ready
	}
	return nil
}

// unitLines returns the unit's journal lines that contain a fragment.
func unitLines(u *v1alpha1.UnitState, frags []string) []v1alpha1.LogLine {
	if u == nil {
		return nil
	}
	var out []v1alpha1.LogLine
	for _, l := range u.Logs {
		if containsAny(l.Text, frags) {
			out = append(out, l)
		}
	}
	return out
}

// nodeLines returns the lines of the kubelet's and the runtime's journal
// and of the kernel log that contain a fragment.
func (f *facts) nodeLines(frags []string) []v1alpha1.LogLine {
	out := append(unitLines(f.kubelet, frags), unitLines(f.runtime, frags)...)
	if f.probes != nil {
		for _, l := range f.probes.KernelLog {
			if containsAny(l.Text, frags) {
				out = append(out, l)
			}
		}
	}
	return out
}

// eventsSaying returns the Events about the Node, and the pod failures,
// whose reason or message contains a fragment.
func (f *facts) eventsSaying(frags []string) []v1alpha1.Evidence {
	var ev []v1alpha1.Evidence
	for _, e := range f.in.Events {
		if containsAny(e.Reason+" "+e.Message, frags) {
			ev = append(ev, eventEvidence(e, SourceEvent))
		}
	}
	for _, e := range f.in.PodEvents {
		if containsAny(e.Reason+" "+e.Message, frags) {
			ev = append(ev, eventEvidence(e, SourceEvent))
		}
	}
	return ev
}

// kubeletFatal is the kubelet's newest fatal line, if it has one and is
// not known to be running since.
func (f *facts) kubeletFatal() (v1alpha1.LogLine, bool) {
	u := f.kubelet
	if u == nil || u.Active() {
		return v1alpha1.LogLine{}, false
	}
	for i := len(u.Logs) - 1; i >= 0; i-- {
		if isFatal(u.Logs[i].Text) {
			return u.Logs[i], true
		}
	}
	return v1alpha1.LogLine{}, false
}

// exitsOnItsOwn says whether the kubelet keeps exiting with its own error
// (KubeletCrashLoop), and with which. A unit exits on its own when it gave
// up at start with a fatal line naming an error a restart cannot change
// (swap, a flag or config, a missing file, the cgroup driver, or anything
// else not about a dependency), or exited CrashLoopRepeats times within
// CrashLoopWindow with the same fatal line. A unit that was stopped,
// disabled, killed by a signal, or exited because its runtime or the
// apiserver was not there yet is not: a restart may well work (seed 000).
func (f *facts) exitsOnItsOwn() (v1alpha1.LogLine, string, bool) {
	l, ok := f.kubeletFatal()
	if !ok {
		return l, "", false
	}
	class := classifyFatal(l.Text)
	switch class {
	case detailDependency, detailCertificate:
		return l, class, false
	case DetailOther:
		// An error of no known kind: only a repeat proves it exits again.
		repeats := int(l.Repeats())
		if f.kubelet.Restarts != nil {
			repeats = max(repeats, int(*f.kubelet.Restarts))
		}
		if l.FirstTime != nil && l.Time != nil && l.Time.Sub(l.FirstTime.Time) > f.th.CrashLoopWindow && l.Count > 0 {
			// Spread over more than the window: rate-limit the count.
			repeats = int(float64(l.Count) * float64(f.th.CrashLoopWindow) / float64(l.Time.Sub(l.FirstTime.Time)))
		}
		if repeats < f.th.CrashLoopRepeats && !klogFatal.MatchString(l.Text) {
			return l, class, false
		}
	}
	return l, class, true
}

// fleetNodeFault: many nodes share one node-level fault while their agents
// report on time through the same apiserver (a control-plane outage would
// silence them too), and this node has it.
func fleetNodeFault(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	c := f.in.Cluster
	if c.SameFault == "" || c.SameFaultNodes < DefaultMinNodes || c.Total > 0 && float64(c.SameFaultNodes) < DefaultFraction*float64(c.Total) {
		return nil, false
	}
	if FatalSignature(f.kubelet) != c.SameFault {
		return nil, false // this node does not share it (or fails differently)
	}
	ev := []v1alpha1.Evidence{{Source: SourceCluster, Supports: true,
		Message: fmt.Sprintf("%d of %d nodes show the same fault at once: %s — a config, image or package rolled out to them, not this node alone; nothing is touched on any node", c.SameFaultNodes, c.Total, c.SameFault)}}
	if c.LateAgentsOnTime != nil {
		ev = append(ev, v1alpha1.Evidence{Source: SourceCluster, Supports: true,
			Message: fmt.Sprintf("%d of the %d late nodes' agents report on time through the same apiserver: not a control-plane outage", *c.LateAgentsOnTime, c.Late)})
	}
	if l, ok := f.kubeletFatal(); ok {
		ev = append(ev, lineEvidence(l, "this node"))
	}
	return ev, true
}

// kubeletCrashLoop: the kubelet exits with its own error at every start.
// Restarting it would repeat the exit: a person must fix what it names.
func kubeletCrashLoop(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if found[v1alpha1.CauseKubeletCertificateExpired] || found[v1alpha1.CauseClockSkew] {
		return nil, false // the certificate or the clock is why it exits
	}
	l, class, ok := f.exitsOnItsOwn()
	if !ok {
		return nil, false
	}
	f.detail = class
	ev := []v1alpha1.Evidence{lineEvidence(l, "the kubelet gives up at start: "+crashHelp[class])}
	if u := f.kubelet; u.ActiveState != "" || u.Result != "" || u.Restarts != nil {
		ev = append(ev, unitEvidence(u))
	}
	if class == DetailSwap && f.probes != nil && f.probes.Swap != nil {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: f.probes.Swap.TotalBytes > 0,
			Message: fmt.Sprintf("swap: %s configured (/proc/swaps)", bytes(f.probes.Swap.TotalBytes))})
	}
	ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
		Message: "not restarted: a restart would exit again with the same error; a person is needed"})
	return ev, true
}

// crashHelp says what a person does about each kind of fatal error.
var crashHelp = map[string]string{
	DetailSwap:         "swap is on (turn it off, or allow it in the kubelet config: failSwapOn: false)",
	DetailConfig:       "a flag or the config file is wrong (fix the kubelet's flags or config)",
	DetailMissingFile:  "a file it is pointed to is missing (a kubeconfig, certificate, CA or config file)",
	DetailCgroupDriver: "its cgroup driver differs from the runtime's (set both to systemd, or both to cgroupfs)",
	DetailOther:        "the same fatal error at every start",
}

// kubeletCertExpired: the kubelet's client certificate, or the cluster CA,
// expired (by nodeward's clock), or the kubelet says so, unless the node's
// clock is known to be wrong (then the certificate is not the fault).
func kubeletCertExpired(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if found[v1alpha1.CauseClockSkew] {
		return nil, false
	}
	var ev []v1alpha1.Evidence
	if f.probes != nil {
		for _, c := range f.probes.Certificates {
			if c.NotAfter != nil && c.NotAfter.Time.Before(f.in.Now) {
				ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: c.NotAfter,
					Message: fmt.Sprintf("the %s certificate expired at %s", c.Name, c.NotAfter.UTC().Format(time.RFC3339))})
			}
		}
	}
	for _, l := range unitLines(f.kubelet, certExpired) {
		ev = append(ev, lineEvidence(l, ""))
	}
	for _, l := range unitLines(f.kubelet, certUntrusted) {
		ev = append(ev, lineEvidence(l, "the kubelet and the apiserver no longer trust each other's certificates (a rotated CA)"))
	}
	if len(ev) == 0 {
		return nil, false
	}
	return append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
		Message: "a person must renew the certificate (approve the node's CSR, or re-join the node); a kubelet restart only picks up one renewed on disk"}), true
}

// clockSkew: the node's clock is off. A skewed node stamps its Lease and
// its agent's report with that clock: nodeward measures both from when it
// saw them arrive, so such a node is never called dead or silent.
func clockSkew(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	if f.clockSkewed() {
		dir := "ahead of"
		if f.skew < 0 {
			dir = "behind"
		}
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
			Message: fmt.Sprintf("the node's clock is %s %s the apiserver's (limit %s)", round(f.skew.Abs()), dir, f.th.ClockSkewLimit)})
	}
	if f.probes != nil && f.probes.Clock != nil && f.probes.Clock.Synchronized != nil && !*f.probes.Clock.Synchronized && len(ev) > 0 {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: "systemd-timedated: NTP synchronized: no"})
	}
	for _, l := range unitLines(f.kubelet, certNotValid) {
		ev = append(ev, lineEvidence(l, "a certificate not yet valid by the node's clock"))
	}
	if !f.skewKnown && f.kubelet != nil {
		// A line cannot be written in the future: the node's clock is
		// ahead. Only the journal's own stamp counts (a klog header has no
		// year to tell next week from last year), with a day's slack: a
		// snapshot's time may be only a date.
		for _, l := range f.kubelet.Logs {
			if l.Time != nil && l.Time.Sub(f.in.Now) > futureSlack {
				ev = append(ev, lineEvidence(l, fmt.Sprintf("stamped %s, %s after now by nodeward's clock: the node's clock is ahead", l.Time.UTC().Format(time.RFC3339), round(l.Time.Sub(f.in.Now)))))
				break
			}
		}
	}
	if len(ev) == 0 {
		return nil, false
	}
	return append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
		Message: "a person must fix the node's time synchronisation; nothing is drained or restarted for a wrong clock"}), true
}

// futureSlack is how far past now a log line's stamp may be before it
// shows the node's clock ahead.
const futureSlack = 24 * time.Hour

// kubeletDown: the agent is alive and says the kubelet unit is not active,
// and the kubelet's heartbeats stopped — or, in a snapshot that knows
// neither, the unit's journal says it exited.
func kubeletDown(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if !f.reportKnown || f.kubelet == nil || found[v1alpha1.CauseKubeletCrashLoop] || found[v1alpha1.CauseKubeletCertificateExpired] {
		return nil, false
	}
	down := isDown(f.kubelet)
	fatal, hasFatal := f.kubeletFatal()
	if !down && !(f.kubelet.ActiveState == "" && hasFatal) {
		return nil, false
	}
	hb, st := f.heartbeats()
	if st != hbStopped && f.leaseKnown && f.kubelet.Since != nil && f.in.Lease.Spec.RenewTime.Time.Before(f.kubelet.Since.Time) {
		// The unit stopped after the last renewal, by the node's own clock
		// (the kubelet's and the agent's): no heartbeat can have come since.
		// No need to wait for the Lease to go stale.
		t := metav1.NewTime(f.in.Lease.Spec.RenewTime.Time)
		hb, st = []v1alpha1.Evidence{{Source: SourceLease, ObservedAt: &t, Supports: true,
			Message: fmt.Sprintf("Lease last renewed %s before %s stopped: no heartbeat since", round(f.kubelet.Since.Sub(t.Time)), orName(*f.kubelet))}}, hbStopped
	}
	if st == hbFresh {
		return nil, false
	}
	var ev []v1alpha1.Evidence
	if f.kubelet.ActiveState != "" {
		ev = append(ev, unitEvidence(f.kubelet))
	}
	if hasFatal {
		ev = append(ev, lineEvidence(fatal, "it exited waiting for something it needs (the runtime, the apiserver), which a restart may find there now"))
	}
	ev = append(ev, hb...)
	if f.agentAlive {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: &f.in.Report.Status.HeartbeatTime,
			Message: fmt.Sprintf("the node agent is alive (last report %s ago), so the node itself is up", round(f.agentAge))})
	}
	if f.kubelet.UnitFileState == "disabled" {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
			Message: fmt.Sprintf("%s is disabled: it will not start at boot (seed 000: after an OS upgrade and reboot)", f.kubelet.UnitName)})
	}
	for _, t := range []corev1.NodeConditionType{"FrequentKubeletRestart", "KubeletUnhealthy"} {
		if c := f.condTrue(t); c != nil {
			ev = append(ev, f.condEvidence(c, true))
		}
	}
	return ev, true
}

// runtimeDown: the runtime's unit is not active, or its CRI socket is gone
// (connection refused, no socket). The kubelet's "container runtime is
// down" or node-problem-detector's word counts only when the unit or a CRI
// call agrees: a runtime that runs is not restarted for it.
func runtimeDown(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var direct []v1alpha1.Evidence
	if f.reportKnown && f.runtime != nil && isDown(f.runtime) {
		direct = append(direct, unitEvidence(f.runtime))
	}
	if p := f.probes; p != nil && p.Runtime != nil && !p.Runtime.Answered && containsAny(p.Runtime.Error, runtimeGone) && (f.runtime == nil || !f.runtime.Active()) {
		direct = append(direct, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: p.Runtime.FailingSince,
			Message: fmt.Sprintf("CRI %s does not answer: %s", p.Runtime.Endpoint, p.Runtime.Error)})
	}
	if len(direct) == 0 {
		return nil, false
	}
	ev := direct
	if c := f.readySays("container runtime is down", "container runtime status check may not have completed yet"); c != nil {
		ev = append(ev, f.condEvidence(c, true))
	}
	for _, t := range []corev1.NodeConditionType{"ContainerRuntimeUnhealthy", "FrequentContainerdRestart", "FrequentDockerRestart"} {
		if c := f.condTrue(t); c != nil {
			ev = append(ev, f.condEvidence(c, true))
		}
	}
	return ev, true
}

// runtimeHung: the runtime's unit runs (or its state is not known) but its
// CRI socket does not answer within the deadline. The kubelet's own
// timeouts (PLEG, "operation timeout") support it but are indirect: alone,
// they are not enough.
func runtimeHung(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if found[v1alpha1.CauseContainerRuntimeDown] {
		return nil, false
	}
	p := f.probes
	if p == nil || p.Runtime == nil || p.Runtime.Answered || containsAny(p.Runtime.Error, runtimeGone) || f.runtime != nil && isDown(f.runtime) {
		return nil, false
	}
	msg := fmt.Sprintf("CRI %s does not answer", p.Runtime.Endpoint)
	if p.Runtime.Error != "" {
		msg += ": " + p.Runtime.Error
	}
	ev := []v1alpha1.Evidence{{Source: SourceNodeReport, Supports: true, ObservedAt: p.Runtime.FailingSince, Message: msg}}
	if f.runtime != nil && f.runtime.Active() {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: f.runtime.Since,
			Message: describeUnit(*f.runtime) + ": it runs but does not answer (hung, not stopped)"})
	}
	for _, l := range unitLines(f.kubelet, runtimeTimeout) {
		ev = append(ev, lineEvidence(l, "the kubelet's calls to the runtime time out (indirect)"))
	}
	if c := f.readySays("PLEG is not healthy", "container runtime is down"); c != nil {
		ev = append(ev, f.condEvidence(c, true))
	}
	return ev, true
}

// memoryExhausted (seed 001): MemoryPressure, a system OOM, or almost no
// memory available. A MemoryPressure the agent's own measurement
// contradicts is not enough alone. Load and zombies support it but are
// not enough alone.
func memoryExhausted(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	primary, direct := false, false
	if c := f.condTrue(corev1.NodeMemoryPressure); c != nil {
		ev, primary = append(ev, f.condEvidence(c, true)), true
	}
	for _, e := range f.in.Events {
		if e.Reason == "SystemOOM" && (eventTime(e).IsZero() || f.in.Now.Sub(eventTime(e)) <= f.th.RecentOOM) {
			ev, primary, direct = append(ev, eventEvidence(e, SourceEvent)), true, true
		}
	}
	if p := f.probes; p != nil && p.Memory != nil && p.Memory.TotalBytes > 0 {
		m := p.Memory
		frac := float64(m.AvailableBytes) / float64(m.TotalBytes)
		msg := fmt.Sprintf("MemAvailable %s of %s (%.1f%%)", bytes(m.AvailableBytes), bytes(m.TotalBytes), frac*100)
		switch {
		case frac < f.th.MemoryAvailableLow:
			ev, primary, direct = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: msg}), true, true
		case primary:
			ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: false, Message: msg + " now: the agent's measure contradicts the pressure"})
		}
		if m.LastOOMKill != nil && f.in.Now.Sub(m.LastOOMKill.Time) <= f.th.RecentOOM {
			ev, direct = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: m.LastOOMKill,
				Message: fmt.Sprintf("the kernel's OOM killer has fired (oom_kill counter %d, last %s ago)", m.OOMKills, round(f.in.Now.Sub(m.LastOOMKill.Time)))}), true
		}
	}
	for _, l := range f.nodeLines(oomLines) {
		ev, primary, direct = append(ev, lineEvidence(l, "")), true, true
	}
	if !primary {
		return nil, false
	}
	if !direct && f.probes != nil && f.probes.Memory != nil && f.probes.Memory.TotalBytes > 0 {
		// Only the condition says so, and the agent measures plenty.
		return nil, false
	}
	if p := f.probes; p != nil {
		if p.Load != nil && p.Load.CPUs > 0 && p.Load.Load1Milli > 2000*int64(p.Load.CPUs) {
			ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
				Message: fmt.Sprintf("load %.1f on %d CPUs (swapping or reclaiming)", float64(p.Load.Load1Milli)/1000, p.Load.CPUs)})
		}
		if p.PIDs != nil && p.PIDs.Zombies > 0 {
			ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: fmt.Sprintf("%d zombie processes", p.PIDs.Zombies)})
		}
	}
	if hb, stopped := f.heartbeatsStopped(); stopped {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
			Message: "heartbeats stopped while memory is exhausted: the kubelet is starved, not dead (restarting it would not help)"})
		ev = append(ev, hb...)
	}
	return ev, true
}

// pidExhausted: PIDPressure, threads near pid_max, or forks failing
// ("resource temporarily unavailable") in the kubelet's or runtime's log.
func pidExhausted(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	primary := false
	if c := f.condTrue(corev1.NodePIDPressure); c != nil {
		ev, primary = append(ev, f.condEvidence(c, true)), true
	}
	for _, l := range f.nodeLines(forkFailed) {
		ev, primary = append(ev, lineEvidence(l, "a fork failed: the PIDs (or threads) ran out")), true
	}
	if p := f.probes; p != nil && p.PIDs != nil && p.PIDs.PIDMax > 0 {
		frac := float64(p.PIDs.Threads) / float64(p.PIDs.PIDMax)
		msg := fmt.Sprintf("%d threads of pid_max %d (%.0f%%; ps -eTf | wc -l)", p.PIDs.Threads, p.PIDs.PIDMax, frac*100)
		if frac >= f.th.PIDsHigh {
			ev, primary = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: msg}), true
		} else if primary {
			ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: false, Message: msg})
		}
	}
	return ev, primary
}

// diskPressure: DiskPressure or the legacy OutOfDisk, the agent's df, or
// the kubelet's own words (no space left, eviction to reclaim storage).
func diskPressure(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	for _, t := range []corev1.NodeConditionType{corev1.NodeDiskPressure, "OutOfDisk"} {
		if c := f.condTrue(t); c != nil {
			ev = append(ev, f.condEvidence(c, true))
		}
	}
	if p := f.probes; p != nil {
		for _, d := range p.Disks {
			if d.TotalBytes > 0 && float64(d.FreeBytes)/float64(d.TotalBytes) < f.th.DiskFreeLow {
				ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
					Message: fmt.Sprintf("%s: %s free of %s (df -h)", d.Path, bytes(d.FreeBytes), bytes(d.TotalBytes))})
			}
			if d.TotalInodes > 0 && float64(d.FreeInodes)/float64(d.TotalInodes) < f.th.InodesFreeLow {
				ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
					Message: fmt.Sprintf("%s: %d inodes free of %d (df -i)", d.Path, d.FreeInodes, d.TotalInodes)})
			}
		}
	}
	for _, l := range f.nodeLines(diskFull) {
		ev = append(ev, lineEvidence(l, ""))
	}
	ev = append(ev, f.eventsSaying(diskFull)...)
	return ev, len(ev) > 0
}

// plegUnhealthy (seed 002): the kubelet runs and reports, but its pod
// lifecycle event generator relists too slowly.
func plegUnhealthy(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if found[v1alpha1.CauseContainerRuntimeHung] {
		return nil, false // the runtime not answering is why
	}
	c := f.readySays("PLEG is not healthy")
	if c == nil {
		return nil, false
	}
	ev := []v1alpha1.Evidence{f.condEvidence(c, true)}
	if f.kubelet != nil && f.kubelet.Active() {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: describeUnit(*f.kubelet) + ": the kubelet runs; restarting it does not fix PLEG and caused reboot loops elsewhere"})
	}
	return ev, true
}

// networkUnavailable: the pod network (CNI) is not ready: the kubelet's
// Ready message or journal, NetworkUnavailable, the runtime's NetworkReady,
// or pods failing to set up their network on this node.
func networkUnavailable(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	if c := f.readySays(networkNotReady...); c != nil {
		ev = append(ev, f.condEvidence(c, true))
	}
	if c := f.condTrue(corev1.NodeNetworkUnavailable); c != nil {
		ev = append(ev, f.condEvidence(c, true))
	}
	if p := f.probes; p != nil && p.Runtime != nil && p.Runtime.Answered && p.Runtime.NetworkReady != nil && !*p.Runtime.NetworkReady {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: "the runtime's NetworkReady condition is false (CRI Status)"})
	}
	for _, l := range unitLines(f.kubelet, networkNotReady) {
		ev = append(ev, lineEvidence(l, ""))
	}
	ev = append(ev, f.eventsSaying(networkNotReady)...)
	return ev, len(ev) > 0
}

// controlPlaneDegraded (seed 003): this node's heartbeats are late, and so
// are many others' at once, while their agents do not contradict it (the
// cluster detector's verdict, Degraded: when most late nodes' agents get
// through the same apiserver after their heartbeats stopped, the control
// plane is not what failed).
func controlPlaneDegraded(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	c := f.in.Cluster
	if found[v1alpha1.CauseKubeletDown] || found[v1alpha1.CauseFleetNodeFault] {
		return nil, false
	}
	if !c.Degraded {
		// Indirect: the apiserver told this node's kubelet it is overloaded.
		lines := unitLines(f.kubelet, controlPlaneOverload)
		if _, st := f.heartbeats(); len(lines) == 0 || st == hbFresh || len(found) > 0 {
			return nil, false
		}
		ev := []v1alpha1.Evidence{lineEvidence(lines[len(lines)-1], "the control plane answers the kubelet that it is overloaded")}
		return append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
			Message: "seen from this node only (indirect): the cluster detector does not see many nodes late; no node-level action"}), true
	}
	hb, st := f.heartbeats()
	if st == hbFresh {
		return nil, false
	}
	since := metav1.NewTime(c.Since)
	total := fmt.Sprint(c.Total)
	if c.Total == 0 {
		total = "all"
	}
	ev := []v1alpha1.Evidence{{Source: SourceCluster, Supports: true, ObservedAt: &since,
		Message: fmt.Sprintf("%d of %s nodes' heartbeats are late at once: not this node's fault but an overloaded control plane (etcd, apiserver) or a partition cutting these nodes off from it (e.g. a zone); no node-level action", c.Late, total)}}
	if c.LateAgentsOnTime != nil {
		ev = append(ev, v1alpha1.Evidence{Source: SourceCluster, Supports: true,
			Message: fmt.Sprintf("only %d of the %d late nodes' agents get through to the apiserver either", *c.LateAgentsOnTime, c.Late)})
	}
	ev = append(ev, hb...)
	if f.agentAlive && f.kubelet != nil && f.kubelet.Active() {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: describeUnit(*f.kubelet) + " and the agent is alive"})
	}
	return ev, true
}

// kubeletHung: the kubelet unit runs but its heartbeats stopped, on this node
// alone, and nothing else explains it. Or, indirectly: the kubelet's own
// connection to the apiserver is broken (its status updates fail with a
// transport error) while the agent on the same node gets through.
func kubeletHung(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if !f.agentAlive || f.kubelet == nil || len(found) > 0 || f.clockSkewed() {
		return nil, false
	}
	if f.kubelet.ActiveState == "" {
		// Indirect: only the kubelet's journal and the agent's liveness.
		var ev []v1alpha1.Evidence
		for _, l := range f.kubelet.Logs {
			if strings.Contains(strings.ToLower(l.Text), "error updating node status") && containsAny(l.Text, apiTransport) {
				ev = append(ev, lineEvidence(l, "the kubelet's connection to the apiserver is broken"))
			}
		}
		if len(ev) == 0 {
			return nil, false
		}
		return append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: &f.in.Report.Status.HeartbeatTime,
			Message: "the node agent reports on time through the same apiserver: the kubelet's own connection is stuck, not the network (indirect evidence)"}), true
	}
	if !f.kubelet.Active() {
		return nil, false
	}
	hb, stopped := f.heartbeatsStopped()
	if !stopped || f.leaseKnown && f.kubelet.Since != nil && f.in.Lease.Spec.RenewTime.Time.Before(f.kubelet.Since.Time) {
		// A kubelet that started after its last renewal is still starting.
		return nil, false
	}
	if !f.stormSettled() {
		return nil, false
	}
	if f.leaseKnown && !f.in.Report.Status.HeartbeatTime.After(f.in.Lease.Spec.RenewTime.Time) {
		// The agent's last word predates the last heartbeat: the node may
		// as well be down. Look again just after the agent's next report is
		// due (heartbeat-only reports don't wake the controller).
		st := &f.in.Report.Status
		f.recheckIn(st.HeartbeatTime.Add(st.ReportInterval.Duration + time.Second).Sub(f.in.Now))
		return nil, false
	}
	if !f.leaseKnown {
		return nil, false // no Lease: nothing says when the heartbeats stopped
	}
	ev := append([]v1alpha1.Evidence{unitEvidence(f.kubelet)}, hb...)
	ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: &f.in.Report.Status.HeartbeatTime,
		Message: fmt.Sprintf("the node agent reported %s after the last heartbeat, so the node is up", round(f.in.Report.Status.HeartbeatTime.Sub(f.in.Lease.Spec.RenewTime.Time)))})
	ev = append(ev, v1alpha1.Evidence{Source: SourceCluster, Supports: true,
		Message: fmt.Sprintf("only %d of %d nodes' heartbeats are late: not a control-plane problem", f.in.Cluster.Late, f.in.Cluster.Total)})
	return ev, true
}

// nodeUnreachable: both the kubelet's heartbeats and the agent are silent,
// measured by when nodeward saw them — never on a node whose clock is known
// to be skewed.
func nodeUnreachable(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if !f.agentSilent || f.in.Cluster.Degraded || len(found) > 0 || f.clockSkewed() {
		return nil, false
	}
	hb, stopped := f.heartbeatsStopped()
	if !stopped || !f.stormSettled() {
		return nil, false
	}
	ev := append(hb, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: &f.in.Report.Status.HeartbeatTime,
		Message: fmt.Sprintf("the node agent is silent too (last report %s ago): the node is down or cut off", round(f.agentAge))})
	return ev, true
}

// kernelDeadlock: node-problem-detector's KernelDeadlock, or hung tasks in
// the kernel log. A person is needed.
func kernelDeadlock(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	if c := f.condTrue("KernelDeadlock"); c != nil {
		ev = append(ev, f.condEvidence(c, true))
	}
	if len(ev) > 0 {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeCondition, Supports: true, Message: "reported by node-problem-detector"})
	}
	if f.probes != nil {
		for _, l := range f.probes.KernelLog {
			if containsAny(l.Text, hungTask) && !strings.Contains(l.Text, "disables this message") {
				ev = append(ev, lineEvidence(l, ""))
			}
		}
	}
	if len(ev) == 0 {
		return nil, false
	}
	return append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: "kernel tasks hang: a person is needed (a reboot or a kernel fix)"}), true
}

// readonlyFilesystem: node-problem-detector's ReadonlyFilesystem, the
// kernel's read-only remount and I/O error lines, or read-only errors in
// the journal or in pod events — on a node still Ready too.
func readonlyFilesystem(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	if c := f.condTrue("ReadonlyFilesystem"); c != nil {
		ev = append(ev, f.condEvidence(c, true))
	}
	for _, l := range f.nodeLines(readOnly) {
		ev = append(ev, lineEvidence(l, ""))
	}
	ev = append(ev, f.eventsSaying(readOnly)...)
	if len(ev) == 0 {
		return nil, false
	}
	return append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: "a filesystem went read-only or fails: a person is needed (the disk)"}), true
}

// podStartFailures: the node may be Ready, but pods on it fail to start
// (sandbox or container creation) for a node-level reason no other cause
// explains.
func podStartFailures(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if len(found) > 0 {
		return nil, false
	}
	pods := map[string]bool{}
	var ev []v1alpha1.Evidence
	for _, e := range f.in.PodEvents {
		if e.Reason != "FailedCreatePodSandBox" && e.Reason != "FailedCreatePodContainer" && e.Reason != "FailedKillPod" {
			continue
		}
		if t := eventTime(e); !t.IsZero() && f.in.Now.Sub(t) > f.th.RecentPodFailure {
			continue
		}
		pods[e.InvolvedObject.Namespace+"/"+e.InvolvedObject.Name] = true
		if e.Count > 1 {
			pods[e.InvolvedObject.Namespace+"/"+e.InvolvedObject.Name+"#repeat"] = true
		}
		ev = append(ev, eventEvidence(e, SourceEvent))
	}
	if len(pods) < f.th.PodFailures && !sandboxImageMissing(f.in.PodEvents) {
		return nil, false
	}
	return append(ev, v1alpha1.Evidence{Source: SourceEvent, Supports: true,
		Message: "pods on this node keep failing to start for a reason of the node's: a person is needed"}), true
}

// sandboxImageMissing: a sandbox failed because the node cannot get its
// sandbox (pause) image: every pod on the node fails the same way, so one
// such failure is a node-level one.
func sandboxImageMissing(evs []corev1.Event) bool {
	for _, e := range evs {
		if e.Reason == "FailedCreatePodSandBox" && containsAny(e.Message, []string{"failed to get sandbox image", "pause image"}) {
			return true
		}
	}
	return false
}

// oldSystemd (seed 004): systemd before 219-67 overflows its D-Bus cookie
// and hangs runc and the kubelet (PLEG). Only said about a node that is
// otherwise in trouble.
func oldSystemd(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if f.probes == nil || f.probes.SystemdVersion == "" || (len(found) == 0 && (f.ready == nil || f.ready.Status == corev1.ConditionTrue)) {
		return nil, false
	}
	if !systemdTooOld(f.probes.SystemdVersion) {
		return nil, false
	}
	return []v1alpha1.Evidence{{Source: SourceNodeReport, Supports: true,
		Message: fmt.Sprintf("systemd %s is older than 219-67: its D-Bus cookie overflow hangs runc and the kubelet; upgrade systemd", f.probes.SystemdVersion)}}, true
}

// systemdTooOld parses "219", "219-57.el7" or "252.19-1".
func systemdTooOld(v string) bool {
	major, rest, _ := strings.Cut(v, "-")
	major, _, _ = strings.Cut(major, ".")
	var mj, rel int
	if _, err := fmt.Sscanf(major, "%d", &mj); err != nil {
		return false
	}
	if mj != 219 {
		return mj < 219
	}
	if _, err := fmt.Sscanf(rest, "%d", &rel); err != nil {
		return false // "219" alone: the release is unknown; don't guess
	}
	return rel < 67
}

// cgroupDriverMismatch: the kubelet's log says its cgroup driver differs
// from the runtime's, while it is not crash-looping on it.
func cgroupDriverMismatch(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if found[v1alpha1.CauseKubeletCrashLoop] {
		return nil, false
	}
	frags := []string{"failed to initialise top level qos containers", "misconfiguration: kubelet cgroup driver"}
	for _, l := range f.nodeLines(frags) {
		return []v1alpha1.Evidence{lineEvidence(l, ""),
			{Source: SourceNodeReport, Supports: true, Message: "the kubelet's cgroupDriver must match the container runtime's (systemd or cgroupfs)"}}, true
	}
	return nil, false
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGi", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0fMi", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%dKi", n>>10)
}

// capEvidence keeps lists within the API's bound (32).
func capEvidence(ev []v1alpha1.Evidence) []v1alpha1.Evidence {
	if len(ev) > 32 {
		return ev[:32]
	}
	return ev
}

// probeChecks records what the agent measured as checks.
func (f *facts) probeChecks() {
	p := f.probes
	if m := p.Memory; m != nil && m.TotalBytes > 0 {
		frac := float64(m.AvailableBytes) / float64(m.TotalBytes)
		f.check(frac >= f.th.MemoryAvailableLow, SourceNodeReport, nil, "memory: %s available of %s (%.1f%%), oom_kill %d", bytes(m.AvailableBytes), bytes(m.TotalBytes), frac*100, m.OOMKills)
	}
	if x := p.PIDs; x != nil && x.PIDMax > 0 {
		f.check(float64(x.Threads)/float64(x.PIDMax) < f.th.PIDsHigh, SourceNodeReport, nil, "pids: %d threads of pid_max %d, %d zombies", x.Threads, x.PIDMax, x.Zombies)
	}
	for _, d := range p.Disks {
		ok := d.TotalBytes == 0 || float64(d.FreeBytes)/float64(d.TotalBytes) >= f.th.DiskFreeLow
		ok = ok && (d.TotalInodes == 0 || float64(d.FreeInodes)/float64(d.TotalInodes) >= f.th.InodesFreeLow)
		f.check(ok, SourceNodeReport, nil, "disk %s: %s free of %s, %d inodes free of %d", d.Path, bytes(d.FreeBytes), bytes(d.TotalBytes), d.FreeInodes, d.TotalInodes)
	}
	if l := p.Load; l != nil && l.CPUs > 0 {
		f.check(l.Load1Milli <= 2000*int64(l.CPUs), SourceNodeReport, nil, "load %.2f on %d CPUs", float64(l.Load1Milli)/1000, l.CPUs)
	}
	for _, e := range p.Errors {
		f.check(false, SourceNodeReport, nil, "probe failed: %s", e)
	}
}

// isDown: only a unit that systemd says is stopped counts. "activating",
// "deactivating" and "unknown" are not evidence of anything.
func isDown(u *v1alpha1.UnitState) bool {
	return u.ActiveState == "inactive" || u.ActiveState == "failed"
}

func describeUnit(u v1alpha1.UnitState) string {
	s := fmt.Sprintf("%s is %s (%s)", orName(u), u.ActiveState, u.SubState)
	if u.UnitFileState != "" {
		s += ", " + u.UnitFileState
	}
	if u.Since != nil {
		s += " since " + u.Since.UTC().Format(time.RFC3339)
	}
	return s
}

func orName(u v1alpha1.UnitState) string {
	if u.UnitName != "" {
		return u.UnitName
	}
	return string(u.Name)
}

func summary(f *facts, causes []v1alpha1.DiagnosedCause) string {
	if len(causes) > 0 {
		names := make([]string, 0, len(causes))
		for _, c := range causes {
			names = append(names, string(c.Cause))
		}
		return strings.Join(names, ", ") + ": " + causes[0].Evidence[0].Message
	}
	var failed []string
	for _, c := range f.checks {
		if !c.Supports {
			failed = append(failed, c.Message)
		}
	}
	sort.Strings(failed)
	if len(failed) == 0 {
		return "healthy"
	}
	return "cause unknown; failed checks: " + strings.Join(failed, "; ")
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
