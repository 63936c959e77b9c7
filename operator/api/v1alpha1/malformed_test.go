package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

// obj is a policy as a person writes it: plain YAML-like values, so a
// malformed duration ("5 minutes") can be sent as it is.
type obj = map[string]any

func basePolicy() obj {
	return obj{
		"apiVersion": "nodeward.io/v1alpha1", "kind": "RemediationPolicy",
		"metadata": obj{"name": "p"},
		"spec": obj{
			"causes": []any{obj{"cause": "KubeletDown", "for": "10s"}},
			"action": obj{"type": "RestartKubelet"},
			"mode":   "Automatic",
		},
	}
}

// set puts v at path (map keys and list indexes) in o, creating maps on the
// way; a nil v deletes the key.
func set(o obj, v any, path ...any) {
	var cur any = o
	for i, p := range path {
		last := i == len(path)-1
		switch k := p.(type) {
		case string:
			m := cur.(obj)
			if last {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
				return
			}
			if _, ok := m[k]; !ok {
				if _, idx := path[i+1].(int); idx {
					m[k] = []any{obj{}}
				} else {
					m[k] = obj{}
				}
			}
			cur = m[k]
		case int:
			l := cur.([]any)
			if last {
				l[k] = v
				return
			}
			cur = l[k]
		}
	}
}

type edit struct {
	path []any
	v    any
}

func at(v any, path ...any) edit { return edit{path, v} }

// Contexts in which a field is allowed at all.
var (
	drainCtx  = []edit{at("CordonDrain", "spec", "action", "type"), at([]any{obj{"cause": "MemoryExhausted"}}, "spec", "causes"), at(obj{}, "spec", "action", "drain")}
	cordonCtx = []edit{at("Cordon", "spec", "action", "type"), at([]any{obj{"cause": "ReadonlyFilesystem"}}, "spec", "causes"), at(obj{}, "spec", "action", "cordon")}
	tuneCtx   = []edit{at("TuneGracePeriods", "spec", "action", "type"), at([]any{obj{"cause": "PLEGUnhealthy"}}, "spec", "causes"), at(true, "spec", "includeControlPlane"),
		at(obj{"nodeMonitorGracePeriod": "2m"}, "spec", "action", "tuneGracePeriods")}
	windowCtx = []edit{at([]any{obj{"schedule": "0 2 * * *", "duration": "1h"}}, "spec", "maintenanceWindows")}
	periodCtx = []edit{at(obj{"count": int64(1), "period": "1h"}, "spec", "limits", "maxPerPeriod")}
)

func with(ctx []edit, more ...edit) []edit { return append(append([]edit{}, ctx...), more...) }

type malformedCase struct {
	name  string
	edits []edit
	// field must appear in the refusal, or in the Ready=False message.
	field string
	// want, if set, must appear too; notWant must not (the first error is
	// about the field the user wrote).
	want, notWant string
	// ready, if set: admission accepts it and the policy status reports
	// Ready=False with this reason.
	ready string
}

