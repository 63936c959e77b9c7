package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// now is the webhook's (fake) clock.
var now = time.Date(2031, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

func record(approval *v1alpha1.Approval) *v1alpha1.Remediation {
	return &v1alpha1.Remediation{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Remediation"},
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1-kubeletdown-1"},
		Spec: v1alpha1.RemediationSpec{NodeName: "worker-1", Cause: v1alpha1.CauseKubeletDown, Policy: "gated",
			Action: v1alpha1.Action{Type: v1alpha1.ActionRestartKubelet}, Mode: v1alpha1.ModeRequireApproval},
		Approval: approval,
		Status:   v1alpha1.RemediationStatus{Phase: v1alpha1.PhasePending, Reason: v1alpha1.ReasonWaitingForApproval},
	}
}

// clientApproval is what a client that lies about who and when sends.
func clientApproval() *v1alpha1.Approval {
	return &v1alpha1.Approval{Decision: v1alpha1.DecisionApproved, Reason: "kubelet crashed", DecidedBy: "mallory",
		DecidedAt: metav1.NewTime(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))}
}

func raw(t *testing.T, obj any) runtime.RawExtension {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: b}
}

func request(t *testing.T, op admissionv1.Operation, subresource string, old, obj any) admission.Request {
	t.Helper()
	req := admissionv1.AdmissionRequest{
		UID:         "1",
		Name:        "worker-1-kubeletdown-1",
		Resource:    metav1.GroupVersionResource{Group: "nodeward.io", Version: "v1alpha1", Resource: "remediations"},
		SubResource: subresource,
		Operation:   op,
		UserInfo:    authenticationv1.UserInfo{Username: "alice"},
		Object:      raw(t, obj),
	}
	if old != nil {
		req.OldObject = raw(t, old)
	}
	return admission.Request{AdmissionRequest: req}
}

func handle(req admission.Request) admission.Response {
	s := &ApprovalStamp{Clock: clocktesting.NewFakePassiveClock(now)}
	return s.Handle(context.Background(), req)
}

func TestStampsANewApproval(t *testing.T) {
	for name, a := range map[string]*v1alpha1.Approval{
		"client sent decidedBy mallory and decidedAt 2000-01-01": clientApproval(),
		"client sent neither": {Decision: v1alpha1.DecisionRejected, Reason: "node is being replaced"},
	} {
		t.Run(name, func(t *testing.T) {
			resp := handle(request(t, admissionv1.Update, "", record(nil), record(a)))
			if !resp.Allowed {
				t.Fatalf("refused: %+v", resp.Result)
			}
			want := []jsonpatch.JsonPatchOperation{
				{Operation: "add", Path: "/approval/decidedBy", Value: "alice"},
				{Operation: "add", Path: "/approval/decidedAt", Value: "2031-03-14T15:09:26Z"},
			}
			if len(resp.Patches) != len(want) {
				t.Fatalf("patches = %+v, want %+v", resp.Patches, want)
			}
			for i := range want {
				if got := resp.Patches[i]; got.Operation != want[i].Operation || got.Path != want[i].Path || got.Value != want[i].Value {
					t.Errorf("patch %d = %+v, want %+v", i, got, want[i])
				}
			}
			// The stamped time reads back as the webhook's clock, to the second.
			var at metav1.Time
			if err := json.Unmarshal([]byte(`"`+resp.Patches[1].Value.(string)+`"`), &at); err != nil || !at.Equal(&metav1.Time{Time: now.Truncate(time.Second)}) {
				t.Errorf("decidedAt %v (%v), want %v", at, err, now.Truncate(time.Second))
			}
		})
	}
}

func TestLeavesEverythingElseAlone(t *testing.T) {
	decided := record(clientApproval())
	labelled := record(clientApproval())
	labelled.Labels = map[string]string{"x": "y"}
	for name, req := range map[string]admission.Request{
		"update without approval":                   request(t, admissionv1.Update, "", record(nil), record(nil)),
		"update of an already decided record":       request(t, admissionv1.Update, "", decided, labelled),
		"status update":                             request(t, admissionv1.Update, "status", record(nil), record(clientApproval())),
		"create (the validating policy refuses it)": request(t, admissionv1.Create, "", nil, record(clientApproval())),
		"another resource": func() admission.Request {
			r := request(t, admissionv1.Update, "", record(nil), record(clientApproval()))
			r.Resource.Resource = "remediationpolicies"
			return r
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			resp := handle(req)
			if !resp.Allowed || len(resp.Patches) != 0 || resp.Patch != nil {
				t.Errorf("allowed %v, patches %+v, want allowed with no patch", resp.Allowed, resp.Patches)
			}
		})
	}
}

func TestRefusesWhatItCannotStamp(t *testing.T) {
	noUser := request(t, admissionv1.Update, "", record(nil), record(clientApproval()))
	noUser.UserInfo.Username = ""
	if resp := handle(noUser); resp.Allowed || resp.Result.Code != http.StatusForbidden || !strings.Contains(resp.Result.Message, "decidedBy") {
		t.Errorf("no username: allowed %v, result %+v, want Forbidden naming decidedBy", resp.Allowed, resp.Result)
	}

	notAnObject := request(t, admissionv1.Update, "", record(nil), map[string]any{"approval": "yes"})
	if resp := handle(notAnObject); resp.Allowed || resp.Result.Code != http.StatusBadRequest || !strings.Contains(resp.Result.Message, "approval must be an object") {
		t.Errorf("approval a string: allowed %v, result %+v, want BadRequest naming approval", resp.Allowed, resp.Result)
	}

	noOld := request(t, admissionv1.Update, "", nil, record(clientApproval()))
	if resp := handle(noOld); resp.Allowed || resp.Result.Code != http.StatusBadRequest || !strings.Contains(resp.Result.Message, "old remediation") {
		t.Errorf("update without the old object: allowed %v, result %+v, want BadRequest", resp.Allowed, resp.Result)
	}
}

// Through the webhook server's mux, as the apiserver calls it: an
// AdmissionReview in, an AdmissionReview with a JSONPatch out.
func TestServedAtApprovalStampPath(t *testing.T) {
	srv := webhook.NewServer(webhook.Options{})
	Register(srv, clocktesting.NewFakePassiveClock(now))
	req := request(t, admissionv1.Update, "", record(nil), record(clientApproval()))
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	httpReq := httptest.NewRequest(http.MethodPost, ApprovalStampPath, bytes.NewReader(body))
	httpReq.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	srv.WebhookMux().ServeHTTP(w, httpReq)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("response %d %q: %v", w.Code, w.Body.String(), err)
	}
	r := out.Response
	want := `[{"op":"add","path":"/approval/decidedBy","value":"alice"},{"op":"add","path":"/approval/decidedAt","value":"2031-03-14T15:09:26Z"}]`
	if !r.Allowed || r.UID != "1" || r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch || string(r.Patch) != want {
		t.Errorf("response: allowed %v uid %q patchType %v patch %s, want allowed, uid 1, JSONPatch %s", r.Allowed, r.UID, r.PatchType, r.Patch, want)
	}
}
