package testbed

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// MJPEGOptions configures MJPEGCamera; zero values mean the defaults noted.
type MJPEGOptions struct {
	Auth               string // "", "basic" or "digest" (MD5, qop=auth)
	User, Pass         string // default "admin"/"secret" when Auth != ""
	Width, Height, FPS int    // default 1280x720 @ 10
	Port               int    // 0 = pick a free port
}

const mjpegBoundary = "testbedframe"

// MJPEGCamera serves GET /mjpeg (multipart/x-mixed-replace, one image/jpeg
// part with Content-Length per frame) and GET /snapshot.jpg (latest frame) to
// any number of clients from 127.0.0.1, fed by one ffmpeg encoding testsrc2.
// ffmpeg's own HTTP output serves a single client, hence this server. It
// returns once the first frame has arrived.
func MJPEGCamera(t testing.TB, o MJPEGOptions) *Camera {
	t.Helper()
	RequireTools(t, "ffmpeg")
	if o.Width <= 0 || o.Height <= 0 {
		o.Width, o.Height = 1280, 720
	}
	if o.FPS <= 0 {
		o.FPS = 10
	}
	auth := &httpAuth{mode: o.Auth, user: o.User, pass: o.Pass, realm: "testbed camera"}
	switch o.Auth {
	case "":
	case "basic", "digest":
		if auth.user == "" {
			auth.user = "admin"
		}
		if auth.pass == "" {
			auth.pass = "secret"
		}
		auth.key = make([]byte, 32)
		_, _ = rand.Read(auth.key)
	default:
		t.Fatalf("testbed: MJPEGCamera: unknown auth %q", o.Auth)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
	if err != nil {
		t.Fatalf("testbed: MJPEGCamera: %v", err)
	}
	out := newTailBuffer(16 << 10)
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
		"-re", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", o.Width, o.Height, o.FPS),
		"-c:v", "mjpeg", "-q:v", "5", "-f", "image2pipe", "-")
	enc, stdout, err := startProcStdout("ffmpeg mjpeg", cmd, out)
	if err != nil {
		ln.Close()
		t.Fatalf("testbed: MJPEGCamera: %v", err)
	}

	hub := newFrameHub()
	splitDone := make(chan struct{})
	go func() {
		defer close(splitDone)
		defer stdout.Close()
		br := bufio.NewReaderSize(stdout, 1<<20)
		for {
			jpg, err := readJPEG(br)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					fmt.Fprintf(out, "testbed: splitting JPEGs: %v\n", err)
				}
				hub.close()
				return
			}
			hub.publish(jpg)
		}
	}()

	mux := http.NewServeMux()
	mux.HandleFunc("/mjpeg", func(w http.ResponseWriter, r *http.Request) {
		if !checkGET(w, r) || !auth.check(w, r) {
			return
		}
		serveMJPEG(w, r, hub)
	})
	mux.HandleFunc("/snapshot.jpg", func(w http.ResponseWriter, r *http.Request) {
		if !checkGET(w, r) || !auth.check(w, r) {
			return
		}
		jpg, _, _ := hub.latest()
		if jpg == nil {
			http.Error(w, "no frame yet", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Length", strconv.Itoa(len(jpg)))
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(jpg)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		_ = srv.Serve(ln)
	}()

	base := "http://" + ln.Addr().String()
	cam := &Camera{
		URL: base + "/mjpeg", User: auth.user, Pass: auth.pass,
		snapshotURL: base + "/snapshot.jpg",
		logs:        []namedLog{{enc.name, out}},
		Stop: stopper(func() {
			hub.close() // ends streaming handlers, which Close does not wait for
			_ = srv.Close()
			<-srvDone
		}, enc.stop, func() { <-splitDone }),
	}
	registerStop(t, cam)

	select {
	case <-hub.first:
	case <-enc.done:
		t.Fatalf("testbed: MJPEGCamera: ffmpeg exited (%v) before the first frame:\n%s", enc.waitErr(), out)
	case <-time.After(15 * time.Second):
		t.Fatalf("testbed: MJPEGCamera: no JPEG from ffmpeg after 15 s:\n%s", out)
	}
	return cam
}

func checkGET(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	return true
}

func serveMJPEG(w http.ResponseWriter, r *http.Request, hub *frameHub) {
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+mjpegBoundary)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	var seen uint64
	for {
		jpg, seq, next := hub.latest()
		if jpg != nil && seq != seen {
			seen = seq
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprintf(w, "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", mjpegBoundary, len(jpg)); err != nil {
				return
			}
			if _, err := w.Write(jpg); err != nil {
				return
			}
			if _, err := io.WriteString(w, "\r\n"); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
		if next == nil {
			return // camera stopped
		}
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
	}
}

// frameHub hands the latest frame to any number of viewers; slow viewers
// skip frames instead of slowing the encoder, as real cameras do.
type frameHub struct {
	mu     sync.Mutex
	frame  []byte
	seq    uint64
	next   chan struct{} // closed and replaced on every frame; nil once closed
	first  chan struct{}
	closed bool
}

func newFrameHub() *frameHub {
	return &frameHub{next: make(chan struct{}), first: make(chan struct{})}
}

func (h *frameHub) publish(jpg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if h.seq == 0 {
		close(h.first)
	}
	h.frame, h.seq = jpg, h.seq+1
	close(h.next)
	h.next = make(chan struct{})
}

// latest returns the current frame, its sequence number and a channel closed
// when a newer frame (or the end) comes; the channel is nil after close.
func (h *frameHub) latest() ([]byte, uint64, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return h.frame, h.seq, nil
	}
	return h.frame, h.seq, h.next
}

func (h *frameHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.next)
	}
}

