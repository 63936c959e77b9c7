package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/nodeward/nodeward/e2e/controlplane"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// apiClient starts a real kube-apiserver and etcd (envtest on the project's
// own control-plane binaries) with the generated CRDs installed, and a
// client for it.
func apiClient(t *testing.T) client.Client {
	t.Helper()
	assets, err := controlplane.EnvtestAssets()
	if err != nil {
		if os.Getenv("NODEWARD_REQUIRE_CONTROLPLANE") == "1" {
			t.Fatalf("control-plane binaries: %v", err)
		}
		t.Skipf("control-plane binaries missing (make controlplane): %v", err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "..", "config", "crd")},
		ErrorIfCRDPathMissing: true,
		// A loaded machine (other builds, a bench) can take well over
		// envtest's 20s default to start an apiserver.
		ControlPlaneStartTimeout: 3 * time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	// The core and apiextensions types too: the policy status code lists
	// nodes, and a test may edit a CRD.
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, corev1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func validPolicy(name string) *v1alpha1.RemediationPolicy {
	return &v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.RemediationPolicySpec{
			Causes: []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseKubeletDown, For: metav1.Duration{Duration: 10 * time.Second}}},
			Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet},
			Mode:   v1alpha1.ModeAutomatic,
		},
	}
}

// Bad policies are refused by the real apiserver with a message that names
// the field; the defaults are applied to a good one.
func TestPolicyValidation(t *testing.T) {
	c := apiClient(t)
	ctx := context.Background()

	good := validPolicy("good")
	good.Spec.Mode = ""
	if err := c.Create(ctx, good); err != nil {
		t.Fatalf("valid policy refused: %v", err)
	}
	if good.Spec.Mode != v1alpha1.ModeDryRun {
		t.Errorf("default mode = %q, want DryRun (the safe default)", good.Spec.Mode)
	}

	cases := []struct {
		name   string
		mutate func(*v1alpha1.RemediationPolicy)
		want   string // a fragment of the apiserver's message, naming the field
	}{
		// No causes: the policy would match nothing.
		{"no causes", func(p *v1alpha1.RemediationPolicy) { p.Spec.Causes = nil }, "spec.causes"},
		// An unknown cause name.
		{"unknown cause", func(p *v1alpha1.RemediationPolicy) { p.Spec.Causes[0].Cause = "KubeletSad" }, "spec.causes[0].cause"},
		// The same cause twice.
		{"duplicate cause", func(p *v1alpha1.RemediationPolicy) { p.Spec.Causes = append(p.Spec.Causes, p.Spec.Causes[0]) }, "spec.causes[1]"},
		// A negative duration.
		{"negative for", func(p *v1alpha1.RemediationPolicy) { p.Spec.Causes[0].For.Duration = -time.Second }, "spec.causes[0].for"},
		// An action outside the closed set.
		{"unknown action", func(p *v1alpha1.RemediationPolicy) { p.Spec.Action.Type = "RunScript" }, "spec.action.type"},
		// An unknown mode.
		{"unknown mode", func(p *v1alpha1.RemediationPolicy) { p.Spec.Mode = "Sometimes" }, "spec.mode"},
		// A recovery timeout too short to observe recovery.
		{"recovery timeout too short", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action.Restart = &v1alpha1.RestartParams{RecoveryTimeout: metav1.Duration{Duration: time.Second}}
		}, "spec.action.restart.recoveryTimeout"},
		// Priority out of bounds.
		{"priority too high", func(p *v1alpha1.RemediationPolicy) { p.Spec.Priority = 5000 }, "spec.priority"},
		// An advisory cause needs a person: no action may be bound to it.
		{"advisory cause", func(p *v1alpha1.RemediationPolicy) { p.Spec.Causes[0].Cause = v1alpha1.CauseKernelDeadlock }, "need a person"},
		// Restarting the kubelet on PLEG caused reboot loops: refused.
		{"restart on PLEG", func(p *v1alpha1.RemediationPolicy) { p.Spec.Causes[0].Cause = v1alpha1.CausePLEGUnhealthy }, "may only be bound to KubeletDown, ContainerRuntimeDown or KubeletHung, not to PLEGUnhealthy"},
		// Drain parameters on a restart action.
		{"drain params on restart", func(p *v1alpha1.RemediationPolicy) { p.Spec.Action.Drain = &v1alpha1.DrainParams{} }, "action.drain is only valid for CordonDrain"},
		// A drain can't fix a control-plane fault.
		{"drain on control plane fault", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action.Type = v1alpha1.ActionCordonDrain
			p.Spec.Causes[0].Cause = v1alpha1.CauseControlPlaneDegraded
		}, "not to ControlPlaneDegraded (no node is at fault"},
		// A drain timeout too short to evict anything.
		{"drain timeout too short", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action.Type, p.Spec.Causes[0].Cause = v1alpha1.ActionCordonDrain, v1alpha1.CauseMemoryExhausted
			p.Spec.Action.Drain = &v1alpha1.DrainParams{Timeout: &metav1.Duration{Duration: time.Second}}
		}, "spec.action.drain.timeout"},
		// TuneGracePeriods without its parameters.
		{"tune without params", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action.Type, p.Spec.Causes[0].Cause, p.Spec.IncludeControlPlane = v1alpha1.ActionTuneGracePeriods, v1alpha1.CausePLEGUnhealthy, true
		}, "action.tuneGracePeriods is required"},
		// A grace period too close to the kubelet's update interval.
		{"grace below 4x frequency", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action.Type, p.Spec.Causes[0].Cause, p.Spec.IncludeControlPlane = v1alpha1.ActionTuneGracePeriods, v1alpha1.CausePLEGUnhealthy, true
			p.Spec.Action.TuneGracePeriods = &v1alpha1.TuneGracePeriodsParams{NodeMonitorGracePeriod: metav1.Duration{Duration: 50 * time.Second}, KubeletStatusUpdateFrequency: &metav1.Duration{Duration: 20 * time.Second}}
		}, "at least 4 times"},
		// Tuning the controller-manager needs the control-plane nodes.
		{"tune without control plane", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Action.Type, p.Spec.Causes[0].Cause = v1alpha1.ActionTuneGracePeriods, v1alpha1.CausePLEGUnhealthy
			p.Spec.Action.TuneGracePeriods = &v1alpha1.TuneGracePeriodsParams{NodeMonitorGracePeriod: metav1.Duration{Duration: 2 * time.Minute}}
		}, "includeControlPlane"},
		// maxConcurrent 0 would stop everything silently.
		{"maxConcurrent zero", func(p *v1alpha1.RemediationPolicy) { p.Spec.Limits.MaxConcurrent = -1 }, "spec.limits.maxConcurrent"},
		// A rate over a period too short to mean anything.
		{"period too short", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.Limits.MaxPerPeriod = &v1alpha1.RatePeriod{Count: 1, Period: metav1.Duration{Duration: 10 * time.Second}}
		}, "spec.limits.maxPerPeriod.period"},
		// A storm breaker above 100%.
		{"storm breaker over 100%", func(p *v1alpha1.RemediationPolicy) {
			v := intstr.FromString("150%")
			p.Spec.StormBreaker.MaxUnhealthy = &v
		}, "spec.stormBreaker.maxUnhealthy"},
		// A cron schedule with six fields (seconds) is not the 5-field form.
		{"six-field cron", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{Schedule: "0 0 2 * * *", Duration: metav1.Duration{Duration: time.Hour}}}
		}, "spec.maintenanceWindows[0].schedule"},
		// A window that never stays open.
		{"window without duration", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{Schedule: "0 2 * * *"}}
		}, "spec.maintenanceWindows[0].duration"},
		// A selector operator that does not exist.
		{"bad selector", func(p *v1alpha1.RemediationPolicy) {
			p.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}
		}, "spec.nodeSelector"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := validPolicy(fmt.Sprintf("bad-%d", i))
			tc.mutate(p)
			err := c.Create(ctx, p)
			if err == nil {
				t.Fatalf("case %d: policy accepted, want refusal mentioning %q", i, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refusal %q does not name %q", err, tc.want)
			}
			t.Logf("refused: %s", err)
		})
	}
}

