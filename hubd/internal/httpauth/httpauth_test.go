package httpauth

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		name string
		h    string
		want Challenge
		err  string
	}{
		{name: "digest quoted", h: `Digest realm="IP Camera(12345)", nonce="abc123", qop="auth", opaque="xyz"`,
			want: Challenge{Scheme: "digest", Realm: "IP Camera(12345)", Nonce: "abc123", Opaque: "xyz", QOP: []string{"auth"}}},
		{name: "digest unquoted", h: `Digest realm=cam, nonce=abc123, qop=auth, algorithm=MD5, stale=TRUE`,
			want: Challenge{Scheme: "digest", Realm: "cam", Nonce: "abc123", Algorithm: "MD5", QOP: []string{"auth"}, Stale: true}},
		{name: "digest mixed, no spaces", h: `Digest realm="a b",nonce=n1,opaque="",stale=false`,
			want: Challenge{Scheme: "digest", Realm: "a b", Nonce: "n1"}},
		{name: "scheme case and padding", h: "  DIGEST \tRealm = \"r\" ,\tNONCE=\"n\"  ",
			want: Challenge{Scheme: "digest", Realm: "r", Nonce: "n"}},
		{name: "qop list", h: `Digest realm="r", nonce="n", qop="auth,auth-int"`,
			want: Challenge{Scheme: "digest", Realm: "r", Nonce: "n", QOP: []string{"auth", "auth-int"}}},
		{name: "qop list with spaces", h: `Digest realm="r", nonce="n", qop=" auth-int , auth ,"`,
			want: Challenge{Scheme: "digest", Realm: "r", Nonce: "n", QOP: []string{"auth-int", "auth"}}},
		{name: "SHA-256", h: `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			want: Challenge{Scheme: "digest", Realm: "http-auth@example.org", Nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
				Opaque: "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", Algorithm: "SHA-256", QOP: []string{"auth", "auth-int"}}},
		{name: "SHA-256-sess", h: `Digest realm="r", nonce="n", algorithm="SHA-256-sess"`,
			want: Challenge{Scheme: "digest", Realm: "r", Nonce: "n", Algorithm: "SHA-256-sess"}},
		{name: "MD5-sess", h: `Digest realm="r", nonce="n", algorithm=MD5-sess, qop=auth`,
			want: Challenge{Scheme: "digest", Realm: "r", Nonce: "n", Algorithm: "MD5-sess", QOP: []string{"auth"}}},
		{name: "lowercase algorithm", h: `Digest realm="r", nonce="n", algorithm=md5-sess`,
			want: Challenge{Scheme: "digest", Realm: "r", Nonce: "n", Algorithm: "md5-sess"}},
		{name: "escaped quote in realm", h: `Digest realm="say \"cheese\" \\o/", nonce="n"`,
			want: Challenge{Scheme: "digest", Realm: `say "cheese" \o/`, Nonce: "n"}},
		{name: "comma inside quotes", h: `Digest realm="a, b=c", nonce="n,1"`,
			want: Challenge{Scheme: "digest", Realm: "a, b=c", Nonce: "n,1"}},
		{name: "unknown params ignored", h: `Digest realm="r", domain="/ http://x/", nonce="n", userhash=false, charset=UTF-8`,
			want: Challenge{Scheme: "digest", Realm: "r", Nonce: "n"}},
		{name: "basic", h: `Basic realm="IP Camera"`, want: Challenge{Scheme: "basic", Realm: "IP Camera"}},
		{name: "basic with charset", h: `Basic realm="cam", charset="UTF-8"`, want: Challenge{Scheme: "basic", Realm: "cam"}},
		{name: "basic bare", h: `Basic`, want: Challenge{Scheme: "basic"}},

		{name: "empty", h: "", err: "unsupported authentication scheme"},
		{name: "unknown scheme", h: `Bearer realm="api"`, err: `unsupported authentication scheme "Bearer"`},
		{name: "negotiate", h: `Negotiate`, err: "unsupported"},
		{name: "missing nonce", h: `Digest realm="r", qop="auth"`, err: "without nonce"},
		{name: "empty nonce", h: `Digest realm="r", nonce=""`, err: "without nonce"},
		{name: "unterminated quote", h: `Digest nonce=n, realm="r`, err: "unterminated quoted value for realm"},
		{name: "unterminated quote swallows the next param", h: `Digest realm="r, nonce="n`, err: "malformed"},
		{name: "unterminated quote at end", h: `Digest realm="r", nonce="`, err: "unterminated quoted value for nonce"},
		{name: "escape at end", h: `Digest realm="r", nonce="n\`, err: "unterminated"},
		{name: "param without value at end", h: `Digest nonce="n", realm`, err: "malformed challenge parameter"},
		{name: "param without value swallows the next", h: `Digest realm, nonce="n"`, err: "without nonce"},
		{name: "param without name", h: `Digest ="x", nonce="n"`, err: "malformed"},
		{name: "unsupported algorithm", h: `Digest realm="r", nonce="n", algorithm=SHA-512-256`, err: "unsupported digest algorithm"},
		{name: "token68 basic", h: `Basic dXNlcjpwYXNz`, err: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChallenge(tt.h)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseChallenge(%q) = %+v, %v; want an error containing %q", tt.h, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseChallenge(%q): %v", tt.h, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseChallenge(%q) =\n%+v\nwant\n%+v", tt.h, got, tt.want)
			}
		})
	}
}

// parseAuth parses the parameters of an Authorization header the way a
// server does, independently of parseParams.
func parseAuth(h string) (scheme string, p map[string]string, err error) {
	scheme, rest, _ := strings.Cut(h, " ")
	p = map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		name, after, ok := strings.Cut(rest, "=")
		if !ok {
			return "", nil, fmt.Errorf("no '=' in %q", rest)
		}
		name = strings.TrimSpace(name)
		var val strings.Builder
		if strings.HasPrefix(after, `"`) {
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' {
					if i++; i == len(after) {
						break
					}
				}
				val.WriteByte(after[i])
			}
			if i >= len(after) {
				return "", nil, fmt.Errorf("unterminated value of %s", name)
			}
			rest = after[i+1:]
		} else {
			v, r, found := strings.Cut(after, ",")
			val.WriteString(strings.TrimSpace(v))
			rest = ""
			if found {
				rest = "," + r
			}
		}
		if _, dup := p[name]; dup {
			return "", nil, fmt.Errorf("parameter %s twice", name)
		}
		p[name] = val.String()
		rest = strings.TrimSpace(rest)
		if rest != "" && !strings.HasPrefix(rest, ",") {
			return "", nil, fmt.Errorf("no comma before %q", rest)
		}
		rest = strings.TrimSpace(strings.TrimPrefix(rest, ","))
	}
	return scheme, p, nil
}

