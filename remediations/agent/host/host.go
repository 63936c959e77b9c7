// Package host is how the node agent sees and acts on its node: the unit states of the kubelet and the container runtime, and a restart of a unit from a closed allow-list.
package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Host is implemented by Systemd (real nodes) and by the simulated host used in e2e and the demo (written by someone else, elsewhere).
type Host interface {
	// UnitState returns the state of the logical unit.
	UnitState(ctx context.Context, unit v1alpha1.Unit) (v1alpha1.UnitState, error)
	// RestartUnit restarts the unit the way `systemctl restart` does (start it if it is stopped; works on a disabled unit; refuses a masked one) and returns when systemd reports the job done, or an error naming the unit and systemd's job result.
	RestartUnit(ctx context.Context, unit v1alpha1.Unit) error
}

// Units maps logical units to systemd unit names; only units in this map can ever be touched (the allow-list).
type Units map[v1alpha1.Unit]string

// DefaultUnits returns the allow-list for a usual node: the kubelet is
// kubelet.service and the container runtime is containerd.service.
func DefaultUnits() Units {
	return Units{
		v1alpha1.UnitKubelet:          "kubelet.service",
		v1alpha1.UnitContainerRuntime: "containerd.service",
	}
}

// ErrNotAllowed is returned (wrapped) for a unit not in the allow-list.
var ErrNotAllowed = errors.New("unit not in the agent's allow-list")

// lookup returns the systemd unit name of a logical unit, or ErrNotAllowed.
func (u Units) lookup(unit v1alpha1.Unit) (string, error) {
	name, ok := u[unit]
	if !ok || name == "" {
		return "", fmt.Errorf("unit %q: %w", unit, ErrNotAllowed)
	}
	return name, nil
}
