package remediations

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
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

// testDiagnosis is the node's NodeDiagnosis, still diagnosing causes (the
// executor re-checks that the record's cause is there before it starts).
func testDiagnosis(node string, causes ...v1alpha1.Cause) *v1alpha1.NodeDiagnosis {
	d := &v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: node}}
	for _, c := range causes {
		d.Status.Causes = append(d.Status.Causes, v1alpha1.DiagnosedCause{Cause: c, Since: metav1.NewTime(t0.Add(-time.Minute))})
	}
	return d
}

// testPolicy is the records' policy, spec.policy "restart-kubelet", with
// every limit at its default but the storm breaker: the test fleets are one
// or two nodes, all of them unhealthy, and the default 30% (of two nodes: 1)
// would hold the second one back before maxConcurrent could.
func testPolicy(opts ...func(*v1alpha1.RemediationPolicy)) *v1alpha1.RemediationPolicy {
	p := &v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "restart-kubelet", Generation: 1},
		Spec: v1alpha1.RemediationPolicySpec{
			Causes: []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseKubeletDown}, {Cause: v1alpha1.CauseContainerRuntimeDown}},
			Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet,
				Restart: &v1alpha1.RestartParams{RecoveryTimeout: metav1.Duration{Duration: 2 * time.Minute}}},
			Mode:         v1alpha1.ModeAutomatic,
			StormBreaker: v1alpha1.StormBreaker{MaxUnhealthy: ptr.To(intstr.FromString("100%"))},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// policyFor is testPolicy deciding rem: its action, mode and cause.
func policyFor(rem *v1alpha1.Remediation) *v1alpha1.RemediationPolicy {
	return testPolicy(func(p *v1alpha1.RemediationPolicy) {
		p.Spec.Action = *rem.Spec.Action.DeepCopy()
		p.Spec.Mode = rem.Spec.Mode
		p.Spec.Causes = []v1alpha1.CauseMatch{{Cause: rem.Spec.Cause}}
	})
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

// testSealer holds the operator's seal key in these tests.
var testSealer = func() *policies.Sealer {
	s, err := policies.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	return s
}()

// fakeClient is a fake API with the indexes operator.Setup registers. Every
// Remediation among objs without a seal annotation is sealed, as the policy
// controller seals what it creates; give one an empty annotation to leave
// it unsealed.
func fakeClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if rem, ok := o.(*v1alpha1.Remediation); ok {
			if _, has := rem.Annotations[policies.AnnotationSeal]; !has {
				testSealer.SealRecord(rem)
			}
		}
	}
	return fake.NewClientBuilder().WithScheme(s).
		WithStatusSubresource(&v1alpha1.Remediation{}, &v1alpha1.NodeTask{}).
		WithIndex(&v1alpha1.Remediation{}, policies.IndexRemediationNode, func(o client.Object) []string {
			return []string{o.(*v1alpha1.Remediation).Spec.NodeName}
		}).
		WithIndex(&v1alpha1.Remediation{}, policies.IndexRemediationPolicy, func(o client.Object) []string {
			return []string{o.(*v1alpha1.Remediation).Spec.Policy}
		}).
		WithObjects(objs...).Build()
}

func newEnv(t *testing.T, objs ...client.Object) *env {
	t.Helper()
	c := fakeClient(t, objs...)
	e := &env{t: t, ctx: context.Background(), c: c, clock: clocktesting.NewFakeClock(t0), events: events.NewFakeRecorder(10)}
	e.ex = &Executor{Client: c, Clock: e.clock, Recorder: e.events, Sealer: testSealer}
	return e
}

// reconcile runs one Reconcile of the record and returns the stored record.
func (e *env) reconcile() (*v1alpha1.Remediation, reconcile.Result) {
	e.t.Helper()
	return e.reconcileNamed(recordName)
}

func (e *env) reconcileNamed(name string) (*v1alpha1.Remediation, reconcile.Result) {
	e.t.Helper()
	res, err := e.ex.Reconcile(e.ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: name}})
	if err != nil {
		e.t.Fatalf("Reconcile %s: %v", name, err)
	}
	return e.recordNamed(name), res
}

func (e *env) record() *v1alpha1.Remediation {
	e.t.Helper()
	return e.recordNamed(recordName)
}

