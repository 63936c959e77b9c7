package controlplane

import (
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

// Names of the component binaries, as found in the bin dir.
const (
	etcdBin              = "etcd"
	apiserverBin         = "kube-apiserver"
	controllerManagerBin = "kube-controller-manager"
	schedulerBin         = "kube-scheduler"
)

// DefaultBinDir returns the directory holding the control-plane binaries:
// $NODEWARD_CONTROLPLANE_BIN if set, else nodeward/controlplane/<Version> in
// the user's cache directory ($XDG_CACHE_HOME or ~/.cache), where `make
// controlplane` builds them: outside the clone, so a fresh clone reuses them.
// It does not check that the binaries exist.
func DefaultBinDir() (string, error) {
	if dir := os.Getenv(binDirEnv); dir != "" {
		return dir, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the control-plane binaries (set $%s): %w", binDirEnv, err)
	}
	return filepath.Join(cache, "nodeward", "controlplane", Version), nil
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
