package policies

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// gateNow is a Wednesday, 12:00 UTC.
var gateNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const gatePolicyName = "restart-kubelet"

// gateInput is a pending KubeletDown record on worker-1 under a policy with
// every limit at its default, in a fleet of 10 covered nodes with only this
// one unhealthy and another Ready control-plane node: Admit allows it.
func gateInput() GateInput {
	return GateInput{
		Policy: &v1alpha1.RemediationPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: gatePolicyName},
			Spec: v1alpha1.RemediationPolicySpec{
				Causes: []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseKubeletDown}},
				Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet},
				Mode:   v1alpha1.ModeAutomatic,
			},
		},
		Record: &v1alpha1.Remediation{
			ObjectMeta: metav1.ObjectMeta{Name: "worker-1-kubeletdown-1795607940"},
			Spec:       v1alpha1.RemediationSpec{NodeName: "worker-1", Cause: v1alpha1.CauseKubeletDown, Policy: gatePolicyName},
			Status:     v1alpha1.RemediationStatus{Phase: v1alpha1.PhasePending},
		},
		Node:              &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}},
		Unhealthy:         1,
		Covered:           10,
		ReadyControlPlane: 1,
		Now:               gateNow,
	}
}

// earlier is an earlier record of worker-1 that started startedAgo before
// gateNow and, if ranFor > 0, ended ranFor later (Failed); ranFor 0 means
// it is still Running.
func earlier(name string, cause v1alpha1.Cause, startedAgo, ranFor time.Duration) v1alpha1.Remediation {
	r := v1alpha1.Remediation{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.RemediationSpec{NodeName: "worker-1", Cause: cause, Policy: gatePolicyName},
		Status: v1alpha1.RemediationStatus{
			Phase:     v1alpha1.PhaseRunning,
			StartedAt: ptr.To(metav1.NewTime(gateNow.Add(-startedAgo))),
		},
	}
	if ranFor > 0 {
		r.Status.Phase = v1alpha1.PhaseFailed
		r.Status.CompletedAt = ptr.To(metav1.NewTime(gateNow.Add(-startedAgo + ranFor)))
	}
	return r
}

// asNotify makes the input a Notify policy's record, whose cause needs a
// person (Notify touches nothing).
func asNotify(in *GateInput) {
	in.Policy.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionNotify}
	in.Policy.Spec.Causes = []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseKernelDeadlock}}
	in.Record.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionNotify}
	in.Record.Spec.Cause = v1alpha1.CauseKernelDeadlock
}

// asCordon makes the input a Cordon policy's record.
func asCordon(in *GateInput) {
	in.Policy.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionCordon}
	in.Policy.Spec.Causes = []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseReadonlyFilesystem}}
	in.Record.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionCordon}
	in.Record.Spec.Cause = v1alpha1.CauseReadonlyFilesystem
}

// notified is an earlier Notify record (it touched nothing).
func notified(r v1alpha1.Remediation) v1alpha1.Remediation {
	r.Spec.Action.Type = v1alpha1.ActionNotify
	return r
}

// onNode is the same record on another node (for the policy-wide limits).
func onNode(r v1alpha1.Remediation, node string) v1alpha1.Remediation {
	r.Spec.NodeName = node
	r.Name = node + "-" + r.Name
	return r
}

// pendingRecord is another node's record that has not started.
func pendingRecord(name string) v1alpha1.Remediation {
	return v1alpha1.Remediation{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.RemediationSpec{NodeName: "worker-9", Cause: v1alpha1.CauseKubeletDown, Policy: gatePolicyName},
		Status:     v1alpha1.RemediationStatus{Phase: v1alpha1.PhasePending},
	}
}

