// Package harness runs nodeward for real on a local cluster: the real control
// plane (e2e/controlplane), nodeward's CRDs, RBAC and admission policies from
// config/, the operator as its own binary under its own service account,
// serving its approval stamp webhook on loopback (registered with the
// apiserver by URL), and simulated nodes (e2e/sim) each with the real node
// agent under a token bound to its own pod on its node. The e2e tests, the
// bench and `make demo` all use it.
package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/e2e/controlplane"
	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations/agent"
)

// Namespace is where nodeward's own objects live.
const Namespace = "nodeward-system"

// NodeSpec describes one simulated node.
type NodeSpec struct {
	Name   string
	Labels map[string]string
}

// Options configure a cluster.
type Options struct {
	// RepoDir is the repository root (config/ is read from it). Default: found
	// from the working directory.
	RepoDir string
	// BinDir holds nodeward-operator. Default $NODEWARD_BIN, else RepoDir/bin.
	BinDir string
	// ControlPlane options; ControllerManager and Scheduler are always on.
	ControlPlane controlplane.Options
	// Nodes to boot, each with its agent.
	Nodes []NodeSpec
	// OperatorArgs are extra flags for nodeward-operator.
	OperatorArgs []string
	// Replicas is how many operator processes run, leader-elected (default
	// 1); each has its own probe address and leader-election identity.
	Replicas int
	// AgentProbeInterval and AgentReportInterval tune the agents.
	AgentProbeInterval, AgentReportInterval time.Duration
	// Log receives component logs; nil keeps them only in files.
	Log io.Writer
}

// Cluster is a running local cluster with nodeward installed.
type Cluster struct {
	CP     *controlplane.ControlPlane
	Client client.Client
	Kube   kubernetes.Interface
	Scheme *runtime.Scheme

	opts     Options
	mu       sync.Mutex
	nodes    map[string]*sim.Node
	replicas []*OperatorReplica // started and not stopped, oldest first
	started  int                // replicas ever started, for their identities
	webhook  *operatorWebhook
}

// OperatorReplica is one nodeward-operator process.
type OperatorReplica struct {
	// ID is its leader-election identity (--leader-elect-identity), the
	// holderIdentity of the Lease nodeward-system/nodeward-operator while
	// it leads: nodeward-operator-0, -1, … in start order, never reused.
	ID string
	// ProbeAddr serves /healthz and /readyz.
	ProbeAddr string
	// Webhook tells whether it serves the approval stamp webhook. One
	// replica at a time does, at the address the apiserver calls: the first
	// one, and after it ends the next one started.
	Webhook bool

	cmd  *exec.Cmd
	done chan struct{}
}

// PID is the process id.
func (r *OperatorReplica) PID() int { return r.cmd.Process.Pid }

// Done is closed once the process has exited.
func (r *OperatorReplica) Done() <-chan struct{} { return r.done }

// Start brings the cluster up. On error everything started is stopped.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.RepoDir == "" {
		if opts.RepoDir, err = RepoDir(); err != nil {
			return nil, err
		}
	}
	if opts.BinDir == "" {
		opts.BinDir = os.Getenv("NODEWARD_BIN")
		if opts.BinDir == "" {
			opts.BinDir = filepath.Join(opts.RepoDir, "bin")
		}
	}
	cpo := opts.ControlPlane
	cpo.ControllerManager, cpo.Scheduler = true, true
	if cpo.Log == nil {
		cpo.Log = opts.Log
	}
	cp, err := controlplane.Start(ctx, cpo)
	if err != nil {
		return nil, err
	}
	c = &Cluster{CP: cp, opts: opts, nodes: map[string]*sim.Node{}}
	started := c // `return nil, err` below clears c before this runs
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()
	c.Scheme = runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(c.Scheme); err != nil {
			return nil, err
		}
	}
	admin := cp.RestConfig("admin")
	if c.Client, err = client.New(admin, client.Options{Scheme: c.Scheme}); err != nil {
		return nil, err
	}
	if c.Kube, err = kubernetes.NewForConfig(admin); err != nil {
		return nil, err
	}
	if err := c.Install(ctx); err != nil {
		return nil, fmt.Errorf("installing nodeward: %w", err)
	}
	for _, n := range opts.Nodes {
		if _, err := c.AddNode(ctx, n); err != nil {
			return nil, err
		}
	}
	if c.webhook, err = newOperatorWebhook(cp.Dir); err != nil {
		return nil, err
	}
	if err := c.StartOperator(ctx); err != nil {
		return nil, err
	}
	if err := c.registerApprovalStamp(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Install applies config/ (all but the in-cluster Deployment and DaemonSet,
// whose roles the harness plays itself) and waits for the CRDs.
func (c *Cluster) Install(ctx context.Context) error {
	files, err := installFiles(c.opts.RepoDir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := ApplyFile(ctx, c.Client, f); err != nil {
			return err
		}
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list := &apiextensionsv1.CustomResourceDefinitionList{}
		if err := c.Client.List(ctx, list); err != nil {
			return false, nil
		}
		n := 0
		for _, crd := range list.Items {
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue && crd.Spec.Group == v1alpha1.GroupVersion.Group {
					n++
				}
			}
		}
		return n >= 6, nil
	})
}

