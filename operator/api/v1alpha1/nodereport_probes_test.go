package v1alpha1

import "testing"

// The agent writes on its own only when a level crosses an alarm mark or a
// counter moves; the load and levels far from any mark wait for the
// periodic report, however much they jitter.
func TestAlarmSignature(t *testing.T) {
	base := func() NodeProbes {
		return NodeProbes{
			Memory: &MemoryProbe{TotalBytes: 1000, AvailableBytes: 400},
			Load:   &LoadProbe{Load1Milli: 7900, CPUs: 2},
			PIDs:   &PIDProbe{Threads: 1000, PIDMax: 100000},
			Disks:  []DiskProbe{{Path: "/var/lib/kubelet", TotalBytes: 1000, FreeBytes: 500, TotalInodes: 1000, FreeInodes: 500}},
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(&b)
			if got := a.AlarmSignature() != b.AlarmSignature(); got != tc.want {
				t.Errorf("AlarmSignature changed = %v, want %v (%q → %q)", got, tc.want, a.AlarmSignature(), b.AlarmSignature())
			}
		})
	}
}
