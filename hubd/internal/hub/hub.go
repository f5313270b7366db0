// Package hub assembles hubd: the ring, one recorder per camera, the local
// control socket and metrics, started and stopped together.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/config"
	"github.com/zipnvr/zipnvr/hubd/internal/control"
	"github.com/zipnvr/zipnvr/hubd/internal/link"
	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/hubd/internal/recorder"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/hubd/internal/segment"
	"github.com/zipnvr/zipnvr/hubd/internal/upload"
	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Hub is a running hubd.
type Hub struct {
	cfg       *config.Config
	log       *slog.Logger
	ring      *ring.Ring
	recorders []*recorder.Recorder
	relay     *control.Client  // nil without relay.url: record locally only
	uploader  *upload.Uploader // nil without relay.url
	link      *link.Client     // nil without relay.url
}

// New opens the ring (repairing it after a crash) and prepares recorders.
func New(cfg *config.Config, log *slog.Logger) (*Hub, error) {
	if log == nil {
		log = slog.Default()
	}
	r, err := ring.Open(ring.Config{
		DataDir:  cfg.Hub.DataDir,
		MaxBytes: int64(cfg.Hub.RingBytes),
		Logger:   log,
		Scan:     ScanFile,
	})
	if err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, log: log, ring: r}
	if cfg.Relay.URL != "" {
		h.relay = control.New(control.Config{URL: cfg.Relay.URL, Credential: cfg.Relay.Credential})
		h.uploader = upload.New(upload.Config{Ring: r, Relay: h.relay, DataDir: cfg.Hub.DataDir,
			Parallel: cfg.Relay.ParallelUploads, Logger: log})
		h.link = link.New(link.Config{URL: cfg.Relay.URL, Credential: cfg.Relay.Credential, Logger: log})
	}
	rc := cfg.Recording
	for _, cam := range cfg.Cameras {
		if cam.Record == camera.RecordOff {
			log.Info("camera not recorded (record: off)", "camera", cam.ID)
			continue
		}
		h.recorders = append(h.recorders, recorder.New(recorder.Config{
			Camera: cam,
			Syntax: cfg.Templates,
			Segment: segment.Config{
				Store:            RingStore{r},
				SegmentDuration:  rc.Segment(),
				FragmentDuration: rc.Fragment(),
				FsyncInterval:    rc.Fsync(),
				MaxFrameGap:      rc.MaxFrameGap(),
				MaxDrift:         rc.MaxDrift(),
			},
			QueueFrames:  rc.QueueFrames,
			ReconnectMax: rc.ReconnectMax(),
			Logger:       log,
		}))
	}
	return h, nil
}

// Ring exposes the ring (uploader, status).
func (h *Hub) Ring() *ring.Ring { return h.ring }

// Link is the control link to relay, for registering request handlers
// before Run; nil without relay.url.
func (h *Hub) Link() *link.Client { return h.link }

// Recorders exposes the recorders (status, metrics).
func (h *Hub) Recorders() []*recorder.Recorder { return h.recorders }

// Run records every camera until ctx ends, then closes every segment and
// the index. A camera that fails never stops the others.
func (h *Hub) Run(ctx context.Context) error {
	srv, err := h.serveControl(h.cfg.Hub.ControlSocket)
	if err != nil {
		h.ring.Close()
		return err
	}
	h.log.Info("hubd recording", "hub", h.cfg.Hub.ID, "cameras", len(h.recorders),
		"data_dir", h.cfg.Hub.DataDir, "ring_bytes", h.cfg.Hub.RingBytes.String(),
		"segment_seconds", h.cfg.Recording.SegmentSeconds, "fsync_seconds", h.cfg.Recording.FsyncSeconds)

	var wg sync.WaitGroup
	errs := make([]error, len(h.recorders))
	for i, rec := range h.recorders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = rec.Run(ctx)
			if errs[i] != nil {
				h.log.Error("camera stopped", "err", errs[i])
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); h.watch(ctx) }()
	if h.uploader != nil {
		wg.Add(2)
		go func() { defer wg.Done(); h.reportCameras(ctx) }()
		go func() { defer wg.Done(); h.uploader.Run(ctx) }()
		wg.Go(func() {
			if err := h.link.Run(ctx); err != nil {
				h.log.Error("relay link not started", "err", err)
			}
		})
	} else {
		h.log.Info("no relay configured: recording locally only")
	}
	wg.Wait()

	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = os.Remove(h.cfg.Hub.ControlSocket)
	if err := h.ring.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close index: %w", err))
	}
	h.log.Info("hubd stopped")
	return errors.Join(errs...)
}

// watch logs a camera that is connected but writes nothing: a pipeline
// stalled silently is the failure users of other recorders find too late.
func (h *Hub) watch(ctx context.Context) {
	limit := 3*h.cfg.Recording.Fragment() + 10*time.Second
	stalled := map[string]bool{}
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, rec := range h.recorders {
			st := rec.Status()
			since := time.Since(st.LastFragment)
			isStalled := st.Connected && !st.LastFragment.IsZero() && since > limit
			if isStalled && !stalled[st.Camera] {
				h.log.Warn("camera connected but no fragment written", "camera", st.Camera,
					"since", since.Round(time.Second), "frames_in", st.FramesIn, "frames_dropped", st.FramesDropped)
			} else if !isStalled && stalled[st.Camera] {
				h.log.Info("camera recording again", "camera", st.Camera)
			}
			stalled[st.Camera] = isStalled
		}
	}
}

// reportCameras tells the relay which cameras this hub has, retrying until
// the relay answers: uploads of a camera it does not know are refused.
func (h *Hub) reportCameras(ctx context.Context) {
	wait := time.Second
	for {
		err := h.relay.ReportCameras(ctx, h.cfg.Cameras, h.cfg.Templates)
		if err == nil {
			h.log.Info("cameras reported to the relay", "relay", h.cfg.Relay.URL, "cameras", len(h.cfg.Cameras))
			return
		}
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("cannot report cameras to the relay; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// RingStore adapts the ring to the segmenter's Store.
type RingStore struct{ R *ring.Ring }

// Create implements segment.Store.
func (s RingStore) Create(cameraID string, codec media.Codec, start time.Time) (segment.File, error) {
	f, err := s.R.Create(cameraID, string(codec), start)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// ScanFile checks a segment file for the ring's recovery.
func ScanFile(path string) (ring.ScanInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return ring.ScanInfo{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ring.ScanInfo{}, err
	}
	res, err := segment.Scan(f, st.Size())
	if err != nil {
		return ring.ScanInfo{}, err
	}
	return ring.ScanInfo{
		ValidSize: res.ValidSize,
		Frames:    res.Frames,
		Duration:  time.Duration(res.Duration * int64(time.Second) / int64(res.TimeScale)),
		Codec:     res.Codec,
	}, nil
}
