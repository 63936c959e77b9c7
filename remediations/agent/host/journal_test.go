package host

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Real kubelet and containerd journal lines (MESSAGE), as reported in
// public issues (kubernetes/kubernetes, kubeadm, containerd), with their
// klog headers.
const (
	swapLine        = `E0304 10:00:01.123456   12345 run.go:74] "command failed" err="failed to run Kubelet: running with swap on is not supported, please disable swap! or set --fail-swap-on flag to false. /proc/swaps contained: [Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority /dev/dm-1                               partition\t16760828\t0\t\t-2]"`
	swapLineOld     = `F0304 10:00:01.123456    2157 server.go:269] failed to run Kubelet: running with swap on is not supported, please disable swap! or set --fail-swap-on flag to false. /proc/swaps contained: [Filename				Type		Size	Used	Priority /swap.img                               file		2097148	0	-2]`
	configLine      = `E0304 10:00:01.123456   12345 run.go:74] "command failed" err="failed to load kubelet config file, path: /var/lib/kubelet/config.yaml, error: failed to load Kubelet config file /var/lib/kubelet/config.yaml, error failed to read kubelet config file \"/var/lib/kubelet/config.yaml\", error: open /var/lib/kubelet/config.yaml: no such file or directory"`
	cgroupLine      = `E0304 10:00:01.123456   12345 run.go:74] "command failed" err="failed to run Kubelet: misconfiguration: kubelet cgroup driver: \"systemd\" is different from docker cgroup driver: \"cgroupfs\""`
	bootstrapLine   = `E0304 10:00:01.123456   12345 run.go:74] "command failed" err="failed to run Kubelet: unable to load bootstrap kubeconfig: stat /etc/kubernetes/bootstrap-kubelet.conf: no such file or directory"`
	certExpiredLine = `E0304 10:00:01.123456   12345 bootstrap.go:265] part of the existing bootstrap client certificate in /etc/kubernetes/kubelet.conf is expired: 2024-03-01 09:38:12 +0000 UTC`
	cniLine         = `time="2024-03-04T10:00:01.123456789Z" level=error msg="failed to reload cni configuration after receiving fs change event(REMOVE        \"/etc/cni/net.d/10-calico.conflist\")" error="cni config load failed: no network config found in /etc/cni/net.d: cni plugin not initialized: failed to load cni config"`
	sandboxLine     = `time="2024-03-04T10:00:02.000000000Z" level=error msg="StopPodSandbox for \"0d3c3f5bd0f6c4d3a1e9bb2f3e5a7c9d1f2b4a6c8e0d2f4a6b8c0d2e4f6a8b0c\" failed" error="failed to destroy network for sandbox \"0d3c3f5bd0f6c4d3a1e9bb2f3e5a7c9d1f2b4a6c8e0d2f4a6b8c0d2e4f6a8b0c\": plugin type=\"calico\" failed (delete): error getting ClusterInformation: connection is unauthorized: Unauthorized"`
	forkLine        = `W0304 10:00:01.123456   12345 manager.go:1169] Failed to process watch event {EventType:0 Name:/kubepods.slice Err:fork/exec /usr/bin/runc: resource temporarily unavailable}`
	infoLine        = `I0304 10:00:01.100000   12345 server.go:487] "Kubelet version" kubeletVersion="v1.29.2"`
	warnLine        = `W0304 10:00:01.100000   12345 server.go:216] Flag --container-runtime-endpoint has been deprecated`
	containerdInfo  = `time="2024-03-04T10:00:00.000000000Z" level=info msg="starting containerd" revision=7c3aca7a610df76212171d200ca3811ff6096eb8 version=1.7.13`
	systemdExit     = `kubelet.service: Main process exited, code=exited, status=1/FAILURE`
)

var jt0 = time.Date(2024, 3, 4, 10, 0, 0, 0, time.UTC)

