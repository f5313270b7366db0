package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/hub"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

// TestKill9DuringUpload kills a hubd process (this test binary as hubd)
// with SIGKILL while it uploads, at the moments where an upload can be
// interrupted, and restarts it each time:
//
//  1. mid-PUT (the uplink to S3 slowed to 64 KB/s, killed once 48 KB of a
//     PUT reached S3: S3 gets a truncated body and a reset);
//  2. after the PUT, before the relay heard of it (the notice is held);
//  3. after the relay recorded it, before hubd marked it uploaded (the
//     relay's answer is held);
//  4. and 5. at random moments.
//
// Afterwards every segment of the index is uploaded, listed once by the
// relay, and in S3 once, byte-identical: a re-upload after a crash
// overwrites (same key), and a repeated notice creates nothing.
func TestKill9DuringUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("five kills and a drain")
	}
	testbed.RequireTools(t, "ffmpeg")
	clip, err := fakecam.EncodeClip(context.Background(), fakecam.ClipOptions{Width: 640, Height: 360, Seconds: 4, GOP: 25, BitrateKbps: 800})
	if err != nil {
		t.Fatal(err)
	}
	s3 := testbed.S3Server(t)
	u, _ := url.Parse(s3.Endpoint)
	uplink := testbed.StartThrottle(t, u.Host)
	view := *s3
	view.Endpoint = "http://" + uplink.Addr() // the URLs the relay signs go through the throttle
	relay := testbed.StartRelay(t, testbed.RelayOptions{S3: &view})
	p := relay.Provision(t, "home", "hub1")
	tap := startRelayTap(t, relay.URL)

	cams := []string{"cam1", "cam2"}
	srv, err := fakecam.Start(fakecam.Options{Clip: clip, Paths: cams})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfgPath := writeHubdConfig(t, dir, fmt.Sprintf("hub: {id: hub1, data_dir: %q, ring_bytes: 1GiB}\nrecording: {segment_seconds: 2, fragment_seconds: 1}\n"+
		"relay: {url: %q, credential: %q}\nlog: {level: debug}\n", dataDir, tap.URL, p.HubCredential), srv, cams)
	logPath := filepath.Join(dir, "hubd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	defer func() {
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("hubd log:\n%s", tail(string(log), 30000))
		}
	}()

	start := func() *exec.Cmd {
		return startHubd(t, cfgPath, logf)
	}
	kill := func(cmd *exec.Cmd, what string) {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		fmt.Fprintf(logf, "---- test: SIGKILL %s\n", what)
		t.Logf("killed hubd %s", what)
	}
	await := func(timeout time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s after %v", what, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// 1. Mid-PUT.
	uplink.SetLimit(64 << 10)
	mark := uplink.Delivered()
	cmd := start()
	await(30*time.Second, "PUT underway", func() bool { return uplink.Delivered()-mark >= 48<<10 })
	kill(cmd, "mid-PUT")
	uplink.SetLimit(0)
	// The cut PUT left no partial object: each object is a whole segment.
	idx := readIndex(t, dataDir)
	objs := s3Objects(t, s3)
	t.Logf("after it: %d segments in the index, %d objects in S3, %d listed by the relay", len(idx), len(objs), len(relayStarts(t, relay, p.UserTk)))
	for key, size := range objs {
		if s, ok := idx[segKey(key)]; !ok || s.Bytes != size {
			t.Errorf("after the kill mid-PUT, S3 holds %s with %d bytes; the index has %+v", key, size, s)
		}
	}

	// 2. After the PUT, before the notice reached the relay.
	tap.Hold(holdRequest)
	cmd = start()
	select {
	case <-tap.held:
	case <-time.After(30 * time.Second):
		t.Fatal("no upload notice in 30 s")
	}
	kill(cmd, "after a PUT, its notice held before the relay")
	if objs, listed := len(s3Objects(t, s3)), len(relayStarts(t, relay, p.UserTk)); objs <= listed {
		t.Errorf("after the kill with a notice held, S3 holds %d objects and the relay lists %d: no object waits for its notice", objs, listed)
	}

	// 3. The relay recorded it; hubd never saw the answer.
	tap.Hold(holdResponse)
	cmd = start()
	select {
	case code := <-tap.held:
		if code != http.StatusCreated && code != http.StatusOK {
			t.Fatalf("the held notice was answered %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no upload notice in 30 s")
	}
	kill(cmd, "after the relay recorded a segment, before hubd saw the answer")
	recorded := relayStarts(t, relay, p.UserTk)
	unmarked := 0
	for k, s := range readIndex(t, dataDir) {
		if s.State == ring.Pending && recorded[k] {
			unmarked++
		}
	}
	if unmarked == 0 {
		t.Error("after the kill with an answer held, no segment is pending in the index yet recorded by the relay")
	}

	// 4, 5. At random moments.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	for i := range 2 {
		cmd = start()
		life := time.Duration(1000+rng.IntN(4000)) * time.Millisecond
		time.Sleep(life)
		kill(cmd, fmt.Sprintf("at random (%d), %v after start", i+1, life))
	}

	// The last run: record a little, end the cameras' sessions (the last
	// segments close), and wait for one snapshot with everything uploaded.
	cmd = start()
	defer func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() }()
	time.Sleep(3 * time.Second)
	srv.Close()
	ctl := hub.NewClient(filepath.Join(dataDir, "hubd.sock"))
	await(60*time.Second, "index with every segment uploaded", func() bool {
		var segs []ring.Segment
		if err := ctl.Get("/v1/recordings", &segs); err != nil || len(segs) == 0 {
			return false
		}
		for _, s := range segs {
			if s.State != ring.Uploaded {
				return false
			}
		}
		return true
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("hubd did not stop cleanly: %v", err)
	}

	local, err := ring.ReadIndex(dataDir, "")
	if err != nil {
		t.Fatal(err)
	}
	checkUploadedOnce(t, relay, p.UserTk, s3, dataDir, cams, local)
	t.Logf("%d segments after 5 kills: each uploaded, listed once, in S3 once", len(local))
}