func authParams(t testing.TB, h string) (scheme string, p map[string]string) {
	t.Helper()
	scheme, p, err := parseAuth(h)
	if err != nil {
		t.Fatalf("Authorization %q: %v", h, err)
	}
	return scheme, p
}

// expectedResponse computes a Digest response per RFC 7616 section 3.4.1
// (and RFC 2069 without qop) from the fields an Authorization carries.
func expectedResponse(alg, user, realm, pass, method, uri, nonce, nc, cnonce, qop string) string {
	var newHash func() hash.Hash = md5.New
	if strings.HasPrefix(strings.ToUpper(alg), "SHA-256") {
		newHash = sha256.New
	}
	H := func(s string) string {
		h := newHash()
		io.WriteString(h, s)
		return hex.EncodeToString(h.Sum(nil))
	}
	ha1 := H(user + ":" + realm + ":" + pass)
	if strings.HasSuffix(strings.ToUpper(alg), "-SESS") {
		ha1 = H(ha1 + ":" + nonce + ":" + cnonce)
	}
	ha2 := H(method + ":" + uri)
	if qop == "" {
		return H(ha1 + ":" + nonce + ":" + ha2)
	}
	return H(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2)
}

// TestExpectedResponseKnownAnswers checks the test's own verifier against the
// RFCs' examples, so that it can be trusted to judge Authorization.
func TestExpectedResponseKnownAnswers(t *testing.T) {
	tests := []struct{ got, want string }{
		// RFC 2617 section 3.5.
		{expectedResponse("", "Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
			"dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b", "auth"), "6629fae49393a05397450978507c4ef1"},
		// RFC 7616 section 3.9.1, MD5 and SHA-256.
		{expectedResponse("MD5", "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html",
			"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth"),
			"8ca523f5e9506fed4657c9700eebdbec"},
		{expectedResponse("SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html",
			"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth"),
			"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
		// RFC 2069 section 2.4 (as corrected by its errata).
		{expectedResponse("", "Mufasa", "testrealm@host.com", "CircleOfLife", "GET", "/dir/index.html",
			"dcd98b7102dd2f0e8b11d0f600bfb0c093", "", "", ""), "1949323746fe6a43ef61f9606e7febea"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("example %d: %s, want %s", i, tt.got, tt.want)
		}
	}
}

func TestAuthorizationRFC2069KnownAnswer(t *testing.T) {
	c, err := ParseChallenge(`Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Authorization("GET", "/dir/index.html", "Mufasa", "CircleOfLife", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := `Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", ` +
		`response="1949323746fe6a43ef61f9606e7febea", opaque="5ccc069c403ebaf9f0171e9517f40e41"`
	if h != want {
		t.Fatalf("Authorization =\n%s\nwant\n%s", h, want)
	}
}

func TestAuthorizationDigest(t *testing.T) {
	tests := []struct {
		name      string
		challenge string
		user      string
		pass      string
		method    string
		uri       string
		nc        int
		qop       string // expected qop in the answer
	}{
		{"MD5 qop=auth", `Digest realm="IP Camera(C1234)", nonce="4e6a5a2b3c", qop="auth", opaque="op1"`, "admin", "12345", "GET", "/ISAPI/Streaming/channels/101/picture", 1, "auth"},
		{"MD5 qop list", `Digest realm="cam", nonce="n", qop="auth,auth-int"`, "admin", "pw", "GET", "/video.cgi?resolution=640x480&x=1", 1, "auth"},
		{"MD5 qop list auth last", `Digest realm="cam", nonce="n", qop="auth-int, auth"`, "admin", "pw", "GET", "/", 2, "auth"},
		{"no qop (RFC 2069)", `Digest realm="cam", nonce="n"`, "admin", "pw", "GET", "/mjpeg", 1, ""},
		{"SHA-256", `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			"Mufasa", "Circle of Life", "GET", "/dir/index.html", 1, "auth"},
		{"MD5-sess", `Digest realm="cam", nonce="n", qop=auth, algorithm=MD5-sess`, "admin", "pw", "GET", "/", 1, "auth"},
		{"SHA-256-sess", `Digest realm="cam", nonce="n", qop=auth, algorithm=SHA-256-sess`, "admin", "pw", "GET", "/", 7, "auth"},
		{"quotes in user and realm", `Digest realm="the \"cam\"", nonce="n", qop=auth`, `ad"min\`, `p@ss:"w`, "GET", "/", 1, "auth"},
		{"nc in hex", `Digest realm="cam", nonce="n", qop=auth`, "admin", "pw", "GET", "/", 255, "auth"},
		{"other method", `Digest realm="cam", nonce="n", qop=auth`, "admin", "pw", "DESCRIBE", "rtsp://10.0.0.1/live", 3, "auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseChallenge(tt.challenge)
			if err != nil {
				t.Fatal(err)
			}
			h, err := c.Authorization(tt.method, tt.uri, tt.user, tt.pass, tt.nc)
			if err != nil {
				t.Fatalf("Authorization: %v", err)
			}
			scheme, p := authParams(t, h)
			if scheme != "Digest" {
				t.Fatalf("scheme %q in %q", scheme, h)
			}
			if p["username"] != tt.user || p["realm"] != c.Realm || p["nonce"] != c.Nonce || p["uri"] != tt.uri || p["opaque"] != c.Opaque {
				t.Fatalf("fields do not echo the challenge: %q", h)
			}
			if p["algorithm"] != c.Algorithm {
				t.Fatalf("algorithm %q, want %q", p["algorithm"], c.Algorithm)
			}
			if p["qop"] != tt.qop {
				t.Fatalf("qop %q, want %q (%q)", p["qop"], tt.qop, h)
			}
			if tt.qop == "" {
				if _, ok := p["nc"]; ok || p["cnonce"] != "" {
					t.Fatalf("RFC 2069 answer carries nc or cnonce: %q", h)
				}
			} else {
				if p["nc"] != fmt.Sprintf("%08x", tt.nc) {
					t.Fatalf("nc %q for %d", p["nc"], tt.nc)
				}
				if len(p["cnonce"]) < 8 {
					t.Fatalf("cnonce %q too short", p["cnonce"])
				}
			}
			want := expectedResponse(p["algorithm"], p["username"], p["realm"], tt.pass, tt.method, p["uri"], p["nonce"], p["nc"], p["cnonce"], p["qop"])
			if p["response"] != want {
				t.Fatalf("response %q, want %q (header %q)", p["response"], want, h)
			}
			if strings.Contains(h, tt.pass) && tt.pass != "" {
				t.Fatalf("the password is in the header: %q", h)
			}
			// Each answer uses a fresh cnonce.
			if tt.qop != "" {
				h2, _ := c.Authorization(tt.method, tt.uri, tt.user, tt.pass, tt.nc)
				if _, p2 := authParams(t, h2); p2["cnonce"] == p["cnonce"] {
					t.Fatalf("cnonce %q reused", p["cnonce"])
				}
			}
		})
	}
}

func TestAuthorizationErrors(t *testing.T) {
	c, err := ParseChallenge(`Digest realm="r", nonce="n", qop="auth-int"`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authorization("GET", "/", "u", "p", 1); err == nil || !strings.Contains(err.Error(), "qop") {
		t.Fatalf("auth-int only: %v, want a qop error", err)
	}
	bad := Challenge{Scheme: "digest", Realm: "r", Nonce: "n", Algorithm: "SHA-512"}
	if _, err := bad.Authorization("GET", "/", "u", "p", 1); err == nil {
		t.Fatal("SHA-512 accepted")
	}
}

func TestAuthorizationBasic(t *testing.T) {
	c, err := ParseChallenge(`Basic realm="cam"`)
	if err != nil {
		t.Fatal(err)
	}
	for _, cr := range []struct{ user, pass string }{{"admin", "12345"}, {"ad:min", "p@ss:w\"ord ü"}, {"", ""}} {
		h, err := c.Authorization("GET", "/", cr.user, cr.pass, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(cr.user+":"+cr.pass))
		if h != want {
			t.Fatalf("Authorization = %q, want %q", h, want)
		}
	}
}

// camera is an httptest camera that checks Basic or Digest credentials the
// way a server does: it recomputes the Digest response with its password.
type camera struct {
	user, pass string
	challenges []string // WWW-Authenticate values of a 401
	realm      string
	nonce      string
	algorithm  string

	mu       sync.Mutex
	requests int
	schemes  []string // scheme of each Authorization received ("" for none)
}

func (c *camera) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	auth := r.Header.Get("Authorization")
	scheme, _, _ := strings.Cut(auth, " ")
	c.mu.Lock()
	c.schemes = append(c.schemes, scheme)
	c.mu.Unlock()
	if c.check(r, auth) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "picture")
		return
	}
	for _, ch := range c.challenges {
		w.Header().Add("WWW-Authenticate", ch)
	}
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, "401 Unauthorized")
}

func (c *camera) check(r *http.Request, auth string) bool {
	if c.challenges == nil {
		return true // an open camera
	}
	offered := func(scheme string) bool {
		for _, ch := range c.challenges {
			if strings.HasPrefix(strings.ToLower(ch), scheme) {
				return true
			}
		}
		return false
	}
	if user, pass, ok := r.BasicAuth(); ok {
		return offered("basic") && user == c.user && pass == c.pass
	}
	if !strings.HasPrefix(auth, "Digest ") || !offered("digest") {
		return false
	}
	_, p, err := parseAuth(auth)
	if err != nil {
		return false
	}
	if p["username"] != c.user || p["realm"] != c.realm || p["nonce"] != c.nonce || p["uri"] != r.RequestURI || p["algorithm"] != c.algorithm {
		return false
	}
	return p["response"] == expectedResponse(p["algorithm"], c.user, c.realm, c.pass, r.Method, r.RequestURI, c.nonce, p["nc"], p["cnonce"], p["qop"])
}

// newCamera starts c, its challenges made by challenges (nil: an open camera).
func newCamera(t *testing.T, c *camera, challenges func(c *camera) []string) *httptest.Server {
	if c.realm == "" {
		c.realm = "IP Camera(C1234)"
	}
	if c.nonce == "" {
		c.nonce = "4e6a5a2b3c4d5e6f"
	}
	if challenges != nil {
		c.challenges = challenges(c)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want 127.0.0.1", srv.URL)
	}
	return srv
}

func get(t *testing.T, srv *httptest.Server, path, user, pass string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test", "kept")
	resp, err := Do(srv.Client(), req, user, pass)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

func TestDo(t *testing.T) {
	digest := func(c *camera) string {
		return fmt.Sprintf(`Digest realm="%s", nonce="%s", qop="auth", opaque="o1"`, c.realm, c.nonce)
	}
	tests := []struct {
		name       string
		cam        *camera
		challenges func(c *camera) []string
		user, pass string
		path       string
		wantErr    error  // nil means 200
		errText    string // substring of another error
		requests   int
		schemes    []string
	}{
		{name: "digest right credentials", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{digest(c)} },
			user:       "admin", pass: "12345", requests: 2, schemes: []string{"", "Digest"}},
		{name: "digest with query", cam: &camera{user: "admin", pass: "p@ss:w/rd"},
			challenges: func(c *camera) []string { return []string{digest(c)} },
			user:       "admin", pass: "p@ss:w/rd", path: "/cgi-bin/mjpg/video.cgi?channel=1&subtype=1", requests: 2, schemes: []string{"", "Digest"}},
		{name: "digest without qop", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string {
				return []string{fmt.Sprintf(`Digest realm="%s", nonce="%s"`, c.realm, c.nonce)}
			},
			user: "admin", pass: "12345", requests: 2, schemes: []string{"", "Digest"}},
		{name: "digest SHA-256", cam: &camera{user: "admin", pass: "12345", algorithm: "SHA-256"},
			challenges: func(c *camera) []string {
				return []string{fmt.Sprintf(`Digest realm="%s", nonce="%s", qop=auth, algorithm=SHA-256`, c.realm, c.nonce)}
			},
			user: "admin", pass: "12345", requests: 2, schemes: []string{"", "Digest"}},
		{name: "digest MD5-sess", cam: &camera{user: "admin", pass: "12345", algorithm: "MD5-sess"},
			challenges: func(c *camera) []string {
				return []string{fmt.Sprintf(`Digest realm="%s", nonce="%s", qop=auth, algorithm=MD5-sess`, c.realm, c.nonce)}
			},
			user: "admin", pass: "12345", requests: 2, schemes: []string{"", "Digest"}},
		{name: "digest wrong password", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{digest(c)} },
			user:       "admin", pass: "54321", wantErr: ErrUnauthorized, requests: 2, schemes: []string{"", "Digest"}},
		{name: "digest wrong user", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{digest(c)} },
			user:       "root", pass: "12345", wantErr: ErrUnauthorized, requests: 2},
		{name: "no credentials", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{digest(c)} },
			wantErr:    ErrUnauthorized, requests: 1, schemes: []string{""}},
		{name: "basic only", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{`Basic realm="cam"`} },
			user:       "admin", pass: "12345", requests: 2, schemes: []string{"", "Basic"}},
		{name: "basic wrong password", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{`Basic realm="cam"`} },
			user:       "admin", pass: "nope", wantErr: ErrUnauthorized, requests: 2, schemes: []string{"", "Basic"}},
		{name: "basic then digest offered: digest", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{`Basic realm="cam"`, digest(c)} },
			user:       "admin", pass: "12345", requests: 2, schemes: []string{"", "Digest"}},
		{name: "digest then basic offered: digest", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{digest(c), `Basic realm="cam"`} },
			user:       "admin", pass: "12345", requests: 2, schemes: []string{"", "Digest"}},
		{name: "unknown scheme skipped", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{`Negotiate`, digest(c)} },
			user:       "admin", pass: "12345", requests: 2, schemes: []string{"", "Digest"}},
		{name: "only unsupported challenges", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{`Negotiate`, `Digest realm="r"`} },
			user:       "admin", pass: "12345", wantErr: ErrUnauthorized, requests: 1},
		{name: "401 without challenge", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string { return []string{} },
			user:       "admin", pass: "12345", wantErr: ErrUnauthorized, requests: 1},
		{name: "auth-int only", cam: &camera{user: "admin", pass: "12345"},
			challenges: func(c *camera) []string {
				return []string{fmt.Sprintf(`Digest realm="%s", nonce="%s", qop="auth-int"`, c.realm, c.nonce)}
			},
			user: "admin", pass: "12345", errText: "qop", requests: 1},
		{name: "open camera", cam: &camera{}, user: "admin", pass: "12345", requests: 1, schemes: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCamera(t, tt.cam, tt.challenges)
			path := tt.path
			if path == "" {
				path = "/ISAPI/Streaming/channels/101/picture"
			}
			resp, err := get(t, srv, path, tt.user, tt.pass)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Do() error %v, want %v", err, tt.wantErr)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Do() error %v, want one containing %q", err, tt.errText)
				}
			default:
				if err != nil {
					t.Fatalf("Do(): %v", err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || string(body) != "picture" {
					t.Fatalf("Do() = %s %q", resp.Status, body)
				}
			}
			tt.cam.mu.Lock()
			defer tt.cam.mu.Unlock()
			if tt.cam.requests != tt.requests {
				t.Fatalf("%d requests, want %d", tt.cam.requests, tt.requests)
			}
			if tt.schemes != nil && !reflect.DeepEqual(tt.cam.schemes, tt.schemes) {
				t.Fatalf("Authorization schemes %q, want %q", tt.cam.schemes, tt.schemes)
			}
		})
	}
}

// TestDoPassesOtherStatuses: only a 401 is answered; other statuses and the
// request's own headers go through.
func TestDoPassesOtherStatuses(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Test")+"|"+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	resp, err := get(t, srv, "/missing", "u", "p")
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("404 page: %v, %v", resp, err)
	}
	resp, err = get(t, srv, "/x", "u", "p")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/x: %v, %v", resp, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"kept|", "kept|", "kept|Basic dTpw"}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("requests %q, want %q", seen, want)
	}
}

func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{
		`Digest realm="IP Camera(12345)", nonce="abc123", qop="auth", opaque="xyz"`,
		`Digest realm=cam, nonce=abc123, qop=auth, algorithm=MD5, stale=TRUE`,
		`Digest realm="r", nonce="n", qop="auth,auth-int", algorithm=SHA-256`,
		`Digest realm="r", nonce="n", algorithm=MD5-sess, qop=auth`,
		`Digest realm="say \"cheese\"", nonce="n"`,
		`Digest realm="r, nonce="n`,
		`Digest realm="r", nonce="n\`,
		`Digest ="x"`,
		`Basic realm="IP Camera"`,
		`Bearer realm="api"`,
		``, ` `, `Digest`, `Digest ,,,`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := ParseChallenge(h)
		if err != nil {
			return
		}
		switch c.Scheme {
		case "basic":
		case "digest":
			if c.Nonce == "" {
				t.Fatalf("digest challenge without nonce accepted: %q", h)
			}
		default:
			t.Fatalf("scheme %q accepted", c.Scheme)
		}
		// Whatever the camera sent, the answer echoes it without letting a
		// value break out of its quotes.
		a, err := c.Authorization("GET", "/x", `us"er`, "pw", 1)
		if err != nil {
			return
		}
		if c.Scheme != "digest" {
			return
		}
		_, p := authParams(t, a)
		if p["realm"] != c.Realm || p["nonce"] != c.Nonce || p["opaque"] != c.Opaque || p["username"] != `us"er` || p["uri"] != "/x" {
			t.Fatalf("answer %q does not echo challenge %+v", a, c)
		}
	})
}
