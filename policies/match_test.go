package policies

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// --- builders -------------------------------------------------------------

func node(name string, labels map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

var (
	worker       = node("worker-1", map[string]string{"kubernetes.io/hostname": "worker-1", "pool": "general"})
	gpuWorker    = node("gpu-1", map[string]string{"kubernetes.io/hostname": "gpu-1", "pool": "gpu"})
	controlPlane = node("cp-1", map[string]string{"kubernetes.io/hostname": "cp-1", LabelControlPlane: ""})
	excluded     = node("worker-2", map[string]string{"pool": "general", v1alpha1.LabelExclude: "true"})
)

type policyOpt func(*v1alpha1.RemediationPolicy)

func policy(name string, opts ...policyOpt) v1alpha1.RemediationPolicy {
	p := v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: v1alpha1.RemediationPolicySpec{
			Causes: []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseKubeletDown, For: metav1.Duration{Duration: time.Minute}}},
			Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet},
			Mode:   v1alpha1.ModeAutomatic,
		},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func selector(matchLabels map[string]string) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) {
		p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: matchLabels}
	}
}

func priority(n int32) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) { p.Spec.Priority = n }
}

func includeControlPlane(p *v1alpha1.RemediationPolicy) { p.Spec.IncludeControlPlane = true }

func paused(p *v1alpha1.RemediationPolicy) { p.Spec.Paused = true }

func deleting(p *v1alpha1.RemediationPolicy) {
	p.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	p.Finalizers = []string{"example.com/hold"}
}

func handles(cause v1alpha1.Cause, forDur time.Duration) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) {
		p.Spec.Causes = []v1alpha1.CauseMatch{{Cause: cause, For: metav1.Duration{Duration: forDur}}}
	}
}

func diagnosed(causes ...v1alpha1.Cause) []v1alpha1.DiagnosedCause {
	since := metav1.NewTime(time.Date(2026, 11, 25, 11, 59, 0, 0, time.UTC))
	out := make([]v1alpha1.DiagnosedCause, 0, len(causes))
	for _, c := range causes {
		out = append(out, v1alpha1.DiagnosedCause{Cause: c, Since: since})
	}
	return out
}

// --- Covers ---------------------------------------------------------------

func TestCovers(t *testing.T) {
	tests := []struct {
		name       string
		policy     v1alpha1.RemediationPolicy
		node       *corev1.Node
		want       bool
		wantReason string
	}{
		{
			// No selector covers every worker.
			name: "no selector, worker", policy: policy("all"), node: worker, want: true,
		},
		{
			// The exclude label wins over a matching selector and includeControlPlane.
			name:   "exclude label wins",
			policy: policy("all", selector(map[string]string{"pool": "general"}), includeControlPlane),
			node:   excluded, want: false, wantReason: "nodeward.io/exclude=true",
		},
		{
			// Only "true" excludes.
			name:   "exclude label false",
			policy: policy("all"),
			node:   node("worker-3", map[string]string{v1alpha1.LabelExclude: "false"}), want: true,
		},
		{
			// A control-plane node (label present, value empty as kubeadm sets it) is left alone by default.
			name: "control plane excluded", policy: policy("all"), node: controlPlane,
			want: false, wantReason: "includeControlPlane",
		},
		{
			// …unless the policy opts in.
			name: "control plane included", policy: policy("all", includeControlPlane), node: controlPlane, want: true,
		},
		{
			// matchLabels matches.
			name: "selector match", policy: policy("gpu", selector(map[string]string{"pool": "gpu"})), node: gpuWorker, want: true,
		},
		{
			// matchLabels does not match.
			name: "selector mismatch", policy: policy("gpu", selector(map[string]string{"pool": "gpu"})), node: worker,
			want: false, wantReason: "does not match spec.nodeSelector",
		},
		{
			// matchExpressions are honoured too.
			name: "selector expression",
			policy: policy("not-gpu", func(p *v1alpha1.RemediationPolicy) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "pool", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"gpu"}},
				}}
			}),
			node: worker, want: true,
		},
		{
			// An empty selector selects everything.
			name: "empty selector", policy: policy("all", selector(nil)), node: gpuWorker, want: true,
		},
		{
			// A selector that can't be read selects nothing (fail closed).
			name: "invalid selector",
			policy: policy("broken", func(p *v1alpha1.RemediationPolicy) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "pool", Operator: "Near", Values: []string{"gpu"}},
				}}
			}),
			node: worker, want: false, wantReason: "spec.nodeSelector is invalid",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := Covers(&tc.policy, tc.node)
			if got != tc.want {
				t.Fatalf("Covers = %t (%q), want %t", got, reason, tc.want)
			}
			if tc.want && reason != "" {
				t.Errorf("covered with a reason %q", reason)
			}
			if !strings.Contains(reason, tc.wantReason) {
				t.Errorf("reason %q does not contain %q", reason, tc.wantReason)
			}
		})
	}
}

