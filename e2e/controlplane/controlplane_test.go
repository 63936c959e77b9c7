package controlplane_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodeward/nodeward/e2e/controlplane"
)

func TestControlPlane(t *testing.T) {
	requireBinaries(t, "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var log lockedBuffer
	begin := time.Now()
	cp, err := controlplane.Start(ctx, controlplane.Options{
		ControllerManager:      true,
		Scheduler:              true,
		NodeMonitorGracePeriod: 20 * time.Second,
		Users:                  []controlplane.User{{Name: "viewer", Groups: []string{"nodeward:test", "other"}}},
		Log:                    &log,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %v; apiserver at %s, dir %s", time.Since(begin).Round(time.Millisecond), cp.URL, cp.Dir)
	pids := controlplane.PIDs(cp)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cp.Stop()
		}
	})
	dumpLogsOnFailure(t, cp.Dir)

	if len(pids) != 4 {
		t.Errorf("PIDs = %v, want 4 components", pids)
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		if !strings.Contains(log.String(), "["+name+"] ") {
			t.Errorf("Options.Log got no line prefixed [%s]", name)
		}
	}

	admin := kubernetes.NewForConfigOrDie(cp.RestConfig("admin"))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nodeward-test"}}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("admin creating namespace: %v", err)
	}

	// kube-controller-manager works: its service-account controller gives
	// the new namespace a default ServiceAccount.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := admin.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Errorf("no default ServiceAccount in %s from kube-controller-manager: %v", ns.Name, err)
	}

	// kube-scheduler works: with no nodes, it marks a pod unschedulable.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pending", Namespace: ns.Name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
	if _, err := admin.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Errorf("admin creating pod: %v", err)
	} else if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := admin.CoreV1().Pods(ns.Name).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Errorf("kube-scheduler did not mark pod unschedulable: %v", err)
	}

	// A static-token user is authenticated, with its groups, but not
	// authorized beyond the defaults.
	viewer := kubernetes.NewForConfigOrDie(cp.RestConfig("viewer"))
	if _, err := viewer.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("viewer listing nodes: got %v, want Forbidden", err)
	} else if !strings.Contains(err.Error(), `"viewer"`) {
		t.Errorf("Forbidden error does not name the user: %v", err)
	}
	review, err := viewer.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Errorf("viewer SelfSubjectReview: %v", err)
	} else if got := review.Status.UserInfo; got.Username != "viewer" || !contains(got.Groups, "nodeward:test") || !contains(got.Groups, "other") {
		t.Errorf("viewer is %s in %v, want viewer in nodeward:test and other", got.Username, got.Groups)
	}
	if cp.RestConfig("nobody") != nil {
		t.Error("RestConfig of an unknown user is not nil")
	}

	// The admin kubeconfig and WriteKubeconfig work.
	path := filepath.Join(t.TempDir(), "viewer.kubeconfig")
	if err := cp.WriteKubeconfig("viewer", path); err != nil {
		t.Fatalf("WriteKubeconfig: %v", err)
	}
	for _, kubeconfig := range []string{cp.AdminKubeconfig, path} {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			t.Fatalf("loading %s: %v", kubeconfig, err)
		}
		if _, err := kubernetes.NewForConfigOrDie(cfg).Discovery().ServerVersion(); err != nil {
			t.Errorf("server version via %s: %v", kubeconfig, err)
		}
	}
	if err := cp.WriteKubeconfig("nobody", path); err == nil {
		t.Error("WriteKubeconfig of an unknown user succeeded")
	}
	if v, err := admin.Discovery().ServerVersion(); err != nil || v.GitVersion != controlplane.Version {
		t.Errorf("server version %v, %v; want %s", v, err, controlplane.Version)
	}

	begin = time.Now()
	stopped = true
	if err := cp.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("Stop took %v", time.Since(begin).Round(time.Millisecond))
	if err := cp.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after Stop: kill(pid, 0) = %v", name, pid, err)
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group of %s (%d) still exists after Stop: kill(-pgid, 0) = %v", name, pid, err)
		}
	}
	if _, err := os.Stat(cp.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir %s not removed by Stop: %v", cp.Dir, err)
	}
}

func TestStartFailsWithoutBinaries(t *testing.T) {
	_, err := controlplane.Start(context.Background(), controlplane.Options{BinDir: t.TempDir()})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Fatalf("Start with an empty BinDir: %v, want an error naming kube-apiserver and wrapping ErrNotExist", err)
	}
}

func TestStartRejectsBadUsers(t *testing.T) {
	for _, users := range [][]controlplane.User{
		{{Name: "admin"}},
		{{Name: ""}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "a", Token: "x"}, {Name: "b", Token: "x"}},
		{{Name: "a", Token: "x,y"}},
	} {
		cp, err := controlplane.Start(context.Background(), controlplane.Options{BinDir: t.TempDir(), Users: users})
		if err == nil {
			_ = cp.Stop()
		}
		if err == nil || !strings.Contains(err.Error(), "User") {
			t.Errorf("Start with users %+v: %v, want an error about the User", users, err)
		}
	}
}

func TestDefaultBinDir(t *testing.T) {
	// Outside the clone, in the user's cache directory, so that a fresh
	// clone (CI clones afresh) reuses the binaries an earlier one built.
	t.Setenv("NODEWARD_CONTROLPLANE_BIN", "")
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	dir, err := controlplane.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "nodeward", "controlplane", controlplane.Version); dir != want {
		t.Errorf("DefaultBinDir() = %s, want %s", dir, want)
	}
	t.Setenv("NODEWARD_CONTROLPLANE_BIN", "/somewhere/else")
	if dir, err := controlplane.DefaultBinDir(); err != nil || dir != "/somewhere/else" {
		t.Errorf("DefaultBinDir() with $NODEWARD_CONTROLPLANE_BIN = %s, %v", dir, err)
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

// TestStartReportsComponentFailure checks that when a component dies during
// Start, the error names it and quotes its log, and nothing is left behind.
func TestStartReportsComponentFailure(t *testing.T) {
	binDir := t.TempDir()
	for _, name := range []string{"etcd", "kube-apiserver"} {
		script := "#!/bin/sh\necho \"" + name + " cannot start: boom\" >&2\nexit 3\n"
		if err := os.WriteFile(filepath.Join(binDir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	workDir := filepath.Join(t.TempDir(), "work")
	_, err := controlplane.Start(context.Background(), controlplane.Options{BinDir: binDir, Dir: workDir})
	if err == nil {
		t.Fatal("Start with a failing etcd succeeded")
	}
	t.Logf("Start error: %v", err)
	for _, want := range []string{"etcd exited (exit status 3) before becoming ready", "etcd cannot start: boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error does not contain %q:\n%v", want, err)
		}
	}
	// A Dir given in Options is kept, with the logs.
	if b, err := os.ReadFile(filepath.Join(workDir, "logs", "etcd.log")); err != nil || !strings.Contains(string(b), "boom") {
		t.Errorf("etcd log: %q, %v", b, err)
	}
}
