package remediations

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// stepTimer is an action whose steps say how long each may take, counted
// from the moment the step started (persisted as Running), whatever it waits
// for: an API error, a task that can't be created, an agent that never
// answers.
type stepTimer interface {
	stepTimeout(rem *v1alpha1.Remediation, step string) time.Duration
}

const (
	// defaultStepTimeout bounds a step of an action that does not say.
	defaultStepTimeout = 5 * time.Minute
	// stepRetry is how soon a step whose API call failed tries again.
	stepRetry = time.Second
)

func stepTimeout(act action, rem *v1alpha1.Remediation, step string) time.Duration {
	if t, ok := act.(stepTimer); ok {
		if d := t.stepTimeout(rem, step); d > 0 {
			return d
		}
	}
	return defaultStepTimeout
}

// advanceStep advances the current, Running step. An error of the step (the
// API refused or failed a read or a write, e.g. the NodeTask's create) never
// leaves the record Running forever: until the step's timeout, counted from
// the step's start, the step is retried and its message says what fails; at
// the timeout the step fails with the error.
func (e *Executor) advanceStep(ctx context.Context, act action, rem *v1alpha1.Remediation, node *corev1.Node, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	res, err := act.advance(ctx, e, rem, node, step, now)
	if err == nil || ctx.Err() != nil || step.StartedAt == nil || step.Phase != v1alpha1.StepRunning {
		return res, err
	}
	timeout := stepTimeout(act, rem, step.Name)
	deadline := step.StartedAt.Add(timeout)
	if !now.Before(deadline) {
		e.failStep(rem, step, v1alpha1.ReasonStepTimeout,
			truncate(fmt.Sprintf("still failing %s after the step started (its timeout): %v", timeout, err), 2000), now)
		return reconcile.Result{}, nil
	}
	klog.FromContext(ctx).Error(err, "Step failed; retrying until its timeout", "step", step.Name, "deadline", deadline)
	step.Message = truncate(fmt.Sprintf("retrying until %s (the step's timeout, %s after it started): %v",
		deadline.UTC().Format(time.RFC3339), timeout, err), 2000)
	return reconcile.Result{RequeueAfter: min(stepRetry, deadline.Sub(now))}, nil
}

// handedOutTask returns the record's NodeTask name, or nil if it does not
// exist. When the record says it handed the task out (status.nodeTask) but
// the cache has no such task, the API server is asked (the cache may not
// have seen our own create yet) before the task is called gone.
func (e *Executor) handedOutTask(ctx context.Context, rem *v1alpha1.Remediation, name string) (*v1alpha1.NodeTask, error) {
	task := &v1alpha1.NodeTask{}
	err := e.Client.Get(ctx, client.ObjectKey{Name: name}, task)
	if apierrors.IsNotFound(err) && rem.Status.NodeTask != "" && e.APIReader != nil {
		err = e.APIReader.Get(ctx, client.ObjectKey{Name: name}, task)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return task, nil
}

// failVanishedTask ends a step whose NodeTask was handed out and is gone:
// someone deleted it. Whether the agent ran it is unknown, so it is never
// handed out again (at most one action per record).
func (e *Executor) failVanishedTask(rem *v1alpha1.Remediation, step *v1alpha1.Step, node string, now time.Time) {
	e.failStep(rem, step, v1alpha1.ReasonNodeTaskVanished,
		fmt.Sprintf("NodeTask %s was handed to the node agent on %s and is gone (deleted); whether the action ran is unknown, so it is not handed out again: look at the node before remediating it by hand",
			rem.Status.NodeTask, node), now)
}
