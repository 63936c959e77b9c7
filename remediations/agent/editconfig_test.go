package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations/agent/host"
)

// node lays out a control-plane node's files (kubeadm's samples from
// host/testdata) under a temp root.
func node(t *testing.T, manifest bool) (string, *host.ConfigFiles) {
	t.Helper()
	root := t.TempDir()
	copyFile := func(sample, to string) {
		b, err := os.ReadFile(filepath.Join("host", "testdata", "kubeadm", sample))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, to)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if manifest {
		copyFile("kube-controller-manager.yaml", host.DefaultControllerManagerManifest)
	}
	copyFile("config.yaml", host.DefaultKubeletConfig)
	return root, host.NewConfigFiles(root, map[v1alpha1.ConfigFile]string{
		v1alpha1.ConfigFileControllerManagerManifest: host.DefaultControllerManagerManifest,
		v1alpha1.ConfigFileKubeletConfig:             host.DefaultKubeletConfig,
	})
}

func editTask(name string, file v1alpha1.ConfigFile, key v1alpha1.ConfigKey, value string, raiseOnly bool) *v1alpha1.NodeTask {
	return &v1alpha1.NodeTask{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelNode: "cp-1"}},
		Spec: v1alpha1.NodeTaskSpec{NodeName: "cp-1", Action: v1alpha1.NodeActionEditConfig, Remediation: "r",
			Edit: &v1alpha1.ConfigEdit{File: file, Key: key, Value: value, RaiseOnly: raiseOnly}},
	}
}

// runTask reconciles the task once with an agent whose config editor is cfg
// and returns the stored task.
func runTask(t *testing.T, cfg host.ConfigEditor, task *v1alpha1.NodeTask) *v1alpha1.NodeTask {
	t.Helper()
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithStatusSubresource(&v1alpha1.NodeTask{}).WithObjects(task).Build()
	opts := Options{NodeName: "cp-1", Host: nopHost{}, Config: cfg, Clock: clocktesting.NewFakeClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))}
	if err := opts.defaults(); err != nil {
		t.Fatal(err)
	}
	r := &taskRunner{c: c, opts: opts, poked: func() {}}
	ctx := context.Background()
	if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(task)}); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	got := &v1alpha1.NodeTask{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(task), got); err != nil {
		t.Fatal(err)
	}
	// Run at most once: a second reconcile changes nothing.
	if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(task)}); err != nil {
		t.Fatal(err)
	}
	return got
}

type nopHost struct{ host.Host }

func TestEditConfigRaisesGracePeriod(t *testing.T) {
	root, cfg := node(t, true)
	got := runTask(t, cfg, editTask("t1", v1alpha1.ConfigFileControllerManagerManifest, v1alpha1.ConfigKeyNodeMonitorGracePeriod, "2m", true))
	st := got.Status
	if st.Phase != v1alpha1.TaskSucceeded || st.BeforeValue != "50s (default)" || st.AfterValue != "2m0s" || st.Backup == "" || st.StartedAt == nil || st.CompletedAt == nil {
		t.Fatalf("status = %+v", st)
	}
	t.Logf("message: %s", st.Message)
	if !strings.Contains(st.Message, "restarts the kube-controller-manager static pod by itself") {
		t.Errorf("message does not say how the change is picked up: %s", st.Message)
	}
	b, _ := os.ReadFile(filepath.Join(root, host.DefaultControllerManagerManifest))
	if !strings.Contains(string(b), "    - --node-monitor-grace-period=2m0s\n") {
		t.Errorf("manifest not edited:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(root, st.Backup)); err != nil {
		t.Errorf("backup %s: %v", st.Backup, err)
	}

	// Already at 2m: a raise-only edit to 1m or 2m changes nothing.
	for i, v := range []string{"1m", "2m0s"} {
		got := runTask(t, cfg, editTask("again-"+v, v1alpha1.ConfigFileControllerManagerManifest, v1alpha1.ConfigKeyNodeMonitorGracePeriod, v, true))
		if got.Status.Phase != v1alpha1.TaskSucceeded || got.Status.BeforeValue != "2m0s" || got.Status.AfterValue != "2m0s" || got.Status.Backup != "" {
			t.Errorf("raise-only to %s: status = %+v", v, got.Status)
		}
		if !strings.Contains(got.Status.Message, "already 2m0s") || (i == 0 && !strings.Contains(got.Status.Message, "never lowered")) {
			t.Errorf("raise-only to %s: message %q", v, got.Status.Message)
		}
	}
	if bs, _ := host.Backups(filepath.Join(root, host.DefaultControllerManagerManifest)); len(bs) != 1 {
		t.Errorf("backups = %v, want just the first", bs)
	}
}

func TestEditConfigKubeletNeedsRestart(t *testing.T) {
	_, cfg := node(t, false)
	got := runTask(t, cfg, editTask("t1", v1alpha1.ConfigFileKubeletConfig, v1alpha1.ConfigKeyNodeStatusUpdateFrequency, "5s", false))
	if got.Status.Phase != v1alpha1.TaskSucceeded || got.Status.BeforeValue != "0s (default 10s)" || got.Status.AfterValue != "5s" {
		t.Fatalf("status = %+v", got.Status)
	}
	if !strings.Contains(got.Status.Message, "after a kubelet restart") || !strings.Contains(got.Status.Message, "this task does not do") {
		t.Errorf("message does not say the kubelet must be restarted: %s", got.Status.Message)
	}
}

func TestEditConfigRefused(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(t *testing.T) host.ConfigEditor
		task *v1alpha1.NodeTask
		want string
	}{
		{"no config access", func(*testing.T) host.ConfigEditor { return nil },
			editTask("t", v1alpha1.ConfigFileControllerManagerManifest, v1alpha1.ConfigKeyNodeMonitorGracePeriod, "2m", true), "this agent has no config access"},
		{"no manifest on this node", func(t *testing.T) host.ConfigEditor { _, c := node(t, false); return c },
			editTask("t", v1alpha1.ConfigFileControllerManagerManifest, v1alpha1.ConfigKeyNodeMonitorGracePeriod, "2m", true), "no such file"},
		{"out of the agent's bounds", func(t *testing.T) host.ConfigEditor { _, c := node(t, true); return c },
			editTask("t", v1alpha1.ConfigFileControllerManagerManifest, v1alpha1.ConfigKeyNodeMonitorGracePeriod, "20m", true), "outside the agent's bounds"},
		{"frequency over the grace period", func(t *testing.T) host.ConfigEditor { _, c := node(t, true); return c },
			editTask("t", v1alpha1.ConfigFileKubeletConfig, v1alpha1.ConfigKeyNodeStatusUpdateFrequency, "30s", false), "would be less than 4 x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runTask(t, tc.cfg(t), tc.task)
			if got.Status.Phase != v1alpha1.TaskFailed || !strings.Contains(got.Status.Message, tc.want) || got.Status.Backup != "" {
				t.Fatalf("status = %+v, want Failed saying %q", got.Status, tc.want)
			}
		})
	}
}
