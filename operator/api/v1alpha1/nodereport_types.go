package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
