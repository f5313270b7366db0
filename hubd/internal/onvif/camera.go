package onvif

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Camera params the ONVIF PTZ driver reads (camera.Camera.Params).
const (
	ParamURL     = "ptz_url"     // the device service URL
	ParamProfile = "ptz_profile" // the media profile to steer
)

// CameraID derives a camera id from a device's endpoint address
// (urn:uuid:1234... -> onvif-1234...), stable across IP changes.
func CameraID(endpoint string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(endpoint, "urn:"), "uuid:")
	var b strings.Builder
	b.WriteString("onvif-")
	for _, c := range s {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
		if b.Len() >= 64 {
			break
		}
	}
	return b.String()
}

// CameraFor asks a discovered device for its profiles and URIs and builds
// the camera: the largest H.264/H.265 profile is the high stream, the
// smallest the low one (a third in between the mid one), the high
// profile's snapshot URI the snapshot; PTZ is ONVIF when the camera has the
// service and a profile configured for it.
func CameraFor(ctx context.Context, d Device, user, pass string) (camera.Camera, error) {
	c := &Client{DeviceURL: d.XAddrs[0], Username: user, Password: pass}
	return c.camera(ctx, d)
}

func (c *Client) camera(ctx context.Context, d Device) (camera.Camera, error) {
	u, _ := url.Parse(c.DeviceURL)
	cam := camera.Camera{ID: CameraID(d.Endpoint), Name: d.Name(), Username: c.Username, Password: c.Password}
	if u != nil {
		cam.IP = u.Hostname()
	}
	if cam.Name == "" {
		cam.Name = "ONVIF " + cam.IP
	}
	profiles, err := c.Profiles(ctx)
	if err != nil {
		return cam, err
	}
	var video []Profile
	ptzProfile := ""
	for _, p := range profiles {
		if p.Encoding == "H264" || p.Encoding == "H265" {
			video = append(video, p)
		}
		if p.PTZ && ptzProfile == "" {
			ptzProfile = p.Token
		}
	}
	if len(video) == 0 {
		return cam, fmt.Errorf("no H.264/H.265 profile among %d", len(profiles))
	}
	sort.SliceStable(video, func(i, j int) bool { return video[i].Width*video[i].Height > video[j].Width*video[j].Height })
	slots := []*string{&cam.Streams.High}
	switch {
	case len(video) >= 3:
		slots = append(slots, &cam.Streams.Mid, &cam.Streams.Low)
		video = []Profile{video[0], video[len(video)/2], video[len(video)-1]}
	case len(video) == 2:
		slots = append(slots, &cam.Streams.Low)
	}
	for i, slot := range slots {
		uri, err := c.StreamURI(ctx, video[i].Token)
		if err != nil {
			return cam, err
		}
		*slot = uri
	}
	if snap, err := c.SnapshotURI(ctx, video[0].Token); err == nil {
		cam.Snapshot = snap
	}
	if svc, err := c.Services(ctx); err == nil && svc.PTZ != "" && ptzProfile != "" {
		cam.PTZ.Kind = "onvif"
		cam.Params = map[string]string{ParamURL: c.DeviceURL, ParamProfile: ptzProfile}
	}
	return cam, nil
}

// Discoverer probes the LAN now and then and turns the devices that answer
// into cameras. A device missing from one probe is kept until it misses
// three (UDP is lossy); a device's profiles are read once.
type Discoverer struct {
	Address            string        // default DiscoveryAddress
	Interval           time.Duration // default 5 min
	Wait               time.Duration // how long a probe collects answers, default 3 s
	Username, Password string
	// Record is what a discovered camera records ("" for its best stream).
	Record string
	// Skip says whether a device at host is already known from another
	// source (the box's tree, the config): it is left alone.
	Skip      func(host string) bool
	OnCameras func([]camera.Camera)
	Logger    *slog.Logger
}

type seen struct {
	cam    camera.Camera
	misses int
	err    string
}

// Run probes until ctx ends.
func (d Discoverer) Run(ctx context.Context) {
	if d.Address == "" {
		d.Address = DiscoveryAddress
	}
	if d.Interval <= 0 {
		d.Interval = 5 * time.Minute
	}
	if d.Wait <= 0 {
		d.Wait = 3 * time.Second
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "onvif")
	known := map[string]*seen{}
	var last []camera.Camera
	first := true
	for {
		devs, err := Probe(ctx, d.Address, d.Wait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Warn("ONVIF probe failed", "address", d.Address, "err", err)
		}
		answered := map[string]bool{}
		for _, dev := range devs {
			answered[dev.Endpoint] = true
			host := ""
			if u, err := url.Parse(dev.XAddrs[0]); err == nil {
				host = u.Hostname()
			}
			if d.Skip != nil && d.Skip(host) {
				continue
			}
			s := known[dev.Endpoint]
			if s != nil && s.err == "" {
				s.misses = 0
				continue
			}
			cam, err := CameraFor(ctx, dev, d.Username, d.Password)
			if err != nil {
				if s == nil || s.err != err.Error() {
					log.Warn("ONVIF device found but not usable as a camera", "device", dev.XAddrs[0], "err", err)
				}
				known[dev.Endpoint] = &seen{err: err.Error()}
				continue
			}
			if d.Record != "" {
				cam.Record = d.Record
			}
			log.Info("ONVIF camera found", "camera", cam.ID, "name", cam.Name, "device", dev.XAddrs[0], "ptz", cam.PTZ.Kind != "")
			known[dev.Endpoint] = &seen{cam: cam}
		}
		for ep, s := range known {
			if answered[ep] {
				continue
			}
			if s.misses++; s.misses >= 3 || s.err != "" {
				if s.err == "" {
					log.Info("ONVIF camera no longer answers probes", "camera", s.cam.ID)
				}
				delete(known, ep)
			}
		}
		var cams []camera.Camera
		for _, s := range known {
			if s.err == "" {
				cams = append(cams, s.cam)
			}
		}
		sort.Slice(cams, func(i, j int) bool { return cams[i].ID < cams[j].ID })
		if first || !sameIDs(cams, last) {
			if d.OnCameras != nil {
				d.OnCameras(cams)
			}
			last, first = cams, false
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.Interval):
		}
	}
}

func sameIDs(a, b []camera.Camera) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID {
			return false
		}
	}
	return true
}
