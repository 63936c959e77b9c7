package remediations

import (
	"context"
	"sort"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

// retentionFloor is the least time a finished record is kept: the node
// cooldown, which doubles after each repeated remediation, reaches 24h.
const retentionFloor = 24 * time.Hour

// defaultMaxRecords applies when a policy was stored before retention had a
// default.
const defaultMaxRecords = 500

// Retention deletes a policy's finished records beyond its retention: the
// oldest beyond maxRecords and those older than maxAge, never one its limits
// still count nor the newest of a node and cause.
type Retention struct {
	Client client.Client
	Clock  clock.Clock
}

// SetupWithManager registers the controller: it looks again when a policy
// changes and when one of its records finishes.
func (r *Retention) SetupWithManager(mgr ctrl.Manager) error {
	finished := predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*v1alpha1.Remediation)
			n, ok2 := e.ObjectNew.(*v1alpha1.Remediation)
			return ok1 && ok2 && !o.Status.Phase.IsTerminal() && n.Status.Phase.IsTerminal()
		},
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("retention").
		For(&v1alpha1.RemediationPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.Remediation{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.(*v1alpha1.Remediation).Spec.Policy}}}
		}), builder.WithPredicates(finished)).
		Complete(r)
}

// Reconcile deletes what the policy's retention no longer keeps and comes
// back when the next record ages out.
func (r *Retention) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	p := &v1alpha1.RemediationPolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	list := &v1alpha1.RemediationList{}
	if err := r.Client.List(ctx, list, client.MatchingFields{policies.IndexRemediationPolicy: p.Name}); err != nil {
		return reconcile.Result{}, err
	}
	now := r.Clock.Now()
	doomed, next := expired(p, list.Items, now)
	for i := range doomed {
		rem := doomed[i]
		if err := r.Client.Delete(ctx, rem, client.Preconditions{UID: &rem.UID}); client.IgnoreNotFound(err) != nil {
			return reconcile.Result{}, err
		}
		klog.FromContext(ctx).Info("Deleted remediation record past retention", "remediation", klog.KObj(rem), "completedAt", ended(rem))
	}
	if next.IsZero() {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{RequeueAfter: min(max(next.Sub(now), time.Minute), 6*time.Hour)}, nil
}

// ended is when a finished record ended (its creation if it never said).
func ended(rem *v1alpha1.Remediation) time.Time {
	if rem.Status.CompletedAt != nil {
		return rem.Status.CompletedAt.Time
	}
	return rem.CreationTimestamp.Time
}

// protectedFor is how long the policy's limits count a finished record.
func protectedFor(p *v1alpha1.RemediationPolicy) time.Duration {
	d := retentionFloor
	if w := p.Spec.Limits.AttemptWindow; w != nil {
		d = max(d, w.Duration)
	}
	if r := p.Spec.Limits.MaxPerPeriod; r != nil {
		d = max(d, r.Period.Duration)
	}
	return d
}

// expired returns the records retention deletes, and when the next
// record's age runs out (zero if none will by age).
func expired(p *v1alpha1.RemediationPolicy, recs []v1alpha1.Remediation, now time.Time) ([]*v1alpha1.Remediation, time.Time) {
	var done []*v1alpha1.Remediation
	for i := range recs {
		if recs[i].Status.Phase.IsTerminal() && recs[i].DeletionTimestamp == nil {
			done = append(done, &recs[i])
		}
	}
	sort.SliceStable(done, func(i, j int) bool { return ended(done[i]).After(ended(done[j])) })
	maxRecords := int(p.Spec.Retention.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = defaultMaxRecords
	}
	protected := protectedFor(p)
	maxAge := time.Duration(0)
	if a := p.Spec.Retention.MaxAge; a != nil {
		maxAge = max(a.Duration, protected)
	}
	newest := map[string]bool{} // node/cause whose newest record was seen
	var doomed []*v1alpha1.Remediation
	var next time.Time
	for i, rem := range done {
		key := rem.Spec.NodeName + "/" + string(rem.Spec.Cause)
		if !newest[key] {
			// The newest record of a node and cause stops its episode from
			// being decided again: kept.
			newest[key] = true
			continue
		}
		var deleteAt time.Time
		if i >= maxRecords {
			deleteAt = ended(rem).Add(protected) // the limits may still count it until then
		}
		if maxAge > 0 {
			if at := ended(rem).Add(maxAge); deleteAt.IsZero() || at.Before(deleteAt) {
				deleteAt = at
			}
		}
		switch {
		case deleteAt.IsZero():
		case !now.Before(deleteAt):
			doomed = append(doomed, rem)
		case next.IsZero() || deleteAt.Before(next):
			next = deleteAt
		}
	}
	return doomed, next
}
