package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
	"github.com/zipnvr/zipnvr/testbed/segsynth"
)

// The web page as a person uses it, in headless Chromium: log in with the
// user token, list a channel's recordings with their gap, play one, cut a
// clip and see it finish with a download link, take a snapshot through a
// real hubd, press PTZ buttons (a camera with a driver, one without: the
// relay's 409 on the page). Media comes from versitygw's presigned URLs
// (another origin than the page's); a second relay without S3 plays a
// recording from its own signed URL.
//
// ZIPNVR_SCREENSHOTS=DIR keeps screenshots of the page there.

// webPage is a logged-in tab of relay's page.
type webPage struct {
	t   *testing.T
	tab *testbed.Tab
}

// webState says what the page shows, for failure messages.
const webState = `JSON.stringify({browse: window.zipnvrBrowse && {camera: zipnvrBrowse.camera && zipnvrBrowse.camera.id,
  recordings: zipnvrBrowse.recordings.length, gaps: zipnvrBrowse.gaps.length, playing: zipnvrBrowse.playing,
  clip: zipnvrBrowse.clip && zipnvrBrowse.clip.status, snapshot: zipnvrBrowse.snapshot, errors: zipnvrBrowse.errors},
  video: (v => v && {rs: v.readyState, t: v.currentTime, err: v.error && v.error.code, src: v.currentSrc.slice(0, 60)})(document.getElementById('playback')),
  msgs: [...document.querySelectorAll('#browse .msg')].map(p => p.id + ': ' + p.textContent).filter(s => !s.endsWith(': '))})`

func openWebPage(t *testing.T, b *testbed.Browser, relayURL, token string) *webPage {
	t.Helper()
	tab, err := b.NewTab()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tab.Close)
	if err := tab.Navigate(relayURL+"/", 15*time.Second); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	if err := tab.Run(5*time.Second, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	p := &webPage{t: t, tab: tab}
	// Typed into the form, as a person does: the token is in no URL.
	p.eval(fmt.Sprintf(`document.getElementById('token').value = %q; document.getElementById('login-form').requestSubmit()`, token), nil)
	p.wait(`!document.getElementById('browse').hidden && zipnvrBrowse.loaded`, 10*time.Second)
	return p
}

func (p *webPage) eval(js string, out any) {
	p.t.Helper()
	if err := p.tab.Eval(js, out, 10*time.Second); err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
}

func (p *webPage) wait(cond string, timeout time.Duration) {
	p.t.Helper()
	if err := p.tab.WaitFor(cond, webState, timeout); err != nil {
		p.t.Fatal(err)
	}
}

func (p *webPage) text(id string) string {
	p.t.Helper()
	var s string
	p.eval(fmt.Sprintf(`document.getElementById(%q).textContent`, id), &s)
	return s
}

func (p *webPage) click(selector string) {
	p.t.Helper()
	var ok bool
	p.eval(fmt.Sprintf(`(b => { if (!b || b.disabled) return false; b.click(); return true })(document.querySelector(%q))`, selector), &ok)
	if !ok {
		var state string
		_ = p.tab.Eval(webState, &state, 5*time.Second)
		p.t.Fatalf("no enabled %s to click; %s", selector, state)
	}
}

func (p *webPage) selectCamera(id string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(s => { s.value = %q; s.dispatchEvent(new Event('change')) })(document.getElementById('b-camera'))`, id), nil)
	p.wait(fmt.Sprintf(`zipnvrBrowse.loaded === %q`, id), 10*time.Second)
}

// waitPlaying waits until the playback video has a frame to show and its
// time moves on.
func (p *webPage) waitPlaying(timeout time.Duration) {
	p.t.Helper()
	v := `document.getElementById('playback')`
	p.wait(v+`.readyState >= 2 && !`+v+`.paused`, timeout)
	var t0 float64
	p.eval(v+`.currentTime`, &t0)
	p.wait(fmt.Sprintf(`%s.currentTime > %f + 0.3`, v, t0), timeout)
}

// setTime types t into a datetime-local input (the page's local time).
func (p *webPage) setTime(id string, t time.Time) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(d => document.getElementById(%q).value = new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 23))(new Date(%d))`, id, t.UnixMilli()), nil)
}