// --- Select ---------------------------------------------------------------

func TestSelect(t *testing.T) {
	kubeletDown, runtimeDown := v1alpha1.CauseKubeletDown, v1alpha1.CauseContainerRuntimeDown
	tests := []struct {
		name       string
		policies   []v1alpha1.RemediationPolicy
		node       *corev1.Node
		causes     []v1alpha1.DiagnosedCause
		wantPolicy string // "" for no match
		wantCause  v1alpha1.Cause
		wantFor    time.Duration
	}{
		{
			// One covering policy for the cause wins, with its "for".
			name:     "single policy",
			policies: []v1alpha1.RemediationPolicy{policy("restart-kubelet", handles(kubeletDown, 2*time.Minute))},
			node:     worker, causes: diagnosed(kubeletDown),
			wantPolicy: "restart-kubelet", wantCause: kubeletDown, wantFor: 2 * time.Minute,
		},
		{
			// A paused policy is skipped even with the higher priority.
			name:     "paused skipped",
			policies: []v1alpha1.RemediationPolicy{policy("urgent", priority(100), paused), policy("normal")},
			node:     worker, causes: diagnosed(kubeletDown),
			wantPolicy: "normal", wantCause: kubeletDown, wantFor: time.Minute,
		},
		{
			// A policy being deleted is skipped.
			name:     "deleting skipped",
			policies: []v1alpha1.RemediationPolicy{policy("going", priority(100), deleting), policy("normal")},
			node:     worker, causes: diagnosed(kubeletDown),
			wantPolicy: "normal", wantCause: kubeletDown, wantFor: time.Minute,
		},
		{
			// Only paused policies → no match.
			name:     "all paused",
			policies: []v1alpha1.RemediationPolicy{policy("urgent", paused)},
			node:     worker, causes: diagnosed(kubeletDown),
		},
		{
			// The highest priority wins, whatever the names or list order.
			name:     "priority",
			policies: []v1alpha1.RemediationPolicy{policy("a-low", priority(1)), policy("z-high", priority(10)), policy("m-none")},
			node:     worker, causes: diagnosed(kubeletDown),
			wantPolicy: "z-high", wantCause: kubeletDown, wantFor: time.Minute,
		},
		{
			// Equal priority: the name that sorts first wins, whatever the list order.
			name:     "name tie-break",
			policies: []v1alpha1.RemediationPolicy{policy("restart-b", priority(5)), policy("restart-a", priority(5))},
			node:     worker, causes: diagnosed(kubeletDown),
			wantPolicy: "restart-a", wantCause: kubeletDown, wantFor: time.Minute,
		},
		{
			// A higher-priority policy that does not cover the node is ignored.
			name: "uncovering policy ignored",
			policies: []v1alpha1.RemediationPolicy{
				policy("gpu-only", priority(100), selector(map[string]string{"pool": "gpu"})),
				policy("general"),
			},
			node: worker, causes: diagnosed(kubeletDown),
			wantPolicy: "general", wantCause: kubeletDown, wantFor: time.Minute,
		},
		{
			// The first cause in the diagnosis' ranking wins, even against a higher-priority policy for a later cause.
			name: "first cause wins",
			policies: []v1alpha1.RemediationPolicy{
				policy("runtime", priority(100), handles(runtimeDown, 0)),
				policy("kubelet", priority(0), handles(kubeletDown, 30*time.Second)),
			},
			node: worker, causes: diagnosed(kubeletDown, runtimeDown),
			wantPolicy: "kubelet", wantCause: kubeletDown, wantFor: 30 * time.Second,
		},
		{
			// No policy handles the first cause: the next cause that one handles wins.
			name:     "later cause when the first is unhandled",
			policies: []v1alpha1.RemediationPolicy{policy("runtime", handles(runtimeDown, 0))},
			node:     worker, causes: diagnosed(kubeletDown, runtimeDown),
			wantPolicy: "runtime", wantCause: runtimeDown, wantFor: 0,
		},
		{
			// An excluded node matches nothing.
			name:     "excluded node",
			policies: []v1alpha1.RemediationPolicy{policy("all", priority(100), includeControlPlane)},
			node:     excluded, causes: diagnosed(kubeletDown),
		},
		{
			// No causes, no match.
			name:     "no causes",
			policies: []v1alpha1.RemediationPolicy{policy("all")},
			node:     worker,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := Select(tc.policies, tc.node, tc.causes)
			if tc.wantPolicy == "" {
				if ok {
					t.Fatalf("matched policy %s for %s, want no match", m.Policy.Name, m.Cause.Cause)
				}
				return
			}
			if !ok {
				t.Fatalf("no match, want policy %s", tc.wantPolicy)
			}
			if m.Policy.Name != tc.wantPolicy || m.Cause.Cause != tc.wantCause || m.For != tc.wantFor {
				t.Errorf("match = %s/%s for %s, want %s/%s for %s", m.Policy.Name, m.Cause.Cause, m.For, tc.wantPolicy, tc.wantCause, tc.wantFor)
			}
		})
	}
}

