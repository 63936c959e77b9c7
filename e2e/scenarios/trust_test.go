package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/cmd/kubectl-nodeward/cli"
	"github.com/nodeward/nodeward/e2e/controlplane"
	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// trustRole is a role a person (or a compromised tool) might hold.
type trustRole struct {
	name string
	// clusterRole is a shipped ClusterRole to bind; else rules.
	clusterRole string
	rules       []rbacv1.PolicyRule
}

// readAll is what every test role may read, so that each refusal below is
// about the write.
var readAll = rbacv1.PolicyRule{APIGroups: []string{"nodeward.io"}, Verbs: []string{"get", "list", "watch"},
	Resources: []string{"remediations", "remediationpolicies", "nodediagnoses", "clusterdiagnoses", "nodereports", "nodetasks"}}

var trustRoles = []trustRole{
	{name: "viewer", clusterRole: "nodeward-viewer"},
	{name: "editor", rules: []rbacv1.PolicyRule{readAll,
		{APIGroups: []string{"nodeward.io"}, Resources: []string{"remediations"}, Verbs: []string{"update", "patch"}}}},
	{name: "status-writer", rules: []rbacv1.PolicyRule{readAll,
		{APIGroups: []string{"nodeward.io"}, Resources: []string{"remediations/status"}, Verbs: []string{"update", "patch"}}}},
	{name: "creator", rules: []rbacv1.PolicyRule{readAll,
		{APIGroups: []string{"nodeward.io"}, Resources: []string{"remediations"}, Verbs: []string{"create", "delete", "deletecollection"}}}},
	// Every verb RBAC has on every record, task, diagnosis and report but
	// approve (and operate): only admission stands in its way.
	{name: "all-but-approve", rules: []rbacv1.PolicyRule{{APIGroups: []string{"nodeward.io"},
		Resources: []string{"remediations", "remediations/status", "nodetasks", "nodetasks/status", "nodediagnoses", "nodediagnoses/status",
			"clusterdiagnoses", "clusterdiagnoses/status", "nodereports", "nodereports/status"},
		Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}}}},
}

// trustPath is one way to start or change an action. It returns the error
// of every write it tried; each must be a refusal.
type trustPath struct {
	name string
	do   func(ctx context.Context, e *trustEnv, user string, cl client.Client) []error
}

type trustEnv struct {
	admin   client.Client
	node    string
	genuine *v1alpha1.Remediation // as it was before the matrix
}

// current reads the genuine record as it is now.
func (e *trustEnv) current(ctx context.Context) (*v1alpha1.Remediation, error) {
	r := &v1alpha1.Remediation{}
	return r, e.admin.Get(ctx, client.ObjectKey{Name: e.genuine.Name}, r)
}

func (e *trustEnv) approvalJSON(user string) map[string]any {
	return map[string]any{"decision": v1alpha1.DecisionApproved, "reason": "trust me", "decidedBy": user, "decidedAt": time.Now().UTC().Format(time.RFC3339)}
}

// forgedCopy is a new record that copies the genuine one's labels and spec,
// with mode Automatic: the policy it names requires approval.
func (e *trustEnv) forgedCopy(name string) *v1alpha1.Remediation {
	f := &v1alpha1.Remediation{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: e.genuine.Labels}, Spec: *e.genuine.Spec.DeepCopy()}
	f.Spec.Mode = v1alpha1.ModeAutomatic
	return f
}

func one(err error) []error { return []error{err} }

func rawPatch(ctx context.Context, cl client.Client, obj client.Object, pt types.PatchType, body any, opts ...client.PatchOption) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return cl.Patch(ctx, obj, client.RawPatch(pt, data), opts...)
}

func rawStatusPatch(ctx context.Context, cl client.Client, obj client.Object, pt types.PatchType, body any, opts ...client.SubResourcePatchOption) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return cl.Status().Patch(ctx, obj, client.RawPatch(pt, data), opts...)
}

