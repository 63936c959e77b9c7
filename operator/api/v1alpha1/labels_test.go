package v1alpha1

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// dnsName is a valid DNS subdomain (a node name) of exactly n characters:
// labels of at most 63 characters joined by dots.
func dnsName(n int, seed string) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		label := strings.Repeat(seed, 63)[:min(63, n-b.Len())]
		if n-b.Len()-len(label) == 1 {
			label = label[:len(label)-1] // never end on a dot
		}
		b.WriteString(label)
	}
	return b.String()
}

func TestLabelValue(t *testing.T) {
	cloud := "ip-10-100-123-234.ap-southeast-2.compute.internal"
	long253 := dnsName(253, "abc")
	for _, tc := range []struct {
		name, in string
		// want is the exact value, or "" to check only the shape.
		want string
		// hashed: the value is a prefix of the name plus a hash.
		hashed bool
		// prefix the value must start with when hashed.
		prefix string
	}{
		{name: "short node name", in: "worker-1", want: "worker-1"},
		{name: "empty", in: "", want: ""},
		{name: "cloud node name (49 chars, dots)", in: cloud, want: cloud},
		{name: "exactly 63", in: strings.Repeat("a", 63), want: strings.Repeat("a", 63)},
		{name: "64 chars", in: strings.Repeat("a", 64), hashed: true, prefix: strings.Repeat("a", 46) + "-"},
		{name: "record name of a cloud node (72 chars)", in: cloud + "-kubeletdown-1795612219", hashed: true,
			prefix: "ip-10-100-123-234.ap-southeast-2.compute.inter-"},
		{name: "253-char DNS subdomain", in: long253, hashed: true},
		{name: "70-char policy name", in: "restart-dead-kubelets-on-every-worker-pool-in-every-zone-of-the-fleet1", hashed: true,
			prefix: "restart-dead-kubelets-on-every-worker-pool-in-"},
		{name: "cut right after a dot", in: strings.Repeat("a", 45) + "." + strings.Repeat("b", 40), hashed: true,
			prefix: strings.Repeat("a", 45) + "-"},
		{name: "cut right after dashes", in: strings.Repeat("a", 40) + "------" + strings.Repeat("b", 40), hashed: true,
			prefix: strings.Repeat("a", 40) + "-"},
		{name: "short but invalid characters", in: "a/b c", hashed: true, prefix: "a-b-c-"},
		{name: "nothing readable", in: strings.Repeat(".", 70), hashed: true},
		{name: "leading dots", in: "..." + strings.Repeat("x", 70), hashed: true, prefix: strings.Repeat("x", 43) + "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := LabelValue(tc.in)
			if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
				t.Fatalf("LabelValue(%q) = %q, not a valid label value: %v", tc.in, got, errs)
			}
			if again := LabelValue(tc.in); again != got {
				t.Fatalf("not deterministic: %q then %q", got, again)
			}
			if !tc.hashed {
				if got != tc.want {
					t.Fatalf("LabelValue(%q) = %q, want %q", tc.in, got, tc.want)
				}
				return
			}
			if len(got) > 63 || got == tc.in {
				t.Fatalf("LabelValue(%q) = %q (%d chars), want a hashed value", tc.in, got, len(got))
			}
			hash := got[max(0, len(got)-labelHashLen):]
			if strings.Trim(hash, "0123456789abcdef") != "" || len(hash) != labelHashLen {
				t.Fatalf("LabelValue(%q) = %q, want it to end in %d hex characters", tc.in, got, labelHashLen)
			}
			if !strings.HasPrefix(got, tc.prefix) {
				t.Fatalf("LabelValue(%q) = %q, want prefix %q", tc.in, got, tc.prefix)
			}
		})
	}
	if len(long253) != 253 || len(validation.IsDNS1123Subdomain(long253)) > 0 {
		t.Fatalf("test name: %d chars, %v", len(long253), validation.IsDNS1123Subdomain(long253))
	}
}

// Names that share their readable prefix get different values.
func TestLabelValueDistinct(t *testing.T) {
	seen := map[string]string{}
	base := dnsName(240, "node")
	for _, suffix := range []string{"a", "b", "c1", "c2", "x-y", "x.y", "0", "00"} {
		in := base + suffix
		v := LabelValue(in)
		if prev, dup := seen[v]; dup {
			t.Fatalf("%q and %q share label value %q", prev, in, v)
		}
		seen[v] = in
	}
}
