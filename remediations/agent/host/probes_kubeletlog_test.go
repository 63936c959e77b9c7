package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// messagesSeed000 is /var/log/messages as on the node of seed 000 (after an
// OS upgrade the kubelet's cgroup driver no longer matched the runtime's),
// with other processes' lines around the kubelet's.
const messagesSeed000 = `Aug 18 11:41:44 kali systemd[1]: Started kubelet.service - kubelet: The Kubernetes Node Agent.
Aug 18 11:41:45 kali kubelet[3636559]: Flag --container-runtime-endpoint has been deprecated, This parameter should be set via the config file specified by the Kubelet's --config flag.
Aug 18 11:41:45 kali kubelet[3636559]: I0818 11:41:45.901233 3636559 server.go:487] "Kubelet version" kubeletVersion="v1.30.2"
Aug 18 11:41:46 kali containerd[812]: time="2025-08-18T11:41:46.100000000+02:00" level=info msg="PLEG is not healthy (quoted by containerd, not the kubelet)"
Aug 18 11:41:46 kali kubelet[3636559]: E0818 11:41:46.325093 3636559 kubelet.go:1431] "Failed to start ContainerManager" err="failed to initialise top level QOS containers: root container [kubepods] doesn't exist"
Aug 18 11:41:46 kali systemd[1]: kubelet.service: Main process exited, code=exited, status=1/FAILURE
Aug 18 11:41:46 kali systemd[1]: kubelet.service: Failed with result 'exit-code'.
Aug  9 03:00:00 kali CRON[1]: (root) CMD (kubelet: PLEG is not healthy, not the kubelet's tag)
`

// localTime is a syslog timestamp's time: local, no year in the line.
func localTime(year int, month time.Month, day, h, m, s int) time.Time {
	return time.Date(year, month, day, h, m, s, 0, time.Local)
}

func kubeletLines(ls []v1alpha1.LogLine) []v1alpha1.LogLine {
	var out []v1alpha1.LogLine
	for _, l := range ls {
		if l.Source == "kubelet" {
			out = append(out, l)
		}
	}
	return out
}

func TestKubeletLogSeed000(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "var/log/messages", messagesSeed000+
		`2025-08-18T11:42:10.123456+02:00 kali kubelet[3636559]: E0818 11:42:10.123000 3636559 kubelet.go:2370] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s"
Aug 18 11:42:20 kali kubelet: eviction manager: attempting to reclaim ephemeral-storage
`)
	// /var/log/syslog is not read: messages exists and comes first.
	writeFile(t, root, "var/log/syslog", "Aug 18 11:41:46 kali kubelet[1]: failed to run Kubelet: from syslog\n")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // Aug 18 is last year's
	p := newTestProc(t, root, clocktesting.NewFakeClock(now))
	got := p.Probe(context.Background())
	if len(got.Errors) != 0 {
		t.Errorf("Errors = %q, want none", got.Errors)
	}
	// The 6 kernel lines (2023) come first, then the kubelet's, by time.
	if len(got.KernelLog) != 9 {
		t.Fatalf("KernelLog = %d lines, want 6 kernel and 3 kubelet:\n%s", len(got.KernelLog), dumpLog(got.KernelLog))
	}
	for i, l := range got.KernelLog[:6] {
		if l.Source != "kernel" {
			t.Errorf("KernelLog[%d] = %s, want a kernel line", i, dumpLine(l))
		}
	}
	want := []struct {
		at   time.Time
		text string
	}{
		{localTime(2025, time.August, 18, 11, 41, 46), `E0818 11:41:46.325093 3636559 kubelet.go:1431] "Failed to start ContainerManager" err="failed to initialise top level QOS containers: root container [kubepods] doesn't exist"`},
		{time.Date(2025, 8, 18, 9, 42, 10, 123456000, time.UTC), `E0818 11:42:10.123000 3636559 kubelet.go:2370] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s"`},
		{localTime(2025, time.August, 18, 11, 42, 20), "eviction manager: attempting to reclaim ephemeral-storage"},
	}
	// The RFC 3339 line (09:42:10 UTC) sorts by its real time among the
	// local-time ones: compare as a set of (time, text) in the order kept.
	kl := got.KernelLog[6:]
	for _, w := range want {
		found := false
		for _, l := range kl {
			if l.Source == "kubelet" && l.Text == w.text && l.Time != nil && l.Time.Time.Equal(w.at) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing kubelet line %q at %v:\n%s", w.text, w.at, dumpLog(kl))
		}
	}
	for i := 1; i < len(kl); i++ {
		if kl[i].Time.Before(kl[i-1].Time) {
			t.Errorf("kubelet lines not oldest first:\n%s", dumpLog(kl))
		}
	}
	// What diagnosis looks for (cgroupDriverMismatch).
	if !strings.Contains(kl[0].Text, "failed to initialise top level QOS containers") && !strings.Contains(kl[1].Text, "failed to initialise top level QOS containers") {
		t.Errorf("the QOS containers line is not there for diagnosis:\n%s", dumpLog(kl))
	}
}

