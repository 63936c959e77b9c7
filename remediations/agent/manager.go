package agent

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// NewManager returns a manager for the agent of nodeName: no leader election
// (every node has its own agent), no metrics listener, a cache holding only
// this node's tasks, and health probes on probeAddr ("0" disables them).
func NewManager(cfg *rest.Config, nodeName, probeAddr string) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	// Only what the agent reads or writes: its own Node (core/v1) and
	// nodeward's types, not every built-in API group.
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  CacheOptions(nodeName),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: probeAddr,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the agent's manager: %w", err)
	}
	if probeAddr != "0" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}
