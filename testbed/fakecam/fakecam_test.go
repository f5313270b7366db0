package fakecam

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// frameTicks is the RTP timestamp step between frames of the default clip.
const frameTicks = 90000 / 25

func defaultClip(t *testing.T) *Clip {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := EncodeClip(ctx, ClipOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startServer(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Clip == nil {
		o.Clip = defaultClip(t)
	}
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// received is what a test client saw: every RTP packet and every access
// unit decoded from them.
type received struct {
	mu   sync.Mutex
	pkts []pktEvent
	aus  []auEvent
}

type pktEvent struct {
	at   time.Time
	ts   uint32
	ssrc uint32
	seq  uint16
}

type auEvent struct {
	at       time.Time
	ts       uint32
	ssrc     uint32
	firstSeq uint16 // of the first packet of the AU (approximate: after loss it's later)
	lastSeq  uint16
	key      bool
	au       [][]byte
}

func (r *received) snapshot() ([]pktEvent, []auEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pkts), slices.Clone(r.aus)
}

// waitAUs waits until n access units have arrived.
func (r *received) waitAUs(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		got := len(r.aus)
		r.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %d access units in %v", n, timeout)
}

type rtpDecoder interface {
	Decode(*rtp.Packet) ([][]byte, error)
}

// play reads rawURL with a gortsplib client until the test ends.
func play(t *testing.T, rawURL string, proto gortsplib.Protocol) (*received, *gortsplib.Client, error) {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{
		Scheme: u.Scheme, Host: u.Host, Protocol: &proto, ReadTimeout: 5 * time.Second,
		// Restart's new sequence base looks like loss; the tests check
		// sequence numbers themselves and want a quiet log.
		OnPacketsLost: func(uint64) {},
	}
	if err := c.Start(); err != nil {
		return nil, nil, err
	}
	t.Cleanup(c.Close)

	desc, _, err := c.Describe(u)
	if err != nil {
		return nil, nil, err
	}
	var (
		forma   format.Format
		dec     rtpDecoder
		codec   string
		h264fmt *format.H264
		h265fmt *format.H265
	)
	medi := desc.FindFormat(&h264fmt)
	if medi != nil {
		if h264fmt.SPS == nil || h264fmt.PPS == nil {
			t.Errorf("SDP lacks SPS/PPS")
		}
		forma, codec = h264fmt, "h264"
		dec, err = h264fmt.CreateDecoder()
	} else if medi = desc.FindFormat(&h265fmt); medi != nil {
		forma, codec = h265fmt, "h265"
		dec, err = h265fmt.CreateDecoder()
	} else {
		t.Fatal("no H.264/H.265 media")
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return nil, nil, err
	}

	r := &received{}
	var first uint16
	starting := true
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		now := time.Now()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.pkts = append(r.pkts, pktEvent{at: now, ts: pkt.Timestamp, ssrc: pkt.SSRC, seq: pkt.SequenceNumber})
		if starting {
			first = pkt.SequenceNumber
		}
		au, err := dec.Decode(pkt)
		starting = err == nil
		if err != nil {
			// Incomplete AUs (need more packets, or a fragment whose start
			// we missed) are expected; only whole AUs are recorded.
			return
		}
		r.aus = append(r.aus, auEvent{
			at: now, ts: pkt.Timestamp, ssrc: pkt.SSRC, firstSeq: first, lastSeq: pkt.SequenceNumber,
			key: isKeyframe(codec, au), au: au,
		})
	})
	if _, err := c.Play(nil); err != nil {
		return nil, nil, err
	}
	return r, c, nil
}

