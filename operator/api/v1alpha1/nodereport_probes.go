package v1alpha1

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeProbes is what the agent measured on the node, the way the seeds'
// engineers looked by hand (free, top, ps -eTf | wc -l, df -h, df -i, dmesg,
// systemctl --version). Every list is bounded so the report stays small.
type NodeProbes struct {
	// memory from /proc/meminfo and /proc/vmstat.
	// +optional
	Memory *MemoryProbe `json:"memory,omitempty"`
	// load from /proc/loadavg.
	// +optional
	Load *LoadProbe `json:"load,omitempty"`
	// pids: threads against kernel.pid_max, zombies.
	// +optional
	PIDs *PIDProbe `json:"pids,omitempty"`
	// disks where the kubelet and the container runtime keep their data.
	// +optional
	// +listType=map
	// +listMapKey=path
	// +kubebuilder:validation:MaxItems=4
	Disks []DiskProbe `json:"disks,omitempty"`
	// systemdVersion is the host's systemd version (systemctl --version).
	// +optional
	SystemdVersion string `json:"systemdVersion,omitempty"`
	// kernelLog holds recent kernel or kubelet log lines that name a cause
	// (OOM kills, hung tasks, cgroup driver errors), newest last.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	KernelLog []LogLine `json:"kernelLog,omitempty"`
	// runtime is a direct call to the container runtime over its CRI socket
	// with a short deadline: running but not answering is not stopped.
	// +optional
	Runtime *RuntimeProbe `json:"runtime,omitempty"`
	// swap is the node's swap (/proc/swaps).
	// +optional
	Swap *SwapProbe `json:"swap,omitempty"`
	// certificates are the expiry of the kubelet's client certificate and of
	// the cluster CA.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=4
	Certificates []CertificateProbe `json:"certificates,omitempty"`
	// clock is the node clock's offset from the apiserver's and its time
	// synchronisation.
	// +optional
	Clock *ClockProbe `json:"clock,omitempty"`
	// errors lists probes that could not run, so a gap is visible.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Errors []string `json:"errors,omitempty"`
}

// MemoryProbe is the node's memory.
type MemoryProbe struct {
	// totalBytes is MemTotal.
	TotalBytes int64 `json:"totalBytes"`
	// availableBytes is MemAvailable.
	AvailableBytes int64 `json:"availableBytes"`
	// oomKills is the kernel's oom_kill counter since boot (/proc/vmstat).
	OOMKills int64 `json:"oomKills"`
	// lastOOMKill is when the agent last saw oomKills grow.
	// +optional
	LastOOMKill *metav1.Time `json:"lastOOMKill,omitempty"`
}

// LoadProbe is the node's load.
type LoadProbe struct {
	// load1Milli is the 1-minute load average times 1000.
	Load1Milli int64 `json:"load1Milli"`
	// cpus is the number of online CPUs.
	CPUs int32 `json:"cpus"`
}

// PIDProbe counts processes and threads.
type PIDProbe struct {
	// threads is the number of threads (tasks) on the node.
	Threads int64 `json:"threads"`
	// pidMax is kernel.pid_max.
	PIDMax int64 `json:"pidMax"`
	// zombies is the number of zombie processes.
	Zombies int32 `json:"zombies"`
}

// DiskProbe is free space and inodes of one filesystem.
type DiskProbe struct {
	// path probed, e.g. /var/lib/kubelet.
	Path string `json:"path"`
	// totalBytes and freeBytes (available to unprivileged users).
	TotalBytes int64 `json:"totalBytes"`
	FreeBytes  int64 `json:"freeBytes"`
	// totalInodes and freeInodes.
	TotalInodes int64 `json:"totalInodes"`
	FreeInodes  int64 `json:"freeInodes"`
}

// LogLine is one log line that names a cause.
type LogLine struct {
	// time the line was logged (its last repeat), if known.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
	// firstTime is when the first of count repeats was logged, if known.
	// +optional
	FirstTime *metav1.Time `json:"firstTime,omitempty"`
	// count is how many times the line was logged (repeats differing only
	// in timestamps, PIDs and similar numbers fold into one); 0 means once.
	// +optional
	Count int32 `json:"count,omitempty"`
	// source: kernel, kubelet or containerRuntime.
	Source string `json:"source"`
	// text of the line, truncated to 256 characters.
	// +kubebuilder:validation:MaxLength=256
	Text string `json:"text"`
}

// Repeats is how many times the line was logged (at least 1).
func (l LogLine) Repeats() int32 { return max(l.Count, 1) }

