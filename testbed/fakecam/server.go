// Package fakecam is a gortsplib RTSP server that plays a pre-encoded H.264 (or H.265) elementary stream in a loop as live cameras,
// with fault injection (timestamp jumps, stalls, encoder restarts, corrupt frames, missing keyframes).
package fakecam

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/pion/rtp"
)

// Options configures Start.
type Options struct {
	// Clip is played by every path. Nil means EncodeClip with default options.
	Clip *Clip
	// Paths lists one camera per entry, e.g. "cam1" serves rtsp://ADDR/cam1.
	Paths []string
	// RTSPAddress is where to listen; "127.0.0.1:0" (the default) picks a free port.
	RTSPAddress string
	// UDP also offers the UDP transport (on free 127.0.0.1 ports); TCP is always offered.
	UDP bool
	// User and Pass, when User is set, are required from readers (Basic or Digest).
	User, Pass string
	// StartMidGOP makes a new reader start at the path's current loop position
	// instead of at a keyframe, like cameras that don't force an IDR for new
	// clients: the reader must then wait for the next keyframe itself.
	StartMidGOP bool
}

// Server serves Options.Paths as live cameras. Its fault methods apply to
// one path from the next frame on, to every reader of that path.
type Server struct {
	o      Options
	clip   *Clip
	frames []frame
	srv    *gortsplib.Server
	paths  map[string]*path

	mu       sync.Mutex
	sessions map[*gortsplib.ServerSession]*reader

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// frame is one access unit of the clip, packetised once at Start so that
// the per-frame cost for each reader is only writing packets.
type frame struct {
	au       [][]byte
	keyframe bool
	payloads [][]byte // RTP payloads; the last one gets the marker bit
}

const payloadType = 96

// Start packetises the clip and starts serving.
func Start(o Options) (*Server, error) {
	if len(o.Paths) == 0 {
		return nil, errors.New("fakecam: no paths")
	}
	if o.RTSPAddress == "" {
		o.RTSPAddress = "127.0.0.1:0"
	}
	if o.Clip == nil {
		c, err := EncodeClip(context.Background(), ClipOptions{})
		if err != nil {
			return nil, err
		}
		o.Clip = c
	}
	c := o.Clip
	if c.Codec != "h264" && c.Codec != "h265" {
		return nil, fmt.Errorf("fakecam: unsupported codec %q", c.Codec)
	}
	if c.FPS <= 0 || len(c.AUs) == 0 || !isKeyframe(c.Codec, c.AUs[0]) {
		return nil, errors.New("fakecam: clip needs FPS > 0 and a keyframe as first access unit")
	}

	s := &Server{
		o:        o,
		clip:     c,
		sessions: make(map[*gortsplib.ServerSession]*reader),
	}

	enc, err := s.newEncoder()
	if err != nil {
		return nil, err
	}
	s.frames = make([]frame, len(c.AUs))
	for i, au := range c.AUs {
		pkts, err := enc.Encode(au)
		if err != nil {
			return nil, fmt.Errorf("fakecam: packetising access unit %d: %w", i, err)
		}
		f := frame{au: au, keyframe: isKeyframe(c.Codec, au), payloads: make([][]byte, len(pkts))}
		for j, p := range pkts {
			f.payloads[j] = p.Payload
		}
		s.frames[i] = f
	}

	if err := s.startRTSP(); err != nil {
		return nil, err
	}

	paths := make(map[string]*path, len(o.Paths))
	for _, name := range o.Paths {
		name = strings.Trim(name, "/")
		if _, dup := paths[name]; dup || name == "" {
			s.srv.Close()
			return nil, fmt.Errorf("fakecam: empty or duplicate path %q", name)
		}
		p, err := newPath(s, name)
		if err != nil {
			s.srv.Close()
			return nil, err
		}
		paths[name] = p
	}
	// A client may already be knocking (fixed port, polling script): the
	// handlers look paths up under s.mu.
	s.mu.Lock()
	s.paths = paths
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, p := range paths {
		s.wg.Add(1)
		go p.run(ctx)
	}
	return s, nil
}

// startRTSP starts the gortsplib server. gortsplib needs fixed, consecutive
// even/odd UDP ports, so free ones are found by probing and the start is
// retried if another process grabs them in between.
func (s *Server) startRTSP() error {
	h := &handler{s: s}
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		srv := &gortsplib.Server{
			Handler:     h,
			RTSPAddress: s.o.RTSPAddress,
		}
		if s.o.UDP {
			port, err := freeUDPPair()
			if err != nil {
				return err
			}
			srv.UDPRTPAddress = fmt.Sprintf("127.0.0.1:%d", port)
			srv.UDPRTCPAddress = fmt.Sprintf("127.0.0.1:%d", port+1)
		}
		// Published before Start: handlers only run once connections
		// arrive, which Start makes possible.
		s.srv = srv
		err := srv.Start()
		if err == nil {
			return nil
		}
		lastErr = err
		var oe *net.OpError
		if !errors.As(err, &oe) || !strings.HasPrefix(oe.Net, "udp") || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	s.srv = nil
	return fmt.Errorf("fakecam: %w", lastErr)
}

func freeUDPPair() (int, error) {
	for i := 0; i < 50; i++ {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		if port%2 == 1 {
			port--
		}
		if port < 1024 || port+1 > 65535 {
			continue
		}
		// Check that both ports are free right now; Start may still race.
		a, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		b, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return port, nil
	}
	return 0, errors.New("fakecam: no free UDP port pair on 127.0.0.1")
}

func (s *Server) newFormat() format.Format {
	au := s.clip.AUs[0]
	if s.clip.Codec == "h265" {
		return &format.H265{
			PayloadTyp: payloadType,
			VPS:        findParam("h265", au, 32),
			SPS:        findParam("h265", au, 33),
			PPS:        findParam("h265", au, 34),
		}
	}
	return &format.H264{
		PayloadTyp:        payloadType,
		PacketizationMode: 1,
		SPS:               findParam("h264", au, 7),
		PPS:               findParam("h264", au, 8),
	}
}

type rtpEncoder interface {
	Encode([][]byte) ([]*rtp.Packet, error)
}

func (s *Server) newEncoder() (rtpEncoder, error) {
	switch f := s.newFormat().(type) {
	case *format.H265:
		return f.CreateEncoder()
	case *format.H264:
		return f.CreateEncoder()
	}
	panic("unreachable")
}

// newStream builds a ServerStream with its own description, so streams never
// share mutable format state.
func (s *Server) newStream() (*gortsplib.ServerStream, error) {
	st := &gortsplib.ServerStream{
		Server: s.srv,
		Desc: &description.Session{
			Title: "fakecam",
			Medias: []*description.Media{{
				Type:    description.MediaTypeVideo,
				Formats: []format.Format{s.newFormat()},
			}},
		},
	}
	if err := st.Initialize(); err != nil {
		return nil, err
	}
	return st, nil
}

// Addr returns the RTSP listen address, "127.0.0.1:PORT".
func (s *Server) Addr() string {
	return s.srv.NetListener().Addr().String()
}

// URL returns the RTSP URL of path, without credentials.
func (s *Server) URL(path string) string {
	return "rtsp://" + s.Addr() + "/" + strings.Trim(path, "/")
}

// Close disconnects every reader and stops serving. It is safe to call twice.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		if s.srv != nil {
			s.srv.Close()
		}
		for _, p := range s.paths {
			p.describe.Close()
		}
	})
}

