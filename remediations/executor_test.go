package remediations

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/operator/diagnosis"
	"github.com/nodeward/nodeward/policies"
)

// t0 is when the record is first reconciled. Times are whole seconds: the
// API keeps metav1.Time at second precision.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const (
	nodeName   = "worker-1"
	recordName = "worker-1-kubeletdown-1795607940"
)

// --- builders -------------------------------------------------------------

func testNode(ready corev1.NodeCondition) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName, UID: "node-uid"},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}},
	}
}

func readyCond(status corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: status, Reason: reason, Message: msg,
		LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0)}
}

var (
	nodeUnknown = readyCond(corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.")
	nodeReady   = readyCond(corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status")
)

func testLease(renewed time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: diagnosis.NodeLeaseNamespace, Name: nodeName},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(nodeName),
			LeaseDurationSeconds: ptr.To[int32](40),
			RenewTime:            &metav1.MicroTime{Time: renewed},
		},
	}
}

// record is a Remediation as the policy controller creates it.
func record(action v1alpha1.ActionType, mode v1alpha1.Mode) *v1alpha1.Remediation {
	return &v1alpha1.Remediation{
		ObjectMeta: metav1.ObjectMeta{
			Name: recordName, UID: "record-uid", Generation: 1,
			Labels: map[string]string{v1alpha1.LabelNode: nodeName, v1alpha1.LabelPolicy: "restart-kubelet"},
		},
		Spec: v1alpha1.RemediationSpec{
			NodeName:   nodeName,
			Cause:      v1alpha1.CauseKubeletDown,
			CauseSince: metav1.NewTime(t0.Add(-time.Minute)),
			Policy:     "restart-kubelet",
			Action: v1alpha1.Action{Type: action,
				Restart: &v1alpha1.RestartParams{RecoveryTimeout: metav1.Duration{Duration: 2 * time.Minute}}},
			Mode: mode,
		},
	}
}

// --- harness --------------------------------------------------------------

type env struct {
	t      *testing.T
	ctx    context.Context
	c      client.Client
	clock  *clocktesting.FakeClock
	events *events.FakeRecorder
	ex     *Executor
}

func newEnv(t *testing.T, objs ...client.Object) *env {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).
		WithStatusSubresource(&v1alpha1.Remediation{}, &v1alpha1.NodeTask{}).
		// As operator.Setup indexes it.
		WithIndex(&v1alpha1.Remediation{}, policies.IndexRemediationNode, func(o client.Object) []string {
			return []string{o.(*v1alpha1.Remediation).Spec.NodeName}
		}).
		WithObjects(objs...).Build()
	e := &env{t: t, ctx: context.Background(), c: c, clock: clocktesting.NewFakeClock(t0), events: events.NewFakeRecorder(10)}
	e.ex = &Executor{Client: c, Clock: e.clock, Recorder: e.events}
	return e
}

// reconcile runs one Reconcile of the record and returns the stored record.
func (e *env) reconcile() (*v1alpha1.Remediation, reconcile.Result) {
	e.t.Helper()
	res, err := e.ex.Reconcile(e.ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: recordName}})
	if err != nil {
		e.t.Fatalf("Reconcile: %v", err)
	}
	return e.record(), res
}

func (e *env) record() *v1alpha1.Remediation {
	e.t.Helper()
	rem := &v1alpha1.Remediation{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Name: recordName}, rem); err != nil {
		e.t.Fatal(err)
	}
	return rem
}

func (e *env) tasks() []v1alpha1.NodeTask {
	e.t.Helper()
	list := &v1alpha1.NodeTaskList{}
	if err := e.c.List(e.ctx, list); err != nil {
		e.t.Fatal(err)
	}
	return list.Items
}

// finishTask writes the task's status as the node agent does.
func (e *env) finishTask(phase v1alpha1.NodeTaskPhase, msg string) time.Time {
	e.t.Helper()
	task := &v1alpha1.NodeTask{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Name: recordName}, task); err != nil {
		e.t.Fatal(err)
	}
	done := e.clock.Now()
	task.Status = v1alpha1.NodeTaskStatus{
		Phase: phase, Message: msg,
		Before:      &v1alpha1.UnitState{Name: v1alpha1.UnitKubelet, UnitName: "kubelet.service", ActiveState: "inactive", SubState: "dead", UnitFileState: "disabled"},
		StartedAt:   &metav1.Time{Time: done.Add(-2 * time.Second)},
		CompletedAt: &metav1.Time{Time: done},
	}
	if err := e.c.Status().Update(e.ctx, task); err != nil {
		e.t.Fatal(err)
	}
	return done
}

