package remediations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/drain"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

// drainAction is CordonDrain (seed 001: a node out of memory, the OOM killer
// firing; move the workloads off it): Cordon, Drain, and, when the policy
// sets uncordonAfter, Uncordon once the node is healthy again. It does not
// wait for the node to recover: the workloads are what it moves to safety,
// and the node stays cordoned until then.
//
// Every write to the Node and every pod read goes through e.Kube, straight to
// the API server: the Node read is fresh (the cache may lag a write of ours)
// and carries managedFields, which tell whether a person re-cordoned the node
// after nodeward did; pods are not cached by the operator at all.
type drainAction struct{}

func init() { actions[v1alpha1.ActionCordonDrain] = drainAction{} }

const (
	// cordonFieldManager is the field manager of nodeward's cordon: the
	// Uncordon step finds from managedFields whether someone else set
	// spec.unschedulable after it.
	cordonFieldManager = "nodeward-cordon"
	// overdueDeletionSeconds: see SkipWaitForDeleteTimeoutSeconds below.
	overdueDeletionSeconds = 30
	// defaultDrainTimeout is DrainParams.timeout's default.
	defaultDrainTimeout = 5 * time.Minute
	// minDrainTimeout is the least a drain restarted after an operator
	// restart gets, even if the step's time is spent.
	minDrainTimeout = 10 * time.Second
	// uncordonCeiling bounds the Uncordon step: a node not healthy this
	// long after the drain stays cordoned and the record ends, so a record
	// is never held open forever.
	uncordonCeiling = 24 * time.Hour
	// cordonTimeout bounds the Cordon step: a cordon the API keeps refusing
	// fails the record.
	cordonTimeout = 2 * time.Minute
	// drainGrace is how much longer than the drain's own timeout the Drain
	// step may take: the time to read what the drain left behind.
	drainGrace = time.Minute
	// drainPoll is how often a running drain is looked at.
	drainPoll = 2 * time.Second
	// uncordonPoll is how often the Uncordon step looks again; Node
	// condition changes wake it sooner, a NodeDiagnosis going away does not.
	uncordonPoll = 5 * time.Second
	// maxPodList and maxPDBList are the API's list bounds.
	maxPodList = 500
	maxPDBList = 100
	// agentLabelSelector keeps nodeward's own node agent out of every drain.
	agentLabelSelector = "app.kubernetes.io/name!=nodeward-agent"
)

// evictRetryDelay is how long the drain waits before asking again for an
// eviction a PodDisruptionBudget refused (kubectl drain's default). A
// variable for the tests.
var evictRetryDelay = 5 * time.Second

func drainParams(rem *v1alpha1.Remediation) v1alpha1.DrainParams {
	if rem.Spec.Action.Drain != nil {
		return *rem.Spec.Action.Drain
	}
	return v1alpha1.DrainParams{}
}

func drainTimeout(p v1alpha1.DrainParams) time.Duration {
	if p.Timeout != nil && p.Timeout.Duration > 0 {
		return p.Timeout.Duration
	}
	return defaultDrainTimeout
}

// gracePeriodSeconds is the drain helper's grace period: -1 uses each pod's
// own terminationGracePeriodSeconds.
func gracePeriodSeconds(p v1alpha1.DrainParams) int {
	if p.GracePeriod == nil {
		return -1
	}
	return int(p.GracePeriod.Duration / time.Second)
}