func decideByCLI(ctx context.Context, cl client.Client, name string, d v1alpha1.Decision) error {
	var out bytes.Buffer
	o := &cli.DecideOptions{Env: &cli.Env{Client: cl, Out: &out, Clock: clock.RealClock{}}, Decision: d, Reason: "trust me"}
	if err := o.Validate([]string{name}); err != nil {
		return err
	}
	return o.Run(ctx)
}

var trustPaths = []trustPath{
	{"cli approve", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		return one(decideByCLI(ctx, cl, e.genuine.Name, v1alpha1.DecisionApproved))
	}},
	{"cli reject", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		return one(decideByCLI(ctx, cl, e.genuine.Name, v1alpha1.DecisionRejected))
	}},
	{"merge patch approval", func(ctx context.Context, e *trustEnv, user string, cl client.Client) []error {
		return one(rawPatch(ctx, cl, e.genuine.DeepCopy(), types.MergePatchType, map[string]any{"approval": e.approvalJSON(user)}))
	}},
	{"merge patch drops the policy label", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		return one(rawPatch(ctx, cl, e.genuine.DeepCopy(), types.MergePatchType, map[string]any{"metadata": map[string]any{"labels": map[string]any{v1alpha1.LabelPolicy: nil}}}))
	}},
	{"merge patch adds a finalizer", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		return one(rawPatch(ctx, cl, e.genuine.DeepCopy(), types.MergePatchType, map[string]any{"metadata": map[string]any{"finalizers": []string{"example.com/keep"}}}))
	}},
	{"json patch approval", func(ctx context.Context, e *trustEnv, user string, cl client.Client) []error {
		return one(rawPatch(ctx, cl, e.genuine.DeepCopy(), types.JSONPatchType, []map[string]any{{"op": "add", "path": "/approval", "value": e.approvalJSON(user)}}))
	}},
	{"json patch spec.mode Automatic", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		return one(rawPatch(ctx, cl, e.genuine.DeepCopy(), types.JSONPatchType, []map[string]any{{"op": "replace", "path": "/spec/mode", "value": v1alpha1.ModeAutomatic}}))
	}},
	{"server-side apply approval", func(ctx context.Context, e *trustEnv, user string, cl client.Client) []error {
		return one(rawPatch(ctx, cl, e.genuine.DeepCopy(), types.ApplyPatchType, map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Remediation", "metadata": map[string]any{"name": e.genuine.Name},
			"approval": e.approvalJSON(user)}, client.FieldOwner(user), client.ForceOwnership))
	}},
	{"server-side apply labels", func(ctx context.Context, e *trustEnv, user string, cl client.Client) []error {
		return one(rawPatch(ctx, cl, e.genuine.DeepCopy(), types.ApplyPatchType, map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Remediation", "metadata": map[string]any{"name": e.genuine.Name,
				"labels": map[string]string{v1alpha1.LabelPolicy: "elsewhere"}}}, client.FieldOwner(user), client.ForceOwnership))
	}},
	{"update (PUT) approval", func(ctx context.Context, e *trustEnv, user string, cl client.Client) []error {
		r, err := e.current(ctx)
		if err != nil {
			return one(fmt.Errorf("reading the record: %w", err))
		}
		r.Approval = &v1alpha1.Approval{Decision: v1alpha1.DecisionApproved, Reason: "trust me", DecidedBy: user, DecidedAt: metav1.Now()}
		return one(cl.Update(ctx, r))
	}},
	{"update (PUT) labels", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		r, err := e.current(ctx)
		if err != nil {
			return one(fmt.Errorf("reading the record: %w", err))
		}
		delete(r.Labels, v1alpha1.LabelPolicy)
		return one(cl.Update(ctx, r))
	}},
	{"status merge patch phase Running", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		return one(rawStatusPatch(ctx, cl, e.genuine.DeepCopy(), types.MergePatchType, map[string]any{"status": map[string]any{"phase": v1alpha1.PhaseRunning, "reason": "Forged"}}))
	}},
	{"status json patch phase Running", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		return one(rawStatusPatch(ctx, cl, e.genuine.DeepCopy(), types.JSONPatchType, []map[string]any{{"op": "replace", "path": "/status/phase", "value": v1alpha1.PhaseRunning}}))
	}},
	{"status update phase Running", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		r, err := e.current(ctx)
		if err != nil {
			return one(fmt.Errorf("reading the record: %w", err))
		}
		r.Status.Phase, r.Status.Reason = v1alpha1.PhaseRunning, "Forged"
		return one(cl.Status().Update(ctx, r))
	}},
	{"status server-side apply phase Running", func(ctx context.Context, e *trustEnv, user string, cl client.Client) []error {
		return one(rawStatusPatch(ctx, cl, e.genuine.DeepCopy(), types.ApplyPatchType, map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Remediation", "metadata": map[string]any{"name": e.genuine.Name},
			"status": map[string]any{"phase": v1alpha1.PhaseRunning}}, client.FieldOwner(user), client.ForceOwnership))
	}},
	{"create a copy of the genuine record", func(ctx context.Context, e *trustEnv, user string, cl client.Client) []error {
		f := e.forgedCopy(e.genuine.Name + "-copy-" + user)
		f.Spec.Mode = e.genuine.Spec.Mode
		return one(cl.Create(ctx, f))
	}},
	{"create a copy with mode Automatic", func(ctx context.Context, e *trustEnv, user string, cl client.Client) []error {
		return one(cl.Create(ctx, e.forgedCopy(e.genuine.Name+"-auto-"+user)))
	}},
	{"delete and recreate Automatic", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		del := cl.Delete(ctx, e.genuine.DeepCopy())
		return []error{del, cl.Create(ctx, e.forgedCopy(e.genuine.Name))}
	}},
	{"delete collection", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		return one(cl.DeleteAllOf(ctx, &v1alpha1.Remediation{}, client.MatchingLabels{v1alpha1.LabelNode: e.node}))
	}},
	{"create a NodeTask for the node", func(ctx context.Context, e *trustEnv, user string, cl client.Client) []error {
		task := &v1alpha1.NodeTask{
			ObjectMeta: metav1.ObjectMeta{Name: e.genuine.Name, Labels: map[string]string{v1alpha1.LabelNode: e.node, v1alpha1.LabelRemediation: e.genuine.Name}},
			Spec:       v1alpha1.NodeTaskSpec{NodeName: e.node, Action: v1alpha1.NodeActionRestartUnit, Unit: v1alpha1.UnitKubelet, Remediation: e.genuine.Name},
		}
		return one(cl.Create(ctx, task))
	}},
	{"forge the NodeDiagnosis status", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		d := &v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: e.node}}
		return one(rawStatusPatch(ctx, cl, d, types.MergePatchType, map[string]any{"status": map[string]any{"summary": "forged"}}))
	}},
	{"delete the NodeDiagnosis", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		return one(cl.Delete(ctx, &v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: e.node}}))
	}},
	{"forge the NodeReport status", func(ctx context.Context, e *trustEnv, _ string, cl client.Client) []error {
		rep := &v1alpha1.NodeReport{ObjectMeta: metav1.ObjectMeta{Name: e.node}}
		return one(rawStatusPatch(ctx, cl, rep, types.MergePatchType, map[string]any{"status": map[string]any{"agentVersion": "forged"}}))
	}},
}

