package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/token"
	"github.com/zipnvr/zipnvr/pkg/wslink"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
)

// GOP cache bounds: a joining viewer starts at the cached keyframe, so the
// cache holds one GOP; a camera with absurdly long GOPs is not cached past
// these (the viewer then waits for the next keyframe).
const (
	maxGOPBytes  = 16 << 20
	maxGOPFrames = 600
)

// Hub socket liveness: relay pings; a hub silent for hubSilence is gone
// (a camera stalls, but the hub still answers pings).
const (
	hubPing    = 5 * time.Second
	hubSilence = 15 * time.Second
)

// stream is one camera stream (channel, quality) pushed by a hub and fanned
// out to its viewers.
type stream struct {
	svc     *Service
	key     streamKey
	id      string
	claims  token.Claims
	from    string // "link": relay asked the hub; "hub": a LAN client did
	log     *slog.Logger
	started time.Time

	mu         sync.Mutex
	hub        *websocket.Conn // nil until the hub's socket is attached
	hubWriteMu *sync.Mutex     // pings vs the close frame
	track      *trackInfo
	tracks     int
	gop        []*frame // from the last keyframe on; never modified in place (viewers hold snapshots)
	gopBytes   int
	lastDTS    int64
	lastDur    int64
	viewers    map[*viewer]struct{}
	peak       int
	idle       *time.Timer
	ended      bool
	endErr     error
	camState   string
	camErr     string
	attachedC  chan struct{}

	ready     chan struct{} // closed at the first keyframe, or at the end
	readyOnce sync.Once
	done      chan struct{}
	bytesIn   atomic.Uint64
	framesIn  atomic.Uint64
	seq       atomic.Uint32 // fMP4 fragment sequence numbers

	packMu sync.Mutex // one RTP packetizer per stream, shared by every WebRTC viewer
	pack   *packetizer
}

func newStream(s *Service, key streamKey, c token.Claims, id, from string) *stream {
	st := &stream{svc: s, key: key, id: id, claims: c, from: from, started: s.cfg.Now(),
		log:     s.log.With("stream", id, "channel", key.channel, "quality", key.quality, "hub", c.Hub, "camera", c.Camera),
		viewers: map[*viewer]struct{}{}, camState: "starting", attachedC: make(chan struct{}),
		ready: make(chan struct{}), done: make(chan struct{})}
	st.armIdle()
	s.metrics.streams.Inc()
	s.metrics.streamsTotal.WithLabelValues(from).Inc()
	s.record(Record{ID: id, Kind: "stream", Channel: key.channel, Tenant: c.Tenant, Hub: c.Hub,
		Camera: c.Camera, Quality: key.quality, Transport: from, Started: st.started})
	st.log.Info("live stream starting", "from", from)
	return st
}

// start asks the hub over its link to push the stream, then waits for the
// hub's stream socket.
func (st *stream) start() {
	s := st.svc
	c := st.claims
	c.Session = st.id
	c.Expires = s.cfg.Now().Add(s.cfg.StartTimeout + 5*time.Second).Unix()
	tok, err := s.signer.Sign(c)
	if err != nil {
		st.fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StartTimeout)
	defer cancel()
	go func() {
		select {
		case <-st.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = s.cfg.Hubs.Call(ctx, c.Hub, proto.LinkLiveStart, proto.LiveStartRequest{Token: tok}, nil)
	var remote *wslink.Error
	switch {
	case err == nil:
	case errors.Is(err, hublink.ErrOffline):
		st.fail(errorf(http.StatusServiceUnavailable, "hub %s is offline (no control link)", c.Hub))
		return
	case errors.As(err, &remote):
		code := remote.Status
		if code < 400 || code > 599 {
			code = http.StatusBadGateway
		}
		st.fail(errorf(code, "hub %s: %s", c.Hub, remote.Message))
		return
	case ctx.Err() != nil:
		st.fail(errorf(http.StatusGatewayTimeout, "hub %s did not start the stream within %s", c.Hub, s.cfg.StartTimeout))
		return
	default:
		st.fail(errorf(http.StatusBadGateway, "hub %s: %v", c.Hub, err))
		return
	}
	select {
	case <-st.attachedC:
	case <-st.done:
	case <-ctx.Done():
		st.fail(errorf(http.StatusGatewayTimeout, "hub %s did not open the stream socket within %s", c.Hub, s.cfg.StartTimeout))
	}
}

func (st *stream) fail(err error) {
	st.log.Warn("live stream failed", "err", err)
	st.endWith(err)
}

// attach makes ws the stream's source; false if it has one or has ended.
func (st *stream) attach(ws *websocket.Conn) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended || st.hub != nil {
		return false
	}
	st.hub = ws
	st.camState = "connecting"
	close(st.attachedC)
	return true
}

func (st *stream) attached() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.hub != nil
}

