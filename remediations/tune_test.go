package remediations

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

// The tune tests build their own world (a worker with PLEG trouble, the
// policy, control-plane nodes) so that they depend on nothing but the
// executor.

var tuneT0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const (
	tuneWorker = "worker-2"
	tuneRecord = "worker-2-plegunhealthy-1795607880"
)

type tuneWorld struct {
	t     *testing.T
	ctx   context.Context
	c     client.Client
	clock *clocktesting.FakeClock
	ex    *Executor
}

func newTuneWorld(t *testing.T, objs ...client.Object) *tuneWorld {
	t.Helper()
	grace := metav1.Duration{Duration: 2 * time.Minute}
	base := []client.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: tuneWorker},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "PLEG is not healthy"}}}},
		&v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: tuneWorker},
			Status: v1alpha1.NodeDiagnosisStatus{Causes: []v1alpha1.DiagnosedCause{{Cause: v1alpha1.CausePLEGUnhealthy, Since: metav1.NewTime(tuneT0.Add(-time.Minute))}}}},
		&v1alpha1.RemediationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "tune"}, Spec: v1alpha1.RemediationPolicySpec{
			IncludeControlPlane: true,
			Causes:              []v1alpha1.CauseMatch{{Cause: v1alpha1.CausePLEGUnhealthy}},
			Action:              v1alpha1.Action{Type: v1alpha1.ActionTuneGracePeriods, TuneGracePeriods: &v1alpha1.TuneGracePeriodsParams{NodeMonitorGracePeriod: grace}},
			Mode:                v1alpha1.ModeAutomatic,
			StormBreaker:        v1alpha1.StormBreaker{MaxUnhealthy: ptr.To(intstr.FromString("100%"))},
		}},
		&v1alpha1.Remediation{
			ObjectMeta: metav1.ObjectMeta{Name: tuneRecord, UID: "tune-uid", Generation: 1,
				Labels: map[string]string{v1alpha1.LabelNode: tuneWorker, v1alpha1.LabelPolicy: "tune"}},
			Spec: v1alpha1.RemediationSpec{
				NodeName: tuneWorker, Cause: v1alpha1.CausePLEGUnhealthy, CauseSince: metav1.NewTime(tuneT0.Add(-time.Minute)),
				Policy: "tune", PolicyGeneration: 1, Mode: v1alpha1.ModeAutomatic,
				Action: v1alpha1.Action{Type: v1alpha1.ActionTuneGracePeriods, TuneGracePeriods: &v1alpha1.TuneGracePeriodsParams{NodeMonitorGracePeriod: grace}},
			},
		},
	}
	c := fakeClient(t, append(base, objs...)...)
	w := &tuneWorld{t: t, ctx: context.Background(), c: c, clock: clocktesting.NewFakeClock(tuneT0)}
	w.ex = &Executor{Client: c, Clock: w.clock, Recorder: events.NewFakeRecorder(10), Sealer: testSealer}
	return w
}

func controlPlaneNode(name string, ready corev1.ConditionStatus) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{policies.LabelControlPlane: ""}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}},
	}
}

func (w *tuneWorld) reconcile() *v1alpha1.Remediation {
	w.t.Helper()
	if _, err := w.ex.Reconcile(w.ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: tuneRecord}}); err != nil {
		w.t.Fatalf("Reconcile: %v", err)
	}
	rem := &v1alpha1.Remediation{}
	if err := w.c.Get(w.ctx, client.ObjectKey{Name: tuneRecord}, rem); err != nil {
		w.t.Fatal(err)
	}
	return rem
}

func (w *tuneWorld) tasks() []v1alpha1.NodeTask {
	w.t.Helper()
	list := &v1alpha1.NodeTaskList{}
	if err := w.c.List(w.ctx, list); err != nil {
		w.t.Fatal(err)
	}
	return list.Items
}

// toTask reconciles until the EditConfig task exists: planned, started,
// step Running, task created.
func (w *tuneWorld) toTask() *v1alpha1.Remediation {
	w.t.Helper()
	var rem *v1alpha1.Remediation
	for range 4 {
		rem = w.reconcile()
	}
	if len(w.tasks()) != 1 {
		w.t.Fatalf("no NodeTask after four reconciles: %+v", rem.Status)
	}
	return rem
}

