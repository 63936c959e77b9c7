package diagnosis

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Gatherer reads everything the diagnosis of one node reads, into an
// Input: the operator from its cache (CachedGatherer), `kubectl nodeward
// snapshot` from the API server (APIGatherer). Both build the Input here,
// so a snapshot holds what the operator would have diagnosed.
type Gatherer struct {
	// Reader reads the Node, its Lease and its NodeReport.
	Reader client.Reader
	// NodeEvents lists the Events about the Node.
	NodeEvents func(ctx context.Context, node string) ([]corev1.Event, error)
	// PodEvents lists the failure Events (PodFailureReasons) of pods on the
	// node, before folding; nil: not known.
	PodEvents func(ctx context.Context, node string) ([]corev1.Event, error)
	// Cluster is the many-node view; nil: not known.
	Cluster func(ctx context.Context) (ClusterState, error)
	// ObservedRenewal is when nodeward saw the Lease's renewTime arrive
	// (ClusterDetector.ObservedRenewal); nil: not known.
	ObservedRenewal func(node string) (renewTime, observedAt time.Time, ok bool)
}

// Gather reads the node's evidence at now. A missing Node is an error
// apierrors.IsNotFound recognizes; a missing Lease or NodeReport is known
// absence (nil), not unknown.
func (g *Gatherer) Gather(ctx context.Context, name string, now time.Time) (Input, error) {
	in := Input{Node: &corev1.Node{}, Now: now, Unknown: map[string]bool{}}
	if err := g.Reader.Get(ctx, client.ObjectKey{Name: name}, in.Node); err != nil {
		return Input{}, err
	}
	lease := &coordinationv1.Lease{}
	if err := g.Reader.Get(ctx, client.ObjectKey{Namespace: NodeLeaseNamespace, Name: name}, lease); err == nil {
		in.Lease = lease
		in.Unknown[UnknownLeaseObservedAt] = true
		if g.ObservedRenewal != nil && lease.Spec.RenewTime != nil {
			// Only an observation of the renewTime at hand counts: the
			// detector may not have scanned since the cache saw it change.
			if rt, at, ok := g.ObservedRenewal(name); ok && rt.Equal(lease.Spec.RenewTime.Time) {
				in.LeaseObservedAt = &at
				delete(in.Unknown, UnknownLeaseObservedAt)
			}
		}
	} else if !apierrors.IsNotFound(err) {
		return Input{}, fmt.Errorf("reading the Lease of %s: %w", name, err)
	}
	report := &v1alpha1.NodeReport{}
	if err := g.Reader.Get(ctx, client.ObjectKey{Name: name}, report); err == nil {
		in.Report = report
	} else if !apierrors.IsNotFound(err) {
		return Input{}, fmt.Errorf("reading the NodeReport of %s: %w", name, err)
	}
	evs, err := g.NodeEvents(ctx, name)
	if err != nil {
		return Input{}, fmt.Errorf("listing the Events of node %s: %w", name, err)
	}
	in.Events = evs
	if g.PodEvents == nil {
		in.Unknown[UnknownPodEvents] = true
	} else {
		evs, err := g.PodEvents(ctx, name)
		if err != nil {
			return Input{}, fmt.Errorf("listing the pod failure Events on node %s: %w", name, err)
		}
		in.PodEvents = FoldPodEvents(evs)
	}
	if g.Cluster == nil {
		in.Unknown[UnknownCluster] = true
	} else if in.Cluster, err = g.Cluster(ctx); err != nil {
		return Input{}, fmt.Errorf("reading the cluster view: %w", err)
	}
	if len(in.Unknown) == 0 {
		in.Unknown = nil
	}
	return in, nil
}

// CachedGatherer reads from the operator's cache: Events about Nodes
// through the IndexEventNode index, pod failures from podEvents (nil: not
// read), the cluster view and the Lease observations from the detector
// (nil: not known).
func CachedGatherer(r client.Reader, podEvents *PodEventCaches, d *ClusterDetector) *Gatherer {
	g := &Gatherer{Reader: r, NodeEvents: func(ctx context.Context, node string) ([]corev1.Event, error) {
		evs := &corev1.EventList{}
		if err := r.List(ctx, evs, client.MatchingFields{IndexEventNode: node}); err != nil {
			return nil, err
		}
		return nodeEventsOnly(evs.Items), nil
	}}
	if podEvents != nil {
		g.PodEvents = podEvents.List
	}
	if d != nil {
		g.Cluster = func(context.Context) (ClusterState, error) { return d.State(), nil }
		g.ObservedRenewal = d.ObservedRenewal
	}
	return g
}

// APIGatherer reads from the API server (r is a client without a cache):
// Events with field selectors, and the cluster view from the
// ClusterDiagnosis. It cannot know when nodeward saw the Lease renewed.
func APIGatherer(r client.Reader) *Gatherer {
	return &Gatherer{
		Reader: r,
		NodeEvents: func(ctx context.Context, node string) ([]corev1.Event, error) {
			evs := &corev1.EventList{}
			if err := r.List(ctx, evs, client.MatchingFields{"involvedObject.kind": "Node", "involvedObject.name": node}); err != nil {
				return nil, err
			}
			for i := range evs.Items {
				evs.Items[i].ManagedFields = nil
			}
			return nodeEventsOnly(evs.Items), nil
		},
		// One list per reason, across namespaces: failures are few, and
		// source.host is no field the apiserver selects on.
		PodEvents: func(ctx context.Context, node string) ([]corev1.Event, error) {
			var out []corev1.Event
			for _, reason := range PodFailureReasons {
				evs := &corev1.EventList{}
				if err := r.List(ctx, evs, client.MatchingFields{"involvedObject.kind": "Pod", "reason": reason}); err != nil {
					return nil, err
				}
				for i := range evs.Items {
					if EventHost(&evs.Items[i]) == node {
						e, _ := StripEvent(&evs.Items[i])
						out = append(out, *e.(*corev1.Event))
					}
				}
			}
			return out, nil
		},
		Cluster: func(ctx context.Context) (ClusterState, error) {
			cd := &v1alpha1.ClusterDiagnosis{}
			if err := r.Get(ctx, client.ObjectKey{Name: v1alpha1.ClusterDiagnosisName}, cd); err != nil {
				// No ClusterDiagnosis: no cluster-wide trouble.
				return ClusterState{}, client.IgnoreNotFound(err)
			}
			return ClusterStateOf(&cd.Status), nil
		},
	}
}

// ClusterStateOf reads the cluster view back from a ClusterDiagnosis.
func ClusterStateOf(st *v1alpha1.ClusterDiagnosisStatus) ClusterState {
	cs := ClusterState{Late: int(st.LateNodes), Total: int(st.TotalNodes), SameFault: st.SameFault, SameFaultNodes: int(st.SameFaultNodes)}
	if st.LateAgentsOnTime != nil {
		n := int(*st.LateAgentsOnTime)
		cs.LateAgentsOnTime = &n
	}
	for _, c := range st.Causes {
		if c.Cause == v1alpha1.CauseControlPlaneDegraded {
			cs.Degraded, cs.Since = true, c.Since.Time
		}
	}
	return cs
}

// nodeEventsOnly keeps the Events about a Node (a Pod may share its name).
func nodeEventsOnly(evs []corev1.Event) []corev1.Event {
	out := evs[:0]
	for _, e := range evs {
		if strings.EqualFold(e.InvolvedObject.Kind, "Node") {
			out = append(out, e)
		}
	}
	return out
}
