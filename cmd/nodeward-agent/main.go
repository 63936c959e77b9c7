// Command nodeward-agent is the node agent: one per node (a DaemonSet), it
// reports the node's unit states and runs the node-local steps of
// remediations for its own node, from a closed set of actions.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations/agent"
	"github.com/nodeward/nodeward/remediations/agent/host"
)

// Version is stamped at build time.
var Version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "nodeward-agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var (
		kubeconfig, nodeName, probeAddr, kubeletUnit, runtimeUnit, hostRoot string
		cmManifest, kubeletConfig                                           string
		criEndpoint, journalctl, kubeletClientCert, clusterCACert           string
		probeInterval, reportInterval, criTimeout                           time.Duration
		zapOpts                                                             zap.Options
	)
	fs := flag.NewFlagSet("nodeward-agent", flag.ContinueOnError)
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Path to a kubeconfig; empty means in-cluster config or $KUBECONFIG.")
	fs.StringVar(&nodeName, "node-name", os.Getenv("NODE_NAME"), "The node this agent runs on (default $NODE_NAME, set from spec.nodeName).")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8082", "Address of the /healthz and /readyz endpoints.")
	fs.StringVar(&kubeletUnit, "kubelet-unit", "kubelet.service", "The systemd unit of the kubelet.")
	fs.StringVar(&runtimeUnit, "container-runtime-unit", "containerd.service", "The systemd unit of the container runtime.")
	fs.StringVar(&hostRoot, "host-root", "/", "Where the host's /proc, /dev/kmsg, /var/lib/kubelet and /var/lib/containerd are mounted.")
	fs.StringVar(&cmManifest, "controller-manager-manifest", host.DefaultControllerManagerManifest, "The kube-controller-manager static pod manifest (a host path, under --host-root) that EditConfig tasks may edit; empty: none.")
	fs.StringVar(&kubeletConfig, "kubelet-config", host.DefaultKubeletConfig, "The kubelet's KubeletConfiguration file (a host path, under --host-root) that EditConfig tasks may edit; empty: none.")
	fs.StringVar(&criEndpoint, "cri-endpoint", host.DefaultCRIEndpoint, "The container runtime's CRI socket (a host path, under --host-root), called with Version and Status at most every 10s; empty: none.")
	fs.DurationVar(&criTimeout, "cri-timeout", host.DefaultCRITimeout, "Deadline of the CRI calls.")
	fs.StringVar(&journalctl, "journalctl", "journalctl", "The journalctl that reads the kubelet's and runtime's journal: the agent image's if it has one (reading the journal under --host-root), else the host's under --host-root, run chrooted there.")
	fs.StringVar(&kubeletClientCert, "kubelet-client-cert", host.DefaultKubeletClientCert, "The kubelet's client certificate (a host path, under --host-root) whose expiry is probed; empty: none.")
	fs.StringVar(&clusterCACert, "cluster-ca-cert", host.DefaultClusterCACert, "The cluster CA certificate (a host path, under --host-root) whose expiry is probed; empty: none.")
	fs.DurationVar(&probeInterval, "probe-interval", agent.DefaultProbeInterval, "How often to probe the node locally (no API traffic unless something changed).")
	fs.DurationVar(&reportInterval, "report-interval", agent.DefaultReportInterval, "Longest time between two NodeReport writes.")
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if nodeName == "" {
		return fmt.Errorf("--node-name (or $NODE_NAME) is required")
	}
	logger := zap.New(zap.UseFlagOptions(&zapOpts)).WithValues("node", nodeName)
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.UserAgent = "nodeward-agent"
	clockOffset := agent.NewClockOffset(nil)
	cfg.Wrap(clockOffset.Wrap)

	ctx := ctrl.SetupSignalHandler()
	units := host.Units{v1alpha1.UnitKubelet: kubeletUnit, v1alpha1.UnitContainerRuntime: runtimeUnit}
	h, err := host.NewSystemd(ctx, units)
	if err != nil {
		return fmt.Errorf("connecting to systemd: %w", err)
	}
	defer h.Close()
	journal := host.NewJournal(host.JournalOptions{Root: hostRoot, Journalctl: journalctl, Units: units})
	h.SetJournal(journal)
	var certs []host.CertPath
	if kubeletClientCert != "" {
		certs = append(certs, host.CertPath{Name: host.CertKubeletClient, Path: kubeletClientCert})
	}
	if clusterCACert != "" {
		certs = append(certs, host.CertPath{Name: host.CertClusterCA, Path: clusterCACert})
	}
	prober := host.NewProc(host.ProcOptions{Root: hostRoot, Systemd: h, Journal: journal,
		CRIEndpoint: criEndpoint, CRITimeout: criTimeout, Certificates: certs})
	defer prober.Close()
	config := host.NewConfigFiles(hostRoot, map[v1alpha1.ConfigFile]string{
		v1alpha1.ConfigFileControllerManagerManifest: cmManifest,
		v1alpha1.ConfigFileKubeletConfig:             kubeletConfig,
	})
	return Run(ctx, cfg, agent.Options{
		NodeName: nodeName, Host: h, Prober: prober, ClockOffset: clockOffset, Config: config, ProbeInterval: probeInterval, ReportInterval: reportInterval, Version: Version,
	}, probeAddr)
}

// Run starts the agent and blocks until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, opts agent.Options, probeAddr string) error {
	mgr, err := agent.NewManager(cfg, opts.NodeName, probeAddr)
	if err != nil {
		return err
	}
	if err := agent.Setup(mgr, opts); err != nil {
		return err
	}
	return mgr.Start(ctx)
}
