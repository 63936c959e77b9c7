package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"

	"k8s.io/apimachinery/pkg/util/validation"
)

// labelPrefixLen is how much of a long name LabelValue keeps readable: the
// prefix, a dash and 16 hex characters of the hash fit the 63 characters a
// label value may have.
const labelPrefixLen = validation.LabelValueMaxLength - 1 - labelHashLen

// labelHashLen is the number of hex characters of the name's sha256 that
// LabelValue appends (64 bits).
const labelHashLen = 16

// LabelValue is the value nodeward writes under one of its labels
// (LabelNode, LabelPolicy, LabelCause, LabelRemediation) for a name: the name
// itself when it is a valid label value, otherwise a readable prefix of it, a
// dash and 16 hex characters of the sha256 of the whole name — always a valid
// label value of at most 63 characters, the same for the same name. Node,
// record and policy names may have up to 253 characters, a label value 63.
//
// A label value is only an index: two names may share one (a long name's
// value could equal a short name that looks like it). Select by
// LabelValue(name), then keep only the objects whose spec names the name
// (spec.nodeName, spec.policy, spec.remediation).
func LabelValue(name string) string {
	if len(validation.IsValidLabelValue(name)) == 0 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	hash := hex.EncodeToString(sum[:])[:labelHashLen]
	prefix := []byte(name[:min(len(name), labelPrefixLen)])
	for i, c := range prefix {
		if !labelChar(c) {
			prefix[i] = '-'
		}
	}
	// A label value starts and ends with an alphanumeric character.
	start, end := 0, len(prefix)
	for start < end && !alphanumeric(prefix[start]) {
		start++
	}
	for end > start && !alphanumeric(prefix[end-1]) {
		end--
	}
	if start == end {
		return hash
	}
	return string(prefix[start:end]) + "-" + hash
}

func alphanumeric(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func labelChar(c byte) bool {
	return alphanumeric(c) || c == '-' || c == '_' || c == '.'
}
