// Command livebench is the live-view benchmark: with relay and hubd as real
// processes, a simulated camera (fakecam: 720p25, 2 Mbit/s, a keyframe
// every 2 s) and headless Chromium, it measures
//   - page navigation -> first decoded frame (the relay's page over WebRTC),
//     joining a running stream (the cached-GOP start) and from cold;
//   - the latency relay adds: hub got the camera's frame -> relay sent it
//     over WebRTC (relay_live_send_delay_seconds; one clock on loopback);
//   - relay CPU per camera stream and per viewer, and whether one relay core
//     (GOMAXPROCS=1) carries N viewers of one camera at the camera's full rate
//     (pion viewers in a separate process);
//
// and prints a table against the targets of the live-view issue.
//
// Everything runs in a private network namespace (loopback only) when it can
// be made (root with unshare), as the tests do: Chromium reaches relay's
// 127.0.0.1 candidates there, and no packet leaves the machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/procstat"
)

const usageHead = `Usage: livebench [flags]

Starts fakecam (one RTSP camera), relay (GOMAXPROCS=-relay-procs) and hubd
as processes, all on 127.0.0.1 inside a private network namespace, then:
  1. relay's CPU with the hub linked and nothing streaming (-window);
  2. -runs cold starts: Chromium opens relay's page on the camera when no
     stream runs (relay asks the hub, the hub pulls the camera);
  3. one background pion viewer keeps the stream up; relay's CPU (-window);
  4. -runs joins of the running stream at random points of the GOP;
  5. -viewers pion viewers (a separate process) for -window: relay's CPU,
     the rate each viewer received, frames relay dropped.
Prints one table. First frame: page navigation to the first frame the page
saw decoded (requestVideoFrameCallback or getStats framesDecoded).
Targets (live-view issue): joining median <= 0.6 s and p95 <= 1 s; added
latency median <= 50 ms; one relay core serves >= 200 viewers at 2 Mbit/s.

Exit status: 0 when the runs worked (a missed target is reported, and is an
error only with -strict), 1 when something broke, 2 on bad flags.

Also: livebench viewers -relay URL -channel ID -user-token T -n N [-duration D]
(the load generator the bench starts; see viewers.go).

Flags:
`

type options struct {
	runs, viewers, relayProcs int
	window                    time.Duration
	fps, gop, kbps            int
	cold, strict, keep        bool
	relay, hubd, fakecam      string
	browser                   string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "viewers" {
		os.Exit(runViewers(os.Args[2:]))
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("livebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.runs, "runs", 20, "first-frame runs per case (cold, joining)")
	fs.IntVar(&o.viewers, "viewers", 200, "concurrent pion viewers of the load step (0: skip it)")
	fs.IntVar(&o.relayProcs, "relay-procs", 1, "relay's GOMAXPROCS (1: what one core serves)")
	fs.DurationVar(&o.window, "window", 15*time.Second, "each CPU measuring window")
	fs.IntVar(&o.fps, "fps", 25, "camera frames per second")
	fs.IntVar(&o.gop, "gop", 50, "camera frames between keyframes (50 at 25 fps: 2 s)")
	fs.IntVar(&o.kbps, "kbps", 2000, "camera bitrate, kbit/s")
	fs.BoolVar(&o.cold, "cold", true, "also measure cold starts (no stream running)")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a target is missed")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, configs)")
	fs.StringVar(&o.relay, "relay", "", "relay binary (default: built from this module)")
	fs.StringVar(&o.hubd, "hubd", "", "hubd binary (default: built)")
	fs.StringVar(&o.fakecam, "fakecam", "", "fakecam binary (default: built)")
	fs.StringVar(&o.browser, "chromium", "", "Chromium binary (default: chromium on PATH)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.runs < 1 || o.runs > 1000:
		return o, fmt.Errorf("-runs %d: want 1..1000", o.runs)
	case o.viewers < 0 || o.viewers > 2000:
		return o, fmt.Errorf("-viewers %d: want 0..2000", o.viewers)
	case o.window < 2*time.Second || o.window > 10*time.Minute:
		return o, fmt.Errorf("-window %s: want 2s..10m", o.window)
	case o.fps < 1 || o.gop < 1 || o.kbps < 50:
		return o, fmt.Errorf("-fps, -gop, -kbps must be positive (-kbps >= 50)")
	}
	return o, nil
}

func run(argv []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(argv[1:], stderr)
	if err == flag.ErrHelp {
		return 0
	} else if err != nil {
		fmt.Fprintln(stderr, "livebench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "livebench: "+format+"\n", a...) }

	// Outside the namespace: build what is missing (the module proxy is
	// unreachable inside), then run again inside it with the binaries named.
	if os.Getenv("TESTBED_NETNS") == "" {
		binDir, err := os.MkdirTemp("", "livebench-bin-")
		if err != nil {
			logf("%v", err)
			return 1
		}
		defer os.RemoveAll(binDir)
		if err := buildMissing(ctx, &o, binDir, logf); err != nil {
			logf("%v", err)
			return 1
		}
		inner := append([]string{argv[0]}, argv[1:]...)
		inner = append(inner, "-relay", o.relay, "-hubd", o.hubd, "-fakecam", o.fakecam)
		return testbed.InNetNS(inner, func() int { return bench(ctx, o, stdout, logf) })
	}
	return bench(ctx, o, stdout, logf)
}

// buildMissing builds relay, hubd and fakecam into dir where no flag named one.
func buildMissing(ctx context.Context, o *options, dir string, logf func(string, ...any)) error {
	var root string
	for _, t := range []struct {
		bin *string
		pkg string
	}{{&o.relay, "./relay"}, {&o.hubd, "./hubd"}, {&o.fakecam, "./testbed/cmd/fakecam"}} {
		if *t.bin != "" {
			continue
		}
		if root == "" {
			var err error
			if root, err = procstat.ModuleRoot(ctx); err != nil {
				return err
			}
		}
		out := filepath.Join(dir, filepath.Base(t.pkg))
		logf("building %s", t.pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, t.pkg)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w: %s", t.pkg, err, msg)
		}
		*t.bin = out
	}
	return nil
}

func bench(ctx context.Context, o options, stdout io.Writer, logf func(string, ...any)) int {
	dir, err := os.MkdirTemp("", "livebench-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	if o.keep {
		logf("work directory (kept): %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	res, err := measure(ctx, o, dir, logf)
	if err != nil {
		logf("%v", err)
		if !o.keep {
			logf("(run with -keep to look at the logs)")
		}
		return 1
	}
	missed := res.print(stdout, o)
	if missed && o.strict {
		return 1
	}
	return 0
}
