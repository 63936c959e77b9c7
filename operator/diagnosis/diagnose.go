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
)

// Thresholds tune how the evidence is read.
type Thresholds struct {
	// LeaseStaleAfter: a node Lease not renewed for this long means the
	// kubelet's heartbeats stopped. The kubelet renews every 10s; two missed
	// renewals is a stop, not jitter.
	LeaseStaleAfter time.Duration
	// AgentSilentAfter is how many report intervals may pass without a
	// NodeReport write before the agent counts as silent.
	AgentSilentAfter int
}

// DefaultThresholds are used unless the operator is told otherwise.
func DefaultThresholds() Thresholds {
	return Thresholds{LeaseStaleAfter: 20 * time.Second, AgentSilentAfter: 3}
}

// Input is everything Diagnose reads about one node.
type Input struct {
	Node   *corev1.Node
	Lease  *coordinationv1.Lease         // nil when the node has none
	Report *v1alpha1.NodeReport          // nil when the agent never reported
	Prev   *v1alpha1.NodeDiagnosisStatus // the previous diagnosis, for since-times
	Now    time.Time
}

// Result is a diagnosis.
type Result struct {
	Status v1alpha1.NodeDiagnosisStatus
	// Unhealthy is true when the node needs a NodeDiagnosis object: it has a
	// cause, or it is not Ready.
	Unhealthy bool
	// Suspect is true when the agent reports a unit down on a node that is not
	// yet unhealthy: the heartbeats may go stale at RecheckAfter.
	Suspect bool
	// RecheckAfter, when non-zero, is when the diagnosis may change through
	// the passage of time alone (a Lease turning stale, an agent going silent).
	RecheckAfter time.Duration
}

type facts struct {
	in         Input
	th         Thresholds
	ready      *corev1.NodeCondition
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
	for _, rule := range rules {
		if ev, ok := rule.match(f); ok {
			causes = append(causes, v1alpha1.DiagnosedCause{Cause: rule.cause, Since: f.since(rule.cause), Evidence: ev})
		}
	}
	res := Result{RecheckAfter: f.recheck}
	res.Status.Causes = causes
	res.Status.Checks = f.checks
	res.Unhealthy = len(causes) > 0 || f.ready == nil || f.ready.Status != corev1.ConditionTrue
	res.Suspect = (f.kubelet != nil && isDown(f.kubelet)) || (f.runtime != nil && isDown(f.runtime))
	res.Status.Summary = summary(f, causes)
	return res
}

func gather(in Input, th Thresholds) *facts {
	f := &facts{in: in, th: th}
	for i := range in.Node.Status.Conditions {
		if in.Node.Status.Conditions[i].Type == corev1.NodeReady {
			f.ready = &in.Node.Status.Conditions[i]
		}
	}
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
// its Lease went stale, or the node lifecycle controller already said so.
func (f *facts) heartbeatsStopped() ([]v1alpha1.Evidence, bool) {
	var ev []v1alpha1.Evidence
	if f.leaseKnown && f.leaseAge >= f.th.LeaseStaleAfter {
		t := metav1.NewTime(f.in.Lease.Spec.RenewTime.Time)
		ev = append(ev, v1alpha1.Evidence{Source: SourceLease, ObservedAt: &t, Supports: true,
			Message: fmt.Sprintf("Lease not renewed for %s (the kubelet renews every 10s)", round(f.leaseAge))})
	}
	if f.ready != nil && f.ready.Reason == "NodeStatusUnknown" {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeCondition, ObservedAt: &f.ready.LastTransitionTime, Supports: true,
			Message: fmt.Sprintf("Ready=%s, reason %s: %s", f.ready.Status, f.ready.Reason, f.ready.Message)})
	}
	return ev, len(ev) > 0
}

type rule struct {
	cause v1alpha1.Cause
	match func(*facts) ([]v1alpha1.Evidence, bool)
}

// rules, most specific first: the order is the ranking.
var rules = []rule{
	{v1alpha1.CauseKubeletDown, kubeletDown},
	{v1alpha1.CauseContainerRuntimeDown, runtimeDown},
}

func unitEvidence(u *v1alpha1.UnitState) v1alpha1.Evidence {
	return v1alpha1.Evidence{Source: SourceNodeReport, ObservedAt: u.Since, Supports: true, Message: describeUnit(*u)}
}

// kubeletDown: the agent is alive and says the kubelet unit is not active,
// and the kubelet's heartbeats stopped.
func kubeletDown(f *facts) ([]v1alpha1.Evidence, bool) {
	if !f.agentAlive || f.kubelet == nil || !isDown(f.kubelet) {
		return nil, false
	}
	hb, stopped := f.heartbeatsStopped()
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
	return ev, true
}

// runtimeDown: the agent is alive and says the container runtime unit is not
// active.
func runtimeDown(f *facts) ([]v1alpha1.Evidence, bool) {
	if !f.agentAlive || f.runtime == nil || !isDown(f.runtime) {
		return nil, false
	}
	ev := []v1alpha1.Evidence{unitEvidence(f.runtime)}
	if f.ready != nil && strings.Contains(f.ready.Message, "container runtime is down") {
		ev = append(ev, v1alpha1.Evidence{Source: SourceNodeCondition, ObservedAt: &f.ready.LastTransitionTime, Supports: true,
			Message: fmt.Sprintf("Ready=%s, reason %s: %s", f.ready.Status, f.ready.Reason, f.ready.Message)})
	}
	return ev, true
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
