package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// contractExample is the config of /work/shared/design.md, "Config shape".
const contractExample = `hub: {id: hub-1, data_dir: /var/lib/hubd, ring_bytes: 8GiB}
recording: {segment_seconds: 30}
relay: {url: "https://relay.example", credential: "..."}   # optional: without it hubd records locally only
cameras:
  - id: cam1
    name: Front door
    ip: 192.168.1.20
    port: 554
    username: admin
    password: secret
    streams: {high: "rtsp://${ip}:${port}/Streaming/Channels/101", low: "rtsp://${ip}:${port}/Streaming/Channels/102", mjpeg: "http://${ip}/mjpeg"}
    snapshot: "http://${ip}/ISAPI/Streaming/channels/101/picture"
    record: high
`

func defaultsParsed() Config {
	d := Defaults()
	d.Hub.ControlSocket = "/var/lib/hubd/hubd.sock"
	return d
}

func TestDefaultsValid(t *testing.T) {
	d := defaultsParsed()
	if err := d.Validate(); err != nil {
		t.Fatalf("Defaults() do not validate: %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	for _, doc := range []string{"", "{}", "\n", "# only a comment\n", "---\n", "---\n{}\n", "hub: {}\nrecording: {}\nlog: {}\nrelay: {}\ntemplates: {}\n", "cameras: []\n"} {
		cfg, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		want := defaultsParsed()
		if doc == "cameras: []\n" {
			want.Cameras = []camera.Camera{}
		}
		if !reflect.DeepEqual(*cfg, want) {
			t.Fatalf("Parse(%q) =\n%+v\nwant\n%+v", doc, *cfg, want)
		}
	}
}

func TestParseKeepsOtherDefaults(t *testing.T) {
	cfg, err := Parse([]byte("hub: {data_dir: /srv/hubd}\nrecording: {segment_seconds: 10}\ntemplates: {open: '{{'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hub.ID != "hub-1" || cfg.Hub.RingBytes != 8<<30 || cfg.Hub.ControlSocket != "/srv/hubd/hubd.sock" {
		t.Fatalf("hub = %+v", cfg.Hub)
	}
	if cfg.Recording.SegmentSeconds != 10 || cfg.Recording.FragmentSeconds != 1 || cfg.Recording.QueueFrames != 512 {
		t.Fatalf("recording = %+v", cfg.Recording)
	}
	if cfg.Templates != (camera.Syntax{Open: "{{", Close: "}"}) {
		t.Fatalf("templates = %+v", cfg.Templates)
	}
	cfg, err = Parse([]byte("hub: {control_socket: /run/hubd.sock}\n"))
	if err != nil || cfg.Hub.ControlSocket != "/run/hubd.sock" {
		t.Fatalf("explicit control_socket: %+v, %v", cfg, err)
	}
}

func TestParseContractExample(t *testing.T) {
	cfg, err := Parse([]byte(contractExample))
	if err != nil {
		t.Fatalf("contract example: %v", err)
	}
	if cfg.Hub.ID != "hub-1" || cfg.Hub.DataDir != "/var/lib/hubd" || cfg.Hub.RingBytes != 8<<30 {
		t.Fatalf("hub = %+v", cfg.Hub)
	}
	if cfg.Recording.Segment().Seconds() != 30 || cfg.Relay.URL != "https://relay.example" || cfg.Relay.Credential != "..." {
		t.Fatalf("recording %+v relay %+v", cfg.Recording, cfg.Relay)
	}
	if len(cfg.Cameras) != 1 {
		t.Fatalf("cameras = %+v", cfg.Cameras)
	}
	c := cfg.Cameras[0]
	if c.ID != "cam1" || c.Name != "Front door" || c.Port != 554 || c.Password != "secret" || c.Record != "high" ||
		c.Transport != camera.TransportAuto || c.Streams.Mid != "" || c.Streams.MJPEG != "http://${ip}/mjpeg" {
		t.Fatalf("camera = %+v", c)
	}
	u, err := c.URL(cfg.Templates, camera.High)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := u.User.Password(); u.Host != "192.168.1.20:554" || u.Path != "/Streaming/Channels/101" || u.User.Username() != "admin" || p != "secret" {
		t.Fatalf("high URL = %v", u)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hubd.yaml")
	if err := os.WriteFile(path, []byte(contractExample), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := os.WriteFile(path, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("Load of a bad file: %v, want the path and the key", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

// cam is a valid camera entry to build bad configs from.
const cam = `  - id: cam1
    ip: 192.168.1.20
    streams: {high: "rtsp://${ip}/101"}
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error
		key  string   // KeyError.Key when the error is a KeyError
	}{
		{name: "malformed yaml", doc: "hub: {id: [\n", want: []string{"line"}},
		{name: "bad indentation", doc: "hub:\n  id: a\n   data_dir: b\n", want: []string{"line"}},
		{name: "tab indentation", doc: "hub:\n\tid: a\n", want: []string{"line"}},
		{name: "top level not a map", doc: "- a\n- b\n", want: []string{"line 1"}},
		{name: "scalar document", doc: "hello\n", want: []string{"line 1"}},
		{name: "unknown top-level key", doc: "hubb: {id: x}\n", want: []string{"hubb"}},
		{name: "unknown hub key", doc: "hub: {ring_size: 8GiB}\n", want: []string{"ring_size"}},
		{name: "unknown camera key", doc: "cameras:\n" + cam + "    passwd: x\n", want: []string{"passwd"}},
		{name: "unknown streams key", doc: "cameras:\n  - id: c\n    streams: {hi: x}\n", want: []string{"hi"}},
		{name: "two documents", doc: "hub: {id: a}\n---\nhub: {id: b}\n", want: []string{"more than one YAML document"}},
		{name: "two empty documents", doc: "---\n---\n", want: []string{"more than one YAML document"}},
		{name: "wrong type", doc: "recording: {segment_seconds: thirty}\n", want: []string{"line 1", "thirty"}},
		{name: "ring_bytes unparsable", doc: "hub: {ring_bytes: 8 GiBs}\n", want: []string{"line 1", "8 GiBs", "not a size"}},
		{name: "ring_bytes map", doc: "hub: {ring_bytes: {a: 1}}\n", want: []string{"not a size"}},
		{name: "ring_bytes NaN", doc: "hub: {ring_bytes: NaN}\n", want: []string{"not a size"}},
		{name: "ring_bytes too small", doc: "hub: {ring_bytes: 1MiB}\n", key: "hub.ring_bytes", want: []string{"16MiB", "1MiB"}},
		{name: "ring_bytes zero", doc: "hub: {ring_bytes: 0}\n", key: "hub.ring_bytes"},
		{name: "hub id empty", doc: "hub: {id: ''}\n", key: "hub.id"},
		{name: "data_dir empty", doc: "hub: {data_dir: ''}\n", key: "hub.data_dir"},
		{name: "segment_seconds 0", doc: "recording: {segment_seconds: 0}\n", key: "recording.segment_seconds"},
		{name: "segment_seconds negative", doc: "recording: {segment_seconds: -30}\n", key: "recording.segment_seconds"},
		{name: "fragment_seconds 0", doc: "recording: {fragment_seconds: 0}\n", key: "recording.fragment_seconds"},
		{name: "fragment > segment", doc: "recording: {segment_seconds: 2, fragment_seconds: 3}\n", key: "recording.fragment_seconds", want: []string{"segment_seconds"}},
		{name: "fsync_seconds", doc: "recording: {fsync_seconds: 0.01}\n", key: "recording.fsync_seconds"},
		{name: "max_frame_gap_seconds", doc: "recording: {max_frame_gap_seconds: 0}\n", key: "recording.max_frame_gap_seconds"},
		{name: "max_drift_seconds", doc: "recording: {max_drift_seconds: -1}\n", key: "recording.max_drift_seconds"},
		{name: "reconnect_max_seconds", doc: "recording: {reconnect_max_seconds: 0.1}\n", key: "recording.reconnect_max_seconds"},
		{name: "queue_frames", doc: "recording: {queue_frames: 8}\n", key: "recording.queue_frames"},
		{name: "segment_seconds NaN", doc: "recording: {segment_seconds: .nan}\n", key: "recording.segment_seconds"},
		{name: "segment_seconds inf", doc: "recording: {segment_seconds: .inf}\n", key: "recording.segment_seconds"},
		{name: "segment_seconds beyond a Duration", doc: "recording: {segment_seconds: 1e300, fragment_seconds: 1}\n", key: "recording.segment_seconds"},
		{name: "fsync_seconds NaN", doc: "recording: {fsync_seconds: .NaN}\n", key: "recording.fsync_seconds"},
		{name: "reconnect_max_seconds inf", doc: "recording: {reconnect_max_seconds: .inf}\n", key: "recording.reconnect_max_seconds"},
		{name: "relay url without scheme", doc: "relay: {url: relay.example}\n", key: "relay.url"},
		{name: "relay url ftp", doc: "relay: {url: 'ftp://relay.example'}\n", key: "relay.url"},
		{name: "log level bogus", doc: "log: {level: verbose}\n", key: "log.level", want: []string{"verbose"}},
		{name: "log format bogus", doc: "log: {format: xml}\n", key: "log.format", want: []string{"xml"}},
		{name: "templates half empty", doc: "templates: {open: '', close: '}}'}\n", key: "templates"},
		{name: "duplicate camera id", doc: "cameras:\n" + cam + cam, key: "cameras[1].id", want: []string{"duplicate", "cam1"}},
		{name: "camera missing record URL", doc: "cameras:\n  - id: cam1\n    ip: 10.0.0.1\n    streams: {low: 'rtsp://${ip}/2'}\n    record: high\n",
			want: []string{"cameras[0]", "streams.high", `camera "cam1"`}},
		{name: "second camera bad", doc: "cameras:\n" + cam + "  - id: cam2\n    ip: 10.0.0.2\n    streams: {high: 'http://${ip}/x'}\n",
			want: []string{"cameras[1]", "streams.high", "scheme"}},
		{name: "camera bad id", doc: "cameras:\n  - id: 'front door'\n", want: []string{"cameras[0]", "id"}},
		{name: "camera bad port", doc: "cameras:\n" + cam + "    port: 70000\n", want: []string{"cameras[0]", "port"}},
		{name: "camera bad ptz", doc: "cameras:\n" + cam + "    ptz: {kind: pelco}\n", want: []string{"cameras[0]", "ptz.kind", "pelco"}},
		{name: "camera unknown placeholder", doc: "cameras:\n  - id: c\n    streams: {high: 'rtsp://${host}/'}\n", want: []string{"cameras[0]", "${host}"}},
		{name: "camera custom syntax mismatch", doc: "templates: {open: '{{', close: '}}'}\ncameras:\n  - id: c\n    ip: 10.0.0.1\n    streams: {high: 'rtsp://${ip}/'}\n",
			want: []string{"cameras[0]", "streams.high"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.doc, cfg)
			}
			if cfg != nil {
				t.Fatalf("Parse returned a config with the error %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.key != "" {
				var ke *KeyError
				if !errors.As(err, &ke) || ke.Key != tt.key {
					t.Fatalf("error %v (%T), want a KeyError for %s", err, err, tt.key)
				}
				if !strings.HasPrefix(err.Error(), tt.key+": ") {
					t.Fatalf("error %q does not start with the key", err)
				}
			}
			if strings.Contains(err.Error(), "yaml: ") {
				t.Errorf("error %q keeps the yaml: prefix", err)
			}
		})
	}
}

func TestParseCustomSyntax(t *testing.T) {
	doc := "templates: {open: '%', close: '%'}\ncameras:\n  - id: c\n    ip: 10.0.0.1\n    port: 8554\n    streams: {high: 'rtsp://%ip%:%port%/live'}\n"
	cfg, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	u, err := cfg.Cameras[0].URL(cfg.Templates, camera.High)
	if err != nil || u.String() != "rtsp://10.0.0.1:8554/live" {
		t.Fatalf("URL = %v, %v", u, err)
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"8GiB", 8 << 30, true},
		{"1.5GB", 1_500_000_000, true},
		{"1.5 GB", 1_500_000_000, true},
		{"4096", 4096, true},
		{"10MiB", 10 << 20, true},
		{" 10 MiB ", 10 << 20, true},
		{"500MB", 500_000_000, true},
		{"2KiB", 2048, true},
		{"3KB", 3000, true},
		{"1TiB", 1 << 40, true},
		{"2TB", 2e12, true},
		{"4G", 4 << 30, true},
		{"16M", 16 << 20, true},
		{"1K", 1024, true},
		{"1T", 1 << 40, true},
		{"100B", 100, true},
		{"0", 0, true},
		{"0.5KiB", 512, true},
		{"4096MiB", 4 << 30, true},
		{"", 0, false},
		{"-1", 0, false},
		{"-1GiB", 0, false},
		{"1e30", 0, false},
		{"1e18GB", 0, false},
		{"NaN", 0, false},
		{"nan", 0, false},
		{"Inf", 0, false},
		{"-Inf", 0, false},
		{"8 GiBs", 0, false},
		{"8GiBB", 0, false},
		{"GiB", 0, false},
		{"eight", 0, false},
		{"8gib", 0, false},
		{"8 XB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseByteSize(%q) = %d, %v; want ok=%v", tt.in, got, err, tt.ok)
			continue
		}
		if !tt.ok {
			if !strings.Contains(err.Error(), "not a size") {
				t.Errorf("ParseByteSize(%q) error %q", tt.in, err)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{8 << 30, "8GiB"}, {1 << 40, "1TiB"}, {10 << 20, "10MiB"}, {2048, "2KiB"}, {1536, "1536B"}, {1000, "1000B"}, {0, "0B"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		if back, err := ParseByteSize(tt.in.String()); err != nil || back != tt.in {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in.String(), back, err, int64(tt.in))
		}
	}
}

func TestRecordingDurations(t *testing.T) {
	r := Recording{SegmentSeconds: 30, FragmentSeconds: 0.5, FsyncSeconds: 2, MaxFrameGapSeconds: 1.5, MaxDriftSeconds: 3, ReconnectMaxSeconds: 60}
	got := []string{r.Segment().String(), r.Fragment().String(), r.Fsync().String(), r.MaxFrameGap().String(), r.MaxDrift().String(), r.ReconnectMax().String()}
	want := []string{"30s", "500ms", "2s", "1.5s", "3s", "1m0s"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("durations %v, want %v", got, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "{}", "---\n", contractExample,
		"hub: {ring_bytes: 8 GiBs}\n",
		"hub: {ring_bytes: NaN}\n",
		"recording: {segment_seconds: .nan}\n",
		"recording: {segment_seconds: .inf, fsync_seconds: 1e300}\n",
		"recording: {segment_seconds: 2, fragment_seconds: 3}\n",
		"cameras:\n" + cam + cam,
		"cameras:\n  - id: cam1\n    streams: {low: 'rtsp://x/2'}\n    record: high\n",
		"templates: {open: '%', close: '%'}\ncameras:\n  - id: c\n    ip: 10.0.0.1\n    streams: {high: 'rtsp://%ip%/'}\n",
		"a: &a [*a]\n",
		"a: &a {b: *a}\n",
		"hub: {id: a}\n---\nhub: {id: b}\n",
		"hub: {id: [\n",
		"cameras: [{id: c, params: {parameter1: x}, ptz: {kind: onvif}, transport: tcp}]\n",
		"!!binary aGVsbG8=\n",
		"hub: !!map {id: x}\n",
		"? [a, b]\n: c\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config and the error %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
		if cfg.Hub.ControlSocket == "" {
			t.Fatal("Parse left control_socket empty")
		}
		// Accepted durations convert to positive time.Durations.
		r := cfg.Recording
		for _, d := range []time.Duration{r.Segment(), r.Fragment(), r.Fsync(), r.MaxFrameGap(), r.MaxDrift(), r.ReconnectMax()} {
			if d <= 0 {
				t.Fatalf("accepted recording %+v gives duration %v", r, d)
			}
		}
		if r.Fragment() > r.Segment() {
			t.Fatalf("accepted fragment %v > segment %v", r.Fragment(), r.Segment())
		}
	})
}
