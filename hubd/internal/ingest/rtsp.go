package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/pkg/camera"
)

// RTSPConfig configures an RTSP source.
type RTSPConfig struct {
	// URL with credentials as userinfo (gortsplib answers Basic and Digest).
	URL       *url.URL
	Transport camera.Transport
	// ReadTimeout ends a session that receives nothing for this long, so a
	// camera that stalls is reconnected instead of recording nothing silently.
	ReadTimeout time.Duration
	// ReadBatchBytes, when > 0, makes the kernel wake hubd only once this
	// many bytes are queued on an RTSP/TCP connection (SO_RCVLOWAT), set
	// after PLAY. A camera sends ~180 packets/s at 2 Mbit/s; waking once per
	// packet costs more CPU than the remuxing itself. 8 KiB is ~30 ms of
	// such a stream: nothing for recording.
	ReadBatchBytes int
	Logger         *slog.Logger
}

// RTSP pulls H.264 or H.265 over RTSP.
type RTSP struct {
	cfg RTSPConfig
	log *slog.Logger
}

// NewRTSP returns an RTSP source.
func NewRTSP(cfg RTSPConfig) *RTSP {
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &RTSP{cfg: cfg, log: cfg.Logger}
}

// Run implements Source.
func (s *RTSP) Run(ctx context.Context, sink Sink) error {
	u, err := base.ParseURL(s.cfg.URL.String())
	if err != nil {
		return fmt.Errorf("parse RTSP URL %s: %w", camera.LogURL(s.cfg.URL), err)
	}
	c := &gortsplib.Client{
		Scheme:      u.Scheme,
		Host:        u.Host,
		ReadTimeout: s.cfg.ReadTimeout,
		// Default 256-slot write queue is for publishing; we only send RTCP.
		WriteQueueSize: 64,
	}
	switch s.cfg.Transport {
	case camera.TransportTCP:
		p := gortsplib.ProtocolTCP
		c.Protocol = &p
	case camera.TransportUDP:
		p := gortsplib.ProtocolUDP
		c.Protocol = &p
	}
	// Keep the TCP connection: once playing, it is told to wake us per
	// batch of packets instead of per packet (see batchReads).
	var tcpConn *net.TCPConn
	c.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, address)
		if tc, ok := conn.(*net.TCPConn); ok {
			tcpConn = tc
		}
		return conn, err
	}
	var rec *rtspReceiver
	c.OnPacketsLost = func(lost uint64) {
		if rec != nil {
			rec.lost(lost)
		}
	}
	c.OnDecodeError = func(err error) { s.log.Debug("RTSP decode error", "err", err) }
	if err := c.Start(); err != nil {
		return fmt.Errorf("connect %s: %w", u.Host, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()

	desc, _, err := c.Describe(u)
	if err != nil {
		return classify("DESCRIBE", err)
	}
	rec, medi, forma, err := newReceiver(desc, sink, s.log)
	if err != nil {
		return err
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return classify("SETUP", err)
	}
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		pts, ok := c.PacketPTS(medi, pkt)
		if !ok {
			return
		}
		rec.packet(pkt, pts)
	})
	if _, err := c.Play(nil); err != nil {
		return classify("PLAY", err)
	}
	if tcpConn != nil && s.cfg.ReadBatchBytes > 0 {
		batchReads(tcpConn, s.cfg.ReadBatchBytes, s.log)
	}
	transport := "?"
	if t := c.Transport(); t != nil && t.Session != nil {
		transport = t.Session.Protocol.String()
	}
	s.log.Info("camera connected", "url", camera.LogURL(s.cfg.URL), "codec", rec.track.Codec, "transport", transport)
	err = c.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("RTSP session ended: %w", err)
}

// batchReads sets SO_RCVLOWAT. Go's netpoller is edge-triggered and its
// non-blocking reads still return whatever is queued, so the only effect is
// fewer wake-ups. Failing to set it costs CPU, not correctness.
func batchReads(c *net.TCPConn, n int, log *slog.Logger) {
	raw, err := c.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
		})
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		log.Debug("cannot batch RTSP reads (SO_RCVLOWAT)", "err", err)
	}
}

