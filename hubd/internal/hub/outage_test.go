package hub_test

import (
	"bytes"
	"context"
	"crypto/md5"
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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/control"
	"github.com/zipnvr/zipnvr/hubd/internal/hub"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/hubd/internal/upload"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

// Clips of the outage tests: 1 s GOPs, so 2 s segments cut on time.
var (
	// smallClip makes segments of about 210 KB.
	smallClip = fakecam.ClipOptions{Width: 640, Height: 360, Seconds: 4, GOP: 25, BitrateKbps: 800}
	// bigClip makes segments of about 2 MB: a 16 MiB ring holds 8 of them.
	bigClip = fakecam.ClipOptions{Width: 1280, Height: 720, Seconds: 4, GOP: 25, BitrateKbps: 8000}
)

// outageLength is how long S3 and/or the relay stay down.
const outageLength = 15 * time.Second

// frame is the longest gap allowed between consecutive segments of a
// camera whose recording never stopped (they touch, to the millisecond).
const frame = 40 * time.Millisecond

// uplinkBed is a hub recording fakecam cameras and uploading through a real
// relay process to a real versitygw.
type uplinkBed struct {
	t       *testing.T
	s3      *testbed.S3
	relayS3 *testbed.S3       // S3 as the relay sees it: through proxy when there is one
	proxy   *testbed.Throttle // nil unless asked for
	relay   *testbed.Relay
	p       testbed.Provisioned
	cams    *fakecam.Server
	camIDs  []string
	r       *running
	began   time.Time
}

type bedOptions struct {
	Cameras   int
	Clip      fakecam.ClipOptions
	RingBytes string // default 1GiB
	// Throttle puts a TCP proxy whose uplink can be slowed between S3 and
	// its clients (the hub's PUTs and the relay's HEADs).
	Throttle bool
}

func newUplinkBed(t *testing.T, o bedOptions) *uplinkBed {
	t.Helper()
	testbed.RequireTools(t, "ffmpeg")
	clip, err := fakecam.EncodeClip(context.Background(), o.Clip)
	if err != nil {
		t.Fatal(err)
	}
	b := &uplinkBed{t: t, began: time.Now()}
	b.s3 = testbed.S3Server(t)
	b.relayS3 = b.s3
	if o.Throttle {
		u, _ := url.Parse(b.s3.Endpoint)
		b.proxy = testbed.StartThrottle(t, u.Host)
		view := *b.s3
		view.Endpoint = "http://" + b.proxy.Addr()
		b.relayS3 = &view
	}
	b.relay = testbed.StartRelay(t, testbed.RelayOptions{S3: b.relayS3})
	b.p = b.relay.Provision(t, "home", "hub1")
	for i := range o.Cameras {
		b.camIDs = append(b.camIDs, fmt.Sprintf("cam%d", i+1))
	}
	b.cams, err = fakecam.Start(fakecam.Options{Clip: clip, Paths: b.camIDs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.cams.Close)
	var cameras string
	for _, id := range b.camIDs {
		cameras += camYAML(id, b.cams.URL(id), "", "", "tcp")
	}
	if o.RingBytes == "" {
		o.RingBytes = "1GiB"
	}
	b.r = startHubRing(t, o.RingBytes, fmt.Sprintf("relay: {url: %q, credential: %q}\n", b.relay.URL, b.p.HubCredential), 2, cameras)
	return b
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[...]" + s[len(s)-n:]
}

func (b *uplinkBed) status() hub.StatusReport { return b.r.hub.Status() }

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("no %s after %v", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// waitUploaded waits until the hub has uploaded n segments.
func (b *uplinkBed) waitUploaded(n uint64, timeout time.Duration) {
	b.t.Helper()
	waitFor(b.t, timeout, fmt.Sprintf("%d segments uploaded", n), func() bool { return b.status().Upload.Uploaded >= n })
}

// stopCameras ends the cameras' sessions and waits until every open
// segment is closed: nothing is written to the ring after this.
func (b *uplinkBed) stopCameras() {
	b.t.Helper()
	b.cams.Close()
	waitFor(b.t, 15*time.Second, "segment left open", func() bool {
		segs, _ := b.r.hub.Ring().List("")
		for _, s := range segs {
			if s.State == ring.Recording {
				return false
			}
		}
		return true
	})
}

// finish stops the cameras, waits until one snapshot of the index has every
// segment uploaded, stops the hub and returns the index.
func (b *uplinkBed) finish(timeout time.Duration) []ring.Segment {
	b.t.Helper()
	b.stopCameras()
	took := waitFor(b.t, timeout, "index with every segment uploaded", func() bool {
		segs, _ := b.r.hub.Ring().List("")
		for _, s := range segs {
			if s.State != ring.Uploaded {
				return false
			}
		}
		return len(segs) > 0
	})
	b.t.Logf("every segment uploaded %v after the last one closed", took.Round(time.Millisecond))
	if err := b.r.stop(); err != nil {
		b.t.Fatal(err)
	}
	segs, err := ring.ReadIndex(b.r.dir, "")
	if err != nil {
		b.t.Fatal(err)
	}
	return segs
}

// relayRecordings lists every recording the relay has of the hub, by the
// hub's camera id, through the user API.
func (b *uplinkBed) relayRecordings() map[string][]proto.Recording {
	b.t.Helper()
	return listRecordings(b.t, b.relay, b.p.UserTk, b.began)
}

func listRecordings(t *testing.T, relay *testbed.Relay, userTk string, since time.Time) map[string][]proto.Recording {
	t.Helper()
	var channels struct {
		Channels []struct{ ID, Camera string }
	}
	relay.Do(t, userTk, "GET", "/api/v1/channels", nil, http.StatusOK, &channels)
	out := map[string][]proto.Recording{}
	for _, ch := range channels.Channels {
		camID := ch.Camera[strings.IndexByte(ch.Camera, '.')+1:]
		q := url.Values{
			"from":  {since.Add(-time.Minute).UTC().Format(time.RFC3339)},
			"to":    {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)},
			"limit": {"10000"},
		}
		var listing struct {
			Recordings []proto.Recording
			Next       string
		}
		relay.Do(t, userTk, "GET", "/api/v1/channels/"+ch.ID+"/recordings?"+q.Encode(), nil, http.StatusOK, &listing)
		if listing.Next != "" {
			t.Fatalf("channel %s: more than one page of recordings", ch.ID)
		}
		out[camID] = listing.Recordings
	}
	return out
}

func byCamera(segs []ring.Segment) map[string][]ring.Segment {
	out := map[string][]ring.Segment{}
	for _, s := range segs {
		out[s.Camera] = append(out[s.Camera], s)
	}
	for _, ss := range out {
		sort.Slice(ss, func(i, j int) bool { return ss[i].Start.Before(ss[j].Start) })
	}
	return out
}

// checkRelayHasLocal checks that each local segment is uploaded in the
// index, listed exactly once by the relay (by start) with its time range
// and size, and in S3 byte-identical; and that the relay lists no recording
// twice. It returns the relay's recordings by camera.
func (b *uplinkBed) checkRelayHasLocal(local []ring.Segment) map[string][]proto.Recording {
	b.t.Helper()
	t := b.t
	recs := b.relayRecordings()
	for _, cam := range b.camIDs {
		byStart := map[int64]proto.Recording{}
		for _, rec := range recs[cam] {
			if _, dup := byStart[rec.Start.UnixMilli()]; dup {
				t.Errorf("%s: the relay lists two recordings starting at %v", cam, rec.Start)
			}
			byStart[rec.Start.UnixMilli()] = rec
		}
		for _, s := range byCamera(local)[cam] {
			if s.State != ring.Uploaded {
				t.Errorf("%s: %s is %s in the index", cam, s.Path, s.State)
			}
			rec, ok := byStart[s.Start.UnixMilli()]
			if !ok || !rec.End.Equal(s.End) || rec.Bytes != s.Bytes {
				t.Errorf("%s: segment %s (%v-%v, %d bytes) listed as %+v", cam, s.Path, s.Start, s.End, s.Bytes, rec)
				continue
			}
			want, err := os.ReadFile(filepath.Join(b.r.dir, s.Path))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(b.s3.Dir, b.s3.Bucket, filepath.FromSlash(rec.Key)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: S3 object %s (%d bytes, %v) is not identical to %s (%d bytes)", cam, rec.Key, len(got), err, s.Path, len(want))
			}
		}
	}
	return recs
}

// checkExactlyOnce: with nothing evicted, the relay lists exactly the
// local segments, and S3 holds exactly one object for each.
func (b *uplinkBed) checkExactlyOnce(local []ring.Segment) {
	b.t.Helper()
	recs := b.checkRelayHasLocal(local)
	perCam := byCamera(local)
	for _, cam := range b.camIDs {
		if len(recs[cam]) != len(perCam[cam]) {
			b.t.Errorf("%s: the relay lists %d recordings, the hub recorded %d", cam, len(recs[cam]), len(perCam[cam]))
		}
	}
	if n := countObjects(b.t, b.s3); n != len(local) {
		b.t.Errorf("S3 holds %d objects, the hub recorded %d segments", n, len(local))
	}
}

// countObjects counts the .mp4 objects in the bucket (versitygw's posix
// backend: one plain file per object; its temporary files live in hidden
// directories).
func countObjects(t *testing.T, s3 *testbed.S3) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(s3.Dir, s3.Bucket), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".mp4") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkContiguous checks that recording never stopped: each camera's
// segments follow each other with no gap longer than a frame.
func (b *uplinkBed) checkContiguous(local []ring.Segment) {
	b.t.Helper()
	for cam, segs := range byCamera(local) {
		for i := 1; i < len(segs); i++ {
			if gap := segs[i].Start.Sub(segs[i-1].End); gap > frame || gap < -frame {
				b.t.Errorf("%s: %v between %s and %s: recording stopped", cam, gap, segs[i-1].Path, segs[i].Path)
			}
		}
	}
}

// TestOutage stops S3, the relay, or both for 15 s while two cameras record
// and upload, then starts them again on the same port over the same data:
// recording never stops, the hub counts the failed attempts, the backlog
// drains while live segments keep coming, and in the end every segment is
// in S3 once, listed once, and uploaded in the index.
func TestOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("three 15 s outages")
	}
	// The three run at once (each has its own peers, and the time is mostly
	// waiting), whatever -parallel says: t.Run may be called from several
	// goroutines.
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, tc := range []struct {
		name      string
		s3, relay bool
	}{
		{"S3", true, false},
		{"relay", false, true},
		{"both", true, true},
	} {
		wg.Go(func() {
			t.Run(tc.name, func(t *testing.T) {
				b := newUplinkBed(t, bedOptions{Cameras: 2, Clip: smallClip})
				b.waitUploaded(4, 30*time.Second)
				before := b.status()
				if tc.s3 {
					b.s3.Stop()
				}
				if tc.relay {
					b.relay.Stop()
				}
				time.Sleep(outageLength)
				during := b.status()
				if tc.s3 {
					b.s3.Restart(t)
				}
				if tc.relay {
					b.relay = b.relay.Restart(t, b.relayS3)
				}
				// 15 s of 2 s segments from 2 cameras piled up (the one being
				// uploaded as the outage began may have made it).
				if during.Ring.Pending < 2*6 {
					t.Errorf("%d segments pending after %v down, want the outage's backlog (about 14)", during.Ring.Pending, outageLength)
				}
				if during.Upload.Failures <= before.Upload.Failures {
					t.Errorf("no failed upload counted during the outage: before %+v, during %+v", before.Upload, during.Upload)
				}
				// The backlog drains while the cameras go on recording; the
				// wait is the uploader's backoff (at most 16 s after 15 s down).
				took := waitFor(t, 45*time.Second, "drained backlog", func() bool { return b.status().Ring.Pending == 0 })
				t.Logf("outage: %d segments pending, %d failed attempts; backlog drained %v after the peers came back",
					during.Ring.Pending, during.Upload.Failures-before.Upload.Failures, took.Round(time.Millisecond))
				time.Sleep(2 * time.Second) // a live segment or so after the drain

				local := b.finish(30 * time.Second)
				st := b.status()
				b.checkExactlyOnce(local)
				b.checkContiguous(local)
				if st.Upload.Uploaded != uint64(len(local)) {
					t.Errorf("the hub counts %d uploads of %d segments: some went twice", st.Upload.Uploaded, len(local))
				}
				if st.Ring.EvictedBeforeUpload != 0 || st.Ring.Evicted != 0 {
					t.Errorf("evictions in a ring with room: %+v", st.Ring)
				}
				for _, c := range st.Cameras {
					if c.Sessions != 1 {
						t.Errorf("%s: %d camera sessions, want 1: recording restarted", c.Camera, c.Sessions)
					}
					if c.Segments != uint64(len(byCamera(local)[c.Camera])) {
						t.Errorf("%s: %d segments recorded, %d in the index", c.Camera, c.Segments, len(byCamera(local)[c.Camera]))
					}
				}
			})
		})
	}
}