func (s *Server) lookup(name string) *path {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[strings.Trim(name, "/")]
}

// path panics on unknown names: they are programming errors in a test.
func (s *Server) path(name string) *path {
	p := s.lookup(name)
	if p == nil {
		panic(fmt.Sprintf("fakecam: unknown path %q", name))
	}
	return p
}

// JumpTimestamps moves the path's RTP timestamps by d (backwards if d is
// negative) from the next frame on, while frames keep their real-time pace:
// the in-band discontinuity of a camera whose clock was set.
func (s *Server) JumpTimestamps(path string, d time.Duration) {
	p := s.path(path)
	p.mu.Lock()
	p.pending.jump += d
	p.mu.Unlock()
}

// Pause stops all RTP of the path for d from the next frame on. Afterwards
// the clip continues where it stopped (a stalled encoder, so the stream
// stays decodable) and timestamps follow the wall clock, i.e. they jump by d.
func (s *Server) Pause(path string, d time.Duration) {
	p := s.path(path)
	p.mu.Lock()
	p.pending.pause = max(p.pending.pause, d)
	p.mu.Unlock()
}

// Restart simulates the encoder of a rebooting camera on existing
// connections: a new random timestamp base and sequence base, and the clip
// starts over at its first keyframe. The SSRC cannot change in-band: gortsplib
// stamps every packet with the SSRC it announced in SETUP. A new connection
// gets a new SSRC anyway; Disconnect drops connections as a real reboot does.
func (s *Server) Restart(path string) {
	p := s.path(path)
	p.mu.Lock()
	p.pending.restart = true
	p.mu.Unlock()
}