func (e *env) recordNamed(name string) *v1alpha1.Remediation {
	e.t.Helper()
	rem := &v1alpha1.Remediation{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Name: name}, rem); err != nil {
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
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())

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
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
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
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
	if res.RequeueAfter != time.Second {
		t.Errorf("RequeueAfter = %s while waiting, want 1s", res.RequeueAfter)
	}

	// Ready=True but the Lease was renewed before the restart: still waiting.
	e.setReady(nodeReady)
	e.renewLease(restarted.Add(-5 * time.Second))
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
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
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.driveToTaskCreated()
	e.finishTask(v1alpha1.TaskSucceeded, "restarted kubelet.service")
	e.reconcile() // RestartUnit Succeeded
	rem, _ := e.reconcile()
	wantSteps(t, rem, v1alpha1.StepSucceeded, v1alpha1.StepRunning)
	waitStarted := e.clock.Now()

	// At exactly the timeout it still waits.
	e.clock.SetTime(waitStarted.Add(2 * time.Minute))
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)

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
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
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
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	rem := e.driveToTaskCreated()
	stepStarted := rem.Status.Steps[0].StartedAt.Time

	e.clock.SetTime(stepStarted.Add(2 * time.Minute))
	rem, res := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
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
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
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
	e := newEnv(t, testNode(readyCond(corev1.ConditionFalse, "KubeletNotReady", "container runtime is down")), rec,
		testDiagnosis(nodeName, v1alpha1.CauseContainerRuntimeDown), policyFor(rec))
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

// --- before the start: re-checks and gates --------------------------------

const (
	otherNode   = "worker-2"
	otherRecord = "worker-2-kubeletdown-1795607940"
)

func (e *env) setStatus(name string, f func(*v1alpha1.RemediationStatus)) {
	e.t.Helper()
	rem := e.recordNamed(name)
	f(&rem.Status)
	if err := e.c.Status().Update(e.ctx, rem); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) updateNode(name string, f func(*corev1.Node)) {
	e.t.Helper()
	n := &corev1.Node{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Name: name}, n); err != nil {
		e.t.Fatal(err)
	}
	f(n)
	if err := e.c.Update(e.ctx, n); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) setCauses(node string, causes ...v1alpha1.Cause) {
	e.t.Helper()
	d := &v1alpha1.NodeDiagnosis{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Name: node}, d); err != nil {
		e.t.Fatal(err)
	}
	d.Status = testDiagnosis(node, causes...).Status
	if err := e.c.Update(e.ctx, d); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) delete(obj client.Object) {
	e.t.Helper()
	if err := e.c.Delete(e.ctx, obj); err != nil {
		e.t.Fatal(err)
	}
}

// failedEarlier is an earlier KubeletDown remediation of worker-1 that
// started startedAgo before t0 and failed a minute later.
func failedEarlier(name string, startedAgo time.Duration) *v1alpha1.Remediation {
	r := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic)
	r.Name, r.UID = name, types.UID(name+"-uid")
	r.Status = v1alpha1.RemediationStatus{Phase: v1alpha1.PhaseFailed, Reason: v1alpha1.ReasonRecoveryTimeout,
		StartedAt: ptr.To(metav1.NewTime(t0.Add(-startedAgo))), CompletedAt: ptr.To(metav1.NewTime(t0.Add(-startedAgo + time.Minute)))}
	return r
}

// A pending record that can no longer help ends Skipped before it acts: it
// never starts, no NodeTask is created, every step is Skipped, and the
// record says why.
func TestExecutorSkippedBeforeStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		extra  []client.Object
		change func(e *env)
		reason string
		msg    string
	}{
		// The node recovered while the record was pending: its diagnosis
		// no longer has KubeletDown (it has another cause).
		{"cause gone", nil, func(e *env) { e.setCauses(nodeName, v1alpha1.CauseDiskPressure) },
			v1alpha1.ReasonCauseGone, "KubeletDown is no longer diagnosed on worker-1"},
		// The diagnosis was deleted altogether (the node is healthy).
		{"diagnosis gone", nil, func(e *env) { e.delete(&v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}) },
			v1alpha1.ReasonCauseGone, "KubeletDown is no longer diagnosed on worker-1"},
		// The policy was deleted while the record was pending.
		{"policy deleted", nil, func(e *env) { e.delete(testPolicy()) },
			v1alpha1.ReasonPolicyGone, "policy restart-kubelet was deleted before the remediation started"},
		// The node was deleted while the record was pending.
		{"node deleted", nil, func(e *env) { e.delete(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}) },
			v1alpha1.ReasonNodeGone, "the node no longer exists; nothing was done"},
		// Three KubeletDown remediations of the node failed within 24h: a
		// fourth would not help either.
		{"attempt budget spent", []client.Object{
			failedEarlier("worker-1-kubeletdown-1", 20*time.Hour),
			failedEarlier("worker-1-kubeletdown-2", 10*time.Hour),
			failedEarlier("worker-1-kubeletdown-3", 2*time.Hour),
		}, func(*env) {}, v1alpha1.ReasonAttemptBudgetSpent, "a person is needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := append([]client.Object{testNode(nodeUnknown), testLease(t0.Add(-90 * time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
				testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy()}, tc.extra...)
			e := newEnv(t, objs...)
			rem, _ := e.reconcile()
			wantPhase(t, rem, v1alpha1.PhasePending, "")

			e.clock.Step(time.Second)
			tc.change(e)
			rem, res := e.reconcile()
			wantPhase(t, rem, v1alpha1.PhaseSkipped, tc.reason)
			wantSteps(t, rem, v1alpha1.StepSkipped, v1alpha1.StepSkipped)
			if got, want := rem.Status.Steps[0].Message, "not carried out: "+tc.reason; got != want {
				t.Errorf("step message %q, want %q", got, want)
			}
			wantCondition(t, rem, metav1.ConditionFalse, tc.reason)
			if !strings.Contains(rem.Status.Message, tc.msg) {
				t.Errorf("message %q does not contain %q", rem.Status.Message, tc.msg)
			}
			if rem.Status.StartedAt != nil || rem.Status.CompletedAt == nil || !rem.Status.CompletedAt.Time.Equal(e.clock.Now()) {
				t.Errorf("startedAt %v, completedAt %v: want never started, ended at %s", rem.Status.StartedAt, rem.Status.CompletedAt, e.clock.Now())
			}
			if res != (reconcile.Result{}) {
				t.Errorf("skipped record requeued: %+v", res)
			}
			if ev := e.event(); !strings.HasPrefix(ev, "Normal RemediationSkipped") {
				t.Errorf("event %q, want Normal RemediationSkipped", ev)
			}
			e.reconcile()
			if n := len(e.tasks()); n != 0 {
				t.Fatalf("%d NodeTasks for a skipped record", n)
			}
		})
	}
}

