// Package snapshot captures one JPEG from a camera: its snapshot URL
// (Basic or Digest), or else one frame of its MJPEG stream. Never decodes.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/httpauth"
	"github.com/zipnvr/zipnvr/hubd/internal/ingest"
	"github.com/zipnvr/zipnvr/pkg/camera"
)

// MaxBytes bounds one snapshot (a 4K JPEG at high quality is ~3 MB).
const MaxBytes = ingest.MaxJPEGBytes

// Errors a caller may tell apart.
var (
	// ErrNoSource: the camera has neither a snapshot URL nor an MJPEG stream.
	ErrNoSource = errors.New("camera has no snapshot URL and no MJPEG stream")
	// ErrAuth: the camera refused the credentials.
	ErrAuth = errors.New("camera refused the credentials")
)

// Config of a Capturer; zero values take the defaults.
type Config struct {
	// Timeout bounds the whole capture (default 10 s); ctx may end it sooner.
	Timeout time.Duration
	// HTTP is the client (nil: a fresh one per capture, so that no
	// connection to a camera lingers).
	HTTP *http.Client
	// MaxParts bounds the MJPEG parts read while looking for a JPEG (default 10).
	MaxParts int
}

// Capturer takes snapshots.
type Capturer struct{ cfg Config }

// New returns a Capturer.
func New(cfg Config) *Capturer {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxParts <= 0 {
		cfg.MaxParts = 10
	}
	return &Capturer{cfg: cfg}
}

// Capture takes one JPEG from cam with the default settings.
func Capture(ctx context.Context, cam camera.Camera, syntax camera.Syntax) ([]byte, error) {
	return New(Config{}).Capture(ctx, cam, syntax)
}

// Capture takes one JPEG: from the snapshot URL, and when that fails or
// is absent, from the MJPEG stream. The error names both attempts; it
// never carries a password.
func (c *Capturer) Capture(ctx context.Context, cam camera.Camera, syntax camera.Syntax) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var errs []error
	if cam.Snapshot != "" {
		u, err := cam.SnapshotURL(syntax)
		if err == nil {
			var jpeg []byte
			if jpeg, err = c.fromSnapshot(ctx, u); err == nil {
				return jpeg, nil
			}
		}
		errs = append(errs, fmt.Errorf("snapshot URL: %w", err))
	}
	if cam.Streams.MJPEG != "" {
		u, err := cam.URL(syntax, camera.MJPEG)
		if err == nil {
			var jpeg []byte
			if jpeg, err = c.fromMJPEG(ctx, u); err == nil {
				return jpeg, nil
			}
		}
		errs = append(errs, fmt.Errorf("MJPEG stream: %w", err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("camera %s: %w", cam.ID, ErrNoSource)
	}
	return nil, fmt.Errorf("camera %s: %w", cam.ID, errors.Join(errs...))
}

// get sends a GET with the URL's userinfo as Basic/Digest credentials.
func (c *Capturer) get(ctx context.Context, u *url.URL) (*http.Response, error) {
	v := *u
	user, pass := "", ""
	if v.User != nil {
		user = v.User.Username()
		pass, _ = v.User.Password()
		v.User = nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.String(), nil)
	if err != nil {
		return nil, errors.New("request not built")
	}
	client := c.cfg.HTTP
	if client == nil {
		tr := &http.Transport{ResponseHeaderTimeout: c.cfg.Timeout}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	resp, err := httpauth.Do(client, req, user, pass)
	if err != nil {
		if errors.Is(err, httpauth.ErrUnauthorized) {
			return nil, fmt.Errorf("GET %s: %w", camera.LogURL(&v), ErrAuth)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error prints the URL; we print the redacted one
		}
		return nil, fmt.Errorf("GET %s: %w", camera.LogURL(&v), err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", camera.LogURL(&v), resp.Status)
	}
	return resp, nil
}

func (c *Capturer) fromSnapshot(ctx context.Context, u *url.URL) ([]byte, error) {
	resp, err := c.get(ctx, u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// Some cameras answer their snapshot URL with a one-part multipart.
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); strings.HasPrefix(mt, "multipart/") {
		return c.firstJPEG(resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("snapshot larger than %d bytes", MaxBytes)
	}
	if _, _, err := ingest.JPEGSize(data); err != nil {
		return nil, fmt.Errorf("snapshot is not a JPEG (%s): %w", resp.Header.Get("Content-Type"), err)
	}
	return data, nil
}

func (c *Capturer) fromMJPEG(ctx context.Context, u *url.URL) ([]byte, error) {
	resp, err := c.get(ctx, u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return c.firstJPEG(resp)
}

// firstJPEG returns the first part of a multipart stream that is a JPEG.
func (c *Capturer) firstJPEG(resp *http.Response) ([]byte, error) {
	mr, err := ingest.NewMultipartReader(resp.Header.Get("Content-Type"), resp.Body)
	if err != nil {
		return nil, err
	}
	var last error
	for i := 0; i < c.cfg.MaxParts; i++ {
		part, err := mr.Next()
		if err != nil {
			return nil, fmt.Errorf("MJPEG part: %w", err)
		}
		if _, _, err := ingest.JPEGSize(part); err != nil {
			last = err
			continue
		}
		return part, nil
	}
	return nil, fmt.Errorf("no JPEG in the first %d parts: %v", c.cfg.MaxParts, last)
}
