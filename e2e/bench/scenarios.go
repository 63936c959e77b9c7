package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

const (
	kubeletPolicy     = "restart-dead-kubelet" // config/samples/kubelet-down.yaml
	hungPolicy        = "bench-kubelet-hung"
	unreachablePolicy = "bench-node-unreachable"
)

// applyPolicies applies the example policy config/samples/kubelet-down.yaml
// with for: 0s, nodeCooldown: 0s, maxAttempts: 20 (and maxPerPeriod 1000/1h,
// so ten runs in a row are not held), and a DryRun KubeletHung policy for the
// simulated nodes.
func (r *run) applyPolicies(ctx context.Context) error {
	b, err := os.ReadFile(filepath.Join(r.repo, "config", "samples", "kubelet-down.yaml"))
	if err != nil {
		return err
	}
	p := &v1alpha1.RemediationPolicy{}
	if err := yaml.Unmarshal(b, p); err != nil {
		return err
	}
	p.Spec.Causes[0].For = metav1.Duration{}
	p.Spec.Limits.NodeCooldown = &metav1.Duration{}
	p.Spec.Limits.MaxAttempts = 20
	p.Spec.Limits.MaxPerPeriod = &v1alpha1.RatePeriod{Count: 1000, Period: metav1.Duration{Duration: time.Hour}}
	if err := r.cl.Create(ctx, p); err != nil {
		return fmt.Errorf("policy %s: %w", p.Name, err)
	}
	hung := &v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: hungPolicy},
		Spec: v1alpha1.RemediationPolicySpec{
			NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"bench/sim": "true"}},
			Causes:       []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseKubeletHung}},
			Action:       v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet},
			Mode:         v1alpha1.ModeDryRun,
			Limits:       v1alpha1.Limits{NodeCooldown: &metav1.Duration{}, MaxAttempts: 20, MaxPerPeriod: &v1alpha1.RatePeriod{Count: 1000, Period: metav1.Duration{Duration: time.Hour}}},
		},
	}
	if err := r.cl.Create(ctx, hung); err != nil {
		return fmt.Errorf("policy %s: %w", hung.Name, err)
	}
	unreachable := &v1alpha1.RemediationPolicy{ObjectMeta: metav1.ObjectMeta{Name: unreachablePolicy}, Spec: *hung.Spec.DeepCopy()}
	unreachable.Spec.Causes = []v1alpha1.CauseMatch{{Cause: v1alpha1.CauseNodeUnreachable}}
	unreachable.Spec.Action = v1alpha1.Action{Type: v1alpha1.ActionCordonDrain}
	if err := r.cl.Create(ctx, unreachable); err != nil {
		return fmt.Errorf("policy %s: %w", unreachable.Name, err)
	}
	r.res.note("policy %s = config/samples/kubelet-down.yaml with for: 0s, nodeCooldown: 0s, maxAttempts: 20, maxPerPeriod 1000/1h; "+
		"%s and %s: DryRun, for: 0s, the simulated nodes only", kubeletPolicy, hungPolicy, unreachablePolicy)
	return sleep(ctx, 3*time.Second)
}

// Phases of one kubelet-killed run, in seconds after the kill.
type Phases struct {
	Node        string  `json:"node"`
	Record      string  `json:"record"`
	AgentSaw    float64 `json:"agentSaw"`              // NodeReport shows kubelet not active
	Diagnosed   float64 `json:"diagnosed"`             // NodeDiagnosis has KubeletDown
	Created     float64 `json:"created"`               // Remediation exists
	Restarted   float64 `json:"restarted"`             // RestartUnit step Succeeded
	Ready       float64 `json:"ready"`                 // record Succeeded and node Ready=True
	MetToCreate float64 `json:"conditionsMetToRecord"` // record seen − KubeletDown diagnosed seen (the policy's for is 0s)
	NotReady    bool    `json:"nodeWentNotReady"`
	Requests    int     `json:"operatorRequests"`
}

