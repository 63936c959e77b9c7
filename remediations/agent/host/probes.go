package host

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math"
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

// Prober measures the node. Implemented by Proc (real /proc, /sys, statfs)
// and by the simulated host used in e2e and the demo.
type Prober interface {
	// Probe measures the node. It does not fail as a whole: a measurement
	// that could not be taken leaves its field empty and adds a short line
	// to Errors.
	Probe(ctx context.Context) v1alpha1.NodeProbes
}

// ProcOptions configure a Proc.
type ProcOptions struct {
	// Root is the host's root as mounted in the agent's container, default
	// "/". Every path is read under it: Root+"/proc/meminfo",
	// Root+"/dev/kmsg", Root+DiskPaths[i] (the DaemonSet mounts the host's
	// /proc at /host/proc and so on, with Root "/host").
	Root string
	// DiskPaths are the host paths whose filesystems are measured, default
	// /var/lib/kubelet and /var/lib/containerd. A path that does not exist
	// is skipped, not an error. At most 4 are measured (the API's limit).
	DiskPaths []string
	// Systemd, if set, is asked for the systemd version (the manager's
	// "Version" property over D-Bus); nil leaves SystemdVersion empty.
	Systemd *Systemd
	// Journal, if set, is the systemd journal the units' error lines are
	// read from (into UnitState.Logs, by Systemd). The probes report why it
	// could not be read, and read the kubelet's lines from the syslog file
	// (KubeletLogPaths) only while it can't: a line is never reported from
	// both.
	Journal *Journal
	// KubeletLogPaths are the host's syslog files the kubelet's
	// cause-naming lines are read from, the first that exists, default
	// /var/log/messages then /var/log/syslog (see kubeletLogReader: a node
	// that logs only to the systemd journal has neither, and reports no
	// kubelet lines).
	KubeletLogPaths []string
	// CRIEndpoint, if set, is the container runtime's CRI socket
	// (unix:///run/containerd/containerd.sock, DefaultCRIEndpoint), under
	// Root, called at most every 10s (Runtime); "" calls none.
	CRIEndpoint string
	// CRITimeout bounds the CRI calls, default DefaultCRITimeout.
	CRITimeout time.Duration
	// Certificates are read at most every 5 minutes (Certificates); none
	// by default (DefaultCertPaths are the kubelet's and kubeadm's).
	Certificates []CertPath
	// Clock is injected for tests; default the real clock.
	Clock clock.Clock
}

// DefaultDiskPaths are where the kubelet and the container runtime keep
// their data.
func DefaultDiskPaths() []string { return []string{"/var/lib/kubelet", "/var/lib/containerd"} }

// How often the costlier measurements are taken (see Proc).
const (
	zombieScanInterval     = 30 * time.Second
	kernelLogRetryInterval = 5 * time.Minute
	systemdVersionInterval = 5 * time.Minute
	// systemdWait is the longest a probe waits (in real time) for a D-Bus
	// answer; a slower answer is used by a later probe.
	systemdWait = 100 * time.Millisecond
)

// Limits of the report (the API's MaxItems and MaxLength).
const (
	maxProbeErrors = 8
	maxKernelLog   = 10
	maxLogText     = 256
	maxDisks       = 4
	// maxCertificates is the API's limit on Certificates.
	maxCertificates = 4
)

// maxFileSize bounds what readFile reads (/proc/stat of a very large machine
// is a few hundred kilobytes).
const maxFileSize = 4 << 20

