package ptz_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/onvif"
	"github.com/zipnvr/zipnvr/hubd/internal/ptz"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.RunInNetNS(m)) }

// vendorCam is a camera whose HTTP API is the test camera at base.
func vendorCam(kind, base, user, pass string) camera.Camera {
	u, _ := url.Parse(base)
	return camera.Camera{ID: "cam1", IP: u.Hostname(), Username: user, Password: pass,
		AdminURL: "http://${ip}:" + u.Port() + "/", PTZ: camera.PTZ{Kind: kind}}
}

func controller(t *testing.T, cam camera.Camera, move time.Duration) *ptz.Controller {
	t.Helper()
	c, err := ptz.New(ptz.Config{Camera: cam, Syntax: camera.DefaultSyntax, MoveDuration: move, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type want struct {
	method, path, query, body string
}

// TestVendorRequests: each action of each vendor driver sends exactly the
// request of the vendor's API, authenticated the vendor's way.
func TestVendorRequests(t *testing.T) {
	const hikBody = `<?xml version="1.0" encoding="UTF-8"?><PTZData><pan>%d</pan><tilt>%d</tilt><zoom>%d</zoom></PTZData>`
	hik := func(p, tl, z int) want {
		return want{"PUT", "/ISAPI/PTZCtrl/channels/1/continuous", "", fmt.Sprintf(hikBody, p, tl, z)}
	}
	dahua := func(action, code string, arg2 int) want {
		return want{"GET", "/cgi-bin/ptz.cgi", "action=" + action + "&channel=1&code=" + code + "&arg1=0&arg2=" + strconv.Itoa(arg2) + "&arg3=0", ""}
	}
	axis := func(q string) want { return want{"GET", "/axis-cgi/com/ptz.cgi", q + "&camera=1", ""} }
	foscam := func(cmd string, extra ...string) want {
		q := url.Values{"cmd": {cmd}, "usr": {"admin"}, "pwd": {"p@ss w0rd"}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Set(extra[i], extra[i+1])
		}
		return want{"GET", "/cgi-bin/CGIProxy.fcgi", q.Encode(), ""}
	}
	tests := []struct {
		kind, auth string
		action     string
		preset     int
		want       []want // move, then the automatic stop
	}{
		{"hikvision", "digest", "up", 0, []want{hik(0, 60, 0), hik(0, 0, 0)}},
		{"hikvision", "digest", "down", 0, []want{hik(0, -60, 0), hik(0, 0, 0)}},
		{"hikvision", "digest", "left", 0, []want{hik(-60, 0, 0), hik(0, 0, 0)}},
		{"hikvision", "basic", "right", 0, []want{hik(60, 0, 0), hik(0, 0, 0)}},
		{"hikvision", "digest", "zoomin", 0, []want{hik(0, 0, 60), hik(0, 0, 0)}},
		{"hikvision", "digest", "zoomout", 0, []want{hik(0, 0, -60), hik(0, 0, 0)}},
		{"hikvision", "digest", "stop", 0, []want{hik(0, 0, 0)}},
		{"hikvision", "digest", "home", 0, []want{{"PUT", "/ISAPI/PTZCtrl/channels/1/homeposition/goto", "", ""}}},
		{"hikvision", "digest", "preset", 7, []want{{"PUT", "/ISAPI/PTZCtrl/channels/1/presets/7/goto", "", ""}}},
		{"dahua", "digest", "up", 0, []want{dahua("start", "Up", 4), dahua("stop", "Up", 0)}},
		{"dahua", "digest", "down", 0, []want{dahua("start", "Down", 4), dahua("stop", "Down", 0)}},
		{"dahua", "digest", "left", 0, []want{dahua("start", "Left", 4), dahua("stop", "Left", 0)}},
		{"dahua", "digest", "right", 0, []want{dahua("start", "Right", 4), dahua("stop", "Right", 0)}},
		{"dahua", "digest", "zoomin", 0, []want{dahua("start", "ZoomTele", 4), dahua("stop", "ZoomTele", 0)}},
		{"dahua", "basic", "zoomout", 0, []want{dahua("start", "ZoomWide", 4), dahua("stop", "ZoomWide", 0)}},
		{"dahua", "digest", "preset", 3, []want{dahua("start", "GotoPreset", 3)}},
		{"axis", "digest", "up", 0, []want{axis("continuouspantiltmove=0,50"), axis("continuouspantiltmove=0,0")}},
		{"axis", "digest", "down", 0, []want{axis("continuouspantiltmove=0,-50"), axis("continuouspantiltmove=0,0")}},
		{"axis", "digest", "left", 0, []want{axis("continuouspantiltmove=-50,0"), axis("continuouspantiltmove=0,0")}},
		{"axis", "digest", "right", 0, []want{axis("continuouspantiltmove=50,0"), axis("continuouspantiltmove=0,0")}},
		{"axis", "digest", "zoomin", 0, []want{axis("continuouszoommove=50"), axis("continuouszoommove=0")}},
		{"axis", "digest", "zoomout", 0, []want{axis("continuouszoommove=-50"), axis("continuouszoommove=0")}},
		{"axis", "digest", "home", 0, []want{axis("move=home")}},
		{"axis", "digest", "preset", 12, []want{axis("gotoserverpresetno=12")}},
		{"foscam", "query", "up", 0, []want{foscam("ptzMoveUp"), foscam("ptzStopRun")}},
		{"foscam", "query", "down", 0, []want{foscam("ptzMoveDown"), foscam("ptzStopRun")}},
		{"foscam", "query", "left", 0, []want{foscam("ptzMoveLeft"), foscam("ptzStopRun")}},
		{"foscam", "query", "right", 0, []want{foscam("ptzMoveRight"), foscam("ptzStopRun")}},
		{"foscam", "query", "zoomin", 0, []want{foscam("zoomIn"), foscam("zoomStop")}},
		{"foscam", "query", "zoomout", 0, []want{foscam("zoomOut"), foscam("zoomStop")}},
		{"foscam", "query", "stop", 0, []want{foscam("ptzStopRun")}},
		{"foscam", "query", "home", 0, []want{foscam("ptzReset")}},
		{"foscam", "query", "preset", 2, []want{foscam("ptzGotoPresetPoint", "name", "2")}},
	}
	const move = 150 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.auth+"/"+tt.action, func(t *testing.T) {
			t.Parallel()
			cam := testbed.VendorCamera(t, testbed.VendorCameraOptions{Auth: tt.auth, User: "admin", Pass: "p@ss w0rd"})
			c := controller(t, vendorCam(tt.kind, cam.URL, "admin", "p@ss w0rd"), move)
			if err := c.Do(context.Background(), tt.action, tt.preset); err != nil {
				t.Fatal(err)
			}
			waitRequests(t, cam, len(tt.want), move+time.Second)
			if len(tt.want) == 1 {
				time.Sleep(move + 100*time.Millisecond) // no automatic stop may come
			}
			got := cam.Authorized()
			if len(got) != len(tt.want) {
				t.Fatalf("%d authorized requests, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Method != w.method || g.Path != w.path || g.Query != w.query || g.Body != w.body {
					t.Errorf("request %d:\n got %s %s?%s %q\nwant %s %s?%s %q", i, g.Method, g.Path, g.Query, g.Body, w.method, w.path, w.query, w.body)
				}
				switch tt.auth {
				case "digest":
					if g.AuthScheme != "Digest" {
						t.Errorf("request %d authenticated with %q, want Digest", i, g.AuthScheme)
					}
				case "basic":
					if g.AuthScheme != "Basic" {
						t.Errorf("request %d authenticated with %q, want Basic", i, g.AuthScheme)
					}
				case "query":
					if g.AuthScheme != "" {
						t.Errorf("request %d sent an Authorization header to a Foscam", i)
					}
				}
			}
			if len(got) == 2 {
				if gap := got[1].Time.Sub(got[0].Time); gap < move || gap > move+time.Second {
					t.Errorf("stop came %v after the move, want about %v", gap, move)
				}
			}
		})
	}
}

func waitRequests(t *testing.T, cam *testbed.PTZCamera, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(cam.Authorized()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// TestONVIFRequests: ContinuousMove with the move's time as Timeout and a
// Stop after it, GotoPreset, GotoHomePosition, each with a valid
// WS-Security digest for the PTZ profile the camera offers.
func TestONVIFRequests(t *testing.T) {
	cam := testbed.ONVIFCamera(t, testbed.ONVIFCameraOptions{PTZ: true, StreamURLs: []string{"rtsp://127.0.0.1:8554/main", "rtsp://127.0.0.1:8554/sub"}})
	c := controller(t, camera.Camera{ID: "cam1", IP: "127.0.0.1", Username: cam.User, Password: cam.Pass,
		PTZ: camera.PTZ{Kind: "onvif"}, Params: map[string]string{onvif.ParamURL: cam.DeviceURL}}, 300*time.Millisecond)
	ctx := context.Background()

	ptzCalls := func() []testbed.PTZRequest {
		var out []testbed.PTZRequest
		for _, r := range cam.Authorized() {
			if r.Path == "/onvif/ptz_service" {
				out = append(out, r)
			}
		}
		return out
	}
	if err := c.Do(ctx, "left", 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	calls := ptzCalls()
	if len(calls) != 2 || calls[0].Action != "ContinuousMove" || calls[1].Action != "Stop" {
		t.Fatalf("calls %+v", calls)
	}
	for _, s := range []string{`<tptz:ProfileToken>prof0</tptz:ProfileToken>`, `<tt:PanTilt x="-0.5" y="0"/>`, `<tptz:Timeout>PT0.3S</tptz:Timeout>`} {
		if !strings.Contains(calls[0].Body, s) {
			t.Errorf("ContinuousMove lacks %s:\n%s", s, calls[0].Body)
		}
	}
	if strings.Contains(calls[0].Body, "<tt:Zoom") || strings.Contains(calls[0].Body, cam.Pass) {
		t.Errorf("ContinuousMove body:\n%s", calls[0].Body)
	}
	if gap := calls[1].Time.Sub(calls[0].Time); gap < 300*time.Millisecond || gap > time.Second {
		t.Errorf("Stop %v after ContinuousMove, want about 300 ms", gap)
	}
	if !strings.Contains(calls[1].Body, "<tptz:PanTilt>true</tptz:PanTilt><tptz:Zoom>true</tptz:Zoom>") {
		t.Errorf("Stop body:\n%s", calls[1].Body)
	}

	cam.Reset()
	// A move replaced by another before its time: one stop, after the last.
	c.Do(ctx, "zoomin", 0)
	time.Sleep(100 * time.Millisecond)
	c.Do(ctx, "up", 0)
	time.Sleep(700 * time.Millisecond)
	calls = ptzCalls()
	if len(calls) != 3 || calls[0].Action != "ContinuousMove" || calls[1].Action != "ContinuousMove" || calls[2].Action != "Stop" {
		t.Fatalf("calls %+v", calls)
	}
	if !strings.Contains(calls[0].Body, `<tt:Zoom x="0.5"/>`) || strings.Contains(calls[0].Body, "PanTilt") || !strings.Contains(calls[1].Body, `<tt:PanTilt x="0" y="0.5"/>`) {
		t.Errorf("zoom then up:\n%s\n%s", calls[0].Body, calls[1].Body)
	}

	cam.Reset()
	// An explicit stop cancels the automatic one.
	c.Do(ctx, "right", 0)
	c.Do(ctx, "stop", 0)
	time.Sleep(600 * time.Millisecond)
	if calls = ptzCalls(); len(calls) != 2 || calls[1].Action != "Stop" {
		t.Fatalf("move, stop: calls %+v", calls)
	}

	cam.Reset()
	if err := c.Do(ctx, "preset", 5); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "home", 0); err != nil {
		t.Fatal(err)
	}
	calls = ptzCalls()
	if len(calls) != 2 || calls[0].Action != "GotoPreset" || !strings.Contains(calls[0].Body, "<tptz:PresetToken>5</tptz:PresetToken>") ||
		calls[1].Action != "GotoHomePosition" || !strings.Contains(calls[1].Body, "<tptz:ProfileToken>prof0</tptz:ProfileToken>") {
		t.Fatalf("preset, home: %+v", calls)
	}
	for _, r := range cam.Requests() {
		if strings.Contains(r.Body, cam.Pass) {
			t.Fatalf("the password went over the wire in %s", r.Action)
		}
	}
}

// TestONVIFClockAndDigest: a camera 10 minutes ahead refuses a token
// created on our clock; the client learns the camera's time first. A
// camera that also wants HTTP Digest gets it.
func TestONVIFClockAndDigest(t *testing.T) {
	for _, o := range []testbed.ONVIFCameraOptions{
		{PTZ: true, StreamURLs: []string{"rtsp://127.0.0.1/x"}, ClockOffset: 10 * time.Minute},
		{PTZ: true, StreamURLs: []string{"rtsp://127.0.0.1/x"}, HTTPDigest: true},
	} {
		cam := testbed.ONVIFCamera(t, o)
		c := controller(t, camera.Camera{ID: "c", Username: cam.User, Password: cam.Pass, PTZ: camera.PTZ{Kind: "onvif"},
			Params: map[string]string{onvif.ParamURL: cam.DeviceURL}}, time.Second)
		if err := c.Do(context.Background(), "home", 0); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// TestErrors: no PTZ, unknown action, a refused password, an unreachable
// camera: each a clear error of its own kind, no password in any message.
func TestErrors(t *testing.T) {
	if _, err := ptz.New(ptz.Config{Camera: camera.Camera{ID: "cam1"}}); !errors.Is(err, ptz.ErrNoPTZ) || !strings.Contains(err.Error(), "cam1") {
		t.Errorf("no PTZ: %v", err)
	}
	cam := testbed.VendorCamera(t, testbed.VendorCameraOptions{})
	c := controller(t, vendorCam("hikvision", cam.URL, cam.User, cam.Pass), time.Second)
	for _, a := range []struct {
		action string
		preset int
	}{{"spin", 0}, {"preset", 0}, {"preset", 256}, {"up", 3}, {"", 0}} {
		if err := c.Do(context.Background(), a.action, a.preset); !errors.Is(err, ptz.ErrBadAction) {
			t.Errorf("%q %d: %v", a.action, a.preset, err)
		}
	}
	if n := len(cam.Requests()); n != 0 {
		t.Errorf("bad actions reached the camera: %d requests", n)
	}

	wrong := controller(t, vendorCam("axis", cam.URL, cam.User, "hunter2"), time.Second)
	var ce *ptz.CameraError
	if err := wrong.Do(context.Background(), "home", 0); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Errorf("wrong password: %v", err)
	}
	d := controller(t, vendorCam("dahua", cam.URL, cam.User, cam.Pass), time.Second)
	if err := d.Do(context.Background(), "home", 0); !errors.Is(err, ptz.ErrUnsupported) {
		t.Errorf("dahua home: %v", err)
	}
	refusing := testbed.VendorCamera(t, testbed.VendorCameraOptions{Status: http.StatusForbidden})
	r := controller(t, vendorCam("hikvision", refusing.URL, refusing.User, refusing.Pass), time.Second)
	if err := r.Do(context.Background(), "home", 0); !errors.As(err, &ce) || ce.Status != http.StatusForbidden {
		t.Errorf("refusing camera: %v", err)
	}
	fos := controller(t, camera.Camera{ID: "f", IP: "127.0.0.1", Username: "admin", Password: "hunter2",
		AdminURL: "http://127.0.0.1:1/", PTZ: camera.PTZ{Kind: "foscam"}}, time.Second)
	err := fos.Do(context.Background(), "home", 0)
	if !errors.As(err, &ce) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable Foscam: %v", err)
	}
	// An ONVIF camera without the PTZ service.
	oc := testbed.ONVIFCamera(t, testbed.ONVIFCameraOptions{StreamURLs: []string{"rtsp://127.0.0.1/x"}})
	o := controller(t, camera.Camera{ID: "o", Username: oc.User, Password: oc.Pass, PTZ: camera.PTZ{Kind: "onvif"},
		Params: map[string]string{onvif.ParamURL: oc.DeviceURL}}, time.Second)
	if err := o.Do(context.Background(), "up", 0); err == nil || !strings.Contains(err.Error(), "no ONVIF PTZ service") {
		t.Errorf("ONVIF without PTZ: %v", err)
	}
}
