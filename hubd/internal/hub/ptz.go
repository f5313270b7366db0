package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"

	"github.com/zipnvr/zipnvr/hubd/internal/link"
	"github.com/zipnvr/zipnvr/hubd/internal/ptz"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
)

// StatusError is a command that failed, with an HTTP-like status: 400 bad
// command, 404 unknown camera, 409 the camera cannot do it, 502 the camera
// failed, 504 it did not answer in time.
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string { return e.Message }

func statusErr(status int, format string, a ...any) error {
	return &StatusError{Status: status, Message: fmt.Sprintf(format, a...)}
}

// ptzControllers keeps one controller per camera, rebuilt when the camera
// changes (its driver, address or credentials may have).
type ptzControllers struct {
	mu   sync.Mutex
	byID map[string]*ptzEntry
}

type ptzEntry struct {
	cam  camera.Camera
	ctrl *ptz.Controller
}

// PTZ moves camera id: up down left right zoomin zoomout home stop, or
// preset with a number. Errors are *StatusError.
func (h *Hub) PTZ(ctx context.Context, id, action string, preset int) error {
	if err := ptz.CheckAction(action, preset); err != nil {
		return statusErr(http.StatusBadRequest, "%v", err)
	}
	cam, ok := h.Camera(id)
	if !ok {
		return statusErr(http.StatusNotFound, "camera %s is not a camera of this hub", id)
	}
	ctrl, err := h.ptzController(cam)
	if err != nil {
		if errors.Is(err, ptz.ErrNoPTZ) {
			return statusErr(http.StatusConflict, "camera %s has no PTZ", id)
		}
		return statusErr(http.StatusConflict, "camera %s: PTZ not usable: %v", id, err)
	}
	err = ctrl.Do(ctx, action, preset)
	var ce *ptz.CameraError
	switch {
	case err == nil:
		h.log.Info("PTZ", "camera", id, "action", action, "preset", preset)
		return nil
	case errors.Is(err, ptz.ErrBadAction):
		return statusErr(http.StatusBadRequest, "%v", err)
	case errors.Is(err, ptz.ErrUnsupported):
		return statusErr(http.StatusConflict, "camera %s: %v", id, err)
	case errors.Is(err, context.DeadlineExceeded):
		h.log.Warn("PTZ: camera did not answer in time", "camera", id, "action", action, "err", err)
		return statusErr(http.StatusGatewayTimeout, "camera %s did not answer the PTZ request in time", id)
	case errors.As(err, &ce) && ce.Status == http.StatusUnauthorized:
		h.log.Warn("PTZ: camera refused the credentials", "camera", id, "action", action)
		return statusErr(http.StatusBadGateway, "camera %s refused the credentials for PTZ", id)
	default:
		h.log.Warn("PTZ failed", "camera", id, "action", action, "err", err)
		return statusErr(http.StatusBadGateway, "camera %s: PTZ %s failed: %v", id, action, err)
	}
}

func (h *Hub) ptzController(cam camera.Camera) (*ptz.Controller, error) {
	p := &h.ptz
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.byID[cam.ID]; ok {
		if reflect.DeepEqual(e.cam, cam) {
			return e.ctrl, nil
		}
		go e.ctrl.Close()
		delete(p.byID, cam.ID)
	}
	ctrl, err := ptz.New(ptz.Config{Camera: cam, Syntax: h.cfg.Templates, MoveDuration: seconds(h.cfg.PTZ.MoveSeconds),
		Timeout: seconds(h.cfg.PTZ.TimeoutSeconds), Logger: h.log})
	if err != nil {
		return nil, err
	}
	if p.byID == nil {
		p.byID = map[string]*ptzEntry{}
	}
	p.byID[cam.ID] = &ptzEntry{cam: cam, ctrl: ctrl}
	return ctrl, nil
}

// dropPTZ closes the controllers of cameras no longer there (a move in
// progress is stopped).
func (h *Hub) dropPTZ(cams []camera.Camera) {
	present := map[string]bool{}
	for _, c := range cams {
		present[c.ID] = true
	}
	p := &h.ptz
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, e := range p.byID {
		if !present[id] {
			go e.ctrl.Close()
			delete(p.byID, id)
		}
	}
}

// handleLinkPTZ answers the relay's PTZ requests (POST /cameras/{id}/ptz/...).
func (h *Hub) handleLinkPTZ(ctx context.Context, body json.RawMessage) (any, error) {
	var req proto.PTZRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, link.Errorf(http.StatusBadRequest, "ptz: bad request: %v", err)
	}
	if err := req.Validate(); err != nil {
		return nil, link.Errorf(http.StatusBadRequest, "%v", err)
	}
	if err := h.PTZ(ctx, req.Camera, req.Action, req.Preset); err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			return nil, link.Errorf(se.Status, "%s", se.Message)
		}
		return nil, link.Errorf(http.StatusBadGateway, "%v", err)
	}
	return struct{}{}, nil
}
