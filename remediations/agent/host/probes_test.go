package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// testdata/root is a host root as the agent's container sees it: proc files
// in the kernel's formats, a few /proc/[pid]/stat (one zombie, names with
// spaces and parentheses), /dev/kmsg as a regular file, /var/lib/kubelet
// (and no /var/lib/containerd).

var probeT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testBtime = 1700000000 // btime in testdata/root/proc/stat

// newRoot copies testdata/root to a temporary directory the test may change.
func newRoot(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/root")); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func newTestProc(tb testing.TB, root string, clk *clocktesting.FakeClock) *Proc {
	tb.Helper()
	p := NewProc(ProcOptions{Root: root, Clock: clk})
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

func writeFile(tb testing.TB, root, name, content string) {
	tb.Helper()
	full := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func appendFile(tb testing.TB, root, name, content string) {
	tb.Helper()
	f, err := os.OpenFile(filepath.Join(root, name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		tb.Fatal(err)
	}
}

func removeFile(tb testing.TB, root, name string) {
	tb.Helper()
	if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
		tb.Fatal(err)
	}
}

func setOOMKills(tb testing.TB, root string, n int) {
	tb.Helper()
	writeFile(tb, root, "proc/vmstat", fmt.Sprintf("nr_free_pages 175587\npgfault 1234\noom_kill %d\nnr_unstable 0\n", n))
}

func kernelTime(usec int64) time.Time {
	return time.Unix(testBtime, 0).Add(time.Duration(usec) * time.Microsecond)
}

func TestProbeFakeRoot(t *testing.T) {
	root := newRoot(t)
	p := newTestProc(t, root, clocktesting.NewFakeClock(probeT0))
	got := p.Probe(context.Background())

	if len(got.Errors) != 0 {
		t.Errorf("Errors = %q, want none", got.Errors)
	}
	wantMem := v1alpha1.MemoryProbe{TotalBytes: 16318480 * 1024, AvailableBytes: 9461232 * 1024, OOMKills: 3}
	if got.Memory == nil || !reflect.DeepEqual(*got.Memory, wantMem) {
		t.Errorf("Memory = %+v, want %+v", got.Memory, wantMem)
	}
	wantLoad := v1alpha1.LoadProbe{Load1Milli: 176040, CPUs: 4}
	if got.Load == nil || *got.Load != wantLoad {
		t.Errorf("Load = %+v, want %+v", got.Load, wantLoad)
	}
	// One zombie: pid 42 "(my (weird) proc) Z". Pid 100 "(x) Z (y) S" is
	// sleeping; pid 555 has no stat file (it exited during the scan).
	wantPIDs := v1alpha1.PIDProbe{Threads: 2345, PIDMax: 4194304, Zombies: 1}
	if got.PIDs == nil || *got.PIDs != wantPIDs {
		t.Errorf("PIDs = %+v, want %+v", got.PIDs, wantPIDs)
	}
	// /var/lib/containerd does not exist in the fake root: skipped.
	if len(got.Disks) != 1 || got.Disks[0].Path != "/var/lib/kubelet" {
		t.Fatalf("Disks = %+v, want /var/lib/kubelet only", got.Disks)
	}
	if d := got.Disks[0]; d.TotalBytes <= 0 || d.FreeBytes <= 0 || d.FreeBytes > d.TotalBytes ||
		d.TotalInodes < 0 || d.FreeInodes > d.TotalInodes {
		t.Errorf("Disks[0] = %+v, want plausible sizes", d)
	}
	if got.SystemdVersion != "" {
		t.Errorf("SystemdVersion = %q without Systemd, want empty", got.SystemdVersion)
	}

	// The kernel lines that name a cause, oldest first; not the user-space
	// line (facility 1), not "invoked oom-killer", continuation lines or
	// the line without a header.
	want := []struct {
		usec int64
		text string
	}{
		{5123456901, "oom-kill:constraint=CONSTRAINT_MEMCG,"},
		{5123456950, "Memory cgroup out of memory: Killed process 4321 (stress)"},
		{6000000000, "INFO: task kworker/u8:3:1234 blocked for more than 122 seconds."},
		{7000000000, "EXT4-fs error (device sdb1)"},
		{7000000100, "EXT4-fs (sdb1): Remounting filesystem read-only"},
		{7200000000, "Out of memory: Killed process 999 (java)"},
	}
	if len(got.KernelLog) != len(want) {
		t.Fatalf("KernelLog = %d lines, want %d:\n%s", len(got.KernelLog), len(want), dumpLog(got.KernelLog))
	}
	for i, w := range want {
		l := got.KernelLog[i]
		if l.Source != "kernel" || !strings.HasPrefix(l.Text, w.text) || l.Time == nil || !l.Time.Time.Equal(kernelTime(w.usec)) {
			t.Errorf("KernelLog[%d] = %s, want %q at %v", i, dumpLine(l), w.text, kernelTime(w.usec))
		}
	}
}

func dumpLine(l v1alpha1.LogLine) string {
	ts := "<nil>"
	if l.Time != nil {
		ts = l.Time.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("{%s %s %q}", ts, l.Source, l.Text)
}

func dumpLog(ls []v1alpha1.LogLine) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(dumpLine(l) + "\n")
	}
	return b.String()
}

func TestOOMKillTime(t *testing.T) {
	type step struct {
		advance  time.Duration // clock step before the probe
		oomKills int           // the counter in /proc/vmstat; -1: no oom_kill line
		wantLast time.Duration // LastOOMKill - probeT0; -1: nil
	}
	tests := []struct {
		name  string
		steps []step
	}{{
		// The first probe only learns the counter: kills before the agent
		// started have no known time.
		name:  "first probe sets no time",
		steps: []step{{0, 3, -1}},
	}, {
		// The counter growing between two probes: the second probe's time.
		name:  "growth sets LastOOMKill",
		steps: []step{{0, 3, -1}, {2 * time.Second, 4, 2 * time.Second}},
	}, {
		// An unchanged counter keeps the time of the last growth.
		name:  "unchanged keeps it",
		steps: []step{{0, 3, -1}, {2 * time.Second, 4, 2 * time.Second}, {2 * time.Second, 4, 2 * time.Second}, {time.Hour, 4, 2 * time.Second}},
	}, {
		// Each growth moves it.
		name:  "growth again moves it",
		steps: []step{{0, 0, -1}, {2 * time.Second, 1, 2 * time.Second}, {10 * time.Second, 5, 12 * time.Second}},
	}, {
		// A counter going down (not a kill) sets nothing; growth from there does.
		name:  "decrease is not a kill",
		steps: []step{{0, 3, -1}, {2 * time.Second, 0, -1}, {2 * time.Second, 1, 4 * time.Second}},
	}, {
		// vmstat without the counter: an error, and the time seen before stays.
		name:  "unreadable counter keeps the time",
		steps: []step{{0, 3, -1}, {2 * time.Second, 4, 2 * time.Second}, {2 * time.Second, -1, 2 * time.Second}, {2 * time.Second, 4, 2 * time.Second}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t)
			clk := clocktesting.NewFakeClock(probeT0)
			p := newTestProc(t, root, clk)
			for i, s := range tt.steps {
				clk.Step(s.advance)
				if s.oomKills >= 0 {
					setOOMKills(t, root, s.oomKills)
				} else {
					writeFile(t, root, "proc/vmstat", "nr_free_pages 175587\n")
				}
				got := p.Probe(context.Background())
				if got.Memory == nil {
					t.Fatalf("step %d: Memory nil, errors %q", i, got.Errors)
				}
				if s.oomKills >= 0 && got.Memory.OOMKills != int64(s.oomKills) {
					t.Errorf("step %d: OOMKills = %d, want %d", i, got.Memory.OOMKills, s.oomKills)
				}
				if s.oomKills < 0 && !hasError(got, "memory: oom_kill:") {
					t.Errorf("step %d: Errors = %q, want a memory: oom_kill error", i, got.Errors)
				}
				switch last := got.Memory.LastOOMKill; {
				case s.wantLast < 0 && last != nil:
					t.Errorf("step %d: LastOOMKill = %v, want nil", i, last)
				case s.wantLast >= 0 && (last == nil || !last.Time.Equal(probeT0.Add(s.wantLast))):
					t.Errorf("step %d: LastOOMKill = %v, want %v", i, last, probeT0.Add(s.wantLast))
				}
			}
		})
	}
}

