package host

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Fuzz targets for the agent's parsers of /proc files and of kernel and
// kubelet log lines: whatever the bytes, a parser never panics, its results
// stay within their bounds, and it agrees with a plain reference parser
// (strings, strconv, regexp) written for the test, so a valid input parses
// to the value the kernel meant. The seeds are the real inputs of the table
// tests and of testdata/root; testdata/fuzz holds more. `make fuzz` runs
// each for a few seconds, `make fuzz FUZZTIME=5m` longer.

// procSeed reads a file of testdata/root.
func procSeed(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "root", filepath.FromSlash(name)))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// refFields splits like nextField: on ' ', '\t', '\n' and '\r'.
func refFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}

// refInt parses a non-negative decimal of digits only, as parseInt.
func refInt(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// refLines splits like lines: no empty last line after a final '\n'.
func refLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func FuzzParseMeminfo(f *testing.F) {
	f.Add(procSeed(f, "proc/meminfo"))
	for _, s := range []string{
		"MemTotal: lots kB\nMemAvailable: 100 kB\n",
		"MemTotal: 1000 kB\nMemFree: 10 kB\n",
		"MemTotal: 1000 MB\nMemAvailable: 10 kB\n",
		"\x00\xff\n:::\n\n",
		"MemTotal: 9007199254740993 kB\nMemAvailable: 1 kB",
		"MemAvailable:\t5\nMemTotal:7 kB extra\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		total, avail, ok := parseMeminfo(b)
		// Reference: the first line that completes both wins; a later
		// line of the same name replaces an earlier one until then.
		var wt, wa int64
		var ht, ha, wok bool
		for _, line := range refLines(string(b)) {
			var v string
			var isTotal bool
			if rest, found := strings.CutPrefix(line, "MemTotal:"); found {
				v, isTotal = rest, true
			} else if rest, found := strings.CutPrefix(line, "MemAvailable:"); found {
				v = rest
			} else {
				continue
			}
			n, good := refKB(v)
			if isTotal {
				wt, ht = n, good
			} else {
				wa, ha = n, good
			}
			if ht && ha {
				wok = true
				break
			}
		}
		if !wok {
			wt, wa = 0, 0
		}
		if total != wt || avail != wa || ok != wok {
			t.Fatalf("parseMeminfo(%q) = %d, %d, %v; reference %d, %d, %v", b, total, avail, ok, wt, wa, wok)
		}
		if total < 0 || avail < 0 {
			t.Fatalf("parseMeminfo(%q): negative size %d, %d", b, total, avail)
		}
	})
}

// refKB is parseKB by strconv: "<n> kB" in bytes, or a bare count.
func refKB(v string) (int64, bool) {
	fs := refFields(v)
	if len(fs) == 0 {
		return 0, false
	}
	n, ok := refInt(fs[0])
	if !ok {
		return 0, false
	}
	if len(fs) == 1 {
		return n, true
	}
	if fs[1] != "kB" || n > math.MaxInt64/1024 {
		return 0, false
	}
	return n * 1024, true
}

// A valid /proc/meminfo, whatever its sizes and the lines around, parses to
// those sizes.
func FuzzMeminfoValid(f *testing.F) {
	f.Add(uint64(16318480), uint64(9461232), "MemFree:          702348 kB\n", true)
	f.Add(uint64(0), uint64(0), "", false)
	f.Add(uint64(math.MaxInt64/1024), uint64(1), "HugePages_Total:       0\n", true)
	f.Fuzz(func(t *testing.T, totalKB, availKB uint64, other string, availFirst bool) {
		totalKB %= math.MaxInt64/1024 + 1
		availKB %= math.MaxInt64/1024 + 1
		// Lines that are not the two asked for, as the kernel writes them.
		var filler strings.Builder
		for _, l := range refLines(other) {
			if strings.HasPrefix(l, "MemTotal:") || strings.HasPrefix(l, "MemAvailable:") {
				continue
			}
			filler.WriteString(l + "\n")
		}
		tl := "MemTotal:       " + strconv.FormatUint(totalKB, 10) + " kB\n"
		al := "MemAvailable:    " + strconv.FormatUint(availKB, 10) + " kB\n"
		in := tl + filler.String() + al + filler.String()
		if availFirst {
			in = al + filler.String() + tl
		}
		total, avail, ok := parseMeminfo([]byte(in))
		if !ok || total != int64(totalKB)*1024 || avail != int64(availKB)*1024 {
			t.Fatalf("parseMeminfo(%q) = %d, %d, %v; want %d, %d, true", in, total, avail, ok, totalKB*1024, availKB*1024)
		}
	})
}

