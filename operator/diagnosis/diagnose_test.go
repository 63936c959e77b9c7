package diagnosis

import (
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// now is the diagnosis time of every case. It carries nanoseconds so that the
// truncation of since-times to the second is visible.
var now = time.Date(2026, 11, 25, 12, 0, 0, 400_000_000, time.UTC)

const nodeName = "worker-1"

// --- builders -------------------------------------------------------------

func ago(d time.Duration) time.Time { return now.Add(-d) }

func node(conds ...corev1.NodeCondition) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Status:     corev1.NodeStatus{Conditions: conds},
	}
}

func ready(status corev1.ConditionStatus, reason, message string, since time.Duration) corev1.NodeCondition {
	return corev1.NodeCondition{
		Type: corev1.NodeReady, Status: status, Reason: reason, Message: message,
		LastHeartbeatTime:  metav1.NewTime(ago(since)),
		LastTransitionTime: metav1.NewTime(ago(since)),
	}
}

// The Ready conditions as the kubelet and the node lifecycle controller write them.
var (
	readyTrue     = ready(corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", time.Hour)
	statusUnknown = ready(corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", 30*time.Second)
	runtimeIsDown = ready(corev1.ConditionFalse, "KubeletNotReady", "container runtime is down", 30*time.Second)
)

// reportInterval is the agent's; with the default thresholds it is silent
// after 3 × 1m = 3m without a report.
const reportInterval = time.Minute

func lease(renewedAgo time.Duration) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: NodeLeaseNamespace, Name: nodeName},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To(nodeName),
			RenewTime:      &metav1.MicroTime{Time: ago(renewedAgo)},
		},
	}
}

func report(heartbeatAgo time.Duration, units ...v1alpha1.UnitState) *v1alpha1.NodeReport {
	return &v1alpha1.NodeReport{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Status: v1alpha1.NodeReportStatus{
			HeartbeatTime:  metav1.NewTime(ago(heartbeatAgo)),
			ReportInterval: metav1.Duration{Duration: reportInterval},
			AgentVersion:   "v0.1.0",
			Units:          units,
		},
	}
}

func unit(name v1alpha1.Unit, unitName, active, sub, file string) v1alpha1.UnitState {
	return v1alpha1.UnitState{
		Name: name, UnitName: unitName, ActiveState: active, SubState: sub, UnitFileState: file,
		Since: &metav1.Time{Time: time.Date(2026, 11, 25, 11, 58, 0, 0, time.UTC)},
	}
}

// Unit states as the agent reads them from systemd.
var (
	kubeletDisabled   = unit(v1alpha1.UnitKubelet, "kubelet.service", "inactive", "dead", "disabled") // seed 000
	kubeletFailed     = unit(v1alpha1.UnitKubelet, "kubelet.service", "failed", "failed", "enabled")
	kubeletActive     = unit(v1alpha1.UnitKubelet, "kubelet.service", "active", "running", "enabled")
	kubeletActivating = unit(v1alpha1.UnitKubelet, "kubelet.service", "activating", "auto-restart", "enabled")
	kubeletUnknown    = v1alpha1.UnitState{Name: v1alpha1.UnitKubelet, ActiveState: "unknown", SubState: "dial unix /run/dbus/system_bus_socket: connect: no such file or directory"}
	runtimeActive     = unit(v1alpha1.UnitContainerRuntime, "containerd.service", "active", "running", "enabled")
	runtimeFailed     = unit(v1alpha1.UnitContainerRuntime, "containerd.service", "failed", "failed", "enabled")
)

// --- Diagnose -------------------------------------------------------------

