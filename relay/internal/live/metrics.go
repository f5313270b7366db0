package live

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of live view. No per-channel labels: their number is unbounded.
type metrics struct {
	tokens         prometheus.Counter
	refused        *prometheus.CounterVec
	streams        prometheus.Gauge
	streamsTotal   *prometheus.CounterVec
	viewers        *prometheus.GaugeVec
	sessions       *prometheus.CounterVec
	bytesIn        prometheus.Counter
	bytesOut       *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	sendDelay      prometheus.Summary
	relayDelay     prometheus.Summary
	startDelay     *prometheus.HistogramVec
	recordsDropped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	objectives := map[float64]float64{0.5: 0.01, 0.95: 0.005, 0.99: 0.001}
	m := &metrics{
		tokens: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_live_tokens_issued_total", Help: "Stream tokens issued."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_live_tokens_refused_total",
			Help: "Stream tokens refused, by reason (invalid, expired, other_relay, other_channel)."}, []string{"reason"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "relay_live_streams", Help: "Camera streams running (each one pull at a hub)."}),
		streamsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_live_streams_total",
			Help: "Camera streams started, by who started them (link: relay asked the hub; hub: a LAN client)."}, []string{"from"}),
		viewers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "relay_live_viewers", Help: "Viewers connected, by transport."}, []string{"transport"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_live_sessions_total",
			Help: "Viewer sessions started, by transport (whep, mse, mjpeg)."}, []string{"transport"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_live_bytes_in_total", Help: "Bytes received from hubs on stream sockets."}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_live_bytes_out_total",
			Help: "Media bytes sent to viewers, by transport."}, []string{"transport"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_live_frames_dropped_total",
			Help: "Frames dropped for viewers that fell behind (up to the next keyframe), by transport."}, []string{"transport"}),
		sendDelay: prometheus.NewSummary(prometheus.SummaryOpts{Name: "relay_live_send_delay_seconds",
			Help:       "From the hub receiving a frame from the camera to relay sending it over WebRTC (includes the hub-relay clock offset).",
			Objectives: objectives}),
		relayDelay: prometheus.NewSummary(prometheus.SummaryOpts{Name: "relay_live_relay_delay_seconds",
			Help: "From relay receiving a frame from the hub to sending it over WebRTC.", Objectives: objectives}),
		startDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "relay_live_viewer_start_seconds",
			Help:    "From a viewer's request to its first frame sent, by transport.",
			Buckets: []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10}}, []string{"transport"}),
		recordsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "relay_live_records_dropped_total",
			Help: "Session records not written because the writer fell behind."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.tokens, m.refused, m.streams, m.streamsTotal, m.viewers, m.sessions,
		m.bytesIn, m.bytesOut, m.dropped, m.sendDelay, m.relayDelay, m.startDelay, m.recordsDropped} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("live metrics"), err)
		}
	}
	return m, nil
}
