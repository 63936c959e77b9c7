package remediations

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/operator/diagnosis"
	"github.com/nodeward/nodeward/policies"
)

// restartAction restarts a unit through the node agent (a NodeTask), then
// waits for the node to recover.
type restartAction struct{ unit v1alpha1.Unit }

func (a restartAction) plan(rem *v1alpha1.Remediation) []v1alpha1.Step {
	timeout := RecoveryTimeout(rem.Spec.Action)
	return []v1alpha1.Step{
		{Name: v1alpha1.StepRestartUnit, Phase: v1alpha1.StepPending,
			Description: fmt.Sprintf("ask the node agent on %s to restart the %s unit (systemctl restart)", rem.Spec.NodeName, a.unit)},
		{Name: v1alpha1.StepWaitForRecovery, Phase: v1alpha1.StepPending,
			Description: fmt.Sprintf("wait up to %s for Ready=True and a Lease renewed after the restart", timeout)},
	}
}

func (a restartAction) advance(ctx context.Context, e *Executor, rem *v1alpha1.Remediation, node *corev1.Node, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	switch step.Name {
	case v1alpha1.StepRestartUnit:
		return e.restartUnit(ctx, rem, step, a.unit, now)
	case v1alpha1.StepWaitForRecovery:
		return e.waitForRecovery(ctx, rem, node, step, now)
	}
	e.failStep(rem, step, v1alpha1.ReasonUnsupportedAction, fmt.Sprintf("step %q is not a step of %s", step.Name, rem.Spec.Action.Type), now)
	return reconcile.Result{}, nil
}

// UnitFor maps a restart action to its unit.
func UnitFor(a v1alpha1.ActionType) (v1alpha1.Unit, bool) {
	switch a {
	case v1alpha1.ActionRestartKubelet:
		return v1alpha1.UnitKubelet, true
	case v1alpha1.ActionRestartContainerRuntime:
		return v1alpha1.UnitContainerRuntime, true
	}
	return "", false
}

// RecoveryTimeout is the action's recovery timeout, defaulted.
func RecoveryTimeout(a v1alpha1.Action) time.Duration {
	if a.Restart != nil && a.Restart.RecoveryTimeout.Duration > 0 {
		return a.Restart.RecoveryTimeout.Duration
	}
	return 2 * time.Minute
}

// stepTimeout: both steps have the action's recovery timeout, from the
// moment each started.
func (restartAction) stepTimeout(rem *v1alpha1.Remediation, _ string) time.Duration {
	return RecoveryTimeout(rem.Spec.Action)
}

