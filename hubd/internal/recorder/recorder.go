// Package recorder runs one camera's pipeline, ingest -> bounded queue ->
// segmenter -> ring, reconnecting with capped backoff when the camera fails.
package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/ingest"
	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/hubd/internal/segment"
	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Config of one camera's recorder.
type Config struct {
	Camera  camera.Camera
	Syntax  camera.Syntax
	Segment segment.Config // CameraID and Logger are filled in
	// QueueFrames bounds frames between the camera and the disk writer; on
	// overflow frames are dropped up to the next keyframe and counted.
	QueueFrames int
	// ReconnectMin/Max bound the backoff between failed sessions. Max is
	// small by default: a camera back from a reboot records again at once.
	ReconnectMin, ReconnectMax time.Duration
	// AuthRetry is the wait after a refused password: retrying fast only
	// fills the camera's log and may lock the account.
	AuthRetry time.Duration
	// NewSource builds the camera's source; tests and benchmarks swap it.
	NewSource func(cam camera.Camera, syntax camera.Syntax, log *slog.Logger) (ingest.Source, error)
	Logger    *slog.Logger
}

// Status is a camera's recording state, for `hubd status` and metrics.
type Status struct {
	Camera          string    `json:"camera"`
	Connected       bool      `json:"connected"`
	Codec           string    `json:"codec,omitempty"`
	LastError       string    `json:"last_error,omitempty"`
	Sessions        uint64    `json:"sessions"`
	FramesIn        uint64    `json:"frames_in"`
	BytesIn         uint64    `json:"bytes_in"`
	FramesDropped   uint64    `json:"frames_dropped"`
	QueueDropped    uint64    `json:"queue_dropped"`
	QueueLen        int       `json:"queue_len"`
	Segments        uint64    `json:"segments"`
	BytesWritten    uint64    `json:"bytes_written"`
	Discontinuities uint64    `json:"discontinuities"`
	LastFragment    time.Time `json:"last_fragment,omitzero"`
}

// Recorder records one camera.
type Recorder struct {
	cfg Config
	log *slog.Logger
	seg *segment.Segmenter

	queue        chan item
	queueDropped atomic.Uint64
	sessions     atomic.Uint64
	connected    atomic.Bool

	mu        sync.Mutex
	lastErr   string
	codec     string
	dropUntil bool // queue overflowed: drop until a keyframe fits
}

type item struct {
	track *media.Track
	frame *media.Frame
	end   bool // the session ended: close the segment now, not when the camera returns
}

// New returns a recorder for cfg.Camera.
func New(cfg Config) *Recorder {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.QueueFrames <= 0 {
		cfg.QueueFrames = 512
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 250 * time.Millisecond
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 1500 * time.Millisecond
	}
	if cfg.AuthRetry <= 0 {
		cfg.AuthRetry = 30 * time.Second
	}
	if cfg.NewSource == nil {
		cfg.NewSource = NewSource
	}
	log := cfg.Logger.With("camera", cfg.Camera.ID)
	cfg.Segment.CameraID = cfg.Camera.ID
	cfg.Segment.Logger = cfg.Logger
	return &Recorder{cfg: cfg, log: log, seg: segment.New(cfg.Segment), queue: make(chan item, cfg.QueueFrames)}
}

// NewSource picks the source for the camera's recorded quality.
func NewSource(cam camera.Camera, syntax camera.Syntax, log *slog.Logger) (ingest.Source, error) {
	q, err := camera.ParseQuality(cam.Record)
	if err != nil {
		return nil, err
	}
	u, err := cam.URL(syntax, q)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "rtsp", "rtsps":
		return ingest.NewRTSP(ingest.RTSPConfig{URL: u, Transport: cam.Transport, ReadBatchBytes: 8 << 10, Logger: log}), nil
	case "http", "https":
		return ingest.NewMJPEG(ingest.MJPEGConfig{URL: u, Logger: log}), nil
	}
	return nil, fmt.Errorf("camera %s: no source for scheme %q", cam.ID, u.Scheme)
}

// Run records until ctx ends, then commits the open segment.
func (r *Recorder) Run(ctx context.Context) error {
	src, err := r.cfg.NewSource(r.cfg.Camera, r.cfg.Syntax, r.log)
	if err != nil {
		return fmt.Errorf("camera %s: %w", r.cfg.Camera.ID, err)
	}
	done := make(chan error, 1)
	go func() { done <- r.write() }()

	r.sessionLoop(ctx, src)
	close(r.queue)
	return <-done
}