// Proc is the Prober of a real node. It reads /proc/meminfo, /proc/vmstat,
// /proc/loadavg, /proc/stat, /proc/sys/kernel/pid_max and /dev/kmsg under
// the host root, statfs(2)s the disk paths and asks systemd for its version.
// A probe costs a handful of small file reads and no heap allocation per
// line; measurements that would cost more are taken less often:
//
//   - Zombies: counting processes in state Z means reading /proc/[pid]/stat
//     of every process (10 to 40ms on a node with 2,000 processes). A pass
//     over /proc starts at most every 30s and is spread over probes, at
//     most 256 reads each; probes report the count of the last complete
//     pass. Only the first pass runs whole, in the first probe, so the first
//     report has a count.
//   - Kernel log: /dev/kmsg is opened once and kept open; each probe reads
//     only the records logged since the last one. The first open reads the
//     whole kernel ring buffer, so an OOM kill logged before the agent
//     started is seen. The newest 10 cause-naming kernel lines are kept
//     across probes. If /dev/kmsg can't be opened (the agent is not
//     privileged), every probe reports that in Errors and the open is
//     retried every 5 minutes, not on every probe.
//   - Kubelet log: the tail of the host's syslog file (/var/log/messages or
//     /var/log/syslog) is read at most every 30s, only what was appended
//     since the last read and never more than its last 256 KiB; the
//     kubelet's cause-naming lines join the kernel's in KernelLog (Source
//     "kubelet"), the newest 10 of both kept together.
//   - Runtime: the CRI socket is called (Version, Status) at most every
//     10s with a 2s deadline; certificates are read every 5 minutes;
//     /proc/swaps on every probe (one small read).
//   - Journal: see Journal (every 30s, 2s deadline per unit).
//   - Systemd version: asked over D-Bus every 5 minutes, off the probe's
//     goroutine; a probe waits at most 100ms for the answer (a hung systemd
//     must not stall the agent) and otherwise reports the last version.
//
// The OOM-kill time (MemoryProbe.LastOOMKill) is when a probe first saw the
// kernel's oom_kill counter grow, so it is as precise as the probe interval;
// kills before the agent started leave it empty (see KernelLog for those).
//
// A Proc is safe for concurrent use; probes are serialized. Close releases
// the files it keeps open (/dev/kmsg, /proc during a zombie pass).
type Proc struct {
	clock   clock.Clock
	systemd *systemdVersion // nil without Systemd

	// paths under the root.
	meminfo, vmstat, loadavg, stat, pidMax, procDir, swaps string
	disks                                                  []diskPath

	mu   sync.Mutex
	buf  []byte // readFile's buffer, reused
	kmsg kmsgReader
	klog kubeletLogReader

	journal *Journal // nil: none

	cri    *criProbe // nil: none
	criErr string    // why the CRI endpoint can't be called
	certs  certProbe

	// memory: the oom_kill counter as last read.
	oomSeen bool
	oomPrev int64
	lastOOM time.Time // zero: never seen growing

	zombies zombieScan

	btimeSeconds int64 // boot time from /proc/stat; 0 unknown
}

type diskPath struct{ host, full string }

var _ Prober = (*Proc)(nil)

// NewProc returns a Proc. It touches nothing until the first Probe.
func NewProc(opts ProcOptions) *Proc {
	root := opts.Root
	if root == "" {
		root = "/"
	}
	root = strings.TrimSuffix(path.Clean(root), "/") // "/" -> "", "/host/" -> "/host"
	p := &Proc{
		clock:   opts.Clock,
		meminfo: root + "/proc/meminfo",
		vmstat:  root + "/proc/vmstat",
		loadavg: root + "/proc/loadavg",
		stat:    root + "/proc/stat",
		pidMax:  root + "/proc/sys/kernel/pid_max",
		procDir: root + "/proc",
		swaps:   root + "/proc/swaps",
		buf:     make([]byte, 16<<10),
		kmsg:    kmsgReader{path: root + "/dev/kmsg", fd: -1},
		zombies: zombieScan{fd: -1, budget: zombieReadsPerProbe},
		klog:    newKubeletLogReader(root, opts.KubeletLogPaths),
	}
	if p.clock == nil {
		p.clock = clock.RealClock{}
	}
	if opts.Systemd != nil {
		p.systemd = &systemdVersion{sd: opts.Systemd}
	}
	p.journal = opts.Journal
	if opts.CRIEndpoint != "" {
		c, err := newCRIProbe(root, opts.CRIEndpoint, opts.CRITimeout)
		if err != nil {
			p.criErr = "runtime: " + err.Error()
		}
		p.cri = c
	}
	p.certs = certProbe{root: root}
	for _, c := range opts.Certificates {
		if len(p.certs.paths) < maxCertificates {
			p.certs.paths = append(p.certs.paths, c)
		}
	}
	diskPaths := opts.DiskPaths
	if len(diskPaths) == 0 {
		diskPaths = DefaultDiskPaths()
	}
	seen := map[string]bool{}
	for _, d := range diskPaths {
		d = cleanHostPath(d)
		if seen[d] || len(p.disks) == maxDisks {
			continue
		}
		seen[d] = true
		p.disks = append(p.disks, diskPath{host: d, full: root + d})
	}
	return p
}

