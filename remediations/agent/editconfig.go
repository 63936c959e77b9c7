package agent

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations/agent/host"
)

// editConfig runs an EditConfig task: it checks the edit itself (closed set,
// bounds, the grace period at least 4x the status update frequency), reads
// the value before, claims the task, writes (with a backup), and reads the
// value back. It restarts nothing: the kubelet picks up a changed static pod
// manifest by itself, but reads its own config only when it starts.
func (r *taskRunner) editConfig(ctx context.Context, task *v1alpha1.NodeTask) error {
	log := klog.FromContext(ctx)
	edit := task.Spec.Edit
	if edit == nil {
		return r.finish(ctx, task, v1alpha1.TaskFailed, "EditConfig task without spec.edit", nil)
	}
	cfg := r.opts.Config
	if cfg == nil {
		return r.finish(ctx, task, v1alpha1.TaskFailed, "this agent has no config access (started without config file paths); nothing was edited", nil)
	}
	want, note, err := host.CheckConfigEdit(ctx, cfg, *edit)
	if err != nil {
		return r.finish(ctx, task, v1alpha1.TaskFailed, fmt.Sprintf("the agent refuses to set %s to %s: %v; nothing was edited", edit.Key, edit.Value, err), nil)
	}
	value := want.String()
	raw, err := cfg.ReadConfig(ctx, edit.File, edit.Key)
	if err != nil {
		return r.finish(ctx, task, v1alpha1.TaskFailed, fmt.Sprintf("reading %s from %s: %v; nothing was edited", edit.Key, edit.File, err), nil)
	}
	current, err := host.EffectiveConfigValue(edit.Key, raw)
	if err != nil {
		return r.finish(ctx, task, v1alpha1.TaskFailed, fmt.Sprintf("%s: %v; nothing was edited", edit.File, err), nil)
	}
	before := host.DisplayConfigValue(edit.Key, raw)
	task.Status.BeforeValue = before
	if (edit.RaiseOnly && current >= want) || raw == value {
		task.Status.AfterValue = before
		msg := fmt.Sprintf("%s in %s is already %s", edit.Key, edit.File, before)
		if edit.RaiseOnly && current > want {
			msg += fmt.Sprintf(", more than %s; it is never lowered", value)
		}
		return r.finish(ctx, task, v1alpha1.TaskSucceeded, msg+": not edited", nil)
	}

	// Claim the task before touching the file (see run).
	task.Status.Phase = v1alpha1.TaskRunning
	task.Status.StartedAt = ptr.To(metav1.NewTime(r.opts.Clock.Now()))
	if err := r.c.Status().Update(ctx, task); err != nil {
		return fmt.Errorf("claiming task: %w", err)
	}
	log.Info("Editing config", "file", edit.File, "key", edit.Key, "before", before, "value", value)
	actx, cancel := context.WithTimeout(ctx, r.opts.ActionTimeout)
	backup, err := cfg.WriteConfig(actx, edit.File, edit.Key, value)
	cancel()
	task.Status.Backup = backup
	if err != nil {
		return r.finish(ctx, task, v1alpha1.TaskFailed, fmt.Sprintf("setting %s in %s to %s: %v", edit.Key, edit.File, value, err), nil)
	}
	afterRaw, err := cfg.ReadConfig(ctx, edit.File, edit.Key)
	if err != nil {
		return r.finish(ctx, task, v1alpha1.TaskFailed, fmt.Sprintf("set %s in %s to %s, but reading it back failed: %v (backup %s)", edit.Key, edit.File, value, err, backup), nil)
	}
	task.Status.AfterValue = host.DisplayConfigValue(edit.Key, afterRaw)
	if afterRaw != value {
		return r.finish(ctx, task, v1alpha1.TaskFailed, fmt.Sprintf("set %s in %s to %s, but it reads back as %q (backup %s)", edit.Key, edit.File, value, afterRaw, backup), nil)
	}
	msg := fmt.Sprintf("set %s in %s from %s to %s; backup %s", edit.Key, edit.File, before, value, backup)
	switch edit.File {
	case v1alpha1.ConfigFileControllerManagerManifest:
		msg += "; the kubelet restarts the kube-controller-manager static pod by itself when its manifest changes"
	case v1alpha1.ConfigFileKubeletConfig:
		msg += "; the kubelet reads its config only when it starts: the new value applies after a kubelet restart (systemctl restart kubelet), which this task does not do"
	}
	if note != "" {
		msg += "; note: " + note
	}
	return r.finish(ctx, task, v1alpha1.TaskSucceeded, msg, nil)
}
