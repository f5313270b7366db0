package clips

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	created, finished, failed prometheus.Counter
	coverage                  prometheus.Counter
	copied                    prometheus.Counter
	uncut                     prometheus.Counter
	initKept                  prometheus.Counter
	tailRead                  prometheus.Counter
	moofRead                  prometheus.Counter
	fragmented                prometheus.Counter
	buildSeconds              prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, c *Coordinator) (*metrics, error) {
	m := &metrics{
		created:  prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_clips_created_total", Help: "Clips created."}),
		finished: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_clips_finished_total", Help: "Clips whose file was built."}),
		failed:   prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_clips_failed_total", Help: "Clips that failed (nothing to build from, channel deleted, object store failing)."}),
		coverage: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_clip_coverage_requests_total", Help: "Questions to hubs about what they still hold for a clip."}),
		copied: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_clip_copied_bytes_total",
			Help: "Bytes the object store copied server-side to build clips (relay moves none of them)."}),
		uncut: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_clip_uncut_tails_total",
			Help: "Clips that end with the whole fragment holding their end, its moof not being one relay can cut (logged)."}),
		initKept: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_clip_init_kept_total",
			Help: "Clips that keep their first recording's init section (on the camera's clock, no edit list or duration), it not being one relay can rewrite (logged)."}),
		tailRead: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_clip_tail_read_bytes_total",
			Help: "Of relay_clip_index_read_bytes_total: bytes of the last fragments' moof boxes read to cut clips at their end."}),
		moofRead: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_clip_moof_read_bytes_total",
			Help: "Of relay_clip_index_read_bytes_total: bytes of fragments' moof boxes read for clips' sample tables."}),
		fragmented: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_clip_fragmented_total",
			Help: "Clips written as fragmented MP4 (their duration on the camera's clock for ffmpeg and browsers), their recordings not being ones relay can describe in sample tables (logged)."}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "relay_clip_build_seconds",
			Help: "Time to build a clip file once its recordings are there.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
	}
	read := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "relay_clip_index_read_bytes_total",
		Help: "Bytes relay read from objects to build clips: fragment indexes and box headers, never media."},
		func() float64 { return float64(c.prober.indexBytes.Load()) })
	reads := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "relay_clip_index_reads_total",
		Help: "Ranged reads relay made to build clips."},
		func() float64 { return float64(c.prober.requests.Load()) })
	if reg == nil {
		return m, nil
	}
	for _, col := range []prometheus.Collector{m.created, m.finished, m.failed, m.coverage, m.copied, m.uncut, m.initKept, m.tailRead, m.moofRead, m.fragmented, m.buildSeconds, read, reads} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}
