package diagnosis

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// NodeLeaseNamespace holds the kubelets' heartbeat Leases.
const NodeLeaseNamespace = "kube-node-lease"

// Reconciler keeps one NodeDiagnosis per unhealthy node. It is driven by
// meaningful Node changes and NodeReport changes, and by RequeueAfter for the
// evidence that changes with time alone; heartbeat-only updates never reach
// it, so a healthy cluster costs it nothing.
type Reconciler struct {
	Client     client.Client
	Clock      clock.Clock
	Thresholds Thresholds
	// Cluster tells whether many nodes are late at once and when each
	// Lease renewal was seen; nil: not known.
	Cluster *ClusterDetector
	// PodEvents hold the pod failure Events; nil: not read.
	PodEvents *PodEventCaches
}

// IndexEventNode indexes the cached Events about Nodes by the node.
const IndexEventNode = "involvedObject.name"

// EventReasonSystemOOM is the kubelet's Event for a system OOM kill.
const EventReasonSystemOOM = "SystemOOM"

// Workers is how many nodes are diagnosed at once. Each node is its own
// work item (never two workers on one node); the work is mostly waiting for
// the apiserver to take a NodeDiagnosis write, so when many nodes flap at
// once (5,000 kwok nodes on two cores: a queue of 4,600 with one worker) a
// node whose kubelet just died does not wait behind all of them.
const Workers = 8

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("diagnosis").
		WithOptions(controller.Options{MaxConcurrentReconciles: Workers}).
		For(&corev1.Node{}, builder.WithPredicates(NodeHealthChanged())).
		Watches(&v1alpha1.NodeReport{}, &handler.EnqueueRequestForObject{}, builder.WithPredicates(ReportChanged())).
		Watches(&corev1.Event{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			e := o.(*corev1.Event)
			if e.InvolvedObject.Kind != "Node" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: e.InvolvedObject.Name}}}
		}))
	if r.Cluster != nil {
		b = b.WatchesRawSource(source.Channel(r.Cluster.Requeue, &handler.EnqueueRequestForObject{}))
	}
	if r.PodEvents != nil {
		for _, src := range r.PodEvents.Sources() {
			b = b.WatchesRawSource(src)
		}
	}
	return b.Complete(r)
}

// Reconcile diagnoses one node.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := klog.FromContext(ctx)
	in, err := CachedGatherer(r.Client, r.PodEvents, r.Cluster).Gather(ctx, req.Name, r.Clock.Now())
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, r.clear(ctx, req.Name)
	} else if err != nil {
		return reconcile.Result{}, err
	}
	node := in.Node
	diag := &v1alpha1.NodeDiagnosis{}
	exists := true
	if err := r.Client.Get(ctx, client.ObjectKey{Name: node.Name}, diag); apierrors.IsNotFound(err) {
		exists = false
	} else if err != nil {
		return reconcile.Result{}, err
	} else {
		in.Prev = &diag.Status
	}

	res := Diagnose(in, r.Thresholds)
	result := reconcile.Result{RequeueAfter: res.RecheckAfter}
	if !res.Unhealthy {
		if exists {
			log.Info("Node is healthy again; removing its diagnosis", "node", node.Name)
			return reconcile.Result{}, r.clear(ctx, node.Name)
		}
		if res.Suspect {
			// Not unhealthy yet, but a check failed: look again when the
			// evidence may have changed with time.
			return result, nil
		}
		// A healthy node needs no timer: a change of its report or its
		// conditions wakes us.
		return reconcile.Result{}, nil
	}
	if exists && sameDiagnosis(&diag.Status, &res.Status) {
		return result, nil
	}
	res.Status.LastDiagnosed = ptr.To(metav1.NewTime(in.Now))
	if !exists {
		diag = &v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{
			Name:            node.Name,
			Labels:          map[string]string{v1alpha1.LabelNode: v1alpha1.LabelValue(node.Name)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
		}}
		if err := r.Client.Create(ctx, diag); err != nil {
			return reconcile.Result{}, fmt.Errorf("creating NodeDiagnosis %s: %w", node.Name, err)
		}
	}
	diag.Status = res.Status
	log.Info("Diagnosed node", "node", node.Name, "summary", res.Status.Summary)
	if err := r.Client.Status().Update(ctx, diag); err != nil {
		return reconcile.Result{}, fmt.Errorf("writing NodeDiagnosis %s: %w", node.Name, err)
	}
	return result, nil
}

