package scenarios

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func workers(n int) []harness.NodeSpec {
	out := make([]harness.NodeSpec, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, harness.NodeSpec{Name: fmt.Sprintf("worker-%d", i)})
	}
	return out
}

func breakKubelets(t *testing.T, c *harness.Cluster, names ...string) {
	t.Helper()
	for _, n := range names {
		waitReport(t, c, n, func(r *v1alpha1.NodeReport) bool { return len(r.Status.Units) > 0 })
	}
	for _, n := range names {
		if _, err := sim.Inject(context.Background(), c.Node(n), "kubelet-crash"); err != nil {
			t.Fatal(err)
		}
	}
}

// Five nodes lose their kubelets at once under maxConcurrent: 1: they are
// remediated one at a time, and the waiting records say why.
func TestRateLimitOneAtATime(t *testing.T) {
	c := startCluster(t, workers(12)...)
	ctx := context.Background()
	p := policy("one-at-a-time", nil, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 0)
	p.Spec.Limits.MaxConcurrent = 1
	half := intstr.FromString("50%")
	p.Spec.StormBreaker.MaxUnhealthy = &half
	if err := c.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	failing := []string{"worker-1", "worker-2", "worker-3", "worker-4", "worker-5"}
	for _, n := range failing {
		// A restarted kubelet takes 8s to come back, so the five overlap.
		c.Node(n).Kubelet.SetStartupDelay(8 * time.Second)
	}
	breakKubelets(t, c, failing...)
	sawWaiting := false
	maxRunning := 0
	eventually(t, 4*time.Minute, "all five remediations to succeed", func(ctx context.Context) (bool, error) {
		recs := &v1alpha1.RemediationList{}
		if err := c.Client.List(ctx, recs); err != nil {
			return false, nil
		}
		running, done := 0, 0
		for _, r := range recs.Items {
			switch {
			case r.Status.Phase == v1alpha1.PhaseRunning:
				running++
			case r.Status.Phase == v1alpha1.PhasePending && r.Status.Reason == v1alpha1.ReasonRateLimited:
				if !sawWaiting {
					t.Logf("waiting record %s: %s", r.Name, r.Status.Message)
				}
				sawWaiting = true
			case r.Status.Phase == v1alpha1.PhaseSucceeded:
				done++
			case r.Status.Phase.IsTerminal():
				t.Fatalf("record %s ended %s/%s: %s", r.Name, r.Status.Phase, r.Status.Reason, r.Status.Message)
			}
		}
		maxRunning = max(maxRunning, running)
		return done == len(failing), nil
	})
	if maxRunning > 1 {
		t.Errorf("saw %d remediations running at once under maxConcurrent 1", maxRunning)
	}
	if !sawWaiting {
		t.Errorf("never saw a record waiting with reason RateLimited")
	}
	// The starts are strictly sequential: each starts after the previous ended.
	recs := &v1alpha1.RemediationList{}
	if err := c.Client.List(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for i, a := range recs.Items {
		for _, b := range recs.Items[i+1:] {
			if a.Status.StartedAt.Before(b.Status.CompletedAt) && b.Status.StartedAt.Before(a.Status.CompletedAt) {
				t.Errorf("%s and %s overlapped", a.Name, b.Name)
			}
		}
	}
}

// 40% of the nodes fail at once: the storm breaker trips (a policy
// condition, an Event), every record waits saying so, and nothing is done.
func TestStormBreaker(t *testing.T) {
	c := startCluster(t, workers(10)...)
	ctx := context.Background()
	// for: 30s gives the diagnosis time to see the whole storm before any
	// record may start, as a production policy would.
	p := policy("storm", nil, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 30*time.Second)
	p.Spec.Limits.MaxConcurrent = 5
	if err := c.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	failing := []string{"worker-1", "worker-2", "worker-3", "worker-4"}
	breakKubelets(t, c, failing...)
	start := time.Now()
	var tripped time.Time
	eventually(t, 2*time.Minute, "the storm breaker to trip", func(ctx context.Context) (bool, error) {
		got := &v1alpha1.RemediationPolicy{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: "storm"}, got); err != nil {
			return false, nil
		}
		cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.PolicyConditionRemediationAllowed)
		if cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == v1alpha1.PolicyReasonTooManyUnhealthy {
			tripped = time.Now()
			t.Logf("breaker: %s", cond.Message)
			return true, nil
		}
		return false, nil
	})
	t.Logf("storm breaker tripped %s after the kubelets died", tripped.Sub(start).Round(time.Second))
	eventually(t, 2*time.Minute, "four held records", func(ctx context.Context) (bool, error) {
		recs := &v1alpha1.RemediationList{}
		if err := c.Client.List(ctx, recs); err != nil {
			return false, nil
		}
		held := 0
		for _, r := range recs.Items {
			if r.Status.Phase == v1alpha1.PhasePending && r.Status.Reason == v1alpha1.ReasonStormBreakerOpen {
				held++
			}
			if r.Status.StartedAt != nil {
				t.Fatalf("record %s started during the storm", r.Name)
			}
		}
		return held == len(failing), nil
	})
	time.Sleep(10 * time.Second)
	for _, n := range failing {
		if got := c.Node(n).Host.Restarts(v1alpha1.UnitKubelet); got != 0 {
			t.Errorf("%s restarted %d times during the storm", n, got)
		}
	}
	tasks := &v1alpha1.NodeTaskList{}
	if err := c.Client.List(ctx, tasks); err != nil || len(tasks.Items) != 0 {
		t.Errorf("node tasks during the storm: %d (%v)", len(tasks.Items), err)
	}
	evs, err := c.Kube.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "reason=StormBreakerOpen"})
	if err != nil || len(evs.Items) == 0 {
		// The operator writes events.k8s.io/v1 Events; the core view shows them too.
		t.Errorf("no StormBreakerOpen event (%v)", err)
	}
}