// KubeletKilled is scenario 1.
type KubeletKilled struct {
	Runs       []Phases           `json:"runs"`
	P50, P99   float64            `json:"-"`
	Total      map[string]float64 `json:"totalSeconds"` // p50, p99, min, max
	MeanPhases map[string]float64 `json:"meanPhaseSeconds"`
	NotReady   int                `json:"runsWhereNodeWentNotReady"`
}

type observer struct {
	r         *run
	node      string
	start     time.Time
	seen      map[string]bool // records that existed before
	lastRenew time.Time
}

func (r *run) newObserver(ctx context.Context, node string) (*observer, error) {
	o := &observer{r: r, node: node, seen: map[string]bool{}}
	recs := &v1alpha1.RemediationList{}
	if err := r.cl.List(ctx, recs); err != nil {
		return nil, err
	}
	for _, rec := range recs.Items {
		if rec.Spec.NodeName == node {
			o.seen[rec.Name] = true
		}
	}
	return o, nil
}

func (o *observer) since() float64 { return round3(time.Since(o.start).Seconds()) }

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// newRecord returns the node's record created since the observer started
// (by policy, if not empty).
func (o *observer) newRecord(ctx context.Context, policy ...string) (*v1alpha1.Remediation, error) {
	recs := &v1alpha1.RemediationList{}
	if err := o.r.cl.List(ctx, recs); err != nil {
		return nil, err
	}
	for i := range recs.Items {
		if rec := &recs.Items[i]; rec.Spec.NodeName == o.node && !o.seen[rec.Name] && (len(policy) == 0 || rec.Spec.Policy == policy[0]) {
			return rec, nil
		}
	}
	return nil, nil
}

func (o *observer) renew(ctx context.Context) {
	l := &coordinationv1.Lease{}
	if err := o.r.cl.Get(ctx, client.ObjectKey{Namespace: sim.NodeLeaseNamespace, Name: o.node}, l); err == nil && l.Spec.RenewTime != nil {
		o.lastRenew = l.Spec.RenewTime.Time
	}
}

