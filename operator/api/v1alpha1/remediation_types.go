package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RemediationPhase is where a record is in its life.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Skipped
type RemediationPhase string

const (
	// PhasePending: created by the policy controller, not yet picked up.
	PhasePending RemediationPhase = "Pending"
	// PhaseRunning: the executor is carrying out the steps.
	PhaseRunning RemediationPhase = "Running"
	// PhaseSucceeded: every step succeeded and the node recovered.
	PhaseSucceeded RemediationPhase = "Succeeded"
	// PhaseFailed: a step failed or the node did not recover; see reason.
	PhaseFailed RemediationPhase = "Failed"
	// PhaseSkipped: nothing was done, on purpose; see reason (e.g. DryRun).
	PhaseSkipped RemediationPhase = "Skipped"
)

// IsTerminal reports whether the phase is final.
func (p RemediationPhase) IsTerminal() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseSkipped
}

// StepPhase is where one step is.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Skipped
type StepPhase string

const (
	StepPending   StepPhase = "Pending"
	StepRunning   StepPhase = "Running"
	StepSucceeded StepPhase = "Succeeded"
	StepFailed    StepPhase = "Failed"
	StepSkipped   StepPhase = "Skipped"
)

// Step names.
const (
	// StepRestartUnit hands a unit restart to the node agent.
	StepRestartUnit = "RestartUnit"
	// StepWaitForRecovery waits for Ready=True and a Lease renewed after the action.
	StepWaitForRecovery = "WaitForRecovery"
	// StepCordon marks the node unschedulable.
	StepCordon = "Cordon"
	// StepDrain evicts the node's pods.
	StepDrain = "Drain"
	// StepUncordon makes the node schedulable again after it was healthy for
	// the policy's uncordonAfter.
	StepUncordon = "Uncordon"
	// StepEditConfig hands a bounded config edit to the node agent.
	StepEditConfig = "EditConfig"
	// StepVerifyApplied checks that the value read back after an edit is the
	// one wanted.
	StepVerifyApplied = "VerifyApplied"
	// StepNotify records the cause and its evidence, says a person is
	// needed and tells the notifier; it touches nothing.
	StepNotify = "Notify"
)

// Remediation condition types and reasons.
const (
	// RemediationConditionSucceeded is True once the node recovered, False
	// once the record failed or was skipped.
	RemediationConditionSucceeded = "Succeeded"

	ReasonRecovered         = "Recovered"
	ReasonDryRun            = "DryRun"
	ReasonAgentTaskFailed   = "AgentTaskFailed"
	ReasonRecoveryTimeout   = "RecoveryTimeout"
	ReasonNodeGone          = "NodeGone"
	ReasonUnsupportedAction = "UnsupportedAction"
	ReasonInProgress        = "InProgress"
	// ReasonStepTimeout: a step kept failing (an API error, e.g. its
	// NodeTask could not be created) until its timeout, counted from the
	// step's start.
	ReasonStepTimeout = "StepTimeout"
	// ReasonNodeTaskVanished: the record's NodeTask was handed out and then
	// deleted; whether the action ran is unknown, and it is not repeated.
	ReasonNodeTaskVanished = "NodeTaskVanished"

	// Reasons a record waits (phase Pending) or ends without acting (Skipped).
	ReasonRateLimited        = "RateLimited"
	ReasonStormBreakerOpen   = "StormBreakerOpen"
	ReasonOutsideWindow      = "OutsideMaintenanceWindow"
	ReasonInvalidWindow      = "InvalidMaintenanceWindow"
	ReasonNodeCooldown       = "NodeCooldown"
	ReasonAttemptBudgetSpent = "AttemptBudgetSpent"
	ReasonHeldForPerson      = "HeldForPerson"
	ReasonLastControlPlane   = "LastHealthyControlPlaneNode"
	ReasonCauseGone          = "CauseGone"
	ReasonPolicyGone         = "PolicyGone"
	ReasonDrainBlocked       = "DrainBlocked"
	ReasonDrainFailed        = "DrainFailed"
	ReasonTuneFailed         = "TuneFailed"

	// Reasons of RequireApproval records.
	ReasonWaitingForApproval = "WaitingForApproval"
	ReasonRejected           = "Rejected"
	ReasonExpired            = "Expired"
)