func auKey(au [][]byte) [32]byte {
	h := sha256.New()
	for _, n := range au {
		fmt.Fprintf(h, "%d:", len(n))
		h.Write(n)
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// clipIndex maps access unit content to its position in the clip, to tell
// where in the loop a received frame comes from.
func clipIndex(c *Clip) map[[32]byte]int {
	m := make(map[[32]byte]int, len(c.AUs))
	for i, au := range c.AUs {
		m[auKey(au)] = i
	}
	return m
}

func TestEncodeClip(t *testing.T) {
	c := defaultClip(t)
	if again := defaultClip(t); again != c {
		t.Error("identical options did not return the cached clip")
	}
	if c.Codec != "h264" || c.FPS != 25 || c.GOP != 50 {
		t.Errorf("clip = %s %d fps GOP %d", c.Codec, c.FPS, c.GOP)
	}
	if len(c.AUs) != 100 {
		t.Errorf("%d access units, want 4 s x 25 fps = 100", len(c.AUs))
	}
	for i, au := range c.AUs {
		wantKey := i%c.GOP == 0
		if isKeyframe("h264", au) != wantKey {
			t.Errorf("AU %d: keyframe=%v, want %v", i, !wantKey, wantKey)
		}
		if wantKey && len(paramSets("h264", au)) < 2 {
			t.Errorf("keyframe AU %d lacks in-band SPS/PPS", i)
		}
		nslices := 0
		for _, n := range au {
			if isSlice("h264", n) {
				nslices++
			}
		}
		if nslices != 1 {
			t.Errorf("AU %d has %d slices, want 1", i, nslices)
		}
	}
}

func TestPlay(t *testing.T) {
	clip := defaultClip(t)
	for _, tc := range []struct {
		name  string
		udp   bool
		proto gortsplib.Protocol
	}{
		{"tcp", false, gortsplib.ProtocolTCP},
		{"udp", true, gortsplib.ProtocolUDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Options{Clip: clip, Paths: []string{"cam1", "cam2"}, UDP: tc.udp})
			// Join mid-loop, so that starting at a keyframe is the
			// server's doing and not luck.
			time.Sleep(300 * time.Millisecond)
			idx := clipIndex(clip)

			recs := map[string]*received{}
			for _, p := range []string{"cam1", "cam2"} {
				r, _, err := play(t, s.URL(p), tc.proto)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				recs[p] = r
			}
			time.Sleep(2 * time.Second)

			for p, r := range recs {
				pkts, aus := r.snapshot()
				// 2 s at 25 fps is 50 frames; the bounds only catch a
				// stream that is stuck or running at a wrong rate.
				if len(aus) < 30 || len(aus) > 70 {
					t.Errorf("%s: %d access units in 2 s, want about 50", p, len(aus))
				}
				if len(aus) == 0 {
					continue
				}
				if !aus[0].key {
					t.Errorf("%s: first access unit is not a keyframe", p)
				}
				if i, ok := idx[auKey(aus[0].au)]; !ok || i != 0 {
					t.Errorf("%s: first access unit is clip AU %d (known=%v), want 0", p, i, ok)
				}
				for i := 1; i < len(aus); i++ {
					if d := int32(aus[i].ts - aus[i-1].ts); d <= 0 {
						t.Errorf("%s: timestamp went from %d to %d", p, aus[i-1].ts, aus[i].ts)
						break
					}
				}
				sentPkts, sentBytes := s.Stats(p)
				if sentPkts < uint64(len(pkts)) || sentBytes == 0 {
					t.Errorf("%s: Stats = %d packets %d bytes, client got %d packets", p, sentPkts, sentBytes, len(pkts))
				}
			}
		})
	}
}

func TestStartMidGOP(t *testing.T) {
	clip := defaultClip(t)
	s := startServer(t, Options{Clip: clip, Paths: []string{"cam"}, StartMidGOP: true})
	time.Sleep(500 * time.Millisecond) // about frame 12 of a 50-frame GOP
	r, _, err := play(t, s.URL("cam"), gortsplib.ProtocolTCP)
	if err != nil {
		t.Fatal(err)
	}
	r.waitAUs(t, 1, 3*time.Second)
	_, aus := r.snapshot()
	if aus[0].key {
		t.Error("first access unit is a keyframe, want a mid-GOP frame")
	}
}

