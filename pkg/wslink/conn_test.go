package wslink

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zipnvr/zipnvr/pkg/proto"
)

// pair connects two Conns over a real WebSocket on 127.0.0.1; the server
// end answers with serverHandlers.
func pair(t *testing.T, serverHandlers, clientHandlers map[string]Handler, ping time.Duration) (server, client *Conn) {
	t.Helper()
	got := make(chan *Conn, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := NewConn(ws, Config{Handlers: serverHandlers, PingInterval: ping})
		got <- c
		_ = c.Serve(context.Background())
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	client = NewConn(ws, Config{Handlers: clientHandlers, PingInterval: ping})
	go func() { _ = client.Serve(context.Background()) }()
	server = <-got
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

type echo struct {
	Text string `json:"text"`
}

func TestCallBothWays(t *testing.T) {
	handlers := map[string]Handler{
		"echo": func(_ context.Context, body json.RawMessage) (any, error) {
			var in echo
			if err := json.Unmarshal(body, &in); err != nil {
				return nil, Errorf(400, "bad body: %v", err)
			}
			return echo{Text: "re: " + in.Text}, nil
		},
		"refuse": func(context.Context, json.RawMessage) (any, error) {
			return nil, Errorf(409, "camera cam1 has no PTZ")
		},
		"crash": func(context.Context, json.RawMessage) (any, error) {
			return nil, errors.New("secret internal detail")
		},
		"slow": func(ctx context.Context, _ json.RawMessage) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
	server, client := pair(t, handlers, handlers, time.Second)
	for _, c := range []*Conn{server, client} {
		tests := []struct {
			typ        string
			wantStatus int
			wantText   string
		}{
			{"echo", 0, "re: hi"},
			{"refuse", 409, "camera cam1 has no PTZ"},
			{"crash", 500, "internal error"},
			{"nosuch", 501, `unknown request type "nosuch"`},
		}
		for _, tt := range tests {
			var out echo
			err := c.Call(context.Background(), tt.typ, echo{Text: "hi"}, &out)
			var le *Error
			switch {
			case tt.wantStatus == 0 && (err != nil || out.Text != tt.wantText):
				t.Errorf("%s: %v %q", tt.typ, err, out.Text)
			case tt.wantStatus != 0 && (!errors.As(err, &le) || le.Status != tt.wantStatus || le.Message != tt.wantText):
				t.Errorf("%s: got %v, want %d %s", tt.typ, err, tt.wantStatus, tt.wantText)
			}
		}
	}
	// A caller that gives up does not wait for the handler.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := client.Call(ctx, "slow", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow: %v", err)
	}
}

func TestCallsFailWhenClosed(t *testing.T) {
	block := make(chan struct{})
	server, client := pair(t, map[string]Handler{
		"wait": func(context.Context, json.RawMessage) (any, error) { <-block; return nil, nil },
	}, nil, time.Second)
	defer close(block)
	errc := make(chan error, 1)
	go func() { errc <- client.Call(context.Background(), "wait", nil, nil) }()
	time.Sleep(50 * time.Millisecond)
	server.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("pending call: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending call not failed when the link closed")
	}
	if err := client.Call(context.Background(), "wait", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after close: %v", err)
	}
}

// TestSilentPeerDropped: a peer that stops answering pings (a half-open
// TCP connection) is dropped after three ping intervals.
func TestSilentPeerDropped(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conns.Add(1)
		// Never reads: pings are not answered.
		time.Sleep(3 * time.Second)
		ws.Close()
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := NewConn(ws, Config{PingInterval: 100 * time.Millisecond})
	errc := make(chan error, 1)
	go func() { errc <- c.Serve(context.Background()) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("Serve: %v, want a read timeout", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("silent peer not noticed")
	}
}

func TestMalformedAndOversizeFramesCloseTheLink(t *testing.T) {
	tests := []struct {
		name string
		kind int
		data []byte
	}{
		{"not json", websocket.TextMessage, []byte("hello")},
		{"no type", websocket.TextMessage, []byte(`{"id":"1"}`)},
		{"binary", websocket.BinaryMessage, []byte{1, 2, 3}},
		{"oversize", websocket.TextMessage, []byte(`{"type":"x","body":"` + strings.Repeat("a", proto.MaxLinkMessage) + `"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errc := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
				if err != nil {
					return
				}
				errc <- NewConn(ws, Config{}).Serve(context.Background())
			}))
			defer srv.Close()
			ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			_ = ws.WriteMessage(tt.kind, tt.data)
			select {
			case err := <-errc:
				if err == nil {
					t.Fatal("link kept open")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("link kept open")
			}
		})
	}
}

// Inflight shows the requests being handled, never more than MaxInflight
// (16 by default), and drops back to zero once they are answered.
func TestInflightBounded(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int64
	handlers := map[string]Handler{
		"hold": func(ctx context.Context, _ json.RawMessage) (any, error) {
			started.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		},
	}
	server, client := pair(t, handlers, nil, time.Second)
	const calls = 20
	done := make(chan error, calls)
	for range calls {
		go func() { done <- client.Call(context.Background(), "hold", struct{}{}, nil) }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for server.Inflight() < 16 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for a 17th to start, if the bound failed
	if n := server.Inflight(); n != 16 || started.Load() != 16 {
		t.Fatalf("in flight %d, started %d; want 16 (the bound)", n, started.Load())
	}
	close(release)
	for range calls {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// A handler's slot is freed just after its reply is sent.
	deadline = time.Now().Add(5 * time.Second)
	for server.Inflight() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := server.Inflight(); n != 0 {
		t.Fatalf("in flight after all answered: %d", n)
	}
}
