package remediations

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// notifyAction is Notify (nodeward issue 12: a cause only a person can fix):
// it touches nothing. Its one step completes at once: the record names the
// cause and the top lines of its evidence and says a person is needed, with
// the cause's summary from the cause table. Once that terminal status is
// persisted, the notifier is told (event PersonNeeded) and an Event is
// recorded (finished): a crash between the two loses the notice, never
// sends it twice; the record itself always says it.
//
// Modes: DryRun ends Skipped as for every action (nothing is sent). In
// RequireApproval a Notify record does not wait for approval: approval
// guards what touches a node, and asking a person to approve telling a
// person would send them the same news twice (the ApprovalRequired notice
// already names the node and the cause). It is carried out at once.
type notifyAction struct{}

func init() { actions[v1alpha1.ActionNotify] = notifyAction{} }

// maxNoticeEvidence is how many evidence lines the record and the notice
// quote.
const maxNoticeEvidence = 3

func (notifyAction) plan(rem *v1alpha1.Remediation) []v1alpha1.Step {
	return []v1alpha1.Step{{Name: v1alpha1.StepNotify, Phase: v1alpha1.StepPending,
		Description: fmt.Sprintf("touch nothing on %s: record %s and the top lines of its evidence, say a person is needed (%s), and tell the notifier (event %s) and the record's Events",
			rem.Spec.NodeName, rem.Spec.Cause, causeSummary(rem.Spec.Cause), EventPersonNeeded)}}
}

func (notifyAction) advance(_ context.Context, e *Executor, rem *v1alpha1.Remediation, _ *corev1.Node, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	if step.Name != v1alpha1.StepNotify {
		e.failStep(rem, step, v1alpha1.ReasonUnsupportedAction, fmt.Sprintf("step %q is not a step of %s", step.Name, rem.Spec.Action.Type), now)
		return reconcile.Result{}, nil
	}
	msg := personNeededMessage(rem)
	succeed(step, msg, now)
	e.end(rem, v1alpha1.PhaseSucceeded, v1alpha1.ReasonNotified, "no action was taken: "+msg, now)
	return reconcile.Result{}, nil
}

// finished tells the notifier and records an Event once the record's
// Notified status is persisted (Reconcile calls it after the write).
func (notifyAction) finished(ctx context.Context, e *Executor, rem *v1alpha1.Remediation) {
	if rem.Status.Phase != v1alpha1.PhaseSucceeded || rem.Status.Reason != v1alpha1.ReasonNotified {
		return // skipped (dry run, rejected, cause gone...): nobody is told
	}
	e.Recorder.Eventf(rem, nil, corev1.EventTypeWarning, EventPersonNeeded, "Notify", "%s", rem.Status.Message)
	e.Notifier.Notify(ctx, personNeededNotice(rem))
}

// personNeededMessage names the cause on the node, quotes the top evidence
// and says a person is needed, with the cause's summary.
func personNeededMessage(rem *v1alpha1.Remediation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s since %s", rem.Spec.Cause, rem.Spec.NodeName, rem.Spec.CauseSince.UTC().Format(time.RFC3339))
	if ev := topEvidence(rem.Spec.Evidence); len(ev) > 0 {
		fmt.Fprintf(&b, "; evidence: %s", strings.Join(ev, "; "))
	} else {
		b.WriteString("; no evidence was recorded with the decision")
	}
	fmt.Fprintf(&b, "; a person is needed: %s", causeSummary(rem.Spec.Cause))
	if rem.Spec.Mode == v1alpha1.ModeRequireApproval {
		b.WriteString(" (the policy requires approval, but Notify touches nothing: it needs none)")
	}
	return b.String()
}

// topEvidence quotes up to maxNoticeEvidence evidence lines, those that
// support the cause first, each as "source: message".
func topEvidence(evidence []v1alpha1.Evidence) []string {
	var out []string
	for _, supports := range []bool{true, false} {
		for _, ev := range evidence {
			if ev.Supports != supports || len(out) >= maxNoticeEvidence {
				continue
			}
			line := ev.Source + ": " + strings.Join(strings.Fields(ev.Message), " ")
			if !supports {
				line += " (against)"
			}
			out = append(out, truncate(line, 300))
		}
	}
	return out
}

// causeSummary is the cause's summary from the cause table.
func causeSummary(c v1alpha1.Cause) string {
	if ci, ok := c.Info(); ok {
		return ci.Summary
	}
	return fmt.Sprintf("%s is not a cause this operator knows", c)
}

// personNeededNotice is the notifier's body for a Notify record.
func personNeededNotice(rem *v1alpha1.Remediation) ApprovalNotice {
	n := recordNotice(rem, EventPersonNeeded, func(s v1alpha1.Step) string { return s.Message })
	n.Evidence = topEvidence(rem.Spec.Evidence)
	return n
}
