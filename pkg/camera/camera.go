// Package camera is the IP camera model shared by hubd and relay: connection,
// stream URL templates, snapshot/recording URLs, PTZ kind, and their validation.
package camera

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Quality names one of a camera's streams. The names are the contract's
// (stream tokens, `record:` in the config, the Zipato keys hi/mid/low/mjpeg).
type Quality string

// Stream qualities a camera may offer.
const (
	High  Quality = "high"
	Mid   Quality = "mid"
	Low   Quality = "low"
	MJPEG Quality = "mjpeg"
)

// Qualities lists every quality in preference order for recording.
var Qualities = []Quality{High, Mid, Low, MJPEG}

// ParseQuality accepts a quality name; "off" is not a quality (see RecordOff).
func ParseQuality(s string) (Quality, error) {
	for _, q := range Qualities {
		if string(q) == s {
			return q, nil
		}
	}
	return "", fmt.Errorf("unknown quality %q (want high, mid, low or mjpeg)", s)
}

// RecordOff in Camera.Record disables recording of that camera.
const RecordOff = "off"

// Streams holds the URL template of each quality; empty means absent.
type Streams struct {
	High  string `yaml:"high" json:"high,omitempty"`
	Mid   string `yaml:"mid" json:"mid,omitempty"`
	Low   string `yaml:"low" json:"low,omitempty"`
	MJPEG string `yaml:"mjpeg" json:"mjpeg,omitempty"`
}

// Get returns the template for q.
func (s Streams) Get(q Quality) string {
	switch q {
	case High:
		return s.High
	case Mid:
		return s.Mid
	case Low:
		return s.Low
	case MJPEG:
		return s.MJPEG
	}
	return ""
}

// PTZ says how a camera is steered. Kind "" or "none" means no PTZ.
type PTZ struct {
	Kind string `yaml:"kind" json:"kind,omitempty"` // none, onvif, hikvision, dahua, axis, foscam
}

// PTZKinds are the drivers a camera may name.
var PTZKinds = []string{"", "none", "onvif", "hikvision", "dahua", "axis", "foscam"}

// Transport picks the RTSP transport: auto tries UDP then falls back to TCP.
type Transport string

// RTSP transports.
const (
	TransportAuto Transport = "auto"
	TransportTCP  Transport = "tcp"
	TransportUDP  Transport = "udp"
)

