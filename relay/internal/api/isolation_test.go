package api

import (
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/auth"
)

// TestAccessMatrix calls every route as each kind of caller, against
// tenant A's objects: A's user, B's user, no token, an unknown token, A's
// hub, the admin. Another tenant's objects answer 404 (as if absent), so
// ids do not leak; each cell runs on a fresh relay, so order does not matter.
func TestAccessMatrix(t *testing.T) {
	type want struct{ own, other, none, wrong, hub, admin int }
	camPath := func(suffix string) func(e *env, a tenant) (string, any) {
		return func(e *env, a tenant) (string, any) { return "/api/v1/cameras/" + a.hubID + ".cam1" + suffix, nil }
	}
	chPath := func(suffix string) func(e *env, a tenant) (string, any) {
		return func(e *env, a tenant) (string, any) {
			return "/api/v1/channels/" + a.cams.Cameras[0].Channel + suffix, nil
		}
	}
	clipPath := func(suffix string) func(e *env, a tenant) (string, any) {
		return func(e *env, a tenant) (string, any) { return "/api/v1/clips/" + e.newClip(a).ID + suffix, nil }
	}
	fixed := func(path string, body any) func(e *env, a tenant) (string, any) {
		return func(*env, tenant) (string, any) { return path, body }
	}
	rows := []struct {
		method string
		build  func(e *env, a tenant) (string, any)
		want   want
	}{
		{"GET", fixed("/healthz", nil), want{200, 200, 200, 200, 200, 200}},
		{"GET", fixed("/metrics", nil), want{200, 200, 200, 200, 200, 200}},
		{"POST", fixed("/api/v1/admin/tenants", map[string]string{"name": "N"}), want{403, 403, 401, 401, 403, 201}},
		{"POST", func(e *env, a tenant) (string, any) {
			return "/api/v1/admin/tenants/" + a.id + "/users", map[string]string{"name": "N"}
		}, want{403, 403, 401, 401, 403, 201}},
		{"POST", func(e *env, a tenant) (string, any) {
			return "/api/v1/admin/tenants/" + a.id + "/hubs", map[string]string{"id": "hub-new"}
		}, want{403, 403, 401, 401, 403, 201}},
		{"PUT", fixed(proto.PathHubCameras, map[string]any{"cameras": []any{}}), want{403, 403, 401, 401, 200, 403}},
		{"POST", func(e *env, a tenant) (string, any) {
			req, _ := segmentReq("cam1", 0)
			return proto.PathHubUploads, req
		}, want{403, 403, 401, 401, 200, 403}},
		{"POST", func(e *env, a tenant) (string, any) {
			req, content := segmentReq("cam1", 7)
			var up proto.Upload
			e.must(200, "POST", proto.PathHubUploads, a.hub, req, &up)
			e.objects.put(up.Key, int64(len(content)), req.MD5)
			return proto.PathHubRecordings, proto.RecordingNotice{Key: up.Key, UploadRequest: req}
		}, want{403, 403, 401, 401, 201, 403}},
		{"GET", fixed(proto.PathHubLink, nil), want{403, 403, 401, 401, 400, 403}}, // 400: not a WebSocket upgrade
		{"GET", fixed("/api/v1/cameras", nil), want{200, 200, 401, 401, 403, 200}},
		{"GET", camPath(""), want{200, 404, 401, 401, 403, 200}},
		{"POST", camPath("/channel"), want{200, 404, 401, 401, 403, 200}},
		// PTZ: cam1 has no PTZ (409 before any hub is asked); another
		// tenant's camera is absent.
		{"POST", camPath("/ptz/left"), want{409, 404, 401, 401, 403, 409}},
		{"POST", camPath("/ptz/preset/3"), want{409, 404, 401, 401, 403, 409}},
		{"GET", fixed("/api/v1/channels", nil), want{200, 200, 401, 401, 403, 200}},
		{"GET", chPath(""), want{200, 404, 401, 401, 403, 200}},
		{"DELETE", chPath(""), want{204, 404, 401, 401, 403, 204}},
		{"GET", chPath("/recordings"), want{200, 404, 401, 401, 403, 200}},
		// Snapshots: hub-a has no link in this test, so an agent snapshot
		// is 503 for who may see the channel, 404 for another tenant.
		{"POST", func(e *env, a tenant) (string, any) {
			return "/api/v1/channels/" + a.cams.Cameras[0].Channel + "/snapshots", map[string]int{"bytes": 1000}
		}, want{201, 404, 401, 401, 403, 201}},
		{"POST", chPath("/snapshots?source=agent"), want{503, 404, 401, 401, 403, 503}},
		{"GET", chPath("/snapshots"), want{200, 404, 401, 401, 403, 200}},
		{"GET", func(e *env, a tenant) (string, any) {
			var sn snapshotView
			e.must(201, "POST", "/api/v1/channels/"+a.cams.Cameras[0].Channel+"/snapshots", a.user, map[string]int{"bytes": 10}, &sn)
			return "/api/v1/snapshots/" + sn.ID, nil
		}, want{200, 404, 401, 401, 403, 200}},
		// Clips: another tenant's clip is as absent as an unknown one.
		{"POST", func(e *env, a tenant) (string, any) {
			return "/api/v1/channels/" + a.cams.Cameras[0].Channel + "/clips", map[string]any{"start": now.Add(-time.Hour), "end": now.Add(-time.Hour + 8*time.Second)}
		}, want{202, 404, 401, 401, 403, 202}},
		{"GET", chPath("/clips"), want{200, 404, 401, 401, 403, 200}},
		{"GET", clipPath(""), want{200, 404, 401, 401, 403, 200}},
		{"DELETE", clipPath(""), want{204, 404, 401, 401, 403, 204}},
		{"PUT", clipPath("/pin"), want{200, 404, 401, 401, 403, 200}},
		{"DELETE", clipPath("/pin"), want{200, 404, 401, 401, 403, 200}},
		{"GET", clipPath("/playlist.m3u8"), want{401, 401, 401, 401, 401, 401}}, // signed URL, no bearer
		// Live view: the stream token routes take no user token at all.
		{"POST", func(e *env, a tenant) (string, any) {
			return "/api/v1/channels/" + a.cams.Cameras[0].Channel + "/stream-token", map[string]string{"quality": "high"}
		}, want{201, 404, 401, 401, 403, 201}},
		{"GET", chPath("/live"), want{200, 404, 401, 401, 403, 200}},
		{"GET", chPath("/live/sessions"), want{200, 404, 401, 401, 403, 200}},
		{"POST", chPath("/whep"), want{401, 401, 401, 401, 401, 401}},
		{"DELETE", chPath("/whep/ls_1"), want{401, 401, 401, 401, 401, 401}},
		{"GET", chPath("/live/ws"), want{401, 401, 401, 401, 401, 401}},
		{"GET", chPath("/live/mjpeg"), want{401, 401, 401, 401, 401, 401}},
		{"GET", fixed(proto.PathHubLiveStream, nil), want{403, 403, 401, 401, 401, 403}}, // hub: 401 without a stream token
		{"GET", fixed("/", nil), want{200, 200, 200, 200, 200, 200}},
		{"GET", fixed("/web/app.js", nil), want{200, 200, 200, 200, 200, 200}},
	}
	covered := map[string]bool{}
	for _, row := range rows {
		e := newEnv(t)
		a := e.newTenant("A", "hub-a")
		p, _ := row.build(e, a) // names the subtests and checks coverage
		for _, rt := range Routes() {
			if rt.Method == row.method && matches(rt.Path, p) {
				covered[rt.Method+" "+rt.Path] = true
			}
		}
		cols := []struct {
			name string
			want int
			tok  func(a, b tenant) string
		}{
			{"own tenant", row.want.own, func(a, b tenant) string { return a.user }},
			{"other tenant", row.want.other, func(a, b tenant) string { return b.user }},
			{"no token", row.want.none, func(a, b tenant) string { return "" }},
			{"wrong token", row.want.wrong, func(a, b tenant) string { return auth.New(auth.User) }},
			{"hub token", row.want.hub, func(a, b tenant) string { return a.hub }},
			{"admin token", row.want.admin, func(a, b tenant) string { return adminToken }},
		}
		for _, col := range cols {
			t.Run(row.method+" "+p+"/"+col.name, func(t *testing.T) {
				e := newEnv(t)
				a := e.newTenant("A", "hub-a")
				b := e.newTenant("B", "hub-b")
				req, content := segmentReq("cam1", 0)
				e.upload(a.hub, req, content) // A has a recording to leak
				path, body := row.build(e, a)
				code, raw := e.do(row.method, path, col.tok(a, b), body)
				if code != col.want {
					t.Fatalf("%d %s, want %d", code, raw, col.want)
				}
				if col.name == "other tenant" {
					// An answer may quote the request's ids back, nothing else of A.
					seen := string(raw)
					for _, seg := range strings.Split(path, "/") {
						seen = strings.ReplaceAll(seen, seg, "")
					}
					for _, secret := range []string{a.id, a.hubID, a.cams.Cameras[0].Channel, a.cams.Cameras[1].Channel} {
						if strings.Contains(seen, secret) {
							t.Fatalf("tenant B sees %q of tenant A: %s", secret, raw)
						}
					}
				}
			})
		}
	}
	for _, rt := range Routes() {
		if !covered[rt.Method+" "+rt.Path] {
			t.Errorf("route %s %s is not in the access matrix", rt.Method, rt.Path)
		}
	}
}

// matches says whether path fits a ServeMux pattern's {wildcards}.
func matches(pattern, path string) bool {
	ps, qs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(qs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], "{") && ps[i] != qs[i] {
			return false
		}
	}
	return true
}

func TestAuthorizationHeader(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a")
	tests := []struct {
		name, header string
		want         int
	}{
		{"lower-case scheme", "bearer " + a.user, 200},
		{"basic", "Basic " + a.user, 401},
		{"scheme only", "Bearer", 401},
		{"empty token", "Bearer  ", 401},
		{"hub credential as user token", "Bearer rlu_" + strings.TrimPrefix(a.hub, "rlh_"), 401},
		{"user token with a suffix", "Bearer " + a.user + "x", 401},
		{"admin token with a prefix", "Bearer x" + adminToken, 401},
	}
	for _, tt := range tests {
		req, _ := newRequest(e, "GET", "/api/v1/cameras")
		req.Header.Set("Authorization", tt.header)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
		if tt.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tt.name)
		}
	}
}
