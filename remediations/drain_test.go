package remediations

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// The drain's unit tests run the real k8s.io/kubectl/pkg/drain helper
// against client-go's fake clientset, whose eviction subresource is played
// by a reactor: it deletes the pod, or refuses with 429 as the API server
// does when a PodDisruptionBudget allows no disruption.

type drainEnv struct {
	*env
	kube *kubefake.Clientset
}

func drainRecord(p v1alpha1.DrainParams) *v1alpha1.Remediation {
	rem := record(v1alpha1.ActionCordonDrain, v1alpha1.ModeAutomatic)
	rem.Spec.Cause = v1alpha1.CauseMemoryExhausted
	rem.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionCordonDrain, Drain: &p}
	return rem
}

// running returns rem as the executor left it when it started: Running,
// with every step planned; steps before `at` Succeeded.
func running(rem *v1alpha1.Remediation, at string, ds *v1alpha1.DrainStatus) *v1alpha1.Remediation {
	rem.Status.Phase = v1alpha1.PhaseRunning
	rem.Status.StartedAt = ptr.To(metav1.NewTime(t0))
	rem.Status.StartProof = testSealer.StartProof(rem.Name, rem.UID, t0)
	rem.Status.Steps = drainAction{}.plan(rem)
	rem.Status.Drain = ds
	for i := range rem.Status.Steps {
		if rem.Status.Steps[i].Name == at {
			break
		}
		rem.Status.Steps[i].Phase = v1alpha1.StepSucceeded
	}
	return rem
}

func newDrainEnv(t *testing.T, rem *v1alpha1.Remediation, kubeNode *corev1.Node, kubeObjs ...runtime.Object) *drainEnv {
	t.Helper()
	old := evictRetryDelay
	evictRetryDelay = 20 * time.Millisecond
	t.Cleanup(func() { evictRetryDelay = old })
	e := newEnv(t, rem, testNode(nodeReady), policyFor(rem))
	kube := kubefake.NewClientset(append([]runtime.Object{kubeNode}, kubeObjs...)...)
	kube.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "pods", Kind: "Pod", Namespaced: true},
		{Name: "pods/eviction", Kind: "Eviction", Group: "policy", Version: "v1", Namespaced: true},
	}}}
	e.ex.Kube = kube
	return &drainEnv{env: e, kube: kube}
}

// podsThatStay are the pods a drain leaves on the node: a DaemonSet pod (and
// its DaemonSet), a mirror pod, and nodeward's own agent.
func podsThatStay() []runtime.Object {
	return []runtime.Object{
		pod("logs-x7", ownedBy("DaemonSet", "apps/v1", "logs"), func(p *corev1.Pod) { p.Labels = nil }),
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "logs"}},
		pod("kube-proxy-worker-1", ownedBy("Node", "v1", nodeName), func(p *corev1.Pod) {
			p.Labels = nil
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
		}),
		pod("nodeward-agent-worker-1", nil, func(p *corev1.Pod) {
			p.Namespace = "nodeward-system"
			p.Labels = map[string]string{"app.kubernetes.io/name": "nodeward-agent"}
		}),
	}
}

// evictions makes the fake API server evict pods, refusing those refuse
// selects as a PodDisruptionBudget allowing no disruption would.
func (d *drainEnv) evictions(refuse func(pod *corev1.Pod) bool) {
	d.kube.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		gvr := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
		obj, err := d.kube.Tracker().Get(gvr, ev.Namespace, ev.Name)
		if err != nil {
			return true, nil, err
		}
		if refuse != nil && refuse(obj.(*corev1.Pod)) {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
		}
		return true, nil, d.kube.Tracker().Delete(gvr, ev.Namespace, ev.Name)
	})
}

