package policies

import (
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// GateInput is everything Admit reads to decide whether a pending record may
// start now.
type GateInput struct {
	Policy *v1alpha1.RemediationPolicy
	Record *v1alpha1.Remediation
	Node   *corev1.Node
	// NodeRecords are all records of the node; PolicyRecords all records of
	// the policy (both may include Record).
	NodeRecords, PolicyRecords []v1alpha1.Remediation
	// StartedRecently names records this executor started that its cache may
	// not show as started yet.
	StartedRecently map[string]time.Time
	// Unhealthy and Covered count the policy's nodes for the storm breaker.
	Unhealthy, Covered int
	// ReadyControlPlane counts Ready control-plane nodes other than Node.
	ReadyControlPlane int
	Now               time.Time
}

// Verdict is Admit's answer.
type Verdict struct {
	// Allow: start now. Otherwise Skip ends the record; else it waits.
	Allow, Skip bool
	Reason      string
	Message     string
	// NotBefore, when set, is the earliest the answer can change.
	NotBefore time.Time
}

func hold(reason, format string, args ...any) Verdict {
	return Verdict{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// TouchesNothing reports whether an action leaves the node as it is:
// Notify only records and tells a person. Such a record is no disruption:
// the storm breaker and the last control-plane guard do not hold it back, it
// does not count as its node being remediated (StormCounts), and it is no
// earlier attempt and starts no cooldown for the node's other records.
func TouchesNothing(a v1alpha1.ActionType) bool {
	return a == v1alpha1.ActionNotify
}

// Admit applies the policy's safety limits to a pending record, in order:
// a person's hold, the last control-plane node, the attempt budget, the
// node's cooldown, a policy that can't act (CheckPolicy), maintenance
// windows, the storm breaker, concurrency and the rate per period. A record
// that touches nothing (TouchesNothing) skips the last control-plane guard
// and the storm breaker: they limit disruption, and a storm is when a person
// most needs telling (FleetNodeFault may only be bound to Notify).
func Admit(in GateInput) Verdict {
	p, rec, node, now := in.Policy, in.Record, in.Node, in.Now
	lim := p.Spec.Limits
	harmless := TouchesNothing(rec.Spec.Action.Type)

	if _, ok := node.Annotations[v1alpha1.AnnotationMaintenance]; ok {
		return hold(v1alpha1.ReasonHeldForPerson, "node %s carries %s: a person is working on it; nodeward holds back until the annotation is removed", node.Name, v1alpha1.AnnotationMaintenance)
	}
	if node.Spec.Unschedulable && node.Annotations[v1alpha1.AnnotationCordonedBy] == "" {
		return hold(v1alpha1.ReasonHeldForPerson, "node %s was cordoned by someone other than nodeward (a drain or an upgrade in progress?); nodeward holds back until it is uncordoned", node.Name)
	}
	if _, cp := node.Labels[LabelControlPlane]; cp && in.ReadyControlPlane == 0 && !harmless {
		return hold(v1alpha1.ReasonLastControlPlane, "node %s is the last control-plane node; nodeward never restarts or drains it while no other control-plane node is Ready", node.Name)
	}

	// The attempt budget and the cooldown look at the node's earlier records
	// that did act (they started).
	maxAttempts := int(orDefault32(lim.MaxAttempts, 3))
	window := orDefaultDur(lim.AttemptWindow, 24*time.Hour)
	attempts, consecutive := 0, 0
	var lastEnd time.Time
	for i := range in.NodeRecords {
		r := &in.NodeRecords[i]
		if r.Name == rec.Name || r.Status.StartedAt == nil {
			continue
		}
		if TouchesNothing(r.Spec.Action.Type) && !harmless {
			continue // a Notify did nothing to the node: no attempt, no cooldown for an action that does
		}
		if r.Spec.Cause == rec.Spec.Cause && now.Sub(r.Status.StartedAt.Time) < window {
			attempts++
		}
		if r.Status.CompletedAt != nil && r.Status.CompletedAt.Time.After(lastEnd) {
			lastEnd = r.Status.CompletedAt.Time
		}
		if now.Sub(r.Status.StartedAt.Time) < window {
			consecutive++ // every remediation of the node in the window counts as a repeat
		}
	}
	if attempts >= maxAttempts {
		return Verdict{Skip: true, Reason: v1alpha1.ReasonAttemptBudgetSpent, Message: fmt.Sprintf(
			"%d remediations of %s on node %s within %s did not fix it (budget %d): a person is needed", attempts, rec.Spec.Cause, node.Name, window, maxAttempts)}
	}
	if !lastEnd.IsZero() {
		base := orDefaultDur(lim.NodeCooldown, 10*time.Minute)
		cool := time.Duration(math.Min(float64(base)*math.Pow(2, float64(max(consecutive-1, 0))), float64(24*time.Hour)))
		if until := lastEnd.Add(cool); now.Before(until) {
			v := hold(v1alpha1.ReasonNodeCooldown, "node %s was remediated %s ago; cooldown %s (doubled per repeat) ends at %s", node.Name, now.Sub(lastEnd).Round(time.Second), cool, until.UTC().Format(time.RFC3339))
			v.NotBefore = until
			return v
		}
	}

	// A policy that can't act as written (its status says Ready=False)
	// starts nothing, even for a record decided before it broke.
	if pr := CheckPolicy(p); pr != nil {
		return hold(pr.Reason, "policy %s can't act, so nothing runs (fail closed): %s", p.Name, pr.Message)
	}
	if ws := Windows(p.Spec.MaintenanceWindows, now); ws.Err != nil {
		return hold(v1alpha1.ReasonInvalidWindow, "maintenance window can't be read, so nothing runs (fail closed): %v", ws.Err)
	} else if !ws.Open {
		v := hold(v1alpha1.ReasonOutsideWindow, "outside the policy's maintenance windows; waiting until %s", ws.Until.UTC().Format(time.RFC3339))
		v.NotBefore = ws.Until
		return v
	}

	if max := MaxUnhealthy(p, in.Covered); in.Unhealthy > max && !harmless {
		return hold(v1alpha1.ReasonStormBreakerOpen, "storm breaker open: %d of the policy's %d nodes are unhealthy or being remediated (at most %d allowed)", in.Unhealthy, in.Covered, max)
	}

	running, startedInPeriod := 0, 0
	var oldestInPeriod time.Time
	period := time.Duration(0)
	if lim.MaxPerPeriod != nil {
		period = lim.MaxPerPeriod.Period.Duration
	}
	for i := range in.PolicyRecords {
		r := &in.PolicyRecords[i]
		if r.Name == rec.Name {
			continue
		}
		started := r.Status.StartedAt
		if started == nil {
			if at, ok := in.StartedRecently[r.Name]; ok {
				running++
				if period > 0 && now.Sub(at) < period {
					startedInPeriod++
				}
			}
			continue
		}
		if !r.Status.Phase.IsTerminal() {
			running++
		}
		if period > 0 && now.Sub(started.Time) < period {
			startedInPeriod++
			if oldestInPeriod.IsZero() || started.Time.Before(oldestInPeriod) {
				oldestInPeriod = started.Time
			}
		}
	}
	if maxC := int(orDefault32(lim.MaxConcurrent, 1)); running >= maxC {
		return hold(v1alpha1.ReasonRateLimited, "%d of the policy's remediations are running (maxConcurrent %d); waiting for one to end", running, maxC)
	}
	if lim.MaxPerPeriod != nil && startedInPeriod >= int(lim.MaxPerPeriod.Count) {
		v := hold(v1alpha1.ReasonRateLimited, "%d remediations started within %s (maxPerPeriod %d)", startedInPeriod, period, lim.MaxPerPeriod.Count)
		if !oldestInPeriod.IsZero() {
			v.NotBefore = oldestInPeriod.Add(period)
			v.Message += "; next possible at " + v.NotBefore.UTC().Format(time.RFC3339)
		}
		return v
	}
	return Verdict{Allow: true}
}

// MaxUnhealthy is the storm breaker's threshold for a policy covering
// covered nodes (default 30%).
func MaxUnhealthy(p *v1alpha1.RemediationPolicy, covered int) int {
	v := p.Spec.StormBreaker.MaxUnhealthy
	if v == nil {
		d := intstr.FromString("30%")
		v = &d
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, covered, true) // round up: 30% of 3 nodes allows 1
	if err != nil {
		return 0 // unreadable: fail closed
	}
	return n
}

func orDefault32(v, d int32) int32 {
	if v <= 0 {
		return d
	}
	return v
}

// orDefaultDur reads an optional duration; absent means the API default.
// (A zero cooldown is a valid choice, so only nil falls back.)
func orDefaultDur(v *metav1.Duration, d time.Duration) time.Duration {
	if v == nil {
		return d
	}
	return v.Duration
}