func hasError(p v1alpha1.NodeProbes, prefix string) bool {
	for _, e := range p.Errors {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

func zombieStat(pid int, name string) string {
	return fmt.Sprintf("%d (%s) Z 1 %d %d 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 2217 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 2 0 0 0 0 0 0 0 0 0 0 0 0 0\n", pid, name, pid, pid)
}

func TestZombieScanCached(t *testing.T) {
	root := newRoot(t)
	clk := clocktesting.NewFakeClock(probeT0)
	p := newTestProc(t, root, clk)
	steps := []struct {
		name    string
		change  func()
		advance time.Duration
		want    int32
	}{
		// The first probe scans: pid 42 is the one zombie.
		{"first probe scans", nil, 0, 1},
		// A new zombie within 30s of the scan is not seen: the count is cached.
		{"cached 10s later", func() { writeFile(t, root, "proc/200/stat", zombieStat(200, "sh")) }, 10 * time.Second, 1},
		{"cached just before 30s", nil, 20*time.Second - time.Millisecond, 1},
		// 30s after the last scan the next probe scans again.
		{"rescanned at 30s", nil, time.Millisecond, 2},
		// A zombie reaped is seen at the next scan, not before.
		{"reaped, cached", func() { removeFile(t, root, "proc/42") }, 5 * time.Second, 2},
		{"reaped, rescanned", nil, 25 * time.Second, 1},
		// A clock that went back does not pin the cache forever.
		{"clock went back", func() { removeFile(t, root, "proc/200") }, -time.Hour, 0},
	}
	for _, s := range steps {
		if s.change != nil {
			s.change()
		}
		clk.Step(s.advance)
		got := p.Probe(context.Background())
		if got.PIDs == nil || got.PIDs.Zombies != s.want {
			t.Fatalf("%s: PIDs = %+v (errors %q), want %d zombies", s.name, got.PIDs, got.Errors, s.want)
		}
	}
}

// A pass over /proc after the first is spread over probes, a budget of
// stat reads each, and its count is reported only once it is complete.
func TestZombiePassSpreadOverProbes(t *testing.T) {
	root := newRoot(t)
	clk := clocktesting.NewFakeClock(probeT0)
	p := newTestProc(t, root, clk)
	p.zombies.budget = 2 // the fake root has 5 pid directories, 6 with pid 200
	steps := []struct {
		name    string
		change  func()
		advance time.Duration
		want    int32
		passing bool // a pass is running after the probe
	}{
		// The first pass runs whole, whatever the budget.
		{"first pass whole", nil, 0, 1, false},
		// 30s later a pass starts: 2 reads, the old count still reported.
		{"pass reads 2", func() { writeFile(t, root, "proc/200/stat", zombieStat(200, "sh")) }, 30 * time.Second, 1, true},
		{"pass reads 4", nil, 2 * time.Second, 1, true},
		// 6 reads: /proc is exhausted, the new count is reported.
		{"pass complete", nil, 2 * time.Second, 2, false},
		// The next pass starts 30s after this one started, not after it ended.
		{"cached until 30s after the start", func() { writeFile(t, root, "proc/201/stat", zombieStat(201, "sh")) }, 25*time.Second + time.Millisecond, 2, false},
		{"next pass starts", nil, time.Second, 2, true},
		{"next pass goes on", nil, 2 * time.Second, 2, true},
		{"next pass goes on", nil, 2 * time.Second, 2, true},
		{"next pass complete", nil, 2 * time.Second, 3, false},
	}
	for _, s := range steps {
		if s.change != nil {
			s.change()
		}
		clk.Step(s.advance)
		got := p.Probe(context.Background())
		if got.PIDs == nil || got.PIDs.Zombies != s.want {
			t.Fatalf("%s: PIDs = %+v (errors %q), want %d zombies", s.name, got.PIDs, got.Errors, s.want)
		}
		if passing := p.zombies.fd >= 0; passing != s.passing {
			t.Fatalf("%s: pass running = %v, want %v", s.name, passing, s.passing)
		}
	}
}

// A cancelled context pauses the first pass (PIDs missing, with the
// reason); the next probe finishes it.
func TestZombieScanCancelled(t *testing.T) {
	root := newRoot(t)
	p := newTestProc(t, root, clocktesting.NewFakeClock(probeT0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := p.Probe(ctx)
	if got.PIDs != nil || !hasError(got, "pids: zombies: scan of "+root+"/proc not finished") || !strings.Contains(strings.Join(got.Errors, ";"), "context canceled") {
		t.Fatalf("cancelled: PIDs %+v, errors %q", got.PIDs, got.Errors)
	}
	if got.Memory == nil || got.Load == nil {
		t.Errorf("cancelled: the other probes are still taken: %+v", got)
	}
	got = p.Probe(context.Background())
	if got.PIDs == nil || got.PIDs.Zombies != 1 || len(got.Errors) != 0 {
		t.Fatalf("next probe: PIDs %+v, errors %q", got.PIDs, got.Errors)
	}
}

func TestDisks(t *testing.T) {
	tests := []struct {
		name      string
		paths     []string
		want      []string
		wantError string
	}{
		// Defaults: /var/lib/kubelet exists in the fake root, /var/lib/containerd doesn't.
		{"defaults, missing containerd skipped", nil, []string{"/var/lib/kubelet"}, ""},
		// A missing path is skipped without an error.
		{"all missing", []string{"/var/lib/containerd", "/nope"}, nil, ""},
		// Paths are cleaned and deduplicated.
		{"cleaned and deduplicated", []string{"var/lib/kubelet/", "/var/lib/../lib/kubelet", "/proc"}, []string{"/var/lib/kubelet", "/proc"}, ""},
		// At most 4 (the API's limit) are measured.
		{"at most four", []string{"/", "/proc", "/dev", "/var", "/var/lib"}, []string{"/", "/proc", "/dev", "/var"}, ""},
		// A path through a regular file is not "missing": an error.
		{"not a directory", []string{"/proc/loadavg/x", "/var/lib/kubelet"}, []string{"/var/lib/kubelet"}, "disk /proc/loadavg/x: statfs "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t)
			p := NewProc(ProcOptions{Root: root, Clock: clocktesting.NewFakeClock(probeT0), DiskPaths: tt.paths})
			defer p.Close()
			got := p.Probe(context.Background())
			var paths []string
			for _, d := range got.Disks {
				paths = append(paths, d.Path)
				if d.TotalBytes <= 0 || d.FreeBytes > d.TotalBytes {
					t.Errorf("disk %+v: implausible sizes", d)
				}
			}
			if !reflect.DeepEqual(paths, tt.want) {
				t.Errorf("Disks = %q, want %q", paths, tt.want)
			}
			if tt.wantError == "" && len(got.Errors) > 0 {
				t.Errorf("Errors = %q, want none", got.Errors)
			}
			if tt.wantError != "" && !hasError(got, tt.wantError) {
				t.Errorf("Errors = %q, want one starting %q", got.Errors, tt.wantError)
			}
		})
	}
}

func TestMalformedFiles(t *testing.T) {
	type fields struct{ memory, load, pids bool } // which are expected filled
	all := fields{true, true, true}
	tests := []struct {
		name      string
		file      string // changed in the fake root
		content   string // its new content
		remove    bool   // or removed
		want      fields
		wantError string // prefix of the one error expected
	}{{
		// A size that is not a number: Memory nil, the rest still measured.
		name:      "meminfo value not a number",
		file:      "proc/meminfo",
		content:   "MemTotal: lots kB\nMemAvailable: 100 kB\n",
		want:      fields{false, true, true},
		wantError: "memory: parse ROOT/proc/meminfo: no MemTotal or MemAvailable",
	}, {
		// No MemAvailable (kernels before 3.14): not guessed.
		name:      "meminfo without MemAvailable",
		file:      "proc/meminfo",
		content:   "MemTotal: 1000 kB\nMemFree: 10 kB\n",
		want:      fields{false, true, true},
		wantError: "memory: parse",
	}, {
		// A unit other than kB.
		name:      "meminfo odd unit",
		file:      "proc/meminfo",
		content:   "MemTotal: 1000 MB\nMemAvailable: 10 kB\n",
		want:      fields{false, true, true},
		wantError: "memory: parse",
	}, {
		// Binary junk.
		name:      "meminfo junk",
		file:      "proc/meminfo",
		content:   "\x00\xff\n:::\n\n",
		want:      fields{false, true, true},
		wantError: "memory: parse",
	}, {
		// Not there at all: the open error names the file.
		name:      "meminfo missing",
		file:      "proc/meminfo",
		remove:    true,
		want:      fields{false, true, true},
		wantError: "memory: open ROOT/proc/meminfo: no such file or directory",
	}, {
		// vmstat without the counter: Memory still reported, the gap shown.
		name:      "vmstat without oom_kill",
		file:      "proc/vmstat",
		content:   "nr_free_pages 175587\noom_kill_x 3\n",
		want:      all,
		wantError: "memory: oom_kill: parse ROOT/proc/vmstat: no oom_kill counter",
	}, {
		// loadavg feeds both Load and PIDs (threads): both nil, two errors.
		name:      "loadavg junk",
		file:      "proc/loadavg",
		content:   "abc\n",
		want:      fields{true, false, false},
		wantError: "load: parse ROOT/proc/loadavg",
	}, {
		// "running/total" without the slash.
		name:      "loadavg without threads",
		file:      "proc/loadavg",
		content:   "1.00 1.00 1.00 12 99\n",
		want:      fields{true, false, false},
		wantError: "pids: threads: parse ROOT/proc/loadavg",
	}, {
		// A negative or float-formatted load is not the kernel's format.
		name:      "loadavg exponent",
		file:      "proc/loadavg",
		content:   "1e3 1.00 1.00 1/12 99\n",
		want:      fields{true, false, false},
		wantError: "load: parse",
	}, {
		// No cpuN lines: Load nil; PIDs don't need them.
		name:      "stat without cpus",
		file:      "proc/stat",
		content:   "cpu  1 2 3 4\nbtime 1700000000\n",
		want:      fields{true, false, true},
		wantError: "load: cpus: parse ROOT/proc/stat: no cpuN lines",
	}, {
		// pid_max not a number: PIDs nil.
		name:      "pid_max junk",
		file:      "proc/sys/kernel/pid_max",
		content:   "lots\n",
		want:      fields{true, true, false},
		wantError: "pids: parse ROOT/proc/sys/kernel/pid_max: not a number",
	}, {
		// A pid's stat that is junk is not a zombie and not an error.
		name:    "pid stat junk",
		file:    "proc/300/stat",
		content: "300 (no closing paren Z\n",
		want:    all,
	}, {
		// A pid stat ending right after the name.
		name:    "pid stat cut after name",
		file:    "proc/301/stat",
		content: "301 (sh)",
		want:    all,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t)
			if tt.remove {
				removeFile(t, root, tt.file)
			} else {
				writeFile(t, root, tt.file, tt.content)
			}
			p := newTestProc(t, root, clocktesting.NewFakeClock(probeT0))
			got := p.Probe(context.Background())
			if (got.Memory != nil) != tt.want.memory || (got.Load != nil) != tt.want.load || (got.PIDs != nil) != tt.want.pids {
				t.Errorf("filled: memory %v load %v pids %v, want %+v (errors %q)", got.Memory != nil, got.Load != nil, got.PIDs != nil, tt.want, got.Errors)
			}
			if len(got.Disks) != 1 || len(got.KernelLog) == 0 {
				t.Errorf("Disks %d, KernelLog %d: want them measured regardless", len(got.Disks), len(got.KernelLog))
			}
			if tt.wantError == "" {
				if len(got.Errors) > 0 {
					t.Errorf("Errors = %q, want none", got.Errors)
				}
				return
			}
			if !hasError(got, strings.ReplaceAll(tt.wantError, "ROOT", root)) {
				t.Errorf("Errors = %q, want one starting %q", got.Errors, tt.wantError)
			}
			if got.PIDs != nil && got.PIDs.Zombies != 1 {
				t.Errorf("Zombies = %d, want 1", got.PIDs.Zombies)
			}
		})
	}
}

