// Package remediations acts: its executor carries out Remediation records
// step by step, hands node-local steps to the node agent as NodeTasks, waits
// for the node to recover, and records the outcome and the time of every
// step. Every step is persisted before it acts, so an operator restart never
// repeats an action and never loses one.
package remediations

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/operator/diagnosis"
	"github.com/nodeward/nodeward/policies"
)

// pollInterval is how often a waiting step looks again at what it waits for
// (node events wake it sooner).
const pollInterval = time.Second

// Executor carries out Remediation records. It is the only writer of their
// status.
type Executor struct {
	Client   client.Client
	Clock    clock.Clock
	Recorder events.EventRecorder
	// Kube is a typed clientset for what controller-runtime's client does
	// not cover (the eviction API through k8s.io/kubectl/pkg/drain).
	Kube kubernetes.Interface
	// APIReader reads from the API server, not the cache: it confirms that a
	// NodeTask the cache does not have is really gone (steps.go). Set by
	// SetupWithManager when nil.
	APIReader client.Reader
	// drains are the CordonDrain drains running in this process (drain.go).
	drains drainRuns
	// Notifier, if not nil, POSTs a notice when a record starts waiting for
	// approval (notify.go).
	Notifier *Notifier
	// Heartbeats, if not nil, lets the storm breaker count nodes whose
	// Leases went stale before they are diagnosed.
	Heartbeats policies.Heartbeats
	// approvals are the RequireApproval records waiting for a person
	// (approval.go).
	approvals pendingApprovals
	// Sealer checks the operator's seal on a record before it starts and
	// stamps and checks the start proof in its status (trust.go). Without
	// one nothing is trusted: every record ends Unsealed.
	Sealer *policies.Sealer

	ledger startLedger
}

// action is the steps of one ActionType. Each action lives in its own file
// and registers itself in actions.
type action interface {
	// plan lists the steps, in order, each with a description of what it
	// will do (in DryRun: what it would have done).
	plan(rem *v1alpha1.Remediation) []v1alpha1.Step
	// advance moves the current step, which is Running and persisted as
	// such, on: it sets step.Phase to Succeeded (with CompletedAt and a
	// Message) or fails it with e.failStep, or returns when to look again.
	advance(ctx context.Context, e *Executor, rem *v1alpha1.Remediation, node *corev1.Node, step *v1alpha1.Step, now time.Time) (reconcile.Result, error)
}

// previewer is an action that works out in advance what its steps would
// touch, once, when a record is planned (drainplan.go: the pods a drain
// would evict and the budgets covering them).
type previewer interface {
	preview(ctx context.Context, e *Executor, rem *v1alpha1.Remediation, now time.Time)
}

// finisher is an action that does something once its record's terminal
// status is persisted, and only then (notifyaction.go: tell a person): a
// failed status write or a crash before it never lets that happen twice.
type finisher interface {
	finished(ctx context.Context, e *Executor, rem *v1alpha1.Remediation)
}

// actions maps each ActionType to its steps.
var actions = map[v1alpha1.ActionType]action{
	v1alpha1.ActionRestartKubelet:          restartAction{unit: v1alpha1.UnitKubelet},
	v1alpha1.ActionRestartContainerRuntime: restartAction{unit: v1alpha1.UnitContainerRuntime},
}

// SetupWithManager registers the controller.
func (e *Executor) SetupWithManager(mgr ctrl.Manager) error {
	if e.APIReader == nil {
		e.APIReader = mgr.GetAPIReader()
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("executor").
		For(&v1alpha1.Remediation{}).
		Owns(&v1alpha1.NodeTask{}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(e.inFlightForNode), builder.WithPredicates(diagnosis.NodeHealthChanged())).
		Complete(e)
}

// inFlightForNode maps a Node change to its non-terminal records (an index
// lookup, not a scan).
func (e *Executor) inFlightForNode(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.RemediationList{}
	if err := e.Client.List(ctx, list, client.MatchingFields{policies.IndexRemediationNode: o.GetName()}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, r := range list.Items {
		if !r.Status.Phase.IsTerminal() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&r)})
		}
	}
	return reqs
}