// write is the disk side: the only goroutine touching the segmenter.
func (r *Recorder) write() error {
	var track media.Track
	for it := range r.queue {
		var err error
		switch {
		case it.end:
			err = r.seg.Close()
		case it.track != nil:
			track = *it.track
			err = r.seg.Start(track)
		default:
			err = r.seg.Write(it.frame)
		}
		if err != nil {
			r.setErr(err)
			r.log.Error("recording failed; restarting the segment at the next keyframe", "err", err)
			_ = r.seg.Start(track) // closes what can be closed
		}
	}
	if err := r.seg.Close(); err != nil {
		return fmt.Errorf("camera %s: close segment: %w", r.cfg.Camera.ID, err)
	}
	return nil
}

func (r *Recorder) sessionLoop(ctx context.Context, src ingest.Source) {
	backoff := r.cfg.ReconnectMin
	authReported := false
	var lastLogged string
	for ctx.Err() == nil {
		started := time.Now()
		s := &sink{r: r}
		err := src.Run(ctx, s)
		r.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		if s.tracked {
			// What the camera sent is complete: close it so it can be
			// uploaded while the camera is away.
			r.queue <- item{end: true}
		}
		if err == nil {
			err = errors.New("session ended")
		}
		r.setErr(err)
		if time.Since(started) > 10*time.Second {
			backoff = r.cfg.ReconnectMin // it was recording: start over fast
		}
		wait := backoff
		switch {
		case errors.Is(err, ingest.ErrAuth):
			if !authReported {
				r.log.Error("camera refused the credentials: check username and password; retrying slowly",
					"err", err, "retry_every", r.cfg.AuthRetry)
				authReported = true
			}
			wait = r.cfg.AuthRetry
		default:
			// One line per kind of failure, not one per retry.
			if msg := err.Error(); msg != lastLogged {
				r.log.Warn("camera session failed; reconnecting", "err", err, "retry_in", wait)
				lastLogged = msg
			}
			backoff = min(backoff*2, r.cfg.ReconnectMax)
		}
		if s.tracked {
			if authReported {
				r.log.Info("camera accepted the credentials")
			}
			authReported, lastLogged = false, ""
		}
		jitter := time.Duration(rand.Int64N(int64(wait)/5 + 1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait - wait/10 + jitter):
		}
	}
}

func (r *Recorder) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err.Error()
	r.mu.Unlock()
}

// sink is the ingest side of the queue; it never blocks on frames.
type sink struct {
	r       *Recorder
	tracked bool
}

func (s *sink) Track(t media.Track) {
	r := s.r
	s.tracked = true
	r.sessions.Add(1)
	r.connected.Store(true)
	r.mu.Lock()
	r.codec = string(t.Codec)
	r.lastErr = ""
	r.dropUntil = false
	r.mu.Unlock()
	r.queue <- item{track: &t} // once per session; waiting here is harmless
}

func (s *sink) Frame(f *media.Frame) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropUntil && !f.RandomAccess {
		r.queueDropped.Add(1)
		return
	}
	select {
	case r.queue <- item{frame: f}:
		r.dropUntil = false
	default:
		if !r.dropUntil {
			r.log.Warn("disk writer is behind: dropping frames until the next keyframe", "queue", cap(r.queue))
		}
		r.dropUntil = true
		r.queueDropped.Add(1)
	}
}

// Status reports the recorder's state.
func (r *Recorder) Status() Status {
	r.mu.Lock()
	st := Status{Camera: r.cfg.Camera.ID, Codec: r.codec, LastError: r.lastErr}
	r.mu.Unlock()
	c := &r.seg.C
	st.Connected = r.connected.Load()
	st.Sessions = r.sessions.Load()
	st.FramesIn = c.FramesIn.Load()
	st.BytesIn = c.BytesIn.Load()
	st.FramesDropped = c.FramesDropped.Load()
	st.QueueDropped = r.queueDropped.Load()
	st.QueueLen = len(r.queue)
	st.Segments = c.Segments.Load()
	st.BytesWritten = c.BytesWritten.Load()
	st.Discontinuities = c.Discontinuities.Load()
	if ns := c.LastFragment.Load(); ns != 0 {
		st.LastFragment = time.Unix(0, ns).UTC()
	}
	return st
}
