package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Mode says whether a policy acts, only records, or waits for a person.
// +kubebuilder:validation:Enum=Automatic;DryRun;RequireApproval
type Mode string

const (
	// ModeAutomatic carries out the action as soon as the limits allow.
	ModeAutomatic Mode = "Automatic"
	// ModeDryRun records exactly what would have been done and touches nothing.
	ModeDryRun Mode = "DryRun"
	// ModeRequireApproval plans the action and waits (phase Pending, reason
	// WaitingForApproval) until a person holding the verb approve on
	// remediations approves or rejects it, or the policy's approvalTimeout
	// passes.
	ModeRequireApproval Mode = "RequireApproval"
)

// ActionType is one of the closed set of actions nodeward can take.
// +kubebuilder:validation:Enum=RestartKubelet;RestartContainerRuntime;CordonDrain;TuneGracePeriods;Cordon;Notify
type ActionType string

const (
	// ActionRestartKubelet restarts the kubelet unit through the node agent,
	// then waits for a fresh Lease and Ready=True.
	ActionRestartKubelet ActionType = "RestartKubelet"
	// ActionRestartContainerRuntime restarts the container runtime unit through
	// the node agent, then waits for Ready=True.
	ActionRestartContainerRuntime ActionType = "RestartContainerRuntime"
	// ActionCordonDrain cordons the node and evicts its pods through the
	// eviction API (PodDisruptionBudgets respected, DaemonSet and mirror pods
	// skipped), then optionally uncordons it once healthy for a while.
	ActionCordonDrain ActionType = "CordonDrain"
	// ActionTuneGracePeriods raises the controller-manager's
	// --node-monitor-grace-period (static pod manifest, through the agent on
	// control-plane nodes) within bounds.
	ActionTuneGracePeriods ActionType = "TuneGracePeriods"
	// ActionCordon cordons the node and touches nothing else: new pods stay
	// off it while a person looks. It uncordons once healthy only if
	// nodeward cordoned it, like CordonDrain.
	ActionCordon ActionType = "Cordon"
	// ActionNotify touches nothing: the record names the cause and its
	// evidence and says a person is needed, and the notifier is told.
	ActionNotify ActionType = "Notify"
)

// Policy condition types and reasons.
const (
	// PolicyConditionReady is True when the policy is accepted and active.
	PolicyConditionReady = "Ready"
	// PolicyConditionRemediationAllowed is False while the storm breaker is
	// open: too many of the policy's nodes are unhealthy.
	PolicyConditionRemediationAllowed = "RemediationAllowed"

	PolicyReasonActive        = "Active"
	PolicyReasonPaused        = "Paused"
	PolicyReasonInvalidWindow = "InvalidMaintenanceWindow"
	// The reasons of Ready=False for a policy that can't act as written
	// (admission refuses these; the status catches what was stored before a
	// rule existed, or what admission can't check, like a time zone).
	PolicyReasonInvalidNodeSelector = "InvalidNodeSelector"
	PolicyReasonInvalidCauses       = "InvalidCauses"
	PolicyReasonInvalidAction       = "InvalidAction"
	PolicyReasonInvalidMode         = "InvalidMode"
	PolicyReasonInvalidStormBreaker = "InvalidStormBreaker"
	PolicyReasonTooManyUnhealthy    = "TooManyUnhealthy"
	PolicyReasonWithinLimits        = "WithinLimits"
)

