package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/yaml"

	"github.com/nodeward/nodeward/e2e/controlplane"
)

// approvalStampFile is the MutatingWebhookConfiguration of the operator's
// approval stamp webhook, relative to config/. In a real cluster the
// apiserver reaches the webhook through a Service with a cert-manager
// certificate; the harness registers it itself, calling the operator
// process on loopback with a certificate of its own.
const approvalStampFile = "webhook/approval_stamp.yaml"

// operatorWebhook is how the operator process serves its webhooks: on a
// free loopback port, with a serving certificate for 127.0.0.1 that the
// harness generated. It is fixed for the cluster's life, so that a restarted
// operator serves where the apiserver calls.
type operatorWebhook struct {
	addr    string // host:port
	certDir string // tls.crt, tls.key
	ca      []byte // PEM, the caBundle
}

// newOperatorWebhook picks a port and writes a serving certificate into
// dir/webhook-certs.
func newOperatorWebhook(dir string) (*operatorWebhook, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	w := &operatorWebhook{addr: addr, certDir: filepath.Join(dir, "webhook-certs")}
	if w.ca, err = controlplane.WriteServingCert(w.certDir, "nodeward-operator-webhook"); err != nil {
		return nil, fmt.Errorf("webhook serving certificate: %w", err)
	}
	return w, nil
}

// args are the operator's flags that turn its webhook server on.
func (w *operatorWebhook) args() []string {
	return []string{"--webhook-bind-address=" + w.addr, "--webhook-cert-dir=" + w.certDir}
}

// registerApprovalStamp creates config/webhook/approval_stamp.yaml's
// MutatingWebhookConfiguration with each webhook calling the operator at
// https://ADDR/PATH (PATH as the file's Service reference says) and
// trusting the harness's CA, in place of the Service and cert-manager.
func (c *Cluster) registerApprovalStamp(ctx context.Context) error {
	path := filepath.Join(c.opts.RepoDir, "config", approvalStampFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := yaml.UnmarshalStrict(raw, cfg); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	cfg.Annotations = nil // cert-manager's inject-ca-from
	for i := range cfg.Webhooks {
		cc := &cfg.Webhooks[i].ClientConfig
		if cc.Service == nil || cc.Service.Path == nil || !strings.HasPrefix(*cc.Service.Path, "/") {
			return fmt.Errorf("%s: webhook %s: clientConfig.service.path is missing", path, cfg.Webhooks[i].Name)
		}
		url := "https://" + c.webhook.addr + *cc.Service.Path
		cc.Service, cc.URL, cc.CABundle = nil, &url, c.webhook.ca
	}
	if err := c.Client.Create(ctx, cfg); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating MutatingWebhookConfiguration %s: %w", cfg.Name, err)
	}
	return nil
}