// A Remediation's spec is the decision: it can't be edited afterwards.
func TestRemediationSpecImmutable(t *testing.T) {
	c := apiClient(t)
	ctx := context.Background()
	rem := &v1alpha1.Remediation{
		ObjectMeta: metav1.ObjectMeta{Name: "r1"},
		Spec: v1alpha1.RemediationSpec{
			NodeName: "n1", Cause: v1alpha1.CauseKubeletDown, CauseSince: metav1.Now(), Policy: "p", PolicyGeneration: 1,
			Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet}, Mode: v1alpha1.ModeAutomatic,
		},
	}
	if err := c.Create(ctx, rem); err != nil {
		t.Fatal(err)
	}
	rem.Spec.NodeName = "n2"
	err := c.Update(ctx, rem)
	if err == nil || !strings.Contains(err.Error(), "spec is immutable") {
		t.Fatalf("editing a record's spec: err = %v, want 'spec is immutable'", err)
	}
}

// Every example policy in config/samples is accepted by the real apiserver.
func TestSamplesAreValid(t *testing.T) {
	c := apiClient(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "config", "samples", "*.yaml"))
	if err != nil || len(files) < 7 {
		t.Fatalf("samples: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := &v1alpha1.RemediationPolicy{}
		if err := yaml.UnmarshalStrict(raw, p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := c.Create(context.Background(), p); err != nil {
			t.Errorf("%s refused: %v", filepath.Base(f), err)
		}
	}
}
