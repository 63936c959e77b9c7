//go:build !linux

package host

import (
	"errors"
	"os/exec"
	"runtime"
)

// Proc measures Linux nodes only; elsewhere every probe reports this.
var errUnsupported = errors.New("not supported on " + runtime.GOOS)

func sysOpen(string, bool) (int, error)      { return -1, errUnsupported }
func sysOpenDir(string) (int, error)         { return -1, errUnsupported }
func sysOpenat(int, []byte) (int, error)     { return -1, errUnsupported }
func sysRead(int, []byte) (int, error)       { return 0, errUnsupported }
func sysClose(int)                           {}
func sysReadDirent(int, []byte) (int, error) { return 0, errUnsupported }
func nextDirent([]byte) (name, rest []byte)  { return nil, nil }
func sysStatfs(string) (diskStat, error)     { return diskStat{}, errUnsupported }
func errAgain(error) bool                    { return false }
func errOverwritten(error) bool              { return false }

func chroot(*exec.Cmd, string) bool { return false }
