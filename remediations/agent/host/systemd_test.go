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
	units  map[string]props
	result string

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
