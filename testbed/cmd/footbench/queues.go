package main

import (
	"fmt"
	"sort"
	"strings"
)

// queueSpec is one place in hubd where work waits: what bounds it and the
// metric that shows how full it is. The inventory is kept by hand from
// hubd's code (every buffered channel, semaphore and backlog); footbench
// checks each metric it names against a live hubd, so a renamed or lost
// metric fails the bench instead of going unnoticed.
type queueSpec struct {
	Name     string
	Bound    string  // what bounds it, in config terms
	Limit    float64 // the bound as a number the metric must not exceed; 0: judged by LimitOf
	LimitOf  string  // a metric that holds the bound (hubd_ring_max_bytes)
	Metric   string  // the family showing the fill level; "" when hubd exports none
	Overflow string  // what happens when it is full
	Where    string  // the code
	// PerCamera: one series per camera is expected in the scrape.
	PerCamera bool
	// Idle: no series while nothing uses it in this bench (e.g. no live viewer).
	Idle bool
}

// Defaults of hubd that bound queues footbench does not configure.
const (
	defaultQueueFrames     = 512 // recording.queue_frames
	defaultParallelUploads = 2   // relay.parallel_uploads
	liveQueueFrames        = 256 // live.Config.QueueFrames
	linkMaxInflight        = 16  // wslink.Config.MaxInflight
	mqttCommandsInflight   = 4   // zipato.MaxCommandsInFlight
)

func queueInventory(o *options) []queueSpec {
	return []queueSpec{
		{Name: "camera -> disk writer (per camera)", Bound: fmt.Sprintf("recording.queue_frames = %d frames", defaultQueueFrames),
			Limit: defaultQueueFrames, Metric: "hubd_queue_frames", PerCamera: true,
			Overflow: `drops up to the next keyframe, hubd_frames_dropped_total{reason="queue_full"}`, Where: "hubd/internal/recorder"},
		{Name: "uploads in flight", Bound: fmt.Sprintf("relay.parallel_uploads = %d", defaultParallelUploads),
			Limit: defaultParallelUploads, Metric: "hubd_uploads_in_flight",
			Overflow: "the next segment waits in the ring", Where: "hubd/internal/upload"},
		{Name: "upload backlog (closed, not uploaded)", Bound: fmt.Sprintf("hub.ring_bytes = %d MiB (all segments)", o.ringMiB),
			LimitOf: "hubd_ring_max_bytes", Metric: "hubd_ring_used_bytes",
			Overflow: "oldest evicted, hubd_ring_evicted_before_upload_total; pending count in hubd_ring_segments{state=\"pending\"}", Where: "hubd/internal/ring"},
		{Name: "live stream -> relay socket (per viewer stream)", Bound: fmt.Sprintf("%d frames", liveQueueFrames),
			Limit: liveQueueFrames, Metric: "hubd_live_queue_frames", Idle: true,
			Overflow: "drops up to the next keyframe, hubd_live_frames_dropped", Where: "hubd/internal/live"},
		{Name: "control link requests being handled", Bound: fmt.Sprintf("%d per link, frames <= 1 MiB", linkMaxInflight),
			Limit: linkMaxInflight, Metric: "hubd_link_requests_in_flight",
			Overflow: "the reader waits: the relay slows down", Where: "pkg/wslink"},
		{Name: "MQTT commands being handled", Bound: fmt.Sprintf("%d", mqttCommandsInflight),
			Limit: mqttCommandsInflight, Metric: "hubd_mqtt_commands_in_flight", Idle: true,
			Overflow: "refused (busy)", Where: "hubd/internal/zipato"},
	}
}

// queueCheck is a queue's verdict against one scrape.
type queueCheck struct {
	queueSpec
	Series int     `json:"series"` // series of the metric in the scrape
	Max    float64 `json:"max"`    // the fullest series at the scrape
	Limit  float64 `json:"limit"`
	Pass   bool    `json:"pass"`
	Why    string  `json:"why,omitempty"`
}

// family returns the samples of metric name: the bare series and every
// labelled one.
func family(m map[string]float64, name string) []float64 {
	var out []float64
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			out = append(out, v)
		}
	}
	sort.Float64s(out)
	return out
}

func checkQueues(specs []queueSpec, m map[string]float64, cameras int) []queueCheck {
	out := make([]queueCheck, 0, len(specs))
	for _, s := range specs {
		c := queueCheck{queueSpec: s, Limit: s.Limit}
		if s.LimitOf != "" {
			if v := family(m, s.LimitOf); len(v) == 1 {
				c.Limit = v[0]
			}
		}
		vals := family(m, s.Metric)
		c.Series = len(vals)
		if len(vals) > 0 {
			c.Max = vals[len(vals)-1]
		}
		switch {
		case s.Metric == "":
			c.Why = "no metric"
		case len(vals) == 0 && !s.Idle:
			c.Why = "metric " + s.Metric + " absent from /metrics"
		case s.PerCamera && len(vals) != cameras:
			c.Why = fmt.Sprintf("%d series of %s for %d cameras", len(vals), s.Metric, cameras)
		case c.Limit <= 0:
			c.Why = "no bound known"
		case c.Max > c.Limit:
			c.Why = fmt.Sprintf("%g above the bound %g", c.Max, c.Limit)
		default:
			c.Pass = true
		}
		out = append(out, c)
	}
	return out
}