// agentAnswers writes the task's status as the agent on the control-plane
// node does.
func (w *tuneWorld) agentAnswers(phase v1alpha1.NodeTaskPhase, before, after, backup, msg string) {
	w.t.Helper()
	task := &v1alpha1.NodeTask{}
	if err := w.c.Get(w.ctx, client.ObjectKey{Name: TuneTaskName(tuneRecord)}, task); err != nil {
		w.t.Fatal(err)
	}
	now := metav1.NewTime(w.clock.Now())
	task.Status = v1alpha1.NodeTaskStatus{Phase: phase, Message: msg, BeforeValue: before, AfterValue: after, Backup: backup, StartedAt: &now, CompletedAt: &now}
	if err := w.c.Status().Update(w.ctx, task); err != nil {
		w.t.Fatal(err)
	}
}

func TestTuneRaisesGracePeriod(t *testing.T) {
	// cp-0 is NotReady: the first Ready control-plane node by name is cp-1.
	w := newTuneWorld(t, controlPlaneNode("cp-2", corev1.ConditionTrue), controlPlaneNode("cp-0", corev1.ConditionUnknown), controlPlaneNode("cp-1", corev1.ConditionTrue))
	rem := w.reconcile()
	if len(rem.Status.Steps) != 2 || rem.Status.Steps[0].Name != v1alpha1.StepEditConfig || rem.Status.Steps[1].Name != v1alpha1.StepVerifyApplied {
		t.Fatalf("planned steps %+v", rem.Status.Steps)
	}
	if d := rem.Status.Steps[0].Description; !strings.Contains(d, "to 2m0s") || !strings.Contains(d, "never lowered") {
		t.Errorf("EditConfig description %q", d)
	}

	rem = w.toTask()
	task := w.tasks()[0]
	wantSpec := v1alpha1.NodeTaskSpec{NodeName: "cp-1", Action: v1alpha1.NodeActionEditConfig, Remediation: tuneRecord,
		Edit: &v1alpha1.ConfigEdit{File: v1alpha1.ConfigFileControllerManagerManifest, Key: v1alpha1.ConfigKeyNodeMonitorGracePeriod, Value: "2m0s", RaiseOnly: true}}
	if task.Name != tuneRecord+"-tune" || task.Spec.NodeName != wantSpec.NodeName || *task.Spec.Edit != *wantSpec.Edit || task.Spec.Action != wantSpec.Action || task.Spec.Unit != "" {
		t.Fatalf("task %s spec %+v edit %+v", task.Name, task.Spec, task.Spec.Edit)
	}
	if task.Labels[v1alpha1.LabelNode] != "cp-1" {
		t.Errorf("task labels %v: the control-plane node's agent must see it", task.Labels)
	}
	if owner := metav1.GetControllerOf(&task); owner == nil || owner.Name != tuneRecord {
		t.Errorf("task owner %+v", owner)
	}
	if rem.Status.NodeTask != task.Name || rem.Status.Tune == nil || rem.Status.Tune.Node != "cp-1" || rem.Status.Tune.Key != "--node-monitor-grace-period" {
		t.Errorf("status nodeTask %q tune %+v", rem.Status.NodeTask, rem.Status.Tune)
	}
	// The agent has not answered: no second task, the step waits.
	rem = w.reconcile()
	if len(w.tasks()) != 1 || rem.Status.Steps[0].Phase != v1alpha1.StepRunning {
		t.Fatalf("tasks %d, step %s", len(w.tasks()), rem.Status.Steps[0].Phase)
	}

	w.clock.Step(time.Second)
	backup := "/etc/kubernetes/manifests/.kube-controller-manager.yaml.nodeward-20261125T120001Z.bak"
	w.agentAnswers(v1alpha1.TaskSucceeded, "50s (default)", "2m0s", backup, "set node-monitor-grace-period ...")
	rem = w.reconcile() // EditConfig Succeeded
	if rem.Status.Steps[0].Phase != v1alpha1.StepSucceeded || !strings.Contains(rem.Status.Steps[0].Message, "node agent on cp-1") {
		t.Fatalf("EditConfig step %+v", rem.Status.Steps[0])
	}
	w.reconcile() // VerifyApplied Running
	rem = w.reconcile()
	if rem.Status.Phase != v1alpha1.PhaseSucceeded || rem.Status.Reason != v1alpha1.ReasonTuned {
		t.Fatalf("phase %s reason %s: %s", rem.Status.Phase, rem.Status.Reason, rem.Status.Message)
	}
	want := v1alpha1.TuneStatus{Node: "cp-1", File: "ControllerManagerManifest", Key: "--node-monitor-grace-period", Before: "50s (default)", After: "2m0s", Backup: backup}
	if *rem.Status.Tune != want {
		t.Errorf("status.tune = %+v, want %+v", *rem.Status.Tune, want)
	}
	if !strings.Contains(rem.Status.Message, "raised from 50s (default) to 2m0s") {
		t.Errorf("message %q", rem.Status.Message)
	}
}

