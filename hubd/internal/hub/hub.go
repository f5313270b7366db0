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
	"github.com/zipnvr/zipnvr/hubd/internal/live"
	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/hubd/internal/recorder"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/hubd/internal/segment"
	"github.com/zipnvr/zipnvr/hubd/internal/upload"
	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Hub is a running hubd.
type Hub struct {
	cfg      *config.Config
	log      *slog.Logger
	ring     *ring.Ring
	cams     *cameraSet
	relay    *control.Client  // nil without relay.url: record locally only
	uploader *upload.Uploader // nil without relay.url
	link     *link.Client     // nil without relay.url
	live     *live.Manager    // nil without relay.url: live view goes through relay
	integ    integrations     // device tree file, box MQTT, ONVIF discovery
	ptz      ptzControllers   // one per camera that was steered
}

// New opens the ring (repairing it after a crash) and takes the cameras of
// the config; recording starts with Run.
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
	h.cams = newCameraSet(h)
	if cfg.Relay.URL != "" {
		h.relay = control.New(control.Config{URL: cfg.Relay.URL, Credential: cfg.Relay.Credential})
		h.uploader = upload.New(upload.Config{Ring: r, Relay: h.relay, DataDir: cfg.Hub.DataDir,
			Parallel: cfg.Relay.ParallelUploads, Logger: log})
		h.link = link.New(link.Config{URL: cfg.Relay.URL, Credential: cfg.Relay.Credential, Logger: log,
			OnChange: func(up bool) {
				if !up {
					h.live.LinkDown() // relay lost those streams with the link
				}
			}})
		h.live = live.New(live.Config{RelayURL: cfg.Relay.URL, Credential: cfg.Relay.Credential, Cameras: h.Camera,
			Syntax: cfg.Templates, LANListen: cfg.Live.LANListen, MaxStreams: cfg.Live.MaxStreams, Logger: log})
		h.live.Register(h.link)
		h.registerCoverage()
	}
	h.setupSnapshots()
	if err := h.setupIntegrations(); err != nil {
		r.Close()
		return nil, err
	}
	h.SetCameras(FromConfig, cfg.Cameras)
	return h, nil
}

// newRecorder builds the recorder of one camera from the recording config.
func (h *Hub) newRecorder(cam camera.Camera) *recorder.Recorder {
	rc := h.cfg.Recording
	return recorder.New(recorder.Config{
		Camera: cam,
		Syntax: h.cfg.Templates,
		Segment: segment.Config{
			Store:            RingStore{h.ring},
			SegmentDuration:  rc.Segment(),
			FragmentDuration: rc.Fragment(),
			FsyncInterval:    rc.Fsync(),
			MaxFrameGap:      rc.MaxFrameGap(),
			MaxDrift:         rc.MaxDrift(),
		},
		QueueFrames:  rc.QueueFrames,
		ReconnectMax: rc.ReconnectMax(),
		Logger:       h.log,
	})
}

// Ring exposes the ring (uploader, status).
func (h *Hub) Ring() *ring.Ring { return h.ring }

// Link is the control link to relay, for registering request handlers
// before Run; nil without relay.url.
func (h *Hub) Link() *link.Client { return h.link }

// Run records every camera until ctx ends, then closes every segment and
// the index. Cameras may come and go meanwhile (SetCameras). A camera that
// fails never stops the others.
func (h *Hub) Run(ctx context.Context) error {
	srv, err := h.serveControl(h.cfg.Hub.ControlSocket)
	if err != nil {
		h.ring.Close()
		return err
	}
	h.log.Info("hubd recording", "hub", h.cfg.Hub.ID, "cameras", len(h.Cameras()),
		"data_dir", h.cfg.Hub.DataDir, "ring_bytes", h.cfg.Hub.RingBytes.String(),
		"segment_seconds", h.cfg.Recording.SegmentSeconds, "fsync_seconds", h.cfg.Recording.FsyncSeconds)

	var wg sync.WaitGroup
	h.cams.run(ctx)
	h.runIntegrations(ctx, &wg)
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
		wg.Go(func() { h.runSnapshots(ctx) })
		wg.Go(func() {
			if err := h.live.Run(ctx); err != nil {
				h.log.Error("live view LAN endpoint failed", "err", err)
			}
		})
	} else {
		h.log.Info("no relay configured: recording locally only")
	}
	wg.Wait()
	var errs []error
	if err := h.cams.wait(); err != nil {
		errs = append(errs, err)
	}

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
		present := map[string]bool{}
		for _, rec := range h.Recorders() {
			st := rec.Status()
			present[st.Camera] = true
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
		for id := range stalled {
			if !present[id] {
				delete(stalled, id) // camera removed
			}
		}
	}
}

// reportCameras tells the relay which cameras this hub has, at start and
// again whenever the set changes, retrying until the relay answers: uploads
// of a camera it does not know are refused.
func (h *Hub) reportCameras(ctx context.Context) {
	select {
	case <-h.cams.changed: // the first report carries the changes so far
	default:
	}
	wait := time.Second
	for {
		cams := h.Cameras()
		err := h.relay.ReportCameras(ctx, cams, h.cfg.Templates)
		if ctx.Err() != nil {
			return
		}
		retry := (<-chan time.Time)(nil)
		if err == nil {
			h.log.Info("cameras reported to the relay", "relay", h.cfg.Relay.URL, "cameras", len(cams))
			wait = time.Second
		} else {
			h.log.Warn("cannot report cameras to the relay; retrying", "err", err, "retry_in", wait)
			retry = time.After(wait)
			wait = min(2*wait, time.Minute)
		}
		// A change while waiting to retry is sent at the retry (or at once
		// after a success): the report always carries the latest set.
		select {
		case <-ctx.Done():
			return
		case <-retry:
		case <-h.cams.changed:
			if retry != nil {
				select {
				case <-ctx.Done():
					return
				case <-retry:
				}
			}
		}
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
