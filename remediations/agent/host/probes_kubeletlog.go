package host

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// DefaultKubeletLogPaths are the syslog files the kubelet's lines are read
// from, the first that exists: /var/log/messages (RHEL, SUSE, Amazon
// Linux) or /var/log/syslog (Debian, Ubuntu).
func DefaultKubeletLogPaths() []string { return []string{"/var/log/messages", "/var/log/syslog"} }

// cleanHostPath makes p an absolute, clean host path.
func cleanHostPath(p string) string { return path.Clean("/" + p) }

// kubeletCauses are the kubelet messages that name why a node went bad, as
// engineers read them in `journalctl -u kubelet` or /var/log/messages; a
// kubelet line holding any of them is kept.
var kubeletCauses = []string{
	"failed to initialise top level QOS containers", // cgroup driver mismatch (seed 000)
	"misconfiguration: kubelet cgroup driver",       // idem, said outright
	"PLEG is not healthy",
	"container runtime is down",
	"Container runtime network not ready",
	"failed to run Kubelet",
	"Failed to start ContainerManager",
	"eviction manager: attempting to reclaim",
}

// kubeletCauseBytes are kubeletCauses for bytes.Index.
var kubeletCauseBytes = func() [][]byte {
	out := make([][]byte, len(kubeletCauses))
	for i, s := range kubeletCauses {
		out[i] = []byte(s)
	}
	return out
}()

var colonSpace = []byte(": ")

const (
	// kubeletLogInterval: the syslog file is read at most this often.
	kubeletLogInterval = 30 * time.Second
	// kubeletLogTail is the most read from the end of the file at once:
	// the first read, after a rotation, or when more than this was logged
	// since the last read (what lies before is skipped).
	kubeletLogTail = 256 << 10
	// kubeletLogSeen is how many kept lines are remembered so that a line
	// read again (a rotation, a copy-truncate) is not kept twice.
	kubeletLogSeen = 256
)

// kubeletLogReader follows the kubelet's lines in the host's syslog file.
//
// Only a plain-text syslog file is read: on a node where the kubelet logs
// only to the systemd journal (no rsyslog or syslog-ng writing
// /var/log/messages or /var/log/syslog, as on many recent distributions),
// no file exists and no kubelet line is reported, without an error. It is
// the fallback of the Journal: Proc reads it only while the journal can't
// be read.
type kubeletLogReader struct {
	paths []string // full paths, under the root

	next   time.Time // when to read again
	errMsg string    // why the last read failed, reported until the next one

	file   string      // the file followed; "" none yet
	info   os.FileInfo // its identity, to tell a new file after a rotation
	offset int64       // end of the last complete line read; -1 start from the tail

	buf []byte // reused, kubeletLogTail bytes

	seen     map[string]struct{}    // keys of recently kept lines
	seenRing [kubeletLogSeen]string // the same keys, a ring
	seenNext int                    // the ring's oldest, overwritten next
}

func newKubeletLogReader(root string, paths []string) kubeletLogReader {
	if len(paths) == 0 {
		paths = DefaultKubeletLogPaths()
	}
	r := kubeletLogReader{offset: -1, seen: map[string]struct{}{}}
	for _, p := range paths {
		r.paths = append(r.paths, root+cleanHostPath(p))
	}
	return r
}

// poll reads what the kubelet logged since the last read, at most every
// kubeletLogInterval, and adds its cause-naming lines to kept (newest last,
// at most maxKernelLog). It returns an error line for the report, or "".
func (r *kubeletLogReader) poll(now time.Time, kept *[]v1alpha1.LogLine) string {
	if now.Before(r.next) {
		return r.errMsg
	}
	r.next = now.Add(kubeletLogInterval)
	r.errMsg = ""
	if err := r.read(now, kept); err != nil {
		r.errMsg = "kubelet log: " + err.Error()
	}
	return r.errMsg
}

func (r *kubeletLogReader) read(now time.Time, kept *[]v1alpha1.LogLine) error {
	var f *os.File
	var name string
	for _, p := range r.paths {
		var err error
		f, err = os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		name = p
		break
	}
	if f == nil {
		r.file, r.info, r.offset = "", nil, -1
		return nil
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fileError(name, "not a regular file")
	}
	size := info.Size()
	if name != r.file || r.info == nil || !os.SameFile(info, r.info) || size < r.offset {
		// First read, another file, a new file after a rotation, or the
		// file shrank (copy-truncate): start from the new end's tail.
		r.offset = -1
	}
	r.file, r.info = name, info
	start := r.offset
	if start < 0 || size-start > kubeletLogTail {
		start = max(0, size-kubeletLogTail)
	}
	if start >= size {
		r.offset = size
		return nil
	}
	if r.buf == nil {
		r.buf = make([]byte, kubeletLogTail)
	}
	n, err := f.ReadAt(r.buf[:size-start], start)
	if err != nil && err != io.EOF {
		return err
	}
	b := r.buf[:n]
	if start > 0 && start != r.offset {
		// Started mid-file, not where the last read ended: the first line
		// is likely partial.
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil // no complete line in the tail; read it again next time
		}
		b = b[i+1:]
	}
	last := bytes.LastIndexByte(b, '\n')
	if last < 0 {
		r.offset = start + int64(n-len(b)) // only an incomplete line: wait for its end
		return nil
	}
	r.offset = start + int64(n-len(b)) + int64(last+1)
	for line := range lines(b[:last+1]) {
		if l, ok := parseKubeletLine(line, now); ok {
			r.keep(kept, l)
		}
	}
	return nil
}

