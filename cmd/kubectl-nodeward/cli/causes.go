package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// CausesOptions lists the causes nodeward diagnoses, from the cause table
// (the same definitions admission and the diagnosis use).
type CausesOptions struct {
	*Env
	Cause string
}

func (o *CausesOptions) AddFlags(*flag.FlagSet) {}

func (o *CausesOptions) Validate(args []string) error {
	switch len(args) {
	case 0:
	case 1:
		if _, ok := v1alpha1.Cause(args[0]).Info(); !ok {
			return fmt.Errorf("cause %q is not one nodeward diagnoses", args[0])
		}
		o.Cause = args[0]
	default:
		return errors.New("causes takes at most one argument: the name of a cause")
	}
	return nil
}

// Offline: the table is compiled in.
func (o *CausesOptions) Offline() bool { return true }

func (o *CausesOptions) Run(context.Context) error {
	if o.Cause != "" {
		ci, _ := v1alpha1.Cause(o.Cause).Info()
		var b strings.Builder
		field(&b, "", "Cause", string(ci.Cause))
		field(&b, "", "What it is", ci.Summary)
		field(&b, "", "Needs a person", map[bool]string{true: "yes: only Cordon or Notify may be bound to it", false: "no"}[ci.NeedsPerson])
		if ci.ClusterWide {
			field(&b, "", "Scope", "the cluster's, not one node's")
		}
		field(&b, "", "Evidence", ci.Evidence)
		field(&b, "", "Actions", actionList(ci.Actions))
		if ci.Seed != "" {
			field(&b, "", "Seed", ci.Seed)
		}
		_, err := fmt.Fprint(o.Out, b.String())
		return err
	}
	w := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CAUSE\tPERSON\tACTIONS\tWHAT IT IS")
	for _, ci := range v1alpha1.CauseTable {
		person := ""
		if ci.NeedsPerson {
			person = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ci.Cause, person, actionList(ci.Actions), ci.Summary)
	}
	return w.Flush()
}

func actionList(as []v1alpha1.ActionType) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