func (e *env) setReady(cond corev1.NodeCondition) {
	e.t.Helper()
	n := &corev1.Node{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Name: nodeName}, n); err != nil {
		e.t.Fatal(err)
	}
	n.Status.Conditions = []corev1.NodeCondition{cond}
	if err := e.c.Status().Update(e.ctx, n); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) renewLease(at time.Time) {
	e.t.Helper()
	l := &coordinationv1.Lease{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Namespace: diagnosis.NodeLeaseNamespace, Name: nodeName}, l); err != nil {
		e.t.Fatal(err)
	}
	l.Spec.RenewTime = &metav1.MicroTime{Time: at}
	if err := e.c.Update(e.ctx, l); err != nil {
		e.t.Fatal(err)
	}
}

// event returns the next recorded event, or "" if there is none.
func (e *env) event() string {
	select {
	case ev := <-e.events.Events:
		return ev
	default:
		return ""
	}
}

// driveToTaskCreated reconciles a new record until its NodeTask exists:
// "" → Pending → Running → RestartUnit Running → task created.
func (e *env) driveToTaskCreated() *v1alpha1.Remediation {
	e.t.Helper()
	for range 4 {
		e.reconcile()
	}
	rem := e.record()
	if rem.Status.NodeTask == "" || len(e.tasks()) != 1 {
		e.t.Fatalf("no NodeTask after four reconciles: %+v", rem.Status)
	}
	return rem
}

func wantPhase(t *testing.T, rem *v1alpha1.Remediation, phase v1alpha1.RemediationPhase, reason string) {
	t.Helper()
	if rem.Status.Phase != phase || rem.Status.Reason != reason {
		t.Fatalf("record %s/%s (%q), want %s/%s", rem.Status.Phase, rem.Status.Reason, rem.Status.Message, phase, reason)
	}
}

func wantSteps(t *testing.T, rem *v1alpha1.Remediation, phases ...v1alpha1.StepPhase) {
	t.Helper()
	if len(rem.Status.Steps) != len(phases) {
		t.Fatalf("%d steps, want %d: %+v", len(rem.Status.Steps), len(phases), rem.Status.Steps)
	}
	for i, p := range phases {
		if got := rem.Status.Steps[i].Phase; got != p {
			t.Fatalf("step %d (%s) is %s, want %s", i, rem.Status.Steps[i].Name, got, p)
		}
	}
}

func wantCondition(t *testing.T, rem *v1alpha1.Remediation, status metav1.ConditionStatus, reason string) {
	t.Helper()
	c := meta.FindStatusCondition(rem.Status.Conditions, v1alpha1.RemediationConditionSucceeded)
	if c == nil || c.Status != status || c.Reason != reason {
		t.Fatalf("condition Succeeded = %+v, want %s/%s", c, status, reason)
	}
}

// --- tests ----------------------------------------------------------------

