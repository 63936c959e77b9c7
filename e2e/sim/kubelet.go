package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// The real kubelet's defaults (v1.37): it renews its Lease every quarter of
// the 40s lease duration, and posts node status when something changed or
// every nodeStatusReportFrequency.
const (
	LeaseDuration             = 40 * time.Second
	LeaseRenewInterval        = 10 * time.Second
	NodeStatusReportFrequency = 5 * time.Minute
	NodeLeaseNamespace        = "kube-node-lease"
)

// Kubelet is a simulated kubelet for one node. Start and Stop are called by
// the simulated host's service manager.
type Kubelet struct {
	client    kubernetes.Interface
	nodeName  string
	labels    map[string]string
	renew     time.Duration
	mu        sync.Mutex
	cancel    context.CancelFunc
	done      chan struct{}
	lastPost  time.Time
	nodeUID   string
	heartbeat func(time.Time) // test hook, called after each lease renewal
}

// NewKubelet returns a stopped kubelet for nodeName; the Node it registers
// carries labels.
func NewKubelet(client kubernetes.Interface, nodeName string, labels map[string]string) *Kubelet {
	return &Kubelet{client: client, nodeName: nodeName, labels: labels, renew: LeaseRenewInterval}
}

// Start runs the kubelet until Stop. It registers the node if needed and
// posts status and renews the Lease at once, as a starting kubelet does.
func (k *Kubelet) Start() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel, k.done = cancel, make(chan struct{})
	go k.run(ctx, k.done)
}

// Stop stops the kubelet: no more status posts or Lease renewals.
func (k *Kubelet) Stop() {
	k.mu.Lock()
	cancel, done := k.cancel, k.done
	k.cancel, k.done = nil, nil
	k.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Running reports whether the kubelet runs.
func (k *Kubelet) Running() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cancel != nil
}

func (k *Kubelet) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	log := klog.FromContext(ctx).WithValues("node", k.nodeName)
	k.lastPost = time.Time{}
	for {
		if err := k.sync(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Simulated kubelet sync failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(k.renew):
		}
	}
}

func (k *Kubelet) sync(ctx context.Context) error {
	if err := k.register(ctx); err != nil {
		return err
	}
	now := time.Now()
	if now.Sub(k.lastPost) >= NodeStatusReportFrequency {
		if err := k.postStatus(ctx, now); err != nil {
			return err
		}
		k.lastPost = now
	}
	return k.renewLease(ctx, now)
}

func (k *Kubelet) register(ctx context.Context) error {
	if k.nodeUID != "" {
		return nil
	}
	node, err := k.client.CoreV1().Nodes().Get(ctx, k.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err = k.client.CoreV1().Nodes().Create(ctx, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: k.nodeName, Labels: k.labels},
		}, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", k.nodeName, err)
	}
	k.nodeUID = string(node.UID)
	return nil
}

// postStatus writes the node status a healthy kubelet reports.
func (k *Kubelet) postStatus(ctx context.Context, now time.Time) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := k.client.CoreV1().Nodes().Get(ctx, k.nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		fillStatus(&node.Status, now)
		_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

func fillStatus(st *corev1.NodeStatus, now time.Time) {
	hb := metav1.NewTime(now)
	want := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
	}
	for i := range want {
		want[i].LastHeartbeatTime = hb
		want[i].LastTransitionTime = hb
		for _, old := range st.Conditions {
			if old.Type == want[i].Type && old.Status == want[i].Status {
				want[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	st.Conditions = want
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	st.Capacity, st.Allocatable = capacity, capacity
	st.NodeInfo.KubeletVersion = "v1.37.2"
	st.NodeInfo.ContainerRuntimeVersion = "containerd://2.1.0"
	st.NodeInfo.OperatingSystem, st.NodeInfo.Architecture = "linux", "amd64"
}

func (k *Kubelet) renewLease(ctx context.Context, now time.Time) error {
	leases := k.client.CoordinationV1().Leases(NodeLeaseNamespace)
	lease, err := leases.Get(ctx, k.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: k.nodeName, Namespace: NodeLeaseNamespace,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: k.nodeName, UID: types.UID(k.nodeUID)}},
			},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(k.nodeName),
				LeaseDurationSeconds: ptr.To(int32(LeaseDuration / time.Second)),
				RenewTime:            &metav1.MicroTime{Time: now},
			},
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
	} else if err == nil {
		lease.Spec.RenewTime = &metav1.MicroTime{Time: now}
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("renewing lease of node %s: %w", k.nodeName, err)
	}
	if k.heartbeat != nil {
		k.heartbeat(now)
	}
	return nil
}