// Every file cut at any length, or missing, never makes Probe panic, and
// every gap shows in Errors.
func TestTruncatedFilesNeverPanic(t *testing.T) {
	files := []string{"proc/meminfo", "proc/vmstat", "proc/loadavg", "proc/stat", "proc/sys/kernel/pid_max", "proc/42/stat", "dev/kmsg"}
	root := newRoot(t)
	for _, name := range files {
		full, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		step := 1 + len(full)/150 // about 150 cuts per file
		for cut := 0; cut <= len(full); cut += step {
			writeFile(t, root, name, string(full[:cut]))
			p := NewProc(ProcOptions{Root: root, Clock: clocktesting.NewFakeClock(probeT0)})
			got := p.Probe(context.Background())
			_ = p.Close()
			if len(got.Errors) > maxProbeErrors || len(got.KernelLog) > maxKernelLog {
				t.Fatalf("%s cut at %d: too many errors or lines: %+v", name, cut, got)
			}
			if (got.Memory == nil || got.Load == nil || got.PIDs == nil) && len(got.Errors) == 0 {
				t.Fatalf("%s cut at %d: a probe is missing without an error: %+v", name, cut, got)
			}
		}
		writeFile(t, root, name, string(full))
	}
	// Every file missing at once: all errors, capped at 8.
	removeFile(t, root, "proc")
	removeFile(t, root, "dev")
	p := NewProc(ProcOptions{Root: root, Clock: clocktesting.NewFakeClock(probeT0), DiskPaths: []string{"/proc/a/b", "/proc/c", "/var/lib/kubelet"}})
	defer p.Close()
	got := p.Probe(context.Background())
	if got.Memory != nil || got.Load != nil || got.PIDs != nil || len(got.Errors) == 0 || len(got.Errors) > maxProbeErrors {
		t.Errorf("nothing to read: got %+v", got)
	}
}

