package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// ScenarioApproval is the approval flow: a RequireApproval CordonDrain
// policy, a node out of memory, a record that waits showing its drain plan,
// a decision — a person's, or after --approve-after the demo approver's —,
// the drain, and the history.
const ScenarioApproval = "approval"

// approverUser is the demo's static-token user bound to the ClusterRole
// nodeward-approver: the identity a person approves with.
const approverUser = "demo-approver"

// approvalPolicy is the example policy the approval scenario applies.
const approvalPolicy = "config/samples/memory-exhausted-approval.yaml"

// workload is what the approval scenario's drain moves: 6 web replicas
// under a PodDisruptionBudget allowing one down, and a DaemonSet.
//
//go:embed workload.yaml
var workload []byte

// setupApprover binds approverUser to nodeward-approver and writes its
// kubeconfig to path.
func setupApprover(ctx context.Context, c *harness.Cluster, path string) error {
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: approverUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "nodeward-approver"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: approverUser}},
	}
	if err := c.Client.Create(ctx, b); err != nil {
		return fmt.Errorf("binding %s to nodeward-approver: %w", approverUser, err)
	}
	return c.CP.WriteKubeconfig(approverUser, path)
}

// prepareApproval applies the RequireApproval policy and the workload, and
// waits until web's 6 pods and the DaemonSet's run and the budget is up to
// date.
func (n *narrator) prepareApproval(ctx context.Context, c *harness.Cluster) error {
	if err := harness.ApplyFile(ctx, c.Client, filepath.Join(mustRepo(), approvalPolicy)); err != nil {
		return fmt.Errorf("applying %s: %w", approvalPolicy, err)
	}
	n.say("Applied %s: policy drain-memory-exhausted-approval (MemoryExhausted for 10s → CordonDrain, RequireApproval)", approvalPolicy)
	if err := harness.Apply(ctx, c.Client, workload); err != nil {
		return fmt.Errorf("creating the workload: %w", err)
	}
	ok := n.waitFor(ctx, 2*time.Minute, func() bool {
		dep, ds, pdb := &appsv1.Deployment{}, &appsv1.DaemonSet{}, &policyv1.PodDisruptionBudget{}
		return c.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, dep) == nil && dep.Status.AvailableReplicas == 6 &&
			c.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "node-logs"}, ds) == nil && ds.Status.NumberAvailable == int32(len(c.Nodes())) &&
			c.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, pdb) == nil && pdb.Status.ObservedGeneration == pdb.Generation && pdb.Status.DisruptionsAllowed == 1
	})
	if !ok {
		return fmt.Errorf("the workload in namespace shop did not come up within 2m")
	}
	pods := &corev1.PodList{}
	if err := c.Client.List(ctx, pods, client.InNamespace("shop"), client.MatchingLabels{"app": "web"}); err != nil {
		return err
	}
	on := map[string]int{}
	for _, p := range pods.Items {
		on[p.Spec.NodeName]++
	}
	var spread []string
	for node, count := range on {
		spread = append(spread, fmt.Sprintf("%s %d", node, count))
	}
	sort.Strings(spread)
	n.say("Workload up in namespace shop: Deployment web (6 replicas, PodDisruptionBudget minAvailable 5: 1 disruption allowed) and DaemonSet node-logs; web's pods per node: %s", strings.Join(spread, ", "))
	return nil
}

