package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// TestFullFlow: admin creates a tenant, a user and a hub; the hub reports
// cameras, presigns, uploads (the fake store takes the object) and
// notifies; the user lists the recordings with download URLs.
func TestFullFlow(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("Acme", "hub-1")
	if len(tn.cams.Cameras) != 2 || tn.cams.Cameras[0].CameraID != "hub-1.cam1" || tn.cams.Cameras[0].Channel == "" {
		t.Fatalf("report result %+v", tn.cams)
	}

	// The user sees both cameras with a channel each.
	var cams struct{ Cameras []cameraView }
	e.must(200, "GET", "/api/v1/cameras", tn.user, nil, &cams)
	if len(cams.Cameras) != 2 || cams.Cameras[0].ID != "hub-1.cam1" || cams.Cameras[0].Local != "cam1" || cams.Cameras[0].Name != "Front" ||
		cams.Cameras[0].Hub != "hub-1" || cams.Cameras[0].Channel == "" || cams.Cameras[0].Streams.High != "rtsp://${ip}/101" {
		t.Fatalf("cameras %+v", cams)
	}
	chID := cams.Cameras[0].Channel
	var ch channelView
	e.must(200, "POST", "/api/v1/cameras/hub-1.cam1/channel", tn.user, nil, &ch)
	if ch.ID != chID || ch.Prefix != tn.id+"/"+chID+"/" || ch.RetentionDays != 30 || ch.Camera != "hub-1.cam1" {
		t.Fatalf("existing channel %+v", ch)
	}

	// The hub uploads 5 segments.
	var keys []string
	for i := range 5 {
		req, content := segmentReq("cam1", i)
		var up proto.Upload
		e.must(200, "POST", proto.PathHubUploads, tn.hub, req, &up)
		wantKey := fmt.Sprintf("%s%s/cam1/2026/11/25/11%02d%02d.000.mp4", tn.id+"/", chID, (i*4)/60, (i*4)%60)
		if up.Key != wantKey || up.Method != "PUT" || !strings.HasPrefix(up.URL, "https://objects.test/") ||
			up.Headers.Get("Content-Length") != fmt.Sprint(len(content)) || up.Expires.Before(time.Now().Add(14*time.Minute)) {
			t.Fatalf("upload %d: %+v, want key %s", i, up, wantKey)
		}
		code, rec := e.upload(tn.hub, req, content)
		if code != 201 || rec.ID != store.RecordingID(up.Key) || rec.Channel != chID || rec.Camera != "hub-1.cam1" ||
			!rec.Start.Equal(req.Start) || rec.Bytes != req.Bytes || rec.ETag != req.MD5 || rec.Codec != "h264" {
			t.Fatalf("notice %d: %d %+v", i, code, rec)
		}
		keys = append(keys, up.Key)
	}

	// The user lists them (default: the last 24 h) with presigned GETs.
	var list recordingList
	e.must(200, "GET", "/api/v1/channels/"+chID+"/recordings", tn.user, nil, &list)
	if len(list.Recordings) != 5 || !list.To.Equal(now) || !list.From.Equal(now.Add(-24*time.Hour)) || list.Next != "" {
		t.Fatalf("listing %+v", list)
	}
	for i, r := range list.Recordings {
		if r.Key != keys[i] || !strings.Contains(r.URL, "X-Sig=GET") || r.URLExpires == nil || r.URLExpires.Before(time.Now().Add(59*time.Minute)) {
			t.Fatalf("recording %d: %+v", i, r)
		}
	}
	// A range, and paging through it.
	from := url.QueryEscape(now.Add(-time.Hour + 5*time.Second).Format(time.RFC3339))
	to := url.QueryEscape(now.Add(-time.Hour + 13*time.Second).Format(time.RFC3339))
	e.must(200, "GET", "/api/v1/channels/"+chID+"/recordings?from="+from+"&to="+to, tn.user, nil, &list)
	if len(list.Recordings) != 3 || list.Recordings[0].Key != keys[1] { // overlap: 4-8, 8-12, 12-16
		t.Fatalf("range: %+v", list.Recordings)
	}
	var got []string
	next := ""
	for page := 0; page < 10; page++ {
		path := "/api/v1/channels/" + chID + "/recordings?limit=2"
		if next != "" {
			path += "&after=" + next
		}
		list = recordingList{}
		e.must(200, "GET", path, tn.user, nil, &list)
		for _, r := range list.Recordings {
			got = append(got, r.Key)
		}
		if next = list.Next; next == "" {
			break
		}
	}
	if strings.Join(got, ",") != strings.Join(keys, ",") {
		t.Fatalf("paged keys %v, want %v", got, keys)
	}

	// The admin sees every tenant's; metrics count what happened.
	e.must(200, "GET", "/api/v1/channels/"+chID+"/recordings", adminToken, nil, &list)
	if len(list.Recordings) != 5 {
		t.Fatalf("admin listing: %d", len(list.Recordings))
	}
	_, metrics := e.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		"relay_recordings_stored_total 5",
		`relay_presigns_total{method="PUT"} 10`, // the test presigns, then upload() does again
		`relay_http_requests_total{code="201",route="POST /api/v1/hub/recordings"} 5`,
		"go_goroutines",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	var health map[string]string
	e.must(200, "GET", "/healthz", "", nil, &health)
	if health["status"] != "ok" {
		t.Fatalf("healthz %v", health)
	}
	// Secrets are never logged (the debug level logs every request).
	logs := e.logs.String()
	for _, secret := range []string{adminToken, tn.user, tn.hub} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a token is in the logs:\n%s", logs)
		}
	}
	if !strings.Contains(logs, "route=\"POST /api/v1/hub/recordings\"") {
		t.Fatalf("requests are not logged at debug level:\n%s", logs)
	}
}