func malformedPolicies() []malformedCase {
	var cs []malformedCase
	// Durations: every duration field, each malformed the ways people get
	// it wrong, then out of its range.
	durations := []struct {
		field string
		path  []any
		ctx   []edit
	}{
		{"spec.approvalTimeout", []any{"spec", "approvalTimeout"}, nil},
		{"spec.retention.maxAge", []any{"spec", "retention", "maxAge"}, nil},
		{"spec.limits.nodeCooldown", []any{"spec", "limits", "nodeCooldown"}, nil},
		{"spec.limits.attemptWindow", []any{"spec", "limits", "attemptWindow"}, nil},
		{"spec.limits.maxPerPeriod.period", []any{"spec", "limits", "maxPerPeriod", "period"}, periodCtx},
		{"spec.maintenanceWindows[0].duration", []any{"spec", "maintenanceWindows", 0, "duration"}, windowCtx},
		{"spec.causes[0].for", []any{"spec", "causes", 0, "for"}, nil},
		{"spec.action.restart.recoveryTimeout", []any{"spec", "action", "restart", "recoveryTimeout"}, nil},
		{"spec.action.drain.gracePeriod", []any{"spec", "action", "drain", "gracePeriod"}, drainCtx},
		{"spec.action.drain.timeout", []any{"spec", "action", "drain", "timeout"}, drainCtx},
		{"spec.action.drain.uncordonAfter", []any{"spec", "action", "drain", "uncordonAfter"}, drainCtx},
		{"spec.action.cordon.uncordonAfter", []any{"spec", "action", "cordon", "uncordonAfter"}, cordonCtx},
		{"spec.action.tuneGracePeriods.nodeMonitorGracePeriod", []any{"spec", "action", "tuneGracePeriods", "nodeMonitorGracePeriod"}, tuneCtx},
		{"spec.action.tuneGracePeriods.kubeletStatusUpdateFrequency", []any{"spec", "action", "tuneGracePeriods", "kubeletStatusUpdateFrequency"}, tuneCtx},
	}
	for _, d := range durations {
		for _, bad := range []string{"5 minutes", "", "1d", "10", "1h 30m"} {
			cs = append(cs, malformedCase{name: fmt.Sprintf("%s=%q", d.field, bad), edits: with(d.ctx, at(bad, d.path...)), field: d.field, want: "must be a duration such as 90s, 10m or 1h30m"})
		}
		cs = append(cs, malformedCase{name: d.field + " out of range", edits: with(d.ctx, at("9999h", d.path...)), field: d.field, want: "must be between"})
	}

	// Cron schedules and windows.
	sched := func(s string) []edit {
		return []edit{at([]any{obj{"schedule": s, "duration": "1h"}}, "spec", "maintenanceWindows")}
	}
	const schedField = "spec.maintenanceWindows[0].schedule"
	for _, c := range []struct{ s, want string }{
		{"@every 1h", "@every is refused: it repeats an interval counted from when the operator started, not a time of day"},
		{"@every 5m", "@every is refused"},
		{"@reboot", "@reboot is refused: a maintenance window needs a time of day"},
		{"@nightly", "unknown descriptor: use one of @yearly"},
		{"@DAILY", "unknown descriptor"},
		{"0 2 * *", "must be a 5-field cron expression"},
		{"0 0 2 * * *", "must be a 5-field cron expression"},
		{"0  2 * * *", "must be a 5-field cron expression"},
		{"", "must be a 5-field cron expression"},
		{"every night", "must be a 5-field cron expression"},
		{"0 2 * * " + strings.Repeat("1,", 70) + "1", "128"},
	} {
		cs = append(cs, malformedCase{name: "schedule " + c.s, edits: sched(c.s), field: schedField, want: c.want})
	}
	// What admission can't see: the status says it.
	for _, c := range []struct{ s, tz, field, want string }{
		{"0 25 * * *", "", schedField, "end of range"},
		{"61 * * * *", "", schedField, "end of range"},
		{"0 2 L * *", "", schedField, ""},
		{"0 2 30 2 *", "", schedField, "never opens"},
		{"0 2 * * *", "Europe/Atlantis", "spec.maintenanceWindows[0].timeZone", "Europe/Atlantis"},
		{"@daily", "Mars/Olympus", "spec.maintenanceWindows[0].timeZone", ""},
	} {
		e := []edit{at([]any{obj{"schedule": c.s, "duration": "1h", "timeZone": c.tz}}, "spec", "maintenanceWindows")}
		cs = append(cs, malformedCase{name: fmt.Sprintf("window %q in %q", c.s, c.tz), edits: e, field: c.field, want: c.want, ready: v1alpha1.PolicyReasonInvalidWindow})
	}
	cs = append(cs,
		malformedCase{name: "window without duration", edits: []edit{at([]any{obj{"schedule": "@daily"}}, "spec", "maintenanceWindows")}, field: "spec.maintenanceWindows[0].duration"},
		malformedCase{name: "time zone too long", edits: []edit{at([]any{obj{"schedule": "@daily", "duration": "1h", "timeZone": strings.Repeat("A", 65)}}, "spec", "maintenanceWindows")}, field: "spec.maintenanceWindows[0].timeZone"},
	)

	// Node selectors.
	labels := func(k, v string) []edit { return []edit{at(obj{"matchLabels": obj{k: v}}, "spec", "nodeSelector")} }
	expr := func(e obj) []edit { return []edit{at(obj{"matchExpressions": []any{e}}, "spec", "nodeSelector")} }
	const ml, me = "spec.nodeSelector.matchLabels", "spec.nodeSelector.matchExpressions"
	cs = append(cs,
		malformedCase{name: "label key with spaces", edits: labels("my pool", "a"), field: ml, want: `key "my pool" is not a valid label key: a name of at most 63`},
		malformedCase{name: "empty label key", edits: labels("", "a"), field: ml, want: `key "" is not a valid label key`},
		malformedCase{name: "label key a/b/c", edits: labels("a/b/c", "a"), field: ml, want: `key "a/b/c" is not a valid label key`},
		malformedCase{name: "label key with an empty name", edits: labels("example.com/", "a"), field: ml, want: "not a valid label key"},
		malformedCase{name: "label key prefix not DNS", edits: labels("Example_com/pool", "a"), field: ml, want: "not a valid label key"},
		malformedCase{name: "label key name over 63", edits: labels(strings.Repeat("k", 64), "a"), field: ml, want: "not a valid label key"},
		malformedCase{name: "300-char label value", edits: labels("pool", strings.Repeat("v", 300)), field: ml, want: `the value of key "pool" is not a valid label value: it must be no more than 63 characters`},
		// What admission's cost budget can't check on metav1.LabelSelector's
		// unbounded schema, the status reports.
		malformedCase{name: "label value with spaces", edits: labels("pool", "a b"), field: ml, want: "is not a valid label value", ready: v1alpha1.PolicyReasonInvalidNodeSelector},
		malformedCase{name: "label value starting with a dash", edits: labels("pool", "-a"), field: ml, want: "is not a valid label value", ready: v1alpha1.PolicyReasonInvalidNodeSelector},
		malformedCase{name: "expression key with spaces", edits: expr(obj{"key": "my pool", "operator": "Exists"}), field: me + "[0].key", want: `"my pool" is not a valid label key`, ready: v1alpha1.PolicyReasonInvalidNodeSelector},
		malformedCase{name: "expression empty key", edits: expr(obj{"key": "", "operator": "Exists"}), field: me + "[0].key", want: "not a valid label key", ready: v1alpha1.PolicyReasonInvalidNodeSelector},
		malformedCase{name: "expression key a/b/c", edits: expr(obj{"key": "a/b/c", "operator": "Exists"}), field: me + "[0].key", want: "not a valid label key", ready: v1alpha1.PolicyReasonInvalidNodeSelector},
		malformedCase{name: "expression value too long", edits: expr(obj{"key": "pool", "operator": "In", "values": []any{"ok", strings.Repeat("v", 300)}}), field: me + "[0].values[1]", want: "not a valid label value", ready: v1alpha1.PolicyReasonInvalidNodeSelector},
		malformedCase{name: "expression operator", edits: expr(obj{"key": "pool", "operator": "Near"}), field: me, want: "operator must be In, NotIn, Exists or DoesNotExist"},
		malformedCase{name: "In without values", edits: expr(obj{"key": "pool", "operator": "In"}), field: me, want: "values must be non-empty for In and NotIn"},
		malformedCase{name: "Exists with values", edits: expr(obj{"key": "pool", "operator": "Exists", "values": []any{"a"}}), field: me, want: "empty for Exists and DoesNotExist"},
	)

	// Causes and actions: the first error names the cause the user wrote.
	causes := func(cs ...string) edit {
		l := []any{}
		for _, c := range cs {
			l = append(l, obj{"cause": c})
		}
		return at(l, "spec", "causes")
	}
	action := func(a string) edit { return at(a, "spec", "action", "type") }
	cs = append(cs,
		malformedCase{name: "advisory KernelDeadlock on a restart", edits: []edit{causes("KernelDeadlock")}, field: "spec.causes", want: "cause(s) KernelDeadlock need a person (nodeward cannot fix them), so they may be bound only to Cordon or Notify, not to RestartKubelet", notWant: "may only be bound"},
		malformedCase{name: "advisory OldSystemd on a drain", edits: []edit{action("CordonDrain"), causes("OldSystemd")}, field: "spec.causes", want: "cause(s) OldSystemd need a person (nodeward cannot fix them), so they may be bound only to Cordon or Notify, not to CordonDrain", notWant: "ControlPlaneDegraded"},
		malformedCase{name: "advisory next to ControlPlaneDegraded on a drain", edits: []edit{action("CordonDrain"), causes("ControlPlaneDegraded", "OldSystemd")}, field: "spec.causes", want: "cause(s) OldSystemd need a person"},
		malformedCase{name: "two advisory causes", edits: []edit{causes("KernelDeadlock", "ReadonlyFilesystem", "KubeletDown")}, field: "spec.causes", want: "cause(s) KernelDeadlock ReadonlyFilesystem need a person", notWant: "not to KubeletDown"},
		malformedCase{name: "advisory CgroupDriverMismatch on tune", edits: with(tuneCtx, causes("CgroupDriverMismatch")), field: "spec.causes", want: "cause(s) CgroupDriverMismatch need a person", notWant: "may only be bound to PLEGUnhealthy"},
		malformedCase{name: "drain on ControlPlaneDegraded", edits: []edit{action("CordonDrain"), causes("ControlPlaneDegraded")}, field: "spec.causes", want: "CordonDrain may only be bound to KubeletDown, ContainerRuntimeDown, ContainerRuntimeHung, MemoryExhausted, PIDExhausted, DiskPressure, KubeletHung or NodeUnreachable, not to ControlPlaneDegraded (no node is at fault"},
		malformedCase{name: "restart on PLEG", edits: []edit{causes("PLEGUnhealthy")}, field: "spec.causes", want: "RestartKubelet may only be bound to KubeletDown, ContainerRuntimeDown or KubeletHung, not to PLEGUnhealthy (restarting"},
		malformedCase{name: "restart on memory", edits: []edit{causes("KubeletDown", "MemoryExhausted")}, field: "spec.causes", want: "RestartKubelet may only be bound to KubeletDown, ContainerRuntimeDown or KubeletHung, not to MemoryExhausted (", notWant: "not to KubeletDown"},
		malformedCase{name: "runtime restart on the control plane", edits: []edit{action("RestartContainerRuntime"), causes("ControlPlaneDegraded")}, field: "spec.causes", want: "RestartContainerRuntime may only be bound to KubeletDown, ContainerRuntimeDown, ContainerRuntimeHung or KubeletHung, not to ControlPlaneDegraded"},
		malformedCase{name: "tune on KubeletDown", edits: with(tuneCtx, causes("KubeletDown")), field: "spec.causes", want: "TuneGracePeriods may only be bound to PLEGUnhealthy or ControlPlaneDegraded, not to KubeletDown"},
		malformedCase{name: "tune without params", edits: []edit{action("TuneGracePeriods"), causes("PLEGUnhealthy"), at(true, "spec", "includeControlPlane")}, field: "spec.action", want: "tuneGracePeriods is required"},
		malformedCase{name: "tune without control plane", edits: with(tuneCtx, at(false, "spec", "includeControlPlane")), field: "spec.includeControlPlane", want: "must set includeControlPlane: true"},
		malformedCase{name: "tune params on a restart", edits: []edit{at(obj{"nodeMonitorGracePeriod": "2m"}, "spec", "action", "tuneGracePeriods")}, field: "spec.action", want: "tuneGracePeriods is required for TuneGracePeriods and only valid for it"},
		malformedCase{name: "restart params on a drain", edits: with(drainCtx, at(obj{"recoveryTimeout": "2m"}, "spec", "action", "restart")), field: "spec.action.restart", want: "only valid for the restart actions"},
		malformedCase{name: "drain params on a restart", edits: []edit{at(obj{}, "spec", "action", "drain")}, field: "spec.action.drain", want: "only valid for CordonDrain"},
		malformedCase{name: "cordon params on a restart", edits: []edit{at(obj{}, "spec", "action", "cordon")}, field: "spec.action.cordon", want: "only valid for Cordon"},
		malformedCase{name: "cordon params on a drain", edits: with(drainCtx, at(obj{}, "spec", "action", "cordon")), field: "spec.action.cordon", want: "only valid for Cordon"},
		malformedCase{name: "unknown cause", edits: []edit{causes("KubeletSad")}, field: "spec.causes[0].cause"},
		malformedCase{name: "unknown action", edits: []edit{action("RunScript")}, field: "spec.action.type"},
		malformedCase{name: "no action", edits: []edit{at(nil, "spec", "action")}, field: "spec.action"},
		malformedCase{name: "duplicate cause", edits: []edit{causes("KubeletDown", "KubeletDown")}, field: "spec.causes[1]"},
		malformedCase{name: "no causes", edits: []edit{at([]any{}, "spec", "causes")}, field: "spec.causes"},
		malformedCase{name: "unknown mode", edits: []edit{at("Sometimes", "spec", "mode")}, field: "spec.mode"},
		malformedCase{name: "grace below 4x frequency", edits: with(tuneCtx, at(obj{"nodeMonitorGracePeriod": "50s", "kubeletStatusUpdateFrequency": "20s"}, "spec", "action", "tuneGracePeriods")),
			field: "spec.action.tuneGracePeriods.nodeMonitorGracePeriod", want: "at least 4 times kubeletStatusUpdateFrequency"},
	)

	// Limits, storm breaker, retention, priority.
	cs = append(cs,
		malformedCase{name: "maxConcurrent 0", edits: []edit{at(int64(0), "spec", "limits", "maxConcurrent")}, field: "spec.limits.maxConcurrent"},
		malformedCase{name: "maxConcurrent 101", edits: []edit{at(int64(101), "spec", "limits", "maxConcurrent")}, field: "spec.limits.maxConcurrent"},
		malformedCase{name: "maxAttempts 0", edits: []edit{at(int64(0), "spec", "limits", "maxAttempts")}, field: "spec.limits.maxAttempts"},
		malformedCase{name: "maxAttempts 21", edits: []edit{at(int64(21), "spec", "limits", "maxAttempts")}, field: "spec.limits.maxAttempts"},
		malformedCase{name: "maxPerPeriod count 0", edits: []edit{at(obj{"count": int64(0), "period": "1h"}, "spec", "limits", "maxPerPeriod")}, field: "spec.limits.maxPerPeriod.count"},
		malformedCase{name: "maxPerPeriod without count", edits: []edit{at(obj{"period": "1h"}, "spec", "limits", "maxPerPeriod")}, field: "spec.limits.maxPerPeriod.count"},
		malformedCase{name: "maxPerPeriod without period", edits: []edit{at(obj{"count": int64(3)}, "spec", "limits", "maxPerPeriod")}, field: "spec.limits.maxPerPeriod.period"},
		malformedCase{name: "maxConcurrent a string", edits: []edit{at("two", "spec", "limits", "maxConcurrent")}, field: "spec.limits.maxConcurrent"},
		malformedCase{name: "storm breaker 150%", edits: []edit{at("150%", "spec", "stormBreaker", "maxUnhealthy")}, field: "spec.stormBreaker.maxUnhealthy", want: "percentage between 0% and 100%"},
		malformedCase{name: "storm breaker -1", edits: []edit{at(int64(-1), "spec", "stormBreaker", "maxUnhealthy")}, field: "spec.stormBreaker.maxUnhealthy"},
		malformedCase{name: "storm breaker words", edits: []edit{at("lots", "spec", "stormBreaker", "maxUnhealthy")}, field: "spec.stormBreaker.maxUnhealthy"},
		malformedCase{name: "storm breaker 30 without %", edits: []edit{at("30", "spec", "stormBreaker", "maxUnhealthy")}, field: "spec.stormBreaker.maxUnhealthy"},
		malformedCase{name: "storm breaker 3.5%", edits: []edit{at("3.5%", "spec", "stormBreaker", "maxUnhealthy")}, field: "spec.stormBreaker.maxUnhealthy"},
		malformedCase{name: "retention maxRecords 0", edits: []edit{at(int64(0), "spec", "retention", "maxRecords")}, field: "spec.retention.maxRecords"},
		malformedCase{name: "retention maxRecords 100001", edits: []edit{at(int64(100001), "spec", "retention", "maxRecords")}, field: "spec.retention.maxRecords"},
		malformedCase{name: "retention maxAge 1h", edits: []edit{at("1h", "spec", "retention", "maxAge")}, field: "spec.retention.maxAge", want: "between 24h and 8760h"},
		malformedCase{name: "priority -1", edits: []edit{at(int64(-1), "spec", "priority")}, field: "spec.priority"},
		malformedCase{name: "priority 1001", edits: []edit{at(int64(1001), "spec", "priority")}, field: "spec.priority"},
		malformedCase{name: "too many windows", edits: []edit{at([]any{obj{"schedule": "@daily", "duration": "1h"}, obj{"schedule": "@daily", "duration": "1h"}, obj{"schedule": "@daily", "duration": "1h"},
			obj{"schedule": "@daily", "duration": "1h"}, obj{"schedule": "@daily", "duration": "1h"}, obj{"schedule": "@daily", "duration": "1h"}, obj{"schedule": "@daily", "duration": "1h"},
			obj{"schedule": "@daily", "duration": "1h"}, obj{"schedule": "@daily", "duration": "1h"}}, "spec", "maintenanceWindows")}, field: "spec.maintenanceWindows"},
		malformedCase{name: "paused is not malformed but not Ready", edits: []edit{at(true, "spec", "paused")}, field: "spec.paused", ready: v1alpha1.PolicyReasonPaused},
	)

	// Names the apiserver refuses (length is not limited: labels derived
	// from a long name are hashed).
	for _, n := range []string{"Upper-Case", "under_score", "-leading-dash", "trailing-dash-", "a..b", strings.Repeat("n", 254)} {
		cs = append(cs, malformedCase{name: "name " + n[:min(len(n), 20)], edits: []edit{at(n, "metadata", "name")}, field: "metadata.name"})
	}
	return cs
}

