package policies

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func withSelector(sel *metav1.LabelSelector) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) { p.Spec.NodeSelector = sel }
}

func withWindow(schedule, tz string) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) {
		p.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{win(schedule, time.Hour, tz)}
	}
}

// brokenPolicies are policies admission refuses today (or can't check) as
// they could still be stored: each can't act, and says why.
func brokenPolicies() []struct {
	name   string
	p      v1alpha1.RemediationPolicy
	reason string
	want   string // in the message
} {
	exprs := func(e ...metav1.LabelSelectorRequirement) policyOpt {
		return withSelector(&metav1.LabelSelector{MatchExpressions: e})
	}
	return []struct {
		name   string
		p      v1alpha1.RemediationPolicy
		reason string
		want   string
	}{
		{"key with spaces", policy("x", selector(map[string]string{"my pool": "a"})), v1alpha1.PolicyReasonInvalidNodeSelector, `spec.nodeSelector.matchLabels: key "my pool"`},
		{"empty key", policy("x", selector(map[string]string{"": "a"})), v1alpha1.PolicyReasonInvalidNodeSelector, `key ""`},
		{"a/b/c key", policy("x", selector(map[string]string{"a/b/c": "a"})), v1alpha1.PolicyReasonInvalidNodeSelector, `key "a/b/c"`},
		{"300-char value", policy("x", selector(map[string]string{"pool": strings.Repeat("v", 300)})), v1alpha1.PolicyReasonInvalidNodeSelector, `spec.nodeSelector.matchLabels["pool"]: value`},
		{"value with spaces", policy("x", selector(map[string]string{"pool": "a b"})), v1alpha1.PolicyReasonInvalidNodeSelector, `matchLabels["pool"]`},
		{"expression key", policy("x", exprs(metav1.LabelSelectorRequirement{Key: "-bad", Operator: metav1.LabelSelectorOpExists})), v1alpha1.PolicyReasonInvalidNodeSelector, "spec.nodeSelector.matchExpressions[0].key"},
		{"expression value", policy("x", exprs(metav1.LabelSelectorRequirement{Key: "pool", Operator: metav1.LabelSelectorOpIn, Values: []string{"ok", "not ok"}})), v1alpha1.PolicyReasonInvalidNodeSelector, "spec.nodeSelector.matchExpressions[0].values[1]"},
		{"expression operator", policy("x", exprs(metav1.LabelSelectorRequirement{Key: "pool", Operator: "Near"})), v1alpha1.PolicyReasonInvalidNodeSelector, "spec.nodeSelector.matchExpressions[0].operator"},
		{"In without values", policy("x", exprs(metav1.LabelSelectorRequirement{Key: "pool", Operator: metav1.LabelSelectorOpIn})), v1alpha1.PolicyReasonInvalidNodeSelector, "matchExpressions[0].values must be non-empty"},
		{"Exists with values", policy("x", exprs(metav1.LabelSelectorRequirement{Key: "pool", Operator: metav1.LabelSelectorOpExists, Values: []string{"a"}})), v1alpha1.PolicyReasonInvalidNodeSelector, "matchExpressions[0].values must be empty"},
		{"bad schedule", policy("x", withWindow("0 25 * * *", "")), v1alpha1.PolicyReasonInvalidWindow, "spec.maintenanceWindows[0].schedule"},
		{"@every", policy("x", withWindow("@every 1h", "")), v1alpha1.PolicyReasonInvalidWindow, "@every is refused"},
		{"bad zone", policy("x", withWindow("@daily", "Mars/Olympus")), v1alpha1.PolicyReasonInvalidWindow, "spec.maintenanceWindows[0].timeZone"},
		{"never opens", policy("x", withWindow("0 2 31 2 *", "")), v1alpha1.PolicyReasonInvalidWindow, "never opens"},
		{"no causes", policy("x", func(p *v1alpha1.RemediationPolicy) { p.Spec.Causes = nil }), v1alpha1.PolicyReasonInvalidCauses, "spec.causes is empty"},
		{"unknown cause", policy("x", handles("KubeletSad", 0)), v1alpha1.PolicyReasonInvalidCauses, `spec.causes[0].cause "KubeletSad"`},
		{"advisory", policy("x", handles(v1alpha1.CauseKernelDeadlock, 0)), v1alpha1.PolicyReasonInvalidCauses, "spec.causes: KernelDeadlock need a person"},
		{"advisory with a drain: the advisory cause is named first", policy("x", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action.Type = v1alpha1.ActionCordonDrain
			p.Spec.Causes = []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseControlPlaneDegraded}, {Cause: v1alpha1.CauseOldSystemd}}
		}), v1alpha1.PolicyReasonInvalidCauses, "spec.causes: OldSystemd need a person"},
		{"restart on PLEG", policy("x", handles(v1alpha1.CausePLEGUnhealthy, 0)), v1alpha1.PolicyReasonInvalidCauses, "spec.causes: PLEGUnhealthy cannot be bound to RestartKubelet"},
		{"drain on the control plane", policy("x", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action.Type = v1alpha1.ActionCordonDrain
			p.Spec.Causes[0].Cause = v1alpha1.CauseControlPlaneDegraded
		}), v1alpha1.PolicyReasonInvalidCauses, "ControlPlaneDegraded cannot be bound to CordonDrain"},
		{"unknown action", policy("x", func(p *v1alpha1.RemediationPolicy) { p.Spec.Action.Type = "RunScript" }), v1alpha1.PolicyReasonInvalidAction, `spec.action.type "RunScript"`},
		{"drain params on a restart", policy("x", func(p *v1alpha1.RemediationPolicy) { p.Spec.Action.Drain = &v1alpha1.DrainParams{} }), v1alpha1.PolicyReasonInvalidAction, "spec.action.drain"},
		{"tune without control plane", policy("x", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionTuneGracePeriods, TuneGracePeriods: &v1alpha1.TuneGracePeriodsParams{NodeMonitorGracePeriod: metav1.Duration{Duration: time.Minute}}}
			p.Spec.Causes[0].Cause = v1alpha1.CausePLEGUnhealthy
		}), v1alpha1.PolicyReasonInvalidAction, "spec.includeControlPlane"},
		{"unknown mode", policy("x", func(p *v1alpha1.RemediationPolicy) { p.Spec.Mode = "Sometimes" }), v1alpha1.PolicyReasonInvalidMode, `spec.mode "Sometimes"`},
		{"storm breaker", policy("x", func(p *v1alpha1.RemediationPolicy) {
			v := intstr.FromString("lots")
			p.Spec.StormBreaker.MaxUnhealthy = &v
		}), v1alpha1.PolicyReasonInvalidStormBreaker, "spec.stormBreaker.maxUnhealthy"},
		{"negative storm breaker", policy("x", func(p *v1alpha1.RemediationPolicy) {
			v := intstr.FromInt32(-1)
			p.Spec.StormBreaker.MaxUnhealthy = &v
		}), v1alpha1.PolicyReasonInvalidStormBreaker, "spec.stormBreaker.maxUnhealthy"},
	}
}

