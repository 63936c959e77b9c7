// Package policies decides: it matches a node's diagnosed causes against the
// RemediationPolicies that cover the node and creates one Remediation record
// per decision. It never acts on a node itself; the executor in remediations/
// does.
package policies

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// LabelControlPlane marks control-plane nodes.
const LabelControlPlane = "node-role.kubernetes.io/control-plane"

// Covers reports whether the policy covers the node, and if not, why.
func Covers(p *v1alpha1.RemediationPolicy, node *corev1.Node) (bool, string) {
	return NewCoverage(p).Covers(node)
}

// Coverage is a policy's node selection with its selector parsed once, for
// checking many nodes.
type Coverage struct {
	includeControlPlane bool
	sel                 labels.Selector // nil: every node
	selErr              error
}

// NewCoverage parses the policy's node selector.
func NewCoverage(p *v1alpha1.RemediationPolicy) *Coverage {
	c := &Coverage{includeControlPlane: p.Spec.IncludeControlPlane}
	if p.Spec.NodeSelector != nil {
		// ValidateSelector first: what it refuses (and the policy's status
		// reports as InvalidNodeSelector) covers no node, even where the
		// selector parser is more lenient.
		if c.selErr = ValidateSelector(p.Spec.NodeSelector); c.selErr == nil {
			c.sel, c.selErr = metav1.LabelSelectorAsSelector(p.Spec.NodeSelector)
		}
	}
	return c
}

// Covers reports whether the policy covers the node, and if not, why.
func (c *Coverage) Covers(node *corev1.Node) (bool, string) {
	if node.Labels[v1alpha1.LabelExclude] == "true" {
		return false, fmt.Sprintf("node carries %s=true", v1alpha1.LabelExclude)
	}
	if _, cp := node.Labels[LabelControlPlane]; cp && !c.includeControlPlane {
		return false, "control-plane node and the policy does not set includeControlPlane"
	}
	if c.selErr != nil {
		// Fail closed: a selector that can't be read selects nothing.
		return false, fmt.Sprintf("spec.nodeSelector is invalid: %v", c.selErr)
	}
	if c.sel != nil && !c.sel.Matches(labels.Set(node.Labels)) {
		return false, "node does not match spec.nodeSelector"
	}
	return true, ""
}

// Match is a policy that won a cause on a node.
type Match struct {
	Policy *v1alpha1.RemediationPolicy
	Cause  v1alpha1.DiagnosedCause
	// For is how long the cause must persist under this policy.
	For time.Duration
}

// Select returns, for the first cause (in the diagnosis' ranking) that any
// active policy covering the node handles, the winning policy: the highest
// spec.priority, then the name that sorts first. A policy whose selector
// can't be parsed covers no node (as the apiserver would read it) and takes
// no part. A policy that covers the node but can't act as written
// (CheckPolicy: a window that can't be read, a binding admission refuses)
// still wins: falling through to a lower-priority policy could act where
// the broken one was written to hold back (a window, an approval, a storm
// breaker), so its record is held instead, saying which field is wrong
// (Admit), and its status says Ready=False — it blocks, never silently.
func Select(policies []v1alpha1.RemediationPolicy, node *corev1.Node, causes []v1alpha1.DiagnosedCause) (*Match, bool) {
	ordered := make([]*v1alpha1.RemediationPolicy, 0, len(policies))
	for i := range policies {
		p := &policies[i]
		if p.Spec.Paused || !p.DeletionTimestamp.IsZero() {
			continue
		}
		if ok, _ := Covers(p, node); !ok {
			continue
		}
		ordered = append(ordered, p)
	}
	sort.Slice(ordered, func(i, j int) bool {
		if ordered[i].Spec.Priority != ordered[j].Spec.Priority {
			return ordered[i].Spec.Priority > ordered[j].Spec.Priority
		}
		return ordered[i].Name < ordered[j].Name
	})
	for _, c := range causes {
		for _, p := range ordered {
			for _, cm := range p.Spec.Causes {
				if cm.Cause == c.Cause {
					return &Match{Policy: p, Cause: c, For: cm.For.Duration}, true
				}
			}
		}
	}
	return nil, false
}

// RecordName is the deterministic name of the record for one episode of a
// cause on a node: a second decision about the same episode can't create a
// second record, even across operator restarts. It is at most
// MaxRecordName characters long.
func RecordName(node string, cause v1alpha1.Cause, since metav1.Time) string {
	base := fmt.Sprintf("%s-%s-%d", node, strings.ToLower(string(cause)), since.Unix())
	if len(base) <= MaxRecordName {
		return base
	}
	sum := sha256.Sum256([]byte(base))
	// A cut right after a dot would leave ".-", which is not a valid name.
	return strings.TrimRight(base[:MaxRecordName-17], ".") + "-" + hex.EncodeToString(sum[:])[:16]
}

// MaxRecordName is the longest record name: 253 (a name's limit) less the
// 17 characters the event recorder appends ("." and the time in hex) to
// name an Event about the record, so that Events about records of nodes
// with the longest names can still be written.
const MaxRecordName = 253 - 17