func (d *drainEnv) node() *corev1.Node {
	d.t.Helper()
	n, err := d.kube.CoreV1().Nodes().Get(d.ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	return n
}

func (d *drainEnv) podNames() []string {
	d.t.Helper()
	list, err := d.kube.CoreV1().Pods("").List(d.ctx, metav1.ListOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	return names(list.Items)
}

// until reconciles until done holds, letting the background drain run.
func (d *drainEnv) until(what string, done func(*v1alpha1.Remediation) bool) *v1alpha1.Remediation {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rem, _ := d.reconcile()
		if done(rem) {
			return rem
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("waiting for %s: record %s, steps %+v, drain %+v", what, rem.Status.Phase, rem.Status.Steps, rem.Status.Drain)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *drainEnv) verbs(resource, verb string) int {
	n := 0
	for _, a := range d.kube.Actions() {
		if a.GetResource().Resource == resource && a.GetVerb() == verb {
			n++
		}
	}
	return n
}

func schedulable() *corev1.Node {
	n := testNode(nodeReady)
	n.ResourceVersion = "1"
	return n
}

func cordonedBy(by, manager string) *corev1.Node {
	n := schedulable()
	n.Spec.Unschedulable = true
	if by != "" {
		n.Annotations = map[string]string{v1alpha1.AnnotationCordonedBy: by}
	}
	if manager != "" {
		n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate,
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:unschedulable":{}}}`)}}}
	}
	return n
}

func pod(name string, owner *metav1.OwnerReference, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: nodeName},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func ownedBy(kind, apiVersion, name string) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: ptr.To(true)}
}

var rs = ownedBy("ReplicaSet", "apps/v1", "web-5d8f")

func webPDB(allowed int32) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status: policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 3, DesiredHealthy: 3, ExpectedPods: 4, DisruptionsAllowed: allowed},
	}
}

func TestDrainPlanSaysWhatItWouldDo(t *testing.T) {
	rem := drainRecord(v1alpha1.DrainParams{Timeout: &metav1.Duration{Duration: 5 * time.Minute}, UncordonAfter: &metav1.Duration{Duration: 20 * time.Second}})
	steps := Plan(rem)
	want := []struct{ name, desc string }{
		{v1alpha1.StepCordon, "cordon worker-1 if it is schedulable: set spec.unschedulable=true and annotate it nodeward.io/cordoned-by=" + recordName},
		{v1alpha1.StepDrain, "evict the pods on worker-1 through the eviction API respecting PodDisruptionBudgets, timeout 5m0s, grace period: each pod's own"},
		{v1alpha1.StepUncordon, "uncordon worker-1 once it has been Ready with no NodeDiagnosis for 20s, only if nodeward's cordon is still in place"},
	}
	if len(steps) != len(want) {
		t.Fatalf("%d steps, want %d: %+v", len(steps), len(want), steps)
	}
	for i, w := range want {
		if steps[i].Name != w.name || !strings.Contains(steps[i].Description, w.desc) || steps[i].Phase != v1alpha1.StepPending {
			t.Errorf("step %d = %s %q, want %s containing %q", i, steps[i].Name, steps[i].Description, w.name, w.desc)
		}
	}
	rem = drainRecord(v1alpha1.DrainParams{GracePeriod: &metav1.Duration{Duration: 30 * time.Second}})
	steps = Plan(rem)
	if len(steps) != 2 || !strings.Contains(steps[1].Description, "timeout 5m0s, grace period: 30s") || !strings.Contains(steps[1].Description, "stays cordoned") {
		t.Errorf("without uncordonAfter: %+v", steps)
	}
}

