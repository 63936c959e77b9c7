package scenarios

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

// With admission switched off (every nodeward-* admission policy binding
// deleted), the cluster admin forges what admission would refuse, and the
// executor still refuses to act on it:
//
//	(a) the status of a genuine RequireApproval record, waiting for a person,
//	    patched to phase Running: discarded, the record waits for approval
//	    again and says why; the kubelet is not restarted;
//	(b) a record copying a genuine record's labels and seal, but Automatic
//	    for that RequireApproval policy: Skipped/Unsealed;
//	(c) on an Automatic policy whose rate limit holds a record back: its
//	    status forged to Running goes back to waiting RateLimited (the gates
//	    ran again), and a forged record for that node is Skipped/Unsealed;
//	(d) the genuine record on the Automatic policy restarts its kubelet
//	    exactly once.
func TestForgeryWithoutAdmission(t *testing.T) {
	began := time.Now()
	c := startCluster(t,
		harness.NodeSpec{Name: "worker-gated", Labels: map[string]string{"pool": "gated"}},
		harness.NodeSpec{Name: "worker-auto-a", Labels: map[string]string{"pool": "auto"}},
		harness.NodeSpec{Name: "worker-auto-b", Labels: map[string]string{"pool": "auto"}},
	)
	ctx := context.Background()
	switchOffAdmission(t, c)

	gated := policy("gated", map[string]string{"pool": "gated"}, v1alpha1.ModeRequireApproval, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 2*time.Second)
	gated.Spec.ApprovalTimeout = &metav1.Duration{Duration: 30 * time.Minute}
	auto := policy("auto", map[string]string{"pool": "auto"}, v1alpha1.ModeAutomatic, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 2*time.Second)
	auto.Spec.Limits.MaxPerPeriod = &v1alpha1.RatePeriod{Count: 1, Period: metav1.Duration{Duration: time.Hour}}
	for _, p := range []*v1alpha1.RemediationPolicy{gated, auto} {
		// Every node of this small cluster is broken on purpose: no storm.
		p.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromString("100%"))
		if err := c.Client.Create(ctx, p); err != nil {
			t.Fatalf("creating policy %s: %v", p.Name, err)
		}
	}
	nodes := []string{"worker-gated", "worker-auto-a", "worker-auto-b"}
	breakKubelets(t, c, nodes...)
	t.Logf("crashed the kubelets of %v", nodes)

	// The genuine records: one waits for approval; on the Automatic policy
	// one acts and the other waits for the rate limit (1 an hour).
	var waiting, done, held v1alpha1.Remediation
	eventually(t, 2*time.Minute, "the genuine records", func(ctx context.Context) (bool, error) {
		recs, err := recordsByNode(ctx, c.Client)
		if err != nil {
			return false, nil
		}
		waiting = recs["worker-gated"]
		a, b := recs["worker-auto-a"], recs["worker-auto-b"]
		if b.Status.Phase == v1alpha1.PhaseSucceeded {
			a, b = b, a
		}
		done, held = a, b
		for _, r := range []v1alpha1.Remediation{waiting, done, held} {
			if r.Status.Phase == v1alpha1.PhaseFailed || r.Status.Phase == v1alpha1.PhaseSkipped {
				t.Fatalf("record %s ended %s/%s: %s", r.Name, r.Status.Phase, r.Status.Reason, r.Status.Message)
			}
		}
		return waiting.Status.Reason == v1alpha1.ReasonWaitingForApproval &&
			done.Status.Phase == v1alpha1.PhaseSucceeded &&
			held.Status.Phase == v1alpha1.PhasePending && held.Status.Reason == v1alpha1.ReasonRateLimited &&
			strings.Contains(held.Status.Message, "maxPerPeriod 1"), nil
	})
	t.Logf("genuine: %s waits for approval; %s succeeded; %s held: %s", waiting.Name, done.Name, held.Name, held.Status.Message)
	if waiting.Annotations[policies.AnnotationSeal] == "" {
		t.Fatalf("genuine record %s carries no seal", waiting.Name)
	}
	heldNode, doneNode := held.Spec.NodeName, done.Spec.NodeName

	// (a) A forged status on the RequireApproval record.
	forgeStatus(t, c, waiting.Name, `{"status":{"phase":"Running","reason":"InProgress","message":"forged"}}`)
	forgedWaitsAgain(t, c, waiting.Name, v1alpha1.ReasonWaitingForApproval)

	// (b) A forged record: the genuine record's labels and seal, Automatic.
	forgedB := forgeRecord(t, c, &waiting, v1alpha1.ModeAutomatic)
	// (c) On the Automatic policy: the held record's status forged, and a
	// forged record for its node.
	forgeStatus(t, c, held.Name, `{"status":{"phase":"Running","reason":"InProgress","startedAt":"2026-01-01T00:00:00Z","startProof":"v1:forged"}}`)
	forgedC := forgeRecord(t, c, &held, v1alpha1.ModeAutomatic)
	forgedWaitsAgain(t, c, held.Name, v1alpha1.ReasonRateLimited)
	for _, name := range []string{forgedB, forgedC} {
		var r v1alpha1.Remediation
		eventually(t, 30*time.Second, name+" to be refused", func(ctx context.Context) (bool, error) {
			err := c.Client.Get(ctx, client.ObjectKey{Name: name}, &r)
			return err == nil && r.Status.Phase.IsTerminal(), nil
		})
		if r.Status.Phase != v1alpha1.PhaseSkipped || r.Status.Reason != v1alpha1.ReasonUnsealed || !strings.Contains(r.Status.Message, "nothing was done") {
			t.Errorf("forged record %s: %s/%s %q, want Skipped/Unsealed saying nothing was done", name, r.Status.Phase, r.Status.Reason, r.Status.Message)
		}
		t.Logf("forged record %s: %s/%s: %s", name, r.Status.Phase, r.Status.Reason, r.Status.Message)
	}

	// Nothing acted but the one genuine Automatic record, once.
	time.Sleep(3 * time.Second)
	for _, n := range nodes {
		want := 0
		if n == doneNode {
			want = 1
		}
		if got := c.Node(n).Host.Restarts(v1alpha1.UnitKubelet); got != want {
			t.Errorf("kubelet restarts on %s = %d, want %d", n, got, want)
		}
	}
	tasks := &v1alpha1.NodeTaskList{}
	if err := c.Client.List(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	if len(tasks.Items) != 1 || tasks.Items[0].Spec.Remediation != done.Name {
		var names []string
		for _, tk := range tasks.Items {
			names = append(names, tk.Name)
		}
		t.Errorf("NodeTasks %v, want only %s's", names, done.Name)
	}
	for _, name := range []string{waiting.Name, held.Name} {
		r := &v1alpha1.Remediation{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, r); err != nil {
			t.Fatal(err)
		}
		if r.Status.Phase != v1alpha1.PhasePending || r.Status.StartedAt != nil {
			t.Errorf("%s: phase %s, startedAt %v; want Pending, never started", name, r.Status.Phase, r.Status.StartedAt)
		}
	}
	t.Logf("%s stays held; wall time %s", heldNode, time.Since(began).Round(time.Second))
}