// RemediationPolicySpec says which diagnosed causes on which nodes lead to
// which action, and how.
// +kubebuilder:validation:XValidation:rule="self.action.type in ['Cordon', 'Notify'] || self.causes.all(c, !(c.cause in ['FleetNodeFault', 'ClockSkew', 'KubeletCertificateExpired', 'KubeletCrashLoop', 'NetworkUnavailable', 'KernelDeadlock', 'ReadonlyFilesystem', 'PodStartFailures', 'OldSystemd', 'CgroupDriverMismatch']))",messageExpression="'cause(s)' + (self.causes.exists(c, c.cause == 'FleetNodeFault') ? ' FleetNodeFault' : \"\") + (self.causes.exists(c, c.cause == 'ClockSkew') ? ' ClockSkew' : \"\") + (self.causes.exists(c, c.cause == 'KubeletCertificateExpired') ? ' KubeletCertificateExpired' : \"\") + (self.causes.exists(c, c.cause == 'KubeletCrashLoop') ? ' KubeletCrashLoop' : \"\") + (self.causes.exists(c, c.cause == 'NetworkUnavailable') ? ' NetworkUnavailable' : \"\") + (self.causes.exists(c, c.cause == 'KernelDeadlock') ? ' KernelDeadlock' : \"\") + (self.causes.exists(c, c.cause == 'ReadonlyFilesystem') ? ' ReadonlyFilesystem' : \"\") + (self.causes.exists(c, c.cause == 'PodStartFailures') ? ' PodStartFailures' : \"\") + (self.causes.exists(c, c.cause == 'OldSystemd') ? ' OldSystemd' : \"\") + (self.causes.exists(c, c.cause == 'CgroupDriverMismatch') ? ' CgroupDriverMismatch' : \"\") + ' need a person (nodeward cannot fix them), so they may be bound only to Cordon or Notify, not to ' + self.action.type",fieldPath=".causes",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="self.action.type != 'RestartKubelet' || self.causes.all(c, c.cause in ['KubeletDown', 'ContainerRuntimeDown', 'KubeletHung'] || c.cause in ['FleetNodeFault', 'ClockSkew', 'KubeletCertificateExpired', 'KubeletCrashLoop', 'NetworkUnavailable', 'KernelDeadlock', 'ReadonlyFilesystem', 'PodStartFailures', 'OldSystemd', 'CgroupDriverMismatch'])",messageExpression="'RestartKubelet may only be bound to KubeletDown, ContainerRuntimeDown or KubeletHung, not to' + (self.causes.exists(c, c.cause == 'ContainerRuntimeHung') ? ' ContainerRuntimeHung' : \"\") + (self.causes.exists(c, c.cause == 'MemoryExhausted') ? ' MemoryExhausted' : \"\") + (self.causes.exists(c, c.cause == 'PIDExhausted') ? ' PIDExhausted' : \"\") + (self.causes.exists(c, c.cause == 'DiskPressure') ? ' DiskPressure' : \"\") + (self.causes.exists(c, c.cause == 'PLEGUnhealthy') ? ' PLEGUnhealthy' : \"\") + (self.causes.exists(c, c.cause == 'ControlPlaneDegraded') ? ' ControlPlaneDegraded' : \"\") + (self.causes.exists(c, c.cause == 'NodeUnreachable') ? ' NodeUnreachable' : \"\") + ' (restarting on PLEG, memory, disk or control-plane trouble makes things worse)'",fieldPath=".causes",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="self.action.type != 'RestartContainerRuntime' || self.causes.all(c, c.cause in ['KubeletDown', 'ContainerRuntimeDown', 'ContainerRuntimeHung', 'KubeletHung'] || c.cause in ['FleetNodeFault', 'ClockSkew', 'KubeletCertificateExpired', 'KubeletCrashLoop', 'NetworkUnavailable', 'KernelDeadlock', 'ReadonlyFilesystem', 'PodStartFailures', 'OldSystemd', 'CgroupDriverMismatch'])",messageExpression="'RestartContainerRuntime may only be bound to KubeletDown, ContainerRuntimeDown, ContainerRuntimeHung or KubeletHung, not to' + (self.causes.exists(c, c.cause == 'MemoryExhausted') ? ' MemoryExhausted' : \"\") + (self.causes.exists(c, c.cause == 'PIDExhausted') ? ' PIDExhausted' : \"\") + (self.causes.exists(c, c.cause == 'DiskPressure') ? ' DiskPressure' : \"\") + (self.causes.exists(c, c.cause == 'PLEGUnhealthy') ? ' PLEGUnhealthy' : \"\") + (self.causes.exists(c, c.cause == 'ControlPlaneDegraded') ? ' ControlPlaneDegraded' : \"\") + (self.causes.exists(c, c.cause == 'NodeUnreachable') ? ' NodeUnreachable' : \"\") + ' (restarting on PLEG, memory, disk or control-plane trouble makes things worse)'",fieldPath=".causes",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="self.action.type != 'CordonDrain' || self.causes.all(c, c.cause in ['KubeletDown', 'ContainerRuntimeDown', 'ContainerRuntimeHung', 'MemoryExhausted', 'PIDExhausted', 'DiskPressure', 'KubeletHung', 'NodeUnreachable'] || c.cause in ['FleetNodeFault', 'ClockSkew', 'KubeletCertificateExpired', 'KubeletCrashLoop', 'NetworkUnavailable', 'KernelDeadlock', 'ReadonlyFilesystem', 'PodStartFailures', 'OldSystemd', 'CgroupDriverMismatch'])",messageExpression="'CordonDrain may only be bound to KubeletDown, ContainerRuntimeDown, ContainerRuntimeHung, MemoryExhausted, PIDExhausted, DiskPressure, KubeletHung or NodeUnreachable, not to' + (self.causes.exists(c, c.cause == 'PLEGUnhealthy') ? ' PLEGUnhealthy' : \"\") + (self.causes.exists(c, c.cause == 'ControlPlaneDegraded') ? ' ControlPlaneDegraded' : \"\") + ' (no node is at fault, so draining one fixes nothing)'",fieldPath=".causes",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="self.action.type != 'TuneGracePeriods' || self.causes.all(c, c.cause in ['PLEGUnhealthy', 'ControlPlaneDegraded'] || c.cause in ['FleetNodeFault', 'ClockSkew', 'KubeletCertificateExpired', 'KubeletCrashLoop', 'NetworkUnavailable', 'KernelDeadlock', 'ReadonlyFilesystem', 'PodStartFailures', 'OldSystemd', 'CgroupDriverMismatch'])",messageExpression="'TuneGracePeriods may only be bound to PLEGUnhealthy or ControlPlaneDegraded, not to' + (self.causes.exists(c, c.cause == 'KubeletDown') ? ' KubeletDown' : \"\") + (self.causes.exists(c, c.cause == 'ContainerRuntimeDown') ? ' ContainerRuntimeDown' : \"\") + (self.causes.exists(c, c.cause == 'ContainerRuntimeHung') ? ' ContainerRuntimeHung' : \"\") + (self.causes.exists(c, c.cause == 'MemoryExhausted') ? ' MemoryExhausted' : \"\") + (self.causes.exists(c, c.cause == 'PIDExhausted') ? ' PIDExhausted' : \"\") + (self.causes.exists(c, c.cause == 'DiskPressure') ? ' DiskPressure' : \"\") + (self.causes.exists(c, c.cause == 'KubeletHung') ? ' KubeletHung' : \"\") + (self.causes.exists(c, c.cause == 'NodeUnreachable') ? ' NodeUnreachable' : \"\") + ' (a wider grace period only hides late heartbeats, it fixes no node)'",fieldPath=".causes",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="self.action.type != 'Cordon' || self.causes.all(c, c.cause in ['ClockSkew', 'KubeletCertificateExpired', 'KubeletCrashLoop', 'KubeletDown', 'ContainerRuntimeDown', 'ContainerRuntimeHung', 'MemoryExhausted', 'PIDExhausted', 'DiskPressure', 'PLEGUnhealthy', 'NetworkUnavailable', 'KubeletHung', 'NodeUnreachable', 'KernelDeadlock', 'ReadonlyFilesystem', 'PodStartFailures', 'OldSystemd', 'CgroupDriverMismatch'])",messageExpression="'Cordon may only be bound to ClockSkew, KubeletCertificateExpired, KubeletCrashLoop, KubeletDown, ContainerRuntimeDown, ContainerRuntimeHung, MemoryExhausted, PIDExhausted, DiskPressure, PLEGUnhealthy, NetworkUnavailable, KubeletHung, NodeUnreachable, KernelDeadlock, ReadonlyFilesystem, PodStartFailures, OldSystemd or CgroupDriverMismatch, not to' + (self.causes.exists(c, c.cause == 'FleetNodeFault') ? ' FleetNodeFault' : \"\") + (self.causes.exists(c, c.cause == 'ControlPlaneDegraded') ? ' ControlPlaneDegraded' : \"\") + ' (no one node is at fault, so cordoning nodes fixes nothing)'",fieldPath=".causes",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(self.action.restart) || self.action.type in ['RestartKubelet', 'RestartContainerRuntime']",message="action.restart is only valid for the restart actions",fieldPath=".action.restart"
// +kubebuilder:validation:XValidation:rule="!has(self.action.drain) || self.action.type == 'CordonDrain'",message="action.drain is only valid for CordonDrain",fieldPath=".action.drain"
// +kubebuilder:validation:XValidation:rule="!has(self.action.cordon) || self.action.type == 'Cordon'",message="action.cordon is only valid for Cordon",fieldPath=".action.cordon"
// +kubebuilder:validation:XValidation:rule="(self.action.type == 'TuneGracePeriods') == has(self.action.tuneGracePeriods)",message="action.tuneGracePeriods is required for TuneGracePeriods and only valid for it",fieldPath=".action"
// +kubebuilder:validation:XValidation:rule="self.action.type != 'TuneGracePeriods' || (has(self.includeControlPlane) && self.includeControlPlane)",message="includeControlPlane: TuneGracePeriods edits the controller-manager on control-plane nodes, so the policy must set includeControlPlane: true",fieldPath=".includeControlPlane"
type RemediationPolicySpec struct {
	// nodeSelector selects the nodes this policy covers by label. An empty or
	// absent selector covers every node. Control-plane nodes (labelled
	// node-role.kubernetes.io/control-plane) are covered only when
	// includeControlPlane is true, and a node labelled
	// nodeward.io/exclude=true is never covered. Admission checks
	// matchLabels keys, value lengths and operators; the policy's status
	// reports any other invalid label (Ready=False, reason
	// InvalidNodeSelector), and the policy then covers no node.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, !format.qualifiedName().validate(k).hasValue())",messageExpression="'key \"' + self.matchLabels.filter(k, format.qualifiedName().validate(k).hasValue())[0] + '\" is not a valid label key: a name of at most 63 letters, digits, -, _ or . (starting and ending with a letter or digit), optionally after a DNS subdomain prefix and /'",fieldPath=".matchLabels",reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, size(self.matchLabels[k]) <= 63)",messageExpression="'the value of key \"' + self.matchLabels.filter(k, size(self.matchLabels[k]) > 63)[0] + '\" is not a valid label value: it must be no more than 63 characters'",fieldPath=".matchLabels",reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="matchExpressions[].operator must be In, NotIn, Exists or DoesNotExist",fieldPath=".matchExpressions"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, (e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))",message="matchExpressions[].values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",fieldPath=".matchExpressions"
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

	// mode is Automatic (act), DryRun (record what would be done, touch
	// nothing) or RequireApproval (plan, then wait for a person to approve
	// or reject: kubectl nodeward approve|reject NAME --reason ...).
	// +optional
	// +kubebuilder:default=DryRun
	Mode Mode `json:"mode,omitempty"`

	// approvalTimeout is how long a RequireApproval record waits for a
	// decision before it ends Skipped with reason Expired. Default 1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('1m') && duration(self) <= duration('168h'))",message="must be between 1m and 168h"
	ApprovalTimeout *metav1.Duration `json:"approvalTimeout,omitempty"`

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

	// limits bound how much the policy may do, and how fast.
	// +optional
	Limits Limits `json:"limits,omitempty"`

	// stormBreaker stops every action of this policy while too many of its
	// nodes are unhealthy (nodes being remediated count as unhealthy).
	// +optional
	StormBreaker StormBreaker `json:"stormBreaker,omitempty"`

	// maintenanceWindows, when set, confine the policy's actions to these
	// windows; a remediation outside them waits, saying until when. A window
	// that can't be parsed allows nothing (fail closed).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	MaintenanceWindows []MaintenanceWindow `json:"maintenanceWindows,omitempty"`

	// retention bounds the history the policy's finished records make.
	// +optional
	Retention Retention `json:"retention,omitempty"`
}

