package diagnosis

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func podEvent(pod, reason, msg string, count int32, lastAgo time.Duration) corev1.Event {
	return corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("%s.%s", pod, reason)},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod},
		Reason:         reason, Message: msg, Type: corev1.EventTypeWarning, Count: count,
		Source:         corev1.EventSource{Component: "kubelet", Host: nodeName},
		FirstTimestamp: metav1.NewTime(ago(lastAgo + time.Minute)), LastTimestamp: metav1.NewTime(ago(lastAgo)),
	}
}

// Sandbox failures of many pods differ in pod names, sandbox IDs and
// times: they fold into one entry with the summed count; distinct failures
// stay apart, and only the newest MaxPodEvents are kept.
func TestFoldPodEvents(t *testing.T) {
	cni := func(id string) string {
		return `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "` + id + `": plugin type="calico" failed (add): stat /var/lib/calico/nodename: no such file or directory`
	}
	var evs []corev1.Event
	evs = append(evs, podEvent("web-1", "FailedCreatePodSandBox", cni("9f3a0c1de2b4"), 3, 5*time.Minute))
	evs = append(evs, podEvent("web-2", "FailedCreatePodSandBox", cni("0b7e6fd1c8a9"), 2, time.Minute))
	evs = append(evs, podEvent("api-7", "FailedKillPod", "error killing pod: failed to \"KillPodSandbox\" with KillPodSandboxError: \"rpc error: code = DeadlineExceeded desc = context deadline exceeded\"", 1, 2*time.Minute))
	got := FoldPodEvents(evs)
	if len(got) != 2 {
		t.Fatalf("folded to %d events, want 2: %+v", len(got), got)
	}
	// Oldest first: the kill failure (2m ago), then the sandbox one (1m ago).
	if got[0].Reason != "FailedKillPod" || got[1].Reason != "FailedCreatePodSandBox" {
		t.Errorf("reasons %s, %s; want FailedKillPod, FailedCreatePodSandBox", got[0].Reason, got[1].Reason)
	}
	sb := got[1]
	if sb.Count != 5 || sb.InvolvedObject.Name != "web-2" || !sb.FirstTimestamp.Time.Equal(ago(6*time.Minute)) || !sb.LastTimestamp.Time.Equal(ago(time.Minute)) {
		t.Errorf("folded sandbox event: count %d, pod %s, first %s, last %s; want 5, web-2 (the newest), 6m and 1m ago",
			sb.Count, sb.InvolvedObject.Name, sb.FirstTimestamp, sb.LastTimestamp)
	}

	var many []corev1.Event
	for i := range MaxPodEvents + 5 {
		many = append(many, podEvent(fmt.Sprintf("p%d", i), "FailedCreatePodContainer", fmt.Sprintf("unable to ensure pod container exists: failed to create container for [kubepods burstable pod%d]: mkdir /sys/fs/cgroup/x%c: no space left on device", i, 'a'+i), 1, time.Duration(30-i)*time.Minute))
	}
	if got := FoldPodEvents(many); len(got) != MaxPodEvents || got[len(got)-1].InvolvedObject.Name != fmt.Sprintf("p%d", MaxPodEvents+4) {
		t.Errorf("kept %d events (newest %s), want the newest %d", len(got), got[len(got)-1].InvolvedObject.Name, MaxPodEvents)
	}
}

func TestStripEvent(t *testing.T) {
	e := podEvent("web-1", "FailedCreatePodSandBox", "Failed to create pod sandbox", 3, time.Minute)
	e.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	e.Annotations = map[string]string{"a": "b"}
	e.InvolvedObject.UID, e.InvolvedObject.FieldPath = "uid-1", "spec.containers{web}"
	e.Related = &corev1.ObjectReference{Kind: "Node"}
	got, _ := StripEvent(&e)
	s := got.(*corev1.Event)
	if s.ManagedFields != nil || s.Annotations != nil || s.Related != nil || s.InvolvedObject.UID != "" || s.InvolvedObject.FieldPath != "" {
		t.Errorf("StripEvent kept %+v", s)
	}
	if s.Reason != e.Reason || s.Message != e.Message || s.Count != 3 || s.Source.Host != nodeName || s.InvolvedObject.Name != "web-1" || !s.LastTimestamp.Equal(&e.LastTimestamp) {
		t.Errorf("StripEvent lost what the diagnosis reads: %+v", s)
	}
}

func gatherClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	ev := func(f func(e *corev1.Event) string) client.IndexerFunc {
		return func(o client.Object) []string { return []string{f(o.(*corev1.Event))} }
	}
	return fake.NewClientBuilder().WithScheme(s).
		WithIndex(&corev1.Event{}, IndexEventNode, ev(func(e *corev1.Event) string { return e.InvolvedObject.Name })).
		WithIndex(&corev1.Event{}, "involvedObject.kind", ev(func(e *corev1.Event) string { return e.InvolvedObject.Kind })).
		WithIndex(&corev1.Event{}, "reason", ev(func(e *corev1.Event) string { return e.Reason })).
		WithObjects(objs...).Build()
}

// The operator's gatherer fills LeaseObservedAt only from an observation
// of the renewTime at hand; the API gatherer never knows it, and reads the
// node's pod failures across namespaces by the kubelet that wrote them.
func TestGather(t *testing.T) {
	oom := systemOOM(time.Minute)
	sandbox := podEvent("web-1", "FailedCreatePodSandBox", "Failed to create pod sandbox: x", 2, time.Minute)
	other := podEvent("web-9", "FailedCreatePodSandBox", "Failed to create pod sandbox: y", 1, time.Minute)
	other.Source.Host = "worker-9"
	probe := podEvent("web-1", "Unhealthy", "Readiness probe failed", 40, time.Minute)
	podNamedLikeNode := podEvent(nodeName, "Killing", "Stopping container", 1, time.Minute)
	c := gatherClient(t, node(statusUnknown), lease(30*time.Second), report(10*time.Second, kubeletActive), &oom, &sandbox, &other, &probe, &podNamedLikeNode,
		&v1alpha1.ClusterDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ClusterDiagnosisName},
			Status: v1alpha1.ClusterDiagnosisStatus{LateNodes: 4, TotalNodes: 10, Causes: []v1alpha1.DiagnosedCause{{Cause: v1alpha1.CauseControlPlaneDegraded, Since: metav1.NewTime(ago(time.Minute))}}}})
	ctx := context.Background()

	for _, tc := range []struct {
		name     string
		observed func(string) (time.Time, time.Time, bool)
		want     *time.Time
	}{
		{"observed this renewTime", func(string) (time.Time, time.Time, bool) { return ago(30 * time.Second), ago(25 * time.Second), true }, ptrTime(ago(25 * time.Second))},
		{"observed an older renewTime", func(string) (time.Time, time.Time, bool) { return ago(40 * time.Second), ago(35 * time.Second), true }, nil},
		{"not observed yet", func(string) (time.Time, time.Time, bool) { return time.Time{}, time.Time{}, false }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := CachedGatherer(c, nil, nil)
			g.ObservedRenewal = tc.observed
			in, err := g.Gather(ctx, nodeName, now)
			if err != nil {
				t.Fatal(err)
			}
			if (in.LeaseObservedAt == nil) != (tc.want == nil) || tc.want != nil && !in.LeaseObservedAt.Equal(*tc.want) {
				t.Errorf("LeaseObservedAt = %v, want %v", in.LeaseObservedAt, tc.want)
			}
			if in.Unknown[UnknownLeaseObservedAt] != (tc.want == nil) {
				t.Errorf("Unknown = %v", in.Unknown)
			}
		})
	}

	in, err := APIGatherer(c).Gather(ctx, nodeName, now)
	if err != nil {
		t.Fatal(err)
	}
	if in.Lease == nil || in.Report == nil || in.LeaseObservedAt != nil || !in.Unknown[UnknownLeaseObservedAt] {
		t.Errorf("API gather: lease %v, report %v, observedAt %v, unknown %v", in.Lease, in.Report, in.LeaseObservedAt, in.Unknown)
	}
	if len(in.Events) != 1 || in.Events[0].Reason != EventReasonSystemOOM {
		t.Errorf("node events %+v, want the SystemOOM only (not the pod named like the node)", in.Events)
	}
	if len(in.PodEvents) != 1 || in.PodEvents[0].InvolvedObject.Name != "web-1" || in.PodEvents[0].Reason != "FailedCreatePodSandBox" {
		t.Errorf("pod events %+v, want web-1's sandbox failure only", in.PodEvents)
	}
	if !in.Cluster.Degraded || in.Cluster.Late != 4 || in.Cluster.Total != 10 || in.Unknown[UnknownCluster] {
		t.Errorf("cluster %+v, want degraded 4 of 10 from the ClusterDiagnosis", in.Cluster)
	}
	if got := slices.Sorted(maps.Keys(in.Unknown)); !slices.Equal(got, []string{UnknownLeaseObservedAt}) {
		t.Errorf("unknown %v, want only %s", got, UnknownLeaseObservedAt)
	}
}

func ptrTime(t time.Time) *time.Time { return &t }
