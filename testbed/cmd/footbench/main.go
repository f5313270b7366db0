// Command footbench measures hubd's footprint on a hub: the stripped binary
// per CPU, and with N simulated cameras recording and uploading through a
// real relay, its CPU per stream (natively on amd64 and under
// qemu-arm-static / qemu-aarch64-static, reported as a ratio to amd64),
// RSS, file descriptors and goroutines per camera, the bytes it sends to
// storage per hour and camera (what wears an SD card), the index's growth,
// and every queue's bound and metric. It prints tables; `make
// bench-footprint` runs it.
//
// hubd, the cameras (testbed/cmd/fakecam) and the relay run as separate
// processes; hubd's costs are read from /proc, and its metrics are scraped
// only at the edges of the measured window, so measuring costs it nothing
// inside the window.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zipnvr/zipnvr/testbed/procstat"
)

const usageHead = `Usage: footbench [flags]

Builds hubd stripped and static for each -arch (as make cross does) and
prints the binary sizes. Then starts -n simulated cameras (fakecam, 720p25
H.264 over RTSP/TCP on 127.0.0.1) and a relay keeping media in its own data
dir, and for each -arch runs hubd twice with a fresh data dir:
  - with no camera, for -warmup: the fixed cost (RSS, FDs, goroutines);
  - with the -n cameras recording and uploading: after all cameras are
    connected and -warmup, a window of -duration in which hubd's CPU time,
    write_bytes (/proc/PID/io), RSS (sampled every second) and index size
    are read; metrics are scraped at the window's two ends.
amd64 runs natively; armv7 and arm64 run under qemu-arm-static and
qemu-aarch64-static (skipped when not on PATH). Emulation inflates CPU, so
it is reported as a ratio to amd64 from the same run, not against a budget,
and the emulator's own memory is in the RSS of those rows.

Budgets (PASS/FAIL lines): stripped hubd <= 25 MiB on every arch; peak RSS
<= 40 MiB with the cameras recording and uploading (judged natively, on
amd64); every queue has a bound and a metric, and the metric stays within
the bound; the index does not grow once the ring is full (-ring-mib is
small so that the ring fills and evicts inside the run).

Exit status: 0 when every run worked (budget misses only reported unless
-strict), 1 when a run broke or -strict and a budget was missed, 2 on bad flags.

Flags:
`

type options struct {
	relay, fakecam     string
	arches             []string
	n                  int
	duration, warmup   time.Duration
	segment            float64
	ringMiB            int64
	size               string
	fps, kbps, gop     int
	json, keep, strict bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills footbench the default way; children die with it (Pdeathsig)
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("footbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.relay, "relay", "", "relay `binary` (default: go build ./relay of this module into the temp dir)")
	fs.StringVar(&o.fakecam, "fakecam", "", "fakecam `binary` (default: go build ./testbed/cmd/fakecam into the temp dir)")
	arches := fs.String("arch", "amd64,armv7,arm64", "comma-separated `list` of hub CPUs to build and run: amd64 (native, the reference, always first), armv7, arm64")
	fs.IntVar(&o.n, "n", 4, "cameras recorded and uploaded at once")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "measured window per arch")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "time after every camera is connected before the window opens; also the length of the no-camera run")
	fs.Float64Var(&o.segment, "segment", 10, "hubd recording.segment_seconds (10: segments close, upload and evict inside the window)")
	fs.Int64Var(&o.ringMiB, "ring-mib", 16, "hubd hub.ring_bytes in MiB (16, the minimum: the ring fills and evicts inside the run, as on a hub in steady state)")
	fs.StringVar(&o.size, "size", "1280x720", "picture size of the simulated cameras")
	fs.IntVar(&o.fps, "fps", 25, "frames per second of the simulated cameras")
	fs.IntVar(&o.kbps, "kbps", 2000, "H.264 bitrate of each simulated camera in kbit/s")
	fs.IntVar(&o.gop, "gop", 50, "frames between keyframes of the simulated cameras")
	fs.BoolVar(&o.json, "json", false, "also print the results as JSON after the tables")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (binaries, configs, data dirs, logs); it is always kept when a run breaks")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a budget is missed (default: report only)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if o.arches, err = parseArches(*arches); err != nil {
		return nil, fmt.Errorf("-arch: %w", err)
	}
	switch {
	case o.n < 1:
		return nil, fmt.Errorf("-n must be at least 1, got %d", o.n)
	case o.duration < 2*time.Second:
		return nil, fmt.Errorf("-duration must be at least 2s, got %s", o.duration)
	case o.warmup < time.Second:
		return nil, fmt.Errorf("-warmup must be at least 1s, got %s", o.warmup)
	case !(o.segment >= 1):
		return nil, fmt.Errorf("-segment must be at least 1 (hubd's minimum), got %g", o.segment)
	case o.ringMiB < 16:
		return nil, fmt.Errorf("-ring-mib must be at least 16 (hubd's minimum), got %d", o.ringMiB)
	case o.fps < 1 || o.kbps < 1 || o.gop < 1:
		return nil, errors.New("-fps, -kbps and -gop must be positive")
	}
	return o, nil
}

// parseArches checks the list against the known hub CPUs and puts amd64
// first: the other rows are reported as ratios to it.
func parseArches(s string) ([]string, error) {
	seen := map[string]bool{}
	out := []string{"amd64"}
	for _, f := range strings.Split(s, ",") {
		a := strings.TrimSpace(f)
		if _, ok := targets[a]; !ok {
			return nil, fmt.Errorf("unknown arch %q (known: amd64, armv7, arm64)", a)
		}
		if seen[a] {
			return nil, fmt.Errorf("arch %q listed twice", a)
		}
		seen[a] = true
		if a != "amd64" {
			out = append(out, a)
		}
	}
	if !seen["amd64"] {
		return nil, errors.New("amd64 must be in the list: it is the reference of the CPU ratios")
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "footbench: %v\n", err)
		return 2
	}
	logf := procstat.Logf(stderr, "footbench")
	wd, err := procstat.NewWorkdir("footbench", o.keep, logf)
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer wd.Done()
	dir := wd.Dir

	rep, err := bench(ctx, o, dir, logf)
	if ctx.Err() != nil {
		logf("interrupted")
		return 1
	}
	if err != nil {
		logf("%v", err)
		wd.Broken = true
		return 1
	}
	if err := report(stdout, rep, o.json); err != nil {
		logf("print results: %v", err)
		return 1
	}
	switch {
	case len(rep.Problems) > 0:
		wd.Broken = true
		return 1
	case o.strict && !rep.allPass():
		return 1
	}
	return 0
}
