package cli

import (
	"bytes"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// now is the test's "now"; every fixture time is relative to it.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) *metav1.Time { return ptr.To(metav1.NewTime(now.Add(-d))) }

// testEnv is an Env over a fake client holding objs, writing to the returned buffer.
func testEnv(t *testing.T, objs ...client.Object) (*Env, *bytes.Buffer) {
	t.Helper()
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	// The Event fields the apiserver selects on, which snapshot uses.
	eventField := func(f func(*corev1.Event) string) client.IndexerFunc {
		return func(o client.Object) []string { return []string{f(o.(*corev1.Event))} }
	}
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&corev1.Event{}, "involvedObject.kind", eventField(func(e *corev1.Event) string { return e.InvolvedObject.Kind })).
		WithIndex(&corev1.Event{}, "involvedObject.name", eventField(func(e *corev1.Event) string { return e.InvolvedObject.Name })).
		WithIndex(&corev1.Event{}, "reason", eventField(func(e *corev1.Event) string { return e.Reason })).
		WithObjects(objs...).Build()
	return &Env{Client: c, Out: out, Clock: clocktesting.NewFakePassiveClock(now)}, out
}

func node(name string, labels map[string]string, ready corev1.ConditionStatus, reason, msg string, since time.Duration) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: ready, Reason: reason, Message: msg, LastTransitionTime: *ago(since),
		}}},
	}
}

