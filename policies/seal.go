package policies

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// AnnotationSeal on a Remediation holds the operator's seal over the record's
// name and decision: proof that the policy controller made this decision, not
// a person who may create records. A label or field a person could copy is
// no such proof; the seal is an HMAC-SHA256 with a key only the operator
// holds (a Secret in its namespace).
const AnnotationSeal = "nodeward.io/seal"

// SealKeyBytes is the length of a seal key.
const SealKeyBytes = 32

// sealVersion prefixes every seal and proof, so the encoding can change.
const sealVersion = "v1:"

// Sealer seals records and proves their start with the operator's key.
type Sealer struct{ key []byte }

// NewSealer returns a Sealer for key, which must be at least SealKeyBytes.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) < SealKeyBytes {
		return nil, fmt.Errorf("seal key has %d bytes, want at least %d", len(key), SealKeyBytes)
	}
	return &Sealer{key: append([]byte(nil), key...)}, nil
}

// ErrNoSeal: the record carries no seal (not made by this operator).
var ErrNoSeal = errors.New("the record carries no " + AnnotationSeal + " annotation")

// ErrBadSeal: the record's seal does not match its name and decision.
var ErrBadSeal = errors.New("the record's " + AnnotationSeal + " does not match its name and decision (spec.nodeName, cause, causeSince, policy, policyGeneration, action, mode)")

// mac hashes a domain and length-prefixed fields: no two field lists
// encode alike.
func (s *Sealer) mac(domain string, fields ...[]byte) string {
	h := hmac.New(sha256.New, s.key)
	write := func(b []byte) {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
		h.Write(b)
	}
	write([]byte(domain))
	for _, f := range fields {
		write(f)
	}
	return sealVersion + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// Seal is the seal of a record named name with spec: over the name and the
// decision fields. Times count in whole seconds, as the API stores them.
func (s *Sealer) Seal(name string, spec *v1alpha1.RemediationSpec) string {
	action, err := json.Marshal(spec.Action) // struct fields: a fixed order
	if err != nil {
		action = []byte("unencodable:" + err.Error())
	}
	return s.mac("nodeward.io/remediation-seal",
		[]byte(name),
		[]byte(spec.NodeName),
		[]byte(spec.Cause),
		[]byte(strconv.FormatInt(spec.CauseSince.Unix(), 10)),
		[]byte(spec.Policy),
		[]byte(strconv.FormatInt(spec.PolicyGeneration, 10)),
		action,
		[]byte(spec.Mode),
	)
}

// SealRecord puts the seal on a record about to be created.
func (s *Sealer) SealRecord(rem *v1alpha1.Remediation) {
	if rem.Annotations == nil {
		rem.Annotations = map[string]string{}
	}
	rem.Annotations[AnnotationSeal] = s.Seal(rem.Name, &rem.Spec)
}

// CheckSeal says whether the record carries this operator's seal over its
// name and decision. A nil Sealer (no key) trusts nothing.
func (s *Sealer) CheckSeal(rem *v1alpha1.Remediation) error {
	got := rem.Annotations[AnnotationSeal]
	if got == "" {
		return ErrNoSeal
	}
	if s == nil {
		return errors.New("this operator has no seal key, so it can't verify the record's seal")
	}
	if !hmac.Equal([]byte(got), []byte(s.Seal(rem.Name, &rem.Spec))) {
		return ErrBadSeal
	}
	return nil
}

// StartProof is the proof the executor stamps into status.startProof when it
// starts a record: over the record's name, UID and status.startedAt (whole
// seconds). A status someone else wrote can't carry it.
func (s *Sealer) StartProof(name string, uid types.UID, startedAt time.Time) string {
	return s.mac("nodeward.io/remediation-start", []byte(name), []byte(uid), []byte(strconv.FormatInt(startedAt.Unix(), 10)))
}

// CheckStartProof reports whether the record's status carries a start
// proof this operator made for this record (name, UID, startedAt).
func (s *Sealer) CheckStartProof(rem *v1alpha1.Remediation) bool {
	if s == nil || rem.Status.StartProof == "" || rem.Status.StartedAt == nil {
		return false
	}
	return hmac.Equal([]byte(rem.Status.StartProof), []byte(s.StartProof(rem.Name, rem.UID, rem.Status.StartedAt.Time)))
}
