package controlplane_test

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/nodeward/nodeward/e2e/controlplane"
)

// The serving certificate verifies for 127.0.0.1 against the returned CA,
// as the apiserver checks a webhook's with its caBundle.
func TestWriteServingCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	ca, err := controlplane.WriteServingCert(dir, "nodeward-webhook")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatalf("loading tls.crt and tls.key: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatalf("the returned CA is not PEM: %q", ca)
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("verifying for %s: %v", host, err)
		}
	}
}
