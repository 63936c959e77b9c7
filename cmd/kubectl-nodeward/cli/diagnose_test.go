package cli

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

const kubeletDownStory = `Node:        worker-1
Ready:       Unknown since 2026-03-01T11:50:00Z (10m ago), NodeStatusUnknown: Kubelet stopped posting node status.
Diagnosis:   KubeletDown, ContainerRuntimeDown: kubelet.service is inactive (dead), disabled
Diagnosed:   2026-03-01T11:56:00Z (4m ago)

Checks:
  ✗ NodeCondition  Ready=Unknown, reason NodeStatusUnknown: Kubelet stopped posting node status. (observed 10m ago)
  ✗ Lease          Lease kube-node-lease/worker-1 renewed 10m40s ago (stale after 20s) (observed 10m ago)
  ✓ NodeReport     node agent alive: last report 5s ago (silent after 1m30s) (observed 5s ago)
  ✗ NodeReport     kubelet.service is inactive (dead), disabled (observed 11m ago)

Causes, most likely first:
  1. KubeletDown since 2026-03-01T11:50:00Z (10m ago)
     ✓ NodeReport     kubelet.service is inactive (dead), disabled (observed 11m ago)
     ✓ Lease          Lease not renewed for 10m40s (the kubelet renews every 10s) (observed 10m ago)
     Suggested action: RestartKubelet (Automatic) by policy restart-dead-kubelet (priority 10), once the cause has lasted 10s; this is the cause nodeward acts on
  2. ContainerRuntimeDown since 2026-03-01T11:56:00Z (4m ago)
     ✓ NodeReport     containerd.service is failed (failed), enabled (observed 4m ago)
     Suggested action: no policy covers this cause

Node agent (NodeReport worker-1):
  Version:     v0.1.0
  Heartbeat:   2026-03-01T11:59:55Z (5s ago)
  Interval:    30s
  Units:
    ✗ kubelet           kubelet.service inactive/dead, disabled, since 2026-03-01T11:49:00Z (11m ago)
    ✗ containerRuntime  containerd.service failed/failed, enabled, since 2026-03-01T11:56:00Z (4m ago)
`

const healthyStory = `Node:        worker-2
Ready:       True since 2026-03-01T10:00:00Z (120m ago), KubeletReady: kubelet is posting ready status
Diagnosis:   none: the node is healthy according to nodeward

Node agent (NodeReport worker-2):
  Version:     v0.1.0
  Heartbeat:   2026-03-01T11:59:40Z (20s ago)
  Interval:    30s
  Units:
    ✓ kubelet           kubelet.service active/running, disabled, since 2026-03-01T10:00:00Z (120m ago)
    ✓ containerRuntime  containerd.service active/running, enabled, since 2026-03-01T10:00:00Z (120m ago)
`

