package diagnosis

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// PodFailureReasons are the kubelet's Event reasons for a pod on a node that
// could not be set up or torn down for a reason of the node's: its sandbox
// (the runtime, the CNI plugin), its cgroup, or the pod network not ready.
//
// Left out on purpose: "Failed" (mostly image pulls: ErrImagePull and
// ImagePullBackOff share the reason), "FailedMount" (mostly storage and
// missing Secrets, not the node), "BackOff" and "Unhealthy" (the
// workload's own faults) and "FailedScheduling" (the scheduler's): in a
// large cluster these are most of all Warning Events, and caching them
// would cost the memory this list saves.
var PodFailureReasons = []string{
	"FailedCreatePodSandBox",   // "Failed to create pod sandbox: rpc error: ..."
	"FailedPodSandBoxStatus",   // the runtime could not tell the sandbox's status
	"FailedCreatePodContainer", // "unable to ensure pod container exists: ..." (cgroups)
	"FailedKillPod",            // "error killing pod: ..." (a hung runtime)
	"NetworkNotReady",          // "network is not ready: container runtime network not ready: ..."
}

// MaxPodEvents bounds the pod Events the diagnosis of one node reads: the
// newest distinct (reason, message) pairs, repeats folded.
const MaxPodEvents = 20

// IndexEventHost indexes pod Events by the node whose kubelet wrote them.
const IndexEventHost = "source.host"

// EventHost is the node whose kubelet wrote the Event: source.host for the
// core/v1 recorder, reportingInstance for the events.k8s.io one.
func EventHost(e *corev1.Event) string {
	if e.Source.Host != "" {
		return e.Source.Host
	}
	return e.ReportingInstance
}

// StripEvent keeps of a cached Event what the diagnosis reads — name,
// namespace, reason, message, type, count, the times, the source and whom
// it is about — and drops the rest (managedFields, labels, annotations,
// related, action, the involved object's UID and fieldPath).
func StripEvent(in any) (any, error) {
	e, ok := in.(*corev1.Event)
	if !ok {
		return in, nil
	}
	out := &corev1.Event{
		ObjectMeta: e.ObjectMeta,
		InvolvedObject: corev1.ObjectReference{Kind: e.InvolvedObject.Kind, Namespace: e.InvolvedObject.Namespace,
			Name: e.InvolvedObject.Name},
		Reason: e.Reason, Message: e.Message, Type: e.Type, Count: e.Count, Source: e.Source,
		FirstTimestamp: e.FirstTimestamp, LastTimestamp: e.LastTimestamp, EventTime: e.EventTime,
		ReportingController: e.ReportingController, ReportingInstance: e.ReportingInstance,
	}
	if e.Series != nil {
		out.Series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	out.ManagedFields, out.Labels, out.Annotations, out.OwnerReferences = nil, nil, nil, nil
	return out, nil
}

// PodEventCaches hold the pod failure Events of the whole cluster, one
// informer per reason in PodFailureReasons, indexed by the node.
//
// Why one informer per reason: a field selector has no "or", and a single
// informer on involvedObject.kind=Pod (even type=Warning) would hold every
// probe failure, back-off and scheduling failure of every pod: at 5,000
// nodes, tens of thousands of Events, and a watch stream that moves with
// every crash-looping pod. A transform cannot drop an object from an
// informer, only shrink it. One field selector per reason lets the
// apiserver filter, so the operator holds only the failures it reads (each
// stripped to ~300 bytes), a handful per broken node and none on a healthy
// cluster. The diagnosis reads at most MaxPodEvents of them per node,
// deduplicated (FoldPodEvents).
type PodEventCaches struct {
	caches []cache.Cache
}

// NewPodEventCaches builds the caches with mgr's client settings; Add them
// to mgr to start them.
func NewPodEventCaches(ctx context.Context, mgr manager.Manager) (*PodEventCaches, error) {
	p := &PodEventCaches{}
	for _, reason := range PodFailureReasons {
		c, err := cache.New(mgr.GetConfig(), cache.Options{
			Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient(),
			ByObject: map[client.Object]cache.ByObject{&corev1.Event{}: {
				Field: fields.AndSelectors(
					fields.OneTermEqualSelector("involvedObject.kind", "Pod"),
					fields.OneTermEqualSelector("reason", reason)),
				Transform: StripEvent,
			}},
		})
		if err != nil {
			return nil, fmt.Errorf("pod event cache for %s: %w", reason, err)
		}
		if err := c.IndexField(ctx, &corev1.Event{}, IndexEventHost, func(o client.Object) []string {
			return []string{EventHost(o.(*corev1.Event))}
		}); err != nil {
			return nil, fmt.Errorf("indexing %s events by node: %w", reason, err)
		}
		p.caches = append(p.caches, c)
	}
	return p, nil
}

// Add registers the caches with mgr, which starts them.
func (p *PodEventCaches) Add(mgr manager.Manager) error {
	for _, c := range p.caches {
		if err := mgr.Add(c); err != nil {
			return err
		}
	}
	return nil
}

// List returns the cached pod failure Events written by the node's kubelet.
func (p *PodEventCaches) List(ctx context.Context, node string) ([]corev1.Event, error) {
	var out []corev1.Event
	for _, c := range p.caches {
		evs := &corev1.EventList{}
		if err := c.List(ctx, evs, client.MatchingFields{IndexEventHost: node}); err != nil {
			return nil, err
		}
		out = append(out, evs.Items...)
	}
	return out, nil
}

// Sources are the watches that re-diagnose a node when one of its pods'
// failure Events changes.
func (p *PodEventCaches) Sources() []source.Source {
	var out []source.Source
	for _, c := range p.caches {
		out = append(out, source.Kind(c, &corev1.Event{}, handler.TypedEnqueueRequestsFromMapFunc(
			func(_ context.Context, e *corev1.Event) []reconcile.Request {
				if h := EventHost(e); h != "" {
					return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: h}}}
				}
				return nil
			})))
	}
	return out
}

