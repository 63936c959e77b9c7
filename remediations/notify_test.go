package remediations

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestNotifierRetriesThenDelivers(t *testing.T) {
	var calls atomic.Int32
	got := make(chan ApprovalNotice, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var n ApprovalNotice
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("bad request: %v", err)
		}
		got <- n
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(file, []byte(srv.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := NewNotifier(file)
	n.Backoff = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = n.Start(ctx) }()
	rem := approvalRecord()
	rem.Status.Message = "waiting"
	n.Notify(ctx, approvalNotice(rem, t0.Add(time.Hour)))
	select {
	case notice := <-got:
		if notice.Remediation != recordName || notice.Node != nodeName || notice.Event != "ApprovalRequired" || !notice.ExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("notice %+v", notice)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not delivered")
	}
	if c := calls.Load(); c != 3 {
		t.Errorf("%d calls, want 3 (two refused)", c)
	}
}

func TestNotifierNeverBlocks(t *testing.T) {
	n := NewNotifier("/nonexistent")
	done := make(chan struct{})
	go func() {
		for range 500 { // nobody drains the queue of 100
			n.Notify(context.Background(), ApprovalNotice{})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify blocked")
	}
	var nilNotifier *Notifier
	nilNotifier.Notify(context.Background(), ApprovalNotice{}) // no notifier configured
}

func TestNotifierTimeout(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer srv.Close()
	defer close(stop) // before Close, which waits for the handlers
	file := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(file, []byte(srv.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	n := NewNotifier(file)
	n.Timeout, n.Attempts, n.Backoff = 50*time.Millisecond, 2, time.Millisecond
	start := time.Now()
	if err := n.send(context.Background(), ApprovalNotice{}); err == nil {
		t.Fatal("a hanging webhook was reported delivered")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}