// Already at least the wanted value: the agent edits nothing, the record
// says so and succeeds.
func TestTuneAlreadyAtValue(t *testing.T) {
	w := newTuneWorld(t, controlPlaneNode("cp-1", corev1.ConditionTrue))
	w.toTask()
	w.agentAnswers(v1alpha1.TaskSucceeded, "3m0s", "3m0s", "", "node-monitor-grace-period in ControllerManagerManifest is already 3m0s, more than 2m0s; it is never lowered: not edited")
	w.reconcile()
	w.reconcile()
	rem := w.reconcile()
	if rem.Status.Phase != v1alpha1.PhaseSucceeded || rem.Status.Reason != v1alpha1.ReasonAlreadyTuned || !strings.Contains(rem.Status.Message, "already at 3m0s") {
		t.Fatalf("phase %s reason %s: %s", rem.Status.Phase, rem.Status.Reason, rem.Status.Message)
	}
	if tu := rem.Status.Tune; tu.Before != "3m0s" || tu.After != "3m0s" || tu.Backup != "" {
		t.Errorf("status.tune = %+v", tu)
	}
}

func TestTuneFailures(t *testing.T) {
	t.Run("no Ready control-plane node", func(t *testing.T) {
		w := newTuneWorld(t, controlPlaneNode("cp-1", corev1.ConditionFalse))
		var rem *v1alpha1.Remediation
		for range 4 {
			rem = w.reconcile()
		}
		if rem.Status.Phase != v1alpha1.PhaseFailed || rem.Status.Reason != v1alpha1.ReasonTuneFailed || !strings.Contains(rem.Status.Message, "no Ready control-plane node") {
			t.Fatalf("phase %s reason %s: %s", rem.Status.Phase, rem.Status.Reason, rem.Status.Message)
		}
		if len(w.tasks()) != 0 {
			t.Errorf("a task was created")
		}
		if rem.Status.Steps[1].Phase != v1alpha1.StepSkipped {
			t.Errorf("VerifyApplied %s, want Skipped", rem.Status.Steps[1].Phase)
		}
	})
	t.Run("agent refuses", func(t *testing.T) {
		w := newTuneWorld(t, controlPlaneNode("cp-1", corev1.ConditionTrue))
		w.toTask()
		w.agentAnswers(v1alpha1.TaskFailed, "", "", "", "this agent has no config access")
		rem := w.reconcile()
		if rem.Status.Phase != v1alpha1.PhaseFailed || rem.Status.Reason != v1alpha1.ReasonTuneFailed || !strings.Contains(rem.Status.Message, "no config access") {
			t.Fatalf("phase %s reason %s: %s", rem.Status.Phase, rem.Status.Reason, rem.Status.Message)
		}
	})
	t.Run("agent never answers", func(t *testing.T) {
		w := newTuneWorld(t, controlPlaneNode("cp-1", corev1.ConditionTrue))
		w.toTask()
		w.clock.Step(tuneTimeout + time.Second)
		rem := w.reconcile()
		if rem.Status.Phase != v1alpha1.PhaseFailed || !strings.Contains(rem.Status.Message, "did not finish") {
			t.Fatalf("phase %s: %s", rem.Status.Phase, rem.Status.Message)
		}
	})
	t.Run("reads back another value", func(t *testing.T) {
		w := newTuneWorld(t, controlPlaneNode("cp-1", corev1.ConditionTrue))
		w.toTask()
		w.agentAnswers(v1alpha1.TaskSucceeded, "50s", "1m0s", "/x.bak", "set")
		w.reconcile()
		w.reconcile()
		rem := w.reconcile()
		if rem.Status.Phase != v1alpha1.PhaseFailed || rem.Status.Reason != v1alpha1.ReasonTuneFailed || !strings.Contains(rem.Status.Message, `reads back "1m0s", want 2m0s`) {
			t.Fatalf("phase %s reason %s: %s", rem.Status.Phase, rem.Status.Reason, rem.Status.Message)
		}
	})
}

func TestTuneTaskName(t *testing.T) {
	long := strings.Repeat("a", 250)
	if n := TuneTaskName(long); len(n) > 253 || n == TuneTaskName(long+"b") {
		t.Errorf("TuneTaskName(250 chars) = %q (%d)", n, len(n))
	}
	if TuneTaskName("r") != "r-tune" {
		t.Errorf("short name %q", TuneTaskName("r"))
	}
}
