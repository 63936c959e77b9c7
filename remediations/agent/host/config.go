package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// ConfigEditor reads and sets keys of node-local config files from a closed
// set (v1alpha1.ConfigFile, v1alpha1.ConfigKey). Implemented by ConfigFiles
// (real files) and by the simulated host.
type ConfigEditor interface {
	// ReadConfig returns the key's value as the file has it, or "" when the
	// key is absent (the component's default applies). An error wrapping
	// fs.ErrNotExist means the file is not on this node (e.g. no
	// controller-manager manifest on a worker).
	ReadConfig(ctx context.Context, file v1alpha1.ConfigFile, key v1alpha1.ConfigKey) (string, error)
	// WriteConfig sets the key to value, atomically (temp file and rename),
	// after copying the file to a backup whose path it returns. It changes
	// nothing else in the file and refuses a file it does not understand.
	WriteConfig(ctx context.Context, file v1alpha1.ConfigFile, key v1alpha1.ConfigKey, value string) (backup string, err error)
}

// Default paths of the files on a kubeadm node.
const (
	DefaultControllerManagerManifest = "/etc/kubernetes/manifests/kube-controller-manager.yaml"
	DefaultKubeletConfig             = "/var/lib/kubelet/config.yaml"
)

// ConfigKeyOf is the only key the agent may set in file.
func ConfigKeyOf(file v1alpha1.ConfigFile) (v1alpha1.ConfigKey, bool) {
	switch file {
	case v1alpha1.ConfigFileControllerManagerManifest:
		return v1alpha1.ConfigKeyNodeMonitorGracePeriod, true
	case v1alpha1.ConfigFileKubeletConfig:
		return v1alpha1.ConfigKeyNodeStatusUpdateFrequency, true
	}
	return "", false
}

// ConfigFileOf is the file that holds key.
func ConfigFileOf(key v1alpha1.ConfigKey) (v1alpha1.ConfigFile, bool) {
	switch key {
	case v1alpha1.ConfigKeyNodeMonitorGracePeriod:
		return v1alpha1.ConfigFileControllerManagerManifest, true
	case v1alpha1.ConfigKeyNodeStatusUpdateFrequency:
		return v1alpha1.ConfigFileKubeletConfig, true
	}
	return "", false
}

// ConfigBounds are the values the agent accepts for each key, whatever the
// API let through.
var ConfigBounds = map[v1alpha1.ConfigKey]struct{ Min, Max time.Duration }{
	v1alpha1.ConfigKeyNodeMonitorGracePeriod:    {40 * time.Second, 5 * time.Minute},
	v1alpha1.ConfigKeyNodeStatusUpdateFrequency: {time.Second, time.Minute},
}

// ConfigDefaults are the components' defaults (Kubernetes v1.37): what
// applies when the key is absent (or, for the kubelet, zero).
var ConfigDefaults = map[v1alpha1.ConfigKey]time.Duration{
	v1alpha1.ConfigKeyNodeMonitorGracePeriod:    50 * time.Second,
	v1alpha1.ConfigKeyNodeStatusUpdateFrequency: 10 * time.Second,
}

// MinGraceToFrequency is how many status updates the grace period must
// span at least.
const MinGraceToFrequency = 4

// EffectiveConfigValue is the duration in force for a raw value as
// ReadConfig returns it: the default for an absent key (and for the
// kubelet's 0s, which it defaults).
func EffectiveConfigValue(key v1alpha1.ConfigKey, raw string) (time.Duration, error) {
	if raw == "" {
		return ConfigDefaults[key], nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		return 0, fmt.Errorf("%s is %q, not a duration", key, raw)
	}
	if d == 0 && key == v1alpha1.ConfigKeyNodeStatusUpdateFrequency {
		return ConfigDefaults[key], nil
	}
	return d, nil
}

// DisplayConfigValue says a raw value for a person: "50s", "50s (default)"
// for an absent key, "0s (default 10s)" for the kubelet's zero.
func DisplayConfigValue(key v1alpha1.ConfigKey, raw string) string {
	if raw == "" {
		return ConfigDefaults[key].String() + " (default)"
	}
	if d, err := time.ParseDuration(raw); err == nil && d == 0 && key == v1alpha1.ConfigKeyNodeStatusUpdateFrequency {
		return raw + " (default " + ConfigDefaults[key].String() + ")"
	}
	return raw
}