// lostSegments reads from the hub's log the segments the ring evicted
// before they were uploaded, by camera and start (ms): the ring logs each
// with its path, which holds camera, day and start.
func lostSegments(t *testing.T, log string) map[string]map[int64]string {
	t.Helper()
	re := regexp.MustCompile(`msg="ring full: evicted a segment that was not uploaded yet".* path=(\S+)`)
	out := map[string]map[int64]string{}
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		p := filepath.ToSlash(m[1])
		parts := strings.Split(p, "/") // segments/CAM/DAY/HHMMSS.mmm-ID.mp4
		if len(parts) != 4 {
			t.Fatalf("unexpected segment path %q", p)
		}
		hms, _, _ := strings.Cut(parts[3], "-")
		start, err := time.ParseInLocation("2006-01-02 150405.000", parts[2]+" "+hms, time.UTC)
		if err != nil {
			t.Fatalf("segment path %q: %v", p, err)
		}
		if out[parts[1]] == nil {
			out[parts[1]] = map[int64]string{}
		}
		out[parts[1]][start.UnixMilli()] = p
	}
	return out
}

// TestSmallRingOutage: S3 stays down longer than a 16 MiB ring lasts (two
// cameras at 8 Mbit/s fill it in 8 s). What the ring had to evict before it
// was uploaded is lost, and exactly that: evicted_before_upload equals the
// number of segments recorded that the relay does not have.
//
// The accounting, exact:
//   - recorded = Σ cameras' committed segments (recorder counters, this
//     process: the ring started empty);
//   - recorded = |index at the end| + evicted (every committed segment is
//     still in the ring or was evicted, uploaded or not);
//   - the relay lists every segment of the final index (all uploaded) and
//     the segments uploaded before the ring evicted them; it never lists a
//     segment evicted before upload (named in the hub's log, one warning
//     each: there must be evicted_before_upload of them);
//   - so missing = recorded - |relay| must equal evicted_before_upload.
//
// The cameras stop before S3 comes back, so that no eviction runs while
// the backlog uploads: one that hits the segment being uploaded miscounts
// it (see TestSmallRingEvictedDuringUpload).
func TestSmallRingOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("an outage longer than the ring")
	}
	b := newUplinkBed(t, bedOptions{Cameras: 2, Clip: bigClip, RingBytes: "16MiB"})
	b.waitUploaded(2, 30*time.Second)
	b.s3.Stop()
	took := waitFor(t, 60*time.Second, "4 segments evicted before upload", func() bool { return b.status().Ring.EvictedBeforeUpload >= 4 })
	t.Logf("the ring evicted 4 segments not uploaded %v after S3 went down", took.Round(time.Millisecond))
	b.stopCameras()
	b.s3.Restart(t)

	local := b.finish(60 * time.Second)
	st := b.status()
	var recorded uint64
	for _, c := range st.Cameras {
		recorded += c.Segments
	}
	recs := b.checkRelayHasLocal(local)
	lost := lostSegments(t, b.r.logs.String())
	var listed, nLost int
	for _, cam := range b.camIDs {
		listed += len(recs[cam])
		nLost += len(lost[cam])
		for _, rec := range recs[cam] {
			if p, ok := lost[cam][rec.Start.UnixMilli()]; ok {
				t.Errorf("%s: %s was counted as evicted before upload, yet the relay lists it (%s)", cam, p, rec.Key)
			}
		}
	}
	if uint64(len(local))+st.Ring.Evicted != recorded {
		t.Errorf("%d segments recorded, %d in the index + %d evicted", recorded, len(local), st.Ring.Evicted)
	}
	if uint64(nLost) != st.Ring.EvictedBeforeUpload {
		t.Errorf("the log names %d segments evicted before upload, the counter says %d", nLost, st.Ring.EvictedBeforeUpload)
	}
	missing := recorded - uint64(listed)
	if missing != st.Ring.EvictedBeforeUpload {
		t.Errorf("%d segments recorded, the relay lists %d: %d missing, evicted_before_upload = %d",
			recorded, listed, missing, st.Ring.EvictedBeforeUpload)
	}
	if n := countObjects(t, b.s3); n != listed {
		t.Errorf("S3 holds %d objects, the relay lists %d recordings", n, listed)
	}
	t.Logf("%d segments recorded, %d in the ring at the end, %d evicted (%d before upload), %d listed by the relay",
		recorded, len(local), st.Ring.Evicted, st.Ring.EvictedBeforeUpload, listed)
}

