// Package snapshots is relay's side of still images: a client uploads one
// through a presigned PUT, or relay asks the camera's hub to capture one
// over its control link; the hub uploads it through a presigned PUT too,
// and may also send scheduled thumbnails. Relay never carries the image: it
// signs URLs and checks the object (a HEAD and a ranged GET of its first
// bytes) before it calls a snapshot ready.
package snapshots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/wslink"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/media"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// Objects is what snapshots need of object storage (*media.S3, *media.Local).
type Objects interface {
	PresignPut(ctx context.Context, key string, size int64, contentType string, expiry time.Duration) (media.Presigned, error)
	PresignGet(ctx context.Context, key string, expiry time.Duration) (media.Presigned, error)
	Head(ctx context.Context, key string) (media.ObjectInfo, error)
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
}

// Links reaches hubs (*hublink.Registry).
type Links interface {
	Online(hubID string) bool
	Call(ctx context.Context, hubID, typ string, req, resp any) error
	Handle(typ string, h hublink.Handler)
}

// Store is the part of relay's store snapshots use.
type Store interface {
	PutSnapshot(ctx context.Context, s store.Snapshot) error
	Snapshot(ctx context.Context, id string) (store.Snapshot, error)
	ChannelSnapshots(ctx context.Context, channel string, limit int) ([]store.Snapshot, error)
	Camera(ctx context.Context, id string) (store.Camera, error)
	Channel(ctx context.Context, id string) (store.Channel, error)
}

// Config of a Service; zero values take the defaults noted.
type Config struct {
	Store   Store
	Objects Objects
	Links   Links
	// MaxBytes bounds one image (default 8 MiB); it is signed into every
	// upload URL as the exact Content-Length asked for.
	MaxBytes int64
	// UploadExpiry is the validity of an upload URL (default 15 min).
	UploadExpiry time.Duration
	// AgentTimeout bounds an agent capture: the hub's capture, its upload
	// and relay's check (default 45 s; hubd gives a camera 10 s).
	AgentTimeout time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// Service creates, checks and lists snapshots.
type Service struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // ends agent captures at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex      // serializes changes of an entry (a capture vs a listing's check)
	inflight map[string]bool // agent captures this process waits for
}

// Errors the API turns into statuses.
var (
	// ErrTooLarge: the announced size is over MaxBytes (413).
	ErrTooLarge = errors.New("snapshot too large")
	// ErrBadRequest: the request is wrong (400).
	ErrBadRequest = errors.New("bad snapshot request")
	// ErrHubOffline: the camera's hub has no control link (503).
	ErrHubOffline = errors.New("hub offline")
	// ErrNoCamera: the channel's camera is gone from its hub (409).
	ErrNoCamera = errors.New("camera not on its hub")
)

// New returns a Service and registers the hubs' upload requests on Links.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Objects == nil || cfg.Links == nil {
		return nil, errors.New("snapshots: Store, Objects and Links are required")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 8 << 20
	}
	if cfg.UploadExpiry <= 0 {
		cfg.UploadExpiry = 15 * time.Minute
	}
	if cfg.AgentTimeout <= 0 {
		cfg.AgentTimeout = 45 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("component", "snapshots"), inflight: map[string]bool{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	cfg.Links.Handle(proto.LinkSnapshotUpload, s.handleUpload)
	return s, nil
}

// Close ends the agent captures under way and waits for them: their
// entries are checked again when next listed.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// MaxBytes is the largest image a snapshot takes.
func (s *Service) MaxBytes() int64 { return s.cfg.MaxBytes }

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// key is where a snapshot's image goes: below the channel's prefix, so that
// the channel's objects stay together.
func key(ch store.Channel, id string) string { return ch.Prefix + "snapshots/" + id + ".jpg" }

func (s *Service) newEntry(ch store.Channel, source string) store.Snapshot {
	id := store.NewID("sn")
	return store.Snapshot{ID: id, Tenant: ch.Tenant, Channel: ch.ID, Camera: ch.Camera, Source: source,
		Status: store.SnapshotPending, Key: key(ch, id), Created: store.MS(s.now())}
}

func (s *Service) checkSize(n int64) error {
	switch {
	case n < 1:
		return fmt.Errorf("%w: bytes must be at least 1 (the exact size of the JPEG), got %d", ErrBadRequest, n)
	case n > s.cfg.MaxBytes:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, n, s.cfg.MaxBytes)
	}
	return nil
}