// A dry run works out the drain's plan (reads only) and touches nothing.
func TestDrainDryRunTouchesNothing(t *testing.T) {
	rem := drainRecord(v1alpha1.DrainParams{})
	rem.Spec.Mode = v1alpha1.ModeDryRun
	d := newDrainEnv(t, rem, schedulable(), pod("web-1", rs))
	d.reconcile()
	got, _ := d.reconcile()
	wantPhase(t, got, v1alpha1.PhaseSkipped, v1alpha1.ReasonDryRun)
	wantSteps(t, got, v1alpha1.StepSkipped, v1alpha1.StepSkipped)
	if !strings.Contains(got.Status.Steps[1].Description, "evict the pods on worker-1") {
		t.Errorf("dry-run record does not say what it would have done: %+v", got.Status.Steps)
	}
	if plan := got.Status.Drain.Plan; plan == nil || strings.Join(plan.Evict, ",") != "shop/web-1" {
		t.Errorf("dry-run record does not say which pods it would have evicted: %+v", got.Status.Drain)
	}
	if w := d.writes(); len(w) != 0 {
		t.Errorf("dry run wrote %v, want nothing touched", w)
	}
}

// nodeward cordons a schedulable node and marks the cordon as its own in
// the same write.
func TestCordonMarksTheCordonNodewards(t *testing.T) {
	rem := running(drainRecord(v1alpha1.DrainParams{}), v1alpha1.StepCordon, nil)
	d := newDrainEnv(t, rem, schedulable())
	d.evictions(nil)
	got := d.until("Cordon to succeed", func(r *v1alpha1.Remediation) bool { return r.Status.Steps[0].Phase == v1alpha1.StepSucceeded })
	n := d.node()
	if !n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationCordonedBy] != recordName {
		t.Fatalf("node after Cordon: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
	}
	if !got.Status.Drain.Cordoned {
		t.Errorf("status.drain.cordoned is false after nodeward cordoned the node")
	}
	if p := d.verbs("nodes", "patch"); p != 1 {
		t.Errorf("%d node patches, want one (unschedulable and annotation together)", p)
	}
	for _, a := range d.kube.Actions() {
		if pa, ok := a.(k8stesting.PatchAction); ok {
			var patch map[string]map[string]any
			if err := json.Unmarshal(pa.GetPatch(), &patch); err != nil {
				t.Fatal(err)
			}
			if patch["metadata"]["resourceVersion"] != "1" {
				t.Errorf("cordon patch without the node's resourceVersion (optimistic lock): %s", pa.GetPatch())
			}
		}
	}
	got = d.until("the record to end", func(r *v1alpha1.Remediation) bool { return r.Status.Phase.IsTerminal() })
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
	if !strings.Contains(got.Status.Message, "stays cordoned") {
		t.Errorf("without uncordonAfter the record should say the node stays cordoned: %q", got.Status.Message)
	}
}

