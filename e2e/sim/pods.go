package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// podResync makes the pod runner look at its pods again now and then, so
// pods the controller-manager marked NotReady while the node was unhealthy
// become Ready again once the kubelet is healthy, as with a real kubelet.
const podResync = 30 * time.Second

// podRunner is the part of the simulated kubelet that runs pods: it watches
// the pods bound to its node (the real scheduler and controllers put them
// there), reports new ones Running and Ready with a pod IP, and makes the
// final delete of a pod being deleted, as the kubelet does once the pod's
// containers stopped (here at once). It runs while the kubelet runs — also
// while its heartbeats are paused, but then it reports no pod Ready, as a
// starved kubelet reports nothing.
type podRunner struct {
	kubelet *Kubelet
	client  kubernetes.Interface
	node    string
	subnet  uint32
	next    atomic.Uint32
}

// runPods runs the node's pods until ctx ends; the returned channel closes
// when it stopped.
func (k *Kubelet) runPods(ctx context.Context) <-chan struct{} {
	h := fnv.New32a()
	h.Write([]byte(k.nodeName))
	r := &podRunner{kubelet: k, client: k.client, node: k.nodeName, subnet: h.Sum32() % 250}
	factory := informers.NewSharedInformerFactoryWithOptions(k.client, podResync, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName=" + k.nodeName
	}))
	inf := factory.Core().V1().Pods().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.sync(ctx, o) },
		UpdateFunc: func(_, o any) { r.sync(ctx, o) },
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		inf.RunWithContext(ctx)
	}()
	return done
}

func (r *podRunner) sync(ctx context.Context, o any) {
	pod, ok := o.(*corev1.Pod)
	if !ok || ctx.Err() != nil {
		return
	}
	log := klog.FromContext(ctx).WithValues("node", r.node, "pod", klog.KObj(pod))
	if pod.DeletionTimestamp != nil {
		err := r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
			log.Error(err, "Simulated kubelet: final delete of a pod failed")
		}
		return
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || runningAndReady(pod) || !r.kubelet.podsHealthy() {
		return
	}
	pod = pod.DeepCopy()
	r.fillStatus(pod, metav1.Now())
	if _, err := r.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil &&
		!apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		// A conflict means a newer pod is on its way to this handler.
		log.Error(err, "Simulated kubelet: pod status update failed")
	}
}

func runningAndReady(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// fillStatus reports the pod Running, every container started and ready.
func (r *podRunner) fillStatus(pod *corev1.Pod, now metav1.Time) {
	st := &pod.Status
	st.Phase = corev1.PodRunning
	if st.PodIP == "" {
		n := r.next.Add(1)
		ip := fmt.Sprintf("10.%d.%d.%d", 100+r.subnet%150, (n/250)%250, n%250+2)
		st.PodIP, st.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		setPodCondition(st, t, now)
	}
	st.ContainerStatuses = st.ContainerStatuses[:0]
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image,
			ContainerID: fmt.Sprintf("containerd://%s-%s", pod.UID, c.Name),
			Ready:       true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
}

func setPodCondition(st *corev1.PodStatus, t corev1.PodConditionType, now metav1.Time) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			if st.Conditions[i].Status != corev1.ConditionTrue {
				st.Conditions[i].Status, st.Conditions[i].Reason, st.Conditions[i].Message = corev1.ConditionTrue, "", ""
				st.Conditions[i].LastTransitionTime = now
			}
			return
		}
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
}

// podsHealthy reports whether the kubelet is in a state to report pods
// Ready: heartbeats not paused and no Ready override other than True.
func (k *Kubelet) podsHealthy() bool {
	overrides, paused := k.desired()
	if paused {
		return false
	}
	if c, ok := overrides[corev1.NodeReady]; ok && c.Status != corev1.ConditionTrue {
		return false
	}
	return true
}