// Close closes the files the Proc keeps open. A later Probe opens them
// again.
func (p *Proc) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kmsg.close()
	p.zombies.close()
	return nil
}

// Probe measures the node.
func (p *Proc) Probe(ctx context.Context) v1alpha1.NodeProbes {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	var out v1alpha1.NodeProbes

	// /proc/stat: CPUs for the load, btime for kernel log times.
	cpus, btime, statErr := p.readStat()
	if btime > 0 {
		p.btimeSeconds = btime
	}
	p.probeMemory(&out, now)
	load1, threads, loadErr := p.readLoadavg()
	switch {
	case loadErr != nil:
		addError(&out, "load: "+loadErr.Error())
	case statErr != nil:
		addError(&out, "load: cpus: "+statErr.Error())
	default:
		out.Load = &v1alpha1.LoadProbe{Load1Milli: load1, CPUs: cpus}
	}
	p.probePIDs(ctx, &out, now, threads, loadErr)
	p.probeDisks(&out)
	p.probeSwap(&out)
	out.Certificates = p.certs.probe(now)
	if p.cri != nil {
		out.Runtime = p.cri.probe(ctx, now)
	} else if p.criErr != "" {
		addError(&out, p.criErr)
	}
	if msg := p.kmsg.poll(now, p.btimeSeconds); msg != "" {
		addError(&out, msg)
	}
	journalReadable := false
	if p.journal != nil {
		var msg string
		journalReadable, msg = p.journal.Status(ctx)
		if msg != "" {
			addError(&out, msg)
		}
	}
	if journalReadable {
		// The kubelet's lines are in its unit's Logs: none from syslog.
		dropSource(&p.kmsg.kept, "kubelet")
	} else if msg := p.klog.poll(now, &p.kmsg.kept); msg != "" {
		addError(&out, msg)
	}
	out.KernelLog = p.kmsg.snapshot()
	if p.systemd != nil {
		v, msg := p.systemd.get(ctx, now)
		out.SystemdVersion = v
		if msg != "" {
			addError(&out, msg)
		}
	}
	return out
}

// dropSource removes the lines of source from kept.
func dropSource(kept *[]v1alpha1.LogLine, source string) {
	*kept = slices.DeleteFunc(*kept, func(l v1alpha1.LogLine) bool { return l.Source == source })
}

// addError appends a probe error, at most maxProbeErrors of them.
func addError(out *v1alpha1.NodeProbes, msg string) {
	if len(out.Errors) < maxProbeErrors {
		out.Errors = append(out.Errors, msg)
	}
}

var errFileTooLong = errors.New("file too long")

// fileError names a file and what was wrong with it.
func fileError(path, what string) error {
	return &fs.PathError{Op: "parse", Path: path, Err: errors.New(what)}
}

// readFile reads a whole file into p.buf, which it reuses: the result is
// valid until the next readFile. procfs files are read with plain syscalls:
// no os.File, no allocation beyond the path's.
func (p *Proc) readFile(name string) ([]byte, error) {
	fd, err := sysOpen(name, false)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer sysClose(fd)
	n := 0
	for {
		if n == len(p.buf) {
			if len(p.buf) >= maxFileSize {
				return nil, &fs.PathError{Op: "read", Path: name, Err: errFileTooLong}
			}
			grown := make([]byte, 2*len(p.buf))
			copy(grown, p.buf)
			p.buf = grown
		}
		m, err := sysRead(fd, p.buf[n:])
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if m == 0 {
			return p.buf[:n], nil
		}
		n += m
	}
}

