package camera_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// goodCamera is the contract example's camera (design.md, "Config shape").
func goodCamera() camera.Camera {
	return camera.Camera{
		ID: "cam1", Name: "Front door", IP: "192.168.1.20", Port: 554,
		Username: "admin", Password: "secret",
		Streams: camera.Streams{
			High:  "rtsp://${ip}:${port}/Streaming/Channels/101",
			Low:   "rtsp://${ip}:${port}/Streaming/Channels/102",
			MJPEG: "http://${ip}/mjpeg",
		},
		Snapshot: "http://${ip}/ISAPI/Streaming/channels/101/picture",
		Record:   "high",
	}
}

func TestParseQuality(t *testing.T) {
	for _, s := range []string{"high", "mid", "low", "mjpeg"} {
		q, err := camera.ParseQuality(s)
		if err != nil || string(q) != s {
			t.Errorf("ParseQuality(%q) = %q, %v", s, q, err)
		}
	}
	for _, s := range []string{"", "off", "HIGH", "hi", " high"} {
		if q, err := camera.ParseQuality(s); err == nil {
			t.Errorf("ParseQuality(%q) = %q, want an error", s, q)
		}
	}
}

func TestApplyDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in      camera.Camera
		record  string
		nameOut string
		trans   camera.Transport
	}{
		{"best stream is high", camera.Camera{ID: "a", Streams: camera.Streams{High: "h", Low: "l", MJPEG: "m"}}, "high", "a", camera.TransportAuto},
		{"mid before low", camera.Camera{ID: "a", Streams: camera.Streams{Mid: "m", Low: "l"}}, "mid", "a", camera.TransportAuto},
		{"low before mjpeg", camera.Camera{ID: "a", Streams: camera.Streams{Low: "l", MJPEG: "m"}}, "low", "a", camera.TransportAuto},
		{"mjpeg only", camera.Camera{ID: "a", Streams: camera.Streams{MJPEG: "m"}}, "mjpeg", "a", camera.TransportAuto},
		{"no stream records off", camera.Camera{ID: "a"}, camera.RecordOff, "a", camera.TransportAuto},
		{"explicit values kept", camera.Camera{ID: "a", Name: "Gate", Record: "low", Transport: camera.TransportTCP,
			Streams: camera.Streams{High: "h", Low: "l"}}, "low", "Gate", camera.TransportTCP},
		{"explicit off kept", camera.Camera{ID: "a", Record: "off", Streams: camera.Streams{High: "h"}}, "off", "a", camera.TransportAuto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.in
			c.ApplyDefaults()
			if c.Record != tt.record || c.Name != tt.nameOut || c.Transport != tt.trans {
				t.Fatalf("got record %q name %q transport %q; want %q %q %q", c.Record, c.Name, c.Transport, tt.record, tt.nameOut, tt.trans)
			}
			again := c
			again.ApplyDefaults()
			if !reflect.DeepEqual(again, c) {
				t.Fatalf("ApplyDefaults is not idempotent: %+v then %+v", c, again)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(c *camera.Camera)
		syntax *camera.Syntax
		key    string // "" means valid
		reason string // substring of the reason
	}{
		{name: "contract example", edit: func(c *camera.Camera) {}},
		{name: "no streams, record off", edit: func(c *camera.Camera) { *c = camera.Camera{ID: "x"} }},
		{name: "credentials in template", edit: func(c *camera.Camera) {
			c.Password = "p@ss:w/o?r#d% x"
			c.Streams.High = "rtsp://${username}:${password}@${ip}:${port}/live"
		}},
		{name: "rtsps and https", edit: func(c *camera.Camera) {
			c.Streams.High, c.Streams.MJPEG = "rtsps://${ip}/a", "https://${ip}/m"
		}},
		{name: "recording url any scheme", edit: func(c *camera.Camera) { c.Recording = "ftp://${ip}/rec" }},
		{name: "port 0 allowed", edit: func(c *camera.Camera) { c.Port = 0; c.Streams.High = "rtsp://${ip}/a"; c.Streams.Low = "" }},
		{name: "params", edit: func(c *camera.Camera) {
			c.Params = map[string]string{"parameter1": "101"}
			c.Streams.High = "rtsp://${ip}/Streaming/Channels/${parameter1}"
		}},
		{name: "custom syntax", syntax: &camera.Syntax{Open: "{{", Close: "}}"}, edit: func(c *camera.Camera) {
			c.Streams = camera.Streams{High: "rtsp://{{ip}}:{{port}}/a"}
			c.Snapshot = "http://{{ip}}/snap"
		}},
		{name: "ptz kinds", edit: func(c *camera.Camera) { c.PTZ.Kind = "onvif" }},

		{name: "empty id", edit: func(c *camera.Camera) { c.ID = "" }, key: "id"},
		{name: "id starts with dash", edit: func(c *camera.Camera) { c.ID = "-cam" }, key: "id"},
		{name: "id with space", edit: func(c *camera.Camera) { c.ID = "front door" }, key: "id"},
		{name: "id with slash", edit: func(c *camera.Camera) { c.ID = "../etc" }, key: "id"},
		{name: "id too long", edit: func(c *camera.Camera) { c.ID = strings.Repeat("a", 65) }, key: "id"},
		{name: "port negative", edit: func(c *camera.Camera) { c.Port = -1 }, key: "port", reason: "-1"},
		{name: "port too large", edit: func(c *camera.Camera) { c.Port = 65536 }, key: "port", reason: "65536"},
		{name: "bad transport", edit: func(c *camera.Camera) { c.Transport = "quic" }, key: "transport", reason: "quic"},
		{name: "bad ptz kind", edit: func(c *camera.Camera) { c.PTZ.Kind = "pelco" }, key: "ptz.kind", reason: "pelco"},
		{name: "http for rtsp stream", edit: func(c *camera.Camera) { c.Streams.High = "http://${ip}/video" }, key: "streams.high", reason: `scheme "http"`},
		{name: "rtsp for mid", edit: func(c *camera.Camera) { c.Streams.Mid = "rtmp://${ip}/video" }, key: "streams.mid", reason: "rtmp"},
		{name: "rtsp for mjpeg", edit: func(c *camera.Camera) { c.Streams.MJPEG = "rtsp://${ip}/mjpeg" }, key: "streams.mjpeg", reason: "rtsp"},
		{name: "rtsp for snapshot", edit: func(c *camera.Camera) { c.Snapshot = "rtsp://${ip}/snap" }, key: "snapshot"},
		{name: "admin url scheme", edit: func(c *camera.Camera) { c.AdminURL = "telnet://${ip}" }, key: "admin_url"},
		{name: "unknown placeholder", edit: func(c *camera.Camera) { c.Streams.Low = "rtsp://${ip}/${channel}" }, key: "streams.low", reason: "${channel}"},
		{name: "unterminated placeholder", edit: func(c *camera.Camera) { c.Snapshot = "http://${ip/snap" }, key: "snapshot", reason: "unterminated"},
		{name: "no host", edit: func(c *camera.Camera) { c.IP = "" }, key: "streams.high", reason: "no host"},
		{name: "no scheme", edit: func(c *camera.Camera) { c.Streams.High = "${ip}/live" }, key: "streams.high"},
		{name: "unparsable URL", edit: func(c *camera.Camera) { c.IP = "192.168.1.20 " }, key: "streams.high", reason: "does not parse"},
		{name: "bad record quality", edit: func(c *camera.Camera) { c.Record = "ultra" }, key: "record", reason: "ultra"},
		{name: "record high without high stream", edit: func(c *camera.Camera) { c.Streams.High = "" }, key: "streams.high", reason: "record: high"},
		{name: "record mjpeg without mjpeg stream", edit: func(c *camera.Camera) { c.Record = "mjpeg"; c.Streams.MJPEG = "" }, key: "streams.mjpeg"},
		{name: "record mid without mid stream", edit: func(c *camera.Camera) { c.Record = "mid" }, key: "streams.mid"},
		{name: "empty syntax", syntax: &camera.Syntax{}, edit: func(c *camera.Camera) {}, key: "streams.high", reason: "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := goodCamera()
			tt.edit(&c)
			c.ApplyDefaults()
			syntax := camera.DefaultSyntax
			if tt.syntax != nil {
				syntax = *tt.syntax
			}
			err := c.Validate(syntax)
			if tt.key == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *camera.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v (%T), want a *FieldError for %s", err, err, tt.key)
			}
			if fe.Camera != c.ID || fe.Key != tt.key {
				t.Fatalf("FieldError names camera %q key %q, want %q %q (%v)", fe.Camera, fe.Key, c.ID, tt.key, err)
			}
			if !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("reason %q does not mention %q", fe.Reason, tt.reason)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.key) || !strings.Contains(msg, `"`+c.ID+`"`) {
				t.Fatalf("message %q must name the camera and the key", msg)
			}
			if strings.Contains(err.Error(), c.Password) {
				t.Fatalf("error %q leaks the password", err)
			}
		})
	}
}

