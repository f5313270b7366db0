package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// minRatio is the budget of the issue: hubd's drain rate over aws s3 cp's.
const minRatio = 0.8

// result is one upload of the backlog, one table row.
type result struct {
	Round       int     `json:"round"`
	Uploader    string  `json:"uploader"` // "hubd" or "aws s3 cp"
	Parallel    int     `json:"parallel"` // parallel_uploads, or aws's max_concurrent_requests
	Bytes       int64   `json:"bytes"`
	Segments    int     `json:"segments"`
	Seconds     float64 `json:"seconds"`
	UploaderCPU float64 `json:"uploader_cpu_seconds"`
	RelayCPU    float64 `json:"relay_cpu_seconds"`
	S3CPU       float64 `json:"versitygw_cpu_seconds"`
	Failures    int     `json:"upload_failures"` // hubd's failed attempts (retried)
	Prefix      string  `json:"prefix"`          // where the objects went in the bucket
	// Relay is the relay's view of a hubd drain; zero for the reference.
	Relay    relayStats `json:"relay"`
	Problems []string   `json:"problems,omitempty"`
}

// mbps is the drain rate in MB/s (10^6 bytes).
func (r *result) mbps() float64 { return rate(float64(r.Bytes)/1e6, r.Seconds) }

func rate(n, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return n / seconds
}

