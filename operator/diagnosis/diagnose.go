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
}

// DefaultThresholds are used unless the operator is told otherwise.
func DefaultThresholds() Thresholds {
	return Thresholds{
		LeaseStaleAfter: 20 * time.Second, StormSettle: 10 * time.Second, AgentSilentAfter: 3,
		MemoryAvailableLow: 0.05, RecentOOM: 10 * time.Minute, PIDsHigh: 0.9,
		DiskFreeLow: 0.10, InodesFreeLow: 0.05,
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

type facts struct {
	in         Input
	th         Thresholds
	ready      *corev1.NodeCondition
	conds      map[corev1.NodeConditionType]*corev1.NodeCondition
	probes     *v1alpha1.NodeProbes
	agentAlive bool
	agentAge   time.Duration
	leaseAge   time.Duration
	leaseKnown bool
	kubelet    *v1alpha1.UnitState
	runtime    *v1alpha1.UnitState
	recheck    time.Duration
	checks     []v1alpha1.Evidence
}

// Diagnose reads the node's conditions, its Lease and its agent's report.
func Diagnose(in Input, th Thresholds) Result {
	f := gather(in, th)
	var causes []v1alpha1.DiagnosedCause
	found := map[v1alpha1.Cause]bool{}
	for _, rule := range rules {
		if ev, ok := rule.match(f, found); ok {
			found[rule.cause] = true
			causes = append(causes, v1alpha1.DiagnosedCause{Cause: rule.cause, Since: f.since(rule.cause), Evidence: capEvidence(ev)})
		}
	}
	res := Result{RecheckAfter: f.recheck}
	res.Status.Causes = causes
	res.Status.Checks = capEvidence(f.checks)
	res.Unhealthy = f.ready == nil || f.ready.Status != corev1.ConditionTrue
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

func gather(in Input, th Thresholds) *facts {
	f := &facts{in: in, th: th, conds: map[corev1.NodeConditionType]*corev1.NodeCondition{}}
	for i := range in.Node.Status.Conditions {
		c := &in.Node.Status.Conditions[i]
		f.conds[c.Type] = c
	}
	f.ready = f.conds[corev1.NodeReady]
	if f.ready == nil {
		f.check(false, SourceNodeCondition, nil, "the node has no Ready condition: the kubelet never posted status")
	} else {
		f.check(f.ready.Status == corev1.ConditionTrue, SourceNodeCondition, &f.ready.LastTransitionTime,
			"Ready=%s since %s, reason %s: %s", f.ready.Status, f.ready.LastTransitionTime.UTC().Format(time.RFC3339), f.ready.Reason, f.ready.Message)
	}

	if in.Lease != nil && in.Lease.Spec.RenewTime != nil {
		f.leaseKnown = true
		f.leaseAge = in.Now.Sub(in.Lease.Spec.RenewTime.Time)
		t := metav1.NewTime(in.Lease.Spec.RenewTime.Time)
		fresh := f.leaseAge < th.LeaseStaleAfter
		f.check(fresh, SourceLease, &t, "Lease %s/%s renewed %s ago (stale after %s)", in.Lease.Namespace, in.Lease.Name, round(f.leaseAge), th.LeaseStaleAfter)
		if fresh {
			f.recheckIn(th.LeaseStaleAfter - f.leaseAge)
		}
	} else {
		f.check(false, SourceLease, nil, "the node has no Lease in kube-node-lease")
	}

	if in.Report != nil && !in.Report.Status.HeartbeatTime.IsZero() {
		st := &in.Report.Status
		silentAfter := time.Duration(th.AgentSilentAfter) * st.ReportInterval.Duration
		f.agentAge = in.Now.Sub(st.HeartbeatTime.Time)
		f.agentAlive = f.agentAge < silentAfter
		f.check(f.agentAlive, SourceNodeReport, &st.HeartbeatTime, "node agent %s: last report %s ago (silent after %s)",
			map[bool]string{true: "alive", false: "silent"}[f.agentAlive], round(f.agentAge), silentAfter)
		if f.agentAlive {
			f.recheckIn(silentAfter - f.agentAge)
			if u, ok := st.Unit(v1alpha1.UnitKubelet); ok {
				f.kubelet = &u
				f.check(u.Active(), SourceNodeReport, u.Since, "%s", describeUnit(u))
			}
			if u, ok := st.Unit(v1alpha1.UnitContainerRuntime); ok {
				f.runtime = &u
				f.check(u.Active(), SourceNodeReport, u.Since, "%s", describeUnit(u))
			}
			if st.Probes != nil {
				f.probes = st.Probes
				f.probeChecks()
			}
		}
	} else {
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

// heartbeatsStopped is the evidence that the kubelet stopped heartbeating:
// its Lease went stale, or the node lifecycle controller already said so
// (NodeStatusUnknown, or NodeStatusNeverUpdated for a kubelet that
// registered the Node and never posted its status).
func (f *facts) heartbeatsStopped() ([]v1alpha1.Evidence, bool) {
	if f.leaseKnown && f.leaseAge < f.th.LeaseStaleAfter {
		// The kubelet renewed its Lease just now: it heartbeats. A
		// Ready=Unknown beside a fresh Lease is older news (the controller
		// lags, or the kubelet has just come back and its next status
		// update corrects it), not evidence of a stop.
		return nil, false
	}
	var ev []v1alpha1.Evidence
	if f.leaseKnown && f.leaseAge >= f.th.LeaseStaleAfter {
		t := metav1.NewTime(f.in.Lease.Spec.RenewTime.Time)
		ev = append(ev, v1alpha1.Evidence{Source: SourceLease, ObservedAt: &t, Supports: true,
			Message: fmt.Sprintf("Lease not renewed for %s (the kubelet renews every 10s)", round(f.leaseAge))})
	}
	if f.ready != nil && (f.ready.Reason == "NodeStatusUnknown" || f.ready.Reason == "NodeStatusNeverUpdated") {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeCondition, ObservedAt: &f.ready.LastTransitionTime, Supports: true,
			Message: fmt.Sprintf("Ready=%s, reason %s: %s", f.ready.Status, f.ready.Reason, f.ready.Message)})
	}
	return ev, len(ev) > 0
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

// rules, in ranking order: direct evidence of a broken component first,
// resource exhaustion next, then what heartbeats alone can tell, then the
// advisory causes that need a person.
var rules = []rule{
	{v1alpha1.CauseKubeletDown, kubeletDown},
	{v1alpha1.CauseContainerRuntimeDown, runtimeDown},
	{v1alpha1.CauseMemoryExhausted, memoryExhausted},
	{v1alpha1.CausePIDExhausted, pidExhausted},
	{v1alpha1.CauseDiskPressure, diskPressure},
	{v1alpha1.CausePLEGUnhealthy, plegUnhealthy},
	{v1alpha1.CauseNetworkUnavailable, networkUnavailable},
	{v1alpha1.CauseControlPlaneDegraded, controlPlaneDegraded},
	{v1alpha1.CauseKubeletHung, kubeletHung},
	{v1alpha1.CauseNodeUnreachable, nodeUnreachable},
	{v1alpha1.CauseKernelDeadlock, npdCondition("KernelDeadlock")},
	{v1alpha1.CauseReadonlyFilesystem, npdCondition("ReadonlyFilesystem")},
	{v1alpha1.CauseOldSystemd, oldSystemd},
	{v1alpha1.CauseCgroupDriverMismatch, cgroupDriverMismatch},
}

func unitEvidence(u *v1alpha1.UnitState) v1alpha1.Evidence {
	return v1alpha1.Evidence{Source: SourceNodeReport, ObservedAt: u.Since, Supports: true, Message: describeUnit(*u)}
}

func (f *facts) condEvidence(c *corev1.NodeCondition, supports bool) v1alpha1.Evidence {
	return v1alpha1.Evidence{Source: SourceNodeCondition, ObservedAt: &c.LastTransitionTime, Supports: supports,
		Message: fmt.Sprintf("%s=%s, reason %s: %s", c.Type, c.Status, c.Reason, c.Message)}
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
	for _, frag := range fragments {
		if strings.Contains(f.ready.Message, frag) {
			return f.ready
		}
	}
	return nil
}

// kubeletDown: the agent is alive and says the kubelet unit is not active,
// and the kubelet's heartbeats stopped.
func kubeletDown(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if !f.agentAlive || f.kubelet == nil || !isDown(f.kubelet) {
		return nil, false
	}
	hb, stopped := f.heartbeatsStopped()
	if !stopped && f.leaseKnown && f.kubelet.Since != nil && f.in.Lease.Spec.RenewTime.Time.Before(f.kubelet.Since.Time) {
		// The unit stopped after the last renewal, by the node's own clock
		// (the kubelet's and the agent's): no heartbeat can have come since.
		// No need to wait for the Lease to go stale.
		t := metav1.NewTime(f.in.Lease.Spec.RenewTime.Time)
		hb, stopped = []v1alpha1.Evidence{{Source: SourceLease, ObservedAt: &t, Supports: true,
			Message: fmt.Sprintf("Lease last renewed %s before %s stopped: no heartbeat since", round(f.kubelet.Since.Sub(t.Time)), orName(*f.kubelet))}}, true
	}
	if !stopped {
		return nil, false
	}
	ev := append([]v1alpha1.Evidence{unitEvidence(f.kubelet)}, hb...)
	ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: &f.in.Report.Status.HeartbeatTime,
		Message: fmt.Sprintf("the node agent is alive (last report %s ago), so the node itself is up", round(f.agentAge))})
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

// runtimeDown: the agent says the container runtime unit is not active, or
// the kubelet says the runtime is down, or node-problem-detector does.
func runtimeDown(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	if f.agentAlive && f.runtime != nil && isDown(f.runtime) {
		ev = append(ev, unitEvidence(f.runtime))
	}
	if c := f.readySays("container runtime is down", "container runtime status check may not have completed yet"); c != nil {
		ev = append(ev, f.condEvidence(c, true))
	}
	for _, t := range []corev1.NodeConditionType{"ContainerRuntimeUnhealthy", "FrequentContainerdRestart", "FrequentDockerRestart"} {
		if c := f.condTrue(t); c != nil {
			ev = append(ev, f.condEvidence(c, true))
		}
	}
	if len(ev) == 0 {
		return nil, false
	}
	if f.agentAlive && f.runtime != nil && f.runtime.Active() {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: false, ObservedAt: f.runtime.Since,
			Message: describeUnit(*f.runtime) + " now"})
	}
	return ev, true
}

// memoryExhausted (seed 001): MemoryPressure, a system OOM, or almost no
// memory available. Load and zombies support it but are not enough alone.
func memoryExhausted(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	primary := false
	if c := f.condTrue(corev1.NodeMemoryPressure); c != nil {
		ev, primary = append(ev, f.condEvidence(c, true)), true
	}
	for _, e := range f.in.Events {
		if e.Reason == "SystemOOM" && f.in.Now.Sub(eventTime(e)) <= f.th.RecentOOM {
			t := metav1.NewTime(eventTime(e))
			ev, primary = append(ev, v1alpha1.Evidence{Source: SourceEvent, ObservedAt: &t, Supports: true,
				Message: fmt.Sprintf("Event SystemOOM (x%d): %s", max(e.Count, 1), e.Message)}), true
		}
	}
	if p := f.probes; p != nil && p.Memory != nil && p.Memory.TotalBytes > 0 {
		m := p.Memory
		frac := float64(m.AvailableBytes) / float64(m.TotalBytes)
		msg := fmt.Sprintf("MemAvailable %s of %s (%.1f%%)", bytes(m.AvailableBytes), bytes(m.TotalBytes), frac*100)
		if frac < f.th.MemoryAvailableLow {
			ev, primary = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: msg}), true
		} else if primary {
			ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: false, Message: msg + " now"})
		}
		if m.LastOOMKill != nil && f.in.Now.Sub(m.LastOOMKill.Time) <= f.th.RecentOOM {
			ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: m.LastOOMKill,
				Message: fmt.Sprintf("the kernel's OOM killer has fired (oom_kill counter %d, last %s ago)", m.OOMKills, round(f.in.Now.Sub(m.LastOOMKill.Time)))})
		}
	}
	if p := f.probes; p != nil {
		for _, l := range p.KernelLog {
			if strings.Contains(l.Text, "Out of memory: Killed process") {
				ev, primary = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, ObservedAt: l.Time, Message: "kernel: " + l.Text}), true
			}
		}
		if primary && p.Load != nil && p.Load.CPUs > 0 && p.Load.Load1Milli > 2000*int64(p.Load.CPUs) {
			ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
				Message: fmt.Sprintf("load %.1f on %d CPUs (swapping or reclaiming)", float64(p.Load.Load1Milli)/1000, p.Load.CPUs)})
		}
		if primary && p.PIDs != nil && p.PIDs.Zombies > 0 {
			ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: fmt.Sprintf("%d zombie processes", p.PIDs.Zombies)})
		}
	}
	if !primary {
		return nil, false
	}
	if hb, stopped := f.heartbeatsStopped(); stopped {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true,
			Message: "heartbeats stopped while memory is exhausted: the kubelet is starved, not dead (restarting it would not help)"})
		ev = append(ev, hb...)
	}
	return ev, true
}

