// Package upload moves closed segments from the ring to S3 through presigned
// PUT URLs the relay hands out, oldest first, and tells the relay after each.
package upload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/ring"
)

// Grant is a presigned upload: PUT the segment's bytes to URL with Header.
type Grant struct {
	Key     string
	URL     string
	Method  string
	Header  http.Header
	Expires time.Time
}

// Relay is what the uploader needs of the relay.
type Relay interface {
	Presign(ctx context.Context, s ring.Segment) (Grant, error)
	// Notify tells the relay the object is in place; the relay verifies it
	// (size, MD5) before it records it. Repeating it is harmless.
	Notify(ctx context.Context, s ring.Segment, key string) error
}

// Ring is the part of the ring the uploader uses.
type Ring interface {
	Pending(limit int) ([]ring.Segment, error)
	MarkUploaded(id uint64) error
	Closed() <-chan struct{}
	// Pin keeps a segment from eviction while it uploads, unless nothing
	// else can make room.
	Pin(id uint64)
	Unpin(id uint64)
}

// ErrRefused marks an answer about this segment that retrying soon will
// not change (the camera is not this hub's, it has no channel): that
// segment waits long, the others go on.
var ErrRefused = errors.New("relay refused the segment")

// Config of an uploader.
type Config struct {
	Ring    Ring
	Relay   Relay
	DataDir string
	// Parallel uploads; a backlog after an outage drains this many at a time.
	Parallel int
	// MinBackoff and MaxBackoff bound the wait after a failure (jittered).
	MinBackoff, MaxBackoff time.Duration
	// RefusedRetry is the wait for a segment the relay refused.
	RefusedRetry time.Duration
	// HTTP does the PUTs (no S3 credentials: the URL is the authorisation).
	HTTP   *http.Client
	Logger *slog.Logger
}

// Stats are the uploader's counters.
type Stats struct {
	Uploaded      uint64    `json:"uploaded"`
	UploadedBytes uint64    `json:"uploaded_bytes"`
	Failures      uint64    `json:"failures"`
	InFlight      int64     `json:"in_flight"`
	LastError     string    `json:"last_error,omitempty"`
	LastUpload    time.Time `json:"last_upload,omitzero"`
}

// Uploader drains the ring's pending segments.
type Uploader struct {
	cfg Config
	log *slog.Logger

	uploaded, bytes, failures atomic.Uint64
	inFlight                  atomic.Int64
	mu                        sync.Mutex
	lastErr                   string
	lastOK                    time.Time
}

// New returns an uploader.
func New(cfg Config) *Uploader {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.RefusedRetry <= 0 {
		cfg.RefusedRetry = 5 * time.Minute
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Transport: &http.Transport{
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
		}}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Uploader{cfg: cfg, log: cfg.Logger.With("component", "uploader")}
}

// Stats returns the counters.
func (u *Uploader) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return Stats{Uploaded: u.uploaded.Load(), UploadedBytes: u.bytes.Load(), Failures: u.failures.Load(),
		InFlight: u.inFlight.Load(), LastError: u.lastErr, LastUpload: u.lastOK}
}

