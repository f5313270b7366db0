package onvif

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Velocity of a ContinuousMove in the generic space (-1..1). A zero axis is
// left out of the request: PanTilt for pan/tilt moves, Zoom for zoom.
type Velocity struct {
	Pan, Tilt, Zoom float64
}

func (c *Client) ptzURL(ctx context.Context) (string, error) {
	svc, err := c.Services(ctx)
	if err != nil {
		return "", err
	}
	if svc.PTZ == "" {
		return "", fmt.Errorf("the camera has no ONVIF PTZ service")
	}
	return svc.PTZ, nil
}

// ContinuousMove starts a move; the camera stops by itself after timeout
// (the caller also sends Stop: not every camera honours the timeout).
func (c *Client) ContinuousMove(ctx context.Context, profile string, v Velocity, timeout time.Duration) error {
	u, err := c.ptzURL(ctx)
	if err != nil {
		return err
	}
	body := `<tptz:ContinuousMove xmlns:tptz="` + nsPTZ + `" xmlns:tt="` + nsSchema + `">` +
		`<tptz:ProfileToken>` + esc(profile) + `</tptz:ProfileToken><tptz:Velocity>`
	if v.Pan != 0 || v.Tilt != 0 {
		body += `<tt:PanTilt x="` + num(v.Pan) + `" y="` + num(v.Tilt) + `"/>`
	}
	if v.Zoom != 0 {
		body += `<tt:Zoom x="` + num(v.Zoom) + `"/>`
	}
	body += `</tptz:Velocity>`
	if timeout > 0 {
		body += `<tptz:Timeout>` + Duration(timeout) + `</tptz:Timeout>`
	}
	body += `</tptz:ContinuousMove>`
	return c.call(ctx, u, nsPTZ+"/ContinuousMove", body, nil)
}

// Stop stops pan/tilt and zoom.
func (c *Client) Stop(ctx context.Context, profile string) error {
	u, err := c.ptzURL(ctx)
	if err != nil {
		return err
	}
	body := `<tptz:Stop xmlns:tptz="` + nsPTZ + `"><tptz:ProfileToken>` + esc(profile) + `</tptz:ProfileToken>` +
		`<tptz:PanTilt>true</tptz:PanTilt><tptz:Zoom>true</tptz:Zoom></tptz:Stop>`
	return c.call(ctx, u, nsPTZ+"/Stop", body, nil)
}

// GotoPreset moves to a preset by its token (cameras number them "1", "2"...).
func (c *Client) GotoPreset(ctx context.Context, profile, preset string) error {
	u, err := c.ptzURL(ctx)
	if err != nil {
		return err
	}
	body := `<tptz:GotoPreset xmlns:tptz="` + nsPTZ + `"><tptz:ProfileToken>` + esc(profile) + `</tptz:ProfileToken>` +
		`<tptz:PresetToken>` + esc(preset) + `</tptz:PresetToken></tptz:GotoPreset>`
	return c.call(ctx, u, nsPTZ+"/GotoPreset", body, nil)
}

// GotoHomePosition moves to the home position.
func (c *Client) GotoHomePosition(ctx context.Context, profile string) error {
	u, err := c.ptzURL(ctx)
	if err != nil {
		return err
	}
	body := `<tptz:GotoHomePosition xmlns:tptz="` + nsPTZ + `"><tptz:ProfileToken>` + esc(profile) + `</tptz:ProfileToken></tptz:GotoHomePosition>`
	return c.call(ctx, u, nsPTZ+"/GotoHomePosition", body, nil)
}

// PTZProfile picks the profile to steer: the first with a PTZ
// configuration, else the first.
func (c *Client) PTZProfile(ctx context.Context) (string, error) {
	ps, err := c.Profiles(ctx)
	if err != nil {
		return "", err
	}
	for _, p := range ps {
		if p.PTZ {
			return p.Token, nil
		}
	}
	return ps[0].Token, nil
}

// Duration writes d as an xs:duration (PT1.5S).
func Duration(d time.Duration) string {
	return "PT" + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S"
}

func num(f float64) string {
	f = math.Max(-1, math.Min(1, f))
	return strconv.FormatFloat(f, 'f', -1, 64)
}
