package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// NodeAction is one of the closed set of node-local actions the agent runs.
// +kubebuilder:validation:Enum=RestartUnit;EditConfig
type NodeAction string

const (
	// NodeActionRestartUnit restarts a unit from the agent's allow-list
	// (systemctl restart semantics: stop if running, then start).
	NodeActionRestartUnit NodeAction = "RestartUnit"
	// NodeActionEditConfig sets one key of one node-local config file from a
	// closed set (ConfigFile, ConfigKey), within bounds the agent checks
	// itself, keeping a backup of the file.
	NodeActionEditConfig NodeAction = "EditConfig"
)

// ConfigFile names a node-local config file the agent may edit, by role; the
// agent maps it to a path (flags --controller-manager-manifest,
// --kubelet-config).
// +kubebuilder:validation:Enum=ControllerManagerManifest;KubeletConfig
type ConfigFile string

const (
	// ConfigFileControllerManagerManifest is the kube-controller-manager
	// static pod manifest (kubeadm:
	// /etc/kubernetes/manifests/kube-controller-manager.yaml). The kubelet
	// restarts the static pod by itself when the manifest changes.
	ConfigFileControllerManagerManifest ConfigFile = "ControllerManagerManifest"
	// ConfigFileKubeletConfig is the kubelet's KubeletConfiguration file
	// (kubeadm: /var/lib/kubelet/config.yaml). The kubelet reads it only when
	// it starts.
	ConfigFileKubeletConfig ConfigFile = "KubeletConfig"
)

// ConfigKey is a key the agent may set, each in exactly one ConfigFile.
// +kubebuilder:validation:Enum=node-monitor-grace-period;nodeStatusUpdateFrequency
type ConfigKey string

const (
	// ConfigKeyNodeMonitorGracePeriod is the controller-manager's
	// --node-monitor-grace-period (in ControllerManagerManifest).
	ConfigKeyNodeMonitorGracePeriod ConfigKey = "node-monitor-grace-period"
	// ConfigKeyNodeStatusUpdateFrequency is the kubelet's
	// nodeStatusUpdateFrequency (in KubeletConfig).
	ConfigKeyNodeStatusUpdateFrequency ConfigKey = "nodeStatusUpdateFrequency"
)

// ConfigEdit is one bounded config edit.
// +kubebuilder:validation:XValidation:rule="(self.file == 'ControllerManagerManifest') == (self.key == 'node-monitor-grace-period')",message="key: node-monitor-grace-period belongs to ControllerManagerManifest, nodeStatusUpdateFrequency to KubeletConfig"
// +kubebuilder:validation:XValidation:rule="self.key != 'node-monitor-grace-period' || (duration(self.value) >= duration('40s') && duration(self.value) <= duration('5m'))",message="value: node-monitor-grace-period must be between 40s and 5m"
// +kubebuilder:validation:XValidation:rule="self.key != 'nodeStatusUpdateFrequency' || (duration(self.value) >= duration('1s') && duration(self.value) <= duration('1m'))",message="value: nodeStatusUpdateFrequency must be between 1s and 1m"
type ConfigEdit struct {
	// file is the config file, by role.
	// +required
	File ConfigFile `json:"file"`
	// key is the key to set in it.
	// +required
	Key ConfigKey `json:"key"`
	// value is a Go duration, e.g. "2m0s".
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	Value string `json:"value"`
	// raiseOnly leaves a current value that is already at least value alone:
	// the task then succeeds without an edit (before equals after, no
	// backup). The operator sets it for the grace period, which it never
	// lowers.
	// +optional
	RaiseOnly bool `json:"raiseOnly,omitempty"`
}

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
// +kubebuilder:validation:XValidation:rule="self.action != 'RestartUnit' || has(self.unit)",message="unit is required for RestartUnit"
// +kubebuilder:validation:XValidation:rule="self.action != 'EditConfig' || has(self.edit)",message="edit is required for EditConfig"
// +kubebuilder:validation:XValidation:rule="!has(self.edit) || self.action == 'EditConfig'",message="edit is only valid for EditConfig"
type NodeTaskSpec struct {
	// nodeName is the only node whose agent may run this task.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName"`
	// action is the node-local action.
	// +required
	Action NodeAction `json:"action"`
	// unit is the logical unit for RestartUnit (required for it).
	// +optional
	Unit Unit `json:"unit,omitempty"`
	// edit is the config edit for EditConfig (required for it).
	// +optional
	Edit *ConfigEdit `json:"edit,omitempty"`
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
	// restarts is systemd's NRestarts: how many times systemd restarted the
	// unit automatically (Restart=) since it was last started by hand.
	// +optional
	Restarts *int32 `json:"restarts,omitempty"`
	// result is systemd's Result of the unit's last run: success,
	// exit-code, signal, core-dump, timeout, start-limit-hit...
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Result string `json:"result,omitempty"`
	// exitCode is how the main process last ended (systemd's ExecMainCode):
	// exited, killed or dumped.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	ExitCode string `json:"exitCode,omitempty"`
	// exitStatus is the main process's last exit status, or the signal
	// number when it was killed (systemd's ExecMainStatus).
	// +optional
	ExitStatus *int32 `json:"exitStatus,omitempty"`
	// exitedAt is when the main process last ended (ExecMainExitTimestamp).
	// +optional
	ExitedAt *metav1.Time `json:"exitedAt,omitempty"`
	// logs are the unit's last error and fatal lines from the systemd
	// journal, repeats folded into one line with a count, newest last.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	Logs []LogLine `json:"logs,omitempty"`
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
	// beforeValue is, for EditConfig, the key's value before the edit as
	// the file had it; an absent key reads "<default> (default)".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	BeforeValue string `json:"beforeValue,omitempty"`
	// afterValue is, for EditConfig, the key's value read back from the file
	// after the edit (equal to beforeValue when nothing was edited).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	AfterValue string `json:"afterValue,omitempty"`
	// backup is, for EditConfig, the path (on the node) of the copy of the
	// file taken before the edit; empty when the file was not edited.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Backup string `json:"backup,omitempty"`
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
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.spec.edit.key`,priority=1
// +kubebuilder:printcolumn:name="Value",type=string,JSONPath=`.status.afterValue`,priority=1
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