// switchOffAdmission deletes every ValidatingAdmissionPolicyBinding and
// MutatingAdmissionPolicyBinding named nodeward-*: the policies stay, but
// nothing enforces them.
func switchOffAdmission(t *testing.T, c *harness.Cluster) {
	t.Helper()
	ctx := context.Background()
	adm := c.Kube.AdmissionregistrationV1()
	vs, err := adm.ValidatingAdmissionPolicyBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, b := range vs.Items {
		if strings.HasPrefix(b.Name, "nodeward-") {
			if err := adm.ValidatingAdmissionPolicyBindings().Delete(ctx, b.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			gone = append(gone, b.Name)
		}
	}
	ms, err := adm.MutatingAdmissionPolicyBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range ms.Items {
		if strings.HasPrefix(b.Name, "nodeward-") {
			if err := adm.MutatingAdmissionPolicyBindings().Delete(ctx, b.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			gone = append(gone, b.Name)
		}
	}
	if len(gone) == 0 {
		t.Fatal("no nodeward-* admission policy bindings found to delete")
	}
	t.Logf("admission switched off: deleted bindings %v", gone)
}

// recordsByNode maps each node to its newest record.
func recordsByNode(ctx context.Context, c client.Client) (map[string]v1alpha1.Remediation, error) {
	list := &v1alpha1.RemediationList{}
	if err := c.List(ctx, list); err != nil {
		return nil, err
	}
	out := map[string]v1alpha1.Remediation{}
	for _, r := range list.Items {
		if prev, ok := out[r.Spec.NodeName]; !ok || r.CreationTimestamp.After(prev.CreationTimestamp.Time) {
			out[r.Spec.NodeName] = r
		}
	}
	return out, nil
}

// forgeStatus merge-patches a record's status subresource as the admin,
// retrying while an admission binding that was just deleted may still be
// in force.
func forgeStatus(t *testing.T, c *harness.Cluster, name, patch string) {
	t.Helper()
	var last error
	eventually(t, 30*time.Second, "the forged status write of "+name, func(ctx context.Context) (bool, error) {
		r := &v1alpha1.Remediation{ObjectMeta: metav1.ObjectMeta{Name: name}}
		last = c.Client.Status().Patch(ctx, r, client.RawPatch(types.MergePatchType, []byte(patch)))
		return last == nil, nil
	})
	t.Logf("forged the status of %s: %s", name, patch)
}

// forgedWaitsAgain waits for the executor to discard the forged status of
// name: Pending again, never started, a StatusForged condition saying why,
// and the gate's wait reason back.
func forgedWaitsAgain(t *testing.T, c *harness.Cluster, name, reason string) {
	t.Helper()
	var r v1alpha1.Remediation
	eventually(t, 30*time.Second, name+" to wait again ("+reason+")", func(ctx context.Context) (bool, error) {
		if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, &r); err != nil {
			return false, nil
		}
		if r.Status.Phase.IsTerminal() {
			t.Fatalf("%s ended %s/%s: %s", name, r.Status.Phase, r.Status.Reason, r.Status.Message)
		}
		return r.Status.Phase == v1alpha1.PhasePending && r.Status.Reason == reason &&
			meta.FindStatusCondition(r.Status.Conditions, v1alpha1.RemediationConditionStatusForged) != nil, nil
	})
	cond := meta.FindStatusCondition(r.Status.Conditions, v1alpha1.RemediationConditionStatusForged)
	if !strings.Contains(cond.Message, "phase Running") || !strings.Contains(cond.Message, "carries no valid start proof") || r.Status.StartedAt != nil {
		t.Errorf("%s: condition %q, startedAt %v", name, cond.Message, r.Status.StartedAt)
	}
	t.Logf("%s waits again (%s); StatusForged: %s", name, r.Status.Reason, cond.Message)
}

// forgeRecord creates, as the admin, a record copying genuine's labels,
// seal and decision under another name (its cause since one second later),
// with mode.
func forgeRecord(t *testing.T, c *harness.Cluster, genuine *v1alpha1.Remediation, mode v1alpha1.Mode) string {
	t.Helper()
	since := metav1.NewTime(genuine.Spec.CauseSince.Add(time.Second))
	f := &v1alpha1.Remediation{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("%s-%s-%d", genuine.Spec.NodeName, strings.ToLower(string(genuine.Spec.Cause)), since.Unix()),
			Labels:      genuine.Labels,
			Annotations: map[string]string{policies.AnnotationSeal: genuine.Annotations[policies.AnnotationSeal]},
		},
		Spec: *genuine.Spec.DeepCopy(),
	}
	f.Spec.CauseSince, f.Spec.Mode = since, mode
	eventually(t, 30*time.Second, "the forged record "+f.Name, func(ctx context.Context) (bool, error) {
		err := c.Client.Create(ctx, f.DeepCopy())
		return err == nil, nil
	})
	t.Logf("forged record %s (%s, labels and seal of %s)", f.Name, mode, genuine.Name)
	return f.Name
}
