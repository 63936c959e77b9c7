package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the paths of the key material Start generates into Dir/certs.
type pki struct {
	caCert      string // CA that signed the serving cert; also the client CA
	servingCert string // kube-apiserver serving cert for 127.0.0.1 and localhost
	servingKey  string
	saKey       string // RSA private key signing service-account tokens
	saPub       string // its public key, verifying them
	caPEM       []byte
}

// certValidity is how long the generated certificates are valid: far longer
// than any test, short enough not to matter if a work dir leaks.
const certValidity = 7 * 24 * time.Hour

// writePKI generates a fresh CA, a serving certificate for the apiserver
// signed by it, and a service-account key pair, and writes them into dir.
func writePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{
		caCert:      filepath.Join(dir, "ca.crt"),
		servingCert: filepath.Join(dir, "apiserver.crt"),
		servingKey:  filepath.Join(dir, "apiserver.key"),
		saKey:       filepath.Join(dir, "sa.key"),
		saPub:       filepath.Join(dir, "sa.pub"),
	}
	caDER, ca, caKey, err := newCA("nodeward-controlplane-ca")
	if err != nil {
		return nil, err
	}
	servingDER, servingKeyDER, err := newServingCert(ca, caKey, "kube-apiserver",
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 0, 0, 1)},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return nil, fmt.Errorf("apiserver serving certificate: %w", err)
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}

	p.caPEM = pemBlock("CERTIFICATE", caDER)
	files := []struct {
		path string
		data []byte
	}{
		{p.caCert, p.caPEM},
		{p.servingCert, append(pemBlock("CERTIFICATE", servingDER), p.caPEM...)},
		{p.servingKey, pemBlock("PRIVATE KEY", servingKeyDER)},
		{p.saKey, pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey))},
		{p.saPub, pemBlock("PUBLIC KEY", saPubDER)},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// WriteServingCert generates a fresh CA and a serving certificate for
// 127.0.0.1 and localhost signed by it, writes the certificate (followed by
// the CA's) and its key into dir as tls.crt and tls.key, the names
// controller-runtime's webhook server reads, and returns the CA certificate
// (PEM), e.g. for a webhook's caBundle.
func WriteServingCert(dir, commonName string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caDER, ca, caKey, err := newCA(commonName + "-ca")
	if err != nil {
		return nil, err
	}
	der, keyDER, err := newServingCert(ca, caKey, commonName, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, []string{"localhost"})
	if err != nil {
		return nil, fmt.Errorf("%s serving certificate: %w", commonName, err)
	}
	caPEM := pemBlock("CERTIFICATE", caDER)
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), append(pemBlock("CERTIFICATE", der), caPEM...), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return nil, err
	}
	return caPEM, nil
}

// notBefore is the start of generated certificates' validity: an hour ago,
// to tolerate clock skew between processes.
func notBefore() time.Time { return time.Now().Add(-time.Hour) }

// newCA generates a self-signed CA certificate and its key.
func newCA(commonName string) ([]byte, *x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := notBefore()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now,
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, cert, err := signCert(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	return der, cert, key, nil
}

// newServingCert generates a key and a server certificate for ips and dns
// signed by ca, returning the certificate's DER and the key's (PKCS #8).
func newServingCert(ca *x509.Certificate, caKey crypto.Signer, commonName string, ips []net.IP, dns []string) (certDER, keyDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := notBefore()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		NotBefore:   now,
		NotAfter:    now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: ips,
		DNSNames:    dns,
	}
	if certDER, _, err = signCert(tmpl, ca, key.Public(), caKey); err != nil {
		return nil, nil, err
	}
	if keyDER, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
		return nil, nil, err
	}
	return certDER, keyDER, nil
}

// signCert creates the certificate tmpl for pub, signed by parent's key
// signer, with a random serial number.
func signCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return der, cert, err
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