func pidExhausted(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	if c := f.condTrue(corev1.NodePIDPressure); c != nil {
		ev = append(ev, f.condEvidence(c, true))
	}
	if p := f.probes; p != nil && p.PIDs != nil && p.PIDs.PIDMax > 0 {
		frac := float64(p.PIDs.Threads) / float64(p.PIDs.PIDMax)
		msg := fmt.Sprintf("%d threads of pid_max %d (%.0f%%; ps -eTf | wc -l)", p.PIDs.Threads, p.PIDs.PIDMax, frac*100)
		if frac >= f.th.PIDsHigh {
			ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: msg})
		} else if len(ev) > 0 {
			ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: false, Message: msg})
		}
	}
	return ev, len(ev) > 0 && ev[0].Supports
}

func diskPressure(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	if c := f.condTrue(corev1.NodeDiskPressure); c != nil {
		ev = append(ev, f.condEvidence(c, true))
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
	return ev, len(ev) > 0
}

// plegUnhealthy (seed 002): the kubelet runs and reports, but its pod
// lifecycle event generator relists too slowly.
func plegUnhealthy(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
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

func networkUnavailable(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	if c := f.readySays("network not ready", "NetworkPluginNotReady", "NetworkReady=false"); c != nil {
		ev = append(ev, f.condEvidence(c, true))
	}
	if c := f.condTrue(corev1.NodeNetworkUnavailable); c != nil {
		ev = append(ev, f.condEvidence(c, true))
	}
	return ev, len(ev) > 0
}

// controlPlaneDegraded (seed 003): this node's heartbeats are late, and so
// are many others' at once, while this node's agent and kubelet are fine.
func controlPlaneDegraded(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if !f.in.Cluster.Degraded || found[v1alpha1.CauseKubeletDown] {
		return nil, false
	}
	hb, stopped := f.heartbeatsStopped()
	if !stopped {
		return nil, false
	}
	since := metav1.NewTime(f.in.Cluster.Since)
	ev := []v1alpha1.Evidence{{Source: SourceCluster, Supports: true, ObservedAt: &since,
		Message: fmt.Sprintf("%d of %d nodes' heartbeats are late at once: not this node's fault but an overloaded control plane (etcd, apiserver) or a partition cutting these nodes off from it (e.g. a zone); no node-level action", f.in.Cluster.Late, f.in.Cluster.Total)}}
	ev = append(ev, hb...)
	if f.agentAlive && f.kubelet != nil && f.kubelet.Active() {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeReport, Supports: true, Message: describeUnit(*f.kubelet) + " and the agent is alive"})
	}
	return ev, true
}

