package api

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/wslink"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/snapshots"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// rangeObjects adds object contents and ranged reads to fakeObjects (the
// snapshot checks read an image's first bytes). The real stores are
// exercised in relay/internal/snapshots and hubd/internal/hub.
type rangeObjects struct {
	*fakeObjects
	mu   sync.Mutex
	data map[string][]byte
}

func (r *rangeObjects) putData(key string, b []byte) {
	sum := md5.Sum(b)
	r.mu.Lock()
	r.data[key] = b
	r.mu.Unlock()
	r.put(key, int64(len(b)), hex.EncodeToString(sum[:]))
}

func (r *rangeObjects) GetRange(_ context.Context, key string, off, n int64) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.data[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, ErrObjectNotFound)
	}
	return b[min(off, int64(len(b))):min(off+n, int64(len(b)))], nil
}

func newTestSnapshots(t testing.TB, st store.Store, objects *fakeObjects, links *hublink.Registry, log *slog.Logger) (*snapshots.Service, *rangeObjects) {
	t.Helper()
	ro := &rangeObjects{fakeObjects: objects, data: map[string][]byte{}}
	svc, err := snapshots.New(snapshots.Config{Store: st, Objects: ro, Links: links, MaxBytes: 64 << 10,
		AgentTimeout: 5 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc, ro
}

// tinyJPEG is the start of a JPEG up to its frame header (640x360): what
// the relay's check reads.
var tinyJPEG = []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
	0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0x68, 0x02, 0x80, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9}

func (e *env) snapshotList(token, ch string) []snapshotView {
	e.t.Helper()
	var out struct{ Snapshots []snapshotView }
	e.must(200, "GET", "/api/v1/channels/"+ch+"/snapshots", token, nil, &out)
	return out.Snapshots
}

func TestSnapshotClientUpload(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a")
	ch := a.cams.Cameras[0].Channel
	base := "/api/v1/channels/" + ch + "/snapshots"

	var jpg snapshotView
	e.must(201, "POST", base, a.user, map[string]int{"bytes": len(tinyJPEG)}, &jpg)
	if jpg.Status != "pending" || jpg.Source != "client" || jpg.Upload == nil || jpg.Upload.Method != "PUT" ||
		jpg.Upload.Headers.Get("Content-Type") != "image/jpeg" || jpg.Upload.Headers.Get("Content-Length") != fmt.Sprint(len(tinyJPEG)) ||
		!strings.HasPrefix(jpg.Upload.Key, a.id+"/"+ch+"/snapshots/") || jpg.URL != "" {
		t.Fatalf("created %+v upload %+v", jpg, jpg.Upload)
	}
	// Not uploaded yet: still pending, no URL.
	if l := e.snapshotList(a.user, ch); len(l) != 1 || l[0].Status != "pending" || l[0].URL != "" || l[0].Upload != nil {
		t.Fatalf("before the upload: %+v", l)
	}
	e.snapData.putData(jpg.Upload.Key, tinyJPEG)

	var txt snapshotView
	e.must(201, "POST", base+"?source=client", a.user, map[string]int{"bytes": 11}, &txt)
	e.snapData.putData(txt.Upload.Key, []byte("hello world"))

	l := e.snapshotList(a.user, ch)
	if len(l) != 2 {
		t.Fatalf("listing %+v", l)
	}
	if l[0].ID == jpg.ID { // both made in one millisecond: either order
		l[0], l[1] = l[1], l[0]
	}
	if l[0].ID != txt.ID || l[1].ID != jpg.ID {
		t.Fatalf("listing %+v", l)
	}
	if got := l[1]; got.Status != "ready" || got.URL == "" || got.URLExpires == nil || got.Error != "" || got.Ready.IsZero() {
		t.Errorf("JPEG upload: %+v", got)
	}
	if got := l[0]; got.Status != "failed" || got.URL != "" || !strings.Contains(got.Error, "not a JPEG") {
		t.Errorf("text upload: %+v", got)
	}
	var one snapshotView
	e.must(200, "GET", "/api/v1/snapshots/"+jpg.ID, a.user, nil, &one)
	if one.Status != "ready" || one.URL == "" {
		t.Errorf("GET one: %+v", one)
	}

	bad := []struct {
		name, query string
		body        any
		want        int
		msg         string
	}{
		{"too large", "", map[string]int{"bytes": 64<<10 + 1}, 413, "at most 65536"},
		{"no size", "", map[string]int{}, 400, "bytes must be at least 1"},
		{"empty body", "", nil, 400, "empty body"},
		{"unknown field", "", map[string]any{"bytes": 5, "type": "png"}, 400, "unknown field"},
		{"unknown source", "?source=phone", map[string]int{"bytes": 5}, 400, "not a snapshot source"},
		{"unknown parameter", "?sauce=agent", map[string]int{"bytes": 5}, 400, "unknown query parameter"},
	}
	for _, tc := range bad {
		code, raw := e.do("POST", base+tc.query, a.user, tc.body)
		if code != tc.want || !strings.Contains(string(raw), tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, code, raw, tc.want, tc.msg)
		}
	}
	if code, raw := e.do("GET", base+"?limit=0", a.user, nil); code != 400 {
		t.Errorf("limit=0: %d %s", code, raw)
	}
	if l := e.snapshotList(a.user, ch); len(l) != 2 {
		t.Errorf("refused requests left entries: %+v", l)
	}
	// A deleted channel's snapshots are gone from the API at once.
	e.must(204, "DELETE", "/api/v1/channels/"+ch, a.user, nil, nil)
	if code, _ := e.do("GET", "/api/v1/snapshots/"+jpg.ID, a.user, nil); code != 404 {
		t.Errorf("snapshot of a deleted channel: %d, want 404", code)
	}
}