// RuntimeProbe is the answer (or the silence) of the container runtime's
// CRI socket to Version and Status calls with a short deadline.
type RuntimeProbe struct {
	// endpoint called, e.g. unix:///run/containerd/containerd.sock.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Endpoint string `json:"endpoint,omitempty"`
	// answered is true when both calls returned within the deadline.
	Answered bool `json:"answered"`
	// version is the runtime's name and version, e.g. containerd 1.7.24.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Version string `json:"version,omitempty"`
	// runtimeReady and networkReady are the runtime's own RuntimeReady and
	// NetworkReady conditions.
	// +optional
	RuntimeReady *bool `json:"runtimeReady,omitempty"`
	// +optional
	NetworkReady *bool `json:"networkReady,omitempty"`
	// error is why the call failed, e.g. "context deadline exceeded".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Error string `json:"error,omitempty"`
	// failingSince is when the calls started failing, by the agent's clock.
	// +optional
	FailingSince *metav1.Time `json:"failingSince,omitempty"`
}

// SwapProbe is the node's swap space.
type SwapProbe struct {
	// totalBytes of all active swap areas; 0 means swap is off.
	TotalBytes int64 `json:"totalBytes"`
	// usedBytes of swap in use.
	UsedBytes int64 `json:"usedBytes"`
}

// CertificateProbe is the validity of one certificate the kubelet needs.
type CertificateProbe struct {
	// name: kubeletClient (the kubelet's client certificate) or clusterCA.
	// +kubebuilder:validation:Enum=kubeletClient;clusterCA
	Name string `json:"name"`
	// notBefore and notAfter bound the certificate's validity.
	// +optional
	NotBefore *metav1.Time `json:"notBefore,omitempty"`
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
	// error says why the certificate could not be read.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Error string `json:"error,omitempty"`
}

// ClockProbe is the node's clock as the agent measured it.
type ClockProbe struct {
	// offsetMilli is the node clock minus the apiserver's, in milliseconds,
	// from the Date of the apiserver's answers (one-second resolution).
	// +optional
	OffsetMilli *int64 `json:"offsetMilli,omitempty"`
	// synchronized is systemd-timedated's NTPSynchronized.
	// +optional
	Synchronized *bool `json:"synchronized,omitempty"`
}

// AlarmSignature is what of the probes is worth a write of its own, before
// the agent's next periodic report: a level crossing one of a few alarm
// marks (memory or disk nearly gone, PIDs nearly used up), counters (OOM
// kills, kernel log lines, probe errors), the systemd version. Load and
// levels far from any mark change with every probe on a busy node and ride
// along with the periodic report instead. The runtime, swap, certificates
// and clock count coarsely (see evidenceSignature).
func (p NodeProbes) AlarmSignature() string {
	var b strings.Builder
	// level is how many of the marks (free fractions, ascending) the
	// fraction part/whole is below.
	level := func(part, whole int64, marks ...float64) int {
		if whole <= 0 {
			return -1
		}
		n := 0
		for _, m := range marks {
			if float64(part) < m*float64(whole) {
				n++
			}
		}
		return n
	}
	if m := p.Memory; m != nil {
		fmt.Fprintf(&b, "m%d/%d;", level(m.AvailableBytes, m.TotalBytes, 0.02, 0.05, 0.10), m.OOMKills)
	}
	if x := p.PIDs; x != nil {
		fmt.Fprintf(&b, "p%d;", level(x.PIDMax-x.Threads, x.PIDMax, 0.05, 0.10, 0.20))
	}
	for _, d := range p.Disks {
		fmt.Fprintf(&b, "d%s:%d/%d;", d.Path, level(d.FreeBytes, d.TotalBytes, 0.02, 0.05, 0.10, 0.15), level(d.FreeInodes, d.TotalInodes, 0.02, 0.05, 0.10))
	}
	fmt.Fprintf(&b, "s%s;k%d;", p.SystemdVersion, len(p.KernelLog))
	if n := len(p.KernelLog); n > 0 {
		b.WriteString(p.KernelLog[n-1].Text)
	}
	p.evidenceSignature(&b, time.Now())
	fmt.Fprintf(&b, ";e%d", len(p.Errors))
	return b.String()
}

// CertificateExpiringWithin is when a certificate's nearing expiry is worth
// a write and a diagnosis of its own.
const CertificateExpiringWithin = 7 * 24 * time.Hour

