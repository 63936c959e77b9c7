package remediations

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// cordonRecord is a Cordon record for a read-only filesystem, a cause only
// a person can fix.
func cordonRecord(mode v1alpha1.Mode, uncordonAfter *metav1.Duration) *v1alpha1.Remediation {
	rem := record(v1alpha1.ActionCordon, mode)
	rem.Spec.Cause = v1alpha1.CauseReadonlyFilesystem
	rem.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionCordon}
	rem.CreationTimestamp = metav1.NewTime(t0) // the approval timeout counts from here
	if uncordonAfter != nil {
		rem.Spec.Action.Cordon = &v1alpha1.CordonParams{UncordonAfter: uncordonAfter}
	}
	return rem
}

// newCordonEnv is a drain env whose node carries a pod a drain would evict
// and whose NodeDiagnosis still diagnoses the record's cause.
func newCordonEnv(t *testing.T, rem *v1alpha1.Remediation, kubeNode *corev1.Node) *drainEnv {
	t.Helper()
	d := newDrainEnv(t, rem, kubeNode, pod("web-0", rs))
	if err := d.c.Create(d.ctx, testDiagnosis(nodeName, rem.Spec.Cause)); err != nil {
		t.Fatal(err)
	}
	return d
}

// Cordon cordons the node as CordonDrain does, evicts nothing, and ends
// Cordoned saying a person is needed; without uncordonAfter it plans no
// Uncordon step.
func TestCordonActionCordonsOnly(t *testing.T) {
	d := newCordonEnv(t, cordonRecord(v1alpha1.ModeAutomatic, nil), schedulable())
	got := d.until("the record to end", func(r *v1alpha1.Remediation) bool { return r.Status.Phase.IsTerminal() })
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonCordoned)
	wantSteps(t, got, v1alpha1.StepSucceeded)
	if got.Status.Steps[0].Name != v1alpha1.StepCordon || !strings.Contains(got.Status.Steps[0].Description, "no pod is evicted") {
		t.Errorf("step %+v", got.Status.Steps[0])
	}
	n := d.node()
	if !n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationCordonedBy] != recordName {
		t.Fatalf("node after Cordon: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
	}
	if !got.Status.Drain.Cordoned {
		t.Errorf("status.drain.cordoned is false after nodeward cordoned the node")
	}
	if p := d.podNames(); len(p) != 1 || d.verbs("pods", "create") != 0 {
		t.Errorf("Cordon touched pods: left %v, %d creates (evictions)", p, d.verbs("pods", "create"))
	}
	if ci, _ := v1alpha1.CauseReadonlyFilesystem.Info(); !strings.Contains(got.Status.Message, "a person is needed: "+ci.Summary) {
		t.Errorf("message %q does not say a person is needed", got.Status.Message)
	}
}

// With uncordonAfter, the shared Uncordon step lifts nodeward's cordon once
// the node was healthy that long: the record ends Recovered.
func TestCordonActionUncordonsWhenHealthy(t *testing.T) {
	d := newCordonEnv(t, cordonRecord(v1alpha1.ModeAutomatic, &metav1.Duration{Duration: 30 * time.Second}), schedulable())
	got := d.until("Uncordon to wait", func(r *v1alpha1.Remediation) bool {
		return len(r.Status.Steps) == 2 && r.Status.Steps[1].Phase == v1alpha1.StepRunning && r.Status.Steps[1].Message != ""
	})
	if msg := got.Status.Steps[1].Message; !strings.Contains(msg, "a NodeDiagnosis exists") {
		t.Fatalf("Uncordon with the cause still diagnosed: %q", msg)
	}
	d.delete(&v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}) // a person fixed it
	d.reconcile()
	d.clock.Step(30 * time.Second)
	got, _ = d.reconcile()
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered)
	if n := d.node(); n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationCordonedBy] != "" {
		t.Errorf("after Uncordon: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
	}
	if got.Status.Drain.UncordonedAt == nil {
		t.Errorf("status.drain.uncordonedAt not set")
	}
}