// jentry is a journal entry as journalctl --output=json prints it
// (numbers as decimal strings).
func jentry(at time.Duration, prio int, msg any) string {
	b, _ := json.Marshal(map[string]any{
		"__REALTIME_TIMESTAMP": strconv.FormatInt(jt0.Add(at).UnixMicro(), 10),
		"PRIORITY":             strconv.Itoa(prio),
		"MESSAGE":              msg,
		"_SYSTEMD_UNIT":        "kubelet.service",
		"SYSLOG_IDENTIFIER":    "kubelet",
	})
	return string(b)
}

func journalOf(entries ...string) []byte { return []byte(strings.Join(entries, "\n") + "\n") }

func TestFoldJournal(t *testing.T) {
	type want struct {
		text        string // prefix of the text
		count       int32
		first, last time.Duration // offsets from jt0; first only if count > 1
	}
	cases := []struct {
		name   string
		out    []byte
		source string
		want   []want
	}{
		// A kubelet crash-looping on swap: the same fatal line at every
		// start, with another time and PID each time, among info lines.
		{name: "swap crash loop folds into one line", source: "kubelet",
			out: journalOf(
				jentry(0, 6, infoLine), jentry(time.Second, 6, swapLine),
				jentry(10*time.Second, 6, infoLine), jentry(11*time.Second, 6, strings.Replace(swapLine, "12345", "12399", 1)),
				jentry(21*time.Second, 6, strings.Replace(swapLine, "10:00:01.123456", "10:00:21.000001", 1)),
				jentry(31*time.Second, 6, swapLine), jentry(41*time.Second, 6, swapLine),
				jentry(41*time.Second, 5, systemdExit)),
			want: []want{{text: `"command failed" err="failed to run Kubelet: running with swap on is not supported`, count: 5, first: time.Second, last: 41 * time.Second}}},
		// Older kubelets say it with klog's F and no structured fields.
		{name: "old kubelet fatal", source: "kubelet",
			out:  journalOf(jentry(0, 6, swapLineOld), jentry(time.Second, 6, warnLine)),
			want: []want{{text: "failed to run Kubelet: running with swap on is not supported", last: 0}}},
		{name: "missing config", source: "kubelet", out: journalOf(jentry(0, 6, configLine)),
			want: []want{{text: `"command failed" err="failed to load kubelet config file, path: /var/lib/kubelet/config.yaml`}}},
		{name: "cgroup driver", source: "kubelet", out: journalOf(jentry(0, 6, cgroupLine)),
			want: []want{{text: `"command failed" err="failed to run Kubelet: misconfiguration: kubelet cgroup driver: \"systemd\" is different from docker cgroup driver`}}},
		{name: "bootstrap kubeconfig", source: "kubelet", out: journalOf(jentry(0, 6, bootstrapLine)),
			want: []want{{text: `"command failed" err="failed to run Kubelet: unable to load bootstrap kubeconfig`}}},
		{name: "expired certificate", source: "kubelet", out: journalOf(jentry(0, 6, certExpiredLine)),
			want: []want{{text: "part of the existing bootstrap client certificate in /etc/kubernetes/kubelet.conf is expired"}}},
		// A fork failure is kept at any level.
		{name: "fork failure", source: "kubelet", out: journalOf(jentry(0, 6, forkLine)),
			want: []want{{text: "Failed to process watch event {EventType:0 Name:/kubepods.slice Err:fork/exec /usr/bin/runc: resource temporarily unavailable}"}}},
		// containerd logs logfmt: level=error kept, without its time field;
		// sandbox ids differing between repeats fold.
		{name: "containerd errors", source: "containerRuntime",
			out: journalOf(jentry(0, 6, containerdInfo), jentry(time.Second, 6, cniLine), jentry(2*time.Second, 6, sandboxLine),
				jentry(3*time.Second, 6, strings.ReplaceAll(sandboxLine, "0d3c3f5bd0f6c4d3", "9a8b7c6d5e4f3a2b"))),
			want: []want{
				{text: `level=error msg="failed to reload cni configuration`, last: time.Second},
				{text: `level=error msg="StopPodSandbox for \"9a8b7c6d5e4f3a2b`, count: 2, first: 2 * time.Second, last: 3 * time.Second}}},
		// A line of priority err or worse is kept whatever it says; info,
		// warning and systemd's notice lines are not.
		{name: "priority", source: "kubelet",
			out:  journalOf(jentry(0, 3, "Failed to start kubelet: something"), jentry(time.Second, 4, warnLine), jentry(2*time.Second, 5, systemdExit)),
			want: []want{{text: "Failed to start kubelet: something"}}},
		// MESSAGE as an array of bytes (not valid UTF-8); null (too long).
		{name: "byte array and null messages", source: "kubelet",
			out: journalOf(jentry(0, 6, []int{'E', '0', '3', '0', '4', ' ', '1', '0', ':', '0', '0', ':', '0', '1', '.', '1', ' ', '1', ' ', 'a', '.', 'g', 'o', ':', '1', ']', ' ', 'b', 'a', 'd', ' ', 0xff}),
				jentry(time.Second, 3, nil), `not json`, `{"MESSAGE": 5}`),
			want: []want{{text: "bad \uFFFD"}}},
		// More than 5 different errors: the newest 5, newest last.
		{name: "newest five", source: "kubelet",
			out: journalOf(jentry(0, 6, cgroupLine), jentry(time.Second, 6, configLine), jentry(2*time.Second, 6, bootstrapLine),
				jentry(3*time.Second, 6, certExpiredLine), jentry(4*time.Second, 6, swapLine), jentry(5*time.Second, 6, forkLine),
				jentry(6*time.Second, 6, swapLineOld), jentry(7*time.Second, 6, cgroupLine)),
			want: []want{
				{text: "part of the existing bootstrap", last: 3 * time.Second},
				{text: `"command failed" err="failed to run Kubelet: running with swap`, last: 4 * time.Second},
				{text: "Failed to process watch event", last: 5 * time.Second},
				{text: "failed to run Kubelet: running with swap", last: 6 * time.Second},
				{text: `"command failed" err="failed to run Kubelet: misconfiguration`, count: 2, first: 0, last: 7 * time.Second}}},
		{name: "nothing", source: "kubelet", out: journalOf(jentry(0, 6, infoLine), jentry(0, 6, containerdInfo))},
		{name: "empty", source: "kubelet", out: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := foldJournal(parseJournal(tc.out), tc.source)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d lines, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if !strings.HasPrefix(g.Text, w.text) {
					t.Errorf("line %d text = %q, want it to start with %q", i, g.Text, w.text)
				}
				if len([]rune(g.Text)) > maxLogText {
					t.Errorf("line %d: %d characters", i, len([]rune(g.Text)))
				}
				if g.Source != tc.source || g.Count != w.count {
					t.Errorf("line %d source/count = %s/%d, want %s/%d", i, g.Source, g.Count, tc.source, w.count)
				}
				if g.Time == nil || !g.Time.Time.Equal(jt0.Add(w.last)) {
					t.Errorf("line %d time = %v, want %v", i, g.Time, jt0.Add(w.last))
				}
				if (g.FirstTime != nil) != (w.count > 1) || (g.FirstTime != nil && !g.FirstTime.Time.Equal(jt0.Add(w.first))) {
					t.Errorf("line %d firstTime = %v, want %v (count %d)", i, g.FirstTime, jt0.Add(w.first), w.count)
				}
			}
		})
	}
}