// read consumes the hub's socket until it fails; then the stream ends.
func (st *stream) read(ws *websocket.Conn) {
	ws.SetReadLimit(proto.MaxFrame + proto.FrameHeaderSize)
	deadline := func() { _ = ws.SetReadDeadline(time.Now().Add(hubSilence)) }
	deadline()
	ws.SetPongHandler(func(string) error { deadline(); return nil })
	var writeMu sync.Mutex
	st.mu.Lock()
	st.hubWriteMu = &writeMu
	st.mu.Unlock()
	go func() {
		t := time.NewTicker(hubPing)
		defer t.Stop()
		for {
			select {
			case <-st.done:
				return
			case <-t.C:
				writeMu.Lock()
				err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
				writeMu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	for {
		kind, data, err := ws.ReadMessage()
		if err != nil {
			reason := "hub disconnected"
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure && ce.Text != "" {
				reason = "hub ended the stream: " + ce.Text
			}
			st.log.Info("hub stream socket closed", "err", err)
			st.endWith(errorf(http.StatusBadGateway, "%s", reason))
			return
		}
		deadline()
		if err := st.handle(kind, data); err != nil {
			st.log.Warn("hub sent a bad stream message; dropping the stream", "err", err)
			st.endWith(errorf(http.StatusBadGateway, "hub sent a bad stream: %v", err))
			return
		}
	}
}

func (st *stream) handle(kind int, data []byte) error {
	st.bytesIn.Add(uint64(len(data)))
	st.svc.metrics.bytesIn.Add(float64(len(data)))
	if kind == websocket.TextMessage {
		m, err := proto.DecodeStreamMessage(data)
		if err != nil {
			return err
		}
		switch m.Type {
		case proto.StreamTrack:
			t, err := newTrack(m)
			if err != nil {
				return err
			}
			st.mu.Lock()
			st.tracks++
			t.n = st.tracks
			st.track = t
			st.gop, st.gopBytes = nil, 0
			st.camState, st.camErr = "live", ""
			st.mu.Unlock()
			st.log.Info("camera track", "codec", t.codec, "width", t.width, "height", t.height)
		case proto.StreamState:
			st.mu.Lock()
			st.camState, st.camErr = m.State, m.Error
			viewers := st.viewerList()
			st.mu.Unlock()
			for _, v := range viewers {
				v.notify(m.State, m.Error)
			}
		}
		return nil
	}
	fr, err := proto.DecodeFrame(data)
	if err != nil {
		return err
	}
	st.mu.Lock()
	t := st.track
	st.mu.Unlock()
	if t == nil {
		return errors.New("frame before any track")
	}
	f := &frame{track: t, dts: fr.DTS, pts: fr.PTS, key: fr.RandomAccess, received: fr.Received,
		arrived: time.Now(), payload: fr.Payload}
	if t.codec == proto.CodecMJPEG {
		f.key = true
		f.nalus = [][]byte{fr.Payload}
	} else if f.nalus, err = proto.SplitAVCC(fr.Payload, nil); err != nil {
		return err
	}
	st.framesIn.Add(1)
	st.ingest(f)
	return nil
}

// ingest caches f in the GOP and hands it to every viewer.
func (st *stream) ingest(f *frame) {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := f.track
	if !t.based {
		t.based, t.base = true, f.dts
		st.lastDTS, st.lastDur = f.dts, 0
	}
	// A sample's duration is known only when the next one comes; a live
	// fragment cannot wait, so it takes the previous step (exact at a
	// constant frame rate; MSE bridges the small gaps otherwise).
	if d := f.dts - st.lastDTS; d > 0 && d < 90000 {
		st.lastDur = d
	}
	f.duration = st.lastDur
	if f.duration <= 0 {
		f.duration = 3600
	}
	st.lastDTS = f.dts
	f.seq = st.seq.Add(1)
	if f.key {
		st.gop, st.gopBytes = make([]*frame, 0, 64), 0
		st.readyOnce.Do(func() { close(st.ready) })
	}
	if st.gop != nil {
		if st.gopBytes+len(f.payload) > maxGOPBytes || len(st.gop) >= maxGOPFrames {
			st.gop, st.gopBytes = nil, 0 // too long a GOP: joiners wait for the next keyframe
		} else {
			st.gop = append(st.gop, f)
			st.gopBytes += len(f.payload)
		}
	}
	for v := range st.viewers {
		v.offer(f)
	}
}

// add registers v before it receives anything (it is connecting): the
// stream does not stop for lack of viewers meanwhile. v.st is set here,
// under st.mu, because a failing stream ends its viewers (reading v.st)
// from another goroutine as soon as v is registered.
func (st *stream) add(v *viewer) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return false
	}
	v.pending = true
	v.st = st
	st.viewers[v] = struct{}{}
	st.peak = max(st.peak, len(st.viewers))
	if st.idle != nil {
		st.idle.Stop()
		st.idle = nil
	}
	return true
}

// join starts delivery to v: the cached GOP first (so the first frame is a
// keyframe at once), then every new frame. Under one lock, so no frame is
// missed or sent twice.
func (st *stream) join(v *viewer) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return false
	}
	if _, ok := st.viewers[v]; !ok {
		return false
	}
	v.pending = false
	v.burst = st.gop
	v.needKey = len(st.gop) == 0
	return true
}

