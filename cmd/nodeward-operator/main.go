// Command nodeward-operator runs nodeward's controllers: diagnosis, policy
// and executor, in one leader-elected manager with health probes and metrics,
// and, given a serving certificate, the approval stamp webhook (on every
// replica, leader or not).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
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

type options struct {
	kubeconfig       string
	metricsAddr      string
	probeAddr        string
	pprofAddr        string
	leaderElect      bool
	leaderElectionNS string
	sealSecret       string
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
	// Slower than controller-runtime's 15s/10s/2s: the leader's Lease renewal
	// is its only steady-state write (6 a minute instead of 30); a failover
	// takes up to a minute, which a remediation operator can afford.
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 60*time.Second, "How long a leader's Lease is valid.")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 40*time.Second, "How long the leader keeps trying to renew before it steps down.")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 10*time.Second, "How often the leader renews its Lease.")
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
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         operator.CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "nodeward-operator",
		LeaderElectionNamespace:       o.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.leaseDuration,
		RenewDeadline:                 &o.renewDeadline,
		RetryPeriod:                   &o.retryPeriod,
		PprofBindAddress:              o.pprofAddr,
		WebhookServer:                 webhookServer,
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
	if webhookServer != nil {
		// Not ready, so out of the webhook Service, until it serves.
		if err := mgr.AddReadyzCheck("webhook", webhookServer.StartedChecker()); err != nil {
			return err
		}
	}
	logger.Info("Starting nodeward-operator")
	return mgr.Start(ctx)
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
