// Package media is object storage for recordings and snapshots: S3 (any S3-compatible server, through presigned URLs)
// or a local directory behind relay-signed expiring URLs; relay never proxies media except in the local embedded mode.
package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ObjectInfo is what a HEAD says.
type ObjectInfo struct {
	Size         int64
	ETag         string // without quotes; hex MD5 of the content for single-part uploads
	ContentType  string
	LastModified time.Time
}

// ErrNotFound is returned (wrapped) by Head when the object does not exist.
var ErrNotFound = errors.New("object not found")

// Store is implemented by *S3 and *Local. URLs from both have the same
// semantics: usable only until Expires, only for their method and key, and a
// PUT URL only for exactly the signed Content-Length and Content-Type.
type Store interface {
	PresignPut(ctx context.Context, key string, size int64, contentType string, expiry time.Duration) (Presigned, error)
	PresignGet(ctx context.Context, key string, expiry time.Duration) (Presigned, error)
	// Head returns an error wrapping ErrNotFound when the object is absent.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// Delete returns nil when the object is already absent.
	Delete(ctx context.Context, key string) error
}

var (
	_ Store = (*S3)(nil)
	_ Store = (*Local)(nil)
)

// Presigned is a URL that lets its holder do one kind of request on one
// object until Expires, without any other credential.
type Presigned struct {
	URL    string
	Method string
	// Header holds the headers the client MUST send, e.g. Content-Type and
	// Content-Length for a PUT. Note that net/http ignores a Content-Length
	// in Request.Header: set Request.ContentLength (NewRequest does).
	Header  http.Header
	Expires time.Time
}

// NewRequest builds the HTTP request p allows, with body as the content (nil
// for GET). It sets Header and, from its Content-Length, the request's
// ContentLength, so that net/http sends exactly the signed length.
func (p Presigned) NewRequest(ctx context.Context, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, p.Method, p.URL, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range p.Header {
		if http.CanonicalHeaderKey(k) == "Content-Length" {
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if cl := p.Header.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("media: presigned Content-Length %q", cl)
		}
		req.ContentLength = n
		if n == 0 {
			// A non-nil body of length 0 would be sent chunked.
			req.Body, req.GetBody = http.NoBody, nil
		}
	}
	return req, nil
}

// Limits shared by both implementations.
const (
	// MaxKeyBytes is the longest key accepted (S3's limit).
	MaxKeyBytes = 1024
	// MaxExpiry is the longest validity of a URL (S3's limit for SigV4).
	MaxExpiry = 7 * 24 * time.Hour
	// MaxPutBytes is the largest object one presigned PUT may upload
	// (S3's single-part limit).
	MaxPutBytes int64 = 5 << 30
)

// ValidateKey checks an object key: 1 to MaxKeyBytes bytes of printable
// UTF-8 (no control characters, no backslash), "/"-separated segments that
// are neither empty nor "." and no "..", no leading or trailing "/". Keys
// look like tenant/channel/cam1/2026/11/25/120000.000-17.mp4.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return errors.New("media: empty key")
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("media: key is %d bytes, more than %d", len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("media: key %q is not valid UTF-8", key)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("media: key %q starts with /", key)
	case strings.HasSuffix(key, "/"):
		return fmt.Errorf("media: key %q ends with /", key)
	case strings.Contains(key, ".."):
		return fmt.Errorf("media: key %q contains \"..\"", key)
	}
	for _, r := range key {
		if !unicode.IsPrint(r) || r == '\\' {
			return fmt.Errorf("media: key %q contains the character %U", key, r)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." {
			return fmt.Errorf("media: key %q has an empty or \".\" path segment", key)
		}
	}
	return nil
}

func checkExpiry(expiry time.Duration) error {
	if expiry < time.Second || expiry > MaxExpiry {
		return fmt.Errorf("media: expiry %s is outside [1s, %s]", expiry, MaxExpiry)
	}
	return nil
}

func checkPut(size int64, contentType string, maxBytes int64) error {
	if size < 1 {
		// aws-sdk-go-v2 neither signs Content-Length nor keeps
		// Content-Type for a zero length: such a URL would take any upload.
		return fmt.Errorf("media: size %d: an object has at least 1 byte", size)
	}
	if size > maxBytes {
		return fmt.Errorf("media: size %d is more than the limit of %d bytes", size, maxBytes)
	}
	if contentType == "" {
		return errors.New("media: empty content type")
	}
	if _, _, err := mime.ParseMediaType(contentType); err != nil {
		return fmt.Errorf("media: content type %q: %v", contentType, err)
	}
	for _, r := range contentType {
		if r < 0x20 || r > 0x7e {
			return fmt.Errorf("media: content type %q is not printable ASCII", contentType)
		}
	}
	return nil
}
