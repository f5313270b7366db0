package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var hubdBuild struct {
	once sync.Once
	path string
	err  error
}

// hubdBinary builds hubd once per test binary, from the module cache only
// (GOPROXY=off): inside the test's network namespace there is no proxy.
func hubdBinary(t testing.TB) string {
	hubdBuild.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			hubdBuild.err = err
			return
		}
		dir, err := os.MkdirTemp("", "testbed-hubd-")
		if err != nil {
			hubdBuild.err = err
			return
		}
		hubdBuild.path = filepath.Join(dir, "hubd")
		cmd := exec.Command("go", "build", "-o", hubdBuild.path, "./hubd")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			hubdBuild.err = fmt.Errorf("go build ./hubd: %v\n%s(run scripts/setup.sh first: it downloads the modules)", err, out)
		}
	})
	if hubdBuild.err != nil {
		t.Fatal(hubdBuild.err)
	}
	return hubdBuild.path
}

// Hubd is a running hubd process.
type Hubd struct {
	Config string // path of its config file
	t      testing.TB
	p      *proc
	logs   *tailBuffer
}

// StartHubd writes config (YAML) to a file and runs `hubd run -config` on
// it. The process is stopped at the end of the test; its log tail is
// printed if the test failed.
func StartHubd(t testing.TB, config string) *Hubd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hubd.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &Hubd{Config: path, t: t, logs: newTailBuffer(256 << 10)}
	h.Start()
	t.Cleanup(func() {
		h.Stop()
		if t.Failed() {
			t.Logf("hubd log tail:\n%s", h.logs.String())
		}
	})
	return h
}

// Start runs hubd (again, after Kill or Stop) on the same config.
func (h *Hubd) Start() {
	h.t.Helper()
	p, err := startProc("hubd", exec.Command(hubdBinary(h.t), "run", "-config", h.Config), h.logs)
	if err != nil {
		h.t.Fatal(err)
	}
	h.p = p
}

// Stop stops hubd with SIGTERM (SIGKILL after 2 s) and waits.
func (h *Hubd) Stop() {
	if h.p != nil {
		h.p.stop()
	}
}

// Kill kills hubd with SIGKILL, as a crash or a power cut would, and waits.
func (h *Hubd) Kill() {
	if h.p == nil || h.p.exited() {
		return
	}
	_ = syscall.Kill(-h.p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-h.p.done:
	case <-time.After(5 * time.Second):
		h.t.Fatalf("hubd did not die after SIGKILL")
	}
}

// PID is the process id of the running hubd.
func (h *Hubd) PID() int { return h.p.cmd.Process.Pid }

// Logs is the tail of hubd's log (every start appended).
func (h *Hubd) Logs() string { return h.logs.String() }

// CountLog counts log lines containing s.
func (h *Hubd) CountLog(s string) int { return strings.Count(h.logs.String(), s) }
