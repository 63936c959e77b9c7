package v1alpha1

import (
	"fmt"
	"slices"
	"strings"
)

// CauseInfo is the one definition of a cause. The admission rules of
// RemediationPolicy (the Cause enum and the CEL rules binding causes to
// actions), the causes table in the README, `kubectl nodeward causes` and
// the diagnosis all read it; TestCauseTableInStep keeps the generated parts
// in step (make generate rewrites them). Adding a cause: a row here, its
// rule in operator/diagnosis, its tests.
type CauseInfo struct {
	Cause Cause
	// Summary says what the cause is, in a line.
	Summary string
	// NeedsPerson: nodeward cannot fix it; a person must (a config, a
	// certificate, a clock, a kernel, hardware). Only Notify and Cordon may
	// be bound to it, never a restart or a drain.
	NeedsPerson bool
	// ClusterWide: the cluster's fault, not one node's.
	ClusterWide bool
	// Actions admission accepts for the cause, the most disruptive first.
	Actions []ActionType
	// Evidence is the diagnosis rule in words: what it reads and when it
	// refuses to conclude.
	Evidence string
	// Seed names the seed write-up the cause comes from, if any.
	Seed string
}

// personActions are what may be bound to a cause that needs a person.
var personActions = []ActionType{ActionCordon, ActionNotify}

