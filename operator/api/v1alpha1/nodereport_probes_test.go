package v1alpha1

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The agent writes on its own only when a level crosses an alarm mark or a
// counter moves; the load and levels far from any mark wait for the
// periodic report, however much they jitter.
func TestAlarmSignature(t *testing.T) {
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(time.Now().Add(d)); return &t }
	yes, no := true, false
	offset := func(ms int64) *int64 { return &ms }
	base := func() NodeProbes {
		return NodeProbes{
			Memory:       &MemoryProbe{TotalBytes: 1000, AvailableBytes: 400},
			Load:         &LoadProbe{Load1Milli: 7900, CPUs: 2},
			PIDs:         &PIDProbe{Threads: 1000, PIDMax: 100000},
			Disks:        []DiskProbe{{Path: "/var/lib/kubelet", TotalBytes: 1000, FreeBytes: 500, TotalInodes: 1000, FreeInodes: 500}},
			Runtime:      &RuntimeProbe{Endpoint: "unix:///run/containerd/containerd.sock", Answered: true, Version: "containerd v1.7.24", RuntimeReady: &yes, NetworkReady: &yes},
			Swap:         &SwapProbe{},
			Certificates: []CertificateProbe{{Name: "kubeletClient", NotBefore: at(-time.Hour), NotAfter: at(300 * 24 * time.Hour)}},
			Clock:        &ClockProbe{OffsetMilli: offset(400)},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*NodeProbes)
		want   bool // a write of its own
	}{
		{"load jitters across 8 per CPU", func(p *NodeProbes) { p.Load.Load1Milli = 16100 }, false},
		{"memory moves far from the marks", func(p *NodeProbes) { p.Memory.AvailableBytes = 260 }, false},
		{"disk fills, still above 15% free", func(p *NodeProbes) { p.Disks[0].FreeBytes = 160 }, false},
		{"threads grow, far from pid_max", func(p *NodeProbes) { p.PIDs.Threads = 20000 }, false},
		{"memory below 10% available", func(p *NodeProbes) { p.Memory.AvailableBytes = 99 }, true},
		{"an OOM kill", func(p *NodeProbes) { p.Memory.OOMKills++ }, true},
		{"disk below 15% free", func(p *NodeProbes) { p.Disks[0].FreeBytes = 149 }, true},
		{"inodes below 10% free", func(p *NodeProbes) { p.Disks[0].FreeInodes = 99 }, true},
		{"threads within 20% of pid_max", func(p *NodeProbes) { p.PIDs.Threads = 80001 }, true},
		{"a kernel log line", func(p *NodeProbes) {
			p.KernelLog = []LogLine{{Source: "kernel", Text: "Out of memory: Killed process 1"}}
		}, true},
		{"a probe error", func(p *NodeProbes) { p.Errors = []string{"statfs: permission denied"} }, true},
		{"the runtime's version changes", func(p *NodeProbes) { p.Runtime.Version = "containerd v1.7.25" }, false},
		{"the runtime stops answering", func(p *NodeProbes) {
			p.Runtime = &RuntimeProbe{Endpoint: p.Runtime.Endpoint, Error: "Status: DeadlineExceeded", FailingSince: at(0)}
		}, true},
		{"the runtime's network is not ready", func(p *NodeProbes) { p.Runtime.NetworkReady = &no }, true},
		{"swap is turned on", func(p *NodeProbes) { p.Swap.TotalBytes = 1 << 30 }, true},
		{"the certificate is read again", func(p *NodeProbes) { p.Certificates[0].NotAfter = at(299 * 24 * time.Hour) }, false},
		{"the certificate expires within 7 days", func(p *NodeProbes) { p.Certificates[0].NotAfter = at(6 * 24 * time.Hour) }, true},
		{"the certificate expired", func(p *NodeProbes) { p.Certificates[0].NotAfter = at(-time.Minute) }, true},
		{"the certificate can't be read", func(p *NodeProbes) {
			p.Certificates[0] = CertificateProbe{Name: "kubeletClient", Error: "no such file"}
		}, true},
		{"the clock offset jitters by a second", func(p *NodeProbes) { p.Clock.OffsetMilli = offset(-1400) }, false},
		{"the clock is 30s ahead", func(p *NodeProbes) { p.Clock.OffsetMilli = offset(30_000) }, true},
		{"the clock is 30s behind", func(p *NodeProbes) { p.Clock.OffsetMilli = offset(-30_000) }, true},
		{"the clock is not synchronized", func(p *NodeProbes) { p.Clock.Synchronized = &no }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(&b)
			if got := a.AlarmSignature() != b.AlarmSignature(); got != tc.want {
				t.Errorf("AlarmSignature changed = %v, want %v (%q → %q)", got, tc.want, a.AlarmSignature(), b.AlarmSignature())
			}
			// What is worth a write is worth a diagnosis.
			if tc.want && a.Signature() == b.Signature() {
				t.Errorf("Signature did not change: %q", a.Signature())
			}
		})
	}
}

// A long line keeps its start and its root cause at the end.
func TestFitLogText(t *testing.T) {
	line := `E0311 21:48:11.879498   21676 reflector.go:134] object-"kube-system"/"kube-dns-token-5zn9c": Failed to list *v1.Secret: Get https://127.0.0.1:6443/api/v1/namespaces/kube-system/secrets?fieldSelector=metadata.name%3Dkube-dns-token-5zn9c&limit=500&resourceVersion=0: x509: certificate signed by unknown authority`
	got := FitLogText(line)
	if n := len([]rune(got)); n != MaxLogText {
		t.Errorf("%d characters, want %d", n, MaxLogText)
	}
	if !strings.HasPrefix(got, "E0311 21:48:11") || !strings.HasSuffix(got, "x509: certificate signed by unknown authority") || !strings.Contains(got, "…") {
		t.Errorf("FitLogText = %q", got)
	}
	if short := "PLEG is not healthy"; FitLogText(short) != short {
		t.Errorf("a short line changed")
	}
}
