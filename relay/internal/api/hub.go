package api

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// Hub routes: a hub reports its cameras, asks for upload URLs and notifies
// finished uploads. A hub acts only on its own cameras.

// reportedCamera is camera.Camera as a hub may send it: an older or foreign
// hub might include "password"; it is accepted and dropped, never stored.
type reportedCamera struct {
	camera.Camera
	IgnoredPassword any `json:"password,omitempty"`
}

type cameraReport struct {
	Cameras []reportedCamera `json:"cameras"`
}

// maxCamerasPerHub bounds a report (a hub records a handful).
const maxCamerasPerHub = 1000

// cameraIDPattern is pkg/camera's id rule: the camera id is part of object
// keys and of API ids.
var cameraIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (s *Server) reportCameras(w http.ResponseWriter, r *http.Request, p principal) error {
	var in cameraReport
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.Cameras == nil {
		return errorf(http.StatusBadRequest, "cameras: missing (send [] for a hub without cameras)")
	}
	if len(in.Cameras) > maxCamerasPerHub {
		return errorf(http.StatusBadRequest, "cameras: %d cameras, at most %d", len(in.Cameras), maxCamerasPerHub)
	}
	cams := make([]camera.Camera, 0, len(in.Cameras))
	seen := map[string]bool{}
	for i, rc := range in.Cameras {
		c := rc.Camera
		if !cameraIDPattern.MatchString(c.ID) || strings.Contains(c.ID, "..") {
			return errorf(http.StatusBadRequest, "cameras[%d].id: must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit, without \"..\", got %q", i, c.ID)
		}
		if seen[c.ID] {
			return errorf(http.StatusBadRequest, "cameras[%d].id: duplicate camera id %q", i, c.ID)
		}
		seen[c.ID] = true
		if len(c.Name) > 200 {
			return errorf(http.StatusBadRequest, "cameras[%d].name: longer than 200 characters", i)
		}
		cams = append(cams, redactCamera(c))
	}
	out, err := s.store.SyncCameras(r.Context(), p.hub, cams, store.ChannelOptions{RetentionDays: s.opts.RetentionDays, Now: s.now()})
	if err != nil {
		return err
	}
	res := proto.CameraReportResult{Cameras: []proto.ReportedCamera{}}
	for _, c := range out {
		res.Cameras = append(res.Cameras, proto.ReportedCamera{ID: c.Camera.ID, CameraID: c.ID, Channel: c.Channel, Removed: c.Removed})
	}
	s.log.Info("cameras reported", "hub", p.hub.ID, "cameras", len(cams))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// hubChannel is the hub's camera named id and its channel: 403 for a
// camera the hub never reported (another hub's included), 409 when a user
// deleted the camera's channel (relay no longer takes its recordings).
func (s *Server) hubChannel(r *http.Request, hub store.Hub, id string) (store.Camera, store.Channel, error) {
	cam, err := s.store.Camera(r.Context(), store.CameraID(hub.ID, id))
	if errors.Is(err, store.ErrNotFound) {
		return cam, store.Channel{}, errorf(http.StatusForbidden, "camera %q is not a camera of hub %s (report it with PUT %s first)", id, hub.ID, proto.PathHubCameras)
	}
	if err != nil {
		return cam, store.Channel{}, err
	}
	noChannel := errorf(http.StatusConflict, "camera %q has no channel (deleted by a user): relay does not take its recordings", id)
	if cam.Channel == "" {
		return cam, store.Channel{}, noChannel
	}
	ch, err := s.store.Channel(r.Context(), cam.Channel)
	if errors.Is(err, store.ErrNotFound) || err == nil && ch.IsDeleted() {
		return cam, ch, noChannel
	}
	return cam, ch, err
}

func (s *Server) presignUpload(w http.ResponseWriter, r *http.Request, p principal) error {
	var in proto.UploadRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	seg, err := checkSegment(in, s.now())
	if err != nil {
		return err
	}
	cam, ch, err := s.hubChannel(r, p.hub, seg.Camera)
	if err != nil {
		return err
	}
	key := uploadKey(ch, cam.Camera.ID, seg.Start)
	ps, err := s.objects.PresignPut(r.Context(), key, seg.Bytes, contentType, s.opts.UploadExpiry)
	if err != nil {
		return s.objectError("presign PUT", key, err)
	}
	s.metrics.presigns.WithLabelValues(http.MethodPut).Inc()
	writeJSON(w, http.StatusOK, proto.Upload{Key: key, URL: ps.URL, Method: ps.Method, Headers: ps.Header, Expires: ps.Expires.UTC()})
	return nil
}

func (s *Server) notifyRecording(w http.ResponseWriter, r *http.Request, p principal) error {
	var in proto.RecordingNotice
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	seg, err := checkSegment(in.UploadRequest, s.now())
	if err != nil {
		return err
	}
	if in.Key == "" {
		return errorf(http.StatusBadRequest, "key: missing (the key of the upload URL)")
	}
	cam, ch, err := s.hubChannel(r, p.hub, seg.Camera)
	if err != nil {
		return err
	}
	if want := uploadKey(ch, cam.Camera.ID, seg.Start); in.Key != want {
		return errorf(http.StatusBadRequest, "key %q is not the upload key of camera %q at %s (want %q)", in.Key, seg.Camera, seg.Start.Format(timeFormat), want)
	}
	// A repeated notice (the hub crashed before it saw the answer) answers
	// from the index, without asking the object store again.
	if old, err := s.store.Recording(r.Context(), store.RecordingID(in.Key)); err == nil {
		if old.Bytes != seg.Bytes || old.ETag != seg.MD5 {
			return errorf(http.StatusConflict, "recording %s is stored already with %d bytes and MD5 %s", old.Key, old.Bytes, old.ETag)
		}
		writeJSON(w, http.StatusOK, recordingView(old))
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := s.verifyObject(r, in.Key, seg); err != nil {
		return err
	}
	res, err := s.store.PutRecordings(r.Context(), []store.Recording{{
		Channel: ch.ID, Camera: cam.ID, Start: seg.Start, End: seg.End, Bytes: seg.Bytes,
		Codec: seg.Codec, Key: in.Key, ETag: seg.MD5, Created: s.now(),
	}})
	if errors.Is(err, store.ErrChannelGone) {
		return errorf(http.StatusConflict, "channel %s was deleted meanwhile", ch.ID)
	}
	if err != nil {
		return err
	}
	code := http.StatusOK
	if res[0].Created {
		code = http.StatusCreated
		s.metrics.recordings.Inc()
		if s.clips != nil {
			s.clips.RecordingAdded(ch.ID) // clips waiting for it look now
		}
	}
	writeJSON(w, code, recordingView(res[0].Recording))
	return nil
}

// verifyObject checks the uploaded object against the notice: relay records
// only what is in the bucket, complete and intact.
func (s *Server) verifyObject(r *http.Request, key string, seg segment) error {
	info, err := s.objects.Head(r.Context(), key)
	if errors.Is(err, ErrObjectNotFound) {
		s.metrics.rejected.WithLabelValues("missing").Inc()
		return errorf(http.StatusConflict, "object %s not found: upload it before the notice", key)
	}
	if err != nil {
		return s.objectError("HEAD", key, err)
	}
	if info.Size != seg.Bytes {
		s.metrics.rejected.WithLabelValues("size").Inc()
		return errorf(http.StatusConflict, "size mismatch: object %s has %d bytes, the notice says %d", key, info.Size, seg.Bytes)
	}
	if etag := normalizeETag(info.ETag); etag != seg.MD5 {
		s.metrics.rejected.WithLabelValues("md5").Inc()
		return errorf(http.StatusConflict, "MD5 mismatch: object %s has ETag %q, the notice says MD5 %s (upload it again in one PUT)", key, etag, seg.MD5)
	}
	return nil
}

// normalizeETag strips the quotes and W/ of an HTTP ETag: for a single-part
// upload S3's ETag is the hex MD5 of the content.
func normalizeETag(e string) string {
	e = strings.TrimPrefix(strings.TrimSpace(e), "W/")
	return strings.ToLower(strings.Trim(e, `"`))
}

// objectError reports a failure of the object store as 502: the request
// was fine, the backend failed; the detail goes to the log only.
func (s *Server) objectError(op, key string, err error) error {
	s.log.Error("object store", "op", op, "key", key, "err", err)
	return errorf(http.StatusBadGateway, "object store: %s failed, retry later", op)
}

func recordingView(r store.Recording) proto.Recording {
	return proto.Recording{ID: r.ID, Channel: r.Channel, Camera: r.Camera, Start: r.Start, End: r.End,
		Bytes: r.Bytes, Codec: r.Codec, Key: r.Key, ETag: r.ETag, Created: r.Created}
}

// hubLink upgrades to the hub's control link (WebSocket) and serves it
// until it drops.
func (s *Server) hubLink(w http.ResponseWriter, r *http.Request, p principal) error {
	if !websocket.IsWebSocketUpgrade(r) {
		return errorf(http.StatusBadRequest, "%s takes a WebSocket upgrade (the hub's control link)", proto.PathHubLink)
	}
	return s.links.ServeHub(w, r, p.hub.ID)
}
