package bench

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// KwokLabel selects the nodes kwok manages: removing it stops their Lease
// renewals at once.
const KwokLabel = "bench/kwok"

//go:embed kwok-stages.yaml
var kwokStages []byte

// nodeStagesOnly drops kwok's pod stages: the pods stay Pending, bound to
// their nodes. nodeward never watches pods, so their phase changes nothing
// it measures, and kwok marking 50,000 pods Running on two cores delays its
// Lease renewals until the nodes look dead.
func nodeStagesOnly(stages []byte) []byte {
	var out [][]byte
	for _, doc := range bytes.Split(stages, []byte("\n---\n")) {
		if !bytes.Contains(doc, []byte("\n    kind: Pod\n")) {
			out = append(out, doc)
		}
	}
	return bytes.Join(out, []byte("\n---\n"))
}

func (r *run) startKwok(ctx context.Context) (func(), error) {
	// kwok's own fast node and pod stages, and nothing from ~/.kwok.
	stages := kwokStages
	if !r.cfg.PodsRunning {
		stages = nodeStagesOnly(kwokStages)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "kwok.yaml"), stages, 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(r.dir, "kwok.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(r.cfg.Kwok,
		"--kubeconfig="+r.c.CP.AdminKubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-label-selector="+KwokLabel+"=true",
		"--node-lease-duration-seconds=40",
		"--config="+filepath.Join(r.dir, "kwok.yaml"),
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting kwok: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	r.logf("kwok started (pid %d)", cmd.Process.Pid)
	return func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}, nil
}

func kwokNodeName(i int) string { return fmt.Sprintf("kwok-%05d", i) }

func (r *run) createKwokCluster(ctx context.Context) error {
	n, p := r.cfg.Nodes, r.cfg.PodsPerNode
	r.logf("creating %d kwok nodes", n)
	t0 := time.Now()
	err := parallel(n, 16, func(i int) error {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        kwokNodeName(i),
				Labels:      map[string]string{KwokLabel: "true", "type": "kwok", "kubernetes.io/hostname": kwokNodeName(i), "node-role.kubernetes.io/worker": ""},
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			},
			Status: corev1.NodeStatus{
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")},
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")},
			},
		}
		if err := r.cl.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating kwok nodes: %w", err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		list := &corev1.NodeList{}
		if err := r.cl.List(ctx, list, client.MatchingLabels{KwokLabel: "true"}); err != nil {
			return false, nil
		}
		ready := 0
		for i := range list.Items {
			if isReady(&list.Items[i]) {
				ready++
			}
		}
		return ready == n, nil
	}); err != nil {
		return fmt.Errorf("waiting for %d kwok nodes to be Ready: %w", n, err)
	}
	r.res.Setup["kwokNodesReady"] = time.Since(t0).Round(time.Second).String()
	r.logf("%d kwok nodes Ready after %s; creating %d pods bound to them", n, time.Since(t0).Round(time.Second), n*p)

	t1 := time.Now()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}
	if err := r.cl.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// The service account admission plugin refuses pods until the
	// controller-manager created the namespace's default service account.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return r.cl.Get(ctx, client.ObjectKey{Namespace: "bench", Name: "default"}, &corev1.ServiceAccount{}) == nil, nil
	}); err != nil {
		return fmt.Errorf("waiting for the default service account of namespace bench: %w", err)
	}
	no := false
	err = parallel(n*p, 32, func(i int) error {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d-%03d", i/p, i%p), Namespace: "bench", Labels: map[string]string{"app": "bench"},
				OwnerReferences: nil},
			Spec: corev1.PodSpec{
				NodeName:                     kwokNodeName(i / p),
				AutomountServiceAccountToken: &no,
				Tolerations:                  []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
				Containers: []corev1.Container{{Name: "app", Image: "fake-image",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}},
			},
		}
		if err := r.cl.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating pods: %w", err)
	}
	r.res.Setup["podsCreated"] = time.Since(t1).Round(time.Second).String()
	if !r.cfg.PodsRunning {
		r.res.Setup["podsCreated"] = time.Since(t1).Round(time.Second).String()
		r.logf("%d pods exist (Pending: kwok's pod stages are off) after %s", n*p, time.Since(t1).Round(time.Second))
		return nil
	}
	// kwok marks them Running; wait a while for that, but the pods exist
	// either way. Asking for one pod not Running keeps the question cheap
	// for the apiserver (a full list of 50,000 pods every few seconds would
	// load it more than anything measured here).
	_ = wait.PollUntilContextTimeout(ctx, 5*time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		list := &corev1.PodList{}
		if err := r.cl.List(ctx, list, client.InNamespace("bench"), client.MatchingFields{"status.phase": "Pending"}, client.Limit(1)); err != nil {
			return false, nil
		}
		return len(list.Items) == 0, nil
	})
	pending := &corev1.PodList{}
	if err := r.cl.List(ctx, pending, client.InNamespace("bench"), client.MatchingFields{"status.phase": "Pending"}); err == nil {
		r.res.PodsRunning = n*p - len(pending.Items)
	}
	r.logf("%d pods exist, %d Running (by kwok) after %s", n*p, r.res.PodsRunning, time.Since(t1).Round(time.Second))
	return nil
}

// waitSimReports waits until every simulated node's agent has reported.
func (r *run) waitSimReports(ctx context.Context) error {
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, s := range r.sims {
			rep := &v1alpha1.NodeReport{}
			if err := r.cl.Get(ctx, client.ObjectKey{Name: s}, rep); err != nil || len(rep.Status.Units) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
}
