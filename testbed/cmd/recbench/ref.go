package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// refLabel names the reference recorder in the table.
const refLabel = "ffmpeg -c copy"

// ffmpegSignalExit is ffmpeg's exit status after it stopped on a signal and
// finalized its output: the normal end of a reference run.
const ffmpegSignalExit = 255

// refResult is the reference recorder, one ffmpeg per camera remuxing into
// fragmented MP4 segments, measured like hubd in the same run of recbench.
type refResult struct {
	Recorder         string   `json:"recorder"`
	Streams          int      `json:"streams"`
	Processes        int      `json:"processes"`
	WindowSeconds    float64  `json:"window_seconds"`
	CPUSeconds       float64  `json:"cpu_seconds"` // utime+stime summed over the processes
	CPUPercent       float64  `json:"cpu_percent_one_core"`
	CPUPerStream     float64  `json:"cpu_percent_per_stream"`
	PeakRSSBytes     int64    `json:"peak_rss_bytes"` // sum of the per-process peaks: what the operator pays
	PeakRSSPerProc   []int64  `json:"peak_rss_bytes_per_process"`
	PayloadBytes     int64    `json:"payload_bytes"` // video packet bytes ffprobe reads back from the segments; 0 without ffprobe
	BytesWritten     int64    `json:"bytes_written"` // every file ffmpeg wrote
	WriteAmp         float64  `json:"write_amplification"`
	Segments         int      `json:"segments"`
	FDs              int      `json:"fds"`
	Threads          int      `json:"threads"`
	ConnectedAtStart int      `json:"cameras_connected_at_window_start"` // cameras with a non-empty segment
	Exits            []string `json:"exits"`

	// hubd's number over the reference's, both from the same run of
	// recbench; absent when the reference's is 0.
	CPUPerStreamRatio *float64 `json:"hubd_over_ref_cpu_per_stream,omitempty"`
	PeakRSSRatio      *float64 `json:"hubd_over_ref_peak_rss,omitempty"`

	Cameras  []refCamera `json:"cameras"`
	Problems []string    `json:"problems,omitempty"`
}

// refCamera is the per-camera check of the reference.
type refCamera struct {
	Camera       string `json:"camera"`
	Segments     int    `json:"segments"`
	BytesWritten int64  `json:"bytes_written"`
	Packets      int    `json:"packets"` // video packets ffprobe reads from all segments; -1: not probed
	PayloadBytes int64  `json:"payload_bytes"`
	Problem      string `json:"problem,omitempty"`
}

// ratio is a/b, nil when b is not positive.
func ratio(a, b float64) *float64 {
	if !(b > 0) {
		return nil
	}
	r := a / b
	return &r
}

// setReference attaches the reference run and the ratios of hubd to it.
func (r *result) setReference(ref *refResult) {
	ref.CPUPerStreamRatio = ratio(r.CPUPerStream, ref.CPUPerStream)
	ref.PeakRSSRatio = ratio(float64(r.PeakRSSBytes), float64(ref.PeakRSSBytes))
	r.Reference = ref
}

// ffmpegArgs is the command line an operator would use to record one
// camera without transcoding: remux into fragmented MP4 segments cut at the
// first keyframe after segment seconds, as hubd's are.
func ffmpegArgs(url, camDir string, o *options) []string {
	return []string{"-nostdin", "-v", "error",
		"-rtsp_transport", o.transport, "-i", url,
		"-c", "copy", "-f", "segment", "-segment_time", strconv.FormatFloat(o.segment, 'g', -1, 64),
		"-segment_format", "mp4", "-segment_format_options", "movflags=+frag_keyframe+empty_moov",
		"-reset_timestamps", "1", filepath.Join(camDir, "%05d.mp4")}
}