func TestFoldKey(t *testing.T) {
	cases := []struct{ a, b string }{
		{`Failed to start pod 8b2f0a4e-1c3d-4e5f-9a8b-7c6d5e4f3a2b: exit 137`, `Failed to start pod 1d2c3b4a-5e6f-4a8b-9c0d-e1f2a3b4c5d6: exit 1`},
		{`sandbox "0d3c3f5bd0f6c4d3a1e9" failed`, `sandbox "ffee3f5bd0f6c4d3a1e9" failed`},
		{`lookup 10.96.0.10:53 timed out`, `lookup 10.96.0.1:53 timed out`},
	}
	for _, tc := range cases {
		if foldKey(tc.a) != foldKey(tc.b) {
			t.Errorf("foldKey(%q) = %q != foldKey(%q) = %q", tc.a, foldKey(tc.a), tc.b, foldKey(tc.b))
		}
	}
	// Words are not numbers.
	if foldKey("dead cafe added") != "dead cafe added" || foldKey("error: deadline") == foldKey("error: deadlock") {
		t.Errorf("foldKey folds words: %q", foldKey("dead cafe added"))
	}
}

// cannedJournal answers with canned output per unit and counts reads.
type cannedJournal struct {
	mu    sync.Mutex
	out   map[string][]byte
	err   map[string]error
	reads int
	block bool // wait for the deadline
}

