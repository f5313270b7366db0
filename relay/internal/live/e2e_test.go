package live_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/testbed"
)

// The end-to-end tests run relay and hubd as processes, a gst-rtsp-server
// camera and headless Chromium, all in one network namespace (loopback
// only): the browser loads relay's page, which asks for a stream token and
// plays the camera over WebRTC (or its fallbacks), the hub behind its
// outbound link only.

func TestMain(m *testing.M) { os.Exit(testbed.RunInNetNS(m)) }

// liveRelayConfig: loopback candidates (the namespace has nothing else), a
// short stop delay so the tests see the hub stop.
const liveRelayConfig = "live: {stop_after_seconds: 2, ice: {loopback: true}}\n"

type system struct {
	relay *testbed.Relay
	prov  testbed.Provisioned
	hubd  *testbed.Hubd
}

type camSpec struct {
	id      string
	streams map[string]string // quality -> URL
}

// startSystem runs relay and a hubd with cams, and waits until relay has
// the cameras (with channels) and the hub's control link is up.
func startSystem(t *testing.T, cams ...camSpec) *system {
	t.Helper()
	s := &system{relay: testbed.StartRelay(t, testbed.RelayOptions{Config: liveRelayConfig})}
	s.prov = s.relay.Provision(t, "acme", "hub-1")
	cfg := fmt.Sprintf("hub: {id: hub-1, data_dir: %q}\nrelay: {url: %q, credential: %q}\nlog: {level: debug}\ncameras:\n",
		t.TempDir(), s.relay.URL, s.prov.HubCredential)
	for _, c := range cams {
		cfg += fmt.Sprintf("  - id: %s\n    name: %s camera\n    record: \"off\"\n    transport: tcp\n    streams:\n", c.id, c.id)
		for q, u := range c.streams {
			cfg += fmt.Sprintf("      %s: %q\n", q, u)
		}
	}
	s.hubd = testbed.StartHubd(t, cfg)
	s.waitLinked(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out struct {
			Cameras []struct{ ID, Channel string }
		}
		s.relay.Do(t, s.prov.UserTk, "GET", "/api/v1/cameras", nil, 200, &out)
		n := 0
		for _, c := range out.Cameras {
			if c.Channel != "" {
				n++
			}
		}
		if n == len(cams) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay has %d of %d cameras with channels: %+v", n, len(cams), out.Cameras)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *system) waitLinked(t *testing.T) {
	t.Helper()
	waitMetric(t, s.relay, "relay_hub_links", 1, 20*time.Second)
}

func (s *system) channel(t *testing.T, cameraID string) string {
	t.Helper()
	var c struct{ Channel string }
	s.relay.Do(t, s.prov.UserTk, "GET", "/api/v1/cameras/"+cameraID, nil, 200, &c)
	return c.Channel
}

// pageURL opens relay's page logged in, watching a camera at once.
func (s *system) pageURL(cameraID, quality, transport string) string {
	return fmt.Sprintf("%s/#token=%s&camera=%s&quality=%s&transport=%s", s.relay.URL, s.prov.UserTk, cameraID, quality, transport)
}

// metric reads one sample (name with labels, as exposed) from relay's /metrics.
func metric(t *testing.T, r *testbed.Relay, name string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(r.Metrics(t)))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return f
		}
	}
	return 0
}

func waitMetric(t *testing.T, r *testbed.Relay, name string, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := metric(t, r, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %g after %s, want %g", name, got, timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func openTab(t *testing.T, b *testbed.Browser, url string) *testbed.Tab {
	t.Helper()
	tab, err := b.NewTab()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tab.Close)
	if err := tab.Navigate(url, 15*time.Second); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	return tab
}

const pageState = "JSON.stringify({state: zipnvr.state, detail: zipnvr.detail, transport: zipnvr.transport, stats: zipnvr.stats, events: zipnvr.events.slice(-8)})"

// waitDecoding waits until the page decoded more than n frames of w x h.
func waitDecoding(t *testing.T, tab *testbed.Tab, n, w, h int, timeout time.Duration) {
	t.Helper()
	cond := fmt.Sprintf("zipnvr.stats && zipnvr.stats.framesDecoded > %d && zipnvr.stats.width == %d && zipnvr.stats.height == %d", n, w, h)
	if err := tab.WaitFor(cond, pageState, timeout); err != nil {
		t.Fatal(err)
	}
}

