// Package admission holds the operator's admission webhooks, served by the
// manager's webhook server. There is one: the approval stamp, which names
// who decided a RequireApproval remediation and when from the admission
// request instead of the client.
package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// ApprovalStampPath is where the approval stamp is served; the
// MutatingWebhookConfiguration nodeward-approval-stamp
// (config/webhook/approval_stamp.yaml) calls it.
const ApprovalStampPath = "/stamp-approval"

// ApprovalStamp is a mutating admission webhook. On an update of a
// Remediation (the main resource, not status) that sets approval where the
// stored object had none, it overwrites approval.decidedBy with the
// request's username and approval.decidedAt with its own clock, whatever the
// client sent. It allows every other request unchanged. Whether the caller
// may decide at all is for the ValidatingAdmissionPolicy
// nodeward-remediation-approval (config/admission/approval.yaml), which runs
// after every mutation.
type ApprovalStamp struct {
	Clock clock.PassiveClock
}

var _ admission.Handler = &ApprovalStamp{}

// Register serves an ApprovalStamp with clk at ApprovalStampPath on srv.
func Register(srv webhook.Server, clk clock.PassiveClock) {
	srv.Register(ApprovalStampPath, &webhook.Admission{Handler: &ApprovalStamp{Clock: clk}})
}

// Handle stamps a new approval with a JSON patch of exactly two fields,
// leaving the rest of the object as the client sent it.
func (s *ApprovalStamp) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Update || req.SubResource != "" ||
		req.Resource.Group != v1alpha1.GroupVersion.Group || req.Resource.Resource != "remediations" {
		return admission.Allowed("")
	}
	was, err := approvalOf(req.OldObject.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("old remediation %s: %w", req.Name, err))
	}
	is, err := approvalOf(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("remediation %s: %w", req.Name, err))
	}
	if was != nil || is == nil {
		return admission.Allowed("")
	}
	user := req.UserInfo.Username
	if user == "" {
		return admission.Denied(fmt.Sprintf("the request deciding remediation %s names no user, so approval.decidedBy can't be stamped", req.Name))
	}
	at := s.Clock.Now().UTC().Format(time.RFC3339) // as metav1.Time stores it
	logf.FromContext(ctx).Info("Stamping approval", "remediation", req.Name, "decision", string(is["decision"]),
		"decidedBy", user, "decidedAt", at, "clientDecidedBy", string(is["decidedBy"]), "clientDecidedAt", string(is["decidedAt"]))
	// "add" sets a member of an object whether it exists or not (RFC 6902).
	return admission.Patched("",
		jsonpatch.JsonPatchOperation{Operation: "add", Path: "/approval/decidedBy", Value: user},
		jsonpatch.JsonPatchOperation{Operation: "add", Path: "/approval/decidedAt", Value: at},
	)
}

// approvalOf returns the members of raw's top-level approval, or nil when
// it has none (absent or null).
func approvalOf(raw []byte) (map[string]json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, errors.New("the admission request carries no object")
	}
	var obj struct {
		Approval json.RawMessage `json:"approval"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("decoding the object: %w", err)
	}
	if len(obj.Approval) == 0 || string(obj.Approval) == "null" {
		return nil, nil
	}
	var approval map[string]json.RawMessage
	if err := json.Unmarshal(obj.Approval, &approval); err != nil || approval == nil {
		return nil, fmt.Errorf("approval must be an object with decision, reason, decidedBy and decidedAt, not %s", obj.Approval)
	}
	return approval, nil
}