// TestValidateRedactsPassword: a URL that does not parse is quoted back by
// net/url with the password in it, escaped by Expand; neither form may reach
// the error (config errors are logged).
func TestValidateRedactsPassword(t *testing.T) {
	for _, pass := range []string{"secret", "p@ss/w:rd", `q"uo\te`, "sp ace%", "ünï", "ctl\x01"} {
		c := goodCamera()
		c.Password = pass
		c.IP = "192.168.1.20 " // a space in the host: url.Parse fails
		c.Streams.High = "rtsp://${username}:${password}@${ip}:554/x"
		c.ApplyDefaults()
		err := c.Validate(camera.DefaultSyntax)
		if err == nil {
			t.Fatalf("%q: want an error", pass)
		}
		msg := err.Error()
		escaped, _ := camera.DefaultSyntax.Expand("${password}@h", map[string]string{"password": pass})
		escaped = strings.TrimSuffix(escaped, "@h")
		for _, form := range []string{pass, escaped, url.QueryEscape(pass), url.PathEscape(pass)} {
			if strings.Contains(msg, form) {
				t.Fatalf("error %q leaks password %q as %q", msg, pass, form)
			}
		}
		if !strings.Contains(msg, "xxxxx") || !strings.Contains(msg, "streams.high") {
			t.Fatalf("error %q should show the redacted URL and the key", msg)
		}
	}
}