func dur(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

func durp(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func maint(schedule string, d time.Duration, tz string) []v1alpha1.MaintenanceWindow {
	return []v1alpha1.MaintenanceWindow{{Schedule: schedule, Duration: dur(d), TimeZone: tz}}
}

func TestAdmit(t *testing.T) {
	const kd, cr = v1alpha1.CauseKubeletDown, v1alpha1.CauseContainerRuntimeDown
	allowed := Verdict{Allow: true}
	held := func(reason string) Verdict { return Verdict{Reason: reason} }
	heldUntil := func(reason string, t time.Time) Verdict { return Verdict{Reason: reason, NotBefore: t} }
	skipped := func(reason string) Verdict { return Verdict{Skip: true, Reason: reason} }

	for _, tc := range []struct {
		name string
		in   func(*GateInput)
		want Verdict
		msg  string // in the message, when not allowed
	}{
		// Nothing in the way: allowed.
		{"defaults", func(*GateInput) {}, allowed, ""},

		// --- a person's hold -------------------------------------------------

		// The maintenance annotation, whatever its value: held for the person.
		{"maintenance annotation", func(in *GateInput) {
			in.Node.Annotations = map[string]string{v1alpha1.AnnotationMaintenance: ""}
		}, held(v1alpha1.ReasonHeldForPerson), "nodeward.io/maintenance"},
		// Cordoned by someone else (no cordoned-by annotation): held for the person.
		{"cordoned by someone else", func(in *GateInput) {
			in.Node.Spec.Unschedulable = true
		}, held(v1alpha1.ReasonHeldForPerson), "cordoned by someone other than nodeward"},
		// Cordoned by nodeward itself: not a reason to hold.
		{"cordoned by nodeward", func(in *GateInput) {
			in.Node.Spec.Unschedulable = true
			in.Node.Annotations = map[string]string{v1alpha1.AnnotationCordonedBy: "worker-1-kubeletdown-1795600000"}
		}, allowed, ""},
		// Our annotation but not cordoned: nothing to hold for.
		{"cordoned-by annotation on a schedulable node", func(in *GateInput) {
			in.Node.Annotations = map[string]string{v1alpha1.AnnotationCordonedBy: "x"}
		}, allowed, ""},

		// --- the last control-plane node ---------------------------------------

		// A control-plane node with no other Ready control-plane node: held.
		{"last control-plane node", func(in *GateInput) {
			in.Node.Labels = map[string]string{LabelControlPlane: ""}
			in.ReadyControlPlane = 0
		}, held(v1alpha1.ReasonLastControlPlane), "last control-plane node"},
		// Another control-plane node is Ready: allowed.
		{"control-plane node with another Ready", func(in *GateInput) {
			in.Node.Labels = map[string]string{LabelControlPlane: ""}
			in.ReadyControlPlane = 1
		}, allowed, ""},
		// A worker is never held for the control plane's sake.
		{"worker with no Ready control plane", func(in *GateInput) {
			in.ReadyControlPlane = 0
		}, allowed, ""},

		// --- the attempt budget ----------------------------------------------

		// 3 earlier remediations of the same cause within 24h: skipped, a person is needed.
		{"budget spent", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{
				earlier("a", kd, 20*time.Hour, 3*time.Minute),
				earlier("b", kd, 10*time.Hour, 3*time.Minute),
				earlier("c", kd, 5*time.Hour, 3*time.Minute),
			}
		}, skipped(v1alpha1.ReasonAttemptBudgetSpent), "3 remediations of KubeletDown on node worker-1 within 24h0m0s did not fix it (budget 3)"},
		// 2 earlier of the same cause: within budget (the last ended long enough ago).
		{"budget not spent", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{
				earlier("a", kd, 20*time.Hour, 3*time.Minute),
				earlier("b", kd, 10*time.Hour, 3*time.Minute),
			}
		}, allowed, ""},
		// 3 earlier of a different cause: not this cause's budget (cooldown 40m long over).
		{"budget of another cause", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{
				earlier("a", cr, 20*time.Hour, 3*time.Minute),
				earlier("b", cr, 10*time.Hour, 3*time.Minute),
				earlier("c", cr, 5*time.Hour, 3*time.Minute),
			}
		}, allowed, ""},
		// 3 of the same cause, all started more than 24h ago: they don't count.
		{"budget records older than the window", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{
				earlier("a", kd, 30*time.Hour, 3*time.Minute),
				earlier("b", kd, 26*time.Hour, 3*time.Minute),
				earlier("c", kd, 24*time.Hour, 3*time.Minute),
			}
		}, allowed, ""},
		// Records that never started (DryRun, skipped, still pending) don't count.
		{"budget ignores records that never started", func(in *GateInput) {
			for _, n := range []string{"a", "b", "c"} {
				r := earlier(n, kd, time.Hour, 3*time.Minute)
				r.Status.StartedAt, r.Status.Phase = nil, v1alpha1.PhaseSkipped
				in.NodeRecords = append(in.NodeRecords, r)
			}
		}, allowed, ""},
		// The record itself, listed among the node's records, doesn't count.
		{"budget ignores the record itself", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.MaxAttempts = 1 })
			self := earlier(in.Record.Name, kd, time.Minute, 0)
			in.NodeRecords = []v1alpha1.Remediation{self}
		}, allowed, ""},
		// maxAttempts 1, attemptWindow 2h: 1 earlier within 2h spends it.
		{"budget custom", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.MaxAttempts, l.AttemptWindow = 1, durp(2*time.Hour) })
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", kd, 90*time.Minute, 3*time.Minute)}
		}, skipped(v1alpha1.ReasonAttemptBudgetSpent), "budget 1"},
		// attemptWindow 1h: the same record 90m ago is outside it.
		{"budget custom window passed", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.MaxAttempts, l.AttemptWindow = 1, durp(time.Hour) })
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", kd, 90*time.Minute, 3*time.Minute)}
		}, allowed, ""},

		// --- the node's cooldown ---------------------------------------------

		// The last remediation ended 5m ago, nodeCooldown 10m: held until its end + 10m.
		{"cooldown", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.NodeCooldown = durp(10 * time.Minute) })
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", kd, 8*time.Minute, 3*time.Minute)}
		}, heldUntil(v1alpha1.ReasonNodeCooldown, gateNow.Add(5*time.Minute)), "cooldown 10m0s (doubled per repeat) ends at 2026-11-25T12:05:00Z"},
		// nodeCooldown unset: the default 10m.
		{"cooldown default", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", kd, 8*time.Minute, 3*time.Minute)}
		}, heldUntil(v1alpha1.ReasonNodeCooldown, gateNow.Add(5*time.Minute)), "cooldown 10m0s"},
		// nodeCooldown 0s: no cooldown at all.
		{"cooldown zero", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.NodeCooldown = durp(0) })
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", kd, 2*time.Minute, time.Minute)}
		}, allowed, ""},
		// Ended exactly 10m ago: the cooldown is over.
		{"cooldown over", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", kd, 13*time.Minute, 3*time.Minute)}
		}, allowed, ""},
		// 2 earlier remediations in the window, the last ended 5m ago: doubled to 20m.
		{"cooldown doubled", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.NodeCooldown = durp(10 * time.Minute) })
			in.NodeRecords = []v1alpha1.Remediation{
				earlier("a", kd, 3*time.Hour, 3*time.Minute),
				earlier("b", kd, 8*time.Minute, 3*time.Minute),
			}
		}, heldUntil(v1alpha1.ReasonNodeCooldown, gateNow.Add(15*time.Minute)), "cooldown 20m0s"},
		// The repeat of another cause doubles it too (the node keeps needing help).
		{"cooldown doubled by another cause", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{
				earlier("a", cr, 3*time.Hour, 3*time.Minute),
				earlier("b", kd, 8*time.Minute, 3*time.Minute),
			}
		}, heldUntil(v1alpha1.ReasonNodeCooldown, gateNow.Add(15*time.Minute)), "cooldown 20m0s"},
		// A record older than the attempt window ends no later cooldown and doesn't double it.
		{"cooldown not doubled by old records", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{
				earlier("a", kd, 30*time.Hour, 3*time.Minute),
				earlier("b", kd, 8*time.Minute, 3*time.Minute),
			}
		}, heldUntil(v1alpha1.ReasonNodeCooldown, gateNow.Add(5*time.Minute)), "cooldown 10m0s"},
		// nodeCooldown 16h doubled is 32h: capped at 24h.
		{"cooldown capped at 24h", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.NodeCooldown = durp(16 * time.Hour) })
			in.NodeRecords = []v1alpha1.Remediation{
				earlier("a", kd, 20*time.Hour, 3*time.Minute),
				earlier("b", cr, 2*time.Hour, time.Hour),
			}
		}, heldUntil(v1alpha1.ReasonNodeCooldown, gateNow.Add(-time.Hour+24*time.Hour)), "cooldown 24h0m0s"},
		// A record still running ends no cooldown (it is not over yet).
		{"cooldown needs an ended record", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", cr, time.Minute, 0)}
		}, allowed, ""},

		// --- maintenance windows ---------------------------------------------

		// 12:00 is outside 02:00–03:00 UTC: held until tomorrow's 02:00.
		{"outside window", func(in *GateInput) {
			in.Policy.Spec.MaintenanceWindows = maint("0 2 * * *", time.Hour, "")
		}, heldUntil(v1alpha1.ReasonOutsideWindow, time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)), "waiting until 2026-11-26T02:00:00Z"},
		// 12:00 is inside 11:00–13:00: allowed.
		{"inside window", func(in *GateInput) {
			in.Policy.Spec.MaintenanceWindows = maint("0 11 * * *", 2*time.Hour, "")
		}, allowed, ""},
		// 12:00 UTC is 13:00 in Berlin, inside 13:00–14:00 there: allowed.
		{"inside window in a time zone", func(in *GateInput) {
			in.Policy.Spec.MaintenanceWindows = maint("0 13 * * *", time.Hour, "Europe/Berlin")
		}, allowed, ""},
		// A schedule that can't be parsed: held, nothing runs (fail closed).
		{"invalid cron", func(in *GateInput) {
			in.Policy.Spec.MaintenanceWindows = maint("0 25 * * *", time.Hour, "")
		}, held(v1alpha1.ReasonInvalidWindow), "fail closed"},
		// Even a schedule that matches every minute fails closed with a bad time zone.
		{"bad time zone", func(in *GateInput) {
			in.Policy.Spec.MaintenanceWindows = maint("* * * * *", time.Hour, "Mars/Olympus_Mons")
		}, held(v1alpha1.ReasonInvalidWindow), "Mars/Olympus_Mons"},

		// --- Cordon and Notify -----------------------------------------------

		// A Cordon is a disruption: the storm breaker, the last control-plane
		// guard and maxConcurrent hold it as any other action.
		{"cordon storm open", func(in *GateInput) { asCordon(in); in.Unhealthy = 4 }, held(v1alpha1.ReasonStormBreakerOpen), "4 of the policy's 10 nodes"},
		{"cordon last control-plane node", func(in *GateInput) {
			asCordon(in)
			in.Node.Labels = map[string]string{LabelControlPlane: ""}
			in.ReadyControlPlane = 0
		}, held(v1alpha1.ReasonLastControlPlane), "last control-plane node"},
		{"cordon maxConcurrent", func(in *GateInput) {
			asCordon(in)
			in.PolicyRecords = []v1alpha1.Remediation{onNode(earlier("a", kd, time.Minute, 0), "worker-2")}
		}, held(v1alpha1.ReasonRateLimited), "maxConcurrent 1"},
		// A Notify touches nothing: a storm (FleetNodeFault) is when a person
		// most needs telling, and the last control-plane node may be told about.
		{"notify in a storm", func(in *GateInput) { asNotify(in); in.Unhealthy = 10 }, allowed, ""},
		{"notify last control-plane node", func(in *GateInput) {
			asNotify(in)
			in.Node.Labels = map[string]string{LabelControlPlane: ""}
			in.ReadyControlPlane = 0
		}, allowed, ""},
		// The policy's own rate limits still bound the notices.
		{"notify maxConcurrent", func(in *GateInput) {
			asNotify(in)
			in.PolicyRecords = []v1alpha1.Remediation{onNode(earlier("a", kd, time.Minute, 0), "worker-2")}
		}, held(v1alpha1.ReasonRateLimited), "maxConcurrent 1"},
		// An earlier Notify did nothing to the node: no cooldown, no attempt
		// for a record that acts.
		{"notify starts no cooldown for a restart", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{notified(earlier("a", kd, 8*time.Minute, 3*time.Minute))}
		}, allowed, ""},
		{"notifies spend no restart budget", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{
				notified(earlier("a", kd, 20*time.Hour, 3*time.Minute)),
				notified(earlier("b", kd, 10*time.Hour, 3*time.Minute)),
				notified(earlier("c", kd, 5*time.Hour, 3*time.Minute)),
			}
		}, allowed, ""},
		// Between Notify records the cooldown still spaces the notices.
		{"notify cooled down by a notify", func(in *GateInput) {
			asNotify(in)
			in.NodeRecords = []v1alpha1.Remediation{notified(earlier("a", v1alpha1.CauseKernelDeadlock, 8*time.Minute, 3*time.Minute))}
		}, heldUntil(v1alpha1.ReasonNodeCooldown, gateNow.Add(5*time.Minute)), "cooldown 10m0s"},

		// --- the storm breaker -----------------------------------------------

		// 4 of 10 unhealthy, default 30% (3): held.
		{"storm open", func(in *GateInput) { in.Unhealthy = 4 }, held(v1alpha1.ReasonStormBreakerOpen), "4 of the policy's 10 nodes are unhealthy or being remediated (at most 3 allowed)"},
		// 3 of 10, default 30%: allowed.
		{"storm at the limit", func(in *GateInput) { in.Unhealthy = 3 }, allowed, ""},
		// maxUnhealthy 2 (a count), 3 unhealthy: held.
		{"storm count", func(in *GateInput) {
			in.Policy.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromInt32(2))
			in.Unhealthy = 3
		}, held(v1alpha1.ReasonStormBreakerOpen), "at most 2 allowed"},
		// maxUnhealthy 2, 2 unhealthy: allowed.
		{"storm count at the limit", func(in *GateInput) {
			in.Policy.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromInt32(2))
			in.Unhealthy = 2
		}, allowed, ""},
		// 30% of 3 nodes rounds up to 1: this one node unhealthy is allowed.
		{"storm small fleet, one unhealthy", func(in *GateInput) { in.Unhealthy, in.Covered = 1, 3 }, allowed, ""},
		// 30% of 3 nodes rounds up to 1: a second unhealthy node holds.
		{"storm small fleet, two unhealthy", func(in *GateInput) { in.Unhealthy, in.Covered = 2, 3 }, held(v1alpha1.ReasonStormBreakerOpen), "2 of the policy's 3 nodes are unhealthy or being remediated (at most 1 allowed)"},
		// maxUnhealthy 0%: nothing is ever remediated, not even one node.
		{"storm zero percent", func(in *GateInput) {
			in.Policy.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromString("0%"))
		}, held(v1alpha1.ReasonStormBreakerOpen), "at most 0 allowed"},
		// A percentage that can't be read: the policy can't act, nothing
		// runs (fail closed), and the record says why.
		{"storm unreadable", func(in *GateInput) {
			in.Policy.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromString("lots"))
		}, held(v1alpha1.PolicyReasonInvalidStormBreaker), "spec.stormBreaker.maxUnhealthy"},
		// A policy whose selector broke after the record was decided (one
		// stored before admission checked selectors): nothing runs.
		{"selector invalid", func(in *GateInput) {
			in.Policy.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"my pool": "a"}}
		}, held(v1alpha1.PolicyReasonInvalidNodeSelector), `key "my pool"`},
		// An advisory cause bound to an action (stored before the rule).
		{"advisory binding", func(in *GateInput) {
			in.Policy.Spec.Causes = append(in.Policy.Spec.Causes, v1alpha1.CauseMatch{Cause: v1alpha1.CauseKernelDeadlock})
		}, held(v1alpha1.PolicyReasonInvalidCauses), "KernelDeadlock need a person"},

		// --- maxConcurrent ---------------------------------------------------

		// One of the policy's records Running on another node, default maxConcurrent 1: held.
		{"concurrent running", func(in *GateInput) {
			in.PolicyRecords = []v1alpha1.Remediation{onNode(earlier("a", kd, time.Minute, 0), "worker-2")}
		}, held(v1alpha1.ReasonRateLimited), "1 of the policy's remediations are running (maxConcurrent 1)"},
		// A record the executor just started, still Pending in its cache: counts as running.
		{"concurrent started recently", func(in *GateInput) {
			in.PolicyRecords = []v1alpha1.Remediation{pendingRecord("worker-9-kubeletdown-1")}
			in.StartedRecently = map[string]time.Time{"worker-9-kubeletdown-1": gateNow.Add(-2 * time.Second)}
		}, held(v1alpha1.ReasonRateLimited), "maxConcurrent 1"},
		// A pending record that did not start: not running.
		{"concurrent pending", func(in *GateInput) {
			in.PolicyRecords = []v1alpha1.Remediation{pendingRecord("worker-9-kubeletdown-1")}
		}, allowed, ""},
		// A record that ended: not running.
		{"concurrent ended", func(in *GateInput) {
			in.PolicyRecords = []v1alpha1.Remediation{onNode(earlier("a", kd, 2*time.Hour, time.Minute), "worker-2")}
		}, allowed, ""},
		// The record itself, already Running in the list: it does not hold itself.
		{"concurrent self", func(in *GateInput) {
			in.PolicyRecords = []v1alpha1.Remediation{earlier(in.Record.Name, kd, time.Minute, 0)}
			in.StartedRecently = map[string]time.Time{in.Record.Name: gateNow}
		}, allowed, ""},
		// maxConcurrent 2 with one running: allowed.
		{"concurrent below the limit", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.MaxConcurrent = 2 })
			in.PolicyRecords = []v1alpha1.Remediation{onNode(earlier("a", kd, time.Minute, 0), "worker-2")}
		}, allowed, ""},
		// maxConcurrent 2 with one running and one only in StartedRecently: held.
		{"concurrent at the limit with one started recently", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.MaxConcurrent = 2 })
			in.PolicyRecords = []v1alpha1.Remediation{
				onNode(earlier("a", kd, time.Minute, 0), "worker-2"),
				pendingRecord("worker-9-kubeletdown-1"),
			}
			in.StartedRecently = map[string]time.Time{"worker-9-kubeletdown-1": gateNow}
		}, held(v1alpha1.ReasonRateLimited), "2 of the policy's remediations are running (maxConcurrent 2)"},

		// --- maxPerPeriod ----------------------------------------------------

		// 2 per 1h, 2 started 10m and 20m ago (both ended): held until the older + 1h.
		{"per period", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.MaxPerPeriod = &v1alpha1.RatePeriod{Count: 2, Period: dur(time.Hour)} })
			in.PolicyRecords = []v1alpha1.Remediation{
				onNode(earlier("a", kd, 10*time.Minute, time.Minute), "worker-2"),
				onNode(earlier("b", kd, 20*time.Minute, time.Minute), "worker-3"),
			}
		}, heldUntil(v1alpha1.ReasonRateLimited, gateNow.Add(40*time.Minute)), "2 remediations started within 1h0m0s (maxPerPeriod 2); next possible at 2026-11-25T12:40:00Z"},
		// 2 per 1h, one 10m ago and one 70m ago: allowed.
		{"per period, one outside", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.MaxPerPeriod = &v1alpha1.RatePeriod{Count: 2, Period: dur(time.Hour)} })
			in.PolicyRecords = []v1alpha1.Remediation{
				onNode(earlier("a", kd, 10*time.Minute, time.Minute), "worker-2"),
				onNode(earlier("b", kd, 70*time.Minute, time.Minute), "worker-3"),
			}
		}, allowed, ""},
		// 2 per 1h, one ended 10m ago and one only in StartedRecently: held.
		{"per period with one started recently", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) {
				l.MaxConcurrent = 5
				l.MaxPerPeriod = &v1alpha1.RatePeriod{Count: 2, Period: dur(time.Hour)}
			})
			in.PolicyRecords = []v1alpha1.Remediation{
				onNode(earlier("a", kd, 10*time.Minute, time.Minute), "worker-2"),
				pendingRecord("worker-9-kubeletdown-1"),
			}
			in.StartedRecently = map[string]time.Time{"worker-9-kubeletdown-1": gateNow.Add(-time.Second)}
		}, heldUntil(v1alpha1.ReasonRateLimited, gateNow.Add(50*time.Minute)), "maxPerPeriod 2"},

		// --- the order of the checks -----------------------------------------

		// A person's hold comes before everything, even the last control-plane node and a spent budget.
		{"order: person before control plane and budget", func(in *GateInput) {
			in.Node.Annotations = map[string]string{v1alpha1.AnnotationMaintenance: "disk swap"}
			in.Node.Labels = map[string]string{LabelControlPlane: ""}
			in.ReadyControlPlane = 0
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", kd, 3*time.Hour, time.Minute), earlier("b", kd, 2*time.Hour, time.Minute), earlier("c", kd, time.Hour, time.Minute)}
		}, held(v1alpha1.ReasonHeldForPerson), ""},
		// The last control-plane node holds (it may change) before the budget skips.
		{"order: control plane before budget", func(in *GateInput) {
			in.Node.Labels = map[string]string{LabelControlPlane: ""}
			in.ReadyControlPlane = 0
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", kd, 3*time.Hour, time.Minute), earlier("b", kd, 2*time.Hour, time.Minute), earlier("c", kd, time.Hour, time.Minute)}
		}, held(v1alpha1.ReasonLastControlPlane), ""},
		// A spent budget skips even while the node is cooling down and everything else holds.
		{"order: budget before cooldown", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", kd, 3*time.Hour, time.Minute), earlier("b", kd, 2*time.Hour, time.Minute), earlier("c", kd, 5*time.Minute, time.Minute)}
			in.Policy.Spec.MaintenanceWindows = maint("0 2 * * *", time.Hour, "")
			in.Unhealthy = 10
		}, skipped(v1alpha1.ReasonAttemptBudgetSpent), ""},
		// The cooldown before the maintenance window.
		{"order: cooldown before window", func(in *GateInput) {
			in.NodeRecords = []v1alpha1.Remediation{earlier("a", kd, 5*time.Minute, time.Minute)}
			in.Policy.Spec.MaintenanceWindows = maint("0 2 * * *", time.Hour, "")
		}, heldUntil(v1alpha1.ReasonNodeCooldown, gateNow.Add(6*time.Minute)), ""},
		// An unreadable window before the storm breaker.
		{"order: invalid window before storm", func(in *GateInput) {
			in.Policy.Spec.MaintenanceWindows = maint("0 2 * *", time.Hour, "")
			in.Unhealthy = 10
		}, held(v1alpha1.ReasonInvalidWindow), ""},
		// The window before the storm breaker.
		{"order: window before storm", func(in *GateInput) {
			in.Policy.Spec.MaintenanceWindows = maint("0 2 * * *", time.Hour, "")
			in.Unhealthy = 10
		}, heldUntil(v1alpha1.ReasonOutsideWindow, time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)), ""},
		// The storm breaker before maxConcurrent.
		{"order: storm before concurrency", func(in *GateInput) {
			in.Unhealthy = 10
			in.PolicyRecords = []v1alpha1.Remediation{onNode(earlier("a", kd, time.Minute, 0), "worker-2")}
		}, held(v1alpha1.ReasonStormBreakerOpen), ""},
		// maxConcurrent before maxPerPeriod: the message is about the running one, no NotBefore.
		{"order: concurrency before period", func(in *GateInput) {
			withLimits(in, func(l *v1alpha1.Limits) { l.MaxPerPeriod = &v1alpha1.RatePeriod{Count: 1, Period: dur(time.Hour)} })
			in.PolicyRecords = []v1alpha1.Remediation{onNode(earlier("a", kd, time.Minute, 0), "worker-2")}
		}, held(v1alpha1.ReasonRateLimited), "maxConcurrent 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := gateInput()
			tc.in(&in)
			got := Admit(in)
			if got.Allow != tc.want.Allow || got.Skip != tc.want.Skip || got.Reason != tc.want.Reason || !got.NotBefore.Equal(tc.want.NotBefore) {
				t.Fatalf("Admit = allow %v, skip %v, %s, notBefore %s (%q)\nwant allow %v, skip %v, %s, notBefore %s",
					got.Allow, got.Skip, got.Reason, fmtTime(got.NotBefore), got.Message,
					tc.want.Allow, tc.want.Skip, tc.want.Reason, fmtTime(tc.want.NotBefore))
			}
			if got.Allow {
				if got.Message != "" {
					t.Errorf("allowed with message %q", got.Message)
				}
				return
			}
			if got.Message == "" || !strings.Contains(got.Message, tc.msg) {
				t.Errorf("message %q does not contain %q", got.Message, tc.msg)
			}
		})
	}
}

