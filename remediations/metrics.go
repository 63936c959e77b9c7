package remediations

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Metrics of outcomes, served on the operator's metrics endpoint with
// controller-runtime's (and nodeward_pending_approvals, approval.go).
var (
	remediationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nodeward_remediations_total",
		Help: "Finished remediation records by cause, action, mode, phase (Succeeded, Failed, Skipped) and reason.",
	}, []string{"cause", "action", "mode", "phase", "reason"})
	heldTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nodeward_remediations_held_total",
		Help: "Times a pending remediation was held back, by reason (RateLimited, StormBreakerOpen, OutsideMaintenanceWindow, ...).",
	}, []string{"reason"})
	detectionToDecision = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "nodeward_detection_to_decision_seconds",
		Help:    "From the cause's first diagnosis to the record's creation, per finished record.",
		Buckets: []float64{5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"cause"})
	detectionToRecovery = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "nodeward_detection_to_recovery_seconds",
		Help:    "From the cause's first diagnosis to the end of a Succeeded record.",
		Buckets: []float64{10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200},
	}, []string{"cause", "action"})
)

func init() {
	metrics.Registry.MustRegister(remediationsTotal, heldTotal, detectionToDecision, detectionToRecovery)
}

// countFinished records a record that just reached a terminal phase.
func countFinished(rem *v1alpha1.Remediation) {
	s := &rem.Spec
	remediationsTotal.WithLabelValues(string(s.Cause), string(s.Action.Type), string(s.Mode), string(rem.Status.Phase), rem.Status.Reason).Inc()
	if !s.CauseSince.IsZero() && !rem.CreationTimestamp.IsZero() {
		detectionToDecision.WithLabelValues(string(s.Cause)).Observe(max(rem.CreationTimestamp.Sub(s.CauseSince.Time).Seconds(), 0))
	}
	if rem.Status.Phase == v1alpha1.PhaseSucceeded && rem.Status.CompletedAt != nil && !s.CauseSince.IsZero() {
		detectionToRecovery.WithLabelValues(string(s.Cause), string(s.Action.Type)).Observe(max(rem.Status.CompletedAt.Sub(s.CauseSince.Time).Seconds(), 0))
	}
}
