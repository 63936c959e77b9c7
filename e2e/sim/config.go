package sim

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations/agent/host"
)

// LabelControlPlane marks a simulated control-plane node, as kubeadm labels
// real ones.
const LabelControlPlane = "node-role.kubernetes.io/control-plane"

// ControllerManagerManifest is kubeadm's kube-controller-manager static pod
// manifest (v1.37, trimmed of volumes); it does not set
// --node-monitor-grace-period, so the default 50s applies.
const ControllerManagerManifest = `apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    component: kube-controller-manager
    tier: control-plane
  name: kube-controller-manager
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-controller-manager
    - --allocate-node-cidrs=true
    - --authentication-kubeconfig=/etc/kubernetes/controller-manager.conf
    - --authorization-kubeconfig=/etc/kubernetes/controller-manager.conf
    - --bind-address=127.0.0.1
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
    - --cluster-cidr=10.244.0.0/16
    - --cluster-name=kubernetes
    - --cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt
    - --cluster-signing-key-file=/etc/kubernetes/pki/ca.key
    - --controllers=*,bootstrapsigner,tokencleaner
    - --kubeconfig=/etc/kubernetes/controller-manager.conf
    - --leader-elect=true
    - --requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt
    - --root-ca-file=/etc/kubernetes/pki/ca.crt
    - --service-account-private-key-file=/etc/kubernetes/pki/sa.key
    - --service-cluster-ip-range=10.96.0.0/12
    - --use-service-account-credentials=true
    image: registry.k8s.io/kube-controller-manager:v1.37.2
    imagePullPolicy: IfNotPresent
    name: kube-controller-manager
    resources:
      requests:
        cpu: 200m
  hostNetwork: true
  priority: 2000001000
  priorityClassName: system-node-critical
status: {}
`

// KubeletConfig is kubeadm's /var/lib/kubelet/config.yaml (trimmed) with
// nodeStatusUpdateFrequency set to the default 10s.
const KubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
kind: KubeletConfiguration
nodeStatusReportFrequency: 5m0s
nodeStatusUpdateFrequency: 10s
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
`

// SetupConfig gives the host the config files of a kubeadm node under root
// (a new temporary directory when root is ""): the kubelet's config, and on a
// control-plane node the kube-controller-manager manifest. The node agent
// edits them through the real host.ConfigFiles.
func (h *Host) SetupConfig(root string, controlPlane bool) error {
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "nodeward-sim-host-"); err != nil {
			return err
		}
	}
	files := map[string]string{host.DefaultKubeletConfig: KubeletConfig}
	if controlPlane {
		files[host.DefaultControllerManagerManifest] = ControllerManagerManifest
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.config = host.NewConfigFiles(root, map[v1alpha1.ConfigFile]string{
		v1alpha1.ConfigFileControllerManagerManifest: host.DefaultControllerManagerManifest,
		v1alpha1.ConfigFileKubeletConfig:             host.DefaultKubeletConfig,
	})
	return nil
}

// HasConfig reports whether SetupConfig ran.
func (h *Host) HasConfig() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.config != nil
}

// ConfigPath is where a host path of the simulated node lives on disk.
func (h *Host) ConfigPath(hostPath string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.config == nil {
		return ""
	}
	return filepath.Join(h.config.Root, hostPath)
}

func (h *Host) configFiles() (*host.ConfigFiles, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.config == nil {
		return nil, fmt.Errorf("this simulated host has no config files: %w", fs.ErrNotExist)
	}
	return h.config, nil
}

var _ host.ConfigEditor = (*Host)(nil)

// ReadConfig implements host.ConfigEditor.
func (h *Host) ReadConfig(ctx context.Context, file v1alpha1.ConfigFile, key v1alpha1.ConfigKey) (string, error) {
	c, err := h.configFiles()
	if err != nil {
		return "", err
	}
	return c.ReadConfig(ctx, file, key)
}

// WriteConfig implements host.ConfigEditor.
func (h *Host) WriteConfig(ctx context.Context, file v1alpha1.ConfigFile, key v1alpha1.ConfigKey, value string) (string, error) {
	c, err := h.configFiles()
	if err != nil {
		return "", err
	}
	return c.WriteConfig(ctx, file, key, value)
}