// CreateUpload makes a client snapshot of ch: the entry, pending, and a
// presigned PUT of exactly size bytes of image/jpeg.
func (s *Service) CreateUpload(ctx context.Context, ch store.Channel, size int64) (store.Snapshot, media.Presigned, error) {
	if err := s.checkSize(size); err != nil {
		return store.Snapshot{}, media.Presigned{}, err
	}
	sn := s.newEntry(ch, store.SnapshotClient)
	sn.Bytes = size
	ps, err := s.cfg.Objects.PresignPut(ctx, sn.Key, size, proto.SnapshotContentType, s.cfg.UploadExpiry)
	if err != nil {
		return sn, ps, fmt.Errorf("presign PUT %s: %w", sn.Key, err)
	}
	sn.UploadExpires = ps.Expires.UTC()
	if err := s.cfg.Store.PutSnapshot(ctx, sn); err != nil {
		return sn, ps, err
	}
	s.log.Info("snapshot upload created", "tenant", ch.Tenant, "channel", ch.ID, "snapshot", sn.ID, "bytes", size)
	return sn, ps, nil
}

// RequestAgent asks the hub of ch's camera for a snapshot. It returns the
// pending entry at once; the capture goes on in the background and ends
// with the entry ready or failed with the reason. A hub without a link is
// ErrHubOffline at once, with no entry.
func (s *Service) RequestAgent(ctx context.Context, ch store.Channel) (store.Snapshot, error) {
	hub, local, ok := store.SplitCameraID(ch.Camera)
	if !ok {
		return store.Snapshot{}, fmt.Errorf("channel %s: camera id %q has no hub", ch.ID, ch.Camera)
	}
	cam, err := s.cfg.Store.Camera(ctx, ch.Camera)
	if errors.Is(err, store.ErrNotFound) || err == nil && cam.Removed {
		return store.Snapshot{}, fmt.Errorf("%w: camera %s is no longer reported by hub %s", ErrNoCamera, local, hub)
	}
	if err != nil {
		return store.Snapshot{}, err
	}
	if !s.cfg.Links.Online(hub) {
		return store.Snapshot{}, fmt.Errorf("%w: hub %s has no control link to relay (powered off or without internet?): it cannot take a snapshot now", ErrHubOffline, hub)
	}
	sn := s.newEntry(ch, store.SnapshotAgent)
	sn.UploadExpires = sn.Created.Add(s.cfg.AgentTimeout)
	s.mu.Lock()
	s.inflight[sn.ID] = true
	s.mu.Unlock()
	if err := s.cfg.Store.PutSnapshot(ctx, sn); err != nil {
		s.done(sn.ID)
		return sn, err
	}
	s.wg.Go(func() { s.capture(sn, hub, local) })
	return sn, nil
}

func (s *Service) done(id string) {
	s.mu.Lock()
	delete(s.inflight, id)
	s.mu.Unlock()
}

// capture waits for the hub's answer and settles the entry.
func (s *Service) capture(sn store.Snapshot, hub, local string) {
	defer s.done(sn.ID)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.AgentTimeout)
	defer cancel()
	var res proto.SnapshotResult
	err := s.cfg.Links.Call(ctx, hub, proto.LinkSnapshot,
		proto.SnapshotRequest{Camera: local, Snapshot: sn.ID, MaxBytes: s.cfg.MaxBytes}, &res)
	var remote *wslink.Error
	switch {
	case err == nil:
		if _, err := s.settle(ctx, sn.ID, fmt.Sprintf("hub %s reported the snapshot uploaded, yet there is no object", hub)); err != nil {
			s.log.Warn("agent snapshot not checked; checked again when listed", "snapshot", sn.ID, "err", err)
		}
		return
	case s.ctx.Err() != nil:
		return // relay is stopping: the entry is checked when next listed
	case errors.As(err, &remote):
		err = fmt.Errorf("hub %s: %s", hub, remote.Message)
	case errors.Is(err, hublink.ErrOffline):
		err = fmt.Errorf("hub %s went offline before it delivered the snapshot", hub)
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("hub %s did not deliver the snapshot within %s", hub, s.cfg.AgentTimeout)
	default:
		err = fmt.Errorf("asking hub %s: %v", hub, err)
	}
	s.log.Warn("agent snapshot failed", "snapshot", sn.ID, "camera", sn.Camera, "err", err)
	s.fail(context.WithoutCancel(ctx), sn.ID, err.Error())
}