// A kubelet restart carried out step by step, every step persisted before
// the next one acts, ending when the node is Ready with a Lease renewed after
// the restart.
func TestExecutorRestartKubeletRecovers(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic))

	// "" → Pending: steps planned, nothing done.
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhasePending, "")
	wantSteps(t, rem, v1alpha1.StepPending, v1alpha1.StepPending)
	if rem.Status.Steps[0].Name != v1alpha1.StepRestartUnit || rem.Status.Steps[1].Name != v1alpha1.StepWaitForRecovery {
		t.Fatalf("planned steps %s, %s", rem.Status.Steps[0].Name, rem.Status.Steps[1].Name)
	}
	if !strings.Contains(rem.Status.Steps[0].Description, "restart the kubelet unit") {
		t.Errorf("step description %q", rem.Status.Steps[0].Description)
	}
	wantCondition(t, rem, metav1.ConditionUnknown, v1alpha1.ReasonInProgress)

	// Pending → Running.
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, "")
	if rem.Status.StartedAt == nil || !rem.Status.StartedAt.Time.Equal(t0) {
		t.Errorf("startedAt = %v, want %s", rem.Status.StartedAt, t0)
	}
	wantSteps(t, rem, v1alpha1.StepPending, v1alpha1.StepPending)

	// RestartUnit → Running, persisted before any NodeTask exists.
	e.clock.Step(time.Second)
	rem, _ = e.reconcile()
	wantSteps(t, rem, v1alpha1.StepRunning, v1alpha1.StepPending)
	if n := len(e.tasks()); n != 0 {
		t.Fatalf("%d NodeTasks exist before the step's Running state was persisted", n)
	}

	// The NodeTask is created: named after the record, labelled with the
	// node, owned by the record.
	rem, _ = e.reconcile()
	tasks := e.tasks()
	if len(tasks) != 1 {
		t.Fatalf("%d NodeTasks, want 1", len(tasks))
	}
	task := tasks[0]
	if task.Name != recordName || rem.Status.NodeTask != recordName {
		t.Errorf("task %q, status.nodeTask %q, want %q", task.Name, rem.Status.NodeTask, recordName)
	}
	if task.Labels[v1alpha1.LabelNode] != nodeName || task.Labels[v1alpha1.LabelRemediation] != recordName {
		t.Errorf("task labels %v", task.Labels)
	}
	if task.Spec != (v1alpha1.NodeTaskSpec{NodeName: nodeName, Action: v1alpha1.NodeActionRestartUnit, Unit: v1alpha1.UnitKubelet, Remediation: recordName}) {
		t.Errorf("task spec %+v", task.Spec)
	}
	owner := metav1.GetControllerOf(&task)
	if owner == nil || owner.Kind != "Remediation" || owner.Name != recordName || owner.UID != "record-uid" {
		t.Errorf("task controller reference %+v, want the record", owner)
	}
	wantSteps(t, rem, v1alpha1.StepRunning, v1alpha1.StepPending)

	// Reconciling again while the agent works does not create a second task.
	rem, res := e.reconcile()
	if n := len(e.tasks()); n != 1 {
		t.Fatalf("%d NodeTasks after another reconcile, want 1", n)
	}
	if res.RequeueAfter == 0 {
		t.Error("no requeue while waiting for the agent")
	}
	wantSteps(t, rem, v1alpha1.StepRunning, v1alpha1.StepPending)

	// The agent restarts the kubelet and reports success.
	e.clock.Step(3 * time.Second)
	restarted := e.finishTask(v1alpha1.TaskSucceeded, "restarted kubelet.service: inactive (dead) → active (running)")
	rem, _ = e.reconcile()
	wantSteps(t, rem, v1alpha1.StepSucceeded, v1alpha1.StepPending)
	if s := rem.Status.Steps[0]; s.CompletedAt == nil || !s.CompletedAt.Time.Equal(restarted) || !strings.Contains(s.Message, "node agent: restarted kubelet.service") {
		t.Errorf("RestartUnit step %+v, want completed at %s with the agent's message", s, restarted)
	}

	// WaitForRecovery → Running.
	e.clock.Step(time.Second)
	rem, _ = e.reconcile()
	wantSteps(t, rem, v1alpha1.StepSucceeded, v1alpha1.StepRunning)

	// Still NotReady, Lease stale: it waits, polling.
	e.clock.Step(time.Second)
	rem, res = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, "")
	if res.RequeueAfter != time.Second {
		t.Errorf("RequeueAfter = %s while waiting, want 1s", res.RequeueAfter)
	}

	// Ready=True but the Lease was renewed before the restart: still waiting.
	e.setReady(nodeReady)
	e.renewLease(restarted.Add(-5 * time.Second))
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, "")
	wantSteps(t, rem, v1alpha1.StepSucceeded, v1alpha1.StepRunning)

	// The restarted kubelet renews its Lease: recovered.
	e.clock.Step(5 * time.Second)
	e.renewLease(restarted.Add(2 * time.Second))
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
	wantSteps(t, rem, v1alpha1.StepSucceeded, v1alpha1.StepSucceeded)
	wantCondition(t, rem, metav1.ConditionTrue, v1alpha1.ReasonRecovered)
	if rem.Status.CompletedAt == nil || !rem.Status.CompletedAt.Time.Equal(e.clock.Now()) {
		t.Errorf("completedAt = %v, want %s", rem.Status.CompletedAt, e.clock.Now())
	}
	if !strings.Contains(rem.Status.Message, "node worker-1 recovered 7s after the action") {
		t.Errorf("message %q", rem.Status.Message)
	}
	if !strings.Contains(rem.Status.Steps[1].Message, "Lease renewed at 2026-11-25T12:00:06Z") {
		t.Errorf("WaitForRecovery message %q", rem.Status.Steps[1].Message)
	}
	if ev := e.event(); !strings.HasPrefix(ev, "Normal RemediationSucceeded node worker-1 recovered") {
		t.Errorf("event %q, want Normal RemediationSucceeded", ev)
	}

	// A terminal record is left alone.
	rv := rem.ResourceVersion
	e.clock.Step(time.Hour)
	rem, res = e.reconcile()
	if rem.ResourceVersion != rv || res != (reconcile.Result{}) {
		t.Errorf("terminal record rewritten (resourceVersion %s → %s) or requeued (%+v)", rv, rem.ResourceVersion, res)
	}
	if ev := e.event(); ev != "" {
		t.Errorf("terminal record announced again: %q", ev)
	}
}

