package v1alpha1

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeReportStatus is the node agent's compact, bounded report about its node.
// The agent writes it when something changes and otherwise only every
// reportInterval, so that heartbeatTime doubles as the agent's liveness.
type NodeReportStatus struct {
	// heartbeatTime is when the agent last wrote this report.
	// +required
	HeartbeatTime metav1.Time `json:"heartbeatTime"`
	// reportInterval is the longest the agent waits between writes; a report
	// older than three intervals means the agent is silent.
	// +required
	ReportInterval metav1.Duration `json:"reportInterval"`
	// agentVersion is the agent's build version.
	// +optional
	AgentVersion string `json:"agentVersion,omitempty"`
	// units are the states of the units the agent watches.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	Units []UnitState `json:"units,omitempty"`
	// probes are the agent's measurements of the node.
	// +optional
	Probes *NodeProbes `json:"probes,omitempty"`
}

// Unit returns the state of the named unit, if reported.
func (s *NodeReportStatus) Unit(name Unit) (UnitState, bool) {
	for _, u := range s.Units {
		if u.Name == name {
			return u, true
		}
	}
	return UnitState{}, false
}

// SameUnits compares what matters for a change (the agent writes on it,
// the diagnosis wakes on it): states, how the main
// process last ended, the restart count and the journal's error lines
// coarsely (see UnitState.EvidenceSignature), not exit times or repeats of a line.
func SameUnits(a, b []UnitState) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || x.ActiveState != y.ActiveState || x.SubState != y.SubState || x.UnitFileState != y.UnitFileState || !equality.Semantic.DeepEqual(x.Since, y.Since) ||
			x.EvidenceSignature() != y.EvidenceSignature() {
			return false
		}
	}
	return true
}

// EvidenceSignature is the coarse shape of a unit's exit evidence: result, exit
// code and status, restarts as none, 1-2, 3-9 or 10 and more (a crash loop
// is 3 within 10 minutes), and each journal line's kind (its text without
// digits) with its repeats as 1-2, 3-9 or 10 and more. A kubelet that
// keeps exiting on the same error so writes a few times, not at every exit.
func (u UnitState) EvidenceSignature() string {
	var b strings.Builder
	bucket := func(n int32) int {
		switch {
		case n <= 0:
			return 0
		case n < 3:
			return 1
		case n < 10:
			return 2
		}
		return 3
	}
	fmt.Fprintf(&b, "%s/%s/", u.Result, u.ExitCode)
	if u.ExitStatus != nil {
		fmt.Fprintf(&b, "%d", *u.ExitStatus)
	}
	if u.Restarts != nil {
		fmt.Fprintf(&b, "/r%d", bucket(*u.Restarts))
	}
	for _, l := range u.Logs {
		fmt.Fprintf(&b, "|%d:%s", bucket(l.Repeats()), strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return -1
			}
			return r
		}, l.Text))
	}
	return b.String()
}

// NodeReport is what the node agent on one node reports about it; its name is
// the node's name. Only that node's agent writes it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=nrep,categories=nodeward
// +kubebuilder:printcolumn:name="Heartbeat",type=date,JSONPath=`.status.heartbeatTime`
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.status.agentVersion`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NodeReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Status NodeReportStatus `json:"status,omitempty"`
}

// NodeReportList is a list of NodeReport.
// +kubebuilder:object:root=true
type NodeReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeReport `json:"items"`
}

func init() { SchemeBuilder.Register(&NodeReport{}, &NodeReportList{}) }