func (e *Executor) restartUnit(ctx context.Context, rem *v1alpha1.Remediation, step *v1alpha1.Step, unit v1alpha1.Unit, now time.Time) (reconcile.Result, error) {
	task, err := e.handedOutTask(ctx, rem, rem.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	if task == nil && rem.Status.NodeTask != "" {
		e.failVanishedTask(rem, step, rem.Spec.NodeName, now)
		return reconcile.Result{}, nil
	}
	if task == nil {
		// The task's name is the record's: at most one task per record, even
		// if this create is retried after a restart. A create that keeps
		// failing fails the step at its timeout (advanceStep).
		task = &v1alpha1.NodeTask{
			ObjectMeta: metav1.ObjectMeta{
				Name:   rem.Name,
				Labels: map[string]string{v1alpha1.LabelNode: v1alpha1.LabelValue(rem.Spec.NodeName), v1alpha1.LabelRemediation: v1alpha1.LabelValue(rem.Name)},
			},
			Spec: v1alpha1.NodeTaskSpec{NodeName: rem.Spec.NodeName, Action: v1alpha1.NodeActionRestartUnit, Unit: unit, Remediation: rem.Name},
		}
		if err := controllerutil.SetControllerReference(rem, task, e.Client.Scheme()); err != nil {
			return reconcile.Result{}, err
		}
		klog.FromContext(ctx).Info("Handing unit restart to the node agent", "unit", unit, "nodeTask", task.Name)
		if err := e.Client.Create(ctx, task); err != nil && !apierrors.IsAlreadyExists(err) {
			return reconcile.Result{}, fmt.Errorf("creating NodeTask %s: %w", task.Name, err)
		}
		rem.Status.NodeTask = task.Name
		step.Message = ""
		return reconcile.Result{}, nil
	}
	rem.Status.NodeTask = task.Name
	switch task.Status.Phase {
	case v1alpha1.TaskSucceeded:
		step.Phase = v1alpha1.StepSucceeded
		step.CompletedAt = completedAt(task, now)
		step.Message = "node agent: " + task.Status.Message
		return reconcile.Result{}, nil
	case v1alpha1.TaskFailed:
		e.failStep(rem, step, v1alpha1.ReasonAgentTaskFailed, "node agent: "+task.Status.Message, now)
		return reconcile.Result{}, nil
	default:
		// The agent's status write wakes us (Owns); the timeout is a backstop
		// for an agent that never answers.
		if now.Sub(step.StartedAt.Time) > RecoveryTimeout(rem.Spec.Action) {
			e.failStep(rem, step, v1alpha1.ReasonAgentTaskFailed,
				fmt.Sprintf("the node agent did not finish task %s within %s (task phase %q)", task.Name, RecoveryTimeout(rem.Spec.Action), task.Status.Phase), now)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{RequeueAfter: 5 * time.Second}, nil
	}
}

func completedAt(task *v1alpha1.NodeTask, now time.Time) *metav1.Time {
	if task.Status.CompletedAt != nil {
		return task.Status.CompletedAt.DeepCopy()
	}
	return ptr.To(metav1.NewTime(now))
}

// waitForRecovery succeeds once the node is Ready and (for a kubelet restart)
// its Lease was renewed after the restart finished.
func (e *Executor) waitForRecovery(ctx context.Context, rem *v1alpha1.Remediation, node *corev1.Node, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	actedAt := step.StartedAt.Time
	if prev := rem.Status.Steps[0]; prev.CompletedAt != nil {
		actedAt = prev.CompletedAt.Time
	}
	ready := policies.ReadyCondition(node)
	isReady := ready != nil && ready.Status == corev1.ConditionTrue
	leaseFresh := true
	leaseMsg := ""
	if rem.Spec.Action.Type == v1alpha1.ActionRestartKubelet {
		lease := &coordinationv1.Lease{}
		err := e.Client.Get(ctx, client.ObjectKey{Namespace: diagnosis.NodeLeaseNamespace, Name: node.Name}, lease)
		if err != nil && !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
		leaseFresh = err == nil && lease.Spec.RenewTime != nil && !lease.Spec.RenewTime.Time.Before(actedAt.Truncate(time.Second))
		if leaseFresh {
			leaseMsg = fmt.Sprintf("; Lease renewed at %s", lease.Spec.RenewTime.UTC().Format(time.RFC3339))
		}
	}
	if isReady && leaseFresh {
		step.Phase = v1alpha1.StepSucceeded
		step.CompletedAt = ptr.To(metav1.NewTime(now))
		step.Message = fmt.Sprintf("node Ready after %s%s", now.Sub(actedAt).Round(time.Second), leaseMsg)
		if currentStep(rem) < 0 {
			e.end(rem, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered,
				fmt.Sprintf("node %s recovered %s after the action", node.Name, now.Sub(actedAt).Round(time.Second)), now)
		}
		return reconcile.Result{}, nil
	}
	if timeout := RecoveryTimeout(rem.Spec.Action); now.Sub(step.StartedAt.Time) > timeout {
		var missing []string
		if !isReady {
			missing = append(missing, "the node is not Ready")
		}
		if !leaseFresh {
			missing = append(missing, "its Lease was not renewed after the restart")
		}
		e.failStep(rem, step, v1alpha1.ReasonRecoveryTimeout, fmt.Sprintf("after %s %v", timeout, missing), now)
		return reconcile.Result{}, nil
	}
	return reconcile.Result{RequeueAfter: pollInterval}, nil
}