func (r *run) kubeletKilled(ctx context.Context) error {
	kk := &KubeletKilled{}
	r.res.KubeletKilled = kk
	r.res.note("kubelet-killed phases are observed by polling the apiserver as admin every 100 ms (plus the GETs' own time); a phase passed between two polls counts at the next phase seen")
	var reqRuns []Requests
	for i := range r.cfg.Runs {
		node := r.sims[i%len(r.sims)]
		if err := r.waitHealthy(ctx, node); err != nil {
			return err
		}
		o, err := r.newObserver(ctx, node)
		if err != nil {
			return err
		}
		o.renew(ctx)
		n := r.c.Node(node)
		o.start = time.Now()
		if _, err := sim.Inject(ctx, n, "kubelet-crash"); err != nil {
			return err
		}
		ph := Phases{Node: node, AgentSaw: -1, Diagnosed: -1, Created: -1, Restarted: -1, Ready: -1}
		var agentSawAt time.Time
		deadline := o.start.Add(3 * time.Minute)
		for ph.Ready < 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("run %d on %s: not remediated within 3m (phases so far %+v)", i+1, node, ph)
			}
			if ph.Created < 0 {
				o.renew(ctx)
			}
			if ph.AgentSaw < 0 {
				rep := &v1alpha1.NodeReport{}
				if err := r.cl.Get(ctx, client.ObjectKey{Name: node}, rep); err == nil {
					if u, ok := rep.Status.Unit(v1alpha1.UnitKubelet); ok && !u.Active() {
						ph.AgentSaw, agentSawAt = o.since(), time.Now()
					}
				}
			}
			if ph.Diagnosed < 0 {
				d := &v1alpha1.NodeDiagnosis{}
				if err := r.cl.Get(ctx, client.ObjectKey{Name: node}, d); err == nil {
					if _, ok := d.Status.Cause(v1alpha1.CauseKubeletDown); ok {
						ph.Diagnosed = o.since()
					}
				}
			}
			rec, err := o.newRecord(ctx, kubeletPolicy)
			if err == nil && rec != nil {
				if ph.Created < 0 {
					ph.Created, ph.Record = o.since(), rec.Name
					_ = agentSawAt
				}
				for _, s := range rec.Status.Steps {
					if s.Name == "RestartUnit" && s.Phase == v1alpha1.StepSucceeded && ph.Restarted < 0 {
						ph.Restarted = o.since()
					}
				}
				switch rec.Status.Phase {
				case v1alpha1.PhaseSucceeded:
					node := &corev1.Node{}
					if err := r.cl.Get(ctx, client.ObjectKey{Name: ph.Node}, node); err == nil && isReady(node) {
						ph.Ready = o.since()
					}
				case v1alpha1.PhaseFailed, v1alpha1.PhaseSkipped:
					return fmt.Errorf("run %d on %s: record %s %s: %s", i+1, ph.Node, rec.Name, rec.Status.Phase, rec.Status.Message)
				}
			}
			if ph.Ready < 0 {
				nd := &corev1.Node{}
				if err := r.cl.Get(ctx, client.ObjectKey{Name: ph.Node}, nd); err == nil && !isReady(nd) {
					ph.NotReady = true
				}
				if err := sleep(ctx, 100*time.Millisecond); err != nil {
					return err
				}
			}
		}
		// A phase that passed between two polls is bounded by the next one seen.
		if ph.Restarted < 0 {
			ph.Restarted = ph.Ready
		}
		if ph.Diagnosed < 0 {
			ph.Diagnosed = ph.Created
		}
		if ph.AgentSaw < 0 {
			ph.AgentSaw = ph.Diagnosed
		}
		// Seen in one poll before an earlier phase seen in the next: the
		// earlier phase had passed by then too.
		ph.Restarted = min(ph.Restarted, ph.Ready)
		ph.Diagnosed = min(ph.Diagnosed, ph.Created)
		ph.AgentSaw = min(ph.AgentSaw, ph.Diagnosed)
		ph.MetToCreate = round3(ph.Created - ph.Diagnosed)
		end := time.Now()
		_ = sleep(ctx, time.Second)
		ev, err := readAudit(r.audit, OperatorUser, o.start, end.Add(500*time.Millisecond))
		if err != nil {
			return err
		}
		rq := summarise(ev)
		ph.Requests = rq.Total
		reqRuns = append(reqRuns, rq)
		kk.Runs = append(kk.Runs, ph)
		r.logf("kubelet-killed run %d/%d on %s: agent %.1fs, diagnosed %.1fs, record %.1fs, restarted %.1fs, Ready %.1fs (conditions met → record %.3fs); %d operator requests",
			i+1, r.cfg.Runs, node, ph.AgentSaw, ph.Diagnosed, ph.Created, ph.Restarted, ph.Ready, ph.MetToCreate, rq.Total)
	}
	var totals []float64
	mean := map[string]float64{}
	for _, ph := range kk.Runs {
		totals = append(totals, ph.Ready)
		mean["1 kill → agent saw it"] += ph.AgentSaw
		mean["2 agent saw → diagnosed"] += ph.Diagnosed - ph.AgentSaw
		mean["3 diagnosed → record created"] += ph.Created - ph.Diagnosed
		mean["4 record → restart done"] += ph.Restarted - ph.Created
		mean["5 restart → Ready (record Succeeded)"] += ph.Ready - ph.Restarted
		if ph.NotReady {
			kk.NotReady++
		}
	}
	for k := range mean {
		mean[k] = round3(mean[k] / float64(len(kk.Runs)))
	}
	kk.MeanPhases = mean
	kk.Total = dist(totals)
	// The API requests of one remediation: the run with the median count.
	idx := make([]int, len(reqRuns))
	for i := range idx {
		idx[i] = i
		r.res.OneRemedRuns = append(r.res.OneRemedRuns, reqRuns[i].Total)
	}
	sort.Slice(idx, func(a, b int) bool { return reqRuns[idx[a]].Total < reqRuns[idx[b]].Total })
	if len(idx) > 0 {
		med := reqRuns[idx[len(idx)/2]]
		r.res.OneRemed = &med
	}
	return nil
}

