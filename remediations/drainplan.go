package remediations

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// maxPlanPods bounds each pod list of a drain plan, maxPlanPDBs its budgets
// (the CRD's MaxItems).
const (
	maxPlanPods = 100
	maxPlanPDBs = 50
)

// preview works out the Drain step in advance into status.drain.plan, once,
// when the record is planned: what a person approving it (or reading a
// DryRun record) needs to see. It costs what the drain's own planning costs
// — one List of the node's pods by field selector through the clientset
// (never the cache: the operator keeps no pod informer), a Get of each
// DaemonSet owning one of them, one List of PodDisruptionBudgets per
// namespace of the pods to evict — and never fails the record: what could not
// be read is said in plan.error, and the drain reads everything again when
// it starts.
func (drainAction) preview(ctx context.Context, e *Executor, rem *v1alpha1.Remediation, now time.Time) {
	plan := e.planDrain(ctx, rem, now)
	if plan.Error != "" {
		klog.FromContext(ctx).Info("Could not work out the drain plan in advance", "error", plan.Error)
	}
	if rem.Status.Drain == nil {
		rem.Status.Drain = &v1alpha1.DrainStatus{}
	}
	rem.Status.Drain.Plan = plan
}

// planDrain asks the drain helper, set up as the drain sets it up, which of
// the node's pods it would evict, and tells from the same list the pods it
// would leave and why, and the budgets covering the pods to evict.
func (e *Executor) planDrain(ctx context.Context, rem *v1alpha1.Remediation, now time.Time) *v1alpha1.DrainPlan {
	plan := &v1alpha1.DrainPlan{ObservedAt: metav1.NewTime(now)}
	node := rem.Spec.NodeName
	seen := &podListRecorder{Interface: e.Kube}
	list, errs := newDrainHelper(ctx, seen, drainParams(rem)).GetPodsForDeletion(node)
	if list == nil || seen.pods == nil {
		plan.Error = truncate(fmt.Sprintf("listing the pods on %s: %v", node, errors.Join(errs...)), 1024)
		return plan
	}
	evict := list.Pods()
	// Pods the helper refuses stop the whole drain: its errors name them.
	stops := map[string]string{}
	var blocked []string
	for _, err := range errs {
		why, pods := filterError(err.Error())
		blocked = append(blocked, explainFilterError(err.Error()))
		for _, p := range pods {
			stops[p] = "stops the drain: " + why
		}
	}
	sort.Strings(blocked)
	if len(blocked) > 0 {
		plan.Blocked = truncate("the drain would evict nothing: "+strings.Join(blocked, "; "), 2048)
	}

	evicted := map[string]bool{}
	for _, n := range names(evict) {
		evicted[n] = true
	}
	plan.EvictCount = int32(len(evict))
	plan.Evict = firstSorted(names(evict), maxPlanPods)
	var keep []v1alpha1.KeptPod
	for i := range seen.pods.Items {
		p := &seen.pods.Items[i]
		name := p.Namespace + "/" + p.Name
		if evicted[name] {
			continue
		}
		why, ok := stops[name]
		if !ok {
			why = keptReason(p)
		}
		keep = append(keep, v1alpha1.KeptPod{Name: name, Reason: truncate(why, 512)})
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].Name < keep[j].Name })
	plan.KeepCount = int32(len(keep))
	plan.Keep = keep[:min(len(keep), maxPlanPods)]

	matched, err := e.pdbsFor(ctx, evict, false)
	if err != nil {
		plan.Error = truncate(err.Error(), 1024)
		return plan
	}
	for _, m := range matched {
		plan.PDBs = append(plan.PDBs, v1alpha1.PlannedPDB{
			Name: m.pdb.Namespace + "/" + m.pdb.Name, Budget: budgetRule(&m.pdb),
			DisruptionsAllowed: m.pdb.Status.DisruptionsAllowed, Pods: int32(len(m.pods)),
		})
	}
	sort.Slice(plan.PDBs, func(i, j int) bool { return plan.PDBs[i].Name < plan.PDBs[j].Name })
	plan.PDBs = plan.PDBs[:min(len(plan.PDBs), maxPlanPDBs)]
	return plan
}

