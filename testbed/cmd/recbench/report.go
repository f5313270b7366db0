package main

import (
	"encoding/json"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"io"
	"strings"
	"text/tabwriter"
)

// The budget of the issue.
const (
	maxCPUPerStream  = 0.5  // % of one core per stream: remux only
	maxRSSMiB        = 32.0 // peak RSS, judged with budgetRSSStreams cameras
	budgetRSSStreams = 4
	maxWriteAmp      = 1.02
)

// result is one run, one table row.
type result struct {
	Streams            int     `json:"streams"`
	WindowSeconds      float64 `json:"window_seconds"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	CPUPercent         float64 `json:"cpu_percent_one_core"`
	CPUPerStream       float64 `json:"cpu_percent_per_stream"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes"` // max of the two below: what is judged
	VmHWMBytes         int64   `json:"vmhwm_bytes"`    // the kernel's peak over hubd's whole life
	MaxSampledRSSBytes int64   `json:"max_sampled_rss_bytes"`
	BytesReceived      uint64  `json:"bytes_received"` // sum of bytes_in: the elementary stream
	BytesWritten       int64   `json:"bytes_written"`  // segment files + index
	SegmentBytes       int64   `json:"segment_bytes"`
	IndexBytes         int64   `json:"index_bytes"`
	WriteAmp           float64 `json:"write_amplification"`
	Segments           int     `json:"segments"`
	PartFiles          int     `json:"part_files"`
	FDs                int     `json:"fds"`
	Threads            int     `json:"threads"`
	ConnectedAtStart   int     `json:"cameras_connected_at_window_start"`
	HubdExit           string  `json:"hubd_exit"`

	Cameras  []cameraCheck `json:"cameras"`
	Budget   []verdict     `json:"budget"`
	Problems []string      `json:"problems,omitempty"`

	// Reference is the same cameras recorded by ffmpeg -c copy right after
	// hubd (-ref); nil when not run.
	Reference *refResult `json:"reference,omitempty"`
}

// cameraCheck is the per-camera correctness check.
type cameraCheck struct {
	Camera       string `json:"camera"`
	FramesIn     uint64 `json:"frames_in"`
	BytesIn      uint64 `json:"bytes_in"`
	Dropped      uint64 `json:"frames_dropped"` // before a keyframe + queue overflow
	Segments     int    `json:"segments"`
	Probed       string `json:"probed_segment,omitempty"`
	ProbedFrames int    `json:"probed_frames"` // -1: not probed (no ffprobe or no segment)
	Problem      string `json:"problem,omitempty"`
}

// verdict is one budget line item.
type verdict struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	Judged bool    `json:"judged"`
	Pass   bool    `json:"pass"`
	format string  // of Value and Limit on the budget line
}

func newResult(n int, m measurement, ps procstat.Status, st *statusReport, du diskUsage, exitErr error) *result {
	r := &result{
		Streams:       n,
		WindowSeconds: m.window.Seconds(),
		// The kernel keeps RSS in approximate per-CPU counters and raises
		// VmHWM lazily, so a VmRSS sample can exceed it by a few pages.
		PeakRSSBytes:       max(ps.HWM, m.maxRSS[0]),
		VmHWMBytes:         ps.HWM,
		MaxSampledRSSBytes: m.maxRSS[0],
		SegmentBytes:       du.segmentBytes,
		IndexBytes:         du.indexBytes,
		BytesWritten:       du.segmentBytes + du.indexBytes,
		Segments:           du.segments,
		PartFiles:          du.parts,
		FDs:                m.fds,
		Threads:            m.threads,
		ConnectedAtStart:   m.connected,
		HubdExit:           "0",
	}
	r.CPUSeconds = m.cpuSeconds
	if r.WindowSeconds > 0 {
		r.CPUPercent = 100 * r.CPUSeconds / r.WindowSeconds
	}
	r.CPUPerStream = r.CPUPercent / float64(n)
	for _, c := range st.Cameras {
		r.BytesReceived += c.BytesIn
	}
	if r.BytesReceived > 0 {
		r.WriteAmp = float64(r.BytesWritten) / float64(r.BytesReceived)
	}
	if exitErr != nil {
		r.HubdExit = exitErr.Error()
	}
	r.Budget = judge(r)
	return r
}

