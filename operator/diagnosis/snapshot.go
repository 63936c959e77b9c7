package diagnosis

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Snapshot versions.
const (
	SnapshotAPIVersion = "nodeward.io/v1alpha1"
	SnapshotKind       = "NodeSnapshot"
)

// Snapshot is everything the diagnosis of one node reads, as one versioned
// YAML document: `kubectl nodeward snapshot NODE` writes it from a live
// cluster, a person writes one from an incident report, and `kubectl
// nodeward diagnose --snapshot FILE` diagnoses it offline with the same
// code as the operator. What the snapshot does not know is listed in
// Unknown; the diagnosis treats it as missing evidence, never as a default.
type Snapshot struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// TakenAt is when the evidence was read: the diagnosis' "now".
	TakenAt metav1.Time `json:"takenAt"`
	// Node is the Node (its conditions, labels, taints, nodeInfo).
	Node *corev1.Node `json:"node,omitempty"`
	// Lease is the node's heartbeat Lease.
	Lease *LeaseSnapshot `json:"lease,omitempty"`
	// Report is the node agent's report.
	Report *v1alpha1.NodeReportStatus `json:"report,omitempty"`
	// Events are the Events about the Node.
	Events []corev1.Event `json:"events,omitempty"`
	// PodEvents are the Events of pods on the node: sandbox and container
	// creation failures, bounded and deduplicated.
	PodEvents []corev1.Event `json:"podEvents,omitempty"`
	// Cluster is the many-node view.
	Cluster *ClusterSnapshot `json:"cluster,omitempty"`
	// Unknown lists what the snapshot does not know (UnknownPaths).
	Unknown []string `json:"unknown,omitempty"`
}

// LeaseSnapshot is a node Lease as nodeward saw it.
type LeaseSnapshot struct {
	// RenewTime is the time the kubelet wrote (by the node's clock).
	RenewTime *metav1.MicroTime `json:"renewTime,omitempty"`
	// ObservedAt is when nodeward saw that renewal arrive (by its own
	// clock): staleness is measured from here, so a node whose clock is
	// wrong does not look dead.
	ObservedAt *metav1.Time `json:"observedAt,omitempty"`
	// HolderIdentity is the Lease's holder.
	HolderIdentity string `json:"holderIdentity,omitempty"`
}

// ClusterSnapshot is the many-node view the diagnosis of one node needs.
type ClusterSnapshot struct {
	// Total nodes, and Late: nodes whose heartbeats are late at once.
	Total int `json:"total"`
	Late  int `json:"late"`
	// LateAgentsOnTime: of the late nodes, how many have an agent that
	// reports on time (through the same apiserver: evidence against a
	// control-plane outage). Nil: not known.
	LateAgentsOnTime *int `json:"lateAgentsOnTime,omitempty"`
	// SameFault is node-level evidence many late nodes share (e.g. the
	// same kubelet fatal line), and SameFaultNodes how many share it.
	SameFault      string `json:"sameFault,omitempty"`
	SameFaultNodes int    `json:"sameFaultNodes,omitempty"`
	// Degraded is the detector's verdict with its hysteresis; absent in a
	// snapshot written by hand, where the counts decide.
	Degraded *bool `json:"degraded,omitempty"`
	// Since is when the cluster turned degraded.
	Since *metav1.Time `json:"since,omitempty"`
}

// Paths a Snapshot may list as unknown.
const (
	UnknownLease           = "lease"
	UnknownLeaseObservedAt = "lease.observedAt"
	UnknownReport          = "report"
	UnknownReportHeartbeat = "report.heartbeatTime"
	UnknownReportUnits     = "report.units"
	UnknownReportProbes    = "report.probes"
	UnknownEvents          = "events"
	UnknownPodEvents       = "podEvents"
	UnknownCluster         = "cluster"
	UnknownNodeConditions  = "node.conditions"
)

// UnknownPaths are the paths Snapshot.Unknown may name, or a field under
// one (report.units.kubelet.activeState: the unit's state is not known).
var UnknownPaths = []string{UnknownLease, UnknownLeaseObservedAt, UnknownReport, UnknownReportHeartbeat, UnknownReportUnits,
	UnknownReportProbes, UnknownEvents, UnknownPodEvents, UnknownCluster, UnknownNodeConditions}

