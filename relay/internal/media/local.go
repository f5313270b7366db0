package media

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LocalConfig configures the embedded store (relay without an s3 section).
type LocalConfig struct {
	// Dir holds the objects (Dir/objects/<key>), their metadata
	// (Dir/meta/<key>, JSON) and uploads in progress (Dir/tmp).
	Dir string
	// BaseURL is the public URL prefix that Handler is reachable at, e.g.
	// "http://127.0.0.1:8080/media"; object URLs are BaseURL/<key>?....
	BaseURL string
	// Secret keys the URL signatures (HMAC-SHA256); at least 32 bytes.
	Secret []byte
	// MaxObjectBytes bounds one object; 0 means MaxPutBytes.
	MaxObjectBytes int64
	// Now is the clock for signing and checking expiry; nil means time.Now.
	Now func() time.Time
}

// Local keeps objects in a directory and serves them through Handler behind
// relay-signed expiring URLs with the same semantics as S3 presigned URLs.
type Local struct {
	objDir, metaDir, tmpDir string
	baseURL                 string // without trailing slash
	basePath                string // BaseURL's path, without trailing slash
	secret                  []byte
	max                     int64
	now                     func() time.Time
	metas                   metaCache
}

// metaCache remembers objects' metadata as this process wrote or read it,
// so that a HEAD (one per upload notice) costs a stat. An entry is used
// only while it matches the file's inode, size and mtime, so one left
// behind by a change of the file is ignored, never believed.
type metaCache struct {
	mu sync.Mutex
	m  map[string]meta
}

// maxCachedMetas bounds the cache; past it, it starts over.
const maxCachedMetas = 100_000

func (c *metaCache) get(key string) (meta, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.m[key]
	return m, ok
}

func (c *metaCache) put(key string, m meta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedMetas {
		c.m = map[string]meta{}
	}
	c.m[key] = m
}

func (c *metaCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// maxSegmentBytes is the longest file name most Linux file systems take.
const maxSegmentBytes = 255

// staleTemp is the age after which NewLocal removes leftover uploads.
const staleTemp = time.Hour

// NewLocal validates c, creates the directories and removes uploads left
// over by a crash.
func NewLocal(c LocalConfig) (*Local, error) {
	if c.Dir == "" {
		return nil, errors.New("media: LocalConfig.Dir: required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("media: LocalConfig.BaseURL: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("media: LocalConfig.BaseURL: %q is not an http:// or https:// URL with a host and no query", c.BaseURL)
	}
	if len(c.Secret) < 32 {
		return nil, fmt.Errorf("media: LocalConfig.Secret: %d bytes, at least 32 needed", len(c.Secret))
	}
	if c.MaxObjectBytes < 0 {
		return nil, fmt.Errorf("media: LocalConfig.MaxObjectBytes: negative (%d)", c.MaxObjectBytes)
	}
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = MaxPutBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("media: LocalConfig.Dir: %v", err)
	}
	l := &Local{
		objDir:   filepath.Join(dir, "objects"),
		metaDir:  filepath.Join(dir, "meta"),
		tmpDir:   filepath.Join(dir, "tmp"),
		baseURL:  strings.TrimSuffix(c.BaseURL, "/"),
		basePath: strings.TrimSuffix(u.EscapedPath(), "/"),
		secret:   append([]byte(nil), c.Secret...),
		max:      c.MaxObjectBytes,
		now:      c.Now,
	}
	if up, err := url.PathUnescape(l.basePath); err == nil {
		l.basePath = up
	}
	for _, d := range []string{l.objDir, l.metaDir, l.tmpDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("media: LocalConfig.Dir: %v", err)
		}
	}
	if ents, err := os.ReadDir(l.tmpDir); err == nil {
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTemp {
				_ = os.Remove(filepath.Join(l.tmpDir, e.Name()))
			}
		}
	}
	return l, nil
}

func (l *Local) validateKey(key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if len(seg) > maxSegmentBytes {
			return fmt.Errorf("media: key %q has a path segment longer than %d bytes", key, maxSegmentBytes)
		}
	}
	return nil
}