func FuzzParseMilli(f *testing.F) {
	for _, s := range []string{"176.04", "1.005", "0.29", "0.00", "3", "2.5", "2.3456", "", "1.", ".5", "-1.00", "1e3", "1.0x", "99999999999999999999.00", "9223372036854774.999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseMilli([]byte(s))
		want, wok := refMilli(s)
		if got != want || ok != wok {
			t.Fatalf("parseMilli(%q) = %d, %v; reference %d, %v", s, got, ok, want, wok)
		}
		if ok {
			if got < 0 {
				t.Fatalf("parseMilli(%q) = %d < 0", s, got)
			}
			// Printed with three decimals, it reads back the same.
			back := strconv.FormatInt(got/1000, 10) + "." + strconv.FormatInt(1000+got%1000, 10)[1:]
			if again, ok := parseMilli([]byte(back)); !ok || again != got {
				t.Fatalf("parseMilli(%q) = %d, %v; want %d (from %q)", back, again, ok, got, s)
			}
		}
	})
}

// refMilli is parseMilli by strconv.
func refMilli(s string) (int64, bool) {
	ip, frac, dot := strings.Cut(s, ".")
	n, ok := refInt(ip)
	if !ok || n > math.MaxInt64/1000-1 {
		return 0, false
	}
	if dot {
		if frac == "" || strings.TrimLeft(frac, "0123456789") != "" {
			return 0, false
		}
	}
	frac = (frac + "000")[:3]
	m, _ := strconv.ParseInt(frac, 10, 64)
	return n*1000 + m, true
}

func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "4194304", "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616", "", "-1", "+1", "1_000", " 1", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseInt([]byte(s))
		want, wok := refInt(s)
		if got != want || ok != wok {
			t.Fatalf("parseInt(%q) = %d, %v; reference %d, %v", s, got, ok, want, wok)
		}
		gu, uok := parseUint([]byte(s))
		var wu uint64
		var wuok bool
		if s != "" && strings.TrimLeft(s, "0123456789") == "" {
			var err error
			wu, err = strconv.ParseUint(s, 10, 64)
			wuok = err == nil
		}
		if !wuok {
			wu = 0
		}
		if gu != wu || uok != wuok {
			t.Fatalf("parseUint(%q) = %d, %v; reference %d, %v", s, gu, uok, wu, wuok)
		}
		// pid_max as the kernel writes it: the number and a newline.
		want, wok = refInt(strings.Trim(s, " \t\r\n"))
		if pm, ok := parsePidMax([]byte(" " + s + "\n")); pm != want || ok != wok {
			t.Fatalf("parsePidMax(%q) = %d, %v; want %d, %v", s+"\n", pm, ok, want, wok)
		}
	})
}

func FuzzParseLoadavg(f *testing.F) {
	f.Add(procSeed(f, "proc/loadavg"))
	for _, s := range []string{"abc\n", "1.00 1.00 1.00 12 99\n", "1e3 1.00 1.00 1/12 99\n", "0.52 0.58 0.59 2/1234 5678\n", "0.00 0.00 0.00 1/1 1", "\t1.5  x y 3/4/5 6\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		load, threads, ok := parseLoadavg(b)
		var wl, wt int64
		var wok bool
		fs := refFields(string(b))
		for len(fs) < 4 {
			fs = append(fs, "")
		}
		l, ok1 := refMilli(fs[0])
		_, total, slash := strings.Cut(fs[3], "/")
		n, ok2 := refInt(total)
		if ok1 && ok2 && slash {
			wl, wt, wok = l, n, true
		}
		if load != wl || threads != wt || ok != wok {
			t.Fatalf("parseLoadavg(%q) = %d, %d, %v; reference %d, %d, %v", b, load, threads, ok, wl, wt, wok)
		}
		if load < 0 || threads < 0 {
			t.Fatalf("parseLoadavg(%q): negative %d, %d", b, load, threads)
		}
	})
}

