package remediations

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

// The executor's defence in depth (trust.go), with admission out of the
// picture: every refusal ends or holds the record without a NodeTask, and
// says why.

func wantNoTask(t *testing.T, e *env) {
	t.Helper()
	if n := len(e.tasks()); n != 0 {
		t.Fatalf("%d NodeTasks: the record acted", n)
	}
}

func wantMessage(t *testing.T, rem *v1alpha1.Remediation, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(rem.Status.Message, p) {
			t.Errorf("message %q does not contain %q", rem.Status.Message, p)
		}
	}
}

// A record without the operator's seal, or whose seal does not fit its name
// and decision, ends Skipped/Unsealed before anything is planned or done —
// whatever its labels say.
func TestExecutorRefusesUnsealed(t *testing.T) {
	genuine := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeRequireApproval)
	testSealer.SealRecord(genuine)
	for _, tc := range []struct {
		name   string
		forge  func(r *v1alpha1.Remediation)
		sealer *policies.Sealer
		msg    string
	}{
		{"no seal", func(r *v1alpha1.Remediation) { r.Annotations = map[string]string{policies.AnnotationSeal: ""} }, testSealer,
			"carries no nodeward.io/seal annotation"},
		// A person copies a genuine record's labels and seal, asks for
		// Automatic where the policy requires approval.
		{"copied seal, other mode", func(r *v1alpha1.Remediation) {
			r.Annotations = map[string]string{policies.AnnotationSeal: genuine.Annotations[policies.AnnotationSeal]}
			r.Labels = genuine.Labels
		}, testSealer, "does not match its name and decision"},
		{"copied seal, other name", func(r *v1alpha1.Remediation) {
			r.Name = "worker-1-kubeletdown-1795607999"
			r.Spec.Mode = v1alpha1.ModeRequireApproval
			r.Annotations = map[string]string{policies.AnnotationSeal: genuine.Annotations[policies.AnnotationSeal]}
		}, testSealer, "does not match"},
		{"sealed with another key", func(r *v1alpha1.Remediation) {
			other, _ := policies.NewSealer([]byte(strings.Repeat("x", policies.SealKeyBytes)))
			other.SealRecord(r)
		}, testSealer, "does not match"},
		{"executor without a key", func(*v1alpha1.Remediation) {}, nil, "no seal key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forged := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic)
			if tc.name != "executor without a key" {
				tc.forge(forged)
			}
			e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), forged,
				testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
			e.ex.Sealer = tc.sealer
			rem, res := e.reconcileNamed(forged.Name)
			wantPhase(t, rem, v1alpha1.PhaseSkipped, v1alpha1.ReasonUnsealed)
			wantSteps(t, rem, v1alpha1.StepSkipped, v1alpha1.StepSkipped)
			wantMessage(t, rem, tc.msg, "nothing was done")
			if rem.Status.StartedAt != nil || res != (reconcile.Result{}) {
				t.Errorf("startedAt %v, requeue %+v", rem.Status.StartedAt, res)
			}
			e.reconcileNamed(forged.Name)
			wantNoTask(t, e)
		})
	}
}

// A pending RequireApproval record whose status someone set to Running
// (with a step under way, even): the executor did not start it, so it
// discards that status, says so, and the record waits for approval again;
// nothing is handed to the agent until a person approves, and then the
// restart happens once.
func TestExecutorDiscardsForgedRunning(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), approvalRecord(),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy(func(p *v1alpha1.RemediationPolicy) { p.Spec.Mode = v1alpha1.ModeRequireApproval }))
	e.reconcile()
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonWaitingForApproval)
	e.event()

	for _, forge := range []struct {
		name string
		f    func(s *v1alpha1.RemediationStatus)
		sign string
	}{
		{"phase Running", func(s *v1alpha1.RemediationStatus) { s.Phase = v1alpha1.PhaseRunning }, "phase Running"},
		{"Running with a proof copied from elsewhere", func(s *v1alpha1.RemediationStatus) {
			s.Phase, s.StartedAt = v1alpha1.PhaseRunning, ptr.To(metav1.NewTime(t0))
			s.StartProof = testSealer.StartProof("another-record", "another-uid", t0)
		}, "a startProof that does not match"},
		{"first step Succeeded", func(s *v1alpha1.RemediationStatus) {
			s.Steps[0].Phase = v1alpha1.StepSucceeded
		}, "step RestartUnit Succeeded"},
	} {
		t.Run(forge.name, func(t *testing.T) {
			e.clock.Step(time.Second)
			e.setStatus(recordName, forge.f)
			rem, res := e.reconcile()
			wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonStatusDiscarded)
			wantSteps(t, rem, v1alpha1.StepPending, v1alpha1.StepPending)
			wantMessage(t, rem, forge.sign, "carries no valid start proof", "every check runs again", "nothing was done")
			if rem.Status.StartedAt != nil || rem.Status.StartProof != "" || res != (reconcile.Result{}) {
				t.Errorf("startedAt %v, proof %q, requeue %+v", rem.Status.StartedAt, rem.Status.StartProof, res)
			}
			c := meta.FindStatusCondition(rem.Status.Conditions, v1alpha1.RemediationConditionStatusForged)
			if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, forge.sign) {
				t.Errorf("condition StatusForged %+v", c)
			}
			if ev := e.event(); !strings.HasPrefix(ev, "Warning StatusDiscarded") {
				t.Errorf("event %q, want Warning StatusDiscarded", ev)
			}
			// The gates run again: it waits for approval.
			rem, _ = e.reconcile()
			wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonWaitingForApproval)
			if c := meta.FindStatusCondition(rem.Status.Conditions, v1alpha1.RemediationConditionStatusForged); c == nil {
				t.Error("the StatusForged condition was lost once the record waited again")
			}
			e.event()
			wantNoTask(t, e)
		})
	}

	e.decide(v1alpha1.DecisionApproved, "alice")
	for range 4 {
		e.reconcile()
	}
	rem = e.record()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
	if n := len(e.tasks()); n != 1 {
		t.Fatalf("%d NodeTasks after approval, want 1", n)
	}
}

