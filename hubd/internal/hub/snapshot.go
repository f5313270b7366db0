package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/link"
	"github.com/zipnvr/zipnvr/hubd/internal/snapshot"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
)

// Snapshots for relay: on request over the control link (a user asked for
// one), and on a schedule (thumbnails). The JPEG comes from the camera's
// snapshot URL or its MJPEG stream (hubd/internal/snapshot) and goes to
// object storage through a presigned PUT that relay signs for exactly its
// size; relay checks the object before it lists the snapshot as ready.

// snapshotPutTimeout bounds one upload of an image (a few MB on a slow uplink).
const snapshotPutTimeout = time.Minute

// setupSnapshots registers the link's snapshot requests (in New).
func (h *Hub) setupSnapshots() {
	if h.link != nil {
		h.link.Handle(proto.LinkSnapshot, h.handleLinkSnapshot)
	} else if h.cfg.Snapshots.EveryMinutes > 0 {
		h.log.Warn("snapshots.every_minutes is set but there is no relay.url: no thumbnails are taken")
	}
}

// handleLinkSnapshot answers relay's snapshot requests (POST
// /channels/{id}/snapshots?source=agent): capture, upload, then answer.
// An error's message lands on the user's snapshot entry: it names the
// camera and what failed, never a credential.
func (h *Hub) handleLinkSnapshot(ctx context.Context, body json.RawMessage) (any, error) {
	var req proto.SnapshotRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, link.Errorf(http.StatusBadRequest, "snapshot: bad request: %v", err)
	}
	if err := req.Validate(); err != nil {
		return nil, link.Errorf(http.StatusBadRequest, "%v", err)
	}
	cam, ok := h.Camera(req.Camera)
	if !ok {
		return nil, link.Errorf(http.StatusNotFound, "camera %s is not a camera of this hub", req.Camera)
	}
	res, err := h.takeSnapshot(ctx, cam, req.Snapshot, req.MaxBytes)
	if err != nil {
		h.log.Warn("snapshot failed", "camera", cam.ID, "snapshot", req.Snapshot, "err", err)
		return nil, err
	}
	h.log.Info("snapshot uploaded", "camera", cam.ID, "snapshot", req.Snapshot, "bytes", res.Bytes)
	return res, nil
}

// takeSnapshot captures cam and uploads the JPEG for relay's entry id ("":
// a scheduled thumbnail, relay makes the entry). Errors are *wslink.Error
// with an HTTP-like status.
func (h *Hub) takeSnapshot(ctx context.Context, cam camera.Camera, id string, maxBytes int64) (proto.SnapshotResult, error) {
	jpeg, err := snapshot.Capture(ctx, cam, h.cfg.Templates)
	captured := time.Now().UTC()
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", "; ") // errors.Join of the two sources
		switch {
		case errors.Is(err, snapshot.ErrNoSource):
			return proto.SnapshotResult{}, link.Errorf(http.StatusConflict, "%s", msg)
		case errors.Is(err, context.DeadlineExceeded):
			return proto.SnapshotResult{}, link.Errorf(http.StatusGatewayTimeout, "%s (no answer in time)", msg)
		}
		return proto.SnapshotResult{}, link.Errorf(http.StatusBadGateway, "%s", msg)
	}
	n := int64(len(jpeg))
	if maxBytes > 0 && n > maxBytes {
		return proto.SnapshotResult{}, link.Errorf(http.StatusRequestEntityTooLarge, "camera %s: the image has %d bytes, relay takes at most %d", cam.ID, n, maxBytes)
	}
	var up proto.SnapshotUpload
	if err := h.link.Call(ctx, proto.LinkSnapshotUpload, proto.SnapshotUploadRequest{Snapshot: id, Camera: cam.ID, Bytes: n, Captured: captured}, &up); err != nil {
		return proto.SnapshotResult{}, link.Errorf(http.StatusBadGateway, "camera %s: no upload URL from relay: %v", cam.ID, err)
	}
	if err := putSnapshot(ctx, up.Upload, jpeg); err != nil {
		return proto.SnapshotResult{}, link.Errorf(http.StatusBadGateway, "camera %s: upload of %d bytes failed: %v", cam.ID, n, err)
	}
	return proto.SnapshotResult{Bytes: n, Captured: captured}, nil
}

// putSnapshot sends body with a plain HTTP request as the presigned URL
// says: its signed headers and exactly its length.
func putSnapshot(ctx context.Context, up proto.Upload, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, snapshotPutTimeout)
	defer cancel()
	if !up.Expires.IsZero() {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, up.Expires)
		defer c2()
	}
	method := up.Method
	if method == "" {
		method = http.MethodPut
	}
	req, err := http.NewRequestWithContext(ctx, method, up.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("bad upload URL")
	}
	for k, vs := range up.Headers {
		if http.CanonicalHeaderKey(k) == "Content-Length" {
			continue // net/http sends ContentLength, not this header
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.ContentLength = int64(len(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap() // url.Error prints the signed URL
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("object store answered %s", resp.Status)
	}
	return nil
}

// runSnapshots takes a thumbnail of every camera with a snapshot source
// each snapshots.every_minutes, first when the link comes up, while the
// link is up (relay signs the uploads).
func (h *Hub) runSnapshots(ctx context.Context) {
	every := h.cfg.Snapshots.Every()
	if every <= 0 || h.link == nil {
		return
	}
	h.log.Info("scheduled thumbnails", "every", every)
	// Until the first round, look for the link each second.
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if !h.link.Up() {
			wait = min(time.Second, every)
			continue
		}
		for _, cam := range h.Cameras() {
			if cam.Snapshot == "" && cam.Streams.MJPEG == "" {
				continue // nothing to take a still from without decoding
			}
			if _, err := h.takeSnapshot(ctx, cam, "", 0); err != nil && ctx.Err() == nil {
				h.log.Warn("thumbnail failed", "camera", cam.ID, "err", err)
			}
		}
		wait = every
	}
}
