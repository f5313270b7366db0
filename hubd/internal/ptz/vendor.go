package ptz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/httpauth"
)

// Camera params the vendor drivers read (camera.Camera.Params).
const (
	// ParamURL overrides the base URL of the camera's HTTP API (a
	// template, e.g. "http://${ip}:8080"); default: the admin URL, else
	// the scheme and host of the snapshot or MJPEG URL, else http://${ip}.
	ParamURL = "ptz_url"
	// ParamChannel is the PTZ channel (default 1).
	ParamChannel = "channel"
)

// httpAPI sends a vendor's requests with the camera's credentials (Basic
// or Digest, as the camera asks; Foscam takes them in the query).
type httpAPI struct {
	base       *url.URL
	user, pass string
	client     *http.Client
	channel    int
}

func newHTTPAPI(cfg Config) (*httpAPI, error) {
	cam := cfg.Camera
	vars := cam.Vars()
	tmpl := cam.Params[ParamURL]
	if tmpl == "" {
		tmpl = cam.AdminURL
	}
	if tmpl == "" {
		for _, t := range []string{cam.Snapshot, cam.Streams.MJPEG} {
			if t != "" {
				tmpl = t
				break
			}
		}
	}
	if tmpl == "" {
		if cam.IP == "" {
			return nil, fmt.Errorf("camera %s: PTZ %s needs params.%s, admin_url, a snapshot or MJPEG URL, or an ip", cam.ID, cam.PTZ.Kind, ParamURL)
		}
		tmpl = "http://" + cfg.Syntax.Open + "ip" + cfg.Syntax.Close
	}
	s, err := cfg.Syntax.Expand(tmpl, vars)
	if err != nil {
		return nil, fmt.Errorf("camera %s: PTZ base URL: %w", cam.ID, err)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("camera %s: PTZ base URL is not an http(s) URL", cam.ID)
	}
	user, pass := cam.Username, cam.Password
	if u.User != nil { // credentials written into the template win
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	base := &url.URL{Scheme: u.Scheme, Host: u.Host}
	if cam.Params[ParamURL] != "" {
		base.Path = strings.TrimRight(u.Path, "/")
	}
	ch := 1
	if v := cam.Params[ParamChannel]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1024 {
			return nil, fmt.Errorf("camera %s: params.%s %q is not a channel number", cam.ID, ParamChannel, v)
		}
		ch = n
	}
	return &httpAPI{base: base, user: user, pass: pass, client: cfg.HTTP, channel: ch}, nil
}

// do sends one request. query is added raw (already encoded). The URL
// never reaches an error message: Foscam's carries the password.
func (a *httpAPI) do(ctx context.Context, op, method, path, query string, body []byte, contentType string) error {
	u := *a.base
	u.Path += path
	u.RawQuery = query
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return &CameraError{Op: op, Err: errors.New("request not built")}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := *a.client
	hc.Transport = httpauth.ReplayBody{Next: hc.Transport}
	resp, err := httpauth.Do(&hc, req, a.user, a.pass)
	if err != nil {
		if errors.Is(err, httpauth.ErrUnauthorized) {
			return &CameraError{Op: op, Status: http.StatusUnauthorized, Err: err}
		}
		return &CameraError{Op: op, Err: scrubURL(err)}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return &CameraError{Op: op, Status: resp.StatusCode}
	}
	return checkAnswer(op, answer)
}

// checkAnswer catches the cameras that say "no" with a 200: Foscam's
// <result> other than 0, Dahua's "Error".
func checkAnswer(op string, b []byte) error {
	s := string(b)
	if i := strings.Index(s, "<result>"); i >= 0 {
		rest := s[i+len("<result>"):]
		if j := strings.Index(rest, "</result>"); j >= 0 && strings.TrimSpace(rest[:j]) != "0" {
			return &CameraError{Op: op, Err: fmt.Errorf("camera answered result %s", strings.TrimSpace(rest[:j]))}
		}
	}
	if strings.HasPrefix(strings.TrimSpace(s), "Error") {
		return &CameraError{Op: op, Err: fmt.Errorf("camera answered %q", clip(strings.TrimSpace(s)))}
	}
	return nil
}

