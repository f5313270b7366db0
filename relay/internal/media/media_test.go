package media

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.RunInNetNS(m)) }

// env is one Store under test with what the shared cases need.
type env struct {
	store Store
	// advance makes time pass for the store's URLs (Local: its clock;
	// S3: real time, as versitygw has no injectable clock).
	advance func(time.Duration)
	// kind is "local" or "s3".
	kind string
}

type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func secret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// newLocalEnv serves a Local store mounted at /media/ of a loopback server,
// the way relay mounts it.
func newLocalEnv(t *testing.T) (*env, *Local, string) {
	t.Helper()
	clock := &fakeClock{}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	l, err := NewLocal(LocalConfig{Dir: dir, BaseURL: srv.URL + "/media", Secret: secret(), MaxObjectBytes: 4 << 20, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/media/", l.Handler())
	return &env{store: l, advance: clock.Add, kind: "local"}, l, dir
}

func newS3Env(t *testing.T) (*env, *S3, *testbed.S3) {
	t.Helper()
	srv := testbed.S3Server(t)
	s, err := NewS3(context.Background(), S3Config{
		Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	return &env{store: s, advance: time.Sleep, kind: "s3"}, s, srv
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// do sends req and returns status and body; a transport error is returned
// as is (versitygw may reset the connection instead of answering 403).
func do(req *http.Request) (int, []byte, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// put uploads body to key through a presigned URL and fails the test
// unless it succeeds.
func put(t *testing.T, s Store, key string, body []byte, ct string) {
	t.Helper()
	p, err := s.PresignPut(ctxT(t), key, int64(len(body)), ct, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, err := p.NewRequest(ctxT(t), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	st, rb, err := do(req)
	if err != nil || st != http.StatusOK {
		t.Fatalf("PUT %s: %d %v %s", key, st, err, rb)
	}
}

func get(t *testing.T, s Store, key string, hdr http.Header) (int, []byte, http.Header) {
	t.Helper()
	p, err := s.PresignGet(ctxT(t), key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, err := p.NewRequest(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// refused fails the test unless the request was refused: a 4xx, or a
// transport error when allowReset (versitygw closes the connection on a
// rejected PUT before reading the body).
func refused(t *testing.T, what string, req *http.Request, allowReset bool) {
	t.Helper()
	st, b, err := do(req)
	switch {
	case err != nil && allowReset:
		t.Logf("%s: refused by transport error: %v", what, err)
	case err != nil:
		t.Fatalf("%s: %v", what, err)
	case st < 400 || st > 499:
		t.Fatalf("%s: status %d, want 4xx; body %s", what, st, b)
	}
}

func mustNotExist(t *testing.T, s Store, key string) {
	t.Helper()
	if info, err := s.Head(ctxT(t), key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Head(%s) = %+v, %v; want ErrNotFound", key, info, err)
	}
}

// storeCases run against every Store; each uses its own keys so that they
// run in parallel.
var storeCases = []struct {
	name string
	run  func(t *testing.T, e *env, key string)
}{
	{"put then head and get", func(t *testing.T, e *env, key string) {
		body := randBytes(300_000)
		before := time.Now().Add(-2 * time.Second)
		put(t, e.store, key, body, "video/mp4")
		info, err := e.store.Head(ctxT(t), key)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(len(body)) || info.ETag != md5hex(body) || info.ContentType != "video/mp4" {
			t.Fatalf("Head = %+v; want size %d etag %s type video/mp4", info, len(body), md5hex(body))
		}
		if info.LastModified.Before(before) || info.LastModified.After(time.Now().Add(2*time.Second)) {
			t.Fatalf("LastModified %s is not now", info.LastModified)
		}
		st, got, h := get(t, e.store, key, nil)
		if st != http.StatusOK || !bytes.Equal(got, body) {
			t.Fatalf("GET: status %d, %d bytes, equal %v", st, len(got), bytes.Equal(got, body))
		}
		if et := strings.Trim(h.Get("ETag"), `"`); et != info.ETag {
			t.Fatalf("GET ETag %q, Head ETag %q", et, info.ETag)
		}
	}},
	{"plain net/http PUT with the presigned headers", func(t *testing.T, e *env, key string) {
		body := randBytes(1000)
		p, err := e.store.PresignPut(ctxT(t), key, int64(len(body)), "image/jpeg", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if p.Method != http.MethodPut || p.Header.Get("Content-Type") != "image/jpeg" || p.Header.Get("Content-Length") != "1000" {
			t.Fatalf("presigned %+v", p)
		}
		if d := time.Until(p.Expires); d < 55*time.Second || d > 65*time.Second {
			t.Fatalf("Expires in %s, want about 1m", d)
		}
		req, _ := http.NewRequest(p.Method, p.URL, bytes.NewReader(body)) // bytes.Reader sets ContentLength
		req.Header.Set("Content-Type", p.Header.Get("Content-Type"))
		st, b, err := do(req)
		if err != nil || st != http.StatusOK {
			t.Fatalf("PUT: %d %v %s", st, err, b)
		}
		if info, err := e.store.Head(ctxT(t), key); err != nil || info.ETag != md5hex(body) {
			t.Fatalf("Head = %+v, %v", info, err)
		}
	}},
	{"empty object refused", func(t *testing.T, e *env, key string) {
		// The SDK would sign neither length nor type: such a URL would
		// take any upload.
		if p, err := e.store.PresignPut(ctxT(t), key, 0, "video/mp4", time.Minute); err == nil {
			t.Fatalf("PresignPut of 0 bytes = %+v", p)
		}
	}},
	{"overwrite", func(t *testing.T, e *env, key string) {
		put(t, e.store, key, randBytes(5000), "video/mp4")
		second := randBytes(3000)
		put(t, e.store, key, second, "video/mp4")
		info, err := e.store.Head(ctxT(t), key)
		if err != nil || info.Size != 3000 || info.ETag != md5hex(second) {
			t.Fatalf("Head = %+v, %v", info, err)
		}
		if st, got, _ := get(t, e.store, key, nil); st != 200 || !bytes.Equal(got, second) {
			t.Fatalf("GET after overwrite: %d, equal %v", st, bytes.Equal(got, second))
		}
	}},
	{"range GET", func(t *testing.T, e *env, key string) {
		body := randBytes(10_000)
		put(t, e.store, key, body, "video/mp4")
		st, got, h := get(t, e.store, key, http.Header{"Range": {"bytes=100-1099"}})
		if st != http.StatusPartialContent || !bytes.Equal(got, body[100:1100]) {
			t.Fatalf("range GET: status %d, %d bytes, equal %v", st, len(got), bytes.Equal(got, body[100:1100]))
		}
		if cr := h.Get("Content-Range"); cr != "bytes 100-1099/10000" {
			t.Fatalf("Content-Range %q", cr)
		}
		st, got, _ = get(t, e.store, key, http.Header{"Range": {"bytes=-10"}})
		if st != http.StatusPartialContent || !bytes.Equal(got, body[len(body)-10:]) {
			t.Fatalf("suffix range GET: status %d, equal %v", st, bytes.Equal(got, body[len(body)-10:]))
		}
	}},
	{"expired URLs refused", func(t *testing.T, e *env, key string) {
		body := randBytes(100)
		put(t, e.store, key, body, "video/mp4")
		pp, err := e.store.PresignPut(ctxT(t), key+"-new", int64(len(body)), "video/mp4", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		pg, err := e.store.PresignGet(ctxT(t), key, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		e.advance(2 * time.Second)
		if !time.Now().After(pg.Expires) && e.kind == "s3" {
			t.Fatalf("Expires %s is not past", pg.Expires)
		}
		req, _ := pp.NewRequest(ctxT(t), bytes.NewReader(body))
		st, b, err := do(req)
		if err == nil && (st != http.StatusForbidden || !bytes.Contains(b, []byte("Request has expired."))) {
			t.Fatalf("expired PUT: %d %s", st, b)
		} else if err != nil {
			t.Logf("expired PUT refused by transport error: %v", err)
		}
		mustNotExist(t, e.store, key+"-new")
		req, _ = pg.NewRequest(ctxT(t), nil)
		st, b, err = do(req)
		if err != nil || st != http.StatusForbidden || !bytes.Contains(b, []byte("Request has expired.")) {
			t.Fatalf("expired GET: %d %v %s", st, err, b)
		}
	}},
	{"wrong method refused", func(t *testing.T, e *env, key string) {
		body := randBytes(100)
		put(t, e.store, key, body, "video/mp4")
		pg, err := e.store.PresignGet(ctxT(t), key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// The GET URL used to overwrite the object.
		req, _ := http.NewRequest(http.MethodPut, pg.URL, bytes.NewReader(randBytes(100)))
		req.Header.Set("Content-Type", "video/mp4")
		refused(t, "PUT with a GET URL", req, true)
		// ... or to delete it.
		req, _ = http.NewRequest(http.MethodDelete, pg.URL, nil)
		refused(t, "DELETE with a GET URL", req, false)
		// A PUT URL used to read.
		pp, err := e.store.PresignPut(ctxT(t), key, 100, "video/mp4", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		req, _ = http.NewRequest(http.MethodGet, pp.URL, nil)
		refused(t, "GET with a PUT URL", req, false)
		req, _ = http.NewRequest(http.MethodPost, pp.URL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "video/mp4")
		refused(t, "POST with a PUT URL", req, true)
		if info, err := e.store.Head(ctxT(t), key); err != nil || info.ETag != md5hex(body) {
			t.Fatalf("object changed: %+v, %v", info, err)
		}
	}},
	{"other key refused", func(t *testing.T, e *env, key string) {
		body := randBytes(100)
		put(t, e.store, key+"/a.mp4", body, "video/mp4")
		put(t, e.store, key+"/b.mp4", body, "video/mp4")
		tamper := func(raw string) string {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			u.Path = strings.Replace(u.Path, "/a.mp4", "/b.mp4", 1)
			u.RawPath = ""
			return u.String()
		}
		pg, err := e.store.PresignGet(ctxT(t), key+"/a.mp4", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, tamper(pg.URL), nil)
		refused(t, "GET of another key", req, false)
		pp, err := e.store.PresignPut(ctxT(t), key+"/a.mp4", 100, "video/mp4", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		other := randBytes(100)
		req, _ = http.NewRequest(http.MethodPut, tamper(pp.URL), bytes.NewReader(other))
		req.Header.Set("Content-Type", "video/mp4")
		refused(t, "PUT to another key", req, true)
		if info, err := e.store.Head(ctxT(t), key+"/b.mp4"); err != nil || info.ETag != md5hex(body) {
			t.Fatalf("other object changed: %+v, %v", info, err)
		}
	}},
	{"PUT of another size or type refused", func(t *testing.T, e *env, key string) {
		p, err := e.store.PresignPut(ctxT(t), key, 1000, "video/mp4", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			what string
			n    int
			ct   string
		}{
			{"larger body", 100_000, "video/mp4"},
			{"much larger body", 8 << 20, "video/mp4"}, // versitygw: usually a connection reset
			{"smaller body", 999, "video/mp4"},
			{"other type", 1000, "text/html"},
			{"no type", 1000, ""},
		} {
			req, _ := http.NewRequest(http.MethodPut, p.URL, bytes.NewReader(randBytes(c.n)))
			if c.ct != "" {
				req.Header.Set("Content-Type", c.ct)
			}
			refused(t, c.what, req, true)
		}
		mustNotExist(t, e.store, key)
	}},
	{"delete", func(t *testing.T, e *env, key string) {
		put(t, e.store, key+"/x/y.mp4", randBytes(100), "video/mp4")
		if err := e.store.Delete(ctxT(t), key+"/x/y.mp4"); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, e.store, key+"/x/y.mp4")
		if st, b, _ := get(t, e.store, key+"/x/y.mp4", nil); st != http.StatusNotFound {
			t.Fatalf("GET of a deleted object: %d %s", st, b)
		}
		if err := e.store.Delete(ctxT(t), key+"/x/y.mp4"); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
		if err := e.store.Delete(ctxT(t), key+"/never/was.mp4"); err != nil {
			t.Fatalf("Delete of an absent key: %v", err)
		}
		mustNotExist(t, e.store, key+"/never/was.mp4")
	}},
	{"invalid keys", func(t *testing.T, e *env, key string) {
		for _, k := range []string{
			"", "/abs/key.mp4", "a/../b.mp4", "..", "a/..", "a//b.mp4", "./a.mp4", "a/./b", "a/", "a\\b.mp4",
			"a\x00b", "a\nb", "a\tb", "a\x7fb", "\xff\xfe", strings.Repeat("k", MaxKeyBytes+1),
		} {
			if _, err := e.store.PresignPut(ctxT(t), k, 1, "video/mp4", time.Minute); err == nil {
				t.Errorf("PresignPut(%q) accepted", k)
			}
			if _, err := e.store.PresignGet(ctxT(t), k, time.Minute); err == nil {
				t.Errorf("PresignGet(%q) accepted", k)
			}
			if _, err := e.store.Head(ctxT(t), k); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Head(%q) = %v, want a key error", k, err)
			}
			if err := e.store.Delete(ctxT(t), k); err == nil {
				t.Errorf("Delete(%q) accepted", k)
			}
		}
		// Long but legal, and unusual but printable.
		for _, k := range []string{key + "/" + strings.Repeat("k", 200) + "/" + strings.Repeat("k", 200), key + "/sp ace+plus%pct?q#h&é.mp4"} {
			body := randBytes(10)
			put(t, e.store, k, body, "video/mp4")
			if st, got, _ := get(t, e.store, k, nil); st != 200 || !bytes.Equal(got, body) {
				t.Fatalf("GET %q: %d", k, st)
			}
		}
	}},
	{"invalid PUT parameters", func(t *testing.T, e *env, key string) {
		for _, c := range []struct {
			size   int64
			ct     string
			expiry time.Duration
		}{
			{-1, "video/mp4", time.Minute},
			{0, "video/mp4", time.Minute},
			{MaxPutBytes + 1, "video/mp4", time.Minute},
			{1, "", time.Minute},
			{1, "not a type", time.Minute},
			{1, "video/mp4", 0},
			{1, "video/mp4", -time.Second},
			{1, "video/mp4", MaxExpiry + time.Second},
		} {
			if _, err := e.store.PresignPut(ctxT(t), key, c.size, c.ct, c.expiry); err == nil {
				t.Errorf("PresignPut(size %d, type %q, expiry %s) accepted", c.size, c.ct, c.expiry)
			}
		}
		if _, err := e.store.PresignGet(ctxT(t), key, MaxExpiry+time.Second); err == nil {
			t.Error("PresignGet with an expiry over 7 days accepted")
		}
		if _, err := e.store.PresignPut(ctxT(t), key, 1, "video/mp4", MaxExpiry); err != nil {
			t.Errorf("PresignPut with a 7-day expiry: %v", err)
		}
	}},
}

func TestStores(t *testing.T) {
	for _, impl := range []struct {
		name string
		mk   func(t *testing.T) *env
	}{
		{"local", func(t *testing.T) *env { e, _, _ := newLocalEnv(t); return e }},
		{"s3", func(t *testing.T) *env { e, _, _ := newS3Env(t); return e }},
	} {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			e := impl.mk(t)
			for i, c := range storeCases {
				key := fmt.Sprintf("tenant/channel/cam1/2026/11/25/case%02d", i)
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, e, key)
				})
			}
		})
	}
}

func TestNewS3Config(t *testing.T) {
	ok := S3Config{Endpoint: "http://127.0.0.1:7070", Region: "us-east-1", Bucket: "recordings", AccessKey: "ak", SecretKey: "sk", PathStyle: true}
	if _, err := NewS3(context.Background(), ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	noRegion := ok
	noRegion.Region = ""
	if _, err := NewS3(context.Background(), noRegion); err != nil {
		t.Fatalf("config without region: %v", err)
	}
	for _, c := range []struct {
		name, want string
		mod        func(*S3Config)
	}{
		{"bad endpoint scheme", "s3.endpoint", func(c *S3Config) { c.Endpoint = "ftp://127.0.0.1" }},
		{"endpoint without host", "s3.endpoint", func(c *S3Config) { c.Endpoint = "http://" }},
		{"endpoint with credentials", "s3.endpoint", func(c *S3Config) { c.Endpoint = "http://u:p@127.0.0.1" }},
		{"endpoint garbage", "s3.endpoint", func(c *S3Config) { c.Endpoint = "http://[::1" }},
		{"bad region", "s3.region", func(c *S3Config) { c.Region = "US East" }},
		{"no bucket", "s3.bucket", func(c *S3Config) { c.Bucket = "" }},
		{"short bucket", "s3.bucket", func(c *S3Config) { c.Bucket = "ab" }},
		{"upper-case bucket", "s3.bucket", func(c *S3Config) { c.Bucket = "Recordings" }},
		{"bucket with slash", "s3.bucket", func(c *S3Config) { c.Bucket = "rec/ordings" }},
		{"bucket ending in -", "s3.bucket", func(c *S3Config) { c.Bucket = "recordings-" }},
		{"dotted bucket, virtual host, TLS", "s3.bucket", func(c *S3Config) {
			c.Bucket, c.PathStyle, c.Endpoint = "rec.ordings", false, "https://s3.example.com"
		}},
		{"no access key", "s3.access_key", func(c *S3Config) { c.AccessKey = "" }},
		{"no secret key", "s3.secret_key", func(c *S3Config) { c.SecretKey = "" }},
	} {
		cfg := ok
		c.mod(&cfg)
		_, err := NewS3(context.Background(), cfg)
		if err == nil || !strings.HasPrefix(err.Error(), c.want+":") {
			t.Errorf("%s: error %v, want one starting with %q", c.name, err, c.want+":")
		}
	}
}

func TestNewLocalConfig(t *testing.T) {
	ok := LocalConfig{Dir: t.TempDir(), BaseURL: "http://127.0.0.1:8080/media", Secret: secret()}
	if _, err := NewLocal(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	file := ok.Dir + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		mod        func(*LocalConfig)
	}{
		{"no dir", "Dir", func(c *LocalConfig) { c.Dir = "" }},
		{"dir is a file", "Dir", func(c *LocalConfig) { c.Dir = file }},
		{"no base URL", "BaseURL", func(c *LocalConfig) { c.BaseURL = "" }},
		{"relative base URL", "BaseURL", func(c *LocalConfig) { c.BaseURL = "/media" }},
		{"base URL with query", "BaseURL", func(c *LocalConfig) { c.BaseURL = "http://h/media?x=1" }},
		{"short secret", "Secret", func(c *LocalConfig) { c.Secret = make([]byte, 31) }},
		{"negative max", "MaxObjectBytes", func(c *LocalConfig) { c.MaxObjectBytes = -1 }},
	} {
		cfg := ok
		c.mod(&cfg)
		_, err := NewLocal(cfg)
		if err == nil || !strings.Contains(err.Error(), "LocalConfig."+c.want+":") {
			t.Errorf("%s: error %v, want one naming LocalConfig.%s", c.name, err, c.want)
		}
	}
}

func TestPresignedNewRequest(t *testing.T) {
	p := Presigned{URL: "http://127.0.0.1/x", Method: http.MethodPut, Header: http.Header{"Content-Length": {"0"}, "Content-Type": {"video/mp4"}}}
	req, err := p.NewRequest(context.Background(), bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	if req.ContentLength != 0 || req.Body != http.NoBody || req.Header.Get("Content-Type") != "video/mp4" || req.Header.Get("Content-Length") != "" {
		t.Fatalf("request %+v", req)
	}
	p.Header.Set("Content-Length", "x")
	if _, err := p.NewRequest(context.Background(), nil); err == nil {
		t.Fatal("bad Content-Length accepted")
	}
}