// A node a person cordoned is not touched, and never uncordoned.
func TestCordonLeavesAPersonsCordonAlone(t *testing.T) {
	rem := running(drainRecord(v1alpha1.DrainParams{UncordonAfter: &metav1.Duration{}}), v1alpha1.StepCordon, nil)
	d := newDrainEnv(t, rem, cordonedBy("", "kubectl-cordon"))
	d.evictions(nil)
	got := d.until("the record to end", func(r *v1alpha1.Remediation) bool { return r.Status.Phase.IsTerminal() })
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
	if got.Status.Drain.Cordoned {
		t.Errorf("status.drain.cordoned is true for a person's cordon")
	}
	if msg := got.Status.Steps[0].Message; !strings.Contains(msg, "already cordoned by someone else") {
		t.Errorf("Cordon message %q", msg)
	}
	if msg := got.Status.Steps[2].Message; !strings.Contains(msg, "nodeward did not cordon") {
		t.Errorf("Uncordon message %q", msg)
	}
	if p := d.verbs("nodes", "patch"); p != 0 {
		t.Errorf("%d node patches on a person's cordon, want none", p)
	}
	if n := d.node(); !n.Spec.Unschedulable || len(n.Annotations) != 0 {
		t.Errorf("person's cordon changed: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
	}
}

// The drain evicts through the eviction API what a controller recreates,
// and leaves DaemonSet pods, mirror pods and nodeward's agent.
func TestDrainEvictsManagedPods(t *testing.T) {
	rem := running(drainRecord(v1alpha1.DrainParams{Timeout: &metav1.Duration{Duration: 10 * time.Second}}), v1alpha1.StepDrain, &v1alpha1.DrainStatus{Cordoned: true})
	d := newDrainEnv(t, rem, cordonedBy(recordName, cordonFieldManager),
		append(podsThatStay(), pod("web-1", rs), pod("web-2", rs), webPDB(2))...,
	)
	d.evictions(nil)
	got := d.until("the drain to end", func(r *v1alpha1.Remediation) bool { return r.Status.Phase.IsTerminal() })
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
	ds := got.Status.Drain
	if strings.Join(ds.PlannedPods, ",") != "shop/web-1,shop/web-2" {
		t.Errorf("plannedPods %v", ds.PlannedPods)
	}
	evicted := append([]string(nil), ds.EvictedPods...)
	if len(evicted) != 2 || !contains(evicted, "shop/web-1") || !contains(evicted, "shop/web-2") {
		t.Errorf("evictedPods %v", evicted)
	}
	if strings.Join(ds.PDBs, ",") != "shop/web" {
		t.Errorf("pdbs %v", ds.PDBs)
	}
	left := strings.Join(d.podNames(), ",")
	for _, p := range []string{"shop/logs-x7", "shop/kube-proxy-worker-1", "nodeward-system/nodeward-agent-worker-1"} {
		if !strings.Contains(left, p) {
			t.Errorf("%s was evicted; pods left: %s", p, left)
		}
	}
	if n := d.verbs("pods", "delete"); n != 0 {
		t.Errorf("%d pod deletes: the drain must only evict", n)
	}
	if msg := got.Status.Steps[1].Message; !strings.Contains(msg, "evicted 2 pods") || !strings.Contains(msg, "DaemonSet") {
		t.Errorf("Drain message %q", msg)
	}
}

// A pod no controller would recreate stops the drain before anything is
// evicted; nodeward never deletes it.
func TestDrainRefusesUnmanagedPod(t *testing.T) {
	rem := running(drainRecord(v1alpha1.DrainParams{}), v1alpha1.StepDrain, &v1alpha1.DrainStatus{Cordoned: true})
	d := newDrainEnv(t, rem, cordonedBy(recordName, cordonFieldManager), pod("web-1", rs), pod("debug", nil))
	d.evictions(nil)
	got := d.until("the drain to fail", func(r *v1alpha1.Remediation) bool { return r.Status.Phase.IsTerminal() })
	wantPhase(t, got, v1alpha1.PhaseFailed, v1alpha1.ReasonDrainFailed)
	msg := got.Status.Steps[1].Message
	if !strings.Contains(msg, "shop/debug") || !strings.Contains(msg, "declare no controller") || strings.Contains(msg, "--force") {
		t.Errorf("Drain message %q", msg)
	}
	if n := len(d.podNames()); n != 2 {
		t.Errorf("%d pods left, want both", n)
	}
	if n := d.verbs("pods", "create") + d.verbs("pods", "delete"); n != 0 {
		t.Errorf("%d evictions or deletes after a refusal", n)
	}
}

// A PodDisruptionBudget that allows no disruption holds the drain until the
// timeout; the step fails naming it, and no pod is force-deleted.
func TestDrainBlockedByPDB(t *testing.T) {
	rem := running(drainRecord(v1alpha1.DrainParams{Timeout: &metav1.Duration{Duration: time.Second}}), v1alpha1.StepDrain, &v1alpha1.DrainStatus{Cordoned: true})
	pdb := webPDB(0)
	pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable = nil, ptr.To(intstr.FromInt32(0))
	d := newDrainEnv(t, rem, cordonedBy(recordName, cordonFieldManager),
		pod("web-1", rs), pod("cache-1", ownedBy("StatefulSet", "apps/v1", "cache"), func(p *corev1.Pod) { p.Labels = map[string]string{"app": "cache"} }),
		pdb)
	d.evictions(func(p *corev1.Pod) bool { return p.Labels["app"] == "web" })
	got := d.until("the drain to fail", func(r *v1alpha1.Remediation) bool { return r.Status.Phase.IsTerminal() })
	wantPhase(t, got, v1alpha1.PhaseFailed, v1alpha1.ReasonDrainBlocked)
	msg := got.Status.Steps[1].Message
	for _, want := range []string{"PodDisruptionBudget shop/web", "maxUnavailable 0", "kept shop/web-1 on the node", "nothing was force-deleted"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Drain message %q lacks %q", msg, want)
		}
	}
	if got.Status.Drain.BlockedBy != "PodDisruptionBudget shop/web" {
		t.Errorf("blockedBy %q", got.Status.Drain.BlockedBy)
	}
	if strings.Join(got.Status.Drain.EvictedPods, ",") != "shop/cache-1" {
		t.Errorf("evictedPods %v, want the unblocked pod only", got.Status.Drain.EvictedPods)
	}
	if left := d.podNames(); len(left) != 1 || left[0] != "shop/web-1" {
		t.Errorf("pods left %v", left)
	}
	if n := d.verbs("pods", "delete"); n != 0 {
		t.Errorf("%d pod deletes", n)
	}
}

