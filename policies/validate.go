package policies

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Problem is why a policy can't act as written: the reason and message of
// its Ready=False condition. Message starts with the field at fault.
type Problem struct {
	Reason  string
	Message string
}

func (p *Problem) Error() string { return p.Message }

func problem(reason, format string, args ...any) *Problem {
	return &Problem{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// CheckPolicy reports why the policy can't act, or nil when it can. Admission
// refuses all of these; CheckPolicy catches what it let through anyway (a
// policy stored before a rule existed, a rule admission can't express, such
// as a time zone or a schedule that never comes). Admit holds the records of a
// policy with a problem (Select skips only one whose selector can't be
// read: it covers no node), and the policy's
// status says Ready=False with the problem. The result is deterministic (the
// status must not flap between two messages).
func CheckPolicy(p *v1alpha1.RemediationPolicy) *Problem {
	s := &p.Spec
	if err := ValidateSelector(s.NodeSelector); err != nil {
		return problem(v1alpha1.PolicyReasonInvalidNodeSelector, "%v", err)
	}
	if pr := checkCausesAndAction(s); pr != nil {
		return pr
	}
	switch s.Mode {
	case "", v1alpha1.ModeAutomatic, v1alpha1.ModeDryRun, v1alpha1.ModeRequireApproval:
	default:
		return problem(v1alpha1.PolicyReasonInvalidMode, "spec.mode %q is not Automatic, DryRun or RequireApproval", s.Mode)
	}
	if v := s.StormBreaker.MaxUnhealthy; v != nil {
		if _, err := intstr.GetScaledValueFromIntOrPercent(v, 100, true); err != nil || (v.Type == intstr.Int && v.IntVal < 0) {
			return problem(v1alpha1.PolicyReasonInvalidStormBreaker, "spec.stormBreaker.maxUnhealthy %q must be a non-negative count or a percentage such as 30%%, so the breaker would hold every action", v.String())
		}
	}
	if err := ValidateWindows(s.MaintenanceWindows); err != nil {
		return problem(v1alpha1.PolicyReasonInvalidWindow, "%v", err)
	}
	return nil
}

// ValidateSelector checks a node selector the way the apiserver would parse
// it, naming the field and, for a map, the key (in sorted order, so the same
// selector always gives the same message). nil is valid (every node).
func ValidateSelector(sel *metav1.LabelSelector) error {
	if sel == nil {
		return nil
	}
	keys := make([]string, 0, len(sel.MatchLabels))
	for k := range sel.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("spec.nodeSelector.matchLabels: key %q is not a valid label key: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(sel.MatchLabels[k]); len(errs) > 0 {
			return fmt.Errorf("spec.nodeSelector.matchLabels[%q]: value %q is not a valid label value: %s", k, clip(sel.MatchLabels[k]), strings.Join(errs, "; "))
		}
	}
	for i, e := range sel.MatchExpressions {
		f := fmt.Sprintf("spec.nodeSelector.matchExpressions[%d]", i)
		if errs := validation.IsQualifiedName(e.Key); len(errs) > 0 {
			return fmt.Errorf("%s.key %q is not a valid label key: %s", f, e.Key, strings.Join(errs, "; "))
		}
		switch e.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
			if len(e.Values) == 0 {
				return fmt.Errorf("%s.values must be non-empty for operator %s", f, e.Operator)
			}
		case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
			if len(e.Values) > 0 {
				return fmt.Errorf("%s.values must be empty for operator %s", f, e.Operator)
			}
		default:
			return fmt.Errorf("%s.operator %q must be In, NotIn, Exists or DoesNotExist", f, e.Operator)
		}
		for j, v := range e.Values {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				return fmt.Errorf("%s.values[%d] %q is not a valid label value: %s", f, j, clip(v), strings.Join(errs, "; "))
			}
		}
	}
	// Whatever slipped past the checks above (a rule apimachinery adds
	// later) still fails closed with the parser's own words.
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		return fmt.Errorf("spec.nodeSelector: %v", err)
	}
	return nil
}

