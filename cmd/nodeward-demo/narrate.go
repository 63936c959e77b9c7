package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// narrator polls the cluster (as a person with kubectl would) and prints
// what changed, with the seconds since the fault was injected.
type narrator struct {
	out   io.Writer
	mu    sync.Mutex
	start time.Time
	// what was last said about each thing, so each change is said once
	seen map[string]string
	// first time each milestone was seen, per node
	milestones map[string]map[string]time.Duration
}

func newNarrator(out io.Writer) *narrator {
	return &narrator{out: out, start: time.Now(), seen: map[string]string{}, milestones: map[string]map[string]time.Duration{}}
}

func (n *narrator) say(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.out, "[%6.1fs] %s\n", time.Since(n.start).Seconds(), fmt.Sprintf(format, args...))
}

// mark restarts the clock at a fault.
func (n *narrator) mark(node, fault, desc string) {
	n.mu.Lock()
	n.start = time.Now()
	n.milestones[node] = map[string]time.Duration{}
	n.mu.Unlock()
	n.say("FAULT %s on %s: %s", fault, node, desc)
}

func (n *narrator) milestone(node, what string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.milestones[node]
	if m == nil {
		return
	}
	if _, ok := m[what]; !ok {
		m[what] = time.Since(n.start)
	}
}

// changed reports whether key's description differs from what was said,
// and whether anything was said about key before.
func (n *narrator) changed(key, desc string) (changed, before bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old, before := n.seen[key]
	if before && old == desc {
		return false, true
	}
	n.seen[key] = desc
	return true, before
}

// prime records the cluster's current state without saying it, so that only
// changes are narrated.
func (n *narrator) prime(ctx context.Context, c client.Client) {
	out := n.out
	n.out = io.Discard
	n.poll(ctx, c)
	n.out = out
}

func (n *narrator) watch(ctx context.Context, c client.Client) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		n.poll(ctx, c)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *narrator) poll(ctx context.Context, c client.Client) {
	nodes := &corev1.NodeList{}
	if err := c.List(ctx, nodes); err == nil {
		for _, node := range nodes.Items {
			for _, cond := range node.Status.Conditions {
				if cond.Type != corev1.NodeReady {
					continue
				}
				desc := fmt.Sprintf("Ready=%s (%s: %s)", cond.Status, cond.Reason, cond.Message)
				if changed, before := n.changed("node/"+node.Name, desc); changed && before {
					n.say("node %s %s", node.Name, desc)
					if cond.Status != corev1.ConditionTrue {
						n.milestone(node.Name, "NotReady")
					} else {
						n.milestone(node.Name, "Ready again")
					}
				}
			}
		}
	}
	reports := &v1alpha1.NodeReportList{}
	if err := c.List(ctx, reports); err == nil {
		for _, r := range reports.Items {
			var parts []string
			for _, u := range r.Status.Units {
				parts = append(parts, fmt.Sprintf("%s %s/%s %s", u.UnitName, u.ActiveState, u.SubState, u.UnitFileState))
			}
			desc := strings.Join(parts, ", ")
			if changed, _ := n.changed("report/"+r.Name, desc); changed {
				n.say("agent on %s reports: %s", r.Name, desc)
				for _, u := range r.Status.Units {
					if u.Name == v1alpha1.UnitKubelet && !u.Active() {
						n.milestone(r.Name, "agent saw kubelet down")
					}
				}
			}
		}
	}
	diags := &v1alpha1.NodeDiagnosisList{}
	if err := c.List(ctx, diags); err == nil {
		for _, d := range diags.Items {
			if d.Status.Summary == "" {
				continue // created, its status not yet written
			}
			if changed, _ := n.changed("diag/"+d.Name, d.Status.Summary); changed {
				n.say("diagnosis of %s: %s", d.Name, d.Status.Summary)
				if len(d.Status.Causes) > 0 {
					n.milestone(d.Name, "diagnosed "+string(d.Status.Causes[0].Cause))
				}
			}
		}
	}
	cds := &v1alpha1.ClusterDiagnosisList{}
	if err := c.List(ctx, cds); err == nil {
		summary := ""
		for _, cd := range cds.Items {
			summary = cd.Status.Summary
		}
		if changed, before := n.changed("cluster", summary); changed && (before || summary != "") {
			if summary == "" {
				summary = "cleared: heartbeats on time again"
			}
			n.say("cluster diagnosis: %s", summary)
		}
	}
	recs := &v1alpha1.RemediationList{}
	if err := c.List(ctx, recs); err == nil {
		sort.Slice(recs.Items, func(i, j int) bool { return recs.Items[i].CreationTimestamp.Before(&recs.Items[j].CreationTimestamp) })
		for _, r := range recs.Items {
			if changed, _ := n.changed("rem/"+r.Name, "created"); changed {
				n.say("remediation %s created: policy %s matched %s on %s → %s (%s)", r.Name, r.Spec.Policy, r.Spec.Cause, r.Spec.NodeName, r.Spec.Action.Type, r.Spec.Mode)
				n.milestone(r.Spec.NodeName, "record created")
			}
			for _, s := range r.Status.Steps {
				if s.Phase == v1alpha1.StepPending {
					continue
				}
				if changed, _ := n.changed("step/"+r.Name+"/"+s.Name, string(s.Phase)); changed {
					msg := s.Message
					if msg == "" {
						msg = s.Description
					}
					n.say("remediation %s step %s %s: %s", r.Name, s.Name, s.Phase, msg)
					n.milestone(r.Spec.NodeName, "step "+s.Name+" "+string(s.Phase))
				}
			}
			if changed, _ := n.changed("phase/"+r.Name, string(r.Status.Phase)); changed && r.Status.Phase.IsTerminal() {
				n.say("remediation %s %s (%s): %s", r.Name, r.Status.Phase, r.Status.Reason, r.Status.Message)
				n.milestone(r.Spec.NodeName, "record "+string(r.Status.Phase))
			}
		}
	}
}