// fail marks a pending entry failed with reason.
func (s *Service) fail(ctx context.Context, id, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn, err := s.cfg.Store.Snapshot(ctx, id)
	if err != nil || sn.Status != store.SnapshotPending {
		return
	}
	sn.Status, sn.Error = store.SnapshotFailed, reason
	if err := s.cfg.Store.PutSnapshot(ctx, sn); err != nil {
		s.log.Error("snapshot state not saved", "snapshot", id, "err", err)
	}
}

// settle checks a pending entry's object: ready when it is there and a
// JPEG, failed when it is there and not one (or the wrong size). A missing
// object leaves it pending unless missing is set: the reason it failed.
// It returns the entry as it is now.
func (s *Service) settle(ctx context.Context, id, missing string) (store.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn, err := s.cfg.Store.Snapshot(ctx, id)
	if err != nil || sn.Status != store.SnapshotPending {
		return sn, err
	}
	reason, err := s.verify(ctx, sn)
	switch {
	case errors.Is(err, media.ErrNotFound):
		if missing == "" {
			return sn, nil // the upload may still come
		}
		sn.Status, sn.Error = store.SnapshotFailed, missing
	case err != nil:
		return sn, err // the object store failed: try again later
	case reason != "":
		sn.Status, sn.Error = store.SnapshotFailed, reason
	default:
		sn.Status, sn.Ready = store.SnapshotReady, store.MS(s.now())
	}
	if sn.Status == store.SnapshotFailed {
		s.log.Warn("snapshot rejected", "snapshot", sn.ID, "channel", sn.Channel, "source", sn.Source, "reason", sn.Error)
	} else {
		s.log.Info("snapshot ready", "snapshot", sn.ID, "channel", sn.Channel, "source", sn.Source, "bytes", sn.Bytes)
	}
	return sn, s.cfg.Store.PutSnapshot(ctx, sn)
}

// verify reads the object's size and first bytes: reason says why it is
// not an acceptable snapshot ("" when it is).
func (s *Service) verify(ctx context.Context, sn store.Snapshot) (reason string, err error) {
	info, err := s.cfg.Objects.Head(ctx, sn.Key)
	if err != nil {
		return "", err
	}
	if sn.Bytes > 0 && info.Size != sn.Bytes {
		return fmt.Sprintf("the object has %d bytes, the upload was signed for %d", info.Size, sn.Bytes), nil
	}
	head, err := s.cfg.Objects.GetRange(ctx, sn.Key, 0, min(info.Size, HeadBytes))
	if err != nil {
		return "", err
	}
	if _, err := CheckJPEG(head); err != nil {
		return fmt.Sprintf("the uploaded file is %v", err), nil
	}
	return "", nil
}

// graceAfterExpiry lets a PUT that started just before its URL expired
// finish before the entry is given up.
const graceAfterExpiry = time.Minute

// Refresh brings a pending entry up to date: a client's or a scheduled
// upload is checked once its object is there; one whose URL has expired
// without an object has failed. An agent capture this process still waits
// for is left alone.
func (s *Service) Refresh(ctx context.Context, sn store.Snapshot) (store.Snapshot, error) {
	if sn.Status != store.SnapshotPending {
		return sn, nil
	}
	s.mu.Lock()
	busy := s.inflight[sn.ID]
	s.mu.Unlock()
	if busy {
		return sn, nil
	}
	missing := ""
	if !sn.UploadExpires.IsZero() && s.now().After(sn.UploadExpires.Add(graceAfterExpiry)) {
		switch sn.Source {
		case store.SnapshotClient:
			missing = "no image was uploaded before the upload URL expired"
		default:
			missing = "the hub did not deliver the snapshot in time"
		}
	}
	out, err := s.settle(ctx, sn.ID, missing)
	if err != nil {
		// The object store failed: the entry stays pending, checked again
		// at the next listing; the listing itself goes on.
		s.log.Warn("snapshot not checked", "snapshot", sn.ID, "err", err)
		return sn, nil
	}
	return out, nil
}