// summary is the median over the rounds of one uploader setting.
type summary struct {
	Uploader string  `json:"uploader"`
	Parallel int     `json:"parallel"`
	Runs     int     `json:"runs"`
	Seconds  float64 `json:"median_seconds"`
	MBps     float64 `json:"mb_per_second"`
	SegPerS  float64 `json:"segments_per_second"`
	// Ratio is hubd's rate over the reference's (medians); Judged only for
	// hubd rows when the reference ran.
	Ratio  float64 `json:"hubd_over_aws,omitempty"`
	Judged bool    `json:"judged"`
	Pass   bool    `json:"pass"`
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// summarize takes the median seconds of each uploader setting, in the
// order they first ran, and judges each hubd setting against the reference.
func summarize(runs []*result) []summary {
	type key struct {
		uploader string
		parallel int
	}
	var order []key
	secs := map[key][]float64{}
	first := map[key]*result{}
	for _, r := range runs {
		if len(r.Problems) > 0 {
			continue // a broken run's time means nothing
		}
		k := key{r.Uploader, r.Parallel}
		if _, ok := secs[k]; !ok {
			order = append(order, k)
			first[k] = r
		}
		secs[k] = append(secs[k], r.Seconds)
	}
	var out []summary
	var ref *summary
	for _, k := range order {
		s := summary{Uploader: k.uploader, Parallel: k.parallel, Runs: len(secs[k]), Seconds: median(secs[k])}
		s.MBps = rate(float64(first[k].Bytes)/1e6, s.Seconds)
		s.SegPerS = rate(float64(first[k].Segments), s.Seconds)
		out = append(out, s)
	}
	for i := range out {
		if out[i].Uploader != "hubd" {
			ref = &out[i]
		}
	}
	if ref == nil || ref.Seconds <= 0 {
		return out
	}
	for i := range out {
		s := &out[i]
		if s.Uploader != "hubd" || s.Seconds <= 0 {
			continue
		}
		s.Ratio = ref.Seconds / s.Seconds // same bytes: the ratio of the rates
		s.Judged, s.Pass = true, s.Ratio >= minRatio
	}
	return out
}

func allPass(sums []summary) bool {
	for _, s := range sums {
		if s.Judged && !s.Pass {
			return false
		}
	}
	return true
}

// header describes the backlog and the tools above the table.
type header struct {
	Bytes        int64   `json:"bytes"`
	Segments     int     `json:"segments"`
	SegmentBytes int64   `json:"segment_bytes"`
	SegmentSecs  float64 `json:"segment_seconds"`
	AWS          string  `json:"aws_version"`
	AWSStartup   float64 `json:"aws_startup_seconds"` // aws s3 cp of an empty dir
	Hubd         string  `json:"hubd"`
	CPUs         int     `json:"cpus"`
}

// report prints the runs, the medians with the budget line per hubd
// setting, the relay's view of each drain and, with asJSON, all as JSON.
func report(w io.Writer, h header, runs []*result, asJSON bool) error {
	fmt.Fprintf(w, "backlog: %d bytes in %d segments of %d bytes (%gs each); %d CPUs; reference: %s\n\n",
		h.Bytes, h.Segments, h.SegmentBytes, h.SegmentSecs, h.CPUs, h.AWS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tuploader\tparallel\tbytes\tsegments\tseconds\tMB/s\tsegments/s\tuploader CPU s\trelay CPU s\tversitygw CPU s\tcheck\t")
	for _, r := range runs {
		check := "ok"
		if len(r.Problems) > 0 {
			check = "FAIL"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%.2f\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%s\t\n",
			r.Round, r.Uploader, r.Parallel, r.Bytes, r.Segments, r.Seconds, r.mbps(), rate(float64(r.Segments), r.Seconds),
			r.UploaderCPU, r.RelayCPU, r.S3CPU, check)
	}
	sums := summarize(runs)
	for _, s := range sums {
		fmt.Fprintf(tw, "median\t%s\t%d\t\t\t%.2f\t%.1f\t%.1f\t\t\t\t%d runs\t\n", s.Uploader, s.Parallel, s.Seconds, s.MBps, s.SegPerS, s.Runs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "MB = 10^6 bytes; hubd: from its start to its last segment marked uploaded (its own last_upload")
	fmt.Fprintln(w, "timestamp); aws s3 cp: from its start to its exit. parallel for aws is max_concurrent_requests.")
	fmt.Fprintf(w, "aws s3 cp of an empty dir takes %.2f s (the CLI's start-up; included in its times above).\n", h.AWSStartup)
	fmt.Fprintln(w)
	judged := false
	for _, s := range sums {
		if !s.Judged {
			continue
		}
		judged = true
		verdict := "FAIL"
		if s.Pass {
			verdict = "PASS"
		}
		fmt.Fprintf(w, "budget: hubd parallel_uploads %d drain rate / aws s3 cp: %.2fx >= %g %s\n", s.Parallel, s.Ratio, minRatio, verdict)
	}
	if !judged {
		fmt.Fprintln(w, "budget: not judged (no complete hubd and reference runs)")
	}
	fmt.Fprintln(w)
	if err := printRelay(w, runs); err != nil {
		return err
	}
	for _, r := range runs {
		for _, p := range r.Problems {
			fmt.Fprintf(w, "round %d %s parallel %d: problem: %s\n", r.Round, r.Uploader, r.Parallel, p)
		}
	}
	if !asJSON {
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if runs == nil {
		runs = []*result{}
	}
	return enc.Encode(struct {
		Backlog header    `json:"backlog"`
		Runs    []*result `json:"runs"`
		Summary []summary `json:"summary"`
	}{h, runs, sums})
}

// printRelay breaks each drain's time per segment down: per upload slot, a
// segment takes seconds*parallel/segments; the relay's handler time of the
// presign and the notice is part of it, the rest is the PUT to S3, hubd's
// index update and the round trips.
func printRelay(w io.Writer, runs []*result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\thubd parallel\tms per segment per slot\trelay presign ms (mean)\trelay notify ms (mean, HEAD + index)\trest ms (PUT, MarkUploaded, RTTs)\tpresigns\tnotices\tfailures\t")
	printed := false
	for _, r := range runs {
		if r.Uploader != "hubd" || r.Segments == 0 {
			continue
		}
		printed = true
		slot := 1000 * r.Seconds * float64(r.Parallel) / float64(r.Segments)
		pre, note := 1000*r.Relay.Presign.MeanSeconds, 1000*r.Relay.Notify.MeanSeconds
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.2f\t%.2f\t%.1f\t%d\t%d\t%d\t\n", r.Round, r.Parallel, slot, pre, note, slot-pre-note,
			r.Relay.Presign.Requests, r.Relay.Notify.Requests, r.Failures)
	}
	if !printed {
		return nil
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, strings.TrimSpace(`
relay times are its handler times (relay_http_request_duration_seconds); hubd does presign, PUT and
notify of one segment in sequence, so a slot's time per segment is their sum plus the round trips.`))
	fmt.Fprintln(w)
	return nil
}
