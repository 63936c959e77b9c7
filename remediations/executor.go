// Package remediations acts: its executor carries out Remediation records
// step by step, hands node-local steps to the node agent as NodeTasks, waits
// for the node to recover, and records the outcome and the time of every
// step. Every step is persisted before it acts, so an operator restart never
// repeats an action and never loses one.
package remediations

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/operator/diagnosis"
	"github.com/nodeward/nodeward/policies"
)

// pollInterval is how often a waiting step looks again at what it waits for
// (node events wake it sooner).
const pollInterval = time.Second

// Executor carries out Remediation records. It is the only writer of their
// status.
type Executor struct {
	Client   client.Client
	Clock    clock.Clock
	Recorder events.EventRecorder
}

// SetupWithManager registers the controller.
func (e *Executor) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("executor").
		For(&v1alpha1.Remediation{}).
		Owns(&v1alpha1.NodeTask{}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(e.inFlightForNode), builder.WithPredicates(diagnosis.NodeHealthChanged())).
		Complete(e)
}

// inFlightForNode maps a Node change to its non-terminal records (an index
// lookup, not a scan).
func (e *Executor) inFlightForNode(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.RemediationList{}
	if err := e.Client.List(ctx, list, client.MatchingFields{policies.IndexRemediationNode: o.GetName()}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, r := range list.Items {
		if !r.Status.Phase.IsTerminal() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&r)})
		}
	}
	return reqs
}

// Reconcile advances one record by at most one persisted step.
func (e *Executor) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	rem := &v1alpha1.Remediation{}
	if err := e.Client.Get(ctx, req.NamespacedName, rem); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if rem.Status.Phase.IsTerminal() {
		return reconcile.Result{}, nil
	}
	log := klog.FromContext(ctx).WithValues("remediation", klog.KObj(rem), "node", rem.Spec.NodeName)
	ctx = klog.NewContext(ctx, log)
	before := rem.DeepCopy()
	res, err := e.reconcile(ctx, rem)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := e.Client.Status().Patch(ctx, rem, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return reconcile.Result{}, fmt.Errorf("recording remediation status: %w", err)
	}
	if rem.Status.Phase.IsTerminal() {
		e.announce(rem)
	}
	return res, nil
}