// TestFaults reads one path for a second, injects a fault, and checks what a
// client sees afterwards.
func TestFaults(t *testing.T) {
	clip := defaultClip(t)
	idx := clipIndex(clip)

	type result struct {
		pkts []pktEvent
		aus  []auEvent
		at   time.Time // when the fault was injected
		i0   int       // index of the first AU received after injection
	}

	for _, tc := range []struct {
		name   string
		inject func(s *Server)
		wait   time.Duration
		check  func(t *testing.T, r result)
	}{
		{
			name:   "jump forward",
			inject: func(s *Server) { s.JumpTimestamps("cam", 10*time.Second) },
			wait:   time.Second,
			check: func(t *testing.T, r result) {
				checkJump(t, r.aus[r.i0-1:], 10*90000)
			},
		},
		{
			name:   "jump back",
			inject: func(s *Server) { s.JumpTimestamps("cam", -5*time.Second) },
			wait:   time.Second,
			check: func(t *testing.T, r result) {
				checkJump(t, r.aus[r.i0-1:], -5*90000)
			},
		},
		{
			name:   "restart",
			inject: func(s *Server) { s.Restart("cam") },
			wait:   time.Second,
			check: func(t *testing.T, r result) {
				aus := r.aus[r.i0-1:]
				k := -1
				for i := 1; i < len(aus); i++ {
					if aus[i].ts-aus[i-1].ts != frameTicks || aus[i].ssrc != aus[i-1].ssrc {
						k = i
						break
					}
				}
				if k < 0 {
					t.Fatal("no timestamp or SSRC discontinuity")
				}
				if !aus[k].key || idx[auKey(aus[k].au)] != 0 {
					t.Error("first frame after restart is not the clip's first keyframe")
				}
				if aus[k].firstSeq == aus[k-1].lastSeq+1 {
					t.Error("sequence numbers continued across the restart")
				}
				for i := k + 1; i < len(aus); i++ {
					if aus[i].ts-aus[i-1].ts != frameTicks {
						t.Errorf("second discontinuity at %d", i)
					}
				}
			},
		},
		{
			name:   "pause",
			inject: func(s *Server) { s.Pause("cam", time.Second) },
			wait:   2 * time.Second,
			check: func(t *testing.T, r result) {
				var gap time.Duration
				k := 0
				for i := 1; i < len(r.pkts); i++ {
					if d := r.pkts[i].at.Sub(r.pkts[i-1].at); d > gap {
						gap, k = d, i
					}
				}
				if gap < 900*time.Millisecond || gap > 1300*time.Millisecond {
					t.Fatalf("longest silence %v, want about 1 s", gap)
				}
				// Timestamps follow the wall clock across the pause.
				dts := time.Duration(int32(r.pkts[k].ts-r.pkts[k-1].ts)) * time.Second / 90000
				if dts < gap-100*time.Millisecond || dts > gap+100*time.Millisecond {
					t.Errorf("timestamps advanced %v over a %v pause", dts, gap)
				}
				// The clip resumes where it stopped, so it stays decodable.
				for i := 1; i < len(r.aus); i++ {
					a, b := idx[auKey(r.aus[i-1].au)], idx[auKey(r.aus[i].au)]
					if b != (a+1)%len(clip.AUs) {
						t.Errorf("clip AU %d followed by %d", a, b)
					}
				}
			},
		},
		{
			name:   "drop keyframes",
			inject: func(s *Server) { s.DropKeyframes("cam", 2500*time.Millisecond) },
			// A 2 s GOP: the window holds at least one keyframe, and one
			// more must follow within a GOP after it.
			wait: 4700 * time.Millisecond,
			check: func(t *testing.T, r result) {
				end := r.at.Add(2500 * time.Millisecond)
				inWindow, afterKey := 0, false
				for _, a := range r.aus[r.i0:] {
					switch {
					case a.at.Before(end.Add(-100 * time.Millisecond)):
						inWindow++
						if a.key {
							t.Errorf("keyframe %v into the drop window", a.at.Sub(r.at))
						}
					case a.at.After(end) && a.key:
						afterKey = true
					}
				}
				if inWindow < 40 {
					t.Errorf("%d frames during the drop window, want the non-keyframes (~58)", inWindow)
				}
				if !afterKey {
					t.Error("no keyframe after the drop window")
				}
			},
		},
		{
			name:   "corrupt",
			inject: func(s *Server) { s.CorruptNext("cam", 3) },
			wait:   time.Second,
			check: func(t *testing.T, r result) {
				var bad []int
				for i := r.i0; i < len(r.aus); i++ {
					if _, ok := idx[auKey(r.aus[i].au)]; !ok {
						bad = append(bad, i)
					}
				}
				if len(bad) != 3 || bad[2]-bad[0] != 2 {
					t.Fatalf("corrupt access units at %v, want 3 consecutive", bad)
				}
				// Each is the clip's next frame with the same NAL units,
				// headers intact.
				prev := idx[auKey(r.aus[bad[0]-1].au)]
				for j, i := range bad {
					want := clip.AUs[(prev+1+j)%len(clip.AUs)]
					got := r.aus[i].au
					if len(got) != len(want) {
						t.Fatalf("corrupt AU has %d NAL units, want %d", len(got), len(want))
					}
					for n := range got {
						if len(got[n]) != len(want[n]) || got[n][0] != want[n][0] {
							t.Errorf("corrupt AU NAL %d: header/size changed", n)
						}
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Options{Clip: clip, Paths: []string{"cam"}})
			rec, _, err := play(t, s.URL("cam"), gortsplib.ProtocolTCP)
			if err != nil {
				t.Fatal(err)
			}
			rec.waitAUs(t, 25, 3*time.Second)
			_, before := rec.snapshot()
			at := time.Now()
			tc.inject(s)
			time.Sleep(tc.wait)
			pkts, aus := rec.snapshot()
			tc.check(t, result{pkts: pkts, aus: aus, at: at, i0: len(before)})
		})
	}
}

// checkJump wants exactly one timestamp step of frameTicks+jump and all
// others frameTicks, with frames still arriving at the frame rate.
func checkJump(t *testing.T, aus []auEvent, jump int32) {
	t.Helper()
	jumps := 0
	for i := 1; i < len(aus); i++ {
		d := int32(aus[i].ts - aus[i-1].ts)
		switch d {
		case frameTicks:
		case frameTicks + jump:
			jumps++
		default:
			t.Errorf("timestamp step %d", d)
		}
		if gap := aus[i].at.Sub(aus[i-1].at); gap > 200*time.Millisecond {
			t.Errorf("frames stalled for %v", gap)
		}
	}
	if jumps != 1 {
		t.Errorf("%d jumps of %d ticks, want 1", jumps, jump)
	}
}

func TestDisconnect(t *testing.T) {
	s := startServer(t, Options{Paths: []string{"cam"}})
	r1, c1, err := play(t, s.URL("cam"), gortsplib.ProtocolTCP)
	if err != nil {
		t.Fatal(err)
	}
	r1.waitAUs(t, 1, 3*time.Second)
	done := make(chan error, 1)
	go func() { done <- c1.Wait() }()
	s.Disconnect("cam")
	select {
	case err := <-done:
		t.Logf("client ended with %v", err)
	case <-time.After(3 * time.Second):
		t.Fatal("client still connected after Disconnect")
	}

	r2, _, err := play(t, s.URL("cam"), gortsplib.ProtocolTCP)
	if err != nil {
		t.Fatal(err)
	}
	r2.waitAUs(t, 1, 3*time.Second)
	_, a1 := r1.snapshot()
	_, a2 := r2.snapshot()
	if a1[0].ssrc == a2[0].ssrc {
		t.Error("reconnected client got the same SSRC")
	}
	if !a2[0].key {
		t.Error("reconnected client did not start at a keyframe")
	}
}

// TestFFprobe has a third-party client check what the SDP and stream say.
func TestFFprobe(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
	h264 := defaultClip(t)
	for _, tc := range []struct {
		name      string
		codec     string
		transport string
		udp       bool
		user      string
		want      string
	}{
		{name: "h264 tcp", transport: "tcp", want: "h264,1280,720"},
		{name: "h264 udp", transport: "udp", udp: true, want: "h264,1280,720"},
		{name: "h264 digest auth", transport: "tcp", user: "admin", want: "h264,1280,720"},
		{name: "h265 tcp", codec: "h265", transport: "tcp", want: "hevc,640,360"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clip := h264
			if tc.codec == "h265" {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				var err error
				clip, err = EncodeClip(ctx, ClipOptions{Codec: "h265", Width: 640, Height: 360, Seconds: 2, BitrateKbps: 500})
				if err != nil {
					t.Fatal(err)
				}
			}
			s := startServer(t, Options{Clip: clip, Paths: []string{"cam"}, UDP: tc.udp, User: tc.user, Pass: "s3cret"})
			url := s.URL("cam")
			if tc.user != "" {
				url = strings.Replace(url, "rtsp://", "rtsp://"+tc.user+":s3cret@", 1)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", tc.transport,
				"-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", url).CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe: %v: %s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("ffprobe printed %q, want %q", got, tc.want)
			}
		})
	}
}

