package policies

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Heartbeats tells which nodes' Leases have gone stale (the diagnosis
// package's ClusterDetector keeps the set, rescanned twice a second), so the
// storm breaker counts nodes whose heartbeats stopped before the
// controller-manager marks them and before they are diagnosed.
type Heartbeats interface {
	Late(node string) bool
}

// StormCounts counts the policy's nodes, those unhealthy (with a
// NodeDiagnosis, whatever its cause, or a stale Lease by hb if not nil) or
// being remediated among them, and the Ready control-plane nodes other than
// except.
func StormCounts(ctx context.Context, c client.Client, p *v1alpha1.RemediationPolicy, except string, hb Heartbeats) (unhealthy, covered, readyCP int, err error) {
	nodes := &corev1.NodeList{}
	if err := c.List(ctx, nodes, client.UnsafeDisableDeepCopy); err != nil {
		return 0, 0, 0, err
	}
	coveredSet := make(map[string]bool)
	bad := map[string]bool{}
	coverage := NewCoverage(p)
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if _, cp := n.Labels[LabelControlPlane]; cp && n.Name != except && isReady(n) {
			readyCP++
		}
		if ok, _ := coverage.Covers(n); ok {
			coveredSet[n.Name] = true
			if hb != nil && hb.Late(n.Name) {
				bad[n.Name] = true
			}
		}
	}
	// Read-only lists straight from the cache: no deep copies.
	diags := &v1alpha1.NodeDiagnosisList{}
	if err := c.List(ctx, diags, client.UnsafeDisableDeepCopy); err != nil {
		return 0, 0, 0, err
	}
	for _, d := range diags.Items {
		// A NodeDiagnosis exists only while its node is unhealthy, whatever
		// the cause, known or not: a node NotReady for an unknown reason, or
		// in a control-plane storm, counts too.
		if coveredSet[d.Name] {
			bad[d.Name] = true
		}
	}
	recs := &v1alpha1.RemediationList{}
	if err := c.List(ctx, recs, client.UnsafeDisableDeepCopy); err != nil {
		return 0, 0, 0, err
	}
	for _, r := range recs.Items {
		// A running Notify touches nothing: its node is not being remediated.
		if r.Status.Phase == v1alpha1.PhaseRunning && coveredSet[r.Spec.NodeName] && !TouchesNothing(r.Spec.Action.Type) {
			bad[r.Spec.NodeName] = true
		}
	}
	return len(bad), len(coveredSet), readyCP, nil
}

// ReadyCondition returns the node's Ready condition, or nil.
func ReadyCondition(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

func isReady(n *corev1.Node) bool {
	c := ReadyCondition(n)
	return c != nil && c.Status == corev1.ConditionTrue
}
