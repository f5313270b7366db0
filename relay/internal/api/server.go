// Package api is relay's REST API under /api/v1: admin routes (tenants,
// users, hubs), hub routes (camera reports, upload URLs, upload notices) and
// user routes (cameras, channels, recordings), plus /healthz and /metrics.
// Routes and who may call them are listed once, in routes.go.
package api

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zipnvr/zipnvr/relay/internal/auth"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/live"
	"github.com/zipnvr/zipnvr/relay/internal/snapshots"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// Options configure a Server; zero values take the defaults of relay's config.
type Options struct {
	Store   store.Store
	Objects ObjectStore
	// AdminToken authorizes the admin routes and sees every tenant.
	AdminToken string
	Logger     *slog.Logger
	// Registry receives the API's metrics and is served on /metrics; nil:
	// a new one with the Go and process collectors.
	Registry       *prometheus.Registry
	MaxBodyBytes   int64
	UploadExpiry   time.Duration // presigned PUT
	DownloadExpiry time.Duration // presigned GET
	RetentionDays  int           // of new channels
	Now            func() time.Time
	// Links reaches hubs over their control links; nil: a registry of its
	// own (tests).
	Links *hublink.Registry
	// Live is the live-view broker; nil: live routes answer 503.
	Live *live.Service
	// Snapshots creates, checks and lists snapshots; nil: snapshot routes
	// answer 503.
	Snapshots *snapshots.Service
	// Clips is the clip coordinator; nil: clip routes answer 503.
	Clips ClipService
	// PublicURL is how clients reach relay (playlist URLs); empty: the
	// address each request came to.
	PublicURL string
	// ClipURLKey signs clip playlist URLs; nil: derived from AdminToken.
	ClipURLKey []byte
}

// Server serves the API. It is an http.Handler.
type Server struct {
	opts      Options
	store     store.Store
	objects   ObjectStore
	log       *slog.Logger
	adminHash []byte
	mux       *http.ServeMux
	metrics   *metrics
	links     *hublink.Registry
	live      *live.Service
	clips     ClipService
	// clipURLKey signs clip playlist URLs (clips.go).
	clipURLKey []byte
}

// New checks o and builds the routes.
func New(o Options) (*Server, error) {
	if o.Store == nil || o.Objects == nil {
		return nil, errors.New("api: Store and Objects are required")
	}
	if len(o.AdminToken) < auth.MinAdminToken {
		return nil, fmt.Errorf("api: admin token shorter than %d characters", auth.MinAdminToken)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.UploadExpiry <= 0 {
		o.UploadExpiry = 15 * time.Minute
	}
	if o.DownloadExpiry <= 0 {
		o.DownloadExpiry = time.Hour
	}
	if o.RetentionDays <= 0 {
		o.RetentionDays = 30
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Links == nil {
		o.Links = hublink.New(hublink.Config{Logger: o.Logger})
	}
	s := &Server{
		opts:      o,
		store:     o.Store,
		objects:   o.Objects,
		log:       o.Logger.With("component", "api"),
		adminHash: auth.Hash(o.AdminToken),
		mux:       http.NewServeMux(),
		links:     o.Links,
		live:      o.Live,
		clips:     o.Clips,
	}
	s.clipURLKey = o.ClipURLKey
	if len(s.clipURLKey) == 0 {
		k := sha256.Sum256([]byte("zipnvr clip playlist v1\n" + o.AdminToken))
		s.clipURLKey = k[:]
	}
	var err error
	if s.metrics, err = newMetrics(o.Registry); err != nil {
		return nil, err
	}
	for _, rt := range routeTable() {
		s.mux.Handle(rt.method+" "+rt.path, s.handler(rt))
	}
	return s, nil
}

func (s *Server) now() time.Time { return s.opts.Now().UTC() }

// ServeHTTP limits every body, then routes; what no route matches gets a
// JSON 404 or 405 (ServeMux's own answers are plain text).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.unrouted(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	code := http.StatusNotFound
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		alt := r.Clone(r.Context())
		alt.Method = m
		if _, p := s.mux.Handler(alt); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		code = http.StatusMethodNotAllowed
		for _, m := range allow {
			w.Header().Add("Allow", m)
		}
	}
	s.metrics.requests.WithLabelValues("unmatched", fmt.Sprint(code)).Inc()
	if code == http.StatusNotFound {
		writeError(w, code, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
		return
	}
	writeError(w, code, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
}

// handler wraps a route: metrics, authentication and authorization, and the
// translation of a handler's error into a JSON error answer.
func (s *Server) handler(rt route) http.Handler {
	label := rt.method + " " + rt.path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		err := s.serve(rt, sw, r)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) {
				// Internal detail stays in the log; the client learns it failed.
				s.log.Error("request failed", "route", label, "err", err)
				he = &httpError{code: http.StatusInternalServerError, msg: "internal error"}
			}
			writeError(sw, he.code, he.msg)
		}
		s.metrics.requests.WithLabelValues(label, fmt.Sprint(sw.code)).Inc()
		s.metrics.duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
		s.log.Debug("request", "route", label, "path", r.URL.Path, "status", sw.code, "duration", time.Since(start))
	})
}

func (s *Server) serve(rt route, w http.ResponseWriter, r *http.Request) error {
	var p principal
	if rt.access != public {
		var err error
		if p, err = s.authenticate(r.Context(), r); err != nil {
			return err
		}
		if err := authorize(rt.access, p); err != nil {
			return err
		}
	}
	return rt.handle(s, w, r, p)
}

// statusWriter remembers the status for the metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack lets the hub link upgrade to a WebSocket through the wrapper.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.code = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}