func deadKubeletNode(name string, labels map[string]string) *corev1.Node {
	return node(name, labels, corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", 10*time.Minute)
}

func kubeletUnit(active, sub string, since time.Duration) v1alpha1.UnitState {
	return v1alpha1.UnitState{Name: v1alpha1.UnitKubelet, UnitName: "kubelet.service", ActiveState: active, SubState: sub,
		UnitFileState: "disabled", Since: ago(since)}
}

func runtimeUnit(active, sub string, since time.Duration) v1alpha1.UnitState {
	return v1alpha1.UnitState{Name: v1alpha1.UnitContainerRuntime, UnitName: "containerd.service", ActiveState: active, SubState: sub,
		UnitFileState: "enabled", Since: ago(since)}
}

func report(name string, heartbeat time.Duration, units ...v1alpha1.UnitState) *v1alpha1.NodeReport {
	return &v1alpha1.NodeReport{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: v1alpha1.NodeReportStatus{HeartbeatTime: *ago(heartbeat), ReportInterval: metav1.Duration{Duration: 30 * time.Second},
			AgentVersion: "v0.1.0", Units: units},
	}
}

// kubeletDownDiagnosis is what the diagnosis controller writes for a dead
// kubelet, with a container runtime that died later as a second cause.
func kubeletDownDiagnosis(name string) *v1alpha1.NodeDiagnosis {
	return &v1alpha1.NodeDiagnosis{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: v1alpha1.NodeDiagnosisStatus{
			Summary:       "KubeletDown, ContainerRuntimeDown: kubelet.service is inactive (dead), disabled",
			LastDiagnosed: ago(4 * time.Minute),
			Checks: []v1alpha1.Evidence{
				{Source: "NodeCondition", Message: "Ready=Unknown, reason NodeStatusUnknown: Kubelet stopped posting node status.", ObservedAt: ago(10 * time.Minute)},
				{Source: "Lease", Message: "Lease kube-node-lease/" + name + " renewed 10m40s ago (stale after 20s)", ObservedAt: ago(10*time.Minute + 40*time.Second)},
				{Source: "NodeReport", Message: "node agent alive: last report 5s ago (silent after 1m30s)", ObservedAt: ago(5 * time.Second), Supports: true},
				{Source: "NodeReport", Message: "kubelet.service is inactive (dead), disabled", ObservedAt: ago(11 * time.Minute)},
			},
			Causes: []v1alpha1.DiagnosedCause{
				{Cause: v1alpha1.CauseKubeletDown, Since: *ago(10 * time.Minute), Evidence: []v1alpha1.Evidence{
					{Source: "NodeReport", Message: "kubelet.service is inactive (dead), disabled", ObservedAt: ago(11 * time.Minute), Supports: true},
					{Source: "Lease", Message: "Lease not renewed for 10m40s (the kubelet renews every 10s)", ObservedAt: ago(10*time.Minute + 40*time.Second), Supports: true},
				}},
				{Cause: v1alpha1.CauseContainerRuntimeDown, Since: *ago(4 * time.Minute), Evidence: []v1alpha1.Evidence{
					{Source: "NodeReport", Message: "containerd.service is failed (failed), enabled", ObservedAt: ago(4 * time.Minute), Supports: true},
				}},
			},
		},
	}
}

func policy(name string, priority int32, cause v1alpha1.Cause, action v1alpha1.ActionType, mode v1alpha1.Mode, mutate ...func(*v1alpha1.RemediationPolicy)) *v1alpha1.RemediationPolicy {
	p := &v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: v1alpha1.RemediationPolicySpec{
			Causes:   []v1alpha1.CauseMatch{{Cause: cause, For: metav1.Duration{Duration: 10 * time.Second}}},
			Action:   v1alpha1.Action{Type: action},
			Mode:     mode,
			Priority: priority,
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// remediation is a record as the policy controller creates it, created ago.
func remediation(name, node, pol string, mode v1alpha1.Mode, created time.Duration) *v1alpha1.Remediation {
	return &v1alpha1.Remediation{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, CreationTimestamp: *ago(created),
			Labels: map[string]string{v1alpha1.LabelNode: v1alpha1.LabelValue(node), v1alpha1.LabelPolicy: v1alpha1.LabelValue(pol), v1alpha1.LabelCause: string(v1alpha1.CauseKubeletDown)},
		},
		Spec: v1alpha1.RemediationSpec{
			NodeName: node, Cause: v1alpha1.CauseKubeletDown, CauseSince: *ago(created + 10*time.Second),
			Policy: pol, PolicyGeneration: 3, Mode: mode,
			Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet, Restart: &v1alpha1.RestartParams{RecoveryTimeout: metav1.Duration{Duration: 2 * time.Minute}}},
			Evidence: []v1alpha1.Evidence{
				{Source: "NodeReport", Message: "kubelet.service is inactive (dead), disabled", ObservedAt: ago(created + 11*time.Second), Supports: true},
				{Source: "Lease", Message: "Lease not renewed for 40s (the kubelet renews every 10s)", ObservedAt: ago(created + 40*time.Second), Supports: true},
				{Source: "NodeCondition", Message: "Ready=True: the node lifecycle controller has not noticed yet", Supports: false},
			},
		},
	}
}

// succeeded is a record the executor carried through both steps, started
// at, which took 14s.
func succeeded(r *v1alpha1.Remediation, at time.Duration) *v1alpha1.Remediation {
	r.Status = v1alpha1.RemediationStatus{
		Phase: v1alpha1.PhaseSucceeded, Reason: v1alpha1.ReasonRecovered,
		Message:  "node " + r.Spec.NodeName + " recovered 12s after the action",
		NodeTask: r.Name, StartedAt: ago(at), CompletedAt: ago(at - 14*time.Second),
		Steps: []v1alpha1.Step{
			{Name: v1alpha1.StepRestartUnit, Phase: v1alpha1.StepSucceeded,
				Description: "ask the node agent on " + r.Spec.NodeName + " to restart the kubelet unit (systemctl restart)",
				Message:     "node agent: restarted kubelet.service (was inactive/dead)",
				StartedAt:   ago(at - time.Second), CompletedAt: ago(at - 2*time.Second)},
			{Name: v1alpha1.StepWaitForRecovery, Phase: v1alpha1.StepSucceeded,
				Description: "wait up to 2m0s for Ready=True and a Lease renewed after the restart",
				Message:     "node Ready after 12s; Lease renewed at " + ago(at-13*time.Second).UTC().Format(time.RFC3339),
				StartedAt:   ago(at - 2*time.Second), CompletedAt: ago(at - 14*time.Second)},
		},
	}
	return r
}

func nodeTask(r *v1alpha1.Remediation, at time.Duration) *v1alpha1.NodeTask {
	before, after := kubeletUnit("inactive", "dead", 10*time.Minute+11*time.Second), kubeletUnit("active", "running", at-2*time.Second)
	return &v1alpha1.NodeTask{
		ObjectMeta: metav1.ObjectMeta{Name: r.Name},
		Spec:       v1alpha1.NodeTaskSpec{NodeName: r.Spec.NodeName, Action: v1alpha1.NodeActionRestartUnit, Unit: v1alpha1.UnitKubelet, Remediation: r.Name},
		Status: v1alpha1.NodeTaskStatus{
			Phase: v1alpha1.TaskSucceeded, StartedAt: ago(at - time.Second), CompletedAt: ago(at - 2*time.Second),
			Message: "restarted kubelet.service (was inactive/dead); the unit is disabled, so it will not start at the next boot: a person should run `systemctl enable kubelet.service`",
			Before:  &before, After: &after,
		},
	}
}
