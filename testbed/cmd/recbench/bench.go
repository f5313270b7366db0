package main

import (
	"context"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	hubdUpTimeout = 10 * time.Second
	stopGrace     = 10 * time.Second
	drainWait     = time.Second // after the cameras stop, for frames in flight to reach hubd's counters
)

// benchOne records n cameras for the warmup and the measured window and
// returns what it measured. Every process it starts is stopped on return.
func benchOne(ctx context.Context, o *options, bins binaries, n int, dir string, hz float64, logf func(string, ...any)) (*result, error) {
	runDir := filepath.Join(dir, fmt.Sprintf("n%d", n))
	dataDir := filepath.Join(runDir, "data") // fresh per run: the index and ring start empty
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}

	cam, urls, err := startFakecam(ctx, o, bins.fakecam, n, runDir)
	if err != nil {
		return nil, err
	}
	defer cam.Stop(stopGrace)

	cfgPath := filepath.Join(runDir, "hubd.yaml")
	if err := os.WriteFile(cfgPath, []byte(hubdConfig(dataDir, urls, o)), 0o640); err != nil {
		return nil, fmt.Errorf("write hubd config: %w", err)
	}
	hubLog := filepath.Join(runDir, "hubd.log")
	hub, err := startHubd(bins.hubd, cfgPath, hubLog)
	if err != nil {
		return nil, err
	}
	defer hub.Stop(stopGrace)
	withLog := func(err error) error {
		return fmt.Errorf("%w\nhubd log (%s):\n%s", err, hubLog, procstat.Tail(hubLog, 15))
	}

	client := newStatusClient(filepath.Join(dataDir, "hubd.sock"))
	if err := waitHubd(ctx, client, hub); err != nil {
		return nil, withLog(err)
	}
	logf("%d streams: hubd pid %d up; warmup %s, then measuring %s", n, hub.PID(), o.warmup, o.duration)
	m, err := measure(ctx, []*procstat.Child{hub}, o, hz, func(ctx context.Context) (int, error) {
		st, err := client.status(ctx)
		if err != nil {
			return 0, fmt.Errorf("status after warmup: %w", err)
		}
		n := 0
		for _, c := range st.Cameras {
			if c.Connected {
				n++
			}
		}
		return n, nil
	})
	if err != nil {
		return nil, withLog(err)
	}

	end, err := stopRun(ctx, cam, hub, client)
	if err != nil {
		return nil, withLog(err)
	}
	m.maxRSS[0] = max(m.maxRSS[0], end.proc.RSS)

	du, err := scanData(dataDir)
	if err != nil {
		return nil, err
	}
	res := newResult(n, m, end.proc, end.status, du, end.exitErr)
	res.Cameras = checkCameras(ctx, end.status, du)
	res.collectProblems()
	if end.exitErr != nil {
		res.Problems = append(res.Problems, withLog(end.exitErr).Error())
	}
	return res, nil
}

// runEnd is what is read of hubd as a run stops.
type runEnd struct {
	status  *statusReport
	proc    procstat.Status // VmHWM, the peak over hubd's whole life, read last
	exitErr error           // how hubd exited: nil is status 0
}

// stopRun stops the cameras, then hubd. The cameras go first so that
// nothing arrives between reading bytes_in and hubd's shutdown: everything
// counted as received is then what hubd had to write, and nothing written
// is uncounted.
func stopRun(ctx context.Context, cam, hub *procstat.Child, client *statusClient) (runEnd, error) {
	var end runEnd
	if err := cam.Stop(stopGrace); err != nil {
		return end, fmt.Errorf("stop cameras: %w", err)
	}
	if err := procstat.SleepCtx(ctx, drainWait); err != nil {
		return end, err
	}
	var err error
	if end.status, err = client.status(ctx); err != nil {
		return end, fmt.Errorf("final status: %w", err)
	}
	// /proc/PID is gone once hubd exits: read VmHWM just before.
	if end.proc, err = procstat.ReadStatus(hub.PID()); err != nil {
		return end, err
	}
	end.exitErr = hub.Stop(stopGrace)
	return end, nil
}

