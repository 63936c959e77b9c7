package host

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

const (
	cmFile  = v1alpha1.ConfigFileControllerManagerManifest
	kcFile  = v1alpha1.ConfigFileKubeletConfig
	graceK  = v1alpha1.ConfigKeyNodeMonitorGracePeriod
	freqK   = v1alpha1.ConfigKeyNodeStatusUpdateFrequency
	stampAt = "20261125T124539Z"
)

func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kubeadm", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// files writes the manifest and the kubelet config (either may be "" for
// absent) into a temp dir laid out like a node and returns an editor of them.
func files(t *testing.T, manifest, kubelet string) (*ConfigFiles, string, string) {
	t.Helper()
	root := t.TempDir()
	mp := filepath.Join(root, "etc/kubernetes/manifests/kube-controller-manager.yaml")
	kp := filepath.Join(root, "var/lib/kubelet/config.yaml")
	for p, content := range map[string]string{mp: manifest, kp: kubelet} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if content != "" {
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := NewConfigFiles(root, map[v1alpha1.ConfigFile]string{cmFile: DefaultControllerManagerManifest, kcFile: DefaultKubeletConfig})
	c.Now = func() time.Time { return time.Date(2026, 11, 25, 12, 45, 39, 0, time.UTC) }
	return c, mp, kp
}

// lineDiff returns the lines removed from a and added in b, in order.
func lineDiff(a, b string) (removed, added []string) {
	al, bl := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	i := 0
	for i < len(al) && i < len(bl) && al[i] == bl[i] {
		i++
	}
	j, k := len(al)-1, len(bl)-1
	for j >= i && k >= i && al[j] == bl[k] {
		j, k = j-1, k-1
	}
	return al[i : j+1], bl[i : k+1]
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// On kubeadm's manifest, which does not set the flag, the agent adds one
// line among the sorted flags and changes no other byte; the backup is the
// original, hidden from the kubelet; the file keeps its mode; a second edit
// rewrites only that line.
func TestManifestAddThenReplace(t *testing.T) {
	ctx := context.Background()
	orig := sample(t, "kube-controller-manager.yaml")
	c, mp, _ := files(t, orig, sample(t, "config.yaml"))

	got, err := c.ReadConfig(ctx, cmFile, graceK)
	if err != nil || got != "" {
		t.Fatalf("ReadConfig = %q, %v; want \"\" (absent, default)", got, err)
	}
	if d := DisplayConfigValue(graceK, got); d != "50s (default)" {
		t.Errorf("DisplayConfigValue = %q, want 50s (default)", d)
	}
	backup, err := c.WriteConfig(ctx, cmFile, graceK, "2m0s")
	if err != nil {
		t.Fatalf("WriteConfig: %v", err)
	}
	after := read(t, mp)
	removed, added := lineDiff(orig, after)
	if len(removed) != 0 || len(added) != 1 || added[0] != "    - --node-monitor-grace-period=2m0s\n" {
		t.Fatalf("diff: removed %q, added %q; want exactly one added flag line", removed, added)
	}
	if !strings.Contains(after, "    - --leader-elect=true\n    - --node-monitor-grace-period=2m0s\n    - --requestheader-client-ca-file=") {
		t.Errorf("the flag is not in its sorted place:\n%s", after)
	}
	// Reported as the host's path, as a person on the node finds it.
	if want := "/etc/kubernetes/manifests/.kube-controller-manager.yaml.nodeward-" + stampAt + ".bak"; backup != want {
		t.Errorf("backup = %s, want %s", backup, want)
	}
	backup = filepath.Join(c.Root, backup)
	if read(t, backup) != orig {
		t.Errorf("the backup is not the original file")
	}
	if fi, _ := os.Stat(mp); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600 as before", fi.Mode().Perm())
	}
	if got, err := c.ReadConfig(ctx, cmFile, graceK); err != nil || got != "2m0s" {
		t.Errorf("read back %q, %v; want 2m0s", got, err)
	}
	// Nothing the kubelet would turn into a pod: only the manifest is visible.
	entries, _ := os.ReadDir(filepath.Dir(mp))
	for _, e := range entries {
		if e.Name() != "kube-controller-manager.yaml" && !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("visible file %s left in the static pod directory", e.Name())
		}
		if strings.Contains(e.Name(), "tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}

	// The second edit in the same second gets its own backup and rewrites
	// just the flag's line.
	backup2, err := c.WriteConfig(ctx, cmFile, graceK, "3m0s")
	if err != nil {
		t.Fatal(err)
	}
	backup2 = filepath.Join(c.Root, backup2)
	if backup2 == backup || read(t, backup2) != after {
		t.Errorf("second backup %s: want a new file holding the first edit", backup2)
	}
	removed, added = lineDiff(after, read(t, mp))
	if len(removed) != 1 || len(added) != 1 || added[0] != "    - --node-monitor-grace-period=3m0s\n" {
		t.Errorf("diff of the second edit: removed %q, added %q", removed, added)
	}
	if bs, _ := Backups(mp); len(bs) != 2 {
		t.Errorf("Backups = %v, want 2", bs)
	}
}

// A manifest that sets the flag keeps its quoting, comment and line ending.
func TestManifestReplaceKeepsLayout(t *testing.T) {
	ctx := context.Background()
	orig := strings.Replace(sample(t, "kube-controller-manager.yaml"),
		"    - --leader-elect=true\n", "    - --leader-elect=true\n    - \"--node-monitor-grace-period=40s\" # seed 003\n", 1)
	orig = strings.ReplaceAll(orig, "\n", "\r\n")
	c, mp, _ := files(t, orig, "")
	if got, err := c.ReadConfig(ctx, cmFile, graceK); err != nil || got != "40s" {
		t.Fatalf("ReadConfig = %q, %v; want 40s", got, err)
	}
	if _, err := c.WriteConfig(ctx, cmFile, graceK, "1m30s"); err != nil {
		t.Fatal(err)
	}
	removed, added := lineDiff(orig, read(t, mp))
	if len(removed) != 1 || len(added) != 1 || added[0] != "    - \"--node-monitor-grace-period=1m30s\" # seed 003\r\n" {
		t.Errorf("diff: removed %q, added %q", removed, added)
	}
}

// Manifests whose layout the agent can't follow are refused and left alone.
func TestManifestRefused(t *testing.T) {
	ctx := context.Background()
	kcm := sample(t, "kube-controller-manager.yaml")
	cases := map[string]string{
		"flag twice": strings.Replace(kcm, "    - --leader-elect=true\n",
			"    - --leader-elect=true\n    - --node-monitor-grace-period=40s\n    - --node-monitor-grace-period=50s\n", 1),
		"value as separate item": strings.Replace(kcm, "    - --leader-elect=true\n",
			"    - --leader-elect=true\n    - --node-monitor-grace-period\n    - 40s\n", 1),
		"flow-style command":         "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-controller-manager\nspec:\n  containers:\n  - name: kube-controller-manager\n    image: x\n    command: [kube-controller-manager, --leader-elect=true]\n",
		"flow-style with flag":       "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-controller-manager\nspec:\n  containers:\n  - name: kube-controller-manager\n    image: x\n    command: [kube-controller-manager, --node-monitor-grace-period=40s]\n",
		"not the controller-manager": strings.ReplaceAll(kcm, "kube-controller-manager", "kube-scheduler"),
		"not a pod":                  "kind: Deployment\n",
		"not yaml":                   "{{{",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			c, mp, _ := files(t, content, "")
			_, rerr := c.ReadConfig(ctx, cmFile, graceK)
			_, werr := c.WriteConfig(ctx, cmFile, graceK, "2m0s")
			if werr == nil {
				t.Fatalf("edit accepted (read: %v)", rerr)
			}
			t.Logf("refused: %v", werr)
			if read(t, mp) != content {
				t.Errorf("the file was changed")
			}
			if bs, _ := Backups(mp); len(bs) != 0 {
				t.Errorf("backups taken of a refused edit: %v", bs)
			}
		})
	}
}