func TestKernelLog(t *testing.T) {
	root := newRoot(t)
	clk := clocktesting.NewFakeClock(probeT0)
	p := newTestProc(t, root, clk)
	if got := p.Probe(context.Background()); len(got.KernelLog) != 6 {
		t.Fatalf("first probe: %d kernel lines, want the 6 already logged:\n%s", len(got.KernelLog), dumpLog(got.KernelLog))
	}
	// Nothing new: the same lines, still there (kept across probes).
	if got := p.Probe(context.Background()); len(got.KernelLog) != 6 {
		t.Fatalf("second probe: %d kernel lines, want 6 kept", len(got.KernelLog))
	}

	long := "Out of memory: Killed process 1 (" + strings.Repeat("x", 300) + ")"
	appendFile(t, root, "dev/kmsg", strings.Join([]string{
		"3,1000,8000000000,-;" + long,
		"6,1001,8000000001,-;eth0: link up",
		"3,1002,8000000002,-;INFO: task containerd:777 blocked for more than 245 seconds.",
		"3,1003,8000000003,-;oom-kill:constraint=CONSTRAINT_NONE,task=a,pid=1,uid=0",
		"3,1004,8000000004,-;oom-kill:constraint=CONSTRAINT_NONE,task=b,pid=2,uid=0",
		"3,1005,8000000005,-;oom-kill:constraint=CONSTRAINT_NONE,task=c,pid=3,uid=0",
		"3,900,8000000006,-;oom-kill:constraint=CONSTRAINT_NONE,task=old,pid=4,uid=0", // seq seen already: skipped
		"3,1006,8000000007,-;task jbd2/sda1-8:412 blocked on I/O",
		"3,1007,8000000008,-;Memory cgroup out of memory: Killed process 5 (half", // no newline yet
	}, "\n"))
	got := p.Probe(context.Background())
	// 6 + 6 complete new cause lines = 12: the newest 10 are kept, the
	// first two dropped; the line without its newline waits.
	if len(got.KernelLog) != 10 {
		t.Fatalf("third probe: %d kernel lines, want 10:\n%s", len(got.KernelLog), dumpLog(got.KernelLog))
	}
	if !strings.HasPrefix(got.KernelLog[0].Text, "INFO: task kworker/u8:3:1234") {
		t.Errorf("oldest kept = %s, want the hung kworker", dumpLine(got.KernelLog[0]))
	}
	var sawLong bool
	for _, l := range got.KernelLog {
		if len([]rune(l.Text)) > maxLogText {
			t.Errorf("line of %d characters: %s", len(l.Text), dumpLine(l))
		}
		if strings.HasPrefix(l.Text, "Out of memory: Killed process 1 (xxx") {
			sawLong = true
			if l.Text != long[:256] || !l.Time.Time.Equal(kernelTime(8000000000)) {
				t.Errorf("long line = %s, want its first 256 characters at %v", dumpLine(l), kernelTime(8000000000))
			}
		}
		if strings.Contains(l.Text, "task=old") || strings.Contains(l.Text, "(half") {
			t.Errorf("unexpected %s", dumpLine(l))
		}
	}
	if !sawLong {
		t.Errorf("the long OOM line is missing:\n%s", dumpLog(got.KernelLog))
	}
	if l := got.KernelLog[9]; l.Text != "task jbd2/sda1-8:412 blocked on I/O" {
		t.Errorf("newest = %s, want the blocked jbd2 task", dumpLine(l))
	}

	// The rest of the partial line arrives: now it is the newest.
	appendFile(t, root, "dev/kmsg", ") total-vm:1kB\n")
	got = p.Probe(context.Background())
	if l := got.KernelLog[len(got.KernelLog)-1]; l.Text != "Memory cgroup out of memory: Killed process 5 (half) total-vm:1kB" {
		t.Errorf("newest = %s, want the completed line", dumpLine(l))
	}

	// The report's lines are copies: changing them changes nothing kept.
	got.KernelLog[0].Text = "changed"
	got.KernelLog[0].Time.Time = time.Time{}
	again := p.Probe(context.Background())
	if again.KernelLog[0].Text == "changed" || again.KernelLog[0].Time.IsZero() {
		t.Errorf("a caller's change leaked into the kept lines: %s", dumpLine(again.KernelLog[0]))
	}
}

