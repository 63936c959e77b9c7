package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

const succeededStory = `Remediation: worker-1-kubeletdown-1
Created:     2026-03-01T11:50:00Z (10m ago)
Node:        worker-1
Cause:       KubeletDown since 2026-03-01T11:49:50Z (10m ago)
Policy:      restart-dead-kubelet (generation 3)
Mode:        Automatic
Action:      RestartKubelet (recovery timeout 2m0s)

Evidence:
  ✓ NodeReport     kubelet.service is inactive (dead), disabled (observed 10m ago)
  ✓ Lease          Lease not renewed for 40s (the kubelet renews every 10s) (observed 10m ago)
  ✗ NodeCondition  Ready=True: the node lifecycle controller has not noticed yet

Steps:
  1. RestartUnit: Succeeded
     What:        ask the node agent on worker-1 to restart the kubelet unit (systemctl restart)
     Started:     2026-03-01T11:51:01Z (8m59s ago)
     Completed:   2026-03-01T11:51:02Z (8m58s ago)
     Took:        1s
     Message:     node agent: restarted kubelet.service (was inactive/dead)
  2. WaitForRecovery: Succeeded
     What:        wait up to 2m0s for Ready=True and a Lease renewed after the restart
     Started:     2026-03-01T11:51:02Z (8m58s ago)
     Completed:   2026-03-01T11:51:14Z (8m46s ago)
     Took:        12s
     Message:     node Ready after 12s; Lease renewed at 2026-03-01T11:51:13Z

Outcome:
  Phase:       Succeeded
  Reason:      Recovered
  Message:     node worker-1 recovered 12s after the action
  Started:     2026-03-01T11:51:00Z (9m ago)
  Completed:   2026-03-01T11:51:14Z (8m46s ago)
  Took:        14s

Node task:
  Name:        worker-1-kubeletdown-1
  Action:      RestartUnit kubelet
  Phase:       Succeeded
  Started:     2026-03-01T11:51:01Z (8m59s ago)
  Completed:   2026-03-01T11:51:02Z (8m58s ago)
  Took:        1s
  Message:     restarted kubelet.service (was inactive/dead); the unit is disabled, so it will not start at the next boot: a person should run ` + "`systemctl enable kubelet.service`" + `
  Before:      kubelet.service inactive/dead, disabled, since 2026-03-01T11:49:49Z (10m ago)
  After:       kubelet.service active/running, disabled, since 2026-03-01T11:51:02Z (8m58s ago)
`