// Select points into the caller's slice, so that the caller sees the policy
// as listed (and can patch its status).
func TestSelectReturnsListedPolicy(t *testing.T) {
	ps := []v1alpha1.RemediationPolicy{policy("b"), policy("a")}
	m, ok := Select(ps, worker, diagnosed(v1alpha1.CauseKubeletDown))
	if !ok || m.Policy != &ps[1] {
		t.Fatalf("Select returned %p, want &ps[1] (%p)", m.Policy, &ps[1])
	}
}

// --- RecordName -----------------------------------------------------------

func TestRecordName(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))

	// The name is readable and a pure function of node, cause and since.
	got := RecordName("worker-1", v1alpha1.CauseKubeletDown, since)
	if want := "worker-1-kubeletdown-1795608000"; got != want {
		t.Errorf("RecordName = %q, want %q", got, want)
	}
	if again := RecordName("worker-1", v1alpha1.CauseKubeletDown, since); again != got {
		t.Errorf("RecordName not deterministic: %q then %q", got, again)
	}
	// Another episode (a later since) or another cause is another record.
	later := metav1.NewTime(since.Add(time.Minute))
	if RecordName("worker-1", v1alpha1.CauseKubeletDown, later) == got {
		t.Error("a later episode got the same name")
	}
	if RecordName("worker-1", v1alpha1.CauseContainerRuntimeDown, since) == got {
		t.Error("another cause got the same name")
	}
	assertObjectName(t, got)
}

func TestRecordNameLongNode(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	label := func(c string, n int) string { return strings.Repeat(c, n) }

	tests := []struct {
		name string
		node string
	}{
		// Four DNS labels, 253 characters: the longest node name there is.
		{"253 characters", label("a", 63) + "." + label("b", 63) + "." + label("c", 63) + "." + label("d", 61)},
		// The same length with a dot where the name is cut (index 235):
		// cutting must not leave a dot before the hash.
		{"dot at the cut", label("a", 63) + "." + label("b", 63) + "." + label("c", 63) + "." + label("d", 43) + "." + label("e", 17)},
		// A dash at the cut.
		{"dash at the cut", label("a", 63) + "." + label("b", 63) + "." + label("c", 63) + "." + label("d", 43) + "-" + label("e", 17)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.node) != 253 || len(validation.IsDNS1123Subdomain(tc.node)) != 0 {
				t.Fatalf("test node name is not a valid 253-character name: %d, %v", len(tc.node), validation.IsDNS1123Subdomain(tc.node))
			}
			got := RecordName(tc.node, v1alpha1.CauseContainerRuntimeDown, since)
			if len(got) > MaxRecordName {
				t.Fatalf("RecordName is %d characters, want ≤ %d", len(got), MaxRecordName)
			}
			assertObjectName(t, got)
			if again := RecordName(tc.node, v1alpha1.CauseContainerRuntimeDown, since); again != got {
				t.Errorf("RecordName not deterministic: %q then %q", got, again)
			}
			// The cut-off part (cause, since) still tells records apart.
			if RecordName(tc.node, v1alpha1.CauseContainerRuntimeDown, metav1.NewTime(since.Add(time.Second))) == got {
				t.Error("two episodes of a long-named node got the same name")
			}
			if RecordName(tc.node, v1alpha1.CauseKubeletDown, since) == got {
				t.Error("two causes on a long-named node got the same name")
			}
		})
	}
}

// assertObjectName checks that name can name a Remediation (and its
// NodeTask, which takes the same name).
func assertObjectName(t *testing.T, name string) {
	t.Helper()
	if errs := validation.IsDNS1123Subdomain(name); len(errs) != 0 {
		t.Errorf("%q is not a valid object name: %v", name, errs)
	}
}
