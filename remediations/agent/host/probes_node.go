package host

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// probeSwap fills out.Swap from /proc/swaps. A kernel without swap support
// has no /proc/swaps: swap is off.
func (p *Proc) probeSwap(out *v1alpha1.NodeProbes) {
	b, err := p.readFile(p.swaps)
	if errors.Is(err, fs.ErrNotExist) {
		out.Swap = &v1alpha1.SwapProbe{}
		return
	}
	if err != nil {
		addError(out, "swap: "+err.Error())
		return
	}
	total, used, ok := parseSwaps(b)
	if !ok {
		addError(out, "swap: "+fileError(p.swaps, "want \"Filename Type Size Used Priority\" lines").Error())
		return
	}
	out.Swap = &v1alpha1.SwapProbe{TotalBytes: total, UsedBytes: used}
}

// parseSwaps sums the Size and Used columns (KiB) of /proc/swaps, in bytes:
//
//	Filename				Type		Size		Used		Priority
//	/dev/dm-1                               partition	16760828	0		-2
//
// Only the header means swap is off. A line without two numbers after the
// type is not /proc/swaps.
func parseSwaps(b []byte) (total, used int64, ok bool) {
	first := true
	for line := range lines(b) {
		if first {
			first = false
			if f, _ := nextField(line); string(f) != "Filename" {
				return 0, 0, false
			}
			continue
		}
		if len(trimSpace(line)) == 0 {
			continue
		}
		_, rest := nextField(line) // filename (the kernel escapes spaces as \040)
		_, rest = nextField(rest)  // type
		sizeF, rest := nextField(rest)
		usedF, _ := nextField(rest)
		size, ok1 := parseInt(sizeF)
		u, ok2 := parseInt(usedF)
		if !ok1 || !ok2 {
			return 0, 0, false
		}
		total = addClamp(total, mulClamp(uint64(size), 1024))
		used = addClamp(used, mulClamp(uint64(u), 1024))
	}
	return total, used, !first
}

func addClamp(a, b int64) int64 {
	if a > 1<<62 || b > 1<<62 {
		return 1 << 62
	}
	return a + b
}

// Certificate names (CertificateProbe.Name) and their default host paths.
const (
	CertKubeletClient = "kubeletClient"
	CertClusterCA     = "clusterCA"

	DefaultKubeletClientCert = "/var/lib/kubelet/pki/kubelet-client-current.pem"
	DefaultClusterCACert     = "/etc/kubernetes/pki/ca.crt"
)

// certInterval: certificates are read at most this often.
const certInterval = 5 * time.Minute

// maxCertFile bounds a certificate file (a bundle of a few certificates
// and a key).
const maxCertFile = 256 << 10

// CertPath names a certificate file to probe.
type CertPath struct {
	// Name is kubeletClient or clusterCA.
	Name string
	// Path is the host path of a PEM file; its first CERTIFICATE block is
	// read (kubelet-client-current.pem holds the certificate, then its key).
	Path string
}

// DefaultCertPaths are the kubelet's rotated client certificate and
// kubeadm's cluster CA.
func DefaultCertPaths() []CertPath {
	return []CertPath{{Name: CertKubeletClient, Path: DefaultKubeletClientCert}, {Name: CertClusterCA, Path: DefaultClusterCACert}}
}

// certProbe reads certificates' validity at most every certInterval.
type certProbe struct {
	paths []CertPath // host paths
	root  string
	next  time.Time
	last  []v1alpha1.CertificateProbe
}

func (c *certProbe) probe(now time.Time) []v1alpha1.CertificateProbe {
	if len(c.paths) == 0 {
		return nil
	}
	if c.last == nil || !now.Before(c.next) {
		c.next = now.Add(certInterval)
		c.last = c.last[:0]
		for _, cp := range c.paths {
			c.last = append(c.last, readCertificate(cp.Name, c.root+cleanHostPath(cp.Path), cleanHostPath(cp.Path)))
		}
	}
	out := make([]v1alpha1.CertificateProbe, len(c.last))
	for i := range c.last {
		c.last[i].DeepCopyInto(&out[i])
	}
	return out
}

// readCertificate reads the validity of the first certificate in a PEM
// file; hostPath names it in errors.
func readCertificate(name, full, hostPath string) v1alpha1.CertificateProbe {
	out := v1alpha1.CertificateProbe{Name: name}
	fail := func(err error) v1alpha1.CertificateProbe {
		out.Error = truncateText([]byte(err.Error()), 256)
		return out
	}
	f, err := os.Open(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(fmt.Errorf("%s: no such file", hostPath))
		}
		return fail(fmt.Errorf("%s: %w", hostPath, errors.Unwrap(err)))
	}
	defer f.Close()
	data := make([]byte, maxCertFile+1)
	n, _ := readFull(f, data)
	if n > maxCertFile {
		return fail(fmt.Errorf("%s: more than %d bytes", hostPath, maxCertFile))
	}
	rest := data[:n]
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return fail(fmt.Errorf("%s: no PEM CERTIFICATE block", hostPath))
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fail(fmt.Errorf("%s: %v", hostPath, err))
		}
		nb, na := metav1.NewTime(cert.NotBefore), metav1.NewTime(cert.NotAfter)
		out.NotBefore, out.NotAfter = &nb, &na
		return out
	}
}

func readFull(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
