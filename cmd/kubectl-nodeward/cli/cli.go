// Package cli is kubectl-nodeward: views of nodeward's diagnoses and
// remediation records, and the approval of RequireApproval records. Each command is an options struct with its flags,
// Validate and Run; Main parses the command line and wires in the client.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// IOStreams are where the plugin writes; errors are returned, not written.
type IOStreams struct {
	Out io.Writer
}

// Env is what every command runs with. Main fills Client in after the
// command's Validate passed; tests build it with a fake client.
type Env struct {
	Client client.Client
	Out    io.Writer
	// Clock is the "now" that ages are measured from.
	Clock clock.PassiveClock
}

// options is one command.
type options interface {
	AddFlags(fs *flag.FlagSet)
	Validate(args []string) error
	Run(ctx context.Context) error
}

// offline is a command that, as validated, needs no cluster.
type offline interface {
	Offline() bool
}

type command struct {
	name     string
	synopsis string // arguments and flags, for the usage line
	summary  string
	new      func(*Env) options
}

// commands are the subcommands, in the order of the usage text.
func commands() []command {
	return []command{
		{"history", "[--node NODE] [--policy POLICY] [--since DURATION] [-o wide|json|yaml]",
			"List remediation records, newest first", func(e *Env) options { return &HistoryOptions{Env: e} }},
		{"explain", "NAME", "Tell the whole story of one remediation record", func(e *Env) options { return &ExplainOptions{Env: e} }},
		{"diagnose", "NODE | --snapshot FILE", "Show nodeward's diagnosis of a node and what its policies would do",
			func(e *Env) options { return &DiagnoseOptions{Env: e} }},
		{"snapshot", "NODE [-o FILE]", "Write what nodeward's diagnosis of a node reads, for diagnose --snapshot",
			func(e *Env) options { return &SnapshotOptions{Env: e} }},
		{"causes", "[CAUSE]", "List the causes nodeward diagnoses, their evidence rules and the actions a policy may bind (offline)",
			func(e *Env) options { return &CausesOptions{Env: e} }},
		{"approve", "NAME --reason REASON", "Approve a remediation waiting for approval (needs the verb approve on remediations)",
			func(e *Env) options { return &DecideOptions{Env: e, Decision: v1alpha1.DecisionApproved} }},
		{"reject", "NAME --reason REASON", "Reject a remediation waiting for approval (needs the verb approve on remediations)",
			func(e *Env) options { return &DecideOptions{Env: e, Decision: v1alpha1.DecisionRejected} }},
	}
}

// kubeFlags select the cluster. They are accepted before and after the
// command name.
type kubeFlags struct {
	kubeconfig string
	context    string
}

// bind keeps the values already parsed: the command's flag set binds them
// again after the global one.
func (k *kubeFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&k.kubeconfig, "kubeconfig", k.kubeconfig, "Path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config).")
	fs.StringVar(&k.context, "context", k.context, "The kubeconfig context to use (default the current context).")
}

func (k *kubeFlags) client() (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-nodeward"
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// NewScheme knows the built-in types and nodeward's.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// displayName is how the user invoked us: "kubectl nodeward" when kubectl
// runs the plugin binary kubectl-nodeward.
func displayName(argv0 string) string {
	base := filepath.Base(argv0)
	if rest, ok := strings.CutPrefix(base, "kubectl-"); ok {
		return "kubectl " + strings.ReplaceAll(rest, "_", "-")
	}
	return base
}

// Main runs the plugin; argv0 names it in the usage text.
func Main(ctx context.Context, argv0 string, args []string, streams IOStreams) error {
	name := displayName(argv0)
	var kf kubeFlags
	global := flag.NewFlagSet(name, flag.ContinueOnError)
	global.SetOutput(io.Discard)
	kf.bind(global)
	global.Usage = func() {} // helpOr prints it for -h only
	if err := global.Parse(args); err != nil {
		return helpOr(err, name, func() { rootUsage(streams.Out, name, global) })
	}
	if global.NArg() == 0 {
		rootUsage(streams.Out, name, global)
		return errors.New("no command given")
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == global.Arg(0) {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		return fmt.Errorf("unknown command %q; run %q for usage", global.Arg(0), name+" -h")
	}

	env := &Env{Out: streams.Out, Clock: clock.RealClock{}}
	opts := cmd.new(env)
	fs := flag.NewFlagSet(name+" "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kf.bind(fs)
	opts.AddFlags(fs)
	fs.Usage = func() {}
	positional, err := parseInterspersed(fs, global.Args()[1:])
	if err != nil {
		return helpOr(err, name+" "+cmd.name, func() { commandUsage(streams.Out, name, cmd, fs) })
	}
	if err := opts.Validate(positional); err != nil {
		return fmt.Errorf("%w; run %q for usage", err, name+" "+cmd.name+" -h")
	}
	if off, ok := opts.(offline); !ok || !off.Offline() {
		if env.Client, err = kf.client(); err != nil {
			return err
		}
	}
	return opts.Run(ctx)
}

// helpOr prints the usage for -h and otherwise returns the parse error.
func helpOr(err error, name string, usage func()) error {
	if errors.Is(err, flag.ErrHelp) {
		usage()
		return nil
	}
	return fmt.Errorf("%w; run %q for usage", err, name+" -h")
}

// parseInterspersed lets flags follow positional arguments, as in kubectl:
// `explain NAME --context prod`.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func rootUsage(w io.Writer, name string, global *flag.FlagSet) {
	fmt.Fprintf(w, "%s shows what nodeward diagnosed on nodes and what it did about it.\n\n", name)
	fmt.Fprintf(w, "Usage:\n  %s [--kubeconfig PATH] [--context NAME] COMMAND [flags]\n\nCommands:\n", name)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nFlags:\n")
	printDefaults(w, global)
	fmt.Fprintf(w, "\nRun \"%s COMMAND -h\" for the flags of a command.\n", name)
}

func commandUsage(w io.Writer, name string, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s.\n\nUsage:\n  %s %s %s\n\nFlags:\n", c.summary, name, c.name, c.synopsis)
	printDefaults(w, fs)
}

func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
