package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// causes lists every cause of the table, offline, and explains one.
func TestCauses(t *testing.T) {
	var out bytes.Buffer
	if err := Main(context.Background(), "kubectl-nodeward", []string{"causes", "--kubeconfig", "/nonexistent"}, IOStreams{Out: &out}); err != nil {
		t.Fatalf("causes: %v", err)
	}
	for _, ci := range v1alpha1.CauseTable {
		if !strings.Contains(out.String(), string(ci.Cause)) {
			t.Errorf("causes does not list %s:\n%s", ci.Cause, out.String())
		}
	}
	out.Reset()
	if err := Main(context.Background(), "kubectl-nodeward", []string{"causes", "ClockSkew"}, IOStreams{Out: &out}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Needs a person: yes", "Cordon, Notify", "never called dead or silent"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("causes ClockSkew does not say %q:\n%s", want, out.String())
		}
	}
	if err := Main(context.Background(), "kubectl-nodeward", []string{"causes", "Gremlins"}, IOStreams{Out: &out}); err == nil || !strings.Contains(err.Error(), `"Gremlins" is not one`) {
		t.Errorf("unknown cause: err = %v", err)
	}
}
