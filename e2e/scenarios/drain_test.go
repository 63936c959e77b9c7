package scenarios

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/cmd/kubectl-nodeward/cli"
	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

const drainNS = "shop"

// Seed 001: a node runs out of memory and the OOM killer fires. nodeward
// diagnoses MemoryExhausted and a CordonDrain policy moves the workloads
// off: it cordons the node (marking the cordon as its own), evicts the
// Deployment's pods through the eviction API one at a time as the
// PodDisruptionBudget (minAvailable 3 of 4) allows, while the real scheduler
// places the replacements on the other nodes and the simulated kubelets run
// them; the DaemonSet's pod stays. Once the node is healthy again for
// uncordonAfter, nodeward uncordons it.
func TestDrainSeed001MemoryExhausted(t *testing.T) {
	c := startCluster(t, drainNodes()...)
	ctx := context.Background()
	dp := &v1alpha1.DrainParams{Timeout: &metav1.Duration{Duration: 2 * time.Minute}, UncordonAfter: &metav1.Duration{Duration: 20 * time.Second}}
	createDrainPolicy(t, c, v1alpha1.ModeAutomatic, dp)
	minAvailable := intstr.FromInt32(3)
	createWorkload(t, c, policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable}, 1)

	sick, before := busiestNode(t, c)
	dsPod := daemonSetPodOn(t, c, sick)
	t.Logf("%s runs %d of web's pods (%s) and DaemonSet pod %s", sick, len(before), strings.Join(before, ", "), dsPod.Name)
	waitReport(t, c, sick, func(r *v1alpha1.NodeReport) bool { return r.Status.Probes != nil })

	// Watch, from the fault on, how many of web's pods are available and
	// whether the node carries nodeward's cordon.
	w := watchDrain(t, c, sick)
	fault := time.Now()
	if _, err := sim.Inject(ctx, c.Node(sick), "memory-oom"); err != nil {
		t.Fatal(err)
	}
	var rem v1alpha1.Remediation
	drained := eventually(t, 3*time.Minute, "the Drain step on "+sick+" to succeed", func(ctx context.Context) (bool, error) {
		r, err := drainRecord(ctx, c, sick)
		if err != nil || r == nil {
			return false, err
		}
		rem = *r
		if rem.Status.Phase == v1alpha1.PhaseFailed {
			return false, fmt.Errorf("record %s failed: %s", rem.Name, rem.Status.Message)
		}
		return stepPhase(&rem, v1alpha1.StepDrain) == v1alpha1.StepSucceeded, nil
	})
	logRecord(t, &rem, fault)

	ds := rem.Status.Drain
	if ds == nil || !ds.Cordoned {
		t.Fatalf("status.drain %+v: nodeward did not record its cordon", ds)
	}
	if got := w.cordonedBy(); got != rem.Name {
		t.Errorf("while draining, %s carried %s=%q, want %q", sick, v1alpha1.AnnotationCordonedBy, got, rem.Name)
	}
	if got, want := sorted(ds.EvictedPods), sorted(before); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("evictedPods %v, want web's pods that were on %s: %v", got, sick, want)
	}
	if strings.Join(sorted(ds.PlannedPods), ",") != strings.Join(sorted(before), ",") {
		t.Errorf("plannedPods %v, want %v", ds.PlannedPods, before)
	}
	if strings.Join(ds.PDBs, ",") != drainNS+"/web" {
		t.Errorf("pdbs %v, want %s/web", ds.PDBs, drainNS)
	}
	// The PodDisruptionBudget was honoured: at no point of the watch were
	// fewer than 3 of web's pods available, so with two or more pods on the
	// node the second eviction waited for the first replacement (inside the
	// API server's retry, or refused with 429 and retried by the drain).
	if lowest := w.lowestAvailable(); lowest < 3 {
		t.Errorf("only %d of web's pods were available at one point during the drain (minAvailable 3)", lowest)
	}
	// The DaemonSet's pod stays, the same pod as before.
	stillDS := daemonSetPodOn(t, c, sick)
	if stillDS.UID != dsPod.UID || stillDS.DeletionTimestamp != nil {
		t.Errorf("DaemonSet pod on %s was evicted or replaced: %s (%s) → %s (%s)", sick, dsPod.Name, dsPod.UID, stillDS.Name, stillDS.UID)
	}
	for _, p := range ds.EvictedPods {
		if p == drainNS+"/"+dsPod.Name {
			t.Errorf("DaemonSet pod %s is listed as evicted", p)
		}
	}
	// Every pod of web runs elsewhere; none is left on the node.
	eventually(t, time.Minute, "4 of web's pods Running and Ready off "+sick, func(ctx context.Context) (bool, error) {
		pods, err := webPods(ctx, c)
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range pods {
			if p.Spec.NodeName == sick {
				return false, fmt.Errorf("pod %s is still on %s after the drain", p.Name, sick)
			}
			if available(&p) {
				n++
			}
		}
		return n == 4, nil
	})
	node := &corev1.Node{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: sick}, node); err != nil {
		t.Fatal(err)
	}
	if !node.Spec.Unschedulable || node.Annotations[v1alpha1.AnnotationCordonedBy] != rem.Name {
		t.Fatalf("after the drain %s: unschedulable=%v annotations=%v; want it cordoned by %s until it is healthy", sick, node.Spec.Unschedulable, node.Annotations, rem.Name)
	}
	if rem.Status.Phase != v1alpha1.PhaseRunning || stepPhase(&rem, v1alpha1.StepUncordon) != v1alpha1.StepRunning && stepPhase(&rem, v1alpha1.StepUncordon) != v1alpha1.StepPending {
		t.Fatalf("record %s is %s with Uncordon %s before the node is healthy", rem.Name, rem.Status.Phase, stepPhase(&rem, v1alpha1.StepUncordon))
	}
	t.Logf("drained %s %s after the fault; replacements Running on the other nodes; lowest availability during the drain: %d of 4",
		sick, drained.Sub(fault).Round(time.Second), w.lowestAvailable())
	w.stop()

	// Heal the node: nodeward uncordons it uncordonAfter after it is
	// healthy (Ready, no NodeDiagnosis) and drops its annotation.
	healed := time.Now()
	if _, err := sim.Inject(ctx, c.Node(sick), "heal"); err != nil {
		t.Fatal(err)
	}
	ageOOMEvents(t, c, sick)
	var healthy time.Time
	uncordoned := eventually(t, 3*time.Minute, sick+" to be uncordoned", func(ctx context.Context) (bool, error) {
		if healthy.IsZero() {
			cond, err := readyCondition(ctx, c.Client, sick)
			if err == nil && cond != nil && cond.Status == corev1.ConditionTrue && c.Client.Get(ctx, client.ObjectKey{Name: sick}, &v1alpha1.NodeDiagnosis{}) != nil {
				healthy = time.Now()
			}
		}
		n := &corev1.Node{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: sick}, n); err != nil {
			return false, err
		}
		return !n.Spec.Unschedulable, nil
	})
	r, err := drainRecord(ctx, c, sick)
	if err != nil || r == nil {
		t.Fatalf("record: %v", err)
	}
	rem = *r
	eventually(t, 30*time.Second, "the record to succeed", func(ctx context.Context) (bool, error) {
		r, err := drainRecord(ctx, c, sick)
		if err != nil || r == nil {
			return false, err
		}
		rem = *r
		return rem.Status.Phase == v1alpha1.PhaseSucceeded, nil
	})
	logRecord(t, &rem, fault)
	node = &corev1.Node{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: sick}, node); err != nil {
		t.Fatal(err)
	}
	if _, ok := node.Annotations[v1alpha1.AnnotationCordonedBy]; ok {
		t.Errorf("%s still carries %s after the uncordon", sick, v1alpha1.AnnotationCordonedBy)
	}
	if rem.Status.Drain.UncordonedAt == nil {
		t.Errorf("status.drain.uncordonedAt not set")
	}
	if healthy.IsZero() {
		t.Fatalf("uncordoned before the test saw %s healthy", sick)
	}
	if d := uncordoned.Sub(healthy); d < 19*time.Second {
		t.Errorf("uncordoned %s after %s was healthy, before uncordonAfter (20s)", d.Round(time.Second), sick)
	}
	t.Logf("healed %s; healthy (Ready, no NodeDiagnosis) %s later; uncordoned %s after that",
		sick, healthy.Sub(healed).Round(time.Second), uncordoned.Sub(healthy).Round(time.Second))
}

