// Command drainbench is the backlog drain benchmark: after an outage left
// a ring full of closed segments, how fast does a real hubd upload them to
// S3 through the relay's presigned URLs, against `aws s3 cp --recursive` of
// the same files to the same S3 server in the same run?
//
// versitygw (S3), the relay, hubd and the AWS CLI run as separate
// processes on 127.0.0.1; CPU time is read from /proc, never by asking a
// process that is being measured.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usageHead = `Usage: drainbench [flags]

Measures how fast hubd drains a backlog of segments to S3 against the AWS CLI.

Setup, once: versitygw (S3, posix backend, found on PATH or in .bin) with a
bucket, and a relay process storing media in it (path-style). The backlog is
-bytes of segments of -segment-bytes (the last holds the remainder) of camera
cam1, written into a hubd data dir by hubd's own ring code (Create, Write,
Commit: the index, file names and MD5s are hubd's), content pseudo-random;
each segment spans the time -segment-bytes takes at 2 Mbit/s.

Then -rounds times, alternately:
  reference  aws s3 cp --recursive --no-progress DATA/segments s3://drainbench/ref-rN/
             --endpoint-url URL  (root keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY),
             timed from its start to its exit;
  hubd       for each N of -parallel: a new hub registered with the relay and its
             camera cam1 reported (so it has a channel: a fresh bucket prefix), a clone
             of the backlog (index copied, segment files hard-linked: the same inodes the
             reference reads), then hubd run with relay.parallel_uploads N and no camera
             to record, timed from its start to the last_upload of its last segment
             (its control socket is polled every 50 ms for the count).
Every run is checked: all segments in the bucket with the right total size, and
for hubd, every recording stored by the relay; its objects are removed after.

The table has a row per run: bytes, segments, seconds, MB/s (10^6 bytes),
segments/s and the CPU seconds of the uploader (hubd: whole life; aws: rusage),
the relay and versitygw during the run; then the median per setting and a
budget line per hubd setting:
  hubd drain rate / aws s3 cp drain rate (medians) >= 0.8
A breakdown of each drain's time per segment (relay presign and notify handler
times from its metrics) follows.

Exit status: 0 when every run worked (budget misses only reported unless
-strict), 1 when a run broke or -strict and a budget was missed, 2 on bad flags.