// On an Automatic policy a forged Running status does not skip the gates
// either: a record held by the node's cooldown goes back to waiting for it.
func TestExecutorForgedRunningRegated(t *testing.T) {
	earlier := failedEarlier("worker-1-kubeletdown-1", 5*time.Minute) // ended 4m ago: cooldown 10m
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		earlier, testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.reconcile()
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonNodeCooldown)

	e.setStatus(recordName, func(s *v1alpha1.RemediationStatus) {
		s.Phase, s.Reason, s.StartedAt = v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress, ptr.To(metav1.NewTime(t0))
	})
	for range 3 {
		e.reconcile()
	}
	rem = e.record()
	wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonNodeCooldown)
	if meta.FindStatusCondition(rem.Status.Conditions, v1alpha1.RemediationConditionStatusForged) == nil {
		t.Error("no StatusForged condition")
	}
	wantNoTask(t, e)
}

// A record the executor did start, set back to Pending by someone else,
// ends Failed: nodeward neither repeats nor resumes it.
func TestExecutorStartedRecordSetBack(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.reconcile()
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
	if !testSealer.CheckStartProof(rem) {
		t.Fatalf("started record carries no valid start proof: %q", rem.Status.StartProof)
	}
	e.setStatus(recordName, func(s *v1alpha1.RemediationStatus) { s.Phase = v1alpha1.PhasePending })
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseFailed, v1alpha1.ReasonStatusTampered)
	wantMessage(t, rem, "someone else set its status back", "check node worker-1 by hand")
	wantNoTask(t, e)
}

// The stricter of the record's and the policy's mode applies.
func TestExecutorStricterMode(t *testing.T) {
	for _, tc := range []struct {
		record, policy v1alpha1.Mode
		phase          v1alpha1.RemediationPhase
		reason, msg    string
	}{
		{v1alpha1.ModeAutomatic, v1alpha1.ModeRequireApproval, v1alpha1.PhasePending, v1alpha1.ReasonWaitingForApproval,
			"policy restart-kubelet requires approval (the record was decided as Automatic)"},
		{v1alpha1.ModeAutomatic, v1alpha1.ModeDryRun, v1alpha1.PhaseSkipped, v1alpha1.ReasonDryRun,
			"policy restart-kubelet is now DryRun (the record was decided as Automatic): dry run"},
		{v1alpha1.ModeRequireApproval, v1alpha1.ModeDryRun, v1alpha1.PhaseSkipped, v1alpha1.ReasonDryRun, "is now DryRun"},
		{v1alpha1.ModeRequireApproval, v1alpha1.ModeAutomatic, v1alpha1.PhasePending, v1alpha1.ReasonWaitingForApproval, "waiting for a person"},
		{v1alpha1.ModeAutomatic, "", v1alpha1.PhaseSkipped, v1alpha1.ReasonDryRun, "is now DryRun"},
		{v1alpha1.ModeAutomatic, v1alpha1.ModeAutomatic, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress, ""},
	} {
		t.Run(string(tc.record)+"/"+string(tc.policy), func(t *testing.T) {
			rec := approvalRecord()
			rec.Spec.Mode = tc.record
			e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), rec,
				testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy(func(p *v1alpha1.RemediationPolicy) { p.Spec.Mode = tc.policy }))
			e.reconcile()
			rem, _ := e.reconcile()
			wantPhase(t, rem, tc.phase, tc.reason)
			wantMessage(t, rem, tc.msg)
			e.reconcile()
			if tc.phase != v1alpha1.PhaseRunning {
				wantNoTask(t, e)
			}
		})
	}
	// An approval lets an escalated record through.
	rec := approvalRecord()
	rec.Spec.Mode = v1alpha1.ModeAutomatic
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), rec,
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy(func(p *v1alpha1.RemediationPolicy) { p.Spec.Mode = v1alpha1.ModeRequireApproval }))
	e.reconcile()
	e.reconcile()
	e.decide(v1alpha1.DecisionApproved, "alice")
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
}