// A PodDisruptionBudget with maxUnavailable 0 allows no eviction. The
// policy requires approval: while the record waits, its drain plan shows the
// person deciding the pods that would be evicted, the DaemonSet's pod that
// stays, and the budget with its 0 disruptions allowed; nothing is touched.
// Approved anyway, the drain waits out its timeout and fails naming the
// budget. No pod is deleted around it; the node stays cordoned.
func TestDrainBlockedByPodDisruptionBudget(t *testing.T) {
	c := startCluster(t, drainNodes()...)
	ctx := context.Background()
	createDrainPolicy(t, c, v1alpha1.ModeRequireApproval, &v1alpha1.DrainParams{Timeout: &metav1.Duration{Duration: 20 * time.Second}})
	zero := intstr.FromInt32(0)
	createWorkload(t, c, policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &zero}, 0)

	sick, before := busiestNode(t, c)
	uids := map[string]string{}
	pods, err := webPods(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		uids[p.Name] = string(p.UID)
	}
	waitReport(t, c, sick, func(r *v1alpha1.NodeReport) bool { return r.Status.Probes != nil })
	dsPod := daemonSetPodOn(t, c, sick)
	fault := time.Now()
	if _, err := sim.Inject(ctx, c.Node(sick), "memory-oom"); err != nil {
		t.Fatal(err)
	}
	var rem v1alpha1.Remediation
	eventually(t, 3*time.Minute, "the drain of "+sick+" to wait for approval", func(ctx context.Context) (bool, error) {
		r, err := drainRecord(ctx, c, sick)
		if err != nil || r == nil {
			return false, err
		}
		rem = *r
		if rem.Status.Phase.IsTerminal() {
			return false, fmt.Errorf("record %s ended %s/%s before a decision: %s", rem.Name, rem.Status.Phase, rem.Status.Reason, rem.Status.Message)
		}
		return rem.Status.Reason == v1alpha1.ReasonWaitingForApproval, nil
	})
	if rem.Status.Drain == nil || rem.Status.Drain.Plan == nil {
		t.Fatalf("record %s waits for approval without a drain plan: status.drain %+v", rem.Name, rem.Status.Drain)
	}
	plan := rem.Status.Drain.Plan
	t.Logf("%s waits for approval; drain plan: %+v", rem.Name, *plan)
	if got, want := strings.Join(plan.Evict, ","), strings.Join(sorted(before), ","); got != want || int(plan.EvictCount) != len(before) {
		t.Errorf("plan evicts %s (count %d), want web's pods on %s: %s", got, plan.EvictCount, sick, want)
	}
	if len(plan.Keep) != 1 || plan.Keep[0].Name != drainNS+"/"+dsPod.Name || !strings.Contains(plan.Keep[0].Reason, "DaemonSet pod node-logs") {
		t.Errorf("plan keeps %+v, want only the DaemonSet's pod %s (nodeward's agent is not part of a drain)", plan.Keep, dsPod.Name)
	}
	if want := (v1alpha1.PlannedPDB{Name: drainNS + "/web", Budget: "maxUnavailable 0", DisruptionsAllowed: 0, Pods: int32(len(before))}); len(plan.PDBs) != 1 || plan.PDBs[0] != want {
		t.Errorf("plan budgets %+v, want %+v", plan.PDBs, want)
	}
	if plan.Blocked != "" || plan.Error != "" || plan.ObservedAt.Time.Before(fault.Truncate(time.Second)) {
		t.Errorf("plan blocked %q, error %q, observed at %s (fault at %s)", plan.Blocked, plan.Error, plan.ObservedAt, fault)
	}
	if !strings.Contains(rem.Status.Message, "PodDisruptionBudgets "+drainNS+"/web (maxUnavailable 0, 0 disruptions allowed)") {
		t.Errorf("the message announcing the record lacks the budget: %q", rem.Status.Message)
	}
	var story strings.Builder
	explain := &cli.ExplainOptions{Env: &cli.Env{Client: c.Client, Out: &story, Clock: clock.RealClock{}}}
	if err := explain.Validate([]string{rem.Name}); err != nil {
		t.Fatal(err)
	}
	if err := explain.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(story.String(), "Drain plan:\n") || !strings.Contains(story.String(), drainNS+"/web  maxUnavailable 0, 0 disruptions allowed") {
		t.Errorf("kubectl nodeward explain %s does not show the plan:\n%s", rem.Name, story.String())
	}
	n := &corev1.Node{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: sick}, n); err != nil || n.Spec.Unschedulable {
		t.Fatalf("%s was cordoned before anyone approved (%v)", sick, err)
	}
	var approved strings.Builder
	approve := &cli.DecideOptions{Env: &cli.Env{Client: c.Client, Out: &approved, Clock: clock.RealClock{}}, Decision: v1alpha1.DecisionApproved, Reason: "drain it anyway"}
	if err := approve.Validate([]string{rem.Name}); err != nil {
		t.Fatal(err)
	}
	if err := approve.Run(ctx); err != nil {
		t.Fatalf("approving %s: %v", rem.Name, err)
	}
	t.Logf("approved: %s", strings.TrimSpace(approved.String()))
	if !strings.Contains(approved.String(), "drain plan as of") {
		t.Errorf("approve did not repeat the plan: %q", approved.String())
	}

	eventually(t, 3*time.Minute, "the drain of "+sick+" to fail", func(ctx context.Context) (bool, error) {
		r, err := drainRecord(ctx, c, sick)
		if err != nil || r == nil {
			return false, err
		}
		rem = *r
		return rem.Status.Phase.IsTerminal(), nil
	})
	logRecord(t, &rem, fault)
	if rem.Status.Phase != v1alpha1.PhaseFailed || rem.Status.Reason != v1alpha1.ReasonDrainBlocked {
		t.Fatalf("record %s/%s (%s), want Failed/DrainBlocked", rem.Status.Phase, rem.Status.Reason, rem.Status.Message)
	}
	msg := stepMessage(&rem, v1alpha1.StepDrain)
	for _, want := range []string{"PodDisruptionBudget " + drainNS + "/web", "maxUnavailable 0", "nothing was force-deleted"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Drain message %q lacks %q", msg, want)
		}
	}
	if rem.Status.Drain == nil || rem.Status.Drain.BlockedBy != "PodDisruptionBudget "+drainNS+"/web" {
		t.Errorf("status.drain %+v, want blockedBy PodDisruptionBudget %s/web", rem.Status.Drain, drainNS)
	}
	var step v1alpha1.Step
	for _, s := range rem.Status.Steps {
		if s.Name == v1alpha1.StepDrain {
			step = s
		}
	}
	took := step.CompletedAt.Sub(step.StartedAt.Time)
	if took < 19*time.Second || took > 45*time.Second {
		t.Errorf("the blocked drain ended after %s, want about its 20s timeout", took)
	}
	// Every pod of web is still there, the same pods, none deleted.
	pods, err = webPods(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var onNode []string
	for _, p := range pods {
		if uids[p.Name] != string(p.UID) || p.DeletionTimestamp != nil {
			t.Errorf("pod %s was deleted or replaced", p.Name)
		}
		if p.Spec.NodeName == sick {
			onNode = append(onNode, drainNS+"/"+p.Name)
		}
	}
	if len(pods) != 4 || strings.Join(sorted(onNode), ",") != strings.Join(sorted(before), ",") {
		t.Errorf("web's pods on %s: %v, want %v (4 in all, got %d)", sick, onNode, before, len(pods))
	}
	if len(rem.Status.Drain.EvictedPods) != 0 {
		t.Errorf("evictedPods %v, want none", rem.Status.Drain.EvictedPods)
	}
	node := &corev1.Node{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: sick}, node); err != nil {
		t.Fatal(err)
	}
	if !node.Spec.Unschedulable || node.Annotations[v1alpha1.AnnotationCordonedBy] != rem.Name {
		t.Errorf("%s after the blocked drain: unschedulable=%v annotations=%v, want it still cordoned by %s", sick, node.Spec.Unschedulable, node.Annotations, rem.Name)
	}
	t.Logf("drain of %s blocked by %s/web; record failed %s after the fault, the Drain step after %s", sick, drainNS, rem.Status.CompletedAt.Sub(fault).Round(time.Second), took.Round(time.Second))
}

