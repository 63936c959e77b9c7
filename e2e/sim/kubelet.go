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

	fmu          sync.Mutex
	startupDelay time.Duration
	overrides    map[corev1.NodeConditionType]corev1.NodeCondition
	pausedUntil  time.Time
	poke         chan struct{}
	// clockOffset skews the node's clock: every time the kubelet writes
	// (Lease renewTime, condition heartbeats) is off by it.
	clockOffset time.Duration
}

// SetClockOffset skews the kubelet's clock by d (negative: behind).
func (k *Kubelet) SetClockOffset(d time.Duration) {
	k.fmu.Lock()
	defer k.fmu.Unlock()
	k.clockOffset = d
}

// SetCondition makes the kubelet report a condition (type, status, reason,
// message) instead of the healthy one, e.g. Ready=False KubeletNotReady "PLEG
// is not healthy: …", or MemoryPressure=True. It posts at once.
func (k *Kubelet) SetCondition(c corev1.NodeCondition) {
	k.fmu.Lock()
	if k.overrides == nil {
		k.overrides = map[corev1.NodeConditionType]corev1.NodeCondition{}
	}
	k.overrides[c.Type] = c
	k.fmu.Unlock()
	k.Poke()
}

// ClearConditions returns to healthy conditions.
func (k *Kubelet) ClearConditions() {
	k.fmu.Lock()
	k.overrides = nil
	k.pausedUntil = time.Time{}
	k.fmu.Unlock()
	k.Poke()
}

// SetStartupDelay makes every later start take d before the first status
// post and Lease renewal, as a real kubelet takes seconds to come up.
func (k *Kubelet) SetStartupDelay(d time.Duration) {
	k.fmu.Lock()
	k.startupDelay = d
	k.fmu.Unlock()
}

// PauseHeartbeats stops Lease renewals and status posts for d, as when an
// overloaded control plane makes them land late (seed 003); the kubelet
// keeps running and resumes by itself.
func (k *Kubelet) PauseHeartbeats(d time.Duration) {
	k.fmu.Lock()
	k.pausedUntil = time.Now().Add(d)
	k.fmu.Unlock()
}

// Poke makes a running kubelet sync now.
func (k *Kubelet) Poke() {
	k.mu.Lock()
	poke := k.poke
	k.mu.Unlock()
	if poke != nil {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
}

func (k *Kubelet) desired() (map[corev1.NodeConditionType]corev1.NodeCondition, bool) {
	k.fmu.Lock()
	defer k.fmu.Unlock()
	out := make(map[corev1.NodeConditionType]corev1.NodeCondition, len(k.overrides))
	for t, c := range k.overrides {
		out[t] = c
	}
	return out, time.Now().Before(k.pausedUntil)
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
	k.cancel, k.done, k.poke = cancel, make(chan struct{}), make(chan struct{}, 1)
	go k.run(ctx, k.done, k.poke)
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

func (k *Kubelet) run(ctx context.Context, done, poke chan struct{}) {
	defer close(done)
	pods := k.runPods(ctx) // pods.go: runs the node's pods while the kubelet runs
	defer func() { <-pods }()
	log := klog.FromContext(ctx).WithValues("node", k.nodeName)
	k.lastPost = time.Time{}
	k.fmu.Lock()
	delay := k.startupDelay
	k.fmu.Unlock()
	if delay > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
	for {
		if err := k.sync(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Simulated kubelet sync failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(k.renew):
		case <-poke:
		}
	}
}

// sync does what the kubelet does every 10s: post node status when it
// differs from what the API server holds (or every 5 minutes), and renew
// the Lease.
func (k *Kubelet) sync(ctx context.Context) error {
	if err := k.register(ctx); err != nil {
		return err
	}
	overrides, paused := k.desired()
	if paused {
		return nil
	}
	k.fmu.Lock()
	now := time.Now().Add(k.clockOffset)
	k.fmu.Unlock()
	if err := k.postStatus(ctx, now, overrides, now.Sub(k.lastPost) >= NodeStatusReportFrequency); err != nil {
		return err
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

// postStatus writes the node status: healthy conditions with the overrides
// applied, when they differ from the server's or force is set.
func (k *Kubelet) postStatus(ctx context.Context, now time.Time, overrides map[corev1.NodeConditionType]corev1.NodeCondition, force bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := k.client.CoreV1().Nodes().Get(ctx, k.nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !fillStatus(&node.Status, now, overrides) && !force {
			return nil
		}
		if _, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err == nil {
			k.lastPost = now
		}
		return err
	})
}

// fillStatus sets the conditions and reports whether any condition's status,
// reason or message changed.
func fillStatus(st *corev1.NodeStatus, now time.Time, overrides map[corev1.NodeConditionType]corev1.NodeCondition) bool {
	hb := metav1.NewTime(now)
	want := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
	}
	for t, o := range overrides {
		found := false
		for i := range want {
			if want[i].Type == t {
				want[i].Status, want[i].Reason, want[i].Message = o.Status, o.Reason, o.Message
				found = true
			}
		}
		if !found {
			want = append(want, corev1.NodeCondition{Type: t, Status: o.Status, Reason: o.Reason, Message: o.Message})
		}
	}
	changed := len(st.Conditions) != len(want)
	for i := range want {
		want[i].LastHeartbeatTime = hb
		want[i].LastTransitionTime = hb
		seen := false
		for _, old := range st.Conditions {
			if old.Type != want[i].Type {
				continue
			}
			seen = true
			if old.Status == want[i].Status {
				want[i].LastTransitionTime = old.LastTransitionTime
			}
			if old.Status != want[i].Status || old.Reason != want[i].Reason || old.Message != want[i].Message {
				changed = true
			}
		}
		changed = changed || !seen
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
	return changed
}

// Event posts an Event about the node, as the kubelet does (e.g. reason
// SystemOOM, "System OOM encountered, victim process: java, pid: 4242").
func (k *Kubelet) Event(ctx context.Context, eventType, reason, message string) error {
	now := metav1.NewTime(time.Now())
	_, err := k.client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: k.nodeName + ".", Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: k.nodeName, UID: types.UID(k.nodeName)},
		Reason:         reason, Message: message, Type: eventType,
		Source:         corev1.EventSource{Component: "kubelet", Host: k.nodeName},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	return err
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
