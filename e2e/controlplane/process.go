package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a component may take to exit after SIGTERM before
// its process group gets SIGKILL.
const stopGrace = 10 * time.Second

// process is one running component, leader of its own process group.
type process struct {
	name    string
	tier    int // see tierStorage
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	out     *lineWriter // copy of the output to Options.Log, or nil

	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // cmd.Wait's result, valid once done is closed
}

// startProcess starts bin with args in its own process group, with stdout
// and stderr appended to logDir/<name>.log and, if log is not nil, copied
// line by line to log with the prefix "[name] ".
func startProcess(name, bin string, args []string, logDir string, log *syncWriter) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p := &process{name: name, logPath: logPath, logFile: logFile, done: make(chan struct{})}

	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group, so that Stop can signal the component and
		// anything it spawned, and a test's Ctrl-C does not reach it first.
		Setpgid: true,
		// Die with the test binary even if Stop is never called. (Strictly,
		// with the OS thread that started it; Go does not retire threads of
		// goroutines that did not lock them, so this is the process.)
		Pdeathsig: syscall.SIGKILL,
	}
	if log == nil {
		cmd.Stdout, cmd.Stderr = logFile, logFile
	} else {
		p.out = &lineWriter{prefix: "[" + name + "] ", w: log}
		w := io.MultiWriter(logFile, p.out)
		cmd.Stdout, cmd.Stderr = w, w
		// Do not wait forever for the copy goroutines if something the
		// component spawned keeps its output pipe open.
		cmd.WaitDelay = time.Second
	}
	fmt.Fprintf(logFile, "+ %s %q\n", bin, args)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p.cmd = cmd
	go p.wait()
	return p, nil
}

func (p *process) wait() {
	p.waitErr = p.cmd.Wait()
	if p.out != nil {
		p.out.flush()
	}
	p.logFile.Close()
	close(p.done)
}

// pid returns the process ID, which is also its process group ID.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has exited, and if so how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.exitError()
	default:
		return false, nil
	}
}

// exitError describes how the process exited; call only after done is closed.
func (p *process) exitError() error {
	if p.waitErr == nil {
		return fmt.Errorf("%s exited with status 0", p.name)
	}
	return fmt.Errorf("%s exited (%w)", p.name, p.waitErr)
}

// signalGroup sends sig to the process group. It is a no-op once the group
// is gone.
func (p *process) signalGroup(sig syscall.Signal) error {
	err := syscall.Kill(-p.pid(), sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("signalling %s (process group %d): %w", p.name, p.pid(), err)
	}
	return nil
}

// stopProcesses sends SIGTERM to the process groups of all ps, sends SIGKILL
// to those whose leader has not exited after stopGrace, and returns once
// every leader has been reaped. Members of a group that outlive its leader
// get SIGKILL as well, so no process is left behind.
func stopProcesses(ps []*process) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.signalGroup(syscall.SIGTERM))
	}
	deadline := time.NewTimer(stopGrace)
	defer deadline.Stop()
	for _, p := range ps {
		select {
		case <-p.done:
		case <-deadline.C:
			// Grace period over: kill every group still running.
			for _, q := range ps {
				errs = append(errs, q.signalGroup(syscall.SIGKILL))
			}
			<-p.done
		}
	}
	for _, p := range ps {
		<-p.done
		errs = append(errs, p.signalGroup(syscall.SIGKILL))
	}
	return errors.Join(errs...)
}

// tail returns up to the last n bytes of the process's log file, starting
// at a line boundary, for error messages.
func (p *process) tail(n int64) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	off := max(fi.Size()-n, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	if off > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	return string(bytes.TrimRight(buf, "\n"))
}

// syncWriter serialises writes of whole lines from several components to
// one io.Writer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// lineWriter writes each complete line it is given to w as one Write, with
// prefix prepended. Errors from w are ignored: the log file is the record,
// the copy is a convenience.
type lineWriter struct {
	prefix string
	w      io.Writer
	mu     sync.Mutex
	buf    []byte
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
	return len(b), nil
}

// flush writes a final unterminated line, if any.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(append(l.buf, '\n'))
		l.buf = nil
	}
}

func (l *lineWriter) emit(line []byte) {
	out := make([]byte, 0, len(l.prefix)+len(line))
	out = append(append(out, l.prefix...), line...)
	_, _ = l.w.Write(out)
}
