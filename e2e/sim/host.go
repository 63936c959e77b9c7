package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations/agent/host"
)

// Service is what a simulated unit runs while it is active.
type Service interface {
	Start()
	Stop()
}

type unit struct {
	name    string
	active  bool
	failed  bool
	enabled bool
	since   time.Time
	svc     Service
	// crash, while set, is the fatal line the unit exits with at every
	// start (CrashLoop), and crashSince when the loop began.
	crash      string
	crashSince time.Time
	// hung: the unit runs but does not answer (Hang); a restart clears it.
	hung bool
}

// CrashLoopRestartSec is how often systemd starts a crash-looping unit
// again (Restart=always, RestartSec).
const CrashLoopRestartSec = 2 * time.Second

// Host is a simulated node's service manager. It implements host.Host with
// systemd's semantics: a restart stops the unit if it runs and starts it,
// whatever its enablement; a unit killed cleanly stays dead.
type Host struct {
	mu       sync.Mutex
	units    map[v1alpha1.Unit]*unit
	restarts map[v1alpha1.Unit]int
	probes   v1alpha1.NodeProbes
	config   *host.ConfigFiles // config.go; nil until SetupConfig
}

// HealthyProbes is what the agent measures on a healthy simulated node.
func HealthyProbes() v1alpha1.NodeProbes {
	const gi = 1 << 30
	return v1alpha1.NodeProbes{
		Memory:         &v1alpha1.MemoryProbe{TotalBytes: 32 * gi, AvailableBytes: 20 * gi},
		Load:           &v1alpha1.LoadProbe{Load1Milli: 500, CPUs: 8},
		PIDs:           &v1alpha1.PIDProbe{Threads: 900, PIDMax: 4194304},
		Disks:          []v1alpha1.DiskProbe{{Path: "/var/lib/kubelet", TotalBytes: 100 * gi, FreeBytes: 60 * gi, TotalInodes: 6553600, FreeInodes: 6000000}},
		SystemdVersion: "252",
		Runtime:        answering(),
	}
}

// answering is the CRI probe of a runtime that answers.
func answering() *v1alpha1.RuntimeProbe {
	return &v1alpha1.RuntimeProbe{Endpoint: "unix:///run/containerd/containerd.sock", Answered: true, Version: "containerd 1.7.24",
		RuntimeReady: ptr.To(true), NetworkReady: ptr.To(true)}
}

// Probe returns the node's simulated measurements.
func (h *Host) Probe(context.Context) v1alpha1.NodeProbes {
	h.mu.Lock()
	defer h.mu.Unlock()
	return *h.probes.DeepCopy()
}

// SetProbes changes the node's simulated measurements.
func (h *Host) SetProbes(change func(*v1alpha1.NodeProbes)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	change(&h.probes)
}

var _ host.Host = (*Host)(nil)

// NewHost returns a host whose kubelet runs kubelet (may be nil) and whose
// container runtime runs runtime (may be nil). Both units start enabled and
// stopped; call Boot to start them.
func NewHost(kubelet, runtime Service) *Host {
	return &Host{
		units: map[v1alpha1.Unit]*unit{
			v1alpha1.UnitKubelet:          {name: "kubelet.service", enabled: true, svc: kubelet},
			v1alpha1.UnitContainerRuntime: {name: "containerd.service", enabled: true, svc: runtime},
		},
		restarts: map[v1alpha1.Unit]int{},
		probes:   HealthyProbes(),
	}
}

// Boot starts every enabled unit, as systemd does at boot.
func (h *Host) Boot() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range h.units {
		if u.enabled && !u.active && u.crash == "" {
			h.startLocked(u)
		}
	}
}

func (h *Host) startLocked(u *unit) {
	u.active, u.failed, u.since = true, false, time.Now()
	if u.svc != nil {
		u.svc.Start()
	}
}

func (h *Host) stopLocked(u *unit, failed bool) {
	if u.active && u.svc != nil {
		u.svc.Stop()
	}
	u.active, u.failed, u.since = false, failed, time.Now()
}

// unitLocked returns the named unit; h.mu is held.
func (h *Host) unitLocked(name v1alpha1.Unit) (*unit, error) {
	u, ok := h.units[name]
	if !ok {
		return nil, fmt.Errorf("unit %q: %w", name, host.ErrNotAllowed)
	}
	return u, nil
}

