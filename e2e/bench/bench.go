// Package bench measures nodeward on a real control plane (e2e/controlplane)
// with kwok nodes and pods for scale and a few simulated nodes (e2e/sim) with
// the real node agent for the faults: `make bench`. The operator runs as its
// own binary under its own service account; its API requests are counted by
// the apiserver's audit log, its memory read from /proc and its /metrics.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/nodeward/nodeward/e2e/controlplane"
	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/operator/diagnosis"
)

// Config is what one bench run does.
type Config struct {
	Nodes, PodsPerNode int
	// PodsRunning: kwok marks the pods Running (its pod stages); off, they
	// stay Pending on their nodes (see nodeStagesOnly).
	PodsRunning     bool
	SimNodes        int // simulated nodes with the real agent
	Runs            int // kubelet-killed runs
	HungRuns        int // heartbeat-stopped runs
	Steady          time.Duration
	StormObserve    time.Duration
	OutDir          string // results go to OutDir/<timestamp>/ and OutDir/latest.json
	ControlPlaneDir string
	BinDir          string
	Kwok            string // kwok binary
	KwokVersion     string
	Out             io.Writer // the table
	Progress        io.Writer // progress lines
}

// Machine is where the bench ran.
type Machine struct {
	Cores    int    `json:"cores"`
	MemTotal string `json:"memTotal"`
	Kernel   string `json:"kernel,omitempty"`
}

