package policies

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

var (
	sealKey   = bytes.Repeat([]byte{7}, SealKeyBytes)
	sealSince = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
)

func sealedRecord(t *testing.T, s *Sealer) *v1alpha1.Remediation {
	t.Helper()
	rem := &v1alpha1.Remediation{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1-kubeletdown-1795607940", UID: "uid-1",
			Labels: map[string]string{v1alpha1.LabelNode: "worker-1", v1alpha1.LabelPolicy: "restart"}},
		Spec: v1alpha1.RemediationSpec{
			NodeName: "worker-1", Cause: v1alpha1.CauseKubeletDown, CauseSince: metav1.NewTime(sealSince),
			Policy: "restart", PolicyGeneration: 3,
			Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet,
				Restart: &v1alpha1.RestartParams{RecoveryTimeout: metav1.Duration{Duration: 2 * time.Minute}}},
			Mode: v1alpha1.ModeRequireApproval,
		},
	}
	s.SealRecord(rem)
	return rem
}

// Every decision field is covered by the seal: changing any one of them, or
// the name, or the key, breaks it; what is not a decision (labels, evidence,
// sub-second time) does not.
func TestSeal(t *testing.T) {
	s, err := NewSealer(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, SealKeyBytes))
	for _, tc := range []struct {
		name   string
		change func(*v1alpha1.Remediation)
		sealer *Sealer
		want   error
	}{
		{"as sealed", func(*v1alpha1.Remediation) {}, s, nil},
		{"labels changed", func(r *v1alpha1.Remediation) { r.Labels[v1alpha1.LabelPolicy] = "other" }, s, nil},
		{"evidence added", func(r *v1alpha1.Remediation) { r.Spec.Evidence = []v1alpha1.Evidence{{Message: "x"}} }, s, nil},
		{"causeSince sub-second", func(r *v1alpha1.Remediation) {
			r.Spec.CauseSince = metav1.NewTime(sealSince.Add(300 * time.Millisecond))
		}, s, nil},
		{"no annotation", func(r *v1alpha1.Remediation) { delete(r.Annotations, AnnotationSeal) }, s, ErrNoSeal},
		{"empty annotation", func(r *v1alpha1.Remediation) { r.Annotations[AnnotationSeal] = "" }, s, ErrNoSeal},
		{"garbage", func(r *v1alpha1.Remediation) { r.Annotations[AnnotationSeal] = "v1:AAAA" }, s, ErrBadSeal},
		{"name", func(r *v1alpha1.Remediation) { r.Name += "-x" }, s, ErrBadSeal},
		{"nodeName", func(r *v1alpha1.Remediation) { r.Spec.NodeName = "worker-2" }, s, ErrBadSeal},
		{"cause", func(r *v1alpha1.Remediation) { r.Spec.Cause = v1alpha1.CauseContainerRuntimeDown }, s, ErrBadSeal},
		{"causeSince", func(r *v1alpha1.Remediation) { r.Spec.CauseSince = metav1.NewTime(sealSince.Add(time.Second)) }, s, ErrBadSeal},
		{"policy", func(r *v1alpha1.Remediation) { r.Spec.Policy = "restart2" }, s, ErrBadSeal},
		{"policyGeneration", func(r *v1alpha1.Remediation) { r.Spec.PolicyGeneration = 4 }, s, ErrBadSeal},
		{"action type", func(r *v1alpha1.Remediation) { r.Spec.Action.Type = v1alpha1.ActionRestartContainerRuntime }, s, ErrBadSeal},
		{"action parameter", func(r *v1alpha1.Remediation) { r.Spec.Action.Restart.RecoveryTimeout.Duration = time.Hour }, s, ErrBadSeal},
		{"mode", func(r *v1alpha1.Remediation) { r.Spec.Mode = v1alpha1.ModeAutomatic }, s, ErrBadSeal},
		// Field boundaries are part of the encoding: moving a character
		// from one field to the next is a different decision.
		{"field boundary", func(r *v1alpha1.Remediation) {
			r.Spec.NodeName, r.Spec.Policy = "worker-1r", "estart"
		}, s, ErrBadSeal},
		{"other key", func(*v1alpha1.Remediation) {}, other, ErrBadSeal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rem := sealedRecord(t, s)
			tc.change(rem)
			if err := tc.sealer.CheckSeal(rem); !errors.Is(err, tc.want) {
				t.Errorf("CheckSeal = %v, want %v", err, tc.want)
			}
		})
	}
	// Without a key nothing is trusted.
	var none *Sealer
	if err := none.CheckSeal(sealedRecord(t, s)); err == nil {
		t.Error("a nil Sealer accepted a seal")
	}
	if seal := sealedRecord(t, s).Annotations[AnnotationSeal]; !strings.HasPrefix(seal, "v1:") || len(seal) > 63 {
		t.Errorf("seal %q: want v1: and short", seal)
	}
}

// The start proof binds name, UID and startedAt (whole seconds).
func TestStartProof(t *testing.T) {
	s, _ := NewSealer(sealKey)
	other, _ := NewSealer(bytes.Repeat([]byte{8}, SealKeyBytes))
	started := sealSince.Add(time.Minute)
	for _, tc := range []struct {
		name   string
		change func(*v1alpha1.Remediation)
		sealer *Sealer
		want   bool
	}{
		{"as stamped", func(*v1alpha1.Remediation) {}, s, true},
		{"stored to the second", func(r *v1alpha1.Remediation) {
			r.Status.StartedAt = &metav1.Time{Time: started.Add(400 * time.Millisecond)}
		}, s, true},
		{"no proof", func(r *v1alpha1.Remediation) { r.Status.StartProof = "" }, s, false},
		{"no startedAt", func(r *v1alpha1.Remediation) { r.Status.StartedAt = nil }, s, false},
		{"startedAt moved", func(r *v1alpha1.Remediation) { r.Status.StartedAt = &metav1.Time{Time: started.Add(time.Second)} }, s, false},
		{"other UID (deleted and recreated)", func(r *v1alpha1.Remediation) { r.UID = "uid-2" }, s, false},
		{"other name", func(r *v1alpha1.Remediation) { r.Name += "-x" }, s, false},
		{"other key", func(*v1alpha1.Remediation) {}, other, false},
		{"no key", func(*v1alpha1.Remediation) {}, nil, false},
		{"a seal is not a proof", func(r *v1alpha1.Remediation) { r.Status.StartProof = r.Annotations[AnnotationSeal] }, s, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rem := sealedRecord(t, s)
			rem.Status.StartedAt = &metav1.Time{Time: started}
			rem.Status.StartProof = s.StartProof(rem.Name, rem.UID, started)
			tc.change(rem)
			if got := tc.sealer.CheckStartProof(rem); got != tc.want {
				t.Errorf("CheckStartProof = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewSealerShortKey(t *testing.T) {
	if _, err := NewSealer(make([]byte, SealKeyBytes-1)); err == nil {
		t.Error("a 31-byte key was accepted")
	}
}
