package agent

import (
	"net/http"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// ClockOffset measures the node's clock against the apiserver's: the Date
// header of the apiserver's answers to the agent's writes (its NodeReport
// and NodeTask status updates) against the agent's clock when the answer
// arrived. Date has a resolution of one second and is stamped before the
// answer travels back, so the measure reads up to a second (plus the
// answer's latency) ahead of the true offset: an offset under 2s means
// nothing (v1alpha1.OffsetBucket counts it as none). It costs no request
// of its own.
type ClockOffset struct {
	clock clock.PassiveClock

	mu       sync.Mutex
	offset   time.Duration
	measured bool
}

// NewClockOffset returns a ClockOffset reading clk (nil: the real clock).
func NewClockOffset(clk clock.PassiveClock) *ClockOffset {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &ClockOffset{clock: clk}
}

// Wrap is a rest.Config.Wrap function: it measures the offset on the
// answers to writes (reads include watches, whose Date is when they began).
func (c *ClockOffset) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && (req.Method == http.MethodPut || req.Method == http.MethodPost || req.Method == http.MethodPatch) {
			c.observe(resp.Header.Get("Date"))
		}
		return resp, err
	})
}

func (c *ClockOffset) observe(date string) {
	if date == "" {
		return
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return
	}
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset, c.measured = now.Sub(t), true
}

// Offset is the last measured offset (the node's clock minus the
// apiserver's); false before the first measure.
func (c *ClockOffset) Offset() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.measured
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
