package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zipnvr/zipnvr/hubd/internal/recorder"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/hubd/internal/upload"
)

// StatusReport is what `hubd status` prints.
type StatusReport struct {
	Hub     string            `json:"hub"`
	Cameras []recorder.Status `json:"cameras"`
	Ring    ring.Stats        `json:"ring"`
	Upload  *upload.Stats     `json:"upload,omitempty"` // absent without a relay
}

// Status gathers the report.
func (h *Hub) Status() StatusReport {
	rep := StatusReport{Hub: h.cfg.Hub.ID, Ring: h.ring.Stats()}
	for _, r := range h.Recorders() {
		rep.Cameras = append(rep.Cameras, r.Status())
	}
	if h.uploader != nil {
		st := h.uploader.Stats()
		rep.Upload = &st
	}
	return rep
}

// serveControl answers local clients (`hubd recordings`, `hubd status`,
// Prometheus through a socket-aware scraper) on a Unix socket: bbolt allows
// one process to hold the index, and the socket needs no open TCP port.
func (h *Hub) serveControl(path string) (*http.Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket dir: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another hubd is running", path)
	}
	_ = os.Remove(path) // stale socket of a process that died
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	_ = os.Chmod(path, 0o660)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &metrics{h: h})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/recordings", func(w http.ResponseWriter, r *http.Request) {
		segs, err := h.ring.List(r.URL.Query().Get("camera"))
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, segs)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, h.Status())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles on the socket only: reachable by who may read the data dir.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error("control socket stopped", "err", err)
		}
	}()
	return srv, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Client asks a running hubd over its control socket.
type Client struct{ http *http.Client }