// TestNotifyIdempotent: a repeated notice (and a repeated presign after a
// crash) creates no duplicate.
func TestNotifyIdempotent(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("Acme", "hub-1")
	req, content := segmentReq("cam1", 0)
	code, first := e.upload(tn.hub, req, content)
	if code != 201 {
		t.Fatalf("first notice %d", code)
	}
	heads := e.objects.headCount()
	var up proto.Upload
	e.must(200, "POST", proto.PathHubUploads, tn.hub, req, &up) // after a crash: same key
	if up.Key != first.Key {
		t.Fatalf("presign again: key %s, want %s", up.Key, first.Key)
	}
	var again proto.Recording
	e.must(200, "POST", proto.PathHubRecordings, tn.hub, proto.RecordingNotice{Key: up.Key, UploadRequest: req}, &again)
	if again != first {
		t.Fatalf("repeat %+v, want %+v", again, first)
	}
	if e.objects.headCount() != heads {
		t.Error("a repeated notice asked the object store again")
	}
	// The same key with other content is a conflict, not a second recording.
	other := req
	other.Bytes++
	if code, raw := e.do("POST", proto.PathHubRecordings, tn.hub, proto.RecordingNotice{Key: up.Key, UploadRequest: other}); code != 409 {
		t.Fatalf("same key, other bytes: %d %s", code, raw)
	}
	var list recordingList
	e.must(200, "GET", "/api/v1/channels/"+first.Channel+"/recordings", tn.user, nil, &list)
	if len(list.Recordings) != 1 {
		t.Fatalf("%d recordings, want 1", len(list.Recordings))
	}
}

