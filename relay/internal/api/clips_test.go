package api

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/relay/internal/clips"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/media"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// newTestClips is a clip coordinator over a local object store; the API
// tests do not run it (clips are built in relay/internal/clips's tests and
// end to end in relay's).
func newTestClips(t testing.TB, st store.Store, links *hublink.Registry, log *slog.Logger) *clips.Coordinator {
	t.Helper()
	local, err := media.NewLocal(media.LocalConfig{Dir: t.TempDir(), BaseURL: "http://127.0.0.1:1/media", Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	c, err := clips.New(clips.Config{Store: st, Objects: local, Hubs: links, Logger: log, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newClip makes a clip of a's first channel through the coordinator.
func (e *env) newClip(a tenant) store.Clip {
	e.t.Helper()
	ch, err := e.store.Channel(context.Background(), a.cams.Cameras[0].Channel)
	if err != nil {
		e.t.Fatal(err)
	}
	cl, err := e.clips.Create(context.Background(), ch, now.Add(-time.Hour), now.Add(-time.Hour+8*time.Second), false)
	if err != nil {
		e.t.Fatal(err)
	}
	return cl
}

func TestClipBadInput(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a")
	path := "/api/v1/channels/" + a.cams.Cameras[0].Channel + "/clips"
	t1 := now.Add(-time.Hour).Format(time.RFC3339)
	t2 := now.Add(-time.Hour + time.Minute).Format(time.RFC3339)
	tests := []struct {
		name string
		body any
		code int
		msg  string
	}{
		{"start after end", `{"start":"` + t2 + `","end":"` + t1 + `"}`, 400, "is not after start"},
		{"empty range", `{"start":"` + t1 + `","end":"` + t1 + `"}`, 400, "is not after start"},
		{"start missing", `{"end":"` + t1 + `"}`, 400, "start: missing"},
		{"end missing", `{"start":"` + t1 + `"}`, 400, "end: missing"},
		{"not a time", `{"start":"yesterday","end":"` + t1 + `"}`, 400, "RFC 3339"},
		{"a number", `{"start":1700000000,"end":"` + t1 + `"}`, 400, "bad time"},
		{"unknown field", `{"start":"` + t1 + `","end":"` + t2 + `","from":"x"}`, 400, `unknown field \"from\"`},
		{"longer than 12 h", `{"start":"` + t1 + `","end":"` + now.Add(12*time.Hour).Format(time.RFC3339) + `"}`, 400, "at most 12h"},
		{"too far ahead", `{"start":"` + now.Add(7*time.Hour).Format(time.RFC3339) + `","end":"` + now.Add(8*time.Hour).Format(time.RFC3339) + `"}`, 400, "in the future"},
		{"not an object", `[]`, 400, "want an object"},
		{"two objects", `{"start":"` + t1 + `","end":"` + t2 + `"}{}`, 400, "exactly one JSON object"},
		{"empty body", ``, 400, "empty body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, raw := e.do("POST", path, a.user, tt.body)
			if code != tt.code || !strings.Contains(string(raw), tt.msg) {
				t.Errorf("%d %s, want %d with %q", code, raw, tt.code, tt.msg)
			}
		})
	}
	// Nothing was stored by the refused requests.
	if cls, err := e.store.ChannelClips(context.Background(), a.cams.Cameras[0].Channel); err != nil || len(cls) != 0 {
		t.Errorf("refused requests stored clips: %+v, %v", cls, err)
	}
	if code, raw := e.do("GET", path+"?limit=5", a.user, nil); code != 400 || !strings.Contains(string(raw), "no query parameters") {
		t.Errorf("list with a query: %d %s", code, raw)
	}
	if code, _ := e.do("GET", "/api/v1/clips/cl_0000000000000000", a.user, nil); code != 404 {
		t.Errorf("unknown clip: %d, want 404", code)
	}
}

// TestClipLifecycleAPI: create (202, in progress), list, get with the
// recordings attached so far, pin, delete; and the playlist URL's checks.
func TestClipLifecycleAPI(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a")
	for i := range 3 {
		req, content := segmentReq("cam1", i)
		e.upload(a.hub, req, content)
	}
	ch := a.cams.Cameras[0].Channel
	start, end := now.Add(-time.Hour+2*time.Second), now.Add(-time.Hour+10*time.Second)
	var created clipView
	e.must(202, "POST", "/api/v1/channels/"+ch+"/clips", a.user, map[string]any{"start": start, "end": end}, &created)
	if created.ID == "" || created.Status != "in_progress" || !created.Start.Equal(start) || !created.End.Equal(end) || created.Channel != ch {
		t.Fatalf("created %+v", created)
	}
	var got clipView
	e.must(200, "GET", "/api/v1/clips/"+created.ID, a.user, nil, &got)
	if len(got.Recordings) != 3 || got.URL != "" || got.HLSURL != "" {
		t.Errorf("in progress: %d recordings (want 3 attached so far), url %q, hls %q", len(got.Recordings), got.URL, got.HLSURL)
	}
	var list struct{ Clips []clipView }
	e.must(200, "GET", "/api/v1/channels/"+ch+"/clips", a.user, nil, &list)
	if len(list.Clips) != 1 || list.Clips[0].ID != created.ID {
		t.Errorf("list %+v", list)
	}
	var pinned clipView
	e.must(200, "PUT", "/api/v1/clips/"+created.ID+"/pin", a.user, nil, &pinned)
	if !pinned.Pinned {
		t.Errorf("pin: %+v", pinned)
	}
	e.must(200, "DELETE", "/api/v1/clips/"+created.ID+"/pin", a.user, nil, &pinned)
	if pinned.Pinned {
		t.Errorf("unpin: %+v", pinned)
	}

	// The playlist URL: signed for the clip and unexpired, and only of a
	// finished clip.
	u, _ := url.Parse(e.api.playlistPath(created.ID, now.Add(time.Minute)))
	if code, raw := e.do("GET", u.String(), "", nil); code != 409 || !strings.Contains(string(raw), "not finished") {
		t.Errorf("playlist of a clip in progress: %d %s", code, raw)
	}
	q := u.Query()
	q.Set("sig", strings.Repeat("0", 64))
	if code, _ := e.do("GET", u.Path+"?"+q.Encode(), "", nil); code != 401 {
		t.Errorf("forged playlist signature: %d, want 401", code)
	}
	other := e.newClip(a)
	q = u.Query()
	if code, _ := e.do("GET", "/api/v1/clips/"+other.ID+"/playlist.m3u8?"+q.Encode(), "", nil); code != 401 {
		t.Errorf("another clip's signature: %d, want 401", code)
	}
	old, _ := url.Parse(e.api.playlistPath(created.ID, now.Add(-time.Second)))
	if code, raw := e.do("GET", old.String(), "", nil); code != 401 || !strings.Contains(string(raw), "expired") {
		t.Errorf("expired playlist URL: %d %s", code, raw)
	}

	e.must(204, "DELETE", "/api/v1/clips/"+created.ID, a.user, nil, nil)
	if code, _ := e.do("GET", "/api/v1/clips/"+created.ID, a.user, nil); code != 404 {
		t.Errorf("deleted clip: %d, want 404", code)
	}
}