// waitRemediated waits until the node's newest record is terminal and the
// node is Ready; it reports whether the record succeeded.
func (n *narrator) waitRemediated(ctx context.Context, c client.Client, node string, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		recs := &v1alpha1.RemediationList{}
		if err := c.List(ctx, recs, client.MatchingLabels{v1alpha1.LabelNode: v1alpha1.LabelValue(node)}); err == nil {
			for _, r := range recs.Items {
				if r.Spec.NodeName == node && r.Status.Phase.IsTerminal() && r.CreationTimestamp.Time.After(n.start.Add(-time.Second)) {
					// Let the narrator print the last lines.
					time.Sleep(500 * time.Millisecond)
					return r.Status.Phase == v1alpha1.PhaseSucceeded && nodeReady(ctx, c, node)
				}
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline:
			n.say("TIMEOUT: no remediation of %s ended within %s", node, timeout)
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func nodeReady(ctx context.Context, c client.Client, name string) bool {
	node := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		return false
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// summary prints where the time went.
func (n *narrator) summary(node string) {
	n.mu.Lock()
	m := n.milestones[node]
	type ms struct {
		what string
		at   time.Duration
	}
	var list []ms
	for w, at := range m {
		list = append(list, ms{w, at})
	}
	n.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].at < list[j].at })
	n.say("Timeline of %s (seconds after the fault):", node)
	prev := time.Duration(0)
	for _, e := range list {
		n.say("  %6.1fs  (+%5.1fs)  %s", e.at.Seconds(), (e.at - prev).Seconds(), e.what)
		prev = e.at
	}
	if _, ok := m["NotReady"]; !ok {
		n.say("  The node never turned NotReady: nodeward restarted the kubelet inside the controller-manager's 50s grace period.")
	}
}

// waitDiagnosed waits until the node's diagnosis names cause.
func (n *narrator) waitDiagnosed(ctx context.Context, c client.Client, node string, cause v1alpha1.Cause, timeout time.Duration) bool {
	ok := n.waitFor(ctx, timeout, func() bool {
		d := &v1alpha1.NodeDiagnosis{}
		if err := c.Get(ctx, client.ObjectKey{Name: node}, d); err != nil {
			return false
		}
		_, found := d.Status.Cause(cause)
		return found
	})
	if ok {
		n.say("%s diagnosed on %s; see: kubectl nodeward diagnose %s", cause, node, node)
	} else {
		n.say("TIMEOUT: %s was not diagnosed on %s within %s", cause, node, timeout)
	}
	return ok
}

// waitClusterDegraded waits for the ClusterDiagnosis, then checks that no
// node got a remediation.
func (n *narrator) waitClusterDegraded(ctx context.Context, c client.Client, timeout time.Duration) bool {
	ok := n.waitFor(ctx, timeout, func() bool {
		return c.Get(ctx, client.ObjectKey{Name: v1alpha1.ClusterDiagnosisName}, &v1alpha1.ClusterDiagnosis{}) == nil
	})
	if !ok {
		n.say("TIMEOUT: no ClusterDiagnosis within %s", timeout)
		return false
	}
	recs := &v1alpha1.RemediationList{}
	if err := c.List(ctx, recs); err != nil || len(recs.Items) > 0 {
		n.say("FAIL: %d remediations were created during a control-plane fault", len(recs.Items))
		return false
	}
	n.say("ControlPlaneDegraded diagnosed for the cluster; no node-level remediation was started (kubectl get clusterdiagnoses)")
	return true
}

func (n *narrator) waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	if !pollUntil(ctx, timeout, cond) {
		return false
	}
	time.Sleep(500 * time.Millisecond) // let the narrator print the last lines
	return true
}

// pollUntil looks at cond every 250ms until it holds (true) or timeout
// passes (false).
func pollUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-deadline:
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
	return true
}
