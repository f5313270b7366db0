package testbed

import (
	"bufio"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RTSPDescribe sends DESCRIBE to rawURL by hand, answering one 401 challenge
// (Basic or Digest) with user/pass when user is not empty, and returns the
// final status code and body (the SDP on 200). Credentials in rawURL are used
// when user is empty. Being independent of any RTSP library, it also serves
// as a readiness probe and as a second opinion in tests.
func RTSPDescribe(rawURL, user, pass string, timeout time.Duration) (status int, body string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, "", err
	}
	if user == "" && u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	u.User = nil
	reqURL := u.String()
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "554")
	}
	conn, err := net.DialTimeout("tcp", host, timeout)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	r := textproto.NewReader(bufio.NewReader(conn))

	send := func(cseq int, authz string) (int, textproto.MIMEHeader, string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, "DESCRIBE %s RTSP/1.0\r\nCSeq: %d\r\nAccept: application/sdp\r\nUser-Agent: zipnvr-testbed\r\n", reqURL, cseq)
		if authz != "" {
			fmt.Fprintf(&b, "Authorization: %s\r\n", authz)
		}
		b.WriteString("\r\n")
		if _, err := io.WriteString(conn, b.String()); err != nil {
			return 0, nil, "", err
		}
		return readRTSPResponse(r)
	}

	status, hdr, body, err := send(1, "")
	if err != nil || status != 401 || user == "" {
		return status, body, err
	}
	authz, err := authorization(hdr.Values("Www-Authenticate"), "DESCRIBE", reqURL, user, pass)
	if err != nil {
		return status, body, err
	}
	status, _, body, err = send(2, authz)
	return status, body, err
}

func readRTSPResponse(r *textproto.Reader) (int, textproto.MIMEHeader, string, error) {
	line, err := r.ReadLine()
	if err != nil {
		return 0, nil, "", fmt.Errorf("read status line: %w", err)
	}
	proto, rest, _ := strings.Cut(line, " ")
	codeStr, _, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeStr)
	if !strings.HasPrefix(proto, "RTSP/") || err != nil {
		return 0, nil, "", fmt.Errorf("bad status line %q", line)
	}
	hdr, err := r.ReadMIMEHeader()
	if err != nil {
		return code, hdr, "", fmt.Errorf("read headers: %w", err)
	}
	var body []byte
	if cl := hdr.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > 1<<20 {
			return code, hdr, "", fmt.Errorf("bad Content-Length %q", cl)
		}
		body = make([]byte, n)
		if _, err := io.ReadFull(r.R, body); err != nil {
			return code, hdr, "", fmt.Errorf("read body: %w", err)
		}
	}
	return code, hdr, string(body), nil
}

// authorization answers the strongest challenge among WWW-Authenticate
// values: Digest (RFC 7616 MD5, with qop=auth when offered) over Basic.
func authorization(challenges []string, method, uri, user, pass string) (string, error) {
	var basic bool
	for _, c := range challenges {
		scheme, params := splitChallenge(c)
		switch strings.ToLower(scheme) {
		case "digest":
			p := parseAuthParams(params)
			if a := p["algorithm"]; a != "" && !strings.EqualFold(a, "MD5") {
				continue
			}
			return digestAuthorization(p, method, uri, user, pass), nil
		case "basic":
			basic = true
		}
	}
	if basic {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)), nil
	}
	return "", fmt.Errorf("no supported challenge in %q", challenges)
}

func digestAuthorization(p map[string]string, method, uri, user, pass string) string {
	realm, nonce := p["realm"], p["nonce"]
	ha1 := md5hex(user + ":" + realm + ":" + pass)
	ha2 := md5hex(method + ":" + uri)
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username="%s", realm="%s", nonce="%s", uri="%s"`, user, realm, nonce, uri)
	if hasToken(p["qop"], "auth") {
		var c [8]byte
		_, _ = rand.Read(c[:])
		cnonce, nc := hex.EncodeToString(c[:]), "00000001"
		fmt.Fprintf(&b, `, qop=auth, nc=%s, cnonce="%s", response="%s"`, nc, cnonce,
			md5hex(ha1+":"+nonce+":"+nc+":"+cnonce+":auth:"+ha2))
	} else {
		fmt.Fprintf(&b, `, response="%s"`, md5hex(ha1+":"+nonce+":"+ha2))
	}
	if p["algorithm"] != "" {
		b.WriteString(", algorithm=MD5")
	}
	if o, ok := p["opaque"]; ok {
		fmt.Fprintf(&b, `, opaque="%s"`, o)
	}
	return b.String()
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// hasToken reports whether the comma-separated list contains tok.
func hasToken(list, tok string) bool {
	for _, f := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(f), tok) {
			return true
		}
	}
	return false
}

func splitChallenge(s string) (scheme, params string) {
	s = strings.TrimSpace(s)
	scheme, params, _ = strings.Cut(s, " ")
	return scheme, strings.TrimSpace(params)
}

// parseAuthParams parses `k=v, k2="quoted, \"v\""` as used by both
// WWW-Authenticate and Authorization; keys are lower-cased.
func parseAuthParams(s string) map[string]string {
	m := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return m
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return m
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val strings.Builder
		if strings.HasPrefix(s, `"`) {
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[min(i+1, len(s)):]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val.WriteString(strings.TrimSpace(s[:end]))
			s = s[end:]
		}
		m[key] = val.String()
	}
}