// TestNotifyVerifies: the object must be there with the announced size and
// MD5; otherwise 409 (502 when the store fails) and nothing is stored.
func TestNotifyVerifies(t *testing.T) {
	tests := []struct {
		name     string
		put      func(f *fakeObjects, key string, req proto.UploadRequest)
		fail     error
		wantCode int
		wantMsg  string
	}{
		{"missing object", func(*fakeObjects, string, proto.UploadRequest) {}, nil, 409, "not found"},
		{"size mismatch", func(f *fakeObjects, k string, r proto.UploadRequest) { f.put(k, r.Bytes-1, r.MD5) }, nil, 409, "size mismatch"},
		{"md5 mismatch", func(f *fakeObjects, k string, r proto.UploadRequest) { f.put(k, r.Bytes, strings.Repeat("0", 32)) }, nil, 409, "MD5 mismatch"},
		{"multipart etag", func(f *fakeObjects, k string, r proto.UploadRequest) { f.put(k, r.Bytes, r.MD5+"-2") }, nil, 409, "MD5 mismatch"},
		{"store down", func(*fakeObjects, string, proto.UploadRequest) {}, errBackend, 502, "retry later"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tn := e.newTenant("Acme", "hub-1")
			req, _ := segmentReq("cam1", 0)
			var up proto.Upload
			e.must(200, "POST", proto.PathHubUploads, tn.hub, req, &up)
			tt.put(e.objects, up.Key, req)
			e.objects.fail = tt.fail
			code, raw := e.do("POST", proto.PathHubRecordings, tn.hub, proto.RecordingNotice{Key: up.Key, UploadRequest: req})
			if code != tt.wantCode || !strings.Contains(string(raw), tt.wantMsg) {
				t.Fatalf("%d %s, want %d %q", code, raw, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(string(raw), "secret-detail") {
				t.Fatalf("backend error detail leaked to the client: %s", raw)
			}
			if _, err := e.store.Recording(t.Context(), store.RecordingID(up.Key)); err == nil {
				t.Fatal("recording stored after a failed check")
			}
		})
	}
}

// TestHubScope: a hub presigns and notifies only for its own cameras, with
// its own keys, and not for a camera whose channel a user deleted.
func TestHubScope(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a")
	b := e.newTenant("B", "hub-b")
	e.must(200, "PUT", proto.PathHubCameras, b.hub, map[string]any{"cameras": []map[string]any{{"id": "camb"}}}, nil)
	req, content := segmentReq("cam1", 0)
	var upA proto.Upload
	e.must(200, "POST", proto.PathHubUploads, a.hub, req, &upA)
	e.objects.put(upA.Key, int64(len(content)), req.MD5)

	tests := []struct {
		name string
		path string
		body any
		want int
	}{
		{"presign another hub's camera by its API id", proto.PathHubUploads, with(req, "hub-a.cam1"), 403},
		{"presign a camera it never reported", proto.PathHubUploads, with(req, "cam9"), 403},
		{"notify another hub's key", proto.PathHubRecordings, proto.RecordingNotice{Key: upA.Key, UploadRequest: with(req, "camb")}, 400},
		{"notify another hub's camera", proto.PathHubRecordings, proto.RecordingNotice{Key: upA.Key, UploadRequest: with(req, "hub-a.cam1")}, 403},
	}
	for _, tt := range tests {
		if code, raw := e.do("POST", tt.path, b.hub, tt.body); code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, raw, tt.want)
		}
	}

	// A deleted channel refuses uploads (409) until a user creates one again.
	ch := a.cams.Cameras[0].Channel
	e.must(204, "DELETE", "/api/v1/channels/"+ch, a.user, nil, nil)
	if code, raw := e.do("POST", proto.PathHubUploads, a.hub, req); code != 409 || !strings.Contains(string(raw), "no channel") {
		t.Fatalf("upload after delete: %d %s", code, raw)
	}
	var res proto.CameraReportResult
	e.must(200, "PUT", proto.PathHubCameras, a.hub, map[string]any{"cameras": []map[string]any{{"id": "cam1"}, {"id": "cam2"}}}, &res)
	if res.Cameras[0].Channel != "" {
		t.Fatalf("a report brought a deleted channel back: %+v", res)
	}
	var nch channelView
	e.must(201, "POST", "/api/v1/cameras/hub-a.cam1/channel", a.user, nil, &nch)
	var up proto.Upload
	e.must(200, "POST", proto.PathHubUploads, a.hub, req, &up)
	if !strings.HasPrefix(up.Key, a.id+"/"+nch.ID+"/") || nch.ID == ch {
		t.Fatalf("new channel %s, key %s", nch.ID, up.Key)
	}
}

func with(r proto.UploadRequest, cam string) proto.UploadRequest {
	r.Camera = cam
	return r
}

// TestRemovedCameras: cameras left out of a report are marked removed, keep
// their channel and recordings.
func TestRemovedCameras(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("A", "hub-1")
	var res proto.CameraReportResult
	e.must(200, "PUT", proto.PathHubCameras, tn.hub, map[string]any{"cameras": []any{}}, &res)
	if len(res.Cameras) != 2 || !res.Cameras[0].Removed || !res.Cameras[1].Removed {
		t.Fatalf("empty report: %+v", res)
	}
	var c cameraView
	e.must(200, "GET", "/api/v1/cameras/hub-1.cam1", tn.user, nil, &c)
	if !c.Removed || c.Channel == "" {
		t.Fatalf("removed camera %+v", c)
	}
	// Its backlog may still be uploaded.
	req, content := segmentReq("cam1", 0)
	if code, _ := e.upload(tn.hub, req, content); code != 201 {
		t.Fatalf("upload of a removed camera: %d", code)
	}
}

func TestUnroutedIsJSON(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/nope", 404},
		{"GET", "/nope", 404}, // "/" is the web page
		{"PATCH", "/api/v1/cameras", 405},
		{"POST", "/api/v1/channels/x", 405},
		{"GET", "/api/v1/hub/uploads", 405},
	}
	for _, tt := range tests {
		code, raw := e.do(tt.method, tt.path, adminToken, nil)
		var pe proto.Error
		if code != tt.want || json.Unmarshal(raw, &pe) != nil || pe.Error == "" {
			t.Errorf("%s %s: %d %s, want %d with a JSON error", tt.method, tt.path, code, raw, tt.want)
		}
	}
}
