// Package httpauth performs HTTP requests to cameras with Basic or Digest
// authentication (RFC 7616: MD5, SHA-256, qop=auth or none), as cameras ask.
package httpauth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
)

// ErrUnauthorized is returned when the camera refuses the credentials.
var ErrUnauthorized = errors.New("camera refused the credentials (401)")

// Challenge is a parsed WWW-Authenticate header.
type Challenge struct {
	Scheme    string // "basic" or "digest"
	Realm     string
	Nonce     string
	Opaque    string
	Algorithm string // MD5 (default), MD5-sess, SHA-256, SHA-256-sess
	QOP       []string
	Stale     bool
}

// ParseChallenge parses one WWW-Authenticate value. It accepts quoted and
// bare parameter values, as cameras write both.
func ParseChallenge(h string) (Challenge, error) {
	var c Challenge
	h = strings.TrimSpace(h)
	sp := strings.IndexAny(h, " \t")
	scheme := h
	rest := ""
	if sp >= 0 {
		scheme, rest = h[:sp], h[sp+1:]
	}
	c.Scheme = strings.ToLower(scheme)
	if c.Scheme != "basic" && c.Scheme != "digest" {
		return c, fmt.Errorf("unsupported authentication scheme %q", scheme)
	}
	params, err := parseParams(rest)
	if err != nil {
		return c, err
	}
	c.Realm = params["realm"]
	c.Nonce = params["nonce"]
	c.Opaque = params["opaque"]
	c.Algorithm = params["algorithm"]
	c.Stale = strings.EqualFold(params["stale"], "true")
	for _, q := range strings.Split(params["qop"], ",") {
		if q = strings.TrimSpace(q); q != "" {
			c.QOP = append(c.QOP, q)
		}
	}
	if c.Scheme == "digest" {
		if c.Nonce == "" {
			return c, errors.New("digest challenge without nonce")
		}
		if _, err := hashFor(c.Algorithm); err != nil {
			return c, err
		}
	}
	return c, nil
}

func parseParams(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("malformed challenge parameter near %q", clip(s))
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quoted value for %s", name)
			}
			val, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		out[name] = val
	}
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

func hashFor(alg string) (func() hash.Hash, error) {
	switch strings.ToUpper(strings.TrimSuffix(strings.ToUpper(alg), "-SESS")) {
	case "", "MD5":
		return md5.New, nil
	case "SHA-256":
		return sha256.New, nil
	}
	return nil, fmt.Errorf("unsupported digest algorithm %q", alg)
}

func hexHash(h func() hash.Hash, s string) string {
	x := h()
	io.WriteString(x, s)
	return hex.EncodeToString(x.Sum(nil))
}

// Authorization computes the Authorization header answering c for a request.
// nc is the nonce count (1 for the first use of a nonce).
func (c Challenge) Authorization(method, uri, user, pass string, nc int) (string, error) {
	if c.Scheme == "basic" {
		r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization"), nil
	}
	h, err := hashFor(c.Algorithm)
	if err != nil {
		return "", err
	}
	cnonceRaw := make([]byte, 8)
	_, _ = rand.Read(cnonceRaw)
	cnonce := hex.EncodeToString(cnonceRaw)
	ha1 := hexHash(h, user+":"+c.Realm+":"+pass)
	if strings.HasSuffix(strings.ToUpper(c.Algorithm), "-SESS") {
		ha1 = hexHash(h, ha1+":"+c.Nonce+":"+cnonce)
	}
	ha2 := hexHash(h, method+":"+uri)
	qop := ""
	for _, q := range c.QOP {
		if q == "auth" {
			qop = "auth"
		}
	}
	if len(c.QOP) > 0 && qop == "" {
		return "", fmt.Errorf("digest qop %v not supported (only auth)", c.QOP)
	}
	ncs := fmt.Sprintf("%08x", nc)
	var resp string
	if qop == "" {
		resp = hexHash(h, ha1+":"+c.Nonce+":"+ha2)
	} else {
		resp = hexHash(h, ha1+":"+c.Nonce+":"+ncs+":"+cnonce+":"+qop+":"+ha2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s"`,
		quote(user), quote(c.Realm), quote(c.Nonce), quote(uri), resp)
	if c.Algorithm != "" {
		fmt.Fprintf(&b, ", algorithm=%s", c.Algorithm)
	}
	if c.Opaque != "" {
		fmt.Fprintf(&b, `, opaque="%s"`, quote(c.Opaque))
	}
	if qop != "" {
		fmt.Fprintf(&b, `, qop=%s, nc=%s, cnonce="%s"`, qop, ncs, cnonce)
	}
	return b.String(), nil
}

// strength ranks challenges: Basic sends the password in clear, MD5 is
// weaker than SHA-256.
func strength(c Challenge) int {
	switch {
	case c.Scheme == "basic":
		return 0
	case strings.HasPrefix(strings.ToUpper(c.Algorithm), "SHA-256"):
		return 2
	}
	return 1
}

func quote(s string) string { return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) }

// ReplayBody is a RoundTripper that gives each round trip a fresh copy of
// the request body (from GetBody), so that Do can send a request with a
// body twice: once for the challenge, once with the answer (ONVIF SOAP,
// vendor PTZ PUTs).
type ReplayBody struct{ Next http.RoundTripper }

// RoundTrip sends req on Next (http.DefaultTransport when nil).
func (r ReplayBody) RoundTrip(req *http.Request) (*http.Response, error) {
	next := r.Next
	if next == nil {
		next = http.DefaultTransport
	}
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = body
	}
	return next.RoundTrip(req)
}

// Do sends req; on a 401 it answers the camera's challenge once with
// user/pass. A request with a body needs a client whose transport is a
// ReplayBody, so the body can be sent again.
func Do(client *http.Client, req *http.Request, user, pass string) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || user == "" {
		if err == nil && resp.StatusCode == http.StatusUnauthorized {
			resp.Body.Close()
			return nil, ErrUnauthorized
		}
		return resp, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var ch Challenge
	var perr error
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		c, err := ParseChallenge(h)
		if err != nil {
			perr = err
			continue
		}
		if ch.Scheme == "" || strength(c) > strength(ch) {
			ch = c
		}
	}
	if ch.Scheme == "" {
		if perr == nil {
			perr = errors.New("no WWW-Authenticate challenge")
		}
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, perr)
	}
	auth, err := ch.Authorization(req.Method, req.URL.RequestURI(), user, pass, 1)
	if err != nil {
		return nil, err
	}
	req2 := req.Clone(req.Context())
	req2.Header.Set("Authorization", auth)
	resp, err = client.Do(req2)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return nil, ErrUnauthorized
	}
	return resp, nil
}
