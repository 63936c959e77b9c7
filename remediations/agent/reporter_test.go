package agent

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func TestSameUnitsEvidence(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	base := func() v1alpha1.UnitState {
		return v1alpha1.UnitState{Name: v1alpha1.UnitKubelet, ActiveState: "activating", SubState: "auto-restart",
			Restarts: i32(3), Result: "exit-code", ExitCode: "exited", ExitStatus: i32(1),
			Logs: []v1alpha1.LogLine{{Source: "kubelet", Count: 3, Text: `"command failed" err="failed to run Kubelet: running with swap on is not supported"`}}}
	}
	for _, tc := range []struct {
		name   string
		change func(*v1alpha1.UnitState)
		same   bool
	}{
		{"one more restart within the bucket", func(u *v1alpha1.UnitState) { u.Restarts = i32(4); u.Logs[0].Count = 4 }, true},
		{"another exit time", func(u *v1alpha1.UnitState) { now := u.Since; u.ExitedAt = now }, true},
		{"restarts reach 10", func(u *v1alpha1.UnitState) { u.Restarts = i32(10) }, false},
		{"another exit status", func(u *v1alpha1.UnitState) { u.ExitStatus = i32(2) }, false},
		{"killed instead", func(u *v1alpha1.UnitState) { u.ExitCode, u.Result = "killed", "signal" }, false},
		{"a new journal line", func(u *v1alpha1.UnitState) {
			u.Logs = append(u.Logs, v1alpha1.LogLine{Source: "kubelet", Text: "failed to load kubelet config file"})
		}, false},
		{"a line with another PID", func(u *v1alpha1.UnitState) { u.Logs[0].Text += " pid 1234" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(&b)
			if got := v1alpha1.SameUnits([]v1alpha1.UnitState{a}, []v1alpha1.UnitState{b}); got != tc.same {
				t.Errorf("sameUnits = %v, want %v (%q vs %q)", got, tc.same, a.EvidenceSignature(), b.EvidenceSignature())
			}
		})
	}
}

func TestClockOffset(t *testing.T) {
	apiserver := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", apiserver.Format(http.TimeFormat))
	}))
	defer srv.Close()
	// The node's clock is 90.5s ahead.
	clk := clocktesting.NewFakeClock(apiserver.Add(90*time.Second + 500*time.Millisecond))
	off := NewClockOffset(clk)
	c := &http.Client{Transport: off.Wrap(http.DefaultTransport)}
	get := func(method string) {
		req, _ := http.NewRequest(method, srv.URL, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get(http.MethodGet)
	if _, ok := off.Offset(); ok {
		t.Errorf("measured on a read")
	}
	get(http.MethodPut)
	if d, ok := off.Offset(); !ok || d != 90*time.Second+500*time.Millisecond {
		t.Errorf("Offset = %v %v, want 90.5s", d, ok)
	}
	if b := v1alpha1.OffsetBucket((90*time.Second + 500*time.Millisecond).Milliseconds()); b != "+3" {
		t.Errorf("bucket = %q", b)
	}
}
