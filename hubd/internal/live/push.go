package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/gorilla/websocket"

	"github.com/zipnvr/zipnvr/hubd/internal/ingest"
	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/token"
)

// Timing of a push: a relay that takes no frame for writeTimeout is gone;
// a failed camera is retried with a backoff between these bounds.
const (
	writeTimeout = 10 * time.Second
	retryMin     = 250 * time.Millisecond
	retryMax     = 2 * time.Second
)

// push is one camera stream pushed to relay over its stream socket.
type push struct {
	m       *Manager
	key     string
	session string
	claims  token.Claims
	src     ingest.Source
	viaLink bool
	log     *slog.Logger
	started time.Time

	ws   *websocket.Conn
	q    chan item
	quit chan struct{}
	once sync.Once
	why  string

	frames, bytes, dropped atomic.Uint64
}

// item is one message for the socket: text (JSON) or a binary frame.
type item struct {
	text bool
	data []byte
}

func newPush(m *Manager, key string, c token.Claims, src ingest.Source, viaLink bool) *push {
	return &push{m: m, key: key, session: c.Session, claims: c, src: src, viaLink: viaLink,
		log: m.log.With("camera", c.Camera, "quality", c.Quality, "session", c.Session), started: m.cfg.Now(),
		q: make(chan item, m.cfg.QueueFrames), quit: make(chan struct{})}
}

// dial opens the stream socket; relay checks the hub credential and the
// token's signature before it answers.
func (p *push) dial(ctx context.Context, relayURL, credential, tok string) error {
	u, err := url.Parse(strings.TrimRight(relayURL, "/"))
	if err != nil {
		return fmt.Errorf("relay url: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	u.Path += proto.PathHubLiveStream
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment, WriteBufferSize: 32 << 10}
	hdr := http.Header{"Authorization": {"Bearer " + credential}, proto.HeaderStreamToken: {tok}}
	ws, resp, err := d.DialContext(ctx, u.String(), hdr)
	if err != nil {
		if resp != nil {
			var e proto.Error
			_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
			resp.Body.Close()
			return errorf(resp.StatusCode, "relay refused the stream socket: %d %s", resp.StatusCode, e.Error)
		}
		return errorf(http.StatusBadGateway, "stream socket to relay: %v", err)
	}
	p.ws = ws
	p.log.Info("live stream socket open: pulling the camera", "via", map[bool]string{true: "link", false: "LAN client"}[p.viaLink])
	return nil
}

// run pulls the camera and writes to the socket until stopped.
func (p *push) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	go func() {
		select {
		case <-p.quit:
		case <-ctx.Done():
			p.stop("hubd stopping")
		}
		cancel()
	}()
	go p.reader()
	var wg sync.WaitGroup
	wg.Go(p.writer)
	p.pull(ctx)
	wg.Wait()
	p.close(p.why)
	p.m.removed(p)
	p.log.Info("live stream stopped", "reason", p.why, "frames", p.frames.Load(), "bytes", p.bytes.Load(),
		"dropped", p.dropped.Load(), "duration", p.m.cfg.Now().Sub(p.started).Round(time.Millisecond))
}

// pull runs camera sessions until ctx ends, retrying a failing camera;
// viewers learn of failures through state messages.
func (p *push) pull(ctx context.Context) {
	wait := retryMin
	for ctx.Err() == nil {
		p.send(item{text: true, data: stateMsg("connecting", "")})
		sink := &sink{p: p}
		began := time.Now()
		err := p.src.Run(ctx, sink)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("camera session ended")
		}
		if time.Since(began) > 10*time.Second {
			wait = retryMin
		}
		if errors.Is(err, ingest.ErrAuth) {
			wait = 10 * time.Second // a refused password: retrying fast only locks accounts
		}
		p.log.Warn("live camera session failed; retrying", "err", err, "retry_in", wait)
		p.send(item{text: true, data: stateMsg("camera_error", err.Error())})
		jitter := time.Duration(rand.Int64N(int64(wait)/4 + 1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait + jitter):
		}
		wait = min(2*wait, retryMax)
	}
}

func stateMsg(state, detail string) []byte {
	b, _ := json.Marshal(proto.StreamMessage{Type: proto.StreamState, State: state, Error: detail})
	return b
}

// send queues an item; never blocks the camera. A full queue (relay's
// uplink slower than the camera) drops frames up to the next keyframe.
func (p *push) send(it item) bool {
	select {
	case p.q <- it:
		return true
	case <-p.quit:
		return false
	default:
		return false
	}
}

func (p *push) writer() {
	for {
		select {
		case <-p.quit:
			return
		case it := <-p.q:
			kind := websocket.BinaryMessage
			if it.text {
				kind = websocket.TextMessage
			}
			_ = p.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := p.ws.WriteMessage(kind, it.data); err != nil {
				p.stop("relay socket: " + err.Error())
				return
			}
			p.bytes.Add(uint64(len(it.data)))
		}
	}
}

