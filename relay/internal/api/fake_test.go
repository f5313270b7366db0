package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// fakeObjects is an in-memory ObjectStore: presigned URLs are fake (never
// fetched), Head answers what put recorded, as if the hub had uploaded it.
type fakeObjects struct {
	mu      sync.Mutex
	objects map[string]ObjectInfo
	heads   int
	deleted []string
	fail    error // returned by every call when set
}

func newFakeObjects() *fakeObjects { return &fakeObjects{objects: map[string]ObjectInfo{}} }

// put simulates an upload.
func (f *fakeObjects) put(key string, size int64, md5hex string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[key] = ObjectInfo{Size: size, ETag: `"` + md5hex + `"`, ContentType: contentType, LastModified: time.Now()}
}

func (f *fakeObjects) presign(method, key string, expiry time.Duration) (Presigned, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return Presigned{}, f.fail
	}
	u := "https://objects.test/bucket/" + (&url.URL{Path: key}).EscapedPath() + "?X-Sig=" + method
	return Presigned{URL: u, Method: method, Header: http.Header{}, Expires: time.Now().Add(expiry)}, nil
}

func (f *fakeObjects) PresignPut(_ context.Context, key string, size int64, ct string, expiry time.Duration) (Presigned, error) {
	p, err := f.presign(http.MethodPut, key, expiry)
	if err == nil {
		p.Header.Set("Content-Type", ct)
		p.Header.Set("Content-Length", fmt.Sprint(size))
	}
	return p, err
}

func (f *fakeObjects) PresignGet(_ context.Context, key string, expiry time.Duration) (Presigned, error) {
	return f.presign(http.MethodGet, key, expiry)
}

func (f *fakeObjects) Head(_ context.Context, key string) (ObjectInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heads++
	if f.fail != nil {
		return ObjectInfo{}, f.fail
	}
	info, ok := f.objects[key]
	if !ok {
		return ObjectInfo{}, fmt.Errorf("head %s: %w", key, ErrObjectNotFound)
	}
	return info, nil
}

func (f *fakeObjects) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	delete(f.objects, key)
	f.deleted = append(f.deleted, key)
	return nil
}

func (f *fakeObjects) headCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.heads
}

var errBackend = errors.New("backend down: secret-detail")