func TestDiagnose(t *testing.T) {
	th := DefaultThresholds() // Lease stale after 20s, agent silent after 3 intervals
	prevSince := metav1.NewTime(time.Date(2026, 11, 25, 11, 55, 0, 0, time.UTC))

	tests := []struct {
		name string
		in   Input

		wantCauses []v1alpha1.Cause
		// notCause, when set, replaces wantCauses: only this cause must be
		// absent (other rules may name what they see).
		notCause      v1alpha1.Cause
		wantUnhealthy bool
		wantSuspect   bool
		// wantRecheck is checked when non-zero; noRecheck demands zero.
		wantRecheck time.Duration
		noRecheck   bool
		// wantSince is the since-time of the first cause (zero: not checked).
		wantSince time.Time
		// wantEvidence are substrings each of which must appear in one piece
		// of the first cause's evidence.
		wantEvidence []string
		// noEvidenceFrom: no evidence of the first cause comes from this source.
		noEvidenceFrom string
		// wantSummary is a substring of the summary.
		wantSummary string
		// wantFailedCheck is a substring of a check that does not support health.
		wantFailedCheck string
		// notInChecks must not appear in any check: the diagnosis did not read it.
		notInChecks string
	}{
		{
			// Seed 000: kubelet stopped and disabled, Lease 90s stale, agent alive → KubeletDown with all the evidence.
			name:          "kubelet down with stale lease",
			in:            Input{Node: node(statusUnknown), Lease: lease(90 * time.Second), Report: report(10*time.Second, kubeletDisabled, runtimeActive), Now: now},
			wantCauses:    []v1alpha1.Cause{v1alpha1.CauseKubeletDown},
			wantUnhealthy: true,
			wantSuspect:   true,
			wantSince:     now.Truncate(time.Second),
			wantEvidence: []string{
				"kubelet.service is inactive (dead), disabled since 2026-11-25T11:58:00Z",
				"Lease not renewed for 1m30s",
				"Ready=Unknown, reason NodeStatusUnknown: Kubelet stopped posting node status.",
				"the node agent is alive (last report 10s ago)",
				"kubelet.service is disabled: it will not start at boot",
			},
			wantSummary: "KubeletDown: kubelet.service is inactive (dead), disabled",
		},
		{
			// A failed (not disabled) kubelet whose Lease just went stale, before the lifecycle controller flipped Ready → KubeletDown, without the "disabled" evidence.
			name:          "kubelet failed, lease stale at the threshold, Ready still True",
			in:            Input{Node: node(readyTrue), Lease: lease(20 * time.Second), Report: report(5*time.Second, kubeletFailed, runtimeActive), Now: now},
			wantCauses:    []v1alpha1.Cause{v1alpha1.CauseKubeletDown},
			wantUnhealthy: true,
			wantSuspect:   true,
			wantEvidence:  []string{"kubelet.service is failed (failed), enabled", "Lease not renewed for 20s"},
		},
		{
			// Agent says the kubelet is down, but its Lease is 5s old and Ready=True → no cause yet, not unhealthy, suspect; look again when the Lease turns stale (in 15s).
			name:          "kubelet down but lease fresh",
			in:            Input{Node: node(readyTrue), Lease: lease(5 * time.Second), Report: report(2*time.Second, kubeletDisabled, runtimeActive), Now: now},
			wantCauses:    nil,
			wantUnhealthy: false,
			wantSuspect:   true,
			wantRecheck:   15 * time.Second,
			wantSummary:   "cause unknown; failed checks: kubelet.service is inactive (dead), disabled",
		},
		{
			// Seed 003's first late node: Lease 22s stale, the agent alive and reporting after the renewal. It looks hung, but other nodes of a control-plane storm may go stale within the next 10s: no cause until the Lease is 30s stale (in 8s).
			name:          "kubelet hung, before the storm settled",
			in:            Input{Node: node(readyTrue), Lease: lease(22 * time.Second), Report: report(2*time.Second, kubeletActive, runtimeActive), Now: now},
			notCause:      v1alpha1.CauseKubeletHung,
			wantUnhealthy: false,
			wantSuspect:   true,
			wantRecheck:   8 * time.Second,
		},
		{
			// Lease 25s stale, Ready still True, the agent's last report (all active) 30s old, before the renewal: no cause yet and not unhealthy, but suspect; look again once the storm has settled (in 5s: 20s stale + 10s StormSettle).
			name:          "lease stale, Ready still True, agent report older than the renewal",
			in:            Input{Node: node(readyTrue), Lease: lease(25 * time.Second), Report: report(30*time.Second, kubeletActive, runtimeActive), Now: now},
			wantCauses:    nil,
			wantUnhealthy: false,
			wantSuspect:   true,
			wantRecheck:   5 * time.Second,
		},
		{
			// No Lease at all, but the lifecycle controller says NodeStatusUnknown → KubeletDown on the condition alone.
			name:           "kubelet down, NodeStatusUnknown, lease missing",
			in:             Input{Node: node(statusUnknown), Report: report(10*time.Second, kubeletDisabled, runtimeActive), Now: now},
			wantCauses:     []v1alpha1.Cause{v1alpha1.CauseKubeletDown},
			wantUnhealthy:  true,
			wantSuspect:    true,
			wantEvidence:   []string{"reason NodeStatusUnknown: Kubelet stopped posting node status.", "the node agent is alive"},
			noEvidenceFrom: SourceLease,
		},
		{
			// The agent's last report (kubelet inactive) is 4m old, past 3 × 1m: stale evidence is never acted on → no KubeletDown, unhealthy because Ready=Unknown, no timer.
			name:            "agent silent, kubelet last reported inactive",
			in:              Input{Node: node(statusUnknown), Lease: lease(5 * time.Minute), Report: report(4*time.Minute, kubeletDisabled, runtimeActive), Now: now},
			notCause:        v1alpha1.CauseKubeletDown,
			wantUnhealthy:   true,
			wantSuspect:     false,
			noRecheck:       true,
			wantFailedCheck: "node agent silent: last report 4m0s ago (silent after 3m0s)",
			notInChecks:     "kubelet.service is inactive",
		},
		{
			// Exactly 3 intervals since the last report is silent already → no KubeletDown.
			name:          "agent silent at the threshold",
			in:            Input{Node: node(statusUnknown), Lease: lease(5 * time.Minute), Report: report(3*time.Minute, kubeletDisabled), Now: now},
			notCause:      v1alpha1.CauseKubeletDown,
			wantUnhealthy: true,
			noRecheck:     true,
		},
		{
			// No NodeReport: the agent is not installed → no cause, unhealthy because Ready=Unknown.
			name:          "no report",
			in:            Input{Node: node(statusUnknown), Lease: lease(90 * time.Second), Now: now},
			wantCauses:    nil,
			wantUnhealthy: true,
			wantSuspect:   false,
			noRecheck:     true,
			wantSummary:   "no report from the node agent",
		},
		{
			// systemd is starting the kubelet again ("activating"): not evidence of a stop → no cause.
			name:          "kubelet activating",
			in:            Input{Node: node(statusUnknown), Lease: lease(90 * time.Second), Report: report(10*time.Second, kubeletActivating, runtimeActive), Now: now},
			wantCauses:    nil,
			wantUnhealthy: true,
			wantSuspect:   false,
		},
		{
			// The agent could not read the kubelet unit ("unknown"): not evidence of a stop → no cause.
			name:          "kubelet state unknown",
			in:            Input{Node: node(statusUnknown), Lease: lease(90 * time.Second), Report: report(10*time.Second, kubeletUnknown, runtimeActive), Now: now},
			wantCauses:    nil,
			wantUnhealthy: true,
			wantSuspect:   false,
			wantSummary:   "kubelet is unknown (dial unix",
		},
		{
			// containerd failed, kubelet up and renewing, Ready=False "container runtime is down" → ContainerRuntimeDown with the condition as evidence.
			name:          "container runtime down",
			in:            Input{Node: node(runtimeIsDown), Lease: lease(3 * time.Second), Report: report(10*time.Second, kubeletActive, runtimeFailed), Now: now},
			wantCauses:    []v1alpha1.Cause{v1alpha1.CauseContainerRuntimeDown},
			wantUnhealthy: true,
			wantSuspect:   true,
			wantEvidence:  []string{"containerd.service is failed (failed), enabled", "Ready=False, reason KubeletNotReady: container runtime is down"},
		},
		{
			// Both down and the Lease stale → both causes, KubeletDown ranked first.
			name:          "kubelet and runtime down",
			in:            Input{Node: node(statusUnknown), Lease: lease(time.Minute), Report: report(10*time.Second, kubeletFailed, runtimeFailed), Now: now},
			wantCauses:    []v1alpha1.Cause{v1alpha1.CauseKubeletDown, v1alpha1.CauseContainerRuntimeDown},
			wantUnhealthy: true,
			wantSuspect:   true,
		},
		{
			// Everything fine → healthy, not suspect, no cause. (Diagnose still says when the Lease would turn stale; the controller sets no timer for a healthy node: TestReconcileHealthyNode.)
			name:          "healthy node",
			in:            Input{Node: node(readyTrue), Lease: lease(3 * time.Second), Report: report(10*time.Second, kubeletActive, runtimeActive), Now: now},
			wantCauses:    nil,
			wantUnhealthy: false,
			wantSuspect:   false,
			wantSummary:   "healthy",
		},
		{
			// The previous diagnosis already had KubeletDown since 11:55 → the since-time is carried over, not reset to now.
			name: "since carried over from Prev",
			in: Input{Node: node(statusUnknown), Lease: lease(90 * time.Second), Report: report(10*time.Second, kubeletDisabled, runtimeActive), Now: now,
				Prev: &v1alpha1.NodeDiagnosisStatus{Causes: []v1alpha1.DiagnosedCause{{Cause: v1alpha1.CauseKubeletDown, Since: prevSince}}}},
			wantCauses:    []v1alpha1.Cause{v1alpha1.CauseKubeletDown},
			wantUnhealthy: true,
			wantSuspect:   true,
			wantSince:     prevSince.Time,
		},
		{
			// Prev had only a different cause → a new cause starts now.
			name: "since not carried over from another cause",
			in: Input{Node: node(statusUnknown), Lease: lease(90 * time.Second), Report: report(10*time.Second, kubeletDisabled, runtimeActive), Now: now,
				Prev: &v1alpha1.NodeDiagnosisStatus{Causes: []v1alpha1.DiagnosedCause{{Cause: v1alpha1.CauseContainerRuntimeDown, Since: prevSince}}}},
			wantCauses:    []v1alpha1.Cause{v1alpha1.CauseKubeletDown},
			wantUnhealthy: true,
			wantSuspect:   true,
			wantSince:     now.Truncate(time.Second),
		},
		{
			// A node that never posted status (no Ready condition) → unhealthy, no cause.
			name:          "no Ready condition",
			in:            Input{Node: node(), Now: now},
			wantCauses:    nil,
			wantUnhealthy: true,
			wantSummary:   "the node has no Ready condition",
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Diagnose(tc.in, th)

			got := causeNames(res.Status.Causes)
			if tc.notCause != "" {
				if slices.Contains(got, tc.notCause) {
					t.Fatalf("causes = %v, want no %s\nsummary: %s", got, tc.notCause, res.Status.Summary)
				}
			} else if !slices.Equal(got, tc.wantCauses) {
				t.Fatalf("causes = %v, want %v\nsummary: %s", got, tc.wantCauses, res.Status.Summary)
			}
			if res.Unhealthy != tc.wantUnhealthy {
				t.Errorf("Unhealthy = %t, want %t", res.Unhealthy, tc.wantUnhealthy)
			}
			if res.Suspect != tc.wantSuspect {
				t.Errorf("Suspect = %t, want %t", res.Suspect, tc.wantSuspect)
			}
			if tc.wantRecheck != 0 && res.RecheckAfter != tc.wantRecheck {
				t.Errorf("RecheckAfter = %s, want %s", res.RecheckAfter, tc.wantRecheck)
			}
			if tc.noRecheck && res.RecheckAfter != 0 {
				t.Errorf("RecheckAfter = %s, want none", res.RecheckAfter)
			}
			if tc.wantSummary != "" && !strings.Contains(res.Status.Summary, tc.wantSummary) {
				t.Errorf("summary %q does not contain %q", res.Status.Summary, tc.wantSummary)
			}
			if tc.wantFailedCheck != "" && !slices.ContainsFunc(res.Status.Checks, func(c v1alpha1.Evidence) bool {
				return !c.Supports && strings.Contains(c.Message, tc.wantFailedCheck)
			}) {
				t.Errorf("no failed check contains %q; checks:\n%s", tc.wantFailedCheck, dumpEvidence(res.Status.Checks))
			}
			for _, c := range res.Status.Checks {
				if tc.notInChecks != "" && strings.Contains(c.Message, tc.notInChecks) {
					t.Errorf("check %q quotes stale evidence %q", c.Message, tc.notInChecks)
				}
			}
			if len(res.Status.Causes) == 0 || tc.notCause != "" {
				return
			}
			first := res.Status.Causes[0]
			if !tc.wantSince.IsZero() && !first.Since.Time.Equal(tc.wantSince) {
				t.Errorf("since = %s, want %s", first.Since.Time, tc.wantSince)
			}
			for _, want := range tc.wantEvidence {
				if !hasEvidence(first.Evidence, want) {
					t.Errorf("no evidence contains %q; evidence:\n%s", want, dumpEvidence(first.Evidence))
				}
			}
			for _, ev := range first.Evidence {
				if !ev.Supports {
					t.Errorf("evidence for a cause does not support it: %+v", ev)
				}
				if tc.noEvidenceFrom != "" && ev.Source == tc.noEvidenceFrom {
					t.Errorf("unexpected evidence from %s: %q", ev.Source, ev.Message)
				}
			}
		})
	}
}