// --- helpers ----------------------------------------------------------------

func drainNodes() []harness.NodeSpec {
	var nodes []harness.NodeSpec
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("worker-%d", i)
		// The real kubelet's hostname label: the scheduler's default
		// topology spreading uses it.
		nodes = append(nodes, harness.NodeSpec{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}})
	}
	return nodes
}

func createDrainPolicy(t *testing.T, c *harness.Cluster, mode v1alpha1.Mode, dp *v1alpha1.DrainParams) {
	t.Helper()
	p := policy("drain-oom", nil, mode, v1alpha1.CauseMemoryExhausted, v1alpha1.ActionCordonDrain, 0)
	p.Spec.Action.Drain = dp
	// One unhealthy node of three is 33%, above the default 30%.
	p.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromInt32(1))
	if err := c.Client.Create(context.Background(), p); err != nil {
		t.Fatalf("creating policy: %v", err)
	}
}

// createWorkload creates, in namespace shop, a Deployment "web" of 4
// replicas with a PodDisruptionBudget over them and a DaemonSet "node-logs",
// and waits until the real scheduler and controllers placed them and the
// simulated kubelets run them, and the budget allows `allowed` disruptions.
func createWorkload(t *testing.T, c *harness.Cluster, budget policyv1.PodDisruptionBudgetSpec, allowed int32) {
	t.Helper()
	ctx := context.Background()
	pause := []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: drainNS}},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: drainNS, Name: "web"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](4),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec:       corev1.PodSpec{Containers: pause},
				},
			},
		},
		&appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: drainNS, Name: "node-logs"},
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "node-logs"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "node-logs"}},
					Spec:       corev1.PodSpec{Containers: pause},
				},
			},
		},
	}
	budget.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	objs = append(objs, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: drainNS, Name: "web"}, Spec: budget})
	for _, o := range objs {
		if err := c.Client.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	eventually(t, 2*time.Minute, "web's 4 pods and node-logs' 3 pods Running and Ready, and the PodDisruptionBudget up to date", func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := c.Client.List(ctx, pods, client.InNamespace(drainNS)); err != nil {
			return false, nil
		}
		web, logs := 0, 0
		for i := range pods.Items {
			p := &pods.Items[i]
			if !available(p) {
				continue
			}
			switch p.Labels["app"] {
			case "web":
				web++
			case "node-logs":
				logs++
			}
		}
		pdb := &policyv1.PodDisruptionBudget{}
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: drainNS, Name: "web"}, pdb); err != nil {
			return false, nil
		}
		return web == 4 && logs == 3 && pdb.Status.ObservedGeneration == pdb.Generation &&
			pdb.Status.CurrentHealthy == 4 && pdb.Status.DisruptionsAllowed == allowed, nil
	})
}

