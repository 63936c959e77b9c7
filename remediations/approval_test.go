package remediations

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func approvalRecord() *v1alpha1.Remediation {
	r := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeRequireApproval)
	r.CreationTimestamp = metav1.NewTime(t0)
	return r
}

func (e *env) decide(d v1alpha1.Decision, by string) {
	e.t.Helper()
	rem := e.record()
	rem.Approval = &v1alpha1.Approval{Decision: d, Reason: "because", DecidedBy: by, DecidedAt: metav1.NewTime(e.clock.Now())}
	if err := e.c.Update(e.ctx, rem); err != nil {
		e.t.Fatal(err)
	}
}

// A RequireApproval record plans, then waits, announcing it once; nothing
// is handed to the agent.
func TestExecutorWaitsForApproval(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), approvalRecord(),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy(func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Mode = v1alpha1.ModeRequireApproval
			p.Spec.ApprovalTimeout = &metav1.Duration{Duration: 10 * time.Minute}
		}))
	e.reconcile()
	rem, res := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonWaitingForApproval)
	if !strings.Contains(rem.Status.Message, "RestartUnit") || !strings.Contains(rem.Status.Message, "kubectl nodeward approve "+recordName) {
		t.Errorf("message %q should show the plan and the command", rem.Status.Message)
	}
	if res.RequeueAfter != 10*time.Minute {
		t.Errorf("requeue after %s, want the 10m to expiry", res.RequeueAfter)
	}
	if ev := e.event(); !strings.HasPrefix(ev, "Normal ApprovalRequired") {
		t.Errorf("event %q, want ApprovalRequired", ev)
	}
	if got := gaugeValue(t); got != 1 {
		t.Errorf("nodeward_pending_approvals = %v, want 1", got)
	}
	e.clock.Step(time.Minute)
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonWaitingForApproval)
	if ev := e.event(); ev != "" {
		t.Errorf("second event %q while still waiting", ev)
	}
	if n := len(e.tasks()); n != 0 {
		t.Fatalf("%d NodeTasks before approval", n)
	}

	// Approved: the ordinary gates run, then the steps.
	e.decide(v1alpha1.DecisionApproved, "alice")
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
	if got := gaugeValue(t); got != 0 {
		t.Errorf("nodeward_pending_approvals = %v after the approval, want 0", got)
	}
}

func TestExecutorRejected(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), approvalRecord(),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.reconcile()
	e.reconcile()
	e.decide(v1alpha1.DecisionRejected, "bob")
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseSkipped, v1alpha1.ReasonRejected)
	wantSteps(t, rem, v1alpha1.StepSkipped, v1alpha1.StepSkipped)
	if !strings.Contains(rem.Status.Message, "rejected by bob") || !strings.Contains(rem.Status.Message, "because") {
		t.Errorf("message %q should name who rejected it and why", rem.Status.Message)
	}
}

// Approval is not a bypass: the cause must still be there.
func TestExecutorApprovedCauseGone(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), approvalRecord(),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.reconcile()
	e.reconcile()
	if err := e.c.Delete(e.ctx, testDiagnosis(nodeName)); err != nil {
		t.Fatal(err)
	}
	e.decide(v1alpha1.DecisionApproved, "alice")
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseSkipped, v1alpha1.ReasonCauseGone)
}

// Nobody decided within the policy's approvalTimeout (default 1h).
func TestExecutorApprovalExpires(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), approvalRecord(),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.reconcile()
	e.reconcile()
	e.clock.Step(59 * time.Minute)
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonWaitingForApproval)
	e.clock.Step(time.Minute)
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseSkipped, v1alpha1.ReasonExpired)
	if !strings.Contains(rem.Status.Message, "1h0m0s") {
		t.Errorf("message %q should say the timeout", rem.Status.Message)
	}
	if err := e.c.Get(e.ctx, client.ObjectKey{Name: recordName}, rem); err != nil || rem.Approval != nil {
		t.Fatal(err)
	}
}

func gaugeValue(t *testing.T) float64 {
	t.Helper()
	m := &dto.Metric{}
	if err := pendingApprovalsGauge.Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func TestFinishedCounted(t *testing.T) {
	before := counterValue(t, remediationsTotal.WithLabelValues("KubeletDown", "RestartKubelet", "RequireApproval", "Skipped", "Rejected"))
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), approvalRecord(),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.reconcile()
	e.reconcile()
	e.decide(v1alpha1.DecisionRejected, "bob")
	e.reconcile()
	if got := counterValue(t, remediationsTotal.WithLabelValues("KubeletDown", "RestartKubelet", "RequireApproval", "Skipped", "Rejected")); got != before+1 {
		t.Errorf("nodeward_remediations_total{...Rejected} = %v, want %v", got, before+1)
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
