package zipato

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Camera keys of a Zipato camera endpoint (a flat key/value map).
const (
	keyUsername     = "username"
	keyPassword     = "password"
	keyStaticIP     = "staticIp"
	keyDiscoveredIP = "discoveredIp"
	keyPort         = "port"
	keyAdminURL     = "adminUrl"
	keyHigh         = "hiQualityStream"
	keyMid          = "midQualityStream"
	keyLow          = "lowQualityStream"
	keyMJPEG        = "mjpegUrl"
	keySnapshot     = "snapshot"
	keyRecording    = "recording"
	keyPTZClass     = "ptzClassName"
	keyTemplateID   = "templateId"
)

// Problem is an endpoint that looks like a camera but cannot be used as
// one (or only in part), with the reason, for the log.
type Problem struct {
	Endpoint string // UUID
	Name     string
	Reason   string
}

func (p Problem) String() string {
	return fmt.Sprintf("endpoint %s (%q): %s", p.Endpoint, p.Name, p.Reason)
}

// Cameras turns every endpoint of class com.zipato.network.ip.IP into a
// camera. The camera's id is the endpoint's UUID (stable across renames:
// recordings are filed under it). Keys are looked up, later winning, in the
// device's config, the endpoint's config and the IP cluster endpoint's
// config (each also in a nested "configuration" map). Endpoints that cannot
// be cameras are returned as problems; the others are not affected.
func (t *Tree) Cameras() ([]camera.Camera, []Problem) {
	var cams []camera.Camera
	var problems []Problem
	if t == nil {
		return nil, nil
	}
	for _, nid := range t.Networks.Sorted() {
		n := t.Networks[nid]
		if n == nil {
			continue
		}
		for _, did := range n.Devices.Sorted() {
			d := n.Devices[did]
			if d == nil {
				continue
			}
			for _, eid := range d.Endpoints.Sorted() {
				e := d.Endpoints[eid]
				if e == nil || !e.IsCamera() || d.Config.Deleted() || e.Config.Deleted() {
					continue
				}
				cam, notes, err := endpointCamera(d, eid, e)
				if err != nil {
					problems = append(problems, Problem{Endpoint: eid, Name: e.Config.Name(), Reason: err.Error()})
					continue
				}
				for _, note := range notes {
					problems = append(problems, Problem{Endpoint: eid, Name: cam.Name, Reason: note})
				}
				cams = append(cams, cam)
			}
		}
	}
	return cams, problems
}

// IsCamera says whether the endpoint has the camera class, on itself or on
// one of its cluster endpoints (dumps show it in either place).
func (e *Endpoint) IsCamera() bool {
	if e.ClusterClass == CameraClass || e.Config.String("clusterClass") == CameraClass || e.Config.String("className") == CameraClass {
		return true
	}
	for _, ce := range e.ClusterEndpoints {
		if ce != nil && (ce.ClusterClass == CameraClass || ce.Config.String("clusterClass") == CameraClass) {
			return true
		}
	}
	return false
}

