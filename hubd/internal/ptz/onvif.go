package ptz

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/onvif"
)

// onvifDriver steers through ONVIF PTZ: ContinuousMove (with the move's
// time as its Timeout), Stop, GotoPreset, GotoHomePosition. The profile
// is params.ptz_profile, else the first profile with a PTZ configuration.
type onvifDriver struct {
	client *onvif.Client

	mu      sync.Mutex
	profile string
}

const onvifSpeed = 0.5

func newONVIF(cfg Config) (Driver, error) {
	cam := cfg.Camera
	tmpl := cam.Params[onvif.ParamURL]
	if tmpl == "" {
		if cam.IP == "" {
			return nil, fmt.Errorf("camera %s: ONVIF PTZ needs params.%s (the device service URL) or an ip", cam.ID, onvif.ParamURL)
		}
		tmpl = "http://" + cfg.Syntax.Open + "ip" + cfg.Syntax.Close + "/onvif/device_service"
	}
	s, err := cfg.Syntax.Expand(tmpl, cam.Vars())
	if err != nil {
		return nil, fmt.Errorf("camera %s: ONVIF device URL: %w", cam.ID, err)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("camera %s: ONVIF device URL is not an http(s) URL", cam.ID)
	}
	u.User = nil
	return &onvifDriver{
		client:  &onvif.Client{DeviceURL: u.String(), Username: cam.Username, Password: cam.Password, HTTP: cfg.HTTP},
		profile: cam.Params[onvif.ParamProfile],
	}, nil
}

func (d *onvifDriver) token(ctx context.Context) (string, error) {
	d.mu.Lock()
	p := d.profile
	d.mu.Unlock()
	if p != "" {
		return p, nil
	}
	p, err := d.client.PTZProfile(ctx)
	if err != nil {
		return "", wrapONVIF("GetProfiles", err)
	}
	d.mu.Lock()
	d.profile = p
	d.mu.Unlock()
	return p, nil
}

func wrapONVIF(op string, err error) error {
	if err == nil {
		return nil
	}
	return &CameraError{Op: "onvif " + op, Err: err}
}

func (d *onvifDriver) Move(ctx context.Context, dir Direction, timeout time.Duration) error {
	p, err := d.token(ctx)
	if err != nil {
		return err
	}
	v := onvif.Velocity{Pan: float64(dir.Pan) * onvifSpeed, Tilt: float64(dir.Tilt) * onvifSpeed, Zoom: float64(dir.Zoom) * onvifSpeed}
	return wrapONVIF("ContinuousMove", d.client.ContinuousMove(ctx, p, v, timeout))
}

func (d *onvifDriver) Stop(ctx context.Context) error {
	p, err := d.token(ctx)
	if err != nil {
		return err
	}
	return wrapONVIF("Stop", d.client.Stop(ctx, p))
}

func (d *onvifDriver) Home(ctx context.Context) error {
	p, err := d.token(ctx)
	if err != nil {
		return err
	}
	return wrapONVIF("GotoHomePosition", d.client.GotoHomePosition(ctx, p))
}

// Preset n is the preset token "n": cameras number their presets so.
func (d *onvifDriver) Preset(ctx context.Context, n int) error {
	p, err := d.token(ctx)
	if err != nil {
		return err
	}
	return wrapONVIF("GotoPreset", d.client.GotoPreset(ctx, p, strconv.Itoa(n)))
}
