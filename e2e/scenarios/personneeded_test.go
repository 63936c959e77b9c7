package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/cmd/kubectl-nodeward/cli"
	"github.com/nodeward/nodeward/e2e/harness"
	"github.com/nodeward/nodeward/e2e/sim"
	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations"
)

// Issue 12: a cause only a person can fix gets a Cordon or a Notify, never a
// restart or a drain. node-problem-detector reports KernelDeadlock on two
// nodes. On the one a Cordon policy covers, nodeward cordons it (as its own
// cordon), evicts nothing, and once a person fixed it and it stayed healthy
// for uncordonAfter, uncordons it. On the one a Notify policy covers,
// nodeward touches nothing: the record names the cause, its evidence and
// that a person is needed, the webhook gets a PersonNeeded notice and the
// record a PersonNeeded Event.
func TestPersonNeededCordonAndNotify(t *testing.T) {
	var (
		mu      sync.Mutex
		noticed []remediations.ApprovalNotice
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n remediations.ApprovalNotice
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		noticed = append(noticed, n)
		mu.Unlock()
	}))
	defer hook.Close()
	urlFile := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(urlFile, []byte(hook.URL), 0o600); err != nil {
		t.Fatal(err)
	}

	const cordoned, notified = "worker-cordon", "worker-notify"
	nodes := []harness.NodeSpec{
		{Name: cordoned, Labels: map[string]string{"pool": "cordon"}},
		{Name: notified, Labels: map[string]string{"pool": "notify"}},
	}
	for _, n := range []string{"healthy-0", "healthy-1", "healthy-2", "healthy-3"} {
		nodes = append(nodes, harness.NodeSpec{Name: n})
	}
	c := startClusterWith(t, harness.Options{Nodes: nodes, OperatorArgs: []string{"--approval-webhook-url-file=" + urlFile}})
	ctx := context.Background()

	cordonPolicy := policy("kernel-cordon", map[string]string{"pool": "cordon"}, v1alpha1.ModeAutomatic, v1alpha1.CauseKernelDeadlock, v1alpha1.ActionCordon, 0)
	cordonPolicy.Spec.Action.Cordon = &v1alpha1.CordonParams{UncordonAfter: &metav1.Duration{Duration: 10 * time.Second}}
	notifyPolicy := policy("kernel-notify", map[string]string{"pool": "notify"}, v1alpha1.ModeAutomatic, v1alpha1.CauseKernelDeadlock, v1alpha1.ActionNotify, 0)
	for _, p := range []*v1alpha1.RemediationPolicy{cordonPolicy, notifyPolicy} {
		if err := c.Client.Create(ctx, p); err != nil {
			t.Fatalf("creating policy %s: %v", p.Name, err)
		}
	}
	for _, n := range []string{cordoned, notified} {
		waitReport(t, c, n, func(r *v1alpha1.NodeReport) bool { return r.Status.Probes != nil })
	}
	fault := time.Now()
	for _, n := range []string{cordoned, notified} {
		if _, err := sim.Inject(ctx, c.Node(n), "kernel-deadlock"); err != nil {
			t.Fatal(err)
		}
	}

	recordOf := func(ctx context.Context, node string, action v1alpha1.ActionType) *v1alpha1.Remediation {
		recs, err := remediationsFor(ctx, c.Client, node)
		if err != nil {
			return nil
		}
		for i := range recs {
			if recs[i].Spec.Action.Type == action {
				return &recs[i]
			}
		}
		return nil
	}

	// Notify: Succeeded/Notified at once, the node untouched.
	var note v1alpha1.Remediation
	eventually(t, 2*time.Minute, "the Notify record on "+notified+" to end", func(ctx context.Context) (bool, error) {
		r := recordOf(ctx, notified, v1alpha1.ActionNotify)
		if r == nil || !r.Status.Phase.IsTerminal() {
			return false, nil
		}
		note = *r
		return true, nil
	})
	logRecord(t, &note, fault)
	if note.Status.Phase != v1alpha1.PhaseSucceeded || note.Status.Reason != v1alpha1.ReasonNotified {
		t.Fatalf("Notify record %s/%s: %s", note.Status.Phase, note.Status.Reason, note.Status.Message)
	}
	ci, _ := v1alpha1.CauseKernelDeadlock.Info()
	for _, want := range []string{"no action was taken", "KernelDeadlock on " + notified, "blocked for more than 120 seconds", "a person is needed: " + ci.Summary} {
		if !strings.Contains(note.Status.Message, want) {
			t.Errorf("Notify record message %q does not contain %q", note.Status.Message, want)
		}
	}
	eventually(t, 30*time.Second, "a PersonNeeded notice at the webhook", func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range noticed {
			if n.Event == remediations.EventPersonNeeded && n.Remediation == note.Name && n.Cause == string(v1alpha1.CauseKernelDeadlock) && len(n.Evidence) > 0 {
				return true, nil
			}
		}
		return false, nil
	})
	eventually(t, 30*time.Second, "a PersonNeeded Event", func(ctx context.Context) (bool, error) {
		evs := &eventsv1.EventList{}
		if err := c.Client.List(ctx, evs); err != nil {
			return false, nil
		}
		for _, e := range evs.Items {
			if e.Reason == remediations.EventPersonNeeded && e.Regarding.Name == note.Name {
				return true, nil
			}
		}
		return false, nil
	})
	if n := getNode(t, c, notified); n.Spec.Unschedulable || len(n.Annotations[v1alpha1.AnnotationCordonedBy]) > 0 {
		t.Errorf("Notify touched %s: unschedulable=%v annotations=%v", notified, n.Spec.Unschedulable, n.Annotations)
	}
	tasks := &v1alpha1.NodeTaskList{}
	if err := c.Client.List(ctx, tasks); err != nil || len(tasks.Items) != 0 {
		t.Errorf("NodeTasks %v (%v): neither action hands anything to the node agent", tasks.Items, err)
	}

	// Cordon: nodeward's cordon, the record waits for the node to be healthy.
	var cord v1alpha1.Remediation
	eventually(t, 2*time.Minute, "the Cordon step on "+cordoned+" to succeed", func(ctx context.Context) (bool, error) {
		r := recordOf(ctx, cordoned, v1alpha1.ActionCordon)
		if r == nil {
			return false, nil
		}
		cord = *r
		return stepPhase(&cord, v1alpha1.StepCordon) == v1alpha1.StepSucceeded, nil
	})
	if n := getNode(t, c, cordoned); !n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationCordonedBy] != cord.Name {
		t.Fatalf("%s after Cordon: unschedulable=%v annotations=%v", cordoned, n.Spec.Unschedulable, n.Annotations)
	}
	time.Sleep(3 * time.Second) // the cause is still there: nothing is uncordoned
	if n := getNode(t, c, cordoned); !n.Spec.Unschedulable {
		t.Fatalf("%s uncordoned while KernelDeadlock is still diagnosed", cordoned)
	}

	// A person fixes the kernel: node-problem-detector says so.
	fixed := time.Now()
	c.Node(cordoned).Kubelet.SetCondition(corev1.NodeCondition{Type: "KernelDeadlock", Status: corev1.ConditionFalse, Reason: "KernelHasNoDeadlock", Message: "kernel has no deadlock"})
	eventually(t, 2*time.Minute, "the Cordon record on "+cordoned+" to end", func(ctx context.Context) (bool, error) {
		r := recordOf(ctx, cordoned, v1alpha1.ActionCordon)
		if r == nil || !r.Status.Phase.IsTerminal() {
			return false, nil
		}
		cord = *r
		return true, nil
	})
	logRecord(t, &cord, fault)
	if cord.Status.Phase != v1alpha1.PhaseSucceeded || cord.Status.Reason != v1alpha1.ReasonRecovered {
		t.Fatalf("Cordon record %s/%s: %s", cord.Status.Phase, cord.Status.Reason, cord.Status.Message)
	}
	if u := cord.Status.Drain.UncordonedAt; u == nil || u.Sub(fixed) < 10*time.Second-time.Second {
		t.Errorf("uncordoned at %v, less than uncordonAfter (10s) after the fix at %s", u, fixed)
	}
	if n := getNode(t, c, cordoned); n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationCordonedBy] != "" {
		t.Errorf("%s after Uncordon: unschedulable=%v annotations=%v", cordoned, n.Spec.Unschedulable, n.Annotations)
	}

	// kubectl nodeward history shows both.
	var out bytes.Buffer
	h := &cli.HistoryOptions{Env: &cli.Env{Client: c.Client, Out: &out, Clock: clocktesting.NewFakeClock(time.Now())}}
	if err := h.Validate(nil); err != nil {
		t.Fatal(err)
	}
	if err := h.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl nodeward history:\n%s", out.String())
	for _, want := range []string{"Notify", "Notified", "Cordon", "Recovered"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("history does not show %q", want)
		}
	}
}

func getNode(t *testing.T, c *harness.Cluster, name string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{}
	if err := c.Client.Get(context.Background(), client.ObjectKey{Name: name}, n); err != nil {
		t.Fatal(err)
	}
	return n
}
