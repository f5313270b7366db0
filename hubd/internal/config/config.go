// Package config loads and validates hubd's YAML configuration: every key has
// a default, unknown keys and bad values are refused with the key and the reason.
package config

import (
	"fmt"
	"github.com/zipnvr/zipnvr/pkg/yamlconf"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Config is hubd's whole configuration.
type Config struct {
	Hub       Hub             `yaml:"hub"`
	Recording Recording       `yaml:"recording"`
	Relay     Relay           `yaml:"relay"`
	Log       Log             `yaml:"log"`
	Templates camera.Syntax   `yaml:"templates"`
	Cameras   []camera.Camera `yaml:"cameras"`
	Zipato    Zipato          `yaml:"zipato"`
	ONVIF     ONVIF           `yaml:"onvif"`
	PTZ       PTZ             `yaml:"ptz"`
	Live      Live            `yaml:"live"`
	Snapshots Snapshots       `yaml:"snapshots"`
}

// Hub is this box.
type Hub struct {
	ID      string `yaml:"id"`
	DataDir string `yaml:"data_dir"`
	// RingBytes bounds the recordings on disk (segments only; the index is small).
	RingBytes ByteSize `yaml:"ring_bytes"`
	// ControlSocket is the local Unix socket `hubd recordings`/`status` ask a running hubd on.
	ControlSocket string `yaml:"control_socket"`
	// MaxProcs is GOMAXPROCS (0: one per core). Remuxing is a little work per
	// packet; on one P the handoffs between goroutines stay on one thread
	// instead of waking another (measured: -25 % CPU, README Performance).
	MaxProcs int `yaml:"max_procs"`
}

// Recording tunes the segmenter.
type Recording struct {
	SegmentSeconds  float64 `yaml:"segment_seconds"`
	FragmentSeconds float64 `yaml:"fragment_seconds"`
	FsyncSeconds    float64 `yaml:"fsync_seconds"`
	// MaxFrameGapSeconds: a larger jump between two frames' timestamps is a discontinuity.
	MaxFrameGapSeconds float64 `yaml:"max_frame_gap_seconds"`
	// MaxDriftSeconds: camera clock vs hub clock divergence that re-anchors wall-clock time.
	MaxDriftSeconds float64 `yaml:"max_drift_seconds"`
	// QueueFrames bounds the frames waiting between a camera and its disk writer.
	QueueFrames int `yaml:"queue_frames"`
	// ReconnectMaxSeconds caps the reconnect backoff: a camera back from a
	// reboot records again within this (a retry is one SYN on the LAN).
	ReconnectMaxSeconds float64 `yaml:"reconnect_max_seconds"`
}

// Relay is the optional cloud side; without a URL hubd records locally only.
type Relay struct {
	URL        string `yaml:"url"`
	Credential string `yaml:"credential"`
	// ParallelUploads is how many segments upload at once; a backlog after an
	// outage drains this many at a time while new segments keep coming.
	ParallelUploads int `yaml:"parallel_uploads"`
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Defaults returns the configuration every key falls back to.
func Defaults() Config {
	return Config{
		Hub: Hub{ID: "hub-1", DataDir: "/var/lib/hubd", RingBytes: 8 << 30, MaxProcs: 1},
		Recording: Recording{
			SegmentSeconds: 30, FragmentSeconds: 1, FsyncSeconds: 2,
			MaxFrameGapSeconds: 2, MaxDriftSeconds: 2, QueueFrames: 512,
			ReconnectMaxSeconds: 1.5,
		},
		Relay:     Relay{ParallelUploads: 2},
		Log:       Log{Level: "info", Format: "text"},
		Templates: camera.DefaultSyntax,
		Zipato:    defaultZipato(),
		ONVIF:     defaultONVIF(),
		PTZ:       defaultPTZ(),
		Live:      defaultLive(),
	}
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML over the defaults and validates the result.
func Parse(data []byte) (*Config, error) {
	cfg := Defaults()
	if err := yamlconf.Decode(data, "hubd", &cfg); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) applyDefaults() {
	d := Defaults()
	if c.Hub.ControlSocket == "" && c.Hub.DataDir != "" {
		c.Hub.ControlSocket = filepath.Join(c.Hub.DataDir, "hubd.sock")
	}
	if c.Templates.Open == "" && c.Templates.Close == "" {
		c.Templates = d.Templates
	}
	for i := range c.Cameras {
		c.Cameras[i].ApplyDefaults()
	}
}

// KeyError names the config key that is wrong.
type KeyError struct{ Key, Reason string }

func (e *KeyError) Error() string { return e.Key + ": " + e.Reason }

// Validate checks every key; the first problem is returned.
func (c *Config) Validate() error {
	bad := func(key, format string, a ...any) error {
		return &KeyError{Key: key, Reason: fmt.Sprintf(format, a...)}
	}
	if c.Hub.ID == "" {
		return bad("hub.id", "must not be empty")
	}
	if c.Hub.DataDir == "" {
		return bad("hub.data_dir", "must not be empty")
	}
	if c.Hub.RingBytes < 16<<20 {
		return bad("hub.ring_bytes", "must be at least 16MiB, got %s", c.Hub.RingBytes)
	}
	if c.Hub.MaxProcs < 0 || c.Hub.MaxProcs > 1024 {
		return bad("hub.max_procs", "must be 0 (one per core) to 1024, got %d", c.Hub.MaxProcs)
	}
	r := c.Recording
	positive := []struct {
		key string
		v   float64
		min float64
	}{
		{"recording.segment_seconds", r.SegmentSeconds, 1},
		{"recording.fragment_seconds", r.FragmentSeconds, 0.1},
		{"recording.fsync_seconds", r.FsyncSeconds, 0.1},
		{"recording.max_frame_gap_seconds", r.MaxFrameGapSeconds, 0.1},
		{"recording.max_drift_seconds", r.MaxDriftSeconds, 0.1},
		{"recording.reconnect_max_seconds", r.ReconnectMaxSeconds, 0.5},
	}
	for _, p := range positive {
		// Written so that NaN fails too (YAML has .nan and .inf); the upper
		// bound keeps the value a time.Duration.
		if !(p.v >= p.min && p.v <= maxSeconds) {
			return bad(p.key, "must be at least %g and at most %g, got %g", p.min, maxSeconds, p.v)
		}
	}
	if r.FragmentSeconds > r.SegmentSeconds {
		return bad("recording.fragment_seconds", "must not exceed segment_seconds (%g > %g)", r.FragmentSeconds, r.SegmentSeconds)
	}
	if r.QueueFrames < 16 {
		return bad("recording.queue_frames", "must be at least 16, got %d", r.QueueFrames)
	}
	if c.Relay.URL != "" && !strings.HasPrefix(c.Relay.URL, "http://") && !strings.HasPrefix(c.Relay.URL, "https://") {
		return bad("relay.url", "must be an http:// or https:// URL")
	}
	if c.Relay.URL != "" && c.Relay.Credential == "" {
		return bad("relay.credential", "is required with relay.url (the hub credential the relay admin issued)")
	}
	if c.Relay.ParallelUploads < 1 || c.Relay.ParallelUploads > 32 {
		return bad("relay.parallel_uploads", "must be 1 to 32, got %d", c.Relay.ParallelUploads)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	if err := c.Templates.Validate(); err != nil {
		return bad("templates", "%v", err)
	}
	if err := c.Live.validate(); err != nil {
		return err
	}
	if err := c.Snapshots.validate(); err != nil {
		return err
	}
	if err := c.validateIntegrations(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		if err := cam.Validate(c.Templates); err != nil {
			return fmt.Errorf("cameras[%d]: %w", i, err)
		}
		if seen[cam.ID] {
			return bad(fmt.Sprintf("cameras[%d].id", i), "duplicate camera id %q", cam.ID)
		}
		seen[cam.ID] = true
	}
	return nil
}

// Durations of the recording section, for the packages that take time.Duration.
func (r Recording) Segment() time.Duration  { return seconds(r.SegmentSeconds) }
func (r Recording) Fragment() time.Duration { return seconds(r.FragmentSeconds) }
func (r Recording) Fsync() time.Duration    { return seconds(r.FsyncSeconds) }
func (r Recording) MaxFrameGap() time.Duration {
	return seconds(r.MaxFrameGapSeconds)
}
func (r Recording) MaxDrift() time.Duration     { return seconds(r.MaxDriftSeconds) }
func (r Recording) ReconnectMax() time.Duration { return seconds(r.ReconnectMaxSeconds) }

// maxSeconds is the longest time.Duration, in seconds, rounded down.
const maxSeconds = float64(math.MaxInt64 / int64(time.Second))

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// ByteSize is a size in bytes that YAML may write as 8GiB, 500MB or 1048576.
type ByteSize = yamlconf.ByteSize

// ParseByteSize parses "8GiB", "1.5 GB", "4096".
var ParseByteSize = yamlconf.ParseByteSize