// leave removes v; the stream stops StopAfter after its last viewer left.
func (st *stream) leave(v *viewer) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.viewers[v]; !ok {
		return
	}
	delete(st.viewers, v)
	if len(st.viewers) == 0 && !st.ended {
		st.armIdleLocked()
	}
}

func (st *stream) armIdle() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.armIdleLocked()
}

func (st *stream) armIdleLocked() {
	if st.idle != nil {
		st.idle.Stop()
	}
	var timer *time.Timer
	timer = time.AfterFunc(st.svc.cfg.StopAfter, func() {
		st.mu.Lock()
		stale := st.idle != timer || len(st.viewers) > 0
		st.mu.Unlock()
		if !stale {
			st.log.Info("no viewers: stopping the stream", "after", st.svc.cfg.StopAfter)
			st.endWith(errorf(http.StatusGone, "no viewers"))
		}
	})
	st.idle = timer
}

func (st *stream) viewerList() []*viewer {
	out := make([]*viewer, 0, len(st.viewers))
	for v := range st.viewers {
		out = append(out, v)
	}
	return out
}

// waitReady waits for the first keyframe (the stream can be watched) and
// returns the current track.
func (st *stream) waitReady(ctx context.Context) (*trackInfo, error) {
	timer := time.NewTimer(st.svc.cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-st.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		st.mu.Lock()
		state, camErr := st.camState, st.camErr
		st.mu.Unlock()
		if camErr != "" {
			return nil, errorf(http.StatusBadGateway, "camera not streaming after %s: %s", st.svc.cfg.StartTimeout, camErr)
		}
		return nil, errorf(http.StatusGatewayTimeout, "no keyframe from the camera within %s (state %s)", st.svc.cfg.StartTimeout, state)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return nil, st.endErr
	}
	return st.track, nil
}

func (st *stream) end(reason string) { st.endWith(errorf(http.StatusGone, "%s", reason)) }