// reader notices relay closing the socket (the stop signal) and answers
// its pings (gorilla's default ping handler).
func (p *push) reader() {
	p.ws.SetReadLimit(4096)
	for {
		if _, _, err := p.ws.ReadMessage(); err != nil {
			reason := "relay closed the stream socket"
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Text != "" {
				reason += ": " + ce.Text
			}
			p.stop(reason)
			return
		}
	}
}

// stopped says whether the push has been told to stop.
func (p *push) stopped() bool {
	select {
	case <-p.quit:
		return true
	default:
		return false
	}
}

func (p *push) stop(reason string) {
	p.once.Do(func() {
		p.why = reason
		close(p.quit)
	})
}

// close ends the socket with a close frame carrying the reason.
func (p *push) close(reason string) {
	p.stop(reason)
	if p.ws == nil {
		return
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, truncate(reason, 100))
	_ = p.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = p.ws.Close()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (p *push) status() Status {
	return Status{Camera: p.claims.Camera, Quality: p.claims.Quality, Session: p.session, Started: p.started,
		Frames: p.frames.Load(), Bytes: p.bytes.Load(), Dropped: p.dropped.Load(), Queue: len(p.q), FromLink: p.viaLink}
}

// sink turns one camera session into stream messages, on the ingest
// goroutine: a track message (sent again when parameter sets change), then
// frames from the first keyframe on.
type sink struct {
	p       *push
	track   media.Track
	sent    *proto.StreamMessage // the track message relay has
	needKey bool
}

func (s *sink) Track(t media.Track) {
	s.track = t
	s.sent = nil
	s.needKey = true
}

func (s *sink) Frame(f *media.Frame) {
	p := s.p
	if f.RandomAccess {
		if m := s.trackFor(f); m != nil && (s.sent == nil || !sameTrack(*s.sent, *m)) {
			b, _ := json.Marshal(m)
			if !p.send(item{text: true, data: b}) {
				s.drop()
				return
			}
			s.sent = m
		}
	}
	if s.sent == nil || (s.needKey && !f.RandomAccess) {
		p.dropped.Add(1)
		return
	}
	payload := f.AVCC
	if s.track.Codec == media.MJPEG {
		payload = f.AU[0]
	} else if payload == nil {
		payload, _ = h264.AVCC(f.AU).Marshal() // never fails
	}
	b := proto.EncodeFrame(make([]byte, 0, proto.FrameHeaderSize+len(payload)),
		&proto.Frame{DTS: f.DTS, PTS: f.PTS, RandomAccess: f.RandomAccess, Received: f.Received, Payload: payload})
	if !p.send(item{data: b}) {
		s.drop()
		return
	}
	s.needKey = false
	p.frames.Add(1)
}

func (s *sink) drop() {
	s.needKey = true
	s.p.dropped.Add(1)
}

// trackFor is the track message for a keyframe: parameter sets from the
// frame itself where present (cameras refresh them in-band), else from the
// SDP. nil when they are still unknown (the frame is dropped).
func (s *sink) trackFor(f *media.Frame) *proto.StreamMessage {
	t := s.track
	switch t.Codec {
	case media.MJPEG:
		return &proto.StreamMessage{Type: proto.StreamTrack, Codec: proto.CodecMJPEG, Width: f.Width, Height: f.Height}
	case media.H264:
		m := &proto.StreamMessage{Type: proto.StreamTrack, Codec: proto.CodecH264, SPS: t.SPS, PPS: t.PPS}
		for _, n := range f.AU {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				m.SPS = n
			case h264.NALUTypePPS:
				m.PPS = n
			}
		}
		if len(m.SPS) == 0 || len(m.PPS) == 0 {
			return nil
		}
		return m
	case media.H265:
		m := &proto.StreamMessage{Type: proto.StreamTrack, Codec: proto.CodecH265, VPS: t.VPS, SPS: t.SPS, PPS: t.PPS}
		for _, n := range f.AU {
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				m.VPS = n
			case h265.NALUType_SPS_NUT:
				m.SPS = n
			case h265.NALUType_PPS_NUT:
				m.PPS = n
			}
		}
		if len(m.VPS) == 0 || len(m.SPS) == 0 || len(m.PPS) == 0 {
			return nil
		}
		return m
	}
	return nil
}

func sameTrack(a, b proto.StreamMessage) bool {
	return a.Codec == b.Codec && a.Width == b.Width && a.Height == b.Height &&
		bytes.Equal(a.VPS, b.VPS) && bytes.Equal(a.SPS, b.SPS) && bytes.Equal(a.PPS, b.PPS)
}