// CauseTable is every cause, in the diagnosis' ranking order.
var CauseTable = []CauseInfo{
	{Cause: CauseFleetNodeFault, NeedsPerson: true, ClusterWide: true, Actions: []ActionType{ActionNotify},
		Summary:  "the same node-level fault on many nodes at once (a config, image or package rolled out everywhere)",
		Evidence: "many nodes show the same node-level evidence (the same kubelet fatal line, the same failing unit) while their agents report on time through the same apiserver: a control-plane outage would silence the agents too. Nothing is touched on any node."},
	{Cause: CauseClockSkew, NeedsPerson: true, Actions: personActions,
		Summary:  "the node's clock is wrong, so its heartbeats look late or its certificates not yet valid",
		Evidence: "the agent's offset from the apiserver's clock is beyond the limit, or the Lease's renewTime is far from when nodeward saw it arrive, or the kubelet's journal entries are stamped more than a day in the future, or x509 'not yet valid'. A skewed node is never called dead or silent."},
	{Cause: CauseKubeletCertificateExpired, NeedsPerson: true, Actions: personActions,
		Summary:  "the kubelet's client certificate or the cluster CA has expired, or was rotated without the kubelet",
		Evidence: "the agent read the certificate's notAfter in the past, or the kubelet's journal says its certificate expired or that a certificate is signed by an unknown authority."},
	{Cause: CauseKubeletCrashLoop, NeedsPerson: true, Actions: personActions,
		Summary:  "the kubelet exits with its own error at every start (swap on, a bad flag or config, a missing file, a cgroup-driver mismatch)",
		Evidence: "the kubelet's journal shows it giving up at start (klog F, 'failed to run Kubelet', 'command failed', a known fatal start error) with an error a restart cannot change (swap, a flag or config, a missing file, the cgroup driver), or the same fatal line 3 times within 10 minutes (its repeats, or systemd's NRestarts). Never restarted; detail names the error. A unit stopped, disabled, killed, or that exited waiting for its runtime or the apiserver is KubeletDown."},
	{Cause: CauseKubeletDown, Actions: []ActionType{ActionCordonDrain, ActionRestartContainerRuntime, ActionRestartKubelet, ActionCordon, ActionNotify}, Seed: "000",
		Summary:  "the kubelet unit is stopped (not started after a reboot, stopped or disabled, a one-off crash)",
		Evidence: "the agent is alive and says the kubelet unit is inactive or failed, and its heartbeats stopped; not a unit that keeps exiting on its own error (that is KubeletCrashLoop)."},
	{Cause: CauseContainerRuntimeDown, Actions: []ActionType{ActionCordonDrain, ActionRestartContainerRuntime, ActionRestartKubelet, ActionCordon, ActionNotify}, Seed: "004",
		Summary:  "the container runtime unit is stopped",
		Evidence: "the agent says the runtime unit is inactive or failed; the kubelet's 'container runtime is down' counts only when the unit or a CRI call agrees."},
	{Cause: CauseContainerRuntimeHung, Actions: []ActionType{ActionCordonDrain, ActionRestartContainerRuntime, ActionCordon, ActionNotify}, Seed: "004",
		Summary:  "the container runtime runs but does not answer its CRI socket",
		Evidence: "the runtime unit is active but the agent's CRI Version/Status call timed out or failed, repeatedly."},
	{Cause: CauseMemoryExhausted, Actions: []ActionType{ActionCordonDrain, ActionCordon, ActionNotify}, Seed: "001",
		Summary:  "memory is exhausted and the OOM killer fires",
		Evidence: "MemoryPressure, a SystemOOM Event, the kernel's OOM lines or almost no MemAvailable; a pressure condition the agent's own measurement contradicts ranks lower and says so."},
	{Cause: CausePIDExhausted, Actions: []ActionType{ActionCordonDrain, ActionCordon, ActionNotify}, Seed: "004",
		Summary:  "process IDs run out; forks fail",
		Evidence: "PIDPressure, threads near pid_max, or fork failures ('resource temporarily unavailable') in the kubelet's or runtime's journal."},
	{Cause: CauseDiskPressure, Actions: []ActionType{ActionCordonDrain, ActionCordon, ActionNotify}, Seed: "002, 004",
		Summary:  "disk space or inodes run out",
		Evidence: "DiskPressure or the legacy OutOfDisk condition, or the agent's df of the kubelet's and runtime's filesystems."},
	{Cause: CausePLEGUnhealthy, Actions: []ActionType{ActionTuneGracePeriods, ActionCordon, ActionNotify}, Seed: "002",
		Summary:  "the kubelet's pod lifecycle event generator relists too slowly",
		Evidence: "Ready says 'PLEG is not healthy' while the kubelet runs; never a reason to restart the kubelet."},
	{Cause: CauseNetworkUnavailable, NeedsPerson: true, Actions: personActions, Seed: "000, 004",
		Summary:  "the node's pod network (CNI) is not ready",
		Evidence: "Ready says the network plugin is not ready, NetworkUnavailable=True, or the runtime's NetworkReady=false."},
	{Cause: CauseControlPlaneDegraded, ClusterWide: true, Actions: []ActionType{ActionTuneGracePeriods, ActionNotify}, Seed: "003",
		Summary:  "the control plane is overloaded, or many nodes are cut off from it",
		Evidence: "many nodes' heartbeats are late at once, and their agents' reports do not contradict it (agents silent too, or none installed); or, indirect and on one node, its late kubelet's journal says the apiserver or etcd is overloaded."},
	{Cause: CauseKubeletHung, Actions: []ActionType{ActionCordonDrain, ActionRestartContainerRuntime, ActionRestartKubelet, ActionCordon, ActionNotify},
		Summary:  "the kubelet runs but stopped heartbeating, on this node alone",
		Evidence: "the kubelet unit is active, its Lease stopped (by when nodeward saw renewals arrive), the agent reports after that, and nothing else explains it."},
	{Cause: CauseNodeUnreachable, Actions: []ActionType{ActionCordonDrain, ActionCordon, ActionNotify}, Seed: "004",
		Summary:  "the node is down or cut off: its heartbeats and its agent are both silent",
		Evidence: "the Lease stopped and the agent is silent too, on this node alone; never when the node's clock is known to be skewed."},
	{Cause: CauseKernelDeadlock, NeedsPerson: true, Actions: personActions,
		Summary:  "kernel tasks hang (hung tasks, a kernel deadlock)",
		Evidence: "node-problem-detector's KernelDeadlock, or the kernel log's 'blocked for more than N seconds' lines."},
	{Cause: CauseReadonlyFilesystem, NeedsPerson: true, Actions: personActions,
		Summary:  "a filesystem went read-only or has I/O errors",
		Evidence: "node-problem-detector's ReadonlyFilesystem, or the kernel log's read-only remount and I/O error lines, or 'read-only file system' errors in the kubelet's or runtime's journal or in pod events; on a node still Ready too."},
	{Cause: CausePodStartFailures, NeedsPerson: true, Actions: personActions,
		Summary:  "the node is Ready but pods on it fail to start",
		Evidence: "several pods on the node failed to create their sandboxes or containers recently, with node-level errors, and no other cause explains it."},
	{Cause: CauseOldSystemd, NeedsPerson: true, Actions: personActions, Seed: "004",
		Summary:  "systemd older than 219-67, whose D-Bus cookie overflow hangs runc and the kubelet",
		Evidence: "the agent's systemd version, said only of a node that is otherwise in trouble."},
	{Cause: CauseCgroupDriverMismatch, NeedsPerson: true, Actions: personActions, Seed: "004",
		Summary:  "the kubelet's and the runtime's cgroup drivers differ",
		Evidence: "the kubelet's log says its cgroup driver differs from the runtime's, while the kubelet is not crash-looping on it."},
}

// Info returns the cause's definition.
func (c Cause) Info() (CauseInfo, bool) {
	for _, ci := range CauseTable {
		if ci.Cause == c {
			return ci, true
		}
	}
	return CauseInfo{}, false
}

// NeedsPerson reports whether the cause needs a person: only Notify and
// Cordon may be bound to it. An unknown cause needs a person too.
func (c Cause) NeedsPerson() bool {
	ci, ok := c.Info()
	return !ok || ci.NeedsPerson
}

// IsClusterWide reports whether a cause is the cluster's, not a node's.
func (c Cause) IsClusterWide() bool {
	ci, _ := c.Info()
	return ci.ClusterWide
}

// Allows reports whether admission accepts binding the action to the cause.
func (c Cause) Allows(a ActionType) bool {
	ci, ok := c.Info()
	return ok && slices.Contains(ci.Actions, a)
}

