package scenarios

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/cmd/kubectl-nodeward/cli"
	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// TestRealIncidents runs the patterns real NotReady incidents show (issue
// 12) on one cluster of nine nodes under the most permissive policies admission
// accepts, all Automatic: every cause that may be drained or restarted is
// bound to the most disruptive of those it allows.
//
//   - worker-swap's kubelet exits at every start because swap is on: it is
//     diagnosed KubeletCrashLoop/Swap, naming the error, and never restarted.
//   - worker-skew's clock runs 5 minutes behind: it is not called dead or
//     silent, nothing drains it, and the diagnosis says ClockSkew.
//   - worker-hung's containerd runs but its CRI socket does not answer: it
//     is diagnosed ContainerRuntimeHung and restarted exactly once.
//   - worker-ro stays Ready with a read-only root filesystem: it is
//     diagnosed ReadonlyFilesystem.
//   - fleet-1..3 (a third of the nodes) get the same bad kubelet config: a
//     FleetNodeFault, not ControlPlaneDegraded, and nothing is touched.
func TestRealIncidents(t *testing.T) {
	nodes := []harness.NodeSpec{
		{Name: "worker-swap"}, {Name: "worker-skew"}, {Name: "worker-hung", Labels: map[string]string{"pool": "runtime"}}, {Name: "worker-ro"},
		{Name: "fleet-1"}, {Name: "fleet-2"}, {Name: "fleet-3"}, {Name: "worker-ok-1"}, {Name: "worker-ok-2"},
	}
	c := startCluster(t, nodes...)
	ctx := context.Background()

	// The most permissive policy set: each cause bound to the most
	// disruptive action admission accepts for it (a drain where allowed,
	// else a restart), Automatic, at once.
	permissive := map[v1alpha1.ActionType][]v1alpha1.Cause{}
	for _, ci := range v1alpha1.CauseTable {
		best := v1alpha1.ActionNotify
		for _, a := range ci.Actions {
			if rank(a) > rank(best) {
				best = a
			}
		}
		if rank(best) < rank(v1alpha1.ActionRestartKubelet) {
			continue // Cordon, Notify, TuneGracePeriods: no restart or drain to watch for
		}
		permissive[best] = append(permissive[best], ci.Cause)
	}
	// The runtime restart is the one this test wants to see for a hung
	// runtime: ContainerRuntimeHung gets a policy of its own (below).
	for a, causes := range permissive {
		p := &v1alpha1.RemediationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "permissive-" + strings.ToLower(string(a))},
			Spec: v1alpha1.RemediationPolicySpec{Action: v1alpha1.Action{Type: a}, Mode: v1alpha1.ModeAutomatic}}
		for _, cause := range causes {
			if cause == v1alpha1.CauseContainerRuntimeHung {
				continue
			}
			p.Spec.Causes = append(p.Spec.Causes, v1alpha1.CauseMatch{Cause: cause})
		}
		if err := c.Client.Create(ctx, p); err != nil {
			t.Fatalf("creating policy %s: %v", p.Name, err)
		}
	}
	// Its own pool, so that its storm breaker counts its own nodes, not the
	// six other broken ones.
	hungPolicy := policy("runtime-hung-restart", map[string]string{"pool": "runtime"}, v1alpha1.ModeAutomatic, v1alpha1.CauseContainerRuntimeHung, v1alpha1.ActionRestartContainerRuntime, 0)
	hungPolicy.Spec.Priority = 100
	if err := c.Client.Create(ctx, hungPolicy); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		eventually(t, time.Minute, "NodeReport of "+n.Name, func(ctx context.Context) (bool, error) {
			rep := &v1alpha1.NodeReport{}
			err := c.Client.Get(ctx, client.ObjectKey{Name: n.Name}, rep)
			return err == nil && len(rep.Status.Units) > 0, nil
		})
	}

	inject := func(node, fault string) {
		t.Helper()
		if _, err := sim.Inject(ctx, c.Node(node), fault); err != nil {
			t.Fatalf("inject %s on %s: %v", fault, node, err)
		}
	}
	inject("worker-swap", "kubelet-crashloop-swap")
	inject("worker-skew", "clock-behind")
	inject("worker-hung", "runtime-hung")
	inject("worker-ro", "readonly-fs")
	for _, n := range []string{"fleet-1", "fleet-2", "fleet-3"} {
		inject(n, "kubelet-crashloop-config")
	}
	start := time.Now()

	diag := func(node string) func(ctx context.Context) (*v1alpha1.NodeDiagnosis, error) {
		return func(ctx context.Context) (*v1alpha1.NodeDiagnosis, error) {
			d := &v1alpha1.NodeDiagnosis{}
			return d, c.Client.Get(ctx, client.ObjectKey{Name: node}, d)
		}
	}
	topIs := func(node string, cause v1alpha1.Cause, detail string) {
		t.Helper()
		eventually(t, 2*time.Minute, fmt.Sprintf("%s diagnosed %s", node, cause), func(ctx context.Context) (bool, error) {
			d, err := diag(node)(ctx)
			if err != nil || len(d.Status.Causes) == 0 {
				return false, nil
			}
			top := d.Status.Causes[0]
			return top.Cause == cause && (detail == "" || top.Detail == detail), nil
		})
	}

	// A kubelet that crash-loops with a named error: diagnosed with it, never restarted.
	topIs("worker-swap", v1alpha1.CauseKubeletCrashLoop, "Swap")
	d, _ := diag("worker-swap")(ctx)
	if ev := d.Status.Causes[0].Evidence; len(ev) == 0 || !strings.Contains(ev[0].Message, "swap on is not supported") {
		t.Errorf("worker-swap's diagnosis does not quote the kubelet's error: %+v", ev)
	}
	// Fleet: the same bad config on a third of the nodes.
	for _, n := range []string{"fleet-1", "fleet-2", "fleet-3"} {
		topIs(n, v1alpha1.CauseFleetNodeFault, "")
	}
	topIs("worker-ro", v1alpha1.CauseReadonlyFilesystem, "")
	topIs("worker-skew", v1alpha1.CauseClockSkew, "")
	t.Logf("every node diagnosed %s after the faults", time.Since(start).Round(time.Second))

	// A snapshot taken from the running cluster and diagnosed offline gives
	// the same top cause (kubectl nodeward snapshot, diagnose --snapshot).
	for _, n := range []string{"worker-swap", "worker-ro", "worker-skew", "fleet-1"} {
		live, err := diag(n)(ctx)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), n+".yaml")
		var out strings.Builder
		env := &cli.Env{Client: c.Client, Out: &out, Clock: clock.RealClock{}}
		snap := &cli.SnapshotOptions{Env: env, Output: file}
		if err := snap.Validate([]string{n}); err != nil {
			t.Fatal(err)
		}
		if err := snap.Run(ctx); err != nil {
			t.Fatalf("kubectl nodeward snapshot %s: %v", n, err)
		}
		offline := &cli.DiagnoseOptions{Env: &cli.Env{Out: &out, Clock: clock.RealClock{}}, Snapshot: file}
		if err := offline.Validate(nil); err != nil {
			t.Fatal(err)
		}
		if err := offline.Run(ctx); err != nil {
			t.Fatalf("kubectl nodeward diagnose --snapshot %s: %v", file, err)
		}
		want := string(live.Status.Causes[0].Cause)
		if !strings.Contains(out.String(), "Diagnosis:   "+want) {
			t.Errorf("%s: live top cause %s, offline diagnosis of its snapshot says:\n%s", n, want, out.String())
		}
	}

	// The hung runtime (its node still Ready) is diagnosed hung and
	// restarted, once; the record, which keeps the diagnosis' evidence,
	// succeeds. (The diagnosis itself is gone once the runtime answers.)
	var hungRec v1alpha1.Remediation
	eventually(t, 2*time.Minute, "worker-hung's runtime restart to succeed", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, "worker-hung")
		for _, r := range recs {
			if r.Status.Phase == v1alpha1.PhaseFailed {
				t.Fatalf("worker-hung's record failed: %s: %s", r.Status.Reason, r.Status.Message)
			}
			if r.Status.Phase == v1alpha1.PhaseSucceeded {
				hungRec = r
				return true, nil
			}
		}
		return false, err
	})
	if hungRec.Spec.Cause != v1alpha1.CauseContainerRuntimeHung || hungRec.Spec.Action.Type != v1alpha1.ActionRestartContainerRuntime {
		t.Errorf("worker-hung's record: %s / %s, want ContainerRuntimeHung / RestartContainerRuntime", hungRec.Spec.Cause, hungRec.Spec.Action.Type)
	}

	// Give the policies time to act wrongly: 30s more.
	time.Sleep(30 * time.Second)
	if got := c.Node("worker-hung").Host.Restarts(v1alpha1.UnitContainerRuntime); got != 1 {
		t.Errorf("worker-hung's runtime restarted %d times, want exactly 1", got)
	}
	for _, n := range []string{"worker-swap", "fleet-1", "fleet-2", "fleet-3", "worker-skew", "worker-ro", "worker-ok-1", "worker-ok-2"} {
		node := c.Node(n)
		for _, u := range []v1alpha1.Unit{v1alpha1.UnitKubelet, v1alpha1.UnitContainerRuntime} {
			if got := node.Host.Restarts(u); got != 0 {
				t.Errorf("%s: %s restarted %d times, want 0", n, u, got)
			}
		}
		k := &corev1.Node{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: n}, k); err != nil {
			t.Fatal(err)
		}
		if k.Spec.Unschedulable {
			t.Errorf("%s was cordoned", n)
		}
		recs, err := remediationsFor(ctx, c.Client, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			t.Errorf("%s: unexpected record %s (%s, %s): %s", n, r.Name, r.Spec.Cause, r.Spec.Action.Type, r.Status.Message)
		}
	}
	// The skewed node is neither dead nor silent.
	d, _ = diag("worker-skew")(ctx)
	for _, c := range d.Status.Causes {
		if c.Cause == v1alpha1.CauseNodeUnreachable || c.Cause == v1alpha1.CauseKubeletHung || c.Cause == v1alpha1.CauseKubeletDown {
			t.Errorf("worker-skew diagnosed %s: a skewed clock made it look dead", c.Cause)
		}
	}
	for _, ch := range d.Status.Checks {
		if strings.HasPrefix(ch.Message, "node agent silent") || strings.Contains(ch.Message, "Lease not renewed") {
			t.Errorf("worker-skew: %q", ch.Message)
		}
	}
	// Not a control-plane fault: the agents of the crash-looping nodes
	// report on time through the same apiserver.
	cd := &v1alpha1.ClusterDiagnosis{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.ClusterDiagnosisName}, cd); err == nil {
		for _, cc := range cd.Status.Causes {
			if cc.Cause == v1alpha1.CauseControlPlaneDegraded {
				t.Errorf("ClusterDiagnosis says ControlPlaneDegraded: %s", cd.Status.Summary)
			}
		}
	}
	for _, n := range []string{"worker-swap", "fleet-1"} {
		if k := c.Node(n).Kubelet; k.Running() {
			t.Errorf("%s's kubelet runs: nothing should have started it", n)
		}
	}
}

// rank orders actions by how much they disrupt a node.
func rank(a v1alpha1.ActionType) int {
	return map[v1alpha1.ActionType]int{v1alpha1.ActionCordonDrain: 5, v1alpha1.ActionRestartContainerRuntime: 4,
		v1alpha1.ActionRestartKubelet: 3, v1alpha1.ActionCordon: 2, v1alpha1.ActionTuneGracePeriods: 1}[a]
}
