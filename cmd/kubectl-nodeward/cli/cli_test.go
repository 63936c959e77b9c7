package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const rootUsageText = `kubectl nodeward shows what nodeward diagnosed on nodes and what it did about it.

Usage:
  kubectl nodeward [--kubeconfig PATH] [--context NAME] COMMAND [flags]

Commands:
  history    List remediation records, newest first
  explain    Tell the whole story of one remediation record
  diagnose   Show nodeward's diagnosis of a node and what its policies would do
  snapshot   Write what nodeward's diagnosis of a node reads, for diagnose --snapshot
  causes     List the causes nodeward diagnoses, their evidence rules and the actions a policy may bind (offline)
  approve    Approve a remediation waiting for approval (needs the verb approve on remediations)
  reject     Reject a remediation waiting for approval (needs the verb approve on remediations)

Flags:
  -context string
    	The kubeconfig context to use (default the current context).
  -kubeconfig string
    	Path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config).

Run "kubectl nodeward COMMAND -h" for the flags of a command.
`

func TestMainCommand(t *testing.T) {
	tests := []struct {
		name    string
		argv0   string
		args    []string
		want    string   // all of stdout, when set
		wantOut []string // fragments of stdout
		wantErr string
	}{{
		// Run by kubectl as a plugin, the usage names "kubectl nodeward"
		// and lists the commands.
		name: "usage as a plugin", argv0: "/usr/local/bin/kubectl-nodeward", args: []string{"-h"},
		want: rootUsageText,
	}, {
		// Run under another name, the usage uses that name.
		name: "usage under another name", argv0: "/tmp/kn", args: []string{"-h"},
		wantOut: []string{"Usage:\n  kn [--kubeconfig PATH]"},
	}, {
		// A command's -h shows its synopsis and flags, and is not an error.
		name: "command help", argv0: "kubectl-nodeward", args: []string{"history", "-h"},
		wantOut: []string{"Usage:\n  kubectl nodeward history [--node NODE] [--policy POLICY] [--since DURATION] [-o wide|json|yaml]\n", "-since duration", "-kubeconfig string"},
	}, {
		// Without a command, print the usage and fail.
		name: "no command", argv0: "kubectl-nodeward",
		wantOut: []string{"Commands:"}, wantErr: "no command given",
	}, {
		name: "unknown command", argv0: "kubectl-nodeward", args: []string{"frobnicate"},
		wantErr: `unknown command "frobnicate"; run "kubectl nodeward -h" for usage`,
	}, {
		// Bad flags fail before any cluster is contacted.
		name: "invalid flag value", argv0: "kubectl-nodeward", args: []string{"history", "-o", "xml"},
		wantErr: `--output "xml": must be wide, json or yaml; run "kubectl nodeward history -h" for usage`,
	}, {
		name: "unknown flag", argv0: "kubectl-nodeward", args: []string{"diagnose", "--bogus", "n"},
		wantErr: "flag provided but not defined: -bogus",
	}, {
		// --kubeconfig is honoured before the command...
		name: "kubeconfig before the command", argv0: "kubectl-nodeward", args: []string{"--kubeconfig", "/nonexistent/kubeconfig", "history"},
		wantErr: "/nonexistent/kubeconfig",
	}, {
		// ...and after the command's argument, as kubectl allows.
		name: "kubeconfig after the argument", argv0: "kubectl-nodeward", args: []string{"explain", "rec-1", "--kubeconfig=/nonexistent/other"},
		wantErr: "/nonexistent/other",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Main(context.Background(), tc.argv0, tc.args, IOStreams{Out: &out})
			checkErr(t, err, tc.wantErr)
			checkOutput(t, out.String(), tc.want, tc.wantOut)
			if n := strings.Count(out.String(), "Usage:"); n > 1 {
				t.Errorf("usage printed %d times", n)
			}
		})
	}
}

// TestContext checks that --context picks the cluster: the command fails
// reaching the server of the chosen context, which listens nowhere.
func TestContext(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "http://127.0.0.1:1"}}
- {name: b, cluster: {server: "http://127.0.0.1:2"}}
contexts:
- {name: a, context: {cluster: a}}
- {name: b, context: {cluster: b}}
current-context: a
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = Main(context.Background(), "kubectl-nodeward", []string{"diagnose", "worker-1", "--kubeconfig", kubeconfig, "--context", "b"}, IOStreams{Out: &out})
	checkErr(t, err, "127.0.0.1:2")
}

func TestParseInterspersed(t *testing.T) {
	// Flags may come before, between and after positional arguments.
	var o HistoryOptions
	fs := newTestFlagSet(&o)
	pos, err := parseInterspersed(fs, []string{"a", "--node", "n1", "b", "-o=wide"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pos, ",") != "a,b" || o.Node != "n1" || o.Output != "wide" {
		t.Errorf("positional %q, node %q, output %q; want [a b], n1, wide", pos, o.Node, o.Output)
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		// Ages are kubectl's, with "ago" in timestamps.
		{"timestamp", timestamp(ago(190*time.Second), now), "2026-03-01T11:56:50Z (3m10s ago)"},
		{"no timestamp", timestamp(nil, now), "<none>"},
		// A time slightly in the future (clock skew) is "0s ago", not "<invalid>".
		{"future", timestamp(ago(-5*time.Second), now), "2026-03-01T12:00:05Z (0s ago)"},
		// Durations are whole seconds: the API keeps times to the second.
		{"took", took(ago(75*time.Second), ago(0), now), "1m15s"},
		{"took under a second", took(ago(0), ago(0), now), "<1s"},
		{"still running", took(ago(3*time.Second), nil, now), "running for 3s"},
		{"never started", took(nil, ago(0), now), "<none>"},
		// Multi-line messages stay on one line.
		{"one line", oneLine("a\n  b\tc "), "a b c"},
		// A plugin binary named with underscores maps to dashes, as kubectl does.
		{"plugin name", displayName("kubectl-node_ward"), "kubectl node-ward"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func newTestFlagSet(o *HistoryOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.AddFlags(fs)
	return fs
}