// TestSmallRingEvictedDuringUpload: the uplink (128 KB/s) is slower than
// the cameras (2 MB/s), so the ring wraps while segments upload. It used to
// evict the segment under the PUT: the relay recorded it, yet the ring
// counted it in evicted_before_upload, and the failed MarkUploaded paused
// every upload. Uploads now pin their segment; the accounting stays exact.
func TestSmallRingEvictedDuringUpload(t *testing.T) {
	b := newUplinkBed(t, bedOptions{Cameras: 2, Clip: bigClip, RingBytes: "16MiB", Throttle: true})
	b.proxy.SetLimit(128 << 10)
	// The ring wraps while uploads crawl: eviction must spare the segments
	// being uploaded and the accounting below must stay exact.
	waitFor(t, 60*time.Second, "the ring to wrap under a slow uplink", func() bool {
		st := b.status()
		return st.Ring.EvictedBeforeUpload >= 3 && st.Upload.Uploaded >= 1
	})
	if e := b.status().Upload.LastError; strings.Contains(e, "not in the index") {
		t.Errorf("an upload failed because its segment was evicted under it: %s", e)
	}
	b.proxy.SetLimit(0)
	b.stopCameras()
	local := b.finish(60 * time.Second)
	st := b.status()
	var recorded uint64
	for _, c := range st.Cameras {
		recorded += c.Segments
	}
	recs := b.checkRelayHasLocal(local)
	lost := lostSegments(t, b.r.logs.String())
	listed := 0
	for _, cam := range b.camIDs {
		listed += len(recs[cam])
		for _, rec := range recs[cam] {
			if p, ok := lost[cam][rec.Start.UnixMilli()]; ok {
				t.Errorf("%s: %s was counted as evicted before upload, yet the relay lists it (%s)", cam, p, rec.Key)
			}
		}
	}
	if missing := recorded - uint64(listed); missing != st.Ring.EvictedBeforeUpload {
		t.Errorf("%d segments recorded, the relay lists %d: %d missing, evicted_before_upload = %d",
			recorded, listed, missing, st.Ring.EvictedBeforeUpload)
	}
}

