package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	// readyTimeout bounds how long one component may take to become
	// healthy. It is generous because tests share a small machine with
	// compilers; the caller's context can cut it shorter.
	readyTimeout = 2 * time.Minute
	// pollInterval is the pause between health probes.
	pollInterval = 100 * time.Millisecond
	// probeTimeout bounds one health probe.
	probeTimeout = 2 * time.Second
	// logTailBytes is how much of a component's log an error message quotes.
	logTailBytes = 3000
)

// healthCheck describes how to tell that a component is ready.
type healthCheck struct {
	url    string
	client *http.Client
	token  string                             // bearer token to send, if any
	ok     func(status int, body string) bool // nil: status 200
}

// newHTTPClient returns a client for health probes that trusts caPEM, or
// skips verification if caPEM is nil (for the self-signed serving
// certificates of kube-controller-manager and kube-scheduler).
func newHTTPClient(caPEM []byte) (*http.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if caPEM == nil {
		tlsConfig.InsecureSkipVerify = true //nolint:gosec // loopback healthz of a self-signed component
	} else {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("no certificate in CA PEM")
		}
		tlsConfig.RootCAs = pool
	}
	return &http.Client{
		Timeout: probeTimeout,
		Transport: &http.Transport{
			TLSClientConfig:   tlsConfig,
			DisableKeepAlives: true,
			Proxy:             nil, // never proxy loopback probes
		},
	}, nil
}

// waitReady polls hc until it passes. It fails early, quoting the tail of
// the component's log, if the process exits, ctx ends or readyTimeout passes.
func waitReady(ctx context.Context, p *process, hc healthCheck) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var last error
	for {
		if exited, err := p.exited(); exited {
			return fmt.Errorf("%w before becoming ready; tail of %s:\n%s", err, p.logPath, p.tail(logTailBytes))
		}
		last = hc.probe(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (%v; last probe of %s: %v); tail of %s:\n%s",
				p.name, context.Cause(ctx), hc.url, last, p.logPath, p.tail(logTailBytes))
		case <-p.done:
		case <-ticker.C:
		}
	}
}

// probe performs one health request.
func (hc healthCheck) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hc.url, nil)
	if err != nil {
		return err
	}
	if hc.token != "" {
		req.Header.Set("Authorization", "Bearer "+hc.token)
	}
	resp, err := hc.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	body := strings.TrimSpace(string(b))
	ok := resp.StatusCode == http.StatusOK
	if hc.ok != nil {
		ok = hc.ok(resp.StatusCode, body)
	}
	if !ok {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, summarize(body))
	}
	return nil
}

// summarize shortens a failed probe's body for an error message. For the
// verbose output of /readyz and /healthz it keeps only the failing checks,
// the lines starting with "[-]".
func summarize(body string) string {
	var failed []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "[-]") {
			failed = append(failed, line)
		}
	}
	if len(failed) > 0 {
		body = strings.Join(failed, "; ")
	}
	if len(body) > 500 {
		body = body[:500] + "..."
	}
	return body
}