func TestKubeletLogThrottled(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "var/log/messages", messagesSeed000)
	clk := clocktesting.NewFakeClock(time.Date(2025, 8, 18, 12, 0, 0, 0, time.Local))
	p := newTestProc(t, root, clk)
	if n := len(kubeletLines(p.Probe(context.Background()).KernelLog)); n != 1 {
		t.Fatalf("first probe: %d kubelet lines, want 1", n)
	}
	appendFile(t, root, "var/log/messages", "Aug 18 12:00:05 kali kubelet[3636559]: E0818 12:00:05.000000 3636559 kubelet.go:1431] \"Failed to start ContainerManager\" err=\"again\"\n")
	for _, d := range []time.Duration{10 * time.Second, 19 * time.Second} {
		clk.Step(d)
		if n := len(kubeletLines(p.Probe(context.Background()).KernelLog)); n != 1 {
			t.Fatalf("probe %v after: %d kubelet lines, want still 1 (read at most every 30s)", clk.Since(time.Date(2025, 8, 18, 12, 0, 0, 0, time.Local)), n)
		}
	}
	clk.Step(time.Second) // 30s after the first read
	kl := kubeletLines(p.Probe(context.Background()).KernelLog)
	if len(kl) != 2 || !strings.HasSuffix(kl[1].Text, `err="again"`) {
		t.Fatalf("30s later: want the new line:\n%s", dumpLog(kl))
	}
	if !kl[1].Time.Time.Equal(localTime(2025, time.August, 18, 12, 0, 5)) {
		t.Errorf("time = %v, want this year's Aug 18 12:00:05 local", kl[1].Time)
	}
}

// A rotation that renames the file and starts a new one holding lines read
// already (rsyslog restarted with a replayed queue) adds only the new ones;
// a copy-truncate (the file shrank) is read from its new start.
func TestKubeletLogRotationAndDedupe(t *testing.T) {
	root := newRoot(t)
	line := func(sec int, what string) string {
		return fmt.Sprintf("Aug 18 11:50:%02d kali kubelet[42]: E0818 11:50:%02d.000000 42 kubelet.go:2370] \"Skipping pod synchronization\" err=\"PLEG is not healthy: %s\"\n", sec, sec, what)
	}
	writeFile(t, root, "var/log/messages", line(1, "one")+line(2, "two"))
	clk := clocktesting.NewFakeClock(time.Date(2025, 8, 18, 12, 0, 0, 0, time.Local))
	p := newTestProc(t, root, clk)
	probe := func() []v1alpha1.LogLine {
		t.Helper()
		got := p.Probe(context.Background())
		if len(got.Errors) != 0 {
			t.Errorf("Errors = %q", got.Errors)
		}
		return kubeletLines(got.KernelLog)
	}
	texts := func(ls []v1alpha1.LogLine) string {
		var b strings.Builder
		for _, l := range ls {
			b.WriteString(l.Text[strings.LastIndex(l.Text, ": ")+2:])
		}
		return b.String()
	}
	if got := texts(probe()); got != `one"two"` {
		t.Fatalf("first read: %s", got)
	}

	// Renamed; the new file repeats "two" and adds "three".
	msgs := filepath.Join(root, "var/log/messages")
	if err := os.Rename(msgs, msgs+".1"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "var/log/messages", line(2, "two")+line(3, "three"))
	clk.Step(kubeletLogInterval)
	if got := texts(probe()); got != `one"two"three"` {
		t.Fatalf("after a rename rotation: %s, want two only once", got)
	}

	// Appended, then copy-truncated to a shorter file with a new line.
	appendFile(t, root, "var/log/messages", line(4, "four"))
	clk.Step(kubeletLogInterval)
	if got := texts(probe()); got != `one"two"three"four"` {
		t.Fatalf("after an append: %s", got)
	}
	if err := os.Truncate(msgs, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, root, "var/log/messages", line(5, "five"))
	clk.Step(kubeletLogInterval)
	if got := texts(probe()); got != `one"two"three"four"five"` {
		t.Fatalf("after a copy-truncate: %s, want five read from the new start", got)
	}

	// Nothing new: nothing added.
	clk.Step(kubeletLogInterval)
	if got := texts(probe()); got != `one"two"three"four"five"` {
		t.Fatalf("nothing new: %s", got)
	}

	// A partial last line waits for its end.
	full := line(6, "six")
	appendFile(t, root, "var/log/messages", full[:40])
	clk.Step(kubeletLogInterval)
	if got := texts(probe()); got != `one"two"three"four"five"` {
		t.Fatalf("partial line: %s", got)
	}
	appendFile(t, root, "var/log/messages", full[40:])
	clk.Step(kubeletLogInterval)
	if got := texts(probe()); got != `one"two"three"four"five"six"` {
		t.Fatalf("completed line: %s", got)
	}
}

