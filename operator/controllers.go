// Package operator wires nodeward's controllers into one manager: the
// diagnosis controller (operator/diagnosis), the policy controller
// (policies), the executor (remediations) and, when asked, the approval
// stamp webhook (operator/admission). This file is the one place that lists
// them.
package operator

import (
	"context"
	"fmt"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/nodeward/nodeward/operator/admission"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/operator/diagnosis"
	"github.com/nodeward/nodeward/policies"
	"github.com/nodeward/nodeward/remediations"
)

// The operator's permissions, generated into config/rbac/operator by
// controller-gen. Read-only on leases; it writes its own API objects and
// events, and for CordonDrain patches nodes (cordon, uncordon) and evicts
// pods through the eviction API (it never deletes a pod).
//
// The verb "operate" on remediations.nodeward.io is the operator's identity
// at admission: config/admission/operator_only.yaml lets only a caller the
// authorizer grants it create and delete records, write their status, write
// NodeTask specs and diagnoses (config/rbac/agent/own_node_policy.yaml
// likewise exempts it). No rule names a namespace or service account, so
// nodeward keeps its rules in any namespace; no other shipped role has it.
//
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list
// +kubebuilder:rbac:groups="",resources=pods/eviction,verbs=create
// +kubebuilder:rbac:groups=apps,resources=daemonsets,verbs=get
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=list
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=get;list;watch
// +kubebuilder:rbac:groups=nodeward.io,resources=clusterdiagnoses,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=nodeward.io,resources=clusterdiagnoses/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=nodeward.io,resources=remediationpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=nodeward.io,resources=remediationpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=nodeward.io,resources=remediations,verbs=get;list;watch;create;delete;operate
// +kubebuilder:rbac:groups=nodeward.io,resources=remediations/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=nodeward.io,resources=nodediagnoses,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=nodeward.io,resources=nodediagnoses/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=nodeward.io,resources=nodereports,verbs=get;list;watch
// +kubebuilder:rbac:groups=nodeward.io,resources=nodetasks,verbs=get;list;watch;create

// Options configure the controllers.
type Options struct {
	Clock      clock.Clock
	Thresholds diagnosis.Thresholds
	// Notifier, if not nil, announces records waiting for approval to a
	// webhook.
	Notifier *remediations.Notifier
	// SealSecret is the Secret holding the key the operator seals its
	// records and proves their start with (sealkey.go); created if absent.
	SealSecret types.NamespacedName
	// ApprovalStamp serves the mutating webhook that stamps approval.decidedBy
	// and approval.decidedAt (operator/admission) on mgr's webhook server,
	// which the caller configures with a serving certificate.
	ApprovalStamp bool
}

// CacheOptions keep the operator's cache to what it reads: Leases only from
// kube-node-lease, and no managedFields on anything.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&coordinationv1.Lease{}: {Namespaces: map[string]cache.Config{diagnosis.NodeLeaseNamespace: {}}},
			&corev1.Node{}:          {Transform: stripNode},
			// Every Event about a Node (the kubelet's, node-problem-detector's,
			// the node lifecycle controller's: the core/v1 recorder writes
			// Events about cluster-scoped objects to "default"), stripped to
			// what the diagnosis reads; not the cluster's whole event stream.
			// The pod failure Events live in their own caches
			// (diagnosis.PodEventCaches), one per reason.
			&corev1.Event{}: {
				Namespaces: map[string]cache.Config{metav1.NamespaceDefault: {
					FieldSelector: fields.OneTermEqualSelector("involvedObject.kind", "Node"),
				}},
				Transform: diagnosis.StripEvent,
			},
		},
	}
}

// stripNode keeps of a cached Node only what nodeward reads — name, UID,
// labels, its own annotations, spec.unschedulable and the conditions — and
// drops the rest: managedFields, images (often the largest part of a
// Node), volumes, addresses, capacity, node info, taints and other
// components' annotations. (What needs more, the drain and the uncordon,
// reads the Node from the API.)
func stripNode(in any) (any, error) {
	n, ok := in.(*corev1.Node)
	if !ok {
		return in, nil
	}
	n.ManagedFields = nil
	for k := range n.Annotations {
		if !strings.HasPrefix(k, v1alpha1.GroupVersion.Group+"/") {
			delete(n.Annotations, k)
		}
	}
	n.Spec = corev1.NodeSpec{Unschedulable: n.Spec.Unschedulable}
	n.Status = corev1.NodeStatus{Conditions: n.Status.Conditions}
	return n, nil
}

// Setup registers the indexes and every controller with mgr.
func Setup(ctx context.Context, mgr manager.Manager, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Thresholds == (diagnosis.Thresholds{}) {
		opts.Thresholds = diagnosis.DefaultThresholds()
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Remediation{}, policies.IndexRemediationNode, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Remediation).Spec.NodeName}
	}); err != nil {
		return fmt.Errorf("indexing remediations by node: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Remediation{}, policies.IndexRemediationPolicy, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Remediation).Spec.Policy}
	}); err != nil {
		return fmt.Errorf("indexing remediations by policy: %w", err)
	}
	if opts.SealSecret.Name == "" || opts.SealSecret.Namespace == "" {
		return fmt.Errorf("no seal key Secret given (namespace/name)")
	}
	// Read once, from the API server: no Secret informer.
	key, err := LoadSealKey(ctx, mgr.GetAPIReader(), mgr.GetClient(), opts.SealSecret)
	if err != nil {
		return err
	}
	sealer, err := policies.NewSealer(key)
	if err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Event{}, diagnosis.IndexEventNode, func(o client.Object) []string {
		return []string{o.(*corev1.Event).InvolvedObject.Name}
	}); err != nil {
		return fmt.Errorf("indexing events by node: %w", err)
	}
	kube, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return err
	}
	recorder := mgr.GetEventRecorder("nodeward")
	if opts.Notifier != nil {
		if err := mgr.Add(opts.Notifier); err != nil {
			return err
		}
	}
	if opts.ApprovalStamp {
		admission.Register(mgr.GetWebhookServer(), opts.Clock)
	}
	detector := diagnosis.NewClusterDetector(mgr.GetClient(), opts.Clock, recorder, opts.Thresholds)
	if err := mgr.Add(detector); err != nil {
		return err
	}
	podEvents, err := diagnosis.NewPodEventCaches(ctx, mgr)
	if err != nil {
		return err
	}
	if err := podEvents.Add(mgr); err != nil {
		return err
	}
	for _, c := range []interface{ SetupWithManager(manager.Manager) error }{
		&diagnosis.Reconciler{Client: mgr.GetClient(), Clock: opts.Clock, Thresholds: opts.Thresholds, Cluster: detector, PodEvents: podEvents},
		&policies.Reconciler{Client: mgr.GetClient(), Clock: opts.Clock, Recorder: recorder, Sealer: sealer},
		&policies.StatusReconciler{Client: mgr.GetClient(), Recorder: recorder, Heartbeats: detector, HeartbeatsChanged: detector.Changed},
		&remediations.Executor{Client: mgr.GetClient(), Clock: opts.Clock, Recorder: recorder, Kube: kube, Notifier: opts.Notifier, Heartbeats: detector, Sealer: sealer},
		&remediations.Retention{Client: mgr.GetClient(), Clock: opts.Clock},
	} {
		if err := c.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return nil
}
