package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Zipato connects hubd to the Zipato box it runs beside: the box's MQTT API
// (device tree, camera state, commands) and/or a device-tree JSON file.
type Zipato struct {
	// Broker is the MQTT broker the box uses: tcp://host:1883, ssl://host:8883
	// (mqtt://, mqtts://, ws://, wss:// too). Empty: no MQTT.
	Broker   string `yaml:"broker"`
	Username string `yaml:"username"`
	Password string `yaml:"password"` // never logged, never published
	// CAFile is a PEM bundle that verifies an ssl:// broker (empty: the system roots).
	CAFile string `yaml:"ca_file"`
	// ClientID is the box's MQTT client id (zipabox-<serial>). The topic
	// root is TopicBase + (TopicPrefix or ClientID + "/").
	ClientID    string `yaml:"client_id"`
	TopicBase   string `yaml:"topic_base"`
	TopicPrefix string `yaml:"topic_prefix"`
	QoS         int    `yaml:"qos"`
	// HubdClientID is hubd's own MQTT client id; a broker disconnects a
	// client when another connects with its id, so it must differ from the
	// box's. Default hubd-<hub.id>.
	HubdClientID string `yaml:"hubd_client_id"`
	// DeviceTreeFile is a device tree in the box's JSON shape, for boxes
	// without MQTT; re-read when it changes.
	DeviceTreeFile string `yaml:"device_tree_file"`
	// RequestTimeoutSeconds bounds each request to the box's MQTT API.
	RequestTimeoutSeconds float64 `yaml:"request_timeout_seconds"`
	// ResyncSeconds re-reads the whole tree this often, besides following
	// devices/+/status (a removed device sends no status).
	ResyncSeconds float64 `yaml:"resync_seconds"`
	// StateSeconds is how often changed camera state is published (retained).
	StateSeconds float64 `yaml:"state_seconds"`
}

// ONVIF finds cameras that are not in the device tree.
type ONVIF struct {
	// Discovery sends WS-Discovery probes on the LAN. Off by default: a
	// camera found this way starts recording.
	Discovery bool `yaml:"discovery"`
	// Address is where probes go: the WS-Discovery multicast group, or one
	// camera's host:port for a directed probe.
	Address         string  `yaml:"address"`
	IntervalSeconds float64 `yaml:"interval_seconds"`
	ProbeSeconds    float64 `yaml:"probe_seconds"` // how long to collect answers
	// Username and Password are tried on every discovered camera (WS-Security digest).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Record is what a discovered camera records: high, mid, low, mjpeg, off,
	// or empty for its best stream.
	Record string `yaml:"record"`
}

// PTZ tunes camera moves.
type PTZ struct {
	// MoveSeconds: a move (up, left, zoomin...) stops by itself after this,
	// both in the camera's ContinuousMove timeout and by an explicit stop.
	MoveSeconds float64 `yaml:"move_seconds"`
	// TimeoutSeconds bounds one request to a camera.
	TimeoutSeconds float64 `yaml:"timeout_seconds"`
}

// TopicRoot is the box's topic root: topic_base + (topic_prefix or client_id + "/").
func (z Zipato) TopicRoot() string {
	if z.TopicPrefix != "" {
		return z.TopicBase + z.TopicPrefix
	}
	return z.TopicBase + z.ClientID + "/"
}

func defaultZipato() Zipato {
	return Zipato{TopicBase: "zipato/", QoS: 1, RequestTimeoutSeconds: 5, ResyncSeconds: 600, StateSeconds: 10}
}

func defaultONVIF() ONVIF {
	return ONVIF{Address: "239.255.255.250:3702", IntervalSeconds: 300, ProbeSeconds: 3}
}

func defaultPTZ() PTZ { return PTZ{MoveSeconds: 1, TimeoutSeconds: 5} }

// MQTTClientID is hubd's MQTT client id: hubd_client_id, or hubd-<hub.id>.
func (c *Config) MQTTClientID() string {
	if c.Zipato.HubdClientID != "" {
		return c.Zipato.HubdClientID
	}
	return "hubd-" + c.Hub.ID
}

