package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// NodeTasks: a restart needs its unit, an edit its edit, and an edit stays
// inside the closed set of files and keys and within the bounds of each key.
func TestNodeTaskValidation(t *testing.T) {
	c := apiClient(t)
	ctx := context.Background()
	edit := func(file v1alpha1.ConfigFile, key v1alpha1.ConfigKey, value string) *v1alpha1.ConfigEdit {
		return &v1alpha1.ConfigEdit{File: file, Key: key, Value: value}
	}
	grace := func(v string) *v1alpha1.ConfigEdit {
		return edit(v1alpha1.ConfigFileControllerManagerManifest, v1alpha1.ConfigKeyNodeMonitorGracePeriod, v)
	}
	freq := func(v string) *v1alpha1.ConfigEdit {
		return edit(v1alpha1.ConfigFileKubeletConfig, v1alpha1.ConfigKeyNodeStatusUpdateFrequency, v)
	}
	cases := []struct {
		name   string
		action v1alpha1.NodeAction
		unit   v1alpha1.Unit
		edit   *v1alpha1.ConfigEdit
		want   string // "" = accepted; else a fragment of the refusal
	}{
		{"restart", v1alpha1.NodeActionRestartUnit, v1alpha1.UnitKubelet, nil, ""},
		{"restart without unit", v1alpha1.NodeActionRestartUnit, "", nil, "unit is required for RestartUnit"},
		{"restart with edit", v1alpha1.NodeActionRestartUnit, v1alpha1.UnitKubelet, grace("2m"), "edit is only valid for EditConfig"},
		{"edit grace", v1alpha1.NodeActionEditConfig, "", grace("2m0s"), ""},
		{"edit frequency", v1alpha1.NodeActionEditConfig, "", freq("10s"), ""},
		{"edit without edit", v1alpha1.NodeActionEditConfig, "", nil, "edit is required for EditConfig"},
		{"grace too low", v1alpha1.NodeActionEditConfig, "", grace("30s"), "must be between 40s and 5m"},
		{"grace too high", v1alpha1.NodeActionEditConfig, "", grace("6m"), "must be between 40s and 5m"},
		{"frequency too high", v1alpha1.NodeActionEditConfig, "", freq("2m"), "must be between 1s and 1m"},
		{"key in the wrong file", v1alpha1.NodeActionEditConfig, "", edit(v1alpha1.ConfigFileKubeletConfig, v1alpha1.ConfigKeyNodeMonitorGracePeriod, "2m"), "belongs to ControllerManagerManifest"},
		{"not a duration", v1alpha1.NodeActionEditConfig, "", grace("2 minutes"), "spec.edit.value"},
		{"unknown file", v1alpha1.NodeActionEditConfig, "", edit("Sudoers", v1alpha1.ConfigKeyNodeMonitorGracePeriod, "2m"), "spec.edit.file"},
		{"unknown key", v1alpha1.NodeActionEditConfig, "", edit(v1alpha1.ConfigFileKubeletConfig, "maxPods", "2m"), "spec.edit.key"},
		{"unknown action", "RunScript", "", nil, "spec.action"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task := &v1alpha1.NodeTask{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("task-%d", i)},
				Spec:       v1alpha1.NodeTaskSpec{NodeName: "n1", Action: tc.action, Unit: tc.unit, Edit: tc.edit, Remediation: "r1"},
			}
			err := c.Create(ctx, task)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid task refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("task accepted, want a refusal mentioning %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("refusal %q does not say %q", err, tc.want)
			}
		})
	}
}

// A TuneGracePeriods policy keeps the grace period at least 4 times the
// kubelet's status update frequency.
func TestTunePolicyRatio(t *testing.T) {
	c := apiClient(t)
	ctx := context.Background()
	tune := func(name string, grace, freq time.Duration) *v1alpha1.RemediationPolicy {
		p := validPolicy(name)
		p.Spec.IncludeControlPlane = true
		p.Spec.Causes[0].Cause = v1alpha1.CausePLEGUnhealthy
		p.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionTuneGracePeriods, TuneGracePeriods: &v1alpha1.TuneGracePeriodsParams{
			NodeMonitorGracePeriod:       metav1.Duration{Duration: grace},
			KubeletStatusUpdateFrequency: &metav1.Duration{Duration: freq},
		}}
		return p
	}
	if err := c.Create(ctx, tune("ok", 2*time.Minute, 10*time.Second)); err != nil {
		t.Fatalf("grace 2m, frequency 10s refused: %v", err)
	}
	if err := c.Create(ctx, tune("ok-sub-second", 40*time.Second, 9500*time.Millisecond)); err != nil {
		t.Fatalf("grace 40s, frequency 9.5s refused: %v", err)
	}
	err := c.Create(ctx, tune("bad", 45*time.Second, 12*time.Second))
	if err == nil || !strings.Contains(err.Error(), "at least 4 times") {
		t.Fatalf("grace 45s, frequency 12s: err = %v, want a refusal (4 x 12s = 48s)", err)
	}
}
