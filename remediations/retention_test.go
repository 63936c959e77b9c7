package remediations

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func finishedRecord(name, node string, cause v1alpha1.Cause, endedAgo time.Duration, phase v1alpha1.RemediationPhase) v1alpha1.Remediation {
	return v1alpha1.Remediation{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.RemediationSpec{NodeName: node, Cause: cause, Policy: "p"},
		Status:     v1alpha1.RemediationStatus{Phase: phase, CompletedAt: ptr.To(metav1.NewTime(t0.Add(-endedAgo)))},
	}
}

func recNames(recs []*v1alpha1.Remediation) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Name)
	}
	return out
}

func TestRetentionByCount(t *testing.T) {
	p := &v1alpha1.RemediationPolicy{Spec: v1alpha1.RemediationPolicySpec{Retention: v1alpha1.Retention{MaxRecords: 2}}}
	var recs []v1alpha1.Remediation
	for i := range 5 { // rec-0 newest … rec-4 oldest, all on worker-1 (KubeletDown)
		recs = append(recs, finishedRecord(fmt.Sprintf("rec-%d", i), "worker-1", v1alpha1.CauseKubeletDown, time.Duration(i+1)*20*time.Hour, v1alpha1.PhaseSucceeded))
	}
	recs = append(recs, finishedRecord("only-of-worker-2", "worker-2", v1alpha1.CauseKubeletDown, 900*time.Hour, v1alpha1.PhaseFailed))
	pending := finishedRecord("pending", "worker-1", v1alpha1.CauseKubeletDown, 1000*time.Hour, v1alpha1.PhasePending)
	recs = append(recs, pending)

	doomed, next := expired(p, recs, t0)
	// rec-2 (ended 60h ago) is beyond maxRecords and older than the 24h the
	// limits count; rec-3, rec-4 too; worker-2's only record is the newest
	// of its node and cause; the pending one is not finished.
	if got := fmt.Sprint(recNames(doomed)); got != "[rec-2 rec-3 rec-4]" {
		t.Errorf("deleted %s, want [rec-2 rec-3 rec-4]", got)
	}
	if !next.IsZero() {
		t.Errorf("next = %v, want none", next)
	}

	// Beyond maxRecords but still counted by the limits: kept, looked at again.
	recs[2] = finishedRecord("rec-2", "worker-1", v1alpha1.CauseKubeletDown, 10*time.Hour, v1alpha1.PhaseSucceeded)
	recs[0] = finishedRecord("rec-0", "worker-1", v1alpha1.CauseKubeletDown, 1*time.Hour, v1alpha1.PhaseSucceeded)
	recs[1] = finishedRecord("rec-1", "worker-1", v1alpha1.CauseKubeletDown, 2*time.Hour, v1alpha1.PhaseSucceeded)
	doomed, next = expired(p, recs, t0)
	if got := fmt.Sprint(recNames(doomed)); got != "[rec-3 rec-4]" {
		t.Errorf("deleted %s, want [rec-3 rec-4]", got)
	}
	if want := t0.Add(-10 * time.Hour).Add(24 * time.Hour); !next.Equal(want) {
		t.Errorf("next = %v, want %v (when rec-2 leaves the limits' 24h)", next, want)
	}
}

func TestRetentionByAge(t *testing.T) {
	p := &v1alpha1.RemediationPolicy{Spec: v1alpha1.RemediationPolicySpec{Retention: v1alpha1.Retention{MaxRecords: 100, MaxAge: &metav1.Duration{Duration: 48 * time.Hour}}}}
	p.Spec.Limits.AttemptWindow = &metav1.Duration{Duration: 72 * time.Hour}
	recs := []v1alpha1.Remediation{
		finishedRecord("newest", "worker-1", v1alpha1.CauseKubeletDown, 500*time.Hour, v1alpha1.PhaseSucceeded),
		finishedRecord("old", "worker-1", v1alpha1.CauseKubeletDown, 600*time.Hour, v1alpha1.PhaseSkipped),
		finishedRecord("in-window", "worker-1", v1alpha1.CauseKubeletDown, 60*time.Hour, v1alpha1.PhaseSkipped),
		// maxAge 48h is raised to the 72h attemptWindow: 60h is kept.
		finishedRecord("counted", "worker-1", v1alpha1.CauseKubeletDown, 61*time.Hour, v1alpha1.PhaseSkipped),
	}
	doomed, next := expired(p, recs, t0)
	// in-window ended last, so it is the newest of its node and cause and
	// stays; the others are older than maxAge.
	if got := fmt.Sprint(recNames(doomed)); got != "[newest old]" {
		t.Errorf("deleted %s, want [newest old]", got)
	}
	if want := t0.Add(-61 * time.Hour).Add(72 * time.Hour); !next.Equal(want) {
		t.Errorf("next = %v, want %v (when counted is 72h old)", next, want)
	}
}
