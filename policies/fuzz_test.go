package policies

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// crdScheduleRule is the CRD's rule on spec.maintenanceWindows[].schedule,
// written out again from its CEL (remediationpolicy_types.go) rather than
// shared with CheckSchedule, so the fuzzers compare two implementations.
var crdFields = regexp.MustCompile(`^[0-9*,/?LW#A-Za-z-]+( [0-9*,/?LW#A-Za-z-]+){4}$`)

func crdAcceptsSchedule(s string) bool {
	if len(s) > 128 {
		return false
	}
	if strings.HasPrefix(s, "@") {
		return slices.Contains([]string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}, s)
	}
	return crdFields.MatchString(s)
}

// FuzzWindows: evaluating any window never panics, agrees with admission
// (a schedule the Go code accepts is one the CRD accepts), and answers
// consistently: an error means closed; open means until a later time;
// closed means until a later opening.
func FuzzWindows(f *testing.F) {
	for _, s := range []struct {
		sched, tz string
		mins      int64
		now       int64
	}{
		{"0 2 * * *", "", 60, 1764036000}, {"@daily", "Europe/Berlin", 60, 1764036000}, {"@every 1h", "", 60, 0},
		{"@reboot", "", 60, 0}, {"*/15 * * * *", "UTC", 5, 1764036000}, {"0 2 30 2 *", "", 60, 0},
		{"TZ=Europe/Berlin", "", 60, 0}, {"CRON_TZ=UTC 0 2 * * *", "", 60, 0}, {"0 0 29 2 *", "America/New_York", 60, 1764036000},
		{"0 2 * * MON-FRI", "Asia/Tokyo", 90, 1764036000}, {"0 2 L * *", "", 60, 0}, {"0  2 * * *", "", 60, 0},
		{"0 2 * * 1-5", "Local", 60, 0}, {"@weekly", "../../etc/passwd", 60, 0}, {"0 0/0 * * *", "", 60, 0},
		{"59 23 31 12 ?", "Pacific/Kiritimati", 168 * 60, 4102444800}, {"0 2 * * 7", "", 60, 0},
	} {
		f.Add(s.sched, s.tz, s.mins, s.now)
	}
	f.Fuzz(func(t *testing.T, sched, tz string, mins, nowUnix int64) {
		// Admission bounds the duration to 1m..168h; the time to this era.
		d := time.Duration(1+abs(mins)%(168*60)) * time.Minute
		now := time.Unix(abs(nowUnix)%(200*365*86400), 0).UTC()
		ws := []v1alpha1.MaintenanceWindow{{Schedule: sched, Duration: metav1.Duration{Duration: d}, TimeZone: tz}}
		st := Windows(ws, now)
		if st.Err != nil {
			if st.Open {
				t.Fatalf("error %v and open", st.Err)
			}
			if !strings.HasPrefix(st.Err.Error(), "spec.maintenanceWindows[0].") {
				t.Fatalf("error %q does not name the field", st.Err)
			}
			if strings.HasPrefix(sched, "@every") && !strings.Contains(st.Err.Error(), "@every is refused") {
				t.Fatalf("@every refused without the reason: %v", st.Err)
			}
			return
		}
		if !crdAcceptsSchedule(sched) {
			t.Fatalf("schedule %q: the Go code accepts what admission refuses", sched)
		}
		if !st.Until.After(now) {
			t.Fatalf("%+v at %s: Until is not after now", st, now)
		}
		if st.Open && st.Until.After(now.Add(d)) {
			t.Fatalf("%+v at %s: open longer than the window's %s", st, now, d)
		}
		if ValidateWindows(ws) != nil {
			t.Fatalf("Windows read %q at %s but ValidateWindows refuses it", sched, now)
		}
	})
}

