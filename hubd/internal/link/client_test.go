package link

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/wslink"
)

// relayEnd is the relay side of the link as relay runs it (pkg/wslink
// behind a credential check), on 127.0.0.1.
type relayEnd struct {
	srv   *httptest.Server
	conns chan *wslink.Conn
	tries atomic.Int32
	// refuse answers the upgrade with 401 while set.
	refuse atomic.Bool
}

func newRelayEnd(t *testing.T) *relayEnd {
	r := &relayEnd{conns: make(chan *wslink.Conn, 8)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.tries.Add(1)
		if req.URL.Path != proto.PathHubLink || req.Header.Get("Authorization") != "Bearer hub-secret" || r.refuse.Load() {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(proto.Error{Error: "invalid token"})
			return
		}
		ws, err := (&websocket.Upgrader{}).Upgrade(w, req, nil)
		if err != nil {
			return
		}
		c := wslink.NewConn(ws, wslink.Config{Handlers: map[string]wslink.Handler{
			"hello": func(context.Context, json.RawMessage) (any, error) { return map[string]string{"from": "relay"}, nil },
		}})
		r.conns <- c
		_ = c.Serve(context.Background())
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *relayEnd) next(t *testing.T) *wslink.Conn {
	t.Helper()
	select {
	case c := <-r.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("hub did not connect")
		return nil
	}
}

func TestClientReconnectsAndAnswers(t *testing.T) {
	relay := newRelayEnd(t)
	var ups atomic.Int32
	c := New(Config{URL: relay.srv.URL + "/", Credential: "hub-secret", MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		OnChange: func(up bool) {
			if up {
				ups.Add(1)
			}
		}})
	c.Handle(proto.LinkPTZ, func(_ context.Context, body json.RawMessage) (any, error) {
		var req proto.PTZRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, Errorf(400, "bad body")
		}
		if err := req.Validate(); err != nil {
			return nil, Errorf(400, "%v", err)
		}
		return nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	conn := relay.next(t)
	if err := conn.Call(ctx, proto.LinkPTZ, proto.PTZRequest{Camera: "cam1", Action: "left"}, nil); err != nil {
		t.Fatalf("relay -> hub: %v", err)
	}
	var le *wslink.Error
	if err := conn.Call(ctx, proto.LinkPTZ, proto.PTZRequest{Camera: "cam1", Action: "dance"}, nil); !errors.As(err, &le) || le.Status != 400 {
		t.Fatalf("bad action: %v", err)
	}
	var out map[string]string
	for !c.Up() {
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Call(ctx, "hello", nil, &out); err != nil || out["from"] != "relay" {
		t.Fatalf("hub -> relay: %v %v", err, out)
	}

	// The relay drops the link: the hub is back within the backoff.
	conn.Close()
	conn = relay.next(t)
	if err := conn.Call(ctx, proto.LinkPTZ, proto.PTZRequest{Camera: "cam1", Action: "stop"}, nil); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
	if n := ups.Load(); n != 2 {
		t.Errorf("link came up %d times, want 2", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c.Up() {
		t.Error("link up after Run returned")
	}
	if err := c.Call(context.Background(), "hello", nil, nil); !errors.Is(err, ErrDown) {
		t.Errorf("call while down: %v", err)
	}
}

// TestRefusedCredentialBacksOff: a 401 is retried at the slowest pace, not
// in a tight loop.
func TestRefusedCredentialBacksOff(t *testing.T) {
	relay := newRelayEnd(t)
	relay.refuse.Store(true)
	c := New(Config{URL: relay.srv.URL, Credential: "hub-secret", MinBackoff: 10 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	time.Sleep(time.Second)
	// 10 ms backoff would try ~50 times; the slowest pace, a handful.
	if n := relay.tries.Load(); n < 2 || n > 8 {
		t.Fatalf("%d attempts in 1 s with a refused credential", n)
	}
	relay.refuse.Store(false)
	relay.next(t)
}

func TestWSURL(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/api/v1/hub/link", ""},
		{"https://relay.example/base/", "wss://relay.example/base/api/v1/hub/link", ""},
		{"ftp://relay.example", "", "scheme must be http or https"},
	}
	for _, tt := range tests {
		got, err := wsURL(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") {
			t.Errorf("wsURL(%q) = %q, %v", tt.in, got, err)
		}
	}
}