// Reasons the executor refuses a record it can't trust (defence in depth
// behind admission: a record or status written by someone else never acts).
const (
	// ReasonUnsealed: the record does not carry the operator's seal over its
	// name and decision; it ends Skipped without acting.
	ReasonUnsealed = "Unsealed"
	// ReasonActionChanged: the record's action is not its policy's current
	// action; it ends Skipped without acting.
	ReasonActionChanged = "ActionChanged"
	// ReasonEpisodeEnded: the cause is diagnosed, but since another time than
	// the record's causeSince: the episode the record was decided for ended;
	// it ends Skipped without acting (the new episode gets its own record).
	ReasonEpisodeEnded = "EpisodeEnded"
	// ReasonStatusDiscarded: the record was found started without the
	// executor's start proof; that status was discarded and the record waits
	// again as not started, every gate (the approval too) run anew.
	ReasonStatusDiscarded = "StatusDiscarded"
	// ReasonStatusTampered: a record the executor did start was set back to
	// not started by someone else; it ends Failed rather than act twice.
	ReasonStatusTampered = "StatusTampered"

	// RemediationConditionStatusForged is True once the executor found and
	// discarded a status it had not written (ReasonStatusDiscarded).
	RemediationConditionStatusForged = "StatusForged"
)

// DefaultApprovalTimeout is how long a RequireApproval record waits for a
// decision when its policy does not say.
const DefaultApprovalTimeout = time.Hour

// Decision is a person's answer to a RequireApproval record.
// +kubebuilder:validation:Enum=Approved;Rejected
type Decision string

const (
	DecisionApproved Decision = "Approved"
	DecisionRejected Decision = "Rejected"
)

// Approval is a person's decision about a RequireApproval record. It is
// neither spec (the operator's decision, immutable) nor status (the
// executor's): people write it, once, through the main resource. Admission
// (config/admission/approval.yaml) accepts it only from a caller the
// authorizer grants the verb approve on remediations, only with decidedBy
// equal to the caller's username, and never changes it afterwards; the
// operator's webhook (config/webhook/approval_stamp.yaml) stamps decidedBy
// and decidedAt from the admission request.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="approval is immutable: a record is decided once"
type Approval struct {
	// decision is Approved or Rejected.
	// +required
	Decision Decision `json:"decision"`
	// reason says why, for the audit trail.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason"`
	// decidedBy is the username of the person who decided; admission
	// stamps it from the request, whatever the client sent (and refuses any
	// other value).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	DecidedBy string `json:"decidedBy"`
	// decidedAt is when the decision was made: the operator's admission
	// webhook stamps it with its own clock when the approval is written,
	// whatever the client sent (without that webhook deployed it is the
	// client's clock).
	// +required
	DecidedAt metav1.Time `json:"decidedAt"`
}

// Reasons a TuneGracePeriods record succeeds with (it fails with
// ReasonTuneFailed or ReasonAgentTaskFailed).
const (
	// ReasonTuned: the grace period was raised and read back.
	ReasonTuned = "Tuned"
	// ReasonAlreadyTuned: the grace period was already at least the wanted
	// value; nothing was edited (nodeward never lowers it).
	ReasonAlreadyTuned = "AlreadyTuned"
)

// Reasons a Cordon or Notify record succeeds with (a Cordon whose Uncordon
// step uncordoned the node ends Recovered).
const (
	// ReasonCordoned: the node was cordoned (or found cordoned) and is left
	// cordoned: nothing else was touched; a person is to look at it.
	ReasonCordoned = "Cordoned"
	// ReasonNotified: no action was taken on the node; the record names the
	// cause and its evidence, says a person is needed, and the notifier was
	// told.
	ReasonNotified = "Notified"
)

// Annotations people (or upgrade tooling) put on a Node.
const (
	// AnnotationMaintenance on a Node tells nodeward a person is working on
	// it: nodeward holds every remediation of the node.
	AnnotationMaintenance = "nodeward.io/maintenance"
	// AnnotationCordonedBy marks a cordon that nodeward made (the record's
	// name); nodeward uncordons only nodes that carry it.
	AnnotationCordonedBy = "nodeward.io/cordoned-by"
)

// Labels nodeward puts on its objects so they can be found without
// scanning. Their values are LabelValue(name): the name itself when it fits a
// label value (63 characters), else a readable prefix and a hash. The full
// names are in spec fields, which are what counts: select by label, then
// keep the objects whose field names the name.
const (
	// LabelNode on records, NodeTasks, NodeDiagnoses and NodeReports: the
	// node (full name: spec.nodeName of records and NodeTasks, the object's
	// name of NodeDiagnoses and NodeReports).
	LabelNode = "nodeward.io/node"
	// LabelPolicy on records: the policy that decided (full name:
	// spec.policy).
	LabelPolicy = "nodeward.io/policy"
	// LabelCause on records: the cause (full name: spec.cause).
	LabelCause = "nodeward.io/cause"
	// LabelRemediation on NodeTasks: the record the task serves (full
	// name: spec.remediation).
	LabelRemediation = "nodeward.io/remediation"
	// LabelExclude on a Node keeps every policy away from it.
	LabelExclude = "nodeward.io/exclude"
)