func (c *cannedJournal) read(ctx context.Context, unit string) ([]byte, error) {
	c.mu.Lock()
	c.reads++
	block := c.block
	c.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, errors.New("journalctl: no answer within 2s")
	}
	if err := c.err[unit]; err != nil {
		return nil, err
	}
	return c.out[unit], nil
}

func TestJournalRefresh(t *testing.T) {
	clk := clocktesting.NewFakeClock(jt0)
	src := &cannedJournal{out: map[string][]byte{
		"kubelet.service":    journalOf(jentry(0, 6, swapLine), jentry(time.Second, 6, swapLine)),
		"containerd.service": journalOf(jentry(0, 6, cniLine)),
	}, err: map[string]error{}}
	j := newJournal(src, DefaultUnits(), clk)
	ctx := context.Background()

	kl := j.Lines(ctx, v1alpha1.UnitKubelet)
	if len(kl) != 1 || kl[0].Count != 2 || kl[0].Source != "kubelet" {
		t.Fatalf("kubelet lines = %+v", kl)
	}
	cl := j.Lines(ctx, v1alpha1.UnitContainerRuntime)
	if len(cl) != 1 || cl[0].Source != "containerRuntime" {
		t.Fatalf("runtime lines = %+v", cl)
	}
	if ok, msg := j.Status(ctx); !ok || msg != "" {
		t.Errorf("Status = %v %q, want readable", ok, msg)
	}
	if src.reads != 2 {
		t.Errorf("reads = %d, want 2 (one per unit, then cached)", src.reads)
	}
	// Not read again within the interval.
	clk.Step(JournalInterval - time.Second)
	j.Lines(ctx, v1alpha1.UnitKubelet)
	if src.reads != 2 {
		t.Errorf("reads = %d within the interval, want 2", src.reads)
	}
	// A failing unit keeps no lines and says why; the other still reads.
	src.err["kubelet.service"] = errors.New("journalctl: exit status 1: Failed to open files")
	clk.Step(time.Second)
	if l := j.Lines(ctx, v1alpha1.UnitKubelet); l != nil {
		t.Errorf("kubelet lines after a failed read = %+v, want none", l)
	}
	ok, msg := j.Status(ctx)
	if !ok || !strings.Contains(msg, "journal: kubelet.service: journalctl: exit status 1") {
		t.Errorf("Status = %v %q", ok, msg)
	}
	// Every read failing: not readable.
	src.err["containerd.service"] = errors.New("no journalctl")
	clk.Step(JournalInterval)
	if ok, msg := j.Status(ctx); ok || msg == "" {
		t.Errorf("Status = %v %q, want not readable with a reason", ok, msg)
	}
}