// ServiceAccountConfig returns a rest.Config with a token of the service
// account nodeward-system/name, bound to pod when pod is not nil.
func (c *Cluster) ServiceAccountConfig(ctx context.Context, name string, pod *corev1.Pod) (*rest.Config, error) {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(24 * 3600))}}
	if pod != nil {
		tr.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tr, err := c.Kube.CoreV1().ServiceAccounts(Namespace).CreateToken(ctx, name, tr, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("requesting a token for %s/%s: %w", Namespace, name, err)
	}
	cfg := rest.CopyConfig(c.CP.RestConfig("admin"))
	cfg.BearerToken, cfg.BearerTokenFile = tr.Status.Token, ""
	cfg.Username, cfg.Password = "", ""
	cfg.CertData, cfg.KeyData, cfg.CertFile, cfg.KeyFile = nil, nil, "", ""
	return cfg, nil
}

// ControlPlaneNode is a simulated control-plane node: labelled
// node-role.kubernetes.io/control-plane, with kubeadm's
// kube-controller-manager manifest on its host.
func ControlPlaneNode(name string) NodeSpec {
	return NodeSpec{Name: name, Labels: map[string]string{sim.LabelControlPlane: ""}}
}

// AddNode boots a simulated node and starts its agent.
func (c *Cluster) AddNode(ctx context.Context, spec NodeSpec) (*sim.Node, error) {
	n := sim.NewNode(c.Kube, spec.Name, spec.Labels)
	_, controlPlane := spec.Labels[sim.LabelControlPlane]
	if err := n.Host.SetupConfig(filepath.Join(c.CP.Dir, "nodes", spec.Name), controlPlane); err != nil {
		return nil, fmt.Errorf("config files of node %s: %w", spec.Name, err)
	}
	if err := n.Boot(ctx, c.Kube); err != nil {
		return nil, fmt.Errorf("booting node %s: %w", spec.Name, err)
	}
	c.mu.Lock()
	c.nodes[spec.Name] = n
	c.mu.Unlock()
	return n, c.StartAgent(ctx, spec.Name)
}

// StartAgent starts the node's agent under a token bound to an agent pod on
// that node, as the DaemonSet's pod would have.
func (c *Cluster) StartAgent(ctx context.Context, node string) error {
	n := c.Node(node)
	if n == nil {
		return fmt.Errorf("unknown node %q", node)
	}
	cfg, err := c.AgentConfig(ctx, node)
	if err != nil {
		return err
	}
	return n.StartAgent(cfg, agent.Options{ProbeInterval: c.opts.AgentProbeInterval, ReportInterval: c.opts.AgentReportInterval, Version: "e2e"})
}

// AgentConfig returns the identity of node's agent: the agent service
// account, with a token bound to the agent's pod on node.
func (c *Cluster) AgentConfig(ctx context.Context, node string) (*rest.Config, error) {
	pod, err := c.agentPod(ctx, node)
	if err != nil {
		return nil, err
	}
	cfg, err := c.ServiceAccountConfig(ctx, "nodeward-agent", pod)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "nodeward-agent/" + node
	return cfg, nil
}