// Run uploads until ctx ends. It never touches the recording path: a slow
// or absent uplink only makes the backlog grow in the ring.
func (u *Uploader) Run(ctx context.Context) error {
	type result struct {
		id  uint64
		err error
	}
	results := make(chan result, u.cfg.Parallel)
	inFlight := map[uint64]bool{}
	refusedUntil := map[uint64]time.Time{}
	var pauseUntil time.Time // after a failure that is not about one segment: the uplink, the relay, S3
	backoff := u.cfg.MinBackoff
	failing := false

	for {
		now := time.Now()
		if now.After(pauseUntil) && len(inFlight) < u.cfg.Parallel {
			pending, err := u.cfg.Ring.Pending(u.cfg.Parallel*4 + len(refusedUntil))
			if err != nil {
				u.log.Error("list pending segments", "err", err)
			}
			for _, s := range pending {
				if len(inFlight) >= u.cfg.Parallel {
					break
				}
				if inFlight[s.ID] || now.Before(refusedUntil[s.ID]) {
					continue
				}
				inFlight[s.ID] = true
				u.inFlight.Add(1)
				go func() { results <- result{s.ID, u.upload(ctx, s)} }()
			}
		}

		wake := time.Duration(1<<63 - 1)
		if d := time.Until(pauseUntil); d > 0 {
			wake = d
		}
		for id, t := range refusedUntil {
			if time.Until(t) <= 0 {
				delete(refusedUntil, id) // eligible again (or gone from the ring)
				continue
			}
			wake = min(wake, time.Until(t))
		}
		timer := time.NewTimer(wake)
		select {
		case <-ctx.Done():
			timer.Stop()
			for len(inFlight) > 0 { // uploads see ctx too and end promptly
				r := <-results
				delete(inFlight, r.id)
				u.inFlight.Add(-1)
			}
			return nil
		case <-u.cfg.Ring.Closed():
		case <-timer.C:
		case r := <-results:
			delete(inFlight, r.id)
			u.inFlight.Add(-1)
			switch {
			case r.err == nil:
				delete(refusedUntil, r.id)
				if failing {
					u.log.Info("uploads flowing again")
				}
				backoff, failing = u.cfg.MinBackoff, false
			case ctx.Err() != nil:
			case errors.Is(r.err, ErrRefused):
				refusedUntil[r.id] = time.Now().Add(u.cfg.RefusedRetry)
			default:
				wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff)/2+1))
				pauseUntil = time.Now().Add(wait)
				if !failing {
					u.log.Warn("upload failed; segments stay in the ring and are retried", "err", r.err, "retry_in", wait.Round(time.Millisecond))
				}
				failing = true
				backoff = min(backoff*2, u.cfg.MaxBackoff)
			}
		}
		timer.Stop()
	}
}

// upload does one segment: presign, PUT, notify, mark. Any failure leaves
// the segment pending; the next attempt asks for a fresh URL, since an
// expired URL, a 403 and a reset connection (what versitygw answers to a
// rejected large PUT) look alike from here.
func (u *Uploader) upload(ctx context.Context, s ring.Segment) (err error) {
	defer func() {
		if err != nil && ctx.Err() == nil {
			u.failures.Add(1)
			u.mu.Lock()
			u.lastErr = err.Error()
			u.mu.Unlock()
		}
	}()
	u.cfg.Ring.Pin(s.ID)
	defer u.cfg.Ring.Unpin(s.ID)
	g, err := u.cfg.Relay.Presign(ctx, s)
	if err != nil {
		return fmt.Errorf("presign %s: %w", s.Path, err)
	}
	f, err := os.Open(filepath.Join(u.cfg.DataDir, s.Path))
	if err != nil {
		if os.IsNotExist(err) {
			// Evicted since it was listed (the ring counted it), or removed by
			// hand: either way nothing to send, and no reason to spin on it.
			return fmt.Errorf("%w: %s is no longer on disk", ErrRefused, s.Path)
		}
		return fmt.Errorf("open %s: %w", s.Path, err)
	}
	defer f.Close()

	// The URL's own expiry bounds the PUT: after it S3 refuses anyway.
	pctx, cancel := context.WithDeadline(ctx, g.Expires)
	defer cancel()
	method := g.Method
	if method == "" {
		method = http.MethodPut
	}
	req, err := http.NewRequestWithContext(pctx, method, g.URL, f)
	if err != nil {
		return fmt.Errorf("upload %s: %w", g.Key, err)
	}
	for k, vs := range g.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.ContentLength = s.Bytes
	resp, err := u.cfg.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("upload %s: %w", g.Key, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("upload %s: %s", g.Key, resp.Status)
	}
	if err := u.cfg.Relay.Notify(ctx, s, g.Key); err != nil {
		return fmt.Errorf("notify %s: %w", g.Key, err)
	}
	if err := u.cfg.Ring.MarkUploaded(s.ID); err != nil {
		return err
	}
	u.uploaded.Add(1)
	u.bytes.Add(uint64(s.Bytes))
	u.mu.Lock()
	u.lastOK = time.Now()
	u.mu.Unlock()
	u.log.Debug("segment uploaded", "key", g.Key, "bytes", s.Bytes)
	return nil
}