// An agent that goes silent changes the diagnosis with time alone: the
// recheck must come no later than the moment it turns silent.
func TestDiagnoseRecheckWhenAgentGoesSilent(t *testing.T) {
	// Lease fresh for 19s more, agent silent in 10s → recheck in 10s.
	in := Input{Node: node(readyTrue), Lease: lease(time.Second), Report: report(170*time.Second, kubeletDisabled), Now: now}
	if got := Diagnose(in, DefaultThresholds()).RecheckAfter; got != 10*time.Second {
		t.Fatalf("RecheckAfter = %s, want 10s", got)
	}
}

// The checks list every source with whether it supports the node being
// healthy; the controller compares them by kind, so the set must be stable.
func TestDiagnoseChecks(t *testing.T) {
	in := Input{Node: node(statusUnknown), Lease: lease(90 * time.Second), Report: report(10*time.Second, kubeletDisabled, runtimeActive), Now: now}
	got := evidenceKinds(Diagnose(in, DefaultThresholds()).Status.Checks)
	want := []string{"NodeCondition/false", "Lease/false", "NodeReport/true", "NodeReport/false", "NodeReport/true"}
	if !slices.Equal(got, want) {
		t.Fatalf("check kinds = %v, want %v", got, want)
	}
}

func causeNames(cs []v1alpha1.DiagnosedCause) []v1alpha1.Cause {
	var out []v1alpha1.Cause
	for _, c := range cs {
		out = append(out, c.Cause)
	}
	return out
}

func hasEvidence(ev []v1alpha1.Evidence, substr string) bool {
	for _, e := range ev {
		if strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

func dumpEvidence(ev []v1alpha1.Evidence) string {
	var b strings.Builder
	for _, e := range ev {
		b.WriteString("  " + e.Source + ": " + e.Message + "\n")
	}
	return b.String()
}

// TestRulesFollowCauseTable: one rule per cause of the table, in its
// ranking order, so the table is the one place a cause is defined.
func TestRulesFollowCauseTable(t *testing.T) {
	if len(rules) != len(v1alpha1.CauseTable) {
		t.Fatalf("%d rules for %d causes in the table", len(rules), len(v1alpha1.CauseTable))
	}
	for i, r := range rules {
		if r.cause != v1alpha1.CauseTable[i].Cause {
			t.Errorf("rule %d is %s, the table's cause %d is %s", i, r.cause, i, v1alpha1.CauseTable[i].Cause)
		}
	}
}
