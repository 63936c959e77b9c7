package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func pendingApproval(name string, mode v1alpha1.Mode) *v1alpha1.Remediation {
	return &v1alpha1.Remediation{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.RemediationSpec{NodeName: "worker-1", Cause: v1alpha1.CauseKubeletDown, Policy: "gated",
			Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet}, Mode: mode},
		Status: v1alpha1.RemediationStatus{Phase: v1alpha1.PhasePending, Reason: v1alpha1.ReasonWaitingForApproval},
	}
}

func TestDecideValidate(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		reason string
		want   string
	}{
		{nil, "ok", "exactly one argument"},
		{[]string{"a", "b"}, "ok", "exactly one argument"},
		{[]string{"a"}, "", "--reason is required"},
		{[]string{"a"}, "   ", "--reason is required"},
	} {
		o := &DecideOptions{Decision: v1alpha1.DecisionApproved, Reason: tc.reason}
		if err := o.Validate(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%v, reason %q) = %v, want %q", tc.args, tc.reason, err, tc.want)
		}
	}
}

func TestDecideRun(t *testing.T) {
	env, out := testEnv(t, pendingApproval("rem-1", v1alpha1.ModeRequireApproval), pendingApproval("rem-auto", v1alpha1.ModeAutomatic))
	whoami := func(context.Context) (string, error) { return "alice", nil }
	run := func(name string, d v1alpha1.Decision) error {
		o := &DecideOptions{Env: env, Decision: d, Reason: " kubelet crashed ", WhoAmI: whoami}
		if err := o.Validate([]string{name}); err != nil {
			t.Fatal(err)
		}
		return o.Run(context.Background())
	}
	if err := run("rem-1", v1alpha1.DecisionApproved); err != nil {
		t.Fatal(err)
	}
	if want := "remediation rem-1 approved by alice: kubelet crashed\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	rem := &v1alpha1.Remediation{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: "rem-1"}, rem); err != nil {
		t.Fatal(err)
	}
	if a := rem.Approval; a == nil || a.Decision != v1alpha1.DecisionApproved || a.DecidedBy != "alice" || a.Reason != "kubelet crashed" || !a.DecidedAt.Time.Equal(now) {
		t.Errorf("approval = %+v", rem.Approval)
	}
	if err := run("rem-1", v1alpha1.DecisionRejected); err == nil || !strings.Contains(err.Error(), "already approved by alice") {
		t.Errorf("second decision: %v, want already approved", err)
	}
	if err := run("rem-auto", v1alpha1.DecisionApproved); err == nil || !strings.Contains(err.Error(), "not RequireApproval") {
		t.Errorf("deciding an Automatic record: %v", err)
	}
	if err := run("nope", v1alpha1.DecisionApproved); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("deciding a missing record: %v", err)
	}
}

func TestExplainShowsApproval(t *testing.T) {
	rem := pendingApproval("rem-1", v1alpha1.ModeRequireApproval)
	var b strings.Builder
	if err := printExplain(&b, rem, nil, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Approval:\n  not decided yet\n") {
		t.Errorf("undecided record:\n%s", b.String())
	}
	rem.Approval = &v1alpha1.Approval{Decision: v1alpha1.DecisionRejected, DecidedBy: "bob", Reason: "node is being replaced", DecidedAt: *ago(0)}
	b.Reset()
	if err := printExplain(&b, rem, nil, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Rejected", "bob", "node is being replaced"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("explain lacks %q:\n%s", want, b.String())
		}
	}
}

// pendingDrain is a RequireApproval CordonDrain record waiting, with the
// drain plan the executor worked out a minute ago.
func pendingDrain(name string) *v1alpha1.Remediation {
	rem := pendingApproval(name, v1alpha1.ModeRequireApproval)
	rem.Spec.Cause = v1alpha1.CauseMemoryExhausted
	rem.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionCordonDrain}
	rem.Status.Drain = &v1alpha1.DrainStatus{Plan: &v1alpha1.DrainPlan{
		ObservedAt: *ago(time.Minute),
		Evict:      []string{"shop/web-1", "shop/web-2"}, EvictCount: 3,
		Keep: []v1alpha1.KeptPod{
			{Name: "kube-system/kube-proxy-worker-1", Reason: "mirror pod: a static pod the kubelet runs from a file, not evictable"},
			{Name: "shop/logs-x7", Reason: "DaemonSet pod logs: DaemonSet pods stay on a drained node"},
		},
		KeepCount: 2,
		PDBs:      []v1alpha1.PlannedPDB{{Name: "shop/web", Budget: "minAvailable 3", DisruptionsAllowed: 1, Pods: 2}},
	}}
	return rem
}

// explain shows a drain's plan: each pod to evict, each pod left with why,
// each budget with its disruptionsAllowed, and that it is a snapshot.
func TestExplainShowsDrainPlan(t *testing.T) {
	var b strings.Builder
	if err := printExplain(&b, pendingDrain("rem-drain"), nil, now); err != nil {
		t.Fatal(err)
	}
	want := `
Drain plan:
  As of:       2026-03-01T11:59:00Z (60s ago); the drain lists the pods again when it starts
  Evict:       3 pods
    shop/web-1
    shop/web-2
    … and 1 more, not recorded
  Leave:       2 pods
    kube-system/kube-proxy-worker-1  mirror pod: a static pod the kubelet runs from a file, not evictable
    shop/logs-x7                     DaemonSet pod logs: DaemonSet pods stay on a drained node
  PDBs:        1 PodDisruptionBudget over the pods to evict
    shop/web  minAvailable 3, 1 disruption allowed, selects 2 pods to evict

Approval:
`
	if !strings.Contains(b.String(), want) {
		t.Errorf("explain lacks the plan\n--- want:\n%s\n--- got:\n%s", want, b.String())
	}
	blocked := pendingDrain("rem-blocked")
	blocked.Status.Drain.Plan.Blocked = "the drain would evict nothing: cannot delete Pods that declare no controller: shop/debug"
	b.Reset()
	if err := printExplain(&b, blocked, nil, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "  Blocked:     the drain would evict nothing: cannot delete Pods that declare no controller: shop/debug\n") {
		t.Errorf("explain lacks why the drain would stop:\n%s", b.String())
	}
}

// Approving a drain repeats the plan that was approved, and that the drain
// looks again.
func TestApproveShowsDrainPlan(t *testing.T) {
	env, out := testEnv(t, pendingDrain("rem-drain"))
	o := &DecideOptions{Env: env, Decision: v1alpha1.DecisionApproved, Reason: "move them off",
		WhoAmI: func(context.Context) (string, error) { return "alice", nil }}
	if err := o.Validate([]string{"rem-drain"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "remediation rem-drain approved by alice: move them off\n" +
		"drain plan as of 2026-03-01T11:59:00Z: would evict 3 pods (shop/web-1, shop/web-2 and 1 more), leave 2 (kube-system/kube-proxy-worker-1, shop/logs-x7), " +
		"PodDisruptionBudgets shop/web (minAvailable 3, 1 disruption allowed); the drain lists the pods again when it starts (kubectl nodeward explain rem-drain)\n"
	if out.String() != want {
		t.Errorf("output\n%s\nwant\n%s", out.String(), want)
	}
}