func TestURL(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(c *camera.Camera)
		q       camera.Quality
		want    string // URL without userinfo
		user    string // "" means no userinfo
		pass    string
		wantKey string // FieldError key when an error is expected
		wantErr bool   // any other error
	}{
		{name: "credentials added", q: camera.High, want: "rtsp://192.168.1.20:554/Streaming/Channels/101", user: "admin", pass: "secret"},
		{name: "awkward password added", edit: func(c *camera.Camera) { c.Password = "p@ss:w/o?r#d% x" },
			q: camera.Low, want: "rtsp://192.168.1.20:554/Streaming/Channels/102", user: "admin", pass: "p@ss:w/o?r#d% x"},
		{name: "template credentials kept", edit: func(c *camera.Camera) {
			c.Streams.High = "rtsp://viewer:${password}@${ip}/live"
			c.Password = "a@b"
		}, q: camera.High, want: "rtsp://192.168.1.20/live", user: "viewer", pass: "a@b"},
		{name: "no username no userinfo", edit: func(c *camera.Camera) { c.Username = ""; c.Password = "" },
			q: camera.High, want: "rtsp://192.168.1.20:554/Streaming/Channels/101"},
		{name: "credentials in query: userinfo added all the same", edit: func(c *camera.Camera) {
			c.Streams.MJPEG = "http://${ip}/video.cgi?user=${username}&pwd=${password}"
		}, q: camera.MJPEG, want: "http://192.168.1.20/video.cgi?user=admin&pwd=secret", user: "admin", pass: "secret"},
		{name: "missing quality", q: camera.Mid, wantKey: "streams.mid"},
		{name: "unknown placeholder", edit: func(c *camera.Camera) { c.Streams.High = "rtsp://${ipaddr}/" }, q: camera.High, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := goodCamera()
			if tt.edit != nil {
				tt.edit(&c)
			}
			u, err := c.URL(camera.DefaultSyntax, tt.q)
			if tt.wantKey != "" || tt.wantErr {
				if err == nil {
					t.Fatalf("URL() = %v, want an error", u)
				}
				var fe *camera.FieldError
				if tt.wantKey != "" && (!errors.As(err, &fe) || fe.Key != tt.wantKey || fe.Camera != "cam1") {
					t.Fatalf("URL() error %v, want a FieldError for cam1 %s", err, tt.wantKey)
				}
				return
			}
			if err != nil {
				t.Fatalf("URL(): %v", err)
			}
			if tt.user == "" {
				if u.User != nil {
					t.Fatalf("URL() has userinfo %v, want none", u.User)
				}
			} else {
				p, ok := u.User.Password()
				if u.User.Username() != tt.user || !ok || p != tt.pass {
					t.Fatalf("userinfo %q/%q, want %q/%q", u.User.Username(), p, tt.user, tt.pass)
				}
			}
			// The URL as written back and parsed again keeps the credentials.
			again, err := url.Parse(u.String())
			if err != nil || again.User.String() != u.User.String() {
				t.Fatalf("URL %q does not round-trip: %v", u.String(), err)
			}
			bare := *u
			bare.User = nil
			if bare.String() != tt.want {
				t.Fatalf("URL() = %q, want %q", bare.String(), tt.want)
			}
		})
	}
}