func (drainAction) plan(rem *v1alpha1.Remediation) []v1alpha1.Step {
	p := drainParams(rem)
	node := rem.Spec.NodeName
	grace := "each pod's own"
	if p.GracePeriod != nil {
		grace = p.GracePeriod.Duration.String()
	}
	emptyDir := "a pod with emptyDir data (deleteEmptyDirData is off) or without a controller stops the drain before anything is evicted"
	if p.DeleteEmptyDirData {
		emptyDir = "pods with emptyDir data are evicted and their data is lost; a pod without a controller stops the drain before anything is evicted"
	}
	after := "; the node stays cordoned afterwards (no uncordonAfter)"
	if p.UncordonAfter != nil {
		after = ""
	}
	steps := []v1alpha1.Step{
		cordonStep(rem),
		{Name: v1alpha1.StepDrain, Phase: v1alpha1.StepPending,
			Description: fmt.Sprintf("evict the pods on %s through the eviction API respecting PodDisruptionBudgets, timeout %s, grace period: %s; DaemonSet pods, mirror pods and nodeward's agent stay; %s; nothing is ever force-deleted%s",
				node, drainTimeout(p), grace, emptyDir, after)},
	}
	if s, ok := uncordonStep(rem); ok {
		steps = append(steps, s)
	}
	return steps
}

// cordonStep is the Cordon step of CordonDrain and Cordon, planned.
func cordonStep(rem *v1alpha1.Remediation) v1alpha1.Step {
	return v1alpha1.Step{Name: v1alpha1.StepCordon, Phase: v1alpha1.StepPending,
		Description: fmt.Sprintf("cordon %s if it is schedulable: set spec.unschedulable=true and annotate it %s=%s in one write; a node someone else cordoned is left as it is and never uncordoned by nodeward",
			rem.Spec.NodeName, v1alpha1.AnnotationCordonedBy, rem.Name)}
}

// uncordonStep is the Uncordon step of CordonDrain and Cordon, planned, if
// the action sets uncordonAfter.
func uncordonStep(rem *v1alpha1.Remediation) (v1alpha1.Step, bool) {
	after := uncordonAfter(rem.Spec.Action)
	if after == nil {
		return v1alpha1.Step{}, false
	}
	return v1alpha1.Step{Name: v1alpha1.StepUncordon, Phase: v1alpha1.StepPending,
		Description: fmt.Sprintf("uncordon %s once it has been Ready with no NodeDiagnosis for %s, only if nodeward's cordon is still in place (a person who uncordoned or re-cordoned it wins); if it is not healthy within %s, end leaving it cordoned",
			rem.Spec.NodeName, after.Duration, uncordonCeiling)}, true
}

// uncordonAfter is the action's uncordonAfter (CordonDrain's drain or
// Cordon's cordon parameters), nil when the node is to stay cordoned.
func uncordonAfter(a v1alpha1.Action) *metav1.Duration {
	switch {
	case a.Type == v1alpha1.ActionCordonDrain && a.Drain != nil:
		return a.Drain.UncordonAfter
	case a.Type == v1alpha1.ActionCordon && a.Cordon != nil:
		return a.Cordon.UncordonAfter
	}
	return nil
}

func (drainAction) advance(ctx context.Context, e *Executor, rem *v1alpha1.Remediation, _ *corev1.Node, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	if rem.Status.Drain == nil {
		rem.Status.Drain = &v1alpha1.DrainStatus{}
	}
	switch step.Name {
	case v1alpha1.StepCordon:
		return e.cordon(ctx, rem, step, now)
	case v1alpha1.StepDrain:
		return e.drainNode(ctx, rem, step, now)
	case v1alpha1.StepUncordon:
		return e.uncordon(ctx, rem, step, now)
	}
	e.failStep(rem, step, v1alpha1.ReasonUnsupportedAction, fmt.Sprintf("step %q is not a step of %s", step.Name, rem.Spec.Action.Type), now)
	return reconcile.Result{}, nil
}

// stepTimeout bounds each step from the moment it started: an API error
// that persists (a cordon refused, the pods unreadable) fails the step then.
func (drainAction) stepTimeout(rem *v1alpha1.Remediation, step string) time.Duration {
	switch step {
	case v1alpha1.StepCordon:
		return cordonTimeout
	case v1alpha1.StepDrain:
		return drainTimeout(drainParams(rem)) + drainGrace
	}
	return uncordonCeiling
}

func succeed(step *v1alpha1.Step, msg string, now time.Time) {
	step.Phase = v1alpha1.StepSucceeded
	step.CompletedAt = ptr.To(metav1.NewTime(now))
	step.Message = truncate(msg, 2000)
}

