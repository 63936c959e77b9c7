//go:build linux

package host

import (
	"encoding/binary"
	"os/exec"
	"syscall"
)

// Raw file access for the probes: procfs files are read with plain
// syscalls into reused buffers, and /dev/kmsg must be read without Go's
// poller (an os.File of a pollable device would park the goroutine instead
// of returning EAGAIN).

func sysOpen(path string, nonblock bool) (int, error) {
	flags := syscall.O_RDONLY | syscall.O_CLOEXEC
	if nonblock {
		flags |= syscall.O_NONBLOCK
	}
	return openRetry(path, flags)
}

func sysOpenDir(path string) (int, error) {
	return openRetry(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_DIRECTORY)
}

// sysOpenat opens name relative to the directory dirfd.
func sysOpenat(dirfd int, name []byte) (int, error) {
	for {
		fd, err := syscall.Openat(dirfd, string(name), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := syscall.Open(path, flags, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

func sysRead(fd int, b []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

func sysClose(fd int) { _ = syscall.Close(fd) }

func sysReadDirent(fd int, buf []byte) (int, error) {
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// nextDirent returns the name of the first linux_dirent64 in buf (nil for a
// deleted entry) and the entries after it.
//
//	struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
func nextDirent(buf []byte) (name, rest []byte) {
	const nameOff = 19
	if len(buf) < nameOff {
		return nil, nil
	}
	reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
	if reclen < nameOff || reclen > len(buf) {
		return nil, nil
	}
	if binary.NativeEndian.Uint64(buf[0:8]) == 0 {
		return nil, buf[reclen:]
	}
	name = buf[nameOff:reclen]
	for i, c := range name {
		if c == 0 {
			name = name[:i]
			break
		}
	}
	return name, buf[reclen:]
}

func sysStatfs(path string) (diskStat, error) {
	var st syscall.Statfs_t
	for {
		err := syscall.Statfs(path, &st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return diskStat{}, err
		}
		break
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return diskStat{blockSize: bs, blocks: st.Blocks, blocksAvail: st.Bavail, files: st.Files, filesFree: st.Ffree}, nil
}

func errAgain(err error) bool       { return err == syscall.EAGAIN }
func errOverwritten(err error) bool { return err == syscall.EPIPE }

// chroot makes cmd run chrooted into root (the host's root mounted in the
// agent's container).
func chroot(cmd *exec.Cmd, root string) bool {
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	return true
}
