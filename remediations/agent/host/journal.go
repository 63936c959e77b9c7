package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// The journal reader's bounds.
const (
	// JournalInterval: the units' journal is read at most this often.
	JournalInterval = 30 * time.Second
	// journalDeadline bounds one journalctl run.
	journalDeadline = 2 * time.Second
	// journalSince and journalEntries bound what one run reads: the last 10
	// minutes of the unit, at most its last 500 entries.
	journalSince   = "-10min"
	journalEntries = 500
	// maxJournalOutput bounds what is read of journalctl's output (500
	// entries of a few KiB each).
	maxJournalOutput = 4 << 20
	// maxUnitLogs is the API's limit on UnitState.Logs.
	maxUnitLogs = 5
)

// DefaultJournalDirs are where journald keeps the journal: persistent, then
// volatile (Storage=auto uses /var/log/journal when it exists).
func DefaultJournalDirs() []string { return []string{"/var/log/journal", "/run/log/journal"} }

// journalSource returns a unit's journal entries of the last 10 minutes, at
// most 500, as journalctl --output=json prints them (one JSON object a
// line). Implemented by journalctl and, in tests, by canned output.
type journalSource interface {
	read(ctx context.Context, unit string) ([]byte, error)
}

// JournalOptions configure a Journal.
type JournalOptions struct {
	// Root is the host's root as mounted in the agent's container (as
	// ProcOptions.Root), default "/".
	Root string
	// Journalctl is the journalctl binary, default "journalctl" (see
	// journalctl for how it is found).
	Journalctl string
	// Dirs are the host's journal directories, default DefaultJournalDirs;
	// the first that exists is read when the agent runs its own journalctl
	// on a mounted host root.
	Dirs []string
	// Units are the units whose journal is read.
	Units Units
	// Clock is injected for tests; default the real clock.
	Clock clock.Clock
}

// Journal reads the error and fatal lines of the kubelet's and the
// container runtime's units from the systemd journal, at most every
// JournalInterval, and keeps each unit's newest 5, repeats folded into one
// line with a count (see foldJournal).
//
// It runs the host's journalctl rather than reading the journal files
// itself: go-systemd's sdjournal binds libsystemd with cgo, which does not
// suit the agent's static image, and the journal's file format (compact
// mode, compression, keyed hashes) is systemd's to evolve.
//
// A Journal is safe for concurrent use; a read holds its lock (at most
// journalDeadline per unit), so a concurrent caller waits for it.
type Journal struct {
	src   journalSource
	units Units
	clock clock.Clock

	mu       sync.Mutex
	next     time.Time // when to read again
	read     bool      // a read was tried
	readable bool      // the last read succeeded for at least one unit
	errMsg   string    // why the last read failed, "" if it did not
	lines    map[v1alpha1.Unit][]v1alpha1.LogLine
}

// NewJournal returns a Journal that runs journalctl. It runs nothing until
// it is first asked.
func NewJournal(opts JournalOptions) *Journal {
	root := opts.Root
	if root == "" {
		root = "/"
	}
	root = strings.TrimSuffix(path.Clean(root), "/")
	bin := opts.Journalctl
	if bin == "" {
		bin = "journalctl"
	}
	dirs := opts.Dirs
	if len(dirs) == 0 {
		dirs = DefaultJournalDirs()
	}
	src := &journalctl{root: root, bin: bin}
	for _, d := range dirs {
		src.dirs = append(src.dirs, cleanHostPath(d))
	}
	return newJournal(src, opts.Units, opts.Clock)
}

func newJournal(src journalSource, units Units, clk clock.Clock) *Journal {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Journal{src: src, units: units, clock: clk}
}

// Lines returns the unit's kept journal lines, newest last (nil if none),
// reading the journal first if it is due.
func (j *Journal) Lines(ctx context.Context, unit v1alpha1.Unit) []v1alpha1.LogLine {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.refresh(ctx)
	return copyLines(j.lines[unit])
}

// Status says whether the journal could be read (the last read succeeded
// for at least one unit) and, if a read failed, why, as a line for the
// probes' Errors. It reads the journal first if it is due.
func (j *Journal) Status(ctx context.Context) (readable bool, errMsg string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.refresh(ctx)
	return j.readable, j.errMsg
}

