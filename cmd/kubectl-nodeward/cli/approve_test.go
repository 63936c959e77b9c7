package cli

import (
	"context"
	"strings"
	"testing"

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