// After an operator restart the Drain step is Running with no drain in the
// new process: it drains again, keeping what the first one recorded.
func TestDrainStartsAgainAfterRestart(t *testing.T) {
	rem := running(drainRecord(v1alpha1.DrainParams{}), v1alpha1.StepDrain,
		&v1alpha1.DrainStatus{Cordoned: true, PlannedPods: []string{"shop/web-0", "shop/web-1"}, EvictedPods: []string{"shop/web-0"}})
	rem.Status.Steps[1].Phase = v1alpha1.StepRunning
	rem.Status.Steps[1].StartedAt = ptr.To(metav1.NewTime(t0))
	d := newDrainEnv(t, rem, cordonedBy(recordName, cordonFieldManager), pod("web-1", rs))
	d.evictions(nil)
	got := d.until("the drain to end", func(r *v1alpha1.Remediation) bool { return r.Status.Phase.IsTerminal() })
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
	if e := strings.Join(got.Status.Drain.EvictedPods, ","); e != "shop/web-0,shop/web-1" {
		t.Errorf("evictedPods %s", e)
	}
	if p := strings.Join(got.Status.Drain.PlannedPods, ","); p != "shop/web-0,shop/web-1" {
		t.Errorf("plannedPods %s", p)
	}
}

// Uncordon waits for uncordonAfter of health — Ready and no NodeDiagnosis —
// then lifts nodeward's own cordon and its annotation.
func TestUncordonAfterHealthyFor(t *testing.T) {
	rem := running(drainRecord(v1alpha1.DrainParams{UncordonAfter: &metav1.Duration{Duration: 20 * time.Second}}), v1alpha1.StepUncordon, &v1alpha1.DrainStatus{Cordoned: true})
	d := newDrainEnv(t, rem, cordonedBy(recordName, cordonFieldManager))
	diag := &v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
	if err := d.c.Create(d.ctx, diag); err != nil {
		t.Fatal(err)
	}
	d.reconcile() // Uncordon → Running
	got, res := d.reconcile()
	if msg := got.Status.Steps[2].Message; !strings.Contains(msg, "a NodeDiagnosis exists") || res.RequeueAfter == 0 {
		t.Fatalf("with a diagnosis: %q, requeue %s", msg, res.RequeueAfter)
	}
	d.clock.Step(time.Hour)
	d.reconcile()
	if err := d.c.Delete(d.ctx, diag); err != nil {
		t.Fatal(err)
	}
	healthyAt := d.clock.Now()
	got, _ = d.reconcile()
	if !strings.Contains(got.Status.Steps[2].Message, "healthy since") {
		t.Fatalf("Uncordon message %q", got.Status.Steps[2].Message)
	}
	d.clock.Step(19 * time.Second)
	got, res = d.reconcile()
	if !d.node().Spec.Unschedulable || res.RequeueAfter != time.Second {
		t.Fatalf("uncordoned after 19s of health (requeue %s)", res.RequeueAfter)
	}
	d.clock.Step(time.Second)
	got, _ = d.reconcile()
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
	n := d.node()
	if n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationCordonedBy] != "" {
		t.Errorf("after Uncordon: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
	}
	if u := got.Status.Drain.UncordonedAt; u == nil || !u.Time.Equal(healthyAt.Add(20*time.Second)) {
		t.Errorf("uncordonedAt %v, want %s", u, healthyAt.Add(20*time.Second))
	}
}