func TestStricterMode(t *testing.T) {
	A, R, D := v1alpha1.ModeAutomatic, v1alpha1.ModeRequireApproval, v1alpha1.ModeDryRun
	for _, tc := range []struct{ a, b, want v1alpha1.Mode }{
		{A, A, A}, {A, R, R}, {R, A, R}, {R, R, R}, {A, D, D}, {D, A, D}, {R, D, D}, {D, R, D}, {D, D, D},
		{A, "", D}, {"", A, D}, {"Bogus", A, D}, {R, "Bogus", D},
	} {
		if got := StricterMode(tc.a, tc.b); got != tc.want {
			t.Errorf("StricterMode(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

// The record's action must be the policy's current one.
func TestExecutorActionChanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(p *v1alpha1.RemediationPolicy)
		msg    string
	}{
		{"other type", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionRestartContainerRuntime}
		}, "policy restart-kubelet's action is now RestartContainerRuntime"},
		{"other parameters", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action.Restart.RecoveryTimeout.Duration = 5 * time.Minute
		}, "is still RestartKubelet, but with other parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
				testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy(tc.change))
			e.reconcile()
			rem, _ := e.reconcile()
			wantPhase(t, rem, v1alpha1.PhaseSkipped, v1alpha1.ReasonActionChanged)
			wantMessage(t, rem, tc.msg, "nothing was done")
			wantNoTask(t, e)
		})
	}
}

// The diagnosis must show the record's episode: the cause since the same
// time. An episode that ended and began again gets its own record.
func TestExecutorEpisodeEnded(t *testing.T) {
	diag := testDiagnosis(nodeName, v1alpha1.CauseKubeletDown)
	diag.Status.Causes[0].Since = metav1.NewTime(t0.Add(-10 * time.Second))
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		diag, testPolicy())
	e.reconcile()
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseSkipped, v1alpha1.ReasonEpisodeEnded)
	wantMessage(t, rem, "since 2026-11-25T11:59:50Z, not since 2026-11-25T11:59:00Z", "nothing was done")
	wantNoTask(t, e)
}

// maxConcurrent counts the policy's records by spec.policy: a running
// record without the policy label still holds the next one back.
func TestExecutorMaxConcurrentWithoutLabel(t *testing.T) {
	running := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic)
	running.Name, running.UID, running.Spec.NodeName, running.Labels = otherRecord, "other-uid", otherNode, nil
	running.Status = v1alpha1.RemediationStatus{Phase: v1alpha1.PhaseRunning, StartedAt: ptr.To(metav1.NewTime(t0.Add(-time.Minute))),
		StartProof: testSealer.StartProof(otherRecord, "other-uid", t0.Add(-time.Minute))}
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		running, testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.reconcile()
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonRateLimited)
	wantMessage(t, rem, "1 of the policy's remediations are running (maxConcurrent 1)")
}

// A genuine record runs once across operator restarts: a new executor (a
// new process: empty ledger, the key read again from the Secret) trusts
// the status the old one wrote, does not gate it again — although a gate
// would now hold it — and hands the restart to the agent exactly once.
func TestExecutorGenuineRunsOnceAcrossRestarts(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	restart := func() {
		t.Helper()
		key, err := policies.NewSealer([]byte("0123456789abcdef0123456789abcdef")) // the same Secret, read again
		if err != nil {
			t.Fatal(err)
		}
		e.events = events.NewFakeRecorder(10)
		e.ex = &Executor{Client: e.c, Clock: e.clock, Recorder: e.events, Sealer: key}
	}
	e.reconcile()
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
	startedAt := rem.Status.StartedAt

	// A person starts maintenance: a new record would be held, this
	// started one is not gated again.
	e.updateNode(nodeName, func(n *corev1.Node) {
		n.Annotations = map[string]string{v1alpha1.AnnotationMaintenance: "too late"}
	})
	restart()
	e.clock.Step(time.Second)
	rem, _ = e.reconcile()
	wantSteps(t, rem, v1alpha1.StepRunning, v1alpha1.StepPending)
	restart()
	rem, _ = e.reconcile()
	if n := len(e.tasks()); n != 1 {
		t.Fatalf("%d NodeTasks, want 1", n)
	}
	for range 3 {
		restart()
		rem, _ = e.reconcile()
	}
	if n := len(e.tasks()); n != 1 {
		t.Fatalf("%d NodeTasks after more restarts, want 1", n)
	}
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
	if !rem.Status.StartedAt.Equal(startedAt) || meta.FindStatusCondition(rem.Status.Conditions, v1alpha1.RemediationConditionStatusForged) != nil {
		t.Errorf("a genuine record was re-planned: startedAt %v (was %v), conditions %+v", rem.Status.StartedAt, startedAt, rem.Status.Conditions)
	}
	e.finishTask(v1alpha1.TaskSucceeded, "restarted kubelet.service")
	restart()
	e.reconcile()
	e.setReady(nodeReady)
	e.renewLease(e.clock.Now().Add(time.Second))
	restart()
	e.reconcile()
	restart()
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
	if n := len(e.tasks()); n != 1 {
		t.Fatalf("%d NodeTasks at the end, want 1", n)
	}
}
