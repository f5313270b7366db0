package media

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jsonErr fails the test unless resp is status with a JSON error body.
func jsonErr(t *testing.T, what string, resp *http.Response, status int) {
	t.Helper()
	defer resp.Body.Close()
	var e struct{ Error string }
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &e) != nil || e.Error == "" {
		t.Fatalf("%s: %d %q %s; want %d with a JSON error", what, resp.StatusCode, resp.Header.Get("Content-Type"), b, status)
	}
}

func TestLocalHandler(t *testing.T) {
	// Served directly (no ServeMux cleaning paths) to see raw paths.
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String() + "/media/" // a trailing slash is fine
	l, err := NewLocal(LocalConfig{Dir: t.TempDir(), BaseURL: base, Secret: secret()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = l.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	body := randBytes(1000)
	pp, err := l.PresignPut(ctxT(t), "t/c/a.mp4", 1000, "video/mp4", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pp.URL, base+"t/c/a.mp4?") {
		t.Fatalf("URL %s", pp.URL)
	}
	req, _ := pp.NewRequest(ctxT(t), bytes.NewReader(body))
	if st, b, err := do(req); err != nil || st != 200 {
		t.Fatalf("PUT: %d %v %s", st, err, b)
	}
	pg, _ := l.PresignGet(ctxT(t), "t/c/a.mp4", time.Minute)
	q := pg.URL[strings.Index(pg.URL, "?"):]

	send := func(method, rawURL string, hdr http.Header, body io.Reader) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, rawURL, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			what, method, url string
			status            int
		}{
			{"dot-dot segment", "GET", base + "t/x/../c/a.mp4" + q, 400},
			{"encoded dot-dot", "GET", base + "t/%2e%2e/c/a.mp4" + q, 400},
			{"absolute path", "GET", base + "/etc/passwd" + q, 400},
			{"control character", "GET", base + "t/c/a%00.mp4" + q, 400},
			{"outside the base path", "GET", srv.URL + "/other/t/c/a.mp4" + q, 404},
			{"no signature", "GET", base + "t/c/a.mp4", 403},
			{"no sig", "GET", base + "t/c/a.mp4?expires=99999999999", 403},
			{"malformed sig", "GET", base + "t/c/a.mp4?expires=99999999999&sig=zz", 403},
			{"forged sig", "GET", base + "t/c/a.mp4?expires=99999999999&sig=" + strings.Repeat("ab", 32), 403},
			{"later expiry", "GET", strings.Replace(pg.URL, "expires=", "expires=9", 1), 403},
			{"DELETE", "DELETE", pg.URL, 405},
			{"PATCH", "PATCH", pg.URL, 405},
			{"absent object", "GET", "", 404},
		} {
			u := c.url
			if c.what == "absent object" {
				p, _ := l.PresignGet(ctxT(t), "t/c/none.mp4", time.Minute)
				u = p.URL
			}
			jsonErr(t, c.what, send(c.method, u, nil, nil), c.status)
		}
		// Chunked: no Content-Length to check against the signature.
		req, _ := http.NewRequest("PUT", pp.URL, io.MultiReader(bytes.NewReader(body)))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "video/mp4")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		jsonErr(t, "chunked PUT", resp, http.StatusLengthRequired)
	})

	t.Run("GET headers, HEAD, conditional", func(t *testing.T) {
		resp := send("GET", pg.URL, nil, nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || !bytes.Equal(b, body) || h.Get("Content-Type") != "video/mp4" ||
			h.Get("ETag") != `"`+md5hex(body)+`"` || h.Get("Accept-Ranges") != "bytes" || h.Get("Last-Modified") == "" ||
			h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(h.Get("Content-Security-Policy"), "sandbox") {
			t.Fatalf("GET: %d %v", resp.StatusCode, h)
		}
		resp = send("HEAD", pg.URL, nil, nil)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != 1000 || resp.Header.Get("ETag") != h.Get("ETag") {
			t.Fatalf("HEAD: %d %d %v", resp.StatusCode, resp.ContentLength, resp.Header)
		}
		resp = send("GET", pg.URL, http.Header{"If-None-Match": {h.Get("ETag")}}, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("If-None-Match: %d", resp.StatusCode)
		}
		resp = send("GET", pg.URL, http.Header{"Range": {"bytes=5000-"}}, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("unsatisfiable range: %d", resp.StatusCode)
		}
	})

	t.Run("body longer than signed", func(t *testing.T) {
		// A raw client claims the signed length and sends more: the
		// handler stores exactly the signed bytes, never more.
		p, _ := l.PresignPut(ctxT(t), "t/c/long.mp4", 10, "video/mp4", time.Minute)
		u, _ := url.Parse(p.URL)
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 10\r\n\r\n0123456789EXTRAEXTRAEXTRA", u.RequestURI())
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		if st, got, _ := get(t, l, "t/c/long.mp4", nil); st != 200 || string(got) != "0123456789" {
			t.Fatalf("stored %d %q", st, got)
		}
	})

	t.Run("body shorter than announced", func(t *testing.T) {
		p, _ := l.PresignPut(ctxT(t), "t/c/short.mp4", 10, "video/mp4", time.Minute)
		u, _ := url.Parse(p.URL)
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 10\r\n\r\n01234", u.RequestURI())
		c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, c)
		c.Close()
		mustNotExist(t, l, "t/c/short.mp4")
		waitEmptyTmp(t, l)
	})
}