// fakeHub answers relay's snapshot requests over a real link the way hubd
// does: it asks for an upload URL, "uploads" image (into the fake store)
// and answers; fail, when set, is its error instead.
type fakeHub struct {
	e     *env
	conn  *wslink.Conn
	image []byte
	fail  error
}

func (e *env) linkFakeHub(tn tenant, h *fakeHub) {
	e.t.Helper()
	h.e = e
	conn, _, err := e.dialLink(tn.hub, map[string]wslink.Handler{proto.LinkSnapshot: h.snapshot})
	if err != nil {
		e.t.Fatal(err)
	}
	h.conn = conn
	waitOnline(e.t.(*testing.T), e.api.links, tn.hubID, true)
}

func (h *fakeHub) snapshot(ctx context.Context, body json.RawMessage) (any, error) {
	var req proto.SnapshotRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, wslink.Errorf(400, "%v", err)
	}
	if h.fail != nil {
		return nil, h.fail
	}
	var up proto.SnapshotUpload
	if err := h.conn.Call(ctx, proto.LinkSnapshotUpload, proto.SnapshotUploadRequest{Snapshot: req.Snapshot, Camera: req.Camera,
		Bytes: int64(len(h.image)), Captured: time.Now()}, &up); err != nil {
		return nil, err
	}
	h.e.snapData.putData(up.Upload.Key, h.image)
	return proto.SnapshotResult{Bytes: int64(len(h.image)), Captured: time.Now()}, nil
}