func TestCheckPolicy(t *testing.T) {
	good := []v1alpha1.RemediationPolicy{
		policy("plain"),
		policy("selector", selector(map[string]string{"pool": "general", "example.com/zone": "eu-1a", "empty-value": ""})),
		policy("window", withWindow("@weekly", "Europe/Berlin")),
		policy("paused", paused), // paused is not broken: it is Ready=False for its own reason
	}
	for _, p := range good {
		if pr := CheckPolicy(&p); pr != nil {
			t.Errorf("%s: %v", p.Name, pr.Message)
		}
	}
	for _, tc := range brokenPolicies() {
		t.Run(tc.name, func(t *testing.T) {
			pr := CheckPolicy(&tc.p)
			if pr == nil {
				t.Fatal("no problem found")
			}
			if pr.Reason != tc.reason || !strings.Contains(pr.Message, tc.want) {
				t.Errorf("got %s %q, want %s containing %q", pr.Reason, pr.Message, tc.reason, tc.want)
			}
			// The status says the same, as Ready=False.
			c := PolicyReady(&tc.p)
			if c.Status != metav1.ConditionFalse || c.Reason != tc.reason || !strings.Contains(c.Message, tc.want) {
				t.Errorf("Ready = %s %s %q", c.Status, c.Reason, c.Message)
			}
		})
	}
}

// The same broken selector always gives the same message (the status must
// not flap), whatever Go's map order.
func TestCheckPolicyDeterministic(t *testing.T) {
	p := policy("x", selector(map[string]string{"b b": "1", "a a": "2", "c c": "3", "ok": "bad value"}))
	first := CheckPolicy(&p).Message
	for i := 0; i < 50; i++ {
		if got := CheckPolicy(&p).Message; got != first {
			t.Fatalf("message changed: %q then %q", first, got)
		}
	}
	if !strings.Contains(first, `"a a"`) {
		t.Errorf("message %q does not name the first key in order", first)
	}
}

// A policy whose selector can't be parsed covers no node, so the working
// lower-priority policy decides. Any other broken policy that covers the node
// still wins — falling through could act where it was written to hold back —
// and Admit holds its record, naming the problem (fail closed, not silent).
func TestBrokenPolicyHoldsInsteadOfFallingThrough(t *testing.T) {
	for _, tc := range brokenPolicies() {
		t.Run(tc.name, func(t *testing.T) {
			broken := tc.p
			broken.Name, broken.Spec.Priority = "a-broken", 1000
			working := policy("z-working", handles(v1alpha1.CauseKubeletDown, 0))
			causes := diagnosed(v1alpha1.CauseKubeletDown, v1alpha1.CausePLEGUnhealthy, v1alpha1.CauseControlPlaneDegraded, v1alpha1.CauseKernelDeadlock, v1alpha1.CauseOldSystemd)
			m, ok := Select([]v1alpha1.RemediationPolicy{broken, working}, worker, causes)
			if !ok {
				t.Fatal("Select chose nothing")
			}
			if tc.reason == v1alpha1.PolicyReasonInvalidNodeSelector {
				if m.Policy.Name != "z-working" {
					t.Fatalf("Select = %s; a policy with an unparsable selector covers no node, want z-working", m.Policy.Name)
				}
				return
			}
			if m.Policy.Name != "a-broken" {
				// The broken policy may not handle the first cause at all
				// (no causes, an unknown one): then the working one decides.
				if slices.ContainsFunc(broken.Spec.Causes, func(c v1alpha1.CauseMatch) bool { return c.Cause == m.Cause.Cause }) {
					t.Fatalf("Select = %s for %s, which a-broken handles at a higher priority", m.Policy.Name, m.Cause.Cause)
				}
				return
			}
			rec := &v1alpha1.Remediation{Spec: v1alpha1.RemediationSpec{NodeName: worker.Name, Cause: m.Cause.Cause, Policy: broken.Name}}
			v := Admit(GateInput{Policy: m.Policy, Record: rec, Node: worker, Now: time.Unix(1764036000, 0)})
			if v.Allow || v.Skip || v.Reason != tc.reason || !strings.Contains(v.Message, tc.want) {
				t.Fatalf("Admit = %+v; want a hold %s naming %q", v, tc.reason, tc.want)
			}
		})
	}
}
