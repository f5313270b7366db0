// Package live is hubd's live-view source: asked by relay over the control
// link (or by a LAN client with a stream token), it pulls one camera stream
// and pushes its access units, never transcoded, over a WebSocket to relay.
package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/ingest"
	"github.com/zipnvr/zipnvr/hubd/internal/link"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/token"
)

// Cameras finds a camera by its id on this hub (the hub's camera set
// changes at run time; this is the only view live needs of it).
type Cameras func(id string) (camera.Camera, bool)

// Registrar takes link handlers (hubd/internal/link.Client).
type Registrar interface {
	Handle(typ string, h link.Handler)
}

// Config of a Manager.
type Config struct {
	RelayURL   string // relay's base URL, as in relay.url
	Credential string // the hub credential
	Cameras    Cameras
	Syntax     camera.Syntax
	// LANListen, when set, serves POST /live/start for LAN clients.
	LANListen string
	// MaxStreams bounds the streams pushed at once (4).
	MaxStreams int
	// QueueFrames bounds the frames waiting for the relay socket (256,
	// ~10 s at 25 fps); past it frames are dropped up to a keyframe.
	QueueFrames int
	// NewSource builds the pull of one quality; tests swap it.
	NewSource func(cam camera.Camera, q camera.Quality, syntax camera.Syntax, log *slog.Logger) (ingest.Source, error)
	Logger    *slog.Logger
	Now       func() time.Time
}

// Manager runs the hub's live streams, at most one per camera and quality.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // Run's; streams end with it
	pushes  map[string]*push
	started uint64 // camera pulls started (for status and tests)
}

// New returns a Manager; Register its handlers on the link, then Run it.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 4
	}
	if cfg.QueueFrames <= 0 {
		cfg.QueueFrames = 256
	}
	if cfg.NewSource == nil {
		cfg.NewSource = NewSource
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, log: cfg.Logger.With("component", "live"), pushes: map[string]*push{}, ctx: context.Background()}
}

// NewSource pulls quality q of cam with hubd's ingest: RTSP for high, mid
// and low, MJPEG over HTTP for mjpeg. Unlike recording it does not batch
// reads: a live frame must not wait for the next 8 KiB.
func NewSource(cam camera.Camera, q camera.Quality, syntax camera.Syntax, log *slog.Logger) (ingest.Source, error) {
	u, err := cam.URL(syntax, q)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "rtsp", "rtsps":
		return ingest.NewRTSP(ingest.RTSPConfig{URL: u, Transport: cam.Transport, Logger: log}), nil
	case "http", "https":
		return ingest.NewMJPEG(ingest.MJPEGConfig{URL: u, Logger: log}), nil
	}
	return nil, fmt.Errorf("camera %s: no source for scheme %q", cam.ID, u.Scheme)
}

// Register adds the live.start and live.stop handlers to the link.
func (m *Manager) Register(r Registrar) {
	r.Handle(proto.LinkLiveStart, func(ctx context.Context, body json.RawMessage) (any, error) {
		var req proto.LiveStartRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, link.Errorf(http.StatusBadRequest, "live.start: %v", err)
		}
		session, err := m.Start(ctx, req.Token, true)
		if err != nil {
			return nil, asLinkError(err)
		}
		return proto.LiveStartReply{Session: session}, nil
	})
	r.Handle(proto.LinkLiveStop, func(_ context.Context, body json.RawMessage) (any, error) {
		var req proto.LiveStopRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, link.Errorf(http.StatusBadRequest, "live.stop: %v", err)
		}
		m.Stop(req.Session, "relay asked to stop")
		return nil, nil
	})
}

// Error is a refusal with an HTTP-like status.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(code int, format string, a ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, a...)}
}

func asLinkError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return link.Errorf(e.Code, "%s", e.Msg)
	}
	return link.Errorf(http.StatusBadGateway, "%v", err)
}

// Start checks a stream token and starts pushing its camera stream to
// relay: it returns once relay accepted the stream socket (relay verifies
// the token's signature there); the camera is pulled after. viaLink
// streams stop when the link drops. An existing push of the same camera
// and quality is replaced (relay only asks again when it lost the first).
func (m *Manager) Start(ctx context.Context, tok string, viaLink bool) (string, error) {
	c, err := token.Parse(tok)
	if err != nil {
		return "", errorf(http.StatusUnauthorized, "%v", err)
	}
	if !sameRelay(c.Relay, m.cfg.RelayURL) {
		return "", errorf(http.StatusForbidden, "stream token is for relay %s, this hub pushes to %s", c.Relay, m.cfg.RelayURL)
	}
	// The hub's clock may be off; relay has the final word on expiry.
	if m.cfg.Now().After(c.ExpiresAt().Add(time.Minute)) {
		return "", errorf(http.StatusUnauthorized, "stream token expired")
	}
	q, err := camera.ParseQuality(c.Quality)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "%v", err)
	}
	cam, ok := m.cfg.Cameras(c.Camera)
	if !ok {
		return "", errorf(http.StatusNotFound, "no camera %q on this hub", c.Camera)
	}
	if cam.Streams.Get(q) == "" {
		return "", errorf(http.StatusConflict, "camera %s has no %s stream", c.Camera, q)
	}
	src, err := m.cfg.NewSource(cam, q, m.cfg.Syntax, m.log.With("camera", cam.ID, "quality", q))
	if err != nil {
		return "", errorf(http.StatusConflict, "camera %s: %v", cam.ID, err)
	}
	key := cam.ID + "/" + string(q)
	m.mu.Lock()
	old := m.pushes[key]
	n := len(m.pushes)
	if old != nil {
		n--
	}
	if n >= m.cfg.MaxStreams {
		m.mu.Unlock()
		return "", errorf(http.StatusServiceUnavailable, "hub pushes its maximum of %d live streams", m.cfg.MaxStreams)
	}
	runCtx := m.ctx
	m.mu.Unlock()

	// relay asks again only when it lost the first push: replace it. A LAN
	// client may ask while relay's stream runs: the old push stays until
	// relay has accepted the new token (the hub cannot check a signature).
	if old != nil && viaLink {
		old.stop("replaced by a new request")
	}
	p := newPush(m, key, c, src, viaLink)
	if err := p.dial(ctx, m.cfg.RelayURL, m.cfg.Credential, tok); err != nil {
		var e *Error
		if !viaLink && old != nil && errors.As(err, &e) && e.Code == http.StatusConflict && !old.stopped() {
			// relay verified the token and has this stream already: the
			// LAN client's viewers watch it there.
			m.log.Info("LAN start: relay has the stream already", "camera", cam.ID, "quality", q, "session", old.session)
			return old.session, nil
		}
		return "", err
	}
	if old != nil && !viaLink {
		old.stop("replaced by a LAN client's request")
	}
	m.mu.Lock()
	if cur := m.pushes[key]; cur != nil && cur != old {
		// Another start won the race while we dialed: keep one.
		m.mu.Unlock()
		p.close("another push of this stream started")
		return cur.session, nil
	}
	m.pushes[key] = p
	m.started++
	m.mu.Unlock()
	go p.run(runCtx)
	return c.Session, nil
}

