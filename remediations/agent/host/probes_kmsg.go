package host

import (
	"io/fs"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// kernelCauses are the kernel messages that name why a node went bad; a
// line holding any of them is kept. "task <name> blocked" and XFS errors
// are matched apart.
var kernelCauses = []string{
	"Out of memory: Killed process", // global OOM kill
	"oom-kill:",                     // the OOM killer's summary line (cgroup and global)
	"Memory cgroup out of memory",   // a cgroup's OOM kill
	"blocked for more than",         // hung task
	"EXT4-fs error",
	"Remounting filesystem read-only", // ext4 errors=remount-ro
	"remounted read-only",
	"Aborting journal on device", // ext4/jbd2 gave up on the journal
	"I/O error",                  // "blk_update_request: I/O error", "Buffer I/O error on dev"
}

// kernelCause reports whether a kernel message names a cause.
func kernelCause(msg []byte) bool {
	for _, s := range kernelCauses {
		if contains(msg, s) {
			return true
		}
	}
	// task .* blocked
	if i := index(msg, "task "); i >= 0 && contains(msg[i+len("task "):], " blocked") {
		return true
	}
	// XFS (dm-0): Corruption detected / metadata I/O error / log I/O
	// error / Filesystem has been shut down
	if contains(msg, "XFS (") && (contains(msg, "rror") || contains(msg, "Corruption") || contains(msg, "shut down")) {
		return true
	}
	return false
}

// maxKmsgReadsPerProbe bounds the work of one probe when the kernel logs a
// flood; what is left is read by the next probe (records the kernel drops
// meanwhile are skipped).
const maxKmsgReadsPerProbe = 1 << 14

// kmsgReader reads /dev/kmsg without blocking and keeps the newest
// cause-naming kernel lines. A read of /dev/kmsg returns one record,
// "prio,seq,usec,flags[,...];message\n" followed by " KEY=value\n"
// continuation lines; a regular file (tests) returns any number of bytes,
// so partial lines are carried to the next read.
type kmsgReader struct {
	path string
	fd   int // -1 when closed

	openErr string    // why it is closed, reported by every probe until it opens
	retryAt time.Time // when to try opening again

	seqSeen bool
	lastSeq uint64 // newest record read, so a reopen doesn't repeat lines

	buf   []byte
	carry int // bytes of an incomplete line at buf's start

	kept []v1alpha1.LogLine // newest last, at most maxKernelLog; kubelet lines are added too (kubeletLogReader)
}

func (r *kmsgReader) close() {
	if r.fd >= 0 {
		sysClose(r.fd)
		r.fd = -1
	}
}

// poll opens /dev/kmsg if needed and reads what was logged since the last
// poll. It returns an error line for the report, or "".
func (r *kmsgReader) poll(now time.Time, btime int64) string {
	if r.fd < 0 {
		if !r.retryAt.IsZero() && now.Before(r.retryAt) {
			return r.openErr
		}
		fd, err := sysOpen(r.path, true)
		if err != nil {
			return r.fail(now, &fs.PathError{Op: "open", Path: r.path, Err: err})
		}
		r.fd, r.openErr, r.retryAt, r.carry = fd, "", time.Time{}, 0
		if r.buf == nil {
			// A record is at most 8 KiB (CONSOLE_EXT_LOG_MAX); a smaller
			// buffer makes the read fail with EINVAL.
			r.buf = make([]byte, 16<<10)
		}
	}
	for range maxKmsgReadsPerProbe {
		n, err := sysRead(r.fd, r.buf[r.carry:])
		switch {
		case err != nil && errAgain(err):
			return "" // no more records for now
		case err != nil && errOverwritten(err):
			continue // records were overwritten before we read them; go on with the oldest left
		case err != nil:
			r.close()
			return r.fail(now, &fs.PathError{Op: "read", Path: r.path, Err: err})
		case n == 0:
			return "" // end of a regular file
		}
		rest := r.consume(r.buf[:r.carry+n], btime)
		r.carry = copy(r.buf, rest)
		if r.carry == len(r.buf) { // a line longer than the buffer: drop it
			r.carry = 0
		}
	}
	return ""
}

// fail records why /dev/kmsg is closed and when to try again.
func (r *kmsgReader) fail(now time.Time, err error) string {
	r.openErr = "kernel log: " + err.Error()
	r.retryAt = now.Add(kernelLogRetryInterval)
	return r.openErr
}

// consume keeps the cause-naming lines of the complete lines in b and
// returns the incomplete rest.
func (r *kmsgReader) consume(b []byte, btime int64) []byte {
	for {
		line, rest, found := cutField(b, '\n')
		if !found {
			return b
		}
		b = rest
		if len(line) == 0 || line[0] == ' ' { // continuation: KEY=value
			continue
		}
		header, msg, found := cutField(line, ';')
		if !found {
			continue
		}
		prioField, header, _ := cutField(header, ',')
		seqField, header, _ := cutField(header, ',')
		usecField, _, _ := cutField(header, ',')
		prio, ok1 := parseUint(prioField)
		seq, ok2 := parseUint(seqField)
		usec, ok3 := parseUint(usecField)
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		if r.seqSeen && seq <= r.lastSeq {
			continue // read before a reopen
		}
		r.seqSeen, r.lastSeq = true, seq
		// Facility 0 is the kernel; others are user space writing to
		// /dev/kmsg (systemd early at boot) and are not kernel lines.
		if prio>>3 != 0 || !kernelCause(msg) {
			continue
		}
		l := v1alpha1.LogLine{Source: "kernel", Text: truncateText(msg, maxLogText)}
		if btime > 0 && usec < 1<<62/1000 {
			t := metav1.NewTime(time.Unix(btime, 0).Add(time.Duration(usec) * time.Microsecond))
			l.Time = &t
		}
		if len(r.kept) == maxKernelLog {
			copy(r.kept, r.kept[1:])
			r.kept = r.kept[:maxKernelLog-1]
		}
		r.kept = append(r.kept, l)
	}
}

// snapshot returns a copy of the kept lines, newest last; nil if none.
func (r *kmsgReader) snapshot() []v1alpha1.LogLine {
	if len(r.kept) == 0 {
		return nil
	}
	out := make([]v1alpha1.LogLine, len(r.kept))
	for i, l := range r.kept {
		if l.Time != nil {
			t := *l.Time
			l.Time = &t
		}
		out[i] = l
	}
	return out
}