// Without btime in /proc/stat the lines come without a time.
func TestKernelLogWithoutBtime(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "proc/stat", "cpu  1 2 3 4\ncpu0 1 2 3 4\n")
	p := newTestProc(t, root, clocktesting.NewFakeClock(probeT0))
	got := p.Probe(context.Background())
	if len(got.KernelLog) != 6 || len(got.Errors) != 0 {
		t.Fatalf("KernelLog %d lines, errors %q; want 6 lines, no error", len(got.KernelLog), got.Errors)
	}
	for _, l := range got.KernelLog {
		if l.Time != nil {
			t.Errorf("%s: want no time without btime", dumpLine(l))
		}
	}
}

func TestKernelLogUnavailable(t *testing.T) {
	root := newRoot(t)
	removeFile(t, root, "dev/kmsg")
	clk := clocktesting.NewFakeClock(probeT0)
	p := newTestProc(t, root, clk)
	wantErr := "kernel log: open " + root + "/dev/kmsg: no such file or directory"

	got := p.Probe(context.Background())
	if !reflect.DeepEqual(got.Errors, []string{wantErr}) || got.KernelLog != nil || got.Memory == nil {
		t.Fatalf("without kmsg: errors %q, %d lines; want only %q", got.Errors, len(got.KernelLog), wantErr)
	}
	// kmsg appears; until 5 minutes passed the open is not tried again, but
	// every probe still shows the gap.
	if err := os.CopyFS(filepath.Join(root, "dev"), os.DirFS("testdata/root/dev")); err != nil {
		t.Fatal(err)
	}
	clk.Step(kernelLogRetryInterval - time.Second)
	if got := p.Probe(context.Background()); !reflect.DeepEqual(got.Errors, []string{wantErr}) || got.KernelLog != nil {
		t.Fatalf("4m59s later: errors %q, %d lines; want the open not retried yet", got.Errors, len(got.KernelLog))
	}
	clk.Step(time.Second)
	if got := p.Probe(context.Background()); len(got.Errors) != 0 || len(got.KernelLog) != 6 {
		t.Fatalf("5m later: errors %q, %d lines; want kmsg opened and read", got.Errors, len(got.KernelLog))
	}
}

