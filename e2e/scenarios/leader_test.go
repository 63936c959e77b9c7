package scenarios

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Test-only leader election, short so that 20 handovers fit in a few
// minutes: a killed leader is replaced about 5s after its last renewal. The
// bound a takeover must meet: the standby sees the last renewal within one
// jittered retry (up to 2.2 retry periods), acquires once the lease duration
// has passed since, and tries every jittered retry; a second for the
// requests on a loaded machine.
const (
	testLeaseDuration = 5 * time.Second
	testRenewDeadline = 4 * time.Second
	testRetryPeriod   = 500 * time.Millisecond
	takeoverBound     = testLeaseDuration + 2*22*testRetryPeriod/10 + time.Second
	// releaseBound: a leader stopped cleanly releases its Lease, and a
	// standby takes it at its next (jittered) retry.
	releaseBound = 22*testRetryPeriod/10 + time.Second
	leaderKills  = 20
)

// moment is where in a remediation the leader is killed.
type moment int

const (
	// momentPending: the record exists and waits (the node carries
	// nodeward.io/maintenance); the annotation goes as the leader dies.
	momentPending moment = iota
	// momentRunning: the restart step is persisted Running, the action not
	// taken (the node's agent is away until the new leader leads).
	momentRunning
	// momentTask: the NodeTask is handed out (the agent is away); the agent
	// returns and runs it while no replica leads.
	momentTask
	// momentRecovery: the kubelet was restarted and the record waits for
	// recovery (the kubelet's heartbeats are held until the new leader
	// leads).
	momentRecovery
	moments
)

func (m moment) String() string {
	return [...]string{"record Pending", "step Running before the action", "NodeTask handed out", "waiting for recovery"}[m]
}

