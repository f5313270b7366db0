package live

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/token"
)

// burstTick spaces the RTP timestamps of the catch-up GOP: the whole GOP
// is sent at once and stamped as if it were one instant just before the
// live edge, so the browser decodes through it at once and shows the
// newest picture, instead of replaying up to a GOP of old video and
// staying that far behind live.
const burstTick = 1

// burstRate bounds how fast the catch-up GOP goes out, in bytes per
// second. All at once, a GOP late in a 2 s cycle (~500 KB at 2 Mbit/s)
// overflows a receiver's UDP buffer (Chromium's is ~200 KB) whenever its
// network thread is slow to read, and a lost keyframe packet can cost the
// viewer a wait for the camera's next keyframe, as relay makes none. At
// 40 Mbit/s such a GOP takes ~100 ms; the keyframe, first, is not held.
const burstRate = 5 << 20

// h264Profiles are the H.264 profile-level-ids relay negotiates
// (packetization-mode 1); browsers decode every level under any of them.
var h264Profiles = []string{"42e01f", "42001f", "4d001f", "64001f"}

type rtcAPI struct {
	api *webrtc.API
	mux ice.UDPMux
	ice []webrtc.ICEServer
}

func newRTCAPI(cfg ICE, log *slog.Logger) (*rtcAPI, error) {
	me := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	for i, p := range h264Profiles {
		c := webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(102 + 2*i), RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: fb,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + p}}
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	// Only what a sender needs: NACK answers (lost packets are resent from
	// a short history) and sender reports. No bandwidth estimation: relay
	// cannot change a camera's bitrate anyway.
	ir := &interceptor.Registry{}
	resp, err := nack.NewResponderInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(resp)
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(sr)

	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(cfg.Loopback)
	// A viewer that vanishes (tab closed without DELETE) is noticed in
	// ~10 s instead of pion's default 30.
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	keep := func(name string) bool { return len(cfg.Interfaces) == 0 || slices.Contains(cfg.Interfaces, name) }
	se.SetInterfaceFilter(keep)
	r := &rtcAPI{}
	if cfg.UDPPort > 0 {
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithInterfaceFilter(keep)}
		if cfg.Loopback {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		mux, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
		if err != nil {
			return nil, fmt.Errorf("ice.udp_port %d: %w", cfg.UDPPort, err)
		}
		se.SetICEUDPMux(mux)
		r.mux = mux
	}
	if len(cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{External: cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace}); err != nil {
			return nil, fmt.Errorf("ice.public_ip: %w", err)
		}
	}
	for _, s := range cfg.Servers {
		r.ice = append(r.ice, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	r.api = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	log.Debug("WebRTC ready", "udp_port", cfg.UDPPort, "public_ips", cfg.PublicIPs, "loopback", cfg.Loopback)
	return r, nil
}

func (r *rtcAPI) close() {
	if r.mux != nil {
		_ = r.mux.Close()
	}
}

// WHEP answers a WHEP offer (RFC 9725) for the stream c grants: it waits
// for the stream (started on demand), then returns the SDP answer with
// every relay candidate in it (no trickle) and the session id for the
// resource URL. One token is one session: a second offer with the same
// token replaces the first connection.
func (s *Service) WHEP(ctx context.Context, c token.Claims, offer string) (answer, session string, err error) {
	if c.Quality == "mjpeg" {
		return "", "", errorf(http.StatusBadRequest, "mjpeg quality is not WebRTC: GET /api/v1/channels/%s/live/mjpeg?token=... (an <img> shows it)", c.Channel)
	}
	if !strings.Contains(offer, "m=video") {
		return "", "", errorf(http.StatusBadRequest, "SDP offer has no video section")
	}
	v, err := s.newViewer(c, "whep", c.Session)
	if err != nil {
		return "", "", err
	}
	t, err := v.ready(ctx)
	if err != nil {
		return "", "", err
	}
	if t.codec != proto.CodecH264 {
		v.end("codec " + t.codec + " is not sent over WebRTC")
		return "", "", errorf(http.StatusUnsupportedMediaType,
			"camera streams %s, which browsers do not decode over WebRTC: use the fMP4 WebSocket (GET /api/v1/channels/%s/live/ws, Media Source Extensions) or an H.264 quality", codecLabel(t.codec), c.Channel)
	}
	out, answer, err := s.rtc.answer(ctx, offer, t, v)
	if err != nil {
		v.end("negotiation failed")
		return "", "", err
	}
	v.t = out
	s.mu.Lock()
	if s.whep == nil {
		s.whep = map[string]*viewer{}
	}
	old := s.whep[v.id]
	s.whep[v.id] = v
	s.mu.Unlock()
	if old != nil {
		old.end("replaced by a new connection of the same session")
	}
	go func() {
		defer func() {
			s.mu.Lock()
			if s.whep[v.id] == v {
				delete(s.whep, v.id)
			}
			s.mu.Unlock()
		}()
		select {
		case <-out.connected:
			v.run()
		case <-v.quit:
			out.finish(v.reason)
		case <-time.After(s.cfg.StartTimeout):
			v.end("WebRTC did not connect within " + s.cfg.StartTimeout.String())
			out.finish(v.reason)
		}
	}()
	return answer, v.id, nil
}

// EndWHEP ends a WHEP session (DELETE on its resource): c must be the
// session's own token.
func (s *Service) EndWHEP(c token.Claims, session string) error {
	s.mu.Lock()
	v := s.whep[session]
	s.mu.Unlock()
	if v == nil || c.Session != session || v.claims.Channel != c.Channel {
		return errorf(http.StatusNotFound, "no WHEP session %q on this channel", session)
	}
	v.end("viewer left")
	return nil
}

func (r *rtcAPI) answer(ctx context.Context, offer string, t *trackInfo, v *viewer) (*whepOut, string, error) {
	pc, err := r.api.NewPeerConnection(webrtc.Configuration{ICEServers: r.ice})
	if err != nil {
		return nil, "", fmt.Errorf("new peer connection: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = pc.Close()
		}
	}()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return nil, "", errorf(http.StatusBadRequest, "bad SDP offer: %v", err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + t.profileLevelID()},
		"video", "zipnvr-"+v.claims.Channel)
	if err != nil {
		return nil, "", err
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		return nil, "", errorf(http.StatusBadRequest, "offer cannot receive H.264 video: %v", err)
	}
	out := &whepOut{pc: pc, track: track, connected: make(chan struct{}), seq: uint16(rand.Uint32()),
		tsOff: int64(rand.Uint32()), svc: v.svc, st: v.st}
	// RTCP must be read for the NACK responder to work; PLIs are
	// ignored: relay never transcodes, the next keyframe comes from the camera.
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	var connectedOnce sync.Once
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		switch state {
		case webrtc.PeerConnectionStateConnected:
			connectedOnce.Do(func() { close(out.connected) })
		case webrtc.PeerConnectionStateFailed:
			v.end("WebRTC connection failed")
		case webrtc.PeerConnectionStateClosed:
			v.end("WebRTC connection closed")
		}
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnOpen(func() { out.setDC(dc, t) })
	})
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, "", errorf(http.StatusBadRequest, "cannot answer the offer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return nil, "", fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, "", errorf(http.StatusGatewayTimeout, "gave up gathering ICE candidates")
	case <-time.After(5 * time.Second):
		// Whatever was gathered goes out (a slow STUN server must not
		// hold the viewer).
	}
	ok = true
	return out, pc.LocalDescription().SDP, nil
}