// A gate that holds: the record stays Pending and says why, no NodeTask is
// created, and it looks again later. Once the hold is lifted it starts.
func TestExecutorHeldForPerson(t *testing.T) {
	node := testNode(nodeUnknown)
	node.Annotations = map[string]string{v1alpha1.AnnotationMaintenance: "replacing a disk"}
	e := newEnv(t, node, testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.reconcile() // planned

	for i := range 2 { // held, and held again while nothing changed
		e.clock.Step(15 * time.Second)
		rem, res := e.reconcile()
		wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonHeldForPerson)
		wantSteps(t, rem, v1alpha1.StepPending, v1alpha1.StepPending)
		if !strings.Contains(rem.Status.Message, "node worker-1 carries nodeward.io/maintenance") {
			t.Errorf("reconcile %d: message %q", i, rem.Status.Message)
		}
		if res.RequeueAfter <= 0 {
			t.Errorf("reconcile %d: held record not requeued: %+v", i, res)
		}
		if rem.Status.StartedAt != nil || rem.Status.CompletedAt != nil || rem.Status.NotBefore != nil {
			t.Errorf("reconcile %d: held record startedAt %v, completedAt %v, notBefore %v", i, rem.Status.StartedAt, rem.Status.CompletedAt, rem.Status.NotBefore)
		}
		wantCondition(t, rem, metav1.ConditionUnknown, v1alpha1.ReasonInProgress)
		if n := len(e.tasks()); n != 0 {
			t.Fatalf("reconcile %d: %d NodeTasks while held", i, n)
		}
		if ev := e.event(); ev != "" {
			t.Errorf("reconcile %d: event %q while held", i, ev)
		}
	}

	// The person is done: the record starts, and the hold's reason is gone.
	e.updateNode(nodeName, func(n *corev1.Node) { delete(n.Annotations, v1alpha1.AnnotationMaintenance) })
	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
	if rem.Status.Message != "" || rem.Status.StartedAt == nil || !rem.Status.StartedAt.Time.Equal(e.clock.Now()) {
		t.Errorf("started record message %q, startedAt %v", rem.Status.Message, rem.Status.StartedAt)
	}
	e.reconcile()
	e.reconcile()
	if n := len(e.tasks()); n != 1 {
		t.Fatalf("%d NodeTasks after the hold was lifted, want 1", n)
	}
}

// Outside the maintenance window the record waits with status.notBefore at
// the next opening, looking again no later than then; at the opening it
// starts.
func TestExecutorHeldUntilWindow(t *testing.T) {
	p := testPolicy(func(p *v1alpha1.RemediationPolicy) {
		p.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{Schedule: "0 2 * * *", Duration: metav1.Duration{Duration: time.Hour}}}
	})
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), p)
	e.reconcile() // planned
	opening := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)

	rem, res := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhasePending, v1alpha1.ReasonOutsideWindow)
	if rem.Status.NotBefore == nil || !rem.Status.NotBefore.Time.Equal(opening) {
		t.Errorf("notBefore %v, want %s", rem.Status.NotBefore, opening)
	}
	if !strings.Contains(rem.Status.Message, "waiting until 2026-11-26T02:00:00Z") {
		t.Errorf("message %q", rem.Status.Message)
	}
	if res.RequeueAfter != 15*time.Second {
		t.Errorf("RequeueAfter %s, want 15s (looks again regularly: the policy may change)", res.RequeueAfter)
	}

	// Two seconds before the opening it looks again at the opening.
	e.clock.SetTime(opening.Add(-2 * time.Second))
	_, res = e.reconcile()
	if res.RequeueAfter != 2*time.Second {
		t.Errorf("RequeueAfter %s two seconds before the opening, want 2s", res.RequeueAfter)
	}

	e.clock.SetTime(opening)
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
	if rem.Status.NotBefore != nil || rem.Status.Message != "" {
		t.Errorf("started record keeps notBefore %v, message %q", rem.Status.NotBefore, rem.Status.Message)
	}
}

