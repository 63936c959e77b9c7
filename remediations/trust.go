package remediations

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

// The executor's defence in depth behind admission: even when admission is
// switched off or bypassed, a record nodeward's policy controller did not
// seal never acts, and a status the executor did not write never lets a
// record skip its gates.

// distrustStatus looks at a record that is not finished. A record the
// executor started carries its start proof (status.startProof over name,
// UID and startedAt) together with phase Running; that is trusted and
// survives restarts. A record that looks started without a valid proof was
// not started here: its status is discarded, the record is planned again
// and waits as not started, so every check and gate (the approval too) runs
// before anything is done. A record with a valid proof that was set back to
// not started ends Failed: nodeward never repeats or resumes an action whose
// progress it can't trust. It reports whether it changed the record.
func (e *Executor) distrustStatus(ctx context.Context, rem *v1alpha1.Remediation, act action, now time.Time) bool {
	proof := e.Sealer.CheckStartProof(rem)
	if proof {
		if rem.Status.Phase == v1alpha1.PhaseRunning {
			return false
		}
		e.end(rem, v1alpha1.PhaseFailed, v1alpha1.ReasonStatusTampered, fmt.Sprintf(
			"nodeward started this record at %s, but someone else set its status back to phase %q; nodeward does not repeat or resume an action whose progress it can't trust: check node %s by hand",
			rem.Status.StartedAt.UTC().Format(time.RFC3339), rem.Status.Phase, rem.Spec.NodeName), now)
		klog.FromContext(ctx).Info("Remediation status was set back by someone else: failed", "phase", rem.Status.Phase)
		return true
	}
	seen := startedSigns(rem)
	if len(seen) == 0 {
		return false
	}
	msg := fmt.Sprintf("the status says the record started (%s) but carries no valid start proof: nodeward did not start it, so that status was discarded; the record is treated as not started and every check runs again before anything is done (the approval too); nothing was done",
		strings.Join(seen, ", "))
	klog.FromContext(ctx).Info("Discarding a remediation status nodeward did not write", "found", seen)
	rem.Status = v1alpha1.RemediationStatus{}
	e.planSteps(ctx, rem, act, now)
	rem.Status.Reason, rem.Status.Message = v1alpha1.ReasonStatusDiscarded, msg
	meta.SetStatusCondition(&rem.Status.Conditions, metav1.Condition{
		Type: v1alpha1.RemediationConditionStatusForged, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonStatusDiscarded,
		Message: msg, ObservedGeneration: rem.Generation, LastTransitionTime: metav1.NewTime(now),
	})
	e.Recorder.Eventf(rem, nil, corev1.EventTypeWarning, v1alpha1.ReasonStatusDiscarded, "Distrust", "%s", msg)
	return true
}

// startedSigns lists what in a record's status says it was started.
func startedSigns(rem *v1alpha1.Remediation) []string {
	st := &rem.Status
	var seen []string
	if st.Phase == v1alpha1.PhaseRunning {
		seen = append(seen, "phase Running")
	}
	if st.StartedAt != nil {
		seen = append(seen, "startedAt "+st.StartedAt.UTC().Format(time.RFC3339))
	}
	if st.StartProof != "" {
		seen = append(seen, "a startProof that does not match")
	}
	if st.CompletedAt != nil {
		seen = append(seen, "completedAt")
	}
	if st.NodeTask != "" {
		seen = append(seen, "nodeTask "+st.NodeTask)
	}
	for _, s := range st.Steps {
		if s.Phase != v1alpha1.StepPending || s.StartedAt != nil || s.CompletedAt != nil {
			seen = append(seen, fmt.Sprintf("step %s %s", s.Name, s.Phase))
		}
	}
	if d := st.Drain; d != nil && (d.Cordoned || len(d.PlannedPods) > 0 || len(d.EvictedPods) > 0 || len(d.PDBs) > 0 || d.BlockedBy != "" || d.UncordonedAt != nil) {
		seen = append(seen, "drain progress")
	}
	if st.Tune != nil {
		seen = append(seen, "tune progress")
	}
	return seen
}

// refuseUnsealed ends a record that has not started and does not carry the
// operator's seal over its name and decision: it was not decided by
// nodeward's policy controller (a copied label or annotation is no proof).
// It reports whether it ended the record.
func (e *Executor) refuseUnsealed(ctx context.Context, rem *v1alpha1.Remediation, act action, now time.Time) bool {
	err := e.Sealer.CheckSeal(rem)
	if err == nil {
		return false
	}
	why := err.Error()
	switch {
	case errors.Is(err, policies.ErrNoSeal):
		why = "it carries no " + policies.AnnotationSeal + " annotation"
	case errors.Is(err, policies.ErrBadSeal):
		why = "its " + policies.AnnotationSeal + " does not match its name and decision (node, cause, causeSince, policy, policyGeneration, action, mode)"
	}
	if len(rem.Status.Steps) == 0 {
		rem.Status.Steps = act.plan(rem)
	}
	klog.FromContext(ctx).Info("Refusing a remediation nodeward did not seal", "why", why)
	e.skip(rem, v1alpha1.ReasonUnsealed, fmt.Sprintf(
		"not decided by nodeward: %s, so it was created or altered by someone other than nodeward's policy controller; nothing was done", why), now)
	return true
}