// segKey names a segment by camera and start (ms); objects and recordings
// map to it too.
func segKey(objectKey string) string {
	parts := strings.Split(objectKey, "/") // ...CAM/YYYY/MM/DD/HHMMSS.mmm.mp4
	if len(parts) < 5 {
		return objectKey
	}
	n := len(parts)
	start, err := time.ParseInLocation("2006/01/02/150405.000", strings.Join(parts[n-4:], "/")[:len("2006/01/02/150405.000")], time.UTC)
	if err != nil {
		return objectKey
	}
	return fmt.Sprintf("%s@%d", parts[n-5], start.UnixMilli())
}

// readIndex reads the index of a stopped (killed) hubd by segKey.
func readIndex(t *testing.T, dataDir string) map[string]ring.Segment {
	t.Helper()
	segs, err := ring.ReadIndex(dataDir, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ring.Segment{}
	for _, s := range segs {
		out[fmt.Sprintf("%s@%d", s.Camera, s.Start.UnixMilli())] = s
	}
	return out
}

// s3Objects lists the bucket's .mp4 objects and their sizes by key.
func s3Objects(t *testing.T, s3 *testbed.S3) map[string]int64 {
	t.Helper()
	root := filepath.Join(s3.Dir, s3.Bucket)
	out := map[string]int64{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir // versitygw's temporary files
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".mp4") {
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out[filepath.ToSlash(rel)] = info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// relayStarts is the set of recordings the relay lists, by segKey.
func relayStarts(t *testing.T, relay *testbed.Relay, userTk string) map[string]bool {
	t.Helper()
	var channels struct {
		Channels []struct{ ID, Camera string }
	}
	relay.Do(t, userTk, "GET", "/api/v1/channels", nil, http.StatusOK, &channels)
	out := map[string]bool{}
	for _, ch := range channels.Channels {
		q := url.Values{"from": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)},
			"to": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}, "limit": {"10000"}}
		var listing struct{ Recordings []proto.Recording }
		relay.Do(t, userTk, "GET", "/api/v1/channels/"+ch.ID+"/recordings?"+q.Encode(), nil, http.StatusOK, &listing)
		for _, rec := range listing.Recordings {
			out[segKey(rec.Key)] = true
		}
	}
	return out
}