// judge compares a run with the budget; peak RSS is only judged with the
// camera count the budget names.
func judge(r *result) []verdict {
	rss := float64(r.PeakRSSBytes) / (1 << 20)
	return []verdict{
		{Name: "cpu_per_stream_percent", Value: r.CPUPerStream, Limit: maxCPUPerStream, Judged: true,
			Pass: r.CPUPerStream <= maxCPUPerStream, format: "cpu/stream %.3f%% <= %g%%"},
		{Name: "peak_rss_mib", Value: rss, Limit: maxRSSMiB, Judged: r.Streams == budgetRSSStreams,
			Pass: rss <= maxRSSMiB, format: "peak RSS %.1f MiB <= %g MiB"},
		{Name: "write_amplification", Value: r.WriteAmp, Limit: maxWriteAmp, Judged: true,
			Pass: r.WriteAmp <= maxWriteAmp, format: "write amp %.4f <= %g"},
	}
}

// collectProblems lists what makes the run's numbers untrustworthy.
func (r *result) collectProblems() {
	if len(r.Cameras) != r.Streams {
		r.Problems = append(r.Problems, fmt.Sprintf("hubd reports %d cameras, want %d", len(r.Cameras), r.Streams))
	}
	if r.ConnectedAtStart < r.Streams {
		r.Problems = append(r.Problems, fmt.Sprintf("only %d of %d cameras connected when the CPU window opened", r.ConnectedAtStart, r.Streams))
	}
	if r.PartFiles > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d uncommitted .part segments left after hubd stopped", r.PartFiles))
	}
	for _, c := range r.Cameras {
		if c.Problem != "" {
			r.Problems = append(r.Problems, c.Camera+": "+c.Problem)
		}
	}
}

func allPass(results []*result) bool {
	for _, r := range results {
		for _, v := range r.Budget {
			if v.Judged && !v.Pass {
				return false
			}
		}
	}
	return true
}