// FoldPodEvents deduplicates pod Events: one per (reason, message with
// numbers and IDs folded), its count the sum, its times the span, and keeps
// the newest MaxPodEvents, oldest first. Sandbox failures of many pods
// differ only in pod names, sandbox IDs and times; the diagnosis needs the
// distinct failures, not every pod's.
func FoldPodEvents(evs []corev1.Event) []corev1.Event {
	type group struct {
		ev    corev1.Event
		count int32
	}
	var order []string
	groups := map[string]*group{}
	for _, e := range evs {
		key := e.Reason + "\x00" + foldIDs(e.Message)
		g, ok := groups[key]
		if !ok {
			g = &group{ev: e}
			groups[key] = g
			order = append(order, key)
		} else {
			if eventTime(e).After(eventTime(g.ev)) {
				first := g.ev.FirstTimestamp
				g.ev = e
				if !first.IsZero() && (e.FirstTimestamp.IsZero() || first.Before(&e.FirstTimestamp)) {
					g.ev.FirstTimestamp = first
				}
			} else if !e.FirstTimestamp.IsZero() && (g.ev.FirstTimestamp.IsZero() || e.FirstTimestamp.Before(&g.ev.FirstTimestamp)) {
				g.ev.FirstTimestamp = e.FirstTimestamp
			}
		}
		g.count += max(e.Count, 1)
	}
	out := make([]corev1.Event, 0, len(order))
	for _, k := range order {
		g := groups[k]
		g.ev.Count = g.count
		out = append(out, g.ev)
	}
	slices.SortStableFunc(out, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	if len(out) > MaxPodEvents {
		out = out[len(out)-MaxPodEvents:]
	}
	return out
}

// foldIDs folds what differs between repeats of one failure: hex IDs
// (sandbox and container IDs, 8 or more hex digits) become "H", other runs
// of digits "N".
func foldIDs(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isHex(s[j]) {
			j++
		}
		if j-i >= 8 {
			b.WriteByte('H')
			i = j
			continue
		}
		if s[i] >= '0' && s[i] <= '9' {
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			b.WriteByte('N')
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