// FuzzCheckPolicy: CheckPolicy never panics, always gives the same answer
// for the same policy, names a spec field, and agrees with the parsers
// Covers and Windows use: a policy it passes never fails closed there.
func FuzzCheckPolicy(f *testing.F) {
	f.Add("pool", "general", "In", "0 2 * * *", "", "KubeletDown", "KubeletHung", "RestartKubelet", "30%", "Automatic")
	f.Add("my pool", "a", "Exists", "@daily", "Europe/Berlin", "KernelDeadlock", "ControlPlaneDegraded", "CordonDrain", "3", "DryRun")
	f.Add("", "", "NotIn", "@every 1h", "UTC", "PLEGUnhealthy", "ControlPlaneDegraded", "TuneGracePeriods", "101%", "RequireApproval")
	f.Add("a/b/c", strings.Repeat("v", 300), "Near", "@reboot", "Mars/Olympus", "MemoryExhausted", "MemoryExhausted", "RunScript", "-1", "Sometimes")
	f.Add("example.com/zone", "eu-1a", "DoesNotExist", "0 2 31 2 *", "Local", "NodeUnreachable", "DiskPressure", "CordonDrain", "lots", "")
	f.Fuzz(func(t *testing.T, key, value, op, sched, tz, cause1, cause2, action, maxU, mode string) {
		p := policy("fuzz")
		p.Spec.NodeSelector = &metav1.LabelSelector{
			MatchLabels:      map[string]string{key: value},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: value, Operator: metav1.LabelSelectorOperator(op), Values: []string{key}}},
		}
		if op == "Exists" || op == "DoesNotExist" {
			p.Spec.NodeSelector.MatchExpressions[0].Values = nil
		}
		p.Spec.Causes = []v1alpha1.CauseMatch{{Cause: v1alpha1.Cause(cause1)}, {Cause: v1alpha1.Cause(cause2)}}
		p.Spec.Action.Type = v1alpha1.ActionType(action)
		if action == string(v1alpha1.ActionTuneGracePeriods) {
			p.Spec.Action.TuneGracePeriods = &v1alpha1.TuneGracePeriodsParams{NodeMonitorGracePeriod: metav1.Duration{Duration: time.Minute}}
			p.Spec.IncludeControlPlane = true
		}
		p.Spec.Mode = v1alpha1.Mode(mode)
		mu := intstr.Parse(maxU)
		p.Spec.StormBreaker.MaxUnhealthy = &mu
		p.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{Schedule: sched, Duration: metav1.Duration{Duration: time.Hour}, TimeZone: tz}}

		pr := CheckPolicy(&p)
		again := CheckPolicy(&p)
		if (pr == nil) != (again == nil) || (pr != nil && *pr != *again) {
			t.Fatalf("CheckPolicy changed its answer: %+v then %+v", pr, again)
		}
		ready := PolicyReady(&p)
		if pr != nil {
			if pr.Reason == "" || !strings.HasPrefix(pr.Message, "spec.") {
				t.Fatalf("problem %+v: no reason, or the message does not start with the field", pr)
			}
			if ready.Status != metav1.ConditionFalse || ready.Reason != pr.Reason || !strings.Contains(ready.Message, pr.Message) {
				t.Fatalf("Ready = %+v for problem %+v", ready, pr)
			}
			n := node("n", map[string]string{key: value, value: key})
			if m, ok := Select([]v1alpha1.RemediationPolicy{p}, n, diagnosed(p.Spec.Causes[0].Cause, p.Spec.Causes[1].Cause)); ok {
				if pr.Reason == v1alpha1.PolicyReasonInvalidNodeSelector {
					t.Fatalf("Select chose a policy whose selector can't be parsed (%s): %+v", pr.Message, m.Cause)
				}
				// It may win, but its record never starts.
				rec := &v1alpha1.Remediation{Spec: v1alpha1.RemediationSpec{NodeName: n.Name, Cause: m.Cause.Cause, Policy: p.Name}}
				if v := Admit(GateInput{Policy: &p, Record: rec, Node: n, Now: time.Unix(1764036000, 0)}); v.Allow {
					t.Fatalf("Admit allowed a record of a policy that can't act (%s)", pr.Message)
				}
			}
			return
		}
		if ready.Status != metav1.ConditionTrue {
			t.Fatalf("no problem, Ready = %+v", ready)
		}
		if _, err := metav1.LabelSelectorAsSelector(p.Spec.NodeSelector); err != nil {
			t.Fatalf("CheckPolicy passed a selector the parser refuses: %v", err)
		}
		if ok, why := Covers(&p, node("n", nil)); !ok && strings.Contains(why, "invalid") {
			t.Fatalf("CheckPolicy passed, Covers says %s", why)
		}
		if st := Windows(p.Spec.MaintenanceWindows, time.Unix(1764036000, 0)); st.Err != nil {
			t.Fatalf("CheckPolicy passed, Windows says %v", st.Err)
		}
		if _, err := intstr.GetScaledValueFromIntOrPercent(&mu, 10, true); err != nil {
			t.Fatalf("CheckPolicy passed maxUnhealthy %q: %v", maxU, err)
		}
		if !crdAcceptsSchedule(sched) {
			t.Fatalf("CheckPolicy passed schedule %q that admission refuses", sched)
		}
		for _, c := range p.Spec.Causes {
			if c.Cause.NeedsPerson() {
				t.Fatalf("CheckPolicy passed an action bound to advisory %s", c.Cause)
			}
		}
	})
}

