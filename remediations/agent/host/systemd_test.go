package host

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// fakeConn is a systemd that knows some units and answers every restart job
// with result (or never, if result is empty).
type fakeConn struct {
	units   map[string]props
	service map[string]props // org.freedesktop.systemd1.Service properties; none: "Unknown interface"
	result  string

	mu    sync.Mutex
	calls []string
}

func (f *fakeConn) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeConn) GetUnitPropertiesContext(_ context.Context, unit string) (map[string]any, error) {
	f.record("get " + unit)
	if p, ok := f.units[unit]; ok {
		return p, nil
	}
	// systemd loads any valid name on demand and reports it not found.
	return props{"LoadState": "not-found", "ActiveState": "inactive", "SubState": "dead"}, nil
}

func (f *fakeConn) GetUnitTypePropertiesContext(_ context.Context, unit, unitType string) (map[string]any, error) {
	if p, ok := f.service[unit]; ok && unitType == "Service" {
		return p, nil
	}
	return nil, errors.New("Unknown interface")
}

func (f *fakeConn) RestartUnitContext(_ context.Context, name, mode string, ch chan<- string) (int, error) {
	f.record("restart " + name + " " + mode)
	if f.result != "" {
		go func() { ch <- f.result }()
	}
	return 1, nil
}

func (f *fakeConn) Close() {}

const (
	t0 uint64 = 1_700_000_000_000_000 // usec
	t1 uint64 = 1_700_000_100_000_000
)

var (
	active = props{"LoadState": "loaded", "ActiveState": "active", "SubState": "running",
		"UnitFileState": "enabled", "ActiveEnterTimestamp": t0, "InactiveEnterTimestamp": uint64(0)}
	deadDisabled = props{"LoadState": "loaded", "ActiveState": "inactive", "SubState": "dead",
		"UnitFileState": "disabled", "ActiveEnterTimestamp": t0, "InactiveEnterTimestamp": t1}
	failed = props{"LoadState": "loaded", "ActiveState": "failed", "SubState": "failed",
		"UnitFileState": "enabled", "ActiveEnterTimestamp": t0, "InactiveEnterTimestamp": t1}
	masked = props{"LoadState": "masked", "ActiveState": "inactive", "SubState": "dead",
		"UnitFileState": "masked", "ActiveEnterTimestamp": uint64(0), "InactiveEnterTimestamp": uint64(0)}
)

