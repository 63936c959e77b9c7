package controlplane_test

import (
	"context"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/nodeward/nodeward/e2e/controlplane"
)

// TestEnvtestAssets checks that controller-runtime's envtest runs the
// apiserver and etcd from EnvtestAssets.
func TestEnvtestAssets(t *testing.T) {
	requireBinaries(t, "etcd", "kube-apiserver")
	dir, err := controlplane.EnvtestAssets()
	if err != nil {
		t.Fatal(err)
	}
	// KUBEBUILDER_ASSETS would take precedence over BinaryAssetsDirectory.
	t.Setenv("KUBEBUILDER_ASSETS", "")
	os.Unsetenv("KUBEBUILDER_ASSETS")

	env := &envtest.Environment{BinaryAssetsDirectory: dir}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest Start: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("envtest Stop: %v", err)
		}
	})
	client := kubernetes.NewForConfigOrDie(cfg)
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != controlplane.Version {
		t.Errorf("envtest apiserver is %s, want %s", v.GitVersion, controlplane.Version)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "envtest"}}
	if _, err := client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating namespace: %v", err)
	}
}
