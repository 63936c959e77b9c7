package remediations

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/policies"
)

// tuneAction raises kube-controller-manager's --node-monitor-grace-period
// (seeds 002 and 003: late heartbeats flipped healthy nodes NotReady). The
// record's node is where the cause was seen, usually a worker; the edit is
// made in the static pod manifest of one control-plane node: the first Ready
// node labelled node-role.kubernetes.io/control-plane, by name. The node
// agent there does the edit (an EditConfig NodeTask, raise-only: nodeward
// never lowers the grace period) and the kubelet restarts the static pod with
// it. In a control plane of several nodes only that node's controller-manager
// gets the new value.
type tuneAction struct{}

func init() { actions[v1alpha1.ActionTuneGracePeriods] = tuneAction{} }

// tuneTimeout is how long the node agent has to finish the edit.
const tuneTimeout = 2 * time.Minute

// graceKey is the flag as status.tune names it.
const graceKey = "--" + string(v1alpha1.ConfigKeyNodeMonitorGracePeriod)

func wantedGrace(rem *v1alpha1.Remediation) (time.Duration, bool) {
	p := rem.Spec.Action.TuneGracePeriods
	if p == nil || p.NodeMonitorGracePeriod.Duration <= 0 {
		return 0, false
	}
	return p.NodeMonitorGracePeriod.Duration, true
}

func (tuneAction) plan(rem *v1alpha1.Remediation) []v1alpha1.Step {
	want, _ := wantedGrace(rem)
	return []v1alpha1.Step{
		{Name: v1alpha1.StepEditConfig, Phase: v1alpha1.StepPending,
			Description: fmt.Sprintf("ask the node agent on the first Ready control-plane node (by name) to raise kube-controller-manager's %s to %s in its static pod manifest, keeping a backup; a value already at least %s is left alone (never lowered)", graceKey, want, want)},
		{Name: v1alpha1.StepVerifyApplied, Phase: v1alpha1.StepPending,
			Description: fmt.Sprintf("check that the manifest reads back %s=%s", graceKey, want)},
	}
}

func (tuneAction) advance(ctx context.Context, e *Executor, rem *v1alpha1.Remediation, _ *corev1.Node, step *v1alpha1.Step, now time.Time) (reconcile.Result, error) {
	want, ok := wantedGrace(rem)
	if !ok {
		e.failStep(rem, step, v1alpha1.ReasonTuneFailed, "the record's action has no tuneGracePeriods.nodeMonitorGracePeriod", now)
		return reconcile.Result{}, nil
	}
	switch step.Name {
	case v1alpha1.StepEditConfig:
		return e.editGrace(ctx, rem, step, want, now)
	case v1alpha1.StepVerifyApplied:
		return e.verifyGrace(ctx, rem, step, want, now)
	}
	e.failStep(rem, step, v1alpha1.ReasonUnsupportedAction, fmt.Sprintf("step %q is not a step of %s", step.Name, rem.Spec.Action.Type), now)
	return reconcile.Result{}, nil
}

// TuneTaskName is the NodeTask of a TuneGracePeriods record: one per record,
// so a retried create after a restart can't make a second.
func TuneTaskName(record string) string {
	name := record + "-tune"
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.TrimRight(record[:253-22], ".-") + "-tune-" + hex.EncodeToString(sum[:])[:16]
}

// tuneTarget is the first Ready control-plane node by name, or "".
func (e *Executor) tuneTarget(ctx context.Context) (string, error) {
	list := &corev1.NodeList{}
	if err := e.Client.List(ctx, list, client.HasLabels{policies.LabelControlPlane}); err != nil {
		return "", err
	}
	var ready []string
	for i := range list.Items {
		if c := policies.ReadyCondition(&list.Items[i]); c != nil && c.Status == corev1.ConditionTrue {
			ready = append(ready, list.Items[i].Name)
		}
	}
	if len(ready) == 0 {
		return "", nil
	}
	sort.Strings(ready)
	return ready[0], nil
}

// stepTimeout: both steps have tuneTimeout, from the moment each started.
func (tuneAction) stepTimeout(*v1alpha1.Remediation, string) time.Duration { return tuneTimeout }