// CheckConfigEdit is the agent's own check of an edit (defence in depth: the
// API checks the same bounds): the key belongs to the file, the value is a
// duration within ConfigBounds, and the grace period stays at least
// MinGraceToFrequency times the kubelet's status update frequency, given the
// other file's current value when it can be read on this node. It returns
// the value and, when the other file could not be read, a note saying so.
func CheckConfigEdit(ctx context.Context, ed ConfigEditor, edit v1alpha1.ConfigEdit) (time.Duration, string, error) {
	key, ok := ConfigKeyOf(edit.File)
	if !ok {
		return 0, "", fmt.Errorf("file %q is not in the agent's closed set", edit.File)
	}
	if key != edit.Key {
		return 0, "", fmt.Errorf("key %q can't be set in %s (only %s)", edit.Key, edit.File, key)
	}
	d, err := time.ParseDuration(edit.Value)
	if err != nil {
		return 0, "", fmt.Errorf("value %q is not a duration", edit.Value)
	}
	b := ConfigBounds[key]
	if d < b.Min || d > b.Max {
		return 0, "", fmt.Errorf("%s %s is outside the agent's bounds %s..%s", key, d, b.Min, b.Max)
	}
	var otherKey v1alpha1.ConfigKey
	if key == v1alpha1.ConfigKeyNodeMonitorGracePeriod {
		otherKey = v1alpha1.ConfigKeyNodeStatusUpdateFrequency
	} else {
		otherKey = v1alpha1.ConfigKeyNodeMonitorGracePeriod
	}
	otherFile, _ := ConfigFileOf(otherKey)
	raw, err := ed.ReadConfig(ctx, otherFile, otherKey)
	if errors.Is(err, fs.ErrNotExist) {
		return d, "", nil // not on this node: nothing to check against
	}
	if err != nil {
		return d, fmt.Sprintf("%s could not be read to check the %dx rule (%v)", otherKey, MinGraceToFrequency, err), nil
	}
	other, err := EffectiveConfigValue(otherKey, raw)
	if err != nil {
		return d, fmt.Sprintf("%s could not be read to check the %dx rule (%v)", otherKey, MinGraceToFrequency, err), nil
	}
	grace, freq := d, other
	if key == v1alpha1.ConfigKeyNodeStatusUpdateFrequency {
		grace, freq = other, d
	}
	if grace < MinGraceToFrequency*freq {
		return 0, "", fmt.Errorf("node-monitor-grace-period %s would be less than %d x nodeStatusUpdateFrequency %s on this node: nodes would flip NotReady between two status updates",
			grace, MinGraceToFrequency, freq)
	}
	return d, "", nil
}

// maxConfigSize bounds the files the agent reads.
const maxConfigSize = 1 << 20

// ConfigFiles is the ConfigEditor of a real node: it edits the files in
// Paths, and only those.
//
// Edits are line-based: the one line holding the key is rewritten (or one
// line is added), every other byte of the file stays as it was. The result
// is parsed and compared with the original, minus the key, before it is
// written: a file whose layout the agent does not understand is refused, not
// rewritten.
//
// Backups and temporary files are hidden (their names start with a dot):
// the kubelet turns every other file in its static pod directory into a
// pod, so a visible "kube-controller-manager.yaml.bak" there would start a
// second controller-manager. A backup is
// <dir>/.<file name>.nodeward-<UTC time>.bak, next to the file.
type ConfigFiles struct {
	// Root is where the host's filesystem is mounted in the agent's
	// container ("/host" in the DaemonSet); default "/".
	Root string
	// Paths maps each file the agent may edit to its path on the host; a
	// file not in the map is refused.
	Paths map[v1alpha1.ConfigFile]string
	// Now stamps backups; default time.Now.
	Now func() time.Time

	mu sync.Mutex
}

var _ ConfigEditor = (*ConfigFiles)(nil)