// Stop ends the push of a session, if any.
func (m *Manager) Stop(session, reason string) {
	m.mu.Lock()
	var found *push
	for _, p := range m.pushes {
		if p.session == session {
			found = p
		}
	}
	m.mu.Unlock()
	if found != nil {
		found.stop(reason)
	}
}

// LinkDown stops the streams relay started over the link: relay lost them
// with the link (a relay restart) and will ask again.
func (m *Manager) LinkDown() {
	m.mu.Lock()
	var ps []*push
	for _, p := range m.pushes {
		if p.viaLink {
			ps = append(ps, p)
		}
	}
	m.mu.Unlock()
	for _, p := range ps {
		p.stop("control link down")
	}
}

func (m *Manager) removed(p *push) {
	m.mu.Lock()
	if m.pushes[p.key] == p {
		delete(m.pushes, p.key)
	}
	m.mu.Unlock()
}

// Status is one running push, for `hubd status`.
type Status struct {
	Camera   string    `json:"camera"`
	Quality  string    `json:"quality"`
	Session  string    `json:"session"`
	Started  time.Time `json:"started"`
	Frames   uint64    `json:"frames"`
	Bytes    uint64    `json:"bytes"`
	Dropped  uint64    `json:"dropped"`
	Queue    int       `json:"queue"` // frames waiting for the relay socket (at most Config.QueueFrames)
	FromLink bool      `json:"from_link"`
}

// Status lists the running pushes and how many camera pulls were started.
func (m *Manager) Status() (pushes []Status, pullsStarted uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pushes {
		pushes = append(pushes, p.status())
	}
	return pushes, m.started
}

// Run serves the LAN endpoint, if configured, until ctx ends; then every
// push stops.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		ps := make([]*push, 0, len(m.pushes))
		for _, p := range m.pushes {
			ps = append(ps, p)
		}
		m.mu.Unlock()
		for _, p := range ps {
			p.stop("hubd stopping")
		}
	}()
	if m.cfg.LANListen == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", m.cfg.LANListen)
	if err != nil {
		return fmt.Errorf("live.lan_listen: %w", err)
	}
	srv := &http.Server{Handler: m.lanHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn)}
	m.log.Info("accepting stream tokens from the LAN", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("live LAN endpoint: %w", err)
	}
	return nil
}

// lanHandler: POST /live/start and POST /live/stop, stream token as bearer.
// Answers are JSON, errors {"error": ...}.
func (m *Manager) lanHandler() http.Handler {
	mux := http.NewServeMux()
	bearer := func(r *http.Request) string {
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		return strings.TrimSpace(tok)
	}
	mux.HandleFunc("POST /live/start", func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" {
			writeJSON(w, http.StatusUnauthorized, proto.Error{Error: "missing stream token (Authorization: Bearer <stream token>)"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		defer cancel()
		session, err := m.Start(ctx, tok, false)
		if err != nil {
			code := http.StatusBadGateway
			var e *Error
			if errors.As(err, &e) {
				code = e.Code
			}
			m.log.Info("LAN stream start refused", "remote", r.RemoteAddr, "status", code, "err", err)
			writeJSON(w, code, proto.Error{Error: err.Error()})
			return
		}
		c, _ := token.Parse(tok)
		m.log.Info("LAN client started a stream", "remote", r.RemoteAddr, "camera", c.Camera, "quality", c.Quality, "session", session)
		writeJSON(w, http.StatusAccepted, map[string]string{"session": session, "camera": c.Camera, "quality": c.Quality, "relay": c.Relay})
	})
	mux.HandleFunc("POST /live/stop", func(w http.ResponseWriter, r *http.Request) {
		c, err := token.Parse(bearer(r))
		if err != nil {
			writeJSON(w, http.StatusUnauthorized, proto.Error{Error: err.Error()})
			return
		}
		m.Stop(c.Session, "LAN client asked to stop")
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// sameRelay compares URLs as relay and hub may write them (trailing
// slash, case of scheme and host).
func sameRelay(a, b string) bool {
	ua, err1 := url.Parse(strings.TrimRight(a, "/"))
	ub, err2 := url.Parse(strings.TrimRight(b, "/"))
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) && ua.Path == ub.Path
}