// evidenceSignature writes the coarse state of the runtime, swap,
// certificates and clock: whether the runtime answered and its readiness,
// swap on or off, each certificate valid, expiring within 7 days, expired,
// not yet valid or unreadable, the clock offset's order of magnitude and
// whether it is synchronized. The measured values (versions, bytes, exact
// offsets and times) change without meaning anything new.
func (p NodeProbes) evidenceSignature(b *strings.Builder, now time.Time) {
	tri := func(v *bool) byte {
		switch {
		case v == nil:
			return '-'
		case *v:
			return '1'
		}
		return '0'
	}
	if r := p.Runtime; r != nil {
		answered := r.Answered
		fmt.Fprintf(b, ";r%c%c%c", tri(&answered), tri(r.RuntimeReady), tri(r.NetworkReady))
	}
	if w := p.Swap; w != nil {
		fmt.Fprintf(b, ";w%t", w.TotalBytes > 0)
	}
	for _, c := range p.Certificates {
		fmt.Fprintf(b, ";c%s:%s", c.Name, c.State(now))
	}
	if c := p.Clock; c != nil {
		b.WriteString(";t")
		if c.OffsetMilli != nil {
			b.WriteString(OffsetBucket(*c.OffsetMilli))
		}
		b.WriteByte(tri(c.Synchronized))
	}
}

// State is the certificate's validity at now: valid, expiring (within
// CertificateExpiringWithin), expired, notYetValid, or unreadable.
func (c CertificateProbe) State(now time.Time) string {
	switch {
	case c.Error != "" || c.NotAfter == nil:
		return "unreadable"
	case !now.Before(c.NotAfter.Time):
		return "expired"
	case c.NotBefore != nil && now.Before(c.NotBefore.Time):
		return "notYetValid"
	case c.NotAfter.Time.Sub(now) < CertificateExpiringWithin:
		return "expiring"
	}
	return "valid"
}

// OffsetBucket is a clock offset's order of magnitude, signed: "0" under
// 2s (the Date header's one-second resolution), then "+1"/"-1" under 10s,
// "2" under a minute, "3" under 10 minutes, "4" beyond.
func OffsetBucket(milli int64) string {
	sign := "+"
	if milli < 0 {
		sign, milli = "-", -milli
	}
	switch {
	case milli < 2000:
		return "0"
	case milli < 10_000:
		return sign + "1"
	case milli < 60_000:
		return sign + "2"
	case milli < 600_000:
		return sign + "3"
	}
	return sign + "4"
}

// Signature is what of the probes the diagnosis looks at again: levels in
// 5% steps, counters, versions, log lines. Memory that moves by a few
// megabytes is not news; an OOM kill or a disk passing 90% is. (The agent
// writes on AlarmSignature changes; Signature decides which of its writes,
// periodic ones included, are diagnosed again.)
func (p NodeProbes) Signature() string {
	var b strings.Builder
	pct := func(part, whole int64) int64 {
		if whole <= 0 {
			return -1
		}
		return part * 20 / whole // 5% steps
	}
	if m := p.Memory; m != nil {
		fmt.Fprintf(&b, "m%d/%d;", pct(m.AvailableBytes, m.TotalBytes), m.OOMKills)
	}
	if l := p.Load; l != nil && l.CPUs > 0 {
		fmt.Fprintf(&b, "l%d;", l.Load1Milli/(500*int64(l.CPUs))) // half a load per CPU
	}
	if x := p.PIDs; x != nil {
		fmt.Fprintf(&b, "p%d/%d;", pct(x.Threads, x.PIDMax), min(x.Zombies, 10)/5)
	}
	for _, d := range p.Disks {
		fmt.Fprintf(&b, "d%s:%d/%d;", d.Path, pct(d.FreeBytes, d.TotalBytes), pct(d.FreeInodes, d.TotalInodes))
	}
	fmt.Fprintf(&b, "s%s;k%d;", p.SystemdVersion, len(p.KernelLog))
	if n := len(p.KernelLog); n > 0 {
		b.WriteString(p.KernelLog[n-1].Text)
	}
	p.evidenceSignature(&b, time.Now())
	fmt.Fprintf(&b, ";e%d", len(p.Errors))
	return b.String()
}

// MaxLogText is the longest LogLine text the API takes, in characters.
const MaxLogText = 256

// FitLogText shortens a log line to MaxLogText characters, keeping its
// start and its end around "…": Go errors wrap their root cause last
// ("…: x509: certificate signed by unknown authority"), and a line cut at
// the end loses exactly the words that name it.
func FitLogText(s string) string {
	r := []rune(s)
	if len(r) <= MaxLogText {
		return s
	}
	head := (MaxLogText - 1) / 2
	tail := MaxLogText - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// FitLogs shortens every log line of the report to what the API takes, so
// one long line can never keep the report from being written.
func (s *NodeReportStatus) FitLogs() {
	for i := range s.Units {
		for j := range s.Units[i].Logs {
			s.Units[i].Logs[j].Text = FitLogText(s.Units[i].Logs[j].Text)
		}
	}
	if s.Probes != nil {
		for j := range s.Probes.KernelLog {
			s.Probes.KernelLog[j].Text = FitLogText(s.Probes.KernelLog[j].Text)
		}
	}
}