func available(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func webPods(ctx context.Context, c *harness.Cluster) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := c.Client.List(ctx, pods, client.InNamespace(drainNS), client.MatchingLabels{"app": "web"}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// busiestNode is the node running most of web's pods, and those pods.
func busiestNode(t *testing.T, c *harness.Cluster) (string, []string) {
	t.Helper()
	pods, err := webPods(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string][]string{}
	for _, p := range pods {
		by[p.Spec.NodeName] = append(by[p.Spec.NodeName], drainNS+"/"+p.Name)
	}
	best := ""
	for n, ps := range by {
		if best == "" || len(ps) > len(by[best]) || len(ps) == len(by[best]) && n < best {
			best = n
		}
	}
	spread := []string{}
	for n, ps := range by {
		spread = append(spread, fmt.Sprintf("%s:%d", n, len(ps)))
	}
	sort.Strings(spread)
	t.Logf("the scheduler placed web's pods %v", spread)
	return best, by[best]
}

func daemonSetPodOn(t *testing.T, c *harness.Cluster, node string) corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := c.Client.List(context.Background(), pods, client.InNamespace(drainNS), client.MatchingLabels{"app": "node-logs"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == node {
			return p
		}
	}
	t.Fatalf("no node-logs pod on %s", node)
	return corev1.Pod{}
}

// drainRecord is the node's CordonDrain record, if there is one yet.
func drainRecord(ctx context.Context, c *harness.Cluster, node string) (*v1alpha1.Remediation, error) {
	recs, err := remediationsFor(ctx, c.Client, node)
	if err != nil {
		return nil, nil
	}
	for i := range recs {
		if recs[i].Spec.Action.Type == v1alpha1.ActionCordonDrain {
			return &recs[i], nil
		}
	}
	return nil, nil
}

func stepPhase(rem *v1alpha1.Remediation, name string) v1alpha1.StepPhase {
	for _, s := range rem.Status.Steps {
		if s.Name == name {
			return s.Phase
		}
	}
	return ""
}

func stepMessage(rem *v1alpha1.Remediation, name string) string {
	for _, s := range rem.Status.Steps {
		if s.Name == name {
			return s.Message
		}
	}
	return ""
}

func logRecord(t *testing.T, rem *v1alpha1.Remediation, since time.Time) {
	t.Helper()
	since = since.Truncate(time.Second) // the API's timestamps are whole seconds
	t.Logf("record %s (created %s after the fault): %s %s %s", rem.Name, rem.CreationTimestamp.Sub(since).Round(time.Second), rem.Status.Phase, rem.Status.Reason, rem.Status.Message)
	for _, s := range rem.Status.Steps {
		at := ""
		if s.StartedAt != nil {
			at = fmt.Sprintf("+%s", s.StartedAt.Sub(since).Round(time.Second))
			if s.CompletedAt != nil {
				at += fmt.Sprintf("..+%s", s.CompletedAt.Sub(since).Round(time.Second))
			}
		}
		t.Logf("  %-15s %-9s %s %s", s.Name, s.Phase, at, s.Message)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// drainWatch follows web's pods through a watch and keeps the lowest number
// available at any point, and which record the node's cordon annotation
// named while the node was cordoned.
type drainWatch struct {
	mu     sync.Mutex
	lowest int
	by     string
	cancel context.CancelFunc
	done   chan struct{}
}

func watchDrain(t *testing.T, c *harness.Cluster, node string) *drainWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &drainWatch{lowest: 4, cancel: cancel, done: make(chan struct{})}
	factory := informers.NewSharedInformerFactoryWithOptions(c.Kube, 0, informers.WithNamespace(drainNS),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "app=web" }))
	pods := factory.Core().V1().Pods().Informer()
	count := func(any) {
		n := 0
		for _, o := range pods.GetStore().List() {
			if available(o.(*corev1.Pod)) {
				n++
			}
		}
		w.mu.Lock()
		w.lowest = min(w.lowest, n)
		w.mu.Unlock()
	}
	_, _ = pods.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: count, UpdateFunc: func(_, o any) { count(o) }, DeleteFunc: count})
	nodes := informers.NewSharedInformerFactoryWithOptions(c.Kube, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + node }))
	ni := nodes.Core().V1().Nodes().Informer()
	cordon := func(o any) {
		if n, ok := o.(*corev1.Node); ok && n.Spec.Unschedulable && n.Annotations[v1alpha1.AnnotationCordonedBy] != "" {
			w.mu.Lock()
			w.by = n.Annotations[v1alpha1.AnnotationCordonedBy]
			w.mu.Unlock()
		}
	}
	_, _ = ni.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: cordon, UpdateFunc: func(_, o any) { cordon(o) }})
	go func() {
		defer close(w.done)
		factory.Start(ctx.Done())
		nodes.Start(ctx.Done())
		factory.WaitForCacheSync(ctx.Done())
		nodes.WaitForCacheSync(ctx.Done())
		<-ctx.Done()
		factory.Shutdown()
		nodes.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced, ni.HasSynced) {
		t.Fatal("watching web's pods: cache did not sync")
	}
	t.Cleanup(w.stop)
	return w
}

func (w *drainWatch) stop() {
	w.cancel()
	<-w.done
}

func (w *drainWatch) lowestAvailable() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lowest
}

func (w *drainWatch) cordonedBy() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.by
}

// ageOOMEvents moves the node's SystemOOM Events 11 minutes into the past.
// The diagnosis keeps MemoryExhausted while a system OOM is less than 10
// minutes old (diagnosis.Thresholds.RecentOOM), so a healed node counts as
// healthy only then; the test ages the Events rather than wait 10 minutes.
func ageOOMEvents(t *testing.T, c *harness.Cluster, node string) {
	t.Helper()
	ctx := context.Background()
	evs, err := c.Kube.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + node + ",reason=SystemOOM"})
	if err != nil {
		t.Fatal(err)
	}
	past := metav1.NewTime(time.Now().Add(-11 * time.Minute))
	for _, e := range evs.Items {
		e.FirstTimestamp, e.LastTimestamp = past, past
		if _, err := c.Kube.CoreV1().Events(e.Namespace).Update(ctx, &e, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("ageing Event %s: %v", e.Name, err)
		}
	}
	t.Logf("aged %d SystemOOM Events of %s past the diagnosis' 10-minute window", len(evs.Items), node)
}