func (e *Executor) editGrace(ctx context.Context, rem *v1alpha1.Remediation, step *v1alpha1.Step, want time.Duration, now time.Time) (reconcile.Result, error) {
	name := TuneTaskName(rem.Name)
	task, err := e.handedOutTask(ctx, rem, name)
	if err != nil {
		return reconcile.Result{}, err
	}
	if task == nil && rem.Status.NodeTask != "" {
		node := "a control-plane node"
		if rem.Status.Tune != nil && rem.Status.Tune.Node != "" {
			node = rem.Status.Tune.Node
		}
		e.failVanishedTask(rem, step, node, now)
		return reconcile.Result{}, nil
	}
	if task == nil {
		target, err := e.tuneTarget(ctx)
		if err != nil {
			return reconcile.Result{}, err
		}
		if target == "" {
			e.failStep(rem, step, v1alpha1.ReasonTuneFailed, fmt.Sprintf("no Ready control-plane node (labelled %s) whose controller-manager could be tuned", policies.LabelControlPlane), now)
			return reconcile.Result{}, nil
		}
		task = &v1alpha1.NodeTask{
			ObjectMeta: metav1.ObjectMeta{
				Name:   name,
				Labels: map[string]string{v1alpha1.LabelNode: v1alpha1.LabelValue(target), v1alpha1.LabelRemediation: v1alpha1.LabelValue(rem.Name)},
			},
			Spec: v1alpha1.NodeTaskSpec{NodeName: target, Action: v1alpha1.NodeActionEditConfig, Remediation: rem.Name,
				Edit: &v1alpha1.ConfigEdit{
					File: v1alpha1.ConfigFileControllerManagerManifest, Key: v1alpha1.ConfigKeyNodeMonitorGracePeriod,
					Value: want.String(), RaiseOnly: true,
				}},
		}
		if err := controllerutil.SetControllerReference(rem, task, e.Client.Scheme()); err != nil {
			return reconcile.Result{}, err
		}
		klog.FromContext(ctx).Info("Handing the grace-period edit to the node agent", "controlPlaneNode", target, "value", want, "nodeTask", name)
		if err := e.Client.Create(ctx, task); err != nil && !apierrors.IsAlreadyExists(err) {
			return reconcile.Result{}, fmt.Errorf("creating NodeTask %s on %s: %w", name, target, err)
		}
		rem.Status.NodeTask = name
		rem.Status.Tune = &v1alpha1.TuneStatus{Node: target, File: string(v1alpha1.ConfigFileControllerManagerManifest), Key: graceKey}
		step.Message = ""
		return reconcile.Result{RequeueAfter: 5 * time.Second}, nil
	}
	rem.Status.NodeTask = name
	tune := tuneStatus(task)
	rem.Status.Tune = &tune
	switch task.Status.Phase {
	case v1alpha1.TaskSucceeded:
		step.Phase = v1alpha1.StepSucceeded
		step.CompletedAt = completedAt(task, now)
		step.Message = fmt.Sprintf("node agent on %s: %s", task.Spec.NodeName, task.Status.Message)
		return reconcile.Result{}, nil
	case v1alpha1.TaskFailed:
		e.failStep(rem, step, v1alpha1.ReasonTuneFailed, fmt.Sprintf("node agent on %s: %s", task.Spec.NodeName, task.Status.Message), now)
		return reconcile.Result{}, nil
	}
	if now.Sub(step.StartedAt.Time) > tuneTimeout {
		e.failStep(rem, step, v1alpha1.ReasonTuneFailed,
			fmt.Sprintf("the node agent on %s did not finish task %s within %s (task phase %q)", task.Spec.NodeName, task.Name, tuneTimeout, task.Status.Phase), now)
		return reconcile.Result{}, nil
	}
	return reconcile.Result{RequeueAfter: 5 * time.Second}, nil
}

func tuneStatus(task *v1alpha1.NodeTask) v1alpha1.TuneStatus {
	return v1alpha1.TuneStatus{
		Node: task.Spec.NodeName, File: string(v1alpha1.ConfigFileControllerManagerManifest), Key: graceKey,
		Before: task.Status.BeforeValue, After: task.Status.AfterValue, Backup: task.Status.Backup,
	}
}

// leadingDuration reads "2m0s" or "50s (default)".
func leadingDuration(s string) (time.Duration, bool) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, false
	}
	d, err := time.ParseDuration(f[0])
	return d, err == nil
}

func (e *Executor) verifyGrace(ctx context.Context, rem *v1alpha1.Remediation, step *v1alpha1.Step, want time.Duration, now time.Time) (reconcile.Result, error) {
	task := &v1alpha1.NodeTask{}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: TuneTaskName(rem.Name)}, task); err != nil {
		if apierrors.IsNotFound(err) {
			e.failStep(rem, step, v1alpha1.ReasonTuneFailed, fmt.Sprintf("NodeTask %s is gone: nothing to verify against", TuneTaskName(rem.Name)), now)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	tune := tuneStatus(task)
	rem.Status.Tune = &tune
	node, after := task.Spec.NodeName, task.Status.AfterValue
	done := func(reason, msg string) (reconcile.Result, error) {
		step.Phase = v1alpha1.StepSucceeded
		step.CompletedAt = ptr.To(metav1.NewTime(now))
		step.Message = msg
		e.end(rem, v1alpha1.PhaseSucceeded, reason, msg, now)
		return reconcile.Result{}, nil
	}
	if task.Status.Backup == "" {
		// The agent did not edit: the value was already at least the one
		// wanted.
		if got, ok := leadingDuration(after); ok && got >= want {
			return done(v1alpha1.ReasonAlreadyTuned, fmt.Sprintf("%s on %s is already at %s (wanted %s): nothing was edited; nodeward never lowers it", graceKey, node, after, want))
		}
	} else if after == want.String() {
		return done(v1alpha1.ReasonTuned, fmt.Sprintf("%s on %s raised from %s to %s (backup %s on %s); the kubelet restarts kube-controller-manager with it", graceKey, node, task.Status.BeforeValue, after, task.Status.Backup, node))
	}
	e.failStep(rem, step, v1alpha1.ReasonTuneFailed, fmt.Sprintf("%s on %s reads back %q, want %s", graceKey, node, after, want), now)
	return reconcile.Result{}, nil
}