// report prints the table, a budget line per row, the per-camera checks and,
// with asJSON, the results as JSON.
func report(w io.Writer, results []*result, asJSON bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "streams\trecorder\tduration\tCPU % of one core (total)\tCPU % per stream\tpeak RSS MiB\tbytes received\tbytes written\twrite amplification\tsegments\tfds\tthreads\t")
	refs := false
	for _, r := range results {
		fmt.Fprintf(tw, "%d\thubd\t%.1fs\t%.2f\t%.3f\t%.1f\t%d\t%d\t%.4f\t%d\t%d\t%d\t\n",
			r.Streams, r.WindowSeconds, r.CPUPercent, r.CPUPerStream, float64(r.PeakRSSBytes)/(1<<20),
			r.BytesReceived, r.BytesWritten, r.WriteAmp, r.Segments, r.FDs, r.Threads)
		if f := r.Reference; f != nil {
			refs = true
			received, amp := "-", "-"
			if f.PayloadBytes > 0 {
				received, amp = fmt.Sprint(f.PayloadBytes), fmt.Sprintf("%.4f", f.WriteAmp)
			}
			fmt.Fprintf(tw, "%d\t%s\t%.1fs\t%.2f\t%.3f\t%.1f\t%s\t%d\t%s\t%d\t%d\t%d\t\n",
				f.Streams, f.Recorder, f.WindowSeconds, f.CPUPercent, f.CPUPerStream, float64(f.PeakRSSBytes)/(1<<20),
				received, f.BytesWritten, amp, f.Segments, f.FDs, f.Threads)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if refs {
		fmt.Fprintf(w, "%s: one ffmpeg per camera (remux into fragmented MP4 segments), run right after hubd on a fresh\n"+
			"fakecam; its CPU, peak RSS, fds and threads are summed over the processes, its bytes received\n"+
			"are the video payload ffprobe reads back from its segments (ffmpeg counts none).\n", refLabel)
	}
	fmt.Fprintln(w)
	for _, r := range results {
		fmt.Fprintf(w, "budget %d streams:", r.Streams)
		for i, v := range r.Budget {
			if i > 0 {
				fmt.Fprint(w, ";")
			}
			fmt.Fprintf(w, " "+v.format+" %s", v.Value, v.Limit, passWord(v))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	if refs {
		for _, r := range results {
			if r.Reference != nil {
				fmt.Fprintln(w, ratioLine(r))
			}
		}
		fmt.Fprintln(w)
	}
	if err := printChecks(w, results); err != nil {
		return err
	}
	if refs {
		fmt.Fprintln(w)
		if err := printRefChecks(w, results); err != nil {
			return err
		}
	}
	if !asJSON {
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if results == nil {
		results = []*result{}
	}
	return enc.Encode(results)
}

// ratioLine compares hubd with the reference measured in the same run.
func ratioLine(r *result) string {
	return fmt.Sprintf("%d streams: hubd/ffmpeg CPU per stream: %s, peak RSS: %s",
		r.Streams, formatRatio(r.Reference.CPUPerStreamRatio), formatRatio(r.Reference.PeakRSSRatio))
}

// formatRatio prints a ratio as "0.42x"; nil (the reference measured 0) as n/a.
func formatRatio(r *float64) string {
	if r == nil {
		return "n/a (reference measured 0)"
	}
	return fmt.Sprintf("%.2fx", *r)
}

func passWord(v verdict) string {
	switch {
	case !v.Judged:
		return fmt.Sprintf("(not judged: %d streams only)", budgetRSSStreams)
	case v.Pass:
		return "PASS"
	}
	return "FAIL"
}

// printChecks prints the per-camera correctness checks and any problem.
func printChecks(w io.Writer, results []*result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "streams\tcamera\tframes in\tdropped\tsegments\tffprobe frames (largest segment)\tcheck")
	for _, r := range results {
		for _, c := range r.Cameras {
			probed, check := "-", "ok"
			if c.ProbedFrames >= 0 {
				probed = fmt.Sprint(c.ProbedFrames)
			}
			if c.Problem != "" {
				check = "FAIL: " + c.Problem
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%s\t%s\n", r.Streams, c.Camera, c.FramesIn, c.Dropped, c.Segments, probed, check)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		fmt.Fprintf(w, "%d streams: hubd exit %s", r.Streams, r.HubdExit)
		for _, p := range r.Problems {
			fmt.Fprintf(w, "\n  problem: %s", p)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// printRefChecks prints the reference's per-camera checks, exits and problems.
func printRefChecks(w io.Writer, results []*result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "streams\tcamera (%s)\tsegments\tbytes written\tffprobe packets (all segments)\tpayload bytes\tcheck\n", refLabel)
	for _, r := range results {
		if r.Reference == nil {
			continue
		}
		for _, c := range r.Reference.Cameras {
			packets, payload, check := "-", "-", "ok"
			if c.Packets >= 0 {
				packets, payload = fmt.Sprint(c.Packets), fmt.Sprint(c.PayloadBytes)
			}
			if c.Problem != "" {
				check = "FAIL: " + c.Problem
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Streams, c.Camera, c.Segments, c.BytesWritten, packets, payload, check)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		f := r.Reference
		if f == nil {
			continue
		}
		fmt.Fprintf(w, "%d streams: ffmpeg exits %s (%d is ffmpeg's normal exit after SIGINT)", r.Streams, strings.Join(f.Exits, " "), ffmpegSignalExit)
		for _, p := range f.Problems {
			fmt.Fprintf(w, "\n  problem: %s", p)
		}
		fmt.Fprintln(w)
	}
	return nil
}