// truncate cuts s to at most n characters (runes, as the CRD's maxLength
// counts them), ending in "..." when it cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}

// --- Cordon ----------------------------------------------------------------

// cordon marks the node unschedulable and nodeward's in one optimistic-lock
// patch, unless it is cordoned already. A merge patch rather than
// drain.RunCordonOrUncordon: that helper writes spec.unschedulable alone,
// and a cordon without the annotation would look like a person's.
func (e *Executor) cordon(ctx context.Context, rem *v1alpha1.Remediation, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	node, err := e.Kube.CoreV1().Nodes().Get(ctx, rem.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		return reconcile.Result{}, err
	}
	ds := rem.Status.Drain
	by := node.Annotations[v1alpha1.AnnotationCordonedBy]
	switch {
	case node.Spec.Unschedulable && by == rem.Name:
		// Our own patch, whose status write did not land before.
		ds.Cordoned = true
		succeed(step, fmt.Sprintf("cordoned %s (it was schedulable) and annotated it %s=%s", node.Name, v1alpha1.AnnotationCordonedBy, rem.Name), now)
		return reconcile.Result{}, nil
	case node.Spec.Unschedulable && by != "":
		ds.Cordoned = false
		succeed(step, fmt.Sprintf("%s was already cordoned by nodeward remediation %s; left as it is: this remediation will not uncordon it", node.Name, by), now)
		return reconcile.Result{}, nil
	case node.Spec.Unschedulable:
		ds.Cordoned = false
		succeed(step, fmt.Sprintf("%s was already cordoned by someone else (no %s annotation); left as it is: nodeward will not uncordon it", node.Name, v1alpha1.AnnotationCordonedBy), now)
		return reconcile.Result{}, nil
	}
	patch := map[string]any{
		"metadata": map[string]any{
			"resourceVersion": node.ResourceVersion, // act only on the node as read
			"annotations":     map[string]any{v1alpha1.AnnotationCordonedBy: rem.Name},
		},
		"spec": map[string]any{"unschedulable": true},
	}
	if err := e.patchNode(ctx, node.Name, patch); err != nil {
		if apierrors.IsConflict(err) {
			// Someone wrote the node since we read it: read it again.
			return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
		}
		return reconcile.Result{}, fmt.Errorf("cordoning %s: %w", node.Name, err)
	}
	klog.FromContext(ctx).Info("Cordoned node", "annotation", v1alpha1.AnnotationCordonedBy+"="+rem.Name)
	ds.Cordoned = true
	succeed(step, fmt.Sprintf("cordoned %s (it was schedulable) and annotated it %s=%s", node.Name, v1alpha1.AnnotationCordonedBy, rem.Name), now)
	return reconcile.Result{}, nil
}

func (e *Executor) patchNode(ctx context.Context, name string, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = e.Kube.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: cordonFieldManager})
	return err
}

// --- Drain -----------------------------------------------------------------

// drainRuns are the drains running in this operator process, by record
// name, and what the Uncordon step remembers between looks. A drain takes
// minutes: it runs in a goroutine of its own and the reconcile only looks at
// it, so no reconcile worker waits on evictions.
type drainRuns struct {
	mu      sync.Mutex
	runs    map[string]*drainRun
	healthy map[string]time.Time // record → since when its node was seen healthy
}

func (d *drainRuns) get(name string) *drainRun {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runs[name]
}

func (d *drainRuns) put(name string, r *drainRun) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.runs == nil {
		d.runs = map[string]*drainRun{}
	}
	d.runs[name] = r
}

func (d *drainRuns) forget(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.runs, name)
	delete(d.healthy, name)
}

// healthySince returns since when name's node has been seen healthy,
// starting the count at now on the first look (in memory only: after an
// operator restart the count starts again, which only delays an uncordon).
func (d *drainRuns) healthySince(name string, now time.Time) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.healthy == nil {
		d.healthy = map[string]time.Time{}
	}
	if t, ok := d.healthy[name]; ok {
		return t
	}
	d.healthy[name] = now
	return now
}