func FuzzParseStat(f *testing.F) {
	f.Add(procSeed(f, "proc/stat"))
	f.Add(procSeed(f, "proc/vmstat"))
	for _, s := range []string{"cpu  1 2 3 4\nbtime 1700000000\n", "cpu0\ncpu1 \ncpux\ncpu\nbtime x\n", "btime 1\nbtime 2", "oom_kill 3\n", "oom_kill_x 3\noom_kill 4\n", "oom_kill  \noom_kill 5\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cpus, btime := parseStat(b)
		var wc int32
		var wb int64
		var oom int64
		var oomOK, oomSeen bool
		for _, line := range refLines(string(b)) {
			if len(line) > 3 && strings.HasPrefix(line, "cpu") && line[3] >= '0' && line[3] <= '9' {
				wc++
			} else if v, ok := strings.CutPrefix(line, "btime "); ok {
				if n, ok := refInt(strings.Trim(v, " \t\r\n")); ok {
					wb = n
				}
			}
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok && !oomSeen {
				oomSeen = true
				oom, oomOK = refInt(strings.Trim(v, " \t\r\n"))
			}
		}
		if cpus != wc || btime != wb {
			t.Fatalf("parseStat(%q) = %d, %d; reference %d, %d", b, cpus, btime, wc, wb)
		}
		if cpus < 0 || btime < 0 {
			t.Fatalf("parseStat(%q): negative %d, %d", b, cpus, btime)
		}
		// /proc/vmstat: the first oom_kill line's number.
		if n, ok := parseVmstatOOMKills(b); n != oom || ok != oomOK {
			t.Fatalf("parseVmstatOOMKills(%q) = %d, %v; reference %d, %v", b, n, ok, oom, oomOK)
		}
	})
}

func FuzzProcState(f *testing.F) {
	for _, name := range []string{"proc/1/stat", "proc/42/stat", "proc/77/stat", "proc/100/stat"} {
		f.Add(procSeed(f, name))
	}
	for _, s := range []string{"1 (systemd) S 0 1", "42 (my (weird) proc) Z 1 42", "100 (x) Z (y) S 1 100", "7 () R 1", "8 (a)b) D 1", "9 (sh)", "9 (sh) ", "10 (sh)Z", "no parens", "", "300 (no closing paren Z\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := procState(b)
		var want byte
		s := string(b)
		if i := strings.LastIndex(s, ")"); i >= 0 && i+2 < len(s) && s[i+1] == ' ' {
			want = s[i+2]
		}
		if got != want {
			t.Fatalf("procState(%q) = %q; reference %q", b, got, want)
		}
	})
}

// refKernelCause is kernelCause by strings and regexp.
var refTaskBlocked = regexp.MustCompile(`(?s)task .* blocked`)

func refKernelCause(msg string) bool {
	for _, c := range kernelCauses {
		if strings.Contains(msg, c) {
			return true
		}
	}
	if strings.Contains(msg, "XFS (") && (strings.Contains(msg, "rror") || strings.Contains(msg, "Corruption") || strings.Contains(msg, "shut down")) {
		return true
	}
	return refTaskBlocked.MatchString(msg)
}

func FuzzKernelCause(f *testing.F) {
	for _, s := range []string{
		"Out of memory: Killed process 999 (java) total-vm:8123456kB",
		"oom-kill:constraint=CONSTRAINT_MEMCG,task=stress,pid=4321,uid=0",
		"Memory cgroup out of memory: Killed process 4321 (stress)",
		"INFO: task kworker/u8:3:1234 blocked for more than 122 seconds.",
		"task containerd:77 blocked",
		"EXT4-fs error (device sdb1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0",
		"EXT4-fs (sdb1): Remounting filesystem read-only",
		"stress invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0",
		"task:jbd2/sda1-8 state:D stack:0 pid:1234",
		"task_memcg=/kubepods blocked",
		"eth0: link up",
		"task  blocked",
		"task blocked",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := kernelCause(b), refKernelCause(string(b)); got != want {
			t.Fatalf("kernelCause(%q) = %v; reference %v", b, got, want)
		}
	})
}

