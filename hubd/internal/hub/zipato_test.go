package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/zipnvr/zipnvr/hubd/internal/config"
	"github.com/zipnvr/zipnvr/hubd/internal/hub"
	"github.com/zipnvr/zipnvr/hubd/internal/zipato"
	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

// boxCamera describes a testbed camera in the box's keys.
func boxCamera(name string, keys map[string]any) *testbed.ZipatoCamera {
	return &testbed.ZipatoCamera{Name: name, Keys: keys}
}

func hostPort(t *testing.T, raw string) (host, port, path string) {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), u.Port(), u.Path
}

// mqttWatch subscribes to everything under the box's root.
type mqttWatch struct {
	cli  mqtt.Client
	mu   sync.Mutex
	msgs map[string][]byte // last payload per topic
	all  [][]byte
}

func watchMQTT(t *testing.T, broker, user, pass string) *mqttWatch {
	w := &mqttWatch{msgs: map[string][]byte{}}
	w.cli = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("watch-" + testbed.NewUUID()[:8]).
		SetUsername(user).SetPassword(pass).SetOrderMatters(false))
	if tok := w.cli.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watch: %v", tok.Error())
	}
	t.Cleanup(func() { w.cli.Disconnect(100) })
	tok := w.cli.Subscribe(testbed.ZipatoSampleRoot+"#", 1, func(_ mqtt.Client, m mqtt.Message) {
		w.mu.Lock()
		w.msgs[m.Topic()] = append([]byte(nil), m.Payload()...)
		w.all = append(w.all, append([]byte(m.Topic()+" "), m.Payload()...))
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watch subscribe: %v", tok.Error())
	}
	return w
}

func (w *mqttWatch) publish(t *testing.T, rel, payload string) {
	t.Helper()
	if tok := w.cli.Publish(testbed.ZipatoSampleRoot+rel, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", rel, tok.Error())
	}
}