// timeOf reads a datetime-local input.
func (p *webPage) timeOf(id string) time.Time {
	p.t.Helper()
	var ms int64
	p.eval(fmt.Sprintf(`new Date(document.getElementById(%q).value).getTime()`, id), &ms)
	return time.UnixMilli(ms).UTC()
}

// timelineXY is where on the screen the timeline element id shows times a and b.
func (p *webPage) timelineXY(id string, a, b time.Time) (xa, xb, y float64) {
	p.t.Helper()
	var box struct{ X0, X1, Y float64 }
	p.eval(fmt.Sprintf(`(el => { el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();
	  const x = t => r.left + r.width * (t - zipnvrBrowse.from) / (zipnvrBrowse.to - zipnvrBrowse.from);
	  return {x0: x(%d), x1: x(%d), y: r.top + r.height / 2} })(document.getElementById(%q))`, a.UnixMilli(), b.UnixMilli(), id), &box)
	return box.X0, box.X1, box.Y
}

// click2 clicks the mouse on the timeline element id where it shows time at.
func (p *webPage) clickAt(id string, at time.Time) {
	p.t.Helper()
	x, _, y := p.timelineXY(id, at, at)
	err := p.tab.Run(5*time.Second,
		chromedp.MouseEvent(chromedp.MousePressed, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)),
		chromedp.MouseEvent(chromedp.MouseReleased, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	if err != nil {
		p.t.Fatalf("click on %s: %v", id, err)
	}
}

// drag presses the mouse on the element's x for time from, moves to the
// x for time to and releases it, as a person selecting a range does.
func (p *webPage) drag(id string, from, to time.Time) {
	p.t.Helper()
	var box struct{ X0, X1, Y float64 }
	box.X0, box.X1, box.Y = p.timelineXY(id, from, to)
	held := func(e *input.DispatchMouseEventParams) { e.Buttons = 1 }
	err := p.tab.Run(5*time.Second,
		chromedp.MouseEvent(chromedp.MouseMoved, box.X0, box.Y),
		chromedp.MouseEvent(chromedp.MousePressed, box.X0, box.Y, chromedp.ButtonLeft, held, chromedp.ClickCount(1)),
		chromedp.MouseEvent(chromedp.MouseMoved, (box.X0+box.X1)/2, box.Y, chromedp.ButtonLeft, held),
		chromedp.MouseEvent(chromedp.MouseMoved, box.X1, box.Y, chromedp.ButtonLeft, held),
		chromedp.MouseEvent(chromedp.MouseReleased, box.X1, box.Y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	if err != nil {
		p.t.Fatalf("drag on %s: %v", id, err)
	}
}

func (p *webPage) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("ZIPNVR_SCREENSHOTS")
	if dir == "" {
		return
	}
	path := filepath.Join(dir, name)
	if err := p.tab.Screenshot(path); err != nil {
		p.t.Errorf("screenshot: %v", err)
		return
	}
	p.t.Logf("screenshot %s", path)
}

// noTokenInURLs checks every URL the page loaded or fetched.
func (p *webPage) noTokenInURLs(token string) {
	p.t.Helper()
	var urls []string
	p.eval(`performance.getEntriesByType('resource').map(e => e.name).concat([location.href])`, &urls)
	for _, u := range urls {
		if strings.Contains(u, token) {
			p.t.Errorf("the page put the user token in a URL: %s", u)
		}
	}
	if len(urls) < 5 {
		p.t.Errorf("the page loaded only %v", urls)
	}
}

func TestWebPage(t *testing.T) {
	t0 := time.Now().Add(-3 * time.Minute).Truncate(time.Second).UTC()
	b := newClipBed(t, t0, 3*time.Second)
	// Six 3 s recordings of cam1; the fourth (9 s to 12 s) never arrives.
	var segs []segsynth.Segment
	for i := range 6 {
		s := b.next()
		segs = append(segs, s)
		if i != 3 {
			b.upload(s)
		}
	}

	// A second hub of the same home, a real hubd: a camera with a snapshot
	// URL and an MJPEG stream (not recorded), and Hikvision PTZ.
	mj := testbed.MJPEGCamera(t, testbed.MJPEGOptions{Width: 320, Height: 180, FPS: 2})
	vc := testbed.VendorCamera(t, testbed.VendorCameraOptions{})
	var hub2 struct{ Credential string }
	b.relay.Do(t, b.relay.AdminToken, "POST", "/api/v1/admin/tenants/"+b.p.Tenant+"/hubs", map[string]string{"id": "hub2"}, http.StatusCreated, &hub2)
	testbed.StartHubd(t, fmt.Sprintf(`hub: {id: hub2, data_dir: %q}
relay: {url: %q, credential: %q}
cameras:
  - id: yard
    name: Yard
    ip: 127.0.0.1
    username: %s
    password: %s
    admin_url: %q
    ptz: {kind: hikvision}
    streams: {mjpeg: %q}
    snapshot: %q
    record: "off"
`, t.TempDir(), b.relay.URL, hub2.Credential, vc.User, vc.Pass, vc.URL+"/", mj.URL, mj.SnapshotURL()))
	waitLinkedCamera(t, b, "hub2.yard")

	br := testbed.StartBrowser(t)
	p := openWebPage(t, br, b.relay.URL, b.p.UserTk)

	// Browse: the last hour lists the five recordings and the missing one
	// as a gap (besides the hour before them and the time since).
	p.selectCamera("hub1.cam1")
	p.wait(`zipnvrBrowse.recordings.length === 5`, 10*time.Second)
	var gap struct{ Rows, Gaps int }
	p.eval(`({rows: document.querySelectorAll('#rec-list tr[data-id]').length,
	  gaps: [...document.querySelectorAll('#rec-list tr.gap')].filter(tr => tr.cells[2].textContent === '3.0 s').length})`, &gap)
	if gap.Rows != 5 || gap.Gaps != 1 {
		t.Errorf("recordings list: %d recordings, %d gap rows of 3 s; want 5 and the missing recording's gap", gap.Rows, gap.Gaps)
	}
	if n := countElems(p, "#timeline .tl-gap"); n < 2 {
		t.Errorf("timeline shows %d gaps, want the missing recording and the hour before", n)
	}

	// A range typed in: 5 s before the first recording to 7 s after the last.
	p.setTime("rec-from", t0.Add(-5*time.Second))
	p.setTime("rec-to", t0.Add(25*time.Second))
	p.eval(`document.getElementById('rec-form').requestSubmit()`, nil)
	p.wait(fmt.Sprintf(`zipnvrBrowse.from && zipnvrBrowse.from.getTime() === %d && zipnvrBrowse.to.getTime() === %d && zipnvrBrowse.recordings.length === 5`,
		t0.Add(-5*time.Second).UnixMilli(), t0.Add(25*time.Second).UnixMilli()), 10*time.Second)
	if n := countElems(p, "#timeline .tl-gap"); n != 3 {
		t.Errorf("timeline of 30 s shows %d gaps, want 3 (before, the missing recording, after)", n)
	}

	// Play the second recording from its presigned URL (versitygw): its
	// range becomes the clip's.
	var rec1 string
	p.eval(fmt.Sprintf(`zipnvrBrowse.recordings.find(r => r.start === %q).id`, segs[1].Start.Format("2006-01-02T15:04:05Z07:00")), &rec1)
	p.click(`#rec-list tr[data-id="` + rec1 + `"] button.play`)
	p.waitPlaying(15 * time.Second)
	p.wait(`document.querySelector('#rec-list tr.playing')`, 5*time.Second)
	if got := p.timeOf("clip-start"); !got.Equal(segs[1].Start) {
		t.Errorf("clip start %s after playing the recording of %s", got, segs[1].Start)
	}
	// The page finds where the recording starts on the video's clock (the
	// timeline's play head and a click on it rely on that).
	var ct float64
	p.eval(`document.getElementById('playback').currentTime - zipnvrBrowse.playing.base`, &ct)
	if ct <= 0 || ct > 3 {
		t.Errorf("playing a 3 s recording, the video is at %.3f s", ct)
	}
	// A recording ends: the next one plays (the gap is skipped).
	p.wait(fmt.Sprintf(`zipnvrBrowse.playing.id !== %q`, rec1), 10*time.Second)
	p.waitPlaying(10 * time.Second)

	// A click on the timeline plays from that time: 13.5 s is 1.5 s into
	// the recording of 12 s to 15 s.
	p.clickAt("timeline", t0.Add(13500*time.Millisecond))
	p.wait(fmt.Sprintf(`zipnvrBrowse.playing && zipnvrBrowse.playing.id === zipnvrBrowse.recordings.find(r => r.start === %q).id`,
		segs[4].Start.Format("2006-01-02T15:04:05Z07:00")), 5*time.Second)
	p.waitPlaying(10 * time.Second)
	p.eval(`document.getElementById('playback').currentTime - zipnvrBrowse.playing.base`, &ct)
	if ct < 1.3 || ct > 3 {
		t.Errorf("clicked 1.5 s into a recording: the video is at %.3f s", ct)
	}

	// An API error reaches the page: a clip that ends before it starts.
	p.eval(`document.getElementById('clip-end').value = document.getElementById('clip-start').value`, nil)
	p.click(`#clip-cut`)
	p.wait(`document.getElementById('clip-msg').className.includes('error')`, 10*time.Second)
	if msg := p.text("clip-msg"); !strings.Contains(msg, "HTTP 400") || !strings.Contains(msg, "end") {
		t.Errorf("bad clip range: the page says %q, want relay's 400 and its reason", msg)
	}

	// Clip: a range dragged on the timeline with the mouse, 1 s to 8 s.
	p.drag("timeline", t0.Add(time.Second), t0.Add(8*time.Second))
	from, to := p.timeOf("clip-start"), p.timeOf("clip-end")
	// One pixel of the timeline is 30 s / its width (25 ms at 1200 px).
	if d := from.Sub(t0.Add(time.Second)); d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("dragged from 1 s: clip start %s", from.Sub(t0))
	}
	if d := to.Sub(t0.Add(8 * time.Second)); d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("dragged to 8 s: clip end %s", to.Sub(t0))
	}
	// Zoom in lists the selection: the three recordings it touches.
	p.click(`#rec-zoomin`)
	p.wait(fmt.Sprintf(`zipnvrBrowse.from.getTime() === %d && zipnvrBrowse.recordings.length === 3`, from.UnixMilli()), 10*time.Second)
	p.click(`#clip-cut`)
	p.wait(`zipnvrBrowse.clip && zipnvrBrowse.clip.status === 'finished' && document.querySelector('#clip-result a.download')`, 30*time.Second)
	var clip struct {
		ID, URL, HLS string
		Bytes        int64
		Msg          string
	}
	p.eval(`({id: zipnvrBrowse.clip.id, url: document.querySelector('#clip-result a.download').href,
	  hls: document.querySelector('#clip-result a.hls').href, bytes: zipnvrBrowse.clip.bytes,
	  msg: document.getElementById('clip-msg').textContent})`, &clip)
	if !strings.Contains(clip.Msg, "finished") {
		t.Errorf("clip status on the page: %q", clip.Msg)
	}
	if got := httpBytes(t, clip.URL); got != clip.Bytes || got == 0 {
		t.Errorf("the page's download link gives %d bytes, the clip has %d", got, clip.Bytes)
	}
	if !strings.Contains(clip.HLS, "/playlist.m3u8?") {
		t.Errorf("HLS link %q", clip.HLS)
	}
	// It is listed, plays in the page, and goes with a confirmed delete.
	p.wait(fmt.Sprintf(`document.querySelector('#clip-list tr[data-id=%q] a.download')`, clip.ID), 10*time.Second)
	p.click(fmt.Sprintf(`#clip-list tr[data-id=%q] .links button`, clip.ID))
	p.wait(fmt.Sprintf(`zipnvrBrowse.playing && zipnvrBrowse.playing.id === %q`, clip.ID), 5*time.Second)
	p.waitPlaying(15 * time.Second)
	p.screenshot("web-browse.jpg")
	p.click(fmt.Sprintf(`#clip-list tr[data-id=%q] button.delete`, clip.ID))
	p.click(fmt.Sprintf(`#clip-list tr[data-id=%q] button.delete`, clip.ID))
	p.wait(fmt.Sprintf(`!document.querySelector('#clip-list tr[data-id=%q]') && document.getElementById('clips-msg').textContent.includes('deleted')`, clip.ID), 10*time.Second)
	b.relay.Do(t, b.p.UserTk, "GET", "/api/v1/clips/"+clip.ID, nil, http.StatusNotFound, nil)

	// PTZ on a camera without it: the relay's 409, shown.
	p.click(`#ptz [data-ptz="up"]`)
	p.wait(`document.getElementById('ptz-msg').className.includes('error')`, 10*time.Second)
	if msg := p.text("ptz-msg"); !strings.Contains(msg, "HTTP 409") || !strings.Contains(msg, "has no PTZ") {
		t.Errorf("PTZ on a camera without it: the page says %q, want relay's 409", msg)
	}

	// The hub's camera: a snapshot from the hub, shown and listed; PTZ moves it.
	p.selectCamera("hub2.yard")
	p.click(`#snap-take`)
	p.wait(`zipnvrBrowse.snapshot && zipnvrBrowse.snapshot.status === 'ready'`, 30*time.Second)
	p.wait(`(i => i && i.complete && i.naturalWidth === 320)(document.getElementById('snap-image'))`, 10*time.Second)
	p.wait(`(i => i && i.complete && i.naturalWidth === 320)(document.querySelector('#snap-list figure.ready img'))`, 10*time.Second)
	p.click(`#ptz [data-ptz="left"]`)
	p.wait(`document.getElementById('ptz-msg').textContent === 'left: done'`, 10*time.Second)
	moved := false
	for _, r := range vc.Authorized() {
		moved = moved || r.Method == "PUT" && strings.HasSuffix(r.Path, "/PTZCtrl/channels/1/continuous") && strings.Contains(r.Body, "<pan>-")
	}
	if !moved {
		t.Errorf("the camera got no pan to the left: %+v", vc.Requests())
	}
	p.eval(`document.getElementById('ptz-preset').value = 3`, nil)
	p.click(`#ptz-preset-form button`)
	p.wait(`document.getElementById('ptz-msg').textContent === 'preset/3: done'`, 10*time.Second)
	p.screenshot("web-hub.jpg")
	p.noTokenInURLs(b.p.UserTk)

	// Without S3 relay signs URLs to its own media route: they play too.
	t.Run("local media", func(t *testing.T) {
		r := testbed.StartRelay(t, testbed.RelayOptions{})
		lb := &clipBed{t: t, relay: r, p: r.Provision(t, "flat", "hub1")}
		var rep proto.CameraReportResult
		r.Do(t, lb.p.HubCredential, "PUT", proto.PathHubCameras, proto.CameraReport{Cameras: []camera.Camera{
			{ID: "cam1", Name: "Hall", Streams: camera.Streams{High: "rtsp://192.0.2.1/1"}, Record: "high"},
		}}, http.StatusOK, &rep)
		w, err := segsynth.New(segsynth.Options{Clip: webClip(t), Start: t0, SegmentDuration: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		lb.w = w
		lb.upload(lb.next())
		lp := openWebPage(t, br, r.URL, lb.p.UserTk)
		lp.wait(`zipnvrBrowse.recordings.length === 1`, 10*time.Second)
		var url string
		lp.eval(`zipnvrBrowse.recordings[0].url`, &url)
		if !strings.HasPrefix(url, r.URL+"/media/") {
			t.Errorf("recording URL %q, want relay's own media route", url)
		}
		lp.click(`#rec-list button.play`)
		lp.waitPlaying(15 * time.Second)
	})
}

// webClip is the local relay's camera stream (small: only one recording).
func webClip(t *testing.T) *fakecam.Clip {
	t.Helper()
	c, err := fakecam.EncodeClip(t.Context(), fakecam.ClipOptions{Width: 320, Height: 180, FPS: 25, Seconds: 4, GOP: 25, BitrateKbps: 300})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitLinkedCamera waits until relay has the camera with a channel and its
// hub's control link is up.
func waitLinkedCamera(t *testing.T, b *clipBed, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var c struct{ Channel string }
		req, _ := http.NewRequest("GET", b.relay.URL+"/api/v1/cameras/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+b.p.UserTk)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&c)
			resp.Body.Close()
		}
		if c.Channel != "" && strings.Contains(b.relay.Metrics(t), "\nrelay_hub_links 1\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera %s: channel %q, hub link not up after 20 s", id, c.Channel)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func countElems(p *webPage, selector string) int {
	p.t.Helper()
	var n int
	p.eval(fmt.Sprintf(`document.querySelectorAll(%q).length`, selector), &n)
	return n
}

// httpBytes downloads url and counts its bytes.
func httpBytes(t *testing.T, url string) int64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	return n
}