// Two operator replicas with leader election; the leader is SIGKILLed in
// the middle of a remediation 20 times, at four moments in turn, on two
// nodes at once. After each kill the other replica takes over within the
// lease (measured from the Lease's holderIdentity), a new replica is
// started so that two run again, and the record ends Succeeded with exactly
// one kubelet restart and one NodeTask. At the end a leader stopped cleanly
// (SIGTERM) hands over within a retry period.
//
// Two nodes, not more: while a node's kubelet is down its Lease may go
// stale, and three stale nodes would be a control-plane fault (no
// node-level cause), not what this test is about.
func TestLeaderHandoverUnderSIGKILL(t *testing.T) {
	began := time.Now()
	nodes := []string{"leader-a", "leader-b"}
	opts := harness.Options{
		Replicas: 2,
		OperatorArgs: []string{
			"--leader-elect-lease-duration=" + testLeaseDuration.String(),
			"--leader-elect-renew-deadline=" + testRenewDeadline.String(),
			"--leader-elect-retry-period=" + testRetryPeriod.String(),
		},
		AgentProbeInterval: 500 * time.Millisecond,
	}
	for _, n := range nodes {
		opts.Nodes = append(opts.Nodes, harness.NodeSpec{Name: n, Labels: map[string]string{"pool": "leader"}})
	}
	c := startClusterWith(t, opts)
	ctx := context.Background()
	p := policy("leader", map[string]string{"pool": "leader"}, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 2*time.Second)
	p.Spec.Action.Restart = &v1alpha1.RestartParams{RecoveryTimeout: metav1.Duration{Duration: 2 * time.Minute}}
	p.Spec.Limits = v1alpha1.Limits{
		MaxConcurrent: 2,
		NodeCooldown:  &metav1.Duration{},
		MaxAttempts:   20,
		AttemptWindow: &metav1.Duration{Duration: time.Hour},
	}
	p.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromString("100%"))
	if err := c.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitReport(t, c, n, func(r *v1alpha1.NodeReport) bool { return len(r.Status.Units) > 0 })
	}
	k := &leaderKiller{c: c}
	if _, err := k.waitLeader(ctx, "", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	renewals := k.watchRenewals(watchCtx)
	t.Logf("cluster up with 2 operator replicas in %s", time.Since(began).Round(time.Second))

	// Each node runs leaderKills/len(nodes) remediations; node i's round j
	// kills the leader at moment (i+j) % 4, so each moment gets 5 kills.
	soak := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			for j := range leaderKills / len(nodes) {
				m := moment((i + j) % int(moments))
				if err := k.round(ctx, t, n, m); err != nil {
					errs[i] = fmt.Errorf("node %s round %d (%s): %w", n, j, m, err)
					return
				}
			}
		})
	}
	wg.Wait()
	stopWatch()
	maxGap := <-renewals
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	// Every record: Succeeded, one NodeTask, and one restart each on its
	// node's host.
	tasks := &v1alpha1.NodeTaskList{}
	if err := c.Client.List(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range nodes {
		recs := mustRemediations(t, c, n)
		total += len(recs)
		for _, r := range recs {
			if r.Status.Phase != v1alpha1.PhaseSucceeded {
				t.Errorf("record %s: %s/%s (%s), want Succeeded", r.Name, r.Status.Phase, r.Status.Reason, r.Status.Message)
			}
			if got := tasksOf(tasks.Items, r.Name); got != 1 {
				t.Errorf("record %s: %d NodeTasks, want exactly 1", r.Name, got)
			}
		}
		if got := c.Node(n).Host.Restarts(v1alpha1.UnitKubelet); got != len(recs) {
			t.Errorf("node %s: %d kubelet restarts for %d records, want exactly one each", n, got, len(recs))
		}
	}
	if total != leaderKills {
		t.Errorf("%d records, want %d (one per kill)", total, leaderKills)
	}
	k.mu.Lock()
	took := slices.Clone(k.takeovers)
	lost := k.exited
	k.mu.Unlock()
	slices.Sort(took)
	if len(took) != leaderKills {
		t.Errorf("%d takeovers measured, want %d", len(took), leaderKills)
	}
	if len(took) > 0 {
		t.Logf("%d SIGKILLs of the leader in %s: takeover p50 %s, max %s (bound %s = lease %s + 2 jittered retries + 1s); longest gap between the leader's renewals %s (renew deadline %s); replicas that exited by themselves (lost leadership without a kill): %d",
			len(took), time.Since(soak).Round(time.Second), took[len(took)/2].Round(10*time.Millisecond), took[len(took)-1].Round(10*time.Millisecond),
			takeoverBound, testLeaseDuration, maxGap.Round(10*time.Millisecond), testRenewDeadline, lost)
	}

	// A clean shutdown releases the Lease: a standby takes over at its next
	// retry, not a lease duration later.
	for i := range 3 {
		lease, err := c.OperatorLease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		old := ptr.Deref(lease.Spec.HolderIdentity, "")
		start := time.Now()
		if err := c.StopReplica(old); err != nil {
			t.Fatal(err)
		}
		stopped := time.Since(start)
		holder, err := k.waitLeader(ctx, old, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		after := time.Since(start) - stopped
		t.Logf("SIGTERM %d: %s stopped in %s, %s leads %s later (bound %s)", i+1, old, stopped.Round(10*time.Millisecond), holder, after.Round(10*time.Millisecond), releaseBound)
		if after > releaseBound {
			t.Errorf("after %s stopped cleanly, %s took over %s later; want within %s (one jittered retry period): was the Lease released?", old, holder, after.Round(10*time.Millisecond), releaseBound)
		}
		if _, err := c.StartReplica(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wall time %s", time.Since(began).Round(time.Second))
}

// With the shipped values (15s/10s/2s, no flags): a leader stopped cleanly
// hands over within one jittered retry period (2s, up to 4.4s), and a
// SIGKILLed one is replaced within its lease plus two jittered retries.
func TestLeaderHandoverDefaultValues(t *testing.T) {
	const (
		lease, retry = 15 * time.Second, 2 * time.Second
		killBound    = lease + 2*22*retry/10 + time.Second
		termBound    = 22*retry/10 + time.Second
	)
	c := startClusterWith(t, harness.Options{Replicas: 2})
	ctx := context.Background()
	k := &leaderKiller{c: c}
	old, err := k.waitLeader(ctx, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.StopReplica(old); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(start)
	holder, err := k.waitLeader(ctx, old, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Since(start) - stopped
	t.Logf("SIGTERM: %s stopped in %s, %s leads %s later (bound %s)", old, stopped.Round(10*time.Millisecond), holder, after.Round(10*time.Millisecond), termBound)
	if after > termBound {
		t.Errorf("after %s stopped cleanly, %s took over %s later; want within %s", old, holder, after.Round(10*time.Millisecond), termBound)
	}
	if _, err := c.StartReplica(ctx); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := c.KillReplica(holder); err != nil {
		t.Fatal(err)
	}
	next, err := k.waitLeader(ctx, holder, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("SIGKILL: %s took over %s after %s was killed (bound %s)", next, took.Round(10*time.Millisecond), holder, killBound)
	if took > killBound {
		t.Errorf("%s took over %s after %s was SIGKILLed; want within %s", next, took.Round(10*time.Millisecond), holder, killBound)
	}
}

// leaderKiller kills the leading replica, one kill at a time, measures the
// takeover and starts a replacement.
type leaderKiller struct {
	c *harness.Cluster

	mu        sync.Mutex // one kill at a time
	takeovers []time.Duration
	exited    int // replicas that exited without being killed
}

// waitLeader waits until a running replica other than not holds the Lease
// and returns its ID.
func (k *leaderKiller) waitLeader(ctx context.Context, not string, timeout time.Duration) (string, error) {
	var holder string
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		lease, err := k.c.OperatorLease(ctx)
		if err != nil {
			return false, nil
		}
		holder = ptr.Deref(lease.Spec.HolderIdentity, "")
		if holder == "" || holder == not {
			return false, nil
		}
		r := k.c.OperatorReplica(holder)
		return r != nil && !isDone(r.Done()), nil
	})
	if err != nil {
		return "", fmt.Errorf("no replica but %q took the leader Lease within %s (holder %q): %w", not, timeout, holder, err)
	}
	return holder, nil
}

// watchRenewals polls the Lease until ctx ends and sends the longest time
// between two renewals by the same holder.
func (k *leaderKiller) watchRenewals(ctx context.Context) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		var holder string
		var last time.Time
		var longest time.Duration
		for ctx.Err() == nil {
			if lease, err := k.c.OperatorLease(ctx); err == nil && lease.Spec.RenewTime != nil {
				h, rt := ptr.Deref(lease.Spec.HolderIdentity, ""), lease.Spec.RenewTime.Time
				if h == holder && !last.IsZero() && rt.After(last) {
					longest = max(longest, rt.Sub(last))
				}
				holder, last = h, rt
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		out <- longest
	}()
	return out
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the leader, runs during (while no replica leads), waits
// for the other replica to take over, checks the time it took and starts a
// replacement, so that two replicas run again.
func (k *leaderKiller) kill(ctx context.Context, t *testing.T, during func() error) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	// A replica that exited by itself lost its leadership without a kill.
	for _, r := range k.c.OperatorReplicas() {
		if isDone(r.Done()) {
			k.exited++
			t.Logf("replica %s exited by itself (lost the leader Lease?); starting another", r.ID)
			_ = k.c.KillReplica(r.ID)
			if _, err := k.c.StartReplica(ctx); err != nil {
				return "", err
			}
		}
	}
	old, err := k.waitLeader(ctx, "", 30*time.Second)
	if err != nil {
		return "", err
	}
	start := time.Now()
	if err := k.c.KillReplica(old); err != nil {
		return "", err
	}
	if during != nil {
		if err := during(); err != nil {
			return "", err
		}
	}
	holder, err := k.waitLeader(ctx, old, 30*time.Second)
	if err != nil {
		return "", err
	}
	took := time.Since(start)
	k.takeovers = append(k.takeovers, took)
	if took > takeoverBound {
		return "", fmt.Errorf("%s took over %s after %s was SIGKILLed; want within %s", holder, took.Round(10*time.Millisecond), old, takeoverBound)
	}
	if _, err := k.c.StartReplica(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("killed %s, %s took over in %s", old, holder, took.Round(10*time.Millisecond)), nil
}

// round breaks node's kubelet, kills the leader at moment m of the
// remediation that follows, and checks that the record succeeds with one
// restart and one task.
func (k *leaderKiller) round(ctx context.Context, t *testing.T, node string, m moment) error {
	c := k.c
	n := c.Node(node)
	restarts := n.Host.Restarts(v1alpha1.UnitKubelet)
	before, err := remediationsFor(ctx, c.Client, node)
	if err != nil {
		return err
	}
	switch m {
	case momentPending:
		if err := annotateMaintenance(ctx, c, node, true); err != nil {
			return err
		}
	case momentRecovery:
		n.Kubelet.PauseHeartbeats(time.Hour)
	}
	if err := n.Host.Kill(v1alpha1.UnitKubelet, true); err != nil {
		return err
	}
	if m == momentRunning || m == momentTask {
		// The agent reports the dead kubelet, then goes away: its report
		// stays fresh (three report intervals), so the diagnosis and the
		// record follow, and the task waits for the agent.
		if err := poll(ctx, 30*time.Second, "the agent to report the dead kubelet", func(ctx context.Context) (bool, error) {
			rep := &v1alpha1.NodeReport{}
			if err := c.Client.Get(ctx, client.ObjectKey{Name: node}, rep); err != nil {
				return false, nil
			}
			u, ok := rep.Status.Unit(v1alpha1.UnitKubelet)
			return ok && u.ActiveState == "failed", nil
		}); err != nil {
			return err
		}
		if err := n.StopAgent(); err != nil {
			return err
		}
	}
	var rec v1alpha1.Remediation
	if err := poll(ctx, time.Minute, "the new record", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, node)
		if err != nil {
			return false, nil
		}
		for _, r := range recs {
			if !slices.ContainsFunc(before, func(b v1alpha1.Remediation) bool { return b.Name == r.Name }) {
				rec = r
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	// Wait for the moment (or past it: then the kill still lands mid-way,
	// and the log says where).
	reached := false
	if err := poll(ctx, time.Minute, "moment "+m.String(), func(ctx context.Context) (bool, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(&rec), &rec); err != nil {
			return false, nil
		}
		st := rec.Status
		restart, recovery := stepPhase(&rec, v1alpha1.StepRestartUnit), stepPhase(&rec, v1alpha1.StepWaitForRecovery)
		switch m {
		case momentPending:
			reached = st.Phase == v1alpha1.PhasePending && st.Reason == v1alpha1.ReasonHeldForPerson
			return reached || (st.Phase != "" && st.Phase != v1alpha1.PhasePending), nil
		case momentRunning:
			reached = restart == v1alpha1.StepRunning
			return reached || restart == v1alpha1.StepSucceeded || restart == v1alpha1.StepFailed || st.Phase.IsTerminal(), nil
		case momentTask:
			if restart == v1alpha1.StepSucceeded || restart == v1alpha1.StepFailed || st.Phase.IsTerminal() {
				return true, nil
			}
			tasks := &v1alpha1.NodeTaskList{}
			if err := c.Client.List(ctx, tasks); err != nil {
				return false, nil
			}
			reached = tasksOf(tasks.Items, rec.Name) > 0
			return reached, nil
		default:
			reached = recovery == v1alpha1.StepRunning
			return reached || st.Phase.IsTerminal(), nil
		}
	}); err != nil {
		return err
	}
	at := describeRecord(&rec)
	var during func() error
	switch m {
	case momentPending:
		during = func() error { return annotateMaintenance(ctx, c, node, false) }
	case momentTask:
		during = func() error { return c.StartAgent(ctx, node) }
	}
	what, err := k.kill(ctx, t, during)
	if err != nil {
		return err
	}
	switch m {
	case momentRunning:
		if err := c.StartAgent(ctx, node); err != nil {
			return err
		}
	case momentRecovery:
		n.Kubelet.ClearConditions()
	}
	if !reached {
		at = "past the moment, at " + at
	}
	t.Logf("%s %s: %s; %s", node, m, at, what)
	if err := poll(ctx, 2*time.Minute, "record "+rec.Name+" to end", func(ctx context.Context) (bool, error) {
		err := c.Client.Get(ctx, client.ObjectKeyFromObject(&rec), &rec)
		return err == nil && rec.Status.Phase.IsTerminal(), nil
	}); err != nil {
		return fmt.Errorf("%w; record at %s", err, describeRecord(&rec))
	}
	if rec.Status.Phase != v1alpha1.PhaseSucceeded {
		return fmt.Errorf("record %s ended %s", rec.Name, describeRecord(&rec))
	}
	if got := n.Host.Restarts(v1alpha1.UnitKubelet) - restarts; got != 1 {
		return fmt.Errorf("record %s: %d kubelet restarts, want exactly 1", rec.Name, got)
	}
	tasks := &v1alpha1.NodeTaskList{}
	if err := c.Client.List(ctx, tasks); err != nil {
		return err
	}
	if got := tasksOf(tasks.Items, rec.Name); got != 1 {
		return fmt.Errorf("record %s: %d NodeTasks, want exactly 1", rec.Name, got)
	}
	// The next episode must start in another second (records are named
	// after the cause's since-time, to the second).
	time.Sleep(time.Second)
	return nil
}

// poll is eventually for goroutines: an error instead of t.Fatal.
func poll(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) error {
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, cond); err != nil {
		return fmt.Errorf("waiting %s for %s: %w", timeout, what, err)
	}
	return nil
}

func describeRecord(r *v1alpha1.Remediation) string {
	var steps []string
	for _, s := range r.Status.Steps {
		steps = append(steps, s.Name+" "+string(s.Phase))
	}
	return fmt.Sprintf("%s %s/%s [%s]", r.Name, r.Status.Phase, r.Status.Reason, strings.Join(steps, ", "))
}

// tasksOf counts the NodeTasks of record name.
func tasksOf(tasks []v1alpha1.NodeTask, name string) int {
	n := 0
	for _, task := range tasks {
		if task.Spec.Remediation == name {
			n++
		}
	}
	return n
}

// annotateMaintenance sets or removes nodeward.io/maintenance on the node.
func annotateMaintenance(ctx context.Context, c *harness.Cluster, node string, on bool) error {
	value := `"leader test"`
	if !on {
		value = "null"
	}
	patch := []byte(`{"metadata":{"annotations":{"` + v1alpha1.AnnotationMaintenance + `":` + value + `}}}`)
	_, err := c.Kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("node %s: %w", node, err)
	}
	return err
}
