package zipato_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/zipato"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/testbed"
)

// The sample is a real box's tree: it parses, and its one camera-like
// device (a COMPRO TN50 found by UPnP, never configured) has no camera
// endpoint, so it yields no camera and no problem.
func TestSampleTree(t *testing.T) {
	tree, err := zipato.ParseTree(testbed.ZipatoSample())
	if err != nil {
		t.Fatal(err)
	}
	if tree.BoxSerial != "0107B6200D01C356" || len(tree.Networks) != 2 {
		t.Fatalf("serial %q, %d networks", tree.BoxSerial, len(tree.Networks))
	}
	ip := tree.Networks["ec2bdea2-0eba-46f9-99c9-268aea758b15"]
	if ip == nil || !ip.IsIP() || len(ip.Devices) != 11 {
		t.Fatalf("IP network %+v", ip)
	}
	cams, problems := tree.Cameras()
	if len(cams) != 0 || len(problems) != 0 {
		t.Fatalf("cameras %+v, problems %+v", cams, problems)
	}
}

func TestTreeCameras(t *testing.T) {
	front := &testbed.ZipatoCamera{Name: "Front door", Keys: map[string]any{
		"username": "admin", "password": "p@ss:w/rd", "staticIp": "192.168.2.20", "port": json.Number("554"),
		"hiQualityStream":  "rtsp://${ip}:${port}/Streaming/Channels/101",
		"lowQualityStream": "rtsp://${ip}:${port}/Streaming/Channels/102",
		"mjpegUrl":         "http://${ip}/mjpeg", "snapshot": "http://${ip}/ISAPI/Streaming/channels/101/picture",
		"adminUrl": "http://${ip}/", "ptzClassName": "com.zipato.camera.ptz.HikvisionPTZ", "templateId": "CAMERA_PTZ",
	}}
	// Keys in the cluster endpoint, IP from discovery, an HTTP-only camera,
	// a Zipato ${parameter1} and the generic endpoint name.
	garden := &testbed.ZipatoCamera{Name: "GenericIpEndpoint", KeysInCluster: true, Keys: map[string]any{
		"discoveredIp": "192.168.2.21", "hiQualityStream": "http://${ip}/video.cgi?channel=${parameter1}",
		"parameter1": "2", "templateId": "CAMERA_PTZ",
	}}
	empty := &testbed.ZipatoCamera{Name: "No URLs", Keys: map[string]any{"username": "admin"}}
	badPort := &testbed.ZipatoCamera{Name: "Bad port", Keys: map[string]any{"port": "eighty", "hiQualityStream": "rtsp://x/"}}
	rtmp := &testbed.ZipatoCamera{Name: "RTMP", Keys: map[string]any{"hiQualityStream": "rtmp://x/live", "lowQualityStream": "rtsp://x/low", "ptzClassName": "com.acme.Pelco"}}
	tree, err := zipato.ParseTree(testbed.ZipatoTree(t, nil, front, garden, empty, badPort, rtmp))
	if err != nil {
		t.Fatal(err)
	}
	cams, problems := tree.Cameras()
	byID := map[string]camera.Camera{}
	for _, c := range cams {
		byID[c.ID] = c
	}
	if len(cams) != 3 {
		t.Fatalf("%d cameras: %+v", len(cams), cams)
	}
	f := byID[front.Endpoint]
	want := camera.Camera{ID: front.Endpoint, Name: "Front door", IP: "192.168.2.20", Port: 554, Username: "admin", Password: "p@ss:w/rd",
		AdminURL: "http://${ip}/", Snapshot: "http://${ip}/ISAPI/Streaming/channels/101/picture",
		Streams: camera.Streams{High: "rtsp://${ip}:${port}/Streaming/Channels/101", Low: "rtsp://${ip}:${port}/Streaming/Channels/102", MJPEG: "http://${ip}/mjpeg"},
		PTZ:     camera.PTZ{Kind: "hikvision"}}
	if !equalCam(f, want) {
		t.Errorf("front door\n got %+v\nwant %+v", f, want)
	}
	f.ApplyDefaults()
	if err := f.Validate(camera.DefaultSyntax); err != nil || f.Record != "high" {
		t.Errorf("front door does not validate: %v (record %q)", err, f.Record)
	}
	u, err := f.URL(camera.DefaultSyntax, camera.High)
	if err != nil || u.Host != "192.168.2.20:554" || u.User.Username() != "admin" {
		t.Errorf("front door URL %v, %v", u, err)
	}
	g := byID[garden.Endpoint]
	if g.Name != garden.Name+" device" || g.IP != "192.168.2.21" || g.Streams.MJPEG == "" || g.Streams.High != "" ||
		g.PTZ.Kind != "onvif" || g.Params["parameter1"] != "2" {
		t.Errorf("garden %+v", g)
	}
	gu, err := g.URL(camera.DefaultSyntax, camera.MJPEG)
	if err != nil || gu.String() != "http://192.168.2.21/video.cgi?channel=2" {
		t.Errorf("garden URL %v, %v", gu, err)
	}
	if r := byID[rtmp.Endpoint]; r.Streams.High != "" || r.Streams.Low != "rtsp://x/low" || r.PTZ.Kind != "" {
		t.Errorf("rtmp camera %+v", r)
	}
	reasons := map[string]string{}
	for _, p := range problems {
		reasons[p.Endpoint] += p.Reason + ";"
	}
	for _, c := range []struct {
		cam  *testbed.ZipatoCamera
		want string
	}{
		{empty, "no stream URL"}, {badPort, `"eighty" is not a port`}, {rtmp, `scheme "rtmp"`}, {rtmp, `"com.acme.Pelco" not known`},
	} {
		if !strings.Contains(reasons[c.cam.Endpoint], c.want) {
			t.Errorf("%s: problems %q, want %q", c.cam.Name, reasons[c.cam.Endpoint], c.want)
		}
	}
	for _, p := range problems {
		if strings.Contains(p.String(), "p@ss") {
			t.Errorf("a problem shows a password: %s", p)
		}
	}
}

