// Command recbench is the recording benchmark: it records N simulated
// cameras with a real hubd process and prints hubd's CPU per stream, peak RSS
// and write amplification against the budget of the issue.
//
// hubd and the camera simulator (fakecam) run as separate processes so that
// the cameras' CPU is never counted against the recorder; everything hubd
// costs is read from /proc, never by asking hubd, so measuring costs it nothing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usageHead = `Usage: recbench [flags]

Records N simulated cameras (fakecam, RTSP on 127.0.0.1) with a hubd process
for -duration after -warmup, once per N of -n, each with a fresh data dir, and
prints one table row per N: hubd's CPU (% of one core, total and per stream,
over the -duration window), peak RSS (the larger of VmHWM and VmRSS sampled
every second), bytes received (hubd's bytes_in) vs bytes written (segment
files + index), and their ratio, the write amplification. A budget line per
row says PASS/FAIL for:
  CPU per stream      <= 0.5 % of one core (remux only)
  peak RSS            <= 32 MiB (judged for N=4 only)
  write amplification <= 1.02
Each run is also checked: hubd exits 0, every camera has segments on disk, and
ffprobe (if on PATH) counts the video frames of each camera's largest segment.

With -ref (the default) and ffmpeg on PATH, each N is then recorded again by
the reference, a fresh fakecam recorded by one ffmpeg per camera
  ffmpeg -nostdin -v error -rtsp_transport T -i URL -c copy -f segment
    -segment_time S -segment_format mp4
    -segment_format_options movflags=+frag_keyframe+empty_moov
    -reset_timestamps 1 DIR/camK/%05d.mp4
measured the same way (same warmup and CPU window, CPU and RSS summed over the
ffmpeg processes, each stopped with SIGINT), and a line per N gives hubd's CPU
per stream and peak RSS as a ratio of the reference's: absolute numbers drift
on a shared machine, ratios measured in one run hold. This doubles the time.

Exit status: 0 when every run worked (budget misses only reported unless
-strict), 1 when a run broke or -strict and a budget was missed, 2 on bad flags.

Flags:
`

// options are the parsed flags.
type options struct {
	hubd, fakecam    string
	counts           []int
	duration, warmup time.Duration
	size             string
	fps, kbps, gop   int
	segment          float64
	transport        string
	json, keep       bool
	strict           bool
	ref              bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills recbench the default way; children die with it (Pdeathsig)
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("recbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.hubd, "hubd", "", "hubd `binary` to measure (default: go build ./hubd of this module into the temp dir)")
	fs.StringVar(&o.fakecam, "fakecam", "", "fakecam `binary` simulating the cameras (default: go build ./testbed/cmd/fakecam into the temp dir)")
	counts := fs.String("n", "1,4", "comma-separated `list` of camera counts; one run per count, each with a fresh data dir")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "CPU window per run; hubd records warmup + duration + about 1 s in all (bytes cover all of it)")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "time after hubd answers before the CPU window opens (connects, first keyframes)")
	fs.StringVar(&o.size, "size", "1280x720", "picture size WIDTHxHEIGHT of the simulated cameras")
	fs.IntVar(&o.fps, "fps", 25, "frames per second of the simulated cameras")
	fs.IntVar(&o.kbps, "kbps", 2000, "H.264 bitrate of each simulated camera in kbit/s")
	fs.IntVar(&o.gop, "gop", 50, "frames between keyframes of the simulated cameras")
	fs.Float64Var(&o.segment, "segment", 30, "hubd recording.segment_seconds")
	fs.StringVar(&o.transport, "transport", "tcp", "RTSP transport hubd uses: tcp or udp")
	fs.BoolVar(&o.json, "json", false, "also print the results as JSON after the table")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (binaries, configs, data dirs, logs); it is always kept when a run breaks")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a budget is missed (default: report only)")
	fs.BoolVar(&o.ref, "ref", true, "after each hubd run, record the same cameras with one ffmpeg -c copy per camera and report hubd/ffmpeg ratios (skipped when ffmpeg is not on PATH)")
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
	if o.counts, err = parseCounts(*counts); err != nil {
		return nil, fmt.Errorf("-n: %w", err)
	}
	switch {
	case o.duration < time.Second:
		return nil, fmt.Errorf("-duration must be at least 1s, got %s", o.duration)
	case o.warmup < 0:
		return nil, fmt.Errorf("-warmup must not be negative, got %s", o.warmup)
	case o.transport != "tcp" && o.transport != "udp":
		return nil, fmt.Errorf("-transport must be tcp or udp, got %q", o.transport)
	case o.fps < 1 || o.kbps < 1 || o.gop < 1:
		return nil, errors.New("-fps, -kbps and -gop must be positive")
	case !(o.segment >= 1):
		return nil, fmt.Errorf("-segment must be at least 1 (hubd's minimum), got %g", o.segment)
	}
	return o, nil
}

// parseCounts parses "1,4" into [1 4].
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a list of positive camera counts (example: 1,4)", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "recbench: %v\n", err)
		return 2
	}
	logf := procstat.Logf(stderr, "recbench")
	wd, err := procstat.NewWorkdir("recbench", o.keep, logf)
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer wd.Done()
	dir := wd.Dir

	bins, err := resolveBinaries(ctx, o, dir, logf)
	if err != nil {
		logf("%v", err)
		wd.Broken = true
		return 1
	}
	ffmpeg := ""
	if o.ref {
		if ffmpeg, err = exec.LookPath("ffmpeg"); err != nil {
			logf("ffmpeg not on PATH: no reference measurement (-ref)")
		}
	}
	hz := procstat.ClockTicks()
	var results []*result
	for _, n := range o.counts {
		res, err := benchOne(ctx, o, bins, n, dir, hz, logf)
		if ctx.Err() != nil {
			logf("interrupted")
			return 1 // an interrupted run's leftovers explain nothing: the temp dir goes
		}
		if err != nil {
			logf("run with %d streams: %v", n, err)
			wd.Broken = true
			continue
		}
		if len(res.Problems) > 0 {
			wd.Broken = true
		}
		results = append(results, res)
		if ffmpeg == "" {
			continue
		}
		ref, err := refOne(ctx, o, bins, ffmpeg, n, dir, hz, logf)
		if ctx.Err() != nil {
			logf("interrupted")
			return 1
		}
		if err != nil {
			logf("reference with %d streams: %v", n, err)
			wd.Broken = true
			continue
		}
		if len(ref.Problems) > 0 {
			wd.Broken = true
		}
		res.setReference(ref)
	}
	if len(results) == 0 {
		return 1
	}
	if err := report(stdout, results, o.json); err != nil {
		logf("print results: %v", err)
		return 1
	}
	switch {
	case wd.Broken:
		return 1
	case o.strict && !allPass(results):
		return 1
	}
	return 0
}