// kubeletHung: the kubelet unit runs but its heartbeats stopped, on this node
// alone, and nothing else explains it.
func kubeletHung(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if !f.agentAlive || f.kubelet == nil || !f.kubelet.Active() || len(found) > 0 {
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

// nodeUnreachable: both the kubelet's heartbeats and the agent are silent.
func nodeUnreachable(f *facts, found map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if f.agentAlive || f.in.Report == nil || f.in.Cluster.Degraded || len(found) > 0 {
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

func npdCondition(t corev1.NodeConditionType) func(*facts, map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	return func(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
		if c := f.condTrue(t); c != nil {
			return []v1alpha1.Evidence{f.condEvidence(c, true), {Source: SourceNodeCondition, Supports: true,
				Message: "reported by node-problem-detector; needs a person"}}, true
		}
		return nil, false
	}
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

func cgroupDriverMismatch(f *facts, _ map[v1alpha1.Cause]bool) ([]v1alpha1.Evidence, bool) {
	if f.probes == nil {
		return nil, false
	}
	for _, l := range f.probes.KernelLog {
		if strings.Contains(l.Text, "failed to initialise top level QOS containers") || strings.Contains(l.Text, "misconfiguration: kubelet cgroup driver") {
			return []v1alpha1.Evidence{{Source: SourceNodeReport, Supports: true, ObservedAt: l.Time, Message: l.Source + ": " + l.Text},
				{Source: SourceNodeReport, Supports: true, Message: "the kubelet's cgroupDriver must match the container runtime's (systemd or cgroupfs)"}}, true
		}
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