// /dev/kmsg records, "prio,seq,usec,flags;message" and " KEY=value"
// continuations: only facility-0 lines naming a cause are kept, newest 10,
// each cut to 256 characters, however the bytes arrive.
func FuzzKmsgConsume(f *testing.F) {
	kmsg := procSeed(f, "dev/kmsg")
	f.Add(kmsg, uint16(0), int64(testBtime))
	f.Add(kmsg, uint16(len(kmsg)/2), int64(0))
	for _, s := range []string{
		"3,960,7200000000,-;Out of memory: Killed process 999 (java)\n",
		"3,1,1,-;INFO: task a blocked\n3,1,2,-;INFO: task b blocked\n3,0,3,-;task c blocked\n",
		"11,5,1,-;Out of memory: Killed process 1\n",
		"3,18446744073709551615,18446744073709551615,-;oom-kill:\n",
		"3,x,1,-;oom-kill:\n;oom-kill:\n3,2;oom-kill:\n",
		"3,7,1,-;EXT4-fs error " + strings.Repeat("\xff", 300) + "\n",
		" SUBSYSTEM=cpu\n\n",
		"3,9,9,-;oom-kill: no newline",
	} {
		f.Add([]byte(s), uint16(3), int64(testBtime))
	}
	f.Fuzz(func(t *testing.T, b []byte, cut uint16, btime int64) {
		whole := &kmsgReader{fd: -1}
		rest := whole.consume(b, btime)
		if !bytes.HasSuffix(b, rest) || bytes.IndexByte(rest, '\n') >= 0 {
			t.Fatalf("consume(%q) left %q: want the incomplete last line", b, rest)
		}
		checkKept(t, b, whole.kept)
		// Read in two pieces, the partial line carried over, as from a
		// regular file: the same lines are kept.
		k := int(cut) % (len(b) + 1)
		split := &kmsgReader{fd: -1}
		carry := split.consume(b[:k], btime)
		split.consume(append(append([]byte(nil), carry...), b[k:]...), btime)
		if !sameLines(whole.kept, split.kept) {
			t.Fatalf("consume(%q) at once kept\n%s\nin two reads cut at %d kept\n%s", b, dumpLog(whole.kept), k, dumpLog(split.kept))
		}
		// Read again after a reopen (the sequence remembered): nothing new.
		before := append([]v1alpha1.LogLine(nil), whole.kept...)
		whole.consume(b, btime)
		if !sameLines(before, whole.kept) {
			t.Fatalf("consume(%q) twice kept\n%s\nthen\n%s\nrecords read before were kept again", b, dumpLog(before), dumpLog(whole.kept))
		}
	})
}

func checkKept(t *testing.T, in []byte, kept []v1alpha1.LogLine) {
	t.Helper()
	if len(kept) > maxKernelLog {
		t.Fatalf("consume(%q) kept %d lines, want at most %d", in, len(kept), maxKernelLog)
	}
	for _, l := range kept {
		if l.Source != "kernel" || utf8.RuneCountInString(l.Text) > maxLogText || !bytes.Contains(in, []byte(l.Text)) {
			t.Fatalf("consume(%q) kept %s: want a kernel line of at most %d characters from the input", in, dumpLine(l), maxLogText)
		}
		if utf8.RuneCountInString(l.Text) < maxLogText && !refKernelCause(l.Text) {
			t.Fatalf("consume(%q) kept %s, which names no cause", in, dumpLine(l))
		}
	}
}

func sameLines(a, b []v1alpha1.LogLine) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Text != b[i].Text || a[i].Source != b[i].Source || (a[i].Time == nil) != (b[i].Time == nil) || (a[i].Time != nil && !a[i].Time.Equal(b[i].Time)) {
			return false
		}
	}
	return true
}