// dist returns p50, p99 (nearest rank), min and max.
func dist(v []float64) map[string]float64 {
	if len(v) == 0 {
		return nil
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	rank := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(s) {
			i = len(s) - 1
		}
		return s[i]
	}
	return map[string]float64{"p50": rank(0.50), "p99": rank(0.99), "min": s[0], "max": s[len(s)-1], "n": float64(len(s))}
}

// waitHealthy waits until the node is Ready, its kubelet active and no
// nodeward cause is diagnosed on it, and no record of it is running.
func (r *run) waitHealthy(ctx context.Context, node string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ok := true
		nd := &corev1.Node{}
		if err := r.cl.Get(ctx, client.ObjectKey{Name: node}, nd); err != nil || !isReady(nd) {
			ok = false
		}
		d := &v1alpha1.NodeDiagnosis{}
		if err := r.cl.Get(ctx, client.ObjectKey{Name: node}, d); err == nil && len(d.Status.Causes) > 0 {
			ok = false
		} else if err != nil && !apierrors.IsNotFound(err) {
			ok = false
		}
		rep := &v1alpha1.NodeReport{}
		if err := r.cl.Get(ctx, client.ObjectKey{Name: node}, rep); err != nil {
			ok = false
		} else if u, found := rep.Status.Unit(v1alpha1.UnitKubelet); !found || !u.Active() {
			ok = false
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not healthy again within 2m", node)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// Heartbeat is scenario 2.
type Heartbeat struct {
	What              string             `json:"what"`
	MetToRecord       []float64          `json:"conditionsMetToRecordSeconds"` // record seen − max(Lease renewTime + stale threshold, agent report after it seen)
	DiagnosedToRecord []float64          `json:"diagnosedToRecordSeconds"`     // record seen − KubeletHung seen (100ms polling)
	HangToRecord      []float64          `json:"hangToRecordSeconds"`
	Dist              map[string]float64 `json:"dist"`
	Failures          []string           `json:"failures,omitempty"`
}

// Silent is scenario 3: heartbeat stops with the agent silent too.
type Silent struct {
	What        string             `json:"what"`
	MetToRecord []float64          `json:"conditionsMetToRecordSeconds"`
	DownToRec   []float64          `json:"downToRecordSeconds"`
	Dist        map[string]float64 `json:"dist"`
	Failures    []string           `json:"failures,omitempty"`
}

// agentSilent powers off every simulated node at once (kubelet and agent
// stop): each gets NodeUnreachable once its Lease is stale and its agent
// silent for AgentSilentAfter report intervals; the DryRun
// bench-node-unreachable policy records a Remediation. Measured from the
// moment both hold, by the stored times (Lease renewTime + the stale
// threshold; the report's heartbeatTime + 3 × its reportInterval).
func (r *run) agentSilent(ctx context.Context) error {
	sl := &Silent{What: "node-down on every simulated node at once (kubelet and agent stop) → DryRun NodeUnreachable/CordonDrain record; from max(Lease renewTime + " +
		(leaseStaleAfter + stormSettle).String() + ", report heartbeatTime + 3 × reportInterval) to the record seen (100 ms polling)"}
	r.res.Silent = sl
	obs := map[string]*observer{}
	for _, node := range r.sims {
		if err := r.waitHealthy(ctx, node); err != nil {
			return err
		}
		o, err := r.newObserver(ctx, node)
		if err != nil {
			return err
		}
		obs[node] = o
	}
	for _, node := range r.sims {
		obs[node].start = time.Now()
		if _, err := sim.Inject(ctx, r.c.Node(node), "node-down"); err != nil {
			return err
		}
	}
	r.logf("agent-silent: %d simulated nodes powered off; waiting for NodeUnreachable records (the agent counts as silent 3 report intervals after its last report)", len(r.sims))
	seen := map[string]time.Time{}
	deadline := time.Now().Add(6 * time.Minute)
	for len(seen) < len(r.sims) && time.Now().Before(deadline) {
		for _, node := range r.sims {
			if _, ok := seen[node]; ok {
				continue
			}
			if rec, err := obs[node].newRecord(ctx, unreachablePolicy); err == nil && rec != nil {
				seen[node] = time.Now()
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	for _, node := range r.sims {
		o := obs[node]
		at, ok := seen[node]
		if !ok {
			sl.Failures = append(sl.Failures, fmt.Sprintf("%s: no NodeUnreachable record within 6m", node))
			continue
		}
		o.renew(ctx)
		rep := &v1alpha1.NodeReport{}
		if err := r.cl.Get(ctx, client.ObjectKey{Name: node}, rep); err != nil {
			return err
		}
		met := o.lastRenew.Add(leaseStaleAfter + stormSettle)
		if silent := rep.Status.HeartbeatTime.Add(3 * rep.Status.ReportInterval.Duration); silent.After(met) {
			met = silent
		}
		sl.MetToRecord = append(sl.MetToRecord, round3(at.Sub(met).Seconds()))
		sl.DownToRec = append(sl.DownToRec, round3(at.Sub(o.start).Seconds()))
		r.logf("agent-silent %s: record %.1fs after power-off, %.3fs after the conditions were met", node, at.Sub(o.start).Seconds(), at.Sub(met).Seconds())
	}
	sl.Dist = dist(sl.MetToRecord)
	for _, node := range r.sims {
		if _, err := sim.Inject(ctx, r.c.Node(node), "heal"); err != nil {
			return err
		}
		if err := r.c.StartAgent(ctx, node); err != nil {
			return err
		}
	}
	return nil
}

// heartbeatStopped: the kubelet hangs (unit active, Lease no longer renewed)
// with the agent alive; the DryRun KubeletHung policy records a Remediation.
// Measured from lease renewTime + the stale threshold (the policy's for is 0s).
func (r *run) heartbeatStopped(ctx context.Context) error {
	hb := &Heartbeat{
		What: "kubelet-hung on a simulated node (unit active, Lease not renewed, agent alive) → DryRun KubeletHung record; from the moment KubeletHung's conditions hold " +
			"(Lease renewTime + " + (leaseStaleAfter + stormSettle).String() + " and an agent report newer than the renewal, whichever is later; the policy's for is 0s) to the record seen (100ms polling)",
	}
	r.res.Heartbeat = hb
	for i := range r.cfg.HungRuns {
		node := r.sims[i%len(r.sims)]
		if err := r.waitHealthy(ctx, node); err != nil {
			return err
		}
		o, err := r.newObserver(ctx, node)
		if err != nil {
			return err
		}
		o.renew(ctx)
		o.start = time.Now()
		if _, err := sim.Inject(ctx, r.c.Node(node), "kubelet-hung"); err != nil {
			return err
		}
		var rec *v1alpha1.Remediation
		diagnosed := -1.0
		var reportAfter time.Time // first agent report after the last renewal, as seen
		for rec == nil {
			if reportAfter.IsZero() {
				rep := &v1alpha1.NodeReport{}
				if err := r.cl.Get(ctx, client.ObjectKey{Name: node}, rep); err == nil && !o.lastRenew.IsZero() && rep.Status.HeartbeatTime.After(o.lastRenew) {
					reportAfter = time.Now()
				}
			}
			if diagnosed < 0 {
				d := &v1alpha1.NodeDiagnosis{}
				if err := r.cl.Get(ctx, client.ObjectKey{Name: node}, d); err == nil {
					if _, ok := d.Status.Cause(v1alpha1.CauseKubeletHung); ok {
						diagnosed = o.since()
					}
				}
			}
			if time.Since(o.start) > 100*time.Second {
				d := &v1alpha1.NodeDiagnosis{}
				_ = r.cl.Get(ctx, client.ObjectKey{Name: node}, d)
				msg := fmt.Sprintf("run %d on %s: no record within 100s of the hang (agent report newer than the last renewal seen: %v); diagnosis: %s",
					i+1, node, !reportAfter.IsZero(), d.Status.Summary)
				hb.Failures = append(hb.Failures, msg)
				r.logf("heartbeat-stopped %s", msg)
				break
			}
			o.renew(ctx)
			if rec, err = o.newRecord(ctx, hungPolicy); err != nil || rec == nil {
				rec = nil
				if err := sleep(ctx, 100*time.Millisecond); err != nil {
					return err
				}
			}
		}
		if rec == nil {
			if _, err := sim.Inject(ctx, r.c.Node(node), "heal"); err != nil {
				return err
			}
			continue
		}
		met := o.lastRenew.Add(leaseStaleAfter + stormSettle)
		if reportAfter.After(met) {
			met = reportAfter
		}
		lag := round3(time.Since(met).Seconds())
		hb.MetToRecord = append(hb.MetToRecord, lag)
		created := o.since()
		if diagnosed < 0 {
			diagnosed = created
		}
		hb.DiagnosedToRecord = append(hb.DiagnosedToRecord, round3(created-diagnosed))
		hb.HangToRecord = append(hb.HangToRecord, created)
		r.logf("heartbeat-stopped run %d/%d on %s: record %s %.1fs after the hang, %.3fs after the policy's conditions were met", i+1, r.cfg.HungRuns, node, rec.Name, o.since(), lag)
		if _, err := sim.Inject(ctx, r.c.Node(node), "heal"); err != nil {
			return err
		}
	}
	hb.Dist = dist(hb.MetToRecord)
	return nil
}

// Storm is scenario 7.
type Storm struct {
	Nodes        int     `json:"nodesLosingHeartbeats"`
	Tripped      bool    `json:"breakerTripped"`
	TrippedAfter float64 `json:"breakerTrippedAfterSeconds"`
	// MetToTripped: from the moment more than the breaker's limit of the
	// policy's nodes had stale Leases (the k-th storm node's renewTime + the
	// stale threshold, k = limit + 1) to the trip seen in the policy status.
	MetToTripped         float64  `json:"conditionsMetToTrippedSeconds"`
	Limit                int      `json:"breakerLimit"`
	ClusterDegradedAfter float64  `json:"clusterDiagnosisDegradedAfterSeconds"`
	Observed             float64  `json:"observedSeconds"`
	NodeTasks            int      `json:"nodeTasksCreated"`       // NodeTask objects before/after
	NodeTasksAudit       int      `json:"nodeTaskCreatesAudited"` // create nodetasks by the operator in the audit log
	Records              int      `json:"remediationsCreated"`
	NodeDiagnoses        int      `json:"nodeDiagnosesOfStormNodes"`
	NotReady             int      `json:"stormNodesNotReadyAtEnd"`
	Allowed              string   `json:"remediationAllowed"`
	Requests             Requests `json:"operatorRequests"`
}

func (r *run) storm(ctx context.Context) error {
	n := r.cfg.Nodes * 40 / 100
	st := &Storm{Nodes: n, TrippedAfter: -1, ClusterDegradedAfter: -1, MetToTripped: -1}
	r.res.Storm = st
	tasksBefore, recsBefore, err := r.countActions(ctx)
	if err != nil {
		return err
	}
	r.logf("storm: removing the kwok label from %d of %d kwok nodes (their Leases stop)", n, r.cfg.Nodes)
	profiled := make(chan struct{})
	go func() { defer close(profiled); r.profile("cpu-storm.pprof", "profile", 60) }()
	defer func() { <-profiled }()
	start := time.Now()
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"`+KwokLabel+`":null}}}`))
	if err := parallel(n, 16, func(i int) error {
		return r.cl.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: kwokNodeName(i)}}, patch)
	}); err != nil {
		return err
	}
	observe := r.cfg.StormObserve // default 100s: past the controller-manager's 50s grace period
	var trippedAt time.Time
	for time.Since(start) < observe {
		p := &v1alpha1.RemediationPolicy{}
		if err := r.cl.Get(ctx, client.ObjectKey{Name: kubeletPolicy}, p); err == nil {
			if c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.PolicyConditionRemediationAllowed); c != nil {
				st.Allowed = string(c.Status) + " " + c.Reason + ": " + c.Message
				if c.Status == metav1.ConditionFalse && !st.Tripped {
					st.Tripped, st.TrippedAfter, trippedAt = true, round3(time.Since(start).Seconds()), time.Now()
				}
			}
		}
		if st.ClusterDegradedAfter < 0 {
			cd := &v1alpha1.ClusterDiagnosis{}
			if err := r.cl.Get(ctx, client.ObjectKey{Name: v1alpha1.ClusterDiagnosisName}, cd); err == nil {
				for _, c := range cd.Status.Causes {
					if c.Cause == v1alpha1.CauseControlPlaneDegraded {
						st.ClusterDegradedAfter = round3(time.Since(start).Seconds())
						r.logf("storm: ClusterDiagnosis ControlPlaneDegraded after %.1fs", st.ClusterDegradedAfter)
					}
				}
			}
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	st.Observed = round3(time.Since(start).Seconds())
	if err := r.stormConditionsMet(ctx, st, n, trippedAt); err != nil {
		return err
	}
	tasks, recs, err := r.countActions(ctx)
	if err != nil {
		return err
	}
	st.NodeTasks, st.Records = tasks-tasksBefore, recs-recsBefore
	diags := &v1alpha1.NodeDiagnosisList{}
	if err := r.cl.List(ctx, diags); err == nil {
		for _, d := range diags.Items {
			var idx int
			if _, err := fmt.Sscanf(d.Name, "kwok-%05d", &idx); err == nil && idx < n {
				st.NodeDiagnoses++
			}
		}
	}
	for i := range n {
		nd := &corev1.Node{}
		if err := r.cl.Get(ctx, client.ObjectKey{Name: kwokNodeName(i)}, nd); err == nil && !isReady(nd) {
			st.NotReady++
		}
	}
	ev, err := readAudit(r.audit, OperatorUser, start, time.Now())
	if err == nil {
		st.Requests = summarise(ev)
		for _, e := range ev {
			if e.Verb == "create" && e.ObjectRef != nil && e.ObjectRef.Resource == "nodetasks" {
				st.NodeTasksAudit++
			}
		}
	}
	r.logf("storm: tripped=%v after %.1fs; %d NodeTasks, %d records created; %d storm nodes NotReady; RemediationAllowed %s",
		st.Tripped, st.TrippedAfter, st.NodeTasks, st.Records, st.NotReady, st.Allowed)
	return nil
}

// stormConditionsMet works out when the breaker's condition held: the
// storm nodes' Leases went stale one by one (renewTime + the threshold);
// the breaker opens once more than its limit of the policy's nodes are
// unhealthy.
func (r *run) stormConditionsMet(ctx context.Context, st *Storm, n int, trippedAt time.Time) error {
	p := &v1alpha1.RemediationPolicy{}
	if err := r.cl.Get(ctx, client.ObjectKey{Name: kubeletPolicy}, p); err != nil {
		return err
	}
	st.Limit = policies.MaxUnhealthy(p, int(p.Status.CoveredNodes))
	var stale []time.Time
	for i := range n {
		l := &coordinationv1.Lease{}
		if err := r.cl.Get(ctx, client.ObjectKey{Namespace: sim.NodeLeaseNamespace, Name: kwokNodeName(i)}, l); err == nil && l.Spec.RenewTime != nil {
			stale = append(stale, l.Spec.RenewTime.Add(leaseStaleAfter))
		}
	}
	sort.Slice(stale, func(a, b int) bool { return stale[a].Before(stale[b]) })
	if st.Limit < len(stale) && !trippedAt.IsZero() {
		st.MetToTripped = round3(trippedAt.Sub(stale[st.Limit]).Seconds())
	}
	return nil
}

func (r *run) countActions(ctx context.Context) (tasks, recs int, err error) {
	tl := &v1alpha1.NodeTaskList{}
	if err := r.cl.List(ctx, tl); err != nil {
		return 0, 0, err
	}
	rl := &v1alpha1.RemediationList{}
	if err := r.cl.List(ctx, rl); err != nil {
		return 0, 0, err
	}
	return len(tl.Items), len(rl.Items), nil
}
