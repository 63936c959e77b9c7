// Package agent is the node agent: it runs on every node, reports the node's
// state (NodeReport) when it changes and at a slow interval, and carries out
// the node-local steps of remediations (NodeTask), each at most once, for its
// own node only and only from a closed set of actions.
package agent

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations/agent/host"
)

// The agent's permissions, generated into config/rbac/agent by controller-gen.
// RBAC can't say "only this node's objects": the ValidatingAdmissionPolicy in
// config/rbac/agent restricts the agent's writes to its own node.
//
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get
// +kubebuilder:rbac:groups=nodeward.io,resources=nodetasks,verbs=get;list;watch
// +kubebuilder:rbac:groups=nodeward.io,resources=nodetasks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=nodeward.io,resources=nodereports,verbs=get;create
// +kubebuilder:rbac:groups=nodeward.io,resources=nodereports/status,verbs=get;update;patch

// Defaults for Options.
const (
	DefaultProbeInterval  = 2 * time.Second
	DefaultReportInterval = 60 * time.Second
	// DefaultActionTimeout bounds one node-local action.
	DefaultActionTimeout = 2 * time.Minute
)

// Options configure the agent of one node.
type Options struct {
	// NodeName is the node the agent runs on; it acts only for this node.
	NodeName string
	// Host is how the agent sees and acts on the node.
	Host host.Host
	// Prober measures the node (memory, load, PIDs, disks, kernel log); nil
	// reports unit states only.
	Prober Prober
	// ClockOffset, if set, measures the node clock's offset from the
	// apiserver's (its Wrap must wrap the manager's rest.Config); the
	// reporter puts it in the probes' Clock. It needs a Prober.
	ClockOffset *ClockOffset
	// Config edits the node's config files for EditConfig tasks; nil fails
	// every EditConfig task ("this agent has no config access").
	Config host.ConfigEditor
	// ProbeInterval is how often the agent probes the node locally (no API
	// traffic unless something changed).
	ProbeInterval time.Duration
	// ReportInterval is the longest the agent goes without writing its report.
	ReportInterval time.Duration
	// ActionTimeout bounds one node-local action.
	ActionTimeout time.Duration
	// Version is reported in NodeReport.status.agentVersion.
	Version string
	// Clock is injected for tests.
	Clock clock.WithTicker
}

func (o *Options) defaults() error {
	if o.NodeName == "" {
		return fmt.Errorf("agent: NodeName is required")
	}
	if o.Host == nil {
		return fmt.Errorf("agent: Host is required")
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.ReportInterval <= 0 {
		o.ReportInterval = DefaultReportInterval
	}
	if o.ActionTimeout <= 0 {
		o.ActionTimeout = DefaultActionTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return nil
}

// Prober measures the node.
type Prober = host.Prober

// CacheOptions restricts the agent's cache to its own node's tasks, so an
// agent never lists or watches another node's work (by the node label, whose
// value may be shared with another node's: the task runner acts only on tasks
// whose spec.nodeName is its node). The agent's NodeReport is not cached: the
// agent is its only writer.
func CacheOptions(nodeName string) cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.NodeTask{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelNode: v1alpha1.LabelValue(nodeName)})},
		},
	}
}

// Setup adds the reporter and the task runner to mgr, whose cache must have
// been built with CacheOptions(opts.NodeName).
func Setup(mgr manager.Manager, opts Options) error {
	if err := opts.defaults(); err != nil {
		return err
	}
	rep := newReporter(mgr.GetClient(), mgr.GetAPIReader(), opts)
	if err := mgr.Add(rep); err != nil {
		return err
	}
	return setupTaskRunner(mgr, opts, rep.Poke)
}

// UnitsToWatch are the units the agent reports on.
var UnitsToWatch = []v1alpha1.Unit{v1alpha1.UnitKubelet, v1alpha1.UnitContainerRuntime}