// Kill stops the unit as a crash or a clean kill would; it stays dead, like a
// unit with Restart=on-failure after a clean exit. failed selects systemd's
// "failed" state over "inactive".
func (h *Host) Kill(name v1alpha1.Unit, failed bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	u, err := h.unitLocked(name)
	if err != nil {
		return err
	}
	h.stopLocked(u, failed)
	return nil
}

// CrashLoop makes the unit exit with line at every start, as a kubelet
// with swap on or a bad config does: systemd starts it again every
// CrashLoopRestartSec, counting NRestarts, and the journal repeats the line.
// A restart (RestartUnit) does not help: it resets the counter and the unit
// exits again. Heal with Boot after ClearFaults.
func (h *Host) CrashLoop(name v1alpha1.Unit, line string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	u, err := h.unitLocked(name)
	if err != nil {
		return err
	}
	h.stopLocked(u, false)
	u.crash, u.crashSince = line, time.Now()
	return nil
}

// Hang makes the unit run but stop answering (a runtime whose CRI socket
// times out); a restart cures it.
func (h *Host) Hang(name v1alpha1.Unit) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u, ok := h.units[name]; ok {
		u.hung = true
	}
	if name == v1alpha1.UnitContainerRuntime {
		now := metav1.Now()
		h.probes.Runtime = &v1alpha1.RuntimeProbe{Endpoint: "unix:///run/containerd/containerd.sock",
			Error: "rpc error: code = DeadlineExceeded desc = context deadline exceeded", FailingSince: &now}
	}
}

// ClearFaults ends crash loops and hangs (the heal fault).
func (h *Host) ClearFaults() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range h.units {
		u.crash, u.hung = "", false
	}
	h.probes.Runtime = answering()
}

// SetEnabled sets the unit's enablement (seed 000: the kubelet was disabled).
func (h *Host) SetEnabled(name v1alpha1.Unit, enabled bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u, ok := h.units[name]; ok {
		u.enabled = enabled
	}
}

// Restarts counts how often the unit was restarted through RestartUnit.
func (h *Host) Restarts(name v1alpha1.Unit) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.restarts[name]
}

// UnitState implements host.Host.
func (h *Host) UnitState(_ context.Context, name v1alpha1.Unit) (v1alpha1.UnitState, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u, ok := h.units[name]
	if !ok {
		return v1alpha1.UnitState{}, fmt.Errorf("unit %q: %w", name, host.ErrNotAllowed)
	}
	st := v1alpha1.UnitState{Name: name, UnitName: u.name, ActiveState: "inactive", SubState: "dead", UnitFileState: "disabled"}
	switch {
	case u.active:
		st.ActiveState, st.SubState = "active", "running"
	case u.failed:
		st.ActiveState, st.SubState = "failed", "failed"
	}
	if u.enabled {
		st.UnitFileState = "enabled"
	}
	if !u.since.IsZero() {
		t := metav1.NewTime(u.since)
		st.Since = &t
	}
	if u.crash != "" {
		// Between two exits: systemd waits RestartSec ("activating
		// (auto-restart)"), the last exit was status 1, and the journal
		// holds the fatal line once per start.
		now := time.Now()
		n := int32(now.Sub(u.crashSince)/CrashLoopRestartSec) + 1
		first, last := metav1.NewTime(u.crashSince), metav1.NewTime(u.crashSince.Add(time.Duration(n-1)*CrashLoopRestartSec))
		st.ActiveState, st.SubState, st.Result, st.ExitCode = "activating", "auto-restart", "exit-code", "exited"
		st.Restarts, st.ExitStatus, st.ExitedAt = ptr.To(n), ptr.To(int32(1)), &last
		st.Logs = []v1alpha1.LogLine{{Source: "kubelet", Text: u.crash, Count: n, FirstTime: &first, Time: &last}}
	}
	return st, nil
}

// RestartUnit implements host.Host.
func (h *Host) RestartUnit(_ context.Context, name v1alpha1.Unit) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	u, err := h.unitLocked(name)
	if err != nil {
		return err
	}
	h.stopLocked(u, false)
	h.restarts[name]++
	if u.crash != "" {
		u.crashSince = time.Now() // a manual restart resets NRestarts; it exits again
		return nil
	}
	h.startLocked(u)
	if u.hung {
		u.hung = false
		if name == v1alpha1.UnitContainerRuntime {
			h.probes.Runtime = answering()
		}
	}
	return nil
}