func (d *drainRuns) unhealthy(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.healthy, name)
}

// drainRun is one drain in flight.
type drainRun struct {
	started time.Time
	total   int
	done    chan struct{}
	err     error // set before done is closed

	mu       sync.Mutex
	evicted  []string
	refused  int
	warnings string
}

func (r *drainRun) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *drainRun) snapshot() (evicted []string, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.evicted...), r.refused
}

// Write receives the drain helper's ErrOut: it counts the evictions a
// PodDisruptionBudget refused (the helper retries them).
func (r *drainRun) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused += strings.Count(string(b), "disruption budget")
	return len(b), nil
}

// drainNode starts the drain, or looks at the one running. After an operator
// restart the step is Running with no drain in this process: it starts
// again, which is safe because eviction is idempotent — a pod evicted
// already is gone or terminating (the helper waits for it), and the pods
// are listed afresh from the node.
func (e *Executor) drainNode(ctx context.Context, rem *v1alpha1.Remediation, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	ds := rem.Status.Drain
	run := e.drains.get(rem.Name)
	if run == nil {
		return e.startDrain(ctx, rem, step, now)
	}
	evicted, refused := run.snapshot()
	ds.EvictedPods = mergeNames(ds.EvictedPods, evicted, maxPodList)
	if !run.finished() {
		step.Message = fmt.Sprintf("evicting %d pods through the eviction API: %d evicted so far%s", run.total, len(evicted), refusedNote(refused))
		return reconcile.Result{RequeueAfter: drainPoll}, nil
	}
	e.drains.forget(rem.Name)
	took := now.Sub(run.started).Round(time.Second)
	if run.err == nil {
		msg := fmt.Sprintf("evicted %d pods in %s: %s%s", len(evicted), took, strings.Join(evicted, ", "), refusedNote(refused))
		if run.warnings != "" {
			msg += "; " + run.warnings
		}
		if len(rem.Status.Steps) == 2 && rem.Status.Drain.Cordoned {
			msg += fmt.Sprintf("; %s stays cordoned: uncordon it once it is fixed (the policy sets no uncordonAfter)", rem.Spec.NodeName)
		}
		succeed(step, msg, now)
		return reconcile.Result{}, nil
	}
	left, err := e.podsLeft(ctx, rem)
	if err != nil {
		return reconcile.Result{}, err
	}
	pdb, why, err := e.blockingPDB(ctx, left)
	if err != nil {
		return reconcile.Result{}, err
	}
	stays := fmt.Sprintf("%s; evicted %d pods before that; %s stays cordoned; nothing was force-deleted", refusedNote(refused), len(evicted), rem.Spec.NodeName)
	if pdb != "" {
		ds.BlockedBy = "PodDisruptionBudget " + pdb
		e.failStep(rem, step, v1alpha1.ReasonDrainBlocked, truncate(fmt.Sprintf("drain blocked for %s by %s%s", took, why, stays), 2000), now)
		return reconcile.Result{}, nil
	}
	e.failStep(rem, step, v1alpha1.ReasonDrainFailed, truncate(fmt.Sprintf("drain did not finish in %s: %v; pods still on the node: %s%s", took, run.err, strings.Join(names(left), ", "), stays), 2000), now)
	return reconcile.Result{}, nil
}

func refusedNote(refused int) string {
	if refused == 0 {
		return ""
	}
	return fmt.Sprintf(" (PodDisruptionBudgets refused %d evictions, retried every %s)", refused, evictRetryDelay)
}