// checkUploadedOnce: every segment of the index is uploaded, listed once
// by the relay with its range and size, the relay lists nothing else, and
// S3 holds exactly one object per segment, byte-identical.
func checkUploadedOnce(t *testing.T, relay *testbed.Relay, userTk string, s3 *testbed.S3, dataDir string, cams []string, local []ring.Segment) {
	t.Helper()
	perCam := map[string][]ring.Segment{}
	for _, s := range local {
		perCam[s.Camera] = append(perCam[s.Camera], s)
		if s.State != ring.Uploaded {
			t.Errorf("%s is %s in the index", s.Path, s.State)
		}
	}
	var channels struct {
		Channels []struct{ ID, Camera string }
	}
	relay.Do(t, userTk, "GET", "/api/v1/channels", nil, http.StatusOK, &channels)
	if len(channels.Channels) != len(cams) {
		t.Fatalf("%d channels, want one per camera", len(channels.Channels))
	}
	for _, ch := range channels.Channels {
		cam := ch.Camera[strings.IndexByte(ch.Camera, '.')+1:]
		q := url.Values{"from": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)},
			"to": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}, "limit": {"10000"}}
		var listing struct{ Recordings []proto.Recording }
		relay.Do(t, userTk, "GET", "/api/v1/channels/"+ch.ID+"/recordings?"+q.Encode(), nil, http.StatusOK, &listing)
		segs := perCam[cam]
		if len(listing.Recordings) != len(segs) || len(segs) < 3 {
			t.Errorf("%s: the relay lists %d recordings, the index has %d segments", cam, len(listing.Recordings), len(segs))
		}
		byStart := map[int64]proto.Recording{}
		for _, rec := range listing.Recordings {
			if _, dup := byStart[rec.Start.UnixMilli()]; dup {
				t.Errorf("%s: two recordings start at %v", cam, rec.Start)
			}
			byStart[rec.Start.UnixMilli()] = rec
		}
		sort.Slice(segs, func(i, j int) bool { return segs[i].Start.Before(segs[j].Start) })
		for _, s := range segs {
			rec, ok := byStart[s.Start.UnixMilli()]
			if !ok || !rec.End.Equal(s.End) || rec.Bytes != s.Bytes || rec.ETag != s.MD5 {
				t.Errorf("%s: segment %s (%v-%v, %d bytes, md5 %s) listed as %+v", cam, s.Path, s.Start, s.End, s.Bytes, s.MD5, rec)
				continue
			}
			want, err := os.ReadFile(filepath.Join(dataDir, s.Path))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(s3.Dir, s3.Bucket, filepath.FromSlash(rec.Key)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: S3 object %s (%d bytes, %v) is not identical to %s (%d bytes)", cam, rec.Key, len(got), err, s.Path, len(want))
			}
		}
	}
	objects := len(s3Objects(t, s3))
	if objects != len(local) {
		t.Errorf("S3 holds %d objects, the index %d segments", objects, len(local))
	}
}

type holdMode int32

const (
	holdNothing  holdMode = iota
	holdRequest           // keep the next upload notice from the relay
	holdResponse          // let the relay record it, keep its answer from hubd
)

// relayTap is a reverse proxy in front of the relay that can hold the next
// upload notice, before or after the relay saw it, until hubd goes away.
type relayTap struct {
	URL   string
	mode  atomic.Int32
	held  chan int // the relay's status for holdResponse, 0 for holdRequest
	proxy *httputil.ReverseProxy
}

func startRelayTap(t *testing.T, relayURL string) *relayTap {
	u, err := url.Parse(relayURL)
	if err != nil {
		t.Fatal(err)
	}
	rt := &relayTap{held: make(chan int, 1), proxy: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	rt.URL = srv.URL
	return rt
}

// Hold arms the tap for the next upload notice.
func (rt *relayTap) Hold(m holdMode) { rt.mode.Store(int32(m)) }

func (rt *relayTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == proto.PathHubRecordings {
		switch holdMode(rt.mode.Swap(int32(holdNothing))) {
		case holdRequest:
			// Read the body: only then does the server watch the connection
			// and cancel the request's context when hubd dies.
			io.Copy(io.Discard, r.Body)
			rt.held <- 0
			rt.wait(r)
			return
		case holdResponse:
			rec := httptest.NewRecorder()
			rt.proxy.ServeHTTP(rec, r)
			rt.held <- rec.Code
			rt.wait(r)
			return
		}
	}
	rt.proxy.ServeHTTP(w, r)
}

// wait holds a request until its client is gone (bounded, so that the
// server's Close never hangs on it).
func (rt *relayTap) wait(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(time.Minute):
	}
}