// TestSecurityHubIsolation is the hub side of isolation: a hub's
// credential presigns and records only for the hub's own cameras, a
// presigned URL writes one object of one size only, and a missing or wrong
// credential is a 401 with a JSON error.
func TestSecurityHubIsolation(t *testing.T) {
	s3 := testbed.S3Server(t)
	relay := testbed.StartRelay(t, testbed.RelayOptions{S3: s3})
	a := relay.Provision(t, "home", "hubA")
	c := relay.Provision(t, "office", "hubC") // another tenant
	var hubB struct{ Credential string }
	relay.Do(t, relay.AdminToken, "POST", "/api/v1/admin/tenants/"+a.Tenant+"/hubs", map[string]string{"id": "hubB"}, http.StatusCreated, &hubB)

	ctx := context.Background()
	clientA := control.New(control.Config{URL: relay.URL, Credential: a.HubCredential})
	clientB := control.New(control.Config{URL: relay.URL, Credential: hubB.Credential})
	clientC := control.New(control.Config{URL: relay.URL, Credential: c.HubCredential})
	cam := func(id string) camera.Camera {
		return camera.Camera{ID: id, Streams: camera.Streams{High: "rtsp://192.0.2.1/" + id}, Record: "high"}
	}
	for _, rep := range []struct {
		c    *control.Client
		cams []camera.Camera
	}{
		{clientA, []camera.Camera{cam("front")}},
		{clientB, []camera.Camera{cam("front"), cam("back")}}, // same tenant as A
		{clientC, []camera.Camera{cam("garage")}},             // another tenant
	} {
		if err := rep.c.ReportCameras(ctx, rep.cams, camera.DefaultSyntax); err != nil {
			t.Fatal(err)
		}
	}

	body := []byte("not really a segment, but bytes all the same")
	sum := md5.Sum(body)
	now := time.Now().UTC().Truncate(time.Millisecond)
	seg := func(camID string) ring.Segment {
		return ring.Segment{Camera: camID, Start: now.Add(-2 * time.Second), End: now, Bytes: int64(len(body)),
			Codec: "h264", MD5: hex.EncodeToString(sum[:])}
	}
	// status is the relay's answer in err. A refusal wraps the *control.Error
	// with %v (control.refusal), so read it from the message then.
	answered := regexp.MustCompile(`relay answered (\d{3}):`)
	status := func(err error) int {
		var e *control.Error
		if errors.As(err, &e) {
			return e.Status
		}
		if err != nil {
			if m := answered.FindStringSubmatch(err.Error()); m != nil {
				n, _ := strconv.Atoi(m[1])
				return n
			}
		}
		return 0
	}

	t.Run("a hub cannot presign for another hub's camera", func(t *testing.T) {
		for _, id := range []string{"back", "garage", "nosuch"} {
			_, err := clientA.Presign(ctx, seg(id))
			if status(err) != http.StatusForbidden || !errors.Is(err, upload.ErrRefused) {
				t.Errorf("hub A presigns for camera %q: %v, want a 403 refusal", id, err)
			}
			if err := clientA.Notify(ctx, seg(id), "anything"); status(err) != http.StatusForbidden {
				t.Errorf("hub A notifies a recording of camera %q: %v, want 403", id, err)
			}
		}
	})

	t.Run("same camera id on two hubs: two keys, no crossing", func(t *testing.T) {
		gA, err := clientA.Presign(ctx, seg("front"))
		if err != nil {
			t.Fatal(err)
		}
		gB, err := clientB.Presign(ctx, seg("front"))
		if err != nil {
			t.Fatal(err)
		}
		if gA.Key == gB.Key {
			t.Fatalf("hubs A and B got the same key %s for their camera front", gA.Key)
		}
		// A's URL writes A's key, with the size it was signed for, only.
		put := func(u string, g upload.Grant, b []byte) int {
			req, _ := http.NewRequest(http.MethodPut, u, bytes.NewReader(b))
			for k, vs := range g.Header {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0 // versitygw resets some refused PUTs
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		ua, _ := url.Parse(gA.URL)
		ub, _ := url.Parse(gB.URL)
		other := *ua
		other.Path = ub.Path
		if code := put(other.String(), gA, body); code/100 == 2 {
			t.Errorf("A's signature wrote B's key %s: %d", gB.Key, code)
		}
		if code := put(gA.URL, gA, append(body, 'x')); code/100 == 2 {
			t.Errorf("A's URL took a body of another size: %d", code)
		}
		if _, err := os.Stat(filepath.Join(s3.Dir, s3.Bucket, filepath.FromSlash(gB.Key))); err == nil {
			t.Errorf("B's key %s exists", gB.Key)
		}
		if code := put(gA.URL, gA, body); code != http.StatusOK {
			t.Fatalf("PUT with A's own URL: %d", code)
		}
		// A cannot have the relay record its object under B's key, nor B
		// claim A's object.
		if err := clientA.Notify(ctx, seg("front"), gB.Key); status(err) != http.StatusBadRequest {
			t.Errorf("hub A notifies B's key: %v, want 400", err)
		}
		if err := clientB.Notify(ctx, seg("front"), gA.Key); status(err) != http.StatusBadRequest {
			t.Errorf("hub B notifies A's key: %v, want 400", err)
		}
		if err := clientA.Notify(ctx, seg("front"), gA.Key); err != nil {
			t.Errorf("hub A notifies its own upload: %v", err)
		}
	})

	t.Run("wrong or absent credential: 401 with a JSON error", func(t *testing.T) {
		last := "a"
		if strings.HasSuffix(a.HubCredential, "a") {
			last = "b"
		}
		tamper := a.HubCredential[:len(a.HubCredential)-1] + last
		auths := map[string]string{
			"absent":                "",
			"empty bearer":          "Bearer ",
			"not bearer":            "Basic " + a.HubCredential,
			"unknown":               "Bearer " + "hub-" + strings.Repeat("0", 40),
			"garbage":               "Bearer garbage",
			"A's, one char changed": "Bearer " + tamper,
		}
		routes := []struct{ method, path, body string }{
			{http.MethodPut, proto.PathHubCameras, `{"cameras":[]}`},
			{http.MethodPost, proto.PathHubUploads, `{}`},
			{http.MethodPost, proto.PathHubRecordings, `{}`},
		}
		for name, auth := range auths {
			for _, rt := range routes {
				code, e := call(t, relay.URL, rt.method, rt.path, auth, rt.body)
				if code != http.StatusUnauthorized || e == "" {
					t.Errorf("%s credential, %s %s: %d %q, want 401 with a JSON error", name, rt.method, rt.path, code, e)
				}
			}
		}
		// The hub's own client says 401, which is not a per-segment refusal
		// (a revoked credential stops every upload, with backoff).
		bad := control.New(control.Config{URL: relay.URL, Credential: tamper})
		if _, err := bad.Presign(ctx, seg("front")); status(err) != http.StatusUnauthorized || errors.Is(err, upload.ErrRefused) {
			t.Errorf("presign with a tampered credential: %v, want 401, not a refusal", err)
		}
		// Right kind of token, wrong role: 403, JSON too.
		for _, tc := range []struct{ name, token, method, path, body string }{
			{"user token on a hub route", a.UserTk, http.MethodPost, proto.PathHubUploads, `{}`},
			{"admin token on a hub route", relay.AdminToken, http.MethodPost, proto.PathHubUploads, `{}`},
			{"hub credential on a user route", a.HubCredential, http.MethodGet, "/api/v1/channels", ""},
			{"hub credential on an admin route", a.HubCredential, http.MethodPost, "/api/v1/admin/tenants", `{"name":"x"}`},
		} {
			code, e := call(t, relay.URL, tc.method, tc.path, "Bearer "+tc.token, tc.body)
			if code != http.StatusForbidden || e == "" {
				t.Errorf("%s: %d %q, want 403 with a JSON error", tc.name, code, e)
			}
		}
	})

	t.Run("expired presigned URL", func(t *testing.T) {
		// The relay signs upload URLs for upload_url_seconds (default 900 s,
		// at least what relay/internal/media's checkExpiry allows), and the
		// testbed relay config has no knob for it: waiting out 15 minutes is
		// no test, and signing a short URL ourselves would test versitygw,
		// not the system. The relay's own tests cover expiry of its signer.
		t.Skip("not testable from the hub side with the testbed relay: no way to get a short-lived URL")
	})
}

// call does one raw request and returns the status and the JSON error
// message ("" when the answer is not a JSON error).
func call(t *testing.T, base, method, path, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e proto.Error
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || json.Unmarshal(data, &e) != nil {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, e.Error
}
