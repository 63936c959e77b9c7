package remediations

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// notifyRecord is a Notify record for a kernel deadlock, with the evidence
// the diagnosis gave, the line against it last.
func notifyRecord(mode v1alpha1.Mode) *v1alpha1.Remediation {
	rem := record(v1alpha1.ActionNotify, mode)
	rem.CreationTimestamp = metav1.NewTime(t0)
	rem.Spec.Cause = v1alpha1.CauseKernelDeadlock
	rem.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionNotify}
	rem.Spec.Evidence = []v1alpha1.Evidence{
		{Source: "NodeReport", Message: "kernel: Ready is fine", Supports: false},
		{Source: "NodeCondition", Message: "KernelDeadlock=True (DockerHung): task docker:7 blocked for more than 120 seconds.", Supports: true},
		{Source: "NodeReport", Message: "kernel log:\n INFO: task jbd2/sda1-8:312 blocked for more than 120 seconds.", Supports: true},
		{Source: "NodeReport", Message: "hung_task_timeout_secs 120", Supports: true},
		{Source: "Event", Message: "a fourth supporting line the notice leaves out", Supports: true},
	}
	return rem
}

// newNotifyEnv is an env whose node still has the record's cause diagnosed,
// with a Notifier whose queue the test reads (it is never started).
func newNotifyEnv(t *testing.T, rem *v1alpha1.Remediation, policy ...func(*v1alpha1.RemediationPolicy)) (*env, *Notifier) {
	t.Helper()
	p := policyFor(rem)
	for _, f := range policy {
		f(p)
	}
	e := newEnv(t, rem, testNode(nodeReady), p, testDiagnosis(nodeName, rem.Spec.Cause))
	n := NewNotifier(t.TempDir() + "/url")
	e.ex.Notifier = n
	return e, n
}

func notices(n *Notifier) []ApprovalNotice {
	var out []ApprovalNotice
	for {
		select {
		case got := <-n.queue:
			out = append(out, got)
		default:
			return out
		}
	}
}

// events drains the recorded events.
func (e *env) allEvents() []string {
	var out []string
	for ev := e.event(); ev != ""; ev = e.event() {
		out = append(out, ev)
	}
	return out
}

// Notify touches nothing: one step that completes at once, naming the
// cause, the top evidence and that a person is needed; the record ends
// Succeeded/Notified and only then is the notifier told and an Event
// recorded.
func TestNotifyActionTellsAPerson(t *testing.T) {
	e, n := newNotifyEnv(t, notifyRecord(v1alpha1.ModeAutomatic))
	e.reconcile() // planned
	e.reconcile() // started
	got, _ := e.reconcile()
	wantSteps(t, got, v1alpha1.StepRunning) // persisted Running before it acts
	if len(notices(n)) != 0 {
		t.Fatal("told before the step ran")
	}
	got, _ = e.reconcile()
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonNotified)
	wantSteps(t, got, v1alpha1.StepSucceeded)
	ci, _ := v1alpha1.CauseKernelDeadlock.Info()
	msg := got.Status.Steps[0].Message
	for _, want := range []string{
		"KernelDeadlock on worker-1 since",
		"NodeCondition: KernelDeadlock=True (DockerHung)",
		"NodeReport: kernel log: INFO: task jbd2/sda1-8:312 blocked", // one line
		"hung_task_timeout_secs 120",
		"a person is needed: " + ci.Summary,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("step message %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "a fourth supporting line") || strings.Contains(msg, "Ready is fine") {
		t.Errorf("step message quotes more than the top %d supporting lines: %q", maxNoticeEvidence, msg)
	}
	if !strings.HasPrefix(got.Status.Message, "no action was taken: ") {
		t.Errorf("record message %q does not say no action was taken", got.Status.Message)
	}
	sent := notices(n)
	if len(sent) != 1 {
		t.Fatalf("%d notices, want 1", len(sent))
	}
	s := sent[0]
	if s.Event != EventPersonNeeded || s.Cause != "KernelDeadlock" || s.Node != nodeName || s.Remediation != recordName || len(s.Evidence) != maxNoticeEvidence || !s.ExpiresAt.IsZero() || s.Approve != "" {
		t.Errorf("notice %+v", s)
	}
	var person bool
	for _, ev := range e.allEvents() {
		person = person || strings.Contains(ev, EventPersonNeeded)
	}
	if !person {
		t.Errorf("no %s Event recorded", EventPersonNeeded)
	}
	if len(e.tasks()) != 0 {
		t.Errorf("Notify handed a task to the node agent")
	}
}

// At most once: a restart while the step is Running (the status write of
// its end had not landed) tells once; a finished record tells no more.
func TestNotifyActionAtMostOnceAfterRestart(t *testing.T) {
	rem := notifyRecord(v1alpha1.ModeAutomatic)
	rem.Status.Phase = v1alpha1.PhaseRunning
	rem.Status.StartedAt = ptr.To(metav1.NewTime(t0))
	rem.Status.StartProof = testSealer.StartProof(rem.Name, rem.UID, t0)
	rem.Status.Steps = notifyAction{}.plan(rem)
	rem.Status.Steps[0].Phase = v1alpha1.StepRunning
	rem.Status.Steps[0].StartedAt = ptr.To(metav1.NewTime(t0))
	e, n := newNotifyEnv(t, rem)
	got, _ := e.reconcile()
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonNotified)
	// Restarts: new executors on the finished record.
	for range 2 {
		e.ex = &Executor{Client: e.c, Clock: e.clock, Recorder: e.events, Sealer: testSealer, Notifier: n}
		e.reconcile()
	}
	if sent := notices(n); len(sent) != 1 {
		t.Errorf("%d notices after restarts, want 1", len(sent))
	}
}

// DryRun tells nobody; RequireApproval does not wait (approving a Notify
// would tell a person that a person is needed) and says so.
func TestNotifyActionModes(t *testing.T) {
	t.Run("DryRun", func(t *testing.T) {
		e, n := newNotifyEnv(t, notifyRecord(v1alpha1.ModeDryRun))
		e.reconcile()
		got, _ := e.reconcile()
		wantPhase(t, got, v1alpha1.PhaseSkipped, v1alpha1.ReasonDryRun)
		if sent := notices(n); len(sent) != 0 {
			t.Errorf("DryRun sent %d notices", len(sent))
		}
	})
	t.Run("RequireApproval", func(t *testing.T) {
		e, n := newNotifyEnv(t, notifyRecord(v1alpha1.ModeRequireApproval))
		for range 4 {
			e.reconcile()
		}
		got := e.record()
		wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonNotified)
		if !strings.Contains(got.Status.Message, "Notify touches nothing: it needs none") {
			t.Errorf("message %q does not say why it did not wait for approval", got.Status.Message)
		}
		sent := notices(n)
		if len(sent) != 1 || sent[0].Event != EventPersonNeeded {
			t.Errorf("notices %+v, want one %s (no %s)", sent, EventPersonNeeded, EventApprovalRequired)
		}
	})
}

// A storm does not hold a Notify back: it disrupts nothing.
func TestNotifyActionNotHeldByStormBreaker(t *testing.T) {
	e, n := newNotifyEnv(t, notifyRecord(v1alpha1.ModeAutomatic), func(p *v1alpha1.RemediationPolicy) {
		p.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromInt32(0))
	})
	for range 4 {
		e.reconcile()
	}
	wantPhase(t, e.record(), v1alpha1.PhaseSucceeded, v1alpha1.ReasonNotified)
	if len(notices(n)) != 1 {
		t.Errorf("no notice")
	}
}