// Get returns one snapshot, refreshed.
func (s *Service) Get(ctx context.Context, id string) (store.Snapshot, error) {
	sn, err := s.cfg.Store.Snapshot(ctx, id)
	if err != nil {
		return sn, err
	}
	return s.Refresh(ctx, sn)
}

// List returns a channel's snapshots, newest first, at most limit, pending
// ones refreshed.
func (s *Service) List(ctx context.Context, channel string, limit int) ([]store.Snapshot, error) {
	list, err := s.cfg.Store.ChannelSnapshots(ctx, channel, limit)
	if err != nil {
		return nil, err
	}
	for i, sn := range list {
		if list[i], err = s.Refresh(ctx, sn); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// handleUpload answers a hub's request for an upload URL: for an agent
// snapshot relay asked for, or a scheduled thumbnail (a new entry).
func (s *Service) handleUpload(ctx context.Context, hubID string, body json.RawMessage) (any, error) {
	var req proto.SnapshotUploadRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, wslink.Errorf(http.StatusBadRequest, "snapshot upload: %v", err)
	}
	if err := s.checkSize(req.Bytes); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		return nil, wslink.Errorf(status, "%v", err)
	}
	camID := store.CameraID(hubID, req.Camera)
	var sn store.Snapshot
	// Held from the read to the write: a failure settled meanwhile (the
	// capture timed out) is not overwritten with pending.
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Snapshot != "" {
		var err error
		sn, err = s.cfg.Store.Snapshot(ctx, req.Snapshot)
		if errors.Is(err, store.ErrNotFound) || err == nil && sn.Camera != camID {
			// Another hub's entry reads as absent.
			return nil, wslink.Errorf(http.StatusNotFound, "snapshot %q of camera %s not found", req.Snapshot, req.Camera)
		}
		if err != nil {
			return nil, err
		}
		if sn.Status != store.SnapshotPending || sn.Source != store.SnapshotAgent {
			return nil, wslink.Errorf(http.StatusConflict, "snapshot %s is %s, not an agent snapshot waiting for its image", sn.ID, sn.Status)
		}
	} else {
		cam, err := s.cfg.Store.Camera(ctx, camID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, wslink.Errorf(http.StatusNotFound, "camera %q is not a camera of hub %s", req.Camera, hubID)
		}
		if err != nil {
			return nil, err
		}
		ch, err := s.cfg.Store.Channel(ctx, cam.Channel)
		if cam.Channel == "" || errors.Is(err, store.ErrNotFound) || err == nil && ch.IsDeleted() {
			return nil, wslink.Errorf(http.StatusConflict, "camera %q has no channel: relay keeps no snapshots of it", req.Camera)
		}
		if err != nil {
			return nil, err
		}
		sn = s.newEntry(ch, store.SnapshotSchedule)
	}
	sn.Bytes = req.Bytes
	ps, err := s.cfg.Objects.PresignPut(ctx, sn.Key, req.Bytes, proto.SnapshotContentType, s.cfg.UploadExpiry)
	if err != nil {
		s.log.Error("presign snapshot upload", "key", sn.Key, "err", err)
		return nil, wslink.Errorf(http.StatusBadGateway, "object store: presign failed, retry later")
	}
	if sn.Source == store.SnapshotSchedule {
		sn.UploadExpires = ps.Expires.UTC()
	}
	if err := s.cfg.Store.PutSnapshot(ctx, sn); err != nil {
		return nil, err
	}
	return proto.SnapshotUpload{Snapshot: sn.ID, Upload: proto.Upload{Key: sn.Key, URL: ps.URL, Method: ps.Method,
		Headers: ps.Header, Expires: ps.Expires.UTC()}}, nil
}