// keep adds l to kept unless it was kept already: by its time among the
// timed lines (a file's lines may be older than the kernel lines already
// kept), last if its time is unknown.
func (r *kubeletLogReader) keep(kept *[]v1alpha1.LogLine, l v1alpha1.LogLine) {
	key := l.Text
	if l.Time != nil {
		key = strconv.FormatInt(l.Time.UnixNano(), 10) + "\x00" + l.Text
	}
	if _, dup := r.seen[key]; dup {
		return
	}
	if old := r.seenRing[r.seenNext]; old != "" {
		delete(r.seen, old)
	}
	r.seen[key] = struct{}{}
	r.seenRing[r.seenNext] = key
	r.seenNext = (r.seenNext + 1) % kubeletLogSeen

	ls := *kept
	i := len(ls)
	if l.Time != nil {
		for i > 0 && ls[i-1].Time != nil && ls[i-1].Time.After(l.Time.Time) {
			i--
		}
	}
	if len(ls) == maxKernelLog {
		if i == 0 {
			return // older than every kept line
		}
		copy(ls, ls[1:i])
		ls[i-1] = l
		return
	}
	ls = append(ls, v1alpha1.LogLine{})
	copy(ls[i+1:], ls[i:])
	ls[i] = l
	*kept = ls
}

// parseKubeletLine returns the kubelet line of a syslog line if it names a
// cause. The syslog tag is the last field before the first ": "
// ("Aug 18 11:41:46 kali kubelet[3636559]: E0818 ..."); it must be
// "kubelet[pid]:" or "kubelet:".
func parseKubeletLine(line []byte, now time.Time) (v1alpha1.LogLine, bool) {
	i := bytes.Index(line, colonSpace)
	if i < 0 {
		return v1alpha1.LogLine{}, false
	}
	header, msg := line[:i+1], line[i+2:]
	tag := header
	if j := bytes.LastIndexByte(header, ' '); j >= 0 {
		tag = header[j+1:]
	}
	if !bytes.HasPrefix(tag, []byte("kubelet[")) && string(tag) != "kubelet:" {
		return v1alpha1.LogLine{}, false
	}
	end := -1
	for _, s := range kubeletCauseBytes {
		if j := bytes.Index(msg, s); j >= 0 {
			end = j + len(s)
			break
		}
	}
	if end < 0 {
		return v1alpha1.LogLine{}, false
	}
	msg = trimSpace(msg)
	if end > maxLogText {
		// The cause would be cut off: drop the klog header
		// ("E0818 11:41:46.325093 3636559 kubelet.go:1431] ").
		if j := index(msg, "] "); j >= 0 && j < end {
			msg = msg[j+2:]
		}
	}
	l := v1alpha1.LogLine{Source: "kubelet", Text: truncateText(msg, maxLogText)}
	if t, ok := syslogTime(header, now); ok {
		mt := metav1.NewTime(t)
		l.Time = &mt
	}
	return l, true
}

// syslogTime parses the timestamp at the start of a syslog line: RFC 3164
// "Aug 18 11:41:46" (no year: the current one, or the previous one if that
// would be more than a day ahead of now; in the agent's local time, which
// is UTC unless the host's /etc/localtime is mounted: a host logging in
// another zone gets times off by its offset) or RFC 3339
// "2024-08-18T11:41:46.123456+02:00".
func syslogTime(b []byte, now time.Time) (time.Time, bool) {
	if len(b) >= len(time.Stamp) && b[3] == ' ' && !isDigit(b[0]) {
		t, err := time.ParseInLocation(time.Stamp, string(b[:len(time.Stamp)]), time.Local)
		if err != nil {
			return time.Time{}, false
		}
		nowLocal := now.In(time.Local)
		y := nowLocal.Year()
		d := time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.Local)
		if d.After(nowLocal.Add(24 * time.Hour)) {
			d = time.Date(y-1, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.Local)
		}
		return d, true
	}
	field, _, _ := cutField(b, ' ')
	if len(field) >= len("2006-01-02T15:04:05Z") && isDigit(field[0]) {
		t, err := time.Parse(time.RFC3339Nano, string(field))
		if err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
