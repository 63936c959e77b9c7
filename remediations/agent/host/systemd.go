package host

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// systemBusAddress is the host's system bus socket as the DaemonSet mounts
// it. godbus would otherwise default to /var/run/..., which a minimal image
// may not link to /run.
const systemBusAddress = "unix:path=/run/dbus/system_bus_socket"

var (
	errMasked   = errors.New("unit is masked; refusing to act on it")
	errNotFound = errors.New("unit not found")
)

// conn is the part of the go-systemd D-Bus connection Systemd uses.
type conn interface {
	GetUnitPropertiesContext(ctx context.Context, unit string) (map[string]any, error)
	GetUnitTypePropertiesContext(ctx context.Context, unit, unitType string) (map[string]any, error)
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	Close()
}

// Systemd is the Host of a real node: it reads unit states from and restarts
// units through systemd over the system D-Bus. It is safe for concurrent use.
type Systemd struct {
	conn    conn
	units   Units
	journal *Journal // nil: no journal lines in UnitState.Logs
}

var _ Host = (*Systemd)(nil)

// NewSystemd connects to systemd on the system bus. The bus address is
// DBUS_SYSTEM_BUS_ADDRESS or, if that is unset, /run/dbus/system_bus_socket
// (the variable is then set for the process). Only the units in units can be
// read or restarted. Call Close when done.
func NewSystemd(ctx context.Context, units Units) (*Systemd, error) {
	if os.Getenv("DBUS_SYSTEM_BUS_ADDRESS") == "" {
		if err := os.Setenv("DBUS_SYSTEM_BUS_ADDRESS", systemBusAddress); err != nil {
			return nil, fmt.Errorf("set DBUS_SYSTEM_BUS_ADDRESS: %w", err)
		}
	}
	c, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over the system bus: %w", err)
	}
	return newSystemd(c, units), nil
}

// newSystemd builds a Systemd over any conn (a fake one in tests).
func newSystemd(c conn, units Units) *Systemd {
	return &Systemd{conn: c, units: maps.Clone(units)}
}

// SetJournal makes UnitState fill Logs with the unit's journal error lines
// (read by j at most every JournalInterval). Call it before the first
// UnitState.
func (s *Systemd) SetJournal(j *Journal) { s.journal = j }

// Close closes the D-Bus connection.
func (s *Systemd) Close() { s.conn.Close() }

// UnitState returns the state of the logical unit as systemd reports it. A
// unit systemd does not know is an error; a masked unit is reported with
// UnitFileState "masked".
func (s *Systemd) UnitState(ctx context.Context, unit v1alpha1.Unit) (v1alpha1.UnitState, error) {
	name, err := s.units.lookup(unit)
	if err != nil {
		return v1alpha1.UnitState{}, err
	}
	p, err := s.properties(ctx, name)
	if err != nil {
		return v1alpha1.UnitState{}, err
	}
	if p.str("LoadState") == "not-found" {
		return v1alpha1.UnitState{}, fmt.Errorf("unit %s: %w", name, errNotFound)
	}
	active := p.str("ActiveState")
	st := v1alpha1.UnitState{
		Name:          unit,
		UnitName:      name,
		ActiveState:   active,
		SubState:      p.str("SubState"),
		UnitFileState: p.str("UnitFileState"),
		Since:         p.time(sinceProperty(active)),
	}
	// The service's own properties (how its main process last ended, how
	// often systemd restarted it) tell a crash loop from a stopped unit.
	// They are extra evidence: a unit that is not a service, or an error
	// reading them, leaves them out without failing the state.
	if sp, err := s.conn.GetUnitTypePropertiesContext(ctx, name, "Service"); err == nil {
		fillServiceState(&st, sp)
	}
	if s.journal != nil {
		st.Logs = s.journal.Lines(ctx, unit)
	}
	return st, nil
}

// fillServiceState reads the org.freedesktop.systemd1.Service properties
// `systemctl show` prints as NRestarts, Result, ExecMainCode,
// ExecMainStatus and ExecMainExitTimestamp.
func fillServiceState(st *v1alpha1.UnitState, p props) {
	if n, ok := p["NRestarts"].(uint32); ok {
		r := int32(min(n, math.MaxInt32))
		st.Restarts = &r
	}
	st.Result = truncateText([]byte(p.str("Result")), 64)
	// ExecMainCode is a siginfo si_code: CLD_EXITED 1, CLD_KILLED 2,
	// CLD_DUMPED 3; 0 means the main process has not ended (or never ran).
	code, _ := p["ExecMainCode"].(int32)
	switch code {
	case 1:
		st.ExitCode = "exited"
	case 2:
		st.ExitCode = "killed"
	case 3:
		st.ExitCode = "dumped"
	}
	if st.ExitCode != "" {
		if status, ok := p["ExecMainStatus"].(int32); ok {
			st.ExitStatus = &status
		}
		st.ExitedAt = p.time("ExecMainExitTimestamp")
	}
}

// RestartUnit restarts the unit with a systemd restart job (stop if running,
// then start) in "replace" mode and waits for the job's result. A masked or
// unknown unit is refused before any job is queued. If ctx ends while
// waiting, the job goes on in systemd and RestartUnit returns ctx's error.
func (s *Systemd) RestartUnit(ctx context.Context, unit v1alpha1.Unit) error {
	name, err := s.units.lookup(unit)
	if err != nil {
		return err
	}
	p, err := s.properties(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case p.str("LoadState") == "masked" || p.str("UnitFileState") == "masked":
		return fmt.Errorf("restart %s: %w", name, errMasked)
	case p.str("LoadState") == "not-found":
		return fmt.Errorf("restart %s: %w", name, errNotFound)
	}

	// Buffered: go-systemd sends the result while holding its lock, and
	// nobody reads it if ctx ends first.
	done := make(chan string, 1)
	if _, err := s.conn.RestartUnitContext(ctx, name, "replace", done); err != nil {
		return fmt.Errorf("restart %s: %w", name, err)
	}
	select {
	case result := <-done:
		if result != "done" {
			return fmt.Errorf("restart %s: systemd job result %q", name, result)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("restart %s: waiting for the systemd job: %w", name, ctx.Err())
	}
}

// properties reads the org.freedesktop.systemd1.Unit properties of a unit.
func (s *Systemd) properties(ctx context.Context, name string) (props, error) {
	p, err := s.conn.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("unit %s: read properties: %w", name, err)
	}
	return p, nil
}

// sinceProperty picks the timestamp `systemctl status` shows after "since"
// for an ActiveState.
func sinceProperty(activeState string) string {
	switch activeState {
	case "inactive", "failed":
		return "InactiveEnterTimestamp"
	case "activating":
		return "InactiveExitTimestamp"
	case "deactivating":
		return "ActiveExitTimestamp"
	default: // active, reloading, refreshing
		return "ActiveEnterTimestamp"
	}
}

// props are unit properties as go-systemd returns them.
type props map[string]any

func (p props) str(key string) string {
	s, _ := p[key].(string)
	return s
}

// time reads a systemd timestamp (microseconds since the epoch; 0 is unset).
func (p props) time(key string) *metav1.Time {
	usec, _ := p[key].(uint64)
	if usec == 0 {
		return nil
	}
	t := metav1.NewTime(time.UnixMicro(int64(usec)))
	return &t
}
