package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Budgets of the issue.
const (
	budgetBinaryBytes = 25 << 20
	budgetRSSBytes    = 40 << 20
	// A file rewritten whole would count its bytes twice (a ratio of 2).
	// fMP4 framing is in the segment bytes already; the rest is the index
	// (about 90 KB a segment, BenchmarkIndexWritesPerSegment), the tail page
	// of a segment dirtied again after each fsync, and logs: a few percent
	// with 10 s segments.
	budgetWriteRatio = 1.25
)

type binarySize struct {
	Arch  string `json:"arch"`
	Bytes int64  `json:"bytes"`
}

// fixedCost is hubd without a camera.
type fixedCost struct {
	RSSBytes   int64   `json:"rss_bytes"`
	FDs        int     `json:"fds"`
	Goroutines float64 `json:"goroutines"`
}

// runResult is one arch recording and uploading the cameras.
type runResult struct {
	Arch         string        `json:"arch"`
	Exec         string        `json:"exec"`
	Streams      int           `json:"streams"`
	Window       time.Duration `json:"window_ns"`
	CPUSeconds   float64       `json:"cpu_seconds"`
	PeakRSSBytes int64         `json:"peak_rss_bytes"`
	GoSysBytes   float64       `json:"go_sys_bytes"` // the Go runtime's own memory from the OS (no emulator in it)
	FDs          int           `json:"fds"`
	Goroutines   float64       `json:"goroutines"`
	Base         fixedCost     `json:"no_camera"`

	BytesIn      float64 `json:"bytes_in"`      // payload received in the window
	SegmentBytes float64 `json:"segment_bytes"` // segment bytes written in the window
	Segments     float64 `json:"segments"`      // segments closed in the window
	WriteBytes   int64   `json:"write_bytes"`   // /proc/PID/io write_bytes in the window
	Uploads      float64 `json:"uploads"`       // segments uploaded in the window
	QueueFull    float64 `json:"queue_full_drops"`
	Evicted      float64 `json:"evicted"` // since start
	EvictedEarly float64 `json:"evicted_before_upload"`
	IndexStart   int64   `json:"index_bytes_start"`
	IndexMid     int64   `json:"index_bytes_mid"`
	IndexEnd     int64   `json:"index_bytes_end"`

	Queues   []queueCheck `json:"queues"`
	Problems []string     `json:"problems,omitempty"`

	// derived
	CPUPerStream   float64 `json:"cpu_percent_per_stream"` // % of one core
	CPURatio       float64 `json:"cpu_ratio_to_amd64"`
	FDsPerCam      float64 `json:"fds_per_camera"`
	GoroutinesPerC float64 `json:"goroutines_per_camera"`
	WritesPerHour  float64 `json:"write_bytes_per_hour_per_camera"`
	SegPerHour     float64 `json:"segment_bytes_per_hour_per_camera"`
	RestPerSegment float64 `json:"index_and_other_bytes_per_segment"`
	WriteRatio     float64 `json:"write_bytes_per_segment_byte"`
}

type benchReport struct {
	Camera         string        `json:"camera"`
	Cameras        int           `json:"cameras"`
	Window         time.Duration `json:"window_ns"`
	SegmentSeconds float64       `json:"segment_seconds"`
	RingBytes      int64         `json:"ring_bytes"`
	Binaries       []binarySize  `json:"binaries"`
	Runs           []*runResult  `json:"runs"`
	Problems       []string      `json:"problems,omitempty"`
	Budget         []verdict     `json:"budget"`
}

