package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// HistoryOptions lists Remediation records.
type HistoryOptions struct {
	*Env
	Node   string
	Policy string
	// Since keeps records created within this long; 0 keeps all.
	Since  time.Duration
	Output string
}

func (o *HistoryOptions) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Node, "node", "", "Only records for this node.")
	fs.StringVar(&o.Policy, "policy", "", "Only records created by this RemediationPolicy.")
	fs.DurationVar(&o.Since, "since", 0, "Only records created within this long, e.g. 24h; 0 means all.")
	fs.StringVar(&o.Output, "o", "", "Output format: wide, json or yaml (default a table).")
	fs.StringVar(&o.Output, "output", "", "Same as -o.")
}

func (o *HistoryOptions) Validate(args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("history takes no arguments, got %q", args)
	}
	for _, f := range []struct{ name, value string }{{"--node", o.Node}, {"--policy", o.Policy}} {
		if f.value == "" {
			continue
		}
		if errs := validation.IsDNS1123Subdomain(f.value); len(errs) > 0 {
			return fmt.Errorf("%s %q: %s", f.name, f.value, strings.Join(errs, "; "))
		}
	}
	if o.Since < 0 {
		return errors.New("--since must not be negative")
	}
	switch o.Output {
	case "", "wide", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output %q: must be wide, json or yaml", o.Output)
}

func (o *HistoryOptions) Run(ctx context.Context) error {
	// The labels narrow the list; the spec decides (a long name's label
	// value may be another name's).
	selector := client.MatchingLabels{}
	if o.Node != "" {
		selector[v1alpha1.LabelNode] = v1alpha1.LabelValue(o.Node)
	}
	if o.Policy != "" {
		selector[v1alpha1.LabelPolicy] = v1alpha1.LabelValue(o.Policy)
	}
	list := &v1alpha1.RemediationList{}
	if err := o.Client.List(ctx, list, selector); err != nil {
		return fmt.Errorf("listing remediations: %w", err)
	}
	now := o.Clock.Now()
	records := make([]v1alpha1.Remediation, 0, len(list.Items))
	for _, r := range list.Items {
		if o.Node != "" && r.Spec.NodeName != o.Node || o.Policy != "" && r.Spec.Policy != o.Policy {
			continue
		}
		if o.Since == 0 || !r.CreationTimestamp.Time.Before(now.Add(-o.Since)) {
			records = append(records, r)
		}
	}
	sort.SliceStable(records, func(i, j int) bool {
		ti, tj := records[i].CreationTimestamp.Time, records[j].CreationTimestamp.Time
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return records[i].Name < records[j].Name
	})
	return printHistory(o.Out, records, o.Output, now)
}

// printHistory writes the records in the given order as a table (output ""
// or "wide") or as a RemediationList in JSON or YAML.
func printHistory(w io.Writer, records []v1alpha1.Remediation, output string, now time.Time) error {
	switch output {
	case "json", "yaml":
		return printList(w, records, output)
	}
	if len(records) == 0 {
		_, err := fmt.Fprintln(w, "No remediations found.")
		return err
	}
	wide := output == "wide"
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	header := []string{"NAME", "NODE", "CAUSE", "ACTION", "MODE", "PHASE", "REASON", "AGE"}
	if wide {
		header = append(header, "POLICY", "DURATION", "MESSAGE")
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range records {
		row := []string{r.Name, r.Spec.NodeName, string(r.Spec.Cause), string(r.Spec.Action.Type), string(r.Spec.Mode),
			orNone(string(r.Status.Phase)), orNone(r.Status.Reason), age(r.CreationTimestamp.Time, now)}
		if wide {
			row = append(row, r.Spec.Policy, took(r.Status.StartedAt, r.Status.CompletedAt, now), orNone(oneLine(r.Status.Message)))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// printList writes the records as a RemediationList, without managedFields
// (as kubectl does).
func printList(w io.Writer, records []v1alpha1.Remediation, output string) error {
	list := v1alpha1.RemediationList{Items: make([]v1alpha1.Remediation, len(records))}
	list.APIVersion, list.Kind = v1alpha1.GroupVersion.String(), "RemediationList"
	for i := range records {
		r := records[i].DeepCopy()
		r.APIVersion, r.Kind = v1alpha1.GroupVersion.String(), "Remediation"
		r.ManagedFields = nil
		list.Items[i] = *r
	}
	var (
		data []byte
		err  error
	)
	if output == "json" {
		data, err = json.MarshalIndent(&list, "", "    ")
		data = append(data, '\n')
	} else {
		data, err = yaml.Marshal(&list)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
