package host

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criServer is a CRI RuntimeService as containerd answers it, or one that
// hangs, or fails.
type criServer struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	mu           sync.Mutex
	mode         string // "answer", "hang", "error"
	networkReady bool
}

func (s *criServer) setMode(m string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
}

func (s *criServer) Version(ctx context.Context, _ *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "containerd", RuntimeVersion: "v1.7.24", RuntimeApiVersion: "v1"}, nil
}

func (s *criServer) Status(ctx context.Context, _ *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	s.mu.Lock()
	mode := s.mode
	s.mu.Unlock()
	switch mode {
	case "hang":
		<-ctx.Done()
		return nil, ctx.Err()
	case "error":
		return nil, status.Error(codes.Unknown, "failed to get runtime status: containerd is shutting down")
	}
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: s.networkReady, Reason: "NetworkPluginNotReady", Message: "Network plugin returns error: cni plugin not initialized"},
	}}}, nil
}

// serveCRI serves srv on root/run/containerd/containerd.sock.
func serveCRI(t *testing.T, root string, srv *criServer) {
	t.Helper()
	sock := filepath.Join(root, "run/containerd/containerd.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(s, srv)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
}

func TestCRIProbe(t *testing.T) {
	const timeout = 300 * time.Millisecond
	cases := []struct {
		name         string
		server       *criServer // nil: no socket
		answered     bool
		version      string
		networkReady *bool
		errText      string
	}{
		{name: "answering, CNI not ready", server: &criServer{mode: "answer"}, answered: true, version: "containerd v1.7.24", networkReady: new(false)},
		{name: "answering, ready", server: &criServer{mode: "answer", networkReady: true}, answered: true, version: "containerd v1.7.24", networkReady: new(true)},
		// Running but hung: Version answers, Status does not within the deadline.
		{name: "hanging", server: &criServer{mode: "hang"}, version: "containerd v1.7.24", errText: "Status: DeadlineExceeded"},
		{name: "error", server: &criServer{mode: "error"}, version: "containerd v1.7.24", errText: "Status: Unknown: failed to get runtime status: containerd is shutting down"},
		{name: "no socket", errText: "Version: Unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A short path: a unix socket's path is at most 107 bytes.
			root, err := os.MkdirTemp("", "cri")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(root) })
			if tc.server != nil {
				serveCRI(t, root, tc.server)
			}
			c, err := newCRIProbe(root, DefaultCRIEndpoint, timeout)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got := c.probe(context.Background(), jt0)
			if d := time.Since(start); d > timeout+time.Second {
				t.Errorf("the probe took %s, deadline %s", d, timeout)
			}
			if got.Endpoint != DefaultCRIEndpoint || got.Answered != tc.answered || got.Version != tc.version {
				t.Errorf("probe = %+v, want answered %v version %q", got, tc.answered, tc.version)
			}
			if tc.answered {
				if got.RuntimeReady == nil || !*got.RuntimeReady || got.NetworkReady == nil || *got.NetworkReady != *tc.networkReady || got.Error != "" || got.FailingSince != nil {
					t.Errorf("probe = %+v", got)
				}
				return
			}
			if !strings.Contains(got.Error, tc.errText) {
				t.Errorf("Error = %q, want %q", got.Error, tc.errText)
			}
			if got.FailingSince == nil || !got.FailingSince.Time.Equal(jt0) {
				t.Errorf("FailingSince = %v, want %v", got.FailingSince, jt0)
			}
		})
	}
}

// TestCRIProbeFailingSince: the first failure of a run of failures stays;
// a success ends the run; calls are at most every 10s.
func TestCRIProbeFailingSince(t *testing.T) {
	root, err := os.MkdirTemp("", "cri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	srv := &criServer{mode: "error"}
	serveCRI(t, root, srv)
	c, err := newCRIProbe(root, "/run/containerd/containerd.sock", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got := c.probe(ctx, jt0); got.Answered || !got.FailingSince.Time.Equal(jt0) || got.Endpoint != DefaultCRIEndpoint {
		t.Fatalf("first failure: %+v", got)
	}
	if got := c.probe(ctx, jt0.Add(criInterval)); !got.FailingSince.Time.Equal(jt0) {
		t.Errorf("second failure: FailingSince = %v, want the first's %v", got.FailingSince, jt0)
	}
	srv.setMode("answer")
	// Within the interval: the last answer, not a new call.
	if got := c.probe(ctx, jt0.Add(criInterval+time.Second)); got.Answered {
		t.Errorf("called again within %s: %+v", criInterval, got)
	}
	if got := c.probe(ctx, jt0.Add(2*criInterval)); !got.Answered || got.FailingSince != nil {
		t.Errorf("after recovery: %+v", got)
	}
	srv.setMode("error")
	if got := c.probe(ctx, jt0.Add(3*criInterval)); !got.FailingSince.Time.Equal(jt0.Add(3 * criInterval)) {
		t.Errorf("a new run of failures: FailingSince = %v", got.FailingSince)
	}
}

func TestCRIEndpoint(t *testing.T) {
	for _, e := range []string{"tcp://10.0.0.1:1234", "relative.sock", "unix://relative"} {
		if _, err := newCRIProbe("", e, 0); err == nil {
			t.Errorf("newCRIProbe(%q) accepted", e)
		}
	}
}
