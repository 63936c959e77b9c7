package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func TestHistory(t *testing.T) {
	// Three records on two nodes under two policies, created 3d, 3h and
	// 10m ago, and one still running.
	old := succeeded(remediation("worker-1-kubeletdown-1", "worker-1", "restart-dead-kubelet", v1alpha1.ModeAutomatic, 72*time.Hour), 72*time.Hour-time.Minute)
	dry := remediation("worker-2-kubeletdown-2", "worker-2", "watch-kubelet", v1alpha1.ModeDryRun, 3*time.Hour)
	dry.Status = v1alpha1.RemediationStatus{Phase: v1alpha1.PhaseSkipped, Reason: v1alpha1.ReasonDryRun, CompletedAt: ago(3 * time.Hour),
		Message: "dry run: would have run RestartKubelet on node worker-2; nothing was touched"}
	recent := succeeded(remediation("worker-1-kubeletdown-3", "worker-1", "restart-dead-kubelet", v1alpha1.ModeAutomatic, 10*time.Minute), 9*time.Minute)
	running := remediation("worker-3-kubeletdown-4", "worker-3", "restart-dead-kubelet", v1alpha1.ModeAutomatic, 30*time.Second)
	running.Status = v1alpha1.RemediationStatus{Phase: v1alpha1.PhaseRunning, StartedAt: ago(25 * time.Second)}
	all := []client.Object{old, dry, recent, running}

	tests := []struct {
		name    string
		opts    HistoryOptions
		objs    []client.Object
		want    string
		wantErr string
	}{{
		// Every record, newest first; a running record has no reason yet.
		name: "all", objs: all,
		want: `NAME                     NODE       CAUSE         ACTION           MODE        PHASE       REASON      AGE
worker-3-kubeletdown-4   worker-3   KubeletDown   RestartKubelet   Automatic   Running     <none>      30s
worker-1-kubeletdown-3   worker-1   KubeletDown   RestartKubelet   Automatic   Succeeded   Recovered   10m
worker-2-kubeletdown-2   worker-2   KubeletDown   RestartKubelet   DryRun      Skipped     DryRun      3h
worker-1-kubeletdown-1   worker-1   KubeletDown   RestartKubelet   Automatic   Succeeded   Recovered   3d
`,
	}, {
		// --node selects by the nodeward.io/node label.
		name: "node", objs: all, opts: HistoryOptions{Node: "worker-1"},
		want: `NAME                     NODE       CAUSE         ACTION           MODE        PHASE       REASON      AGE
worker-1-kubeletdown-3   worker-1   KubeletDown   RestartKubelet   Automatic   Succeeded   Recovered   10m
worker-1-kubeletdown-1   worker-1   KubeletDown   RestartKubelet   Automatic   Succeeded   Recovered   3d
`,
	}, {
		// --policy selects by the nodeward.io/policy label.
		name: "policy", objs: all, opts: HistoryOptions{Policy: "watch-kubelet"},
		want: `NAME                     NODE       CAUSE         ACTION           MODE     PHASE     REASON   AGE
worker-2-kubeletdown-2   worker-2   KubeletDown   RestartKubelet   DryRun   Skipped   DryRun   3h
`,
	}, {
		// --since keeps records created within the window; combined with --node.
		name: "since and node", objs: all, opts: HistoryOptions{Since: 24 * time.Hour, Node: "worker-1"},
		want: `NAME                     NODE       CAUSE         ACTION           MODE        PHASE       REASON      AGE
worker-1-kubeletdown-3   worker-1   KubeletDown   RestartKubelet   Automatic   Succeeded   Recovered   10m
`,
	}, {
		// wide adds the policy, how long the record ran (or has been
		// running) and its message; a dry run never started.
		name: "wide", objs: all, opts: HistoryOptions{Output: "wide", Since: 24 * time.Hour},
		want: `NAME                     NODE       CAUSE         ACTION           MODE        PHASE       REASON      AGE   POLICY                 DURATION          MESSAGE
worker-3-kubeletdown-4   worker-3   KubeletDown   RestartKubelet   Automatic   Running     <none>      30s   restart-dead-kubelet   running for 25s   <none>
worker-1-kubeletdown-3   worker-1   KubeletDown   RestartKubelet   Automatic   Succeeded   Recovered   10m   restart-dead-kubelet   14s               node worker-1 recovered 12s after the action
worker-2-kubeletdown-2   worker-2   KubeletDown   RestartKubelet   DryRun      Skipped     DryRun      3h    watch-kubelet          <none>            dry run: would have run RestartKubelet on node worker-2; nothing was touched
`,
	}, {
		// Nothing matches: say so rather than print an empty table.
		name: "none", objs: all, opts: HistoryOptions{Node: "worker-9"},
		want: "No remediations found.\n",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, out := testEnv(t, tc.objs...)
			o := tc.opts
			o.Env = env
			if err := o.Validate(nil); err != nil {
				t.Fatal(err)
			}
			checkErr(t, o.Run(context.Background()), tc.wantErr)
			checkOutput(t, out.String(), tc.want, nil)
		})
	}
}

