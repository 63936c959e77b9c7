package v1alpha1

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Files that carry what the cause table generates, relative to the
// repository root.
const (
	causeEnumFile   = "operator/api/v1alpha1/common_types.go"
	causeRulesFile  = "operator/api/v1alpha1/remediationpolicy_types.go"
	causeReadme     = "README.md"
	causeTableBegin = "<!-- causes:begin (generated from the cause table: make generate) -->"
	causeTableEnd   = "<!-- causes:end -->"
)

// SyncCauseFiles brings the generated parts of the files under root in step
// with CauseTable: the Enum marker above `type Cause string`, the
// XValidation markers of RemediationPolicySpec that mention self.causes
// (replaced as one block where the first stood), and the README between
// its causes markers. It returns the files that were out of step, writing
// them only if write is set.
func SyncCauseFiles(root string, write bool) ([]string, error) {
	edits := map[string]func(string) (string, error){
		causeEnumFile: func(s string) (string, error) {
			return replaceLineBefore(s, "type Cause string", "// +kubebuilder:validation:Enum=", CauseEnumMarker())
		},
		causeRulesFile: func(s string) (string, error) {
			return replaceCauseRules(s, CausePolicyRules())
		},
		causeReadme: func(s string) (string, error) {
			i, j := strings.Index(s, causeTableBegin), strings.Index(s, causeTableEnd)
			if i < 0 || j < i {
				return "", fmt.Errorf("%s: no %q ... %q block", causeReadme, causeTableBegin, causeTableEnd)
			}
			return s[:i+len(causeTableBegin)] + "\n" + CauseDocTable() + s[j:], nil
		},
	}
	var stale []string
	for _, f := range []string{causeEnumFile, causeRulesFile, causeReadme} {
		path := filepath.Join(root, f)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		out, err := edits[f](string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if out == string(b) {
			continue
		}
		stale = append(stale, f)
		if write {
			if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
				return nil, err
			}
		}
	}
	return stale, nil
}

// replaceLineBefore replaces the line starting with prefix that comes
// (among the comment lines) right before the line anchor.
func replaceLineBefore(s, anchor, prefix, line string) (string, error) {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != anchor {
			continue
		}
		for k := i - 1; k >= 0 && strings.HasPrefix(lines[k], "//"); k-- {
			if strings.HasPrefix(lines[k], prefix) {
				lines[k] = line
				return strings.Join(lines, "\n"), nil
			}
		}
		return "", fmt.Errorf("no %q line above %q", prefix, anchor)
	}
	return "", fmt.Errorf("no line %q", anchor)
}

// replaceCauseRules replaces the XValidation markers that mention
// self.causes with rules, at the place of the first.
func replaceCauseRules(s string, rules []string) (string, error) {
	const marker = "// +kubebuilder:validation:XValidation:rule="
	var out []string
	done := false
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, marker) && strings.Contains(l, "self.causes") {
			if !done {
				out = append(out, rules...)
				done = true
			}
			continue
		}
		out = append(out, l)
	}
	if !done {
		return "", fmt.Errorf("no XValidation marker mentioning self.causes")
	}
	return strings.Join(out, "\n"), nil
}
