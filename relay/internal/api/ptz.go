package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
)

// PTZ routes: relay holds no camera address or credential, so a move is a
// request over the camera's hub control link; the hub drives the camera
// (ONVIF or the vendor's HTTP API) and its status comes back as ours.

// ptzTimeout bounds one PTZ request through the hub. A hub answers after
// the camera did (its own camera timeout is shorter), so this only fires
// when the link itself stalls.
const ptzTimeout = 15 * time.Second

// ptzResult is the answer of a PTZ route.
type ptzResult struct {
	Camera string `json:"camera"`
	Action string `json:"action"`
	Preset int    `json:"preset,omitempty"`
}

// ptzAction moves a camera: up down left right zoomin zoomout home stop
// (case-insensitive: the Zipato platform writes HOME, STOP...).
func (s *Server) ptzAction(w http.ResponseWriter, r *http.Request, p principal) error {
	action := strings.ToLower(r.PathValue("action"))
	if action == "preset" {
		return errorf(http.StatusBadRequest, "a preset needs its number: POST .../ptz/preset/{n}")
	}
	return s.ptz(w, r, p, action, 0)
}

// ptzPreset moves a camera to its preset n (1-255).
func (s *Server) ptzPreset(w http.ResponseWriter, r *http.Request, p principal) error {
	raw := r.PathValue("n")
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 255 {
		return errorf(http.StatusBadRequest, "preset %q: want a number 1-255", clipText(raw))
	}
	return s.ptz(w, r, p, "preset", n)
}

func (s *Server) ptz(w http.ResponseWriter, r *http.Request, p principal, action string, preset int) error {
	c, err := s.visibleCamera(r, p)
	if err != nil {
		return err
	}
	req := proto.PTZRequest{Camera: c.Camera.ID, Action: action, Preset: preset}
	if err := req.Validate(); err != nil {
		return errorf(http.StatusBadRequest, "%s", strings.TrimPrefix(clipText(err.Error()), "ptz: "))
	}
	switch {
	case c.Removed:
		return errorf(http.StatusConflict, "camera %s is no longer reported by its hub", c.ID)
	case c.Camera.PTZ.Kind == "" || c.Camera.PTZ.Kind == "none":
		// The hub says so in each camera report; asking it again would
		// only add a round trip (and fail while it is offline).
		return errorf(http.StatusConflict, "camera %s has no PTZ", c.ID)
	}
	ctx, cancel := context.WithTimeout(r.Context(), ptzTimeout)
	defer cancel()
	err = s.links.Call(ctx, c.Hub, proto.LinkPTZ, req, nil)
	var remote *hublink.RemoteError
	switch {
	case err == nil:
	case errors.Is(err, hublink.ErrOffline):
		return errorf(http.StatusServiceUnavailable, "hub %s of camera %s is offline (no control link); try again when it is back", c.Hub, c.ID)
	case errors.As(err, &remote):
		// The hub's status says what failed: 400 bad action, 404 camera
		// gone from the hub, 409 no PTZ, 502 the camera failed, 504 it
		// did not answer. Its message names the hub's camera id; ours is
		// the API id.
		code := remote.Status
		if code < 400 || code > 599 {
			code = http.StatusBadGateway
		}
		s.log.Info("PTZ refused by the hub", "tenant", c.Tenant, "camera", c.ID, "action", action, "status", code, "err", remote.Message)
		return errorf(code, "camera %s: %s", c.ID, clipText(remote.Message))
	case ctx.Err() != nil && r.Context().Err() == nil:
		return errorf(http.StatusGatewayTimeout, "hub %s did not answer the PTZ request within %s", c.Hub, ptzTimeout)
	default:
		s.log.Warn("PTZ request to the hub failed", "hub", c.Hub, "camera", c.ID, "action", action, "err", err)
		return errorf(http.StatusBadGateway, "hub %s: PTZ request failed", c.Hub)
	}
	s.log.Info("PTZ", "tenant", c.Tenant, "camera", c.ID, "action", action, "preset", preset)
	writeJSON(w, http.StatusOK, ptzResult{Camera: c.ID, Action: action, Preset: preset})
	return nil
}

// clipText bounds text quoted back from a path or a hub (a hub's message
// is the hub's, not the client's, to make long).
func clipText(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