func TestDiagnose(t *testing.T) {
	general := map[string]string{"pool": "general"}
	// The policies of a cluster: the highest priority wins KubeletDown; no
	// active policy covering general nodes handles ContainerRuntimeDown.
	clusterPolicies := []client.Object{
		policy("restart-dead-kubelet", 10, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, v1alpha1.ModeAutomatic),
		policy("watch-kubelet", 0, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, ""),
		policy("restart-runtime-paused", 100, v1alpha1.CauseContainerRuntimeDown, v1alpha1.ActionRestartContainerRuntime, v1alpha1.ModeAutomatic,
			func(p *v1alpha1.RemediationPolicy) { p.Spec.Paused = true }),
		policy("restart-runtime-gpu", 100, v1alpha1.CauseContainerRuntimeDown, v1alpha1.ActionRestartContainerRuntime, v1alpha1.ModeAutomatic,
			func(p *v1alpha1.RemediationPolicy) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"pool": "gpu"}}
			}),
	}
	deadUnits := []v1alpha1.UnitState{kubeletUnit("inactive", "dead", 11*time.Minute), runtimeUnit("failed", "failed", 4*time.Minute)}
	upUnits := []v1alpha1.UnitState{kubeletUnit("active", "running", 2*time.Hour), runtimeUnit("active", "running", 2*time.Hour)}
	with := func(objs ...client.Object) []client.Object { return append(objs, clusterPolicies...) }

	tests := []struct {
		name    string
		objs    []client.Object
		node    string
		want    string   // the whole output, when set
		wantIn  []string // fragments the output must contain, when want is not set
		wantErr string
	}{{
		// A dead kubelet: the checks, both causes with their evidence, the
		// policy that wins KubeletDown by priority (and that the operator acts
		// on it), no active policy for ContainerRuntimeDown (one is paused,
		// one selects other nodes), and the agent's report.
		name: "kubelet down",
		objs: with(deadKubeletNode("worker-1", general), kubeletDownDiagnosis("worker-1"), report("worker-1", 5*time.Second, deadUnits...)),
		node: "worker-1", want: kubeletDownStory,
	}, {
		// A policy for ContainerRuntimeDown that can't act (a selector stored
		// before admission checked it): the cause says no policy acts, and
		// which policy was skipped, and why.
		name: "broken policy skipped",
		objs: with(deadKubeletNode("worker-1", general), kubeletDownDiagnosis("worker-1"), report("worker-1", 5*time.Second, deadUnits...),
			policy("restart-runtime-broken", 500, v1alpha1.CauseContainerRuntimeDown, v1alpha1.ActionRestartContainerRuntime, v1alpha1.ModeAutomatic,
				func(p *v1alpha1.RemediationPolicy) {
					p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"my pool": "general"}}
				})),
		node: "worker-1",
		wantIn: []string{"     Suggested action: no policy covers this cause\n" +
			`     Skipped: policy restart-runtime-broken can't act (InvalidNodeSelector): spec.nodeSelector.matchLabels: key "my pool" is not a valid label key`},
	}, {
		// No NodeDiagnosis: nodeward finds the node healthy; its Ready
		// condition and its agent's report are still shown.
		name: "healthy",
		objs: with(node("worker-2", general, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", 2*time.Hour), report("worker-2", 20*time.Second, upUnits...)),
		node: "worker-2", want: healthyStory,
	}, {
		// The policy that would win has not waited long enough yet: the line
		// says when it would act. Mode defaults to DryRun when the policy
		// leaves it empty.
		name: "cause too young for the policy",
		objs: []client.Object{deadKubeletNode("worker-1", general), report("worker-1", 5*time.Second, deadUnits...),
			func() client.Object {
				d := kubeletDownDiagnosis("worker-1")
				d.Status.Causes[0].Since = *ago(4 * time.Second)
				return d
			}(),
			policy("watch-kubelet", 0, v1alpha1.CauseKubeletDown, v1alpha1.ActionRestartKubelet, "")},
		node:   "worker-1",
		wantIn: []string{"Suggested action: RestartKubelet (DryRun) by policy watch-kubelet (priority 0), once the cause has lasted 10s (in 6s); this is the cause nodeward acts on\n"},
	}, {
		// Only the second cause has a policy: that is the one the operator acts on.
		name: "acts on the second cause",
		objs: []client.Object{deadKubeletNode("worker-1", general), kubeletDownDiagnosis("worker-1"), report("worker-1", 5*time.Second, deadUnits...),
			policy("restart-runtime", 0, v1alpha1.CauseContainerRuntimeDown, v1alpha1.ActionRestartContainerRuntime, v1alpha1.ModeAutomatic)},
		node: "worker-1",
		wantIn: []string{
			"     Suggested action: no policy covers this cause\n  2. ContainerRuntimeDown",
			"Suggested action: RestartContainerRuntime (Automatic) by policy restart-runtime (priority 0), once the cause has lasted 10s; this is the cause nodeward acts on\n",
		},
	}, {
		// A control-plane node is covered only by policies that include the
		// control plane.
		name: "control-plane node",
		objs: with(deadKubeletNode("cp-1", map[string]string{policies.LabelControlPlane: ""}), kubeletDownDiagnosis("cp-1"), report("cp-1", 5*time.Second, deadUnits...)),
		node: "cp-1",
		wantIn: []string{"  1. KubeletDown since 2026-03-01T11:50:00Z (10m ago)\n     ✓ NodeReport     kubelet.service is inactive (dead), disabled (observed 11m ago)\n" +
			"     ✓ Lease          Lease not renewed for 10m40s (the kubelet renews every 10s) (observed 10m ago)\n" +
			"     Suggested action: no policy covers this cause\n"},
	}, {
		// A node labelled nodeward.io/exclude=true is covered by no policy.
		name: "excluded node",
		objs: with(deadKubeletNode("worker-1", map[string]string{v1alpha1.LabelExclude: "true"}), kubeletDownDiagnosis("worker-1"), report("worker-1", 5*time.Second, deadUnits...)),
		node: "worker-1",
		wantIn: []string{"     ✓ Lease          Lease not renewed for 10m40s (the kubelet renews every 10s) (observed 10m ago)\n" +
			"     Suggested action: no policy covers this cause\n"},
	}, {
		// A diagnosis without causes (not Ready, cause unknown) and a node
		// without an agent.
		name: "cause unknown, no agent",
		objs: with(deadKubeletNode("worker-5", general), &v1alpha1.NodeDiagnosis{
			ObjectMeta: metav1.ObjectMeta{Name: "worker-5"},
			Status:     v1alpha1.NodeDiagnosisStatus{Summary: "cause unknown; failed checks: no report from the node agent"},
		}),
		node: "worker-5",
		wantIn: []string{
			"Diagnosis:   cause unknown; failed checks: no report from the node agent\nDiagnosed:   <none>\n",
			"Causes, most likely first:\n  none identified\n",
			"Node agent:  no NodeReport for this node: the agent is not installed or has never run here\n",
		},
	}, {
		// An agent that has not reported for three intervals is called out
		// as silent; a node without a Ready condition says so.
		name: "silent agent, no Ready condition",
		objs: []client.Object{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-6"}}, report("worker-6", 2*time.Minute)},
		node: "worker-6",
		wantIn: []string{
			"Ready:       unknown: the node has no Ready condition\n",
			"  Heartbeat:   2026-03-01T11:58:00Z (2m ago): SILENT, no report for over 1m30s\n",
			"  Units:\n    none reported\n",
		},
	}, {
		// An unknown node is an error that names it.
		name: "no such node", node: "nope", wantErr: `node "nope" not found`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, out := testEnv(t, tc.objs...)
			o := &DiagnoseOptions{Env: env}
			if err := o.Validate([]string{tc.node}); err != nil {
				t.Fatal(err)
			}
			checkErr(t, o.Run(context.Background()), tc.wantErr)
			checkOutput(t, out.String(), tc.want, tc.wantIn)
		})
	}
}

func TestDiagnoseValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		// The node's name is required...
		{"no node", nil, "exactly one argument"},
		// ...and only one.
		{"two nodes", []string{"a", "b"}, "exactly one argument"},
		{"one node", []string{"a"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, (&DiagnoseOptions{}).Validate(tc.args), tc.wantErr)
		})
	}
}
