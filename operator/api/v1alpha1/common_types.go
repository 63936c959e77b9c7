package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Cause is a diagnosed reason why a node is unhealthy; CauseTable defines
// each (the Enum below is generated from it).
// +kubebuilder:validation:Enum=FleetNodeFault;ClockSkew;KubeletCertificateExpired;KubeletCrashLoop;KubeletDown;ContainerRuntimeDown;ContainerRuntimeHung;MemoryExhausted;PIDExhausted;DiskPressure;PLEGUnhealthy;NetworkUnavailable;ControlPlaneDegraded;KubeletHung;NodeUnreachable;KernelDeadlock;ReadonlyFilesystem;PodStartFailures;OldSystemd;CgroupDriverMismatch
type Cause string

const (
	// CauseKubeletDown: the kubelet unit is not active and the node's heartbeats
	// stopped, while the node agent is alive (seed 000).
	CauseKubeletDown Cause = "KubeletDown"
	// CauseKubeletHung: the kubelet unit is active but its heartbeats stopped,
	// on this node only, while the agent is alive and memory is fine.
	CauseKubeletHung Cause = "KubeletHung"
	// CauseMemoryExhausted: memory pressure, OOM kills (seed 001).
	CauseMemoryExhausted Cause = "MemoryExhausted"
	// CausePLEGUnhealthy: the kubelet reports PLEG is not healthy (seed 002).
	// Restarting the kubelet on PLEG caused reboot loops elsewhere: kept
	// apart from KubeletDown on purpose.
	CausePLEGUnhealthy Cause = "PLEGUnhealthy"
	// CauseControlPlaneDegraded: many nodes' heartbeats are late at once while
	// their agents and kubelets are fine (seed 003): the control plane is
	// overloaded, or those nodes are cut off from it (a partition, e.g. a
	// zone). A cluster cause: no node is at fault.
	CauseControlPlaneDegraded Cause = "ControlPlaneDegraded"
	// CauseContainerRuntimeDown: the container runtime is down (seed 004).
	CauseContainerRuntimeDown Cause = "ContainerRuntimeDown"
	// CauseNetworkUnavailable: the node's pod network is not ready (seeds 000, 004).
	CauseNetworkUnavailable Cause = "NetworkUnavailable"
	// CausePIDExhausted: PIDs are running out (seed 004).
	CausePIDExhausted Cause = "PIDExhausted"
	// CauseDiskPressure: disk space or inodes are running out (seeds 002, 004).
	CauseDiskPressure Cause = "DiskPressure"
	// CauseNodeUnreachable: node status and agent are both silent: the node
	// is down or cut off (seed 004).
	CauseNodeUnreachable Cause = "NodeUnreachable"
	// CauseOldSystemd (needs a person): systemd older than 219-67 has the D-Bus
	// cookie overflow that hangs runc and the kubelet (seed 004).
	CauseOldSystemd Cause = "OldSystemd"
	// CauseCgroupDriverMismatch (needs a person): the kubelet's and the runtime's
	// cgroup drivers differ (seed 004).
	CauseCgroupDriverMismatch Cause = "CgroupDriverMismatch"
	// CauseKernelDeadlock (needs a person): kernel hung tasks
	// (node-problem-detector's KernelDeadlock, or the kernel log).
	CauseKernelDeadlock Cause = "KernelDeadlock"
	// CauseReadonlyFilesystem (needs a person): a filesystem went read-only
	// or has I/O errors (node-problem-detector's ReadonlyFilesystem, the
	// kernel log, read-only errors in the journal or pod events).
	CauseReadonlyFilesystem Cause = "ReadonlyFilesystem"
	// CauseKubeletCrashLoop (needs a person): the kubelet exits with its own
	// fatal error at every start; restarting it repeats the exit.
	CauseKubeletCrashLoop Cause = "KubeletCrashLoop"
	// CauseKubeletCertificateExpired (needs a person): the kubelet's client
	// certificate or the cluster CA expired.
	CauseKubeletCertificateExpired Cause = "KubeletCertificateExpired"
	// CauseClockSkew (needs a person): the node's clock is wrong.
	CauseClockSkew Cause = "ClockSkew"
	// CauseContainerRuntimeHung: the runtime unit runs but its CRI socket
	// does not answer.
	CauseContainerRuntimeHung Cause = "ContainerRuntimeHung"
	// CausePodStartFailures (needs a person): the node is Ready but pods on
	// it fail to start.
	CausePodStartFailures Cause = "PodStartFailures"
	// CauseFleetNodeFault (needs a person, cluster-wide): the same node
	// fault on many nodes at once while their agents report on time.
	CauseFleetNodeFault Cause = "FleetNodeFault"
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
