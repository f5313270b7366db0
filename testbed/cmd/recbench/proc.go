package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"os/exec"
	"path/filepath"
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
