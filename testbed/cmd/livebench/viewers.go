package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// The viewers mode is the load generator: N WHEP viewers of one channel,
// pion on the receiving side, in a process of their own so that their CPU
// (SRTP decryption of N x 2 Mbit/s) is never counted against relay. It
// prints "ready OK FAILED" once every session is connected (or failed),
// measures for -duration from then, prints one JSON line of results and
// ends the sessions with a WHEP DELETE.

// viewersResult is the viewers mode's JSON line.
type viewersResult struct {
	Connected int      `json:"connected"`
	Failed    int      `json:"failed"`
	Errors    []string `json:"errors,omitempty"` // the first few
	// Per connected viewer, over the window: RTP bytes (header+payload)
	// and frames (RTP marker bits) received.
	Bytes  []uint64 `json:"bytes"`
	Frames []uint64 `json:"frames"`
	Window float64  `json:"window_seconds"`
	// SetupSeconds: from the first token request to the last session up.
	SetupSeconds float64 `json:"setup_seconds"`
}

const readyTag = "ready "

func runViewers(args []string) int {
	fs := flag.NewFlagSet("livebench viewers", flag.ContinueOnError)
	relay := fs.String("relay", "", "relay base URL")
	channel := fs.String("channel", "", "channel id")
	user := fs.String("user-token", "", "user API token (asks one stream token per viewer)")
	n := fs.Int("n", 1, "viewers")
	parallel := fs.Int("parallel", 16, "sessions set up at once")
	duration := fs.Duration("duration", 20*time.Second, "measuring window after every viewer is up (0: until SIGTERM, for a background viewer)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *relay == "" || *channel == "" || *user == "" || *n < 1 || *n > 2000 {
		fmt.Fprintln(os.Stderr, "livebench viewers: -relay, -channel, -user-token and 1 <= -n <= 2000 are required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	api, err := viewerAPI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "livebench viewers:", err)
		return 1
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	vs := make([]*loadViewer, *n)
	errs := make([]error, *n)
	sem := make(chan struct{}, *parallel)
	var wg sync.WaitGroup
	for i := range vs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			vs[i], errs[i] = connectViewer(ctx, api, hc, *relay, *channel, *user)
		}()
	}
	wg.Wait()
	res := viewersResult{SetupSeconds: time.Since(start).Seconds()}
	var up []*loadViewer
	for i, v := range vs {
		if errs[i] != nil {
			res.Failed++
			if len(res.Errors) < 5 {
				res.Errors = append(res.Errors, errs[i].Error())
			}
			continue
		}
		up = append(up, v)
	}
	res.Connected = len(up)
	defer func() {
		// End every session the way a player does: WHEP DELETE, then close.
		var wg sync.WaitGroup
		for _, v := range up {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				v.close(hc)
			}()
		}
		wg.Wait()
	}()
	fmt.Printf("%s%d %d\n", readyTag, res.Connected, res.Failed)

	b0, f0 := make([]uint64, len(up)), make([]uint64, len(up))
	for i, v := range up {
		b0[i], f0[i] = v.bytes.Load(), v.frames.Load()
	}
	t0 := time.Now()
	if *duration > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(*duration):
		}
	} else {
		<-ctx.Done()
	}
	res.Window = time.Since(t0).Seconds()
	for i, v := range up {
		res.Bytes = append(res.Bytes, v.bytes.Load()-b0[i])
		res.Frames = append(res.Frames, v.frames.Load()-f0[i])
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return 0
}

// viewerAPI is a bare receiver: H.264, loopback only, and no interceptors
// (no NACK, reports or congestion control), the least CPU per viewer so
// that one process can carry hundreds.
func viewerAPI() (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)), nil
}

type loadViewer struct {
	pc            *webrtc.PeerConnection
	resource, tok string
	bytes, frames atomic.Uint64
}

// connectViewer asks for a stream token and sets up one WHEP session.
func connectViewer(ctx context.Context, api *webrtc.API, hc *http.Client, relay, channel, user string) (*loadViewer, error) {
	var grant struct{ Token string }
	if err := postJSON(ctx, hc, relay+"/api/v1/channels/"+channel+"/stream-token", user, map[string]string{"quality": "high"}, &grant); err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &loadViewer{pc: pc, tok: grant.Token}
	ok := false
	defer func() {
		if !ok {
			_ = pc.Close()
		}
	}()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return nil, err
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1600)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			v.bytes.Add(uint64(n))
			if n > 1 && buf[1]&0x80 != 0 { // RTP marker: the last packet of a frame
				v.frames.Add(1)
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, relay+"/api/v1/channels/"+channel+"/whep",
		strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+grant.Token)
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("WHEP offer: %w", err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("WHEP offer: %s: %s", resp.Status, bytes.TrimSpace(answer))
	}
	v.resource = resp.Header.Get("Location")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return nil, fmt.Errorf("WHEP answer: %w", err)
	}
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		return nil, errors.New("WebRTC did not connect within 15 s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if v.resource != "" && !strings.HasPrefix(v.resource, "http") {
		v.resource = relay + v.resource
	}
	ok = true
	return v, nil
}

func (v *loadViewer) close(hc *http.Client) {
	if v.resource != "" {
		if req, err := http.NewRequest(http.MethodDelete, v.resource, nil); err == nil {
			req.Header.Set("Authorization", "Bearer "+v.tok)
			if resp, err := hc.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}
	_ = v.pc.Close()
}

// postJSON POSTs in with a bearer token and decodes a 2xx answer into out.
func postJSON(ctx context.Context, hc *http.Client, url, tok string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

// lineSplitter hands each stdout line of a child to lines (an io.Writer,
// so exec's Wait drains the output).
type lineSplitter struct {
	lines chan string
	buf   []byte
}

func (w *lineSplitter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		select {
		case w.lines <- line:
		default: // nobody reads more than the two lines expected
		}
	}
}

// parseReady reads "ready OK FAILED".
func parseReady(line string) (ok, failed int, err error) {
	if _, err := fmt.Sscanf(strings.TrimPrefix(line, readyTag), "%d %d", &ok, &failed); err != nil || !strings.HasPrefix(line, readyTag) {
		return 0, 0, fmt.Errorf("viewers: unexpected line %q", line)
	}
	return ok, failed, nil
}
