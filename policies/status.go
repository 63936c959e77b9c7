package policies

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// StatusReconciler keeps each policy's status: Ready (active, paused, or a
// maintenance window that can't be read), RemediationAllowed (the storm
// breaker, with an Event when it trips or closes), the counts of covered and
// unhealthy nodes and of running, held and completed records.
type StatusReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Heartbeats, if not nil, counts nodes with stale Leases as unhealthy;
	// HeartbeatsChanged, if not nil, wakes every policy when that set
	// changes.
	Heartbeats        Heartbeats
	HeartbeatsChanged <-chan event.GenericEvent

	// lastWrite per policy: counts alone are written at most every
	// countsInterval, so a remediation's steps don't each cost a policy
	// write; condition changes are written at once.
	mu        sync.Mutex
	lastWrite map[string]time.Time
	// lastCount per policy: the counts walk every node, so a burst of
	// NodeDiagnosis events (a storm) is counted at most every
	// countEvery, not once per event.
	lastCount map[string]time.Time
}

// countEvery bounds how often one policy's nodes are counted.
const countEvery = time.Second

const countsInterval = 10 * time.Second

// SetupWithManager registers the controller.
func (r *StatusReconciler) SetupWithManager(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		list := &v1alpha1.RemediationPolicyList{}
		if err := r.Client.List(ctx, list); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, p := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Name: p.Name}})
		}
		return reqs
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("policystatus").
		For(&v1alpha1.RemediationPolicy{}).
		Watches(&v1alpha1.NodeDiagnosis{}, all).
		Watches(&v1alpha1.Remediation{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.(*v1alpha1.Remediation).Spec.Policy}}}
		}))
	if r.HeartbeatsChanged != nil {
		b = b.WatchesRawSource(source.Channel(r.HeartbeatsChanged, all))
	}
	return b.Complete(r)
}

// Reconcile recomputes one policy's status and writes it if it changed.
func (r *StatusReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	p := &v1alpha1.RemediationPolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	r.mu.Lock()
	if r.lastCount == nil {
		r.lastCount = map[string]time.Time{}
	}
	if wait := countEvery - time.Since(r.lastCount[p.Name]); wait > 0 {
		r.mu.Unlock()
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	r.lastCount[p.Name] = time.Now()
	r.mu.Unlock()
	before := p.DeepCopy()
	unhealthy, covered, _, err := StormCounts(ctx, r.Client, p, "", r.Heartbeats)
	if err != nil {
		return reconcile.Result{}, err
	}
	recs := &v1alpha1.RemediationList{}
	if err := r.Client.List(ctx, recs, client.MatchingLabels{v1alpha1.LabelPolicy: v1alpha1.LabelValue(p.Name)}); err != nil {
		return reconcile.Result{}, err
	}
	st := &p.Status
	st.CoveredNodes, st.UnhealthyNodes = int32(covered), int32(unhealthy)
	st.Running, st.Held, st.Completed = 0, 0, 0
	for _, rec := range recs.Items {
		if rec.Spec.Policy != p.Name {
			continue // another policy whose long name shares the label value
		}
		switch {
		case rec.Status.Phase == v1alpha1.PhaseRunning:
			st.Running++
		case rec.Status.Phase.IsTerminal():
			st.Completed++
		default:
			st.Held++
		}
	}
	st.ObservedGeneration = p.Generation

	meta.SetStatusCondition(&st.Conditions, PolicyReady(p))

	maxU := MaxUnhealthy(p, covered)
	allowed := metav1.Condition{Type: v1alpha1.PolicyConditionRemediationAllowed, Status: metav1.ConditionTrue, Reason: v1alpha1.PolicyReasonWithinLimits,
		Message: fmt.Sprintf("%d of %d nodes unhealthy or being remediated (at most %d)", unhealthy, covered, maxU), ObservedGeneration: p.Generation}
	if unhealthy > maxU {
		allowed.Status, allowed.Reason = metav1.ConditionFalse, v1alpha1.PolicyReasonTooManyUnhealthy
		allowed.Message = "storm breaker open: " + allowed.Message + "; no action runs until fewer are"
	}
	prevAllowed := meta.FindStatusCondition(before.Status.Conditions, v1alpha1.PolicyConditionRemediationAllowed)
	meta.SetStatusCondition(&st.Conditions, allowed)
	if prevAllowed == nil || prevAllowed.Status != allowed.Status {
		if allowed.Status == metav1.ConditionFalse {
			r.Recorder.Eventf(p, nil, corev1.EventTypeWarning, "StormBreakerOpen", "Hold", "%s", allowed.Message)
		} else if prevAllowed != nil {
			r.Recorder.Eventf(p, nil, corev1.EventTypeNormal, "StormBreakerClosed", "Resume", "%s", allowed.Message)
		}
	}

	var res reconcile.Result
	if unhealthy > 0 || st.Running > 0 || st.Held > 0 {
		res.RequeueAfter = 10 * time.Second // counts also move with time (held records, recoveries)
	}
	if equality.Semantic.DeepEqual(before.Status, p.Status) {
		return res, nil
	}
	if equality.Semantic.DeepEqual(conditionStates(before.Status.Conditions), conditionStates(p.Status.Conditions)) {
		r.mu.Lock()
		last := r.lastWrite[p.Name]
		r.mu.Unlock()
		if wait := countsInterval - time.Since(last); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
	}
	r.mu.Lock()
	if r.lastWrite == nil {
		r.lastWrite = map[string]time.Time{}
	}
	r.lastWrite[p.Name] = time.Now()
	r.mu.Unlock()
	return res, r.Client.Status().Patch(ctx, p, client.MergeFrom(before))
}

// PolicyReady is the policy's Ready condition: False with the problem
// when the policy can't act as written (CheckPolicy: its records are held,
// and one whose selector can't be read covers no node), False when paused,
// else True.
func PolicyReady(p *v1alpha1.RemediationPolicy) metav1.Condition {
	ready := metav1.Condition{Type: v1alpha1.PolicyConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.PolicyReasonActive, Message: "the policy is active", ObservedGeneration: p.Generation}
	if pr := CheckPolicy(p); pr != nil {
		ready.Status, ready.Reason = metav1.ConditionFalse, pr.Reason
		ready.Message = fmt.Sprintf("%s; nothing runs under this policy until this is fixed (its records are held)", pr.Message)
	} else if p.Spec.Paused {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.PolicyReasonPaused, "spec.paused is true: no new remediations"
	}
	if len(ready.Message) > 32768 {
		ready.Message = ready.Message[:32760] + "…"
	}
	return ready
}

// conditionStates is what of the conditions is news: type, status, reason.
func conditionStates(cs []metav1.Condition) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Type+"/"+string(c.Status)+"/"+c.Reason)
	}
	return out
}