// readJPEG returns the next complete JPEG (SOI..EOI) from r. It walks the
// marker segments instead of searching for FF D9, which may also occur inside
// table segments; in entropy-coded data FF is always stuffed or a marker.
func readJPEG(r *bufio.Reader) ([]byte, error) {
	// Skip anything before SOI.
	var prev byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if prev == 0xFF && b == 0xD8 {
			break
		}
		prev = b
	}
	buf := []byte{0xFF, 0xD8}
	afterScan := false // the scan loop already consumed the marker's FF
	for {
		// Marker: FF (fill FFs allowed) then the code.
		if !afterScan {
			b, err := r.ReadByte()
			if err != nil {
				return nil, unexpected(err)
			}
			if b != 0xFF {
				return nil, fmt.Errorf("jpeg: expected marker, got %#02x", b)
			}
		}
		afterScan = false
		m := byte(0xFF)
		var err error
		for m == 0xFF {
			if m, err = r.ReadByte(); err != nil {
				return nil, unexpected(err)
			}
		}
		buf = append(buf, 0xFF, m)
		switch {
		case m == 0xD9:
			return buf, nil
		case m == 0x01 || (m >= 0xD0 && m <= 0xD7):
			continue // no length
		}
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return nil, unexpected(err)
		}
		n := int(l[0])<<8 | int(l[1])
		if n < 2 {
			return nil, fmt.Errorf("jpeg: bad segment length %d", n)
		}
		seg := make([]byte, n-2)
		if _, err := io.ReadFull(r, seg); err != nil {
			return nil, unexpected(err)
		}
		buf = append(append(buf, l[:]...), seg...)
		if m != 0xDA {
			continue
		}
		// Entropy-coded data runs to the next marker other than RSTn.
		for {
			b, err := r.ReadByte()
			if err != nil {
				return nil, unexpected(err)
			}
			if b != 0xFF {
				buf = append(buf, b)
				continue
			}
			c, err := r.Peek(1)
			if err != nil {
				return nil, unexpected(err)
			}
			if c[0] == 0x00 || (c[0] >= 0xD0 && c[0] <= 0xD7) {
				_, _ = r.ReadByte()
				buf = append(buf, b, c[0])
				continue
			}
			if c[0] == 0xFF {
				continue // fill byte before a marker
			}
			afterScan = true
			break
		}
	}
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// httpAuth enforces Basic or Digest (RFC 7616, MD5, qop=auth) like an IP
// camera. Nonces are HMACs of their issue time, so any nonce this camera
// issued verifies without server-side state.
type httpAuth struct {
	mode, user, pass, realm string
	key                     []byte
}

func (a *httpAuth) check(w http.ResponseWriter, r *http.Request) bool {
	switch a.mode {
	case "":
		return true
	case "basic":
		u, p, ok := r.BasicAuth()
		if ok && eq(u, a.user) && eq(p, a.pass) {
			return true
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm="%s", charset="UTF-8"`, a.realm))
	case "digest":
		if a.digestOK(r) {
			return true
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(
			`Digest realm="%s", qop="auth", algorithm=MD5, nonce="%s", opaque="%s"`,
			a.realm, a.nonce(), a.opaque()))
	}
	http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
	return false
}

func (a *httpAuth) digestOK(r *http.Request) bool {
	scheme, params := splitChallenge(r.Header.Get("Authorization"))
	if !strings.EqualFold(scheme, "Digest") {
		return false
	}
	p := parseAuthParams(params)
	if alg := p["algorithm"]; alg != "" && !strings.EqualFold(alg, "MD5") {
		return false
	}
	if p["qop"] != "auth" || p["nc"] == "" || p["cnonce"] == "" {
		return false
	}
	if !eq(p["username"], a.user) || p["realm"] != a.realm || !a.validNonce(p["nonce"]) {
		return false
	}
	if o, ok := p["opaque"]; ok && o != a.opaque() {
		return false
	}
	// The digest covers the URI the client sent, which must be this request's.
	if uri := p["uri"]; uri != r.RequestURI && uri != r.URL.RequestURI() {
		return false
	}
	ha1 := md5hex(a.user + ":" + a.realm + ":" + a.pass)
	ha2 := md5hex(r.Method + ":" + p["uri"])
	want := md5hex(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	return eq(strings.ToLower(p["response"]), want)
}

func (a *httpAuth) nonce() string {
	ts := strconv.FormatInt(time.Now().UnixNano(), 16)
	return ts + "." + a.mac(ts)
}

func (a *httpAuth) validNonce(n string) bool {
	ts, mac, ok := strings.Cut(n, ".")
	return ok && eq(mac, a.mac(ts))
}

func (a *httpAuth) opaque() string { return a.mac("opaque") }

func (a *httpAuth) mac(s string) string {
	h := hmac.New(sha256.New, a.key)
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func eq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