func FuzzParseKubeletLine(f *testing.F) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.Local).Unix()
	for _, s := range []string{
		"Dec 31 23:59:59 n kubelet[7]: PLEG is not healthy: pleg was last seen",
		"Jan  2 09:00:00 n kubelet: container runtime is down",
		"Jan  3 09:00:00 n kubelet: container runtime is down",
		"2026-01-02T08:00:00Z n kubelet[1]: Failed to start ContainerManager",
		"Jan  2 09:00:00 n kubelet[1]: all fine",
		"Jan  2 09:00:00 n systemd[1]: kubelet.service: PLEG is not healthy",
		"Jan  2 09:00:00 n kubelet-wrapper[1]: PLEG is not healthy",
		"Jan  2 09:00:00 n containerd[1]: kubelet: PLEG is not healthy",
		"no tag PLEG is not healthy",
		"Xyz 99 99:99:99 n kubelet[1]: PLEG is not healthy",
		"Jan  2 09:00:00 n kubelet[1]: E0102 09:00:00.000000 1 x.go:1] " + strings.Repeat("y", 200) + " eviction manager: attempting to reclaim memory",
		"Jan  2 09:00:00 n kubelet[1]: PLEG is not healthy " + strings.Repeat("x", 300),
		"Feb 29 12:00:00 n kubelet: failed to run Kubelet: leap day",
	} {
		f.Add([]byte(s), now)
	}
	for _, l := range strings.Split(messagesSeed000, "\n") {
		f.Add([]byte(l), now)
	}
	f.Fuzz(func(t *testing.T, line []byte, nowUnix int64) {
		// Clocks from year 1 to 9999; beyond, time.Time's year wraps.
		const lo, hi = -62135596800 + 2*86400*366, 253402300799 - 2*86400*366
		if nowUnix < lo || nowUnix > hi {
			nowUnix = lo + int64(uint64(nowUnix)%uint64(hi-lo))
		}
		now := time.Unix(nowUnix, 0)
		l, ok := parseKubeletLine(line, now)
		if !ok {
			if l != (v1alpha1.LogLine{}) {
				t.Fatalf("parseKubeletLine(%q) = %s, false: want an empty line", line, dumpLine(l))
			}
			return
		}
		s := string(line)
		header, msg, _ := strings.Cut(s, ": ")
		tag := header[strings.LastIndex(header, " ")+1:]
		if !strings.HasPrefix(tag, "kubelet[") && tag != "kubelet" {
			t.Fatalf("parseKubeletLine(%q) kept a line of tag %q", line, tag)
		}
		if l.Source != "kubelet" || utf8.RuneCountInString(l.Text) > maxLogText || !strings.Contains(msg, l.Text) {
			t.Fatalf("parseKubeletLine(%q) = %s: want a kubelet line of at most %d characters from the message", line, dumpLine(l), maxLogText)
		}
		named := false
		for _, c := range kubeletCauses {
			named = named || strings.Contains(msg, c)
		}
		if !named {
			t.Fatalf("parseKubeletLine(%q) kept a line naming no cause", line)
		}
		if l.Time != nil && len(s) >= len(time.Stamp) && s[3] == ' ' {
			// A timestamp without a year is placed at most a day ahead of
			// now and less than a year (and a day) behind.
			at := l.Time.Time
			if at.After(now.Add(24*time.Hour+time.Hour)) || at.Before(now.AddDate(-1, 0, -2)) {
				t.Fatalf("parseKubeletLine(%q) at %v: time %v is not within the year before now", line, now, at)
			}
		}
	})
}

func FuzzTruncateText(f *testing.F) {
	for _, s := range []string{"", "abc", strings.Repeat("x", 300), strings.Repeat("é", 300), "\xff\xfe\xfd", "a\xe2\x82"} {
		f.Add(s, uint16(256))
	}
	f.Fuzz(func(t *testing.T, s string, max uint16) {
		m := int(max % 1024)
		got := truncateText([]byte(s), m)
		if !strings.HasPrefix(s, got) {
			t.Fatalf("truncateText(%q, %d) = %q: not a prefix", s, m, got)
		}
		n := utf8.RuneCountInString(got)
		if n > m {
			t.Fatalf("truncateText(%q, %d) = %q: %d characters", s, m, got, n)
		}
		if utf8.RuneCountInString(s) <= m && got != s {
			t.Fatalf("truncateText(%q, %d) = %q: cut a short text", s, m, got)
		}
		if n < m && got != s {
			t.Fatalf("truncateText(%q, %d) = %q: cut before the limit", s, m, got)
		}
	})
}
