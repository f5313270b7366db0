package procstat

import (
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

// ModuleRoot is the directory of the go.mod `go env GOMOD` names.
func ModuleRoot(ctx context.Context) (string, error) {
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

// Child is a process a benchmark started. stop is idempotent, so every exit
// path can defer it and no process outlives a run.
type Child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process is reaped
	err  error         // Wait's result; read after done
	once sync.Once
}

// StartChild starts cmd; logs are the files it writes to, closed once it has
// exited.
func StartChild(name string, cmd *exec.Cmd, logs ...*os.File) (*Child, error) {
	// Pdeathsig kills the child if the benchmark dies without running its defers
	// (SIGKILL, second Ctrl-C), so no camera or hubd is left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		for _, f := range logs {
			f.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &Child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		for _, f := range logs {
			f.Close()
		}
		close(c.done)
	}()
	return c, nil
}

func (c *Child) PID() int { return c.cmd.Process.Pid }

func (c *Child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to grace for the exit, then SIGKILLs. It
// returns how the process ended: nil is exit status 0.
func (c *Child) Stop(grace time.Duration) error {
	return c.StopWith(syscall.SIGTERM, grace)
}

// StopWith is Stop with another signal than SIGTERM. Only the first stop or
// stopWith signals; later calls wait and return the same result.
func (c *Child) StopWith(sig syscall.Signal, grace time.Duration) error {
	c.once.Do(func() {
		if c.Exited() {
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

// sigName spells the signals the benchmarks send the way their man pages do.
func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// Tail returns the last n lines of a log file, to put a dead child's last
// words into the error.
func Tail(path string, n int) string {
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

// SleepCtx sleeps d unless ctx ends first.
func SleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// StartChildLogging starts cmd with its stdout and stderr in logPath.
func StartChildLogging(name string, cmd *exec.Cmd, logPath string) (*Child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	return StartChild(name, cmd, f)
}

// Name is the name the child was started with.
func (c *Child) Name() string { return c.name }

// Done is closed once the process has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is how the process ended (nil: exit status 0); valid after Done.
func (c *Child) Err() error { return c.err }