// Retention bounds a policy's finished records (Succeeded, Failed, Skipped).
// The operator deletes the oldest beyond maxRecords and those older than
// maxAge, but never a record that the policy's limits still count (one that
// ended within max(24h, attemptWindow, maxPerPeriod.period)) nor the newest
// record of a node and cause, so deleting history never lets an action
// repeat.
type Retention struct {
	// maxRecords is how many finished records of the policy to keep, newest
	// first.
	// +optional
	// +kubebuilder:default=500
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxRecords int32 `json:"maxRecords,omitempty"`
	// maxAge deletes finished records that ended longer ago; absent keeps
	// them whatever their age.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('24h') && duration(self) <= duration('8760h'))",message="must be between 24h and 8760h"
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`
}

// Limits bound a policy's actions.
type Limits struct {
	// maxConcurrent is how many of the policy's remediations may run at once.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxConcurrent int32 `json:"maxConcurrent,omitempty"`

	// maxPerPeriod is how many remediations may start per period.
	// +optional
	MaxPerPeriod *RatePeriod `json:"maxPerPeriod,omitempty"`

	// nodeCooldown is how long after a remediation of a node ends before the
	// next may start on it; it doubles after each failed or repeated one, up
	// to 24h.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('0s') && duration(self) <= duration('24h'))",message="must be between 0s and 24h"
	NodeCooldown *metav1.Duration `json:"nodeCooldown,omitempty"`

	// maxAttempts is how many remediations of one cause on one node may run
	// within attemptWindow; when spent, the record says a person is needed.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	MaxAttempts int32 `json:"maxAttempts,omitempty"`

	// attemptWindow is the window of maxAttempts.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('1m') && duration(self) <= duration('720h'))",message="must be between 1m and 720h"
	AttemptWindow *metav1.Duration `json:"attemptWindow,omitempty"`
}

// RatePeriod is a count per period.
type RatePeriod struct {
	// count of remediations started per period.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	Count int32 `json:"count"`
	// period over which count applies.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('1m') && duration(self) <= duration('168h'))",message="must be between 1m and 168h"
	Period metav1.Duration `json:"period"`
}

// StormBreaker stops a policy when too many of its nodes are unhealthy.
type StormBreaker struct {
	// maxUnhealthy is the most unhealthy nodes (a count, or a percentage of
	// the nodes the policy covers, like "30%") at which the policy still acts.
	// +optional
	// +kubebuilder:default="30%"
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",message="must be a non-negative count or a percentage between 0% and 100%"
	MaxUnhealthy *intstr.IntOrString `json:"maxUnhealthy,omitempty"`
}

// MaintenanceWindow is a recurring window: it opens at each time the cron
// schedule names, in timeZone, and lasts duration.
type MaintenanceWindow struct {
	// schedule is a standard 5-field cron expression (minute hour
	// day-of-month month day-of-week), e.g. "0 2 * * 1-5", or a descriptor
	// naming a time of day: @yearly (or @annually), @monthly, @weekly,
	// @daily (or @midnight), @hourly. @every and @reboot are refused: a
	// window opens at a time of day, not after a delay from the operator's
	// start.
	// +required
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.startsWith('@') || self.matches('^[0-9*,/?LW#A-Za-z-]+( [0-9*,/?LW#A-Za-z-]+){4}$')",message="must be a 5-field cron expression (minute hour day-of-month month day-of-week, single spaces) such as \"0 2 * * 1-5\", or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('@') || self in ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']",messageExpression="self.startsWith('@every') ? '@every is refused: it repeats an interval counted from when the operator started, not a time of day; write a cron expression such as \"0 */6 * * *\"' : self == '@reboot' ? '@reboot is refused: a maintenance window needs a time of day, not the operator start' : 'unknown descriptor: use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, or a 5-field cron expression'"
	Schedule string `json:"schedule"`
	// duration the window stays open.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('1m') && duration(self) <= duration('168h'))",message="must be between 1m and 168h"
	Duration metav1.Duration `json:"duration"`
	// timeZone is an IANA time zone, e.g. "Europe/Berlin"; default UTC.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone,omitempty"`
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
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('0s') && duration(self) <= duration('24h'))",message="must be between 0s and 24h"
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

	// drain holds the parameters of CordonDrain.
	// +optional
	Drain *DrainParams `json:"drain,omitempty"`

	// tuneGracePeriods holds the parameters of TuneGracePeriods.
	// +optional
	TuneGracePeriods *TuneGracePeriodsParams `json:"tuneGracePeriods,omitempty"`

	// cordon holds the parameters of Cordon.
	// +optional
	Cordon *CordonParams `json:"cordon,omitempty"`
}

