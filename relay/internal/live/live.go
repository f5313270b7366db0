// Package live is relay's live-view broker: hubs push one camera stream per
// channel and quality over a WebSocket, and relay fans it out to every viewer
// over WebRTC (WHEP), fMP4 over WebSocket (MSE) or MJPEG multipart.
package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/token"
)

// Hubs reaches a hub over its control link (relay/internal/hublink).
type Hubs interface {
	Call(ctx context.Context, hubID, typ string, req, resp any) error
}

// Config of a Service. Zero values take the defaults noted.
type Config struct {
	// PublicURL is relay's own URL: tokens name it, and a token naming
	// another relay is refused.
	PublicURL string
	// Key signs stream tokens (at least token.MinKey bytes).
	Key  []byte
	Hubs Hubs
	// TokenTTL: how long a new token may start a session (60 s).
	TokenTTL time.Duration
	// StopAfter: a stream with no viewer for this long is stopped (5 s).
	StopAfter time.Duration
	// StartTimeout bounds the wait for a camera's first keyframe and for a
	// viewer's WebRTC connection (10 s).
	StartTimeout time.Duration
	ICE          ICE
	// RecordsPath is the bbolt file of session records; "" keeps none.
	RecordsPath string
	// RecordDays: session records older than this are deleted (30).
	RecordDays int
	// MaxViewers and MaxStreams bound what one relay serves at once
	// (2000 and 500): past them new ones get 503.
	MaxViewers, MaxStreams int
	Registerer             prometheus.Registerer
	Logger                 *slog.Logger
	Now                    func() time.Time
}

// ICE configures the WebRTC side.
type ICE struct {
	// UDPPort, when set, carries every viewer on one UDP port (a firewall
	// needs one rule); 0 gives each viewer an ephemeral port.
	UDPPort int
	// PublicIPs replace the host candidates' addresses (relay behind 1:1
	// NAT, e.g. a cloud VM with an elastic IP).
	PublicIPs []string
	// Interfaces limits host candidates to these interfaces (all: empty).
	Interfaces []string
	// Loopback offers 127.0.0.1 too (tests, or a viewer on the same box).
	Loopback bool
	// Servers (STUN/TURN) go to viewers and are used by relay itself.
	Servers []ICEServer
}

// ICEServer is one STUN or TURN server, as RTCPeerConnection takes it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Error is a failure with the HTTP status a client should get.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Msg) }

func errorf(code int, format string, a ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, a...)}
}

// Service is the live-view broker.
type Service struct {
	cfg     Config
	log     *slog.Logger
	signer  *token.Signer
	metrics *metrics
	records *records
	rtc     *rtcAPI

	mu      sync.Mutex
	streams map[streamKey]*stream
	whep    map[string]*viewer // WHEP sessions by id, for DELETE
	viewers int
	closed  bool
}

type streamKey struct{ channel, quality string }

// New checks cfg and opens the session records.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Minute
	}
	if cfg.StopAfter <= 0 {
		cfg.StopAfter = 5 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.RecordDays <= 0 {
		cfg.RecordDays = 30
	}
	if cfg.MaxViewers <= 0 {
		cfg.MaxViewers = 2000
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 500
	}
	if cfg.Hubs == nil {
		return nil, errors.New("live: Hubs is required")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.PublicURL == "" {
		return nil, errors.New("live: PublicURL is required")
	}
	signer, err := token.NewSigner(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("component", "live"), signer: signer, metrics: m,
		streams: map[streamKey]*stream{}}
	if s.rtc, err = newRTCAPI(cfg.ICE, cfg.Logger); err != nil {
		return nil, fmt.Errorf("live: WebRTC: %w", err)
	}
	if cfg.RecordsPath != "" {
		if s.records, err = openRecords(cfg.RecordsPath, time.Duration(cfg.RecordDays)*24*time.Hour, s.log); err != nil {
			s.rtc.close()
			return nil, err
		}
	}
	return s, nil
}

// Close ends every stream and viewer and closes the records.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	streams := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()
	for _, st := range streams {
		st.end("relay shutting down")
	}
	if s.records != nil {
		s.records.close()
	}
	s.rtc.close()
}

// Request is what a stream token is asked for; the caller has checked that
// the user may see the channel and that the camera has the quality.
type Request struct {
	Tenant, Channel, Hub, Camera string
	Quality                      camera.Quality
}

// Grant is an issued token with what a client needs to use it.
type Grant struct {
	Token      string       `json:"token"`
	Session    string       `json:"session"`
	Expires    time.Time    `json:"expires"`
	Channel    string       `json:"channel"`
	Quality    string       `json:"quality"`
	ICEServers []ICEServer  `json:"ice_servers"`
	Claims     token.Claims `json:"-"`
}

// Issue signs a token for r, valid for TokenTTL, and starts the camera
// stream at once, so that by the time the viewer connects it is flowing.
func (s *Service) Issue(r Request) (Grant, error) {
	c := token.Claims{Relay: s.cfg.PublicURL, Tenant: r.Tenant, Channel: r.Channel, Hub: r.Hub,
		Camera: r.Camera, Quality: string(r.Quality), Session: newID("ls"),
		Expires: s.cfg.Now().Add(s.cfg.TokenTTL).Unix()}
	tok, err := s.signer.Sign(c)
	if err != nil {
		return Grant{}, err
	}
	s.metrics.tokens.Inc()
	if _, err := s.ensureStream(c); err != nil {
		// The viewer will get the same answer; the token itself is fine.
		s.log.Debug("stream not started at token issue", "channel", c.Channel, "err", err)
	}
	servers := s.cfg.ICE.Servers
	if servers == nil {
		servers = []ICEServer{}
	}
	return Grant{Token: tok, Session: c.Session, Expires: c.ExpiresAt(), Channel: c.Channel,
		Quality: c.Quality, ICEServers: servers, Claims: c}, nil
}

