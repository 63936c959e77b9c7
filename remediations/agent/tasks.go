package agent

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// taskRunner carries out NodeTasks for its own node. A task moves to Running
// (an optimistic-concurrency write) before the agent acts, and a task found
// Running by a reconcile was interrupted by an agent restart: it is failed,
// never run again. So an action runs at most once per task.
type taskRunner struct {
	c     client.Client
	opts  Options
	poked func()
}

func setupTaskRunner(mgr ctrl.Manager, opts Options, poke func()) error {
	r := &taskRunner{c: mgr.GetClient(), opts: opts, poked: poke}
	return ctrl.NewControllerManagedBy(mgr).
		Named("nodetask").
		For(&v1alpha1.NodeTask{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, SkipNameValidation: ptr.To(true)}).
		Complete(r)
}

func (r *taskRunner) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	task := &v1alpha1.NodeTask{}
	if err := r.c.Get(ctx, req.NamespacedName, task); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	log := klog.FromContext(ctx).WithValues("nodeTask", klog.KObj(task), "node", r.opts.NodeName)
	ctx = klog.NewContext(ctx, log)
	if task.Spec.NodeName != r.opts.NodeName {
		// The cache selects by label; the spec is authoritative. Never act
		// for another node.
		log.Info("Ignoring a task for another node", "taskNode", task.Spec.NodeName)
		return reconcile.Result{}, nil
	}
	switch task.Status.Phase {
	case "", v1alpha1.TaskPending:
		return reconcile.Result{}, r.run(ctx, task)
	case v1alpha1.TaskRunning:
		// Only a previous agent process can have left it Running: this one
		// finishes every task inside one reconcile.
		return reconcile.Result{}, r.finish(ctx, task, v1alpha1.TaskFailed,
			"the agent restarted while this task was running; it is not run again", nil)
	default:
		return reconcile.Result{}, nil
	}
}

func (r *taskRunner) run(ctx context.Context, task *v1alpha1.NodeTask) error {
	log := klog.FromContext(ctx)
	if task.Spec.Action == v1alpha1.NodeActionEditConfig {
		return r.editConfig(ctx, task)
	}
	if task.Spec.Action != v1alpha1.NodeActionRestartUnit {
		return r.finish(ctx, task, v1alpha1.TaskFailed, fmt.Sprintf("action %q is not in the agent's closed set", task.Spec.Action), nil)
	}
	before, err := r.opts.Host.UnitState(ctx, task.Spec.Unit)
	if err != nil {
		return r.finish(ctx, task, v1alpha1.TaskFailed, fmt.Sprintf("reading unit %s: %v", task.Spec.Unit, err), nil)
	}
	// Claim the task. A conflict means another writer or a stale cache:
	// retry the reconcile rather than act.
	task.Status.Phase = v1alpha1.TaskRunning
	task.Status.StartedAt = ptr.To(metav1.NewTime(r.opts.Clock.Now()))
	task.Status.Before = &before
	if err := r.c.Status().Update(ctx, task); err != nil {
		return fmt.Errorf("claiming task: %w", err)
	}

	log.Info("Restarting unit", "unit", task.Spec.Unit, "unitName", before.UnitName, "activeState", before.ActiveState, "unitFileState", before.UnitFileState)
	actx, cancel := context.WithTimeout(ctx, r.opts.ActionTimeout)
	err = r.opts.Host.RestartUnit(actx, task.Spec.Unit)
	cancel()
	defer r.poked()
	after, stErr := r.opts.Host.UnitState(ctx, task.Spec.Unit)
	var afterp *v1alpha1.UnitState
	if stErr == nil {
		afterp = &after
	}
	if err != nil {
		return r.finish(ctx, task, v1alpha1.TaskFailed, fmt.Sprintf("restarting %s: %v", before.UnitName, err), afterp)
	}
	msg := fmt.Sprintf("restarted %s (was %s/%s)", before.UnitName, before.ActiveState, before.SubState)
	if before.UnitFileState == "disabled" {
		msg += fmt.Sprintf("; the unit is disabled, so it will not start at the next boot: a person should run `systemctl enable %s`", before.UnitName)
	}
	if stErr == nil && !after.Active() {
		return r.finish(ctx, task, v1alpha1.TaskFailed, msg+fmt.Sprintf("; but it is %s/%s after the restart", after.ActiveState, after.SubState), afterp)
	}
	return r.finish(ctx, task, v1alpha1.TaskSucceeded, msg, afterp)
}

func (r *taskRunner) finish(ctx context.Context, task *v1alpha1.NodeTask, phase v1alpha1.NodeTaskPhase, msg string, after *v1alpha1.UnitState) error {
	task.Status.Phase = phase
	task.Status.Message = truncate(msg, 2048)
	task.Status.After = after
	task.Status.CompletedAt = ptr.To(metav1.NewTime(r.opts.Clock.Now()))
	if err := r.c.Status().Update(ctx, task); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("recording task outcome %s: %w", phase, err)
	}
	klog.FromContext(ctx).Info("Task finished", "phase", phase, "message", msg)
	return nil
}
