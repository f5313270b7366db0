package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/wslink"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
)

// dialLink opens a hub link with token and serves it with handlers.
func (e *env) dialLink(token string, handlers map[string]wslink.Handler) (*wslink.Conn, *http.Response, error) {
	e.t.Helper()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + proto.PathHubLink
	ws, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, resp, err
	}
	c := wslink.NewConn(ws, wslink.Config{Handlers: handlers})
	go func() { _ = c.Serve(context.Background()) }()
	e.t.Cleanup(c.Close)
	return c, resp, nil
}

func waitOnline(t *testing.T, r *hublink.Registry, hub string, want bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); r.Online(hub) != want; {
		if time.Now().After(deadline) {
			t.Fatalf("hub %s online=%v, want %v", hub, !want, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHubLink(t *testing.T) {
	e := newEnv(t)
	a := e.newTenant("a", "hub-a")
	b := e.newTenant("b", "hub-b")

	// Who may open a link: only a hub, as itself.
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", 401},
		{"wrong token", "hub_" + strings.Repeat("x", 40), 401},
		{"user token", a.user, 403},
		{"admin token", adminToken, 403},
	} {
		_, resp, err := e.dialLink(tc.token, nil)
		if err == nil || resp == nil || resp.StatusCode != tc.want {
			t.Errorf("%s: %v %v, want %d", tc.name, err, resp, tc.want)
			continue
		}
		var body proto.Error
		if json.NewDecoder(resp.Body).Decode(&body) != nil || body.Error == "" {
			t.Errorf("%s: no JSON error", tc.name)
		}
	}

	links := e.api.links
	if err := links.Call(context.Background(), a.hubID, proto.LinkPTZ, nil, nil); !errors.Is(err, hublink.ErrOffline) {
		t.Fatalf("call before link: %v, want ErrOffline", err)
	}
	got := make(chan proto.PTZRequest, 4)
	handlers := func(name string) map[string]wslink.Handler {
		return map[string]wslink.Handler{proto.LinkPTZ: func(_ context.Context, body json.RawMessage) (any, error) {
			var req proto.PTZRequest
			if err := json.Unmarshal(body, &req); err != nil {
				return nil, err
			}
			req.Camera = name + ":" + req.Camera
			got <- req
			if req.Action == "zoomin" {
				return nil, wslink.Errorf(409, "camera %s has no zoom", req.Camera)
			}
			return nil, nil
		}}
	}
	if _, _, err := e.dialLink(a.hub, handlers("a1")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.dialLink(b.hub, handlers("b")); err != nil {
		t.Fatal(err)
	}
	waitOnline(t, links, a.hubID, true)
	waitOnline(t, links, b.hubID, true)

	// Each call reaches its own hub, never the other.
	ctx := context.Background()
	if err := links.Call(ctx, a.hubID, proto.LinkPTZ, proto.PTZRequest{Camera: "cam1", Action: "left"}, nil); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.Camera != "a1:cam1" || r.Action != "left" {
		t.Fatalf("hub a got %+v", r)
	}
	err := links.Call(ctx, b.hubID, proto.LinkPTZ, proto.PTZRequest{Camera: "cam2", Action: "zoomin"}, nil)
	var re *hublink.RemoteError
	if !errors.As(err, &re) || re.Status != 409 || re.Message != "camera b:cam2 has no zoom" {
		t.Fatalf("refused call: %v", err)
	}
	<-got

	// A second link of hub a replaces the first; calls go to the new one.
	if _, _, err := e.dialLink(a.hub, handlers("a2")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := links.Call(ctx, a.hubID, proto.LinkPTZ, proto.PTZRequest{Camera: "cam1", Action: "stop"}, nil); err == nil {
			if r := <-got; r.Camera == "a2:cam1" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the newer link did not take over")
		}
		time.Sleep(10 * time.Millisecond)
	}
	links.Close()
	waitOnline(t, links, a.hubID, false)
	waitOnline(t, links, b.hubID, false)
}