func TestUnitState(t *testing.T) {
	cases := []struct {
		name    string
		props   props // of kubelet.service; nil: not found
		unit    v1alpha1.Unit
		want    v1alpha1.UnitState
		since   uint64 // want.Since in usec; 0: nil
		wantErr error  // nil: any error if errText is set
		errText string
	}{
		// An active unit: its states, since it became active.
		{name: "active", props: active, unit: v1alpha1.UnitKubelet,
			want:  v1alpha1.UnitState{Name: "kubelet", UnitName: "kubelet.service", ActiveState: "active", SubState: "running", UnitFileState: "enabled"},
			since: t0},
		// Seed 000 (loaded; disabled, inactive (dead)): since it became inactive.
		{name: "inactive dead disabled", props: deadDisabled, unit: v1alpha1.UnitKubelet,
			want:  v1alpha1.UnitState{Name: "kubelet", UnitName: "kubelet.service", ActiveState: "inactive", SubState: "dead", UnitFileState: "disabled"},
			since: t1},
		// A failed unit: since it failed.
		{name: "failed", props: failed, unit: v1alpha1.UnitKubelet,
			want:  v1alpha1.UnitState{Name: "kubelet", UnitName: "kubelet.service", ActiveState: "failed", SubState: "failed", UnitFileState: "enabled"},
			since: t1},
		// A masked unit is reported, not refused; timestamp 0 means no Since.
		{name: "masked", props: masked, unit: v1alpha1.UnitKubelet,
			want: v1alpha1.UnitState{Name: "kubelet", UnitName: "kubelet.service", ActiveState: "inactive", SubState: "dead", UnitFileState: "masked"}},
		// A unit systemd does not have is an error naming it.
		{name: "not found", unit: v1alpha1.UnitKubelet, wantErr: errNotFound, errText: "kubelet.service"},
		// A unit outside the allow-list is refused.
		{name: "not allowed", props: active, unit: "sshd", wantErr: ErrNotAllowed, errText: "sshd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeConn{units: map[string]props{}}
			if tc.props != nil {
				f.units["kubelet.service"] = tc.props
			}
			s := newSystemd(f, DefaultUnits())
			got, err := s.UnitState(context.Background(), tc.unit)
			if tc.wantErr != nil || tc.errText != "" {
				checkErr(t, err, tc.wantErr, tc.errText)
				return
			}
			if err != nil {
				t.Fatalf("UnitState: %v", err)
			}
			if (got.Since == nil) != (tc.since == 0) || (got.Since != nil && got.Since.UnixMicro() != int64(tc.since)) {
				t.Errorf("Since = %v, want %d usec", got.Since, tc.since)
			}
			got.Since = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("UnitState = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// serviceProps are the Service properties of kubelet.service as
// `systemctl show kubelet` prints them (and D-Bus types them: NRestarts u,
// ExecMainCode and ExecMainStatus i, timestamps t in usec).
func serviceProps(nRestarts uint32, result string, code, status int32, exitUsec uint64) props {
	return props{"Type": "simple", "Restart": "always", "NRestarts": nRestarts, "Result": result,
		"ExecMainCode": code, "ExecMainStatus": status, "ExecMainExitTimestamp": exitUsec,
		"ExecMainStartTimestamp": t0, "ExecMainPID": uint32(0)}
}

func TestUnitStateService(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	cases := []struct {
		name    string
		unit    props
		service props // nil: the Service interface can't be read
		want    v1alpha1.UnitState
		exited  uint64 // want.ExitedAt in usec; 0: nil
	}{
		// `systemctl show kubelet` of a kubelet crash-looping on its own
		// error (swap on): ActiveState=activating SubState=auto-restart
		// Result=exit-code NRestarts=5 ExecMainCode=1 ExecMainStatus=1.
		{name: "crash loop exit status 1",
			unit:    props{"LoadState": "loaded", "ActiveState": "activating", "SubState": "auto-restart", "UnitFileState": "enabled", "InactiveExitTimestamp": t0},
			service: serviceProps(5, "exit-code", 1, 1, t1),
			want: v1alpha1.UnitState{Name: "kubelet", UnitName: "kubelet.service", ActiveState: "activating", SubState: "auto-restart", UnitFileState: "enabled",
				Restarts: i32(5), Result: "exit-code", ExitCode: "exited", ExitStatus: i32(1)},
			exited: t1},
		// `systemctl stop kubelet`: SIGTERM ends the main process
		// (ExecMainCode=2 ExecMainStatus=15) and systemd counts it a
		// success; no restarts.
		{name: "cleanly stopped",
			unit:    deadDisabled,
			service: serviceProps(0, "success", 2, 15, t1),
			want: v1alpha1.UnitState{Name: "kubelet", UnitName: "kubelet.service", ActiveState: "inactive", SubState: "dead", UnitFileState: "disabled",
				Restarts: i32(0), Result: "success", ExitCode: "killed", ExitStatus: i32(15)},
			exited: t1},
		// kill -9 of a unit with Restart=no: failed, Result=signal,
		// ExecMainCode=2 ExecMainStatus=9.
		{name: "killed by signal 9",
			unit:    failed,
			service: serviceProps(0, "signal", 2, 9, t1),
			want: v1alpha1.UnitState{Name: "kubelet", UnitName: "kubelet.service", ActiveState: "failed", SubState: "failed", UnitFileState: "enabled",
				Restarts: i32(0), Result: "signal", ExitCode: "killed", ExitStatus: i32(9)},
			exited: t1},
		// A core dump: ExecMainCode=3 (CLD_DUMPED), the signal in the status.
		{name: "dumped",
			unit:    failed,
			service: serviceProps(2, "core-dump", 3, 11, t1),
			want: v1alpha1.UnitState{Name: "kubelet", UnitName: "kubelet.service", ActiveState: "failed", SubState: "failed", UnitFileState: "enabled",
				Restarts: i32(2), Result: "core-dump", ExitCode: "dumped", ExitStatus: i32(11)},
			exited: t1},
		// Running again after restarts: systemd reset ExecMainCode to 0 when
		// the new main process started, so there is no exit to report.
		{name: "running after restarts",
			unit:    active,
			service: serviceProps(3, "success", 0, 0, 0),
			want: v1alpha1.UnitState{Name: "kubelet", UnitName: "kubelet.service", ActiveState: "active", SubState: "running", UnitFileState: "enabled",
				Restarts: i32(3), Result: "success"}},
		// The Service interface can't be read: the unit's states still are.
		{name: "no service properties",
			unit: active,
			want: v1alpha1.UnitState{Name: "kubelet", UnitName: "kubelet.service", ActiveState: "active", SubState: "running", UnitFileState: "enabled"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeConn{units: map[string]props{"kubelet.service": tc.unit}, service: map[string]props{}}
			if tc.service != nil {
				f.service["kubelet.service"] = tc.service
			}
			got, err := newSystemd(f, DefaultUnits()).UnitState(context.Background(), v1alpha1.UnitKubelet)
			if err != nil {
				t.Fatalf("UnitState: %v", err)
			}
			if (got.ExitedAt == nil) != (tc.exited == 0) || (got.ExitedAt != nil && got.ExitedAt.UnixMicro() != int64(tc.exited)) {
				t.Errorf("ExitedAt = %v, want %d usec", got.ExitedAt, tc.exited)
			}
			got.Since, got.ExitedAt = nil, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("UnitState =\n %+v, want\n %+v", got, tc.want)
			}
		})
	}
}

func TestRestartUnit(t *testing.T) {
	cases := []struct {
		name      string
		props     props // of kubelet.service; nil: not found
		unit      v1alpha1.Unit
		result    string // job result systemd reports; "": never
		timeout   time.Duration
		wantErr   error
		errText   string // "": success
		wantCalls []string
	}{
		// An active unit is restarted with a replace job; "done" is success.
		{name: "active", props: active, unit: v1alpha1.UnitKubelet, result: "done",
			wantCalls: []string{"get kubelet.service", "restart kubelet.service replace"}},
		// Seed 000: a dead, disabled unit is started by the restart job.
		{name: "inactive dead disabled", props: deadDisabled, unit: v1alpha1.UnitKubelet, result: "done",
			wantCalls: []string{"get kubelet.service", "restart kubelet.service replace"}},
		// A failed unit is restarted too.
		{name: "failed", props: failed, unit: v1alpha1.UnitKubelet, result: "done",
			wantCalls: []string{"get kubelet.service", "restart kubelet.service replace"}},
		// A masked unit is refused and no job is queued (never unmasked).
		{name: "masked refused", props: masked, unit: v1alpha1.UnitKubelet, result: "done",
			wantErr: errMasked, errText: "kubelet.service",
			wantCalls: []string{"get kubelet.service"}},
		// A unit systemd does not have is refused and no job is queued.
		{name: "not found", unit: v1alpha1.UnitKubelet, result: "done",
			wantErr: errNotFound, errText: "kubelet.service",
			wantCalls: []string{"get kubelet.service"}},
		// A unit outside the allow-list is refused without any D-Bus call.
		{name: "not allowed", props: active, unit: "sshd", result: "done",
			wantErr: ErrNotAllowed, errText: "sshd"},
		// A job result other than "done" is an error naming unit and result.
		{name: "job failed", props: failed, unit: v1alpha1.UnitKubelet, result: "failed",
			errText:   `kubelet.service: systemd job result "failed"`,
			wantCalls: []string{"get kubelet.service", "restart kubelet.service replace"}},
		// ctx ending while the job runs is an error naming the unit.
		{name: "ctx cancelled while waiting", props: active, unit: v1alpha1.UnitKubelet, timeout: 20 * time.Millisecond,
			wantErr: context.DeadlineExceeded, errText: "kubelet.service",
			wantCalls: []string{"get kubelet.service", "restart kubelet.service replace"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeConn{units: map[string]props{}, result: tc.result}
			if tc.props != nil {
				f.units["kubelet.service"] = tc.props
			}
			s := newSystemd(f, DefaultUnits())
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			err := s.RestartUnit(ctx, tc.unit)
			if tc.wantErr != nil || tc.errText != "" {
				checkErr(t, err, tc.wantErr, tc.errText)
			} else if err != nil {
				t.Errorf("RestartUnit: %v", err)
			}
			if strings.Join(f.calls, "; ") != strings.Join(tc.wantCalls, "; ") {
				t.Errorf("D-Bus calls = %q, want %q", f.calls, tc.wantCalls)
			}
		})
	}
}

func checkErr(t *testing.T, err, want error, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error")
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("err = %v, want it to wrap %v", err, want)
	}
	if !strings.Contains(err.Error(), text) {
		t.Errorf("err = %v, want it to contain %q", err, text)
	}
}
