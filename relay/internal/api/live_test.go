package api

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/token"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/live"
)

const testRelayURL = "http://relay.test"

func newTestLive(t testing.TB, links *hublink.Registry, log *slog.Logger) *live.Service {
	t.Helper()
	lv, err := live.New(live.Config{PublicURL: testRelayURL, Key: token.DeriveKey(adminToken), Hubs: links,
		Logger: log, Now: func() time.Time { return now }, StartTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lv.Close)
	return lv
}

type grant struct {
	Token, Session, Channel, Quality string
	Expires                          time.Time
	WHEPURL                          string `json:"whep_url"`
	WSURL                            string `json:"ws_url"`
	MJPEGURL                         string `json:"mjpeg_url"`
}

func (e *env) streamToken(user, channel, quality string) grant {
	e.t.Helper()
	var g grant
	e.must(201, "POST", "/api/v1/channels/"+channel+"/stream-token", user, map[string]string{"quality": quality}, &g)
	return g
}

// TestStreamTokenRefusals: only a token relay signed, unexpired, for the
// channel of the path, passes; every refusal is 401/403 before any hub is
// asked. No database read is needed to tell (the token carries it all).
func TestStreamTokenRefusals(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a")
	b := e.newTenant("B", "hub-b")
	chA, chA2, chB := a.cams.Cameras[0].Channel, a.cams.Cameras[1].Channel, b.cams.Cameras[0].Channel
	g := e.streamToken(a.user, chA, "high")
	if !strings.HasPrefix(g.Token, token.Prefix) || g.Channel != chA || g.Quality != "high" || !g.Expires.Equal(now.Add(time.Minute)) ||
		g.WHEPURL != "/api/v1/channels/"+chA+"/whep" || g.MJPEGURL != "" {
		t.Fatalf("grant %+v", g)
	}
	// Claims re-signed by someone without the key: any change breaks it.
	forge := func(edit func(*token.Claims)) string {
		c, err := token.Parse(g.Token)
		if err != nil {
			t.Fatal(err)
		}
		orig, _ := json.Marshal(c)
		edit(&c)
		changed, _ := json.Marshal(c)
		return strings.Replace(g.Token, base64.RawURLEncoding.EncodeToString(orig), base64.RawURLEncoding.EncodeToString(changed), 1)
	}
	other, _ := token.NewSigner(token.DeriveKey("another relay's admin token...."))
	c, _ := token.Parse(g.Token)
	c.Relay = "http://other.relay"
	otherRelayTok, _ := other.Sign(c)
	ownKey, _ := token.NewSigner(token.DeriveKey(adminToken))
	c, _ = token.Parse(g.Token)
	c.Relay = "http://other.relay"
	otherRelaySameKey, _ := ownKey.Sign(c)
	c, _ = token.Parse(g.Token)
	c.Expires = now.Add(-time.Second).Unix()
	expired, _ := ownKey.Sign(c)
	bTok := e.streamToken(b.user, chB, "high").Token

	offer := "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
	for _, tc := range []struct {
		name, channel, tok string
		want               int
	}{
		{"no token", chA, "", 401},
		{"user token", chA, a.user, 401},
		{"tampered channel", chA2, forge(func(c *token.Claims) { c.Channel = chA2 }), 401},
		{"tampered tenant", chB, forge(func(c *token.Claims) { c.Channel, c.Tenant = chB, b.id }), 401},
		{"extended expiry", chA, forge(func(c *token.Claims) { c.Expires += 3600 }), 401},
		{"other key", chA, otherRelayTok, 401},
		{"expired", chA, expired, 401},
		{"other relay", chA, otherRelaySameKey, 403},
		{"other channel of the tenant", chA2, g.Token, 403},
		{"other tenant's channel", chB, g.Token, 403},
		{"B's token on A's channel", chA, bTok, 403},
	} {
		for _, route := range []struct{ method, path, ct string }{
			{"POST", "/whep", "application/sdp"},
			{"GET", "/live/ws?token=" + tc.tok, ""},
			{"GET", "/live/mjpeg?token=" + tc.tok, ""},
		} {
			tok := tc.tok
			if strings.Contains(route.path, "?token=") {
				tok = ""
			}
			code, raw := e.doCT(route.method, "/api/v1/channels/"+tc.channel+route.path, tok, route.ct, offer)
			if code != tc.want {
				t.Errorf("%s %s: %d %s, want %d", tc.name, route.path, code, raw, tc.want)
			}
		}
	}
	// The refusals never echo a token.
	if strings.Contains(e.logs.String(), g.Token) || strings.Contains(e.logs.String(), bTok) {
		t.Error("a stream token is in the log")
	}

	// Bad requests for a token.
	for _, body := range []any{map[string]string{"quality": "ultra"}, map[string]string{}, `{"quality":"high","x":1}`} {
		if code, raw := e.do("POST", "/api/v1/channels/"+chA+"/stream-token", a.user, body); code != 400 {
			t.Errorf("body %v: %d %s, want 400", body, code, raw)
		}
	}
	// cam2 has no mjpeg stream.
	if code, raw := e.do("POST", "/api/v1/channels/"+chA2+"/stream-token", a.user, map[string]string{"quality": "mjpeg"}); code != 409 {
		t.Errorf("missing quality: %d %s, want 409", code, raw)
	}
}

// TestWHEPHubOffline: a valid token for a hub without a link gets 503
// saying so, quickly.
func TestWHEPHubOffline(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("A", "hub-a")
	ch := a.cams.Cameras[0].Channel
	g := e.streamToken(a.user, ch, "high")
	code, raw := e.doCT("POST", "/api/v1/channels/"+ch+"/whep", g.Token, "application/sdp", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n")
	if code != 503 || !strings.Contains(string(raw), "offline") {
		t.Fatalf("%d %s, want 503 hub offline", code, raw)
	}
	if code, raw := e.doCT("POST", "/api/v1/channels/"+ch+"/whep", g.Token, "application/json", "{}"); code != 415 {
		t.Fatalf("JSON offer: %d %s, want 415", code, raw)
	}
}

// doCT is do with a Content-Type of its own ("": none) and a raw body.
func (e *env) doCT(method, path, tok, contentType, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var pe proto.Error
		if json.Unmarshal(raw, &pe) != nil || pe.Error == "" {
			e.t.Errorf("%s %s: %d answer is not a JSON error: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, raw
}
