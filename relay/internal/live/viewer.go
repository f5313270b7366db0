package live

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zipnvr/zipnvr/pkg/token"
)

// viewerQueue bounds the frames waiting for one viewer (~5 s at 25 fps).
// A viewer that falls further behind drops frames up to the next keyframe
// (counted): one slow viewer never holds up the stream or the others.
const viewerQueue = 128

// transport is how a viewer is served. Only the viewer's run loop calls it.
type transport interface {
	// setTrack is called before the first frame of each track.
	setTrack(t *trackInfo) error
	// writeFrame sends f; in a catch-up burst (the cached GOP) i is f's
	// index in burst, else burst is nil. It returns the bytes sent.
	writeFrame(f *frame, i int, burst []*frame) (int, error)
	// state tells the viewer about the stream (camera reconnecting...).
	state(state, detail string)
	// finish ends the transport, telling the viewer why where it can.
	finish(reason string)
}

// viewer is one client watching a stream.
type viewer struct {
	svc     *Service
	st      *stream
	id      string
	kind    string // whep, mse, mjpeg
	claims  token.Claims
	started time.Time
	t       transport

	// Guarded by st.mu.
	pending bool // connecting: receives nothing yet
	needKey bool // dropped frames: wait for a keyframe
	burst   []*frame

	q      chan *frame
	notes  chan [2]string
	quit   chan struct{}
	once   sync.Once
	reason string
	ran    atomic.Bool

	bytes, frames, dropped atomic.Uint64
	firstSent              atomic.Bool
}

// newViewer admits a viewer of c's stream (starting the stream if needed)
// and registers it as connecting.
func (s *Service) newViewer(c token.Claims, kind, id string) (*viewer, error) {
	if err := s.admitViewer(); err != nil {
		return nil, err
	}
	v := &viewer{svc: s, id: id, kind: kind, claims: c, started: s.cfg.Now(),
		q: make(chan *frame, viewerQueue), notes: make(chan [2]string, 4), quit: make(chan struct{})}
	// A stream ending just now (its idle timer fired) is replaced.
	for range 3 {
		st, err := s.ensureStream(c)
		if err != nil {
			s.viewerGone()
			return nil, err
		}
		if st.add(v) { // sets v.st under the stream's lock: the stream may end v at once
			break
		}
	}
	if v.st == nil {
		s.viewerGone()
		return nil, errorf(http.StatusServiceUnavailable, "stream keeps ending; try again")
	}
	s.metrics.viewers.WithLabelValues(kind).Inc()
	s.metrics.sessions.WithLabelValues(kind).Inc()
	return v, nil
}

// ready waits until the stream can be watched and returns its track; on
// failure the viewer is ended.
func (v *viewer) ready(ctx context.Context) (*trackInfo, error) {
	t, err := v.st.waitReady(ctx)
	if err != nil {
		v.end(err.Error())
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, errorf(http.StatusGatewayTimeout, "gave up waiting for the stream")
		}
		return nil, err
	}
	return t, nil
}

// offer queues f; called with st.mu held, so it never blocks.
func (v *viewer) offer(f *frame) {
	if v.pending {
		return
	}
	if v.needKey && !f.key {
		v.dropped.Add(1)
		return
	}
	select {
	case v.q <- f:
		v.needKey = false
	default:
		v.needKey = true
		v.dropped.Add(1)
		v.svc.metrics.dropped.WithLabelValues(v.kind).Inc()
	}
}

// notify passes a camera state change on (dropped if the viewer is busy:
// the next one will come).
func (v *viewer) notify(state, detail string) {
	select {
	case v.notes <- [2]string{state, detail}:
	default:
	}
}

// run joins the stream and serves the viewer until it ends.
func (v *viewer) run() {
	v.ran.Store(true)
	if !v.st.join(v) {
		v.end("stream ended")
		v.t.finish(v.reason)
		return
	}
	v.svc.record(v.startRecord())
	var cur *trackInfo
	send := func(f *frame, i int, burst []*frame) bool {
		if f.track != cur {
			if err := v.t.setTrack(f.track); err != nil {
				v.end(err.Error())
				return false
			}
			cur = f.track
		}
		n, err := v.t.writeFrame(f, i, burst)
		if err != nil {
			v.end("send failed: " + err.Error())
			return false
		}
		v.bytes.Add(uint64(n))
		v.frames.Add(1)
		v.svc.metrics.bytesOut.WithLabelValues(v.kind).Add(float64(n))
		if !v.firstSent.Swap(true) {
			v.svc.metrics.startDelay.WithLabelValues(v.kind).Observe(v.svc.cfg.Now().Sub(v.started).Seconds())
		}
		return true
	}
	burst := v.burst
	v.burst = nil
	for i, f := range burst {
		if !send(f, i, burst) {
			break
		}
	}
	for {
		select {
		case <-v.quit:
			v.t.finish(v.reason)
			return
		case n := <-v.notes:
			v.t.state(n[0], n[1])
		case f := <-v.q:
			send(f, 0, nil)
		}
	}
}

// end stops the viewer (once): it leaves the stream, and its run loop
// finishes the transport. Safe from any goroutine.
func (v *viewer) end(reason string) {
	v.once.Do(func() {
		v.reason = reason
		close(v.quit)
		if v.st != nil {
			v.st.leave(v)
		}
		v.svc.viewerGone()
		v.svc.metrics.viewers.WithLabelValues(v.kind).Dec()
		if v.ran.Load() {
			v.svc.record(v.endRecord())
		}
		v.svc.log.Info("viewer left", "session", v.id, "channel", v.claims.Channel, "transport", v.kind,
			"reason", reason, "bytes", v.bytes.Load(), "frames", v.frames.Load(), "dropped", v.dropped.Load())
	})
}

func (v *viewer) startRecord() Record {
	return Record{ID: v.id, Kind: "viewer", Channel: v.claims.Channel, Tenant: v.claims.Tenant, Hub: v.claims.Hub,
		Camera: v.claims.Camera, Quality: v.claims.Quality, Transport: v.kind, Stream: v.st.id, Started: v.started}
}

func (v *viewer) endRecord() Record {
	r := v.startRecord()
	r.Ended, r.Bytes, r.Frames, r.Dropped, r.EndReason = v.svc.cfg.Now(), v.bytes.Load(), v.frames.Load(), v.dropped.Load(), v.reason
	return r
}