Flags:
`

// cameraBitrate gives the segments their time span: a 2 Mbit/s camera.
const cameraBitrate = 2e6

// options are the parsed flags.
type options struct {
	hubd, relay, versitygw, aws string
	bytes, segBytes             int64
	parallel                    []int
	rounds                      int
	awsConcurrency              int
	timeout                     time.Duration
	json, keep, strict          bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills drainbench the default way; children die with it (Pdeathsig)
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// byteSize is a flag holding a size: 1GiB, 7.5MB, 200MiB, 1048576.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// parseSize parses a positive byte count with an optional unit (binary
// KiB..TiB or decimal KB..TB), e.g. "1GiB", "7.5MB", "4096".
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			mult, t = u.mult, strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	n := f * mult
	if err != nil || !(n >= 1) || n > 1<<50 { // !(n >= 1) also refuses NaN
		return 0, fmt.Errorf("%q is not a size (examples: 1GiB, 7.5MB, 1048576)", s)
	}
	return int64(n), nil
}

// parseParallel parses "2,4,8": hubd's parallel_uploads, each 1 to 32.
func parseParallel(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 32 {
			return nil, fmt.Errorf("%q is not a list of parallel_uploads values 1 to 32 (example: 2,4,8)", s)
		}
		if seen[n] {
			return nil, fmt.Errorf("%q repeats %d", s, n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("drainbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	total, seg := byteSize(1<<30), byteSize(7_500_000)
	fs.Var(&total, "bytes", "`size` of the backlog (1GiB, 200MiB, 7.5MB, 1048576)")
	fs.Var(&seg, "segment-bytes", "`size` of each segment: 7.5MB is 30 s at 2 Mbit/s")
	parallel := fs.String("parallel", "2", "comma-separated `list` of hubd relay.parallel_uploads values (hubd's default is 2), e.g. 2,4,8")
	fs.IntVar(&o.rounds, "rounds", 2, "rounds of reference then hubd (each -parallel); the table gives each and the median")
	fs.IntVar(&o.awsConcurrency, "aws-concurrency", 0, "aws s3 max_concurrent_requests of the reference (0: the CLI's default, 10)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "longest a single run may take")
	fs.StringVar(&o.hubd, "hubd", "", "hubd `binary` to measure (default: go build ./hubd of this module into the temp dir)")
	fs.StringVar(&o.relay, "relay", "", "relay `binary` (default: go build ./relay of this module into the temp dir)")
	fs.StringVar(&o.versitygw, "versitygw", "", "versitygw `binary` (default: PATH, then <module root>/.bin)")
	fs.StringVar(&o.aws, "aws", "aws", "AWS CLI `binary` of the reference (name on PATH or path); Debian package awscli")
	fs.BoolVar(&o.json, "json", false, "also print the results as JSON after the table")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (binaries, configs, backlog, S3 objects, logs); it is always kept when a run breaks")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when the budget is missed (default: report only)")
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
	o.bytes, o.segBytes = int64(total), int64(seg)
	var err error
	if o.parallel, err = parseParallel(*parallel); err != nil {
		return nil, fmt.Errorf("-parallel: %w", err)
	}
	switch {
	case o.rounds < 1:
		return nil, fmt.Errorf("-rounds must be at least 1, got %d", o.rounds)
	case o.segBytes > o.bytes:
		return nil, fmt.Errorf("-segment-bytes (%d) exceeds -bytes (%d)", o.segBytes, o.bytes)
	case o.segBytes > 5<<30:
		return nil, fmt.Errorf("-segment-bytes must be at most 5GiB (S3's single PUT), got %d", o.segBytes)
	case (o.bytes+o.segBytes-1)/o.segBytes > 1_000_000:
		return nil, errors.New("more than 1,000,000 segments: raise -segment-bytes")
	case o.awsConcurrency < 0:
		return nil, fmt.Errorf("-aws-concurrency must not be negative, got %d", o.awsConcurrency)
	case o.timeout < time.Second:
		return nil, fmt.Errorf("-timeout must be at least 1s, got %s", o.timeout)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "drainbench: %v\n", err)
		return 2
	}
	logf := procstat.Logf(stderr, "drainbench")
	wd, err := procstat.NewWorkdir("drainbench", o.keep, logf)
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer wd.Done()
	dir := wd.Dir
	fail := func(format string, a ...any) int {
		if ctx.Err() != nil {
			logf("interrupted")
			return 1 // an interrupted run's leftovers explain nothing: the temp dir goes
		}
		logf(format, a...)
		wd.Broken = true
		return 1
	}

	bins, err := resolveBinaries(ctx, o, dir, logf)
	if err != nil {
		return fail("%v", err)
	}
	logf("writing the backlog: %d bytes in segments of %d bytes", o.bytes, o.segBytes)
	bl, err := makeBacklog(ctx, o, bins, dir)
	if err != nil {
		return fail("%v", err)
	}
	s3, err := startS3(ctx, bins.versitygw, dir)
	if err != nil {
		return fail("versitygw: %v", err)
	}
	defer s3.Stop(stopGrace)
	relay, err := startRelay(ctx, bins.relay, dir, s3)
	if err != nil {
		return fail("relay: %v", err)
	}
	defer relay.Stop(stopGrace)
	tenant, err := relay.createTenant(ctx, "drainbench")
	if err != nil {
		return fail("relay: %v", err)
	}
	e := &env{o: o, bins: bins, dir: dir, hz: procstat.ClockTicks(), s3: s3, relay: relay, tenant: tenant, bl: bl, logf: logf}
	logf("backlog: %d segments, %d bytes; S3 %s, relay %s; %s", bl.segments, bl.bytes, s3.endpoint, relay.url, bins.awsVersion)

	// The first start of the CLI reads its Python modules from disk: warm up
	// once, then time its start-up for the header.
	if _, err := awsStartup(ctx, e); err != nil {
		return fail("%v", err)
	}
	startup, err := awsStartup(ctx, e)
	if err != nil {
		return fail("%v", err)
	}

	var runs []*result
	for round := 1; round <= o.rounds; round++ {
		r, err := refOne(ctx, e, round)
		if err != nil {
			return fail("round %d, aws s3 cp: %v", round, err)
		}
		logf("round %d: aws s3 cp: %.2f s, %.1f MB/s", round, r.Seconds, r.mbps())
		runs = append(runs, r)
		for _, p := range o.parallel {
			r, err := drainOne(ctx, e, round, p)
			if err != nil {
				return fail("round %d, hubd parallel %d: %v", round, p, err)
			}
			logf("round %d: hubd parallel %d: %.2f s, %.1f MB/s", round, p, r.Seconds, r.mbps())
			runs = append(runs, r)
		}
	}
	for _, c := range []*procstat.Child{relay.Child, s3.Child} {
		if err := c.Stop(stopGrace); err != nil {
			logf("%v", err)
		}
	}
	for _, r := range runs {
		if len(r.Problems) > 0 {
			wd.Broken = true
		}
	}
	h := header{Bytes: bl.bytes, Segments: bl.segments, SegmentBytes: o.segBytes, SegmentSecs: bl.segDur.Seconds(),
		AWS: bins.awsVersion, AWSStartup: startup.Seconds(), Hubd: bins.hubd, CPUs: runtime.NumCPU()}
	if err := report(stdout, h, runs, o.json); err != nil {
		logf("print results: %v", err)
		return 1
	}
	switch {
	case wd.Broken:
		return 1
	case o.strict && !allPass(summarize(runs)):
		return 1
	}
	return 0
}