// refOne records n cameras of a fresh fakecam with one ffmpeg each, measured
// as benchOne measures hubd: the same warmup, the same CPU window, RSS
// sampled every second. Every process it starts is stopped on return.
func refOne(ctx context.Context, o *options, bins binaries, ffmpeg string, n int, dir string, hz float64, logf func(string, ...any)) (*refResult, error) {
	runDir := filepath.Join(dir, fmt.Sprintf("n%d", n), "ref")
	outDir := filepath.Join(runDir, "segments")
	if err := os.MkdirAll(outDir, 0o750); err != nil {
		return nil, fmt.Errorf("create reference dir: %w", err)
	}
	cam, urls, err := startFakecam(ctx, o, bins.fakecam, n, runDir)
	if err != nil {
		return nil, err
	}
	defer cam.Stop(stopGrace)

	var procs []*procstat.Child
	defer func() { stopAll(procs, syscall.SIGINT, stopGrace) }()
	var logs []string
	for i, u := range urls {
		id := fmt.Sprintf("cam%d", i+1)
		camDir := filepath.Join(outDir, id)
		if err := os.MkdirAll(camDir, 0o750); err != nil {
			return nil, fmt.Errorf("create reference dir: %w", err)
		}
		logPath := filepath.Join(runDir, "ffmpeg-"+id+".log")
		logFile, err := os.Create(logPath)
		if err != nil {
			return nil, fmt.Errorf("ffmpeg log: %w", err)
		}
		cmd := exec.Command(ffmpeg, ffmpegArgs(u, camDir, o)...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		p, err := procstat.StartChild("ffmpeg "+id, cmd, logFile)
		if err != nil {
			return nil, err
		}
		procs, logs = append(procs, p), append(logs, logPath)
	}
	withLogs := func(err error) error {
		for _, l := range logs {
			if t := procstat.Tail(l, 5); t != "" {
				err = fmt.Errorf("%w\n%s:\n%s", err, l, t)
			}
		}
		return err
	}
	pids := make([]string, len(procs))
	for i, p := range procs {
		pids[i] = strconv.Itoa(p.PID())
	}
	logf("%d streams: reference (%s) pids %s up; warmup %s, then measuring %s", n, refLabel, strings.Join(pids, ","), o.warmup, o.duration)
	m, err := measure(ctx, procs, o, hz, func(context.Context) (int, error) { return camerasWriting(outDir, n) })
	if err != nil {
		return nil, withLogs(err)
	}

	// /proc/PID is gone once ffmpeg exits: read VmHWM just before.
	peaks := make([]int64, len(procs))
	for i, p := range procs {
		ps, err := procstat.ReadStatus(p.PID())
		if err != nil {
			return nil, withLogs(err)
		}
		peaks[i] = max(ps.HWM, ps.RSS, m.maxRSS[i])
	}
	exitErrs := stopAll(procs, syscall.SIGINT, stopGrace) // ffmpeg finalizes its segment on SIGINT

	ref := &refResult{
		Recorder: refLabel, Streams: n, Processes: len(procs),
		WindowSeconds: m.window.Seconds(), CPUSeconds: m.cpuSeconds,
		PeakRSSPerProc: peaks, FDs: m.fds, Threads: m.threads, ConnectedAtStart: m.connected,
	}
	if ref.WindowSeconds > 0 {
		ref.CPUPercent = 100 * ref.CPUSeconds / ref.WindowSeconds
	}
	ref.CPUPerStream = ref.CPUPercent / float64(n)
	for _, p := range peaks {
		ref.PeakRSSBytes += p
	}
	for i, err := range exitErrs {
		status, ok := ffmpegExit(err)
		ref.Exits = append(ref.Exits, status)
		if !ok {
			ref.Problems = append(ref.Problems, fmt.Sprintf("%s: %s\n%s:\n%s", procs[i].Name(), status, logs[i], procstat.Tail(logs[i], 5)))
		}
	}

	if err := ref.scan(ctx, outDir, n); err != nil {
		return nil, err
	}
	if ref.ConnectedAtStart < n {
		ref.Problems = append(ref.Problems, fmt.Sprintf("only %d of %d cameras had written a segment when the CPU window opened", ref.ConnectedAtStart, n))
	}
	for _, c := range ref.Cameras {
		if c.Problem != "" {
			ref.Problems = append(ref.Problems, c.Camera+": "+c.Problem)
		}
	}
	return ref, nil
}

// stopAll stops the processes at once, each with sig then SIGKILL after
// grace, and returns how each ended.
func stopAll(procs []*procstat.Child, sig syscall.Signal, grace time.Duration) []error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.StopWith(sig, grace) })
	}
	wg.Wait()
	return errs
}