// Reconcile advances one record by at most one persisted step.
func (e *Executor) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	rem := &v1alpha1.Remediation{}
	if err := e.Client.Get(ctx, req.NamespacedName, rem); err != nil {
		if apierrors.IsNotFound(err) {
			e.approvals.set(req.Name, false)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if rem.Status.Phase.IsTerminal() {
		return reconcile.Result{}, nil
	}
	log := klog.FromContext(ctx).WithValues("remediation", klog.KObj(rem), "node", rem.Spec.NodeName)
	ctx = klog.NewContext(ctx, log)
	before := rem.DeepCopy()
	res, err := e.reconcile(ctx, rem)
	if err != nil {
		return reconcile.Result{}, err
	}
	fitStatus(&rem.Status)
	if err := e.Client.Status().Patch(ctx, rem, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return reconcile.Result{}, fmt.Errorf("recording remediation status: %w", err)
	}
	if rem.Status.Phase.IsTerminal() {
		e.announce(rem)
		countFinished(rem)
		if f, ok := actions[rem.Spec.Action.Type].(finisher); ok {
			f.finished(ctx, e, rem)
		}
	}
	return res, nil
}

func (e *Executor) reconcile(ctx context.Context, rem *v1alpha1.Remediation) (reconcile.Result, error) {
	now := e.Clock.Now()
	act, known := actions[rem.Spec.Action.Type]
	if !known {
		e.end(rem, v1alpha1.PhaseFailed, v1alpha1.ReasonUnsupportedAction, fmt.Sprintf("action %q is not known to this executor", rem.Spec.Action.Type), now)
		return reconcile.Result{}, nil
	}
	// Defence in depth behind admission (trust.go): a status the executor
	// did not write is discarded, and a record the operator did not seal
	// never starts.
	if e.distrustStatus(ctx, rem, act, now) {
		return reconcile.Result{}, nil
	}
	if rem.Status.Phase == "" || rem.Status.Phase == v1alpha1.PhasePending {
		if e.refuseUnsealed(ctx, rem, act, now) {
			return reconcile.Result{}, nil
		}
	}
	if rem.Status.Phase == "" {
		e.planSteps(ctx, rem, act, now)
		return reconcile.Result{}, nil
	}
	if rem.Status.Phase == v1alpha1.PhasePending {
		return e.start(ctx, rem, now)
	}

	node := &corev1.Node{}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: rem.Spec.NodeName}, node); err != nil {
		if apierrors.IsNotFound(err) {
			e.failRunning(rem, v1alpha1.ReasonNodeGone, "the node no longer exists", now)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	i := currentStep(rem)
	if i < 0 {
		e.end(rem, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered, "every step succeeded", now)
		return reconcile.Result{}, nil
	}
	step := &rem.Status.Steps[i]
	if step.Phase == v1alpha1.StepPending {
		// Persist "Running" before acting: the action happens in the next
		// reconcile, after this write succeeded.
		step.Phase = v1alpha1.StepRunning
		step.StartedAt = ptr.To(metav1.NewTime(now))
		return reconcile.Result{}, nil
	}
	res, err := e.advanceStep(ctx, act, rem, node, step, now)
	if err == nil && step.Phase == v1alpha1.StepSucceeded && currentStep(rem) < 0 && !rem.Status.Phase.IsTerminal() {
		e.end(rem, v1alpha1.PhaseSucceeded, v1alpha1.ReasonRecovered, "every step succeeded: "+step.Message, now)
	}
	return res, err
}

// planSteps plans a record that was not started: phase Pending, every step
// Pending.
func (e *Executor) planSteps(ctx context.Context, rem *v1alpha1.Remediation, act action, now time.Time) {
	rem.Status.Phase = v1alpha1.PhasePending
	rem.Status.Steps = act.plan(rem)
	if p, ok := act.(previewer); ok {
		p.preview(ctx, e, rem, now)
	}
	setCondition(rem, metav1.ConditionUnknown, v1alpha1.ReasonInProgress, "planned", now)
}

// start decides whether a pending (and sealed) record may start. Every time,
// before the first action, it reads the policy again: the record's action
// must still be the policy's, and the stricter of the record's and the
// policy's mode applies — in DryRun it ends saying what would have been
// done; in RequireApproval it waits for a person's decision first
// (approval.go), even if the record says Automatic — but for a Notify, which
// touches nothing. Then the node must still
// exist, the record's cause episode must still be diagnosed (the same
// causeSince), and the policy's limits must allow it (policies.Admit), or the
// record waits saying why (or ends, when waiting can't help).
func (e *Executor) start(ctx context.Context, rem *v1alpha1.Remediation, now time.Time) (reconcile.Result, error) {
	if rem.Spec.Mode == v1alpha1.ModeDryRun {
		e.dryRun(rem, "", now)
		return reconcile.Result{}, nil
	}
	p := &v1alpha1.RemediationPolicy{}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: rem.Spec.Policy}, p); err != nil {
		if apierrors.IsNotFound(err) {
			e.skip(rem, v1alpha1.ReasonPolicyGone, fmt.Sprintf("policy %s was deleted before the remediation started; nothing was done", rem.Spec.Policy), now)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if !equality.Semantic.DeepEqual(rem.Spec.Action, p.Spec.Action) {
		what := fmt.Sprintf("is now %s", p.Spec.Action.Type)
		if p.Spec.Action.Type == rem.Spec.Action.Type {
			what = fmt.Sprintf("is still %s, but with other parameters", p.Spec.Action.Type)
		}
		e.skip(rem, v1alpha1.ReasonActionChanged, fmt.Sprintf("the record's action %s is not its policy's: policy %s's action %s (generation %d; the record was decided at generation %d); nothing was done",
			rem.Spec.Action.Type, p.Name, what, p.Generation, rem.Spec.PolicyGeneration), now)
		return reconcile.Result{}, nil
	}
	mode := StricterMode(rem.Spec.Mode, p.Spec.Mode)
	if mode == v1alpha1.ModeDryRun {
		e.dryRun(rem, fmt.Sprintf("policy %s is now DryRun (the record was decided as %s): ", p.Name, rem.Spec.Mode), now)
		return reconcile.Result{}, nil
	}
	// A Notify touches nothing: approving it would only tell a person that
	// a person is needed (notifyaction.go).
	if mode == v1alpha1.ModeRequireApproval && !policies.TouchesNothing(rem.Spec.Action.Type) {
		if res, done, err := e.awaitApproval(ctx, rem, p, now); done || err != nil {
			return res, err
		}
	}
	node := &corev1.Node{}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: rem.Spec.NodeName}, node); err != nil {
		if apierrors.IsNotFound(err) {
			e.skip(rem, v1alpha1.ReasonNodeGone, "the node no longer exists; nothing was done", now)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	diag := &v1alpha1.NodeDiagnosis{}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: rem.Spec.NodeName}, diag); client.IgnoreNotFound(err) != nil {
		return reconcile.Result{}, err
	} else if dc, present := diag.Status.Cause(rem.Spec.Cause); err != nil || !present {
		e.skip(rem, v1alpha1.ReasonCauseGone,
			fmt.Sprintf("%s is no longer diagnosed on %s: the node recovered before the remediation started; nothing was done", rem.Spec.Cause, rem.Spec.NodeName), now)
		return reconcile.Result{}, nil
	} else if dc.Since.Unix() != rem.Spec.CauseSince.Unix() {
		e.skip(rem, v1alpha1.ReasonEpisodeEnded,
			fmt.Sprintf("%s is diagnosed on %s since %s, not since %s as when this record was decided: the episode it was decided for ended (a new one gets its own record); nothing was done",
				rem.Spec.Cause, rem.Spec.NodeName, dc.Since.UTC().Format(time.RFC3339), rem.Spec.CauseSince.UTC().Format(time.RFC3339)), now)
		return reconcile.Result{}, nil
	}
	v, err := e.admit(ctx, p, rem, node, now)
	if err != nil {
		return reconcile.Result{}, err
	}
	switch {
	case v.Skip:
		e.skip(rem, v.Reason, v.Message, now)
		return reconcile.Result{}, nil
	case !v.Allow:
		if rem.Status.Reason != v.Reason || rem.Status.Message != v.Message {
			klog.FromContext(ctx).Info("Holding remediation back", "reason", v.Reason, "message", v.Message)
			if rem.Status.Reason != v.Reason {
				heldTotal.WithLabelValues(v.Reason).Inc()
			}
		}
		rem.Status.Reason, rem.Status.Message = v.Reason, v.Message
		rem.Status.NotBefore = nil
		wait := 15 * time.Second
		if !v.NotBefore.IsZero() {
			rem.Status.NotBefore = ptr.To(metav1.NewTime(v.NotBefore))
			wait = min(wait, max(v.NotBefore.Sub(now), time.Second))
		}
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	if e.Sealer == nil { // refuseUnsealed let nothing through without one
		return reconcile.Result{}, fmt.Errorf("no seal key: can't prove the start of %s", rem.Name)
	}
	rem.Status.Phase, rem.Status.Reason, rem.Status.Message, rem.Status.NotBefore = v1alpha1.PhaseRunning, v1alpha1.ReasonInProgress, "", nil
	rem.Status.StartedAt = ptr.To(metav1.NewTime(now))
	// Written in the same patch as phase Running: a record found Running
	// without it was not started here (distrustStatus).
	rem.Status.StartProof = e.Sealer.StartProof(rem.Name, rem.UID, now)
	e.ledger.add(rem.Name, now)
	return reconcile.Result{}, nil
}

