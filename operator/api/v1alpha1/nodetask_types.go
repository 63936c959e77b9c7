package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// NodeAction is one of the closed set of node-local actions the agent runs.
// +kubebuilder:validation:Enum=RestartUnit
type NodeAction string

const (
	// NodeActionRestartUnit restarts a unit from the agent's allow-list
	// (systemctl restart semantics: stop if running, then start).
	NodeActionRestartUnit NodeAction = "RestartUnit"
)

// NodeTaskPhase is where a task is.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type NodeTaskPhase string

const (
	TaskPending   NodeTaskPhase = "Pending"
	TaskRunning   NodeTaskPhase = "Running"
	TaskSucceeded NodeTaskPhase = "Succeeded"
	TaskFailed    NodeTaskPhase = "Failed"
)

// NodeTaskSpec is written by the operator and never changes.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
type NodeTaskSpec struct {
	// nodeName is the only node whose agent may run this task.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName"`
	// action is the node-local action.
	// +required
	Action NodeAction `json:"action"`
	// unit is the logical unit for RestartUnit.
	// +required
	Unit Unit `json:"unit"`
	// remediation names the Remediation record this task serves.
	// +required
	Remediation string `json:"remediation"`
}

// UnitState is a systemd unit's state as the agent saw it.
type UnitState struct {
	// name is the logical unit name (kubelet, containerRuntime).
	// +required
	Name Unit `json:"name"`
	// unitName is the systemd unit (e.g. kubelet.service).
	// +optional
	UnitName string `json:"unitName,omitempty"`
	// activeState is systemd's ActiveState: active, inactive, failed, activating, deactivating.
	// +required
	ActiveState string `json:"activeState"`
	// subState is systemd's SubState, e.g. running, dead.
	// +optional
	SubState string `json:"subState,omitempty"`
	// unitFileState is enabled, disabled, static, masked...
	// +optional
	UnitFileState string `json:"unitFileState,omitempty"`
	// since is when the unit entered its active state, if known.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
}

// Active reports whether the unit is running.
func (u UnitState) Active() bool { return u.ActiveState == "active" }

// NodeTaskStatus is written by the node agent only.
type NodeTaskStatus struct {
	// phase of the task. The agent moves it to Running before it acts, so that
	// a restarted agent never runs it twice.
	// +optional
	Phase NodeTaskPhase `json:"phase,omitempty"`
	// message says what happened.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Message string `json:"message,omitempty"`
	// before is the unit's state before the action.
	// +optional
	Before *UnitState `json:"before,omitempty"`
	// after is the unit's state after the action.
	// +optional
	After *UnitState `json:"after,omitempty"`
	// startedAt is when the agent started the action.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// completedAt is when the action ended.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// NodeTask is one node-local action that the operator hands to the agent on
// one node. The agent watches only its own node's tasks and runs each at most
// once.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=nodeward
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="Unit",type=string,JSONPath=`.spec.unit`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NodeTask struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec NodeTaskSpec `json:"spec"`
	// +optional
	Status NodeTaskStatus `json:"status,omitempty"`
}

// NodeTaskList is a list of NodeTask.
// +kubebuilder:object:root=true
type NodeTaskList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeTask `json:"items"`
}

func init() { SchemeBuilder.Register(&NodeTask{}, &NodeTaskList{}) }