// approvalFlow follows the approval scenario once the fault is in: it
// waits for node's record to wait for approval, narrates its drain plan
// and the command to approve it, waits up to approveAfter for a person's
// decision, else approves as approverUser with plugin (kubectl-nodeward),
// waits for the
// record to end and prints the history. It reports whether the record
// ended as decided: Succeeded when approved, Skipped when a person
// rejected it.
func (n *narrator) approvalFlow(ctx context.Context, c *harness.Cluster, node, plugin, adminKubeconfig, approverKubeconfig string, approveAfter, timeout time.Duration) bool {
	var rem v1alpha1.Remediation
	if !n.waitFor(ctx, timeout, func() bool {
		recs := &v1alpha1.RemediationList{}
		if err := c.Client.List(ctx, recs, client.MatchingLabels{v1alpha1.LabelNode: v1alpha1.LabelValue(node)}); err != nil {
			return false
		}
		for _, r := range recs.Items {
			if r.Spec.NodeName == node && r.Status.Reason == v1alpha1.ReasonWaitingForApproval {
				rem = r
				return true
			}
		}
		return false
	}) {
		n.say("TIMEOUT: no remediation of %s waited for approval within %s", node, timeout)
		return false
	}
	n.say("remediation %s waits for approval (expires after the policy's approvalTimeout, 30m)", rem.Name)
	n.sayPlan(&rem)
	approve := []string{"--kubeconfig", approverKubeconfig, "approve", rem.Name, "--reason", "memory exhausted on " + node + ": move the workloads off"}
	n.say("Approve it as %s (bound to ClusterRole nodeward-approver), from another terminal:", approverUser)
	n.say("  %s %s", relPath(plugin), shellJoin(approve))
	n.say("  (or reject it: ... reject %s --reason \"...\"; with bin/ on PATH: kubectl nodeward ...)", rem.Name)
	n.say("Waiting %s for a person to decide; then the demo approves it itself as %s", approveAfter, approverUser)

	// No pause after a decision: say it before the narrator's next look
	// shows the steps it started.
	decided := pollUntil(ctx, approveAfter, func() bool {
		err := c.Client.Get(ctx, client.ObjectKeyFromObject(&rem), &rem)
		return err == nil && (rem.Approval != nil || rem.Status.Phase.IsTerminal())
	})
	if decided && rem.Approval != nil {
		a := rem.Approval
		n.say("%s by %s: %s", a.Decision, a.DecidedBy, a.Reason)
	} else if !rem.Status.Phase.IsTerminal() {
		n.say("Nobody decided within %s: the demo approves it as %s", approveAfter, approverUser)
		if !n.kubectlNodeward(ctx, plugin, approve) {
			return false
		}
	}

	if !n.waitFor(ctx, timeout, func() bool {
		err := c.Client.Get(ctx, client.ObjectKeyFromObject(&rem), &rem)
		return err == nil && rem.Status.Phase.IsTerminal()
	}) {
		n.say("TIMEOUT: remediation %s did not end within %s", rem.Name, timeout)
		return false
	}
	if !n.kubectlNodeward(ctx, plugin, []string{"--kubeconfig", adminKubeconfig, "history"}) {
		return false
	}
	a := rem.Approval
	switch {
	case a != nil && a.Decision == v1alpha1.DecisionApproved:
		return rem.Status.Phase == v1alpha1.PhaseSucceeded
	case a != nil:
		return rem.Status.Reason == v1alpha1.ReasonRejected
	}
	return false
}

// sayPlan narrates a waiting drain record's plan, one pod or budget a line.
func (n *narrator) sayPlan(rem *v1alpha1.Remediation) {
	if rem.Status.Drain == nil || rem.Status.Drain.Plan == nil {
		n.say("  (no drain plan recorded)")
		return
	}
	p := rem.Status.Drain.Plan
	n.say("Its drain plan, as of %s (the drain lists the pods again when it starts):", p.ObservedAt.UTC().Format(time.RFC3339))
	if p.Error != "" {
		n.say("  could not be worked out fully: %s", p.Error)
	}
	for _, name := range p.Evict {
		n.say("  evict %s", name)
	}
	if more := int(p.EvictCount) - len(p.Evict); more > 0 {
		n.say("  evict %d more", more)
	}
	for _, k := range p.Keep {
		n.say("  leave %s: %s", k.Name, k.Reason)
	}
	for _, b := range p.PDBs {
		n.say("  PodDisruptionBudget %s: %s, disruptions allowed now: %d; selects %d of the pods to evict", b.Name, b.Budget, b.DisruptionsAllowed, b.Pods)
	}
	if p.Blocked != "" {
		n.say("  %s", p.Blocked)
	}
	n.say("  (the whole record: kubectl nodeward explain %s)", rem.Name)
}

// kubectlNodeward runs bin/kubectl-nodeward with args, as a person would,
// and prints its output; it reports whether the command succeeded.
func (n *narrator) kubectlNodeward(ctx context.Context, plugin string, args []string) bool {
	n.say("$ %s %s", relPath(plugin), shellJoin(args))
	out, err := exec.CommandContext(ctx, plugin, args...).CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		n.say("  %s", line)
	}
	if err != nil {
		n.say("FAIL: %v", err)
		return false
	}
	return true
}

// shellJoin quotes the arguments that need it for a POSIX shell: in double
// quotes when that is safe, else in single quotes.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case a != "" && !strings.ContainsAny(a, " \t\"'$`\\;&|<>()*?!#~{}[]"):
		case !strings.ContainsAny(a, "\"$`\\!"):
			a = `"` + a + `"`
		default:
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// relPath is path relative to the working directory when it is below it, as
// a person in the repository would type it.
func relPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}
