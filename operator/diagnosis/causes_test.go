package diagnosis

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// The strings below are what the components write, verbatim (Kubernetes
// v1.37 kubelet and kube-controller-manager, node-problem-detector's stock
// configurations), so the diagnosis is tested against what it will read.

// Ready=False messages of the kubelet (reason KubeletNotReady). The kubelet
// joins its runtime, network and storage errors with utilerrors.NewAggregate,
// which prints one error as is and several as "[a, b, c]".
const (
	msgRuntimeDown = "container runtime is down"
	msgPLEG        = "PLEG is not healthy: pleg was last seen active 3m0.1s ago; threshold is 3m0s"
	msgCNI         = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
)

// Written by the node lifecycle controller (kube-controller-manager) on
// Ready and on every other kubelet condition when the heartbeats stop.
const (
	msgStoppedPosting = "Kubelet stopped posting node status."
	msgNeverPosted    = "Kubelet never posted node status."
)

// The kubelet's pressure conditions, the route controller's network condition.
const (
	msgMemoryPressure = "kubelet has insufficient memory available"
	msgPIDPressure    = "kubelet has insufficient PID available"
	msgDiskPressure   = "kubelet has disk pressure"
	msgNoRoute        = "RouteController failed to create a route"
)

// The kubelet's SystemOOM Event on the Node, the kernel's OOM kill line, and
// the kubelet's log line when its cgroup driver does not match the runtime's.
const (
	msgSystemOOM  = "System OOM encountered, victim process: java, pid: 4242"
	kmsgOOMKill   = "Out of memory: Killed process 4242 (java) total-vm:8388608kB, anon-rss:7340032kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:14600kB oom_score_adj:1000"
	kubeletLogQOS = `E1125 11:58:01.123456    2871 kubelet.go:1703] "Failed to start ContainerManager" err="failed to initialise top level QOS containers: root container [kubepods] doesn't exist"`
)

// node-problem-detector: kernel-monitor.json, readonly-monitor.json (the
// matched kernel line), systemd-monitor-counter.json (log-counter's output),
// health-checker-kubelet.json and health-checker-containerd.json
// (health-checker's output).
const (
	msgDockerHung      = "kernel: INFO: task docker:20744 blocked for more than 120 seconds."
	msgReadOnly        = "EXT4-fs (sda1): Remounting filesystem read-only"
	msgFrequentRestart = "Found 5 matching logs, which meets the threshold of 5"
	msgKubeletUnwell   = "kubelet:kubelet was found unhealthy; repair flag : false"
	msgContainerdUnwel = "cri:containerd was found unhealthy; repair flag : true"
)

func cond(t corev1.NodeConditionType, status corev1.ConditionStatus, reason, message string, since time.Duration) corev1.NodeCondition {
	return corev1.NodeCondition{
		Type: t, Status: status, Reason: reason, Message: message,
		LastHeartbeatTime:  metav1.NewTime(ago(since)),
		LastTransitionTime: metav1.NewTime(ago(since)),
	}
}

// notReady is Ready=False as the kubelet writes it, its errors joined.
func notReady(errs ...string) corev1.NodeCondition {
	msg := errs[0]
	if len(errs) > 1 {
		msg = "[" + strings.Join(errs, ", ") + "]"
	}
	return ready(corev1.ConditionFalse, "KubeletNotReady", msg, 4*time.Minute)
}

// Conditions as the node lifecycle controller leaves them when the kubelet
// stops posting: every kubelet condition Unknown with the same reason.
var (
	neverPosted     = ready(corev1.ConditionUnknown, "NodeStatusNeverUpdated", msgNeverPosted, 40*time.Second)
	memoryUnknown   = cond(corev1.NodeMemoryPressure, corev1.ConditionUnknown, "NodeStatusUnknown", msgStoppedPosting, 30*time.Second)
	memoryPressure  = cond(corev1.NodeMemoryPressure, corev1.ConditionTrue, "KubeletHasInsufficientMemory", msgMemoryPressure, 2*time.Minute)
	pidPressure     = cond(corev1.NodePIDPressure, corev1.ConditionTrue, "KubeletHasInsufficientPID", msgPIDPressure, 2*time.Minute)
	diskPressureC   = cond(corev1.NodeDiskPressure, corev1.ConditionTrue, "KubeletHasDiskPressure", msgDiskPressure, 2*time.Minute)
	noRoute         = cond(corev1.NodeNetworkUnavailable, corev1.ConditionTrue, "NoRouteCreated", msgNoRoute, 5*time.Minute)
	kernelDeadlockC = cond("KernelDeadlock", corev1.ConditionTrue, "DockerHung", msgDockerHung, 10*time.Minute)
	readonlyFS      = cond("ReadonlyFilesystem", corev1.ConditionTrue, "FilesystemIsReadOnly", msgReadOnly, 10*time.Minute)
	frequentKubelet = cond("FrequentKubeletRestart", corev1.ConditionTrue, "FrequentKubeletRestart", msgFrequentRestart, 5*time.Minute)
	frequentCtrd    = cond("FrequentContainerdRestart", corev1.ConditionTrue, "FrequentContainerdRestart", msgFrequentRestart, 5*time.Minute)
	kubeletUnwell   = cond("KubeletUnhealthy", corev1.ConditionTrue, "KubeletUnhealthy", msgKubeletUnwell, 3*time.Minute)
	runtimeUnwell   = cond("ContainerRuntimeUnhealthy", corev1.ConditionTrue, "ContainerdUnhealthy", msgContainerdUnwel, 3*time.Minute)
)