// TestMalformedPolicies applies well over 100 malformed policies to a real
// apiserver. Each is refused with a message naming the field it is about
// (never CEL's "type conversion error"), or accepted and then reported
// Ready=False, by the policy status controller's own code, with a reason
// and a message saying what is wrong.
func TestMalformedPolicies(t *testing.T) {
	cases := malformedPolicies()
	if len(cases) < 100 {
		t.Fatalf("only %d malformed policies, want at least 100", len(cases))
	}
	c := apiClient(t)
	ctx := context.Background()
	status := &policies.StatusReconciler{Client: c, Recorder: events.NewFakeRecorder(100)}

	// The base policy itself is fine, and so are the descriptors.
	for i, s := range policies.Descriptors {
		u := &unstructured.Unstructured{Object: basePolicy()}
		set(u.Object, fmt.Sprintf("ok-%d", i), "metadata", "name")
		set(u.Object, []any{obj{"schedule": s, "duration": "1h", "timeZone": "Europe/Berlin"}}, "spec", "maintenanceWindows")
		if err := c.Create(ctx, u); err != nil {
			t.Fatalf("a valid policy with schedule %s refused: %v", s, err)
		}
	}
	refused, notReady := 0, 0
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: basePolicy()}
			set(u.Object, fmt.Sprintf("bad-%d", i), "metadata", "name")
			for _, e := range tc.edits {
				// The contexts' values are shared between cases: copy them.
				set(u.Object, runtime.DeepCopyJSONValue(e.v), e.path...)
			}
			err := c.Create(ctx, u)
			if err != nil {
				msg := err.Error()
				if strings.Contains(msg, "type conversion error") || strings.Contains(msg, "no such overload") {
					t.Fatalf("refused with CEL's own error: %s", msg)
				}
				if tc.ready != "" {
					t.Fatalf("refused, want accepted and Ready=False %s: %s", tc.ready, msg)
				}
				if !strings.Contains(msg, tc.field) || !strings.Contains(msg, tc.want) {
					t.Fatalf("refusal does not name %q / say %q:\n%s", tc.field, tc.want, msg)
				}
				if tc.notWant != "" && strings.Contains(msg, tc.notWant) {
					t.Fatalf("refusal says %q, about a field the user did not get wrong:\n%s", tc.notWant, msg)
				}
				refused++
				t.Logf("refused: %s", msg)
				return
			}
			if tc.ready == "" {
				t.Fatalf("accepted, want a refusal naming %s", tc.field)
			}
			// Accepted: the status controller's code says what is wrong.
			if _, err := status.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: u.GetName()}}); err != nil {
				t.Fatal(err)
			}
			p := &v1alpha1.RemediationPolicy{}
			if err := c.Get(ctx, client.ObjectKey{Name: u.GetName()}, p); err != nil {
				t.Fatal(err)
			}
			ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.PolicyConditionReady)
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != tc.ready ||
				!strings.Contains(ready.Message, tc.field) || !strings.Contains(ready.Message, tc.want) {
				t.Fatalf("stored policy's Ready = %+v, want False %s naming %q and saying %q", ready, tc.ready, tc.field, tc.want)
			}
			notReady++
			t.Logf("accepted, Ready=False %s: %s", ready.Reason, ready.Message)
		})
	}
	t.Logf("%d malformed policies: %d refused naming the field, %d accepted and reported Ready=False", len(cases), refused, notReady)
}