// agentPod creates the pod the DaemonSet would run on the node: the agent's
// token is bound to it, which puts the node's name into the token.
func (c *Cluster) agentPod(ctx context.Context, node string) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: boundedName("nodeward-agent-"+node, 253), Namespace: Namespace, Labels: map[string]string{"app.kubernetes.io/name": "nodeward-agent"}},
		Spec: corev1.PodSpec{
			NodeName:           node,
			ServiceAccountName: "nodeward-agent",
			Tolerations:        []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers:         []corev1.Container{{Name: "agent", Image: "nodeward-agent:e2e"}},
		},
	}
	if err := c.Client.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating agent pod for %s: %w", node, err)
	}
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
		return nil, err
	}
	return pod, nil
}

// boundedName is name if it has at most max characters, else a prefix of it,
// a dash and 16 hex characters of its sha256: node names may have 253
// characters, and so may a pod's name; a file's name 255.
func boundedName(name string, max int) string {
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.TrimRight(name[:max-17], ".-") + "-" + hex.EncodeToString(sum[:])[:16]
}

// Node returns a simulated node by name.
func (c *Cluster) Node(name string) *sim.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[name]
}

// Nodes returns every simulated node.
func (c *Cluster) Nodes() []*sim.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*sim.Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	return out
}

// OperatorKubeconfig writes a kubeconfig for the operator's service account.
func (c *Cluster) OperatorKubeconfig(ctx context.Context) (string, error) {
	cfg, err := c.ServiceAccountConfig(ctx, "nodeward-operator", nil)
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.CP.Dir, "nodeward-operator.kubeconfig")
	return path, writeKubeconfig(cfg, c.CP.CAData, path)
}

// AgentKubeconfig writes a kubeconfig for node's agent (AgentConfig), for an
// agent run as its own process.
func (c *Cluster) AgentKubeconfig(ctx context.Context, node string) (string, error) {
	cfg, err := c.AgentConfig(ctx, node)
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.CP.Dir, boundedName("nodeward-agent-"+node, 240)+".kubeconfig")
	return path, writeKubeconfig(cfg, c.CP.CAData, path)
}

func writeKubeconfig(cfg *rest.Config, ca []byte, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "user"}
	kc.CurrentContext = "local"
	return clientcmd.WriteToFile(*kc, path)
}

// StartOperator runs Options.Replicas (at least one) nodeward-operator
// processes (StartReplica).
func (c *Cluster) StartOperator(ctx context.Context) error {
	for range max(1, c.opts.Replicas) {
		if _, err := c.StartReplica(ctx); err != nil {
			return err
		}
	}
	return nil
}

