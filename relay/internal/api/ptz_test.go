package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/wslink"
)

// TestPTZRoutes: the PTZ routes ask the camera's own hub over its link and
// answer with the hub's status; what relay can judge alone (a bad action
// or preset, a camera without PTZ or no longer reported, an offline hub)
// never reaches a hub.
func TestPTZRoutes(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a")
	b := e.newTenant("B", "hub-b")
	report := func(tn tenant, cams ...camera.Camera) {
		e.must(200, "PUT", proto.PathHubCameras, tn.hub, proto.CameraReport{Cameras: cams}, nil)
	}
	dome := camera.Camera{ID: "dome", Streams: camera.Streams{High: "rtsp://10.0.0.9/1"}, PTZ: camera.PTZ{Kind: "onvif"}}
	gone := camera.Camera{ID: "gone", Streams: camera.Streams{High: "rtsp://10.0.0.9/2"}, PTZ: camera.PTZ{Kind: "axis"}}
	fixed := camera.Camera{ID: "fixed", Streams: camera.Streams{High: "rtsp://10.0.0.9/3"}, PTZ: camera.PTZ{Kind: "none"}}
	report(a, dome, gone, fixed)
	report(a, dome, fixed) // "gone" is now removed
	report(b, dome)

	// Before any link: the hub is offline.
	if code, raw := e.do("POST", "/api/v1/cameras/hub-a.dome/ptz/up", a.user, nil); code != 503 || !strings.Contains(string(raw), "offline") {
		t.Fatalf("offline hub: %d %s", code, raw)
	}

	// Hub A answers as hubd does: by the camera's and action's fate.
	var mu sync.Mutex
	var got []string
	handler := func(hub string) map[string]wslink.Handler {
		return map[string]wslink.Handler{proto.LinkPTZ: func(_ context.Context, body json.RawMessage) (any, error) {
			var req proto.PTZRequest
			if err := json.Unmarshal(body, &req); err != nil {
				return nil, err
			}
			mu.Lock()
			got = append(got, hub+" "+req.Camera+" "+req.Action)
			mu.Unlock()
			switch req.Preset {
			case 9:
				return nil, wslink.Errorf(http.StatusGatewayTimeout, "camera %s did not answer the PTZ request in time", req.Camera)
			case 10:
				return nil, wslink.Errorf(http.StatusBadGateway, "camera %s refused the credentials for PTZ", req.Camera)
			case 11:
				return nil, wslink.Errorf(http.StatusConflict, "camera %s: dahua cameras have no home position", req.Camera)
			case 12:
				return nil, wslink.Errorf(0, "a hub of another version")
			}
			return nil, nil
		}}
	}
	if _, _, err := e.dialLink(a.hub, handler("a")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.dialLink(b.hub, handler("b")); err != nil {
		t.Fatal(err)
	}
	waitOnline(t, e.api.links, a.hubID, true)
	waitOnline(t, e.api.links, b.hubID, true)

	tests := []struct {
		path   string
		token  string
		status int
		says   string
		call   string // what hub A or B was asked ("" nothing)
	}{
		{"hub-a.dome/ptz/left", a.user, 200, `"action":"left"`, "a dome left"},
		{"hub-a.dome/ptz/ZoomIn", a.user, 200, `"action":"zoomin"`, "a dome zoomin"},
		{"hub-a.dome/ptz/preset/4", a.user, 200, `"preset":4`, "a dome preset"},
		{"hub-a.dome/ptz/home", adminToken, 200, `"camera":"hub-a.dome"`, "a dome home"},
		{"hub-b.dome/ptz/stop", b.user, 200, `"action":"stop"`, "b dome stop"},
		{"hub-a.dome/ptz/preset/9", a.user, 504, "in time", "a dome preset"},
		{"hub-a.dome/ptz/preset/10", a.user, 502, "refused the credentials", "a dome preset"},
		{"hub-a.dome/ptz/preset/11", a.user, 409, "no home position", "a dome preset"},
		{"hub-a.dome/ptz/preset/12", a.user, 502, "another version", "a dome preset"},
		{"hub-a.dome/ptz/spin", a.user, 400, "unknown action", ""},
		{"hub-a.dome/ptz/preset", a.user, 400, "needs its number", ""},
		{"hub-a.dome/ptz/preset/256", a.user, 400, "1-255", ""},
		{"hub-a.dome/ptz/preset/x", a.user, 400, "1-255", ""},
		{"hub-a.fixed/ptz/up", a.user, 409, "has no PTZ", ""},
		{"hub-a.gone/ptz/up", a.user, 409, "no longer reported", ""},
		{"hub-a.dome/ptz/up", b.user, 404, "not found", ""},
		{"hub-a.nosuch/ptz/up", a.user, 404, "not found", ""},
		{"hub-a.dome/ptz/up", a.hub, 403, "", ""},
	}
	for _, tt := range tests {
		mu.Lock()
		got = nil
		mu.Unlock()
		code, raw := e.do("POST", "/api/v1/cameras/"+tt.path, tt.token, nil)
		if code != tt.status || !strings.Contains(string(raw), tt.says) {
			t.Errorf("POST %s: %d %s, want %d with %q", tt.path, code, raw, tt.status, tt.says)
		}
		mu.Lock()
		calls := strings.Join(got, ",")
		mu.Unlock()
		if calls != tt.call {
			t.Errorf("POST %s: hubs asked %q, want %q", tt.path, calls, tt.call)
		}
	}
}
