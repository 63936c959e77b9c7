package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/cmd/kubectl-nodeward/cli"
	"github.com/nodeward/nodeward/e2e/controlplane"
	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// A RequireApproval policy: the record waits for a person; approving is its
// own permission, checked at admission on the real apiserver with real
// (static-token) authentication. A viewer can't approve, by the CLI or by a
// raw patch; an editor with update but without the verb approve can't
// either; the approver can, and the record names them and the time of the
// decision (stamped from the admission request by the operator's webhook,
// whatever the client wrote). A finished record can't be edited by anyone;
// an approval of a record whose cause has gone away ends CauseGone instead
// of acting.
func TestApproval(t *testing.T) {
	users := []controlplane.User{{Name: "viewer"}, {Name: "editor"}, {Name: "approver"}}
	c := startClusterWith(t, harness.Options{
		ControlPlane: controlplane.Options{Users: users},
		Nodes: []harness.NodeSpec{
			{Name: "worker-approve", Labels: map[string]string{"pool": "gated"}},
			{Name: "worker-healed", Labels: map[string]string{"pool": "gated"}},
			{Name: "worker-reject", Labels: map[string]string{"pool": "gated"}},
		},
	})
	ctx := context.Background()

	// editor may update remediations but was not granted approve.
	editorRole := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "test-remediation-editor"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"nodeward.io"}, Resources: []string{"remediations"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
	}}
	if err := c.Client.Create(ctx, editorRole); err != nil {
		t.Fatal(err)
	}
	for user, role := range map[string]string{"viewer": "nodeward-viewer", "editor": editorRole.Name, "approver": "nodeward-approver"} {
		bindClusterRole(t, c, user, role)
	}
	clientOf := map[string]client.Client{}
	for _, u := range users {
		cl, err := client.New(c.CP.RestConfig(u.Name), client.Options{Scheme: c.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		clientOf[u.Name] = cl
	}

	p := policy("gated", map[string]string{"pool": "gated"}, v1alpha1.ModeRequireApproval, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 5*time.Second)
	p.Spec.ApprovalTimeout = &metav1.Duration{Duration: 30 * time.Minute}
	// Every node of this small cluster is broken on purpose: no storm.
	p.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromString("100%"))
	if err := c.Client.Create(ctx, p); err != nil {
		t.Fatalf("creating policy: %v", err)
	}
	nodes := []string{"worker-approve", "worker-healed", "worker-reject"}
	breakKubelets(t, c, nodes...)
	t.Logf("crashed the kubelets of %v", nodes)

	rec := map[string]string{} // node → record name
	for _, n := range nodes {
		var r v1alpha1.Remediation
		eventually(t, 2*time.Minute, n+"'s record to wait for approval", func(ctx context.Context) (bool, error) {
			recs, err := remediationsFor(ctx, c.Client, n)
			if err != nil || len(recs) == 0 {
				return false, nil
			}
			r = recs[0]
			if r.Status.Phase.IsTerminal() {
				t.Fatalf("record %s of %s ended %s/%s without a decision: %s", r.Name, n, r.Status.Phase, r.Status.Reason, r.Status.Message)
			}
			return r.Status.Phase == v1alpha1.PhasePending && r.Status.Reason == v1alpha1.ReasonWaitingForApproval, nil
		})
		rec[n] = r.Name
		t.Logf("%s waits: %s", r.Name, r.Status.Message)
		if len(r.Status.Steps) == 0 || r.Status.Steps[0].Name != v1alpha1.StepRestartUnit || !strings.Contains(r.Status.Message, "kubectl nodeward approve "+r.Name) {
			t.Errorf("record %s should show the plan and how to approve it: steps %v, message %q", r.Name, r.Status.Steps, r.Status.Message)
		}
	}
	time.Sleep(2 * time.Second) // nothing may happen while waiting
	if got := c.Node("worker-approve").Host.Restarts(v1alpha1.UnitKubelet); got != 0 {
		t.Fatalf("the kubelet of worker-approve was restarted %d times before anyone approved", got)
	}
	eventually(t, 30*time.Second, "an ApprovalRequired event", func(ctx context.Context) (bool, error) {
		evs := &eventsv1.EventList{}
		if err := c.Client.List(ctx, evs); err != nil {
			return false, nil
		}
		for _, e := range evs.Items {
			if e.Reason == "ApprovalRequired" && e.Regarding.Name == rec["worker-approve"] {
				return true, nil
			}
		}
		return false, nil
	})

	// Clients claim to decide in 2000; the webhook stamps its own time.
	clientTime := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	decide := func(user, name string, d v1alpha1.Decision, reason string) (string, error) {
		var out bytes.Buffer
		o := &cli.DecideOptions{Env: &cli.Env{Client: clientOf[user], Out: &out, Clock: clocktesting.NewFakeClock(clientTime)}, Decision: d, Reason: reason}
		if err := o.Validate([]string{name}); err != nil {
			return "", err
		}
		err := o.Run(ctx)
		return out.String(), err
	}
	rawDecision := func(user, name string, d v1alpha1.Decision, decidedBy string) error {
		patch, _ := json.Marshal(map[string]any{"approval": map[string]any{
			"decision": d, "reason": "raw patch", "decidedBy": decidedBy, "decidedAt": clientTime.Format(time.RFC3339),
		}})
		rem := &v1alpha1.Remediation{}
		rem.Name = name
		return clientOf[user].Patch(ctx, rem, client.RawPatch(types.MergePatchType, patch))
	}

	// Who may decide.
	target := rec["worker-approve"]
	if _, err := decide("approver", target, v1alpha1.DecisionApproved, "  "); err == nil {
		t.Errorf("approve with a blank reason was accepted")
	}
	if _, err := decide("viewer", target, v1alpha1.DecisionApproved, "looks right"); err == nil || !apierrors.IsForbidden(err) {
		t.Errorf("the viewer approved by the CLI: err = %v, want Forbidden", err)
	} else {
		t.Logf("viewer by the CLI: %v", err)
	}
	if err := rawDecision("viewer", target, v1alpha1.DecisionApproved, "viewer"); !apierrors.IsForbidden(err) {
		t.Errorf("the viewer's raw patch of approval: err = %v, want Forbidden", err)
	}
	if _, err := decide("editor", target, v1alpha1.DecisionApproved, "looks right"); err == nil || !strings.Contains(err.Error(), "verb approve") {
		t.Errorf("the editor (update, no approve) approved by the CLI: err = %v, want refused naming the verb approve", err)
	} else {
		t.Logf("editor by the CLI: %v", err)
	}
	if err := rawDecision("editor", target, v1alpha1.DecisionApproved, "editor"); err == nil || !strings.Contains(err.Error(), "verb approve") {
		t.Errorf("the editor's raw patch of approval: err = %v, want refused naming the verb approve", err)
	}
	r := &v1alpha1.Remediation{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: target}, r); err != nil || r.Approval != nil {
		t.Fatalf("after the refused attempts approval = %+v (%v), want none", r.Approval, err)
	}

	// The approver decides; admission names who and when, whatever the
	// client wrote. decidedAt is stored to the second.
	decidedFrom := time.Now().Truncate(time.Second)
	if err := rawDecision("approver", rec["worker-reject"], v1alpha1.DecisionRejected, "somebody-else"); err != nil {
		t.Fatalf("the approver's raw patch: %v", err)
	}
	out, err := decide("approver", target, v1alpha1.DecisionApproved, "kubelet crashed, restart it")
	if err != nil {
		t.Fatalf("the approver could not approve: %v", err)
	}
	decidedTo := time.Now()
	t.Logf("approver: %s", strings.TrimSpace(out))
	stampedNow := func(a *v1alpha1.Approval) bool {
		return a != nil && !a.DecidedAt.Time.Before(decidedFrom) && !a.DecidedAt.Time.After(decidedTo)
	}
	if _, err := decide("approver", target, v1alpha1.DecisionRejected, "changed my mind"); err == nil || !strings.Contains(err.Error(), "already approved") {
		t.Errorf("deciding twice: err = %v, want already approved", err)
	}
	var done v1alpha1.Remediation
	eventually(t, 2*time.Minute, target+" to succeed", func(ctx context.Context) (bool, error) {
		if err := c.Client.Get(ctx, client.ObjectKey{Name: target}, &done); err != nil {
			return false, nil
		}
		if done.Status.Phase == v1alpha1.PhaseFailed || done.Status.Phase == v1alpha1.PhaseSkipped {
			t.Fatalf("%s ended %s/%s: %s", target, done.Status.Phase, done.Status.Reason, done.Status.Message)
		}
		return done.Status.Phase == v1alpha1.PhaseSucceeded, nil
	})
	if a := done.Approval; a == nil || a.DecidedBy != "approver" || a.Decision != v1alpha1.DecisionApproved || a.Reason != "kubelet crashed, restart it" {
		t.Errorf("approval = %+v, want Approved by approver with the reason", done.Approval)
	}
	if !stampedNow(done.Approval) {
		t.Errorf("approval by the CLI with its clock at %s: decidedAt = %+v, want stamped between %s and %s", clientTime, done.Approval, decidedFrom, decidedTo)
	}
	if got := c.Node("worker-approve").Host.Restarts(v1alpha1.UnitKubelet); got != 1 {
		t.Errorf("kubelet restarts on worker-approve = %d, want 1", got)
	}

	var rejected v1alpha1.Remediation
	eventually(t, time.Minute, "the rejected record to end", func(ctx context.Context) (bool, error) {
		err := c.Client.Get(ctx, client.ObjectKey{Name: rec["worker-reject"]}, &rejected)
		return err == nil && rejected.Status.Phase.IsTerminal(), nil
	})
	if a := rejected.Approval; a == nil || a.DecidedBy != "approver" || !stampedNow(a) {
		t.Errorf("raw-patched approval = %+v, want decidedBy stamped approver (not somebody-else) and decidedAt between %s and %s (not %s)",
			rejected.Approval, decidedFrom, decidedTo, clientTime)
	}
	if rejected.Status.Phase != v1alpha1.PhaseSkipped || rejected.Status.Reason != v1alpha1.ReasonRejected || !strings.Contains(rejected.Status.Message, "rejected by approver") {
		t.Errorf("rejected record: %s/%s (%s), want Skipped/Rejected naming approver", rejected.Status.Phase, rejected.Status.Reason, rejected.Status.Message)
	}
	if got := c.Node("worker-reject").Host.Restarts(v1alpha1.UnitKubelet); got != 0 {
		t.Errorf("kubelet restarts on worker-reject = %d, want 0", got)
	}

	// A finished record is history. (admin is in system:masters, whose verb
	// "*" includes operate: nodeward-operator-only lets it through like the
	// operator, and nodeward-remediation-terminal is what refuses.)
	for who, edit := range map[string]func() error{
		"admin label": func() error {
			return c.Client.Patch(ctx, &done, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`)))
		},
		"admin status": func() error {
			return c.Client.Status().Patch(ctx, &done, client.RawPatch(types.MergePatchType, []byte(`{"status":{"reason":"Edited"}}`)))
		},
		"approver approval": func() error {
			return clientOf["approver"].Patch(ctx, &done, client.RawPatch(types.MergePatchType, []byte(`{"approval":{"reason":"rewritten"}}`)))
		},
	} {
		if err := edit(); err == nil {
			t.Errorf("%s edit of the finished record %s was accepted", who, done.Name)
		} else {
			t.Logf("%s edit refused: %v", who, err)
		}
	}

	// Approving after the cause went away: nothing is done.
	healed := rec["worker-healed"]
	if _, err := sim.Inject(ctx, c.Node("worker-healed"), "heal"); err != nil {
		t.Fatal(err)
	}
	restartsBefore := c.Node("worker-healed").Host.Restarts(v1alpha1.UnitKubelet)
	eventually(t, 2*time.Minute, "KubeletDown on worker-healed to go away", func(ctx context.Context) (bool, error) {
		d := &v1alpha1.NodeDiagnosis{}
		err := c.Client.Get(ctx, client.ObjectKey{Name: "worker-healed"}, d)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		_, present := d.Status.Cause(v1alpha1.CauseKubeletDown)
		return err == nil && !present, nil
	})
	if _, err := decide("approver", healed, v1alpha1.DecisionApproved, "restart it"); err != nil {
		t.Fatalf("approving %s: %v", healed, err)
	}
	var gone v1alpha1.Remediation
	eventually(t, time.Minute, healed+" to end", func(ctx context.Context) (bool, error) {
		err := c.Client.Get(ctx, client.ObjectKey{Name: healed}, &gone)
		return err == nil && gone.Status.Phase.IsTerminal(), nil
	})
	if gone.Status.Phase != v1alpha1.PhaseSkipped || gone.Status.Reason != v1alpha1.ReasonCauseGone {
		t.Errorf("approved after the cause went away: %s/%s (%s), want Skipped/CauseGone", gone.Status.Phase, gone.Status.Reason, gone.Status.Message)
	}
	if got := c.Node("worker-healed").Host.Restarts(v1alpha1.UnitKubelet); got != restartsBefore {
		t.Errorf("worker-healed's kubelet was restarted after the cause went away (%d → %d)", restartsBefore, got)
	}
	tasks := &v1alpha1.NodeTaskList{}
	if err := c.Client.List(ctx, tasks, client.MatchingLabels{v1alpha1.LabelNode: "worker-healed"}); err != nil || len(tasks.Items) != 0 {
		t.Errorf("node tasks for worker-healed: %d (%v), want none", len(tasks.Items), err)
	}
}
