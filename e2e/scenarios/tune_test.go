package scenarios

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations"
	"github.com/nodeward/nodeward/remediations/agent/host"
)

// Seed 002: PLEG relists too slowly on a worker and the kubelet's late
// status flips it NotReady. A TuneGracePeriods policy has the node agent on
// the control-plane node raise kube-controller-manager's
// --node-monitor-grace-period in its static pod manifest (kubeadm's, which
// leaves it at the default 50s) to 2m, keeping a backup. A second PLEG on
// another worker finds it already at 2m and edits nothing.
func TestTuneGracePeriods(t *testing.T) {
	c := startCluster(t,
		harness.ControlPlaneNode("cp-1"),
		harness.NodeSpec{Name: "worker-1"},
		harness.NodeSpec{Name: "worker-2"},
	)
	ctx := context.Background()
	p := &v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "tune-grace"},
		Spec: v1alpha1.RemediationPolicySpec{
			IncludeControlPlane: true,
			Causes:              []v1alpha1.CauseMatch{{Cause: v1alpha1.CausePLEGUnhealthy}},
			Action: v1alpha1.Action{Type: v1alpha1.ActionTuneGracePeriods, TuneGracePeriods: &v1alpha1.TuneGracePeriodsParams{
				NodeMonitorGracePeriod: metav1.Duration{Duration: 2 * time.Minute},
			}},
			Mode: v1alpha1.ModeAutomatic,
			// Three nodes: the default 30% would stop the policy at the
			// first unhealthy node.
			StormBreaker: v1alpha1.StormBreaker{MaxUnhealthy: ptr.To(intstr.FromString("100%"))},
		},
	}
	if err := c.Client.Create(ctx, p); err != nil {
		t.Fatalf("creating policy: %v", err)
	}
	for _, n := range []string{"cp-1", "worker-1", "worker-2"} {
		eventually(t, time.Minute, "NodeReport of "+n, func(ctx context.Context) (bool, error) {
			rep := &v1alpha1.NodeReport{}
			err := c.Client.Get(ctx, client.ObjectKey{Name: n}, rep)
			return err == nil && len(rep.Status.Units) > 0, nil
		})
	}
	cp := c.Node("cp-1").Host
	manifest := cp.ConfigPath(host.DefaultControllerManagerManifest)
	if b, err := os.ReadFile(manifest); err != nil || string(b) != sim.ControllerManagerManifest {
		t.Fatalf("cp-1's manifest before the fault: %v", err)
	}

	// The first PLEG: the grace period is raised from the default.
	rec := tuneRecord(t, c, "worker-1")
	if rec.Status.Reason != v1alpha1.ReasonTuned {
		t.Errorf("reason %s, want %s: %s", rec.Status.Reason, v1alpha1.ReasonTuned, rec.Status.Message)
	}
	want := v1alpha1.TuneStatus{Node: "cp-1", File: string(v1alpha1.ConfigFileControllerManagerManifest), Key: "--node-monitor-grace-period",
		Before: "50s (default)", After: "2m0s"}
	got := *rec.Status.Tune
	backup := got.Backup
	got.Backup = ""
	if got != want {
		t.Errorf("status.tune = %+v, want %+v", got, want)
	}
	if !strings.HasPrefix(backup, "/etc/kubernetes/manifests/.kube-controller-manager.yaml.nodeward-") || !strings.HasSuffix(backup, ".bak") {
		t.Errorf("backup %q, want a hidden file next to the manifest", backup)
	}
	if b, err := os.ReadFile(cp.ConfigPath(backup)); err != nil || string(b) != sim.ControllerManagerManifest {
		t.Errorf("backup %s on cp-1 does not hold the original manifest (%v)", backup, err)
	}
	edited, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	wantManifest := strings.Replace(sim.ControllerManagerManifest, "    - --leader-elect=true\n", "    - --leader-elect=true\n    - --node-monitor-grace-period=2m0s\n", 1)
	if string(edited) != wantManifest {
		t.Errorf("cp-1's manifest is not the original plus the flag:\n%s", edited)
	}
	task := &v1alpha1.NodeTask{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: remediations.TuneTaskName(rec.Name)}, task); err != nil {
		t.Fatal(err)
	}
	if task.Spec.NodeName != "cp-1" || task.Status.Phase != v1alpha1.TaskSucceeded || !strings.Contains(task.Status.Message, "restarts the kube-controller-manager static pod by itself") {
		t.Errorf("task %s on %s: %s: %s", task.Name, task.Spec.NodeName, task.Status.Phase, task.Status.Message)
	}

	// The second PLEG, on another worker: already at 2m, nothing edited.
	rec2 := tuneRecord(t, c, "worker-2")
	if rec2.Status.Reason != v1alpha1.ReasonAlreadyTuned || !strings.Contains(rec2.Status.Message, "already at 2m0s") {
		t.Errorf("second record: reason %s: %s; want AlreadyTuned, already at 2m0s", rec2.Status.Reason, rec2.Status.Message)
	}
	if tu := rec2.Status.Tune; tu == nil || tu.Before != "2m0s" || tu.After != "2m0s" || tu.Backup != "" {
		t.Errorf("second record: status.tune = %+v, want 2m0s → 2m0s, no backup", tu)
	}
	if b, _ := os.ReadFile(manifest); string(b) != wantManifest {
		t.Errorf("the second record changed the manifest")
	}
	if bs, _ := host.Backups(manifest); len(bs) != 1 {
		t.Errorf("backups on cp-1: %v, want the first edit's only", bs)
	}
}

// tuneRecord injects PLEG on node and waits for its TuneGracePeriods record
// to succeed.
func tuneRecord(t *testing.T, c *harness.Cluster, node string) v1alpha1.Remediation {
	t.Helper()
	injected := time.Now()
	if _, err := sim.Inject(context.Background(), c.Node(node), "pleg"); err != nil {
		t.Fatal(err)
	}
	var rec v1alpha1.Remediation
	done := eventually(t, 3*time.Minute, node+"'s TuneGracePeriods record to succeed", func(ctx context.Context) (bool, error) {
		recs, err := remediationsFor(ctx, c.Client, node)
		if err != nil || len(recs) == 0 {
			return false, nil
		}
		rec = recs[0]
		if rec.Status.Phase == v1alpha1.PhaseFailed || rec.Status.Phase == v1alpha1.PhaseSkipped {
			t.Fatalf("record %s %s (%s): %s", rec.Name, rec.Status.Phase, rec.Status.Reason, rec.Status.Message)
		}
		return rec.Status.Phase == v1alpha1.PhaseSucceeded, nil
	})
	t.Logf("%s: record %s %s (%s) %s after the fault: %s", node, rec.Name, rec.Status.Phase, rec.Status.Reason, done.Sub(injected).Round(time.Second), rec.Status.Message)
	for _, s := range rec.Status.Steps {
		t.Logf("  step %s %s: %s", s.Name, s.Phase, s.Message)
	}
	if rec.Spec.Cause != v1alpha1.CausePLEGUnhealthy || rec.Spec.Action.Type != v1alpha1.ActionTuneGracePeriods || rec.Status.Tune == nil {
		t.Fatalf("record %s: cause %s action %s tune %+v", rec.Name, rec.Spec.Cause, rec.Spec.Action.Type, rec.Status.Tune)
	}
	return rec
}
