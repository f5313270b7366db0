package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/testbed/fakecam"
	"github.com/zipnvr/zipnvr/testbed/procstat"
)

// BenchmarkClip measures a clip of 2 Mbit/s 720p25 video (30 s segments,
// as hubd records by default) from the arrival of its last recording:
// until the clip is finished and until its MP4 answers a GET, with the
// relay's CPU time and the bytes the relay process read meanwhile (all
// reads: sockets included; the media stays in S3, so this is indexes,
// every fragment's moof for the progressive file's sample tables, and API
// traffic), and the ranged GETs relay made. Run with -benchtime 1x (make bench-clips): each iteration
// uploads the recordings of its range to versitygw first.
func BenchmarkClip(b *testing.B) {
	for _, size := range []time.Duration{10 * time.Minute, 2 * time.Hour} {
		b.Run(size.String(), func(b *testing.B) {
			for range b.N {
				benchClip(b, size)
			}
		})
	}
}

func benchClip(b *testing.B, size time.Duration) {
	b.StopTimer()
	const segment = 30 * time.Second
	t0 := time.Now().Add(-size - 2*time.Minute).Truncate(time.Second).UTC()
	bed := newClipBedWith(b, fakecam.ClipOptions{Width: 1280, Height: 720, FPS: 25, Seconds: 10, GOP: 50, BitrateKbps: 2000}, t0, segment)
	n := int(size/segment) + 1
	for i := range n {
		s := bed.next()
		if i == n-1 {
			lastSeg := s
			start := t0.Add(1500 * time.Millisecond) // mid-GOP: trimmed to the keyframe at 0 s
			c := bed.create(start, start.Add(size))
			// One scrape, before the window: the relay's process collector
			// reads /proc on every scrape, which rchar would count.
			m0 := bed.relay.Metrics(b)
			ix0, tail0 := metric(b, m0, "relay_clip_index_read_bytes_total"), metric(b, m0, "relay_clip_tail_read_bytes_total")
			moof0, reads0 := metric(b, m0, "relay_clip_moof_read_bytes_total"), metric(b, m0, "relay_clip_index_reads_total")
			frag0 := metric(b, m0, "relay_clip_fragmented_total")
			pid := bed.relay.PID()
			cpu0, _ := procstat.CPUTicks(pid)
			read0 := rchar(b, pid)
			b.StartTimer()
			bed.upload(lastSeg)
			arrived := time.Now()
			for c = bed.get(c.ID); c.Status == "in_progress"; c = bed.get(c.ID) {
				if time.Since(arrived) > 5*time.Minute {
					b.Fatalf("clip not finished 5 min after its last recording")
				}
				time.Sleep(25 * time.Millisecond)
			}
			finished := time.Since(arrived)
			cpu1, _ := procstat.CPUTicks(pid)
			read1 := rchar(b, pid)
			if c.Status != "finished" || len(c.Gaps) != 0 {
				b.Fatalf("clip %+v", c)
			}
			resp, err := http.Get(c.URL)
			if err != nil {
				b.Fatal(err)
			}
			var one [1]byte
			if _, err := io.ReadFull(resp.Body, one[:]); err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("GET clip: %s %v", resp.Status, err)
			}
			downloadable := time.Since(arrived)
			b.StopTimer()
			got, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got+1 != c.Bytes {
				b.Fatalf("downloaded %d bytes of %d", got+1, c.Bytes)
			}
			m1 := bed.relay.Metrics(b)
			ix1, tail1 := metric(b, m1, "relay_clip_index_read_bytes_total"), metric(b, m1, "relay_clip_tail_read_bytes_total")
			moof1, reads1 := metric(b, m1, "relay_clip_moof_read_bytes_total"), metric(b, m1, "relay_clip_index_reads_total")
			if metric(b, m1, "relay_clip_fragmented_total") != frag0 {
				b.Fatalf("the clip was written as a fragmented MP4, not a progressive one")
			}
			past := c.MediaEnd.Sub(c.End)
			if past < 0 || past >= 40*time.Millisecond {
				b.Fatalf("clip ends %v after its end: want within one frame (40 ms)", past)
			}
			b.ReportMetric(finished.Seconds(), "s_to_finished")
			b.ReportMetric(downloadable.Seconds(), "s_to_download")
			b.ReportMetric(float64(cpu1-cpu0)/procstat.ClockTicks(), "relay_cpu_s")
			b.ReportMetric(float64(read1-read0), "relay_read_B")
			b.ReportMetric(ix1-ix0, "index_read_B")
			b.ReportMetric(tail1-tail0, "tail_moof_read_B")
			b.ReportMetric(moof1-moof0, "moofs_read_B")
			b.ReportMetric(reads1-reads0, "ranged_GETs")
			b.ReportMetric(float64(past.Milliseconds()), "ms_past_end")
			b.ReportMetric(float64(c.Bytes)/1e6, "clip_MB")
			b.Logf("%v clip: %d recordings, %.1f MB; finished %v and downloadable %v after the last recording arrived; relay CPU %.3f s, read %d B (%.0f B of indexes and moofs in %.0f ranged GETs, of which %.0f B the moofs for the sample tables, %.0f B the last fragment's moof); ends %v after its end",
				size, len(c.Recordings), float64(c.Bytes)/1e6, finished.Round(time.Millisecond), downloadable.Round(time.Millisecond),
				float64(cpu1-cpu0)/procstat.ClockTicks(), read1-read0, ix1-ix0, reads1-reads0, moof1-moof0, tail1-tail0, past)
			return
		}
		bed.upload(s)
	}
}

// rchar is what the process read through read(2) and friends, sockets
// included (/proc/PID/io).
func rchar(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("/proc/%d/io has no rchar", pid)
	return 0
}

// metric is the value of an unlabelled metric in Prometheus text.
func metric(b *testing.B, text, name string) float64 {
	b.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	b.Fatalf("no metric %s", name)
	return 0
}