// endWith stops the stream: viewers are told why, the hub's socket closes
// (which stops the hub), the hub also gets live.stop, the record is closed.
func (st *stream) endWith(err error) {
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		return
	}
	st.ended, st.endErr = true, err
	viewers := st.viewerList()
	hub, writeMu := st.hub, st.hubWriteMu
	if st.idle != nil {
		st.idle.Stop()
	}
	peak := st.peak
	st.mu.Unlock()
	close(st.done)
	st.readyOnce.Do(func() { close(st.ready) })
	st.svc.removeStream(st)

	_, reason, _ := StatusOf(err)
	for _, v := range viewers {
		v.end("stream ended: " + reason)
	}
	if hub != nil {
		if writeMu != nil {
			writeMu.Lock()
		}
		_ = hub.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, truncate(reason, 100)), time.Now().Add(time.Second))
		if writeMu != nil {
			writeMu.Unlock()
		}
		_ = hub.Close()
	}
	if st.from == "link" && hub != nil {
		go st.svc.stopHub(st.claims.Hub, st.id)
	}
	s := st.svc
	s.metrics.streams.Dec()
	s.record(Record{ID: st.id, Kind: "stream", Channel: st.key.channel, Tenant: st.claims.Tenant, Hub: st.claims.Hub,
		Camera: st.claims.Camera, Quality: st.key.quality, Transport: st.from, Started: st.started, Ended: s.cfg.Now(),
		Bytes: st.bytesIn.Load(), Frames: st.framesIn.Load(), PeakViewers: peak, EndReason: reason})
	st.log.Info("live stream stopped", "reason", reason, "bytes_in", st.bytesIn.Load(), "frames_in", st.framesIn.Load(),
		"peak_viewers", peak, "duration", s.cfg.Now().Sub(st.started).Round(time.Millisecond))
}

func (st *stream) info() StreamInfo {
	st.mu.Lock()
	defer st.mu.Unlock()
	in := StreamInfo{ID: st.id, Quality: st.key.quality, State: st.camState, Error: st.camErr,
		Viewers: len(st.viewers), Started: st.started, BytesIn: st.bytesIn.Load(),
		FramesIn: st.framesIn.Load(), StartedFrom: st.from}
	if st.track != nil {
		in.Codec, in.Width, in.Height = st.track.codec, st.track.width, st.track.height
	}
	return in
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// ServeHub upgrades a hub's stream socket. hubID is the authenticated hub;
// the stream token in proto.HeaderStreamToken says which stream it carries.
// Refusals before the upgrade are *Error (JSON answers).
func (s *Service) ServeHub(w http.ResponseWriter, r *http.Request, hubID string) error {
	c, err := s.signer.Verify(r.Header.Get(proto.HeaderStreamToken), s.cfg.Now())
	switch {
	case errors.Is(err, token.ErrExpired):
		return errorf(http.StatusUnauthorized, "stream token expired")
	case err != nil:
		return errorf(http.StatusUnauthorized, "invalid or missing stream token (%s)", proto.HeaderStreamToken)
	case c.Relay != s.cfg.PublicURL:
		return errorf(http.StatusForbidden, "stream token was issued for another relay")
	case c.Hub != hubID:
		return errorf(http.StatusForbidden, "stream token is for another hub")
	}
	key := streamKey{c.Channel, c.Quality}
	s.mu.Lock()
	st := s.streams[key]
	switch {
	case s.closed:
		s.mu.Unlock()
		return errorf(http.StatusServiceUnavailable, "relay is shutting down")
	case st != nil && st.attached():
		s.mu.Unlock()
		return errorf(http.StatusConflict, "channel %s is streaming %s already", c.Channel, c.Quality)
	case st == nil && len(s.streams) >= s.cfg.MaxStreams:
		s.mu.Unlock()
		return errorf(http.StatusServiceUnavailable, "relay serves its maximum of %d live streams", s.cfg.MaxStreams)
	case st == nil:
		// A LAN client handed the hub a token: the stream starts from the hub.
		st = newStream(s, key, c, c.Session, "hub")
		s.streams[key] = st
	}
	s.mu.Unlock()

	ws, err := hubUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil // the upgrader answered
	}
	if !st.attach(ws) {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "stream already attached or ended"), time.Now().Add(time.Second))
		_ = ws.Close()
		return nil
	}
	st.log.Info("hub stream socket attached", "remote", r.RemoteAddr)
	st.read(ws)
	return nil
}

// Hubs are not browsers: there is no Origin to check.
var hubUpgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// String helps logs.
func (k streamKey) String() string { return fmt.Sprintf("%s/%s", k.channel, k.quality) }