// Disconnect closes every current session of the path, as a camera reboot
// or a session limit does; clients may reconnect at once.
func (s *Server) Disconnect(path string) {
	p := s.path(path)
	p.mu.Lock()
	var sessions []*gortsplib.ServerSession
	for _, r := range p.readers {
		sessions = append(sessions, r.session)
	}
	p.mu.Unlock()
	// Session.Close runs OnSessionClose, which takes p.mu.
	for _, ss := range sessions {
		ss.Close()
	}
}

// CorruptNext overwrites part of the slice data (not the NAL headers) of the
// path's next n access units with random bytes, so they parse as the right
// kind of frame but decode to garbage or errors. Frames that no reader
// receives don't count.
func (s *Server) CorruptNext(path string, n int) {
	p := s.path(path)
	p.mu.Lock()
	p.pending.corrupt += n
	p.mu.Unlock()
}

// DropKeyframes withholds every keyframe access unit of the path for d (the
// other frames still flow), so readers get a stream they can't start
// decoding.
func (s *Server) DropKeyframes(path string, d time.Duration) {
	p := s.path(path)
	p.mu.Lock()
	p.pending.drop = max(p.pending.drop, d)
	p.mu.Unlock()
}

// Stats returns the RTP packets and bytes (RTP header included) sent on the
// path so far, summed over its readers.
func (s *Server) Stats(path string) (packets, bytes uint64) {
	p := s.path(path)
	return p.packets.Load(), p.bytes.Load()
}

// handler keeps gortsplib's callbacks out of Server's exported API.
type handler struct {
	s *Server
}

func (h *handler) authorized(c *gortsplib.ServerConn, req *base.Request) bool {
	o := h.s.o
	return o.User == "" || c.VerifyCredentials(req, o.User, o.Pass)
}

var errUnauthorized = liberrors.ErrServerAuth{}

// OnDescribe answers from a per-path stream that nobody plays: readers get a
// stream of their own at SETUP (see reader).
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, errUnauthorized
	}
	p := h.s.lookup(ctx.Path)
	if p == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, p.describe, nil
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, errUnauthorized
	}
	if ctx.Session.State() != gortsplib.ServerSessionStateInitial &&
		ctx.Session.State() != gortsplib.ServerSessionStatePrePlay {
		return &base.Response{StatusCode: base.StatusMethodNotAllowed}, nil, nil
	}
	p := h.s.lookup(ctx.Path)
	if p == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}

	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if r := h.s.sessions[ctx.Session]; r != nil {
		if r.path != p {
			return &base.Response{StatusCode: base.StatusBadRequest}, nil, nil
		}
		return &base.Response{StatusCode: base.StatusOK}, r.stream, nil
	}
	st, err := h.s.newStream()
	if err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil, err
	}
	h.s.sessions[ctx.Session] = newReader(p, ctx.Session, st)
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	h.s.mu.Lock()
	r := h.s.sessions[ctx.Session]
	h.s.mu.Unlock()
	if r == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	r.path.add(r)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.s.mu.Lock()
	r := h.s.sessions[ctx.Session]
	delete(h.s.sessions, ctx.Session)
	h.s.mu.Unlock()
	if r != nil {
		r.path.remove(r)
		r.stream.Close()
	}
}
