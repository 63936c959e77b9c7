package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func TestParseSwaps(t *testing.T) {
	const header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
	cases := []struct {
		name        string
		in          string
		total, used int64
		ok          bool
	}{
		{name: "off: header only", in: header, ok: true},
		// Ubuntu's swap file and a partition (the kubelet's "swap on" line
		// quotes /proc/swaps like this).
		{name: "file", in: header + "/swap.img                               file\t\t2097148\t\t0\t\t-2\n", total: 2097148 * 1024, ok: true},
		{name: "two areas", in: header + "/dev/dm-1                               partition\t16760828\t1024\t\t-2\n/dev/zram0                              partition\t8388604\t\t512\t\t100\n",
			total: (16760828 + 8388604) * 1024, used: (1024 + 512) * 1024, ok: true},
		{name: "name with a space", in: header + "/swap\\040file                             file\t\t1024\t\t0\t\t-2\n", total: 1024 * 1024, ok: true},
		{name: "empty", in: ""},
		{name: "not swaps", in: "MemTotal: 1 kB\n"},
		{name: "bad numbers", in: header + "/swap.img file x y -2\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			total, used, ok := parseSwaps([]byte(tc.in))
			if total != tc.total || used != tc.used || ok != tc.ok {
				t.Errorf("parseSwaps = %d, %d, %v; want %d, %d, %v", total, used, ok, tc.total, tc.used, tc.ok)
			}
		})
	}
}

func TestProbeSwap(t *testing.T) {
	root := newRoot(t)
	p := newTestProc(t, root, clocktesting.NewFakeClock(probeT0))
	// No /proc/swaps: a kernel without swap.
	if got := p.Probe(context.Background()); got.Swap == nil || got.Swap.TotalBytes != 0 {
		t.Errorf("Swap = %+v, want off", got.Swap)
	}
	writeFile(t, root, "proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swap.img file 2097148 100 -2\n")
	if got := p.Probe(context.Background()); got.Swap == nil || got.Swap.TotalBytes != 2097148*1024 || got.Swap.UsedBytes != 100*1024 {
		t.Errorf("Swap = %+v", got.Swap)
	}
}

// certPEM is a self-signed certificate valid from notBefore to notAfter,
// followed by its key when withKey (as kubelet-client-current.pem).
func certPEM(t *testing.T, notBefore, notAfter time.Time, withKey bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	out := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if withKey {
		kb, _ := x509.MarshalECPrivateKey(key)
		out += string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	}
	return out
}

func TestCertificates(t *testing.T) {
	root := newRoot(t)
	nb, na := probeT0.Add(-365*24*time.Hour).Truncate(time.Second), probeT0.Add(-time.Hour).Truncate(time.Second)
	// The kubelet's rotated client certificate, key first (either order
	// is valid PEM), expired an hour ago.
	key := strings.SplitAfter(certPEM(t, nb, na, true), "-----END CERTIFICATE-----\n")
	writeFile(t, root, "var/lib/kubelet/pki/kubelet-client-current.pem", key[1]+key[0])
	clk := clocktesting.NewFakeClock(probeT0)
	p := NewProc(ProcOptions{Root: root, Clock: clk, Certificates: append(DefaultCertPaths(), CertPath{Name: "clusterCA", Path: "/etc/garbage.crt"})})
	t.Cleanup(func() { _ = p.Close() })
	writeFile(t, root, "etc/garbage.crt", "not a certificate\n")

	got := p.Probe(context.Background()).Certificates
	if len(got) != 3 {
		t.Fatalf("Certificates = %+v", got)
	}
	if c := got[0]; c.Name != CertKubeletClient || c.Error != "" || !c.NotBefore.Time.Equal(nb) || !c.NotAfter.Time.Equal(na) {
		t.Errorf("kubelet client = %+v, want %v..%v", c, nb, na)
	}
	if c := got[1]; c.Name != CertClusterCA || c.Error != "/etc/kubernetes/pki/ca.crt: no such file" || c.NotAfter != nil {
		t.Errorf("missing CA = %+v", c)
	}
	if c := got[2]; !strings.Contains(c.Error, "/etc/garbage.crt: no PEM CERTIFICATE block") {
		t.Errorf("garbage = %+v", c)
	}

	// Renewed on disk: seen only after the interval.
	writeFile(t, root, "etc/kubernetes/pki/ca.crt", certPEM(t, nb, probeT0.Add(9*365*24*time.Hour), false))
	clk.Step(certInterval - time.Second)
	if c := p.Probe(context.Background()).Certificates[1]; c.Error == "" {
		t.Errorf("read again within %s: %+v", certInterval, c)
	}
	clk.Step(time.Second)
	if c := p.Probe(context.Background()).Certificates[1]; c.Error != "" || c.NotAfter == nil {
		t.Errorf("after the interval: %+v", c)
	}
	var none []v1alpha1.CertificateProbe
	if got := newTestProc(t, root, clk).Probe(context.Background()).Certificates; len(got) != len(none) {
		t.Errorf("no paths: %+v", got)
	}
}