// StartReplica runs one more bin/nodeward-operator under the operator's
// service account, with its own probe address and leader-election identity
// and, if no running replica serves it, the webhook server; it waits until
// the replica is ready (/readyz: its caches synced, so it has entered the
// leader election, and its webhook serving).
func (c *Cluster) StartReplica(ctx context.Context) (*OperatorReplica, error) {
	kubeconfig, err := c.OperatorKubeconfig(ctx)
	if err != nil {
		return nil, err
	}
	probe, err := freeAddr()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(c.opts.BinDir, "nodeward-operator")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("operator binary: %w (run make build)", err)
	}
	c.mu.Lock()
	r := &OperatorReplica{ID: "nodeward-operator-" + strconv.Itoa(c.started), ProbeAddr: probe, Webhook: true, done: make(chan struct{})}
	c.started++
	for _, o := range c.replicas {
		select {
		case <-o.done:
		default:
			r.Webhook = r.Webhook && !o.Webhook
		}
	}
	c.mu.Unlock()
	args := []string{"--kubeconfig", kubeconfig, "--metrics-bind-address=0", "--health-probe-bind-address=" + probe, "--zap-devel=false", "--leader-elect-identity=" + r.ID}
	if r.Webhook {
		args = append(args, c.webhook.args()...)
	}
	args = append(args, c.opts.OperatorArgs...)
	cmd := exec.Command(bin, args...)
	logf, err := os.OpenFile(filepath.Join(c.CP.Dir, "nodeward-operator.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	var out io.Writer = logf
	prefix := "[nodeward-operator] "
	if c.opts.Replicas > 1 {
		// Several processes share the file: each line says whose it is.
		prefix = "[" + r.ID + "] "
		out = &prefixWriter{prefix: prefix, w: logf}
	}
	if c.opts.Log != nil {
		out = io.MultiWriter(out, &prefixWriter{prefix: prefix, w: c.opts.Log})
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting nodeward-operator: %w", err)
	}
	r.cmd = cmd
	go func() { _ = cmd.Wait(); logf.Close(); close(r.done) }()
	c.mu.Lock()
	c.replicas = append(c.replicas, r)
	c.mu.Unlock()
	hc := &http.Client{Timeout: time.Second}
	return r, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		select {
		case <-r.done:
			return false, fmt.Errorf("nodeward-operator %s exited early; see %s", r.ID, filepath.Join(c.CP.Dir, "nodeward-operator.log"))
		default:
		}
		if r.Webhook {
			conn, err := net.DialTimeout("tcp", c.webhook.addr, time.Second)
			if err != nil {
				return false, nil
			}
			conn.Close()
		}
		resp, err := hc.Get("http://" + probe + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// OperatorReplicas returns the replicas started and not stopped or killed
// by the harness, oldest first (one may have exited by itself: see Done).
func (c *Cluster) OperatorReplicas() []*OperatorReplica {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*OperatorReplica(nil), c.replicas...)
}

// OperatorReplica returns the replica with leader-election identity id, or
// nil.
func (c *Cluster) OperatorReplica(id string) *OperatorReplica {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.replicas {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// OperatorLease returns the operator's leader-election Lease; its
// spec.holderIdentity is the leading replica's ID.
func (c *Cluster) OperatorLease(ctx context.Context) (*coordinationv1.Lease, error) {
	return c.Kube.CoordinationV1().Leases(Namespace).Get(ctx, "nodeward-operator", metav1.GetOptions{})
}

// OperatorPID returns the process id of the oldest running operator, or 0.
func (c *Cluster) OperatorPID() int {
	for _, r := range c.OperatorReplicas() {
		select {
		case <-r.done:
		default:
			return r.PID()
		}
	}
	return 0
}

// KillReplica SIGKILLs the replica (and its process group), as a node
// failure or the OOM killer would, and waits until it is gone: it releases
// nothing.
func (c *Cluster) KillReplica(id string) error {
	r := c.removeReplica(id)
	if r == nil {
		return fmt.Errorf("no operator replica %q", id)
	}
	_ = syscall.Kill(-r.PID(), syscall.SIGKILL)
	<-r.done
	return nil
}

// StopReplica stops the replica cleanly (SIGTERM, then SIGKILL after 10s).
func (c *Cluster) StopReplica(id string) error {
	r := c.removeReplica(id)
	if r == nil {
		return fmt.Errorf("no operator replica %q", id)
	}
	r.stop()
	return nil
}

func (c *Cluster) removeReplica(id string) *OperatorReplica {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.replicas {
		if r.ID == id {
			c.replicas = append(c.replicas[:i], c.replicas[i+1:]...)
			return r
		}
	}
	return nil
}

func (r *OperatorReplica) stop() {
	_ = syscall.Kill(-r.PID(), syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-r.PID(), syscall.SIGKILL)
		<-r.done
	}
}

// StopOperator stops every replica (StopReplica), all at once.
func (c *Cluster) StopOperator() {
	c.mu.Lock()
	rs := c.replicas
	c.replicas = nil
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(r.stop)
	}
	wg.Wait()
}

// Stop stops the operator, the nodes and the control plane.
func (c *Cluster) Stop() {
	c.StopOperator()
	for _, n := range c.Nodes() {
		n.Shutdown()
	}
	if c.CP != nil {
		_ = c.CP.Stop()
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// RepoDir finds the repository root from the working directory.
func RepoDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "config", "kustomization.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (with config/kustomization.yaml) not found above the working directory")
		}
		dir = parent
	}
}
