package zipato

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Commands carries out what arrives on request/cameras/<id>/<command>.
type Commands interface {
	PTZ(ctx context.Context, cameraID, action string, preset int) error
	Snapshot(ctx context.Context, cameraID string) ([]byte, error)
	SetRecording(ctx context.Context, cameraID string, on bool) error
}

// CommandError is a failed command with an HTTP-like status (400 bad
// command, 404 unknown camera, 409 not supported by the camera, 502 the
// camera failed, 504 it did not answer), as the relay API answers too.
type CommandError struct {
	Status  int
	Message string
}

func (e *CommandError) Error() string { return e.Message }

// Command is one parsed command.
type Command struct {
	Camera string
	Verb   string // ptz, snapshot, record
	Action string // ptz: up down left right zoomin zoomout home stop preset
	Preset int    // ptz preset number
	On     bool   // record on/off
}

// PTZActions are the moves a ptz command takes (plus preset/<n>).
var PTZActions = []string{"up", "down", "left", "right", "zoomin", "zoomout", "home", "stop"}

// ParseCommand parses a command topic (below the root) and its plain-text
// payload. The payload is case-insensitive ("HOME" as the box's REST API
// writes it, or "home").
func ParseCommand(rel string, payload []byte) (Command, error) {
	rest, ok := strings.CutPrefix(rel, commandPrefix)
	if !ok {
		return Command{}, fmt.Errorf("not a command topic")
	}
	id, verb, ok := strings.Cut(rest, "/")
	if !ok || !validUUID(id) || strings.Contains(verb, "/") {
		return Command{}, fmt.Errorf("command topic must be %s<camera>/<command>", commandPrefix)
	}
	cmd := Command{Camera: id, Verb: verb}
	if len(payload) > maxCommandBytes {
		return cmd, fmt.Errorf("payload of %d bytes, at most %d", len(payload), maxCommandBytes)
	}
	if !utf8.Valid(payload) {
		return cmd, errors.New("payload is not text")
	}
	text := strings.ToLower(strings.TrimSpace(string(payload)))
	switch verb {
	case "ptz":
		if n, ok := strings.CutPrefix(text, "preset/"); ok {
			p, err := strconv.Atoi(n)
			if err != nil || p < 1 || p > 255 {
				return cmd, fmt.Errorf("preset %q: want a number 1-255", clip(n))
			}
			cmd.Action, cmd.Preset = "preset", p
			return cmd, nil
		}
		for _, a := range PTZActions {
			if text == a {
				cmd.Action = a
				return cmd, nil
			}
		}
		return cmd, fmt.Errorf("unknown PTZ action %q (want %s or preset/<n>)", clip(text), strings.Join(PTZActions, ", "))
	case "snapshot":
		return cmd, nil // any payload ("get" by the box's habit)
	case "record":
		switch text {
		case "on", "true", "1", "start":
			cmd.On = true
		case "off", "false", "0", "stop":
		default:
			return cmd, fmt.Errorf("record %q: want on or off", clip(text))
		}
		return cmd, nil
	}
	return cmd, fmt.Errorf("unknown command %q (want ptz, snapshot or record)", clip(verb))
}

// Answer is published (not retained) on cameras/<id>/<command> after each command.
type Answer struct {
	OK     bool   `json:"ok"`
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
	Action string `json:"action,omitempty"`
	Preset int    `json:"preset,omitempty"`
	Record *bool  `json:"record,omitempty"`
	Bytes  int    `json:"bytes,omitempty"` // snapshot size
	Image  string `json:"image,omitempty"` // topic the JPEG went to
}

// command handles one command message off paho's goroutine, a bounded
// number at a time: a slow camera must not hold the MQTT client.
func (c *Client) command(rel string, payload []byte) {
	cmd, err := ParseCommand(rel, payload)
	if cmd.Camera == "" {
		c.log.Warn("MQTT command ignored", "topic", clip(rel), "err", err)
		return
	}
	if err != nil {
		c.log.Warn("MQTT command refused", "camera", cmd.Camera, "command", clip(cmd.Verb), "err", err)
		if cmd.Verb == "ptz" || cmd.Verb == "snapshot" || cmd.Verb == "record" {
			c.answer(cmd, Answer{Status: http.StatusBadRequest, Error: err.Error()})
		}
		return
	}
	select {
	case c.cmdSem <- struct{}{}:
	default:
		c.log.Warn("MQTT command refused: too many in flight", "camera", cmd.Camera, "command", cmd.Verb)
		c.answer(cmd, Answer{Status: http.StatusServiceUnavailable, Error: "busy: too many commands in flight"})
		return
	}
	go func() {
		defer func() { <-c.cmdSem }()
		c.log.Info("MQTT command", "camera", cmd.Camera, "command", cmd.Verb, "action", cmd.Action, "preset", cmd.Preset)
		c.answer(cmd, c.execute(cmd))
	}()
}

func (c *Client) execute(cmd Command) Answer {
	if c.cfg.Commands == nil {
		return Answer{Status: http.StatusNotImplemented, Error: "commands are not handled by this hub"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var a Answer
	var err error
	switch cmd.Verb {
	case "ptz":
		a.Action, a.Preset = cmd.Action, cmd.Preset
		err = c.cfg.Commands.PTZ(ctx, cmd.Camera, cmd.Action, cmd.Preset)
	case "snapshot":
		var jpeg []byte
		jpeg, err = c.cfg.Commands.Snapshot(ctx, cmd.Camera)
		if err == nil {
			a.Image = c.topic(cameraTopic + cmd.Camera + snapshotImage)
			a.Bytes = len(jpeg)
			if !c.publish(a.Image, false, jpeg) {
				err = &CommandError{Status: http.StatusServiceUnavailable, Message: "snapshot taken but not published"}
			}
		}
	case "record":
		on := cmd.On
		a.Record = &on
		err = c.cfg.Commands.SetRecording(ctx, cmd.Camera, on)
	}
	if err != nil {
		a.Status = http.StatusBadGateway
		var ce *CommandError
		if errors.As(err, &ce) {
			a.Status = ce.Status
		} else if errors.Is(err, context.DeadlineExceeded) {
			a.Status = http.StatusGatewayTimeout
		}
		a.Error = err.Error()
		c.log.Warn("MQTT command failed", "camera", cmd.Camera, "command", cmd.Verb, "status", a.Status, "err", err)
		return a
	}
	a.OK, a.Status = true, http.StatusOK
	return a
}

func (c *Client) answer(cmd Command, a Answer) {
	data, _ := json.Marshal(a)
	c.publish(c.topic(cameraTopic+cmd.Camera+"/"+cmd.Verb), false, data)
}