// A policy stored before admission checked selectors (here: stored while
// the CRD lacked those rules) is reported Ready=False with the parse error,
// and never keeps a working lower-priority policy from deciding.
func TestPolicyStoredBeforeSelectorRules(t *testing.T) {
	c := apiClient(t)
	ctx := context.Background()

	// Take the selector rules out of the installed CRD, as an older
	// nodeward's CRD had them.
	setRules := func(drop bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKey{Name: "remediationpolicies.nodeward.io"}, crd); err != nil {
				t.Fatal(err)
			}
			if drop {
				sel := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["nodeSelector"]
				sel.XValidations = nil
				crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["nodeSelector"] = sel
			} else {
				raw, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "crd", "nodeward.io_remediationpolicies.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				orig := &apiextensionsv1.CustomResourceDefinition{}
				if err := yaml.Unmarshal(raw, orig); err != nil {
					t.Fatal(err)
				}
				crd.Spec = orig.Spec
			}
			err := c.Update(ctx, crd)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	setRules(true)
	broken := &unstructured.Unstructured{Object: basePolicy()}
	set(broken.Object, "broken-selector", "metadata", "name")
	set(broken.Object, int64(1000), "spec", "priority")
	set(broken.Object, obj{"matchLabels": obj{"my pool": "a"}}, "spec", "nodeSelector")
	// The apiserver picks up the schema change within moments.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Create(ctx, broken)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("storing the policy under the old rules: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	setRules(false)
	// Today's rules refuse the same policy...
	again := &unstructured.Unstructured{Object: basePolicy()}
	set(again.Object, "broken-selector-2", "metadata", "name")
	set(again.Object, obj{"matchLabels": obj{"my pool": "a"}}, "spec", "nodeSelector")
	deadline = time.Now().Add(30 * time.Second)
	for {
		err := c.Create(ctx, again)
		if err != nil && strings.Contains(err.Error(), "spec.nodeSelector.matchLabels") {
			break
		}
		if err == nil {
			_ = c.Delete(ctx, again)
			again.SetResourceVersion("")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restored rules do not refuse the selector: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// ...and the stored one says it can't act.
	status := &policies.StatusReconciler{Client: c, Recorder: events.NewFakeRecorder(10)}
	if _, err := status.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: "broken-selector"}}); err != nil {
		t.Fatal(err)
	}
	p := &v1alpha1.RemediationPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Name: "broken-selector"}, p); err != nil {
		t.Fatal(err)
	}
	ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.PolicyConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != v1alpha1.PolicyReasonInvalidNodeSelector ||
		!strings.Contains(ready.Message, `spec.nodeSelector.matchLabels: key "my pool" is not a valid label key`) {
		t.Fatalf("Ready = %+v", ready)
	}
	t.Logf("stored before the rule: Ready=False %s: %s", ready.Reason, ready.Message)

	// A working lower-priority policy decides.
	working := validPolicy("working")
	if err := c.Create(ctx, working); err != nil {
		t.Fatal(err)
	}
	list := &v1alpha1.RemediationPolicyList{}
	if err := c.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"my pool": "a"}}}
	m, ok := policies.Select(list.Items, node, []v1alpha1.DiagnosedCause{{Cause: v1alpha1.CauseKubeletDown, Since: metav1.Now()}})
	if !ok || m.Policy.Name != "working" {
		t.Fatalf("Select = %+v, %v; want the working policy", m, ok)
	}
}

