package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/operator/diagnosis"
	"github.com/nodeward/nodeward/policies"
)

// DiagnoseOptions shows nodeward's view of one node, or diagnoses a
// snapshot offline.
type DiagnoseOptions struct {
	*Env
	Node string
	// Snapshot is a NodeSnapshot file to diagnose instead of a live node.
	Snapshot string
}

func (o *DiagnoseOptions) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Snapshot, "snapshot", "", "Diagnose this NodeSnapshot file (from `snapshot`, or written by hand) offline, with the default thresholds.")
}

func (o *DiagnoseOptions) Validate(args []string) error {
	if o.Snapshot != "" {
		if len(args) != 0 {
			return errors.New("diagnose --snapshot takes no node name: the snapshot names its node")
		}
		return nil
	}
	if len(args) != 1 {
		return errors.New("diagnose takes exactly one argument: the name of a node")
	}
	o.Node = args[0]
	return nil
}

// Offline: a snapshot needs no cluster.
func (o *DiagnoseOptions) Offline() bool { return o.Snapshot != "" }

// nodeView is everything diagnose shows about a node.
type nodeView struct {
	Node      *corev1.Node
	Diagnosis *v1alpha1.NodeDiagnosis // nil: nodeward finds the node healthy
	Report    *v1alpha1.NodeReport    // nil: the agent never reported
	Policies  []v1alpha1.RemediationPolicy
	// Snapshot, when set, says the view is an offline diagnosis of it: no
	// policies were read.
	Snapshot *diagnosis.Snapshot
}

func (o *DiagnoseOptions) Run(ctx context.Context) error {
	if o.Snapshot != "" {
		return o.runSnapshot()
	}
	key := client.ObjectKey{Name: o.Node}
	v := nodeView{Node: &corev1.Node{}}
	if err := o.Client.Get(ctx, key, v.Node); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("node %q not found", o.Node)
		}
		return err
	}
	diag := &v1alpha1.NodeDiagnosis{}
	if err := getOptional(ctx, o.Client, key, diag); err != nil {
		return err
	} else if diag.Name != "" {
		v.Diagnosis = diag
	}
	report := &v1alpha1.NodeReport{}
	if err := getOptional(ctx, o.Client, key, report); err != nil {
		return err
	} else if report.Name != "" {
		v.Report = report
	}
	if v.Diagnosis != nil && len(v.Diagnosis.Status.Causes) > 0 {
		list := &v1alpha1.RemediationPolicyList{}
		if err := o.Client.List(ctx, list); err != nil {
			return fmt.Errorf("listing remediation policies: %w", err)
		}
		v.Policies = list.Items
	}
	return printDiagnose(o.Out, v, o.Clock.Now())
}