func (e *Executor) reconcile(ctx context.Context, rem *v1alpha1.Remediation) (reconcile.Result, error) {
	now := e.Clock.Now()
	if rem.Status.Phase == "" {
		rem.Status.Phase = v1alpha1.PhasePending
		rem.Status.Steps = Plan(rem)
		setCondition(rem, metav1.ConditionUnknown, v1alpha1.ReasonInProgress, "planned", now)
		return reconcile.Result{}, nil
	}
	if rem.Status.Phase == v1alpha1.PhasePending {
		if rem.Spec.Mode == v1alpha1.ModeDryRun {
			for i := range rem.Status.Steps {
				rem.Status.Steps[i].Phase = v1alpha1.StepSkipped
				rem.Status.Steps[i].Message = "dry run: not carried out"
			}
			e.end(rem, v1alpha1.PhaseSkipped, v1alpha1.ReasonDryRun,
				fmt.Sprintf("dry run: would have run %s on node %s; nothing was touched", rem.Spec.Action.Type, rem.Spec.NodeName), now)
			return reconcile.Result{}, nil
		}
		rem.Status.Phase = v1alpha1.PhaseRunning
		rem.Status.StartedAt = ptr.To(metav1.NewTime(now))
		return reconcile.Result{}, nil
	}

	node := &corev1.Node{}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: rem.Spec.NodeName}, node); err != nil {
		if apierrors.IsNotFound(err) {
			e.failRunning(rem, v1alpha1.ReasonNodeGone, "the node no longer exists", now)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	i := currentStep(rem)
	if i < 0 {
		e.end(rem, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered, "every step succeeded", now)
		return reconcile.Result{}, nil
	}
	step := &rem.Status.Steps[i]
	if step.Phase == v1alpha1.StepPending {
		// Persist "Running" before acting: the action happens in the next
		// reconcile, after this write succeeded.
		step.Phase = v1alpha1.StepRunning
		step.StartedAt = ptr.To(metav1.NewTime(now))
		return reconcile.Result{}, nil
	}
	switch step.Name {
	case v1alpha1.StepRestartUnit:
		return e.restartUnit(ctx, rem, step, now)
	case v1alpha1.StepWaitForRecovery:
		return e.waitForRecovery(ctx, rem, node, step, now)
	default:
		e.failStep(rem, step, v1alpha1.ReasonUnsupportedAction, fmt.Sprintf("step %q is not known to this executor", step.Name), now)
		return reconcile.Result{}, nil
	}
}

// Plan lists the steps of a record's action.
func Plan(rem *v1alpha1.Remediation) []v1alpha1.Step {
	unit, ok := UnitFor(rem.Spec.Action.Type)
	if !ok {
		return nil
	}
	timeout := RecoveryTimeout(rem.Spec.Action)
	return []v1alpha1.Step{
		{Name: v1alpha1.StepRestartUnit, Phase: v1alpha1.StepPending,
			Description: fmt.Sprintf("ask the node agent on %s to restart the %s unit (systemctl restart)", rem.Spec.NodeName, unit)},
		{Name: v1alpha1.StepWaitForRecovery, Phase: v1alpha1.StepPending,
			Description: fmt.Sprintf("wait up to %s for Ready=True and a Lease renewed after the restart", timeout)},
	}
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

func (e *Executor) restartUnit(ctx context.Context, rem *v1alpha1.Remediation, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	unit, _ := UnitFor(rem.Spec.Action.Type)
	task := &v1alpha1.NodeTask{}
	err := e.Client.Get(ctx, client.ObjectKey{Name: rem.Name}, task)
	if apierrors.IsNotFound(err) {
		// The task's name is the record's: at most one task per record, even
		// if this create is retried after a restart.
		task = &v1alpha1.NodeTask{
			ObjectMeta: metav1.ObjectMeta{
				Name:   rem.Name,
				Labels: map[string]string{v1alpha1.LabelNode: rem.Spec.NodeName, v1alpha1.LabelRemediation: rem.Name},
			},
			Spec: v1alpha1.NodeTaskSpec{NodeName: rem.Spec.NodeName, Action: v1alpha1.NodeActionRestartUnit, Unit: unit, Remediation: rem.Name},
		}
		if err := controllerutil.SetControllerReference(rem, task, e.Client.Scheme()); err != nil {
			return reconcile.Result{}, err
		}
		klog.FromContext(ctx).Info("Handing unit restart to the node agent", "unit", unit, "nodeTask", task.Name)
		if err := e.Client.Create(ctx, task); err != nil && !apierrors.IsAlreadyExists(err) {
			return reconcile.Result{}, fmt.Errorf("creating NodeTask: %w", err)
		}
		rem.Status.NodeTask = task.Name
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
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
	ready := readyCondition(node)
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

func readyCondition(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// currentStep is the index of the first step not yet succeeded, or -1.
func currentStep(rem *v1alpha1.Remediation) int {
	for i, s := range rem.Status.Steps {
		if s.Phase != v1alpha1.StepSucceeded && s.Phase != v1alpha1.StepSkipped {
			return i
		}
	}
	return -1
}

func (e *Executor) failStep(rem *v1alpha1.Remediation, step *v1alpha1.Step, reason, msg string, now time.Time) {
	step.Phase = v1alpha1.StepFailed
	step.CompletedAt = ptr.To(metav1.NewTime(now))
	step.Message = msg
	for i := range rem.Status.Steps {
		if rem.Status.Steps[i].Phase == v1alpha1.StepPending {
			rem.Status.Steps[i].Phase = v1alpha1.StepSkipped
			rem.Status.Steps[i].Message = "not run: an earlier step failed"
		}
	}
	e.end(rem, v1alpha1.PhaseFailed, reason, fmt.Sprintf("step %s failed: %s", step.Name, msg), now)
}

func (e *Executor) failRunning(rem *v1alpha1.Remediation, reason, msg string, now time.Time) {
	if i := currentStep(rem); i >= 0 {
		e.failStep(rem, &rem.Status.Steps[i], reason, msg, now)
		return
	}
	e.end(rem, v1alpha1.PhaseFailed, reason, msg, now)
}

func (e *Executor) end(rem *v1alpha1.Remediation, phase v1alpha1.RemediationPhase, reason, msg string, now time.Time) {
	rem.Status.Phase, rem.Status.Reason, rem.Status.Message = phase, reason, msg
	rem.Status.CompletedAt = ptr.To(metav1.NewTime(now))
	status := metav1.ConditionFalse
	if phase == v1alpha1.PhaseSucceeded {
		status = metav1.ConditionTrue
	}
	setCondition(rem, status, reason, msg, now)
}

func setCondition(rem *v1alpha1.Remediation, status metav1.ConditionStatus, reason, msg string, now time.Time) {
	meta.SetStatusCondition(&rem.Status.Conditions, metav1.Condition{
		Type: v1alpha1.RemediationConditionSucceeded, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: rem.Generation, LastTransitionTime: metav1.NewTime(now),
	})
}

func (e *Executor) announce(rem *v1alpha1.Remediation) {
	kind := corev1.EventTypeNormal
	if rem.Status.Phase == v1alpha1.PhaseFailed {
		kind = corev1.EventTypeWarning
	}
	e.Recorder.Eventf(rem, nil, kind, "Remediation"+string(rem.Status.Phase), "Remediate", "%s", rem.Status.Message)
}
