// Command nodeward-operator runs nodeward's controllers: diagnosis, policy
// and executor, in one leader-elected manager with health probes and metrics,
// and, given a serving certificate, the approval stamp webhook (on every
// replica, leader or not).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/nodeward/nodeward/operator"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/operator/diagnosis"
	"github.com/nodeward/nodeward/remediations"
)

// leaderElectionID names the leader-election Lease.
const leaderElectionID = "nodeward-operator"

type options struct {
	kubeconfig       string
	metricsAddr      string
	probeAddr        string
	pprofAddr        string
	leaderElect      bool
	leaderElectionNS string
	sealSecret       string
	leaderIdentity   string
	leaseDuration    time.Duration
	renewDeadline    time.Duration
	retryPeriod      time.Duration
	leaseStaleAfter  time.Duration
	qps              float64
	burst            int
	approvalWebhook  string
	webhookAddr      string
	webhookCertDir   string
	zap              zap.Options
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "nodeward-operator:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	o := options{}
	fs := flag.NewFlagSet("nodeward-operator", flag.ContinueOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; empty means in-cluster config or $KUBECONFIG.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address of a net/http/pprof endpoint; empty disables it.")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "Use leader election so only one replica acts.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "nodeward-system", "Namespace of the leader-election Lease.")
	// 15s/10s/2s, as kube-controller-manager and kube-scheduler renew their
	// own leases on the same apiserver. A killed leader is replaced once its
	// Lease has gone unrenewed for the lease duration: about 15-20s (the
	// standby checks every 2s, jittered up to 4.4s), where 60s/40s/10s let a
	// SIGKILL stall remediation for up to a minute. The leader gives up only
	// after 10s without one successful renewal: an apiserver on a loaded
	// 2-core machine that answers in seconds costs no leadership, and the 5s
	// between renew deadline and lease duration keep the old leader's
	// stepping down ahead of anyone's taking over. The price is a Lease
	// update every 2s (30 writes a minute, the operator's only steady-state
	// write). A clean shutdown (SIGTERM) releases the Lease, so a standby
	// takes over at its next retry.
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a leader's Lease is valid: a killed leader is replaced this long (plus up to two retry periods) after its last renewal. Must exceed the renew deadline.")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps trying to renew before it steps down (and exits): the longest apiserver stall it survives. Must exceed 1.2 retry periods.")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often the leader renews its Lease (one write each) and a standby tries to acquire it (jittered up to 2.2 times this).")
	fs.StringVar(&o.leaderIdentity, "leader-elect-identity", "", "This replica's identity in the leader-election Lease (holderIdentity); it must be unique among live replicas, e.g. the pod name. Empty: the host name and a random UUID.")
	fs.StringVar(&o.sealSecret, "seal-secret", "", "NAMESPACE/NAME of the Secret holding the key the operator seals its Remediation records with (created with a random key if absent; only the operator may read it). Default: the leader-election namespace/"+operator.DefaultSealSecretName+".")
	fs.DurationVar(&o.leaseStaleAfter, "lease-stale-after", diagnosis.DefaultThresholds().LeaseStaleAfter, "A node Lease not renewed for this long counts as stopped heartbeats.")
	fs.Float64Var(&o.qps, "kube-api-qps", 50, "Client QPS towards the API server.")
	fs.IntVar(&o.burst, "kube-api-burst", 100, "Client burst towards the API server.")
	fs.StringVar(&o.approvalWebhook, "approval-webhook-url-file", "", "File holding a URL (e.g. a mounted Secret key) to POST a JSON notice to when a remediation waits for approval; empty or a missing file sends none.")
	fs.StringVar(&o.webhookAddr, "webhook-bind-address", ":9443", "Address of the admission webhook server (HTTPS), used with --webhook-cert-dir.")
	fs.StringVar(&o.webhookCertDir, "webhook-cert-dir", "", "Directory holding tls.crt and tls.key (e.g. a mounted cert-manager Secret) for the webhook server that stamps approval.decidedBy and approval.decidedAt; empty disables the webhook.")
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.leaderElect && !(o.leaseDuration > o.renewDeadline && float64(o.renewDeadline) > 1.2*float64(o.retryPeriod) && o.retryPeriod > 0) {
		return fmt.Errorf("--leader-elect-lease-duration (%s) must exceed --leader-elect-renew-deadline (%s), which must exceed 1.2 times --leader-elect-retry-period (%s)", o.leaseDuration, o.renewDeadline, o.retryPeriod)
	}
	logger := zap.New(zap.UseFlagOptions(&o.zap))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)

	sealSecret := types.NamespacedName{Namespace: o.leaderElectionNS, Name: operator.DefaultSealSecretName}
	if o.sealSecret != "" {
		ns, name, ok := strings.Cut(o.sealSecret, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("--seal-secret %q: want NAMESPACE/NAME", o.sealSecret)
		}
		sealSecret = types.NamespacedName{Namespace: ns, Name: name}
	}

	var webhookServer webhook.Server
	if o.webhookCertDir == "" {
		logger.Info("Approval stamp webhook disabled (no --webhook-cert-dir): approvals keep the decidedAt their client sent")
	} else {
		host, port, err := splitHostPort(o.webhookAddr)
		if err != nil {
			return fmt.Errorf("--webhook-bind-address: %w", err)
		}
		webhookServer = webhook.NewServer(webhook.Options{Host: host, Port: port, CertDir: o.webhookCertDir})
	}

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	cfg.UserAgent = "nodeward-operator"

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	var lock resourcelock.Interface
	if o.leaderElect {
		if lock, err = leaderLock(cfg, scheme, o); err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                              scheme,
		Cache:                               operator.CacheOptions(),
		Metrics:                             metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:              o.probeAddr,
		LeaderElection:                      o.leaderElect,
		LeaderElectionID:                    leaderElectionID,
		LeaderElectionNamespace:             o.leaderElectionNS,
		LeaderElectionReleaseOnCancel:       true, // SIGTERM hands over at once
		LeaderElectionResourceLockInterface: lock,
		LeaseDuration:                       &o.leaseDuration,
		RenewDeadline:                       &o.renewDeadline,
		RetryPeriod:                         &o.retryPeriod,
		PprofBindAddress:                    o.pprofAddr,
		WebhookServer:                       webhookServer,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	th := diagnosis.DefaultThresholds()
	th.LeaseStaleAfter = o.leaseStaleAfter
	opts := operator.Options{Thresholds: th, ApprovalStamp: webhookServer != nil, SealSecret: sealSecret}
	if o.approvalWebhook != "" {
		opts.Notifier = remediations.NewNotifier(o.approvalWebhook)
	}
	if err := operator.Setup(ctx, mgr, opts); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	// Ready once the caches are synced: the manager then enters the leader
	// election, so a ready standby is one that can take over.
	if err := mgr.AddReadyzCheck("cache", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), 200*time.Millisecond)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("caches not synced yet")
		}
		return nil
	}); err != nil {
		return err
	}
	if webhookServer != nil {
		// Not ready, so out of the webhook Service, until it serves.
		if err := mgr.AddReadyzCheck("webhook", webhookServer.StartedChecker()); err != nil {
			return err
		}
	}
	logger.Info("Starting nodeward-operator")
	return mgr.Start(ctx)
}

