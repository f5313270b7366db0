package api

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/clips"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/snapshots"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

const adminToken = "test-admin-token-0123456789abcdef0123456789"

// now is relay's clock in tests; recordings are an hour before it.
var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type env struct {
	t        testing.TB
	srv      *httptest.Server
	store    *store.Bolt
	objects  *fakeObjects
	api      *Server
	logs     *syncBuffer
	clips    *clips.Coordinator // not running: tests drive it (clips_test.go)
	snaps    *snapshots.Service // over snapData (snapshots_test.go)
	snapData *rangeObjects
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvLogging(t, slog.LevelDebug)
}

// newEnvLogging is newEnv with the relay logging at level (benchmarks run
// at relay's default, Info, as production does).
func newEnvLogging(t testing.TB, level slog.Level) *env {
	t.Helper()
	st, err := store.OpenBolt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, store: st, objects: newFakeObjects(), logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: level}))
	links := hublink.New(hublink.Config{Logger: logger})
	lv := newTestLive(t, links, logger)
	e.clips = newTestClips(t, st, links, logger)
	e.snaps, e.snapData = newTestSnapshots(t, st, e.objects, links, logger)
	e.api, err = New(Options{
		Store: st, Objects: e.objects, AdminToken: adminToken, MaxBodyBytes: 64 << 10,
		Logger: logger, Links: links, Live: lv, Clips: e.clips, Snapshots: e.snaps,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.api) // listens on 127.0.0.1
	t.Cleanup(e.srv.Close)
	return e
}

// do sends body (a string is sent as is, anything else as JSON) and returns
// the status and the raw answer.
func (e *env) do(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var pe proto.Error
		if err := json.Unmarshal(raw, &pe); err != nil || pe.Error == "" || resp.Header.Get("Content-Type") != "application/json" {
			e.t.Errorf("%s %s: %d answer is not a JSON error: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, raw
}

// must sends and decodes the answer into out, failing unless the status is want.
func (e *env) must(want int, method, path, token string, body, out any) {
	e.t.Helper()
	code, raw := e.do(method, path, token, body)
	if code != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, code, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

// tenant is a tenant with one user and one hub that reported cam1 and cam2.
type tenant struct {
	id, user, hub, hubID string
	cams                 proto.CameraReportResult
}

func (e *env) newTenant(name, hubID string) tenant {
	e.t.Helper()
	var tv tenantView
	e.must(201, "POST", "/api/v1/admin/tenants", adminToken, map[string]string{"name": name}, &tv)
	var uv userView
	e.must(201, "POST", "/api/v1/admin/tenants/"+tv.ID+"/users", adminToken, map[string]string{"name": name + " user"}, &uv)
	var hv hubView
	e.must(201, "POST", "/api/v1/admin/tenants/"+tv.ID+"/hubs", adminToken, map[string]string{"id": hubID}, &hv)
	tn := tenant{id: tv.ID, user: uv.Token, hub: hv.Credential, hubID: hubID}
	e.must(200, "PUT", proto.PathHubCameras, tn.hub, proto.CameraReport{Cameras: []camera.Camera{
		{ID: "cam1", Name: "Front", IP: "192.168.1.20", Username: "admin", Password: "hunter2-cam1",
			Streams: camera.Streams{High: "rtsp://${ip}/101"}, Record: "high"},
		{ID: "cam2", Name: "Back", Streams: camera.Streams{Low: "rtsp://10.0.0.2/102"}, Record: "low"},
	}}, &tn.cams)
	return tn
}

// segment is an upload request for a 4 s segment of cam starting at i*4 s
// after an hour before now, with content-derived bytes and MD5.
func segmentReq(cam string, i int) (proto.UploadRequest, []byte) {
	content := []byte(fmt.Sprintf("segment %s %d", cam, i))
	sum := md5.Sum(content)
	start := now.Add(-time.Hour).Add(time.Duration(i) * 4 * time.Second)
	return proto.UploadRequest{Camera: cam, Start: start, End: start.Add(4 * time.Second), Bytes: int64(len(content)),
		Codec: "h264", MD5: hex.EncodeToString(sum[:])}, content
}

// upload runs a hub's whole upload of one segment and returns the notice's answer.
func (e *env) upload(hub string, req proto.UploadRequest, content []byte) (int, proto.Recording) {
	e.t.Helper()
	var up proto.Upload
	e.must(200, "POST", proto.PathHubUploads, hub, req, &up)
	e.objects.put(up.Key, int64(len(content)), req.MD5)
	code, raw := e.do("POST", proto.PathHubRecordings, hub, proto.RecordingNotice{Key: up.Key, UploadRequest: req})
	var rec proto.Recording
	if code < 300 {
		json.Unmarshal(raw, &rec)
	} else {
		e.t.Fatalf("notice: %d %s", code, raw)
	}
	return code, rec
}

// syncBuffer is a log sink the test may read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newRequest(e *env, method, path string) (*http.Request, error) {
	return http.NewRequest(method, e.srv.URL+path, nil)
}