// A missing file is fs.ErrNotExist (a worker has no controller-manager);
// symlinks, bad values and keys outside the file's closed set are refused.
func TestConfigFilesGuards(t *testing.T) {
	ctx := context.Background()
	c, mp, kp := files(t, "", sample(t, "config.yaml"))
	if _, err := c.ReadConfig(ctx, cmFile, graceK); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing manifest: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := c.WriteConfig(ctx, cmFile, graceK, "2m0s"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing manifest write: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(mp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a write to a missing manifest created it")
	}
	if _, err := c.ReadConfig(ctx, kcFile, graceK); err == nil {
		t.Errorf("the grace period read from the kubelet config")
	}
	for _, v := range []string{"2 minutes", "2m\n- --evil", ""} {
		if _, err := c.WriteConfig(ctx, kcFile, freqK, v); err == nil {
			t.Errorf("value %q accepted", v)
		}
	}
	if err := os.Symlink(kp, filepath.Join(filepath.Dir(kp), "link.yaml")); err != nil {
		t.Fatal(err)
	}
	c.Paths[kcFile] = "/var/lib/kubelet/link.yaml"
	if _, err := c.WriteConfig(ctx, kcFile, freqK, "5s"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("symlink: err = %v, want refusal", err)
	}
	none := NewConfigFiles("/", map[v1alpha1.ConfigFile]string{kcFile: ""})
	if _, err := none.ReadConfig(ctx, kcFile, freqK); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file the agent has no path for: err = %v, want fs.ErrNotExist", err)
	}
}