// CordonParams tune a cordon (the Cordon action: no drain).
type CordonParams struct {
	// uncordonAfter, when set, uncordons the node once it has been healthy
	// (Ready, no NodeDiagnosis) this long, if nodeward cordoned it and
	// nobody changed that since; absent, the node stays cordoned for a
	// person to uncordon, as with CordonDrain.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('0s') && duration(self) <= duration('24h'))",message="must be between 0s and 24h"
	UncordonAfter *metav1.Duration `json:"uncordonAfter,omitempty"`
}

// DrainParams tune a cordon and drain.
type DrainParams struct {
	// gracePeriod overrides the pods' termination grace period; absent uses
	// each pod's own.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('0s') && duration(self) <= duration('1h'))",message="must be between 0s and 1h"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
	// timeout of the drain; a drain blocked (e.g. by a PodDisruptionBudget)
	// this long fails, naming what blocked it. Pods are never force-deleted.
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('10s') && duration(self) <= duration('2h'))",message="must be between 10s and 2h"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// deleteEmptyDirData allows evicting pods with emptyDir volumes (their
	// data is lost).
	// +optional
	DeleteEmptyDirData bool `json:"deleteEmptyDirData,omitempty"`
	// uncordonAfter, when set, uncordons the node once it has been healthy
	// this long, if nodeward cordoned it and nobody changed that since.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('0s') && duration(self) <= duration('24h'))",message="must be between 0s and 24h"
	UncordonAfter *metav1.Duration `json:"uncordonAfter,omitempty"`
}

