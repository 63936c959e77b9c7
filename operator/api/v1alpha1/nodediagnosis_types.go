package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// DiagnosedCause is one cause with the evidence for and against it.
type DiagnosedCause struct {
	// cause is the diagnosed cause.
	// +required
	Cause Cause `json:"cause"`
	// detail names the cause more closely where its rule can, e.g. the
	// error a crash-looping kubelet exits with (Swap, Config, MissingFile,
	// CgroupDriver, Other).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Detail string `json:"detail,omitempty"`
	// since is when this cause was first diagnosed without a break.
	// +required
	Since metav1.Time `json:"since"`
	// evidence for (supports=true) and against (supports=false) the cause.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Evidence []Evidence `json:"evidence,omitempty"`
}

// NodeDiagnosisStatus is written by the operator's diagnosis controller.
type NodeDiagnosisStatus struct {
	// causes, most likely first.
	// +optional
	// +listType=map
	// +listMapKey=cause
	Causes []DiagnosedCause `json:"causes,omitempty"`
	// summary is one line for a person.
	// +optional
	Summary string `json:"summary,omitempty"`
	// checks lists the checks that ran and what they found, passed or not.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Checks []Evidence `json:"checks,omitempty"`
	// lastDiagnosed is when the diagnosis last changed.
	// +optional
	LastDiagnosed *metav1.Time `json:"lastDiagnosed,omitempty"`
}

// Cause returns the diagnosed cause with the given name, if present.
func (s *NodeDiagnosisStatus) Cause(c Cause) (DiagnosedCause, bool) {
	for _, dc := range s.Causes {
		if dc.Cause == c {
			return dc, true
		}
	}
	return DiagnosedCause{}, false
}

// NodeDiagnosis is nodeward's diagnosis of one unhealthy node; its name is the
// node's name. It exists only while the node is unhealthy.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ndiag,categories=nodeward
// +kubebuilder:printcolumn:name="Cause",type=string,JSONPath=`.status.causes[0].cause`
// +kubebuilder:printcolumn:name="Since",type=date,JSONPath=`.status.causes[0].since`
// +kubebuilder:printcolumn:name="Summary",type=string,JSONPath=`.status.summary`
type NodeDiagnosis struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Status NodeDiagnosisStatus `json:"status,omitempty"`
}

// NodeDiagnosisList is a list of NodeDiagnosis.
// +kubebuilder:object:root=true
type NodeDiagnosisList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeDiagnosis `json:"items"`
}

func init() { SchemeBuilder.Register(&NodeDiagnosis{}, &NodeDiagnosisList{}) }