// sign is the hex HMAC-SHA256 of what a URL allows. GET URLs sign empty
// length and type. Keys hold no newline (ValidateKey), so fields cannot run
// into each other.
func (l *Local) sign(method, key string, expires int64, length, contentType string) []byte {
	m := hmac.New(sha256.New, l.secret)
	fmt.Fprintf(m, "zipnvr-media-v1\n%s\n%s\n%d\n%s\n%s", method, key, expires, length, contentType)
	return m.Sum(nil)
}

func (l *Local) presign(method, key string, length, contentType string, expiry time.Duration) Presigned {
	exp := l.now().Add(expiry).Unix()
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	q := url.Values{}
	q.Set("expires", strconv.FormatInt(exp, 10))
	q.Set("sig", hex.EncodeToString(l.sign(method, key, exp, length, contentType)))
	h := http.Header{}
	if method == http.MethodPut {
		h.Set("Content-Length", length)
		h.Set("Content-Type", contentType)
	}
	return Presigned{
		URL:     l.baseURL + "/" + strings.Join(segs, "/") + "?" + q.Encode(),
		Method:  method,
		Header:  h,
		Expires: time.Unix(exp, 0),
	}
}

// PresignPut signs a PUT of exactly size bytes of contentType to key.
func (l *Local) PresignPut(ctx context.Context, key string, size int64, contentType string, expiry time.Duration) (Presigned, error) {
	if err := l.validateKey(key); err != nil {
		return Presigned{}, err
	}
	if err := checkPut(size, contentType, l.max); err != nil {
		return Presigned{}, err
	}
	if err := checkExpiry(expiry); err != nil {
		return Presigned{}, err
	}
	return l.presign(http.MethodPut, key, strconv.FormatInt(size, 10), contentType, expiry), nil
}

// PresignGet signs a GET of key. The URL also serves HEAD (a GET without
// body); S3 would want a HEAD-signed URL for that.
func (l *Local) PresignGet(ctx context.Context, key string, expiry time.Duration) (Presigned, error) {
	if err := l.validateKey(key); err != nil {
		return Presigned{}, err
	}
	if err := checkExpiry(expiry); err != nil {
		return Presigned{}, err
	}
	return l.presign(http.MethodGet, key, "", "", expiry), nil
}

// meta is what Dir/meta/<key> holds. Ino, Size and ModNs tie it to one
// version of the object file: a mismatch (a crash or a race between the two
// renames of a PUT) makes readers recompute it from the content.
type meta struct {
	Size        int64  `json:"size"`
	ETag        string `json:"etag"`
	ContentType string `json:"content_type"`
	Ino         uint64 `json:"ino"`
	ModNs       int64  `json:"mod_ns"`
}