func TestExplain(t *testing.T) {
	ok := succeeded(remediation("worker-1-kubeletdown-1", "worker-1", "restart-dead-kubelet", v1alpha1.ModeAutomatic, 10*time.Minute), 9*time.Minute)

	dryRun := remediation("worker-2-kubeletdown-2", "worker-2", "watch-kubelet", v1alpha1.ModeDryRun, 5*time.Minute)
	dryRun.Status = v1alpha1.RemediationStatus{
		Phase: v1alpha1.PhaseSkipped, Reason: v1alpha1.ReasonDryRun, CompletedAt: ago(5 * time.Minute),
		Message: "dry run: would have run RestartKubelet on node worker-2; nothing was touched",
		Steps: []v1alpha1.Step{
			{Name: v1alpha1.StepRestartUnit, Phase: v1alpha1.StepSkipped, Message: "dry run: not carried out"},
			{Name: v1alpha1.StepWaitForRecovery, Phase: v1alpha1.StepSkipped, Message: "dry run: not carried out"},
		},
	}

	running := remediation("worker-3-kubeletdown-3", "worker-3", "restart-dead-kubelet", v1alpha1.ModeAutomatic, 2*time.Minute)
	running.Status = v1alpha1.RemediationStatus{
		Phase: v1alpha1.PhaseRunning, NodeTask: "worker-3-kubeletdown-3", StartedAt: ago(100 * time.Second),
		Steps: []v1alpha1.Step{
			{Name: v1alpha1.StepRestartUnit, Phase: v1alpha1.StepRunning, StartedAt: ago(95 * time.Second)},
			{Name: v1alpha1.StepWaitForRecovery, Phase: v1alpha1.StepPending},
		},
	}

	notified := remediation("worker-5-kerneldeadlock-5", "worker-5", "kernel-notify", v1alpha1.ModeAutomatic, time.Minute)
	notified.Spec.Cause, notified.Spec.Action = v1alpha1.CauseKernelDeadlock, v1alpha1.Action{Type: v1alpha1.ActionNotify}
	notified.Status = v1alpha1.RemediationStatus{
		Phase: v1alpha1.PhaseSucceeded, Reason: v1alpha1.ReasonNotified, StartedAt: ago(time.Minute), CompletedAt: ago(time.Minute),
		Message: "no action was taken: KernelDeadlock on worker-5; a person is needed: kernel tasks hang",
		Steps:   []v1alpha1.Step{{Name: v1alpha1.StepNotify, Phase: v1alpha1.StepSucceeded, Message: "KernelDeadlock on worker-5; a person is needed: kernel tasks hang"}},
	}

	cordoned := remediation("worker-6-readonlyfilesystem-6", "worker-6", "fs-cordon", v1alpha1.ModeAutomatic, time.Minute)
	cordoned.Spec.Cause, cordoned.Spec.Action = v1alpha1.CauseReadonlyFilesystem, v1alpha1.Action{Type: v1alpha1.ActionCordon}
	cordoned.Status = v1alpha1.RemediationStatus{
		Phase: v1alpha1.PhaseSucceeded, Reason: v1alpha1.ReasonCordoned, StartedAt: ago(time.Minute), CompletedAt: ago(time.Minute),
		Steps: []v1alpha1.Step{{Name: v1alpha1.StepCordon, Phase: v1alpha1.StepSucceeded}},
		Drain: &v1alpha1.DrainStatus{Cordoned: true},
	}

	fresh := remediation("worker-4-kubeletdown-4", "worker-4", "restart-dead-kubelet", v1alpha1.ModeAutomatic, time.Second)
	fresh.Spec.Evidence = nil

	tests := []struct {
		name    string
		objs    []client.Object
		record  string
		want    string   // the whole output, when set
		wantIn  []string // lines the output must contain, when want is not set
		wantErr string
	}{{
		// The whole story of a restart that worked: decision, evidence both
		// ways, both steps with times and durations, outcome, and the agent's
		// task with the kubelet's state before and after.
		name: "succeeded with node task", objs: []client.Object{ok, nodeTask(ok, 9*time.Minute)}, record: ok.Name,
		want: succeededStory,
	}, {
		// A dry run skips every step, never starts, and hands nothing to the
		// agent.
		name: "dry run", objs: []client.Object{dryRun}, record: dryRun.Name,
		wantIn: []string{
			"Mode:        DryRun",
			"  1. RestartUnit: Skipped\n     Started:     <none>\n     Completed:   <none>\n     Took:        <none>\n     Message:     dry run: not carried out\n",
			"  Phase:       Skipped\n  Reason:      DryRun\n  Message:     dry run: would have run RestartKubelet on node worker-2; nothing was touched\n  Started:     <none>\n  Completed:   2026-03-01T11:55:00Z (5m ago)\n",
			"Node task:\n  none: nothing was handed to the node agent\n",
		},
	}, {
		// A record in flight: the running step and the record show how long
		// they have been running; the task it names is already gone.
		name: "running, task gone", objs: []client.Object{running}, record: running.Name,
		wantIn: []string{
			"  1. RestartUnit: Running\n     Started:     2026-03-01T11:58:25Z (95s ago)\n     Completed:   <none>\n     Took:        running for 1m35s\n",
			"  2. WaitForRecovery: Pending\n",
			"  Phase:       Running\n  Reason:      <none>\n  Message:     <none>\n",
			"  Took:        running for 1m40s\n",
			"  worker-3-kubeletdown-3: not found (deleted, or garbage-collected with an earlier record)\n",
		},
	}, {
		// A Notify says it touched nothing and that a person is needed.
		name: "notify", objs: []client.Object{notified}, record: notified.Name,
		wantIn: []string{
			"Action:      Notify (touches nothing: names the cause and its evidence and tells a person)\n",
			"  1. Notify: Succeeded\n",
			"  Reason:      Notified\n  Message:     no action was taken: KernelDeadlock on worker-5; a person is needed: kernel tasks hang\n",
			"Node task:\n  none: nothing was handed to the node agent\n",
		},
	}, {
		// A Cordon without uncordonAfter leaves nodeward's cordon in place.
		name: "cordon", objs: []client.Object{cordoned}, record: cordoned.Name,
		wantIn: []string{
			"Action:      Cordon (no pod is evicted; the node stays cordoned)\n",
			"Cordon:\n  cordoned by nodeward (nodeward.io/cordoned-by=worker-6-readonlyfilesystem-6); still cordoned unless someone changed it\n",
			"  Reason:      Cordoned\n",
		},
	}, {
		// A record the executor has not seen yet: no phase, no steps, no evidence.
		name: "not yet planned", objs: []client.Object{fresh}, record: fresh.Name,
		wantIn: []string{"Evidence:\n  none recorded\n", "Steps:\n  none planned yet\n", "  Phase:       <none>\n"},
	}, {
		// A name that does not exist is an error that names it.
		name: "no such record", record: "nope", wantErr: `remediation "nope" not found`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, out := testEnv(t, tc.objs...)
			o := &ExplainOptions{Env: env}
			if err := o.Validate([]string{tc.record}); err != nil {
				t.Fatal(err)
			}
			err := o.Run(context.Background())
			checkErr(t, err, tc.wantErr)
			checkOutput(t, out.String(), tc.want, tc.wantIn)
		})
	}
}

func TestExplainValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		// The record's name is required...
		{"no name", nil, "exactly one argument"},
		// ...and only one.
		{"two names", []string{"a", "b"}, "exactly one argument"},
		{"one name", []string{"a"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, (&ExplainOptions{}).Validate(tc.args), tc.wantErr)
		})
	}
}

// checkErr fails unless err contains want, or is nil when want is empty.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("error = %v, want one containing %q", err, want)
	}
}

// checkOutput compares the whole output with want when set, and otherwise
// looks for every fragment of wantIn.
func checkOutput(t *testing.T, got, want string, wantIn []string) {
	t.Helper()
	if want != "" && got != want {
		t.Errorf("output differs\n--- got:\n%s\n--- want:\n%s", got, want)
	}
	for _, w := range wantIn {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks\n%s\n--- got:\n%s", w, got)
		}
	}
}