// getOptional reads an object that may not exist; obj keeps an empty name
// when it doesn't.
func getOptional(ctx context.Context, c client.Client, key client.ObjectKey, obj client.Object) error {
	if err := c.Get(ctx, key, obj); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// runSnapshot diagnoses a snapshot with the operator's code and default
// thresholds, and prints it as the live command prints a node, as of the
// snapshot's takenAt.
func (o *DiagnoseOptions) runSnapshot() error {
	data, err := os.ReadFile(o.Snapshot)
	if err != nil {
		return err
	}
	s, err := diagnosis.ParseSnapshot(data)
	if err != nil {
		return fmt.Errorf("%s: %w", o.Snapshot, err)
	}
	in := s.Input()
	res := diagnosis.Diagnose(in, diagnosis.DefaultThresholds())
	v := nodeView{Node: in.Node, Report: in.Report, Snapshot: s}
	if res.Unhealthy {
		res.Status.LastDiagnosed = &s.TakenAt
		v.Diagnosis = &v1alpha1.NodeDiagnosis{ObjectMeta: metav1.ObjectMeta{Name: in.Node.Name}, Status: res.Status}
	}
	return printDiagnose(o.Out, v, in.Now)
}

func printDiagnose(w io.Writer, v nodeView, now time.Time) error {
	var b strings.Builder
	if v.Snapshot != nil {
		unknown := "nothing"
		if len(v.Snapshot.Unknown) > 0 {
			unknown = strings.Join(v.Snapshot.Unknown, ", ")
		}
		field(&b, "", "Snapshot", fmt.Sprintf("taken at %s, diagnosed offline with the default thresholds; unknown: %s",
			v.Snapshot.TakenAt.UTC().Format(time.RFC3339), unknown))
	}
	field(&b, "", "Node", v.Node.Name)
	field(&b, "", "Ready", readyLine(v.Node, now))
	if v.Diagnosis == nil {
		field(&b, "", "Diagnosis", "none: the node is healthy according to nodeward")
	} else {
		printDiagnosis(&b, v, now)
	}
	b.WriteString("\n")
	printReport(&b, v.Report, now)
	_, err := io.WriteString(w, b.String())
	return err
}

func printDiagnosis(b *strings.Builder, v nodeView, now time.Time) {
	st := &v.Diagnosis.Status
	field(b, "", "Diagnosis", orNone(oneLine(st.Summary)))
	field(b, "", "Diagnosed", timestamp(st.LastDiagnosed, now))

	b.WriteString("\nChecks:\n")
	for _, c := range st.Checks {
		fmt.Fprintf(b, "  %s\n", evidenceLine(c, now))
	}

	b.WriteString("\nCauses, most likely first:\n")
	if len(st.Causes) == 0 {
		b.WriteString("  none identified\n")
		return
	}
	// The operator acts on one cause at a time: the first one a policy takes.
	acted, _ := policies.Select(v.Policies, v.Node, st.Causes)
	for i, c := range st.Causes {
		fmt.Fprintf(b, "  %d. %s since %s\n", i+1, c.Cause, timestamp(&c.Since, now))
		for _, e := range c.Evidence {
			fmt.Fprintf(b, "     %s\n", evidenceLine(e, now))
		}
		line := "no policy covers this cause"
		if v.Snapshot != nil {
			line = "policies not read (offline snapshot)"
		}
		if m, ok := policies.Select(v.Policies, v.Node, []v1alpha1.DiagnosedCause{c}); ok {
			line = suggestion(m, now)
			if acted != nil && acted.Cause.Cause == c.Cause {
				line += "; this is the cause nodeward acts on"
			}
		}
		fmt.Fprintf(b, "     Suggested action: %s\n", line)
		for _, broken := range brokenPolicies(v, c.Cause) {
			fmt.Fprintf(b, "     %s\n", broken)
		}
	}
}

// suggestion reads "RestartKubelet (Automatic) by policy p (priority 10), once the cause has lasted 10s".
func suggestion(m *policies.Match, now time.Time) string {
	p := m.Policy
	mode := p.Spec.Mode
	if mode == "" {
		mode = v1alpha1.ModeDryRun // the API default
	}
	s := fmt.Sprintf("%s (%s) by policy %s (priority %d)", p.Spec.Action.Type, mode, p.Name, p.Spec.Priority)
	if m.For > 0 {
		s += fmt.Sprintf(", once the cause has lasted %s", m.For)
		if due := m.Cause.Since.Add(m.For); due.After(now) {
			s += fmt.Sprintf(" (in %s)", formatDuration(due.Sub(now)))
		}
	}
	return s
}

func readyLine(node *corev1.Node, now time.Time) string {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return fmt.Sprintf("%s since %s, %s: %s", c.Status, timestamp(&c.LastTransitionTime, now), orNone(c.Reason), orNone(oneLine(c.Message)))
		}
	}
	return "unknown: the node has no Ready condition"
}

func printReport(b *strings.Builder, r *v1alpha1.NodeReport, now time.Time) {
	if r == nil {
		b.WriteString("Node agent:  no NodeReport for this node: the agent is not installed or has never run here\n")
		return
	}
	st := &r.Status
	heartbeat := timestamp(&st.HeartbeatTime, now)
	silentAfter := time.Duration(diagnosis.DefaultThresholds().AgentSilentAfter) * st.ReportInterval.Duration
	if silentAfter > 0 && now.Sub(st.HeartbeatTime.Time) >= silentAfter {
		heartbeat += fmt.Sprintf(": SILENT, no report for over %s", silentAfter)
	}
	b.WriteString("Node agent (NodeReport " + r.Name + "):\n")
	field(b, "  ", "Version", orNone(st.AgentVersion))
	field(b, "  ", "Heartbeat", heartbeat)
	field(b, "  ", "Interval", st.ReportInterval.Duration.String())
	b.WriteString("  Units:\n")
	if len(st.Units) == 0 {
		b.WriteString("    none reported\n")
	}
	for _, u := range st.Units {
		fmt.Fprintf(b, "    %s %-17s %s\n", mark(u.Active()), u.Name, unitState(u, now))
	}
}

// brokenPolicies names the policies that cover the node and list the cause
// but can't act (their Ready is False), with why: one whose selector can't
// be read is skipped (it covers no node), and a person reading "no policy
// covers this cause" must learn which policy was meant to; any other holds
// its records, and a person must learn why nothing runs.
func brokenPolicies(v nodeView, cause v1alpha1.Cause) []string {
	var out []string
	for i := range v.Policies {
		p := &v.Policies[i]
		if p.Spec.Paused || !p.DeletionTimestamp.IsZero() || !slices.ContainsFunc(p.Spec.Causes, func(m v1alpha1.CauseMatch) bool { return m.Cause == cause }) {
			continue
		}
		pr := policies.CheckPolicy(p)
		if pr == nil {
			continue
		}
		if _, cp := v.Node.Labels[policies.LabelControlPlane]; (cp && !p.Spec.IncludeControlPlane) || v.Node.Labels[v1alpha1.LabelExclude] == "true" {
			continue
		}
		what := "Held" // it still decides, and Admit holds its records
		if pr.Reason == v1alpha1.PolicyReasonInvalidNodeSelector {
			what = "Skipped"
		}
		out = append(out, fmt.Sprintf("%s: policy %s can't act (%s): %s", what, p.Name, pr.Reason, pr.Message))
	}
	return out
}