// refresh reads every unit's journal if JournalInterval passed since the
// last read. A unit whose read fails keeps no lines (stale ones would look
// current) and adds to errMsg.
func (j *Journal) refresh(ctx context.Context) {
	now := j.clock.Now()
	if j.read && now.Before(j.next) {
		return
	}
	j.read, j.next = true, now.Add(JournalInterval)
	lines := map[v1alpha1.Unit][]v1alpha1.LogLine{}
	var errs []string
	readable := false
	for _, unit := range slices.Sorted(func(yield func(v1alpha1.Unit) bool) {
		for u := range j.units {
			if !yield(u) {
				return
			}
		}
	}) {
		name := j.units[unit]
		if name == "" {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, journalDeadline)
		out, err := j.src.read(rctx, name)
		cancel()
		if err != nil {
			errs = append(errs, name+": "+err.Error())
			continue
		}
		readable = true
		if l := foldJournal(parseJournal(out), journalSourceName(unit)); len(l) > 0 {
			lines[unit] = l
		}
	}
	j.lines, j.readable, j.errMsg = lines, readable, ""
	if len(errs) > 0 {
		j.errMsg = truncateText([]byte("journal: "+strings.Join(errs, "; ")), 240)
	}
}

// journalSourceName is LogLine.Source for a unit's lines.
func journalSourceName(u v1alpha1.Unit) string {
	if u == v1alpha1.UnitContainerRuntime {
		return "containerRuntime"
	}
	return string(u)
}

func copyLines(in []v1alpha1.LogLine) []v1alpha1.LogLine {
	if len(in) == 0 {
		return nil
	}
	out := make([]v1alpha1.LogLine, len(in))
	for i, l := range in {
		out[i] = *l.DeepCopy()
	}
	return out
}

// journalEntry is one journal entry of interest.
type journalEntry struct {
	time     time.Time // zero: unknown
	priority int       // -1: unknown
	message  string
}

// parseJournal parses journalctl --output=json: one object a line, MESSAGE
// a string, or an array of bytes when it is not valid UTF-8, or null when
// it is longer than journalctl prints (4096 bytes without --all; such an
// entry is skipped); __REALTIME_TIMESTAMP and PRIORITY are decimal strings.
// A line that does not parse is skipped.
func parseJournal(out []byte) []journalEntry {
	var entries []journalEntry
	for line := range lines(out) {
		line = trimSpace(line)
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var raw struct {
			Message  json.RawMessage `json:"MESSAGE"`
			Realtime string          `json:"__REALTIME_TIMESTAMP"`
			Priority string          `json:"PRIORITY"`
		}
		if json.Unmarshal(line, &raw) != nil {
			continue
		}
		msg, ok := journalMessage(raw.Message)
		if !ok {
			continue
		}
		e := journalEntry{message: msg, priority: -1}
		if usec, err := strconv.ParseInt(raw.Realtime, 10, 64); err == nil && usec > 0 {
			e.time = time.UnixMicro(usec)
		}
		if p, err := strconv.Atoi(raw.Priority); err == nil && p >= 0 && p <= 7 {
			e.priority = p
		}
		entries = append(entries, e)
	}
	return entries
}

// journalMessage decodes MESSAGE: a string or an array of bytes.
func journalMessage(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var b []byte
	var ints []int
	if json.Unmarshal(raw, &ints) != nil {
		return "", false
	}
	for _, v := range ints {
		if v < 0 || v > 255 {
			return "", false
		}
		b = append(b, byte(v))
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), true
}

// journalCauses are phrases that make a line worth keeping whatever its
// level: the kubelet's and the runtime's fatal ends, fork failures (PID
// exhaustion) and read-only filesystems.
var journalCauses = []string{
	"failed to run Kubelet",
	"command failed",
	"fork/exec",
	"resource temporarily unavailable",
	"read-only file system",
}

