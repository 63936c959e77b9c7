package cli

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// none stands for a value that is not set, as in kubectl.
const none = "<none>"

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

// age is how long ago t was, kubectl-style: "3m10s", "5h", "2d3h".
func age(t, now time.Time) string {
	return duration.HumanDuration(max(now.Sub(t), 0))
}

// timestamp is a time in RFC3339 with its age: "2026-01-02T15:04:05Z (3m10s ago)".
func timestamp(t *metav1.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return none
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), age(t.Time, now))
}

// took is how long something from start to end took: "2s", or "running for
// 1m5s" while it has no end.
func took(start, end *metav1.Time, now time.Time) string {
	switch {
	case start == nil:
		return none
	case end == nil:
		return "running for " + formatDuration(now.Sub(start.Time))
	default:
		return formatDuration(end.Sub(start.Time))
	}
}

// formatDuration rounds to seconds: the API keeps times to the second.
func formatDuration(d time.Duration) string {
	if d < time.Second {
		return "<1s"
	}
	return d.Round(time.Second).String()
}

// mark is ✓ for a check that passed or evidence for a cause, ✗ otherwise.
func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// evidenceLine is one evidence or check line: mark, source and message, and
// when the fact was observed.
func evidenceLine(e v1alpha1.Evidence, now time.Time) string {
	s := fmt.Sprintf("%s %-14s %s", mark(e.Supports), e.Source, oneLine(e.Message))
	if e.ObservedAt != nil {
		s += fmt.Sprintf(" (observed %s ago)", age(e.ObservedAt.Time, now))
	}
	return s
}

// unitState reads "kubelet.service inactive/dead, disabled, since 2026-01-02T15:04:05Z (3m10s ago)".
func unitState(u v1alpha1.UnitState, now time.Time) string {
	name := u.UnitName
	if name == "" {
		name = string(u.Name)
	}
	s := name + " " + u.ActiveState
	if u.SubState != "" {
		s += "/" + u.SubState
	}
	if u.UnitFileState != "" {
		s += ", " + u.UnitFileState
	}
	if u.Since != nil {
		s += ", since " + timestamp(u.Since, now)
	}
	return s
}

// oneLine keeps a message on one line of output.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// field writes "Key:       value", aligned.
func field(b *strings.Builder, indent, key, value string) {
	fmt.Fprintf(b, "%s%-12s %s\n", indent, key+":", value)
}