// No Ready=True and no renewed Lease within the recovery timeout: Failed
// RecoveryTimeout, saying what was missing.
func TestExecutorRecoveryTimeout(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic))
	e.driveToTaskCreated()
	e.finishTask(v1alpha1.TaskSucceeded, "restarted kubelet.service")
	e.reconcile() // RestartUnit Succeeded
	rem, _ := e.reconcile()
	wantSteps(t, rem, v1alpha1.StepSucceeded, v1alpha1.StepRunning)
	waitStarted := e.clock.Now()

	// At exactly the timeout it still waits.
	e.clock.SetTime(waitStarted.Add(2 * time.Minute))
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, "")

	// Past it, it fails.
	e.clock.SetTime(waitStarted.Add(2*time.Minute + time.Second))
	rem, res := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseFailed, v1alpha1.ReasonRecoveryTimeout)
	wantSteps(t, rem, v1alpha1.StepSucceeded, v1alpha1.StepFailed)
	wantCondition(t, rem, metav1.ConditionFalse, v1alpha1.ReasonRecoveryTimeout)
	for _, want := range []string{"step WaitForRecovery failed", "after 2m0s", "the node is not Ready", "its Lease was not renewed after the restart"} {
		if !strings.Contains(rem.Status.Message, want) {
			t.Errorf("message %q does not contain %q", rem.Status.Message, want)
		}
	}
	if res != (reconcile.Result{}) {
		t.Errorf("failed record requeued: %+v", res)
	}
	if ev := e.event(); !strings.HasPrefix(ev, "Warning RemediationFailed") {
		t.Errorf("event %q, want Warning RemediationFailed", ev)
	}
}

// The agent could not restart the unit: Failed AgentTaskFailed, and the
// steps after it are Skipped.
func TestExecutorTaskFailed(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic))
	e.driveToTaskCreated()
	e.clock.Step(2 * time.Second)
	e.finishTask(v1alpha1.TaskFailed, `restarting kubelet.service: unit kubelet.service is masked`)

	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseFailed, v1alpha1.ReasonAgentTaskFailed)
	wantSteps(t, rem, v1alpha1.StepFailed, v1alpha1.StepSkipped)
	if got := rem.Status.Steps[0].Message; got != "node agent: restarting kubelet.service: unit kubelet.service is masked" {
		t.Errorf("RestartUnit message %q", got)
	}
	if got := rem.Status.Steps[1].Message; got != "not run: an earlier step failed" {
		t.Errorf("WaitForRecovery message %q", got)
	}
	if !strings.Contains(rem.Status.Message, "step RestartUnit failed: node agent: restarting kubelet.service") {
		t.Errorf("message %q", rem.Status.Message)
	}
	if ev := e.event(); !strings.HasPrefix(ev, "Warning RemediationFailed") {
		t.Errorf("event %q, want Warning RemediationFailed", ev)
	}
}

// An agent that never answers: the task times out as AgentTaskFailed.
func TestExecutorTaskNeverAnswered(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic))
	rem := e.driveToTaskCreated()
	stepStarted := rem.Status.Steps[0].StartedAt.Time

	e.clock.SetTime(stepStarted.Add(2 * time.Minute))
	rem, res := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, "")
	if res.RequeueAfter == 0 {
		t.Error("no requeue while the task is pending")
	}

	e.clock.SetTime(stepStarted.Add(2*time.Minute + time.Second))
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseFailed, v1alpha1.ReasonAgentTaskFailed)
	wantSteps(t, rem, v1alpha1.StepFailed, v1alpha1.StepSkipped)
	if !strings.Contains(rem.Status.Message, "did not finish task "+recordName+" within 2m0s") {
		t.Errorf("message %q", rem.Status.Message)
	}
}