// scrubURL drops the URL from a transport error (url.Error prints it).
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Hikvision ISAPI: PUT /ISAPI/PTZCtrl/channels/<ch>/continuous with a
// PTZData speed (-100..100) per axis; zero speeds stop.
type hikvision struct{ api *httpAPI }

func newHikvision(cfg Config) (Driver, error) {
	api, err := newHTTPAPI(cfg)
	return &hikvision{api: api}, err
}

const hikSpeed = 60

func (h *hikvision) continuous(ctx context.Context, op string, pan, tilt, zoom int) error {
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><PTZData><pan>%d</pan><tilt>%d</tilt><zoom>%d</zoom></PTZData>`, pan, tilt, zoom)
	return h.api.do(ctx, op, http.MethodPut, fmt.Sprintf("/ISAPI/PTZCtrl/channels/%d/continuous", h.api.channel), "", []byte(body), "application/xml")
}

func (h *hikvision) Move(ctx context.Context, d Direction, _ time.Duration) error {
	return h.continuous(ctx, "hikvision continuous", d.Pan*hikSpeed, d.Tilt*hikSpeed, d.Zoom*hikSpeed)
}

func (h *hikvision) Stop(ctx context.Context) error {
	return h.continuous(ctx, "hikvision stop", 0, 0, 0)
}

func (h *hikvision) Home(ctx context.Context) error {
	return h.api.do(ctx, "hikvision home", http.MethodPut, fmt.Sprintf("/ISAPI/PTZCtrl/channels/%d/homeposition/goto", h.api.channel), "", nil, "")
}

func (h *hikvision) Preset(ctx context.Context, n int) error {
	return h.api.do(ctx, "hikvision preset", http.MethodPut, fmt.Sprintf("/ISAPI/PTZCtrl/channels/%d/presets/%d/goto", h.api.channel, n), "", nil, "")
}

// Dahua/Amcrest CGI: GET /cgi-bin/ptz.cgi?action=start|stop&channel=<ch>&
// code=<Up|Down|Left|Right|ZoomTele|ZoomWide|GotoPreset>&arg1=0&arg2=<speed
// or preset>&arg3=0. A stop names the code of the move it stops.
type dahua struct {
	api  *httpAPI
	mu   sync.Mutex
	last string // code of the move in progress
}

func newDahua(cfg Config) (Driver, error) {
	api, err := newHTTPAPI(cfg)
	return &dahua{api: api}, err
}

const dahuaSpeed = 4

func dahuaCode(d Direction) string {
	switch {
	case d.Tilt > 0:
		return "Up"
	case d.Tilt < 0:
		return "Down"
	case d.Pan < 0:
		return "Left"
	case d.Pan > 0:
		return "Right"
	case d.Zoom > 0:
		return "ZoomTele"
	}
	return "ZoomWide"
}

func (h *dahua) cgi(ctx context.Context, op, action, code string, arg2 int) error {
	q := fmt.Sprintf("action=%s&channel=%d&code=%s&arg1=0&arg2=%d&arg3=0", action, h.api.channel, code, arg2)
	return h.api.do(ctx, op, http.MethodGet, "/cgi-bin/ptz.cgi", q, nil, "")
}

func (h *dahua) Move(ctx context.Context, d Direction, _ time.Duration) error {
	code := dahuaCode(d)
	h.mu.Lock()
	h.last = code
	h.mu.Unlock()
	return h.cgi(ctx, "dahua start", "start", code, dahuaSpeed)
}

func (h *dahua) Stop(ctx context.Context) error {
	h.mu.Lock()
	code := h.last
	h.mu.Unlock()
	if code == "" {
		code = "Up" // nothing known to be moving: a stop of any code halts pan/tilt
	}
	return h.cgi(ctx, "dahua stop", "stop", code, 0)
}

// Home: the Dahua CGI has no home position; presets are the way there.
func (h *dahua) Home(context.Context) error {
	return fmt.Errorf("%w: the Dahua CGI has no home position (use a preset)", ErrUnsupported)
}

func (h *dahua) Preset(ctx context.Context, n int) error {
	return h.cgi(ctx, "dahua preset", "start", "GotoPreset", n)
}

// Axis VAPIX: GET /axis-cgi/com/ptz.cgi with continuouspantiltmove=<pan>,<tilt>
// or continuouszoommove=<speed> (-100..100), move=home, gotoserverpresetno=<n>.
type axis struct {
	api *httpAPI
	mu  sync.Mutex
	// zooming: the move in progress is a zoom (stopped with continuouszoommove=0)
	zooming bool
}

func newAxis(cfg Config) (Driver, error) {
	api, err := newHTTPAPI(cfg)
	return &axis{api: api}, err
}

const axisSpeed = 50

func (h *axis) cgi(ctx context.Context, op, q string) error {
	return h.api.do(ctx, op, http.MethodGet, "/axis-cgi/com/ptz.cgi", q+fmt.Sprintf("&camera=%d", h.api.channel), nil, "")
}

func (h *axis) Move(ctx context.Context, d Direction, _ time.Duration) error {
	h.mu.Lock()
	h.zooming = d.Zoom != 0
	h.mu.Unlock()
	if d.Zoom != 0 {
		return h.cgi(ctx, "axis zoom", fmt.Sprintf("continuouszoommove=%d", d.Zoom*axisSpeed))
	}
	return h.cgi(ctx, "axis move", fmt.Sprintf("continuouspantiltmove=%d,%d", d.Pan*axisSpeed, d.Tilt*axisSpeed))
}

func (h *axis) Stop(ctx context.Context) error {
	h.mu.Lock()
	zooming := h.zooming
	h.mu.Unlock()
	if zooming {
		return h.cgi(ctx, "axis stop", "continuouszoommove=0")
	}
	return h.cgi(ctx, "axis stop", "continuouspantiltmove=0,0")
}

func (h *axis) Home(ctx context.Context) error { return h.cgi(ctx, "axis home", "move=home") }

func (h *axis) Preset(ctx context.Context, n int) error {
	return h.cgi(ctx, "axis preset", fmt.Sprintf("gotoserverpresetno=%d", n))
}

// Foscam HD CGI: GET /cgi-bin/CGIProxy.fcgi?cmd=<ptzMoveUp|...|zoomIn|
// zoomOut|ptzStopRun|zoomStop|ptzReset|ptzGotoPresetPoint>&usr=&pwd=. The
// credentials go in the query (Foscam has no HTTP auth); the URL is never logged.
type foscam struct {
	api *httpAPI
	mu  sync.Mutex
	// zooming: the move in progress is a zoom (stopped with zoomStop)
	zooming bool
}

func newFoscam(cfg Config) (Driver, error) {
	api, err := newHTTPAPI(cfg)
	return &foscam{api: api}, err
}

func (h *foscam) cgi(ctx context.Context, op, cmd string, extra url.Values) error {
	q := url.Values{"cmd": {cmd}, "usr": {h.api.user}, "pwd": {h.api.pass}}
	for k, v := range extra {
		q[k] = v
	}
	// Foscam checks the query, not HTTP auth: send no Authorization.
	api := *h.api
	api.user, api.pass = "", ""
	return api.do(ctx, op, http.MethodGet, "/cgi-bin/CGIProxy.fcgi", q.Encode(), nil, "")
}

func (h *foscam) Move(ctx context.Context, d Direction, _ time.Duration) error {
	h.mu.Lock()
	h.zooming = d.Zoom != 0
	h.mu.Unlock()
	cmd := map[Direction]string{{Tilt: 1}: "ptzMoveUp", {Tilt: -1}: "ptzMoveDown", {Pan: -1}: "ptzMoveLeft",
		{Pan: 1}: "ptzMoveRight", {Zoom: 1}: "zoomIn", {Zoom: -1}: "zoomOut"}[d]
	return h.cgi(ctx, "foscam "+cmd, cmd, nil)
}

func (h *foscam) Stop(ctx context.Context) error {
	h.mu.Lock()
	zooming := h.zooming
	h.mu.Unlock()
	if zooming {
		return h.cgi(ctx, "foscam zoomStop", "zoomStop", nil)
	}
	return h.cgi(ctx, "foscam ptzStopRun", "ptzStopRun", nil)
}

func (h *foscam) Home(ctx context.Context) error {
	return h.cgi(ctx, "foscam ptzReset", "ptzReset", nil)
}

// Preset goes to the preset point named n (Foscam names its presets).
func (h *foscam) Preset(ctx context.Context, n int) error {
	return h.cgi(ctx, "foscam preset", "ptzGotoPresetPoint", url.Values{"name": {strconv.Itoa(n)}})
}
