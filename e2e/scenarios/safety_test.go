package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// An operator restart in the middle of a remediation neither repeats nor
// loses the action: the record's restart step is persisted and its NodeTask
// created while the node's agent is away; the operator is restarted; when
// the agent returns it runs the task once, and the record succeeds with
// exactly one restart and one task.
func TestOperatorRestartMidRemediation(t *testing.T) {
	c := startCluster(t, harness.NodeSpec{Name: "worker-1", Labels: map[string]string{"pool": "auto"}})
	ctx := context.Background()
	// for: 20s leaves the test time to see the dead unit and stop the agent
	// before the record exists (the diagnosis itself takes about a second).
	if err := c.Client.Create(ctx, policy("auto", map[string]string{"pool": "auto"}, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	node := c.Node("worker-1")
	waitReport(t, c, "worker-1", func(r *v1alpha1.NodeReport) bool { return len(r.Status.Units) > 0 })
	if err := node.Host.Kill(v1alpha1.UnitKubelet, true); err != nil {
		t.Fatal(err)
	}
	waitReport(t, c, "worker-1", func(r *v1alpha1.NodeReport) bool {
		u, ok := r.Status.Unit(v1alpha1.UnitKubelet)
		return ok && u.ActiveState == "failed"
	})
	// The agent goes away after it reported; its report stays fresh for
	// three report intervals, so the diagnosis still trusts it.
	if err := node.StopAgent(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the restart step to be persisted and its task created", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, "worker-1")
		if err != nil || len(recs) != 1 || len(recs[0].Status.Steps) == 0 || recs[0].Status.Steps[0].Phase != v1alpha1.StepRunning {
			return false, nil
		}
		task := &v1alpha1.NodeTask{}
		return c.Client.Get(ctx, client.ObjectKey{Name: recs[0].Name}, task) == nil, nil
	})
	c.StopOperator()
	t.Logf("operator stopped with the restart handed to the (absent) agent")
	if err := c.StartOperator(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // let the new operator reconcile before the agent returns
	if err := c.StartAgent(ctx, "worker-1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the record to succeed", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, "worker-1")
		return err == nil && len(recs) == 1 && recs[0].Status.Phase == v1alpha1.PhaseSucceeded, nil
	})
	if got := node.Host.Restarts(v1alpha1.UnitKubelet); got != 1 {
		t.Errorf("kubelet restarts = %d, want exactly 1", got)
	}
	tasks := &v1alpha1.NodeTaskList{}
	if err := c.Client.List(ctx, tasks); err != nil || len(tasks.Items) != 1 {
		t.Errorf("node tasks = %d (%v), want exactly 1", len(tasks.Items), err)
	}
	if n := len(mustRemediations(t, c, "worker-1")); n != 1 {
		t.Errorf("records = %d, want 1", n)
	}
}

// The agent acts only for its own node: with worker-1's identity (a token
// bound to its agent pod on worker-1) it can't write worker-2's report or
// task status; the ValidatingAdmissionPolicy refuses and says why.
func TestAgentWritesOnlyItsOwnNode(t *testing.T) {
	c := startCluster(t, harness.NodeSpec{Name: "worker-1"}, harness.NodeSpec{Name: "worker-2"})
	ctx := context.Background()
	for _, n := range []string{"worker-1", "worker-2"} {
		waitReport(t, c, n, func(r *v1alpha1.NodeReport) bool { return len(r.Status.Units) > 0 })
	}
	cfg, err := c.AgentConfig(ctx, "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	agent1, err := client.New(cfg, client.Options{Scheme: c.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	other := &v1alpha1.NodeReport{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: "worker-2"}, other); err != nil {
		t.Fatal(err)
	}
	other.Status.AgentVersion = "forged"
	err = agent1.Status().Update(ctx, other)
	if err == nil || !strings.Contains(err.Error(), "may write only its own node") {
		t.Fatalf("worker-1's agent updating worker-2's report: err = %v, want a refusal naming the rule", err)
	}
	// Its own report it may write.
	own := &v1alpha1.NodeReport{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: "worker-1"}, own); err != nil {
		t.Fatal(err)
	}
	own.Status.AgentVersion = "e2e-own"
	if err := agent1.Status().Update(ctx, own); err != nil && !apierrors.IsConflict(err) {
		t.Fatalf("worker-1's agent updating its own report: %v", err)
	}
	// The agent may not create tasks at all (RBAC), nor delete records.
	task := &v1alpha1.NodeTask{
		ObjectMeta: metav1.ObjectMeta{Name: "forged"},
		Spec:       v1alpha1.NodeTaskSpec{NodeName: "worker-1", Action: v1alpha1.NodeActionRestartUnit, Unit: v1alpha1.UnitKubelet, Remediation: "none"},
	}
	if err := agent1.Create(ctx, task); !apierrors.IsForbidden(err) {
		t.Errorf("agent creating a NodeTask: err = %v, want Forbidden", err)
	}
}

func waitReport(t *testing.T, c *harness.Cluster, node string, ok func(*v1alpha1.NodeReport) bool) {
	t.Helper()
	eventually(t, time.Minute, "NodeReport of "+node, func(ctx context.Context) (bool, error) {
		rep := &v1alpha1.NodeReport{}
		err := c.Client.Get(ctx, client.ObjectKey{Name: node}, rep)
		return err == nil && ok(rep), nil
	})
}