// TestHistoryStructured checks that json and yaml are a RemediationList that
// reads back, in the given order, typed, and without managedFields.
func TestHistoryStructured(t *testing.T) {
	b := remediation("b", "worker-1", "p", v1alpha1.ModeAutomatic, time.Minute)
	b.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "nodeward-operator", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "nodeward.io/v1alpha1"}}
	a := remediation("a", "worker-1", "p", v1alpha1.ModeAutomatic, time.Hour)
	for _, output := range []string{"json", "yaml"} {
		t.Run(output, func(t *testing.T) {
			var out bytes.Buffer
			if err := printHistory(&out, []v1alpha1.Remediation{*b, *a}, output, now); err != nil {
				t.Fatal(err)
			}
			var list v1alpha1.RemediationList
			unmarshal := json.Unmarshal
			if output == "yaml" {
				unmarshal = func(d []byte, v any) error { return yaml.UnmarshalStrict(d, v) }
			}
			if err := unmarshal(out.Bytes(), &list); err != nil {
				t.Fatalf("%s does not read back: %v\n%s", output, err, out.String())
			}
			if list.Kind != "RemediationList" || list.APIVersion != "nodeward.io/v1alpha1" {
				t.Errorf("list is %s %s, want nodeward.io/v1alpha1 RemediationList", list.APIVersion, list.Kind)
			}
			if len(list.Items) != 2 || list.Items[0].Name != "b" || list.Items[1].Name != "a" {
				t.Fatalf("items = %v, want b then a", list.Items)
			}
			for _, r := range list.Items {
				if r.Kind != "Remediation" || len(r.ManagedFields) != 0 || r.Spec.Policy != "p" {
					t.Errorf("item %s: kind %q, %d managedFields, policy %q", r.Name, r.Kind, len(r.ManagedFields), r.Spec.Policy)
				}
			}
			if len(b.ManagedFields) != 1 {
				t.Error("printing changed the caller's record")
			}
		})
	}
}

// longNode has 253 characters; longNode's label value is a node name too, of
// a node whose records must not show up for longNode (and the other way
// round). longPolicy has 70 characters.
var (
	longNode   = strings.Repeat(strings.Repeat("n", 62)+".", 4) + "z"
	longPolicy = "restart-dead-kubelets-on-every-worker-pool-in-every-zone-of-the-fleet1"
)

// --node and --policy take names of any legal length; records of a node or
// policy whose label value is the same are not shown.
func TestHistoryLongNames(t *testing.T) {
	twin := v1alpha1.LabelValue(longNode)
	if len(longNode) != 253 || twin == longNode {
		t.Fatalf("longNode has %d chars, label value %q", len(longNode), twin)
	}
	objs := []client.Object{
		remediation("long-kubeletdown-1", longNode, longPolicy, v1alpha1.ModeAutomatic, time.Minute),
		remediation("twin-kubeletdown-2", twin, v1alpha1.LabelValue(longPolicy), v1alpha1.ModeAutomatic, time.Hour),
	}
	for _, tc := range []struct {
		name string
		opts HistoryOptions
		want string
	}{
		{"long node", HistoryOptions{Node: longNode}, "long-kubeletdown-1"},
		{"its label value as a node name", HistoryOptions{Node: twin}, "twin-kubeletdown-2"},
		{"long policy", HistoryOptions{Policy: longPolicy}, "long-kubeletdown-1"},
		{"its label value as a policy name", HistoryOptions{Policy: v1alpha1.LabelValue(longPolicy)}, "twin-kubeletdown-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, out := testEnv(t, objs...)
			o := tc.opts
			o.Env, o.Output = env, "json"
			if err := o.Validate(nil); err != nil {
				t.Fatal(err)
			}
			if err := o.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			var list v1alpha1.RemediationList
			if err := json.Unmarshal(out.Bytes(), &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 1 || list.Items[0].Name != tc.want {
				var got []string
				for _, r := range list.Items {
					got = append(got, r.Name)
				}
				t.Fatalf("records %v, want only %s", got, tc.want)
			}
		})
	}
}

func TestHistoryValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    HistoryOptions
		args    []string
		wantErr string
	}{
		// The defaults list everything as a table.
		{name: "defaults"},
		// Every output format is accepted.
		{name: "wide", opts: HistoryOptions{Output: "wide"}},
		{name: "yaml", opts: HistoryOptions{Output: "yaml", Node: "worker-1", Policy: "p", Since: time.Hour}},
		// An unknown format is refused before the cluster is asked.
		{name: "bad output", opts: HistoryOptions{Output: "xml"}, wantErr: `--output "xml": must be wide, json or yaml`},
		// A window into the future makes no sense.
		{name: "negative since", opts: HistoryOptions{Since: -time.Hour}, wantErr: "--since must not be negative"},
		// A node name that can't be a node's name can't select anything.
		{name: "bad node", opts: HistoryOptions{Node: "a b"}, wantErr: `--node "a b"`},
		{name: "bad policy", opts: HistoryOptions{Policy: "-p"}, wantErr: `--policy "-p"`},
		// Names longer than a label value are names all the same.
		{name: "long names", opts: HistoryOptions{Node: longNode, Policy: longPolicy}},
		// history has no positional arguments.
		{name: "argument", args: []string{"worker-1"}, wantErr: "history takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, tc.opts.Validate(tc.args), tc.wantErr)
		})
	}
}
