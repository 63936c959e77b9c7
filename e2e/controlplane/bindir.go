package controlplane

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Version is the Kubernetes version of the control-plane binaries.
const Version = "v1.37.2"

// binDirEnv names the environment variable that overrides DefaultBinDir.
const binDirEnv = "NODEWARD_CONTROLPLANE_BIN"

// modulePath identifies the repository root: the directory whose go.mod
// declares this module.
const modulePath = "github.com/nodeward/nodeward"

// Names of the component binaries, as found in the bin dir.
const (
	etcdBin              = "etcd"
	apiserverBin         = "kube-apiserver"
	controllerManagerBin = "kube-controller-manager"
	schedulerBin         = "kube-scheduler"
)

// DefaultBinDir returns the directory holding the control-plane binaries:
// $NODEWARD_CONTROLPLANE_BIN if set, else <repo root>/bin/controlplane/<Version>,
// where the repo root is found by walking up from the working directory to
// the directory whose go.mod declares module github.com/nodeward/nodeward.
// It does not check that the binaries exist.
func DefaultBinDir() (string, error) {
	if dir := os.Getenv(binDirEnv); dir != "" {
		return dir, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "controlplane", Version), nil
}

// EnvtestAssets returns the directory to use as KUBEBUILDER_ASSETS (or
// envtest.Environment.BinaryAssetsDirectory) for controller-runtime's envtest:
// [DefaultBinDir], after checking that it holds the etcd and kube-apiserver
// binaries envtest runs. The error wraps [fs.ErrNotExist] if one is missing.
func EnvtestAssets() (string, error) {
	dir, err := DefaultBinDir()
	if err != nil {
		return "", err
	}
	if err := checkBinaries(dir, etcdBin, apiserverBin); err != nil {
		return "", err
	}
	return dir, nil
}

// checkBinaries reports, in one error wrapping fs.ErrNotExist, which of the
// named binaries are missing from dir or not executable regular files.
func checkBinaries(dir string, names ...string) error {
	var missing []string
	for _, name := range names {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("control-plane binaries %s missing from %s (build them with `make controlplane` or set $%s): %w",
			strings.Join(missing, ", "), dir, binDirEnv, fs.ErrNotExist)
	}
	return nil
}

// repoRoot walks up from the working directory to the directory whose go.mod
// declares modulePath.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		mod, err := goModModule(filepath.Join(dir, "go.mod"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if mod == modulePath {
			return dir, nil
		}
		if parent := filepath.Dir(dir); parent == dir {
			return "", fmt.Errorf("no go.mod declaring module %s in %s or any parent directory (set $%s)", modulePath, wd, binDirEnv)
		}
	}
}

// goModModule returns the module path declared by the go.mod file at path,
// or "" if it declares none.
func goModModule(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		rest, ok := strings.CutPrefix(line, "module")
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		return strings.Trim(strings.TrimSpace(rest), `"`+"`"), nil
	}
	return "", sc.Err()
}
