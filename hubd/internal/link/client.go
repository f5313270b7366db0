// Package link is hubd's end of the control link: one outbound, authenticated
// WebSocket to relay, kept up with backoff, over which relay asks for PTZ,
// snapshots and live streams (the hub needs no inbound port).
package link

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/wslink"
)

// Handler answers one request type relay sends.
type Handler = wslink.Handler

// Errorf makes a handler error with an HTTP-like status (400 bad request,
// 404 unknown camera, 409 unsupported by the camera, 502 camera failed).
func Errorf(status int, format string, args ...any) error {
	return wslink.Errorf(status, format, args...)
}

// ErrDown: the link is not up at the moment.
var ErrDown = errors.New("relay link is down")

// Config of a Client.
type Config struct {
	URL        string // relay base URL, http(s)://...
	Credential string
	Logger     *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between attempts (jittered).
	MinBackoff, MaxBackoff time.Duration
	PingInterval           time.Duration // default 10 s
	// OnChange is told when the link comes up or goes down.
	OnChange func(up bool)
}

// Client keeps the link up.
type Client struct {
	cfg      Config
	log      *slog.Logger
	handlers map[string]Handler

	mu   sync.Mutex
	conn *wslink.Conn
}

// New returns a client; register handlers, then Run.
func New(cfg Config) *Client {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	return &Client{cfg: cfg, log: cfg.Logger.With("component", "link"), handlers: map[string]Handler{}}
}

// Handle registers the handler of requests of type typ; call before Run.
func (c *Client) Handle(typ string, h Handler) { c.handlers[typ] = h }

// Up says whether the link is up now.
func (c *Client) Up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// Inflight is the number of relay's requests being handled now (0 while
// the link is down).
func (c *Client) Inflight() int {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return 0
	}
	return conn.Inflight()
}

// Call sends a request to relay over the link. ErrDown when it is not up.
func (c *Client) Call(ctx context.Context, typ string, req, resp any) error {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("%s: %w", typ, ErrDown)
	}
	err := conn.Call(ctx, typ, req, resp)
	if errors.Is(err, wslink.ErrClosed) {
		return fmt.Errorf("%s: %w", typ, ErrDown)
	}
	return err
}

// Run connects and reconnects until ctx ends. A refused credential is
// retried too (an admin may re-register the hub), at the slowest pace.
func (c *Client) Run(ctx context.Context) error {
	endpoint, err := wsURL(c.cfg.URL)
	if err != nil {
		return err
	}
	backoff := c.cfg.MinBackoff
	lastErr := ""
	for {
		began := time.Now()
		err := c.session(ctx, endpoint)
		if ctx.Err() != nil {
			return nil
		}
		// A link that stayed up a while was healthy: start over fast.
		if time.Since(began) > c.cfg.MaxBackoff {
			backoff = c.cfg.MinBackoff
		}
		var refused *refusedError
		if errors.As(err, &refused) && refused.status < 500 {
			backoff = c.cfg.MaxBackoff
		}
		// Log a change of reason, not every retry of the same one.
		if msg := err.Error(); msg != lastErr {
			c.log.Warn("relay link down, retrying", "err", err, "retry_in", backoff.Round(time.Millisecond))
			lastErr = msg
		}
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff)/2+1))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

type refusedError struct {
	status int
	msg    string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("relay refused the link: %d %s", e.status, e.msg)
}

func (c *Client) session(ctx context.Context, endpoint string) error {
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment}
	hdr := http.Header{"Authorization": {"Bearer " + c.cfg.Credential}}
	ws, resp, err := dialer.DialContext(ctx, endpoint, hdr)
	if err != nil {
		if resp != nil {
			var e proto.Error
			_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
			resp.Body.Close()
			return &refusedError{status: resp.StatusCode, msg: e.Error}
		}
		return fmt.Errorf("dial %s: %w", endpoint, err)
	}
	conn := wslink.NewConn(ws, wslink.Config{Handlers: c.handlers, PingInterval: c.cfg.PingInterval, Logger: c.log})
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	c.log.Info("relay link up", "url", endpoint)
	if c.cfg.OnChange != nil {
		c.cfg.OnChange(true)
	}
	err = conn.Serve(ctx)
	c.mu.Lock()
	c.conn = nil
	c.mu.Unlock()
	if c.cfg.OnChange != nil {
		c.cfg.OnChange(false)
	}
	return err
}

// wsURL turns the relay's base URL into the link's WebSocket URL.
func wsURL(base string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return "", fmt.Errorf("relay url: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("relay url %q: scheme must be http or https", base)
	}
	u.Path += proto.PathHubLink
	return u.String(), nil
}