func framesDecoded(t *testing.T, tab *testbed.Tab) int {
	t.Helper()
	var n int
	if err := tab.Eval("zipnvr.stats ? zipnvr.stats.framesDecoded : 0", &n, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return n
}

func evalString(t *testing.T, tab *testbed.Tab, js string) string {
	t.Helper()
	var s string
	if err := tab.Eval(js, &s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLiveWebRTC: the page plays a 720p H.264 camera over WebRTC; two
// viewers share one camera pull; the hub stops pulling after the last one
// leaves; hubd killed mid-session ends the viewer's session, and a new
// token works once hubd is back.
func TestLiveWebRTC(t *testing.T) {
	cam := testbed.GstCamera(t, testbed.GstOptions{})
	s := startSystem(t, camSpec{"cam1", map[string]string{"high": cam.URL}})
	b := testbed.StartBrowser(t)

	tab1 := openTab(t, b, s.pageURL("hub-1.cam1", "high", "webrtc"))
	waitDecoding(t, tab1, 25, 1280, 720, 20*time.Second)
	if shot := os.Getenv("LIVE_SCREENSHOT"); shot != "" {
		_ = tab1.Screenshot(strings.TrimSuffix(shot, ".png") + "-live.png")
	}
	if tr := evalString(t, tab1, "zipnvr.transport"); tr != "webrtc" {
		t.Fatalf("transport %q, want webrtc", tr)
	}
	before := framesDecoded(t, tab1)
	time.Sleep(time.Second)
	if after := framesDecoded(t, tab1); after < before+15 {
		t.Fatalf("framesDecoded %d -> %d in 1 s: not playing at 25 fps", before, after)
	}

	// A second viewer joins the running stream: no second camera pull.
	tab2 := openTab(t, b, s.pageURL("hub-1.cam1", "high", "webrtc"))
	waitDecoding(t, tab2, 25, 1280, 720, 20*time.Second)
	waitMetric(t, s.relay, `relay_live_viewers{transport="whep"}`, 2, 5*time.Second)
	if n := metric(t, s.relay, `relay_live_streams_total{from="link"}`); n != 1 {
		t.Fatalf("relay started %g streams for two viewers, want 1", n)
	}
	if n := s.hubd.CountLog("live stream socket open: pulling the camera"); n != 1 {
		t.Fatalf("hubd pulled the camera %d times for two viewers, want 1", n)
	}

	// Viewers leave (tabs closed); the stream outlives the first, and the
	// hub stops pulling ~stop_after_seconds after the last.
	tab1.Close()
	waitMetric(t, s.relay, `relay_live_viewers{transport="whep"}`, 1, 15*time.Second)
	if n := metric(t, s.relay, "relay_live_streams"); n != 1 {
		t.Fatalf("streams = %g with one viewer left, want 1", n)
	}
	tab2.Close()
	left := time.Now()
	waitMetric(t, s.relay, `relay_live_viewers{transport="whep"}`, 0, 15*time.Second)
	waitMetric(t, s.relay, "relay_live_streams", 0, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for s.hubd.CountLog("live stream stopped") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("hubd did not stop pulling the camera after the last viewer left")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("hub stopped pulling %s after the last viewer's tab closed (stop_after_seconds: 2)", time.Since(left).Round(100*time.Millisecond))

	// hubd killed mid-session: the viewer sees the session end.
	tab3 := openTab(t, b, s.pageURL("hub-1.cam1", "high", "webrtc"))
	waitDecoding(t, tab3, 10, 1280, 720, 20*time.Second)
	s.hubd.Kill()
	killed := time.Now()
	if err := tab3.WaitFor("zipnvr.state == 'ended'", pageState, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	detail := evalString(t, tab3, "zipnvr.detail")
	t.Logf("viewer saw the end %s after SIGKILL: %q", time.Since(killed).Round(10*time.Millisecond), detail)
	if shot := os.Getenv("LIVE_SCREENSHOT"); shot != "" {
		_ = tab3.Screenshot(shot)
	}
	if !strings.Contains(detail, "hub disconnected") {
		t.Errorf("end reason %q does not name the hub", detail)
	}
	waitMetric(t, s.relay, "relay_hub_links", 0, 10*time.Second)

	// hubd back: a new token (the page's "Watch again") plays again.
	s.hubd.Start()
	s.waitLinked(t)
	if err := tab3.Eval("document.getElementById('again').click(), true", nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitDecoding(t, tab3, 10, 1280, 720, 20*time.Second)

	// relay recorded every session's start and stop.
	var out struct {
		Sessions []struct {
			Kind, Transport string
			EndReason       string `json:"end_reason"`
			Started, Ended  time.Time
			Bytes           uint64
		}
	}
	tab3.Close()
	waitMetric(t, s.relay, "relay_live_streams", 0, 15*time.Second)
	time.Sleep(200 * time.Millisecond) // records are written in batches
	s.relay.Do(t, s.prov.UserTk, "GET", "/api/v1/channels/"+s.channel(t, "hub-1.cam1")+"/live/sessions", nil, 200, &out)
	streams, viewers := 0, 0
	for _, r := range out.Sessions {
		if r.Ended.IsZero() || r.Bytes == 0 {
			t.Errorf("session not closed or empty: %+v", r)
		}
		switch r.Kind {
		case "stream":
			streams++
		case "viewer":
			viewers++
		}
	}
	if streams != 3 || viewers != 4 {
		t.Errorf("records: %d streams, %d viewers, want 3 and 4: %+v", streams, viewers, out.Sessions)
	}
}

// TestLiveFallbacks: fMP4 over WebSocket (MSE) for a browser that cannot do
// WebRTC, MJPEG to an <img>, and an H.265 camera: the page cannot play it
// over WebRTC (nor, in Chromium without hardware HEVC, over MSE) and says
// so while it switches to the camera's H.264 quality.
func TestLiveFallbacks(t *testing.T) {
	h264 := testbed.GstCamera(t, testbed.GstOptions{})
	low := testbed.GstCamera(t, testbed.GstOptions{Width: 640, Height: 360, Bitrate: 600, Path: "/low"})
	h265 := testbed.GstCamera(t, testbed.GstOptions{Codec: "h265", Width: 640, Height: 360, Bitrate: 600})
	mjpeg := testbed.MJPEGCamera(t, testbed.MJPEGOptions{})
	s := startSystem(t,
		camSpec{"cam1", map[string]string{"high": h264.URL, "mjpeg": mjpeg.URL}},
		camSpec{"cam2", map[string]string{"high": h265.URL, "low": low.URL}})
	b := testbed.StartBrowser(t)

	t.Run("mse", func(t *testing.T) {
		tab := openTab(t, b, s.pageURL("hub-1.cam1", "high", "mse"))
		waitDecoding(t, tab, 25, 1280, 720, 20*time.Second)
		if tr := evalString(t, tab, "zipnvr.transport"); tr != "mse" {
			t.Fatalf("transport %q", tr)
		}
		// At the live edge: the cached GOP is skipped over, not replayed.
		var lag float64
		if err := tab.Eval("(() => { const v = document.getElementById('video'); return v.buffered.end(v.buffered.length-1) - v.currentTime })()", &lag, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if lag > 1.5 {
			t.Errorf("MSE playback %.2f s behind the newest frame", lag)
		}
	})
	t.Run("mjpeg", func(t *testing.T) {
		tab := openTab(t, b, s.pageURL("hub-1.cam1", "mjpeg", "auto"))
		waitDecoding(t, tab, 0, 1280, 720, 20*time.Second)
		if tr := evalString(t, tab, "zipnvr.transport"); tr != "mjpeg" {
			t.Fatalf("transport %q", tr)
		}
	})
	t.Run("h265", func(t *testing.T) {
		// Relay refuses H.265 over WebRTC with a clear error.
		ch := s.channel(t, "hub-1.cam2")
		var g struct{ Token string }
		s.relay.Do(t, s.prov.UserTk, "POST", "/api/v1/channels/"+ch+"/stream-token", map[string]string{"quality": "high"}, 201, &g)
		req, _ := http.NewRequest("POST", s.relay.URL+"/api/v1/channels/"+ch+"/whep", strings.NewReader("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"))
		req.Header.Set("Authorization", "Bearer "+g.Token)
		req.Header.Set("Content-Type", "application/sdp")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 415 {
			t.Fatalf("WHEP on an H.265 camera: %d, want 415", resp.StatusCode)
		}

		tab := openTab(t, b, s.pageURL("hub-1.cam2", "high", "auto"))
		var hevcMSE bool
		if err := tab.Eval(`MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L90.B0"')`, &hevcMSE, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if hevcMSE {
			// A Chromium with HEVC decoding plays the H.265 stream itself.
			waitDecoding(t, tab, 10, 640, 360, 20*time.Second)
			return
		}
		waitDecoding(t, tab, 10, 640, 360, 30*time.Second)
		note := evalString(t, tab, "zipnvr.fallbackNote || ''")
		quality := evalString(t, tab, "document.getElementById('quality').value")
		t.Logf("page: %s", evalString(t, tab, "document.getElementById('state').textContent"))
		if !strings.Contains(note, "cannot decode H.265") || quality != "low" {
			t.Fatalf("fallback note %q, quality %q: want the H.265 note and the low quality", note, quality)
		}
		if err := tab.WaitFor("document.getElementById('state').textContent.includes('cannot decode H.265')", pageState, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLiveLANToken: hubd's LAN endpoint takes a stream token from a client
// on the hub's network. The hub cannot check a signature, relay does when
// the hub opens the stream socket: a tampered or expired token is refused
// through the hub; a valid one while relay's stream runs joins it (still
// one camera pull); with no stream running it starts one from the hub.
func TestLiveLANToken(t *testing.T) {
	cam := testbed.GstCamera(t, testbed.GstOptions{Width: 640, Height: 360, Bitrate: 600})
	lan := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	s := &system{relay: testbed.StartRelay(t, testbed.RelayOptions{Config: "live: {stop_after_seconds: 2, token_seconds: 10, ice: {loopback: true}}\n"})}
	s.prov = s.relay.Provision(t, "acme", "hub-1")
	s.hubd = testbed.StartHubd(t, fmt.Sprintf("hub: {id: hub-1, data_dir: %q}\nrelay: {url: %q, credential: %q}\nlive: {lan_listen: %q}\n"+
		"cameras:\n  - id: cam1\n    record: \"off\"\n    transport: tcp\n    streams: {high: %q}\n",
		t.TempDir(), s.relay.URL, s.prov.HubCredential, lan, cam.URL))
	s.waitLinked(t)
	deadline := time.Now().Add(20 * time.Second)
	var ch string
	for ch == "" {
		if time.Now().After(deadline) {
			t.Fatal("relay has no channel for hub-1.cam1")
		}
		var out struct {
			Cameras []struct{ ID, Channel string }
		}
		s.relay.Do(t, s.prov.UserTk, "GET", "/api/v1/cameras", nil, 200, &out)
		for _, c := range out.Cameras {
			ch = c.Channel
		}
		time.Sleep(100 * time.Millisecond)
	}
	newToken := func() string {
		var g struct{ Token string }
		s.relay.Do(t, s.prov.UserTk, "POST", "/api/v1/channels/"+ch+"/stream-token", map[string]string{"quality": "high"}, 201, &g)
		return g.Token
	}
	lanStart := func(tok string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+lan+"/live/start", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return resp.StatusCode, b.String()
	}

	// A token relay issued starts relay's stream over the link; the same
	// token from a LAN client joins it: one pull.
	tok := newToken()
	first, issued := tok, time.Now()
	waitMetric(t, s.relay, `relay_live_streams_total{from="link"}`, 1, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); s.hubd.CountLog("live stream socket open: pulling the camera") < 1; {
		if time.Now().After(deadline) {
			t.Fatal("the hub did not start relay's stream")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := lanStart(tok); code != http.StatusAccepted {
		t.Fatalf("LAN start while relay streams: %d %s", code, body)
	}
	if n := s.hubd.CountLog("live stream socket open: pulling the camera"); n != 1 {
		t.Fatalf("hub pulled the camera %d times, want 1", n)
	}

	// Tampered: the hub passes it on, relay refuses the signature.
	tampered := tok[:len(tok)-3] + map[bool]string{true: "AAA", false: "BBB"}[!strings.HasSuffix(tok, "AAA")]
	if code, body := lanStart(tampered); code != http.StatusUnauthorized {
		t.Fatalf("tampered token: %d %s, want 401", code, body)
	}

	// No stream running: a LAN client's token starts one from the hub.
	waitMetric(t, s.relay, "relay_live_streams", 0, 15*time.Second)
	tok = newToken() // starts relay's stream again; let it stop
	waitMetric(t, s.relay, `relay_live_streams_total{from="link"}`, 2, 10*time.Second)
	waitMetric(t, s.relay, "relay_live_streams", 0, 15*time.Second)
	if code, body := lanStart(tok); code != http.StatusAccepted {
		t.Fatalf("LAN start: %d %s", code, body)
	}
	waitMetric(t, s.relay, `relay_live_streams_total{from="hub"}`, 1, 5*time.Second)
	deadline = time.Now().Add(10 * time.Second)
	for {
		var out struct {
			Streams []struct {
				StartedFrom string `json:"started_from"`
				FramesIn    int    `json:"frames_in"`
			}
		}
		s.relay.Do(t, s.prov.UserTk, "GET", "/api/v1/channels/"+ch+"/live", nil, 200, &out)
		if len(out.Streams) == 1 && out.Streams[0].StartedFrom == "hub" && out.Streams[0].FramesIn > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no frames from the LAN-started stream: %+v", out.Streams)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Expired (token_seconds: 10): refused by relay through the hub.
	waitMetric(t, s.relay, "relay_live_streams", 0, 15*time.Second)
	time.Sleep(11*time.Second - time.Since(issued))
	if code, body := lanStart(first); code != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Fatalf("expired token: %d %s, want 401 expired", code, body)
	}
}