// withLimits edits the input policy's limits.
func withLimits(in *GateInput, f func(*v1alpha1.Limits)) { f(&in.Policy.Spec.Limits) }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// MaxUnhealthy scales a percentage of the covered nodes, rounding up, or
// takes a count as is.
func TestMaxUnhealthy(t *testing.T) {
	for _, tc := range []struct {
		v       *intstr.IntOrString
		covered int
		want    int
	}{
		{nil, 10, 3}, // default 30%
		{nil, 3, 1},  // 0.9 rounds up
		{nil, 11, 4}, // 3.3 rounds up
		{nil, 100, 30},
		{ptr.To(intstr.FromString("50%")), 5, 3},
		{ptr.To(intstr.FromString("100%")), 7, 7},
		{ptr.To(intstr.FromString("0%")), 7, 0},
		{ptr.To(intstr.FromInt32(2)), 100, 2},
		{ptr.To(intstr.FromString("many")), 10, 0}, // unreadable: fail closed
	} {
		p := &v1alpha1.RemediationPolicy{Spec: v1alpha1.RemediationPolicySpec{StormBreaker: v1alpha1.StormBreaker{MaxUnhealthy: tc.v}}}
		if got := MaxUnhealthy(p, tc.covered); got != tc.want {
			t.Errorf("MaxUnhealthy(%v, %d) = %d, want %d", tc.v, tc.covered, got, tc.want)
		}
	}
}