// whepOut sends a stream to one WebRTC viewer.
type whepOut struct {
	pc        *webrtc.PeerConnection
	track     *webrtc.TrackLocalStaticRTP
	connected chan struct{}
	svc       *Service
	st        *stream

	seq    uint16
	tsOff  int64 // RTP timestamp = PTS + tsOff
	lastTS uint32
	sent   bool
	rebase bool

	burstStart time.Time // pacing of the catch-up GOP
	burstBytes int

	dcMu sync.Mutex
	dc   *webrtc.DataChannel
}

type dcMessage struct {
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
	Codec  string `json:"codec,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
}

// setDC keeps the page's state channel (our page opens one; a plain WHEP
// player does not, and gets the end as a closed connection).
func (o *whepOut) setDC(dc *webrtc.DataChannel, t *trackInfo) {
	o.dcMu.Lock()
	o.dc = dc
	o.dcMu.Unlock()
	o.send(dcMessage{State: "live", Codec: t.codec, Width: t.width, Height: t.height})
}

func (o *whepOut) send(m dcMessage) bool {
	o.dcMu.Lock()
	dc := o.dc
	o.dcMu.Unlock()
	if dc == nil {
		return false
	}
	b, _ := json.Marshal(m)
	return dc.SendText(string(b)) == nil
}

func (o *whepOut) setTrack(t *trackInfo) error {
	if t.codec != proto.CodecH264 {
		return fmt.Errorf("camera switched to %s, which is not sent over WebRTC", codecLabel(t.codec))
	}
	// A new camera session starts a new timeline: continue the RTP clock
	// a frame after the last timestamp sent.
	o.rebase = o.sent
	o.send(dcMessage{State: "live", Codec: t.codec, Width: t.width, Height: t.height})
	return nil
}

func (o *whepOut) writeFrame(f *frame, i int, burst []*frame) (int, error) {
	pkts, err := f.packets(o.st)
	if err != nil || len(pkts) == 0 {
		return 0, err
	}
	if o.rebase {
		o.tsOff = int64(o.lastTS) + 3600 - f.pts
		o.rebase = false
	}
	ts := uint32(f.pts + o.tsOff)
	if burst != nil {
		last := burst[len(burst)-1]
		ts = uint32(last.pts + o.tsOff - int64(len(burst)-1-i)*burstTick)
	}
	n := 0
	for _, p := range pkts {
		err := o.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: p.Marker,
			SequenceNumber: o.seq, Timestamp: ts}, Payload: p.Payload})
		if err != nil {
			return n, err
		}
		o.seq++
		n += len(p.Payload) + 12
	}
	o.lastTS, o.sent = ts, true
	if burst != nil {
		o.pace(i, n)
	}
	if burst == nil {
		now := time.Now()
		o.svc.metrics.sendDelay.Observe(now.Sub(f.received).Seconds())
		o.svc.metrics.relayDelay.Observe(now.Sub(f.arrived).Seconds())
	}
	return n, nil
}

// pace holds the catch-up burst to burstRate: after frame i (n bytes) of
// it, it sleeps until the bytes sent so far are due.
func (o *whepOut) pace(i, n int) {
	if i == 0 {
		o.burstStart, o.burstBytes = time.Now(), 0
	}
	o.burstBytes += n
	due := time.Duration(float64(o.burstBytes) / burstRate * float64(time.Second))
	if wait := due - time.Since(o.burstStart); wait > time.Millisecond {
		time.Sleep(wait)
	}
}

func (o *whepOut) state(state, detail string) {
	o.send(dcMessage{State: state, Detail: detail})
}

func (o *whepOut) finish(reason string) {
	if o.send(dcMessage{State: "ended", Detail: reason}) {
		// Let SCTP deliver it before the connection goes.
		o.dcMu.Lock()
		dc := o.dc
		o.dcMu.Unlock()
		for deadline := time.Now().Add(300 * time.Millisecond); dc.BufferedAmount() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = o.pc.Close()
}
