package bench

import (
	"bytes"
	"testing"
)

// Without pod stages kwok keeps its node stages and drops every pod stage.
func TestNodeStagesOnly(t *testing.T) {
	out := nodeStagesOnly(kwokStages)
	for _, want := range []string{"name: node-initialize", "name: node-heartbeat-with-lease"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("%s dropped", want)
		}
	}
	for _, gone := range []string{"name: pod-ready", "name: pod-complete", "name: pod-delete", "kind: Pod"} {
		if bytes.Contains(out, []byte(gone)) {
			t.Errorf("%s kept", gone)
		}
	}
}