func equalCam(a, b camera.Camera) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb) && a.Password == b.Password
}

// Deleted or disabled entities are not cameras.
func TestTreeSkipsDeleted(t *testing.T) {
	cam := &testbed.ZipatoCamera{Keys: map[string]any{"hiQualityStream": "rtsp://x/"}}
	var m map[string]any
	json.Unmarshal(testbed.ZipatoTree(t, nil, cam), &m)
	for _, n := range m["networks"].(map[string]any) {
		if d, ok := n.(map[string]any)["devices"].(map[string]any)[cam.Device]; ok {
			ep := d.(map[string]any)["endpoints"].(map[string]any)[cam.Endpoint].(map[string]any)
			ep["config"].(map[string]any)["status"] = "DISABLED"
		}
	}
	data, _ := json.Marshal(m)
	tree, err := zipato.ParseTree(data)
	if err != nil {
		t.Fatal(err)
	}
	if cams, _ := tree.Cameras(); len(cams) != 0 {
		t.Errorf("a disabled endpoint became a camera: %+v", cams)
	}
}

func TestParseTreeErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"empty", "", "unexpected end"},
		{"not an object", "[1,2]", "cannot unmarshal"},
		{"no networks", `{"boxSerial":"x"}`, "no \"networks\""},
		{"syntax error with line", "{\n\"networks\": {\n\"a\": {,}\n}}", "line 3"},
		{"devices not a list", `{"networks":{"n":{"devices":"x"}}}`, "want an object keyed by uuid or an array"},
		{"config not an object", `{"networks":{"n":{"config":[1]}}}`, "config is not a JSON object"},
		{"array entity without uuid", `{"networks":{"n":{"devices":[{"config":{}}]}}}`, "without uuid"},
		{"too large", `{"networks":{}, "pad":"` + strings.Repeat("x", zipato.MaxTreeBytes) + `"}`, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := zipato.ParseTree([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseTree: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	cam := &testbed.ZipatoCamera{Keys: map[string]any{"hiQualityStream": "rtsp://127.0.0.1/x"}}
	good := filepath.Join(dir, "tree.json")
	os.WriteFile(good, testbed.ZipatoTree(t, nil, cam), 0o644)
	cams, _, err := zipato.LoadFile(good)
	if err != nil || len(cams) != 1 || cams[0].ID != cam.Endpoint {
		t.Fatalf("LoadFile: %+v, %v", cams, err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"networks": {`), 0o644)
	if _, _, err := zipato.LoadFile(bad); err == nil {
		t.Error("a truncated file loaded")
	}
	if _, _, err := zipato.LoadFile(filepath.Join(dir, "none.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// FileWatch re-reads a changed file and keeps the cameras when the file
// turns bad.
func TestFileWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tree.json")
	a := &testbed.ZipatoCamera{Keys: map[string]any{"hiQualityStream": "rtsp://127.0.0.1/a"}}
	b := &testbed.ZipatoCamera{Keys: map[string]any{"hiQualityStream": "rtsp://127.0.0.1/b"}}
	os.WriteFile(path, testbed.ZipatoTree(t, nil, a), 0o644)
	got := make(chan []camera.Camera, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go zipato.FileWatch{Path: path, Interval: 20 * time.Millisecond, OnCameras: func(c []camera.Camera) { got <- c }}.Run(ctx)
	if c := <-got; len(c) != 1 {
		t.Fatalf("first read: %+v", c)
	}
	os.WriteFile(path, testbed.ZipatoTree(t, nil, a, b), 0o644)
	if c := <-got; len(c) != 2 {
		t.Fatalf("after adding: %+v", c)
	}
	os.WriteFile(path, []byte("{garbage"), 0o644)
	os.WriteFile(path, []byte("{garbage!"), 0o644)
	select {
	case c := <-got:
		t.Fatalf("a bad file changed the cameras: %+v", c)
	case <-time.After(300 * time.Millisecond):
	}
}

func FuzzParseTree(f *testing.F) {
	f.Add(testbed.ZipatoSample())
	f.Add([]byte(`{"networks":{"n":{"config":{"name":"IP"},"devices":[{"uuid":"d","endpoints":{"e":{"config":{"hiQualityStream":"rtsp://x/","port":"1"},"clusterEndpoints":[{"uuid":"c","clusterClass":"com.zipato.network.ip.IP"}]}}}]}}}`))
	f.Add([]byte(`{"networks":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := zipato.ParseTree(data)
		if err != nil {
			return
		}
		cams, _ := tree.Cameras()
		for _, c := range cams {
			if c.ID == "" {
				t.Fatalf("camera without id: %+v", c)
			}
			c.ApplyDefaults()
			_ = c.Validate(camera.DefaultSyntax) // must not panic
		}
	})
}
