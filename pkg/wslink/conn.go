// Package wslink runs the request/reply protocol of the hub<->relay link
// (proto.LinkMessage) over one WebSocket, the same way at both ends.
// hubd dials and reconnects it (hubd/internal/link); relay accepts it (relay/internal/hublink).
package wslink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zipnvr/zipnvr/pkg/proto"
)

// Handler answers one request type. Its result is the reply body (nil for
// none); an *Error sets the reply's status, any other error answers 500.
type Handler func(ctx context.Context, body json.RawMessage) (any, error)

// Error is a failed request as the peer answered it.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

// Errorf makes a handler error with an HTTP-like status.
func Errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// ErrClosed is returned by Call once the connection is gone.
var ErrClosed = errors.New("link closed")

// Config of a Conn. Zero values take the defaults.
type Config struct {
	Handlers map[string]Handler // read-only once the Conn runs
	// PingInterval: a ping goes out this often; a peer silent for three
	// intervals is taken as gone (a half-open TCP connection is noticed).
	PingInterval time.Duration
	// MaxInflight bounds the requests being handled at once; more wait,
	// which slows the reader: a flooding peer cannot grow memory.
	MaxInflight int
	// HandlerTimeout bounds each handler.
	HandlerTimeout time.Duration
	Logger         *slog.Logger
}

// Conn is one live link.
type Conn struct {
	ws  *websocket.Conn
	cfg Config
	log *slog.Logger

	writeMu sync.Mutex // gorilla allows one writer at a time
	seq     atomic.Uint64

	inflight atomic.Int64 // requests being handled, bounded by MaxInflight

	mu      sync.Mutex
	pending map[string]chan proto.LinkMessage
	closed  chan struct{}
	once    sync.Once
	err     error
}

// NewConn wraps an open WebSocket. Call Serve to read from it.
func NewConn(ws *websocket.Conn, cfg Config) *Conn {
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 10 * time.Second
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 16
	}
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ws.SetReadLimit(proto.MaxLinkMessage)
	return &Conn{ws: ws, cfg: cfg, log: cfg.Logger, pending: map[string]chan proto.LinkMessage{}, closed: make(chan struct{})}
}

// Serve reads until the connection fails, the peer goes silent or ctx
// ends, then closes it and returns why.
func (c *Conn) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			c.close(ctx.Err())
		case <-c.closed:
		}
	}()
	go c.pinger()

	deadline := func() { _ = c.ws.SetReadDeadline(time.Now().Add(3 * c.cfg.PingInterval)) }
	deadline()
	c.ws.SetPongHandler(func(string) error { deadline(); return nil })
	c.ws.SetPingHandler(func(data string) error {
		deadline()
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		return c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	slots := make(chan struct{}, c.cfg.MaxInflight)
	var handlers sync.WaitGroup
	defer handlers.Wait()
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			c.close(fmt.Errorf("read: %w", err))
			return c.Err()
		}
		deadline()
		if kind != websocket.TextMessage {
			c.close(errors.New("peer sent a binary frame"))
			return c.Err()
		}
		var m proto.LinkMessage
		if err := json.Unmarshal(data, &m); err != nil || m.Type == "" {
			// A peer that speaks something else: say so and drop the link
			// rather than guess.
			c.close(fmt.Errorf("malformed message (%d bytes): %v", len(data), err))
			return c.Err()
		}
		if m.Type == proto.LinkReply {
			c.deliver(m)
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-c.closed:
			return c.Err()
		}
		handlers.Add(1)
		c.inflight.Add(1)
		go func() {
			defer handlers.Done()
			defer func() { c.inflight.Add(-1); <-slots }()
			c.handle(ctx, m)
		}()
	}
}

// Inflight is the number of the peer's requests being handled now (at
// most MaxInflight): the fill level of the link's request queue.
func (c *Conn) Inflight() int { return int(c.inflight.Load()) }

func (c *Conn) handle(ctx context.Context, m proto.LinkMessage) {
	h := c.cfg.Handlers[m.Type]
	var (
		out any
		err error
	)
	if h == nil {
		err = Errorf(http.StatusNotImplemented, "unknown request type %q", m.Type)
	} else {
		hctx, cancel := context.WithTimeout(ctx, c.cfg.HandlerTimeout)
		out, err = h(hctx, m.Body)
		cancel()
	}
	if m.ID == "" {
		if err != nil {
			c.log.Warn("link: request failed", "type", m.Type, "err", err)
		}
		return
	}
	reply := proto.LinkMessage{ID: m.ID, Type: proto.LinkReply}
	if err != nil {
		var le *Error
		if !errors.As(err, &le) {
			c.log.Error("link: handler failed", "type", m.Type, "err", err)
			le = &Error{Status: http.StatusInternalServerError, Message: "internal error"}
			if errors.Is(err, context.DeadlineExceeded) {
				le = &Error{Status: http.StatusGatewayTimeout, Message: m.Type + " timed out"}
			}
		}
		reply.Status, reply.Error = le.Status, le.Message
	} else if out != nil {
		if reply.Body, err = json.Marshal(out); err != nil {
			reply.Body, reply.Status, reply.Error = nil, http.StatusInternalServerError, "internal error"
			c.log.Error("link: encode reply", "type", m.Type, "err", err)
		}
	}
	if err := c.write(reply); err != nil {
		c.log.Debug("link: reply not sent", "type", m.Type, "err", err)
	}
}

func (c *Conn) deliver(m proto.LinkMessage) {
	c.mu.Lock()
	ch := c.pending[m.ID]
	delete(c.pending, m.ID)
	c.mu.Unlock()
	if ch != nil {
		ch <- m // buffered: never blocks the reader
	}
}

// Call sends a request and waits for its reply, decoded into resp (nil:
// ignored). A failed reply is an *Error.
func (c *Conn) Call(ctx context.Context, typ string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("link %s: encode: %w", typ, err)
	}
	id := strconv.FormatUint(c.seq.Add(1), 36)
	ch := make(chan proto.LinkMessage, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return fmt.Errorf("link %s: %w", typ, ErrClosed)
	}
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.write(proto.LinkMessage{ID: id, Type: typ, Body: body}); err != nil {
		return fmt.Errorf("link %s: %w", typ, err)
	}
	select {
	case m := <-ch:
		if m.Error != "" || m.Status >= 300 {
			return &Error{Status: m.Status, Message: m.Error}
		}
		if resp != nil && len(m.Body) > 0 {
			if err := json.Unmarshal(m.Body, resp); err != nil {
				return fmt.Errorf("link %s: decode reply: %w", typ, err)
			}
		}
		return nil
	case <-c.closed:
		return fmt.Errorf("link %s: %w", typ, ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("link %s: %w", typ, ctx.Err())
	}
}

// Notify sends a request that wants no reply.
func (c *Conn) Notify(typ string, req any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("link %s: encode: %w", typ, err)
	}
	return c.write(proto.LinkMessage{Type: typ, Body: body})
}

func (c *Conn) write(m proto.LinkMessage) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	// A peer that stops reading must not wedge every caller.
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		c.close(fmt.Errorf("write: %w", err))
		return err
	}
	return nil
}

func (c *Conn) pinger() {
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
			c.writeMu.Lock()
			err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
			c.writeMu.Unlock()
			if err != nil {
				c.close(fmt.Errorf("ping: %w", err))
				return
			}
		}
	}
}

// Close ends the link; Serve returns.
func (c *Conn) Close() { c.close(ErrClosed) }

func (c *Conn) close(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.closed)
		c.writeMu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		_ = c.ws.Close()
	})
}

// Done is closed when the link is gone.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// Err says why the link closed (nil while open).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