// clip shortens a value quoted in a message.
func clip(s string) string {
	if len(s) <= 70 {
		return s
	}
	return s[:60] + fmt.Sprintf("…(%d chars)", len(s))
}

// checkCausesAndAction mirrors admission's rules on causes and the action,
// in the same order: the causes the user wrote first, advisory ones before
// any binding.
func checkCausesAndAction(s *v1alpha1.RemediationPolicySpec) *Problem {
	if len(s.Causes) == 0 {
		return problem(v1alpha1.PolicyReasonInvalidCauses, "spec.causes is empty: the policy would act on nothing")
	}
	seen := map[v1alpha1.Cause]bool{}
	var person []string
	for i, c := range s.Causes {
		if _, ok := c.Cause.Info(); !ok {
			return problem(v1alpha1.PolicyReasonInvalidCauses, "spec.causes[%d].cause %q is not a cause nodeward diagnoses", i, c.Cause)
		}
		if seen[c.Cause] {
			return problem(v1alpha1.PolicyReasonInvalidCauses, "spec.causes[%d]: %s is listed twice", i, c.Cause)
		}
		seen[c.Cause] = true
		if c.For.Duration < 0 {
			return problem(v1alpha1.PolicyReasonInvalidCauses, "spec.causes[%d].for %s is negative", i, c.For.Duration)
		}
		if c.Cause.NeedsPerson() && s.Action.Type != v1alpha1.ActionCordon && s.Action.Type != v1alpha1.ActionNotify {
			person = append(person, string(c.Cause))
		}
	}
	if len(person) > 0 {
		return problem(v1alpha1.PolicyReasonInvalidCauses, "spec.causes: %s need a person (nodeward cannot fix them), so they may be bound only to Cordon or Notify, not to %s", strings.Join(person, ", "), s.Action.Type)
	}
	allowed := v1alpha1.CausesAllowing(s.Action.Type)
	if len(allowed) == 0 {
		return problem(v1alpha1.PolicyReasonInvalidAction, "spec.action.type %q is not one of RestartKubelet, RestartContainerRuntime, CordonDrain, TuneGracePeriods, Cordon, Notify", s.Action.Type)
	}
	var wrong []string
	for _, c := range s.Causes {
		if !c.Cause.Allows(s.Action.Type) {
			wrong = append(wrong, string(c.Cause))
		}
	}
	if len(wrong) > 0 {
		return problem(v1alpha1.PolicyReasonInvalidCauses, "spec.causes: %s cannot be bound to %s, which may only be bound to %s", strings.Join(wrong, ", "), s.Action.Type, joinCauses(allowed))
	}
	a := &s.Action
	restart := a.Type == v1alpha1.ActionRestartKubelet || a.Type == v1alpha1.ActionRestartContainerRuntime
	switch {
	case a.Restart != nil && !restart:
		return problem(v1alpha1.PolicyReasonInvalidAction, "spec.action.restart is only valid for the restart actions, not %s", a.Type)
	case a.Drain != nil && a.Type != v1alpha1.ActionCordonDrain:
		return problem(v1alpha1.PolicyReasonInvalidAction, "spec.action.drain is only valid for CordonDrain, not %s", a.Type)
	case a.Cordon != nil && a.Type != v1alpha1.ActionCordon:
		return problem(v1alpha1.PolicyReasonInvalidAction, "spec.action.cordon is only valid for Cordon, not %s", a.Type)
	case (a.Type == v1alpha1.ActionTuneGracePeriods) != (a.TuneGracePeriods != nil):
		return problem(v1alpha1.PolicyReasonInvalidAction, "spec.action.tuneGracePeriods is required for TuneGracePeriods and only valid for it")
	case a.Type == v1alpha1.ActionTuneGracePeriods && !s.IncludeControlPlane:
		return problem(v1alpha1.PolicyReasonInvalidAction, "spec.includeControlPlane: TuneGracePeriods edits the controller-manager on control-plane nodes, so the policy must set includeControlPlane: true")
	}
	return nil
}

func joinCauses(cs []v1alpha1.Cause) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}