func (c *Config) validateIntegrations() error {
	bad := func(key, format string, a ...any) error {
		return &KeyError{Key: key, Reason: fmt.Sprintf(format, a...)}
	}
	z := c.Zipato
	if z.Broker != "" {
		u, err := url.Parse(z.Broker)
		if err != nil {
			return bad("zipato.broker", "not a URL: %v", redactURLErr(err))
		}
		switch u.Scheme {
		case "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss":
		default:
			return bad("zipato.broker", "scheme %q not supported (want tcp://, ssl://, mqtt://, mqtts://, ws:// or wss://)", u.Scheme)
		}
		if u.Hostname() == "" {
			return bad("zipato.broker", "no host in %q", u.Redacted())
		}
		if u.User != nil {
			return bad("zipato.broker", "put the credentials in zipato.username and zipato.password, not in the URL")
		}
		if z.ClientID == "" && z.TopicPrefix == "" {
			return bad("zipato.client_id", "required with zipato.broker unless topic_prefix is set (the topic root is topic_base + (topic_prefix or client_id + \"/\"))")
		}
		if c.MQTTClientID() == z.ClientID {
			return bad("zipato.hubd_client_id", "must differ from the box's client_id %q (the broker would disconnect the box)", z.ClientID)
		}
	}
	if z.Password != "" && z.Username == "" {
		return bad("zipato.username", "required with zipato.password")
	}
	for _, f := range []struct{ key, v string }{
		{"zipato.topic_base", z.TopicBase}, {"zipato.topic_prefix", z.TopicPrefix},
		{"zipato.client_id", z.ClientID}, {"zipato.hubd_client_id", z.HubdClientID},
	} {
		if strings.ContainsAny(f.v, "+#\x00") {
			return bad(f.key, "must not contain the MQTT wildcards + and # (or NUL), got %q", f.v)
		}
		if len(f.v) > 256 {
			return bad(f.key, "longer than 256 bytes")
		}
	}
	if z.TopicBase != "" && !strings.HasSuffix(z.TopicBase, "/") {
		return bad("zipato.topic_base", "must end with \"/\" (the box writes \"zipato/\"), got %q", z.TopicBase)
	}
	if z.TopicPrefix != "" && !strings.HasSuffix(z.TopicPrefix, "/") {
		return bad("zipato.topic_prefix", "must end with \"/\", got %q", z.TopicPrefix)
	}
	if z.QoS < 0 || z.QoS > 2 {
		return bad("zipato.qos", "must be 0, 1 or 2, got %d", z.QoS)
	}
	o := c.ONVIF
	p := c.PTZ
	for _, s := range []struct {
		key      string
		v        float64
		min, max float64
	}{
		{"zipato.request_timeout_seconds", z.RequestTimeoutSeconds, 0.1, 300},
		{"zipato.resync_seconds", z.ResyncSeconds, 10, 7 * 86400},
		{"zipato.state_seconds", z.StateSeconds, 0.1, 3600},
		{"onvif.interval_seconds", o.IntervalSeconds, 10, 7 * 86400},
		{"onvif.probe_seconds", o.ProbeSeconds, 0.1, 60},
		{"ptz.move_seconds", p.MoveSeconds, 0.1, 60},
		{"ptz.timeout_seconds", p.TimeoutSeconds, 0.1, 300},
	} {
		if !(s.v >= s.min && s.v <= s.max) { // NaN fails too
			return bad(s.key, "must be at least %g and at most %g, got %g", s.min, s.max, s.v)
		}
	}
	if o.Discovery {
		host, port, err := net.SplitHostPort(o.Address)
		if err != nil || host == "" || port == "" {
			return bad("onvif.address", "must be host:port (the WS-Discovery group is 239.255.255.250:3702), got %q", o.Address)
		}
	}
	if o.Password != "" && o.Username == "" {
		return bad("onvif.username", "required with onvif.password")
	}
	if o.Record != "" && o.Record != camera.RecordOff {
		if _, err := camera.ParseQuality(o.Record); err != nil {
			return bad("onvif.record", "%v, off, or empty for the best stream", err)
		}
	}
	return nil
}

// redactURLErr keeps a password written into a broker URL out of the
// message: url.Error quotes the whole URL, its Err only the reason.
func redactURLErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
