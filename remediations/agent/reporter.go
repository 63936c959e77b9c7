package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// reporter probes the node every ProbeInterval and writes the NodeReport only
// when what it reports changed or ReportInterval passed: at steady state one
// write per node per ReportInterval.
type reporter struct {
	c      client.Client
	reader client.Reader
	opts   Options
	poke   chan struct{}

	obj       *v1alpha1.NodeReport // as last written; nil after an error
	last      []v1alpha1.UnitState // as last written
	lastSig   string               // the probes' AlarmSignature as last written
	lastWrite time.Time
}

func newReporter(c client.Client, reader client.Reader, opts Options) *reporter {
	return &reporter{c: c, reader: reader, opts: opts, poke: make(chan struct{}, 1)}
}

// Poke asks for a probe now (after an action changed the node).
func (r *reporter) Poke() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// NeedLeaderElection: every agent reports, always.
func (r *reporter) NeedLeaderElection() bool { return false }

// Start runs until ctx ends.
func (r *reporter) Start(ctx context.Context) error {
	log := klog.FromContext(ctx).WithValues("node", r.opts.NodeName)
	ctx = klog.NewContext(ctx, log)
	ticker := r.opts.Clock.NewTicker(r.opts.ProbeInterval)
	defer ticker.Stop()
	for {
		if err := r.tick(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Reporting node state failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		case <-r.poke:
		}
	}
}

func (r *reporter) tick(ctx context.Context) error {
	units := r.probe(ctx)
	var probes *v1alpha1.NodeProbes
	sig := ""
	if r.opts.Prober != nil {
		p := r.opts.Prober.Probe(ctx)
		if r.opts.ClockOffset != nil {
			if off, ok := r.opts.ClockOffset.Offset(); ok {
				if p.Clock == nil {
					p.Clock = &v1alpha1.ClockProbe{}
				}
				ms := off.Milliseconds()
				p.Clock.OffsetMilli = &ms
			}
		}
		probes, sig = &p, p.AlarmSignature()
	}
	// Lines longer than the API takes are shortened here, before the
	// comparison with what was written last.
	fitted := v1alpha1.NodeReportStatus{Units: units, Probes: probes}
	fitted.FitLogs()
	now := r.opts.Clock.Now()
	if r.lastWrite.IsZero() || !v1alpha1.SameUnits(units, r.last) || sig != r.lastSig || now.Sub(r.lastWrite) >= r.opts.ReportInterval {
		if err := r.write(ctx, units, probes, now); err != nil {
			return err
		}
		r.last, r.lastSig, r.lastWrite = units, sig, now
	}
	return nil
}

// probe asks the host for every watched unit; a unit the host can't read is
// reported as "unknown" rather than left out, so the operator sees the gap.
func (r *reporter) probe(ctx context.Context) []v1alpha1.UnitState {
	units := make([]v1alpha1.UnitState, 0, len(UnitsToWatch))
	for _, name := range UnitsToWatch {
		st, err := r.opts.Host.UnitState(ctx, name)
		if err != nil {
			klog.FromContext(ctx).V(2).Info("Probing unit failed", "unit", name, "err", err)
			st = v1alpha1.UnitState{Name: name, ActiveState: "unknown", SubState: truncate(err.Error(), 200)}
		}
		units = append(units, st)
	}
	return units
}

func (r *reporter) write(ctx context.Context, units []v1alpha1.UnitState, probes *v1alpha1.NodeProbes, now time.Time) error {
	rep := r.obj
	if rep == nil {
		// The agent is the report's only writer, so it reads the report from
		// the API once (no informer) and then keeps what it wrote.
		rep = &v1alpha1.NodeReport{}
		err := r.reader.Get(ctx, client.ObjectKey{Name: r.opts.NodeName}, rep)
		if apierrors.IsNotFound(err) {
			rep, err = r.create(ctx)
		}
		if err != nil {
			return err
		}
	}
	rep.Status = v1alpha1.NodeReportStatus{
		HeartbeatTime:  metav1.NewTime(now),
		ReportInterval: metav1.Duration{Duration: r.opts.ReportInterval},
		AgentVersion:   r.opts.Version,
		Units:          units,
		Probes:         probes,
	}
	r.obj = rep
	if err := r.c.Status().Update(ctx, rep); err != nil {
		r.obj = nil
		return fmt.Errorf("writing NodeReport %s: %w", r.opts.NodeName, err)
	}
	return nil
}

// create makes the report, owned by the Node so that it goes when the node goes.
func (r *reporter) create(ctx context.Context) (*v1alpha1.NodeReport, error) {
	node := &corev1.Node{}
	if err := r.reader.Get(ctx, client.ObjectKey{Name: r.opts.NodeName}, node); err != nil {
		return nil, fmt.Errorf("reading own node %s: %w", r.opts.NodeName, err)
	}
	rep := &v1alpha1.NodeReport{ObjectMeta: metav1.ObjectMeta{
		Name:   r.opts.NodeName,
		Labels: map[string]string{v1alpha1.LabelNode: v1alpha1.LabelValue(r.opts.NodeName)},
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
		}},
	}}
	if err := r.c.Create(ctx, rep); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating NodeReport %s: %w", r.opts.NodeName, err)
		}
		if err := r.reader.Get(ctx, client.ObjectKey{Name: r.opts.NodeName}, rep); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