func TestParseMilli(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"176.04", 176040, true}, // the brief's example
		{"1.005", 1005, true},    // 1.005*1000 is 1004.9999999999999 in float64
		{"0.29", 290, true},      // 0.29*1000 is 289.99999999999994 in float64
		{"0.00", 0, true},
		{"3", 3000, true},
		{"2.5", 2500, true},
		{"2.3456", 2345, true}, // past thousandths: dropped
		{"", 0, false},
		{"1.", 0, false},
		{".5", 0, false},
		{"-1.00", 0, false},
		{"1e3", 0, false},
		{"1.0x", 0, false},
		{"99999999999999999999.00", 0, false}, // overflow
	}
	for _, tt := range tests {
		got, ok := parseMilli([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseMilli(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestProcState(t *testing.T) {
	tests := []struct {
		stat string
		want byte
	}{
		{"1 (systemd) S 0 1", 'S'},
		{"42 (my (weird) proc) Z 1 42", 'Z'}, // splitting on spaces reads "(weird)"
		{"100 (x) Z (y) S 1 100", 'S'},       // the first ')' reads Z
		{"7 () R 1", 'R'},
		{"8 (a)b) D 1", 'D'},
		{"9 (sh)", 0},
		{"9 (sh) ", 0},
		{"10 (sh)Z", 0},
		{"no parens", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := procState([]byte(tt.stat)); got != tt.want {
			t.Errorf("procState(%q) = %q, want %q", tt.stat, got, tt.want)
		}
	}
}

func TestKernelCause(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{"Out of memory: Killed process 999 (java) total-vm:8123456kB", true},
		{"oom-kill:constraint=CONSTRAINT_MEMCG,task=stress,pid=4321,uid=0", true},
		{"Memory cgroup out of memory: Killed process 4321 (stress)", true},
		{"INFO: task kworker/u8:3:1234 blocked for more than 122 seconds.", true},
		{"task containerd:77 blocked", true},
		{"EXT4-fs error (device sdb1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0", true},
		{"EXT4-fs (sdb1): Remounting filesystem read-only", true},
		{"Aborting journal on device sdb1-8.", true},
		{"blk_update_request: I/O error, dev sdb, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0", true},
		{"Buffer I/O error on dev sdb1, logical block 0, lost async page write", true},
		{"print_req_error: I/O error, dev nvme1n1, sector 41943040", true},
		{"XFS (dm-0): metadata I/O error in \"xfs_imap_to_bp+0x5c/0xa0 [xfs]\" at daddr 0x1c0 len 32 error 5", true},
		{"XFS (nvme0n1p1): Corruption detected. Unmount and run xfs_repair", true},
		{"XFS (sda1): Filesystem has been shut down due to log error (0x2).", true},
		{"XFS (sda1): Mounting V5 Filesystem", false},
		{"stress invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0", false},
		{"task:jbd2/sda1-8 state:D stack:0 pid:1234", false},
		{"task_memcg=/kubepods blocked", false},
		{"eth0: link up", false},
	}
	for _, tt := range tests {
		if got := kernelCause([]byte(tt.msg)); got != tt.want {
			t.Errorf("kernelCause(%q) = %v, want %v", tt.msg, got, tt.want)
		}
	}
}

func TestNewProcPaths(t *testing.T) {
	tests := []struct{ root, want string }{
		{"", "/proc/meminfo"},
		{"/", "/proc/meminfo"},
		{"/host", "/host/proc/meminfo"},
		{"/host/", "/host/proc/meminfo"},
		{"/host//x/..", "/host/proc/meminfo"},
	}
	for _, tt := range tests {
		p := NewProc(ProcOptions{Root: tt.root})
		if p.meminfo != tt.want || p.kmsg.path != strings.TrimSuffix(tt.want, "/proc/meminfo")+"/dev/kmsg" {
			t.Errorf("Root %q: %s, %s", tt.root, p.meminfo, p.kmsg.path)
		}
		if len(p.disks) != 2 || p.disks[0].host != "/var/lib/kubelet" || p.disks[1].host != "/var/lib/containerd" {
			t.Errorf("Root %q: disks %+v, want the defaults", tt.root, p.disks)
		}
	}
}

// versionConn is a systemd D-Bus connection that answers the manager's
// Version property the way go-systemd does (the variant as text: quoted).
type versionConn struct {
	fakeConnNoUnits
	mu      sync.Mutex
	calls   int
	version string
	err     error
	block   chan struct{} // if set, an ask waits for it
}

// fakeConnNoUnits is a connection that knows no units.
type fakeConnNoUnits struct{}

func (fakeConnNoUnits) GetUnitPropertiesContext(context.Context, string) (map[string]any, error) {
	return nil, errors.New("no units")
}

func (fakeConnNoUnits) GetUnitTypePropertiesContext(context.Context, string, string) (map[string]any, error) {
	return nil, errors.New("no units")
}
func (fakeConnNoUnits) RestartUnitContext(context.Context, string, string, chan<- string) (int, error) {
	return 0, errors.New("no units")
}
func (fakeConnNoUnits) Close() {}

func (c *versionConn) GetManagerProperty(prop string) (string, error) {
	if c.block != nil {
		<-c.block
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if prop != "Version" {
		return "", fmt.Errorf("unknown property %q", prop)
	}
	return c.version, c.err
}

func (c *versionConn) callCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func TestSystemdVersion(t *testing.T) {
	root := newRoot(t)
	clk := clocktesting.NewFakeClock(probeT0)
	conn := &versionConn{version: `"252.30-1~deb12u2"`}
	p := NewProc(ProcOptions{Root: root, Clock: clk, Systemd: newSystemd(conn, DefaultUnits())})
	defer p.Close()

	// Asked on the first probe, unquoted.
	if got := p.Probe(context.Background()); got.SystemdVersion != "252.30-1~deb12u2" || len(got.Errors) != 0 {
		t.Fatalf("SystemdVersion = %q, errors %q", got.SystemdVersion, got.Errors)
	}
	// Not asked again within 5 minutes.
	conn.mu.Lock()
	conn.version = `"255.4-1ubuntu8"`
	conn.mu.Unlock()
	clk.Step(systemdVersionInterval - time.Second)
	if got := p.Probe(context.Background()); got.SystemdVersion != "252.30-1~deb12u2" || conn.callCount() != 1 {
		t.Fatalf("within 5m: SystemdVersion = %q after %d asks, want the cached one after 1", got.SystemdVersion, conn.callCount())
	}
	clk.Step(time.Second)
	if got := p.Probe(context.Background()); got.SystemdVersion != "255.4-1ubuntu8" || conn.callCount() != 2 {
		t.Fatalf("after 5m: SystemdVersion = %q after %d asks, want the new one after 2", got.SystemdVersion, conn.callCount())
	}
	// A failed ask: the error shows and the last version stays.
	conn.mu.Lock()
	conn.err = errors.New("connection closed")
	conn.mu.Unlock()
	clk.Step(systemdVersionInterval)
	got := p.Probe(context.Background())
	if got.SystemdVersion != "255.4-1ubuntu8" || !reflect.DeepEqual(got.Errors, []string{"systemd version: connection closed"}) {
		t.Fatalf("failed ask: SystemdVersion = %q, errors %q", got.SystemdVersion, got.Errors)
	}
}

// A systemd that doesn't answer doesn't stall the probe; its answer is used
// once it comes.
func TestSystemdVersionHung(t *testing.T) {
	root := newRoot(t)
	conn := &versionConn{version: `"256"`, block: make(chan struct{})}
	p := NewProc(ProcOptions{Root: root, Clock: clocktesting.NewFakeClock(probeT0), Systemd: newSystemd(conn, DefaultUnits())})
	defer p.Close()

	start := time.Now()
	got := p.Probe(context.Background())
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("probe took %v with systemd hung", took)
	}
	if got.SystemdVersion != "" || !reflect.DeepEqual(got.Errors, []string{"systemd version: no answer over D-Bus yet"}) || got.Memory == nil {
		t.Fatalf("hung: SystemdVersion %q, errors %q", got.SystemdVersion, got.Errors)
	}
	close(conn.block)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = p.Probe(context.Background())
		if got.SystemdVersion == "256" && len(got.Errors) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the answer: SystemdVersion %q, errors %q", got.SystemdVersion, got.Errors)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if conn.callCount() != 1 {
		t.Errorf("%d asks, want 1", conn.callCount())
	}
}

// A connection that can't read manager properties (the tests' fakes) is
// reported, not asked.
func TestSystemdVersionUnsupportedConn(t *testing.T) {
	root := newRoot(t)
	p := NewProc(ProcOptions{Root: root, Clock: clocktesting.NewFakeClock(probeT0), Systemd: newSystemd(fakeConnNoUnits{}, DefaultUnits())})
	defer p.Close()
	got := p.Probe(context.Background())
	if got.SystemdVersion != "" || !hasError(got, "systemd version: ") {
		t.Errorf("SystemdVersion %q, errors %q", got.SystemdVersion, got.Errors)
	}
}

// The real host, when there is one: the measurements are there and sane.
func TestProbeThisHost(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc")
	}
	p := NewProc(ProcOptions{DiskPaths: []string{"/"}})
	defer p.Close()
	got := p.Probe(context.Background())
	for _, e := range got.Errors {
		if !strings.HasPrefix(e, "kernel log: ") { // /dev/kmsg needs privileges
			t.Errorf("error %q", e)
		}
	}
	if m := got.Memory; m == nil || m.TotalBytes <= 0 || m.AvailableBytes <= 0 || m.AvailableBytes > m.TotalBytes {
		t.Errorf("Memory = %+v", got.Memory)
	}
	if l := got.Load; l == nil || l.CPUs <= 0 || l.Load1Milli < 0 {
		t.Errorf("Load = %+v", got.Load)
	}
	if ps := got.PIDs; ps == nil || ps.Threads <= 0 || ps.PIDMax <= 0 || ps.Zombies < 0 {
		t.Errorf("PIDs = %+v", got.PIDs)
	}
	if len(got.Disks) != 1 || got.Disks[0].TotalBytes <= 0 {
		t.Errorf("Disks = %+v", got.Disks)
	}
}

func BenchmarkProbe(b *testing.B) {
	root := newRoot(b)
	p := newTestProc(b, root, clocktesting.NewFakeClock(probeT0))
	ctx := context.Background()
	p.Probe(ctx) // open and read kmsg, scan zombies
	b.ReportAllocs()
	for b.Loop() {
		p.Probe(ctx)
	}
}

// busyRoot is the fake root with 2,000 more processes, 20 of them zombies.
func busyRoot(b *testing.B) string {
	root := newRoot(b)
	for pid := 1000; pid < 3000; pid++ {
		state := "S"
		if pid%100 == 0 {
			state = "Z"
		}
		writeFile(b, root, fmt.Sprintf("proc/%d/stat", pid), fmt.Sprintf("%d (worker %d) %s 1 %d %d 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 2500 5038080 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", pid, pid, state, pid, pid))
	}
	return root
}

// BenchmarkZombiePass is one whole pass over 2,000 processes (what the
// first probe does; later passes are spread over probes).
func BenchmarkZombiePass(b *testing.B) {
	p := newTestProc(b, busyRoot(b), clocktesting.NewFakeClock(probeT0))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p.zombies.have = false
		n, err := p.zombies.count(ctx, probeT0, p.procDir)
		if err != nil || n != 21 {
			b.Fatalf("zombies = %d, %v; want 21", n, err)
		}
	}
}

// BenchmarkProbeBusyNode probes a node with 2,000 processes every 2s (the
// agent's default), zombie passes included: a pass every 15 probes, spread
// over 8 of them.
func BenchmarkProbeBusyNode(b *testing.B) {
	clk := clocktesting.NewFakeClock(probeT0)
	p := newTestProc(b, busyRoot(b), clk)
	ctx := context.Background()
	p.Probe(ctx) // the first, whole pass
	var d durations
	b.ReportAllocs()
	for b.Loop() {
		clk.Step(2 * time.Second)
		start := time.Now()
		got := p.Probe(ctx)
		d.add(time.Since(start))
		if got.PIDs == nil || got.PIDs.Zombies != 21 {
			b.Fatalf("PIDs = %+v, errors %q", got.PIDs, got.Errors)
		}
	}
	d.report(b)
}

// BenchmarkProbeThisHost probes the machine running the benchmark every 2s
// of a fake clock, zombie passes included.
func BenchmarkProbeThisHost(b *testing.B) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		b.Skip("no /proc")
	}
	clk := clocktesting.NewFakeClock(probeT0)
	p := NewProc(ProcOptions{Clock: clk, DiskPaths: []string{"/"}})
	defer p.Close()
	ctx := context.Background()
	p.Probe(ctx)
	b.ReportAllocs()
	var d durations
	b.ReportAllocs()
	for b.Loop() {
		clk.Step(2 * time.Second)
		start := time.Now()
		p.Probe(ctx)
		d.add(time.Since(start))
	}
	d.report(b)
}

// durations keeps the last probe times of a benchmark for percentiles.
type durations struct {
	ring [1 << 14]time.Duration
	n    int
}

func (d *durations) add(t time.Duration) {
	d.ring[d.n%len(d.ring)] = t
	d.n++
}

// report adds the median and the 99th percentile probe time (a slow probe
// is what matters, not only the mean).
func (d *durations) report(b *testing.B) {
	s := slices.Clone(d.ring[:min(d.n, len(d.ring))])
	if len(s) == 0 {
		return
	}
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(s[len(s)*99/100].Nanoseconds()), "p99-ns")
}
