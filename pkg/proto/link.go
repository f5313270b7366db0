package proto

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The link is the hub's one outbound WebSocket to relay (the hub needs no
// inbound port). Either end sends requests; the other answers each with a
// reply carrying the request's ID. Messages are JSON text frames.
const PathHubLink = "/api/v1/hub/link" // GET, WebSocket upgrade, hub credential as bearer

// LinkReply is the Type of an answer.
const LinkReply = "reply"

// LinkMessage is one frame of the link.
type LinkMessage struct {
	// ID pairs a reply with its request; a request without ID wants no reply.
	ID   string          `json:"id,omitempty"`
	Type string          `json:"type"`
	Body json.RawMessage `json:"body,omitempty"`
	// Status and Error are set in a failed reply: an HTTP status that says
	// what kind of failure (400 bad request, 404 unknown camera, 409 not
	// supported by the camera, 502 camera failed, 504 timeout).
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// MaxLinkMessage bounds one frame; bigger ones close the link.
const MaxLinkMessage = 1 << 20

// Request types relay sends to a hub.
const (
	LinkPTZ = "ptz" // PTZRequest -> empty reply
)

// PTZ actions; a preset is "preset" with PTZRequest.Preset set.
var PTZActions = []string{"up", "down", "left", "right", "zoomin", "zoomout", "home", "stop", "preset"}

// PTZRequest asks a hub to move one of its cameras.
type PTZRequest struct {
	Camera string `json:"camera"` // the hub's camera id
	Action string `json:"action"`
	Preset int    `json:"preset,omitempty"`
}

// Validate checks the action and preset, so both ends refuse the same input.
func (r PTZRequest) Validate() error {
	known := false
	for _, a := range PTZActions {
		known = known || a == r.Action
	}
	switch {
	case r.Camera == "":
		return fmt.Errorf("ptz: camera missing")
	case !known:
		return fmt.Errorf("ptz: unknown action %q (one of %s)", r.Action, strings.Join(PTZActions, ", "))
	case r.Action == "preset" && (r.Preset < 1 || r.Preset > 255):
		return fmt.Errorf("ptz: preset %d out of range 1-255", r.Preset)
	case r.Action != "preset" && r.Preset != 0:
		return fmt.Errorf("ptz: preset number given with action %q", r.Action)
	}
	return nil
}
