package upload_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/hubd/internal/upload"
)

// bucket is a PUT target that keeps what it receives and can fail on demand.
type bucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	order   []string
	down    bool
}

func (b *bucket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if int64(len(data)) != r.ContentLength {
		http.Error(w, "length", http.StatusBadRequest)
		return
	}
	if _, ok := b.objects[r.URL.Path]; !ok {
		b.order = append(b.order, r.URL.Path)
	}
	b.objects[r.URL.Path] = data
}

// relay grants URLs on the bucket and verifies notices against it.
type relay struct {
	bucket  *bucket
	url     string
	refuse  map[string]bool // cameras the relay refuses
	mu      sync.Mutex
	notices map[string]int
}

func (f *relay) Presign(_ context.Context, s ring.Segment) (upload.Grant, error) {
	if f.refuse[s.Camera] {
		return upload.Grant{}, fmt.Errorf("%w: camera %s has no channel", upload.ErrRefused, s.Camera)
	}
	key := fmt.Sprintf("/%s/%d.mp4", s.Camera, s.ID)
	return upload.Grant{Key: key, URL: f.url + key, Method: http.MethodPut, Expires: time.Now().Add(time.Minute)}, nil
}

func (f *relay) Notify(_ context.Context, s ring.Segment, key string) error {
	f.bucket.mu.Lock()
	data, ok := f.bucket.objects[key]
	f.bucket.mu.Unlock()
	sum := md5.Sum(data)
	if !ok || hex.EncodeToString(sum[:]) != s.MD5 {
		return errors.New("object does not match")
	}
	f.mu.Lock()
	f.notices[key]++
	f.mu.Unlock()
	return nil
}

type rig struct {
	dir    string
	ring   *ring.Ring
	bucket *bucket
	relay  *relay
}

func newRig(t *testing.T, segments map[string]int) *rig {
	t.Helper()
	dir := t.TempDir()
	r, err := ring.Open(ring.Config{DataDir: dir, MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	i := 0
	for cam, n := range segments {
		for j := 0; j < n; j++ {
			f, err := r.Create(cam, "h264", t0.Add(time.Duration(i)*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(f, "segment %d of %s", j, cam)
			if err := f.Commit(t0.Add(time.Duration(i+1)*time.Second), 1); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
	b := &bucket{objects: map[string][]byte{}}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return &rig{dir: dir, ring: r, bucket: b, relay: &relay{bucket: b, url: srv.URL, refuse: map[string]bool{}, notices: map[string]int{}}}
}

func (rg *rig) run(t *testing.T, until func() bool) *upload.Uploader {
	t.Helper()
	u := upload.New(upload.Config{Ring: rg.ring, Relay: rg.relay, DataDir: rg.dir, Parallel: 2,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !until() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return u
}

func (rg *rig) pending(t *testing.T) int {
	p, err := rg.ring.Pending(1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(p)
}

func TestUploadsEverySegmentOnceOldestFirst(t *testing.T) {
	rg := newRig(t, map[string]int{"cam1": 6})
	u := rg.run(t, func() bool { return rg.pending(t) == 0 })
	if st := u.Stats(); st.Uploaded != 6 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
	segs, _ := rg.ring.List("")
	for i, s := range segs {
		data, err := os.ReadFile(filepath.Join(rg.dir, s.Path))
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("/cam1/%d.mp4", s.ID)
		if string(rg.bucket.objects[key]) != string(data) || rg.relay.notices[key] != 1 || s.State != ring.Uploaded {
			t.Errorf("segment %d: uploaded %v, notices %d, state %s", i, rg.bucket.objects[key] != nil, rg.relay.notices[key], s.State)
		}
	}
	// Two at a time, oldest first: the first two keys uploaded are the two oldest.
	first := map[string]bool{rg.bucket.order[0]: true, rg.bucket.order[1]: true}
	if !first[fmt.Sprintf("/cam1/%d.mp4", segs[0].ID)] || !first[fmt.Sprintf("/cam1/%d.mp4", segs[1].ID)] {
		t.Errorf("upload order %v does not start with the oldest", rg.bucket.order)
	}
}

func TestOutageKeepsSegmentsThenDrains(t *testing.T) {
	rg := newRig(t, map[string]int{"cam1": 4})
	rg.bucket.down = true
	go func() {
		time.Sleep(300 * time.Millisecond)
		rg.bucket.mu.Lock()
		rg.bucket.down = false
		rg.bucket.mu.Unlock()
	}()
	u := rg.run(t, func() bool { return rg.pending(t) == 0 })
	st := u.Stats()
	if st.Uploaded != 4 || st.Failures == 0 || st.LastError == "" {
		t.Fatalf("stats %+v: want failures during the outage, then all 4 uploaded", st)
	}
	// Backoff, not a tight loop: 300 ms at 20-100 ms backoff is a handful of tries.
	if st.Failures > 20 {
		t.Errorf("%d failures in 300 ms: retrying too fast", st.Failures)
	}
}

func TestRefusedSegmentDoesNotBlockOthers(t *testing.T) {
	rg := newRig(t, map[string]int{"orphan": 2, "cam1": 3})
	rg.relay.refuse["orphan"] = true
	u := rg.run(t, func() bool { return rg.pending(t) == 2 })
	if st := u.Stats(); st.Uploaded != 3 {
		t.Fatalf("stats %+v: the refused camera's segments must not hold back cam1's", st)
	}
}

func TestEvictedWhileQueuedIsSkipped(t *testing.T) {
	rg := newRig(t, map[string]int{"cam1": 2})
	segs, _ := rg.ring.List("")
	os.Remove(filepath.Join(rg.dir, segs[0].Path)) // gone before its turn
	deadline := time.Now().Add(300 * time.Millisecond)
	u := rg.run(t, func() bool { return time.Now().After(deadline) })
	// One attempt at the missing file, then it waits: no busy retry.
	if st := u.Stats(); st.Uploaded != 1 || st.Failures != 1 {
		t.Errorf("stats %+v: want 1 uploaded and 1 failure for the missing file", st)
	}
}