// filterError splits one of the drain helper's refusals, "cannot delete
// <why>: ns/a, ns/b", into why (explained for nodeward) and the pods.
func filterError(msg string) (why string, pods []string) {
	i := strings.LastIndex(msg, ": ")
	if i < 0 {
		return explainFilterError(msg), nil
	}
	return explainFilterError(strings.TrimPrefix(msg[:i], "cannot delete ")), strings.Split(msg[i+2:], ", ")
}

// keptReason says why the drain helper leaves a pod it did not refuse on
// the node: with nodeward's settings, a DaemonSet's pod or a mirror pod.
func keptReason(p *corev1.Pod) string {
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return "mirror pod: a static pod the kubelet runs from a file, not evictable"
	}
	if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "DaemonSet" {
		return "DaemonSet pod " + ref.Name + ": DaemonSet pods stay on a drained node"
	}
	return "left on the node by the drain's rules"
}

func firstSorted(s []string, n int) []string {
	sort.Strings(s)
	return s[:min(len(s), n)]
}

// podListRecorder is a clientset that keeps the pod list it served last: the
// drain helper's own list of the node's pods, from which the plan tells the
// pods the helper would leave, without listing them a second time.
type podListRecorder struct {
	kubernetes.Interface
	pods *corev1.PodList
}

func (r *podListRecorder) CoreV1() typedcorev1.CoreV1Interface {
	return recordingCoreV1{CoreV1Interface: r.Interface.CoreV1(), r: r}
}

type recordingCoreV1 struct {
	typedcorev1.CoreV1Interface
	r *podListRecorder
}

func (c recordingCoreV1) Pods(namespace string) typedcorev1.PodInterface {
	return recordingPods{PodInterface: c.CoreV1Interface.Pods(namespace), r: c.r}
}

type recordingPods struct {
	typedcorev1.PodInterface
	r *podListRecorder
}

func (p recordingPods) List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error) {
	list, err := p.PodInterface.List(ctx, opts)
	if err == nil {
		p.r.pods = list
	}
	return list, err
}

// DrainPlanSummary is a drain plan in one line: "as of T: would evict 3 pods
// (shop/web-1, …), leave 1 (…), PodDisruptionBudgets shop/web (minAvailable
// 3, 1 disruption allowed)", for messages, notices and the CLI.
func DrainPlanSummary(p *v1alpha1.DrainPlan) string {
	if p == nil {
		return ""
	}
	s := "as of " + p.ObservedAt.UTC().Format(time.RFC3339) + ": "
	if p.Error != "" && p.EvictCount == 0 && p.KeepCount == 0 {
		return s + "no plan: " + p.Error
	}
	s += "would evict " + podCount(int(p.EvictCount))
	if len(p.Evict) > 0 {
		s += " (" + listWithMore(p.Evict, int(p.EvictCount)) + ")"
	}
	keep := make([]string, 0, len(p.Keep))
	for _, k := range p.Keep {
		keep = append(keep, k.Name)
	}
	s += fmt.Sprintf(", leave %d", p.KeepCount)
	if len(keep) > 0 {
		s += " (" + listWithMore(keep, int(p.KeepCount)) + ")"
	}
	if len(p.PDBs) == 0 {
		s += ", no PodDisruptionBudget covers them"
	} else {
		var pdbs []string
		for _, b := range p.PDBs {
			rule := ""
			if b.Budget != "" {
				rule = b.Budget + ", "
			}
			allowed := "disruptions"
			if b.DisruptionsAllowed == 1 {
				allowed = "disruption"
			}
			pdbs = append(pdbs, fmt.Sprintf("%s (%s%d %s allowed)", b.Name, rule, b.DisruptionsAllowed, allowed))
		}
		s += ", PodDisruptionBudgets " + strings.Join(pdbs, ", ")
	}
	if p.Blocked != "" {
		s += "; " + p.Blocked
	}
	if p.Error != "" {
		s += "; incomplete: " + p.Error
	}
	return s
}

// summaryNames is how many names a one-line summary lists.
const summaryNames = 10

// podCount reads "1 pod", "3 pods".
func podCount(n int) string {
	if n == 1 {
		return "1 pod"
	}
	return fmt.Sprintf("%d pods", n)
}

// listWithMore joins the first names, saying how many of total it leaves
// out.
func listWithMore(names []string, total int) string {
	names = names[:min(len(names), summaryNames)]
	s := strings.Join(names, ", ")
	if more := total - len(names); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}