var runtimeInactive = unit(v1alpha1.UnitContainerRuntime, "containerd.service", "inactive", "dead", "enabled")

// withProbes adds the agent's measurements to a report.
func withProbes(r *v1alpha1.NodeReport, p v1alpha1.NodeProbes) *v1alpha1.NodeReport {
	r.Status.Probes = &p
	return r
}

// Probes as the agent takes them.
const memTotal = 16 << 30

func memExhausted() *v1alpha1.MemoryProbe {
	// MemAvailable 0.3% of MemTotal, the OOM killer fired a minute ago.
	return &v1alpha1.MemoryProbe{TotalBytes: memTotal, AvailableBytes: memTotal * 3 / 1000, OOMKills: 7,
		LastOOMKill: &metav1.Time{Time: ago(time.Minute)}}
}

func memFine() *v1alpha1.MemoryProbe {
	return &v1alpha1.MemoryProbe{TotalBytes: memTotal, AvailableBytes: memTotal / 2}
}

func oomKernelLine() v1alpha1.LogLine {
	return v1alpha1.LogLine{Time: &metav1.Time{Time: ago(time.Minute)}, Source: "kernel", Text: kmsgOOMKill}
}

func qosLogLine() v1alpha1.LogLine {
	return v1alpha1.LogLine{Time: &metav1.Time{Time: ago(2 * time.Minute)}, Source: "kubelet", Text: kubeletLogQOS}
}

// Seed 004's count, ps -eTf | wc -l against kernel.pid_max.
func pidsExhausted() *v1alpha1.PIDProbe {
	return &v1alpha1.PIDProbe{Threads: 4190000, PIDMax: 4194304, Zombies: 12}
}

func pidsFine() *v1alpha1.PIDProbe { return &v1alpha1.PIDProbe{Threads: 1800, PIDMax: 4194304} }

// diskFullProbe: /var/lib/kubelet 2% free, inodes 1% free.
func diskFullProbe() v1alpha1.DiskProbe {
	return v1alpha1.DiskProbe{Path: "/var/lib/kubelet", TotalBytes: 100 << 30, FreeBytes: 2 << 30, TotalInodes: 6553600, FreeInodes: 65536}
}

// inodesFull: plenty of space, inodes 1% free.
func inodesFull() v1alpha1.DiskProbe {
	return v1alpha1.DiskProbe{Path: "/var/lib/kubelet", TotalBytes: 100 << 30, FreeBytes: 60 << 30, TotalInodes: 6553600, FreeInodes: 65536}
}

// systemOOM is the kubelet's Event on the Node for a system OOM kill.
func systemOOM(lastAgo time.Duration) corev1.Event {
	return corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: nodeName + ".187b4c2f9e0a1b2c"},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: nodeName, UID: nodeName},
		Reason:         EventReasonSystemOOM, Message: msgSystemOOM, Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kubelet", Host: nodeName},
		FirstTimestamp: metav1.NewTime(ago(lastAgo + 2*time.Minute)), LastTimestamp: metav1.NewTime(ago(lastAgo)), Count: 3,
	}
}

// wantCause is one expected cause: its name, a substring of its first piece
// of evidence (the original message it quotes) and, optionally, substrings
// that must each appear in some piece of its evidence.
type wantCause struct {
	cause v1alpha1.Cause
	first string
	also  []string
}