// Result is everything measured.
type Result struct {
	Date        time.Time         `json:"date"`
	Machine     Machine           `json:"machine"`
	Versions    map[string]string `json:"versions"`
	Nodes       int               `json:"kwokNodes"`
	PodsPerNode int               `json:"podsPerNode"`
	Pods        int               `json:"pods"`
	PodsRunning int               `json:"podsRunning"`
	SimNodes    int               `json:"simulatedNodes"`
	Setup       map[string]string `json:"setup"`

	KubeletKilled *KubeletKilled `json:"kubeletKilled,omitempty"`
	Heartbeat     *Heartbeat     `json:"heartbeatStopped,omitempty"`
	Silent        *Silent        `json:"agentSilent,omitempty"`
	OneRemed      *Requests      `json:"apiRequestsOneRemediation,omitempty"`
	OneRemedRuns  []int          `json:"apiRequestsPerRemediationRun,omitempty"`
	Memory        *Memory        `json:"operatorMemory,omitempty"`
	Steady        *Steady        `json:"steadyState,omitempty"`
	Storm         *Storm         `json:"storm,omitempty"`
	Notes         []string       `json:"notes"`
	Errors        []string       `json:"errors,omitempty"`
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

type run struct {
	cfg   Config
	res   *Result
	dir   string
	audit string
	c     *harness.Cluster
	cl    client.Client // admin, high QPS
	prog  io.Writer
	rss   *rssSampler
	pprof string // the operator's net/http/pprof base URL
	// agentRSS samples the agent run as its own process (agentproc.go).
	agentRSS *rssSampler
	// agentNode is the kwok node that agent process reports for.
	agentNode string
	metrics   string
	sims      []string
	repo      string
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.prog, "[%s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Run runs the bench and returns what it measured, also when a later
// scenario failed (the error says which).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.SimNodes < 1 {
		cfg.SimNodes = 5
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	ts := time.Now().UTC()
	dir, err := filepath.Abs(filepath.Join(cfg.OutDir, ts.Format("20060102T150405Z")+"-"+strconv.Itoa(cfg.Nodes)))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	res := &Result{Date: ts, Machine: machine(), Nodes: cfg.Nodes, PodsPerNode: cfg.PodsPerNode, Pods: cfg.Nodes * cfg.PodsPerNode, SimNodes: cfg.SimNodes,
		Versions: map[string]string{"go": runtime.Version(), "kubernetes": controlplane.Version, "kwok": cfg.KwokVersion, "nodeward": gitDescribe()},
		Setup:    map[string]string{"dir": dir}}
	r := &run{cfg: cfg, res: res, dir: dir, prog: cfg.Progress}
	if r.repo, err = harness.RepoDir(); err != nil {
		return nil, err
	}
	err = r.do(ctx)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	if werr := writeJSON(res, filepath.Join(dir, "result.json"), filepath.Join(cfg.OutDir, "latest.json")); werr != nil && err == nil {
		err = werr
	}
	if cfg.Out != nil {
		PrintTable(cfg.Out, res)
	}
	return res, err
}

func (r *run) do(ctx context.Context) error {
	// The agents run in this process; their logs go to a file.
	agentLog, err := os.Create(filepath.Join(r.dir, "agents.log"))
	if err != nil {
		return err
	}
	defer agentLog.Close()
	log.SetLogger(zap.New(zap.WriteTo(agentLog)))

	policy := filepath.Join(r.dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return err
	}
	r.audit = filepath.Join(r.dir, "audit.log")
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	r.metrics = "http://" + metricsAddr + "/metrics"
	pprofAddr, err := freeAddr()
	if err != nil {
		return err
	}
	r.pprof = "http://" + pprofAddr + "/debug/pprof/"
	specs := make([]harness.NodeSpec, r.cfg.SimNodes)
	for i := range specs {
		specs[i] = harness.NodeSpec{Name: fmt.Sprintf("sim-%d", i+1), Labels: map[string]string{"bench/sim": "true", "node-role.kubernetes.io/worker": ""}}
		r.sims = append(r.sims, specs[i].Name)
	}
	r.logf("starting the control plane (%s), nodeward, %d simulated nodes with agents, the operator", controlplane.Version, len(specs))
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	t0 := time.Now()
	c, err := harness.Start(startCtx, harness.Options{
		BinDir: r.cfg.BinDir,
		ControlPlane: controlplane.Options{BinDir: r.cfg.ControlPlaneDir, Dir: filepath.Join(r.dir, "cluster"),
			APIServerArgs: []string{"--audit-policy-file=" + policy, "--audit-log-path=" + r.audit, "--audit-log-format=json", "--audit-log-maxsize=0"}},
		Nodes:        specs,
		OperatorArgs: []string{"--metrics-bind-address=" + metricsAddr, "--pprof-bind-address=" + pprofAddr},
	})
	cancel()
	if err != nil {
		return fmt.Errorf("starting the cluster: %w", err)
	}
	defer c.Stop()
	r.c = c
	r.res.Setup["clusterStart"] = time.Since(t0).Round(time.Second).String()
	cfg := c.CP.RestConfig("admin")
	cfg.QPS, cfg.Burst = 2000, 4000
	if r.cl, err = client.New(cfg, client.Options{Scheme: c.Scheme}); err != nil {
		return err
	}
	r.rss = startRSS(c.OperatorPID())
	defer r.rss.stop()
	defer r.finishMemory(ctx)

	stopKwok, err := r.startKwok(ctx)
	if err != nil {
		return err
	}
	defer stopKwok()
	if err := r.createKwokCluster(ctx); err != nil {
		return err
	}
	if err := r.waitSimReports(ctx); err != nil {
		return err
	}
	r.agentNode = kwokNodeName(r.cfg.Nodes - 1) // outside the storm's first 40%
	stopAgent, err := r.startAgentProcess(ctx, r.agentNode)
	if err != nil {
		return fmt.Errorf("agent process: %w", err)
	}
	defer stopAgent()
	if err := r.steady(ctx); err != nil {
		return fmt.Errorf("steady state: %w", err)
	}
	if err := r.applyPolicies(ctx); err != nil {
		return err
	}
	if err := r.kubeletKilled(ctx); err != nil {
		return fmt.Errorf("kubelet killed: %w", err)
	}
	if err := r.heartbeatStopped(ctx); err != nil {
		return fmt.Errorf("heartbeat stopped: %w", err)
	}
	if err := r.agentSilent(ctx); err != nil {
		return fmt.Errorf("agent silent: %w", err)
	}
	for _, node := range r.sims {
		if err := r.waitHealthy(ctx, node); err != nil {
			return fmt.Errorf("before the storm: %w", err)
		}
	}
	if err := r.storm(ctx); err != nil {
		return fmt.Errorf("storm: %w", err)
	}
	return nil
}

// steady waits for things to settle, then counts writes for Steady.
func (r *run) steady(ctx context.Context) error {
	settle := 30 * time.Second
	r.logf("settling: at least %s, and until no node is diagnosed and the cluster is not degraded (at most 3m); then counting requests for %s with nothing failing", settle, r.cfg.Steady)
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	t0 := time.Now()
	var diags int
	var degraded bool
	_ = wait.PollUntilContextTimeout(ctx, 5*time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		l := &v1alpha1.NodeDiagnosisList{}
		if err := r.cl.List(ctx, l); err != nil {
			return false, nil
		}
		err := r.cl.Get(ctx, client.ObjectKey{Name: v1alpha1.ClusterDiagnosisName}, &v1alpha1.ClusterDiagnosis{})
		diags, degraded = len(l.Items), err == nil
		return diags == 0 && !degraded, nil
	})
	r.res.Setup["settled"] = fmt.Sprintf("%s more; then %d NodeDiagnoses, ClusterDiagnosis degraded: %v", time.Since(t0).Round(time.Second), diags, degraded)
	r.logf("settled after %s more: %d NodeDiagnoses, cluster degraded: %v", time.Since(t0).Round(time.Second), diags, degraded)
	from := time.Now()
	if err := sleep(ctx, r.cfg.Steady); err != nil {
		return err
	}
	to := time.Now()
	// the audit log is written synchronously, but leave a moment
	_ = sleep(ctx, time.Second)
	op, err := readAudit(r.audit, OperatorUser, from, to)
	if err != nil {
		return err
	}
	ag, err := readAudit(r.audit, AgentUser, from, to)
	if err != nil {
		return err
	}
	minutes := to.Sub(from).Minutes()
	// The simulated nodes' agents run in this process; the agent process
	// reports for r.agentNode.
	var simAg, procAg []auditEvent
	for _, e := range ag {
		if e.ObjectRef != nil && e.ObjectRef.Name == r.agentNode {
			procAg = append(procAg, e)
		} else {
			simAg = append(simAg, e)
		}
	}
	opSum, agSum, procSum := summarise(op), summarise(simAg), summarise(procAg)
	st := &Steady{Window: to.Sub(from).Round(time.Second).String(), Operator: opSum, Agents: agSum,
		OperatorWritesPerMin:            float64(opSum.Writes) / minutes,
		OperatorWritesPerMinExcludingLE: float64(opSum.Writes-writesLE(op)) / minutes,
		AgentWritesPerNodePerMin:        float64(agSum.Writes) / minutes / float64(len(r.sims)),
		AgentProcessWritesPerMin:        float64(procSum.Writes) / minutes,
	}
	if r.agentRSS != nil {
		st.AgentRSSMiB, st.AgentPeakRSSMiB = r.agentRSS.current(), r.agentRSS.peak()
		st.AgentRSSAnonMiB, _ = rssAnonMiB(r.agentRSS.pid)
		st.AgentRSSAnonMiB = round1(st.AgentRSSAnonMiB)
	}
	r.res.Steady = st
	r.profile("heap-settled.pprof", "heap", 0)
	m := &Memory{SettledRSSMiB: r.rss.current(), GoMemoryClasses: scrapeMemory(r.metrics)}
	r.res.Memory = m
	r.logf("steady: operator writes/min %.1f (%.1f without leader election), agent writes/node/min %.2f (agent process %.2f); operator RSS %.1f MiB, agent process RSS %.1f MiB",
		st.OperatorWritesPerMin, st.OperatorWritesPerMinExcludingLE, st.AgentWritesPerNodePerMin, st.AgentProcessWritesPerMin, m.SettledRSSMiB, st.AgentRSSMiB)
	return nil
}