// startDrain plans the drain — which pods, which PodDisruptionBudgets cover
// them — records the plan, and starts the evictions in the background.
func (e *Executor) startDrain(ctx context.Context, rem *v1alpha1.Remediation, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	ds := rem.Status.Drain
	p := drainParams(rem)
	timeout := drainTimeout(p)
	if step.StartedAt != nil {
		// After an operator restart, the drain gets what is left of its time.
		timeout = max(timeout-now.Sub(step.StartedAt.Time), min(timeout, minDrainTimeout))
	}
	gv, err := drain.CheckEvictionSupport(e.Kube)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("discovering the eviction API: %w", err)
	}
	if gv.Empty() {
		// The helper would fall back to deleting pods, which skips
		// PodDisruptionBudgets: never.
		e.failStep(rem, step, v1alpha1.ReasonDrainFailed, "the API server offers no eviction API; nodeward never deletes pods around it", now)
		return reconcile.Result{}, nil
	}
	run := &drainRun{started: now, done: make(chan struct{})}
	// The drain outlives this reconcile, not the operator: it is bounded by
	// its own timeout.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+time.Minute)
	h := newDrainHelper(dctx, e.Kube, p)
	h.Timeout = timeout
	h.EvictErrorRetryDelay = evictRetryDelay
	h.ErrOut = run
	h.OnPodDeletionOrEvictionFinished = func(pod *corev1.Pod, _ bool, err error) {
		if err != nil {
			return
		}
		run.mu.Lock()
		defer run.mu.Unlock()
		run.evicted = append(run.evicted, pod.Namespace+"/"+pod.Name)
	}
	list, errs := h.GetPodsForDeletion(rem.Spec.NodeName)
	if len(errs) > 0 {
		cancel()
		if list == nil {
			return reconcile.Result{}, fmt.Errorf("listing the pods on %s: %w", rem.Spec.NodeName, errors.Join(errs...))
		}
		var msgs []string
		for _, err := range errs {
			msgs = append(msgs, explainFilterError(err.Error()))
		}
		sort.Strings(msgs)
		e.failStep(rem, step, v1alpha1.ReasonDrainFailed, truncate(fmt.Sprintf("nothing was evicted: %s; %s stays cordoned", strings.Join(msgs, "; "), rem.Spec.NodeName), 2000), now)
		return reconcile.Result{}, nil
	}
	pods := list.Pods()
	if w := list.Warnings(); w != "" {
		run.warnings = "left on the node: " + w
	}
	run.total = len(pods)
	ds.PlannedPods = mergeNames(ds.PlannedPods, names(pods), maxPodList)
	pdbs, err := e.coveringPDBs(ctx, pods)
	if err != nil {
		cancel()
		return reconcile.Result{}, err
	}
	ds.PDBs = mergeNames(ds.PDBs, pdbs, maxPDBList)
	e.drains.put(rem.Name, run)
	klog.FromContext(ctx).Info("Draining node", "pods", len(pods), "pdbs", pdbs, "timeout", timeout)
	go func() {
		defer cancel()
		run.err = h.DeleteOrEvictPods(pods)
		close(run.done)
	}()
	step.Message = fmt.Sprintf("evicting %d pods through the eviction API", len(pods))
	return reconcile.Result{RequeueAfter: drainPoll}, nil
}

