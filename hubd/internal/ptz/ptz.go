// Package ptz steers cameras: up down left right zoomin zoomout home stop
// and presets become ONVIF PTZ calls or a vendor's HTTP API (Hikvision
// ISAPI, Dahua/Amcrest CGI, Axis VAPIX, Foscam CGI).
package ptz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Actions a controller takes; "preset" goes with a number.
var Actions = []string{"up", "down", "left", "right", "zoomin", "zoomout", "home", "stop", "preset"}

// Errors that say what the caller did wrong, not what the camera did.
var (
	// ErrNoPTZ: the camera has no PTZ driver configured.
	ErrNoPTZ = errors.New("camera has no PTZ")
	// ErrBadAction: unknown action or preset out of range.
	ErrBadAction = errors.New("bad PTZ action")
	// ErrUnsupported: the camera's driver has no such action.
	ErrUnsupported = errors.New("PTZ action not supported by this camera's driver")
)

// CameraError is a request the camera refused or failed.
type CameraError struct {
	Op     string
	Status int // HTTP status the camera answered (0: no answer)
	Err    error
}

func (e *CameraError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: camera answered %d", e.Op, e.Status)
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Err)
}

func (e *CameraError) Unwrap() error { return e.Err }

// Direction of a continuous move.
type Direction struct {
	Pan, Tilt, Zoom int // -1, 0 or 1
}

var directions = map[string]Direction{
	"up": {Tilt: 1}, "down": {Tilt: -1}, "left": {Pan: -1}, "right": {Pan: 1},
	"zoomin": {Zoom: 1}, "zoomout": {Zoom: -1},
}

// Driver speaks one camera's PTZ protocol.
type Driver interface {
	// Move starts a continuous move that should end by itself after
	// timeout where the protocol allows it; the controller stops it then
	// anyway.
	Move(ctx context.Context, d Direction, timeout time.Duration) error
	Stop(ctx context.Context) error
	Home(ctx context.Context) error
	Preset(ctx context.Context, n int) error
}

// Config of a camera's controller.
type Config struct {
	Camera camera.Camera
	Syntax camera.Syntax
	// MoveDuration: a move stops by itself after this (default 1 s).
	MoveDuration time.Duration
	// Timeout bounds one request to the camera (default 5 s).
	Timeout time.Duration
	HTTP    *http.Client // nil: a client with Timeout
	Logger  *slog.Logger
}

// Controller runs one camera's PTZ: a move is stopped after MoveDuration
// unless another move or a stop comes first.
type Controller struct {
	cfg Config
	drv Driver
	log *slog.Logger

	mu     sync.Mutex
	timer  *time.Timer
	closed bool
	gen    uint64 // move generation: a stale timer does not stop a newer move
}

// New returns the controller of cfg.Camera; ErrNoPTZ without a PTZ kind.
func New(cfg Config) (*Controller, error) {
	if cfg.MoveDuration <= 0 {
		cfg.MoveDuration = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	drv, err := newDriver(cfg)
	if err != nil {
		return nil, err
	}
	return &Controller{cfg: cfg, drv: drv, log: cfg.Logger.With("component", "ptz", "camera", cfg.Camera.ID, "driver", cfg.Camera.PTZ.Kind)}, nil
}

func newDriver(cfg Config) (Driver, error) {
	cam := cfg.Camera
	switch strings.ToLower(cam.PTZ.Kind) {
	case "", "none":
		return nil, fmt.Errorf("camera %s: %w", cam.ID, ErrNoPTZ)
	case "onvif":
		return newONVIF(cfg)
	case "hikvision":
		return newHikvision(cfg)
	case "dahua":
		return newDahua(cfg)
	case "axis":
		return newAxis(cfg)
	case "foscam":
		return newFoscam(cfg)
	}
	return nil, fmt.Errorf("camera %s: PTZ kind %q: %w", cam.ID, cam.PTZ.Kind, ErrNoPTZ)
}

// CheckAction validates an action and its preset number.
func CheckAction(action string, preset int) error {
	switch {
	case action == "preset":
		if preset < 1 || preset > 255 {
			return fmt.Errorf("%w: preset %d out of range 1-255", ErrBadAction, preset)
		}
		return nil
	case preset != 0:
		return fmt.Errorf("%w: a preset number with action %q", ErrBadAction, action)
	}
	if _, ok := directions[action]; ok || action == "home" || action == "stop" {
		return nil
	}
	return fmt.Errorf("%w: unknown action %q (want %s)", ErrBadAction, action, strings.Join(Actions, ", "))
}

// Do carries out one action. A move returns once the camera started
// moving; it stops after MoveDuration unless another action comes first.
func (c *Controller) Do(ctx context.Context, action string, preset int) error {
	if err := CheckAction(action, preset); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	gen := c.cancelTimer()
	switch action {
	case "stop":
		return c.drv.Stop(ctx)
	case "home":
		return c.drv.Home(ctx)
	case "preset":
		return c.drv.Preset(ctx, preset)
	}
	if err := c.drv.Move(ctx, directions[action], c.cfg.MoveDuration); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.gen != gen {
		return nil
	}
	c.timer = time.AfterFunc(c.cfg.MoveDuration, func() { c.autoStop(gen) })
	return nil
}

// cancelTimer drops a pending automatic stop: the new action supersedes
// the move. It returns the new generation.
func (c *Controller) cancelTimer() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.gen++
	return c.gen
}

func (c *Controller) autoStop(gen uint64) {
	c.mu.Lock()
	if c.gen != gen || c.closed {
		c.mu.Unlock()
		return
	}
	c.timer = nil
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	if err := c.drv.Stop(ctx); err != nil {
		c.log.Warn("PTZ stop after the move's time failed", "err", err)
	}
}

// Close stops a move in progress and the timer (camera removed or changed).
func (c *Controller) Close() {
	c.mu.Lock()
	moving := c.timer != nil
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.closed = true
	c.mu.Unlock()
	if moving {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
		defer cancel()
		_ = c.drv.Stop(ctx)
	}
}