func writesLE(events []auditEvent) int {
	n := 0
	for _, e := range events {
		if e.leaderElection() && isWrite(e.Verb) {
			n++
		}
	}
	return n
}

func (r *run) finishMemory(ctx context.Context) {
	if r.res.Memory == nil {
		r.res.Memory = &Memory{}
	}
	r.res.Memory.PeakRSSMiB = r.rss.peak()
	r.res.Memory.Samples = r.rss.count()
	r.res.Memory.EndRSSMiB = r.rss.current()
	r.res.Memory.GoMemoryClassesEnd = scrapeMemory(r.metrics)
	r.profile("heap-end.pprof", "heap", 0)
}

// profile saves one of the operator's pprof profiles (a CPU profile over
// seconds, if not 0) into the run's directory; `go tool pprof` reads it.
func (r *run) profile(file, kind string, seconds int) {
	url := r.pprof + kind
	if seconds > 0 {
		url += "?seconds=" + strconv.Itoa(seconds)
	}
	c := &http.Client{Timeout: time.Duration(seconds+30) * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		r.logf("profile %s: %v", kind, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(r.dir, file))
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

// Steady is the steady state with nothing failing.
type Steady struct {
	Window                          string   `json:"window"`
	Operator                        Requests `json:"operatorRequests"`
	Agents                          Requests `json:"agentRequests"`
	OperatorWritesPerMin            float64  `json:"operatorWritesPerMin"`
	OperatorWritesPerMinExcludingLE float64  `json:"operatorWritesPerMinExcludingLeaderElection"`
	AgentWritesPerNodePerMin        float64  `json:"agentWritesPerNodePerMin"`
	// The agent run as its own process (real /proc probes of this machine,
	// simulated service manager), for a kwok node.
	AgentProcessWritesPerMin float64 `json:"agentProcessWritesPerMin"`
	AgentRSSMiB              float64 `json:"agentProcessRSSMiB"`
	AgentPeakRSSMiB          float64 `json:"agentProcessPeakRSSMiB"`
	AgentRSSAnonMiB          float64 `json:"agentProcessRSSAnonMiB"`
}

// Memory is the operator's memory.
type Memory struct {
	SettledRSSMiB      float64            `json:"settledRSSMiB"`
	PeakRSSMiB         float64            `json:"peakRSSMiB"`
	EndRSSMiB          float64            `json:"endRSSMiB"`
	Samples            int                `json:"samples"`
	GoMemoryClasses    map[string]float64 `json:"goMemoryMiBSettled,omitempty"`
	GoMemoryClassesEnd map[string]float64 `json:"goMemoryMiBEnd,omitempty"`
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				f := strings.Fields(l)
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					m.MemTotal = fmt.Sprintf("%.1f GiB", kb/1024/1024)
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func writeJSON(res *Result, paths ...string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// The diagnosis' default timing: a Lease is stale after leaseStaleAfter
// (the storm breaker counts it then); a cause read from stopped heartbeats
// alone waits stormSettle more (operator/diagnosis Thresholds).
var (
	leaseStaleAfter = diagnosis.DefaultThresholds().LeaseStaleAfter
	stormSettle     = diagnosis.DefaultThresholds().StormSettle
)

// isReady reports whether the node's Ready condition is True.
func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// parallel runs f(i) for i in [0, n) on workers goroutines; the first error wins.
func parallel(n, workers int, f func(i int) error) error {
	var mu sync.Mutex
	var first error
	ch := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	return first
}