// ffmpegExit spells how an ffmpeg stopped by SIGINT ended, and whether that
// is the normal end: status 0, or 255 (ffmpeg's status after a signal, once
// it has finalized its output).
func ffmpegExit(err error) (string, bool) {
	if err == nil {
		return "0", true
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return strconv.Itoa(ee.ExitCode()), ee.ExitCode() == ffmpegSignalExit
	}
	return err.Error(), false
}

// camerasWriting counts the camera dirs under outDir with a non-empty file:
// ffmpeg with empty_moov writes a segment's header as soon as it records.
func camerasWriting(outDir string, n int) (int, error) {
	writing := 0
	for i := 1; i <= n; i++ {
		ents, err := os.ReadDir(filepath.Join(outDir, fmt.Sprintf("cam%d", i)))
		if err != nil {
			return 0, fmt.Errorf("reference segments: %w", err)
		}
		for _, e := range ents {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Size() > 0 {
				writing++
				break
			}
		}
	}
	return writing, nil
}

// scan totals what ffmpeg wrote and, with ffprobe on PATH, reads back the
// video packets of every segment: ffmpeg reports no bytes received, so the
// payload it recorded stands in for them in the write amplification.
func (ref *refResult) scan(ctx context.Context, outDir string, n int) error {
	_, lookErr := exec.LookPath("ffprobe")
	for i := 1; i <= n; i++ {
		c := refCamera{Camera: fmt.Sprintf("cam%d", i), Packets: -1}
		dir := filepath.Join(outDir, c.Camera)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("scan reference segments: %w", err)
		}
		var files []string
		for _, e := range ents {
			info, err := e.Info()
			if err != nil {
				return fmt.Errorf("scan reference segments: %w", err)
			}
			if !info.Mode().IsRegular() {
				continue
			}
			c.BytesWritten += info.Size()
			if strings.HasSuffix(e.Name(), ".mp4") {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
		sort.Strings(files)
		c.Segments = len(files)
		var problems []string
		if c.Segments == 0 {
			problems = append(problems, "recorded nothing")
		} else if lookErr == nil {
			c.Packets = 0
			for _, f := range files {
				pk, b, err := probePayload(ctx, f)
				if err != nil {
					problems = append(problems, err.Error())
					continue
				}
				c.Packets += pk
				c.PayloadBytes += b
			}
			if c.Packets == 0 {
				problems = append(problems, "ffprobe finds no video packet")
			}
		}
		c.Problem = strings.Join(problems, "; ")
		ref.Segments += c.Segments
		ref.BytesWritten += c.BytesWritten
		ref.PayloadBytes += c.PayloadBytes
		ref.Cameras = append(ref.Cameras, c)
	}
	if ref.PayloadBytes > 0 {
		ref.WriteAmp = float64(ref.BytesWritten) / float64(ref.PayloadBytes)
	}
	return nil
}

// probePayload counts the video packets of a segment and their bytes.
func probePayload(ctx context.Context, path string) (int, int64, error) {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=size", "-of", "csv=p=0", path).Output()
	if err != nil {
		var msg []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg = ee.Stderr
		}
		return 0, 0, fmt.Errorf("ffprobe %s: %w: %s", path, err, strings.TrimSpace(string(msg)))
	}
	pk, b, err := parsePacketSizes(string(out))
	if err != nil {
		return 0, 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	return pk, b, nil
}

// parsePacketSizes sums ffprobe's "-show_entries packet=size -of csv=p=0",
// one size a line (a trailing comma, as some ffprobe versions print, is
// ignored).
func parsePacketSizes(out string) (int, int64, error) {
	var packets int
	var bytes int64
	for _, line := range strings.Split(out, "\n") {
		f, _, _ := strings.Cut(strings.TrimSpace(line), ",")
		if f == "" {
			continue
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, fmt.Errorf("unexpected packet size %q", line)
		}
		packets, bytes = packets+1, bytes+n
	}
	return packets, bytes, nil
}
