package v1alpha1

import (
	"slices"
	"testing"
)

// TestCauseTableInStep: the enum, the CEL rules and the README table are
// what the cause table generates (make generate rewrites them).
func TestCauseTableInStep(t *testing.T) {
	stale, err := SyncCauseFiles("../../..", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		t.Errorf("%s is out of step with CauseTable: run make generate", f)
	}
}

func TestCauseTableRows(t *testing.T) {
	seen := map[Cause]bool{}
	for _, ci := range CauseTable {
		if seen[ci.Cause] {
			t.Errorf("%s is defined twice", ci.Cause)
		}
		seen[ci.Cause] = true
		if ci.Summary == "" || ci.Evidence == "" || len(ci.Actions) == 0 {
			t.Errorf("%s: summary, evidence and actions are required", ci.Cause)
		}
		if !slices.Contains(ci.Actions, ActionNotify) {
			t.Errorf("%s: every cause allows Notify", ci.Cause)
		}
		if ci.NeedsPerson {
			for _, a := range ci.Actions {
				if a != ActionNotify && a != ActionCordon {
					t.Errorf("%s needs a person but allows %s", ci.Cause, a)
				}
			}
		}
		if ci.ClusterWide && slices.Contains(ci.Actions, ActionCordon) {
			t.Errorf("%s is cluster-wide but allows Cordon", ci.Cause)
		}
	}
}