// Outside the maintenance window nothing runs and the record says until
// when; once the window opens, it runs.
func TestMaintenanceWindow(t *testing.T) {
	c := startCluster(t, workers(3)...)
	ctx := context.Background()
	p := policy("windowed", nil, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 0)
	// A window that opened more than an hour ago and is closed now; the next
	// one is tomorrow.
	closed := time.Now().UTC().Add(-2 * time.Hour)
	p.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{
		Schedule: fmt.Sprintf("%d %d * * *", closed.Minute(), closed.Hour()), Duration: metav1.Duration{Duration: time.Hour},
	}}
	if err := c.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	breakKubelets(t, c, "worker-1")
	var rec v1alpha1.Remediation
	eventually(t, 2*time.Minute, "a record held outside the window", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, "worker-1")
		if err != nil || len(recs) == 0 {
			return false, nil
		}
		rec = recs[0]
		return rec.Status.Reason == v1alpha1.ReasonOutsideWindow && rec.Status.NotBefore != nil, nil
	})
	t.Logf("held: %s", rec.Status.Message)
	if until := rec.Status.NotBefore.Time; until.Sub(time.Now()) < 20*time.Hour {
		t.Errorf("notBefore %s, want the next opening about 22h from now", until)
	}
	time.Sleep(5 * time.Second)
	if got := c.Node("worker-1").Host.Restarts(v1alpha1.UnitKubelet); got != 0 {
		t.Fatalf("restarted outside the window")
	}
	// Open a window now.
	if err := c.Client.Get(ctx, client.ObjectKey{Name: "windowed"}, p); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	p.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{Schedule: fmt.Sprintf("%d %d * * *", now.Minute(), now.Hour()), Duration: metav1.Duration{Duration: time.Hour}}}
	if err := c.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the record to run inside the window", func(ctx context.Context) (bool, error) {
		got := &v1alpha1.Remediation{}
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(&rec), got); err != nil {
			return false, nil
		}
		return got.Status.Phase == v1alpha1.PhaseSucceeded, nil
	})
}
