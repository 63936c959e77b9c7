package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeward/nodeward/operator/diagnosis"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func sandboxEvent(pod, host string) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "shop", Name: pod + ".sandbox"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: pod, UID: types.UID("uid-" + pod)},
		Reason:         "FailedCreatePodSandBox", Type: corev1.EventTypeWarning, Count: 3,
		Message: `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "4f1c2d3e4a5b": plugin type="calico" failed (add): stat /var/lib/calico/nodename: no such file or directory`,
		Source:  corev1.EventSource{Component: "kubelet", Host: host}, LastTimestamp: *ago(time.Minute),
	}
}

// snapshot NODE writes what the operator would diagnose, read from the API
// server; diagnose --snapshot reads it back offline, without a cluster, and
// prints what the live diagnose prints, as of the snapshot's time.
func TestSnapshotThenDiagnoseOffline(t *testing.T) {
	n := deadKubeletNode("worker-1", nil)
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/big:1"}, SizeBytes: 1 << 30}}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: diagnosis.NodeLeaseNamespace, Name: "worker-1"},
		Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: now.Add(-10*time.Minute - 40*time.Second)}}}
	nodeEvent := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: "worker-1.oom"},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "worker-1"},
		Reason:         "SystemOOM", Type: corev1.EventTypeWarning, Message: "System OOM encountered, victim process: java, pid: 1234",
		Source: corev1.EventSource{Component: "kubelet", Host: "worker-1"}, LastTimestamp: *ago(time.Minute),
	}
	env, out := testEnv(t, n, lease, nodeEvent, report("worker-1", 5*time.Second, kubeletUnit("inactive", "dead", 11*time.Minute), runtimeUnit("active", "running", time.Hour)),
		sandboxEvent("web-1", "worker-1"), sandboxEvent("web-2", "worker-1"), sandboxEvent("web-3", "worker-2"))
	file := filepath.Join(t.TempDir(), "worker-1.yaml")
	snap := &SnapshotOptions{Env: env, Output: file}
	if err := snap.Validate([]string{"worker-1"}); err != nil {
		t.Fatal(err)
	}
	if err := snap.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, out.String(), "Wrote the snapshot of node worker-1 to "+file+"\n", nil)

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := diagnosis.ParseSnapshot(data)
	if err != nil {
		t.Fatalf("the snapshot written does not parse: %v\n%s", err, data)
	}
	if !s.TakenAt.Time.Equal(now) || s.Node.Name != "worker-1" || s.Node.Status.Images != nil {
		t.Errorf("snapshot takenAt %s, node %s, images %v; want %s, worker-1, none", s.TakenAt, s.Node.Name, s.Node.Status.Images, now)
	}
	// The CLI cannot know when nodeward saw the Lease renewed.
	if !slices.Equal(s.Unknown, []string{diagnosis.UnknownLeaseObservedAt}) || s.Lease == nil || s.Lease.ObservedAt != nil {
		t.Errorf("unknown %v, lease %+v; want only lease.observedAt unknown", s.Unknown, s.Lease)
	}
	if len(s.Events) != 1 || s.Events[0].Reason != "SystemOOM" {
		t.Errorf("events %+v, want the SystemOOM", s.Events)
	}
	// Two pods' identical failures on this node fold into one; the other
	// node's pod is not this node's.
	if len(s.PodEvents) != 1 || s.PodEvents[0].Count != 6 || s.PodEvents[0].ManagedFields != nil {
		t.Errorf("pod events %+v, want worker-1's sandbox failure folded, count 6", s.PodEvents)
	}
	if s.Cluster == nil || s.Cluster.Degraded == nil || *s.Cluster.Degraded {
		t.Errorf("cluster %+v, want known, not degraded (no ClusterDiagnosis)", s.Cluster)
	}

	// Offline: no client at all.
	offline := &strings.Builder{}
	diag := &DiagnoseOptions{Env: &Env{Out: offline}, Snapshot: file}
	if err := diag.Validate(nil); err != nil {
		t.Fatal(err)
	}
	if !diag.Offline() {
		t.Error("diagnose --snapshot asks for a cluster")
	}
	if err := diag.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := diagnosis.Diagnose(s.Input(), diagnosis.DefaultThresholds())
	if len(res.Status.Causes) == 0 {
		t.Fatalf("the snapshot's diagnosis has no cause: %+v", res.Status)
	}
	want := []string{
		"Snapshot:    taken at 2026-03-01T12:00:00Z, diagnosed offline with the default thresholds; unknown: lease.observedAt\n",
		"Node:        worker-1\n",
		"Diagnosis:   " + res.Status.Summary,
		"Diagnosed:   2026-03-01T12:00:00Z (0s ago)\n",
		"  1. " + string(res.Status.Causes[0].Cause) + " since ",
		"     Suggested action: policies not read (offline snapshot)\n",
		"Node agent (NodeReport worker-1):\n",
	}
	checkOutput(t, offline.String(), "", want)
}

func TestSnapshotErrors(t *testing.T) {
	env, _ := testEnv(t)
	o := &SnapshotOptions{Env: env}
	checkErr(t, o.Validate(nil), "exactly one argument")
	if err := o.Validate([]string{"nope"}); err != nil {
		t.Fatal(err)
	}
	checkErr(t, o.Run(context.Background()), `node "nope" not found`)

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: nodeward.io/v1alpha1\nkind: NodeSnapshot\ntakenAt: \"2026-03-01T12:00:00Z\"\nnode: {metadata: {name: node-1}}\nlease: {renewedBy: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		file    string
		wantErr string
	}{
		{"snapshot and a node", []string{"worker-1"}, bad, "takes no node name"},
		{"bad field", nil, bad, `bad.yaml: reading the snapshot: unknown field "lease.renewedBy"`},
		{"missing file", nil, filepath.Join(dir, "none.yaml"), "none.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &DiagnoseOptions{Env: &Env{Out: &strings.Builder{}}, Snapshot: tc.file}
			err := o.Validate(tc.args)
			if err == nil {
				err = o.Run(context.Background())
			}
			checkErr(t, err, tc.wantErr)
		})
	}
}