// NewClient returns a client of the socket at path.
func NewClient(path string) *Client {
	return &Client{http: &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// Get decodes the JSON answer of path (e.g. /v1/status) into v.
func (c *Client) Get(path string, v any) error {
	resp, err := c.http.Get("http://hubd" + path)
	if err != nil {
		return fmt.Errorf("ask hubd: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ask hubd %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// metrics exports recorder and ring counters; they are read at scrape time
// from the atomics the pipeline keeps anyway, so recording pays nothing.
type metrics struct{ h *Hub }

var (
	descConnected = prometheus.NewDesc("hubd_camera_connected", "1 while the camera session is up.", []string{"camera"}, nil)
	descFramesIn  = prometheus.NewDesc("hubd_frames_received_total", "Access units received from the camera.", []string{"camera"}, nil)
	descBytesIn   = prometheus.NewDesc("hubd_bytes_received_total", "Video payload bytes received from the camera.", []string{"camera"}, nil)
	descDropped   = prometheus.NewDesc("hubd_frames_dropped_total", "Frames not recorded, by reason.", []string{"camera", "reason"}, nil)
	descQueue     = prometheus.NewDesc("hubd_queue_frames", "Frames waiting for the disk writer.", []string{"camera"}, nil)
	descSegments  = prometheus.NewDesc("hubd_segments_written_total", "Segments closed.", []string{"camera"}, nil)
	descBytes     = prometheus.NewDesc("hubd_bytes_written_total", "Segment bytes written.", []string{"camera"}, nil)
	descDisc      = prometheus.NewDesc("hubd_discontinuities_total", "Segments cut by a discontinuity.", []string{"camera"}, nil)
	descLastFrag  = prometheus.NewDesc("hubd_last_fragment_timestamp_seconds", "When the last fragment was written (liveness).", []string{"camera"}, nil)
	descSessions  = prometheus.NewDesc("hubd_camera_sessions_total", "Camera sessions started (reconnects + 1).", []string{"camera"}, nil)
	descRingUsed  = prometheus.NewDesc("hubd_ring_used_bytes", "Bytes of segment files on disk.", nil, nil)
	descRingMax   = prometheus.NewDesc("hubd_ring_max_bytes", "Configured ring size.", nil, nil)
	descRingSegs  = prometheus.NewDesc("hubd_ring_segments", "Closed segments in the ring, by upload state.", []string{"state"}, nil)
	descEvicted   = prometheus.NewDesc("hubd_ring_evicted_total", "Segments evicted to make room.", nil, nil)
	descUploaded  = prometheus.NewDesc("hubd_uploads_total", "Segments uploaded and acknowledged by the relay.", nil, nil)
	descUpBytes   = prometheus.NewDesc("hubd_upload_bytes_total", "Bytes of segments uploaded.", nil, nil)
	descUpFail    = prometheus.NewDesc("hubd_upload_failures_total", "Upload attempts that failed (retried).", nil, nil)
	descUpFlight  = prometheus.NewDesc("hubd_uploads_in_flight", "Uploads under way.", nil, nil)
	descLastUp    = prometheus.NewDesc("hubd_last_upload_timestamp_seconds", "When the last upload was acknowledged (liveness).", nil, nil)
	descEvictLost = prometheus.NewDesc("hubd_ring_evicted_before_upload_total", "Segments evicted before they were uploaded.", nil, nil)
	descLinkReqs  = prometheus.NewDesc("hubd_link_requests_in_flight", "Relay requests being handled over the control link (bounded per link).", nil, nil)
	descLivePush  = prometheus.NewDesc("hubd_live_pushes", "Live streams being pushed to the relay.", nil, nil)
	descLivePulls = prometheus.NewDesc("hubd_live_pulls_started_total", "Camera pulls started for live view.", nil, nil)
	descLiveQueue = prometheus.NewDesc("hubd_live_queue_frames", "Frames waiting for a live stream socket (bounded per stream).", []string{"camera", "quality"}, nil)
	descLiveDrop  = prometheus.NewDesc("hubd_live_frames_dropped", "Frames a running live stream dropped because relay read too slowly.", []string{"camera", "quality"}, nil)
	descMQTTCmds  = prometheus.NewDesc("hubd_mqtt_commands_in_flight", "MQTT commands being carried out (bounded; more are refused as busy).", nil, nil)
)

func (m *metrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, r := range m.h.Recorders() {
		st := r.Status()
		c := st.Camera
		conn := 0.0
		if st.Connected {
			conn = 1
		}
		ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, conn, c)
		ch <- prometheus.MustNewConstMetric(descFramesIn, prometheus.CounterValue, float64(st.FramesIn), c)
		ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(st.BytesIn), c)
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.FramesDropped), c, "no_keyframe")
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.QueueDropped), c, "queue_full")
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(st.QueueLen), c)
		ch <- prometheus.MustNewConstMetric(descSegments, prometheus.CounterValue, float64(st.Segments), c)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.BytesWritten), c)
		ch <- prometheus.MustNewConstMetric(descDisc, prometheus.CounterValue, float64(st.Discontinuities), c)
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.CounterValue, float64(st.Sessions), c)
		if !st.LastFragment.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastFrag, prometheus.GaugeValue, float64(st.LastFragment.UnixNano())/1e9, c)
		}
	}
	rs := m.h.ring.Stats()
	ch <- prometheus.MustNewConstMetric(descRingUsed, prometheus.GaugeValue, float64(rs.UsedBytes))
	ch <- prometheus.MustNewConstMetric(descRingMax, prometheus.GaugeValue, float64(rs.MaxBytes))
	ch <- prometheus.MustNewConstMetric(descRingSegs, prometheus.GaugeValue, float64(rs.Pending), "pending")
	ch <- prometheus.MustNewConstMetric(descRingSegs, prometheus.GaugeValue, float64(rs.Segments-rs.Pending), "uploaded")
	ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(rs.Evicted))
	ch <- prometheus.MustNewConstMetric(descEvictLost, prometheus.CounterValue, float64(rs.EvictedBeforeUpload))
	if m.h.uploader != nil {
		us := m.h.uploader.Stats()
		ch <- prometheus.MustNewConstMetric(descUploaded, prometheus.CounterValue, float64(us.Uploaded))
		ch <- prometheus.MustNewConstMetric(descUpBytes, prometheus.CounterValue, float64(us.UploadedBytes))
		ch <- prometheus.MustNewConstMetric(descUpFail, prometheus.CounterValue, float64(us.Failures))
		ch <- prometheus.MustNewConstMetric(descUpFlight, prometheus.GaugeValue, float64(us.InFlight))
		if !us.LastUpload.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastUp, prometheus.GaugeValue, float64(us.LastUpload.UnixNano())/1e9)
		}
	}
	if m.h.link != nil {
		ch <- prometheus.MustNewConstMetric(descLinkReqs, prometheus.GaugeValue, float64(m.h.link.Inflight()))
	}
	if m.h.live != nil {
		pushes, pulls := m.h.live.Status()
		ch <- prometheus.MustNewConstMetric(descLivePush, prometheus.GaugeValue, float64(len(pushes)))
		ch <- prometheus.MustNewConstMetric(descLivePulls, prometheus.CounterValue, float64(pulls))
		for _, p := range pushes {
			ch <- prometheus.MustNewConstMetric(descLiveQueue, prometheus.GaugeValue, float64(p.Queue), p.Camera, p.Quality)
			ch <- prometheus.MustNewConstMetric(descLiveDrop, prometheus.GaugeValue, float64(p.Dropped), p.Camera, p.Quality)
		}
	}
	if m.h.integ.mqtt != nil {
		ch <- prometheus.MustNewConstMetric(descMQTTCmds, prometheus.GaugeValue, float64(m.h.integ.mqtt.CommandsInFlight()))
	}
}
