package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

// Targets of the live-view issue.
const (
	targetJoinMedian = 0.6  // s
	targetJoinP95    = 1.0  // s
	targetLatency    = 0.05 // s, median
	targetViewers    = 200  // per relay core at 2 Mbit/s
	// A viewer counts as served when it received at least this share of
	// what the camera sent over the window.
	servedShare = 0.95
)

// quantile is the nearest-rank q-quantile of xs (sorted or not).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// print writes the table; it returns whether a target was missed.
func (r *results) print(w io.Writer, o options) (missed bool) {
	fmt.Fprintf(w, "livebench: camera 1280x720 %d fps, %d kbit/s, keyframe every %.1f s; relay GOMAXPROCS=%d; %d cores, load average %s at start, %s at end\n\n",
		o.fps, o.kbps, float64(o.gop)/float64(o.fps), o.relayProcs, r.cores, r.loadavg[0], r.loadavg[1])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tmedian\tp95\tmax\ttarget\t")
	ms := func(x float64) string { return fmt.Sprintf("%.0f ms", x*1000) }
	if len(r.cold) > 0 {
		fmt.Fprintf(tw, "first frame, cold start (%d runs)\t%s\t%s\t%s\t(report)\t\n",
			len(r.cold), ms(quantile(r.cold, .5)), ms(quantile(r.cold, .95)), ms(quantile(r.cold, 1)))
	}
	jm, jp := quantile(r.join, .5), quantile(r.join, .95)
	ok := jm <= targetJoinMedian && jp <= targetJoinP95
	missed = missed || !ok
	fmt.Fprintf(tw, "first frame, joining a running stream (%d runs)\t%s\t%s\t%s\tmedian <= 600 ms, p95 <= 1000 ms: %s\t\n",
		len(r.join), ms(jm), ms(jp), ms(quantile(r.join, 1)), verdict(ok))
	ok = r.lat50 <= targetLatency
	missed = missed || !ok
	fmt.Fprintf(tw, "added latency, hub got frame -> relay sent WebRTC (%.0f frames)\t%.1f ms\t%.1f ms\t(p99 %.1f ms)\tmedian <= 50 ms: %s\t\n",
		r.latFrames, r.lat50*1000, r.lat95*1000, r.lat99*1000, verdict(ok))
	tw.Flush()
	if r.udpDrops >= 0 {
		fmt.Fprintf(w, "UDP datagrams dropped for a full receive buffer during the joining runs: %d\n", r.udpDrops)
	}
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "relay CPU (window "+o.window.String()+")\t% of one core\t")
	fmt.Fprintf(tw, "hub linked, nothing streaming\t%.2f\t\n", r.idleCPU)
	fmt.Fprintf(tw, "1 camera stream, 1 viewer\t%.2f\t\n", r.oneCPU)
	if r.load == nil {
		tw.Flush()
		return missed
	}
	l := r.load
	n := l.Connected
	fmt.Fprintf(tw, "1 camera stream, %d viewers\t%.2f\t\n", n, r.loadCPU)
	perViewer := math.NaN()
	if n > 1 {
		perViewer = (r.loadCPU - r.oneCPU) / float64(n-1)
	}
	perStream := r.oneCPU - r.idleCPU - perViewer
	fmt.Fprintf(tw, "per viewer ((%d viewers - 1 viewer) / %d)\t%.3f\t\n", n, n-1, perViewer)
	fmt.Fprintf(tw, "per camera stream (1 viewer - idle - per viewer)\t%.3f\t\n", perStream)
	tw.Flush()
	fmt.Fprintln(w)

	// Served: each viewer's received rate against the camera's over the window.
	var rates []float64
	served := 0
	for _, b := range l.Bytes {
		bps := float64(b) / l.Window
		rates = append(rates, bps*8/1e6)
		if r.camBps > 0 && bps >= servedShare*r.camBps {
			served++
		}
	}
	estimate := math.Floor((100 - r.idleCPU - perStream) / perViewer)
	fmt.Fprintf(w, "load: %d viewers asked, %d connected (%d failed) in %.1f s; camera into relay %.2f Mbit/s; per viewer received min %.2f, median %.2f Mbit/s (RTP);\n",
		o.viewers, n, l.Failed, l.SetupSeconds, r.camBps*8/1e6, quantile(rates, 0), quantile(rates, .5))
	fmt.Fprintf(w, "      %d of %d viewers got >= %.0f%% of the camera's bytes; relay dropped %.0f frames for slow viewers; mean added latency under load %.1f ms\n",
		served, o.viewers, servedShare*100, r.dropped, r.loadLatMean*1000)
	fmt.Fprintf(w, "      viewers process %.0f %% of a core; whole machine %.0f %% busy over the window (other work included)\n", r.clientCPU, r.machineBusy)
	if len(l.Errors) > 0 {
		fmt.Fprintf(w, "      first errors: %q\n", l.Errors)
	}
	held := served == o.viewers && r.loadCPU < 100 && o.relayProcs == 1
	ok = held && o.viewers >= targetViewers
	missed = missed || !ok
	fmt.Fprintf(w, "viewers of one camera per relay core: %d served on GOMAXPROCS=%d at %.0f %% of a core (%s); CPU estimate (100 - idle - stream) / per viewer = %.0f; target >= %d: %s\n",
		served, o.relayProcs, r.loadCPU, map[bool]string{true: "all at full rate", false: "not all at full rate"}[served == o.viewers],
		estimate, targetViewers, verdict(ok))
	return missed
}