func TestSnapshotURL(t *testing.T) {
	c := goodCamera()
	u, err := c.SnapshotURL(camera.DefaultSyntax)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := u.User.Password(); u.Host != "192.168.1.20" || u.User.Username() != "admin" || p != "secret" {
		t.Fatalf("SnapshotURL() = %v", u)
	}
	c.Snapshot = ""
	var fe *camera.FieldError
	if _, err := c.SnapshotURL(camera.DefaultSyntax); !errors.As(err, &fe) || fe.Key != "snapshot" {
		t.Fatalf("SnapshotURL() without a template: %v, want a FieldError for snapshot", err)
	}
}

func TestJSONNeverContainsPassword(t *testing.T) {
	for _, pass := range []string{"secret", "p@ss:w/o?r#d% x", `"quoted"`, "ünï"} {
		c := goodCamera()
		c.Password = pass
		c.Streams.High = "rtsp://${username}:${password}@${ip}/live"
		c.Params = map[string]string{"parameter1": "101"}
		c.ApplyDefaults()
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		quoted, _ := json.Marshal(pass)
		if strings.Contains(string(b), pass) || strings.Contains(string(b), string(quoted[1:len(quoted)-1])) ||
			strings.Contains(strings.ToLower(string(b)), `"password"`) {
			t.Fatalf("json.Marshal leaks the password: %s", b)
		}
		var back camera.Camera
		if err := json.Unmarshal(b, &back); err != nil || back.ID != c.ID || back.Streams != c.Streams || back.Password != "" {
			t.Fatalf("round trip: %+v, %v", back, err)
		}
	}
	// A password supplied in JSON is not taken either (json:"-").
	var c camera.Camera
	if err := json.Unmarshal([]byte(`{"id":"a","password":"x","Password":"y"}`), &c); err != nil || c.Password != "" {
		t.Fatalf("json.Unmarshal set Password %q (%v)", c.Password, err)
	}
}

func TestFieldError(t *testing.T) {
	err := error(&camera.FieldError{Camera: "cam1", Key: "streams.high", Reason: "missing"})
	if got, want := err.Error(), `camera "cam1": streams.high: missing`; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestRedacted(t *testing.T) {
	c := camera.Camera{ID: "cam1", Username: "admin", Password: "s3cret",
		Streams:  camera.Streams{High: "rtsp://admin:s3cret@${ip}:554/h", Low: "rtsp://${username}:${password}@${ip}/l", MJPEG: "http://${ip}/mjpeg"},
		Snapshot: "http://viewer:p%40ss@${ip}/snap.jpg", Params: map[string]string{"token": "abc"}}
	r := c.Redacted(camera.DefaultSyntax)
	out, _ := json.Marshal(r)
	for _, secret := range []string{"s3cret", "p%40ss", "abc"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("redacted camera still contains %q: %s", secret, out)
		}
	}
	if r.Streams.High != "rtsp://admin:${password}@${ip}:554/h" || r.Streams.Low != c.Streams.Low || r.Streams.MJPEG != c.Streams.MJPEG {
		t.Errorf("streams %+v", r.Streams)
	}
	if c.Password != "s3cret" || c.Params["token"] != "abc" {
		t.Error("Redacted changed the original")
	}
}