// The CRD's schedule rules and the window code's CheckSchedule agree: the
// apiserver accepts a schedule exactly when CheckSchedule does (the window
// code then parses it, and reports what only the parser sees, like hour 25,
// as Ready=False).
func TestScheduleRulesAgreeWithWindowCode(t *testing.T) {
	c := apiClient(t)
	ctx := context.Background()
	schedules := append([]string{
		"0 2 * * *", "*/15 * * * *", "30 22 * * 1-5", "0 2 * * MON-FRI", "0 0 1 JAN ?", "0 25 * * *", "0 2 L * *",
		"@every 1h", "@every", "@reboot", "@nightly", "@DAILY", "@daily ", " @daily", "0 2 * *", "0 0 2 * * *", "0  2 * * *",
		"0\t2 * * *", " 0 2 * * *", "0 2 * * * ", "", "every night", "TZ=UTC 0 2 * * *", "CRON_TZ=UTC 0 2 * * *",
		"0 2 * * " + strings.Repeat("1,", 61) + "1", "0 2 * * " + strings.Repeat("1,", 62) + "1",
	}, policies.Descriptors...)
	for i, s := range schedules {
		u := &unstructured.Unstructured{Object: basePolicy()}
		set(u.Object, fmt.Sprintf("sched-%d", i), "metadata", "name")
		set(u.Object, []any{obj{"schedule": s, "duration": "1h"}}, "spec", "maintenanceWindows")
		err := c.Create(ctx, u)
		goErr := policies.CheckSchedule(s)
		if (err == nil) != (goErr == nil) {
			t.Errorf("schedule %q: apiserver says %v, CheckSchedule says %v", s, err, goErr)
		}
	}
}
