package policies

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// IndexRemediationNode indexes Remediations by spec.nodeName.
const IndexRemediationNode = "spec.nodeName"

// IndexRemediationPolicy indexes Remediations by spec.policy: the limits
// count a policy's records by the field, which every record has, not by a
// label, which a record may lack.
const IndexRemediationPolicy = "spec.policy"

// Reconciler turns NodeDiagnoses into Remediation records. It is keyed by
// node name: diagnoses exist only for unhealthy nodes, so its work follows
// the number of unhealthy nodes, not the size of the cluster.
type Reconciler struct {
	Client   client.Client
	Clock    clock.Clock
	Recorder events.EventRecorder
	// Sealer seals every record created with the operator's key; the
	// executor acts only on sealed records.
	Sealer *Sealer
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("policy").
		For(&v1alpha1.NodeDiagnosis{}).
		// A policy change can change any pending decision: re-decide every
		// unhealthy node (there are few).
		Watches(&v1alpha1.RemediationPolicy{}, handler.EnqueueRequestsFromMapFunc(r.allDiagnoses)).
		// A record that ends may let the next decision for its node through.
		Watches(&v1alpha1.Remediation{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.(*v1alpha1.Remediation).Spec.NodeName}}}
		})).
		Complete(r)
}

func (r *Reconciler) allDiagnoses(ctx context.Context, _ client.Object) []reconcile.Request {
	list := &v1alpha1.NodeDiagnosisList{}
	if err := r.Client.List(ctx, list); err != nil {
		klog.FromContext(ctx).Error(err, "Listing diagnoses from the cache failed")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, d := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Name: d.Name}})
	}
	return reqs
}

// Reconcile decides for one node.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := klog.FromContext(ctx).WithValues("node", req.Name)
	diag := &v1alpha1.NodeDiagnosis{}
	if err := r.Client.Get(ctx, req.NamespacedName, diag); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if len(diag.Status.Causes) == 0 {
		return reconcile.Result{}, nil
	}
	node := &corev1.Node{}
	if err := r.Client.Get(ctx, req.NamespacedName, node); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	policies := &v1alpha1.RemediationPolicyList{}
	if err := r.Client.List(ctx, policies); err != nil {
		return reconcile.Result{}, err
	}
	m, ok := Select(policies.Items, node, diag.Status.Causes)
	if !ok {
		return reconcile.Result{}, nil
	}
	name := RecordName(node.Name, m.Cause.Cause, m.Cause.Since)

	// One in-flight record per node, whatever policies match.
	records := &v1alpha1.RemediationList{}
	if err := r.Client.List(ctx, records, client.MatchingFields{IndexRemediationNode: node.Name}); err != nil {
		return reconcile.Result{}, err
	}
	for _, rec := range records.Items {
		if rec.Name == name {
			return reconcile.Result{}, nil // this episode is decided already
		}
		if !rec.Status.Phase.IsTerminal() {
			log.V(1).Info("Waiting for the node's in-flight remediation", "remediation", rec.Name)
			return reconcile.Result{}, nil
		}
	}

	if wait := m.Cause.Since.Add(m.For).Sub(r.Clock.Now()); wait > 0 {
		log.V(1).Info("Cause has not persisted long enough", "cause", m.Cause.Cause, "policy", m.Policy.Name, "wait", wait)
		return reconcile.Result{RequeueAfter: wait}, nil
	}

	rec := &v1alpha1.Remediation{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				v1alpha1.LabelNode:   v1alpha1.LabelValue(node.Name),
				v1alpha1.LabelPolicy: v1alpha1.LabelValue(m.Policy.Name),
				v1alpha1.LabelCause:  v1alpha1.LabelValue(string(m.Cause.Cause)),
			},
		},
		Spec: v1alpha1.RemediationSpec{
			NodeName:         node.Name,
			Cause:            m.Cause.Cause,
			CauseSince:       m.Cause.Since,
			Evidence:         m.Cause.Evidence,
			Policy:           m.Policy.Name,
			PolicyGeneration: m.Policy.Generation,
			Action:           *m.Policy.Spec.Action.DeepCopy(),
			Mode:             m.Policy.Spec.Mode,
		},
	}
	if r.Sealer != nil {
		r.Sealer.SealRecord(rec)
	}
	log.Info("Creating remediation", "remediation", name, "cause", m.Cause.Cause, "policy", m.Policy.Name, "action", m.Policy.Spec.Action.Type, "mode", m.Policy.Spec.Mode)
	if err := r.Client.Create(ctx, rec); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("creating remediation %s: %w", name, err)
	}
	r.Recorder.Eventf(rec, m.Policy, corev1.EventTypeNormal, "RemediationCreated", "Decide",
		"Policy %s matched %s on node %s: %s (%s)", m.Policy.Name, m.Cause.Cause, node.Name, m.Policy.Spec.Action.Type, m.Policy.Spec.Mode)
	return reconcile.Result{}, r.touchPolicy(ctx, m.Policy, name)
}

// touchPolicy records the newest record on the policy's status.
func (r *Reconciler) touchPolicy(ctx context.Context, p *v1alpha1.RemediationPolicy, name string) error {
	patch := client.MergeFrom(p.DeepCopy())
	p.Status.LastRemediation = name
	return client.IgnoreNotFound(r.Client.Status().Patch(ctx, p, patch))
}