// The kubelet config: kubeadm's 0s means the default; the key's line is
// rewritten, or added in its sorted place; nothing else changes.
func TestKubeletConfigEdit(t *testing.T) {
	ctx := context.Background()
	orig := sample(t, "config.yaml")
	c, _, kp := files(t, "", orig)
	got, err := c.ReadConfig(ctx, kcFile, freqK)
	if err != nil || got != "0s" {
		t.Fatalf("ReadConfig = %q, %v; want 0s", got, err)
	}
	if d, _ := EffectiveConfigValue(freqK, got); d != 10*time.Second {
		t.Errorf("effective = %s, want 10s (the kubelet defaults 0s)", d)
	}
	if d := DisplayConfigValue(freqK, got); d != "0s (default 10s)" {
		t.Errorf("display = %q", d)
	}
	backup, err := c.WriteConfig(ctx, kcFile, freqK, "5s")
	if err != nil {
		t.Fatal(err)
	}
	removed, added := lineDiff(orig, read(t, kp))
	if len(removed) != 1 || removed[0] != "nodeStatusUpdateFrequency: 0s\n" || len(added) != 1 || added[0] != "nodeStatusUpdateFrequency: 5s\n" {
		t.Errorf("diff: removed %q, added %q", removed, added)
	}
	if read(t, filepath.Join(c.Root, backup)) != orig || backup != "/var/lib/kubelet/.config.yaml.nodeward-"+stampAt+".bak" {
		t.Errorf("backup %s", backup)
	}

	// Absent: added before the first key that sorts after it.
	without := strings.Replace(orig, "nodeStatusUpdateFrequency: 0s\n", "", 1)
	c, _, kp = files(t, "", without)
	if got, err := c.ReadConfig(ctx, kcFile, freqK); err != nil || got != "" {
		t.Fatalf("ReadConfig = %q, %v; want absent", got, err)
	}
	if _, err := c.WriteConfig(ctx, kcFile, freqK, "5s"); err != nil {
		t.Fatal(err)
	}
	if read(t, kp) != strings.Replace(without, "rotateCertificates:", "nodeStatusUpdateFrequency: 5s\nrotateCertificates:", 1) {
		t.Errorf("not added in its place:\n%s", read(t, kp))
	}

	// Not a KubeletConfiguration, or the key nested or in another document.
	for name, content := range map[string]string{
		"other kind":   "apiVersion: v1\nkind: Pod\n",
		"two docs":     orig + "---\n" + orig,
		"flow mapping": "{kind: KubeletConfiguration, nodeStatusUpdateFrequency: 10s}\n",
	} {
		c, _, kp := files(t, "", content)
		if _, err := c.WriteConfig(ctx, kcFile, freqK, "5s"); err == nil {
			t.Errorf("%s: edit accepted", name)
		}
		if read(t, kp) != content {
			t.Errorf("%s: file changed", name)
		}
	}
}

// The agent's own checks: the closed set, the bounds, and the 4x rule against
// the other file when this node has it.
func TestCheckConfigEdit(t *testing.T) {
	ctx := context.Background()
	kubelet15s := strings.Replace(sample(t, "config.yaml"), "nodeStatusUpdateFrequency: 0s", "nodeStatusUpdateFrequency: 15s", 1)
	cp, _, _ := files(t, sample(t, "kube-controller-manager.yaml"), kubelet15s)
	worker, _, _ := files(t, "", sample(t, "config.yaml"))
	edit := func(f v1alpha1.ConfigFile, k v1alpha1.ConfigKey, v string) v1alpha1.ConfigEdit {
		return v1alpha1.ConfigEdit{File: f, Key: k, Value: v}
	}
	cases := []struct {
		name string
		ed   ConfigEditor
		edit v1alpha1.ConfigEdit
		want string // "" = accepted
	}{
		{"grace 2m over 15s updates", cp, edit(cmFile, graceK, "2m"), ""},
		{"grace 50s under 4 x 15s", cp, edit(cmFile, graceK, "50s"), "less than 4 x nodeStatusUpdateFrequency 15s"},
		{"grace below bounds", cp, edit(cmFile, graceK, "30s"), "outside the agent's bounds"},
		{"grace above bounds", cp, edit(cmFile, graceK, "10m"), "outside the agent's bounds"},
		{"frequency 10s under the default 50s grace", cp, edit(kcFile, freqK, "10s"), ""},
		{"frequency 15s over the default 50s grace", cp, edit(kcFile, freqK, "15s"), "node-monitor-grace-period 50s would be less than 4 x"},
		{"frequency 15s on a worker (no manifest)", worker, edit(kcFile, freqK, "15s"), ""},
		{"frequency above bounds", worker, edit(kcFile, freqK, "2m"), "outside the agent's bounds"},
		{"key in the wrong file", worker, edit(kcFile, graceK, "2m"), "can't be set in KubeletConfig"},
		{"unknown file", worker, edit("Sudoers", graceK, "2m"), "not in the agent's closed set"},
		{"not a duration", worker, edit(kcFile, freqK, "soon"), "not a duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := CheckConfigEdit(ctx, tc.ed, tc.edit)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
