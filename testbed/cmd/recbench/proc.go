package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	root, err := procstat.ModuleRoot(ctx)
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