// keys merges the flat maps that may carry camera keys, the most specific last.
func keys(d *Device, e *Endpoint) Props {
	out := Props{}
	add := func(c Props) {
		for k, v := range c {
			if s := c.String(k); s != "" {
				out[k] = s
			} else if _, isMap := v.(map[string]any); !isMap {
				if _, seen := out[k]; !seen {
					out[k] = ""
				}
			}
		}
	}
	layers := []Props{d.Config, d.Config.Map("configuration"), e.Config, e.Config.Map("configuration")}
	for _, id := range e.ClusterEndpoints.Sorted() {
		ce := e.ClusterEndpoints[id]
		if ce != nil && (ce.ClusterClass == CameraClass || ce.Config.String("clusterClass") == CameraClass) {
			layers = append(layers, ce.Config, ce.Config.Map("configuration"))
		}
	}
	for _, c := range layers {
		add(c)
	}
	return out
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z0-9_.-]+)\}`)

func endpointCamera(d *Device, eid string, e *Endpoint) (camera.Camera, []string, error) {
	k := keys(d, e)
	var notes []string
	cam := camera.Camera{
		ID:        eid,
		Name:      firstNonEmpty(e.Config.Name(), e.Name),
		Username:  k.String(keyUsername),
		Password:  k.String(keyPassword),
		AdminURL:  k.String(keyAdminURL),
		Snapshot:  k.String(keySnapshot),
		Recording: k.String(keyRecording),
	}
	if generic(cam.Name) {
		cam.Name = firstNonEmpty(d.Config.Name(), d.Name, cam.Name)
	}
	if len(cam.Name) > 200 {
		cam.Name = cam.Name[:200]
	}
	cam.IP = k.String(keyStaticIP)
	if cam.IP == "" {
		cam.IP = k.String(keyDiscoveredIP)
	}
	if cam.IP == "" {
		cam.IP = d.State.String("address")
	}
	if p := k.String(keyPort); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return cam, nil, fmt.Errorf("%s: %q is not a port number", keyPort, p)
		}
		cam.Port = n
	}
	// Stream URLs: RTSP for the three qualities; an HTTP(S) URL in one of
	// them is an MJPEG stream (cameras without RTSP).
	for _, s := range []struct {
		key string
		dst *string
	}{{keyHigh, &cam.Streams.High}, {keyMid, &cam.Streams.Mid}, {keyLow, &cam.Streams.Low}} {
		u := k.String(s.key)
		switch scheme := strings.ToLower(schemeOf(u)); {
		case u == "":
		case scheme == "rtsp" || scheme == "rtsps":
			*s.dst = u
		case scheme == "http" || scheme == "https":
			if k.String(keyMJPEG) == "" && cam.Streams.MJPEG == "" {
				cam.Streams.MJPEG = u
			}
		default:
			notes = append(notes, fmt.Sprintf("%s: scheme %q not supported (RTSP or HTTP MJPEG); stream left out", s.key, scheme))
		}
	}
	if u := k.String(keyMJPEG); u != "" {
		cam.Streams.MJPEG = u
	}
	if cam.Streams == (camera.Streams{}) && cam.Snapshot == "" {
		return cam, nil, fmt.Errorf("no stream URL (%s, %s, %s or %s) and no %s: nothing to record or show",
			keyHigh, keyMid, keyLow, keyMJPEG, keySnapshot)
	}
	kind, note := ptzKind(k.String(keyPTZClass), k.String(keyTemplateID))
	cam.PTZ.Kind = kind
	if note != "" {
		notes = append(notes, note)
	}
	// Template variables beyond ip/port/username/password (Zipato's
	// ${parameter1}, a vendor's ${channel}) come from the same keys.
	for _, t := range []string{cam.Streams.High, cam.Streams.Mid, cam.Streams.Low, cam.Streams.MJPEG, cam.Snapshot, cam.AdminURL, cam.Recording} {
		for _, m := range placeholder.FindAllStringSubmatch(t, -1) {
			name := m[1]
			switch name {
			case "ip", "port", "username", "password", "id":
				continue
			}
			if v, ok := k[name]; ok {
				if cam.Params == nil {
					cam.Params = map[string]string{}
				}
				cam.Params[name], _ = v.(string)
			}
		}
	}
	return cam, notes, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func generic(name string) bool {
	return name == "" || strings.EqualFold(name, "GenericIpEndpoint") || strings.EqualFold(name, "Camera")
}

func schemeOf(u string) string {
	i := strings.Index(u, "://")
	if i <= 0 {
		return ""
	}
	return u[:i]
}

// ptzKind maps the tree's PTZ hints to a driver. ptzClassName names the
// box's driver class (the names are not published: matched by vendor
// word); templateId CAMERA_PTZ without a known class means ONVIF, what
// most PTZ cameras speak.
func ptzKind(class, template string) (kind, note string) {
	c := strings.ToLower(class)
	for _, m := range []struct{ word, kind string }{
		{"onvif", "onvif"}, {"hikvision", "hikvision"}, {"hik", "hikvision"},
		{"dahua", "dahua"}, {"amcrest", "dahua"}, {"axis", "axis"}, {"foscam", "foscam"},
	} {
		if c != "" && strings.Contains(c, m.word) {
			return m.kind, ""
		}
	}
	ptzTemplate := strings.EqualFold(template, "CAMERA_PTZ")
	switch {
	case class != "" && ptzTemplate:
		return "onvif", fmt.Sprintf("%s %q not known: trying ONVIF PTZ", keyPTZClass, class)
	case class != "":
		return "", fmt.Sprintf("%s %q not known: no PTZ", keyPTZClass, class)
	case ptzTemplate:
		return "onvif", ""
	}
	return "", ""
}
