package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Cause is a diagnosed reason why a node is unhealthy.
// +kubebuilder:validation:Enum=KubeletDown;ContainerRuntimeDown
type Cause string

const (
	// CauseKubeletDown: the kubelet unit is not active and the node's heartbeats
	// stopped, while the node agent is alive (seed 000).
	CauseKubeletDown Cause = "KubeletDown"
	// CauseContainerRuntimeDown: the container runtime unit is not active
	// while the node agent is alive (seed 004).
	CauseContainerRuntimeDown Cause = "ContainerRuntimeDown"
)

// Unit is the logical name of a node service the agent may act on. The agent
// maps it to a systemd unit from its own configuration; the API never carries
// a unit file name or a command.
// +kubebuilder:validation:Enum=kubelet;containerRuntime
type Unit string

const (
	UnitKubelet          Unit = "kubelet"
	UnitContainerRuntime Unit = "containerRuntime"
)

// Evidence is one observation behind, or against, a diagnosed cause.
type Evidence struct {
	// source names where the observation came from: NodeCondition, Lease,
	// NodeReport (the node agent), Event.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Source string `json:"source"`
	// message is the observation as a person would read it, quoting the
	// original text where there is one.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
	// observedAt is when the observation was made at its source.
	// +optional
	ObservedAt *metav1.Time `json:"observedAt,omitempty"`
	// supports is false for evidence that argues against the cause.
	// +required
	Supports bool `json:"supports"`
}
