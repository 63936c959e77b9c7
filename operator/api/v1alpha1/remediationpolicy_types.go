package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Mode says whether a policy acts, only records, or waits for a person.
// +kubebuilder:validation:Enum=Automatic;DryRun
type Mode string

const (
	// ModeAutomatic carries out the action as soon as the limits allow.
	ModeAutomatic Mode = "Automatic"
	// ModeDryRun records exactly what would have been done and touches nothing.
	ModeDryRun Mode = "DryRun"
)

// ActionType is one of the closed set of actions nodeward can take.
// +kubebuilder:validation:Enum=RestartKubelet;RestartContainerRuntime
type ActionType string

const (
	// ActionRestartKubelet restarts the kubelet unit through the node agent,
	// then waits for a fresh Lease and Ready=True.
	ActionRestartKubelet ActionType = "RestartKubelet"
	// ActionRestartContainerRuntime restarts the container runtime unit through
	// the node agent, then waits for Ready=True.
	ActionRestartContainerRuntime ActionType = "RestartContainerRuntime"
)

// Policy condition types and reasons.
const (
	// PolicyConditionReady is True when the policy is accepted and active.
	PolicyConditionReady = "Ready"

	PolicyReasonActive = "Active"
	PolicyReasonPaused = "Paused"
)

// RemediationPolicySpec says which diagnosed causes on which nodes lead to
// which action, and how.
// +kubebuilder:validation:XValidation:rule="!has(self.action.restart) || self.action.type in ['RestartKubelet', 'RestartContainerRuntime']",message="action.restart is only valid for the restart actions"
// +kubebuilder:validation:XValidation:rule="self.causes.all(c, !(c.cause in ['OldSystemd', 'CgroupDriverMismatch', 'KernelDeadlock', 'ReadonlyFilesystem']))",message="causes: OldSystemd, CgroupDriverMismatch, KernelDeadlock and ReadonlyFilesystem are advisory: they need a person, no action may be bound to them"
// +kubebuilder:validation:XValidation:rule="!(self.action.type in ['RestartKubelet', 'RestartContainerRuntime']) || self.causes.all(c, c.cause in ['KubeletDown', 'KubeletHung', 'ContainerRuntimeDown'])",message="causes: a restart action may only be bound to KubeletDown, KubeletHung or ContainerRuntimeDown (restarting the kubelet on PLEG, memory or control-plane trouble makes things worse)"
type RemediationPolicySpec struct {
	// nodeSelector selects the nodes this policy covers by label. An empty or
	// absent selector covers every node. Control-plane nodes (labelled
	// node-role.kubernetes.io/control-plane) are covered only when
	// includeControlPlane is true, and a node labelled
	// nodeward.io/exclude=true is never covered.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="matchExpressions[].operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, (e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))",message="matchExpressions[].values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist"
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// includeControlPlane lets the policy cover control-plane nodes.
	// +optional
	IncludeControlPlane bool `json:"includeControlPlane,omitempty"`

	// causes lists the diagnosed causes this policy acts on, each with how long
	// it must have persisted first.
	// +required
	// +listType=map
	// +listMapKey=cause
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Causes []CauseMatch `json:"causes"`

	// action is what to do about a matching cause.
	// +required
	Action Action `json:"action"`

	// mode is Automatic (act) or DryRun (record what would be done, touch
	// nothing).
	// +optional
	// +kubebuilder:default=DryRun
	Mode Mode `json:"mode,omitempty"`

	// priority orders overlapping policies: the highest wins; ties go to the
	// policy whose name sorts first.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Priority int32 `json:"priority,omitempty"`

	// paused stops the policy from creating new remediations. Records already
	// created run to their end.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// CauseMatch is one diagnosed cause a policy acts on.
type CauseMatch struct {
	// cause is the diagnosed cause.
	// +required
	Cause Cause `json:"cause"`

	// for is how long the cause must have been diagnosed without a break
	// before the policy acts. Zero acts at once.
	// +optional
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('24h')",message="must be between 0s and 24h"
	For metav1.Duration `json:"for,omitempty"`
}

// Action is one action of the closed set, with its parameters.
type Action struct {
	// type is the action.
	// +required
	Type ActionType `json:"type"`

	// restart holds the parameters of RestartKubelet and
	// RestartContainerRuntime.
	// +optional
	Restart *RestartParams `json:"restart,omitempty"`
}

// RestartParams tunes a unit restart.
type RestartParams struct {
	// recoveryTimeout is how long to wait, after the restart, for the node to
	// be Ready with a fresh Lease before the remediation fails.
	// +optional
	// +kubebuilder:default="2m"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s') && duration(self) <= duration('30m')",message="must be between 10s and 30m"
	RecoveryTimeout metav1.Duration `json:"recoveryTimeout,omitempty"`
}

// RemediationPolicyStatus is written by the operator.
type RemediationPolicyStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// lastRemediation names the newest record this policy created.
	// +optional
	LastRemediation string `json:"lastRemediation,omitempty"`
}

// RemediationPolicy matches diagnosed causes on selected nodes to an action,
// carried out within its mode.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=rp;rpolicy,categories=nodeward
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action.type`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Priority",type=integer,JSONPath=`.spec.priority`
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`
// +kubebuilder:printcolumn:name="Last",type=string,JSONPath=`.status.lastRemediation`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RemediationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RemediationPolicySpec `json:"spec"`
	// +optional
	Status RemediationPolicyStatus `json:"status,omitempty"`
}

// RemediationPolicyList is a list of RemediationPolicy.
// +kubebuilder:object:root=true
type RemediationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RemediationPolicy `json:"items"`
}

func init() { SchemeBuilder.Register(&RemediationPolicy{}, &RemediationPolicyList{}) }
