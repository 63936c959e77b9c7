package operator

import (
	"context"
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/policies"
)

// DefaultSealSecretName is the Secret, in the operator's namespace, that
// holds the key the operator seals its records with.
const DefaultSealSecretName = "nodeward-operator-seal"

// SealKeyField is the Secret's data key holding the seal key.
const SealKeyField = "key"

// The seal key's Secret, in the operator's own namespace only (not a
// ClusterRole: the operator can read no other Secret). create can't be
// limited by name: the name is not part of a create request.
//
// +kubebuilder:rbac:groups="",namespace=nodeward-system,resources=secrets,verbs=get,resourceNames=nodeward-operator-seal
// +kubebuilder:rbac:groups="",namespace=nodeward-system,resources=secrets,verbs=create

// LoadSealKey reads the seal key from the Secret key, creating the Secret
// with SealKeyBytes random bytes if it does not exist. Two replicas starting
// at once may race to create it: the loser reads the winner's. r must read
// from the API server, not a cache: the operator never watches Secrets.
func LoadSealKey(ctx context.Context, r client.Reader, w client.Writer, key types.NamespacedName) ([]byte, error) {
	for range 3 {
		s := &corev1.Secret{}
		err := r.Get(ctx, key, s)
		if err == nil {
			k := s.Data[SealKeyField]
			if len(k) < policies.SealKeyBytes {
				return nil, fmt.Errorf("Secret %s: data.%s has %d bytes, want at least %d (delete the Secret and the operator creates a new key; records in flight are then no longer trusted)",
					key, SealKeyField, len(k), policies.SealKeyBytes)
			}
			return k, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the seal key Secret %s: %w", key, err)
		}
		k := make([]byte, policies.SealKeyBytes)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				Labels: map[string]string{"app.kubernetes.io/name": "nodeward-operator", "app.kubernetes.io/component": "seal-key"}},
			Immutable: ptr.To(true),
			Type:      corev1.SecretTypeOpaque,
			Data:      map[string][]byte{SealKeyField: k},
		}
		err = w.Create(ctx, s)
		if err == nil {
			return k, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the seal key Secret %s: %w", key, err)
		}
		// Another replica created it first: read theirs.
	}
	return nil, fmt.Errorf("the seal key Secret %s was created and deleted again while reading it", key)
}