func fileIno(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

func (m meta) matches(fi fs.FileInfo) bool {
	return m.Size == fi.Size() && m.Ino == fileIno(fi) && m.ModNs == fi.ModTime().UnixNano()
}

func (l *Local) objPath(key string) string  { return filepath.Join(l.objDir, filepath.FromSlash(key)) }
func (l *Local) metaPath(key string) string { return filepath.Join(l.metaDir, filepath.FromSlash(key)) }

// open opens key's content and returns it with its info; ErrNotFound
// (wrapped) when absent.
func (l *Local) open(key string) (*os.File, ObjectInfo, error) {
	f, err := os.Open(l.objPath(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, ObjectInfo{}, fmt.Errorf("media: %s: %w", key, ErrNotFound)
		}
		return nil, ObjectInfo{}, fmt.Errorf("media: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, ObjectInfo{}, fmt.Errorf("media: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, ObjectInfo{}, fmt.Errorf("media: %s: %w", key, ErrNotFound)
	}
	var m meta
	b, err := os.ReadFile(l.metaPath(key))
	if err != nil || json.Unmarshal(b, &m) != nil || !m.matches(fi) {
		// No or stale metadata: recompute, and heal it for next time.
		h := md5.New()
		if _, err := io.Copy(h, f); err != nil {
			f.Close()
			return nil, ObjectInfo{}, fmt.Errorf("media: %w", err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, ObjectInfo{}, fmt.Errorf("media: %w", err)
		}
		ct := "application/octet-stream"
		if m.ContentType != "" && m.Size == fi.Size() {
			ct = m.ContentType
		}
		m = meta{Size: fi.Size(), ETag: hex.EncodeToString(h.Sum(nil)), ContentType: ct, Ino: fileIno(fi), ModNs: fi.ModTime().UnixNano()}
		_ = l.writeMeta(key, m)
	}
	return f, ObjectInfo{Size: fi.Size(), ETag: m.ETag, ContentType: m.ContentType, LastModified: fi.ModTime().UTC()}, nil
}

// writeMeta replaces key's metadata atomically.
func (l *Local) writeMeta(key string, m meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, err := l.writeTemp("meta-*", b)
	if err != nil {
		return err
	}
	if err := l.place(tmp, l.metaDir, l.metaPath(key)); err != nil {
		os.Remove(tmp)
		return err
	}
	l.metas.put(key, m)
	return nil
}

func (l *Local) writeTemp(pattern string, b []byte) (string, error) {
	f, err := os.CreateTemp(l.tmpDir, pattern)
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// place renames tmp to dst (under root), creating parent directories, and
// syncs the parent so the rename survives a power cut. A concurrent Delete
// may prune a parent between MkdirAll and Rename: retry then.
func (l *Local) place(tmp, root, dst string) error {
	parent := filepath.Dir(dst)
	var err error
	for range 5 {
		if err = os.MkdirAll(parent, 0o750); err != nil {
			return err
		}
		if err = os.Rename(tmp, dst); err == nil {
			return syncDir(parent)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Head returns the object's info without reading it (unless its metadata
// was lost); an error wrapping ErrNotFound when absent.
func (l *Local) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	if err := l.validateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	// The fast path, taken for every upload notice: a stat and the
	// metadata (cached, else its file), without opening the content.
	if fi, err := os.Stat(l.objPath(key)); err == nil && fi.Mode().IsRegular() {
		m, ok := l.metas.get(key)
		if !ok || !m.matches(fi) {
			b, err := os.ReadFile(l.metaPath(key))
			ok = err == nil && json.Unmarshal(b, &m) == nil && m.matches(fi)
			if ok {
				l.metas.put(key, m)
			}
		}
		if ok {
			return ObjectInfo{Size: fi.Size(), ETag: m.ETag, ContentType: m.ContentType, LastModified: fi.ModTime().UTC()}, nil
		}
	}
	f, info, err := l.open(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	f.Close()
	return info, nil
}

// Delete removes the object and its metadata, and the directories this
// leaves empty; nil when already absent.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.validateKey(key); err != nil {
		return err
	}
	l.metas.drop(key)
	for _, p := range []struct{ root, path string }{{l.objDir, l.objPath(key)}, {l.metaDir, l.metaPath(key)}} {
		fi, err := os.Lstat(p.path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			return fmt.Errorf("media: delete %s: %w", key, err)
		}
		if fi.IsDir() {
			continue // a "directory" key prefix, not an object
		}
		if err := os.Remove(p.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("media: delete %s: %w", key, err)
		}
		for d := filepath.Dir(p.path); d != p.root && strings.HasPrefix(d, p.root+string(filepath.Separator)); d = filepath.Dir(d) {
			if os.Remove(d) != nil {
				break // not empty (or raced with a PUT): stop pruning
			}
		}
	}
	return nil
}

// Handler serves the URLs that PresignPut and PresignGet make: PUT, GET
// and HEAD of BaseURL/<key>?expires=<unix>&sig=<hex>. It can be mounted
// at BaseURL's path (it matches the full request path itself). Errors are
// JSON {"error": "..."}.
func (l *Local) Handler() http.Handler { return http.HandlerFunc(l.serveHTTP) }

func jsonError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	for _, k := range []string{"ETag", "Last-Modified", "Content-Length", "Content-Range"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (l *Local) serveHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, l.basePath+"/")
	if !ok {
		jsonError(w, http.StatusNotFound, "not found")
		return
	}
	if err := l.validateKey(key); err != nil {
		jsonError(w, http.StatusBadRequest, "invalid key: "+strings.TrimPrefix(err.Error(), "media: "))
		return
	}
	signMethod := r.Method
	switch r.Method {
	case http.MethodGet, http.MethodPut:
	case http.MethodHead:
		signMethod = http.MethodGet
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		jsonError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
		return
	}
	q := r.URL.Query()
	expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil {
		jsonError(w, http.StatusForbidden, "missing or malformed expires parameter")
		return
	}
	sig, err := hex.DecodeString(q.Get("sig"))
	if err != nil || len(sig) != sha256.Size {
		jsonError(w, http.StatusForbidden, "missing or malformed sig parameter")
		return
	}
	var length, contentType string
	if r.Method == http.MethodPut {
		if r.ContentLength < 0 {
			jsonError(w, http.StatusLengthRequired, "Content-Length required")
			return
		}
		length = strconv.FormatInt(r.ContentLength, 10)
		contentType = r.Header.Get("Content-Type")
	}
	if !hmac.Equal(sig, l.sign(signMethod, key, expires, length, contentType)) {
		jsonError(w, http.StatusForbidden, "The request signature does not match: method, key, expiry, Content-Length or Content-Type differ from what was signed.")
		return
	}
	if !l.now().Before(time.Unix(expires, 0)) {
		jsonError(w, http.StatusForbidden, "Request has expired.")
		return
	}
	if r.Method == http.MethodPut {
		l.servePut(w, r, key)
		return
	}
	l.serveGet(w, r, key)
}

func (l *Local) serveGet(w http.ResponseWriter, r *http.Request, key string) {
	f, info, err := l.open(key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			jsonError(w, http.StatusNotFound, ErrNotFound.Error())
		} else {
			jsonError(w, http.StatusInternalServerError, "cannot read object")
		}
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("ETag", `"`+info.ETag+`"`)
	h.Set("Content-Type", info.ContentType)
	// Objects are uploaded by hubs and clients and served from relay's own
	// origin: never let a browser run them as a page.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	http.ServeContent(w, r, "", info.LastModified, f)
}

func (l *Local) servePut(w http.ResponseWriter, r *http.Request, key string) {
	size := r.ContentLength
	if size > l.max {
		jsonError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("object larger than %d bytes", l.max))
		return
	}
	f, err := os.CreateTemp(l.tmpDir, "put-*")
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "cannot store object")
		return
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// net/http already ends the body at Content-Length; the limit keeps
	// that true whatever serves this handler.
	hash := md5.New()
	n, err := io.Copy(io.MultiWriter(f, hash), io.LimitReader(r.Body, size))
	if err != nil || n != size {
		jsonError(w, http.StatusBadRequest, fmt.Sprintf("body ended after %d of %d bytes", n, size))
		return
	}
	if err := f.Sync(); err != nil {
		jsonError(w, http.StatusInternalServerError, "cannot store object")
		return
	}
	if err := f.Close(); err != nil {
		jsonError(w, http.StatusInternalServerError, "cannot store object")
		return
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "cannot store object")
		return
	}
	etag := hex.EncodeToString(hash.Sum(nil))
	m := meta{Size: size, ETag: etag, ContentType: r.Header.Get("Content-Type"), Ino: fileIno(fi), ModNs: fi.ModTime().UnixNano()}
	// Metadata first: a reader that sees the new content also finds its
	// metadata (and recomputes it should a crash or race leave them apart).
	if err := l.writeMeta(key, m); err != nil {
		status, msg := placeError(err)
		jsonError(w, status, msg)
		return
	}
	if err := l.place(tmp, l.objDir, l.objPath(key)); err != nil {
		status, msg := placeError(err)
		jsonError(w, status, msg)
		return
	}
	done = true
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
}

// placeError maps a failure to put a file at a key's path: a key that is a
// "directory" of other keys, or below a key that is an object, conflicts.
func placeError(err error) (int, string) {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		return http.StatusConflict, "key conflicts with an existing object or key prefix"
	}
	return http.StatusInternalServerError, "cannot store object"
}