func waitEmptyTmp(t *testing.T, l *Local) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ents, err := os.ReadDir(l.tmpDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("temporary files left: %v", ents)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLocalAtomicPut checks that a GET during an upload sees the previous
// version (or nothing), never part of the new one.
func TestLocalAtomicPut(t *testing.T) {
	_, l, _ := newLocalEnv(t)
	key := "t/c/atomic.mp4"
	for round, old := range [][]byte{nil, randBytes(2000)} {
		if old != nil {
			put(t, l, key, old, "video/mp4")
		}
		body := randBytes(1 << 20)
		p, err := l.PresignPut(ctxT(t), key, int64(len(body)), "video/mp4", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		pr, pw := io.Pipe()
		req, _ := p.NewRequest(ctxT(t), pr)
		done := make(chan error, 1)
		go func() {
			st, b, err := do(req)
			if err == nil && st != 200 {
				err = fmt.Errorf("PUT: %d %s", st, b)
			}
			done <- err
		}()
		if _, err := pw.Write(body[:len(body)/2]); err != nil {
			t.Fatal(err)
		}
		// The first half has reached the handler (the pipe write returned);
		// give it a moment to land in the temporary file.
		time.Sleep(50 * time.Millisecond)
		st, got, _ := get(t, l, key, nil)
		info, herr := l.Head(ctxT(t), key)
		if old == nil {
			if st != 404 || !errors.Is(herr, ErrNotFound) {
				t.Fatalf("round %d: during upload GET %d, Head %v; want absent", round, st, herr)
			}
		} else if st != 200 || !bytes.Equal(got, old) || herr != nil || info.ETag != md5hex(old) {
			t.Fatalf("round %d: during upload GET %d (old content %v), Head %+v %v", round, st, bytes.Equal(got, old), info, herr)
		}
		if _, err := pw.Write(body[len(body)/2:]); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if st, got, _ := get(t, l, key, nil); st != 200 || !bytes.Equal(got, body) {
			t.Fatalf("round %d: after upload GET %d equal %v", round, st, bytes.Equal(got, body))
		}
	}
	waitEmptyTmp(t, l)
}

func TestLocalMetadata(t *testing.T) {
	_, first, dir := newLocalEnv(t)
	body := randBytes(5000)
	put(t, first, "t/c/m.mp4", body, "video/mp4")

	// Lost metadata (met after a restart: a running store keeps what it
	// wrote in memory): recomputed (the type is then unknown) and healed.
	if err := os.Remove(first.metaPath("t/c/m.mp4")); err != nil {
		t.Fatal(err)
	}
	l, err := NewLocal(LocalConfig{Dir: dir, BaseURL: "http://relay.test/media", Secret: secret(), MaxObjectBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	info, err := l.Head(ctxT(t), "t/c/m.mp4")
	if err != nil || info.ETag != md5hex(body) || info.Size != 5000 || info.ContentType != "application/octet-stream" {
		t.Fatalf("Head without metadata = %+v, %v", info, err)
	}
	if _, err := os.Stat(l.metaPath("t/c/m.mp4")); err != nil {
		t.Fatalf("metadata not healed: %v", err)
	}

	// Content replaced behind the store's back: the stale metadata is
	// detected (inode, size, mtime) and not believed, whether it comes
	// from the file or from the store's memory.
	l = first
	put(t, l, "t/c/m.mp4", body, "video/mp4")
	other := randBytes(5000)
	tmp := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(tmp, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, l.objPath("t/c/m.mp4")); err != nil {
		t.Fatal(err)
	}
	info, err = l.Head(ctxT(t), "t/c/m.mp4")
	if err != nil || info.ETag != md5hex(other) || info.ContentType != "video/mp4" {
		t.Fatalf("Head with stale metadata = %+v, %v", info, err)
	}
}

func TestLocalKeyConflicts(t *testing.T) {
	_, l, dir := newLocalEnv(t)
	put(t, l, "t/c/dir/obj.mp4", randBytes(10), "video/mp4")
	put(t, l, "t/c/file.mp4", randBytes(10), "video/mp4")
	for _, key := range []string{"t/c/dir", "t/c/file.mp4/below.mp4"} {
		p, err := l.PresignPut(ctxT(t), key, 10, "video/mp4", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := p.NewRequest(ctxT(t), bytes.NewReader(randBytes(10)))
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		jsonErr(t, "PUT "+key, resp, http.StatusConflict)
		mustNotExist(t, l, key)
	}
	if err := l.Delete(ctxT(t), "t/c/dir"); err != nil {
		t.Fatalf("Delete of a key prefix: %v", err)
	}
	if _, err := l.Head(ctxT(t), "t/c/dir/obj.mp4"); err != nil {
		t.Fatalf("object below a deleted prefix: %v", err)
	}
	// Deleting the last object prunes the directories it leaves empty.
	if err := l.Delete(ctxT(t), "t/c/dir/obj.mp4"); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(ctxT(t), "t/c/file.mp4"); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"objects", "meta"} {
		if ents, err := os.ReadDir(filepath.Join(dir, sub)); err != nil || len(ents) != 0 {
			t.Fatalf("%s not pruned: %v %v", sub, ents, err)
		}
	}
	put(t, l, "t/c/dir/obj.mp4", randBytes(10), "video/mp4")
	waitEmptyTmp(t, l)
}

func TestLocalLimitsAndClock(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	l, err := NewLocal(LocalConfig{Dir: t.TempDir(), BaseURL: "http://127.0.0.1/m", Secret: secret(), MaxObjectBytes: 1000,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.PresignPut(ctxT(t), "k", 1001, "video/mp4", time.Minute); err == nil {
		t.Fatal("PresignPut over MaxObjectBytes accepted")
	}
	if _, err := l.PresignPut(ctxT(t), "k/"+strings.Repeat("s", 256), 10, "video/mp4", time.Minute); err == nil {
		t.Fatal("segment over 255 bytes accepted")
	}
	p, err := l.PresignGet(ctxT(t), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("Expires %s", p.Expires)
	}
	u, _ := url.Parse(p.URL)
	serve := func() int {
		w := httptest.NewRecorder()
		l.Handler().ServeHTTP(w, httptest.NewRequest("GET", u.RequestURI(), nil))
		return w.Code
	}
	now = now.Add(time.Minute - time.Millisecond)
	if c := serve(); c != http.StatusNotFound { // valid URL, no object
		t.Fatalf("just before expiry: %d", c)
	}
	now = now.Add(time.Millisecond)
	if c := serve(); c != http.StatusForbidden {
		t.Fatalf("at expiry: %d", c)
	}
}

func TestLocalRemovesStaleTemp(t *testing.T) {
	dir := t.TempDir()
	cfg := LocalConfig{Dir: dir, BaseURL: "http://127.0.0.1/m", Secret: secret()}
	if _, err := NewLocal(cfg); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(dir, "tmp", "put-stale"), filepath.Join(dir, "tmp", "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLocal(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale upload kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("fresh upload removed: %v", err)
	}
}

// FuzzKey checks that a key ValidateKey accepts maps to a path inside the
// store and survives the trip through a signed URL (the handler sees the
// same key: a valid signature, so 404 for an absent object), and that
// everything else is refused before touching the disk.
func FuzzKey(f *testing.F) {
	for _, k := range []string{"tenant/channel/cam1/2026/11/25/120000.000-17.mp4", "a", "a b/c%2F?#&=+é", "../x", "a/./b", "/a", "a\\b", "a//b"} {
		f.Add(k)
	}
	l, err := NewLocal(LocalConfig{Dir: f.TempDir(), BaseURL: "http://127.0.0.1/m", Secret: make([]byte, 32)})
	if err != nil {
		f.Fatal(err)
	}
	h := l.Handler()
	f.Fuzz(func(t *testing.T, key string) {
		p, err := l.PresignGet(t.Context(), key, time.Minute)
		if ValidateKey(key) != nil {
			if err == nil {
				t.Fatalf("PresignGet(%q) accepted a key ValidateKey refuses", key)
			}
			return
		}
		if err != nil {
			return // a segment too long for the file system
		}
		rel, err := filepath.Rel(l.objDir, l.objPath(key))
		if err != nil || rel != filepath.FromSlash(key) || strings.HasPrefix(rel, "..") {
			t.Fatalf("key %q maps to %q", key, rel)
		}
		u, err := url.Parse(p.URL)
		if err != nil {
			t.Fatalf("URL %q: %v", p.URL, err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", u.RequestURI(), nil))
		if w.Code != http.StatusNotFound {
			t.Fatalf("key %q: GET %s: %d %s", key, u.RequestURI(), w.Code, w.Body)
		}
	})
}