// DryRun: planned, then Skipped without touching the node.
func TestExecutorDryRun(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeDryRun))

	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhasePending, "")
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseSkipped, v1alpha1.ReasonDryRun)
	wantSteps(t, rem, v1alpha1.StepSkipped, v1alpha1.StepSkipped)
	wantCondition(t, rem, metav1.ConditionFalse, v1alpha1.ReasonDryRun)
	if want := "dry run: would have run RestartKubelet on node worker-1; nothing was touched"; rem.Status.Message != want {
		t.Errorf("message %q, want %q", rem.Status.Message, want)
	}
	if rem.Status.StartedAt != nil || rem.Status.CompletedAt == nil {
		t.Errorf("startedAt %v, completedAt %v: a dry run never starts, but ends", rem.Status.StartedAt, rem.Status.CompletedAt)
	}
	if ev := e.event(); !strings.HasPrefix(ev, "Normal RemediationSkipped dry run") {
		t.Errorf("event %q, want Normal RemediationSkipped", ev)
	}

	// Nothing more happens, and no NodeTask ever exists.
	e.reconcile()
	if n := len(e.tasks()); n != 0 {
		t.Fatalf("%d NodeTasks in DryRun mode", n)
	}
}

// The node is deleted mid-remediation: Failed NodeGone.
func TestExecutorNodeGone(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic))
	e.driveToTaskCreated()
	if err := e.c.Delete(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}); err != nil {
		t.Fatal(err)
	}
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseFailed, v1alpha1.ReasonNodeGone)
	wantSteps(t, rem, v1alpha1.StepFailed, v1alpha1.StepSkipped)
	if !strings.Contains(rem.Status.Message, "the node no longer exists") {
		t.Errorf("message %q", rem.Status.Message)
	}
}

// A container runtime restart waits for Ready=True only; the kubelet's Lease
// is not part of its recovery.
func TestExecutorRestartRuntimeIgnoresLease(t *testing.T) {
	rec := record(v1alpha1.ActionRestartContainerRuntime, v1alpha1.ModeAutomatic)
	rec.Spec.Cause = v1alpha1.CauseContainerRuntimeDown
	e := newEnv(t, testNode(readyCond(corev1.ConditionFalse, "KubeletNotReady", "container runtime is down")), rec)
	e.driveToTaskCreated()
	if task := e.tasks()[0]; task.Spec.Unit != v1alpha1.UnitContainerRuntime {
		t.Errorf("task unit %s, want containerRuntime", task.Spec.Unit)
	}
	e.finishTask(v1alpha1.TaskSucceeded, "restarted containerd.service")
	e.reconcile()
	rem, _ := e.reconcile()
	wantSteps(t, rem, v1alpha1.StepSucceeded, v1alpha1.StepRunning)

	e.setReady(nodeReady) // no Lease exists at all
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
}

// A record in a terminal phase is never touched, whatever its node's state.
func TestExecutorTerminalUntouched(t *testing.T) {
	for _, phase := range []v1alpha1.RemediationPhase{v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed, v1alpha1.PhaseSkipped} {
		t.Run(string(phase), func(t *testing.T) {
			rec := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic)
			rec.Status = v1alpha1.RemediationStatus{Phase: phase, Reason: "Earlier", Message: "ended earlier",
				Steps: []v1alpha1.Step{{Name: v1alpha1.StepRestartUnit, Phase: v1alpha1.StepPending}}}
			e := newEnv(t, rec) // no node: a live record would fail NodeGone
			rv := e.record().ResourceVersion
			rem, res := e.reconcile()
			if rem.ResourceVersion != rv || rem.Status.Phase != phase || rem.Status.Reason != "Earlier" {
				t.Errorf("terminal record changed: %+v", rem.Status)
			}
			if res != (reconcile.Result{}) {
				t.Errorf("terminal record requeued: %+v", res)
			}
			if n := len(e.tasks()); n != 0 || e.event() != "" {
				t.Errorf("terminal record acted on: %d tasks, event %q", n, e.event())
			}
		})
	}
}

// A record that was deleted is not an error.
func TestExecutorRecordGone(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown))
	if _, err := e.ex.Reconcile(e.ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: recordName}}); err != nil {
		t.Fatalf("Reconcile of a missing record: %v", err)
	}
}

// inFlightForNode maps a Node event to that node's non-terminal records only.
func TestInFlightForNode(t *testing.T) {
	live := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic)
	done := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic)
	done.Name, done.UID = "worker-1-kubeletdown-1795600000", "done-uid"
	done.Status.Phase = v1alpha1.PhaseSucceeded
	other := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic)
	other.Name, other.UID, other.Spec.NodeName = "worker-2-kubeletdown-1795607940", "other-uid", "worker-2"
	e := newEnv(t, live, done, other)

	reqs := e.ex.inFlightForNode(e.ctx, testNode(nodeReady))
	if len(reqs) != 1 || reqs[0].Name != recordName {
		t.Fatalf("requests %v, want only %s", reqs, recordName)
	}
}
