package remediations

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// approvalDrainRecord is a CordonDrain record of a RequireApproval policy,
// as the policy controller creates it.
func approvalDrainRecord(p v1alpha1.DrainParams) *v1alpha1.Remediation {
	rem := drainRecord(p)
	rem.Spec.Mode = v1alpha1.ModeRequireApproval
	rem.CreationTimestamp = metav1.NewTime(t0)
	return rem
}

// writes counts the API calls that change something.
func (d *drainEnv) writes() []string {
	var out []string
	for _, a := range d.kube.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource+"/"+a.GetSubresource())
		}
	}
	return out
}

// A RequireApproval drain shows, while it waits, the pods it would evict,
// those it would leave and why, and the PodDisruptionBudgets covering the
// first with their disruptionsAllowed — worked out once with the drain's own
// rules, touching nothing.
func TestDrainPlanWhileWaitingForApproval(t *testing.T) {
	rem := approvalDrainRecord(v1alpha1.DrainParams{})
	d := newDrainEnv(t, rem, schedulable(),
		append(podsThatStay(), pod("web-2", rs), pod("web-1", rs), webPDB(1))...,
	)
	got, _ := d.reconcile()
	if got.Status.Phase != v1alpha1.PhasePending || got.Status.Drain == nil || got.Status.Drain.Plan == nil {
		t.Fatalf("planned record: phase %s, drain %+v; want Pending with a plan", got.Status.Phase, got.Status.Drain)
	}
	plan := got.Status.Drain.Plan
	if !plan.ObservedAt.Time.Equal(t0) {
		t.Errorf("observedAt %s, want %s", plan.ObservedAt, t0)
	}
	if strings.Join(plan.Evict, ",") != "shop/web-1,shop/web-2" || plan.EvictCount != 2 {
		t.Errorf("evict %v (count %d), want shop/web-1,shop/web-2", plan.Evict, plan.EvictCount)
	}
	if len(plan.Keep) != 2 || plan.KeepCount != 2 ||
		plan.Keep[0].Name != "shop/kube-proxy-worker-1" || !strings.Contains(plan.Keep[0].Reason, "mirror pod") ||
		plan.Keep[1].Name != "shop/logs-x7" || !strings.Contains(plan.Keep[1].Reason, "DaemonSet pod logs") {
		t.Errorf("keep %+v (count %d), want the mirror pod and the DaemonSet's pod, and not nodeward's agent", plan.Keep, plan.KeepCount)
	}
	if len(plan.PDBs) != 1 || plan.PDBs[0] != (v1alpha1.PlannedPDB{Name: "shop/web", Budget: "minAvailable 3", DisruptionsAllowed: 1, Pods: 2}) {
		t.Errorf("pdbs %+v, want shop/web minAvailable 3, 1 allowed, 2 pods", plan.PDBs)
	}
	if plan.Blocked != "" || plan.Error != "" {
		t.Errorf("blocked %q, error %q, want neither", plan.Blocked, plan.Error)
	}

	got, _ = d.reconcile()
	wantPhase(t, got, v1alpha1.PhasePending, v1alpha1.ReasonWaitingForApproval)
	for _, want := range []string{
		"kubectl nodeward approve " + recordName,
		"drain plan as of 2026-11-25T12:00:00Z: would evict 2 pods (shop/web-1, shop/web-2), leave 2 (shop/kube-proxy-worker-1, shop/logs-x7), PodDisruptionBudgets shop/web (minAvailable 3, 1 disruption allowed)",
	} {
		if !strings.Contains(got.Status.Message, want) {
			t.Errorf("message %q lacks %q", got.Status.Message, want)
		}
	}
	d.clock.Step(time.Minute)
	d.reconcile()
	if n := d.verbs("pods", "list"); n != 1 {
		t.Errorf("%d pod lists over three reconciles, want one: the plan is worked out once per record", n)
	}
	if w := d.writes(); len(w) != 0 {
		t.Errorf("planning wrote %v, want nothing touched", w)
	}
	if n := d.node(); n.Spec.Unschedulable {
		t.Errorf("the node was cordoned before anyone approved")
	}
}