// A huge file is read only from its last 256 KiB: a 1 GiB sparse file whose
// first line names a cause and whose tail holds one more.
func TestKubeletLogHugeFileTail(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "var/log/messages", "Aug 18 10:00:00 kali kubelet[1]: failed to run Kubelet: START-OF-FILE\n")
	msgs := filepath.Join(root, "var/log/messages")
	if err := os.Truncate(msgs, 1<<30); err != nil {
		t.Skip("no sparse file:", err)
	}
	// Filler lines, then the cause: the tail starts mid-line.
	var b strings.Builder
	for i := 0; b.Len() < kubeletLogTail+1000; i++ {
		fmt.Fprintf(&b, "Aug 18 11:00:00 kali kubelet[1]: I0818 11:00:00.000000 1 kubelet.go:1] \"Container runtime network not ready\" filler=%d\n", i)
	}
	b.WriteString("Aug 18 11:59:00 kali kubelet[1]: E0818 11:59:00.000000 1 kubelet.go:2] \"Container runtime network not ready\" networkReady=\"NetworkReady=false\"\n")
	appendFile(t, root, "var/log/messages", b.String())

	clk := clocktesting.NewFakeClock(time.Date(2025, 8, 18, 12, 0, 0, 0, time.Local))
	p := newTestProc(t, root, clk)
	start := time.Now()
	got := p.Probe(context.Background())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("probe took %v: the whole file was read?", d)
	}
	kl := kubeletLines(got.KernelLog)
	if len(kl) == 0 || !strings.Contains(kl[len(kl)-1].Text, `networkReady="NetworkReady=false"`) {
		t.Fatalf("the last line is missing:\n%s", dumpLog(kl))
	}
	for _, l := range kl {
		if strings.Contains(l.Text, "START-OF-FILE") {
			t.Errorf("a line before the tail was read: %s", dumpLine(l))
		}
	}
	// Newest 10 kept: the kernel's older lines made room.
	if len(got.KernelLog) != maxKernelLog || len(kl) != maxKernelLog {
		t.Errorf("KernelLog = %d lines (%d kubelet), want the 10 newest, all kubelet (newer than the kernel's)", len(got.KernelLog), len(kl))
	}

	// More than 256 KiB appended between reads: only the tail is read,
	// starting mid-line without misreading the partial first line.
	var more strings.Builder
	for i := 0; more.Len() < kubeletLogTail+1000; i++ {
		fmt.Fprintf(&more, "Aug 18 11:59:30 kali kubelet[1]: I0818 11:59:30.000000 1 kubelet.go:1] \"some chatter\" n=%d\n", i)
	}
	more.WriteString("Aug 18 11:59:40 kali kubelet[1]: E0818 11:59:40.000000 1 kubelet.go:3] \"PLEG is not healthy\" last\n")
	appendFile(t, root, "var/log/messages", more.String())
	clk.Step(kubeletLogInterval)
	got = p.Probe(context.Background())
	if len(got.Errors) != 0 {
		t.Errorf("Errors = %q", got.Errors)
	}
	if l := got.KernelLog[len(got.KernelLog)-1]; !strings.HasSuffix(l.Text, `"PLEG is not healthy" last`) {
		t.Errorf("after 256 KiB more: newest = %s, want the last line", dumpLine(l))
	}
}