// refusedBy says who refused a write: RBAC, an admission policy (by name),
// or schema validation.
func refusedBy(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "ValidatingAdmissionPolicy '"):
		rest := msg[strings.Index(msg, "ValidatingAdmissionPolicy '")+len("ValidatingAdmissionPolicy '"):]
		return "admission " + rest[:strings.Index(rest, "'")]
	case apierrors.IsForbidden(err) && strings.Contains(msg, " cannot "):
		return "RBAC"
	case apierrors.IsInvalid(err):
		return "schema"
	}
	return "other"
}

// Trust boundaries, on one cluster: a RequireApproval record waits for a
// person; roles with partial rights — viewer, editor (update/patch on
// remediations), status-writer (update/patch on remediations/status),
// creator (create/delete), all-but-approve (every verb on records, their
// status, tasks, diagnoses and reports, but not approve) — try every path
// that could start or change an action: the CLI, merge and JSON patches,
// server-side apply, PUT, the status subresource, creating a copy of the
// record (also Automatic), delete and recreate, a NodeTask, a forged
// diagnosis or report. Every one is refused, and nothing acted: the record
// still waits, no task, no restart. Then the approver approves and it runs
// once. The shipped people roles can't become the operator
// (SubjectAccessReview), and the garbage collector may do its work and no
// more.
func TestTrustBoundaries(t *testing.T) {
	started := time.Now()
	var users []controlplane.User
	for _, r := range trustRoles {
		users = append(users, controlplane.User{Name: r.name})
	}
	users = append(users, controlplane.User{Name: "approver"})
	const node = "worker-trust"
	c := startClusterWith(t, harness.Options{
		ControlPlane: controlplane.Options{Users: users},
		Nodes:        []harness.NodeSpec{{Name: node, Labels: map[string]string{"pool": "trust"}}},
	})
	ctx := context.Background()
	t.Logf("cluster up in %s", time.Since(started).Round(100*time.Millisecond))

	clientOf := map[string]client.Client{}
	for _, r := range trustRoles {
		role := r.clusterRole
		if role == "" {
			role = "test-" + r.name
			if err := c.Client.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: r.rules}); err != nil {
				t.Fatal(err)
			}
		}
		bindClusterRole(t, c, r.name, role)
	}
	bindClusterRole(t, c, "approver", "nodeward-approver")
	for _, u := range users {
		cfg := c.CP.RestConfig(u.Name)
		cfg.QPS, cfg.Burst = 100, 200 // client-go's default 5/s would make the matrix wait on itself
		cl, err := client.New(cfg, client.Options{Scheme: c.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		clientOf[u.Name] = cl
	}

	p := policy("trust-gated", map[string]string{"pool": "trust"}, v1alpha1.ModeRequireApproval, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, 5*time.Second)
	p.Spec.ApprovalTimeout = &metav1.Duration{Duration: 30 * time.Minute}
	p.Spec.StormBreaker.MaxUnhealthy = ptr.To(intstr.FromString("100%")) // the only node is broken on purpose
	if err := c.Client.Create(ctx, p); err != nil {
		t.Fatalf("creating policy: %v", err)
	}
	waitReport(t, c, node, func(r *v1alpha1.NodeReport) bool { return len(r.Status.Units) > 0 })
	if _, err := sim.Inject(ctx, c.Node(node), "kubelet-crash"); err != nil {
		t.Fatal(err)
	}
	e := &trustEnv{admin: c.Client, node: node}
	eventually(t, 2*time.Minute, "the record to wait for approval", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, node)
		if err != nil || len(recs) == 0 {
			return false, nil
		}
		if recs[0].Status.Phase.IsTerminal() {
			t.Fatalf("record %s ended %s/%s without a decision", recs[0].Name, recs[0].Status.Phase, recs[0].Status.Reason)
		}
		e.genuine = recs[0].DeepCopy()
		return recs[0].Status.Phase == v1alpha1.PhasePending && recs[0].Status.Reason == v1alpha1.ReasonWaitingForApproval, nil
	})
	t.Logf("%s waits for approval (%s after start)", e.genuine.Name, time.Since(started).Round(100*time.Millisecond))

	matrixStart := time.Now()
	table := map[string]map[string]string{} // role → path → who refused
	for _, r := range trustRoles {
		table[r.name] = map[string]string{}
		t.Run(r.name, func(t *testing.T) {
			for _, p := range trustPaths {
				t.Run(strings.ReplaceAll(p.name, " ", "_"), func(t *testing.T) {
					var by []string
					errs := p.do(ctx, e, r.name, clientOf[r.name])
					// A status patch of the operator's between a read and a
					// PUT is a conflict, not a refusal: try again.
					for try := 0; try < 3 && slices.ContainsFunc(errs, apierrors.IsConflict); try++ {
						errs = p.do(ctx, e, r.name, clientOf[r.name])
					}
					for i, err := range errs {
						if err == nil {
							t.Errorf("%s: write %d of %q was accepted", r.name, i+1, p.name)
							by = append(by, "ACCEPTED")
							continue
						}
						who := refusedBy(err)
						if who == "other" {
							t.Errorf("%s: %q failed but not as a refusal: %v", r.name, p.name, err)
						}
						// all-but-approve has every RBAC verb but approve:
						// admission (or the schema) must be what refuses.
						if r.name == "all-but-approve" && who == "RBAC" {
							t.Errorf("%s: %q refused by RBAC, want admission: %v", r.name, p.name, err)
						}
						by = append(by, who)
						t.Logf("refused (%s): %v", who, err)
					}
					table[r.name][p.name] = strings.ReplaceAll(strings.Join(by, ", "), "admission nodeward-", "")
				})
			}
		})
	}
	matrix := time.Since(matrixStart)
	logTrustTable(t, table)
	t.Logf("matrix of %d roles × %d paths in %s", len(trustRoles), len(trustPaths), matrix.Round(10*time.Millisecond))

	// Nothing acted: give the executor time to act on a forgery.
	time.Sleep(3 * time.Second)
	t.Run("nothing acted", func(t *testing.T) {
		r, err := e.current(ctx)
		if err != nil {
			t.Fatalf("the genuine record: %v", err)
		}
		if r.UID != e.genuine.UID || r.DeletionTimestamp != nil {
			t.Errorf("the genuine record was deleted or replaced (uid %s → %s, deleting %v)", e.genuine.UID, r.UID, r.DeletionTimestamp)
		}
		if r.Status.Phase != v1alpha1.PhasePending || r.Status.Reason != v1alpha1.ReasonWaitingForApproval || r.Approval != nil {
			t.Errorf("the genuine record is %s/%s with approval %+v, want Pending/WaitingForApproval undecided", r.Status.Phase, r.Status.Reason, r.Approval)
		}
		if fmt.Sprint(r.Labels) != fmt.Sprint(e.genuine.Labels) || len(r.Finalizers) != 0 || r.Spec.Mode != v1alpha1.ModeRequireApproval {
			t.Errorf("the genuine record changed: labels %v (were %v), finalizers %v, mode %s", r.Labels, e.genuine.Labels, r.Finalizers, r.Spec.Mode)
		}
		all := &v1alpha1.RemediationList{}
		if err := c.Client.List(ctx, all); err != nil || len(all.Items) != 1 {
			t.Errorf("records: %d (%v), want only the genuine one", len(all.Items), err)
		}
		tasks := &v1alpha1.NodeTaskList{}
		if err := c.Client.List(ctx, tasks); err != nil || len(tasks.Items) != 0 {
			t.Errorf("node tasks: %d (%v), want none", len(tasks.Items), err)
		}
		d := &v1alpha1.NodeDiagnosis{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: node}, d); err != nil || d.Status.Summary == "forged" {
			t.Errorf("the node's diagnosis: %v, summary %q", err, d.Status.Summary)
		}
		if got := c.Node(node).Host.Restarts(v1alpha1.UnitKubelet); got != 0 {
			t.Errorf("kubelet restarts = %d, want 0", got)
		}
	})

	t.Run("people roles can't become the operator", func(t *testing.T) {
		peopleRolesSAR(ctx, t, c)
	})

	// The approval path still works, and the action runs once.
	if err := decideByCLI(ctx, clientOf["approver"], e.genuine.Name, v1alpha1.DecisionApproved); err != nil {
		t.Fatalf("the approver could not approve: %v", err)
	}
	var done v1alpha1.Remediation
	eventually(t, 2*time.Minute, e.genuine.Name+" to succeed", func(ctx context.Context) (bool, error) {
		if err := c.Client.Get(ctx, client.ObjectKey{Name: e.genuine.Name}, &done); err != nil {
			return false, nil
		}
		if done.Status.Phase == v1alpha1.PhaseFailed || done.Status.Phase == v1alpha1.PhaseSkipped {
			t.Fatalf("%s ended %s/%s: %s", done.Name, done.Status.Phase, done.Status.Reason, done.Status.Message)
		}
		return done.Status.Phase == v1alpha1.PhaseSucceeded, nil
	})
	if got := c.Node(node).Host.Restarts(v1alpha1.UnitKubelet); got != 1 {
		t.Errorf("kubelet restarts after the approval = %d, want 1", got)
	}
	if done.Approval == nil || done.Approval.DecidedBy != "approver" {
		t.Errorf("approval = %+v, want by approver", done.Approval)
	}

	t.Run("garbage collector", func(t *testing.T) {
		garbageCollectorMayCollect(ctx, t, c, done.Name)
	})
	t.Logf("wall time %s (cluster start to end; matrix %s)", time.Since(started).Round(100*time.Millisecond), matrix.Round(10*time.Millisecond))
}