func classify(step string, err error) error {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) && (bad.Code == base.StatusUnauthorized || bad.Code == base.StatusForbidden) {
		return fmt.Errorf("%s: %w (%d %s)", step, ErrAuth, bad.Code, bad.Message)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// dtsExtractor is mediacommon's h264/h265 DTSExtractor.
type dtsExtractor interface {
	Extract(au [][]byte, pts int64) (int64, error)
}

// rtspReceiver turns RTP packets of one video format into frames.
type rtspReceiver struct {
	track  media.Track
	sink   Sink
	log    *slog.Logger
	decode func(*rtp.Packet) ([][]byte, error)
	check  func([][]byte) error
	random func([][]byte) bool
	dts    dtsExtractor
	newDTS func() dtsExtractor
	// params are the latest parameter sets (SDP, then in-band); paramType
	// maps a NAL unit to its slot in params, or -1.
	params    [][]byte
	paramType func(nalu []byte) int
	needKey   bool
	dropped   uint64
	warned    time.Time
}

func newReceiver(desc *description.Session, sink Sink, log *slog.Logger) (*rtspReceiver, *description.Media, format.Format, error) {
	r := &rtspReceiver{sink: sink, log: log, needKey: true}
	var h264f *format.H264
	var h265f *format.H265
	if medi := desc.FindFormat(&h264f); medi != nil {
		dec, err := h264f.CreateDecoder()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("H.264 decoder: %w", err)
		}
		r.track = media.Track{Codec: media.H264, SPS: h264f.SPS, PPS: h264f.PPS}
		r.params = [][]byte{h264f.SPS, h264f.PPS}
		r.paramType = func(n []byte) int {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				return 0
			case h264.NALUTypePPS:
				return 1
			}
			return -1
		}
		r.decode, r.check, r.random = dec.Decode, CheckH264, h264.IsRandomAccess
		r.newDTS = func() dtsExtractor {
			d := &h264.DTSExtractor{}
			d.Initialize()
			return d
		}
		sink.Track(r.track)
		return r, medi, h264f, nil
	}
	if medi := desc.FindFormat(&h265f); medi != nil {
		dec, err := h265f.CreateDecoder()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("H.265 decoder: %w", err)
		}
		r.track = media.Track{Codec: media.H265, VPS: h265f.VPS, SPS: h265f.SPS, PPS: h265f.PPS}
		r.params = [][]byte{h265f.VPS, h265f.SPS, h265f.PPS}
		r.paramType = func(n []byte) int {
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				return 0
			case h265.NALUType_SPS_NUT:
				return 1
			case h265.NALUType_PPS_NUT:
				return 2
			}
			return -1
		}
		r.decode, r.check, r.random = dec.Decode, CheckH265, h265.IsRandomAccess
		r.newDTS = func() dtsExtractor {
			d := &h265.DTSExtractor{}
			d.Initialize()
			return d
		}
		sink.Track(r.track)
		return r, medi, h265f, nil
	}
	var codecs []string
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			codecs = append(codecs, f.RTPMap())
		}
	}
	return nil, nil, nil, fmt.Errorf("%w: the stream offers %v", ErrUnsupported, codecs)
}

// lost is called when RTP sequence numbers skip: the next frames reference
// data we never got, so we wait for a keyframe rather than record garbage.
func (r *rtspReceiver) lost(n uint64) {
	r.needKey = true
	r.log.Debug("RTP packets lost: waiting for the next keyframe", "lost", n)
}

func (r *rtspReceiver) packet(pkt *rtp.Packet, pts int64) {
	au, err := r.decode(pkt)
	if err != nil {
		return // more packets needed, or a fragment without its start (counted by gortsplib)
	}
	if err := r.check(au); err != nil {
		r.needKey = true
		r.drop("corrupt access unit: dropping until the next keyframe", err)
		return
	}
	random := r.random(au)
	if random {
		au = r.withParams(au)
	}
	if r.needKey && !random {
		r.dropped++
		return
	}
	if random && (r.dts == nil || r.needKey) {
		r.dts = r.newDTS()
	}
	r.needKey = false
	dts, err := r.dts.Extract(au, pts)
	if err != nil {
		r.needKey = true
		r.drop("cannot derive DTS: dropping until the next keyframe", err)
		return
	}
	nalus, avcc := copyAVCC(au)
	r.sink.Frame(&media.Frame{DTS: dts, PTS: pts, AU: nalus, AVCC: avcc, RandomAccess: random, Received: time.Now()})
}

// withParams makes a keyframe self-describing: many cameras (and ffmpeg's
// RTSP output) send parameter sets only in the SDP, but the DTS extractor,
// the segmenter and anyone joining segments later need them in-band.
func (r *rtspReceiver) withParams(au [][]byte) [][]byte {
	have := make([]bool, len(r.params))
	for _, n := range au {
		if i := r.paramType(n); i >= 0 {
			if !bytes.Equal(r.params[i], n) {
				// n points into a packet buffer gortsplib reuses: keep a copy.
				r.params[i] = append([]byte(nil), n...)
			}
			have[i] = true
		}
	}
	var missing [][]byte
	for i, p := range r.params {
		if !have[i] && p != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return au
	}
	return append(missing, au...)
}

// drop logs at most every 10 s so a broken camera cannot flood the log.
func (r *rtspReceiver) drop(msg string, err error) {
	r.dropped++
	if now := time.Now(); now.Sub(r.warned) > 10*time.Second {
		r.warned = now
		r.log.Warn(msg, "err", err, "dropped_total", r.dropped)
	}
}
