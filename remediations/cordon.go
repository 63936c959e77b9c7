package remediations

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// cordonAction is Cordon (nodeward issue 12: a cause only a person can fix,
// such as a read-only filesystem or a hung kernel): cordon the node so new
// pods stay off it while a person looks, and touch nothing else — no pod is
// evicted. With action.cordon.uncordonAfter it uncordons the node once it
// has been healthy that long, only if nodeward's cordon is still in place.
// Its Cordon and Uncordon steps are CordonDrain's (drain.go); what they did
// is recorded in status.drain (cordoned, uncordonedAt).
type cordonAction struct{}

func init() { actions[v1alpha1.ActionCordon] = cordonAction{} }

func (cordonAction) plan(rem *v1alpha1.Remediation) []v1alpha1.Step {
	c := cordonStep(rem)
	u, ok := uncordonStep(rem)
	if !ok {
		c.Description += "; no pod is evicted, and the node stays cordoned afterwards (no uncordonAfter)"
		return []v1alpha1.Step{c}
	}
	c.Description += "; no pod is evicted"
	return []v1alpha1.Step{c, u}
}

func (cordonAction) advance(ctx context.Context, e *Executor, rem *v1alpha1.Remediation, _ *corev1.Node, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	if rem.Status.Drain == nil {
		rem.Status.Drain = &v1alpha1.DrainStatus{}
	}
	var (
		res reconcile.Result
		err error
	)
	switch step.Name {
	case v1alpha1.StepCordon:
		res, err = e.cordon(ctx, rem, step, now)
	case v1alpha1.StepUncordon:
		res, err = e.uncordon(ctx, rem, step, now)
	default:
		e.failStep(rem, step, v1alpha1.ReasonUnsupportedAction, fmt.Sprintf("step %q is not a step of %s", step.Name, rem.Spec.Action.Type), now)
		return reconcile.Result{}, nil
	}
	if err == nil && step.Phase == v1alpha1.StepSucceeded && currentStep(rem) < 0 {
		e.endCordon(rem, step, now)
	}
	return res, err
}

// endCordon ends a Cordon record whose last step succeeded: Recovered when
// nodeward uncordoned the node again, else Cordoned (the node stays
// cordoned, by nodeward or by whoever cordoned it first), naming the cause
// a person is to look at.
func (e *Executor) endCordon(rem *v1alpha1.Remediation, step *v1alpha1.Step, now time.Time) {
	if ds := rem.Status.Drain; ds != nil && ds.UncordonedAt != nil {
		e.end(rem, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered, "every step succeeded: "+step.Message, now)
		return
	}
	msg := fmt.Sprintf("%s; nothing else was touched", step.Message)
	if ci, ok := rem.Spec.Cause.Info(); ok && ci.NeedsPerson {
		msg += fmt.Sprintf("; a person is needed: %s", ci.Summary)
	}
	e.end(rem, v1alpha1.PhaseSucceeded, v1alpha1.ReasonCordoned, msg, now)
}

// stepTimeout: the Cordon step's is CordonDrain's; the Uncordon step is
// bounded by uncordonCeiling.
func (cordonAction) stepTimeout(_ *v1alpha1.Remediation, step string) time.Duration {
	if step == v1alpha1.StepCordon {
		return cordonTimeout
	}
	return uncordonCeiling
}