// Kernel lines read after kubelet lines still go last (their behaviour is
// unchanged) and the newest 10 of both are kept.
func TestKubeletAndKernelLinesShareTheNewest10(t *testing.T) {
	root := newRoot(t)
	var b strings.Builder
	for i := range 6 {
		fmt.Fprintf(&b, "Aug 18 11:00:%02d kali kubelet[1]: E0818 1 kubelet.go:1] \"PLEG is not healthy\" n=%d\n", i, i)
	}
	writeFile(t, root, "var/log/messages", b.String())
	clk := clocktesting.NewFakeClock(time.Date(2025, 8, 18, 12, 0, 0, 0, time.Local))
	p := newTestProc(t, root, clk)
	got := p.Probe(context.Background())
	if len(got.KernelLog) != 10 {
		t.Fatalf("KernelLog = %d, want 10:\n%s", len(got.KernelLog), dumpLog(got.KernelLog))
	}
	// The 2 oldest kernel lines (2023) went; 4 kernel lines, then 6 kubelet.
	for i, l := range got.KernelLog {
		want := "kernel"
		if i >= 4 {
			want = "kubelet"
		}
		if l.Source != want {
			t.Errorf("KernelLog[%d] = %s, want a %s line", i, dumpLine(l), want)
		}
	}
	appendFile(t, root, "dev/kmsg", "3,2000,8000000000,-;Out of memory: Killed process 7 (late) total-vm:1kB\n")
	got = p.Probe(context.Background())
	if l := got.KernelLog[9]; l.Source != "kernel" || !strings.Contains(l.Text, "(late)") {
		t.Errorf("newest = %s, want the new kernel line last", dumpLine(l))
	}
	if l := got.KernelLog[3]; l.Source != "kubelet" {
		t.Errorf("KernelLog[3] = %s, want the oldest kernel lines gone", dumpLine(l))
	}
}

