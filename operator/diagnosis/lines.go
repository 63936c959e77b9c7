package diagnosis

import (
	"regexp"
	"strings"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// What the kubelet's, the runtime's and the kernel's log lines say, read the
// way a person reads them. Every pattern is a fragment of a line the
// component really writes (the table tests quote them whole).

// Details of KubeletCrashLoop: the error the kubelet exits with.
const (
	DetailSwap         = "Swap"
	DetailConfig       = "Config"
	DetailMissingFile  = "MissingFile"
	DetailCgroupDriver = "CgroupDriver"
	DetailOther        = "Other"
	// detailDependency is not a detail of the cause: the kubelet exited
	// because something it needs (the runtime, the apiserver) was not there
	// yet, which a restart may well find there now.
	detailDependency = "Dependency"
	// detailCertificate: its own cause, KubeletCertificateExpired.
	detailCertificate = "Certificate"
)

// fatalFragments mark a line the kubelet writes as it gives up at start.
var fatalFragments = []string{
	"failed to run kubelet", "command failed", "failed to start containermanager",
	"running with swap on is not supported", "misconfiguration: kubelet cgroup driver",
	"unable to load client ca file", "failed to load kubelet config file", "unable to load bootstrap kubeconfig",
	"failed to validate kubelet flags", "unknown flag:", "flag provided but not defined",
	"level=fatal", `"level":"fatal"`, "failed to construct kubelet dependencies",
}

// klogFatal matches klog's fatal header, e.g. "F0304 10:00:01.123456 123 server.go:262]"
// (possibly after a journal prefix "Apr 09 20:50:33 host kubelet[2418]: ").
var klogFatal = regexp.MustCompile(`(^|: )F\d{4} \d{2}:\d{2}:\d{2}`)

// isFatal says whether the line is the kubelet giving up.
func isFatal(text string) bool {
	if klogFatal.MatchString(text) {
		return true
	}
	l := strings.ToLower(text)
	for _, f := range fatalFragments {
		if strings.Contains(l, f) {
			return true
		}
	}
	return false
}

// cgroupDrivers matches the kubelet's mismatch message and captures the two
// drivers it names.
var cgroupDrivers = regexp.MustCompile(`kubelet cgroup driver: \\?"(.*?)\\?" is different from (?:docker|containerd|the runtime's|runtime) cgroup driver: \\?"(.*?)\\?"`)

// classifyFatal names the error of a fatal kubelet line.
func classifyFatal(text string) string {
	l := strings.ToLower(text)
	switch {
	case strings.Contains(l, "swap on is not supported") || strings.Contains(l, "running with swap on"):
		return DetailSwap
	case strings.Contains(l, "certificate is expired") || strings.Contains(l, "certificate has expired") ||
		strings.Contains(l, "x509: certificate") && strings.Contains(l, "expired"):
		return detailCertificate
	case strings.Contains(l, "cgroup driver"):
		// A "mismatch" between two drivers of the same name is a malformed
		// flag value (quotes in the value), not a real mismatch.
		if m := cgroupDrivers.FindStringSubmatch(text); m != nil && strings.Trim(m[1], `"'\`) == strings.Trim(m[2], `"'\`) {
			return DetailConfig
		}
		return DetailCgroupDriver
	case strings.Contains(l, "no such file") && mentionsConfigFile(l):
		return DetailMissingFile
	case strings.Contains(l, "runtimeservice") || strings.Contains(l, "container runtime") || strings.Contains(l, "connection refused") ||
		strings.Contains(l, "context deadline exceeded") || strings.Contains(l, "containerd.sock") || strings.Contains(l, "dockershim.sock") ||
		strings.Contains(l, "crio.sock"):
		return detailDependency
	case strings.Contains(l, "kubelet config file") || strings.Contains(l, "unknown flag") || strings.Contains(l, "flag provided but not defined") ||
		strings.Contains(l, "invalid configuration") || strings.Contains(l, "failed to validate kubelet flags") || strings.Contains(l, "unknown field") ||
		strings.Contains(l, "failed to parse") || strings.Contains(l, "cannot unmarshal") || strings.Contains(l, "failed to decode"):
		return DetailConfig
	}
	return DetailOther
}

// mentionsConfigFile: the missing file is one the kubelet is pointed to
// (a kubeconfig, a config file, a certificate, a CA, resolv.conf).
func mentionsConfigFile(l string) bool {
	for _, f := range []string{"kubeconfig", "config file", "ca file", ".conf", ".crt", ".pem", ".key", ".yaml", ".yml", ".json", "certificate", "resolv"} {
		if strings.Contains(l, f) {
			return true
		}
	}
	return false
}

// Fragments of other causes' lines, lower case.
var (
	// The runtime does not answer the kubelet (the kubelet's view: indirect).
	runtimeTimeout = []string{"operation timeout: context deadline exceeded", "code = deadlineexceeded", "rpc error: code = unavailable",
		"cannot connect to the docker daemon", "docker daemon is not running", "is the docker daemon running"}
	// The runtime's unix socket is not there or refuses: the runtime is not running.
	runtimeGone = []string{"connect: connection refused", "connect: no such file or directory"}
	// The pod network is not ready.
	networkNotReady = []string{"networkpluginnotready", "network plugin is not ready", "cni config uninitialized", "cni plugin not initialized",
		"networkready=false", "failed to setup network for sandbox", "failed to set up sandbox container", "network is not ready"}
	// Forks fail: PIDs (or threads) ran out.
	forkFailed = []string{"resource temporarily unavailable", "fork: retry", "cannot allocate memory: fork", "failed to create new os thread", "pthread_create failed"}
	// A filesystem went read-only or fails.
	readOnly = []string{"read-only file system", "remounting filesystem read-only", "remounted read-only", "mounted filesystem read-only", "buffer i/o error", "i/o error, dev", "blk_update_request: i/o error", "ext4-fs error", "xfs: metadata i/o error", "xfs (", "journal has aborted"}
	// Kernel tasks hang.
	hungTask = []string{"blocked for more", "hung_task_timeout_secs", "soft lockup", "hard lockup", "rcu_sched self-detected stall"}
	// The disk is full.
	diskFull = []string{"no space left on device", "freediskspacefailed", "evictionthresholdmet", "attempting to reclaim ephemeral-storage", "attempting to reclaim nodefs", "attempting to reclaim imagefs", "nodehasdiskpressure"}
	// Memory: the kernel's and the kubelet's.
	oomLines = []string{"out of memory: killed process", "out of memory: kill process", "oom-killer", "memory cgroup out of memory", "attempting to reclaim memory", "nodehasinsufficientmemory", "system oom encountered"}
	// The kubelet's certificate: expired or not yet valid.
	certExpired  = []string{"certificate is expired", "certificate has expired", "client certificate has expired", "part of the existing bootstrap client certificate"}
	certNotValid = []string{"is not yet valid", "certificate is not yet valid"}
	// The apiserver or etcd says it is overloaded (seed 003), to the kubelet.
	controlPlaneOverload = []string{"the server has received too many requests", "etcdserver: request timed out", "etcdserver: leader changed",
		"server is likely overloaded", "the server was unable to return a response in the time allotted", "etcdserver: too many requests"}
	// The kubelet and the apiserver do not trust each other's certificate
	// any more (a CA rotated without the kubelet).
	certUntrusted = []string{"x509: certificate signed by unknown authority"}
	// The kubelet cannot reach the apiserver: its connection broke.
	apiTransport = []string{"use of closed network connection", "http2: client connection lost", "read tcp", "write tcp", "i/o timeout", "connection reset by peer", "net/http: request canceled", "tls handshake timeout"}
)

func containsAny(text string, frags []string) bool {
	l := strings.ToLower(text)
	for _, f := range frags {
		if strings.Contains(l, strings.ToLower(f)) {
			return true
		}
	}
	return false
}

// foldNumbers folds the digits of a line, so repeats of one error that
// differ in timestamps, PIDs, counters or node numbers compare equal.
var digits = regexp.MustCompile(`[0-9]+`)

func foldNumbers(s string) string { return digits.ReplaceAllString(s, "#") }

// FatalSignature is the kubelet's newest fatal line with numbers folded:
// what the cluster detector compares across nodes for a fleet-wide fault.
func FatalSignature(u *v1alpha1.UnitState) string {
	if u == nil {
		return ""
	}
	for i := len(u.Logs) - 1; i >= 0; i-- {
		if isFatal(u.Logs[i].Text) {
			return foldNumbers(stripLogHeader(u.Logs[i].Text))
		}
	}
	return ""
}

// logHeader matches a journal prefix ("Apr 09 20:50:33 host unit[123]: ")
// and a klog header ("E0409 20:50:33.925083    2418 file.go:85] ").
var logHeader = regexp.MustCompile(`^(?:[A-Z][a-z]{2} +\d+ \d{2}:\d{2}:\d{2} \S+ \S+: )?(?:[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+ +\d+ \S+\] )?`)

// stripLogHeader drops the prefixes that differ between nodes and repeats.
func stripLogHeader(s string) string { return logHeader.ReplaceAllString(s, "") }