// leaderLock is controller-runtime's leader-election Lease lock
// (nodeward-system/nodeward-operator) with this replica's identity:
// --leader-elect-identity, or as controller-runtime names it, the host name
// and a random UUID. Each request times out after half the renew deadline,
// so one hung request does not cost the leadership.
func leaderLock(cfg *rest.Config, scheme *runtime.Scheme, o options) (resourcelock.Interface, error) {
	id := o.leaderIdentity
	if id == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		id = host + "_" + string(uuid.NewUUID())
	}
	lc := rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election")
	lc.Timeout = max(o.renewDeadline/2, time.Second)
	cs, err := kubernetes.NewForConfig(lc)
	if err != nil {
		return nil, err
	}
	// "<id> became leader" Events on the Lease, as controller-runtime records.
	events := record.NewBroadcaster()
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	return resourcelock.New(resourcelock.LeasesResourceLock, o.leaderElectionNS, leaderElectionID,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{
			Identity:      id,
			EventRecorder: events.NewRecorder(scheme, corev1.EventSource{Component: "nodeward-operator", Host: id}),
		})
}

// splitHostPort splits a bind address such as ":9443" or "127.0.0.1:9443".
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q of %q is not a number from 1 to 65535", p, addr)
	}
	return host, port, nil
}