func TestDiagnoseCauses(t *testing.T) {
	th := DefaultThresholds() // Lease stale after 20s, agent silent after 3 × 1m
	notDegraded := ClusterState{Late: 1, Total: 9}
	degraded := ClusterState{Degraded: true, Late: 3, Total: 9, Since: ago(time.Minute)}

	tests := []struct {
		name      string
		in        Input
		want      []wantCause // the ranked causes, exactly
		unhealthy bool
		// summaryPrefix, when set, is how the summary must start.
		summaryPrefix string
	}{
		// --- KubeletDown (seed 000) ---------------------------------------
		{
			// Seed 000: kubelet inactive and disabled after a reboot, Lease stale, Ready Unknown, agent alive → KubeletDown alone, quoting the unit.
			name: "seed 000: kubelet not running",
			in: Input{Node: node(statusUnknown, memoryUnknown), Lease: lease(90 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletDisabled, runtimeActive)},
			want: []wantCause{{v1alpha1.CauseKubeletDown, "kubelet.service is inactive (dead), disabled", []string{
				"Lease not renewed for 1m30s", "Ready=Unknown, reason NodeStatusUnknown: " + msgStoppedPosting, "will not start at boot"}}},
			unhealthy: true,
		},
		{
			// A crash-looping kubelet that node-problem-detector also flags (FrequentKubeletRestart, KubeletUnhealthy) → KubeletDown with NPD's messages as evidence.
			name: "kubelet failed, NPD FrequentKubeletRestart and KubeletUnhealthy",
			in: Input{Node: node(statusUnknown, frequentKubelet, kubeletUnwell), Lease: lease(time.Minute), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletFailed, runtimeActive)},
			want: []wantCause{{v1alpha1.CauseKubeletDown, "kubelet.service is failed (failed), enabled", []string{
				"FrequentKubeletRestart=True, reason FrequentKubeletRestart: " + msgFrequentRestart,
				"KubeletUnhealthy=True, reason KubeletUnhealthy: " + msgKubeletUnwell}}},
			unhealthy: true,
		},
		{
			// NPD says the kubelet is unhealthy but it runs, renews its Lease and the node is Ready → no cause (NPD's kubelet conditions only support KubeletDown).
			name: "NPD KubeletUnhealthy alone",
			in: Input{Node: node(readyTrue, kubeletUnwell), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want:      nil,
			unhealthy: false,
		},
		{
			// The kubelet registered the Node and died before its first status: the lifecycle controller says NodeStatusNeverUpdated, there is no Lease, the agent says the kubelet failed → KubeletDown.
			name: "kubelet never posted status, no Lease",
			in: Input{Node: node(neverPosted), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletFailed, runtimeActive)},
			want: []wantCause{{v1alpha1.CauseKubeletDown, "kubelet.service is failed (failed)", []string{
				"Ready=Unknown, reason NodeStatusNeverUpdated: " + msgNeverPosted}}},
			unhealthy: true,
		},

		// --- KubeletHung --------------------------------------------------
		{
			// Kubelet unit active, Lease 90s stale, the agent reported after the last renewal, 1 of 9 nodes late → KubeletHung, quoting the unit.
			name: "kubelet hung",
			in: Input{Node: node(statusUnknown), Lease: lease(90 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want: []wantCause{{v1alpha1.CauseKubeletHung, "kubelet.service is active (running), enabled", []string{
				"Lease not renewed for 1m30s", "the node agent reported 1m20s after the last heartbeat", "only 1 of 9 nodes' heartbeats are late"}}},
			unhealthy: true,
		},
		{
			// Kubelet active, Lease stale, but the agent's last report predates the last renewal → no cause yet (wait for the agent's next word).
			name: "kubelet active, agent report older than the last renewal",
			in: Input{Node: node(statusUnknown), Lease: lease(30 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(50*time.Second, kubeletActive, runtimeActive)},
			want:          nil,
			unhealthy:     true,
			summaryPrefix: "cause unknown",
		},

		// --- MemoryExhausted (seed 001) -----------------------------------
		{
			// Seed 001: MemoryPressure=True, a SystemOOM Event, MemAvailable 0.3%, an OOM kill in the kernel log; Ready still True → MemoryExhausted, quoting MemoryPressure.
			name: "seed 001: memory exhausted",
			in: Input{Node: node(readyTrue, memoryPressure), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Events: []corev1.Event{systemOOM(time.Minute)},
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{
					Memory: memExhausted(), KernelLog: []v1alpha1.LogLine{oomKernelLine()}})},
			want: []wantCause{{v1alpha1.CauseMemoryExhausted, "MemoryPressure=True, reason KubeletHasInsufficientMemory: " + msgMemoryPressure, []string{
				"Event SystemOOM (x3): " + msgSystemOOM, "MemAvailable 49Mi of 16.0Gi (0.3%)", "the kernel's OOM killer has fired (oom_kill counter 7, last 1m0s ago)", "kernel: " + kmsgOOMKill}}},
			unhealthy: true,
		},
		{
			// Seed 001, later: the starved kubelet stopped posting (Ready and MemoryPressure Unknown, Lease stale) while the agent sees memory exhausted → MemoryExhausted, quoting the SystemOOM Event, and never KubeletHung.
			name: "seed 001: kubelet starved, Ready Unknown",
			in: Input{Node: node(statusUnknown, memoryUnknown), Lease: lease(2 * time.Minute), Cluster: notDegraded, Now: now,
				Events: []corev1.Event{systemOOM(90 * time.Second)},
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{
					Memory: memExhausted(), KernelLog: []v1alpha1.LogLine{oomKernelLine()}})},
			want: []wantCause{{v1alpha1.CauseMemoryExhausted, "Event SystemOOM (x3): " + msgSystemOOM, []string{
				"MemAvailable 49Mi of 16.0Gi (0.3%)", "the kubelet is starved, not dead", "Lease not renewed for 2m0s"}}},
			unhealthy: true,
		},
		{
			// Only the agent saw it: MemAvailable 0.3% and the kernel's OOM kill, no condition or Event yet → MemoryExhausted, quoting MemAvailable.
			name: "memory exhausted from probes alone",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{
					Memory: memExhausted(), KernelLog: []v1alpha1.LogLine{oomKernelLine()}})},
			want:      []wantCause{{v1alpha1.CauseMemoryExhausted, "MemAvailable 49Mi of 16.0Gi (0.3%)", []string{"kernel: " + kmsgOOMKill}}},
			unhealthy: true,
		},
		{
			// A SystemOOM Event 20 minutes old (past RecentOOM) and memory fine now → no cause.
			name: "old SystemOOM, memory fine",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Events: []corev1.Event{systemOOM(20 * time.Minute)},
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{Memory: memFine()})},
			want:      nil,
			unhealthy: false,
		},

		// --- PLEGUnhealthy (seed 002) -------------------------------------
		{
			// Seed 002: Ready=False "PLEG is not healthy", the kubelet runs and renews its Lease → PLEGUnhealthy, never KubeletDown or KubeletHung.
			name: "seed 002: PLEG unhealthy",
			in: Input{Node: node(notReady(msgPLEG)), Lease: lease(2 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want: []wantCause{{v1alpha1.CausePLEGUnhealthy, "Ready=False, reason KubeletNotReady: " + msgPLEG, []string{
				"restarting it does not fix PLEG"}}},
			unhealthy: true,
		},
		{
			// Seed 002 with the Lease gone stale too (the kubelet is wedged on the runtime) → still PLEGUnhealthy alone, no KubeletHung.
			name: "seed 002: PLEG unhealthy, Lease stale",
			in: Input{Node: node(notReady(msgPLEG)), Lease: lease(time.Minute), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want:      []wantCause{{v1alpha1.CausePLEGUnhealthy, "Ready=False, reason KubeletNotReady: " + msgPLEG, nil}},
			unhealthy: true,
		},
		{
			// Seed 002 with the disk filling up as well (DiskPressure and the probe) → DiskPressure ranked before PLEGUnhealthy.
			name: "seed 002: PLEG unhealthy and disk pressure",
			in: Input{Node: node(notReady(msgPLEG), diskPressureC), Lease: lease(2 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{Disks: []v1alpha1.DiskProbe{diskFullProbe()}})},
			want: []wantCause{
				{v1alpha1.CauseDiskPressure, "DiskPressure=True, reason KubeletHasDiskPressure: " + msgDiskPressure, nil},
				{v1alpha1.CausePLEGUnhealthy, "Ready=False, reason KubeletNotReady: " + msgPLEG, nil},
			},
			unhealthy: true,
		},

		// --- ControlPlaneDegraded (seed 003) ------------------------------
		{
			// Seed 003: 3 of 9 nodes late at once; this one's kubelet is active and its agent alive → ControlPlaneDegraded and no node-level cause (no KubeletHung).
			name: "seed 003: control plane degraded, kubelet active",
			in: Input{Node: node(statusUnknown), Lease: lease(time.Minute), Cluster: degraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want: []wantCause{{v1alpha1.CauseControlPlaneDegraded, "3 of 9 nodes' heartbeats are late at once: not this node's fault but an overloaded control plane (etcd, apiserver) or a partition cutting these nodes off from it (e.g. a zone)", []string{
				"Lease not renewed for 1m0s", "kubelet.service is active (running), enabled since 2026-11-25T11:58:00Z and the agent is alive"}}},
			unhealthy: true,
		},
		{
			// Seed 003, agent silent as well (it writes through the same slow apiserver) → ControlPlaneDegraded, not NodeUnreachable.
			name: "seed 003: control plane degraded, agent silent",
			in: Input{Node: node(statusUnknown), Lease: lease(5 * time.Minute), Cluster: degraded, Now: now,
				Report: report(4*time.Minute, kubeletActive, runtimeActive)},
			want:      []wantCause{{v1alpha1.CauseControlPlaneDegraded, "3 of 9 nodes' heartbeats are late at once", nil}},
			unhealthy: true,
		},
		{
			// A dead kubelet in a degraded cluster is still this node's fault → KubeletDown, and no ControlPlaneDegraded.
			name: "seed 003: kubelet down in a degraded cluster",
			in: Input{Node: node(statusUnknown), Lease: lease(time.Minute), Cluster: degraded, Now: now,
				Report: report(10*time.Second, kubeletFailed, runtimeActive)},
			want:      []wantCause{{v1alpha1.CauseKubeletDown, "kubelet.service is failed (failed), enabled", nil}},
			unhealthy: true,
		},

		// --- ContainerRuntimeDown -----------------------------------------
		{
			// containerd inactive per the agent, the kubelet has not noticed yet (Ready True, Lease fresh) → ContainerRuntimeDown, quoting the unit.
			name: "runtime unit inactive",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeInactive)},
			want:      []wantCause{{v1alpha1.CauseContainerRuntimeDown, "containerd.service is inactive (dead), enabled", nil}},
			unhealthy: true,
		},
		{
			// Only the kubelet's Ready=False "container runtime is down", no agent installed → ContainerRuntimeDown, quoting Ready.
			// The kubelet's "container runtime is down" alone, no agent: issue 12
			// — runtime-down only when its unit or a CRI call agrees. No cause;
			// the node is unhealthy (Ready=False) with its cause unknown.
			name:      "runtime down from the Ready message alone",
			in:        Input{Node: node(notReady(msgRuntimeDown)), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now},
			want:      nil,
			unhealthy: true,
		},
		{
			// Only node-problem-detector's ContainerRuntimeUnhealthy, no agent, Ready still True → no cause: nothing on the node agrees.
			name:      "runtime down from NPD ContainerRuntimeUnhealthy alone",
			in:        Input{Node: node(readyTrue, runtimeUnwell), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now},
			want:      nil,
			unhealthy: false,
		},
		{
			// NPD FrequentContainerdRestart while the agent sees containerd active right now → no cause: the runtime runs (a restart would not help).
			name: "runtime restarting frequently",
			in: Input{Node: node(readyTrue, frequentCtrd), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want:      nil,
			unhealthy: false,
		},
		{
			// The kubelet's real message once containerd has been down 3 minutes: "[container runtime is down, PLEG is not healthy: …]", containerd failed → ContainerRuntimeDown first, PLEGUnhealthy after it.
			name: "runtime down, kubelet joins runtime and PLEG errors",
			in: Input{Node: node(notReady(msgRuntimeDown, msgPLEG)), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeFailed)},
			want: []wantCause{
				{v1alpha1.CauseContainerRuntimeDown, "containerd.service is failed (failed), enabled", []string{
					"Ready=False, reason KubeletNotReady: [" + msgRuntimeDown + ", " + msgPLEG + "]"}},
				{v1alpha1.CausePLEGUnhealthy, "Ready=False, reason KubeletNotReady: [" + msgRuntimeDown + ", " + msgPLEG + "]", nil},
			},
			unhealthy: true,
		},

		// --- NetworkUnavailable -------------------------------------------
		{
			// Both signals: the kubelet's "cni plugin not initialized" and the route controller's NetworkUnavailable=True → NetworkUnavailable, quoting Ready first.
			name: "network unavailable, both signals",
			in: Input{Node: node(notReady(msgCNI), noRoute), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want: []wantCause{{v1alpha1.CauseNetworkUnavailable, "Ready=False, reason KubeletNotReady: " + msgCNI, []string{
				"NetworkUnavailable=True, reason NoRouteCreated: " + msgNoRoute}}},
			unhealthy: true,
		},
		{
			// Only NetworkUnavailable=True NoRouteCreated, Ready True → NetworkUnavailable, quoting the route controller.
			name: "network unavailable, route only",
			in: Input{Node: node(readyTrue, noRoute), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want:      []wantCause{{v1alpha1.CauseNetworkUnavailable, "NetworkUnavailable=True, reason NoRouteCreated: " + msgNoRoute, nil}},
			unhealthy: true,
		},
		{
			// All three kubelet errors joined → ContainerRuntimeDown, PLEGUnhealthy, NetworkUnavailable, in that order.
			name: "runtime, PLEG and network errors joined",
			in: Input{Node: node(notReady(msgRuntimeDown, msgPLEG, msgCNI)), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeFailed)},
			want: []wantCause{
				{v1alpha1.CauseContainerRuntimeDown, "containerd.service is failed (failed)", nil},
				{v1alpha1.CausePLEGUnhealthy, msgPLEG, nil},
				{v1alpha1.CauseNetworkUnavailable, msgCNI, nil},
			},
			unhealthy: true,
		},

		// --- PIDExhausted -------------------------------------------------
		{
			// PIDPressure=True KubeletHasInsufficientPID and 4190000 threads of pid_max 4194304 → PIDExhausted, quoting the condition.
			name: "PID exhaustion, condition and probe",
			in: Input{Node: node(readyTrue, pidPressure), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{PIDs: pidsExhausted()})},
			want: []wantCause{{v1alpha1.CausePIDExhausted, "PIDPressure=True, reason KubeletHasInsufficientPID: " + msgPIDPressure, []string{
				"4190000 threads of pid_max 4194304 (100%; ps -eTf | wc -l)"}}},
			unhealthy: true,
		},
		{
			// Seed 004: only the agent's thread count, 4190000 of pid_max 4194304, Ready True → PIDExhausted, quoting the count.
			name: "PID exhaustion, probe only",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{PIDs: pidsExhausted()})},
			want:      []wantCause{{v1alpha1.CausePIDExhausted, "4190000 threads of pid_max 4194304 (100%; ps -eTf | wc -l)", nil}},
			unhealthy: true,
		},
		{
			// PIDPressure=True with no agent → PIDExhausted, quoting the condition.
			name:      "PID exhaustion, condition only",
			in:        Input{Node: node(readyTrue, pidPressure), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now},
			want:      []wantCause{{v1alpha1.CausePIDExhausted, "PIDPressure=True, reason KubeletHasInsufficientPID: " + msgPIDPressure, nil}},
			unhealthy: true,
		},

		// --- DiskPressure -------------------------------------------------
		{
			// DiskPressure=True, /var/lib/kubelet 2% free and 1% of inodes → DiskPressure, quoting the condition, with df -h and df -i.
			name: "disk pressure, condition and probes",
			in: Input{Node: node(readyTrue, diskPressureC), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{Disks: []v1alpha1.DiskProbe{diskFullProbe()}})},
			want: []wantCause{{v1alpha1.CauseDiskPressure, "DiskPressure=True, reason KubeletHasDiskPressure: " + msgDiskPressure, []string{
				"/var/lib/kubelet: 2.0Gi free of 100.0Gi (df -h)", "/var/lib/kubelet: 65536 inodes free of 6553600 (df -i)"}}},
			unhealthy: true,
		},
		{
			// Inodes 1% free with plenty of space, before the kubelet's eviction threshold → DiskPressure, quoting df -i.
			name: "inode pressure, probe only",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{Disks: []v1alpha1.DiskProbe{inodesFull()}})},
			want:      []wantCause{{v1alpha1.CauseDiskPressure, "/var/lib/kubelet: 65536 inodes free of 6553600 (df -i)", nil}},
			unhealthy: true,
		},

		// --- NodeUnreachable ----------------------------------------------
		{
			// Lease 5m stale, the agent's last report 4m old (silent after 3m), 1 of 9 late → NodeUnreachable, quoting the Lease.
			name: "node unreachable",
			in: Input{Node: node(statusUnknown, memoryUnknown), Lease: lease(5 * time.Minute), Cluster: notDegraded, Now: now,
				Report: report(4*time.Minute, kubeletActive, runtimeActive)},
			want: []wantCause{{v1alpha1.CauseNodeUnreachable, "Lease not renewed for 5m0s", []string{
				"Ready=Unknown, reason NodeStatusUnknown: " + msgStoppedPosting, "the node agent is silent too (last report 4m0s ago)"}}},
			unhealthy: true,
		},

		// --- advisory causes ----------------------------------------------
		{
			// NPD KernelDeadlock DockerHung on a Ready node → KernelDeadlock, quoting the kernel line; unhealthy although advisory.
			name: "NPD kernel deadlock",
			in: Input{Node: node(readyTrue, kernelDeadlockC), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want:      []wantCause{{v1alpha1.CauseKernelDeadlock, "KernelDeadlock=True, reason DockerHung: " + msgDockerHung, []string{"node-problem-detector"}}},
			unhealthy: true,
		},
		{
			// NPD ReadonlyFilesystem on a Ready node → ReadonlyFilesystem, quoting the kernel line; unhealthy although advisory.
			name: "NPD read-only filesystem",
			in: Input{Node: node(readyTrue, readonlyFS), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want:      []wantCause{{v1alpha1.CauseReadonlyFilesystem, "ReadonlyFilesystem=True, reason FilesystemIsReadOnly: " + msgReadOnly, nil}},
			unhealthy: true,
		},
		{
			// systemd 219-57.el7 on an otherwise healthy node → no cause (OldSystemd is only said about a node in trouble), healthy.
			name: "old systemd on a healthy node",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{SystemdVersion: "219-57.el7", PIDs: pidsFine()})},
			want:          nil,
			unhealthy:     false,
			summaryPrefix: "healthy",
		},
		{
			// Seed 004: PLEG unhealthy on systemd 219-57.el7 → PLEGUnhealthy, then the advisory OldSystemd.
			name: "seed 004: PLEG unhealthy on old systemd",
			in: Input{Node: node(notReady(msgPLEG)), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{SystemdVersion: "219-57.el7"})},
			want: []wantCause{
				{v1alpha1.CausePLEGUnhealthy, msgPLEG, nil},
				{v1alpha1.CauseOldSystemd, "systemd 219-57.el7 is older than 219-67", nil},
			},
			unhealthy: true,
		},
		{
			// PLEG unhealthy on systemd 219-78.el7_9 (fixed) → PLEGUnhealthy alone.
			name: "PLEG unhealthy on fixed systemd 219-78.el7_9",
			in: Input{Node: node(notReady(msgPLEG)), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{SystemdVersion: "219-78.el7_9"})},
			want:      []wantCause{{v1alpha1.CausePLEGUnhealthy, msgPLEG, nil}},
			unhealthy: true,
		},
		{
			// PLEG unhealthy on systemd 252 → PLEGUnhealthy alone.
			name: "PLEG unhealthy on systemd 252",
			in: Input{Node: node(notReady(msgPLEG)), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{SystemdVersion: "252"})},
			want:      []wantCause{{v1alpha1.CausePLEGUnhealthy, msgPLEG, nil}},
			unhealthy: true,
		},
		{
			// Not Ready for no known reason (Ready Unknown, no other cause) on systemd 219-57.el7 → OldSystemd alone.
			name: "old systemd on a node that is not Ready",
			in: Input{Node: node(statusUnknown), Lease: lease(30 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(50*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{SystemdVersion: "219-57.el7"})},
			want:      []wantCause{{v1alpha1.CauseOldSystemd, "systemd 219-57.el7 is older than 219-67", nil}},
			unhealthy: true,
		},
		{
			// Seed 004: the kubelet fails at start with "failed to initialise top level QOS containers" → KubeletDown, then the advisory CgroupDriverMismatch quoting the kubelet's line.
			name: "seed 004: kubelet down on a cgroup driver mismatch",
			in: Input{Node: node(statusUnknown), Lease: lease(2 * time.Minute), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletFailed, runtimeActive), v1alpha1.NodeProbes{KernelLog: []v1alpha1.LogLine{qosLogLine()}})},
			want: []wantCause{
				{v1alpha1.CauseKubeletDown, "kubelet.service is failed (failed)", nil},
				{v1alpha1.CauseCgroupDriverMismatch, "kubelet: " + kubeletLogQOS, []string{"cgroupDriver must match"}},
			},
			unhealthy: true,
		},
		{
			// The kubelet's QOS line on a Ready node → CgroupDriverMismatch alone, advisory: not unhealthy.
			name: "cgroup driver mismatch on a Ready node",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: withProbes(report(10*time.Second, kubeletActive, runtimeActive), v1alpha1.NodeProbes{KernelLog: []v1alpha1.LogLine{qosLogLine()}})},
			want:      []wantCause{{v1alpha1.CauseCgroupDriverMismatch, "kubelet: " + kubeletLogQOS, nil}},
			unhealthy: false,
		},

		// --- everything at once: the ranking --------------------------------
		{
			// Every node-level signal at once → all eleven node causes in rule order; ControlPlaneDegraded, KubeletHung and NodeUnreachable stay out because KubeletDown explains the heartbeats.
			name: "every signal at once",
			in: Input{
				Node: node(notReady(msgRuntimeDown, msgPLEG, msgCNI), memoryPressure, pidPressure, diskPressureC, noRoute,
					kernelDeadlockC, readonlyFS, frequentKubelet, frequentCtrd, kubeletUnwell, runtimeUnwell),
				Lease: lease(2 * time.Minute), Cluster: degraded, Now: now,
				Events: []corev1.Event{systemOOM(time.Minute)},
				Report: withProbes(report(10*time.Second, kubeletFailed, runtimeFailed), v1alpha1.NodeProbes{
					Memory: memExhausted(), PIDs: pidsExhausted(), Disks: []v1alpha1.DiskProbe{diskFullProbe()},
					SystemdVersion: "219-57.el7", KernelLog: []v1alpha1.LogLine{oomKernelLine(), qosLogLine()}}),
			},
			want: []wantCause{
				{v1alpha1.CauseKubeletDown, "kubelet.service is failed (failed)", []string{msgFrequentRestart, msgKubeletUnwell}},
				{v1alpha1.CauseContainerRuntimeDown, "containerd.service is failed (failed)", []string{msgContainerdUnwel}},
				{v1alpha1.CauseMemoryExhausted, msgMemoryPressure, []string{msgSystemOOM, kmsgOOMKill}},
				{v1alpha1.CausePIDExhausted, msgPIDPressure, nil},
				{v1alpha1.CauseDiskPressure, msgDiskPressure, nil},
				{v1alpha1.CausePLEGUnhealthy, msgPLEG, nil},
				{v1alpha1.CauseNetworkUnavailable, msgCNI, []string{msgNoRoute}},
				{v1alpha1.CauseKernelDeadlock, msgDockerHung, nil},
				{v1alpha1.CauseReadonlyFilesystem, msgReadOnly, nil},
				{v1alpha1.CauseOldSystemd, "systemd 219-57.el7", nil},
				{v1alpha1.CauseCgroupDriverMismatch, kubeletLogQOS, nil},
			},
			unhealthy: true,
		},

		// --- cause unknown ------------------------------------------------
		{
			// Ready=Unknown, Lease stale, no agent report at all → no cause, unhealthy, "cause unknown".
			name:          "Ready Unknown without an agent",
			in:            Input{Node: node(statusUnknown, memoryUnknown), Lease: lease(90 * time.Second), Cluster: notDegraded, Now: now},
			want:          nil,
			unhealthy:     true,
			summaryPrefix: "cause unknown; failed checks: ",
		},
		{
			// Conflicting: the lifecycle controller still says NodeStatusUnknown, but the Lease was renewed 3s ago and the agent (reporting since) says the kubelet runs → no cause.
			name: "conflicting: NodeStatusUnknown, Lease fresh, kubelet active",
			in: Input{Node: node(statusUnknown), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(time.Second, kubeletActive, runtimeActive)},
			want:          nil,
			unhealthy:     true,
			summaryPrefix: "cause unknown",
		},
		{
			// The same, the agent's report older than the renewal → no cause.
			name: "conflicting: NodeStatusUnknown, Lease fresh, older report",
			in: Input{Node: node(statusUnknown), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(10*time.Second, kubeletActive, runtimeActive)},
			want:          nil,
			unhealthy:     true,
			summaryPrefix: "cause unknown",
		},
		{
			// Conflicting: NodeStatusUnknown and the agent silent, but the Lease renewed 3s ago (the kubelet heartbeats; only the agent is gone) → no cause, not NodeUnreachable.
			name: "conflicting: NodeStatusUnknown, Lease fresh, agent silent",
			in: Input{Node: node(statusUnknown), Lease: lease(3 * time.Second), Cluster: notDegraded, Now: now,
				Report: report(4*time.Minute, kubeletActive, runtimeActive)},
			want:          nil,
			unhealthy:     true,
			summaryPrefix: "cause unknown",
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Diagnose(tc.in, th)

			var want []v1alpha1.Cause
			for _, w := range tc.want {
				want = append(want, w.cause)
			}
			if got := causeNames(res.Status.Causes); !slices.Equal(got, want) {
				t.Fatalf("causes = %v, want %v\nsummary: %s", got, want, res.Status.Summary)
			}
			if res.Unhealthy != tc.unhealthy {
				t.Errorf("Unhealthy = %t, want %t\nsummary: %s", res.Unhealthy, tc.unhealthy, res.Status.Summary)
			}
			for i, w := range tc.want {
				c := res.Status.Causes[i]
				if len(c.Evidence) == 0 {
					t.Errorf("%s: no evidence", c.Cause)
					continue
				}
				if first := c.Evidence[0]; !strings.Contains(first.Message, w.first) || !first.Supports {
					t.Errorf("%s: first evidence %s %q (supports %t), want it to quote %q", c.Cause, first.Source, first.Message, first.Supports, w.first)
				}
				for _, s := range w.also {
					if !hasEvidence(c.Evidence, s) {
						t.Errorf("%s: no evidence contains %q; evidence:\n%s", c.Cause, s, dumpEvidence(c.Evidence))
					}
				}
			}
			if tc.summaryPrefix != "" && !strings.HasPrefix(res.Status.Summary, tc.summaryPrefix) {
				t.Errorf("summary %q does not start with %q", res.Status.Summary, tc.summaryPrefix)
			}
			if len(tc.want) > 0 {
				// The summary names the causes in order and quotes the first one's evidence.
				prefix := string(tc.want[0].cause)
				if !strings.HasPrefix(res.Status.Summary, prefix) || !strings.Contains(res.Status.Summary, tc.want[0].first) {
					t.Errorf("summary %q does not start with %s and quote %q", res.Status.Summary, prefix, tc.want[0].first)
				}
			}
		})
	}
}