// At most once: an operator restart after the cordon patch landed but
// before the status write did finds nodeward's own cordon and writes the
// node no second time; a finished record is never acted on again.
func TestCordonActionAtMostOnceAfterRestart(t *testing.T) {
	rem := cordonRecord(v1alpha1.ModeAutomatic, nil)
	rem.Status.Phase = v1alpha1.PhaseRunning
	rem.Status.StartedAt = ptr.To(metav1.NewTime(t0))
	rem.Status.StartProof = testSealer.StartProof(rem.Name, rem.UID, t0)
	rem.Status.Steps = cordonAction{}.plan(rem)
	rem.Status.Steps[0].Phase = v1alpha1.StepRunning
	rem.Status.Steps[0].StartedAt = ptr.To(metav1.NewTime(t0))
	d := newCordonEnv(t, rem, cordonedBy(recordName, cordonFieldManager))
	got, _ := d.reconcile()
	wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonCordoned)
	if !got.Status.Drain.Cordoned {
		t.Errorf("nodeward's own cordon not recognised as nodeward's")
	}
	// Another restart: a new executor on the finished record.
	d.ex = &Executor{Client: d.c, Clock: d.clock, Recorder: d.events, Sealer: testSealer, Kube: d.kube}
	d.reconcile()
	if p := d.verbs("nodes", "patch"); p != 0 {
		t.Errorf("%d node patches, want none: the cordon was already in place", p)
	}
}

// DryRun says what Cordon would do and touches nothing; RequireApproval
// waits for a person before cordoning, and cordons once approved.
func TestCordonActionModes(t *testing.T) {
	t.Run("DryRun", func(t *testing.T) {
		d := newCordonEnv(t, cordonRecord(v1alpha1.ModeDryRun, nil), schedulable())
		got := d.until("the record to end", func(r *v1alpha1.Remediation) bool { return r.Status.Phase.IsTerminal() })
		wantPhase(t, got, v1alpha1.PhaseSkipped, v1alpha1.ReasonDryRun)
		if !strings.Contains(got.Status.Steps[0].Description, "cordon worker-1") {
			t.Errorf("DryRun step does not say what it would do: %q", got.Status.Steps[0].Description)
		}
		if p := d.verbs("nodes", "patch"); p != 0 || d.node().Spec.Unschedulable {
			t.Errorf("DryRun cordoned the node (%d patches)", p)
		}
	})
	t.Run("RequireApproval", func(t *testing.T) {
		d := newCordonEnv(t, cordonRecord(v1alpha1.ModeRequireApproval, nil), schedulable())
		d.reconcile()
		got, _ := d.reconcile()
		if got.Status.Phase != v1alpha1.PhasePending || got.Status.Reason != v1alpha1.ReasonWaitingForApproval {
			t.Fatalf("record %s/%s, want Pending/WaitingForApproval", got.Status.Phase, got.Status.Reason)
		}
		if d.verbs("nodes", "patch") != 0 {
			t.Fatalf("cordoned before approval")
		}
		got.Approval = &v1alpha1.Approval{Decision: v1alpha1.DecisionApproved, Reason: "fs is read-only, keep pods off", DecidedBy: "alice", DecidedAt: metav1.NewTime(t0)}
		if err := d.c.Update(d.ctx, got); err != nil {
			t.Fatal(err)
		}
		got = d.until("the record to end", func(r *v1alpha1.Remediation) bool { return r.Status.Phase.IsTerminal() })
		wantPhase(t, got, v1alpha1.PhaseSucceeded, v1alpha1.ReasonCordoned)
		if !d.node().Spec.Unschedulable {
			t.Errorf("approved Cordon did not cordon")
		}
	})
}

// The policy's limits hold a Cordon: the storm breaker while too many
// nodes are unhealthy.
func TestCordonActionHeldByStormBreaker(t *testing.T) {
	rem := cordonRecord(v1alpha1.ModeAutomatic, nil)
	d := newCordonEnv(t, rem, schedulable())
	p := policyFor(rem)
	if err := d.c.Get(d.ctx, client.ObjectKey{Name: p.Name}, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromInt32(0))
	if err := d.c.Update(d.ctx, p); err != nil {
		t.Fatal(err)
	}
	d.reconcile()
	got, _ := d.reconcile()
	if got.Status.Phase != v1alpha1.PhasePending || got.Status.Reason != v1alpha1.ReasonStormBreakerOpen {
		t.Fatalf("record %s/%s (%q), want Pending/StormBreakerOpen", got.Status.Phase, got.Status.Reason, got.Status.Message)
	}
	if d.verbs("nodes", "patch") != 0 {
		t.Errorf("cordoned while the storm breaker is open")
	}
}
