package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics of the API. Route labels are patterns, never ids, so that series
// stay few and name no tenant.
type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	recordings prometheus.Counter
	presigns   *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	handler    http.Handler
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "relay_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, []string{"route"}),
		recordings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_recordings_stored_total", Help: "Recordings verified and stored (repeated notices not counted).",
		}),
		presigns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_presigns_total", Help: "Presigned URLs issued, by HTTP method (PUT upload, GET download).",
		}, []string{"method"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_upload_notices_rejected_total", Help: "Upload notices refused after the object check, by reason.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.recordings, m.presigns, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m, nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ principal) error {
	s.metrics.handler.ServeHTTP(w, r)
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}
