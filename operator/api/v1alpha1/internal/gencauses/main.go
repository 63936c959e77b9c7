// Command gencauses writes what comes from the cause table
// (v1alpha1.CauseTable) into the files that must carry it verbatim: the
// Cause enum marker, the RemediationPolicy CEL rules binding causes to
// actions, and the README's table of causes. make generate runs it;
// TestCauseTableInStep fails when they are out of step.
//
//	go run ./operator/api/v1alpha1/internal/gencauses [-check] REPO_ROOT
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func main() {
	check := flag.Bool("check", false, "only report files that are out of step")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	stale, err := v1alpha1.SyncCauseFiles(root, !*check)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencauses:", err)
		os.Exit(1)
	}
	for _, f := range stale {
		if *check {
			fmt.Fprintf(os.Stderr, "%s is out of step with the cause table: run make generate\n", filepath.Join(root, f))
		}
	}
	if *check && len(stale) > 0 {
		os.Exit(1)
	}
}