type verdict struct {
	What string `json:"what"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

// sumWhere adds the samples of family name whose labels contain every one
// of labels (e.g. `reason="queue_full"`).
func sumWhere(m map[string]float64, name string, labels ...string) float64 {
	var sum float64
	for series, v := range m {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(series, l)
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// fromMetrics takes the window's counters from the scrapes at its two ends.
func (r *runResult) fromMetrics(m0, m1 map[string]float64) {
	delta := func(name string) float64 { return sumWhere(m1, name) - sumWhere(m0, name) }
	r.BytesIn = delta("hubd_bytes_received_total")
	r.SegmentBytes = delta("hubd_bytes_written_total")
	r.Segments = delta("hubd_segments_written_total")
	r.Uploads = delta("hubd_uploads_total")
	r.QueueFull = sumWhere(m1, "hubd_frames_dropped_total", `reason="queue_full"`)
	r.Evicted = sumWhere(m1, "hubd_ring_evicted_total")
	r.EvictedEarly = sumWhere(m1, "hubd_ring_evicted_before_upload_total")
	r.Goroutines = m1["go_goroutines"]
	r.GoSysBytes = m1["go_memstats_sys_bytes"]
}

// derive computes the per-stream, per-camera and per-hour figures, the
// ratios to amd64 and the budget verdicts.
func (rep *benchReport) derive() {
	var ref float64
	for _, r := range rep.Runs {
		n, secs := float64(r.Streams), r.Window.Seconds()
		r.CPUPerStream = r.CPUSeconds / secs * 100 / n
		if r.Arch == "amd64" {
			ref = r.CPUPerStream
		}
		if ref > 0 {
			r.CPURatio = r.CPUPerStream / ref
		}
		r.FDsPerCam = float64(r.FDs-r.Base.FDs) / n
		r.GoroutinesPerC = (r.Goroutines - r.Base.Goroutines) / n
		r.WritesPerHour = float64(r.WriteBytes) / secs * 3600 / n
		r.SegPerHour = r.SegmentBytes / secs * 3600 / n
		if r.Segments > 0 {
			r.RestPerSegment = (float64(r.WriteBytes) - r.SegmentBytes) / r.Segments
		}
		if r.SegmentBytes > 0 {
			r.WriteRatio = float64(r.WriteBytes) / r.SegmentBytes
		}
	}
	rep.Budget = rep.judge()
}

func (rep *benchReport) judge() []verdict {
	var out []verdict
	for _, b := range rep.Binaries {
		out = append(out, verdict{"hubd stripped binary, " + b.Arch + " <= 25 MiB", mib(b.Bytes), b.Bytes <= budgetBinaryBytes})
	}
	for _, r := range rep.Runs {
		if r.Arch == "amd64" {
			out = append(out, verdict{fmt.Sprintf("peak RSS, %d cameras recording and uploading (amd64, native) <= 40 MiB", r.Streams),
				mib(r.PeakRSSBytes), r.PeakRSSBytes <= budgetRSSBytes})
		}
		out = append(out, verdict{fmt.Sprintf("%s: bytes to storage <= %.2f x segment bytes (no file rewritten)", r.Arch, budgetWriteRatio),
			fmt.Sprintf("%.4f", r.WriteRatio), r.WriteRatio > 0 && r.WriteRatio <= budgetWriteRatio})
		if r.Evicted == 0 {
			out = append(out, verdict{r.Arch + ": index does not grow once the ring evicts", "ring never evicted: not judged (raise -duration)", false})
		} else {
			out = append(out, verdict{r.Arch + ": index does not grow once the ring evicts",
				fmt.Sprintf("%s at mid-window, %s at the end", kib(r.IndexMid), kib(r.IndexEnd)), r.IndexEnd <= r.IndexMid})
		}
		for _, q := range r.Queues {
			got := q.Why
			if q.Pass {
				got = fmt.Sprintf("%s = %g <= %g", q.Metric, q.Max, q.Limit)
			}
			out = append(out, verdict{r.Arch + ": queue " + q.Name + " has a bound and a metric", got, q.Pass})
		}
	}
	return out
}

func (rep *benchReport) allPass() bool {
	for _, v := range rep.Budget {
		if !v.Pass {
			return false
		}
	}
	return true
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b int64) string { return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10)) }

func report(w io.Writer, rep *benchReport, asJSON bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "hubd binary (CGO_ENABLED=0, -trimpath, -ldflags %q)\n", stripFlags)
	fmt.Fprintln(tw, "arch\tbytes\tMiB\t")
	for _, b := range rep.Binaries {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t\n", b.Arch, b.Bytes, float64(b.Bytes)/(1<<20))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nFootprint: %d cameras (%s) recorded in %gs segments and uploaded to a relay; window %s\n",
		rep.Cameras, rep.Camera, rep.SegmentSeconds, rep.Window)
	fmt.Fprintln(tw, "arch\trun by\tCPU % of a core\tper stream\tratio to amd64\tpeak RSS MiB\t(no camera)\tGo sys MiB\tFDs\t(no camera)\tper camera\tgoroutines\t(no camera)\tper camera\tuploads\t")
	for _, r := range rep.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.3f\t%.2f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.1f\t%.0f\t%.0f\t%.1f\t%.0f\t\n",
			r.Arch, r.Exec, r.CPUSeconds/r.Window.Seconds()*100, r.CPUPerStream, r.CPURatio,
			float64(r.PeakRSSBytes)/(1<<20), float64(r.Base.RSSBytes)/(1<<20), r.GoSysBytes/(1<<20),
			r.FDs, r.Base.FDs, r.FDsPerCam, r.Goroutines, r.Base.Goroutines, r.GoroutinesPerC, r.Uploads)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "(under qemu the RSS and FDs include the emulator's own; Go sys is what hubd's runtime holds)")

	fmt.Fprintf(w, "\nSD card: bytes hubd sent to storage (/proc/PID/io write_bytes) per hour and camera; ring %s\n", mib(rep.RingBytes))
	fmt.Fprintln(tw, "arch\twrite_bytes MiB/h/cam\tsegments MiB/h/cam\tpayload MiB/h/cam\tindex+other per segment\twrite_bytes / segment bytes\tindex.db start\tmid\tend\tevicted\tbefore upload\tqueue_full drops\t")
	for _, r := range rep.Runs {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.0f B\t%.4f\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t\n",
			r.Arch, r.WritesPerHour/(1<<20), r.SegPerHour/(1<<20), r.BytesIn/r.Window.Seconds()*3600/float64(r.Streams)/(1<<20),
			r.RestPerSegment, r.WriteRatio, kib(r.IndexStart), kib(r.IndexMid), kib(r.IndexEnd), r.Evicted, r.EvictedEarly, r.QueueFull)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(rep.Runs) > 0 {
		fmt.Fprintln(w, "\nQueues in hubd (scraped from the amd64 run at the window's end)")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "queue\tbound\tmetric\tseries\tmax\twhen full\tcode\tverdict\t")
		for _, q := range rep.Runs[0].Queues {
			metric, v := q.Metric, "ok"
			if metric == "" {
				metric = "-"
			}
			if !q.Pass {
				v = "FAIL: " + q.Why
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%g\t%s\t%s\t%s\t\n", q.Name, q.Bound, metric, q.Series, q.Max, q.Overflow, q.Where, v)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nBudget")
	for _, v := range rep.Budget {
		mark := "PASS"
		if !v.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", mark, v.What, v.Got)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  PROBLEM  %s\n", p)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return nil
}