// waitSnapshot polls GET /snapshots/{id} until it is no longer pending.
func (e *env) waitSnapshot(token, id string) snapshotView {
	e.t.Helper()
	var v snapshotView
	for deadline := time.Now().Add(10 * time.Second); ; {
		e.must(200, "GET", "/api/v1/snapshots/"+id, token, nil, &v)
		if v.Status != "pending" {
			return v
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("snapshot %s still pending: %+v", id, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSnapshotAgentOverLink(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a")
	b := e.newTenant("B", "hub-b")
	ch := a.cams.Cameras[0].Channel
	base := "/api/v1/channels/" + ch + "/snapshots?source=agent"

	// No link: a clear error at once, and no entry.
	code, raw := e.do("POST", base, a.user, nil)
	if code != 503 || !strings.Contains(string(raw), "hub hub-a has no control link") {
		t.Fatalf("hub offline: %d %s", code, raw)
	}
	if l := e.snapshotList(a.user, ch); len(l) != 0 {
		t.Fatalf("hub offline left %+v", l)
	}

	hubA := &fakeHub{image: tinyJPEG}
	e.linkFakeHub(a, hubA)
	var sn snapshotView
	e.must(202, "POST", base, a.user, "{}", &sn)
	if sn.Status != "pending" || sn.Source != "agent" || sn.Camera != "hub-a.cam1" {
		t.Fatalf("accepted %+v", sn)
	}
	if got := e.waitSnapshot(a.user, sn.ID); got.Status != "ready" || got.URL == "" || got.Bytes != int64(len(tinyJPEG)) {
		t.Fatalf("agent snapshot: %+v", got)
	}

	// The camera fails: the hub's reason is on the entry.
	hubA.fail = wslink.Errorf(502, "camera cam1: snapshot URL: GET http://192.168.1.20/snap: connection refused")
	e.must(202, "POST", base, a.user, nil, &sn)
	if got := e.waitSnapshot(a.user, sn.ID); got.Status != "failed" || got.Error != "hub hub-a: "+hubA.fail.(*wslink.Error).Message {
		t.Fatalf("camera offline: %+v", got)
	}
	// The hub uploads something that is not a JPEG.
	hubA.fail, hubA.image = nil, []byte("<html>login</html>")
	e.must(202, "POST", base, a.user, nil, &sn)
	if got := e.waitSnapshot(a.user, sn.ID); got.Status != "failed" || !strings.Contains(got.Error, "not a JPEG") {
		t.Fatalf("non-JPEG capture: %+v", got)
	}

	// Hub B may not upload into A's snapshot, nor make thumbnails of A's camera.
	hubB := &fakeHub{image: tinyJPEG}
	e.linkFakeHub(b, hubB)
	ctx := context.Background()
	err := hubB.conn.Call(ctx, proto.LinkSnapshotUpload, proto.SnapshotUploadRequest{Snapshot: sn.ID, Camera: "cam1", Bytes: 10}, nil)
	if we := (*wslink.Error)(nil); !errors.As(err, &we) || we.Status != 404 {
		t.Fatalf("hub B uploading into A's snapshot: %v", err)
	}
	// A scheduled thumbnail: the hub asks without an entry; relay makes one.
	var up proto.SnapshotUpload
	if err := hubA.conn.Call(ctx, proto.LinkSnapshotUpload, proto.SnapshotUploadRequest{Camera: "cam1", Bytes: int64(len(tinyJPEG))}, &up); err != nil {
		t.Fatal(err)
	}
	e.snapData.putData(up.Upload.Key, tinyJPEG)
	if got := e.waitSnapshot(a.user, up.Snapshot); got.Source != "schedule" || got.Status != "ready" || got.Channel != ch {
		t.Fatalf("scheduled thumbnail: %+v", got)
	}
	for _, tc := range []struct {
		req  proto.SnapshotUploadRequest
		want int
	}{
		{proto.SnapshotUploadRequest{Camera: "cam9", Bytes: 10}, 404},
		{proto.SnapshotUploadRequest{Camera: "cam1", Bytes: 64<<10 + 1}, 413},
		{proto.SnapshotUploadRequest{Camera: "cam1", Bytes: 0}, 400},
	} {
		err := hubA.conn.Call(ctx, proto.LinkSnapshotUpload, tc.req, nil)
		if we := (*wslink.Error)(nil); !errors.As(err, &we) || we.Status != tc.want {
			t.Errorf("upload request %+v: %v, want %d", tc.req, err, tc.want)
		}
	}
	if l := e.snapshotList(b.user, b.cams.Cameras[0].Channel); len(l) != 0 {
		t.Errorf("tenant B has snapshots: %+v", l)
	}
}
