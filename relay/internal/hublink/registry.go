// Package hublink is relay's end of the hub links: it accepts each hub's
// outbound WebSocket and lets the rest of relay call a hub by its id.
package hublink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zipnvr/zipnvr/pkg/wslink"
)

// ErrOffline: the hub has no link up.
var ErrOffline = errors.New("hub is offline (no control link)")

// RemoteError is a request the hub answered with a failure.
type RemoteError = wslink.Error

// Handler answers a request a hub sends.
type Handler func(ctx context.Context, hubID string, body json.RawMessage) (any, error)

// Config of a Registry.
type Config struct {
	Logger       *slog.Logger
	PingInterval time.Duration // default 10 s
	// Registerer receives the links gauge; nil: not registered.
	Registerer prometheus.Registerer
	// OnChange is told when a hub's link comes up or goes down.
	OnChange func(hubID string, online bool)
}

// Registry holds the live link of each hub.
type Registry struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader
	online   prometheus.Gauge

	mu       sync.Mutex
	handlers map[string]Handler
	links    map[string]*wslink.Conn
}

// New returns an empty registry.
func New(cfg Config) *Registry {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Registry{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "hublink"),
		handlers: map[string]Handler{},
		links:    map[string]*wslink.Conn{},
		online: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_hub_links", Help: "Hubs with a control link up.",
		}),
		// Hubs are not browsers: there is no Origin to check.
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(r.online)
	}
	return r
}

// Handle registers the handler of hub requests of type typ. Register
// before hubs connect.
func (r *Registry) Handle(typ string, h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handlers[typ] = h
}

// ServeHub upgrades an authenticated hub's request and serves its link
// until it drops. A newer link of the same hub replaces the older one.
func (r *Registry) ServeHub(w http.ResponseWriter, req *http.Request, hubID string) error {
	ws, err := r.upgrader.Upgrade(w, req, nil)
	if err != nil {
		return nil // the upgrader has answered the client already
	}
	r.mu.Lock()
	handlers := make(map[string]wslink.Handler, len(r.handlers))
	for typ, h := range r.handlers {
		handlers[typ] = func(ctx context.Context, body json.RawMessage) (any, error) { return h(ctx, hubID, body) }
	}
	r.mu.Unlock()
	log := r.log.With("hub", hubID)
	conn := wslink.NewConn(ws, wslink.Config{Handlers: handlers, PingInterval: r.cfg.PingInterval, Logger: log})

	r.mu.Lock()
	old := r.links[hubID]
	r.links[hubID] = conn
	if old == nil {
		r.online.Inc()
	}
	r.mu.Unlock()
	if old != nil {
		log.Info("hub link replaced by a newer one")
		old.Close()
	} else {
		log.Info("hub link up", "remote", req.RemoteAddr)
	}
	r.changed(hubID, true)

	// http.Server.Shutdown does not end hijacked connections: relay calls
	// Close on its way out.
	err = conn.Serve(req.Context())

	r.mu.Lock()
	still := r.links[hubID] == conn
	if still {
		delete(r.links, hubID)
		r.online.Dec()
	}
	r.mu.Unlock()
	if still {
		log.Info("hub link down", "reason", err)
		r.changed(hubID, false)
	}
	return nil
}

func (r *Registry) changed(hubID string, online bool) {
	if r.cfg.OnChange != nil {
		r.cfg.OnChange(hubID, online)
	}
}

// Online says whether hubID has a link up.
func (r *Registry) Online(hubID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.links[hubID] != nil
}

// Call sends a request to a hub and waits for the reply (decoded into
// resp unless nil). ErrOffline when the hub is not linked; *RemoteError
// when the hub answered with a failure.
func (r *Registry) Call(ctx context.Context, hubID, typ string, req, resp any) error {
	r.mu.Lock()
	conn := r.links[hubID]
	r.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("%s to hub %s: %w", typ, hubID, ErrOffline)
	}
	err := conn.Call(ctx, typ, req, resp)
	if errors.Is(err, wslink.ErrClosed) {
		return fmt.Errorf("%s to hub %s: %w", typ, hubID, ErrOffline)
	}
	return err
}

// Close drops every link (relay shutdown).
func (r *Registry) Close() {
	r.mu.Lock()
	links := make([]*wslink.Conn, 0, len(r.links))
	for _, c := range r.links {
		links = append(links, c)
	}
	r.mu.Unlock()
	for _, c := range links {
		c.Close()
	}
}
