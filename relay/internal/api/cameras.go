package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// User routes on cameras. A camera's API id is "<hub id>.<camera id on the
// hub>" (hub ids have no dot): stable across reports, readable in logs.

// cameraView is a camera as users see it: the hub's camera fields (never a
// password: camera.Camera's JSON drops it) with relay's id on top.
type cameraView struct {
	ID     string `json:"id"` // shadows camera.Camera's id: the hub's id is local_id
	Tenant string `json:"tenant"`
	Hub    string `json:"hub"`
	Local  string `json:"local_id"`
	camera.Camera
	Removed  bool      `json:"removed"`
	Channel  string    `json:"channel,omitempty"`
	Reported time.Time `json:"reported"`
}

func newCameraView(c store.Camera) cameraView {
	cam := c.Camera
	cam.Password = ""
	return cameraView{ID: c.ID, Tenant: c.Tenant, Hub: c.Hub, Local: cam.ID, Camera: cam,
		Removed: c.Removed, Channel: c.Channel, Reported: c.Reported}
}

// visibleCamera is the camera of the path if p may see it; else 404, the
// same answer as for a camera that does not exist.
func (s *Server) visibleCamera(r *http.Request, p principal) (store.Camera, error) {
	id := r.PathValue("id")
	c, err := s.store.Camera(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !p.sees(c.Tenant) {
		return c, errorf(http.StatusNotFound, "camera %q not found", id)
	}
	return c, err
}

func (s *Server) listCameras(w http.ResponseWriter, r *http.Request, p principal) error {
	cams, err := s.store.Cameras(r.Context(), p.scope())
	if err != nil {
		return err
	}
	out := struct {
		Cameras []cameraView `json:"cameras"`
	}{Cameras: []cameraView{}}
	for _, c := range cams {
		out.Cameras = append(out.Cameras, newCameraView(c))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getCamera(w http.ResponseWriter, r *http.Request, p principal) error {
	c, err := s.visibleCamera(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newCameraView(c))
	return nil
}

// ensureChannel returns the camera's channel (200) or creates one (201):
// after a user deleted it, this is how recording resumes.
func (s *Server) ensureChannel(w http.ResponseWriter, r *http.Request, p principal) error {
	c, err := s.visibleCamera(r, p)
	if err != nil {
		return err
	}
	ch, created, err := s.store.EnsureChannel(r.Context(), c.ID, store.ChannelOptions{RetentionDays: s.opts.RetentionDays, Now: s.now()})
	if err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		s.log.Info("channel created", "tenant", ch.Tenant, "camera", c.ID, "channel", ch.ID)
	}
	writeJSON(w, code, newChannelView(ch))
	return nil
}