// describe sends a raw DESCRIBE, to control exactly which auth scheme is used.
func describe(t *testing.T, addr, url, authorization string) (int, textproto.MIMEHeader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "DESCRIBE " + url + " RTSP/1.0\r\nCSeq: 1\r\n"
	if authorization != "" {
		req += "Authorization: " + authorization + "\r\n"
	}
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	tp := textproto.NewReader(bufio.NewReader(c))
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	var code int
	if _, err := fmt.Sscanf(line, "RTSP/1.0 %d", &code); err != nil {
		t.Fatalf("status line %q", line)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	return code, h
}

func TestAuth(t *testing.T) {
	s := startServer(t, Options{Paths: []string{"cam"}, User: "admin", Pass: "s3cret"})
	basic := func(u, p string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
	}

	for _, tc := range []struct {
		name string
		auth string
		want int
	}{
		{"no credentials", "", 401},
		{"basic", basic("admin", "s3cret"), 200},
		{"basic wrong password", basic("admin", "nope"), 401},
		{"basic wrong user", basic("root", "s3cret"), 401},
	} {
		t.Run("raw "+tc.name, func(t *testing.T) {
			code, h := describe(t, s.Addr(), s.URL("cam"), tc.auth)
			if code != tc.want {
				t.Errorf("status %d, want %d", code, tc.want)
			}
			// gortsplib sends the challenge only to a request without
			// credentials; wrong ones get a bare 401 and a closed connection.
			if tc.auth == "" {
				www := strings.Join(h.Values("Www-Authenticate"), " | ")
				if !strings.Contains(www, "Basic") || !strings.Contains(www, "Digest") {
					t.Errorf("WWW-Authenticate %q should offer Basic and Digest", www)
				}
			}
		})
	}

	// gortsplib's client answers the Digest challenge.
	for _, tc := range []struct {
		name    string
		creds   string
		wantErr bool
	}{
		{"client without credentials", "", true},
		{"client wrong password", "admin:nope@", true},
		{"client digest", "admin:s3cret@", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := strings.Replace(s.URL("cam"), "rtsp://", "rtsp://"+tc.creds, 1)
			r, _, err := play(t, url, gortsplib.ProtocolTCP)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil {
				r.waitAUs(t, 1, 3*time.Second)
			}
		})
	}
}
