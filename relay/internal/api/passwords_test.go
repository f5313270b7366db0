package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
)

// TestPasswordsNeverLeave: a report that carries passwords (a "password"
// key, or written into URL templates) is accepted, and no answer of any
// route, nor the metadata file, holds them afterwards.
func TestPasswordsNeverLeave(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a") // cam1 was reported with camera.Camera{Password: "hunter2-cam1"}
	report := `{"cameras":[
	  {"id":"cam1","name":"Front","username":"admin","password":"hunter2-json",
	   "streams":{"high":"rtsp://admin:hunter2-userinfo@${ip}/101","low":"rtsp://${username}:${password}@${ip}/102",
	              "mjpeg":"http://${ip}/video.cgi?user=admin&pwd=hunter2-query"},
	   "snapshot":"http://${ip}/snapshot.cgi?user=admin&password=hunter2-snap&res=1",
	   "admin_url":"https://admin:hunter2-admin@${ip}/"},
	  {"id":"cam2","password":{"nested":"hunter2-object"},"params":{"parameter1":"hunter2-param"}}
	]}`
	var res proto.CameraReportResult
	e.must(200, "PUT", proto.PathHubCameras, a.hub, report, &res)

	var c cameraView
	e.must(200, "GET", "/api/v1/cameras/hub-a.cam1", a.user, nil, &c)
	want := camera.Streams{
		High:  "rtsp://admin:${password}@${ip}/101",
		Low:   "rtsp://${username}:${password}@${ip}/102", // placeholders are no secret
		MJPEG: "http://${ip}/video.cgi?user=admin&pwd=xxxxx",
	}
	if c.Streams != want || c.Snapshot != "http://${ip}/snapshot.cgi?user=admin&password=xxxxx&res=1" ||
		c.AdminURL != "https://admin:${password}@${ip}/" || c.Username != "admin" {
		t.Fatalf("camera %+v", c)
	}

	req, content := segmentReq("cam1", 0)
	e.upload(a.hub, req, content)
	ch := res.Cameras[0].Channel
	var bodies []string
	for _, rt := range []struct{ method, path, tok string }{
		{"GET", "/api/v1/cameras", a.user},
		{"GET", "/api/v1/cameras", adminToken},
		{"GET", "/api/v1/cameras/hub-a.cam1", a.user},
		{"GET", "/api/v1/cameras/hub-a.cam2", a.user},
		{"POST", "/api/v1/cameras/hub-a.cam1/channel", a.user},
		{"GET", "/api/v1/channels", a.user},
		{"GET", "/api/v1/channels/" + ch, a.user},
		{"GET", "/api/v1/channels/" + ch + "/recordings", a.user},
		{"PUT", proto.PathHubCameras, a.hub},
		{"GET", "/metrics", ""},
	} {
		var body any
		if rt.method == "PUT" {
			body = report
		}
		_, raw := e.do(rt.method, rt.path, rt.tok, body)
		bodies = append(bodies, string(raw))
	}
	db, err := os.ReadFile(filepath.Join(e.store.Path()))
	if err != nil {
		t.Fatal(err)
	}
	bodies = append(bodies, string(db), e.logs.String())
	for _, b := range bodies {
		if strings.Contains(b, "hunter2") {
			i := strings.Index(b, "hunter2")
			t.Fatalf("a password leaked: ...%s...", b[max(0, i-80):min(len(b), i+40)])
		}
	}
}