func TestKubeletLogPaths(t *testing.T) {
	root := newRoot(t)
	// No syslog file at all (a journal-only node): no line, no error.
	p := NewProc(ProcOptions{Root: root, Clock: clocktesting.NewFakeClock(probeT0)})
	defer p.Close()
	got := p.Probe(context.Background())
	if len(got.Errors) != 0 || len(kubeletLines(got.KernelLog)) != 0 {
		t.Errorf("no log file: Errors %q, %d kubelet lines; want none", got.Errors, len(kubeletLines(got.KernelLog)))
	}

	// Debian's /var/log/syslog when there is no messages.
	writeFile(t, root, "var/log/syslog", "Aug 18 11:41:46 kali kubelet[1]: E0818 run.go:74] \"command failed\" err=\"failed to run Kubelet: misconfiguration: kubelet cgroup driver: \\\"systemd\\\" is different from docker cgroup driver: \\\"cgroupfs\\\"\"\n")
	p2 := NewProc(ProcOptions{Root: root, Clock: clocktesting.NewFakeClock(probeT0)})
	defer p2.Close()
	if kl := kubeletLines(p2.Probe(context.Background()).KernelLog); len(kl) != 1 || !strings.Contains(kl[0].Text, "misconfiguration: kubelet cgroup driver") {
		t.Errorf("syslog: %s", dumpLog(kl))
	}

	// Configured paths; one that can't be read is reported.
	writeFile(t, root, "logs/kubelet.log", "kubelet[1]: PLEG is not healthy\n")
	if err := os.MkdirAll(filepath.Join(root, "logs/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	p3 := NewProc(ProcOptions{Root: root, KubeletLogPaths: []string{"/nope", "logs/kubelet.log"}, Clock: clocktesting.NewFakeClock(probeT0)})
	defer p3.Close()
	if kl := kubeletLines(p3.Probe(context.Background()).KernelLog); len(kl) != 1 || kl[0].Time != nil || kl[0].Text != "PLEG is not healthy" {
		t.Errorf("configured path, no timestamp: %s", dumpLog(kl))
	}
	p4 := NewProc(ProcOptions{Root: root, KubeletLogPaths: []string{"/logs/dir"}, Clock: clocktesting.NewFakeClock(probeT0)})
	defer p4.Close()
	if got := p4.Probe(context.Background()); !hasError(got, "kubelet log: ") {
		t.Errorf("a directory: Errors %q, want a kubelet log error", got.Errors)
	}
}

func TestParseKubeletLine(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.Local)
	long := strings.Repeat("x", 300)
	mid := strings.Repeat("y", 200)
	for _, tc := range []struct {
		line string
		text string // "" not kept
		at   time.Time
	}{
		{"Dec 31 23:59:59 n kubelet[7]: PLEG is not healthy: pleg was last seen", "PLEG is not healthy: pleg was last seen", localTime(2025, time.December, 31, 23, 59, 59)},
		{"Jan  2 09:00:00 n kubelet: container runtime is down", "container runtime is down", localTime(2026, time.January, 2, 9, 0, 0)},
		{"Jan  3 09:00:00 n kubelet: container runtime is down", "container runtime is down", localTime(2026, time.January, 3, 9, 0, 0)}, // within a day ahead: clock skew
		{"2026-01-02T08:00:00Z n kubelet[1]: Failed to start ContainerManager", "Failed to start ContainerManager", time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC)},
		{"Jan  2 09:00:00 n kubelet[1]: all fine", "", time.Time{}},
		{"Jan  2 09:00:00 n systemd[1]: kubelet.service: PLEG is not healthy", "", time.Time{}},
		{"Jan  2 09:00:00 n kubelet-wrapper[1]: PLEG is not healthy", "", time.Time{}},
		{"Jan  2 09:00:00 n containerd[1]: kubelet: PLEG is not healthy", "", time.Time{}},
		{"no tag PLEG is not healthy", "", time.Time{}},
		{"Xyz 99 99:99:99 n kubelet[1]: PLEG is not healthy", "PLEG is not healthy", time.Time{}},
		{"Jan  2 09:00:00 n kubelet[1]: E0102 09:00:00.000000 1 x.go:1] " + mid + " eviction manager: attempting to reclaim memory", mid + " eviction manager: attempting to reclaim memory", localTime(2026, time.January, 2, 9, 0, 0)},
		{"Jan  2 09:00:00 n kubelet[1]: PLEG is not healthy " + long, truncateText([]byte("PLEG is not healthy "+long), maxLogText), localTime(2026, time.January, 2, 9, 0, 0)},
	} {
		l, ok := parseKubeletLine([]byte(tc.line), now)
		if tc.text == "" {
			if ok {
				t.Errorf("%q: kept %s, want not", tc.line, dumpLine(l))
			}
			continue
		}
		if !ok || l.Source != "kubelet" || l.Text != tc.text {
			t.Errorf("%q: %v %s, want %q", tc.line, ok, dumpLine(l), tc.text)
			continue
		}
		if tc.at.IsZero() != (l.Time == nil) || (l.Time != nil && !l.Time.Time.Equal(tc.at)) {
			t.Errorf("%q: time %v, want %v", tc.line, l.Time, tc.at)
		}
	}
}

// BenchmarkKubeletLogTail is one read of a 256 KiB tail (the first read,
// or one after a rotation), 1 in 20 lines the kubelet's naming a cause.
func BenchmarkKubeletLogTail(b *testing.B) {
	root := b.TempDir()
	var sb strings.Builder
	for i := 0; sb.Len() < 2*kubeletLogTail; i++ {
		if i%20 == 0 {
			fmt.Fprintf(&sb, "Aug 18 11:%02d:%02d kali kubelet[3636559]: E0818 11:41:46.325093 3636559 kubelet.go:2370] \"Skipping pod synchronization\" err=\"PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s\" n=%d\n", i/60%60, i%60, i)
		} else {
			fmt.Fprintf(&sb, "Aug 18 11:%02d:%02d kali kubelet[3636559]: I0818 11:41:46.325093 3636559 reconciler_common.go:245] \"operationExecutor.VerifyControllerAttachedVolume started\" n=%d\n", i/60%60, i%60, i)
		}
	}
	writeFile(b, root, "var/log/messages", sb.String())
	r := newKubeletLogReader(root, nil)
	now := time.Date(2025, 8, 18, 12, 0, 0, 0, time.Local)
	kept := make([]v1alpha1.LogLine, 0, maxKernelLog)
	b.SetBytes(kubeletLogTail)
	b.ReportAllocs()
	for b.Loop() {
		r.offset, r.info = -1, nil
		clear(r.seen)
		clear(r.seenRing[:])
		kept = kept[:0]
		if err := r.read(now, &kept); err != nil {
			b.Fatal(err)
		}
	}
	if len(kept) != maxKernelLog {
		b.Fatalf("kept %d lines", len(kept))
	}
}