// wait waits for a payload on rel that ok accepts.
func (w *mqttWatch) wait(t *testing.T, rel string, timeout time.Duration, ok func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		p, have := w.msgs[testbed.ZipatoSampleRoot+rel]
		w.mu.Unlock()
		if have && ok(p) {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.mu.Lock()
	p := w.msgs[testbed.ZipatoSampleRoot+rel]
	w.mu.Unlock()
	t.Fatalf("no accepted message on %s; last %q", rel, p)
	return nil
}

func (r *running) waitCameras(t *testing.T, timeout time.Duration, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got []string
		for _, c := range r.hub.Cameras() {
			got = append(got, c.ID)
		}
		if fmt.Sprint(got) == fmt.Sprint(sortStrings(ids)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub cameras %v, want %v", got, sortStrings(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestZipatoBox: hubd on a box with mosquitto (password file and ACL) and
// the box simulator. The tree, in the sample's shape, has a gst-rtsp-server
// camera (Digest) and an MJPEG camera: hubd finds and records both; a third
// added to the tree is picked up, one removed is stopped (its segments
// stay); state is published retained without credentials; PTZ, snapshot and
// record commands arrive over MQTT and are answered.
func TestZipatoBox(t *testing.T) {
	testbed.RequireTools(t, "ffmpeg", "ffprobe", "mosquitto")
	acl := "user box\ntopic readwrite zipato/#\n\nuser hubd\ntopic readwrite " + testbed.ZipatoSampleRoot + "#\n"
	broker := testbed.Mosquitto(t, testbed.MosquittoOptions{Users: map[string]string{"box": "box-pw", "hubd": "mqtt-s3cret"}, ACL: acl})
	gst := testbed.GstCamera(t, testbed.GstOptions{Auth: "digest", User: "admin", Pass: "cam-s3cret", Width: 640, Height: 360, Bitrate: 800})
	mj := testbed.MJPEGCamera(t, testbed.MJPEGOptions{Auth: "digest", User: "admin", Pass: "cam-s3cret", Width: 320, Height: 240, FPS: 5})
	ptzCam := testbed.VendorCamera(t, testbed.VendorCameraOptions{User: "admin", Pass: "cam-s3cret"})

	_, gport, gpath := hostPort(t, gst.URL)
	_, mport, _ := hostPort(t, mj.URL)
	_, pport, _ := hostPort(t, ptzCam.URL)
	rtsp := boxCamera("Front door", map[string]any{
		"staticIp": "127.0.0.1", "port": gport, "username": "admin", "password": "cam-s3cret",
		"hiQualityStream": "rtsp://${ip}:${port}" + gpath, "adminUrl": "http://${ip}:" + pport + "/",
		"ptzClassName": "com.zipato.camera.HikvisionPTZ", "templateId": "CAMERA_PTZ",
	})
	mjpeg := boxCamera("Garden", map[string]any{
		"discoveredIp": "127.0.0.1", "username": "admin", "password": "cam-s3cret",
		"mjpegUrl": "http://${ip}:" + mport + "/mjpeg", "snapshot": "http://${ip}:" + mport + "/snapshot.jpg",
	})
	box := testbed.StartZipatoBox(t, testbed.ZipatoBoxOptions{Broker: broker.URL, Username: "box", Password: "box-pw",
		Tree: testbed.ZipatoTree(t, nil, rtsp, mjpeg)})
	watch := watchMQTT(t, broker.URL, "box", "box-pw")

	extra := fmt.Sprintf("zipato: {broker: %q, username: hubd, password: mqtt-s3cret, client_id: zipabox-0107B6200D01C356, request_timeout_seconds: 2, state_seconds: 0.5}\nptz: {move_seconds: 0.3}\n", broker.URL)
	r := startHubWith(t, extra, 2, "  []\n")
	r.waitCameras(t, 15*time.Second, rtsp.Endpoint, mjpeg.Endpoint)
	r.waitSegments(rtsp.Endpoint, 1, 20*time.Second)
	r.waitSegments(mjpeg.Endpoint, 1, 20*time.Second)
	if c, _ := r.hub.Camera(rtsp.Endpoint); c.Name != "Front door" || c.PTZ.Kind != "hikvision" {
		t.Errorf("front door camera %+v", c)
	}

	// State, retained, per camera.
	state := watch.wait(t, "cameras/"+rtsp.Endpoint+"/state", 5*time.Second, func(p []byte) bool {
		var s zipato.CameraState
		return json.Unmarshal(p, &s) == nil && s.Online && s.Recording && s.LastSegment != nil && s.PTZ
	})
	t.Logf("state: %s", state)
	watch.wait(t, "hubd/status", time.Second, func(p []byte) bool { return string(p) == "online" })

	// A third camera added on the box is picked up and recorded.
	clip, err := fakecam.EncodeClip(context.Background(), fakecam.ClipOptions{Width: 320, Height: 240, Seconds: 2, GOP: 25, BitrateKbps: 300})
	if err != nil {
		t.Fatal(err)
	}
	fc, err := fakecam.Start(fakecam.Options{Clip: clip, Paths: []string{"third"}})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	third := boxCamera("Third", map[string]any{"hiQualityStream": fc.URL("third"), "staticIp": "127.0.0.1"})
	box.AddCamera(third)
	r.waitCameras(t, 10*time.Second, rtsp.Endpoint, mjpeg.Endpoint, third.Endpoint)
	r.waitSegments(third.Endpoint, 1, 15*time.Second)

	// PTZ over MQTT: the camera's ISAPI gets the move, then the stop.
	watch.publish(t, "request/cameras/"+rtsp.Endpoint+"/ptz", "LEFT")
	ans := watch.wait(t, "cameras/"+rtsp.Endpoint+"/ptz", 5*time.Second, func([]byte) bool { return true })
	if !bytes.Contains(ans, []byte(`"ok":true`)) {
		t.Errorf("PTZ answer %s", ans)
	}
	time.Sleep(700 * time.Millisecond)
	if got := ptzCam.Authorized(); len(got) != 2 || got[0].Method != "PUT" || !strings.Contains(got[0].Body, "<pan>-60</pan>") || !strings.Contains(got[1].Body, "<pan>0</pan>") {
		t.Errorf("PTZ requests %+v", got)
	}
	// A camera without PTZ answers 409.
	watch.publish(t, "request/cameras/"+mjpeg.Endpoint+"/ptz", "up")
	ans = watch.wait(t, "cameras/"+mjpeg.Endpoint+"/ptz", 5*time.Second, func([]byte) bool { return true })
	if !bytes.Contains(ans, []byte(`"status":409`)) || !bytes.Contains(ans, []byte("has no PTZ")) {
		t.Errorf("no-PTZ answer %s", ans)
	}
	// Snapshot over MQTT: the JPEG of the MJPEG camera.
	watch.publish(t, "request/cameras/"+mjpeg.Endpoint+"/snapshot", "get")
	img := watch.wait(t, "cameras/"+mjpeg.Endpoint+"/snapshot/image", 10*time.Second, func([]byte) bool { return true })
	if !bytes.HasPrefix(img, []byte{0xff, 0xd8}) {
		t.Errorf("snapshot is not a JPEG: %q", img[:min(len(img), 16)])
	}

	// Bad input beside all this: a command from outside the root, a 1 MiB
	// command, garbage where the box answers. Nothing stops recording.
	before := len(ptzCam.Requests())
	if tok := watch.cli.Publish("zipato/other-box/request/cameras/"+rtsp.Endpoint+"/ptz", 1, false, "up"); !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("publish")
	}
	watch.publish(t, "request/cameras/"+rtsp.Endpoint+"/ptz", strings.Repeat("x", 1<<20))
	box.Publish(box.Root+"networks/list", []byte("{garbage"))

	// Record off over MQTT: the recorder stops, the camera stays, the
	// choice survives; on again resumes.
	watch.publish(t, "request/cameras/"+third.Endpoint+"/record", "off")
	watch.wait(t, "cameras/"+third.Endpoint+"/record", 5*time.Second, func(p []byte) bool { return bytes.Contains(p, []byte(`"ok":true`)) })
	watch.wait(t, "cameras/"+third.Endpoint+"/state", 5*time.Second, func(p []byte) bool { return bytes.Contains(p, []byte(`"recording":false`)) })
	for _, rec := range r.hub.Recorders() {
		if rec.Status().Camera == third.Endpoint {
			t.Error("third camera still recording after record off")
		}
	}
	if data, err := os.ReadFile(filepath.Join(r.dir, "record-overrides.json")); err != nil || !strings.Contains(string(data), third.Endpoint) {
		t.Errorf("record off not kept: %s, %v", data, err)
	}
	watch.publish(t, "request/cameras/"+third.Endpoint+"/record", "on")
	watch.wait(t, "cameras/"+third.Endpoint+"/state", 5*time.Second, func(p []byte) bool { return bytes.Contains(p, []byte(`"recording":true`)) })

	// The MJPEG camera removed from the box: its recorder stops, its
	// segments stay, its retained state is cleared.
	mjSegs := len(r.closed(mjpeg.Endpoint))
	box.RemoveDevice(mjpeg.Device)
	r.waitCameras(t, 10*time.Second, rtsp.Endpoint, third.Endpoint)
	watch.wait(t, "cameras/"+mjpeg.Endpoint+"/state", 5*time.Second, func(p []byte) bool { return len(p) == 0 })
	if n := len(r.closed(mjpeg.Endpoint)); n < mjSegs || n == 0 {
		t.Errorf("removed camera's segments: %d, had %d", n, mjSegs)
	}
	if len(ptzCam.Requests()) != before {
		t.Errorf("bad commands reached the camera: %v", ptzCam.Requests()[before:])
	}
	r.waitSegments(rtsp.Endpoint, 3, 20*time.Second)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r.check(rtsp.Endpoint, "h264", 25, 50)
	checkMJPEG(t, r, mjpeg.Endpoint)
	r.check(third.Endpoint, "h264", 25, 25)

	// No credential in the log or on the broker.
	logs := r.logs.String()
	watch.mu.Lock()
	defer watch.mu.Unlock()
	for _, secret := range []string{"cam-s3cret", "mqtt-s3cret", "box-pw"} {
		if strings.Contains(logs, secret) {
			t.Errorf("%s in hubd's log", secret)
		}
		for _, m := range watch.all {
			// The box's own info answers carry the camera keys, passwords
			// included (that is its API); what hubd publishes must not.
			if !hubdTopic(m) {
				continue
			}
			if bytes.Contains(m, []byte(secret)) {
				t.Errorf("%s on the broker: %.80s", secret, m)
			}
		}
	}
	if !strings.Contains(logs, "MQTT command ignored") && !strings.Contains(logs, "MQTT command refused") {
		t.Error("the 1 MiB command was not logged")
	}
}

// TestDeviceTreeFile: cameras from a device-tree file; a bad file refuses
// the start naming the key; a file changed at run time is followed.
func TestDeviceTreeFile(t *testing.T) {
	clip, err := fakecam.EncodeClip(context.Background(), fakecam.ClipOptions{Width: 320, Height: 240, Seconds: 2, GOP: 25, BitrateKbps: 300})
	if err != nil {
		t.Fatal(err)
	}
	fc, err := fakecam.Start(fakecam.Options{Clip: clip, Paths: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"networks": {"x": {"devices": 7}}}`), 0o644)
	cfg, err := config.Parse([]byte(fmt.Sprintf("hub: {data_dir: %q}\nzipato: {device_tree_file: %q}\n", t.TempDir(), bad)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "zipato.device_tree_file") {
		t.Fatalf("bad device tree file: %v", err)
	}

	a := boxCamera("A", map[string]any{"hiQualityStream": fc.URL("a")})
	keyless := boxCamera("Keyless", map[string]any{"username": "x"})
	path := filepath.Join(dir, "tree.json")
	os.WriteFile(path, testbed.ZipatoTree(t, nil, a, keyless), 0o644)
	r := startHubWith(t, fmt.Sprintf("zipato: {device_tree_file: %q}\n", path), 1, "  []\n")
	r.waitCameras(t, 5*time.Second, a.Endpoint)
	r.waitSegments(a.Endpoint, 1, 10*time.Second)
	if !strings.Contains(r.logs.String(), "no stream URL") {
		t.Error("the keyless endpoint was not logged")
	}
	b := boxCamera("B", map[string]any{"hiQualityStream": fc.URL("b")})
	os.WriteFile(path, testbed.ZipatoTree(t, nil, a, b), 0o644)
	r.waitCameras(t, 10*time.Second, a.Endpoint, b.Endpoint)
	os.WriteFile(path, []byte("{truncated"), 0o644)
	time.Sleep(6 * time.Second)
	r.waitCameras(t, time.Second, a.Endpoint, b.Endpoint)
	if !strings.Contains(r.logs.String(), "device tree file not usable") {
		t.Error("the broken file was not logged")
	}
}

// TestHubPTZ: the statuses the relay and MQTT answer with.
func TestHubPTZ(t *testing.T) {
	vc := testbed.VendorCamera(t, testbed.VendorCameraOptions{Auth: "basic"})
	u, _ := url.Parse(vc.URL)
	cams := fmt.Sprintf("  - id: ptzcam\n    ip: 127.0.0.1\n    username: %s\n    password: %s\n    admin_url: 'http://${ip}:%s/'\n    ptz: {kind: axis}\n    record: 'off'\n", vc.User, vc.Pass, u.Port()) +
		"  - id: fixed\n    ip: 127.0.0.1\n    record: 'off'\n" +
		fmt.Sprintf("  - id: wrongpw\n    ip: 127.0.0.1\n    username: admin\n    password: nope\n    admin_url: 'http://${ip}:%s/'\n    ptz: {kind: hikvision}\n    record: 'off'\n", u.Port()) +
		"  - id: dead\n    ip: 127.0.0.1\n    admin_url: 'http://127.0.0.1:1/'\n    ptz: {kind: foscam}\n    record: 'off'\n"
	r := startHubWith(t, "ptz: {move_seconds: 0.2, timeout_seconds: 1}\n", 1, cams)
	ctx := context.Background()
	tests := []struct {
		cam, action string
		preset      int
		status      int
	}{
		{"ptzcam", "home", 0, 0},
		{"ptzcam", "preset", 4, 0},
		{"ptzcam", "jump", 0, http.StatusBadRequest},
		{"ptzcam", "preset", 300, http.StatusBadRequest},
		{"nosuch", "up", 0, http.StatusNotFound},
		{"fixed", "up", 0, http.StatusConflict},
		{"wrongpw", "up", 0, http.StatusBadGateway},
		{"dead", "up", 0, http.StatusBadGateway},
	}
	for _, tt := range tests {
		err := r.hub.PTZ(ctx, tt.cam, tt.action, tt.preset)
		var se *hub.StatusError
		switch {
		case tt.status == 0 && err != nil:
			t.Errorf("%s %s: %v", tt.cam, tt.action, err)
		case tt.status != 0 && (!errors.As(err, &se) || se.Status != tt.status):
			t.Errorf("%s %s %d: %v, want status %d", tt.cam, tt.action, tt.preset, err, tt.status)
		}
		if err != nil && strings.Contains(err.Error(), "nope") {
			t.Errorf("password in %v", err)
		}
	}
	if err := r.hub.PTZ(ctx, "fixed", "up", 0); err == nil || err.Error() != "camera fixed has no PTZ" {
		t.Errorf("no-PTZ message: %v", err)
	}
	got := vc.Authorized()
	if len(got) != 2 || got[0].Query != "move=home&camera=1" || got[1].Query != "gotoserverpresetno=4&camera=1" {
		t.Errorf("camera got %+v", got)
	}
}

// hubdTopic says whether a watched message (topic, space, payload) is on a
// topic hubd publishes: its status, camera state and answers, requests.
func hubdTopic(m []byte) bool {
	for _, rel := range []string{"hubd/", "cameras/", "request/"} {
		if bytes.HasPrefix(m, []byte(testbed.ZipatoSampleRoot+rel)) {
			return true
		}
	}
	return false
}

// checkMJPEG judges an MJPEG camera's segments like r.check, but decodes
// with the file's own time base: an MJPEG camera's frames are stamped on
// arrival, and ffmpeg's null output otherwise rounds them to the frame rate
// it guesses (two frames arriving 120 ms apart at 5 fps land on one tick
// and -xerror fails although every DTS in the file is strictly increasing).
func checkMJPEG(t *testing.T, r *running, cam string) {
	t.Helper()
	segs := r.segments(cam)
	if len(segs) == 0 {
		t.Errorf("%s: no segments", cam)
	}
	for _, s := range segs {
		path := filepath.Join(r.dir, s.Path)
		p := testbed.ProbeFile(t, path)
		if p.ProbeError != "" || p.Codec != "mjpeg" || p.Packets == 0 || p.Packets != s.Frames || !p.MonotonicDTS || !strings.HasPrefix(p.FirstFlags, "K") {
			t.Errorf("%s: probe %+v, index frames %d", s.Path, p, s.Frames)
		}
		out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", path,
			"-enc_time_base", "-1", "-f", "null", "-").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("%s: decode: %v %s", s.Path, err, out)
		}
	}
}

// TestRelayPTZ: POST /api/v1/cameras/{id}/ptz/... on a relay process goes
// over the hub's control link to the camera, and the hub's answer comes
// back as the API's status: a move and its automatic stop reach the
// camera's HTTP API, a preset too; a camera without PTZ, an unknown action,
// a camera that refuses the credentials, another tenant, and a hub gone
// offline each get their own clear error.
func TestRelayPTZ(t *testing.T) {
	relay := testbed.StartRelay(t, testbed.RelayOptions{})
	p := relay.Provision(t, "home", "hub1")
	other := relay.Provision(t, "neighbour", "hub2")
	vc := testbed.VendorCamera(t, testbed.VendorCameraOptions{User: "admin", Pass: "cam-s3cret"})
	_, port, _ := hostPort(t, vc.URL)
	cams := fmt.Sprintf("  - id: dome\n    ip: 127.0.0.1\n    username: admin\n    password: cam-s3cret\n    admin_url: 'http://${ip}:%s/'\n    ptz: {kind: hikvision}\n    streams: {high: 'rtsp://127.0.0.1:1/x'}\n    record: 'off'\n", port) +
		"  - id: fixed\n    ip: 127.0.0.1\n    streams: {high: 'rtsp://127.0.0.1:1/y'}\n    record: 'off'\n" +
		fmt.Sprintf("  - id: wrongpw\n    ip: 127.0.0.1\n    username: admin\n    password: nope\n    admin_url: 'http://${ip}:%s/'\n    ptz: {kind: axis}\n    streams: {high: 'rtsp://127.0.0.1:1/z'}\n    record: 'off'\n", port)
	r := startHubWith(t, fmt.Sprintf("relay: {url: %q, credential: %q}\nptz: {move_seconds: 0.3}\n", relay.URL, p.HubCredential), 2, cams)

	// The relay knows the cameras once the hub reported them and its link is up.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list struct{ Cameras []struct{ ID string } }
		relay.Do(t, p.UserTk, "GET", "/api/v1/cameras", nil, http.StatusOK, &list)
		if len(list.Cameras) == 3 && r.hub.Link().Up() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay cameras %+v, link up %v", list.Cameras, r.hub.Link().Up())
		}
		time.Sleep(100 * time.Millisecond)
	}
	post := func(token, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", relay.URL+"/api/v1/cameras/"+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		return resp.StatusCode, body.String()
	}

	tests := []struct {
		token, path string
		status      int
		says        string // in the JSON answer
	}{
		{p.UserTk, "hub1.dome/ptz/LEFT", 200, `"action":"left"`},
		{p.UserTk, "hub1.dome/ptz/preset/7", 200, `"preset":7`},
		{p.UserTk, "hub1.fixed/ptz/up", 409, "has no PTZ"},
		{p.UserTk, "hub1.dome/ptz/spin", 400, "unknown action"},
		{p.UserTk, "hub1.dome/ptz/preset/0", 400, "1-255"},
		{p.UserTk, "hub1.dome/ptz/preset", 400, "needs its number"},
		{p.UserTk, "hub1.wrongpw/ptz/home", 502, "refused the credentials"},
		{p.UserTk, "hub1.nosuch/ptz/up", 404, "not found"},
		{other.UserTk, "hub1.dome/ptz/up", 404, "not found"},
	}
	for i, tt := range tests {
		code, body := post(tt.token, tt.path)
		if code != tt.status || !strings.Contains(body, tt.says) {
			t.Errorf("POST %s: %d %s, want %d with %q", tt.path, code, body, tt.status, tt.says)
		}
		if i == 0 {
			// Let the move stop by itself (a preset would cancel the stop).
			waitAuthorized(t, vc, 2, 3*time.Second)
		}
		for _, secret := range []string{"cam-s3cret", "nope"} {
			if strings.Contains(body, secret) {
				t.Errorf("POST %s: a password in the answer: %s", tt.path, body)
			}
		}
	}
	got := vc.Authorized()
	want := []struct{ method, path, body string }{
		{"PUT", "/ISAPI/PTZCtrl/channels/1/continuous", "<pan>-60</pan><tilt>0</tilt><zoom>0</zoom>"},
		{"PUT", "/ISAPI/PTZCtrl/channels/1/continuous", "<pan>0</pan><tilt>0</tilt><zoom>0</zoom>"},
		{"PUT", "/ISAPI/PTZCtrl/channels/1/presets/7/goto", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("camera got %d authorized requests, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if g := got[i]; g.Method != w.method || g.Path != w.path || !strings.Contains(g.Body, w.body) || g.AuthScheme != "Digest" {
			t.Errorf("request %d: %s %s %q (%s), want %s %s %q (Digest)", i, g.Method, g.Path, g.Body, g.AuthScheme, w.method, w.path, w.body)
		}
	}
	if gap := got[1].Time.Sub(got[0].Time); gap < 300*time.Millisecond || gap > 1300*time.Millisecond {
		t.Errorf("the move stopped %v after it started, want about 300 ms (ptz.move_seconds)", gap)
	}

	// The hub gone: a clear 503, not a hang.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, body := post(p.UserTk, "hub1.dome/ptz/up")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "offline") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub stopped: %d %s, want 503 offline", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitAuthorized(t *testing.T, cam *testbed.PTZCamera, n int, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); len(cam.Authorized()) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("camera got %d authorized requests, want %d: %+v", len(cam.Authorized()), n, cam.Authorized())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestONVIFDiscovery: with onvif.discovery on, a camera that is in no
// device tree is found by WS-Discovery, described over ONVIF (profiles,
// stream URIs, WS-Security digest), recorded, and steered by ONVIF PTZ.
func TestONVIFDiscovery(t *testing.T) {
	clip, err := fakecam.EncodeClip(context.Background(), fakecam.ClipOptions{Width: 320, Height: 240, Seconds: 2, GOP: 25, BitrateKbps: 300})
	if err != nil {
		t.Fatal(err)
	}
	fc, err := fakecam.Start(fakecam.Options{Clip: clip, Paths: []string{"main"}})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	oc := testbed.ONVIFCamera(t, testbed.ONVIFCameraOptions{Name: "Porch", PTZ: true, User: "operator", Pass: "onvif-s3cret", StreamURLs: []string{fc.URL("main")}})
	extra := fmt.Sprintf("onvif: {discovery: true, address: %q, probe_seconds: 0.3, username: %s, password: %s}\nptz: {move_seconds: 0.2}\n",
		oc.DiscoveryAddr, oc.User, oc.Pass)
	r := startHubWith(t, extra, 2, "  []\n")
	var id string
	for deadline := time.Now().Add(10 * time.Second); id == ""; time.Sleep(50 * time.Millisecond) {
		for _, c := range r.hub.Cameras() {
			id = c.ID
		}
		if time.Now().After(deadline) {
			t.Fatal("no camera discovered")
		}
	}
	c, _ := r.hub.Camera(id)
	if src, _ := r.hub.CameraSource(id); src != hub.FromONVIF || c.Name != "Porch" || c.PTZ.Kind != "onvif" {
		t.Errorf("discovered camera %+v from %s", c, src)
	}
	r.waitSegments(id, 1, 15*time.Second)
	if err := r.hub.PTZ(context.Background(), id, "right", 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	var acts []string
	for _, req := range oc.Authorized() {
		if req.Path == "/onvif/ptz_service" {
			acts = append(acts, req.Action)
		}
	}
	if fmt.Sprint(acts) != "[ContinuousMove Stop]" {
		t.Errorf("ONVIF PTZ calls %v, want ContinuousMove then Stop", acts)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r.check(id, "h264", 25, 25)
	if strings.Contains(r.logs.String(), oc.Pass) {
		t.Error("the ONVIF password is in the log")
	}
}