// journalError reports whether an entry is an error or fatal line: syslog
// priority err or worse, a klog E or F line (the kubelet logs to stderr, so
// journald gives every kubelet line priority info), a logfmt level=error,
// fatal or panic line (containerd), or a line naming one of journalCauses.
func journalError(e journalEntry) bool {
	if e.priority >= 0 && e.priority <= 3 {
		return true
	}
	msg := e.message
	if klogHeaderLen(msg) > 0 && (msg[0] == 'E' || msg[0] == 'F') {
		return true
	}
	if lvl, ok := logfmtLevel(msg); ok {
		return lvl == "error" || lvl == "fatal" || lvl == "panic"
	}
	for _, s := range journalCauses {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// klogHeaderLen is the length of a klog header with its trailing space,
// "E0304 10:00:01.123456   12345 file.go:74] ", or 0 if msg has none.
func klogHeaderLen(msg string) int {
	// Lmmdd hh:mm:ss.uuuuuu
	const stamp = "L0102 15:04:05"
	if len(msg) < len(stamp)+2 || !strings.ContainsRune("IWEF", rune(msg[0])) {
		return 0
	}
	for i := 1; i < len(stamp); i++ {
		c := msg[i]
		switch stamp[i] {
		case ' ', ':':
			if c != stamp[i] {
				return 0
			}
		default:
			if !isDigit(c) {
				return 0
			}
		}
	}
	end := strings.Index(msg, "] ")
	if end < 0 || end > 120 {
		return 0
	}
	return end + 2
}

// logfmtLevel returns the value of a logfmt level= field, as containerd
// writes it: time="2024-03-05T10:00:01.123456789Z" level=error msg="...".
func logfmtLevel(msg string) (string, bool) {
	i := strings.Index(msg, "level=")
	if i < 0 || (i > 0 && msg[i-1] != ' ') {
		return "", false
	}
	v := msg[i+len("level="):]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return strings.Trim(v, `"`), true
}

// meaningfulText drops what a line repeats in every entry and the journal
// says already: a klog header, a logfmt time= field.
func meaningfulText(msg string) string {
	msg = strings.TrimSpace(msg)
	if n := klogHeaderLen(msg); n > 0 {
		return strings.TrimSpace(msg[n:])
	}
	if rest, ok := strings.CutPrefix(msg, "time="); ok {
		if strings.HasPrefix(rest, `"`) {
			if j := strings.IndexByte(rest[1:], '"'); j >= 0 {
				return strings.TrimSpace(rest[j+2:])
			}
		} else if j := strings.IndexByte(rest, ' '); j >= 0 {
			return strings.TrimSpace(rest[j+1:])
		}
	}
	return msg
}

// foldKey is text with what differs between repeats of a line replaced by
// '#': decimal numbers (times, PIDs, counts, ports) and hex ids (container
// and sandbox ids, pod UIDs: a run of hex digits, dashes between them, of 8
// or more digits, one of them decimal).
func foldKey(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	for i := 0; i < len(text); {
		if !isHex(text[i]) {
			b.WriteByte(text[i])
			i++
			continue
		}
		j, n := i, 0
		decimal, letters := false, false
		for j < len(text) {
			c := text[j]
			if c == '-' && j+1 < len(text) && isHex(text[j+1]) {
				j++
				continue
			}
			if !isHex(c) {
				break
			}
			if isDigit(c) {
				decimal = true
			} else {
				letters = true
			}
			n++
			j++
		}
		if decimal && (!letters || n >= 8) {
			b.WriteByte('#')
		} else {
			b.WriteString(text[i:j])
		}
		i = j
	}
	return b.String()
}

func isHex(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }

// foldJournal keeps the error and fatal entries, folds repeats (the same
// foldKey) into one line with Count, FirstTime and Time of the last, and
// returns the newest maxUnitLogs lines by their last time, newest last. Text
// is the last repeat's meaningful text, truncated to 256 characters.
func foldJournal(entries []journalEntry, source string) []v1alpha1.LogLine {
	type group struct {
		text        string
		first, last time.Time
		count       int32
		order       int // index of the last repeat, for entries without time
	}
	groups := map[string]*group{}
	for i, e := range entries {
		if !journalError(e) {
			continue
		}
		text := meaningfulText(e.message)
		if text == "" {
			continue
		}
		key := foldKey(text)
		g := groups[key]
		if g == nil {
			g = &group{first: e.time}
			groups[key] = g
		}
		g.text, g.last, g.order = text, e.time, i
		if g.count < 1<<30 {
			g.count++
		}
	}
	all := make([]*group, 0, len(groups))
	for _, g := range groups {
		all = append(all, g)
	}
	// journalctl prints in time order, so the entries' order is their
	// time's order.
	slices.SortFunc(all, func(a, b *group) int { return a.order - b.order })
	if len(all) > maxUnitLogs {
		all = all[len(all)-maxUnitLogs:]
	}
	var out []v1alpha1.LogLine
	for _, g := range all {
		l := v1alpha1.LogLine{Source: source, Text: v1alpha1.FitLogText(g.text)}
		if !g.last.IsZero() {
			t := metav1.NewTime(g.last)
			l.Time = &t
		}
		if g.count > 1 {
			l.Count = g.count
			if !g.first.IsZero() {
				t := metav1.NewTime(g.first)
				l.FirstTime = &t
			}
		}
		out = append(out, l)
	}
	return out
}

// journalctl runs journalctl. Where it comes from:
//
//   - Root "/" (the agent runs on the host, as a systemd unit): bin from
//     PATH, reading the system journal.
//   - Otherwise (a DaemonSet with the host's root mounted at Root): the
//     agent image's own journalctl if it has one, reading the first of dirs
//     that exists under Root with --directory; else the host's journalctl
//     (Root/usr/bin/journalctl or Root/bin/journalctl), run chrooted into
//     Root so that it finds the host's libraries and journal and reads the
//     journal format of the host's own systemd. The distroless image has no
//     journalctl, so on a DaemonSet it is the host's, which needs the host's
//     whole root mounted (read-only) at Root and the privilege to chroot.
//   - Neither: the read fails, naming what is missing; the probes report it
//     and the syslog file is read instead (kubeletLogReader).
type journalctl struct {
	root string // "" for "/"
	bin  string
	dirs []string // host paths
}

func (j *journalctl) read(ctx context.Context, unit string) ([]byte, error) {
	args := []string{"--output=json", "--unit=" + unit, "--since=" + journalSince,
		"--lines=" + strconv.Itoa(journalEntries), "--no-pager", "--quiet"}
	cmd, err := j.command(ctx, args)
	if err != nil {
		return nil, err
	}
	var stdout limitedBuffer
	var stderr limitedBuffer
	stdout.max, stderr.max = maxJournalOutput, 512
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "SYSTEMD_PAGER="}
	cmd.WaitDelay = 100 * time.Millisecond
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("journalctl: no answer within %s", journalDeadline)
		}
		if msg := firstLine(stderr.String()); msg != "" {
			return nil, fmt.Errorf("journalctl: %v: %s", err, msg)
		}
		return nil, fmt.Errorf("journalctl: %w", err)
	}
	return stdout.Bytes(), nil
}

