package diagnosis

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Real lines, verbatim (the threads named beside them are in the replay
// corpus), for the rules of issue 12.
const (
	lineSwap       = `E1202 10:00:01.123456    2871 run.go:72] "command failed" err="failed to run Kubelet: running with swap on is not supported, please disable swap or set --fail-swap-on flag to false"`
	lineBadConfig  = `E1202 10:00:01.123456    2871 run.go:72] "command failed" err="failed to load kubelet config file, path: /var/lib/kubelet/config.yaml, error: failed to load Kubelet config file /var/lib/kubelet/config.yaml, error failed to decode: strict decoding error: unknown field \"cgroupDrivr\""`
	lineMissingCA  = `server.go:218] unable to load client CA file /etc/kubernetes/pki/ca.crt: open /etc/kubernetes/pki/ca.crt: no such file`                                                               // kubernetes#61915
	lineCgroup     = `misconfiguration: kubelet cgroup driver: "cgroupfs" is different from docker cgroup driver: "systemd"`                                                                                // kubernetes#43805
	lineQuotedFlag = `failed to run Kubelet: failed to create kubelet: misconfiguration:"kubelet cgroup driver: "'cgroupfs'" is different from docker cgroup driver: "cgroupfs"`                            // kubernetes#87918
	lineCAdvisor   = `F0410 00:21:33.501593   28895 kubelet.go:1339] Failed to start cAdvisor inotify_add_watch /sys/fs/cgroup/cpuacct,cpu: no such file or directory`                                      // rancher#12587
	lineNoRuntime  = `F0409 20:50:33.925153    2418 server.go:265] failed to run Kubelet: failed to create kubelet: rpc error: code = Unimplemented desc = unknown service runtime.v1alpha2.RuntimeService` // microk8s#423
	lineCertExp    = `E0118 17:33:58.888700 1457370 bootstrap.go:265] part of the existing bootstrap client certificate is expired: 2020-12-06 18:55:55 +0000 UTC`                                          // kubernetes#98150
	lineFork       = `E0626 20:28:37.242405    1086 fsHandler.go:121] failed to collect filesystem stats - rootDiskErr: failed to exec du - fork/exec /usr/bin/nice: resource temporarily unavailable`      // kubernetes#79466
	lineHungTask   = `[156240.290337] INFO: task kworker/u4:0:24523 blocked for more than 120 seconds.`                                                                                                     // kubernetes#16601
	lineRemountRO  = `EXT4-fs (nvme0n1p1): Remounting filesystem read-only`
	line429        = `the server has received too many requests and has asked us to try again later` // kubernetes#54897
	lineStatusTCP  = `E0623 03:25:49.553078   22255 kubelet_node_status.go:402] Error updating node status, will retry: error getting node "vm10": Get "https://vm10:8443/api/v1/nodes/vm10?timeout=10s": write tcp 16.155.199.4:39668->16.155.199.4:8443: use of closed network connection`
	lineSandboxImg = `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to get sandbox image "602401143452.dkr.ecr.eu-west-2.amazonaws.com/eks/pause:3.5": failed to pull image` // amazon-eks-ami#1597
)

func kubeletWith(active, sub string, restarts int32, lines ...string) v1alpha1.UnitState {
	u := unit(v1alpha1.UnitKubelet, "kubelet.service", active, sub, "enabled")
	if restarts > 0 {
		u.Restarts = ptr.To(restarts)
		u.Result, u.ExitCode, u.ExitStatus = "exit-code", "exited", ptr.To(int32(1))
	}
	for _, l := range lines {
		u.Logs = append(u.Logs, v1alpha1.LogLine{Source: "kubelet", Text: l})
	}
	return u
}

func withProbesOf(r *v1alpha1.NodeReport, set func(*v1alpha1.NodeProbes)) *v1alpha1.NodeReport {
	if r.Status.Probes == nil {
		r.Status.Probes = &v1alpha1.NodeProbes{}
	}
	set(r.Status.Probes)
	return r
}

var runtimeRunning = unit(v1alpha1.UnitContainerRuntime, "containerd.service", "active", "running", "enabled")

func TestRulesOfIssue12(t *testing.T) {
	stale := lease(2 * time.Minute)
	cases := []struct {
		name       string
		in         Input
		want       v1alpha1.Cause // "" for no cause
		wantDetail string
		evidence   string // a fragment of the top cause's evidence
		not        []v1alpha1.Cause
	}{
		{name: "crash loop on swap: named, never KubeletDown", want: v1alpha1.CauseKubeletCrashLoop, wantDetail: DetailSwap, evidence: "swap on is not supported",
			in:  Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, kubeletWith("activating", "auto-restart", 5, lineSwap), runtimeRunning)},
			not: []v1alpha1.Cause{v1alpha1.CauseKubeletDown}},
		{name: "crash loop on a config file", want: v1alpha1.CauseKubeletCrashLoop, wantDetail: DetailConfig, evidence: "unknown field",
			in: Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, kubeletWith("activating", "auto-restart", 3, lineBadConfig), runtimeRunning)}},
		{name: "crash loop on a missing CA file", want: v1alpha1.CauseKubeletCrashLoop, wantDetail: DetailMissingFile,
			in: Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, kubeletWith("failed", "failed", 0, lineMissingCA), runtimeRunning)}},
		{name: "crash loop on the cgroup driver", want: v1alpha1.CauseKubeletCrashLoop, wantDetail: DetailCgroupDriver,
			in: Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, kubeletWith("failed", "failed", 0, lineCgroup), runtimeRunning)}},
		{name: "a mismatch between two equal drivers is a malformed flag", want: v1alpha1.CauseKubeletCrashLoop, wantDetail: DetailConfig,
			in: Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, kubeletWith("failed", "failed", 0, lineQuotedFlag), runtimeRunning)}},
		{name: "a klog fatal of no known kind is a crash loop", want: v1alpha1.CauseKubeletCrashLoop, wantDetail: DetailOther,
			in: Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, kubeletWith("failed", "failed", 0, lineCAdvisor), runtimeRunning)}},
		{name: "an exit waiting for the runtime is KubeletDown: a restart may work", want: v1alpha1.CauseKubeletDown, evidence: "waiting for something it needs",
			in:  Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, kubeletWith("failed", "failed", 5, lineNoRuntime), runtimeRunning)},
			not: []v1alpha1.Cause{v1alpha1.CauseKubeletCrashLoop}},
		{name: "a unit simply stopped (seed 000) is KubeletDown", want: v1alpha1.CauseKubeletDown,
			in: Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, unit(v1alpha1.UnitKubelet, "kubelet.service", "inactive", "dead", "disabled"), runtimeRunning)}},
		{name: "an expired certificate ranks above the exit it causes", want: v1alpha1.CauseKubeletCertificateExpired, evidence: "bootstrap client certificate is expired",
			in:  Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, kubeletWith("failed", "failed", 0, lineCertExp, lineMissingCA), runtimeRunning)},
			not: []v1alpha1.Cause{v1alpha1.CauseKubeletCrashLoop}},
		{name: "the agent's certificate probe", want: v1alpha1.CauseKubeletCertificateExpired, evidence: "kubeletClient certificate expired",
			in: Input{Node: node(statusUnknown), Lease: stale, Report: withProbesOf(report(5*time.Second, kubeletWith("active", "running", 0), runtimeRunning), func(p *v1alpha1.NodeProbes) {
				p.Certificates = []v1alpha1.CertificateProbe{{Name: "kubeletClient", NotAfter: ptr.To(metav1.NewTime(ago(time.Hour)))}}
			})}},
		{name: "a clock 5 minutes behind: ClockSkew, never dead or silent", want: v1alpha1.CauseClockSkew, evidence: "behind the apiserver's",
			in: Input{Node: node(readyTrue), Lease: lease(5*time.Minute + 3*time.Second), LeaseObservedAt: ptr.To(ago(3 * time.Second)),
				Report: withProbesOf(report(5*time.Minute+5*time.Second, kubeletWith("active", "running", 0), runtimeRunning), func(p *v1alpha1.NodeProbes) {
					p.Clock = &v1alpha1.ClockProbe{OffsetMilli: ptr.To(int64(-5 * 60 * 1000))}
				})},
			not: []v1alpha1.Cause{v1alpha1.CauseNodeUnreachable, v1alpha1.CauseKubeletHung, v1alpha1.CauseKubeletDown}},
		{name: "a Lease stamped far from when it arrived is a skewed clock", want: v1alpha1.CauseClockSkew,
			in: Input{Node: node(readyTrue), Lease: lease(10 * time.Minute), LeaseObservedAt: ptr.To(ago(2 * time.Second)), Report: report(5*time.Second, kubeletWith("active", "running", 0), runtimeRunning)}},
		{name: "a hung runtime: unit active, CRI times out", want: v1alpha1.CauseContainerRuntimeHung, evidence: "DeadlineExceeded",
			in: Input{Node: node(ready(corev1.ConditionFalse, "KubeletNotReady", msgPLEG, time.Minute)), Lease: lease(3 * time.Second),
				Report: withProbesOf(report(5*time.Second, kubeletWith("active", "running", 0), runtimeRunning), func(p *v1alpha1.NodeProbes) {
					p.Runtime = &v1alpha1.RuntimeProbe{Endpoint: "unix:///run/containerd/containerd.sock", Error: "rpc error: code = DeadlineExceeded desc = context deadline exceeded"}
				})},
			not: []v1alpha1.Cause{v1alpha1.CauseContainerRuntimeDown, v1alpha1.CausePLEGUnhealthy}},
		{name: "a refused CRI socket with the unit failed is runtime down", want: v1alpha1.CauseContainerRuntimeDown,
			in: Input{Node: node(runtimeIsDown), Lease: lease(3 * time.Second),
				Report: withProbesOf(report(5*time.Second, kubeletWith("active", "running", 0), unit(v1alpha1.UnitContainerRuntime, "containerd.service", "failed", "failed", "enabled")), func(p *v1alpha1.NodeProbes) {
					p.Runtime = &v1alpha1.RuntimeProbe{Error: "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: connection refused\""}
				})}},
		{name: "the kubelet says runtime down but the unit runs and answers: no cause", want: "",
			in: Input{Node: node(runtimeIsDown), Lease: lease(3 * time.Second), Report: withProbesOf(report(5*time.Second, kubeletWith("active", "running", 0), runtimeRunning), func(p *v1alpha1.NodeProbes) {
				p.Runtime = &v1alpha1.RuntimeProbe{Answered: true}
			})}},
		{name: "fork failures are PID exhaustion", want: v1alpha1.CausePIDExhausted, evidence: "resource temporarily unavailable",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Report: report(5*time.Second, kubeletWith("active", "running", 0, lineFork), runtimeRunning)}},
		{name: "the legacy OutOfDisk", want: v1alpha1.CauseDiskPressure,
			in: Input{Node: node(readyTrue, cond("OutOfDisk", corev1.ConditionTrue, "KubeletOutOfDisk", "out of disk space", time.Minute)), Lease: lease(3 * time.Second)}},
		{name: "hung tasks from the kernel log, no node-problem-detector", want: v1alpha1.CauseKernelDeadlock, evidence: "blocked for more than",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Report: withProbesOf(report(5*time.Second, kubeletWith("active", "running", 0), runtimeRunning), func(p *v1alpha1.NodeProbes) {
				p.KernelLog = []v1alpha1.LogLine{{Source: "kernel", Text: lineHungTask}}
			})}},
		{name: "a read-only root on a Ready node", want: v1alpha1.CauseReadonlyFilesystem, evidence: "Remounting filesystem read-only",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Report: withProbesOf(report(5*time.Second, kubeletWith("active", "running", 0), runtimeRunning), func(p *v1alpha1.NodeProbes) {
				p.KernelLog = []v1alpha1.LogLine{{Source: "kernel", Text: lineRemountRO}}
			})}},
		{name: "pods failing to start on a Ready node", want: v1alpha1.CausePodStartFailures, evidence: "sandbox image",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Report: report(5*time.Second, kubeletWith("active", "running", 0), runtimeRunning),
				PodEvents: []corev1.Event{{Reason: "FailedCreatePodSandBox", Message: lineSandboxImg, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "web", Name: "web-1"}}}}},
		{name: "one pod failing for a reason of its own is not the node's", want: "",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Report: report(5*time.Second, kubeletWith("active", "running", 0), runtimeRunning),
				PodEvents: []corev1.Event{{Reason: "FailedCreatePodContainer", Message: "unable to ensure pod container exists: oops", InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "web", Name: "web-1"}}}}},
		{name: "the same fatal line on many nodes with agents on time: fleet, not control plane", want: v1alpha1.CauseFleetNodeFault,
			in: Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, kubeletWith("activating", "auto-restart", 4, lineBadConfig), runtimeRunning),
				Cluster: ClusterState{Degraded: true, Late: 4, Total: 9, LateAgentsOnTime: ptr.To(4), SameFault: FatalSignature(ptr.To(kubeletWith("", "", 0, lineBadConfig))), SameFaultNodes: 3}},
			not: []v1alpha1.Cause{v1alpha1.CauseControlPlaneDegraded}},
		{name: "a healthy node beside a fleet fault does not have it", want: "",
			in: Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Report: report(5*time.Second, kubeletWith("active", "running", 0), runtimeRunning),
				Cluster: ClusterState{Late: 0, Total: 9, LateAgentsOnTime: ptr.To(0), SameFault: FatalSignature(ptr.To(kubeletWith("", "", 0, lineBadConfig))), SameFaultNodes: 3}}},
		{name: "late nodes whose agents are silent too: the control plane", want: v1alpha1.CauseControlPlaneDegraded,
			in: Input{Node: node(statusUnknown), Lease: stale, Report: report(10*time.Minute, kubeletWith("active", "running", 0), runtimeRunning),
				Cluster: ClusterState{Degraded: true, Late: 6, Total: 9, LateAgentsOnTime: ptr.To(0)}}},
		{name: "the apiserver tells a late kubelet it is overloaded", want: v1alpha1.CauseControlPlaneDegraded, evidence: "too many requests",
			in: Input{Node: node(statusUnknown), Lease: stale, Report: report(5*time.Second, kubeletWith("active", "running", 0, line429), runtimeRunning)}},
		{name: "the kubelet's own connection is stuck while the agent gets through", want: v1alpha1.CauseKubeletHung, evidence: "use of closed network connection",
			in: Input{Node: node(statusUnknown), Unknown: map[string]bool{UnknownLease: true}, Report: report(5*time.Second, kubeletWith("", "", 0, lineStatusTCP))}},
		{name: "MemoryPressure the agent's measure contradicts is not enough", want: "",
			in: Input{Node: node(readyTrue, memoryPressure), Lease: lease(3 * time.Second), Report: withProbesOf(report(5*time.Second, kubeletWith("active", "running", 0), runtimeRunning), func(p *v1alpha1.NodeProbes) {
				p.Memory = &v1alpha1.MemoryProbe{TotalBytes: 32 << 30, AvailableBytes: 20 << 30}
			})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now = now
			res := Diagnose(tc.in, DefaultThresholds())
			var got []v1alpha1.Cause
			for _, c := range res.Status.Causes {
				got = append(got, c.Cause)
			}
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("causes = %v, want none (summary %q)", got, res.Status.Summary)
				}
				return
			}
			if len(got) == 0 || got[0] != tc.want {
				t.Fatalf("causes = %v, want %s first (summary %q)", got, tc.want, res.Status.Summary)
			}
			top := res.Status.Causes[0]
			if top.Detail != tc.wantDetail {
				t.Errorf("detail = %q, want %q", top.Detail, tc.wantDetail)
			}
			var msgs []string
			for _, e := range top.Evidence {
				msgs = append(msgs, e.Message)
			}
			if tc.evidence != "" && !strings.Contains(strings.Join(msgs, "\n"), tc.evidence) {
				t.Errorf("no evidence contains %q:\n%s", tc.evidence, strings.Join(msgs, "\n"))
			}
			for _, c := range got {
				for _, n := range tc.not {
					if c == n {
						t.Errorf("also diagnosed %s: %v", n, got)
					}
				}
			}
		})
	}
}