// newDrainHelper is the drain helper with nodeward's drain rules — which
// pods go, which stay, eviction only — the same for the drain (startDrain)
// and for its plan worked out in advance (planDrain).
func newDrainHelper(ctx context.Context, kube kubernetes.Interface, p v1alpha1.DrainParams) *drain.Helper {
	return &drain.Helper{
		Ctx:    ctx,
		Client: kube,
		// Never delete a pod around the eviction API: a pod no controller
		// would recreate stops the drain instead.
		Force:               false,
		IgnoreAllDaemonSets: true,
		DeleteEmptyDirData:  p.DeleteEmptyDirData,
		GracePeriodSeconds:  gracePeriodSeconds(p),
		DisableEviction:     false,
		// nodeward never evicts its own node agent: a drained node must stay
		// observable (the agent reports the recovery the Uncordon step waits
		// for). In a cluster the agent is a DaemonSet pod and skipped anyway;
		// the selector also covers an agent run as a plain pod bound to the
		// node (as the e2e harness runs it), which the helper would
		// otherwise refuse as unmanaged.
		PodSelector: agentLabelSelector,
		// A pod still there this long after its graceful deletion was due
		// waits for a kubelet that is not coming (a dead or unreachable
		// node): its controller has replaced it already; neither plan for
		// it nor wait for it.
		SkipWaitForDeleteTimeoutSeconds: overdueDeletionSeconds,
		Out:                             discard{},
		ErrOut:                          discard{},
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// explainFilterError says what the drain helper's refusal means for nodeward,
// without kubectl's flags.
func explainFilterError(msg string) string {
	msg = strings.Replace(msg, "(use --force to override)", "(nodeward never deletes a pod that no controller would recreate: move or delete it yourself)", 1)
	msg = strings.Replace(msg, "(use --delete-emptydir-data to override)", "(their data would be lost: set action.drain.deleteEmptyDirData to allow it)", 1)
	return msg
}

func names(pods []corev1.Pod) []string {
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

// mergeNames appends the names not in have yet, up to limit.
func mergeNames(have, add []string, limit int) []string {
	seen := make(map[string]bool, len(have))
	for _, n := range have {
		seen[n] = true
	}
	for _, n := range add {
		if len(have) >= limit {
			break
		}
		if !seen[n] {
			seen[n] = true
			have = append(have, n)
		}
	}
	return have
}

// coveringPDBs lists the PodDisruptionBudgets that select any of pods: one
// list per namespace, once per drain.
func (e *Executor) coveringPDBs(ctx context.Context, pods []corev1.Pod) ([]string, error) {
	matched, err := e.pdbsFor(ctx, pods, false)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(matched))
	for _, m := range matched {
		out = append(out, m.pdb.Namespace+"/"+m.pdb.Name)
	}
	return out, nil
}

type pdbMatch struct {
	pdb  policyv1.PodDisruptionBudget
	pods []string
}

// pdbsFor returns the PodDisruptionBudgets selecting any of pods (only those
// allowing no disruption when blocking is set), each with the pods it selects.
func (e *Executor) pdbsFor(ctx context.Context, pods []corev1.Pod, blocking bool) ([]pdbMatch, error) {
	byNS := map[string][]corev1.Pod{}
	for _, p := range pods {
		byNS[p.Namespace] = append(byNS[p.Namespace], p)
	}
	nss := make([]string, 0, len(byNS))
	for ns := range byNS {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	var out []pdbMatch
	for _, ns := range nss {
		list, err := e.Kube.PolicyV1().PodDisruptionBudgets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing PodDisruptionBudgets in %s: %w", ns, err)
		}
		for _, pdb := range list.Items {
			if blocking && pdb.Status.DisruptionsAllowed > 0 {
				continue
			}
			// policy/v1: a nil selector selects nothing, an empty one every pod.
			if pdb.Spec.Selector == nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil {
				continue
			}
			m := pdbMatch{pdb: pdb}
			for _, p := range byNS[ns] {
				if sel.Matches(labels.Set(p.Labels)) {
					m.pods = append(m.pods, p.Namespace+"/"+p.Name)
				}
			}
			if len(m.pods) > 0 {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// podsLeft lists the pods still on the node that the drain meant to evict.
func (e *Executor) podsLeft(ctx context.Context, rem *v1alpha1.Remediation) ([]corev1.Pod, error) {
	list, err := e.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + rem.Spec.NodeName})
	if err != nil {
		return nil, fmt.Errorf("listing the pods left on %s: %w", rem.Spec.NodeName, err)
	}
	planned := map[string]bool{}
	for _, n := range rem.Status.Drain.PlannedPods {
		planned[n] = true
	}
	var left []corev1.Pod
	for _, p := range list.Items {
		if planned[p.Namespace+"/"+p.Name] {
			left = append(left, p)
		}
	}
	return left, nil
}

// blockingPDB names the PodDisruptionBudget that kept a pod on the node: one
// that selects a pod still there and allows no disruption.
func (e *Executor) blockingPDB(ctx context.Context, left []corev1.Pod) (name, why string, err error) {
	if len(left) == 0 {
		return "", "", nil
	}
	matched, err := e.pdbsFor(ctx, left, true)
	if err != nil || len(matched) == 0 {
		return "", "", err
	}
	m := matched[0]
	name = m.pdb.Namespace + "/" + m.pdb.Name
	why = fmt.Sprintf("PodDisruptionBudget %s (%s: %d of %d pods healthy, %d disruptions allowed), which kept %s on the node",
		name, budgetRule(&m.pdb), m.pdb.Status.CurrentHealthy, m.pdb.Status.ExpectedPods, m.pdb.Status.DisruptionsAllowed, strings.Join(m.pods, ", "))
	return name, why, nil
}

// budgetRule is a PodDisruptionBudget's rule: "minAvailable 3",
// "maxUnavailable 0".
func budgetRule(pdb *policyv1.PodDisruptionBudget) string {
	switch {
	case pdb.Spec.MinAvailable != nil:
		return "minAvailable " + pdb.Spec.MinAvailable.String()
	case pdb.Spec.MaxUnavailable != nil:
		return "maxUnavailable " + pdb.Spec.MaxUnavailable.String()
	}
	return ""
}

// --- Uncordon --------------------------------------------------------------

// uncordon waits until the node has been Ready with no NodeDiagnosis for
// uncordonAfter, then uncordons it if nodeward's cordon is still in place.
// CordonDrain and Cordon share it (and cordon).
func (e *Executor) uncordon(ctx context.Context, rem *v1alpha1.Remediation, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	ds := rem.Status.Drain
	after := time.Duration(0)
	if d := uncordonAfter(rem.Spec.Action); d != nil {
		after = d.Duration
	}
	if !ds.Cordoned {
		succeed(step, fmt.Sprintf("nodeward did not cordon %s (it was cordoned already): left cordoned", rem.Spec.NodeName), now)
		return reconcile.Result{}, nil
	}
	node, err := e.Kube.CoreV1().Nodes().Get(ctx, rem.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		return reconcile.Result{}, err
	}
	if theirs := e.cordonTakenOver(node, rem.Name); theirs != "" {
		e.drains.forget(rem.Name)
		if node.Annotations[v1alpha1.AnnotationCordonedBy] == rem.Name {
			// Our annotation no longer describes the cordon: drop it, so
			// nobody (nodeward included) takes a person's cordon for ours.
			if err := e.patchNode(ctx, node.Name, map[string]any{"metadata": map[string]any{
				"resourceVersion": node.ResourceVersion,
				"annotations":     map[string]any{v1alpha1.AnnotationCordonedBy: nil},
			}}); err != nil {
				if apierrors.IsConflict(err) {
					return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
				}
				return reconcile.Result{}, fmt.Errorf("removing %s from %s: %w", v1alpha1.AnnotationCordonedBy, node.Name, err)
			}
			theirs += fmt.Sprintf("; removed nodeward's %s annotation", v1alpha1.AnnotationCordonedBy)
		}
		succeed(step, "did not uncordon: "+theirs, now)
		return reconcile.Result{}, nil
	}
	healthy, why, err := e.nodeHealthy(ctx, node)
	if err != nil {
		return reconcile.Result{}, err
	}
	if !healthy {
		e.drains.unhealthy(rem.Name)
		if waited := now.Sub(step.StartedAt.Time); waited >= uncordonCeiling {
			e.drains.forget(rem.Name)
			succeed(step, fmt.Sprintf("%s was not healthy within %s (%s): left cordoned by nodeward (annotation %s=%s kept); uncordon it once it is fixed",
				node.Name, uncordonCeiling, why, v1alpha1.AnnotationCordonedBy, rem.Name), now)
			return reconcile.Result{}, nil
		}
		step.Message = fmt.Sprintf("waiting for %s to be Ready with no NodeDiagnosis for %s before uncordoning: %s", node.Name, after, why)
		return reconcile.Result{RequeueAfter: uncordonPoll}, nil
	}
	since := e.drains.healthySince(rem.Name, now)
	if r := policies.ReadyCondition(node); r != nil && r.LastTransitionTime.After(since) {
		since = r.LastTransitionTime.Time // a flap between two looks
	}
	if wait := since.Add(after).Sub(now); wait > 0 {
		step.Message = fmt.Sprintf("%s healthy since %s; uncordoning at %s unless someone changes the cordon", node.Name, since.UTC().Format(time.RFC3339), since.Add(after).UTC().Format(time.RFC3339))
		return reconcile.Result{RequeueAfter: min(wait, uncordonPoll)}, nil
	}
	err = e.patchNode(ctx, node.Name, map[string]any{
		"metadata": map[string]any{
			"resourceVersion": node.ResourceVersion,
			"annotations":     map[string]any{v1alpha1.AnnotationCordonedBy: nil},
		},
		"spec": map[string]any{"unschedulable": nil},
	})
	if apierrors.IsConflict(err) {
		return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("uncordoning %s: %w", node.Name, err)
	}
	e.drains.forget(rem.Name)
	klog.FromContext(ctx).Info("Uncordoned node", "healthyFor", now.Sub(since).Round(time.Second))
	ds.UncordonedAt = ptr.To(metav1.NewTime(now))
	succeed(step, fmt.Sprintf("uncordoned %s after it was healthy (Ready, no NodeDiagnosis) for %s; removed the %s annotation",
		node.Name, now.Sub(since).Round(time.Second), v1alpha1.AnnotationCordonedBy), now)
	return reconcile.Result{}, nil
}

// cordonTakenOver says why the node's cordon is no longer nodeward's, or ""
// if it still is: someone uncordoned it, changed or removed the
// annotation, or set spec.unschedulable after nodeward did (re-cordoned it;
// managedFields name who last changed the field).
func (e *Executor) cordonTakenOver(node *corev1.Node, record string) string {
	by := node.Annotations[v1alpha1.AnnotationCordonedBy]
	switch {
	case by != record && by != "":
		return fmt.Sprintf("%s carries %s=%s now, not this remediation's: left as it is", node.Name, v1alpha1.AnnotationCordonedBy, by)
	case by == "":
		return fmt.Sprintf("someone removed nodeward's %s annotation from %s: the cordon is theirs now, left as it is", v1alpha1.AnnotationCordonedBy, node.Name)
	case !node.Spec.Unschedulable:
		return fmt.Sprintf("someone uncordoned %s already", node.Name)
	}
	if owner := unschedulableOwner(node); owner != "" && owner != cordonFieldManager {
		return fmt.Sprintf("%s re-cordoned %s after nodeward did: the cordon is theirs, left as it is", owner, node.Name)
	}
	return ""
}

// unschedulableOwner is the field manager that last set spec.unschedulable.
func unschedulableOwner(node *corev1.Node) string {
	for _, mf := range node.ManagedFields {
		if mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(mf.FieldsV1.Raw, &fields) != nil {
			continue
		}
		if spec, ok := fields["f:spec"].(map[string]any); ok {
			if _, ok := spec["f:unschedulable"]; ok {
				return mf.Manager
			}
		}
	}
	return ""
}

// nodeHealthy: Ready=True and no NodeDiagnosis (the diagnosis controller
// keeps one only while the node is unhealthy).
func (e *Executor) nodeHealthy(ctx context.Context, node *corev1.Node) (bool, string, error) {
	var why []string
	if r := policies.ReadyCondition(node); r == nil || r.Status != corev1.ConditionTrue {
		status := "missing"
		if r != nil {
			status = fmt.Sprintf("%s (%s)", r.Status, r.Reason)
		}
		why = append(why, "Ready is "+status)
	}
	diag := &v1alpha1.NodeDiagnosis{}
	err := e.Client.Get(ctx, client.ObjectKey{Name: node.Name}, diag)
	switch {
	case err == nil:
		msg := "a NodeDiagnosis exists"
		if diag.Status.Summary != "" {
			msg += ": " + diag.Status.Summary
		}
		why = append(why, msg)
	case !apierrors.IsNotFound(err):
		return false, "", err
	}
	return len(why) == 0, strings.Join(why, "; "), nil
}
