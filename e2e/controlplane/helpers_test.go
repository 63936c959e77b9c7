package controlplane_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nodeward/nodeward/e2e/controlplane"
)

// requireBinaries returns the control-plane bin dir, or skips the test if
// any of names is missing from it, unless NODEWARD_REQUIRE_CONTROLPLANE=1
// makes that a failure.
func requireBinaries(t *testing.T, names ...string) string {
	t.Helper()
	dir, err := controlplane.DefaultBinDir()
	if err == nil {
		for _, name := range names {
			if _, statErr := os.Stat(filepath.Join(dir, name)); statErr != nil {
				err = errors.Join(err, statErr)
			}
		}
	}
	if err == nil {
		return dir
	}
	if os.Getenv("NODEWARD_REQUIRE_CONTROLPLANE") == "1" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("control-plane binaries: %v", err)
	}
	t.Skipf("control-plane binaries not built (make controlplane; NODEWARD_REQUIRE_CONTROLPLANE=1 makes this fail): %v", err)
	return ""
}

// lockedBuffer is a bytes.Buffer safe for concurrent use, to capture
// Options.Log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// dumpLogsOnFailure logs the tail of every component log in dir/logs if
// the test has failed. Register it after the cleanup that calls Stop, so
// that it runs first, before Stop removes the directory.
func dumpLogsOnFailure(t *testing.T, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		files, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Logf("%s: %v", f, err)
				continue
			}
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("tail of %s:\n%s", f, b)
		}
	})
}
