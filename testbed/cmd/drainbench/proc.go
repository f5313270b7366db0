package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// binaries are the programs a run starts.
type binaries struct {
	hubd, relay, versitygw, aws, ringgen string
	awsVersion                           string
}

// ringgenPkg writes backlogs with hubd's own ring: the ring is internal to
// hubd, so the generator is a command below hubd/.
const ringgenPkg = "./hubd/internal/ringgen"

// resolveBinaries returns the binaries of the flags, building hubd, relay
// and ringgen from the module that contains the working directory and
// looking up versitygw and aws.
func resolveBinaries(ctx context.Context, o *options, dir string, logf func(string, ...any)) (binaries, error) {
	b := binaries{hubd: o.hubd, relay: o.relay, versitygw: o.versitygw}
	root, rootErr := procstat.ModuleRoot(ctx)
	for _, t := range []struct {
		bin *string
		pkg string
	}{{&b.hubd, "./hubd"}, {&b.relay, "./relay"}} {
		if *t.bin != "" {
			continue
		}
		if rootErr != nil {
			return b, fmt.Errorf("%w (or pass -hubd and -relay)", rootErr)
		}
		out := filepath.Join(dir, "bin", filepath.Base(t.pkg))
		logf("building %s", t.pkg)
		if err := goBuild(ctx, root, out, t.pkg); err != nil {
			return b, err
		}
		*t.bin = out
	}
	// ringgen always needs the module: it is hubd's ring code.
	if rootErr != nil {
		return b, fmt.Errorf("%w (the backlog is written with hubd's ring package)", rootErr)
	}
	var err error
	if b.ringgen, err = buildRinggen(ctx, root, dir, logf); err != nil {
		return b, err
	}
	if b.versitygw == "" {
		if b.versitygw, err = findVersitygw(root); err != nil {
			return b, err
		}
	}
	if b.aws, err = exec.LookPath(o.aws); err != nil {
		return b, fmt.Errorf("aws CLI (the reference) not found: %w; on Debian: apt-get install awscli", err)
	}
	out, err := exec.CommandContext(ctx, b.aws, "--version").CombinedOutput()
	if err != nil {
		return b, fmt.Errorf("%s --version: %w: %s", b.aws, err, bytes.TrimSpace(out))
	}
	b.awsVersion = strings.TrimSpace(string(out))
	return b, nil
}

func goBuild(ctx context.Context, root, out, pkg string, extra ...string) error {
	args := append([]string{"build", "-o", out}, extra...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, bytes.TrimSpace(msg))
	}
	return nil
}

// buildRinggen compiles the backlog generator.
func buildRinggen(ctx context.Context, root, dir string, logf func(string, ...any)) (string, error) {
	out := filepath.Join(dir, "bin", "ringgen")
	logf("building the backlog generator (%s)", ringgenPkg)
	return out, goBuild(ctx, root, out, ringgenPkg)
}

// findVersitygw looks on PATH, then in <module root>/.bin, where
// scripts/setup.sh installs it (testbed.S3Server's lookup).
func findVersitygw(root string) (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	p := filepath.Join(root, ".bin", "versitygw")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p, nil
	}
	return "", fmt.Errorf("versitygw (S3 server) not found on PATH nor at %s; install it with scripts/setup.sh or pass -versitygw", p)
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// could take it before the server binds it; the server's start-up check
// then fails loudly.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// filterEnv returns env without the variables whose names start with any
// of prefixes.
func filterEnv(env []string, prefixes ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}
