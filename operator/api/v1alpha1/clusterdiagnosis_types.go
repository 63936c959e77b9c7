package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ClusterDiagnosisName is the name of the one ClusterDiagnosis.
const ClusterDiagnosisName = "cluster"

// ClusterDiagnosisStatus is written by the operator's cluster detector.
type ClusterDiagnosisStatus struct {
	// causes of cluster-wide trouble, e.g. ControlPlaneDegraded.
	// +optional
	// +listType=map
	// +listMapKey=cause
	Causes []DiagnosedCause `json:"causes,omitempty"`
	// lateNodes counts nodes whose heartbeats are late (0 in a fleet
	// fault: crash-looping kubelets explain their own Leases); totalNodes
	// all nodes.
	// +optional
	LateNodes int32 `json:"lateNodes,omitempty"`
	// +optional
	TotalNodes int32 `json:"totalNodes,omitempty"`
	// lateAgentsOnTime counts the late nodes whose agents report on time
	// through the apiserver (evidence against a control-plane outage).
	// +optional
	LateAgentsOnTime *int32 `json:"lateAgentsOnTime,omitempty"`
	// sameFault is the kubelet fatal journal line (numbers folded) most
	// nodes with stale heartbeats and agents on time share, and
	// sameFaultNodes how many share it.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	SameFault string `json:"sameFault,omitempty"`
	// +optional
	SameFaultNodes int32 `json:"sameFaultNodes,omitempty"`
	// sampleNodes names up to 20 of the late nodes (for FleetNodeFault, of
	// the nodes sharing the fault).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	SampleNodes []string `json:"sampleNodes,omitempty"`
	// summary is one line for a person.
	// +optional
	Summary string `json:"summary,omitempty"`
}

// ClusterDiagnosis is nodeward's diagnosis of trouble that is the cluster's,
// not a node's: many nodes' heartbeats late at once (seed 003), because the
// control plane is overloaded or those nodes are cut off from it (a
// partition, e.g. a zone). It exists, as
// the single object named "cluster", only while such trouble lasts; while it
// does, nodes whose only fault is a late heartbeat get no node-level cause.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cdiag,categories=nodeward
// +kubebuilder:printcolumn:name="Cause",type=string,JSONPath=`.status.causes[0].cause`
// +kubebuilder:printcolumn:name="Late",type=integer,JSONPath=`.status.lateNodes`
// +kubebuilder:printcolumn:name="Total",type=integer,JSONPath=`.status.totalNodes`
// +kubebuilder:printcolumn:name="Summary",type=string,JSONPath=`.status.summary`
type ClusterDiagnosis struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Status ClusterDiagnosisStatus `json:"status,omitempty"`
}

// ClusterDiagnosisList is a list of ClusterDiagnosis.
// +kubebuilder:object:root=true
type ClusterDiagnosisList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterDiagnosis `json:"items"`
}

func init() { SchemeBuilder.Register(&ClusterDiagnosis{}, &ClusterDiagnosisList{}) }