// NewConfigFiles returns an editor of the files in paths (host paths, read
// under root); an empty path leaves that file out. Backups are reported as
// host paths, as a person on the node would find them.
func NewConfigFiles(root string, paths map[v1alpha1.ConfigFile]string) *ConfigFiles {
	c := &ConfigFiles{Root: root, Paths: map[v1alpha1.ConfigFile]string{}}
	for f, p := range paths {
		if p != "" {
			c.Paths[f] = p
		}
	}
	return c
}

// path returns the file's path in the agent's container.
func (c *ConfigFiles) path(file v1alpha1.ConfigFile, key v1alpha1.ConfigKey) (string, error) {
	if want, ok := ConfigKeyOf(file); !ok || want != key {
		return "", fmt.Errorf("key %q in file %q is not in the agent's closed set", key, file)
	}
	p, ok := c.Paths[file]
	if !ok {
		return "", fmt.Errorf("this agent has no path for %s: %w", file, fs.ErrNotExist)
	}
	return c.under(p), nil
}

func (c *ConfigFiles) under(hostPath string) string {
	if c.Root == "" || c.Root == "/" {
		return hostPath
	}
	return filepath.Join(c.Root, hostPath)
}

// hostPath maps a path in the agent's container back to the host.
func (c *ConfigFiles) hostPath(p string) string {
	if c.Root == "" || c.Root == "/" {
		return p
	}
	if rel, err := filepath.Rel(c.Root, p); err == nil && !strings.HasPrefix(rel, "..") {
		return "/" + rel
	}
	return p
}

// ReadConfig implements ConfigEditor.
func (c *ConfigFiles) ReadConfig(_ context.Context, file v1alpha1.ConfigFile, key v1alpha1.ConfigKey) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.path(file, key)
	if err != nil {
		return "", err
	}
	data, _, err := readRegular(p)
	if err != nil {
		return "", err
	}
	ed, err := editorFor(file, data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return ed.value, nil
}

// WriteConfig implements ConfigEditor.
func (c *ConfigFiles) WriteConfig(_ context.Context, file v1alpha1.ConfigFile, key v1alpha1.ConfigKey, value string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.path(file, key)
	if err != nil {
		return "", err
	}
	if _, err := time.ParseDuration(value); err != nil || strings.ContainsAny(value, " \t\r\n\"'#") {
		return "", fmt.Errorf("value %q is not a duration", value)
	}
	data, mode, err := readRegular(p)
	if err != nil {
		return "", err
	}
	ed, err := editorFor(file, data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	out, err := ed.set(value)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	backup, err := writeBackup(p, data, mode, now())
	if err != nil {
		return "", err
	}
	if err := writeAtomic(p, out, mode, data); err != nil {
		return c.hostPath(backup), err
	}
	return c.hostPath(backup), nil
}

// readRegular reads a regular file (not a symlink: a rename would replace the
// link, not its target), at most maxConfigSize bytes.
func readRegular(p string) ([]byte, fs.FileMode, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file (%s); the agent edits only regular files", p, fi.Mode().Type())
	}
	if fi.Size() > maxConfigSize {
		return nil, 0, fmt.Errorf("%s is %d bytes, more than the agent reads (%d)", p, fi.Size(), maxConfigSize)
	}
	data, err := os.ReadFile(p)
	return data, fi.Mode().Perm(), err
}

