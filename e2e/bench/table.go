package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// PrintTable prints the figures, one line each.
func PrintTable(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\nnodeward bench, %s: %d kwok nodes, %d pods (%d Running), %d simulated nodes with the real agent\n",
		r.Date.Format("2006-01-02 15:04 UTC"), r.Nodes, r.Pods, r.PodsRunning, r.SimNodes)
	fmt.Fprintf(w, "machine: %d cores, %s; versions: %v\n\n", r.Machine.Cores, r.Machine.MemTotal, r.Versions)
	row := func(k, v string) { fmt.Fprintf(w, "| %-58s | %s |\n", k, v) }
	row("figure", "measured")
	row(strings.Repeat("-", 58), "---")
	if k := r.KubeletKilled; k != nil && len(k.Runs) > 0 {
		row("kubelet killed → node Ready again: p50 / p99 (max) over n", fmt.Sprintf("%.1f s / %.1f s over %d runs; node went NotReady in %d", k.Total["p50"], k.Total["p99"], int(k.Total["n"]), k.NotReady))
		var keys []string
		for key := range k.MeanPhases {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			row("  mean: "+key, fmt.Sprintf("%.2f s", k.MeanPhases[key]))
		}
	}
	if h := r.Heartbeat; h != nil && h.Dist != nil {
		row("heartbeat stops (kubelet hung, agent alive) → record, p50 / max", fmt.Sprintf("%.3f s / %.3f s over %d runs, from conditions met (renewTime + %s and a newer agent report); runs %v; hang → record %v s",
			h.Dist["p50"], h.Dist["max"], int(h.Dist["n"]), leaseStaleAfter+stormSettle, h.MetToRecord, h.HangToRecord))
		row("  KubeletHung diagnosis seen → record seen (100 ms polling)", fmt.Sprintf("%v s", h.DiagnosedToRecord))
	}
	if h := r.Heartbeat; h != nil {
		for _, f := range h.Failures {
			row("heartbeat stops (kubelet hung, agent alive) → record", "NOT REACHED: "+f)
		}
	}
	if s := r.Silent; s != nil {
		if s.Dist != nil {
			row("heartbeat stops, agent silent → record, p50 / max", fmt.Sprintf("%.3f s / %.3f s over %d nodes, from conditions met (Lease stale and agent silent); runs %v; power-off → record %v s",
				s.Dist["p50"], s.Dist["max"], int(s.Dist["n"]), s.MetToRecord, s.DownToRec))
		}
		for _, f := range s.Failures {
			row("heartbeat stops, agent silent → record", "NOT REACHED: "+f)
		}
	}
	if q := r.OneRemed; q != nil {
		row("operator API requests for one remediation (median run)", fmt.Sprintf("%d (%d leader election); all runs %v", q.Total, q.LeaderElection, r.OneRemedRuns))
		row("  by verb/resource", q.String())
	}
	if m := r.Memory; m != nil {
		row("operator RSS settled / peak", fmt.Sprintf("%.1f MiB / %.1f MiB (%d samples, 1/s; %.1f MiB at the end)", m.SettledRSSMiB, m.PeakRSSMiB, m.Samples, m.EndRSSMiB))
		if v, ok := m.GoMemoryClasses["total_bytes"]; ok {
			row("  go_memory_classes_total settled (heap objects)", fmt.Sprintf("%.1f MiB (%.1f MiB)", v, m.GoMemoryClasses["heap_objects_bytes"]))
		}
	}
	if s := r.Steady; s != nil {
		row("operator API writes/min at steady state", fmt.Sprintf("%.1f (%.1f without its leader-election Lease) over %s", s.OperatorWritesPerMin, s.OperatorWritesPerMinExcludingLE, s.Window))
		row("  operator requests in the window", s.Operator.String())
		row("node agent API writes per node per minute", fmt.Sprintf("%.2f simulated nodes (%s); %.2f the agent process", s.AgentWritesPerNodePerMin, s.Agents.String(), s.AgentProcessWritesPerMin))
		row("node agent RSS (its own process) settled / peak", fmt.Sprintf("%.1f MiB / %.1f MiB (settled RssAnon, without the mapped binary: %.1f MiB)", s.AgentRSSMiB, s.AgentPeakRSSMiB, s.AgentRSSAnonMiB))
	}
	if s := r.Storm; s != nil {
		tripped := "not tripped"
		if s.Tripped {
			tripped = fmt.Sprintf("tripped after %.1f s", s.TrippedAfter)
		}
		row(fmt.Sprintf("storm: %d nodes lose heartbeats → breaker", s.Nodes), fmt.Sprintf("%s (observed %.0f s); ClusterDiagnosis ControlPlaneDegraded after %.1f s", tripped, s.Observed, s.ClusterDegradedAfter))
		row("  breaker tripped after its condition held", fmt.Sprintf("%.3f s (limit %d unhealthy nodes; condition = the %d-th storm Lease stale)", s.MetToTripped, s.Limit, s.Limit+1))
		row("  disruptive actions started (NodeTask creates)", fmt.Sprintf("%d (audit), %d records created", s.NodeTasksAudit, s.Records))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR: %s\n", e)
	}
	fmt.Fprintf(w, "results: %s/result.json\n", r.Setup["dir"])
}
