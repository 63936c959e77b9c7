package scenarios

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// startCluster starts a cluster for one test and stops it when the test ends.
func startCluster(t *testing.T, nodes ...harness.NodeSpec) *harness.Cluster {
	t.Helper()
	return startClusterWith(t, harness.Options{Nodes: nodes})
}

// startClusterWith starts a cluster with options.
func startClusterWith(t *testing.T, opts harness.Options) *harness.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log *os.File
	if testing.Verbose() && os.Getenv("NODEWARD_E2E_LOGS") == "1" {
		log = os.Stderr
	}
	opts.BinDir = binDir
	// Our own directory, so the logs survive a failed test.
	dir, err := os.MkdirTemp("", "nodeward-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	opts.ControlPlane.Dir = dir
	if log != nil {
		opts.Log = log
	}
	c, err := harness.Start(ctx, opts)
	if err != nil {
		t.Fatalf("starting cluster: %v", err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("cluster logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return c
}

// eventually polls cond every 500ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, cond); err != nil {
		t.Fatalf("waiting %s for %s: %v", timeout, what, err)
	}
	return time.Now()
}

func readyCondition(ctx context.Context, c client.Client, node string) (*corev1.NodeCondition, error) {
	n := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: node}, n); err != nil {
		return nil, err
	}
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i], nil
		}
	}
	return nil, nil
}

// remediationsFor lists the records of one node: by its label value, then
// by spec.nodeName (another node may share a long name's label value).
func remediationsFor(ctx context.Context, c client.Client, node string) ([]v1alpha1.Remediation, error) {
	list := &v1alpha1.RemediationList{}
	if err := c.List(ctx, list, client.MatchingLabels{v1alpha1.LabelNode: v1alpha1.LabelValue(node)}); err != nil {
		return nil, err
	}
	var recs []v1alpha1.Remediation
	for _, r := range list.Items {
		if r.Spec.NodeName == node {
			recs = append(recs, r)
		}
	}
	return recs, nil
}

func policy(name string, selector map[string]string, mode v1alpha1.Mode, cause v1alpha1.Cause, action v1alpha1.ActionType, forDur time.Duration) *v1alpha1.RemediationPolicy {
	return &v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.RemediationPolicySpec{
			NodeSelector: &metav1.LabelSelector{MatchLabels: selector},
			Causes:       []v1alpha1.CauseMatch{{Cause: cause, For: metav1.Duration{Duration: forDur}}},
			Action:       v1alpha1.Action{Type: action},
			Mode:         mode,
		},
	}
}

// bindClusterRole binds a ClusterRole to a user for the test.
func bindClusterRole(t *testing.T, c *harness.Cluster, user, clusterRole string) {
	t.Helper()
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "test-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if err := c.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}