func (r *Reconciler) clear(ctx context.Context, name string) error {
	diag := &v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: name}}
	return client.IgnoreNotFound(r.Client.Delete(ctx, diag))
}

// sameDiagnosis compares causes, their since-times and the kinds of evidence
// behind them, not messages that quote ages moving with the clock, so an
// unchanged diagnosis is not rewritten.
func sameDiagnosis(a, b *v1alpha1.NodeDiagnosisStatus) bool {
	if len(a.Causes) != len(b.Causes) {
		return false
	}
	for i := range a.Causes {
		x, y := a.Causes[i], b.Causes[i]
		if x.Cause != y.Cause || !x.Since.Equal(&y.Since) || !equality.Semantic.DeepEqual(evidenceKinds(x.Evidence), evidenceKinds(y.Evidence)) {
			return false
		}
	}
	return equality.Semantic.DeepEqual(evidenceKinds(a.Checks), evidenceKinds(b.Checks))
}

func evidenceKinds(ev []v1alpha1.Evidence) []string {
	out := make([]string, 0, len(ev))
	for _, e := range ev {
		out = append(out, fmt.Sprintf("%s/%t", e.Source, e.Supports))
	}
	return out
}

// NodeHealthChanged passes Node events that can change a diagnosis: creation,
// deletion, label changes and condition status/reason/message changes.
// Heartbeat-only status updates are dropped.
func NodeHealthChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*corev1.Node)
			n, ok2 := e.ObjectNew.(*corev1.Node)
			if !ok1 || !ok2 {
				return true
			}
			return !equality.Semantic.DeepEqual(o.Labels, n.Labels) || conditionsChanged(o.Status.Conditions, n.Status.Conditions)
		},
	}
}

func conditionsChanged(a, b []corev1.NodeCondition) bool {
	if len(a) != len(b) {
		return true
	}
	idx := make(map[corev1.NodeConditionType]corev1.NodeCondition, len(a))
	for _, c := range a {
		idx[c.Type] = c
	}
	for _, c := range b {
		o, ok := idx[c.Type]
		if !ok || o.Status != c.Status || o.Reason != c.Reason || o.Message != c.Message {
			return true
		}
	}
	return false
}

// ReportChanged passes NodeReport events whose unit states or probe levels
// (NodeProbes.Signature) changed, and the
// first write after a gap in which the agent may have been judged silent;
// heartbeat-only writes at the usual interval are dropped.
func ReportChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*v1alpha1.NodeReport)
			n, ok2 := e.ObjectNew.(*v1alpha1.NodeReport)
			if !ok1 || !ok2 {
				return true
			}
			if !v1alpha1.SameUnits(o.Status.Units, n.Status.Units) || probeSig(o.Status.Probes) != probeSig(n.Status.Probes) {
				return true
			}
			// A diagnosis made while the agent was silent ignored its units
			// and set no timer, so the agent's return, even with the same
			// units, must reach it. The agent writes at least every
			// interval; more than two intervals between writes is less than
			// the default AgentSilentAfter (3), leaving a margin for skew
			// between the agent's clock and ours.
			return n.Status.HeartbeatTime.Sub(o.Status.HeartbeatTime.Time) > 2*o.Status.ReportInterval.Duration
		},
	}
}

func probeSig(p *v1alpha1.NodeProbes) string {
	if p == nil {
		return ""
	}
	return p.Signature()
}
