package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// binaries are the programs a run starts.
type binaries struct{ hubd, fakecam string }

// resolveBinaries returns -hubd and -fakecam, building the missing ones from
// the module that contains the working directory.
func resolveBinaries(ctx context.Context, o *options, dir string, logf func(string, ...any)) (binaries, error) {
	b := binaries{hubd: o.hubd, fakecam: o.fakecam}
	if b.hubd != "" && b.fakecam != "" {
		return b, nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return b, err
	}
	for _, t := range []struct {
		bin *string
		pkg string
	}{{&b.hubd, "./hubd"}, {&b.fakecam, "./testbed/cmd/fakecam"}} {
		if *t.bin != "" {
			continue
		}
		out := filepath.Join(dir, "bin", filepath.Base(t.pkg))
		logf("building %s", t.pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, t.pkg)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w: %s", t.pkg, err, bytes.TrimSpace(msg))
		}
		*t.bin = out
	}
	return b, nil
}

// moduleRoot is the directory of the go.mod `go env GOMOD` names.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the zipnvr module: run from the repository or pass -hubd and -fakecam")
	}
	return filepath.Dir(gomod), nil
}

// child is a process recbench started. stop is idempotent, so every exit
// path can defer it and no process outlives a run.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process is reaped
	err  error         // Wait's result; read after done
	once sync.Once
}

// startChild starts cmd; logs are the files it writes to, closed once it has
// exited.
func startChild(name string, cmd *exec.Cmd, logs ...*os.File) (*child, error) {
	// Pdeathsig kills the child if recbench dies without running its defers
	// (SIGKILL, second Ctrl-C), so no camera or hubd is left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		for _, f := range logs {
			f.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		for _, f := range logs {
			f.Close()
		}
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace for the exit, then SIGKILLs. It
// returns how the process ended: nil is exit status 0.
func (c *child) stop(grace time.Duration) error {
	return c.stopWith(syscall.SIGTERM, grace)
}

// stopWith is stop with another signal than SIGTERM. Only the first stop or
// stopWith signals; later calls wait and return the same result.
func (c *child) stopWith(sig syscall.Signal, grace time.Duration) error {
	c.once.Do(func() {
		if c.exited() {
			return
		}
		_ = c.cmd.Process.Signal(sig)
		select {
		case <-c.done:
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
			<-c.done
			c.err = fmt.Errorf("did not exit within %s of %s: killed", grace, sigName(sig))
		}
	})
	<-c.done
	if c.err != nil {
		return fmt.Errorf("%s: %w", c.name, c.err)
	}
	return nil
}

// sigName spells the signals recbench sends the way their man pages do.
func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// lineWatcher is a child's stdout: it copies everything to a log file and
// hands the first line with prefix to ready. Being an io.Writer rather than
// a pipe we read ourselves keeps exec's Wait correct (it drains the output).
type lineWatcher struct {
	log    *os.File
	prefix string
	ready  chan string
	buf    []byte
	found  bool
}

func newLineWatcher(log *os.File, prefix string) *lineWatcher {
	return &lineWatcher{log: log, prefix: prefix, ready: make(chan string, 1)}
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	if _, err := w.log.Write(p); err != nil {
		return 0, err
	}
	if w.found {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if strings.HasPrefix(line, w.prefix) {
			w.found, w.buf = true, nil
			w.ready <- line
			return len(p), nil
		}
	}
}

// tail returns the last n lines of a log file, to put a dead child's last
// words into the error.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sleepCtx sleeps d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
