package remediations

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// intercept routes the executor's client through funcs.
func (e *env) intercept(funcs interceptor.Funcs) {
	e.ex.Client = interceptor.NewClient(e.c.(client.WithWatch), funcs)
}

// A NodeTask create that keeps failing does not leave the record Running
// forever: the step says what fails while it retries, and fails with the
// error at the step's timeout, counted from the step's start.
func TestExecutorTaskCreateKeepsFailing(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	creates := 0
	e.intercept(interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		if _, ok := obj.(*v1alpha1.NodeTask); ok {
			creates++
			return apierrors.NewInvalid(schema.GroupKind{Group: "nodeward.io", Kind: "NodeTask"}, obj.GetName(), nil)
		}
		return c.Create(ctx, obj, opts...)
	}})
	for range 3 { // planned, Running, RestartUnit Running
		e.reconcile()
	}
	started := e.clock.Now()
	rem, res := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
	wantSteps(t, rem, v1alpha1.StepRunning, v1alpha1.StepPending)
	if msg := rem.Status.Steps[0].Message; !strings.Contains(msg, "creating NodeTask "+recordName) || !strings.Contains(msg, "retrying until") {
		t.Errorf("step message while retrying = %q, want the create error and until when it retries", msg)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > stepRetry {
		t.Errorf("requeue after %s, want within %s", res.RequeueAfter, stepRetry)
	}
	if rem.Status.NodeTask != "" {
		t.Errorf("status.nodeTask = %q though no task was created", rem.Status.NodeTask)
	}

	// Just before the timeout: still retrying.
	e.clock.SetTime(started.Add(RecoveryTimeout(rem.Spec.Action) - time.Second))
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)

	// At the timeout, counted from the step's start: Failed, saying why.
	e.clock.SetTime(started.Add(RecoveryTimeout(rem.Spec.Action)))
	rem, _ = e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseFailed, v1alpha1.ReasonStepTimeout)
	wantSteps(t, rem, v1alpha1.StepFailed, v1alpha1.StepSkipped)
	for _, msg := range []string{rem.Status.Message, rem.Status.Steps[0].Message} {
		if !strings.Contains(msg, "creating NodeTask "+recordName) || !strings.Contains(msg, "2m0s") {
			t.Errorf("message %q, want the create error and the timeout", msg)
		}
	}
	if n := len(e.tasks()); n != 0 {
		t.Errorf("%d NodeTasks", n)
	}
	tries := creates
	e.clock.Step(time.Hour)
	e.reconcile()
	if creates != tries {
		t.Errorf("a failed record tried to create its task again")
	}
}

// A NodeTask that was handed out and then deleted is never created again:
// whether the agent ran it is unknown, and an action runs at most once per
// record.
func TestExecutorTaskVanished(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.driveToTaskCreated()
	e.delete(&v1alpha1.NodeTask{ObjectMeta: e.tasks()[0].ObjectMeta})

	rem, _ := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseFailed, v1alpha1.ReasonNodeTaskVanished)
	wantSteps(t, rem, v1alpha1.StepFailed, v1alpha1.StepSkipped)
	if !strings.Contains(rem.Status.Message, "whether the action ran is unknown") || !strings.Contains(rem.Status.Message, recordName) {
		t.Errorf("message %q", rem.Status.Message)
	}
	for range 3 {
		e.clock.Step(time.Minute)
		e.reconcile()
	}
	if n := len(e.tasks()); n != 0 {
		t.Fatalf("%d NodeTasks after the task vanished, want 0: it was created again", n)
	}
}

// The executor's cache may not have its own task yet: the API server is
// asked before a task is called gone.
func TestExecutorTaskNotYetCached(t *testing.T) {
	e := newEnv(t, testNode(nodeUnknown), testLease(t0.Add(-90*time.Second)), record(v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		testDiagnosis(nodeName, v1alpha1.CauseKubeletDown), testPolicy())
	e.driveToTaskCreated()
	e.ex.APIReader = e.c
	e.intercept(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*v1alpha1.NodeTask); ok {
			return apierrors.NewNotFound(schema.GroupResource{Group: "nodeward.io", Resource: "nodetasks"}, key.Name)
		}
		return c.Get(ctx, key, obj, opts...)
	}})
	rem, res := e.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress)
	wantSteps(t, rem, v1alpha1.StepRunning, v1alpha1.StepPending)
	if res.RequeueAfter == 0 {
		t.Error("no requeue while the agent works")
	}
	if n := len(e.tasks()); n != 1 {
		t.Fatalf("%d NodeTasks, want 1", n)
	}
}

// The same for the grace-period edit: a vanished EditConfig task is not
// handed out again.
func TestTuneTaskVanished(t *testing.T) {
	w := newTuneWorld(t, controlPlaneNode("cp-1", "True"))
	w.toTask()
	task := w.tasks()[0]
	if err := w.c.Delete(w.ctx, &task); err != nil {
		t.Fatal(err)
	}
	rem := w.reconcile()
	wantPhase(t, rem, v1alpha1.PhaseFailed, v1alpha1.ReasonNodeTaskVanished)
	if !strings.Contains(rem.Status.Message, "cp-1") {
		t.Errorf("message %q, want the control-plane node", rem.Status.Message)
	}
	w.reconcile()
	if n := len(w.tasks()); n != 0 {
		t.Fatalf("%d NodeTasks after the task vanished, want 0", n)
	}
}

// A cordon the API server keeps refusing fails the Cordon step at its
// timeout instead of leaving the record Running.
func TestCordonKeepsFailing(t *testing.T) {
	rem := running(drainRecord(v1alpha1.DrainParams{}), v1alpha1.StepCordon, nil)
	d := newDrainEnv(t, rem, schedulable())
	d.kube.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, nodeName, nil)
	})
	d.reconcile() // Cordon Running
	started := d.clock.Now()
	got, _ := d.reconcile()
	wantSteps(t, got, v1alpha1.StepRunning, v1alpha1.StepPending)
	if !strings.Contains(got.Status.Steps[0].Message, "cordoning "+nodeName) {
		t.Errorf("Cordon message while retrying = %q", got.Status.Steps[0].Message)
	}
	d.clock.SetTime(started.Add(cordonTimeout))
	got, _ = d.reconcile()
	wantPhase(t, got, v1alpha1.PhaseFailed, v1alpha1.ReasonStepTimeout)
	wantSteps(t, got, v1alpha1.StepFailed, v1alpha1.StepSkipped)
	if !strings.Contains(got.Status.Message, "forbidden") {
		t.Errorf("message %q, want the API's error", got.Status.Message)
	}
}