// command builds the journalctl command (see journalctl).
func (j *journalctl) command(ctx context.Context, args []string) (*exec.Cmd, error) {
	if j.root == "" {
		bin, err := exec.LookPath(j.bin)
		if err != nil {
			return nil, fmt.Errorf("no journalctl: %w", err)
		}
		return exec.CommandContext(ctx, bin, args...), nil
	}
	if bin, err := exec.LookPath(j.bin); err == nil {
		for _, d := range j.dirs {
			if fi, err := os.Stat(j.root + d); err == nil && fi.IsDir() {
				return exec.CommandContext(ctx, bin, append([]string{"--directory=" + j.root + d}, args...)...), nil
			}
		}
		return nil, fmt.Errorf("no journal directory under %s (%s)", j.root, strings.Join(j.dirs, ", "))
	}
	candidates := []string{"/usr/bin/journalctl", "/bin/journalctl"}
	if path.IsAbs(j.bin) {
		candidates = []string{j.bin}
	}
	for _, c := range candidates {
		fi, err := os.Stat(j.root + c)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		cmd := exec.CommandContext(ctx, c, args...)
		if !chroot(cmd, j.root) {
			return nil, errors.New("no journalctl in the agent's image, and the host's can't be run here")
		}
		cmd.Dir = "/"
		return cmd, nil
	}
	return nil, fmt.Errorf("no journalctl in the agent's image nor at %s%s (is the host's root mounted at %s?)", j.root, candidates[0], j.root)
}

// limitedBuffer keeps at most max bytes and drops the rest.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room < len(p) {
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
