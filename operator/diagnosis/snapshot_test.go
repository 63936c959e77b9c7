package diagnosis

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/ptr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// A snapshot written from an Input and read back diagnoses the same: what
// `kubectl nodeward snapshot` writes is what the operator diagnosed.
func TestSnapshotRoundTrip(t *testing.T) {
	observed := ago(25 * time.Second)
	withLogs := withLog(kubeletActivating, `E1202 10:00:01.123 4321 run.go:74] "command failed" err="failed to run Kubelet: running with swap on is not supported, please disable swap!"`)
	withLogs.Restarts = ptr.To[int32](7)
	rep := report(10*time.Second, withLogs, runtimeActive)
	rep.Status.Probes = &v1alpha1.NodeProbes{Memory: memExhausted(), Swap: &v1alpha1.SwapProbe{TotalBytes: 2 << 30, UsedBytes: 1 << 20}}
	oom := systemOOM(time.Minute)
	sandbox := podEvent("web-1", "FailedCreatePodSandBox", "Failed to create pod sandbox: rpc error: code = DeadlineExceeded desc = context deadline exceeded", 4, time.Minute)
	for _, tc := range []struct {
		name string
		in   Input
	}{
		{"healthy", Input{Node: node(readyTrue), Lease: lease(3 * time.Second), LeaseObservedAt: ptrTime(ago(3 * time.Second)),
			Report: report(10*time.Second, kubeletActive, runtimeActive), Now: now}},
		{"kubelet crash loop, OOM, sandbox failures", Input{Node: node(statusUnknown), Lease: lease(time.Minute), LeaseObservedAt: &observed,
			Report: rep, Events: []corev1.Event{oom}, PodEvents: []corev1.Event{sandbox}, Now: now}},
		{"cluster degraded, observation unknown", Input{Node: node(statusUnknown), Lease: lease(time.Minute), Report: report(10*time.Minute, kubeletActive),
			Cluster: ClusterState{Degraded: true, Late: 6, Total: 10, LateAgentsOnTime: ptr.To(0), Since: ago(time.Minute)}, Now: now,
			Unknown: map[string]bool{UnknownLeaseObservedAt: true}}},
		{"fleet fault", Input{Node: node(statusUnknown), Lease: lease(time.Minute), LeaseObservedAt: &observed, Report: report(10*time.Second, withLogs),
			Cluster: ClusterState{Late: 4, Total: 10, LateAgentsOnTime: ptr.To(4), SameFault: FatalSignature(&withLogs), SameFaultNodes: 4}, Now: now}},
		{"no lease, no agent, pod events unknown", Input{Node: node(statusUnknown), Now: now, Unknown: map[string]bool{UnknownPodEvents: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := wire(t, tc.in)
			b, err := SnapshotOf(in).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseSnapshot(b)
			if err != nil {
				t.Fatalf("ParseSnapshot of what SnapshotOf wrote: %v\n%s", err, b)
			}
			want, got := Diagnose(in, DefaultThresholds()), Diagnose(s.Input(), DefaultThresholds())
			if !equality.Semantic.DeepEqual(want, got) {
				t.Errorf("diagnosis changed through the snapshot:\nlive:     %+v\nsnapshot: %+v\n%s", want, got, b)
			}
		})
	}
}

// wire makes the Input what a live one is: objects as the API server
// returns them (their times in whole seconds, as metav1.Time travels) and
// the "now" and observation times in whole seconds, as kubectl nodeward
// snapshot takes them (a snapshot's times are RFC 3339 seconds).
func wire(t *testing.T, in Input) Input {
	t.Helper()
	rt := func(in, out any) {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	out := in
	out.Node = &corev1.Node{}
	rt(in.Node, out.Node)
	if in.Report != nil {
		out.Report = &v1alpha1.NodeReport{}
		rt(in.Report, out.Report)
	}
	out.Events, out.PodEvents = nil, nil
	rt(in.Events, &out.Events)
	rt(in.PodEvents, &out.PodEvents)
	out.Now = in.Now.Truncate(time.Second)
	if in.LeaseObservedAt != nil {
		out.LeaseObservedAt = ptrTime(in.LeaseObservedAt.Truncate(time.Second))
	}
	out.Cluster.Since = in.Cluster.Since.Truncate(time.Second)
	return out
}

// ParseSnapshot is strict, and its errors name the field.
func TestParseSnapshotErrors(t *testing.T) {
	const valid = `apiVersion: nodeward.io/v1alpha1
kind: NodeSnapshot
takenAt: "2026-03-01T12:00:00Z"
node:
  metadata: {name: node-1}
`
	for _, tc := range []struct {
		name, doc, wantErr string
	}{
		{"valid", valid, ""},
		{"unknown field", valid + "nodeInfo: {}\n", `unknown field "nodeInfo"`},
		{"unknown field deep", valid + "lease: {renewTime: \"2026-03-01T11:59:50.000000Z\", renewedBy: x}\n", `unknown field "lease.renewedBy"`},
		{"bad unknown path", valid + "unknown: [lease, kubelet.logs]\n", `unknown[1] "kubelet.logs" is not one of`},
		{"missing takenAt", strings.Replace(valid, "takenAt: \"2026-03-01T12:00:00Z\"\n", "", 1), "takenAt is required"},
		{"wrong kind", strings.Replace(valid, "NodeSnapshot", "NodeReport", 1), `"NodeReport"`},
		{"no node", strings.Replace(valid, "node:\n  metadata: {name: node-1}\n", "", 1), "node is required"},
		{"mistyped value", valid + "cluster: {total: thirty, late: 3}\n", "cluster.total"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSnapshot([]byte(tc.doc))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("ParseSnapshot: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("ParseSnapshot error %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}