// Camera is one IP camera as hubd knows it. Field names follow the Zipato
// camera keys (../shared/zipato): hiQualityStream -> Streams.High, etc.
type Camera struct {
	ID        string    `yaml:"id" json:"id"`
	Name      string    `yaml:"name" json:"name,omitempty"`
	IP        string    `yaml:"ip" json:"ip,omitempty"`
	Port      int       `yaml:"port" json:"port,omitempty"`
	Username  string    `yaml:"username" json:"username,omitempty"`
	Password  string    `yaml:"password" json:"-"` // never serialised: passwords stay on the hub
	AdminURL  string    `yaml:"admin_url" json:"admin_url,omitempty"`
	Streams   Streams   `yaml:"streams" json:"streams"`
	Snapshot  string    `yaml:"snapshot" json:"snapshot,omitempty"`
	Recording string    `yaml:"recording_url" json:"recording_url,omitempty"` // the camera's own recording URL (Zipato key `recording`)
	PTZ       PTZ       `yaml:"ptz" json:"ptz"`
	Record    string    `yaml:"record" json:"record"` // quality to record, or "off"
	Transport Transport `yaml:"transport" json:"transport,omitempty"`
	// Params are extra template variables (${parameter1}, ...), as Zipato URI templates use them.
	Params map[string]string `yaml:"params" json:"params,omitempty"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// FieldError names the camera and the key that is wrong, so an operator can
// find the line in a config or device tree.
type FieldError struct {
	Camera string
	Key    string
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("camera %q: %s: %s", e.Camera, e.Key, e.Reason)
}

// ApplyDefaults fills what a camera may leave out.
func (c *Camera) ApplyDefaults() {
	if c.Record == "" {
		c.Record = c.defaultRecord()
	}
	if c.Transport == "" {
		c.Transport = TransportAuto
	}
	if c.Name == "" {
		c.Name = c.ID
	}
}

// defaultRecord picks the best stream the camera has.
func (c *Camera) defaultRecord() string {
	for _, q := range Qualities {
		if c.Streams.Get(q) != "" {
			return string(q)
		}
	}
	return RecordOff
}

// Validate checks a camera after ApplyDefaults, resolving every template with
// syntax so that a broken one is refused at start, not at 3 a.m.
func (c *Camera) Validate(syntax Syntax) error {
	fe := func(key, format string, a ...any) error {
		return &FieldError{Camera: c.ID, Key: key, Reason: fmt.Sprintf(format, a...)}
	}
	if !idPattern.MatchString(c.ID) {
		return fe("id", "must be 1-64 of A-Z a-z 0-9 . _ - and start with a letter or digit, got %q", c.ID)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fe("port", "must be 0-65535, got %d", c.Port)
	}
	switch c.Transport {
	case TransportAuto, TransportTCP, TransportUDP:
	default:
		return fe("transport", "must be auto, tcp or udp, got %q", c.Transport)
	}
	kindOK := false
	for _, k := range PTZKinds {
		kindOK = kindOK || k == c.PTZ.Kind
	}
	if !kindOK {
		return fe("ptz.kind", "unknown PTZ driver %q (want one of %s)", c.PTZ.Kind, strings.Join(PTZKinds[1:], ", "))
	}
	templates := []struct {
		key, tmpl string
		schemes   []string
	}{
		{"streams.high", c.Streams.High, []string{"rtsp", "rtsps"}},
		{"streams.mid", c.Streams.Mid, []string{"rtsp", "rtsps"}},
		{"streams.low", c.Streams.Low, []string{"rtsp", "rtsps"}},
		{"streams.mjpeg", c.Streams.MJPEG, []string{"http", "https"}},
		{"snapshot", c.Snapshot, []string{"http", "https"}},
		{"admin_url", c.AdminURL, []string{"http", "https"}},
		{"recording_url", c.Recording, nil},
	}
	for _, t := range templates {
		if t.tmpl == "" {
			continue
		}
		u, err := c.resolve(syntax, t.tmpl)
		if err != nil {
			return fe(t.key, "%v", err)
		}
		if t.schemes != nil && !contains(t.schemes, u.Scheme) {
			return fe(t.key, "scheme %q not supported here (want %s)", u.Scheme, strings.Join(t.schemes, " or "))
		}
		if u.Hostname() == "" { // not u.Host: "rtsp://:554/x" has a port but no host
			return fe(t.key, "URL has no host after resolving %q", t.tmpl)
		}
	}
	if c.Record != RecordOff {
		q, err := ParseQuality(c.Record)
		if err != nil {
			return fe("record", "%v or off", err)
		}
		if c.Streams.Get(q) == "" {
			return fe("streams."+string(q), "missing URL for the recorded stream (record: %s)", q)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Vars are the template variables of this camera, resolved now: a camera's
// IP may change (DHCP, Zipato discoveredIp) between two requests.
func (c *Camera) Vars() map[string]string {
	v := map[string]string{
		"ip":       c.IP,
		"port":     "",
		"username": c.Username,
		"password": c.Password,
		"id":       c.ID,
	}
	if c.Port != 0 {
		v["port"] = fmt.Sprint(c.Port)
	}
	for k, val := range c.Params {
		v[k] = val
	}
	return v
}

// URL resolves the template of quality q into a URL with the camera's
// credentials as userinfo when the template does not carry them itself.
func (c *Camera) URL(syntax Syntax, q Quality) (*url.URL, error) {
	t := c.Streams.Get(q)
	if t == "" {
		return nil, &FieldError{Camera: c.ID, Key: "streams." + string(q), Reason: "no URL for this quality"}
	}
	return c.resolve(syntax, t)
}

// SnapshotURL resolves the snapshot template.
func (c *Camera) SnapshotURL(syntax Syntax) (*url.URL, error) {
	if c.Snapshot == "" {
		return nil, &FieldError{Camera: c.ID, Key: "snapshot", Reason: "no snapshot URL"}
	}
	return c.resolve(syntax, c.Snapshot)
}

func (c *Camera) resolve(syntax Syntax, tmpl string) (*url.URL, error) {
	s, err := syntax.Expand(tmpl, c.Vars())
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("resolved URL does not parse: %w", redactErr(err, c.Password))
	}
	if u.User == nil && c.Username != "" {
		u.User = url.UserPassword(c.Username, c.Password)
	}
	return u, nil
}

// redactErr keeps a password that a URL parser quotes back out of logs, in
// every form it may take there: as is, escaped by Expand, and Go-quoted (%q).
func redactErr(err error, secret string) error {
	if secret == "" {
		return err
	}
	var forms []string
	for _, f := range []string{secret, escapeUserinfo(secret), url.QueryEscape(secret), url.PathEscape(secret)} {
		q := strconv.Quote(f)
		forms = append(forms, f, q[1:len(q)-1])
	}
	msg := err.Error()
	for _, f := range forms {
		msg = strings.ReplaceAll(msg, f, "xxxxx")
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// Redacted is the camera as it may leave the hub: no password field (JSON
// drops it anyway), no password written literally into a URL template's
// userinfo (replaced by the password placeholder), and no extra template
// parameters, which may hold anything.
func (c Camera) Redacted(syntax Syntax) Camera {
	ph := syntax.Open + "password" + syntax.Close
	scrub := func(t string) string {
		k := strings.Index(t, "://")
		if k < 0 {
			return t
		}
		rest := t[k+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		at := strings.LastIndex(rest[:end], "@")
		if at < 0 {
			return t
		}
		colon := strings.Index(rest[:at], ":")
		if colon < 0 || rest[colon+1:at] == ph {
			return t
		}
		return t[:k+3] + rest[:colon+1] + ph + rest[at:]
	}
	c.Password = ""
	c.Params = nil
	c.Streams = Streams{High: scrub(c.Streams.High), Mid: scrub(c.Streams.Mid), Low: scrub(c.Streams.Low), MJPEG: scrub(c.Streams.MJPEG)}
	c.Snapshot = scrub(c.Snapshot)
	c.AdminURL = scrub(c.AdminURL)
	c.Recording = scrub(c.Recording)
	return c
}