// dryRun ends a record that only says what would have been done.
func (e *Executor) dryRun(rem *v1alpha1.Remediation, why string, now time.Time) {
	for i := range rem.Status.Steps {
		rem.Status.Steps[i].Phase = v1alpha1.StepSkipped
		rem.Status.Steps[i].Message = "dry run: not carried out"
	}
	e.end(rem, v1alpha1.PhaseSkipped, v1alpha1.ReasonDryRun,
		fmt.Sprintf("%sdry run: would have run %s on node %s; nothing was touched", why, rem.Spec.Action.Type, rem.Spec.NodeName), now)
}

// StricterMode is the stricter of two modes: DryRun over RequireApproval
// over Automatic. A mode it does not know counts as DryRun (an empty one
// too: DryRun is the policy's default).
func StricterMode(a, b v1alpha1.Mode) v1alpha1.Mode {
	rank := func(m v1alpha1.Mode) int {
		switch m {
		case v1alpha1.ModeAutomatic:
			return 0
		case v1alpha1.ModeRequireApproval:
			return 1
		}
		return 2
	}
	if rank(b) > rank(a) {
		a = b
	}
	if rank(a) == 2 {
		return v1alpha1.ModeDryRun
	}
	return a
}

// skip ends a record that never started: every step is Skipped, saying why.
func (e *Executor) skip(rem *v1alpha1.Remediation, reason, msg string, now time.Time) {
	for i := range rem.Status.Steps {
		rem.Status.Steps[i].Phase = v1alpha1.StepSkipped
		rem.Status.Steps[i].Message = "not carried out: " + reason
	}
	e.end(rem, v1alpha1.PhaseSkipped, reason, msg, now)
}