// Pods the drain helper refuses stop the whole drain: the plan says so and
// lists them among the pods left, with the helper's reason in nodeward's
// words.
func TestDrainPlanBlocked(t *testing.T) {
	rem := approvalDrainRecord(v1alpha1.DrainParams{})
	d := newDrainEnv(t, rem, schedulable(), pod("web-1", rs), pod("debug", nil),
		pod("cache-0", ownedBy("StatefulSet", "apps/v1", "cache"), func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}))
	got, _ := d.reconcile()
	plan := got.Status.Drain.Plan
	if strings.Join(plan.Evict, ",") != "shop/web-1" {
		t.Errorf("evict %v, want shop/web-1", plan.Evict)
	}
	for _, want := range []string{"the drain would evict nothing", "shop/debug", "nodeward never deletes a pod that no controller would recreate", "shop/cache-0", "set action.drain.deleteEmptyDirData"} {
		if !strings.Contains(plan.Blocked, want) {
			t.Errorf("blocked %q lacks %q", plan.Blocked, want)
		}
	}
	if len(plan.Keep) != 2 || plan.Keep[0].Name != "shop/cache-0" || plan.Keep[1].Name != "shop/debug" ||
		!strings.HasPrefix(plan.Keep[1].Reason, "stops the drain: Pods that declare no controller") || strings.Contains(plan.Keep[1].Reason, "shop/") {
		t.Errorf("keep %+v, want cache-0 and debug, each with the reason it stops the drain", plan.Keep)
	}
}

// A large node: the lists are bounded, the counts are not.
func TestDrainPlanBounded(t *testing.T) {
	rem := approvalDrainRecord(v1alpha1.DrainParams{})
	var objs []runtime.Object
	for i := range maxPlanPods + 20 {
		objs = append(objs, pod(fmt.Sprintf("web-%03d", i), rs))
	}
	d := newDrainEnv(t, rem, schedulable(), objs...)
	got, _ := d.reconcile()
	plan := got.Status.Drain.Plan
	if len(plan.Evict) != maxPlanPods || plan.EvictCount != maxPlanPods+20 || plan.Evict[0] != "shop/web-000" {
		t.Errorf("evict: %d listed, count %d, first %q; want %d listed of %d", len(plan.Evict), plan.EvictCount, plan.Evict[0], maxPlanPods, maxPlanPods+20)
	}
	if s := DrainPlanSummary(plan); !strings.Contains(s, "would evict 120 pods (shop/web-000, ") || !strings.Contains(s, "shop/web-009 and 110 more)") {
		t.Errorf("summary %q", s)
	}
}

// A plan that can't be worked out is said, and the record goes on: the
// drain lists the pods again when it starts.
func TestDrainPlanListFails(t *testing.T) {
	rem := approvalDrainRecord(v1alpha1.DrainParams{})
	d := newDrainEnv(t, rem, schedulable(), pod("web-1", rs))
	d.kube.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("etcd is sad")
	})
	got, _ := d.reconcile()
	if got.Status.Phase != v1alpha1.PhasePending {
		t.Fatalf("phase %s, want Pending", got.Status.Phase)
	}
	if plan := got.Status.Drain.Plan; plan == nil || !strings.Contains(plan.Error, "listing the pods on worker-1: etcd is sad") || len(plan.Evict) != 0 {
		t.Errorf("plan %+v, want the list error", plan)
	}
	got, _ = d.reconcile()
	wantPhase(t, got, v1alpha1.PhasePending, v1alpha1.ReasonWaitingForApproval)
	if !strings.Contains(got.Status.Message, "no plan: listing the pods on worker-1") {
		t.Errorf("message %q should say the plan is missing", got.Status.Message)
	}
}
