package fakecam

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtp"
)

// faults are requested by the Server methods and taken over by the path
// goroutine at the next frame.
type faults struct {
	jump    time.Duration
	pause   time.Duration
	drop    time.Duration
	corrupt int
	restart bool
}

// path is one camera. Its goroutine owns the clock, the fault state and
// every reader's playback state; the mutex only guards the hand-over of
// readers and faults.
type path struct {
	s        *Server
	name     string
	describe *gortsplib.ServerStream

	mu      sync.Mutex
	readers []*reader
	pending faults

	packets atomic.Uint64
	bytes   atomic.Uint64

	// Owned by run.
	tsBase      uint32
	jumpTicks   int64 // accumulated JumpTimestamps, in 90 kHz ticks
	pauseUntil  time.Time
	dropUntil   time.Time
	corruptLeft int
	pos         int // where a reader that joins mid-GOP starts
	enc         rtpEncoder
	pkt         rtp.Packet
	snapshot    []*reader
}

// reader is one playing session. gortsplib serves each its own ServerStream
// so that each can start at a keyframe of its own without making other
// readers of the path jump, and so the goroutine can tell from the stream's
// counters when the session is really receiving.
type reader struct {
	path    *path
	session *gortsplib.ServerSession
	stream  *gortsplib.ServerStream
	media   *description.Media

	// Set by OnPlay under path.mu (joined), then owned by run.
	joined  bool
	pos     int
	seq     uint16
	started bool
}

func newReader(p *path, ss *gortsplib.ServerSession, st *gortsplib.ServerStream) *reader {
	return &reader{path: p, session: ss, stream: st, media: st.Desc.Medias[0], seq: uint16(rand.Uint32())}
}

func newPath(s *Server, name string) (*path, error) {
	st, err := s.newStream()
	if err != nil {
		return nil, err
	}
	enc, err := s.newEncoder()
	if err != nil {
		return nil, err
	}
	return &path{s: s, name: name, describe: st, tsBase: rand.Uint32(), enc: enc}, nil
}

func (p *path) add(r *reader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.joined {
		return // a second PLAY on the same session
	}
	r.joined = true
	p.readers = append(p.readers, r)
}

func (p *path) remove(r *reader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.readers {
		if x == r {
			p.readers = append(p.readers[:i], p.readers[i+1:]...)
			return
		}
	}
}

// run sends one frame per 1/FPS. Frame times are computed from the start
// rather than by sleeping a fixed interval, so the rate doesn't drift.
func (p *path) run(ctx context.Context) {
	defer p.s.wg.Done()
	fps := time.Duration(p.s.clip.FPS)
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	for tick := uint64(0); ; tick++ {
		due := start.Add(time.Duration(tick) * time.Second / fps)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		} else if -wait > time.Second {
			// Starved of CPU (an overloaded benchmark host): skip the
			// missed frames instead of bursting them, as a live camera
			// would, with timestamps still on the wall clock.
			tick = uint64(time.Since(start) * fps / time.Second)
			due = start.Add(time.Duration(tick) * time.Second / fps)
		}
		p.frame(tick, due)
	}
}

func (p *path) frame(tick uint64, due time.Time) {
	p.mu.Lock()
	f := p.pending
	p.pending = faults{}
	p.snapshot = append(p.snapshot[:0], p.readers...)
	p.mu.Unlock()
	readers := p.snapshot

	if f.restart {
		p.tsBase = rand.Uint32()
		p.jumpTicks = 0
		p.pos = 0
		for _, r := range readers {
			r.pos = 0
			r.seq = uint16(rand.Uint32())
		}
	}
	p.jumpTicks += int64(f.jump) * 90000 / int64(time.Second)
	if f.pause > 0 {
		p.pauseUntil = due.Add(f.pause)
	}
	if f.drop > 0 {
		p.dropUntil = due.Add(f.drop)
	}
	p.corruptLeft += f.corrupt

	// Timestamps derive from the tick, not from frames sent, so that they
	// keep following the wall clock across pauses and skipped frames.
	ts := uint32(int64(p.tsBase) + int64(tick*90000/uint64(p.s.clip.FPS)) + p.jumpTicks)

	if due.Before(p.pauseUntil) {
		clear(p.snapshot)
		return
	}
	dropping := due.Before(p.dropUntil)
	corrupt := p.corruptLeft > 0
	delivered := false
	n := len(p.s.frames)

	for _, r := range readers {
		if !r.started && p.s.o.StartMidGOP {
			r.pos = p.pos
		}
		fr := &p.s.frames[r.pos]
		if dropping && fr.keyframe {
			r.pos = (r.pos + 1) % n
			continue
		}
		payloads := fr.payloads
		if corrupt {
			payloads = p.corrupted(fr.au)
		}
		if p.send(r, payloads, ts, due) {
			delivered = true
			r.pos = (r.pos + 1) % n
		}
	}
	if corrupt && delivered {
		p.corruptLeft--
	}
	p.pos = (p.pos + 1) % n
	clear(p.snapshot) // don't pin closed sessions until the next frame
}

// send writes one access unit to r and reports whether r received it.
func (p *path) send(r *reader, payloads [][]byte, ts uint32, ntp time.Time) bool {
	var before uint64
	if !r.started {
		// OnPlay runs just before gortsplib activates the session, so the
		// first writes may reach nobody. The stream's counters only count
		// delivered packets: retry the same access unit until one arrives
		// whole, so that a reader's first frame is the one it should start at.
		before = r.stream.Stats().OutboundRTPPackets
	}
	pkt := &p.pkt
	var size uint64
	for i, pl := range payloads {
		*pkt = rtp.Packet{
			Header: rtp.Header{
				Version:        2,
				PayloadType:    payloadType,
				SequenceNumber: r.seq,
				Timestamp:      ts,
				Marker:         i == len(payloads)-1,
			},
			Payload: pl,
		}
		r.seq++
		size += uint64(pkt.MarshalSize())
		// Errors mean the session is going away (closed stream, full
		// queue); OnSessionClose will remove the reader.
		_ = r.stream.WritePacketRTPWithNTP(r.media, pkt, ntp)
	}
	if !r.started {
		if r.stream.Stats().OutboundRTPPackets-before < uint64(len(payloads)) {
			return false
		}
		r.started = true
	}
	p.packets.Add(uint64(len(payloads)))
	p.bytes.Add(size)
	return true
}

// corrupted packetises a copy of au with part of every slice's payload
// replaced by random bytes. NAL headers and the first bytes of the slice
// header survive, so receivers still see a frame of the right type.
func (p *path) corrupted(au [][]byte) [][]byte {
	codec := p.s.clip.Codec
	cp := make([][]byte, len(au))
	for i, n := range au {
		n = append([]byte(nil), n...)
		if isSlice(codec, n) {
			keep := naluHeaderLen(codec) + 2
			if len(n) > keep {
				body := n[keep:]
				off := rand.IntN(len(body))
				run := min(len(body)-off, max(1, len(body)/4))
				for j := off; j < off+run; j++ {
					body[j] = byte(rand.Uint32())
				}
			}
		}
		cp[i] = n
	}
	pkts, err := p.enc.Encode(cp)
	if err != nil {
		return nil
	}
	out := make([][]byte, len(pkts))
	for i, pk := range pkts {
		out[i] = pk.Payload
	}
	return out
}
