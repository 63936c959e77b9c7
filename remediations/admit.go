package remediations

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

// startLedger remembers the records this executor started in the last
// minute: the cache may not show them as started yet, and a second record
// must not slip past maxConcurrent through that gap.
type startLedger struct {
	mu      sync.Mutex
	started map[string]time.Time
}

func (l *startLedger) add(name string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started == nil {
		l.started = map[string]time.Time{}
	}
	l.started[name] = at
}

func (l *startLedger) snapshot(now time.Time) map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]time.Time, len(l.started))
	for n, at := range l.started {
		if now.Sub(at) > time.Minute {
			delete(l.started, n)
			continue
		}
		out[n] = at
	}
	return out
}

// admit gathers what policies.Admit needs from the cache. The node list is
// read without copies; this runs once per pending record, not per node event.
func (e *Executor) admit(ctx context.Context, p *v1alpha1.RemediationPolicy, rem *v1alpha1.Remediation, node *corev1.Node, now time.Time) (policies.Verdict, error) {
	in := policies.GateInput{Policy: p, Record: rem, Node: node, Now: now, StartedRecently: e.ledger.snapshot(now)}
	byNode := &v1alpha1.RemediationList{}
	if err := e.Client.List(ctx, byNode, client.MatchingFields{policies.IndexRemediationNode: node.Name}); err != nil {
		return policies.Verdict{}, err
	}
	in.NodeRecords = byNode.Items
	byPolicy := &v1alpha1.RemediationList{}
	if err := e.Client.List(ctx, byPolicy, client.MatchingFields{policies.IndexRemediationPolicy: p.Name}); err != nil {
		return policies.Verdict{}, err
	}
	in.PolicyRecords = byPolicy.Items
	unhealthy, covered, readyCP, err := policies.StormCounts(ctx, e.Client, p, node.Name, e.Heartbeats)
	if err != nil {
		return policies.Verdict{}, err
	}
	in.Unhealthy, in.Covered, in.ReadyControlPlane = unhealthy, covered, readyCP
	return policies.Admit(in), nil
}
