package procstat

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
)

// Build is one `go build` a benchmark needs: a package of the module,
// optionally for another GOOS/GOARCH (Env, e.g. "GOARCH=arm", "GOARM=7").
type Build struct {
	Pkg     string   // e.g. ./hubd
	Out     string   // the binary to write
	Env     []string // added to the environment; CGO_ENABLED=0 is always set
	LDFlags string   // e.g. "-s -w" for a stripped binary as make cross builds it
}

// GoBuild runs the build in the module at root. Binaries are static
// (CGO_ENABLED=0) and -trimpath, as the Makefile's cross target builds them,
// so what a benchmark measures is what ships.
func GoBuild(ctx context.Context, root string, b Build) error {
	args := []string{"build", "-trimpath", "-o", b.Out}
	if b.LDFlags != "" {
		args = append(args, "-ldflags", b.LDFlags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, b.Pkg)...)
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), b.Env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s %v: %w: %s", b.Pkg, b.Env, err, bytes.TrimSpace(msg))
	}
	return nil
}
