package host

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math"
	"time"
)

// zombieReadsPerProbe bounds the /proc/[pid]/stat reads of one probe once a
// first count exists. One read (open, read, close) costs about 5 to 15µs,
// so a probe spends at most a few milliseconds on zombies.
const zombieReadsPerProbe = 256

// zombieScan counts processes in state Z. Counting means reading
// /proc/[pid]/stat of every process: on a node with 2,000 processes that
// takes 10 to 40ms, too long for every probe and too long for one. So a
// pass over /proc starts at most every zombieScanInterval and goes on over
// as many probes as it takes, zombieReadsPerProbe reads each (2,000
// processes: 8 probes); probes report the count of the last complete pass.
// The first pass alone runs whole in one probe, so the first report has a
// count.
type zombieScan struct {
	budget int // stat reads per probe, after the first pass

	fd       int       // /proc while a pass runs, else -1
	started  time.Time // start of the pass running or of the last complete one
	counting int32     // zombies so far in the pass running

	have   bool // a pass completed
	zombie int32

	dirBuf   []byte // getdents entries of /proc
	pos, end int    // dirBuf[pos:end] are entries not looked at yet
	name     []byte // "<pid>/stat", reused
	stat     [512]byte
}

func (z *zombieScan) close() {
	if z.fd >= 0 {
		sysClose(z.fd)
		z.fd = -1
	}
}

// count returns the zombies counted by the last complete pass, and goes on
// with the pass running or starts one if it is time.
func (z *zombieScan) count(ctx context.Context, now time.Time, procDir string) (int32, error) {
	if z.fd < 0 {
		if z.have {
			// A clock that went back (age < 0) starts a pass rather than
			// keeping the count forever.
			if age := now.Sub(z.started); age >= 0 && age < zombieScanInterval {
				return z.zombie, nil
			}
		}
		fd, err := sysOpenDir(procDir)
		if err != nil {
			return 0, &fs.PathError{Op: "open", Path: procDir, Err: err}
		}
		if z.dirBuf == nil {
			// About 300 entries a getdents: a probe that stops mid-buffer
			// keeps the rest for the next.
			z.dirBuf = make([]byte, 8<<10)
		}
		z.fd, z.started, z.counting, z.pos, z.end = fd, now, 0, 0, 0
	}
	budget := z.budget
	if !z.have {
		budget = math.MaxInt
	}
	done, err := z.scan(ctx, budget)
	if err != nil {
		z.close()
		return 0, &fs.PathError{Op: "readdir", Path: procDir, Err: err}
	}
	if done {
		z.close()
		z.zombie, z.have = z.counting, true
	}
	if !z.have {
		// Only a cancelled context stops the first pass.
		return 0, errors.Join(errors.New("scan of "+procDir+" not finished"), ctx.Err())
	}
	return z.zombie, nil
}

// scan reads up to budget /proc/[pid]/stat files; done when /proc is
// exhausted. A cancelled ctx pauses the pass.
func (z *zombieScan) scan(ctx context.Context, budget int) (done bool, err error) {
	reads := 0
	for {
		for z.pos < z.end {
			if reads >= budget {
				return false, nil
			}
			entries := z.dirBuf[z.pos:z.end]
			name, rest := nextDirent(entries)
			if rest == nil { // the last entry, or a malformed one
				z.pos = z.end
			} else {
				z.pos += len(entries) - len(rest)
			}
			if len(name) > 0 && allDigits(name) {
				reads++
				if z.isZombie(name) {
					z.counting++
				}
			}
		}
		if ctx.Err() != nil {
			return false, nil
		}
		n, err := sysReadDirent(z.fd, z.dirBuf)
		if err != nil {
			return false, err
		}
		if n == 0 {
			return true, nil
		}
		z.pos, z.end = 0, n
	}
}

// isZombie reads <pid>/stat under /proc; false if it can't be read (the
// process exited).
func (z *zombieScan) isZombie(pid []byte) bool {
	z.name = append(append(z.name[:0], pid...), "/stat"...)
	fd, err := sysOpenat(z.fd, z.name)
	if err != nil {
		return false
	}
	n, err := sysRead(fd, z.stat[:])
	sysClose(fd)
	if err != nil {
		return false
	}
	return procState(z.stat[:n]) == 'Z'
}

// procState returns the state letter of a /proc/[pid]/stat line, "pid
// (comm) S ppid ...", or 0. The command name may hold spaces and
// parentheses, "(my (weird) proc)" or even "(x) Z (y)", so the state is
// found after the last ')': nothing after the name holds one. 512 bytes
// always reach past the state: the name is at most 64 bytes.
func procState(b []byte) byte {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) || b[i+1] != ' ' {
		return 0
	}
	return b[i+2]
}