// Authorize checks a stream token for channel: signature, expiry, this
// relay, this channel. No database read. Every refusal is a 401 or 403.
func (s *Service) Authorize(tok, channel string) (token.Claims, error) {
	if tok == "" {
		return token.Claims{}, errorf(http.StatusUnauthorized, "missing stream token (Authorization: Bearer <stream token>, or ?token= where headers cannot be set)")
	}
	c, err := s.signer.Verify(tok, s.cfg.Now())
	switch {
	case errors.Is(err, token.ErrExpired):
		s.metrics.refused.WithLabelValues("expired").Inc()
		return c, errorf(http.StatusUnauthorized, "stream token expired: ask for a new one")
	case err != nil:
		s.metrics.refused.WithLabelValues("invalid").Inc()
		return c, errorf(http.StatusUnauthorized, "invalid stream token")
	case c.Relay != s.cfg.PublicURL:
		s.metrics.refused.WithLabelValues("other_relay").Inc()
		return c, errorf(http.StatusForbidden, "stream token was issued for another relay")
	case c.Channel != channel:
		s.metrics.refused.WithLabelValues("other_channel").Inc()
		return c, errorf(http.StatusForbidden, "stream token is for another channel")
	}
	return c, nil
}

// ICEServers are the STUN/TURN servers handed to viewers.
func (s *Service) ICEServers() []ICEServer { return s.cfg.ICE.Servers }

// ensureStream returns the running stream of c's channel and quality, or
// starts one (asking the hub over its link).
func (s *Service) ensureStream(c token.Claims) (*stream, error) {
	key := streamKey{c.Channel, c.Quality}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errorf(http.StatusServiceUnavailable, "relay is shutting down")
	}
	if st := s.streams[key]; st != nil {
		return st, nil
	}
	if len(s.streams) >= s.cfg.MaxStreams {
		return nil, errorf(http.StatusServiceUnavailable, "relay serves its maximum of %d live streams", s.cfg.MaxStreams)
	}
	st := newStream(s, key, c, newID("lst"), "link")
	s.streams[key] = st
	go st.start()
	return st, nil
}

// removeStream forgets st once it has ended.
func (s *Service) removeStream(st *stream) {
	s.mu.Lock()
	if s.streams[st.key] == st {
		delete(s.streams, st.key)
	}
	s.mu.Unlock()
}

// admitViewer counts a new viewer against MaxViewers.
func (s *Service) admitViewer() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.viewers >= s.cfg.MaxViewers {
		return errorf(http.StatusServiceUnavailable, "relay serves its maximum of %d viewers", s.cfg.MaxViewers)
	}
	s.viewers++
	return nil
}

func (s *Service) viewerGone() {
	s.mu.Lock()
	s.viewers--
	s.mu.Unlock()
}

// StreamInfo is a running stream, for the API and the page.
type StreamInfo struct {
	ID          string    `json:"id"`
	Quality     string    `json:"quality"`
	State       string    `json:"state"` // starting, live, camera_error
	Error       string    `json:"error,omitempty"`
	Codec       string    `json:"codec,omitempty"`
	Width       int       `json:"width,omitempty"`
	Height      int       `json:"height,omitempty"`
	Viewers     int       `json:"viewers"`
	Started     time.Time `json:"started"`
	BytesIn     uint64    `json:"bytes_in"`
	FramesIn    uint64    `json:"frames_in"`
	StartedFrom string    `json:"started_from"` // link (relay asked the hub) or hub (a LAN client gave the hub a token)
}

// Streams lists the running streams of a channel.
func (s *Service) Streams(channel string) []StreamInfo {
	s.mu.Lock()
	var sts []*stream
	for k, st := range s.streams {
		if k.channel == channel {
			sts = append(sts, st)
		}
	}
	s.mu.Unlock()
	out := []StreamInfo{}
	for _, st := range sts {
		out = append(out, st.info())
	}
	return out
}

// Sessions lists a channel's recent session records, newest first.
func (s *Service) Sessions(ctx context.Context, channel string, limit int) ([]Record, error) {
	if s.records == nil {
		return []Record{}, nil
	}
	return s.records.list(ctx, channel, limit)
}

// stopHub tells the hub to stop a stream (best effort: it also stops when
// its stream socket closes).
func (s *Service) stopHub(hub, session string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cfg.Hubs.Call(ctx, hub, proto.LinkLiveStop, proto.LiveStopRequest{Session: session}, nil); err != nil {
		s.log.Debug("live.stop not delivered (the closed stream socket stops the hub anyway)", "hub", hub, "err", err)
	}
}

func newID(kind string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return kind + "_" + hex.EncodeToString(b)
}

// StatusOf maps an error of this package to an HTTP status and message;
// ok is false for internal errors.
func StatusOf(err error) (code int, msg string, ok bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Msg, true
	}
	return http.StatusInternalServerError, "internal error", false
}
