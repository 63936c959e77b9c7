package remediations

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// pendingApprovalsGauge counts the RequireApproval records waiting for a
// person, as this process last saw them.
var pendingApprovalsGauge = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "nodeward_pending_approvals",
	Help: "RequireApproval remediations waiting for a person to approve or reject them.",
})

func init() { metrics.Registry.MustRegister(pendingApprovalsGauge) }

// pendingApprovals are the names of the records waiting for a decision.
type pendingApprovals struct {
	mu    sync.Mutex
	names map[string]bool
}

func (p *pendingApprovals) set(name string, waiting bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.names == nil {
		p.names = map[string]bool{}
	}
	if waiting {
		p.names[name] = true
	} else {
		delete(p.names, name)
	}
	pendingApprovalsGauge.Set(float64(len(p.names)))
}

// awaitApproval handles a RequireApproval record before start's gates: it
// waits (done=true) while nobody decided and the policy's approvalTimeout has
// not passed, ends the record Skipped when it was rejected or expired
// (done=true), and returns done=false once it was approved, so that start
// checks again that the cause is still there and the limits allow acting.
func (e *Executor) awaitApproval(ctx context.Context, rem *v1alpha1.Remediation, p *v1alpha1.RemediationPolicy, now time.Time) (res reconcile.Result, done bool, err error) {
	if a := rem.Approval; a != nil {
		e.approvals.set(rem.Name, false)
		if a.Decision == v1alpha1.DecisionRejected {
			e.skip(rem, v1alpha1.ReasonRejected, fmt.Sprintf("rejected by %s at %s: %s; nothing was done",
				a.DecidedBy, a.DecidedAt.UTC().Format(time.RFC3339), a.Reason), now)
			return reconcile.Result{}, true, nil
		}
		if a.Decision != v1alpha1.DecisionApproved { // the CRD allows no other value
			return reconcile.Result{}, true, fmt.Errorf("record %s: approval.decision %q is neither %s nor %s", rem.Name, a.Decision, v1alpha1.DecisionApproved, v1alpha1.DecisionRejected)
		}
		if rem.Status.Reason == v1alpha1.ReasonWaitingForApproval {
			klog.FromContext(ctx).Info("Remediation approved", "by", a.DecidedBy, "reason", a.Reason)
			rem.Status.Reason, rem.Status.Message = "", ""
		}
		return reconcile.Result{}, false, nil
	}
	timeout := v1alpha1.DefaultApprovalTimeout
	if p.Spec.ApprovalTimeout != nil {
		timeout = p.Spec.ApprovalTimeout.Duration
	}
	deadline := rem.CreationTimestamp.Add(timeout)
	if !now.Before(deadline) {
		e.approvals.set(rem.Name, false)
		e.skip(rem, v1alpha1.ReasonExpired, fmt.Sprintf("nobody approved or rejected it within the policy's approvalTimeout of %s (created %s); nothing was done",
			timeout, rem.CreationTimestamp.UTC().Format(time.RFC3339)), now)
		return reconcile.Result{}, true, nil
	}
	e.approvals.set(rem.Name, true)
	if rem.Status.Reason != v1alpha1.ReasonWaitingForApproval {
		rem.Status.Reason = v1alpha1.ReasonWaitingForApproval
		rem.Status.Message = approvalMessage(rem, deadline)
		if rem.Spec.Mode != v1alpha1.ModeRequireApproval {
			rem.Status.Message = fmt.Sprintf("policy %s requires approval (the record was decided as %s): %s", p.Name, rem.Spec.Mode, rem.Status.Message)
			if len(rem.Status.Message) > 4000 {
				rem.Status.Message = rem.Status.Message[:4000] + "…"
			}
		}
		klog.FromContext(ctx).Info("Remediation waits for approval", "expires", deadline)
		e.Recorder.Eventf(rem, nil, corev1.EventTypeNormal, "ApprovalRequired", "Approve", "%s", rem.Status.Message)
		e.Notifier.Notify(ctx, approvalNotice(rem, deadline))
	}
	return reconcile.Result{RequeueAfter: max(deadline.Sub(now), time.Second)}, true, nil
}

// approvalMessage says what an approval would do and how to give it.
func approvalMessage(rem *v1alpha1.Remediation, deadline time.Time) string {
	var steps []string
	for _, s := range rem.Status.Steps {
		if s.Description != "" {
			steps = append(steps, s.Name+" ("+s.Description+")")
		} else {
			steps = append(steps, s.Name)
		}
	}
	plan := ""
	if d := rem.Status.Drain; d != nil && d.Plan != nil {
		plan = "; drain plan " + DrainPlanSummary(d.Plan)
	}
	// The plan comes last: a long one is what the length limit cuts.
	msg := fmt.Sprintf("waiting for a person to approve %s on node %s for %s: steps %s; `kubectl nodeward approve %s --reason ...` or `kubectl nodeward reject %s --reason ...` before %s, when it expires%s",
		rem.Spec.Action.Type, rem.Spec.NodeName, rem.Spec.Cause, strings.Join(steps, ", "), rem.Name, rem.Name, deadline.UTC().Format(time.RFC3339), plan)
	if len(msg) > 4000 {
		msg = msg[:4000] + "…"
	}
	return msg
}
