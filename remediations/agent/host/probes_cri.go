package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// DefaultCRIEndpoint is containerd's CRI socket.
const DefaultCRIEndpoint = "unix:///run/containerd/containerd.sock"

const (
	// DefaultCRITimeout bounds the Version and Status calls together.
	DefaultCRITimeout = 2 * time.Second
	// criInterval: the runtime is called at most this often; probes in
	// between report the last answer.
	criInterval = 10 * time.Second
)

// criProbe calls the container runtime's CRI RuntimeService (Version, then
// Status) over its unix socket with a short deadline: a runtime that runs
// but does not answer is hung, not stopped. The connection is made for each
// call and closed after it: once every 10s a unix socket connect costs
// nothing, and a kept connection would back off for up to 2 minutes after
// a failure and miss the runtime's return.
type criProbe struct {
	endpoint string        // as reported, e.g. unix:///run/containerd/containerd.sock
	socket   string        // the socket's path in the agent's filesystem (under the root)
	timeout  time.Duration // of both calls together

	next         time.Time
	last         *v1alpha1.RuntimeProbe
	failingSince time.Time // zero while the calls succeed
}

// newCRIProbe returns a probe of endpoint (unix:// or a bare path), its
// socket under root; nil and an error for an endpoint it can't call.
func newCRIProbe(root, endpoint string, timeout time.Duration) (*criProbe, error) {
	p, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok && strings.Contains(endpoint, "://") {
		return nil, fmt.Errorf("CRI endpoint %q: only unix:// sockets are supported", endpoint)
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("CRI endpoint %q: not an absolute socket path", endpoint)
	}
	if timeout <= 0 {
		timeout = DefaultCRITimeout
	}
	if !ok {
		endpoint = "unix://" + p
	}
	return &criProbe{endpoint: endpoint, socket: root + cleanHostPath(p), timeout: timeout}, nil
}

// probe returns the runtime's answer, calling it if criInterval passed.
func (c *criProbe) probe(ctx context.Context, now time.Time) *v1alpha1.RuntimeProbe {
	if c.last == nil || !now.Before(c.next) {
		c.next = now.Add(criInterval)
		c.last = c.call(ctx, now)
	}
	return c.last.DeepCopy()
}

func (c *criProbe) call(ctx context.Context, now time.Time) *v1alpha1.RuntimeProbe {
	out := &v1alpha1.RuntimeProbe{Endpoint: truncateText([]byte(c.endpoint), 256)}
	err := c.ask(ctx, out)
	if err == nil {
		out.Answered, c.failingSince = true, time.Time{}
		return out
	}
	out.Error = truncateText([]byte(err.Error()), 256)
	if c.failingSince.IsZero() {
		c.failingSince = now
	}
	t := metav1.NewTime(c.failingSince)
	out.FailingSince = &t
	return out
}

// ask calls Version and Status within c.timeout, filling out as far as it
// gets.
func (c *criProbe) ask(ctx context.Context, out *v1alpha1.RuntimeProbe) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+c.socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("localhost"))
	if err != nil {
		return err
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	v, err := rs.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return criError("Version", err)
	}
	out.Version = truncateText([]byte(strings.TrimSpace(v.GetRuntimeName()+" "+v.GetRuntimeVersion())), 128)
	st, err := rs.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return criError("Status", err)
	}
	for _, cond := range st.GetStatus().GetConditions() {
		ready := cond.GetStatus()
		switch cond.GetType() {
		case runtimeapi.RuntimeReady:
			out.RuntimeReady = &ready
		case runtimeapi.NetworkReady:
			out.NetworkReady = &ready
		}
	}
	return nil
}

// criError names the call and says the gRPC status briefly: "Status:
// DeadlineExceeded: context deadline exceeded".
func criError(call string, err error) error {
	if s, ok := status.FromError(err); ok {
		return fmt.Errorf("%s: %s: %s", call, s.Code(), s.Message())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer in time", call)
	}
	return fmt.Errorf("%s: %w", call, err)
}