// startFakecam starts n simulated cameras on a port of the kernel's choosing
// (no window for another process to take it) and returns their URLs.
func startFakecam(ctx context.Context, o *options, bin string, n int, runDir string) (*procstat.Child, []string, error) {
	args := []string{"-listen", "127.0.0.1:0", "-n", strconv.Itoa(n), "-size", o.size,
		"-fps", strconv.Itoa(o.fps), "-gop", strconv.Itoa(o.gop), "-kbps", strconv.Itoa(o.kbps)}
	if o.transport == "udp" {
		args = append(args, "-udp")
	}
	return procstat.StartFakecam(ctx, bin, args, n, filepath.Join(runDir, "fakecam.log"))
}

// hubdConfig is the YAML of one run: camK records fakecam's camK.
func hubdConfig(dataDir string, urls []string, o *options) string {
	var b strings.Builder
	// strconv.Quote output is a valid YAML double-quoted scalar for these ASCII paths and URLs.
	fmt.Fprintf(&b, "hub: {id: bench, data_dir: %s, ring_bytes: 8GiB}\n", strconv.Quote(dataDir))
	fmt.Fprintf(&b, "recording: {segment_seconds: %g}\n", o.segment)
	b.WriteString("log: {level: warn}\ncameras:\n")
	for i, u := range urls {
		fmt.Fprintf(&b, "  - id: cam%d\n    streams: {high: %s}\n    transport: %s\n", i+1, strconv.Quote(u), o.transport)
	}
	return b.String()
}

func startHubd(bin, cfgPath, logPath string) (*procstat.Child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("hubd log: %w", err)
	}
	cmd := exec.Command(bin, "run", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	return procstat.StartChild("hubd", cmd, logFile)
}