// RemediationSpec is the decision, fixed when the record is created.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: a remediation records a decision"
type RemediationSpec struct {
	// nodeName is the node the remediation is for.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName"`

	// cause is the diagnosed cause that matched.
	// +required
	Cause Cause `json:"cause"`

	// causeSince is when the cause was first diagnosed without a break.
	// +required
	CauseSince metav1.Time `json:"causeSince"`

	// evidence is the diagnosis' evidence for the cause when the decision was made.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Evidence []Evidence `json:"evidence,omitempty"`

	// policy names the RemediationPolicy that won.
	// +required
	// +kubebuilder:validation:MinLength=1
	Policy string `json:"policy"`

	// policyGeneration is the generation of that policy when it decided.
	// +required
	PolicyGeneration int64 `json:"policyGeneration"`

	// action is the policy's action, copied at decision time.
	// +required
	Action Action `json:"action"`

	// mode is the policy's mode, copied at decision time.
	// +required
	Mode Mode `json:"mode"`
}

// Step is one step of a remediation with its outcome.
type Step struct {
	// name of the step: RestartUnit, WaitForRecovery.
	// +required
	Name string `json:"name"`
	// phase of the step.
	// +required
	Phase StepPhase `json:"phase"`
	// description says what the step does (or, in DryRun, would do).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
	// message says how it went.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Message string `json:"message,omitempty"`
	// startedAt is when the step started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// completedAt is when the step ended.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// RemediationStatus is written by the executor only.
type RemediationStatus struct {
	// phase of the record.
	// +optional
	Phase RemediationPhase `json:"phase,omitempty"`
	// reason is a CamelCase word for why the record is in its phase.
	// +optional
	Reason string `json:"reason,omitempty"`
	// message says the same for a person.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`
	// steps are the planned steps, in order, each with its outcome.
	// +optional
	// +listType=atomic
	Steps []Step `json:"steps,omitempty"`
	// nodeTask names the NodeTask handed to the node agent, if any.
	// +optional
	NodeTask string `json:"nodeTask,omitempty"`
	// startedAt is when the executor started the first step.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// completedAt is when the record reached a terminal phase.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// startProof is the executor's proof that it started this record: an
	// HMAC-SHA256, with a key only the operator holds, over the record's
	// name, UID and startedAt, written together with phase Running. A record
	// found Running (or with a step under way) without a valid proof was not
	// started by the operator: the executor discards that status and runs
	// every gate again. It survives operator restarts, so a record the
	// operator did start is never gated or acted on twice.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	StartProof string `json:"startProof,omitempty"`
	// conditions: Succeeded, and StatusForged once a status the executor
	// had not written was discarded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// notBefore is when a held record may start at the earliest (a
	// maintenance window opening, a cooldown ending).
	// +optional
	NotBefore *metav1.Time `json:"notBefore,omitempty"`
	// attempt is this record's number among the node's remediations of the
	// same cause within the policy's attempt window.
	// +optional
	Attempt int32 `json:"attempt,omitempty"`
	// drain records a CordonDrain: whether nodeward cordoned the node, the
	// pods it evicted, and what blocked it. A Cordon records here too
	// (cordoned, uncordonedAt): the two share their Cordon and Uncordon
	// steps.
	// +optional
	Drain *DrainStatus `json:"drain,omitempty"`
	// tune records a TuneGracePeriods change, before and after.
	// +optional
	Tune *TuneStatus `json:"tune,omitempty"`
}

// DrainStatus is the outcome of a cordon and drain.
type DrainStatus struct {
	// cordoned is true when nodeward cordoned the node (it was schedulable
	// before); only then may nodeward uncordon it.
	// +optional
	Cordoned bool `json:"cordoned,omitempty"`
	// plannedPods are the pods the drain will evict (namespace/name).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=500
	PlannedPods []string `json:"plannedPods,omitempty"`
	// evictedPods are the pods evicted (namespace/name).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=500
	EvictedPods []string `json:"evictedPods,omitempty"`
	// pdbs are the PodDisruptionBudgets that cover the node's pods.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	PDBs []string `json:"pdbs,omitempty"`
	// blockedBy says what kept the drain from finishing (a PDB, by name).
	// +optional
	BlockedBy string `json:"blockedBy,omitempty"`
	// uncordonedAt is when nodeward uncordoned the node again.
	// +optional
	UncordonedAt *metav1.Time `json:"uncordonedAt,omitempty"`
	// plan is what the Drain step would do, worked out once when the record
	// was planned, so that a person deciding about it (RequireApproval) or
	// reading a DryRun record sees which pods would go and which budgets
	// cover them. It is a snapshot as of plan.observedAt: the drain lists
	// the node's pods again when it really starts (plannedPods).
	// +optional
	Plan *DrainPlan `json:"plan,omitempty"`
}

// DrainPlan is the Drain step worked out in advance with the drain's own
// rules (k8s.io/kubectl/pkg/drain with the drain's settings): the pods it
// would evict, the pods it would leave on the node and why, and the
// PodDisruptionBudgets that select the pods it would evict.
type DrainPlan struct {
	// observedAt is when the node's pods and the budgets were read.
	// +required
	ObservedAt metav1.Time `json:"observedAt"`
	// evict are the pods the drain would evict (namespace/name), sorted;
	// at most 100, evictCount counts them all.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Evict []string `json:"evict,omitempty"`
	// evictCount is how many pods the drain would evict.
	// +optional
	EvictCount int32 `json:"evictCount,omitempty"`
	// keep are the pods the drain would leave on the node, each with why
	// (a DaemonSet's pod, a mirror pod, a pod that stops the drain);
	// sorted, at most 100, keepCount counts them all. nodeward's own node
	// agent is never listed: it is not part of any drain.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Keep []KeptPod `json:"keep,omitempty"`
	// keepCount is how many pods the drain would leave on the node.
	// +optional
	KeepCount int32 `json:"keepCount,omitempty"`
	// pdbs are the PodDisruptionBudgets whose selectors match a pod to
	// evict, as they were at observedAt.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	PDBs []PlannedPDB `json:"pdbs,omitempty"`
	// blocked says why the drain would stop before evicting anything (a
	// pod no controller would recreate; emptyDir data while
	// deleteEmptyDirData is off); empty when nothing stops it.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Blocked string `json:"blocked,omitempty"`
	// error says why the plan could not be worked out (the pods or the
	// budgets could not be read); the other fields are then empty. It
	// does not stop the remediation: the drain reads them again.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Error string `json:"error,omitempty"`
}

// KeptPod is a pod a drain would leave on the node.
type KeptPod struct {
	// name is namespace/name.
	// +required
	// +kubebuilder:validation:MaxLength=317
	Name string `json:"name"`
	// reason says why it stays.
	// +required
	// +kubebuilder:validation:MaxLength=512
	Reason string `json:"reason"`
}

// PlannedPDB is a PodDisruptionBudget covering pods a drain would evict.
type PlannedPDB struct {
	// name is namespace/name.
	// +required
	// +kubebuilder:validation:MaxLength=317
	Name string `json:"name"`
	// budget is the budget's rule: "minAvailable 3" or "maxUnavailable 0".
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Budget string `json:"budget,omitempty"`
	// disruptionsAllowed is the budget's status.disruptionsAllowed: how
	// many of its pods may be evicted right now.
	// +required
	DisruptionsAllowed int32 `json:"disruptionsAllowed"`
	// pods is how many of the pods to evict it selects.
	// +required
	Pods int32 `json:"pods"`
}

// TuneStatus is the outcome of a grace-period change.
type TuneStatus struct {
	// node whose file was edited, and the file.
	// +optional
	Node string `json:"node,omitempty"`
	// +optional
	File string `json:"file,omitempty"`
	// key edited, e.g. --node-monitor-grace-period.
	// +optional
	Key string `json:"key,omitempty"`
	// before and after are the values.
	// +optional
	Before string `json:"before,omitempty"`
	// +optional
	After string `json:"after,omitempty"`
	// backup is the copy of the file taken on the node before the edit
	// (empty when nothing was edited); restoring it reverts the change.
	// +optional
	Backup string `json:"backup,omitempty"`
}

// Remediation is the record of one decision about one node: what was
// diagnosed, which policy matched, what was (or would have been) done, and how
// each step went. `kubectl get remediations` reads as the history.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=rem,categories=nodeward
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.approval) || has(self.approval)",message="approval can't be removed once decided"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Cause",type=string,JSONPath=`.spec.cause`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action.type`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Decision",type=string,JSONPath=`.approval.decision`,priority=1
// +kubebuilder:printcolumn:name="DecidedBy",type=string,JSONPath=`.approval.decidedBy`,priority=1
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.policy`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Remediation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RemediationSpec `json:"spec"`
	// approval is a person's decision about a RequireApproval record.
	// +optional
	Approval *Approval `json:"approval,omitempty"`
	// +optional
	Status RemediationStatus `json:"status,omitempty"`
}

// RemediationList is a list of Remediation.
// +kubebuilder:object:root=true
type RemediationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Remediation `json:"items"`
}

func init() { SchemeBuilder.Register(&Remediation{}, &RemediationList{}) }
