package v1alpha1_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

var durationRE = regexp.MustCompile(v1alpha1.DurationPattern)

// Every rule of the generated CRDs that evaluates duration() is guarded by
// DurationPattern, and every duration field checks the pattern first, with
// a message that shows an example: a malformed duration is refused with
// "must be a duration such as 90s, 10m or 1h30m", never with CEL's type
// conversion error.
func TestDurationRulesAreGuarded(t *testing.T) {
	guard := "matches('" + v1alpha1.DurationPattern + "')"
	fields := 0
	for _, file := range []string{"nodeward.io_remediationpolicies.yaml", "nodeward.io_remediations.yaml"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "crd", file))
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(raw, crd); err != nil {
			t.Fatal(err)
		}
		var walk func(path string, s *apiextensionsv1.JSONSchemaProps)
		walk = func(path string, s *apiextensionsv1.JSONSchemaProps) {
			for i, r := range s.XValidations {
				if !strings.Contains(r.Rule, "duration(") {
					continue
				}
				if !strings.Contains(r.Rule, guard) {
					t.Errorf("%s %s: rule %d evaluates duration() without the DurationPattern guard: %s", file, path, i, r.Rule)
				}
				if s.Type == "string" {
					if i == 0 || s.XValidations[0].Rule != "self."+guard || !strings.Contains(s.XValidations[0].Message, "such as 90s, 10m or 1h30m") {
						t.Errorf("%s %s: the first rule is not the duration format check", file, path)
					}
					if s.MaxLength == nil {
						t.Errorf("%s %s: a duration without maxLength", file, path)
					}
					fields++
				}
			}
			for name, p := range s.Properties {
				walk(path+"."+name, &p)
			}
			if s.Items != nil && s.Items.Schema != nil {
				walk(path+"[]", s.Items.Schema)
			}
		}
		for _, v := range crd.Spec.Versions {
			walk("", v.Schema.OpenAPIV3Schema)
		}
	}
	if fields < 19 { // 13 in a policy, the action's 6 again in a record
		t.Errorf("found %d duration fields, want at least 19", fields)
	}
}

// The pattern accepts what Go (and so the CRDs' defaults and a Go client)
// writes, and refuses what people get wrong.
func TestDurationPattern(t *testing.T) {
	for _, d := range []time.Duration{0, time.Second, 90 * time.Second, 10 * time.Minute, 90 * time.Minute, 24 * time.Hour, 8760 * time.Hour, 1500 * time.Millisecond, 1500 * time.Nanosecond, -time.Second} {
		if !durationRE.MatchString(d.String()) {
			t.Errorf("%q (Go's own form) refused", d.String())
		}
	}
	for _, s := range []string{"0", "10s", "1h30m", "1.5h", ".5s", "1.s", "100ms", "2562h", "99999h59m59.999999999s", "+5m", "1h1h"} {
		if !durationRE.MatchString(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "5 minutes", "5", "1d", "1w", "10 s", "s", ".s", "1h 30m", "PT5M", "123456h", "1h1h1h1h1h", "1e3s", "ten", "0x10s", "--1s"} {
		if durationRE.MatchString(s) {
			t.Errorf("%q accepted", s)
		}
	}
}

// Whatever matches the pattern parses: admission never reaches CEL's type
// conversion error.
func FuzzDurationPattern(f *testing.F) {
	for _, s := range []string{"0", "10s", "1h30m0s", "5 minutes", "", "99999h9999999m9999999s9999999ms", "1.5µs", "-.5h", "+0", "1.h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !durationRE.MatchString(s) {
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%q matches DurationPattern but does not parse: %v", s, err)
		}
		// CEL's duration range is ±10000 years; the pattern stays far inside.
		if d > 1e6*time.Hour || d < -1e6*time.Hour {
			t.Fatalf("%q = %s: larger than the pattern should allow", s, d)
		}
	})
}