// TuneGracePeriodsParams bound a grace-period change.
// +kubebuilder:validation:XValidation:rule="!has(self.kubeletStatusUpdateFrequency) || !self.nodeMonitorGracePeriod.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || !self.kubeletStatusUpdateFrequency.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || duration(self.kubeletStatusUpdateFrequency) > duration('1m') || duration(self.nodeMonitorGracePeriod).getMilliseconds() >= 4 * duration(self.kubeletStatusUpdateFrequency).getMilliseconds()",message="nodeMonitorGracePeriod must stay at least 4 times kubeletStatusUpdateFrequency",fieldPath=".nodeMonitorGracePeriod"
type TuneGracePeriodsParams struct {
	// nodeMonitorGracePeriod is the controller-manager's
	// --node-monitor-grace-period to set (default 50s in v1.37).
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('40s') && duration(self) <= duration('5m'))",message="must be between 40s and 5m"
	NodeMonitorGracePeriod metav1.Duration `json:"nodeMonitorGracePeriod"`
	// kubeletStatusUpdateFrequency is the kubelet's nodeStatusUpdateFrequency
	// the grace period is checked against (default 10s).
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('1s') && duration(self) <= duration('1m'))",message="must be between 1s and 1m"
	KubeletStatusUpdateFrequency *metav1.Duration `json:"kubeletStatusUpdateFrequency,omitempty"`
}

// RestartParams tunes a unit restart.
type RestartParams struct {
	// recoveryTimeout is how long to wait, after the restart, for the node to
	// be Ready with a fresh Lease before the remediation fails.
	// +optional
	// +kubebuilder:default="2m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$')",message="must be a duration such as 90s, 10m or 1h30m (a number and a unit: h, m, s or ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$') || (duration(self) >= duration('10s') && duration(self) <= duration('30m'))",message="must be between 10s and 30m"
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

	// coveredNodes is how many nodes the policy covers; unhealthyNodes how
	// many of them are unhealthy or being remediated.
	// +optional
	CoveredNodes int32 `json:"coveredNodes,omitempty"`
	// +optional
	UnhealthyNodes int32 `json:"unhealthyNodes,omitempty"`

	// running, held and completed count the policy's records by state.
	// +optional
	Running int32 `json:"running,omitempty"`
	// +optional
	Held int32 `json:"held,omitempty"`
	// +optional
	Completed int32 `json:"completed,omitempty"`
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