// probeMemory fills out.Memory from /proc/meminfo and /proc/vmstat.
func (p *Proc) probeMemory(out *v1alpha1.NodeProbes, now time.Time) {
	b, err := p.readFile(p.meminfo)
	if err != nil {
		addError(out, "memory: "+err.Error())
		return
	}
	total, avail, ok := parseMeminfo(b)
	if !ok {
		addError(out, "memory: "+fileError(p.meminfo, "no MemTotal or MemAvailable").Error())
		return
	}
	m := &v1alpha1.MemoryProbe{TotalBytes: total, AvailableBytes: avail}
	oom, err := p.readOOMKills()
	if err != nil {
		// Memory levels are still worth reporting; the error tells that
		// OOMKills is unknown.
		addError(out, "memory: oom_kill: "+err.Error())
	} else {
		m.OOMKills = oom
		if p.oomSeen && oom > p.oomPrev {
			p.lastOOM = now
		}
		p.oomSeen, p.oomPrev = true, oom
	}
	if !p.lastOOM.IsZero() {
		t := metav1.NewTime(p.lastOOM)
		m.LastOOMKill = &t
	}
	out.Memory = m
}

func (p *Proc) readOOMKills() (int64, error) {
	b, err := p.readFile(p.vmstat)
	if err != nil {
		return 0, err
	}
	if n, ok := parseVmstatOOMKills(b); ok {
		return n, nil
	}
	return 0, fileError(p.vmstat, "no oom_kill counter")
}

// parseVmstatOOMKills returns the oom_kill counter of /proc/vmstat
// ("oom_kill 3"); false if the first such line holds no number.
func parseVmstatOOMKills(b []byte) (int64, bool) {
	for line := range lines(b) {
		if v, ok := cutPrefix(line, "oom_kill "); ok {
			return parseInt(trimSpace(v))
		}
	}
	return 0, false
}

// readStat counts the cpuN lines of /proc/stat (the host's online CPUs,
// unlike runtime.NumCPU in a container with a CPU limit or a cpuset) and
// reads btime, the boot time in seconds since the epoch (0 if absent).
func (p *Proc) readStat() (cpus int32, btime int64, err error) {
	b, err := p.readFile(p.stat)
	if err != nil {
		return 0, 0, err
	}
	cpus, btime = parseStat(b)
	if cpus == 0 {
		return 0, btime, fileError(p.stat, "no cpuN lines")
	}
	return cpus, btime, nil
}

// parseStat counts the cpuN lines of /proc/stat and reads btime (0 if
// absent or not a number; the last one counts).
func parseStat(b []byte) (cpus int32, btime int64) {
	for line := range lines(b) {
		if len(line) > 3 && line[0] == 'c' && line[1] == 'p' && line[2] == 'u' && isDigit(line[3]) {
			if cpus < math.MaxInt32 {
				cpus++
			}
		} else if v, ok := cutPrefix(line, "btime "); ok {
			if n, ok := parseInt(trimSpace(v)); ok {
				btime = n
			}
		}
	}
	return cpus, btime
}

// readLoadavg reads the 1-minute load (times 1000) and the number of threads
// (the total of "running/total": kernel scheduling entities) from
// /proc/loadavg, e.g. "0.52 0.58 0.59 2/1234 5678".
func (p *Proc) readLoadavg() (load1Milli, threads int64, err error) {
	b, err := p.readFile(p.loadavg)
	if err != nil {
		return 0, 0, err
	}
	load1Milli, threads, ok := parseLoadavg(b)
	if !ok {
		return 0, 0, fileError(p.loadavg, "want \"load1 load5 load15 running/total lastpid\"")
	}
	return load1Milli, threads, nil
}

// parseLoadavg parses /proc/loadavg: the first field as thousandths and the
// total of the fourth ("running/total").
func parseLoadavg(b []byte) (load1Milli, threads int64, ok bool) {
	f1, rest := nextField(b)
	_, rest = nextField(rest)
	_, rest = nextField(rest)
	f4, _ := nextField(rest)
	load, ok1 := parseMilli(f1)
	slash := bytes.IndexByte(f4, '/')
	var ok2 bool
	if slash >= 0 {
		threads, ok2 = parseInt(f4[slash+1:])
	}
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	return load, threads, true
}