// A person who uncordoned, re-cordoned or took over the node wins.
func TestUncordonLeavesAPersonsChange(t *testing.T) {
	cases := []struct {
		name             string
		node             *corev1.Node
		msg              string
		wantUnschedule   bool
		wantAnnotationBy string
	}{
		{"uncordoned by a person", func() *corev1.Node {
			n := cordonedBy(recordName, "kubectl-cordon")
			n.Spec.Unschedulable = false
			return n
		}(), "someone uncordoned worker-1 already; removed nodeward's", false, ""},
		{"re-cordoned by a person", cordonedBy(recordName, "kubectl-cordon"), "kubectl-cordon re-cordoned worker-1 after nodeward did", true, ""},
		{"annotation removed", cordonedBy("", cordonFieldManager), "someone removed nodeward's nodeward.io/cordoned-by annotation", true, ""},
		{"another record's cordon", cordonedBy("worker-1-pidexhausted-1", cordonFieldManager), "carries nodeward.io/cordoned-by=worker-1-pidexhausted-1 now", true, "worker-1-pidexhausted-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rem := running(drainRecord(v1alpha1.DrainParams{UncordonAfter: &metav1.Duration{}}), v1alpha1.StepUncordon, &v1alpha1.DrainStatus{Cordoned: true})
			d := newDrainEnv(t, rem, tc.node)
			d.reconcile()
			got, _ := d.reconcile()
			wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
			if msg := got.Status.Steps[2].Message; !strings.Contains(msg, tc.msg) {
				t.Errorf("Uncordon message %q, want %q", msg, tc.msg)
			}
			n := d.node()
			if n.Spec.Unschedulable != tc.wantUnschedule || n.Annotations[v1alpha1.AnnotationCordonedBy] != tc.wantAnnotationBy {
				t.Errorf("node: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
			}
			if got.Status.Drain.UncordonedAt != nil {
				t.Errorf("uncordonedAt set though nodeward did not uncordon")
			}
		})
	}
}

// A node that does not get healthy within the ceiling stays cordoned and the
// record ends.
func TestUncordonCeiling(t *testing.T) {
	rem := running(drainRecord(v1alpha1.DrainParams{UncordonAfter: &metav1.Duration{Duration: time.Minute}}), v1alpha1.StepUncordon, &v1alpha1.DrainStatus{Cordoned: true})
	d := newDrainEnv(t, rem, cordonedBy(recordName, cordonFieldManager))
	if err := d.c.Create(d.ctx, &v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}); err != nil {
		t.Fatal(err)
	}
	d.reconcile()
	got, _ := d.reconcile()
	if got.Status.Phase.IsTerminal() {
		t.Fatalf("ended at once: %s", got.Status.Message)
	}
	d.clock.Step(uncordonCeiling)
	got, _ = d.reconcile()
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
	if msg := got.Status.Steps[2].Message; !strings.Contains(msg, "was not healthy within 24h0m0s") || !strings.Contains(msg, "left cordoned") {
		t.Errorf("Uncordon message %q", msg)
	}
	if n := d.node(); !n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationCordonedBy] != recordName {
		t.Errorf("node: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
