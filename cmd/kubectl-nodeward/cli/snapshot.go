package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/nodeward/nodeward/operator/diagnosis"
)

// SnapshotOptions write what the diagnosis of one node reads as a
// NodeSnapshot, for `diagnose --snapshot` elsewhere (an incident report, a
// bug, a replay test).
type SnapshotOptions struct {
	*Env
	Node   string
	Output string
}

func (o *SnapshotOptions) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Output, "o", "", "Write the snapshot to this file (default standard output).")
}

func (o *SnapshotOptions) Validate(args []string) error {
	if len(args) != 1 {
		return errors.New("snapshot takes exactly one argument: the name of a node")
	}
	o.Node = args[0]
	return nil
}

// Run reads the node's evidence from the API server the way the operator
// reads it from its cache (diagnosis.APIGatherer). When nodeward saw the
// Lease renewed is the operator's memory, not the API's: the snapshot lists
// lease.observedAt as unknown.
func (o *SnapshotOptions) Run(ctx context.Context) error {
	// A snapshot's times are RFC 3339 seconds: take "now" in whole seconds,
	// so the snapshot read back is what was gathered.
	in, err := diagnosis.APIGatherer(o.Client).Gather(ctx, o.Node, o.Clock.Now().Truncate(time.Second))
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("node %q not found", o.Node)
	} else if err != nil {
		return err
	}
	// The Node as the operator caches it: no managedFields, no image list
	// (often most of a Node's bytes, and nothing the diagnosis reads).
	in.Node.ManagedFields = nil
	in.Node.Status.Images = nil
	b, err := diagnosis.SnapshotOf(in).Marshal()
	if err != nil {
		return fmt.Errorf("writing the snapshot: %w", err)
	}
	if o.Output == "" {
		_, err := o.Out.Write(b)
		return err
	}
	if err := os.WriteFile(o.Output, b, 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.Out, "Wrote the snapshot of node %s to %s\n", o.Node, o.Output)
	return err
}