// waitHubd waits until hubd answers on its control socket.
func waitHubd(ctx context.Context, client *statusClient, hub *procstat.Child) error {
	deadline := time.Now().Add(hubdUpTimeout)
	for {
		_, err := client.status(ctx)
		if err == nil {
			return nil
		}
		if hub.Exited() {
			return fmt.Errorf("hubd exited at start-up: %v", hub.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hubd did not answer within %s: %w", hubdUpTimeout, err)
		}
		if err := procstat.SleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// measurement is what /proc told about a recorder's processes during a run:
// hubd's one process, or the reference's one ffmpeg per camera.
type measurement struct {
	window     time.Duration // wall time between the two CPU readings
	cpuSeconds float64       // utime+stime spent in the window, summed over the processes
	maxRSS     []int64       // per process, the largest VmRSS seen by the 1 s sampling
	fds        int           // summed over the processes at the window's end
	threads    int           // summed over the processes at the last sample
	connected  int           // cameras connected when the window opened
}

// measure lets the processes warm up, then reads their CPU time across
// o.duration, sampling RSS every second. connected is asked once, after the
// warmup, how many cameras are being recorded. Nothing is asked inside the
// window: answering would cost CPU that recording does not.
func measure(ctx context.Context, procs []*procstat.Child, o *options, hz float64, connected func(context.Context) (int, error)) (measurement, error) {
	m := measurement{maxRSS: make([]int64, len(procs))}
	sample := func() error {
		threads := 0
		for i, p := range procs {
			ps, err := procstat.ReadStatus(p.PID())
			if err != nil {
				return err
			}
			m.maxRSS[i] = max(m.maxRSS[i], ps.RSS)
			threads += ps.Threads
		}
		m.threads = threads
		return nil
	}
	if err := watch(ctx, procs, o.warmup, sample); err != nil {
		return m, fmt.Errorf("warmup: %w", err)
	}
	var err error
	if m.connected, err = connected(ctx); err != nil {
		return m, err
	}

	start := time.Now()
	t0, err := sumTicks(procs)
	if err != nil {
		return m, err
	}
	if err := watch(ctx, procs, o.duration, sample); err != nil {
		return m, fmt.Errorf("measuring: %w", err)
	}
	t1, err := sumTicks(procs)
	if err != nil {
		return m, err
	}
	m.window, m.cpuSeconds = time.Since(start), float64(t1-t0)/hz
	for _, p := range procs {
		n, err := procstat.OpenFDs(p.PID())
		if err != nil {
			return m, err
		}
		m.fds += n
	}
	return m, sample()
}

// sumTicks is the utime+stime of all the processes, in clock ticks.
func sumTicks(procs []*procstat.Child) (uint64, error) {
	var sum uint64
	for _, p := range procs {
		t, err := procstat.CPUTicks(p.PID())
		if err != nil {
			return 0, err
		}
		sum += t
	}
	return sum, nil
}

// watch calls sample now and every second for d (procstat.Watch).
func watch(ctx context.Context, procs []*procstat.Child, d time.Duration, sample func() error) error {
	return procstat.Watch(ctx, procs, d, time.Second, sample)
}

// diskUsage is what a run left in the data dir.
type diskUsage struct {
	segmentBytes int64 // every file under segments/, .part files included
	indexBytes   int64
	segments     int // committed .mp4 files
	parts        int // .part files: segments not committed
	byCamera     map[string][]segFile
}

type segFile struct {
	path string
	size int64
}

func scanData(dataDir string) (diskUsage, error) {
	du := diskUsage{byCamera: map[string][]segFile{}}
	root := filepath.Join(dataDir, "segments")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		du.segmentBytes += info.Size()
		switch {
		case strings.HasSuffix(p, ".mp4"):
			du.segments++
			rel, _ := filepath.Rel(root, p) // segments/CAMERA/DATE/FILE
			cam, _, _ := strings.Cut(rel, string(filepath.Separator))
			du.byCamera[cam] = append(du.byCamera[cam], segFile{p, info.Size()})
		case strings.HasSuffix(p, ".part"):
			du.parts++
		}
		return nil
	})
	if err != nil {
		return du, fmt.Errorf("scan segments: %w", err)
	}
	info, err := os.Stat(filepath.Join(dataDir, "index.db"))
	if err != nil {
		return du, fmt.Errorf("index size: %w", err)
	}
	du.indexBytes = info.Size()
	return du, nil
}

// checkCameras verifies every camera recorded something playable: the
// largest segment of each is probed with ffprobe when it is on PATH.
func checkCameras(ctx context.Context, st *statusReport, du diskUsage) []cameraCheck {
	_, lookErr := exec.LookPath("ffprobe")
	var out []cameraCheck
	for _, c := range st.Cameras {
		cc := cameraCheck{Camera: c.Camera, FramesIn: c.FramesIn, BytesIn: c.BytesIn,
			Dropped: c.FramesDropped + c.QueueDropped, Segments: len(du.byCamera[c.Camera]), ProbedFrames: -1}
		var problems []string
		if c.FramesIn == 0 {
			problems = append(problems, "received no frame")
		}
		if cc.Segments == 0 {
			problems = append(problems, "recorded nothing")
		} else if lookErr == nil {
			largest := du.byCamera[c.Camera][0]
			for _, f := range du.byCamera[c.Camera] {
				if f.size > largest.size {
					largest = f
				}
			}
			cc.Probed = largest.path
			n, err := probeFrames(ctx, largest.path)
			switch {
			case err != nil:
				problems = append(problems, err.Error())
			case n == 0:
				problems = append(problems, "ffprobe finds no video frame in "+largest.path)
			}
			cc.ProbedFrames = n
		}
		cc.Problem = strings.Join(problems, "; ")
		out = append(out, cc)
	}
	return out
}

// probeFrames counts the video packets of a segment with ffprobe.
func probeFrames(ctx context.Context, path string) (int, error) {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
		"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s: unexpected output %q", path, out)
	}
	return n, nil
}