// maxConcurrent 1 (the default) with two pending records on two nodes,
// reconciled back to back: the first starts, the second waits RateLimited
// while the first runs, even if the store (as a lagging cache would) does
// not show the first as started yet; it starts once the first has ended.
func TestExecutorMaxConcurrent(t *testing.T) {
	a := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic)
	b := record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic)
	b.Name, b.UID, b.Spec.NodeName, b.Labels[v1alpha1.LabelNode] = otherRecord, "other-uid", otherNode, otherNode
	nodeB := testNode(nodeUnknown)
	nodeB.Name, nodeB.UID = otherNode, "other-node-uid"
	e := newEnv(t, testNode(nodeUnknown), nodeB, a, b,
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testDiagnosis(otherNode, v1alpha1.CauseKubeletDown), testPolicy())

	e.reconcileNamed(recordName)
	e.reconcileNamed(otherRecord)
	remA, _ := e.reconcileNamed(recordName)
	wantPhase(t, remA, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)

	remB, res := e.reconcileNamed(otherRecord)
	wantPhase(t, remB, v1alpha1.PhasePending, v1alpha1.ReasonRateLimited)
	if !strings.Contains(remB.Status.Message, "1 of the policy's remediations are running (maxConcurrent 1)") {
		t.Errorf("message %q", remB.Status.Message)
	}
	if res.RequeueAfter <= 0 || remB.Status.StartedAt != nil {
		t.Errorf("held record: RequeueAfter %s, startedAt %v", res.RequeueAfter, remB.Status.StartedAt)
	}

	// The store shows A as pending, never started: the executor's ledger of
	// what it started still holds B.
	e.clock.Step(time.Second)
	e.setStatus(recordName, func(s *v1alpha1.RemediationStatus) {
		s.Phase, s.Reason, s.StartedAt = v1alpha1.PhasePending, "", nil
	})
	remB, _ = e.reconcileNamed(otherRecord)
	wantPhase(t, remB, v1alpha1.PhasePending, v1alpha1.ReasonRateLimited)
	// It is the ledger that holds it: an executor without one would let B
	// through on that store.
	policy, node := &v1alpha1.RemediationPolicy{}, &corev1.Node{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Name: "restart-kubelet"}, policy); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Get(e.ctx, client.ObjectKey{Name: otherNode}, node); err != nil {
		t.Fatal(err)
	}
	fresh := &Executor{Client: e.c, Clock: e.clock, Recorder: e.events, Sealer: testSealer}
	if v, err := fresh.admit(e.ctx, policy, remB, node, e.clock.Now()); err != nil || !v.Allow {
		t.Fatalf("without the ledger: %+v, %v; want allowed", v, err)
	}
	if n := len(e.tasks()); n != 0 {
		t.Fatalf("%d NodeTasks, want none (A's step never ran here)", n)
	}

	// A ended: B starts.
	e.clock.Step(time.Second)
	e.setStatus(recordName, func(s *v1alpha1.RemediationStatus) {
		s.Phase, s.Reason = v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered
		s.StartedAt, s.CompletedAt = ptr.To(metav1.NewTime(t0)), ptr.To(metav1.NewTime(e.clock.Now()))
	})
	remB, _ = e.reconcileNamed(otherRecord)
	wantPhase(t, remB, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
}

func TestFitStatusCutsToTheCRDLimits(t *testing.T) {
	long := strings.Repeat("é", 5000)
	st := v1alpha1.RemediationStatus{Message: long, Steps: []v1alpha1.Step{{Description: long, Message: "node agent: " + long}}}
	fitStatus(&st)
	for what, got := range map[string]struct {
		s   string
		max int
	}{"message": {st.Message, 4096}, "step description": {st.Steps[0].Description, 1024}, "step message": {st.Steps[0].Message, 2048}} {
		if n := utf8.RuneCountInString(got.s); n != got.max || !strings.HasSuffix(got.s, "...") || !utf8.ValidString(got.s) {
			t.Errorf("%s: %d characters (want %d, ending in ...)", what, n, got.max)
		}
	}
}
