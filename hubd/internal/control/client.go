// Package control is hubd's link to the relay: the hub API it calls with
// its own credential (camera list, upload grants, upload notices).
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/hubd/internal/upload"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
)

// Config of the relay client.
type Config struct {
	URL        string // e.g. https://relay.example
	Credential string // the hub credential the relay's admin issued
	HTTP       *http.Client
}

// Client calls the relay's hub API.
type Client struct {
	base string
	cred string
	http *http.Client
}

// New returns a client.
func New(cfg Config) *Client {
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(cfg.URL, "/"), cred: cfg.Credential, http: cfg.HTTP}
}

// Error is a relay answer that is not a success.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("relay answered %d: %s", e.Status, e.Message) }

// maxAnswer bounds what we read of a relay answer.
const maxAnswer = 1 << 20

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.cred)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e proto.Error
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

// refusal maps answers about one segment that waiting will not fix soon.
func refusal(err error) error {
	var e *Error
	if errors.As(err, &e) && (e.Status == http.StatusForbidden || e.Status == http.StatusNotFound || e.Status == http.StatusConflict || e.Status == http.StatusBadRequest) {
		return fmt.Errorf("%w: %w", upload.ErrRefused, err)
	}
	return err
}

func request(s ring.Segment) proto.UploadRequest {
	return proto.UploadRequest{Camera: s.Camera, Start: s.Start.UTC(), End: s.End.UTC(), Bytes: s.Bytes, Codec: s.Codec, MD5: s.MD5}
}

// Presign implements upload.Relay.
func (c *Client) Presign(ctx context.Context, s ring.Segment) (upload.Grant, error) {
	var g proto.Upload
	if err := c.call(ctx, http.MethodPost, proto.PathHubUploads, request(s), &g); err != nil {
		return upload.Grant{}, refusal(err)
	}
	if g.URL == "" || g.Key == "" {
		return upload.Grant{}, errors.New("relay granted an upload without URL or key")
	}
	return upload.Grant{Key: g.Key, URL: g.URL, Method: g.Method, Header: g.Headers, Expires: g.Expires}, nil
}

// Notify implements upload.Relay. A 409 (the object does not match) is
// not a refusal: the next attempt uploads again.
func (c *Client) Notify(ctx context.Context, s ring.Segment, key string) error {
	return c.call(ctx, http.MethodPost, proto.PathHubRecordings, proto.RecordingNotice{Key: key, UploadRequest: request(s)}, nil)
}

// ReportCameras sends the hub's camera list, redacted: no password, in a
// field or written into a URL template, leaves the hub.
func (c *Client) ReportCameras(ctx context.Context, cams []camera.Camera, syntax camera.Syntax) error {
	rep := proto.CameraReport{Cameras: make([]camera.Camera, len(cams))}
	for i, cam := range cams {
		rep.Cameras[i] = cam.Redacted(syntax)
	}
	return c.call(ctx, http.MethodPut, proto.PathHubCameras, rep, nil)
}
