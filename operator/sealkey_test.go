package operator

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/nodeward/nodeward/e2e/controlplane"
	"github.com/nodeward/nodeward/policies"
)

// The seal key on a real apiserver: created once with 32 random bytes,
// immutable, read back the same by every later start; two replicas racing
// to create it end with the same key; a Secret holding a short key is an
// error naming the field.
func TestLoadSealKey(t *testing.T) {
	assets, err := controlplane.EnvtestAssets()
	if err != nil {
		if os.Getenv("NODEWARD_REQUIRE_CONTROLPLANE") == "1" {
			t.Fatalf("control-plane binaries: %v", err)
		}
		t.Skipf("control-plane binaries missing (make controlplane): %v", err)
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets, ControlPlaneStartTimeout: 3 * time.Minute}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nodeward-system"}}); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: "nodeward-system", Name: DefaultSealSecretName}

	first, err := LoadSealKey(ctx, c, c, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != policies.SealKeyBytes || bytes.Equal(first, make([]byte, policies.SealKeyBytes)) {
		t.Fatalf("key %x: want %d random bytes", first, policies.SealKeyBytes)
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, key, secret); err != nil {
		t.Fatal(err)
	}
	if secret.Immutable == nil || !*secret.Immutable || !bytes.Equal(secret.Data[SealKeyField], first) {
		t.Errorf("Secret immutable %v, data %x", secret.Immutable, secret.Data[SealKeyField])
	}
	again, err := LoadSealKey(ctx, c, c, key)
	if err != nil || !bytes.Equal(again, first) {
		t.Fatalf("second start read %x, %v; want the first key", again, err)
	}

	// Two replicas start at once with no Secret yet.
	race := types.NamespacedName{Namespace: "nodeward-system", Name: "race"}
	keys := make([][]byte, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = LoadSealKey(ctx, c, c, race)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || !bytes.Equal(keys[0], keys[1]) {
		t.Fatalf("racing replicas: %x (%v), %x (%v); want one key", keys[0], errs[0], keys[1], errs[1])
	}

	short := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "nodeward-system", Name: "short"}, Data: map[string][]byte{SealKeyField: []byte("abc")}}
	if err := c.Create(ctx, short); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSealKey(ctx, c, c, client.ObjectKeyFromObject(short)); err == nil || !strings.Contains(err.Error(), "data.key has 3 bytes") {
		t.Errorf("short key: %v", err)
	}
	if _, err := LoadSealKey(ctx, c, c, types.NamespacedName{Namespace: "missing", Name: "x"}); err == nil || !strings.Contains(err.Error(), "creating the seal key Secret missing/x") {
		t.Errorf("missing namespace: %v", err)
	}
}