func logTrustTable(t *testing.T, table map[string]map[string]string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s", "path \\ role")
	for _, r := range trustRoles {
		fmt.Fprintf(&b, " | %-20s", r.name)
	}
	b.WriteString("\n")
	for _, p := range trustPaths {
		fmt.Fprintf(&b, "%-40s", p.name)
		for _, r := range trustRoles {
			fmt.Fprintf(&b, " | %-20s", table[r.name][p.name])
		}
		b.WriteString("\n")
	}
	t.Logf("who refused what:\n%s", b.String())
}

// peopleRolesSAR asks the apiserver, for a user bound to each shipped
// people role, whether it may do what would make it the operator or the
// agent, or let it forge records: none may.
func peopleRolesSAR(ctx context.Context, t *testing.T, c *harness.Cluster) {
	roles := []string{"nodeward-viewer", "nodeward-approver", "nodeward-policy-author"}
	for _, role := range roles {
		b := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "sar-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "sar-" + role}},
		}
		if err := c.Client.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	type attr = authorizationv1.ResourceAttributes
	var denied []attr
	for _, ns := range []string{harness.Namespace, "default", ""} {
		denied = append(denied,
			attr{Namespace: ns, Verb: "create", Resource: "pods"},
			attr{Namespace: ns, Verb: "create", Resource: "pods", Subresource: "exec"},
			attr{Namespace: ns, Verb: "create", Resource: "pods", Subresource: "attach"},
			attr{Namespace: ns, Verb: "create", Resource: "deployments", Group: "apps"},
			attr{Namespace: ns, Verb: "create", Resource: "daemonsets", Group: "apps"},
			attr{Namespace: ns, Verb: "create", Resource: "jobs", Group: "batch"},
			attr{Namespace: ns, Verb: "create", Resource: "serviceaccounts", Subresource: "token", Name: "nodeward-operator"},
			attr{Namespace: ns, Verb: "create", Resource: "serviceaccounts", Subresource: "token", Name: "nodeward-agent"},
			attr{Namespace: ns, Verb: "create", Resource: "serviceaccounts"},
			attr{Namespace: ns, Verb: "get", Resource: "secrets"},
			attr{Namespace: ns, Verb: "list", Resource: "secrets"},
			attr{Namespace: ns, Verb: "create", Resource: "secrets"},
			attr{Namespace: ns, Verb: "update", Resource: "secrets"},
			attr{Namespace: ns, Verb: "create", Resource: "rolebindings", Group: "rbac.authorization.k8s.io"},
		)
	}
	denied = append(denied,
		attr{Verb: "impersonate", Resource: "serviceaccounts", Namespace: harness.Namespace, Name: "nodeward-operator"},
		attr{Verb: "impersonate", Resource: "users"},
		attr{Verb: "impersonate", Resource: "userextras", Subresource: "authentication.kubernetes.io/node-name", Group: "authentication.k8s.io"},
		attr{Verb: "create", Resource: "clusterrolebindings", Group: "rbac.authorization.k8s.io"},
		attr{Verb: "bind", Resource: "clusterroles", Group: "rbac.authorization.k8s.io", Name: "nodeward-operator"},
		attr{Verb: "escalate", Resource: "clusterroles", Group: "rbac.authorization.k8s.io"},
		attr{Verb: "create", Resource: "certificatesigningrequests", Group: "certificates.k8s.io"},
		attr{Verb: "update", Resource: "mutatingwebhookconfigurations", Group: "admissionregistration.k8s.io"},
		attr{Verb: "delete", Resource: "validatingadmissionpolicybindings", Group: "admissionregistration.k8s.io"},
		attr{Verb: "operate", Resource: "remediations", Group: "nodeward.io"},
		attr{Verb: "create", Resource: "remediations", Group: "nodeward.io"},
		attr{Verb: "delete", Resource: "remediations", Group: "nodeward.io"},
		attr{Verb: "deletecollection", Resource: "remediations", Group: "nodeward.io"},
		attr{Verb: "update", Resource: "remediations", Subresource: "status", Group: "nodeward.io"},
		attr{Verb: "patch", Resource: "remediations", Subresource: "status", Group: "nodeward.io"},
		attr{Verb: "patch", Resource: "remediationpolicies", Subresource: "status", Group: "nodeward.io"},
	)
	for _, res := range []string{"nodetasks", "nodediagnoses", "clusterdiagnoses", "nodereports"} {
		for _, sub := range []string{"", "status"} {
			for _, verb := range []string{"create", "update", "patch", "delete"} {
				denied = append(denied, attr{Verb: verb, Resource: res, Subresource: sub, Group: "nodeward.io"})
			}
		}
	}
	allowed := map[string][]attr{
		"nodeward-viewer":        {{Verb: "list", Resource: "remediations", Group: "nodeward.io"}, {Verb: "get", Resource: "nodediagnoses", Group: "nodeward.io"}},
		"nodeward-approver":      {{Verb: "approve", Resource: "remediations", Group: "nodeward.io"}, {Verb: "patch", Resource: "remediations", Group: "nodeward.io"}},
		"nodeward-policy-author": {{Verb: "create", Resource: "remediationpolicies", Group: "nodeward.io"}, {Verb: "delete", Resource: "remediationpolicies", Group: "nodeward.io"}},
	}
	cfg := c.CP.RestConfig("admin")
	cfg.QPS, cfg.Burst = 100, 200 // about 280 reviews
	admin, err := client.New(cfg, client.Options{Scheme: c.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	sar := func(user string, a attr, groups ...string) bool {
		t.Helper()
		r := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &a}}
		if err := admin.Create(ctx, r); err != nil {
			t.Fatalf("SubjectAccessReview %s %+v: %v", user, a, err)
		}
		return r.Status.Allowed
	}
	for _, role := range roles {
		user := "sar-" + role
		for _, a := range denied {
			if sar(user, a) {
				t.Errorf("%s may %s %s/%s (namespace %q, name %q): a people role must not", role, a.Verb, a.Resource, a.Subresource, a.Namespace, a.Name)
			}
		}
		for _, a := range allowed[role] {
			if !sar(user, a) {
				t.Errorf("%s may not %s %s: the role should grant it", role, a.Verb, a.Resource)
			}
		}
		t.Logf("%s: %d SubjectAccessReviews denied, %d allowed as it should", role, len(denied), len(allowed[role]))
	}
	// The operator holds the admission identity; the agent does not.
	op := attr{Verb: "operate", Resource: "remediations", Group: "nodeward.io"}
	if !sar("system:serviceaccount:"+harness.Namespace+":nodeward-operator", op) {
		t.Errorf("the operator's service account lacks the verb operate")
	}
	if sar("system:serviceaccount:"+harness.Namespace+":nodeward-agent", op) {
		t.Errorf("the agent's service account has the verb operate")
	}
	// A cluster admin's verb "*" includes operate: the e2e tests' admin
	// writes records and status like the operator.
	if !sar("admin", op, "system:masters") {
		t.Errorf("system:masters lacks the verb operate")
	}
}