func TestJournalDeadline(t *testing.T) {
	src := &cannedJournal{block: true}
	j := newJournal(src, Units{v1alpha1.UnitKubelet: "kubelet.service"}, clocktesting.NewFakeClock(jt0))
	start := time.Now()
	ok, msg := j.Status(context.Background())
	if d := time.Since(start); d > journalDeadline+time.Second {
		t.Errorf("a hung journalctl held the probe %s", d)
	}
	if ok || !strings.Contains(msg, "no answer") {
		t.Errorf("Status = %v %q", ok, msg)
	}
}

// TestJournalctl runs a stand-in journalctl (a shell script) the way the
// agent runs the image's own: with --directory under the host root.
func TestJournalctl(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "host")
	if err := os.MkdirAll(filepath.Join(root, "run/log/journal"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "journalctl")
	args := filepath.Join(dir, "args")
	body := "#!/bin/sh\necho \"$@\" > " + args + "\necho '" + jentry(0, 6, swapLine) + "'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	j := NewJournal(JournalOptions{Root: root, Journalctl: script, Units: Units{v1alpha1.UnitKubelet: "kubelet.service"}})
	l := j.Lines(context.Background(), v1alpha1.UnitKubelet)
	if len(l) != 1 || !strings.Contains(l[0].Text, "swap") {
		t.Fatalf("lines = %+v", l)
	}
	got, _ := os.ReadFile(args)
	want := "--directory=" + root + "/run/log/journal --output=json --unit=kubelet.service --since=-10min --lines=500 --no-pager --quiet\n"
	if string(got) != want {
		t.Errorf("journalctl args = %q, want %q", got, want)
	}

	// No journalctl anywhere: the gap is named.
	j = NewJournal(JournalOptions{Root: root, Journalctl: "no-such-journalctl", Units: Units{v1alpha1.UnitKubelet: "kubelet.service"}})
	if ok, msg := j.Status(context.Background()); ok || !strings.Contains(msg, "no journalctl") {
		t.Errorf("Status = %v %q, want the missing journalctl named", ok, msg)
	}
}

// TestJournalOrSyslog: the kubelet's lines come from its journal when it can
// be read, from the syslog file only when it can't, never from both.
func TestJournalOrSyslog(t *testing.T) {
	root := newRoot(t)
	writeFile(t, root, "var/log/messages", "Aug 18 11:41:46 kali kubelet[1]: E0818 11:41:46.1 1 server.go:1] failed to run Kubelet: from syslog\n")
	clk := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	src := &cannedJournal{err: map[string]error{"kubelet.service": errors.New("no journalctl in the agent's image")}}
	j := newJournal(src, Units{v1alpha1.UnitKubelet: "kubelet.service"}, clk)
	p := NewProc(ProcOptions{Root: root, Clock: clk, Journal: j})
	t.Cleanup(func() { _ = p.Close() })

	got := p.Probe(context.Background())
	if kl := kubeletLines(got.KernelLog); len(kl) != 1 || !strings.Contains(kl[0].Text, "from syslog") {
		t.Errorf("journal unreadable: kubelet lines = %s, want the syslog one", dumpLog(kl))
	}
	if !slices.ContainsFunc(got.Errors, func(e string) bool { return strings.Contains(e, "journal: kubelet.service: no journalctl") }) {
		t.Errorf("Errors = %q, want the journal's gap", got.Errors)
	}

	// The journal becomes readable: the syslog line goes, the journal's is
	// in the unit's Logs.
	src.err = nil
	src.out = map[string][]byte{"kubelet.service": journalOf(jentry(0, 6, swapLine))}
	clk.Step(JournalInterval)
	got = p.Probe(context.Background())
	if kl := kubeletLines(got.KernelLog); len(kl) != 0 {
		t.Errorf("journal readable: kubelet lines in KernelLog = %s, want none", dumpLog(kl))
	}
	if len(got.Errors) != 0 {
		t.Errorf("Errors = %q", got.Errors)
	}
	if l := j.Lines(context.Background(), v1alpha1.UnitKubelet); len(l) != 1 {
		t.Errorf("unit lines = %+v", l)
	}
}
