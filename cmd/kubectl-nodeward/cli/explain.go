package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations"
)

// ExplainOptions tells the story of one Remediation record.
type ExplainOptions struct {
	*Env
	Name string
}

func (o *ExplainOptions) AddFlags(*flag.FlagSet) {}

func (o *ExplainOptions) Validate(args []string) error {
	if len(args) != 1 {
		return errors.New("explain takes exactly one argument: the name of a Remediation (see history)")
	}
	o.Name = args[0]
	return nil
}

func (o *ExplainOptions) Run(ctx context.Context) error {
	rem := &v1alpha1.Remediation{}
	if err := o.Client.Get(ctx, client.ObjectKey{Name: o.Name}, rem); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("remediation %q not found", o.Name)
		}
		return err
	}
	var task *v1alpha1.NodeTask
	if rem.Status.NodeTask != "" {
		task = &v1alpha1.NodeTask{}
		if err := o.Client.Get(ctx, client.ObjectKey{Name: rem.Status.NodeTask}, task); err != nil {
			if !apierrors.IsNotFound(err) {
				return err
			}
			task = nil
		}
	}
	return printExplain(o.Out, rem, task, o.Clock.Now())
}

// printExplain writes a record from decision to outcome. task is the record's
// NodeTask, nil when there is none or it is gone.
func printExplain(w io.Writer, rem *v1alpha1.Remediation, task *v1alpha1.NodeTask, now time.Time) error {
	var b strings.Builder
	s := &rem.Spec
	field(&b, "", "Remediation", rem.Name)
	field(&b, "", "Created", timestamp(&rem.CreationTimestamp, now))
	field(&b, "", "Node", s.NodeName)
	field(&b, "", "Cause", fmt.Sprintf("%s since %s", s.Cause, timestamp(&s.CauseSince, now)))
	field(&b, "", "Policy", fmt.Sprintf("%s (generation %d)", s.Policy, s.PolicyGeneration))
	field(&b, "", "Mode", string(s.Mode))
	field(&b, "", "Action", actionLine(s.Action))

	b.WriteString("\nEvidence:\n")
	if len(s.Evidence) == 0 {
		b.WriteString("  none recorded\n")
	}
	for _, e := range s.Evidence {
		fmt.Fprintf(&b, "  %s\n", evidenceLine(e, now))
	}

	b.WriteString("\nSteps:\n")
	if len(rem.Status.Steps) == 0 {
		b.WriteString("  none planned yet\n")
	}
	for i, st := range rem.Status.Steps {
		fmt.Fprintf(&b, "  %d. %s: %s\n", i+1, st.Name, st.Phase)
		if st.Description != "" {
			field(&b, "     ", "What", st.Description)
		}
		field(&b, "     ", "Started", timestamp(st.StartedAt, now))
		field(&b, "     ", "Completed", timestamp(st.CompletedAt, now))
		field(&b, "     ", "Took", took(st.StartedAt, st.CompletedAt, now))
		if st.Message != "" {
			field(&b, "     ", "Message", oneLine(st.Message))
		}
	}

	if d := rem.Status.Drain; d != nil && d.Plan != nil {
		writeDrainPlan(&b, d.Plan, now)
	}

	if s.Mode == v1alpha1.ModeRequireApproval {
		b.WriteString("\nApproval:\n")
		if a := rem.Approval; a == nil {
			b.WriteString("  not decided yet\n")
		} else {
			field(&b, "  ", "Decision", string(a.Decision))
			field(&b, "  ", "By", a.DecidedBy)
			field(&b, "  ", "At", timestamp(&a.DecidedAt, now))
			field(&b, "  ", "Reason", oneLine(a.Reason))
		}
	}

	st := &rem.Status
	if d := st.Drain; d != nil && (s.Action.Type == v1alpha1.ActionCordon || s.Action.Type == v1alpha1.ActionCordonDrain) && stepDone(rem, v1alpha1.StepCordon) {
		b.WriteString("\nCordon:\n")
		switch {
		case !d.Cordoned:
			b.WriteString("  the node was cordoned already, not by this record: nodeward leaves it cordoned\n")
		case d.UncordonedAt != nil:
			field(&b, "  ", "Uncordoned", timestamp(d.UncordonedAt, now)+" by nodeward, once the node was healthy")
		default:
			fmt.Fprintf(&b, "  cordoned by nodeward (%s=%s); still cordoned unless someone changed it\n", v1alpha1.AnnotationCordonedBy, rem.Name)
		}
	}

	b.WriteString("\nOutcome:\n")
	field(&b, "  ", "Phase", orNone(string(st.Phase)))
	field(&b, "  ", "Reason", orNone(st.Reason))
	field(&b, "  ", "Message", orNone(oneLine(st.Message)))
	field(&b, "  ", "Started", timestamp(st.StartedAt, now))
	field(&b, "  ", "Completed", timestamp(st.CompletedAt, now))
	field(&b, "  ", "Took", took(st.StartedAt, st.CompletedAt, now))

	b.WriteString("\nNode task:\n")
	switch {
	case st.NodeTask == "":
		b.WriteString("  none: nothing was handed to the node agent\n")
	case task == nil:
		fmt.Fprintf(&b, "  %s: not found (deleted, or garbage-collected with an earlier record)\n", st.NodeTask)
	default:
		ts := &task.Status
		field(&b, "  ", "Name", task.Name)
		field(&b, "  ", "Action", fmt.Sprintf("%s %s", task.Spec.Action, task.Spec.Unit))
		field(&b, "  ", "Phase", orNone(string(ts.Phase)))
		field(&b, "  ", "Started", timestamp(ts.StartedAt, now))
		field(&b, "  ", "Completed", timestamp(ts.CompletedAt, now))
		field(&b, "  ", "Took", took(ts.StartedAt, ts.CompletedAt, now))
		if ts.Message != "" {
			field(&b, "  ", "Message", oneLine(ts.Message))
		}
		if ts.Before != nil {
			field(&b, "  ", "Before", unitState(*ts.Before, now))
		}
		if ts.After != nil {
			field(&b, "  ", "After", unitState(*ts.After, now))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// actionLine is the record's action with what sets it apart.
func actionLine(a v1alpha1.Action) string {
	line := string(a.Type)
	switch {
	case a.Type == v1alpha1.ActionNotify:
		line += " (touches nothing: names the cause and its evidence and tells a person)"
	case a.Type == v1alpha1.ActionCordon && a.Cordon != nil && a.Cordon.UncordonAfter != nil:
		line += fmt.Sprintf(" (no pod is evicted; uncordon once healthy for %s)", a.Cordon.UncordonAfter.Duration)
	case a.Type == v1alpha1.ActionCordon:
		line += " (no pod is evicted; the node stays cordoned)"
	}
	if _, restart := remediations.UnitFor(a.Type); restart {
		line += fmt.Sprintf(" (recovery timeout %s)", remediations.RecoveryTimeout(a))
	}
	return line
}

// stepDone reports whether the record's step of that name succeeded.
func stepDone(rem *v1alpha1.Remediation, name string) bool {
	for _, s := range rem.Status.Steps {
		if s.Name == name {
			return s.Phase == v1alpha1.StepSucceeded
		}
	}
	return false
}

// writeDrainPlan writes what a CordonDrain's Drain step would do, as worked
// out when the record was planned: one pod or budget a line.
func writeDrainPlan(b *strings.Builder, p *v1alpha1.DrainPlan, now time.Time) {
	b.WriteString("\nDrain plan:\n")
	field(b, "  ", "As of", timestamp(&p.ObservedAt, now)+"; the drain lists the pods again when it starts")
	if p.Error != "" {
		field(b, "  ", "Error", oneLine(p.Error))
	}
	field(b, "  ", "Evict", countOf(int(p.EvictCount), "pod"))
	for _, name := range p.Evict {
		fmt.Fprintf(b, "    %s\n", name)
	}
	more(b, int(p.EvictCount)-len(p.Evict))
	field(b, "  ", "Leave", countOf(int(p.KeepCount), "pod"))
	width := 0
	for _, k := range p.Keep {
		width = max(width, len(k.Name))
	}
	for _, k := range p.Keep {
		fmt.Fprintf(b, "    %-*s  %s\n", width, k.Name, oneLine(k.Reason))
	}
	more(b, int(p.KeepCount)-len(p.Keep))
	field(b, "  ", "PDBs", countOf(len(p.PDBs), "PodDisruptionBudget")+" over the pods to evict")
	width = 0
	for _, pdb := range p.PDBs {
		width = max(width, len(pdb.Name))
	}
	for _, pdb := range p.PDBs {
		rule := ""
		if pdb.Budget != "" {
			rule = pdb.Budget + ", "
		}
		fmt.Fprintf(b, "    %-*s  %s%s allowed, selects %s\n", width, pdb.Name, rule,
			countOf(int(pdb.DisruptionsAllowed), "disruption"), countOf(int(pdb.Pods), "pod to evict"))
	}
	if p.Blocked != "" {
		field(b, "  ", "Blocked", oneLine(p.Blocked))
	}
}

// countOf reads "1 pod", "3 pods".
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if head, tail, ok := strings.Cut(noun, " "); ok {
		return fmt.Sprintf("%d %ss %s", n, head, tail)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// more says how many items a bounded list leaves out.
func more(b *strings.Builder, n int) {
	if n > 0 {
		fmt.Fprintf(b, "    … and %d more, not recorded\n", n)
	}
}