// picker turns fuzz bytes into choices.
type picker struct{ b []byte }

func (p *picker) n(max int) int {
	if len(p.b) == 0 || max <= 0 {
		return 0
	}
	v := int(p.b[0]) % max
	p.b = p.b[1:]
	return v
}

func (p *picker) of(xs ...string) string { return xs[p.n(len(xs))] }

var fuzzCauses = []v1alpha1.Cause{v1alpha1.CauseKubeletDown, v1alpha1.CauseKubeletHung, v1alpha1.CauseContainerRuntimeDown,
	v1alpha1.CausePLEGUnhealthy, v1alpha1.CauseMemoryExhausted, v1alpha1.CauseControlPlaneDegraded, v1alpha1.CauseKernelDeadlock, "Bogus"}

// FuzzSelect: with random policies (working, paused, deleting and broken
// ones) and a random node, Select's choice is exactly what its contract
// says, whatever the list order, and broken policies change nothing.
func FuzzSelect(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 2, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte("a broken higher-priority policy holds instead of falling through"))
	f.Add([]byte{7, 5, 9, 200, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30})
	f.Fuzz(func(t *testing.T, data []byte) {
		pk := &picker{b: data}
		labelKeys := []string{"pool", "zone", "example.com/tier", "my pool", "", "a/b/c"}
		labelValues := []string{"general", "gpu", "eu-1a", "", "not ok", strings.Repeat("v", 64)}
		n := node("n", map[string]string{})
		for i := pk.n(4); i > 0; i-- {
			n.Labels[pk.of(labelKeys[:3]...)] = pk.of(labelValues[:4]...)
		}
		if pk.n(4) == 0 {
			n.Labels[LabelControlPlane] = ""
		}
		if pk.n(8) == 0 {
			n.Labels[v1alpha1.LabelExclude] = "true"
		}
		var ps []v1alpha1.RemediationPolicy
		for i := pk.n(6) + 1; i > 0; i-- {
			p := policy(fmt.Sprintf("p%d-%d", len(ps), pk.n(3)))
			p.Spec.Priority = int32(pk.n(3))
			p.Spec.Causes = nil
			for j := pk.n(3) + 1; j > 0; j-- {
				c := fuzzCauses[pk.n(len(fuzzCauses))]
				if !slices.ContainsFunc(p.Spec.Causes, func(m v1alpha1.CauseMatch) bool { return m.Cause == c }) {
					p.Spec.Causes = append(p.Spec.Causes, v1alpha1.CauseMatch{Cause: c, For: metav1.Duration{Duration: time.Duration(pk.n(3)) * time.Minute}})
				}
			}
			p.Spec.Action.Type = v1alpha1.ActionType(pk.of("RestartKubelet", "RestartContainerRuntime", "CordonDrain", "RestartKubelet"))
			switch pk.n(4) {
			case 0:
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{pk.of(labelKeys...): pk.of(labelValues...)}}
			case 1:
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: pk.of(labelKeys...), Operator: metav1.LabelSelectorOperator(pk.of("In", "NotIn", "Exists", "Near")), Values: []string{pk.of(labelValues...)}}}}
			}
			if pk.n(4) == 0 {
				p.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{Schedule: pk.of("0 2 * * *", "@daily", "@every 1h", "0 25 * * *"), Duration: metav1.Duration{Duration: time.Hour}, TimeZone: pk.of("", "Europe/Berlin", "Mars/Olympus")}}
			}
			p.Spec.IncludeControlPlane = pk.n(2) == 0
			switch pk.n(8) {
			case 0:
				p.Spec.Paused = true
			case 1:
				deleting(&p)
			}
			ps = append(ps, p)
		}
		var causes []v1alpha1.DiagnosedCause
		for i := pk.n(4) + 1; i > 0; i-- {
			causes = append(causes, diagnosed(fuzzCauses[pk.n(len(fuzzCauses))])...)
		}

		eligible := func(p *v1alpha1.RemediationPolicy) bool {
			ok, _ := Covers(p, n)
			return ok && !p.Spec.Paused && p.DeletionTimestamp.IsZero()
		}
		handlesCause := func(p *v1alpha1.RemediationPolicy, c v1alpha1.Cause) bool {
			return slices.ContainsFunc(p.Spec.Causes, func(m v1alpha1.CauseMatch) bool { return m.Cause == c })
		}
		// The expected answer, from the contract.
		var want *v1alpha1.RemediationPolicy
		var wantCause v1alpha1.Cause
		for _, c := range causes {
			for i := range ps {
				p := &ps[i]
				if !eligible(p) || !handlesCause(p, c.Cause) {
					continue
				}
				if want == nil || p.Spec.Priority > want.Spec.Priority || (p.Spec.Priority == want.Spec.Priority && p.Name < want.Name) {
					want = p
				}
			}
			if want != nil {
				wantCause = c.Cause
				break
			}
		}
		check := func(list []v1alpha1.RemediationPolicy, what string) {
			m, ok := Select(list, n, causes)
			if want == nil {
				if ok {
					t.Fatalf("%s: Select chose %s for %s, want nothing", what, m.Policy.Name, m.Cause.Cause)
				}
				return
			}
			if !ok || m.Policy.Name != want.Name || m.Cause.Cause != wantCause {
				t.Fatalf("%s: Select = %+v, %v; want %s for %s", what, m, ok, want.Name, wantCause)
			}
			if !eligible(m.Policy) {
				t.Fatalf("%s: Select chose %s, which can't act", what, m.Policy.Name)
			}
		}
		check(ps, "as listed")
		rev := slices.Clone(ps)
		slices.Reverse(rev)
		check(rev, "reversed")
		// A policy whose selector can't be read covers no node: removing
		// it changes nothing. (Any other broken policy still decides the
		// nodes it covers, and Admit holds its record.)
		parsable := slices.DeleteFunc(slices.Clone(ps), func(p v1alpha1.RemediationPolicy) bool {
			pr := CheckPolicy(&p)
			return pr != nil && pr.Reason == v1alpha1.PolicyReasonInvalidNodeSelector
		})
		check(parsable, "without the unparsable selectors")
	})
}

func abs(v int64) int64 {
	if v < 0 {
		if v == -v { // math.MinInt64
			return 0
		}
		return -v
	}
	return v
}
