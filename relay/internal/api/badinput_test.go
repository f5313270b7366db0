package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// TestBadInput: malformed JSON, unknown fields, oversized bodies, bad times,
// from > to: a 4xx with a message that says what is wrong, and nothing stored.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a")
	req, content := segmentReq("cam1", 0)
	var up proto.Upload
	e.must(200, "POST", proto.PathHubUploads, a.hub, req, &up)
	e.objects.put(up.Key, int64(len(content)), req.MD5)

	// seg returns the upload request as a JSON object with some fields replaced.
	seg := func(changes map[string]any) map[string]any {
		var m map[string]any
		b, _ := json.Marshal(proto.RecordingNotice{Key: up.Key, UploadRequest: req})
		json.Unmarshal(b, &m)
		for k, v := range changes {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	ch := a.cams.Cameras[0].Channel
	recs := "/api/v1/channels/" + ch + "/recordings"
	tenants := "/api/v1/admin/tenants"
	tests := []struct {
		name         string
		method, path string
		tok          string
		body         any
		code         int
		msg          string
	}{
		{"malformed JSON", "POST", tenants, adminToken, `{"name":`, 400, "malformed JSON"},
		{"syntax error", "POST", tenants, adminToken, `{"name" "x"}`, 400, "malformed JSON at byte"},
		{"unknown field", "POST", tenants, adminToken, `{"name":"x","colour":"red"}`, 400, `unknown field "colour"`},
		{"wrong type", "POST", tenants, adminToken, `{"name":5}`, 400, "name: want a string"},
		{"array body", "POST", tenants, adminToken, `[]`, 400, "want an object"},
		{"two objects", "POST", tenants, adminToken, `{"name":"x"}{"name":"y"}`, 400, "exactly one JSON object"},
		{"empty body", "POST", tenants, adminToken, ``, 400, "empty body"},
		{"empty name", "POST", tenants, adminToken, `{"name":"  "}`, 400, "name: must be 1-200"},
		{"control characters", "POST", tenants, adminToken, `{"name":"a\u0000b"}`, 400, "control characters"},
		{"body over the limit", "POST", tenants, adminToken, big, 413, "larger than 65536 bytes"},
		{"not JSON content type", "POST", tenants, adminToken, []byte("name=x"), 415, "application/json"},
		{"hub id with a dot", "POST", "/api/v1/admin/tenants/" + a.id + "/hubs", adminToken, `{"id":"a.b"}`, 400, "no dot"},
		{"hub id taken", "POST", "/api/v1/admin/tenants/" + a.id + "/hubs", adminToken, `{"id":"hub-a"}`, 409, "exists already"},
		{"unknown tenant", "POST", "/api/v1/admin/tenants/tn_nope/users", adminToken, `{"name":"u"}`, 404, "tenant"},

		{"report without cameras", "PUT", proto.PathHubCameras, a.hub, `{}`, 400, "cameras: missing"},
		{"report bad camera id", "PUT", proto.PathHubCameras, a.hub, `{"cameras":[{"id":"front door"}]}`, 400, "cameras[0].id"},
		{"report camera id with ..", "PUT", proto.PathHubCameras, a.hub, `{"cameras":[{"id":"a..b"}]}`, 400, "cameras[0].id"},
		{"report duplicate", "PUT", proto.PathHubCameras, a.hub, `{"cameras":[{"id":"c"},{"id":"c"}]}`, 400, "duplicate"},
		{"report unknown camera field", "PUT", proto.PathHubCameras, a.hub, `{"cameras":[{"id":"c","colour":1}]}`, 400, `unknown field "colour"`},
		{"report over the limit", "PUT", proto.PathHubCameras, a.hub, `{"cameras":[` + strings.Repeat(`{"id":"c"},`, 7000) + `{"id":"d"}]}`, 413, "larger than"},

		{"time not RFC 3339", "POST", proto.PathHubRecordings, a.hub, seg(map[string]any{"start": "yesterday"}), 400, `bad time "yesterday"`},
		{"time as a number", "POST", proto.PathHubRecordings, a.hub, seg(map[string]any{"end": 1732528800}), 400, "bad time"},
		{"time without zone", "POST", proto.PathHubUploads, a.hub, seg(map[string]any{"key": nil, "start": "2026-11-25T11:00:00"}), 400, "bad time"},
		{"start missing", "POST", proto.PathHubUploads, a.hub, seg(map[string]any{"key": nil, "start": nil}), 400, "start: missing"},
		{"end before start", "POST", proto.PathHubRecordings, a.hub, seg(map[string]any{"end": req.Start.Add(-time.Second)}), 400, "not after start"},
		{"start before 2000", "POST", proto.PathHubUploads, a.hub, seg(map[string]any{"key": nil, "start": "1970-01-01T00:00:00Z", "end": "1970-01-01T00:00:04Z"}), 400, "clock"},
		{"start in the future", "POST", proto.PathHubUploads, a.hub, seg(map[string]any{"key": nil, "start": now.Add(48 * time.Hour), "end": now.Add(49 * time.Hour)}), 400, "ahead"},
		{"too long", "POST", proto.PathHubUploads, a.hub, seg(map[string]any{"key": nil, "end": req.Start.Add(2 * time.Hour)}), 400, "at most 1h"},
		{"zero bytes", "POST", proto.PathHubUploads, a.hub, seg(map[string]any{"key": nil, "bytes": 0}), 400, "bytes"},
		{"bytes not an integer", "POST", proto.PathHubUploads, a.hub, seg(map[string]any{"key": nil, "bytes": 1.5}), 400, "bytes: want an integer"},
		{"bad codec", "POST", proto.PathHubUploads, a.hub, seg(map[string]any{"key": nil, "codec": "H 264"}), 400, "codec"},
		{"bad md5", "POST", proto.PathHubUploads, a.hub, seg(map[string]any{"key": nil, "md5": "xyz"}), 400, "md5"},
		{"key on upload request", "POST", proto.PathHubUploads, a.hub, seg(nil), 400, `unknown field "key"`},
		{"notice without key", "POST", proto.PathHubRecordings, a.hub, seg(map[string]any{"key": nil}), 400, "key: missing"},
		{"notice with a foreign key", "POST", proto.PathHubRecordings, a.hub, seg(map[string]any{"key": "other/key.mp4"}), 400, "not the upload key"},
		{"notice for another start", "POST", proto.PathHubRecordings, a.hub, seg(map[string]any{"start": req.Start.Add(time.Second)}), 400, "not the upload key"},

		{"from after to", "GET", recs + "?from=2026-11-25T12:00:00Z&to=2026-11-25T11:00:00Z", a.user, nil, 400, "from (2026-11-25T12:00:00.000Z) is after to"},
		{"from not RFC 3339", "GET", recs + "?from=yesterday", a.user, nil, 400, `from: "yesterday" is not an RFC 3339 time`},
		{"unescaped plus", "GET", recs + "?to=2026-11-25T12:00:00+01:00", a.user, nil, 400, "%2B"},
		{"limit 0", "GET", recs + "?limit=0", a.user, nil, 400, "limit: must be 1 to 10000"},
		{"limit too big", "GET", recs + "?limit=10001", a.user, nil, 400, "limit"},
		{"limit not a number", "GET", recs + "?limit=lots", a.user, nil, 400, "limit"},
		{"unknown parameter", "GET", recs + "?form=2026-11-25T12:00:00Z", a.user, nil, 400, `unknown query parameter "form"`},
		{"bad cursor", "GET", recs + "?after=!!", a.user, nil, 400, "after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code int
			var raw []byte
			if bs, ok := tt.body.([]byte); ok { // sent with a non-JSON content type
				code, raw = sendRaw(t, e, tt.method, tt.path, tt.tok, "application/x-www-form-urlencoded", bs)
			} else {
				code, raw = e.do(tt.method, tt.path, tt.tok, tt.body)
			}
			var pe proto.Error
			json.Unmarshal(raw, &pe)
			if code != tt.code || !strings.Contains(pe.Error, tt.msg) {
				t.Fatalf("%d %q, want %d with %q", code, pe.Error, tt.code, tt.msg)
			}
			if strings.Contains(pe.Error, "Go struct") || strings.Contains(pe.Error, "proto.") {
				t.Errorf("message names Go types: %q", pe.Error)
			}
		})
	}

	// Nothing was stored by any of them.
	got, err := e.store.Recordings(t.Context(), store.RecordingQuery{Channel: ch, From: now.Add(-48 * time.Hour), To: now.Add(48 * time.Hour), Limit: 100})
	if err != nil || len(got) != 0 {
		t.Fatalf("recordings after bad input: %d %v", len(got), err)
	}
	cams, _ := e.store.Cameras(t.Context(), a.id)
	if len(cams) != 2 || cams[0].Removed || cams[1].Removed {
		t.Fatalf("cameras changed by refused reports: %+v", cams)
	}
	if _, err := e.store.Hub(t.Context(), "a.b"); err == nil {
		t.Fatal("refused hub stored")
	}
	// The good request still works.
	e.must(201, "POST", proto.PathHubRecordings, a.hub, seg(nil), nil)
}

func sendRaw(t *testing.T, e *env, method, path, tok, ct string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", ct)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}