func writeBackup(p string, data []byte, mode fs.FileMode, now time.Time) (string, error) {
	dir, base := filepath.Split(p)
	stamp := now.UTC().Format("20060102T150405Z")
	for i := 1; i < 100; i++ {
		name := filepath.Join(dir, fmt.Sprintf(".%s.nodeward-%s.bak", base, stamp))
		if i > 1 {
			name = filepath.Join(dir, fmt.Sprintf(".%s.nodeward-%s-%d.bak", base, stamp, i))
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("backing up %s: %w", p, err)
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(name)
			return "", fmt.Errorf("backing up %s: %w", p, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("backing up %s: too many backups stamped %s", p, stamp)
}

// writeAtomic replaces p with data through a hidden temporary file in the
// same directory and a rename, so a reader (the kubelet) sees the old file or
// the new one, never a partial one. It refuses if p changed since it was read
// as old.
func writeAtomic(p string, data []byte, mode fs.FileMode, old []byte) (err error) {
	dir, base := filepath.Split(p)
	tmp, err := os.CreateTemp(dir, "."+base+".nodeward-tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err == nil {
		if err = tmp.Chmod(mode); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if now, _, rerr := readRegular(p); rerr != nil || !bytes.Equal(now, old) {
		return fmt.Errorf("%s changed while the agent was editing it; nothing was written", p)
	}
	if err = os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// lineEditor holds a parsed file and can set its one key.
type lineEditor struct {
	lines []string // with their line endings
	value string   // the key's current value, "" when absent
	set   func(value string) ([]byte, error)
}

func editorFor(file v1alpha1.ConfigFile, data []byte) (*lineEditor, error) {
	switch file {
	case v1alpha1.ConfigFileControllerManagerManifest:
		return manifestEditor(data)
	case v1alpha1.ConfigFileKubeletConfig:
		return kubeletConfigEditor(data)
	}
	return nil, fmt.Errorf("file %q is not in the agent's closed set", file)
}

func splitLines(data []byte) []string {
	var lines []string
	for s := string(data); s != ""; {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

func eol(line string) string {
	switch {
	case strings.HasSuffix(line, "\r\n"):
		return "\r\n"
	case strings.HasSuffix(line, "\n"):
		return "\n"
	}
	return ""
}

func insertLine(lines []string, at int, line string) []string {
	out := make([]string, 0, len(lines)+1)
	out = append(out, lines[:at]...)
	if at > 0 && eol(lines[at-1]) == "" {
		out[at-1] += "\n"
	}
	out = append(out, line)
	return append(out, lines[at:]...)
}

const graceFlag = "--node-monitor-grace-period"

var (
	// A list item holding the flag: `    - --node-monitor-grace-period=50s`,
	// optionally quoted, optionally with a trailing comment.
	graceLine = regexp.MustCompile(`^(\s*-\s+)(["']?)` + regexp.QuoteMeta(graceFlag) + `=([^"'\s#]*)(["']?)(\s*(?:#.*)?)$`)
	// The flag with its value in the next item: not supported.
	graceBare = regexp.MustCompile(`^\s*-\s+["']?` + regexp.QuoteMeta(graceFlag) + `["']?\s*$`)
	// The command's first item, the binary.
	cmBinaryLine = regexp.MustCompile(`^(\s*)-\s+["']?(?:\S*/)?kube-controller-manager["']?\s*(?:#.*)?$`)
	// Any list item, with its indentation.
	listItem = regexp.MustCompile(`^(\s*)-\s+["']?([^"'\s]*)`)
)

// controllerManager finds the kube-controller-manager container of a static
// pod manifest and the values of the grace flag in its command and args.
func controllerManager(data []byte) (*corev1.Pod, int, []string, error) {
	pod := &corev1.Pod{}
	if err := yaml.Unmarshal(data, pod); err != nil {
		return nil, 0, nil, fmt.Errorf("not a pod manifest: %v", err)
	}
	if pod.Kind != "Pod" {
		return nil, 0, nil, fmt.Errorf("not a pod manifest (kind %q)", pod.Kind)
	}
	idx := -1
	for i, c := range pod.Spec.Containers {
		if c.Name == "kube-controller-manager" || (idx < 0 && len(c.Command) > 0 && filepath.Base(c.Command[0]) == "kube-controller-manager") {
			idx = i
			if c.Name == "kube-controller-manager" {
				break
			}
		}
	}
	if idx < 0 {
		return nil, 0, nil, errors.New("no kube-controller-manager container in the manifest")
	}
	var values []string
	c := pod.Spec.Containers[idx]
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		if v, ok := strings.CutPrefix(a, graceFlag+"="); ok {
			values = append(values, v)
		} else if a == graceFlag {
			return nil, 0, nil, fmt.Errorf("%s is given with its value as a separate argument; the agent only edits %s=VALUE", graceFlag, graceFlag)
		}
	}
	return pod, idx, values, nil
}

// withoutGrace returns the pod with every grace flag removed from the
// controller-manager's command and args.
func withoutGrace(pod *corev1.Pod, idx int) *corev1.Pod {
	out := pod.DeepCopy()
	c := &out.Spec.Containers[idx]
	drop := func(in []string) []string {
		var keep []string
		for _, a := range in {
			if !strings.HasPrefix(a, graceFlag+"=") {
				keep = append(keep, a)
			}
		}
		return keep
	}
	c.Command, c.Args = drop(c.Command), drop(c.Args)
	return out
}

func manifestEditor(data []byte) (*lineEditor, error) {
	pod, idx, values, err := controllerManager(data)
	if err != nil {
		return nil, err
	}
	if len(values) > 1 {
		return nil, fmt.Errorf("%s is given %d times; the agent edits only a manifest that gives it at most once", graceFlag, len(values))
	}
	lines := splitLines(data)
	at := -1
	for i, l := range lines {
		body := strings.TrimRight(l, "\r\n")
		if graceBare.MatchString(body) {
			return nil, fmt.Errorf("line %d: %s is given with its value as a separate argument; the agent only edits %s=VALUE", i+1, graceFlag, graceFlag)
		}
		if graceLine.MatchString(body) {
			if at >= 0 {
				return nil, fmt.Errorf("%s appears on lines %d and %d", graceFlag, at+1, i+1)
			}
			at = i
		}
	}
	ed := &lineEditor{lines: lines}
	switch {
	case at >= 0 && len(values) == 1:
		m := graceLine.FindStringSubmatch(strings.TrimRight(lines[at], "\r\n"))
		if m[3] != values[0] {
			return nil, fmt.Errorf("line %d says %s=%s but the manifest parses to %s; the agent does not edit a layout it can't follow", at+1, graceFlag, m[3], values[0])
		}
		ed.value = values[0]
	case at < 0 && len(values) == 0:
	default:
		return nil, fmt.Errorf("%s is not written one list item per line (block style); the agent does not edit this layout", graceFlag)
	}
	ed.set = func(value string) ([]byte, error) {
		out := append([]string{}, lines...)
		if at >= 0 {
			m := graceLine.FindStringSubmatch(strings.TrimRight(lines[at], "\r\n"))
			out[at] = m[1] + m[2] + graceFlag + "=" + value + m[4] + m[5] + eol(lines[at])
		} else {
			ins, indent, err := graceInsertPoint(lines)
			if err != nil {
				return nil, err
			}
			nl := "\n"
			if ins > 0 && eol(lines[ins-1]) == "\r\n" {
				nl = "\r\n"
			}
			out = insertLine(out, ins, indent+"- "+graceFlag+"="+value+nl)
		}
		result := []byte(strings.Join(out, ""))
		// The edit must change exactly the flag and nothing else.
		npod, nidx, nvalues, err := controllerManager(result)
		if err != nil || len(nvalues) != 1 || nvalues[0] != value ||
			!equality.Semantic.DeepEqual(withoutGrace(pod, idx), withoutGrace(npod, nidx)) {
			return nil, fmt.Errorf("the edited manifest would differ from the original by more than %s (err %v); nothing was written", graceFlag, err)
		}
		return result, nil
	}
	return ed, nil
}

// graceInsertPoint is where a new flag item goes: among the binary's
// following items at the same indentation, before the first flag that sorts
// after it (kubeadm sorts them), else after the last.
func graceInsertPoint(lines []string) (int, string, error) {
	bin := -1
	var indent string
	for i, l := range lines {
		if m := cmBinaryLine.FindStringSubmatch(strings.TrimRight(l, "\r\n")); m != nil {
			if bin >= 0 {
				return 0, "", errors.New("kube-controller-manager appears as a list item twice; the agent does not know where to add the flag")
			}
			bin, indent = i, m[1]
		}
	}
	if bin < 0 {
		return 0, "", errors.New("no `- kube-controller-manager` command item on its own line (flow-style command?); the agent does not edit this layout")
	}
	last := bin
	for i := bin + 1; i < len(lines); i++ {
		m := listItem.FindStringSubmatch(strings.TrimRight(lines[i], "\r\n"))
		if m == nil || m[1] != indent {
			break
		}
		if strings.HasPrefix(m[2], "--") && m[2] > graceFlag {
			return i, indent, nil
		}
		last = i
	}
	return last + 1, indent, nil
}

const freqKey = string(v1alpha1.ConfigKeyNodeStatusUpdateFrequency)

var (
	// The top-level key line: `nodeStatusUpdateFrequency: 10s`.
	freqLine = regexp.MustCompile(`^` + freqKey + `:[ \t]*(["']?)([^"'\s#]*)(["']?)(\s*(?:#.*)?)$`)
	// Any top-level key.
	topKey = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]*):`)
)

func kubeletConfig(data []byte) (map[string]any, error) {
	m := map[string]any{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a KubeletConfiguration: %v", err)
	}
	if m["kind"] != "KubeletConfiguration" {
		return nil, fmt.Errorf("not a KubeletConfiguration (kind %v)", m["kind"])
	}
	return m, nil
}

func kubeletConfigEditor(data []byte) (*lineEditor, error) {
	cfg, err := kubeletConfig(data)
	if err != nil {
		return nil, err
	}
	lines := splitLines(data)
	at := -1
	for i, l := range lines {
		body := strings.TrimRight(l, "\r\n")
		if i > 0 && strings.HasPrefix(body, "---") {
			return nil, errors.New("the file holds more than one YAML document; the agent does not edit it")
		}
		if strings.HasPrefix(body, freqKey+":") {
			if !freqLine.MatchString(body) || at >= 0 {
				return nil, fmt.Errorf("line %d: %s is not a single `%s: DURATION` line; the agent does not edit this layout", i+1, freqKey, freqKey)
			}
			at = i
		}
	}
	ed := &lineEditor{lines: lines}
	parsed, has := cfg[freqKey]
	switch {
	case at >= 0 && has:
		m := freqLine.FindStringSubmatch(strings.TrimRight(lines[at], "\r\n"))
		if fmt.Sprint(parsed) != m[2] {
			return nil, fmt.Errorf("line %d says %s: %s but the file parses to %v", at+1, freqKey, m[2], parsed)
		}
		ed.value = m[2]
	case at < 0 && !has:
	default:
		return nil, fmt.Errorf("%s is not on a top-level line of its own; the agent does not edit this layout", freqKey)
	}
	ed.set = func(value string) ([]byte, error) {
		out := append([]string{}, lines...)
		if at >= 0 {
			m := freqLine.FindStringSubmatch(strings.TrimRight(lines[at], "\r\n"))
			out[at] = freqKey + ": " + m[1] + value + m[3] + m[4] + eol(lines[at])
		} else {
			// Before the first top-level key that sorts after it (kubeadm
			// writes them sorted), else at the end.
			ins := len(lines)
			for i, l := range lines {
				if k := topKey.FindStringSubmatch(l); k != nil && k[1] > freqKey {
					ins = i
					break
				}
			}
			nl := "\n"
			if len(lines) > 0 && eol(lines[0]) == "\r\n" {
				nl = "\r\n"
			}
			out = insertLine(out, ins, freqKey+": "+value+nl)
		}
		result := []byte(strings.Join(out, ""))
		ncfg, err := kubeletConfig(result)
		if err != nil || fmt.Sprint(ncfg[freqKey]) != value || !sameExcept(cfg, ncfg, freqKey) {
			return nil, fmt.Errorf("the edited file would differ from the original by more than %s (err %v); nothing was written", freqKey, err)
		}
		return result, nil
	}
	return ed, nil
}

func sameExcept(a, b map[string]any, key string) bool {
	strip := func(m map[string]any) map[string]any {
		out := make(map[string]any, len(m))
		for k, v := range m {
			if k != key {
				out[k] = v
			}
		}
		return out
	}
	return equality.Semantic.DeepEqual(strip(a), strip(b))
}

// Backups lists the backups the agent took of the file at path (in the
// caller's filesystem), sorted by name.
func Backups(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	matches, err := filepath.Glob(filepath.Join(dir, "."+base+".nodeward-*.bak"))
	sort.Strings(matches)
	return matches, err
}
