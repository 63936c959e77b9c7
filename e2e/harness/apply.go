package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// inClusterOnly are the manifests the harness replaces with its own: the
// operator and the agents run as its processes, and the operator's webhook
// is served on loopback with the harness's certificate and registered by
// registerApprovalStamp.
var inClusterOnly = map[string]bool{"operator/deployment.yaml": true, "agent/daemonset.yaml": true,
	"webhook/service.yaml": true, "certmanager/certificate.yaml": true, approvalStampFile: true}

// installFiles lists config/kustomization.yaml's resources, in order.
func installFiles(repo string) ([]string, error) {
	raw, err := os.ReadFile(filepath.Join(repo, "config", "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("reading config/kustomization.yaml: %w", err)
	}
	var out []string
	for _, r := range k.Resources {
		if !inClusterOnly[r] {
			out = append(out, filepath.Join(repo, "config", r))
		}
	}
	return out, nil
}

// ApplyFile creates every object in a multi-document YAML file; objects that
// exist already are left alone.
func ApplyFile(ctx context.Context, c client.Client, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return Apply(ctx, c, raw)
}

// Apply creates every object of a multi-document YAML.
func Apply(ctx context.Context, c client.Client, raw []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(doc)) == 0 || strings.TrimSpace(string(doc)) == "---" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			return err
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
}

// prefixWriter prefixes every line.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i]); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}