// probePIDs fills out.PIDs: threads from /proc/loadavg (or its error),
// kernel.pid_max and the zombie count.
func (p *Proc) probePIDs(ctx context.Context, out *v1alpha1.NodeProbes, now time.Time, threads int64, loadErr error) {
	if loadErr != nil {
		addError(out, "pids: threads: "+loadErr.Error())
		return
	}
	b, err := p.readFile(p.pidMax)
	if err != nil {
		addError(out, "pids: "+err.Error())
		return
	}
	pidMax, ok := parsePidMax(b)
	if !ok {
		addError(out, "pids: "+fileError(p.pidMax, "not a number").Error())
		return
	}
	zombies, err := p.zombies.count(ctx, now, p.procDir)
	if err != nil {
		addError(out, "pids: zombies: "+err.Error())
		return
	}
	out.PIDs = &v1alpha1.PIDProbe{Threads: threads, PIDMax: pidMax, Zombies: zombies}
}

// parsePidMax parses /proc/sys/kernel/pid_max ("4194304\n").
func parsePidMax(b []byte) (int64, bool) { return parseInt(trimSpace(b)) }

// probeDisks fills out.Disks; a missing path is skipped.
func (p *Proc) probeDisks(out *v1alpha1.NodeProbes) {
	for _, d := range p.disks {
		st, err := sysStatfs(d.full)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			addError(out, "disk "+d.host+": "+(&fs.PathError{Op: "statfs", Path: d.full, Err: err}).Error())
			continue
		}
		if out.Disks == nil {
			out.Disks = make([]v1alpha1.DiskProbe, 0, len(p.disks))
		}
		out.Disks = append(out.Disks, v1alpha1.DiskProbe{
			Path:        d.host,
			TotalBytes:  mulClamp(st.blocks, st.blockSize),
			FreeBytes:   mulClamp(st.blocksAvail, st.blockSize),
			TotalInodes: clamp(st.files),
			FreeInodes:  clamp(st.filesFree),
		})
	}
}

// diskStat is what statfs(2) tells of a filesystem; blocks are in units of
// blockSize (f_frsize, the unit df uses).
type diskStat struct {
	blockSize, blocks, blocksAvail, files, filesFree uint64
}

func clamp(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

func mulClamp(a, b uint64) int64 {
	if b != 0 && a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return int64(a * b)
}

// systemdVersion asks systemd for its version off the probe's goroutine.
type systemdVersion struct {
	sd *Systemd

	mu      sync.Mutex
	version string        // last answer; "" none yet
	errMsg  string        // error of the last ask, "" if it succeeded
	next    time.Time     // when to ask again
	done    chan struct{} // non-nil while an ask is in flight
}

// managerProperties is the part of go-systemd's connection that reads
// org.freedesktop.systemd1.Manager properties.
type managerProperties interface {
	GetManagerProperty(prop string) (string, error)
}

// get returns the version and, if the last ask failed, why.
func (v *systemdVersion) get(ctx context.Context, now time.Time) (string, string) {
	v.mu.Lock()
	if v.done == nil && !now.Before(v.next) {
		v.next = now.Add(systemdVersionInterval)
		if mp, ok := v.sd.conn.(managerProperties); ok {
			done := make(chan struct{})
			v.done = done
			go v.ask(mp, done)
		} else {
			v.errMsg = "systemd version: the D-Bus connection can't read manager properties"
		}
	}
	done := v.done
	v.mu.Unlock()
	if done != nil {
		t := time.NewTimer(systemdWait)
		select {
		case <-done:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.version == "" && v.errMsg == "" && v.done != nil {
		return "", "systemd version: no answer over D-Bus yet"
	}
	return v.version, v.errMsg
}

// ask reads the manager's Version property (go-systemd has no context for
// it: a hung systemd keeps this goroutine, and no other is started).
func (v *systemdVersion) ask(mp managerProperties, done chan struct{}) {
	s, err := mp.GetManagerProperty("Version")
	v.mu.Lock()
	if err != nil {
		v.errMsg = "systemd version: " + err.Error()
	} else {
		// go-systemd returns the D-Bus variant as text: a quoted string.
		if u, uerr := strconv.Unquote(s); uerr == nil {
			s = u
		}
		v.version, v.errMsg = truncateText([]byte(s), 64), ""
	}
	v.done = nil
	v.mu.Unlock()
	close(done)
}