// CausesAllowing lists the causes the action may be bound to, in table order.
func CausesAllowing(a ActionType) []Cause {
	var out []Cause
	for _, ci := range CauseTable {
		if slices.Contains(ci.Actions, a) {
			out = append(out, ci.Cause)
		}
	}
	return out
}

// allActions is every ActionType, in the order the generated rules check them.
var allActions = []ActionType{ActionRestartKubelet, ActionRestartContainerRuntime, ActionCordonDrain, ActionTuneGracePeriods, ActionCordon, ActionNotify}

// actionWhy says, in the admission error, why an action is refused for the
// causes it is not bound to.
var actionWhy = map[ActionType]string{
	ActionRestartKubelet:          "restarting on PLEG, memory, disk or control-plane trouble makes things worse",
	ActionRestartContainerRuntime: "restarting on PLEG, memory, disk or control-plane trouble makes things worse",
	ActionCordonDrain:             "no node is at fault, so draining one fixes nothing",
	ActionTuneGracePeriods:        "a wider grace period only hides late heartbeats, it fixes no node",
	ActionCordon:                  "no one node is at fault, so cordoning nodes fixes nothing",
	ActionNotify:                  "",
}

// CauseEnumMarker is the kubebuilder Enum marker of type Cause.
func CauseEnumMarker() string {
	names := make([]string, len(CauseTable))
	for i, ci := range CauseTable {
		names[i] = string(ci.Cause)
	}
	return "// +kubebuilder:validation:Enum=" + strings.Join(names, ";")
}

// celList renders causes as a CEL list literal.
func celList(cs []Cause) string {
	q := make([]string, len(cs))
	for i, c := range cs {
		q[i] = "'" + string(c) + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// celOffenders renders a CEL string expression naming the policy's causes
// among cs, each with a leading space.
func celOffenders(cs []Cause) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf(`(self.causes.exists(c, c.cause == '%s') ? ' %s' : "")`, c, c)
	}
	return strings.Join(parts, " + ")
}

// CausePolicyRules are the CEL admission rules of RemediationPolicySpec that
// bind causes to actions, as kubebuilder XValidation markers: first that a
// cause needing a person gets only Notify or Cordon, then, per action, the
// other causes it may be bound to.
func CausePolicyRules() []string {
	var person []Cause
	for _, ci := range CauseTable {
		if ci.NeedsPerson {
			person = append(person, ci.Cause)
		}
	}
	var rules []string
	rules = append(rules, fmt.Sprintf(`// +kubebuilder:validation:XValidation:rule="self.action.type in ['%s', '%s'] || self.causes.all(c, !(c.cause in %s))",messageExpression="'cause(s)' + %s + ' need a person (nodeward cannot fix them), so they may be bound only to Cordon or Notify, not to ' + self.action.type",fieldPath=".causes",reason=FieldValueForbidden`,
		ActionCordon, ActionNotify, celList(person), escape(celOffenders(person))))
	for _, a := range allActions {
		// The causes needing a person are excused from the rules of the
		// actions the first rule already refuses for them.
		excused := person
		if slices.Contains(personActions, a) {
			excused = nil
		}
		var allowed, refused []Cause
		for _, ci := range CauseTable {
			switch {
			case slices.Contains(ci.Actions, a):
				allowed = append(allowed, ci.Cause)
			case !slices.Contains(excused, ci.Cause):
				refused = append(refused, ci.Cause)
			}
		}
		if len(refused) == 0 {
			continue
		}
		rule := "c.cause in " + celList(allowed)
		if len(excused) > 0 {
			rule += " || c.cause in " + celList(excused)
		}
		rules = append(rules, fmt.Sprintf(`// +kubebuilder:validation:XValidation:rule="self.action.type != '%s' || self.causes.all(c, %s)",messageExpression="'%s may only be bound to %s, not to' + %s + ' (%s)'",fieldPath=".causes",reason=FieldValueForbidden`,
			a, rule, a, joinCauses(allowed), escape(celOffenders(refused)), actionWhy[a]))
	}
	return rules
}

// escape makes a CEL expression fit in a marker's double-quoted string.
func escape(s string) string { return strings.ReplaceAll(s, `"`, `\"`) }

func joinCauses(cs []Cause) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// CauseDocTable is the README's table of causes (markdown).
func CauseDocTable() string {
	var b strings.Builder
	b.WriteString("| Cause | Needs a person | What it is | Evidence rule | Actions a policy may bind |\n|---|---|---|---|---|\n")
	for _, ci := range CauseTable {
		acts := make([]string, len(ci.Actions))
		for i, a := range ci.Actions {
			acts[i] = string(a)
		}
		person := ""
		if ci.NeedsPerson {
			person = "yes"
		}
		name := "`" + string(ci.Cause) + "`"
		if ci.ClusterWide {
			name += " (cluster)"
		}
		if ci.Seed != "" {
			name += " (seed " + ci.Seed + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, person, ci.Summary, ci.Evidence, strings.Join(acts, ", "))
	}
	return b.String()
}
