package camera_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// credTemplate is the template FuzzExpand and the round-trip tests check:
// credentials in userinfo, as most RTSP cameras take them.
const credTemplate = "rtsp://${username}:${password}@${ip}:554/x"

func vars(user, pass string) map[string]string {
	return map[string]string{
		"ip": "192.0.2.10", "port": "554", "username": user, "password": pass, "id": "cam1",
		"parameter1": "Streaming/Channels 101",
	}
}

func TestSyntaxValidate(t *testing.T) {
	tests := []struct {
		name   string
		syntax camera.Syntax
		ok     bool
	}{
		{"default", camera.DefaultSyntax, true},
		{"mustache", camera.Syntax{Open: "{{", Close: "}}"}, true},
		{"percent", camera.Syntax{Open: "%", Close: "%"}, true},
		{"empty", camera.Syntax{}, false},
		{"empty open", camera.Syntax{Close: "}"}, false},
		{"empty close", camera.Syntax{Open: "${"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.syntax.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			_, err = tt.syntax.Expand("rtsp://h/x", vars("u", "p"))
			if (err == nil) != tt.ok {
				t.Fatalf("Expand() error = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	mustache := camera.Syntax{Open: "{{", Close: "}}"}
	percent := camera.Syntax{Open: "%", Close: "%"}
	tests := []struct {
		name    string
		syntax  camera.Syntax
		tmpl    string
		user    string
		pass    string
		want    string // exact result when non-empty
		wantErr string // substring of the error when non-empty
	}{
		{name: "no placeholder", tmpl: "rtsp://10.0.0.1/live", want: "rtsp://10.0.0.1/live"},
		{name: "empty template", tmpl: "", want: ""},
		{name: "host and port", tmpl: "rtsp://${ip}:${port}/Streaming/Channels/101", want: "rtsp://192.0.2.10:554/Streaming/Channels/101"},
		{name: "id in path", tmpl: "http://${ip}/cams/${id}.mjpg", want: "http://192.0.2.10/cams/cam1.mjpg"},
		{name: "param escaped in path", tmpl: "rtsp://${ip}/${parameter1}", want: "rtsp://192.0.2.10/Streaming%2FChannels%20101"},
		{name: "plain credentials", tmpl: credTemplate, user: "admin", pass: "secret", want: "rtsp://admin:secret@192.0.2.10:554/x"},
		{name: "password with structure characters", tmpl: credTemplate, user: "admin", pass: "p@ss:w/o?r#d% x",
			want: "rtsp://admin:p%40ss%3Aw%2Fo%3Fr%23d%25%20x@192.0.2.10:554/x"},
		{name: "username with structure characters", tmpl: credTemplate, user: "a:b@c", pass: "p",
			want: "rtsp://a%3Ab%40c:p@192.0.2.10:554/x"},
		{name: "literal user, password placeholder", tmpl: "rtsp://admin:${password}@${ip}/x", pass: "a@b",
			want: "rtsp://admin:a%40b@192.0.2.10/x"},
		{name: "username in query", tmpl: "http://${ip}/snap.cgi?user=${username}&pwd=${password}", user: "ad min&x=1", pass: "a&b=c#d",
			want: "http://192.0.2.10/snap.cgi?user=ad+min%26x%3D1&pwd=a%26b%3Dc%23d"},
		{name: "value is not re-expanded", tmpl: "http://${ip}/?u=${username}", user: "${password}", pass: "secret",
			want: "http://192.0.2.10/?u=%24%7Bpassword%7D"},
		{name: "unknown placeholder", tmpl: "rtsp://${ip}/${channel}", wantErr: "unknown placeholder ${channel}"},
		{name: "empty placeholder name", tmpl: "rtsp://${}/x", wantErr: "unknown placeholder ${}"},
		{name: "unterminated placeholder", tmpl: "rtsp://${ip/x", wantErr: "unterminated placeholder"},
		{name: "unterminated at end", tmpl: "rtsp://h/${", wantErr: "unterminated placeholder"},
		{name: "mustache", syntax: mustache, tmpl: "rtsp://{{username}}:{{password}}@{{ip}}:{{port}}/x", user: "u", pass: "p@",
			want: "rtsp://u:p%40@192.0.2.10:554/x"},
		{name: "mustache leaves dollar-brace alone", syntax: mustache, tmpl: "rtsp://{{ip}}/${ip}", want: "rtsp://192.0.2.10/${ip}"},
		{name: "mustache unknown", syntax: mustache, tmpl: "rtsp://{{host}}/", wantErr: "unknown placeholder {{host}}"},
		{name: "mustache unterminated", syntax: mustache, tmpl: "rtsp://{{ip}/", wantErr: "unterminated placeholder"},
		{name: "percent", syntax: percent, tmpl: "rtsp://%ip%:%port%/%id%", want: "rtsp://192.0.2.10:554/cam1"},
		{name: "percent unterminated", syntax: percent, tmpl: "rtsp://%ip%/%id", wantErr: "unterminated placeholder"},
		{name: "empty syntax", syntax: camera.Syntax{Open: "", Close: ""}, tmpl: "rtsp://x/", wantErr: "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			syntax := tt.syntax
			if syntax == (camera.Syntax{}) && tt.name != "empty syntax" {
				syntax = camera.DefaultSyntax
			}
			got, err := syntax.Expand(tt.tmpl, vars(tt.user, tt.pass))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Expand(%q) = %q, %v; want error containing %q", tt.tmpl, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Expand(%q): %v", tt.tmpl, err)
			}
			if got != tt.want {
				t.Fatalf("Expand(%q) = %q, want %q", tt.tmpl, got, tt.want)
			}
			if _, err := url.Parse(got); err != nil {
				t.Fatalf("result %q does not parse: %v", got, err)
			}
		})
	}
}

// TestExpandUserinfoRoundTrip: whatever the credentials, the expanded URL
// parses and gives them back unchanged.
func TestExpandUserinfoRoundTrip(t *testing.T) {
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	creds := []struct{ user, pass string }{
		{"admin", "p@ss word"},
		{"admin", "@:/?#%"},
		{"admin", " :@/?#% "},
		{"admin", "%41%"},   // must not be decoded as 'A'
		{"admin", "+a+b+"},  // '+' is not a space in userinfo
		{"admin", `p"q[r]`}, // characters net/url refuses literally in userinfo
		{"admin", "{a}|^`<>\\"},
		{"admin", "ünïcödé密码"},
		{"admin", "tab\tnl\nnul\x00del\x7f"},
		{"admin", "\xff\xfe invalid utf-8"},
		{"admin", ""},
		{"", "only-password"},
		{"us:er@x", "p:w"},
		{"user name", "!$&'()*+,;=-._~"},
		{"admin", string(every)},
		{string(every), "x"},
	}
	for _, c := range creds {
		s, err := camera.DefaultSyntax.Expand(credTemplate, vars(c.user, c.pass))
		if err != nil {
			t.Fatalf("Expand(user %q, pass %q): %v", c.user, c.pass, err)
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", s, err)
		}
		pass, ok := u.User.Password()
		if u.User.Username() != c.user || !ok || pass != c.pass {
			t.Fatalf("credentials %q/%q came back as %q/%q (set=%v) from %q", c.user, c.pass, u.User.Username(), pass, ok, s)
		}
		if u.Host != "192.0.2.10:554" || u.Path != "/x" {
			t.Fatalf("credentials %q/%q changed the URL structure: host %q path %q", c.user, c.pass, u.Host, u.Path)
		}
	}
}

// TestExpandQueryRoundTrip: credentials passed as query parameters (snapshot
// CGIs) come back unchanged and cannot add parameters.
func TestExpandQueryRoundTrip(t *testing.T) {
	tmpl := "http://${ip}/cgi-bin/snapshot.cgi?user=${username}&pwd=${password}&chn=1"
	for _, c := range []struct{ user, pass string }{
		{"admin", "a&chn=2"},
		{"ad min", "p@ss#frag?q=1"},
		{"x+y", "100% sure"},
		{"ünï", "=;,/"},
	} {
		s, err := camera.DefaultSyntax.Expand(tmpl, vars(c.user, c.pass))
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", s, err)
		}
		q := u.Query()
		if q.Get("user") != c.user || q.Get("pwd") != c.pass || len(q["chn"]) != 1 || q.Get("chn") != "1" || u.Fragment != "" {
			t.Fatalf("%q/%q: query came back as %v, fragment %q (from %q)", c.user, c.pass, q, u.Fragment, s)
		}
	}
}

func FuzzExpand(f *testing.F) {
	f.Add(credTemplate, "admin", "secret")
	f.Add(credTemplate, "admin", "p@ss:w/o?r#d% x")
	f.Add(credTemplate, "a:b@c", "%zz%41")
	f.Add(credTemplate, "ünï", "\x00\xff\"[]")
	f.Add("rtsp://${ip}:${port}/Streaming/Channels/101", "", "")
	f.Add("http://${ip}/snap.cgi?user=${username}&pwd=${password}", "ad min", "a&b=c")
	f.Add("rtsp://${ip", "u", "p")
	f.Add("rtsp://${nope}/", "u", "p")
	f.Add("${username}${password}${ip}", "u", "p")
	f.Add("${}", "", "")
	f.Add("rtsp://x@${username}/${password}?${id}#${port}", "@", "/")
	f.Fuzz(func(t *testing.T, tmpl, user, pass string) {
		v := vars(user, pass)
		for _, syntax := range []camera.Syntax{camera.DefaultSyntax, {Open: "%", Close: "%"}, {Open: "{{", Close: "}}"}} {
			if s, err := syntax.Expand(tmpl, v); err == nil {
				_, _ = url.Parse(s) // must not panic either
			}
		}
		// The credentials property holds for every user and pass, so it is
		// checked on the credentials template whatever tmpl the fuzzer chose
		// (when tmpl is that template, this is the same check).
		s, err := camera.DefaultSyntax.Expand(credTemplate, v)
		if err != nil {
			t.Fatalf("Expand(%q): %v", credTemplate, err)
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", s, err)
		}
		p, ok := u.User.Password()
		if u.User.Username() != user || !ok || p != pass {
			t.Fatalf("user %q pass %q came back as %q %q (%v) from %q", user, pass, u.User.Username(), p, ok, s)
		}
		if u.Hostname() != "192.0.2.10" || u.Port() != "554" || u.Path != "/x" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("credentials changed the URL structure: %q", s)
		}
	})
}