// garbageCollectorMayCollect impersonates Kubernetes' garbage collector
// (as kube-controller-manager --use-service-account-credentials runs it):
// it may add and remove a finalizer of the record's NodeTask and delete it
// (it has an owner), but not relabel it, nor create a record.
func garbageCollectorMayCollect(ctx context.Context, t *testing.T, c *harness.Cluster, record string) {
	cfg := rest.CopyConfig(c.CP.RestConfig("admin"))
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:kube-system:generic-garbage-collector"}
	gc, err := client.New(cfg, client.Options{Scheme: c.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	task := &v1alpha1.NodeTask{ObjectMeta: metav1.ObjectMeta{Name: record}}
	if err := rawPatch(ctx, gc, task, types.MergePatchType, map[string]any{"metadata": map[string]any{"labels": map[string]any{"x": "y"}}}); err == nil {
		t.Errorf("the garbage collector relabelled a NodeTask")
	} else {
		t.Logf("gc relabelling a task: refused (%s)", refusedBy(err))
	}
	if err := gc.Create(ctx, &v1alpha1.Remediation{ObjectMeta: metav1.ObjectMeta{Name: "gc-forged"},
		Spec: v1alpha1.RemediationSpec{NodeName: "x", Cause: v1alpha1.CauseKubeletDown, Policy: "x", Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet}, Mode: v1alpha1.ModeAutomatic}}); err == nil {
		t.Errorf("the garbage collector created a record")
	}
	if err := rawPatch(ctx, gc, task, types.MergePatchType, map[string]any{"metadata": map[string]any{"finalizers": []string{"example.com/hold"}}}); err != nil {
		t.Fatalf("the garbage collector may change finalizers: %v", err)
	}
	if err := gc.Delete(ctx, task); err != nil {
		t.Fatalf("the garbage collector may delete an owned task: %v", err)
	}
	if err := rawPatch(ctx, gc, task, types.MergePatchType, map[string]any{"metadata": map[string]any{"finalizers": nil}}); err != nil {
		t.Fatalf("the garbage collector may remove finalizers: %v", err)
	}
	eventually(t, 30*time.Second, "the task to go", func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(c.Client.Get(ctx, client.ObjectKeyFromObject(task), &v1alpha1.NodeTask{})), nil
	})
}

// The admission rules name no namespace, service account or user of
// nodeward's: installed into another namespace (kustomize changes only the
// bindings' subjects) every rule stays in force.
func TestAdmissionNamesNoNodewardIdentity(t *testing.T) {
	repo, err := harness.RepoDir()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(repo, "config", "admission", "*.yaml"))
	files = append(files, filepath.Join(repo, "config", "rbac", "agent", "own_node_policy.yaml"))
	sort.Strings(files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, bad := range []string{harness.Namespace, "serviceaccount:nodeward", ":nodeward-operator", ":nodeward-agent"} {
				if strings.Contains(line, bad) {
					t.Errorf("%s:%d names %q: %s", f, i+1, bad, strings.TrimSpace(line))
				}
			}
		}
	}
}