// ParseSnapshot reads a snapshot strictly: an unknown field, a wrong
// version or an unknown path under unknown is an error naming it.
func ParseSnapshot(data []byte) (*Snapshot, error) {
	s := &Snapshot{}
	// YAML to JSON (a duplicate key is an error), then a strict decode whose
	// errors carry the field's path ("lease.renewedBy", "cluster.total").
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("reading the snapshot: %w", err)
	}
	strict, err := kjson.UnmarshalStrict(j, s, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
	if err != nil {
		return nil, fmt.Errorf("reading the snapshot: %w", err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("reading the snapshot: %w", errors.Join(strict...))
	}
	if s.APIVersion != SnapshotAPIVersion || s.Kind != SnapshotKind {
		return nil, fmt.Errorf("apiVersion/kind %q/%q: want %s/%s", s.APIVersion, s.Kind, SnapshotAPIVersion, SnapshotKind)
	}
	if s.TakenAt.IsZero() {
		return nil, fmt.Errorf("takenAt is required: the diagnosis measures every age from it")
	}
	if s.Node == nil {
		return nil, fmt.Errorf("node is required")
	}
	for i, u := range s.Unknown {
		if !slices.ContainsFunc(UnknownPaths, func(p string) bool { return u == p || strings.HasPrefix(u, p+".") }) {
			return nil, fmt.Errorf("unknown[%d] %q is not one of %s, or a field under one", i, u, strings.Join(UnknownPaths, ", "))
		}
	}
	return s, nil
}

// Marshal writes the snapshot as YAML.
func (s *Snapshot) Marshal() ([]byte, error) {
	b, err := yaml.Marshal(s)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Knows says whether the snapshot knows the path (and every path it is under).
func (s *Snapshot) Knows(path string) bool {
	for _, u := range s.Unknown {
		if u == path || strings.HasPrefix(path, u+".") {
			return false
		}
	}
	return true
}

// Input turns the snapshot into the diagnosis' input.
func (s *Snapshot) Input() Input {
	in := Input{Node: s.Node, Now: s.TakenAt.Time, Unknown: map[string]bool{}}
	for _, u := range s.Unknown {
		in.Unknown[u] = true
	}
	if s.Lease != nil && s.Knows(UnknownLease) {
		in.Lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: NodeLeaseNamespace, Name: s.Node.Name}}
		in.Lease.Spec.RenewTime = s.Lease.RenewTime
		if s.Lease.HolderIdentity != "" {
			in.Lease.Spec.HolderIdentity = &s.Lease.HolderIdentity
		}
		if s.Lease.ObservedAt != nil && s.Knows(UnknownLeaseObservedAt) {
			t := s.Lease.ObservedAt.Time
			in.LeaseObservedAt = &t
		}
	}
	if s.Report != nil && s.Knows(UnknownReport) {
		in.Report = &v1alpha1.NodeReport{ObjectMeta: metav1.ObjectMeta{Name: s.Node.Name}, Status: *s.Report}
	}
	in.Events = s.Events
	in.PodEvents = s.PodEvents
	if c := s.Cluster; c != nil && s.Knows(UnknownCluster) {
		in.Cluster = ClusterState{Late: c.Late, Total: c.Total, LateAgentsOnTime: c.LateAgentsOnTime,
			SameFault: c.SameFault, SameFaultNodes: c.SameFaultNodes}
		if c.Degraded != nil {
			in.Cluster.Degraded = *c.Degraded
		} else {
			// The detector's rule: DefaultMinNodes and DefaultFraction, not contradicted by
			// most late nodes' agents getting through.
			in.Cluster.Degraded = c.Late >= DefaultMinNodes && float64(c.Late) >= DefaultFraction*float64(c.Total) &&
				(c.LateAgentsOnTime == nil || 2*(*c.LateAgentsOnTime) <= c.Late)
		}
		if c.Since != nil {
			in.Cluster.Since = c.Since.Time
		} else {
			in.Cluster.Since = s.TakenAt.Time
		}
	}
	return in
}

// SnapshotOf writes the diagnosis' input as a snapshot (the live side of
// `kubectl nodeward snapshot`): the inverse of Snapshot.Input.
func SnapshotOf(in Input) *Snapshot {
	s := &Snapshot{APIVersion: SnapshotAPIVersion, Kind: SnapshotKind, TakenAt: metav1.NewTime(in.Now), Node: in.Node,
		Events: in.Events, PodEvents: in.PodEvents}
	for _, p := range UnknownPaths {
		if in.Unknown[p] {
			s.Unknown = append(s.Unknown, p)
		}
	}
	if in.Lease != nil {
		s.Lease = &LeaseSnapshot{RenewTime: in.Lease.Spec.RenewTime}
		if in.Lease.Spec.HolderIdentity != nil {
			s.Lease.HolderIdentity = *in.Lease.Spec.HolderIdentity
		}
		if in.LeaseObservedAt != nil {
			t := metav1.NewTime(*in.LeaseObservedAt)
			s.Lease.ObservedAt = &t
		}
	}
	if in.Report != nil {
		st := in.Report.Status
		s.Report = &st
	}
	c := in.Cluster
	deg := c.Degraded
	s.Cluster = &ClusterSnapshot{Total: c.Total, Late: c.Late, LateAgentsOnTime: c.LateAgentsOnTime, SameFault: c.SameFault,
		SameFaultNodes: c.SameFaultNodes, Degraded: &deg}
	if !c.Since.IsZero() {
		t := metav1.NewTime(c.Since)
		s.Cluster.Since = &t
	}
	return s
}