// Plan lists the steps of a record's action (nil for an unknown action).
func Plan(rem *v1alpha1.Remediation) []v1alpha1.Step {
	if act, ok := actions[rem.Spec.Action.Type]; ok {
		return act.plan(rem)
	}
	return nil
}

// currentStep is the index of the first step not yet succeeded, or -1.
func currentStep(rem *v1alpha1.Remediation) int {
	for i, s := range rem.Status.Steps {
		if s.Phase != v1alpha1.StepSucceeded && s.Phase != v1alpha1.StepSkipped {
			return i
		}
	}
	return -1
}

func (e *Executor) failStep(rem *v1alpha1.Remediation, step *v1alpha1.Step, reason, msg string, now time.Time) {
	step.Phase = v1alpha1.StepFailed
	step.CompletedAt = ptr.To(metav1.NewTime(now))
	step.Message = msg
	for i := range rem.Status.Steps {
		if rem.Status.Steps[i].Phase == v1alpha1.StepPending {
			rem.Status.Steps[i].Phase = v1alpha1.StepSkipped
			rem.Status.Steps[i].Message = "not run: an earlier step failed"
		}
	}
	e.end(rem, v1alpha1.PhaseFailed, reason, fmt.Sprintf("step %s failed: %s", step.Name, msg), now)
}

func (e *Executor) failRunning(rem *v1alpha1.Remediation, reason, msg string, now time.Time) {
	if i := currentStep(rem); i >= 0 {
		e.failStep(rem, &rem.Status.Steps[i], reason, msg, now)
		return
	}
	e.end(rem, v1alpha1.PhaseFailed, reason, msg, now)
}

func (e *Executor) end(rem *v1alpha1.Remediation, phase v1alpha1.RemediationPhase, reason, msg string, now time.Time) {
	rem.Status.Phase, rem.Status.Reason, rem.Status.Message = phase, reason, msg
	rem.Status.CompletedAt = ptr.To(metav1.NewTime(now))
	status := metav1.ConditionFalse
	if phase == v1alpha1.PhaseSucceeded {
		status = metav1.ConditionTrue
	}
	setCondition(rem, status, reason, msg, now)
}

// fitStatus cuts the messages the executor writes to the lengths the CRD
// allows: a message quoted from the agent or the apiserver must never make
// the status write itself fail and leave a record stuck.
func fitStatus(st *v1alpha1.RemediationStatus) {
	st.Message = truncate(st.Message, 4096)
	for i := range st.Steps {
		st.Steps[i].Description = truncate(st.Steps[i].Description, 1024)
		st.Steps[i].Message = truncate(st.Steps[i].Message, 2048)
	}
}

func setCondition(rem *v1alpha1.Remediation, status metav1.ConditionStatus, reason, msg string, now time.Time) {
	meta.SetStatusCondition(&rem.Status.Conditions, metav1.Condition{
		Type: v1alpha1.RemediationConditionSucceeded, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: rem.Generation, LastTransitionTime: metav1.NewTime(now),
	})
}

func (e *Executor) announce(rem *v1alpha1.Remediation) {
	kind := corev1.EventTypeNormal
	if rem.Status.Phase == v1alpha1.PhaseFailed {
		kind = corev1.EventTypeWarning
	}
	e.Recorder.Eventf(rem, nil, kind, "Remediation"+string(rem.Status.Phase), "Remediate", "%s", rem.Status.Message)
}
