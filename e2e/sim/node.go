package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations/agent"
)

// Node is one simulated node: a host whose service manager runs a simulated
// kubelet, and the real node agent (remediations/agent) on top of it.
type Node struct {
	Name    string
	Host    *Host
	Kubelet *Kubelet

	mu        sync.Mutex
	stopAgent context.CancelFunc
	agentDone chan error
	// agentCfg and agentOpts are what the agent was last started with, so
	// SkewClock can start it again with a skewed clock.
	agentCfg  *rest.Config
	agentOpts agent.Options
}

// skewedClock is the real clock off by a fixed offset: a node whose time
// synchronisation broke.
type skewedClock struct {
	clock.RealClock
	offset time.Duration
}

func (c skewedClock) Now() time.Time                  { return time.Now().Add(c.offset) }
func (c skewedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// SkewClock sets the node's clock off by d: the kubelet's stamps and the
// agent's (started again with the skewed clock) are off by it, as on a
// node whose NTP broke.
func (n *Node) SkewClock(d time.Duration) error {
	n.Kubelet.SetClockOffset(d)
	return n.restartAgent(0, func(o *agent.Options) { o.Clock = skewedClock{offset: d} })
}

// restartAgent stops the agent and starts it again after d, with the
// options it last ran with as change leaves them. A node without an agent
// stays without one.
func (n *Node) restartAgent(d time.Duration, change func(*agent.Options)) error {
	n.mu.Lock()
	cfg, opts := n.agentCfg, n.agentOpts
	n.mu.Unlock()
	if cfg == nil {
		return nil // no agent
	}
	if err := n.StopAgent(); err != nil {
		return err
	}
	if change != nil {
		change(&opts)
	}
	if d == 0 {
		return n.StartAgent(cfg, opts)
	}
	time.AfterFunc(d, func() { _ = n.StartAgent(cfg, opts) })
	return nil
}

// NewNode returns a node that is not booted yet.
func NewNode(kube kubernetes.Interface, name string, labels map[string]string) *Node {
	k := NewKubelet(kube, name, labels)
	return &Node{Name: name, Host: NewHost(k, nil), Kubelet: k}
}

// Boot starts the node's units and waits until the kubelet registered the
// Node and renewed its Lease.
func (n *Node) Boot(ctx context.Context, kube kubernetes.Interface) error {
	n.Host.Boot()
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoordinationV1().Leases(NodeLeaseNamespace).Get(ctx, n.Name, metav1.GetOptions{})
		return err == nil, nil
	})
}

// StartAgent runs the real node agent against the simulated host, as the
// identity in cfg, until StopAgent.
func (n *Node) StartAgent(cfg *rest.Config, opts agent.Options) error {
	n.mu.Lock()
	n.agentCfg, n.agentOpts = cfg, opts
	n.mu.Unlock()
	opts.NodeName, opts.Host, opts.Prober = n.Name, n.Host, n.Host
	if n.Host.HasConfig() {
		opts.Config = n.Host
	}
	// The agent measures its clock against the apiserver's on its writes,
	// as cmd/nodeward-agent does.
	cfg = rest.CopyConfig(cfg)
	var clk clock.PassiveClock
	if opts.Clock != nil {
		clk = opts.Clock
	}
	opts.ClockOffset = agent.NewClockOffset(clk)
	cfg.Wrap(opts.ClockOffset.Wrap)
	mgr, err := agent.NewManager(cfg, n.Name, "0")
	if err != nil {
		return err
	}
	if err := agent.Setup(mgr, opts); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	n.mu.Lock()
	n.stopAgent, n.agentDone = cancel, done
	n.mu.Unlock()
	return nil
}

// PauseAgent stops the agent for d and starts it again: its writes are as
// late as the kubelet's when the control plane is overloaded (seed 003).
func (n *Node) PauseAgent(d time.Duration) error { return n.restartAgent(d, nil) }

// StopAgent stops the agent (the node agent goes silent) and waits for it.
func (n *Node) StopAgent() error {
	n.mu.Lock()
	cancel, done := n.stopAgent, n.agentDone
	n.stopAgent, n.agentDone = nil, nil
	n.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	if err := <-done; err != nil {
		return fmt.Errorf("agent of %s: %w", n.Name, err)
	}
	return nil
}

// Shutdown stops the agent and every unit, as a powered-off node.
func (n *Node) Shutdown() {
	_ = n.StopAgent()
	_ = n.Host.Kill(v1alpha1.UnitKubelet, false)
	_ = n.Host.Kill(v1alpha1.UnitContainerRuntime, false)
}

// AgentRunning reports whether the node's agent runs.
func (n *Node) AgentRunning() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopAgent != nil
}
