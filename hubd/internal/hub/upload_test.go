package hub_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/testbed"
)

// TestUploadEndToEnd: 2 real cameras, 4 s segments, a minute of recording;
// every segment recorded reaches S3 (versitygw) byte-identical through
// presigned URLs, is listed once by the relay with its time range, and
// downloads through the listing's presigned GET as a file ffprobe accepts.
func TestUploadEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of recording")
	}
	testbed.RequireTools(t, "ffmpeg", "ffprobe")
	s3 := testbed.S3Server(t)
	relay := testbed.StartRelay(t, testbed.RelayOptions{S3: s3})
	p := relay.Provision(t, "home", "hub1")
	cams := map[string]*testbed.Camera{
		"cam1": testbed.GstCamera(t, testbed.GstOptions{Width: 640, Height: 360, Bitrate: 800}),
		"cam2": testbed.GstCamera(t, testbed.GstOptions{Width: 640, Height: 360, Bitrate: 800, Auth: "digest"}),
	}
	yaml := fmt.Sprintf("relay: {url: %q, credential: %q}\n", relay.URL, p.HubCredential)
	var cameras string
	for id, c := range cams {
		cameras += camYAML(id, c.URL, c.User, c.Pass, "tcp")
	}
	r := startHubWith(t, yaml, 4, cameras)
	time.Sleep(time.Minute)
	// The control link came up beside the uploads, and the relay counts it.
	if !r.hub.Link().Up() {
		t.Error("control link to the relay is not up")
	}
	if m := relay.Metrics(t); !strings.Contains(m, "relay_hub_links 1") {
		t.Errorf("relay does not count the hub's link:\n%s", grepLines(m, "relay_hub_links"))
	}
	for _, c := range cams {
		c.Stop() // the session ends: the last segment closes and uploads
	}
	// One snapshot of the index: every segment uploaded (two reads could
	// miss a segment that closes between them).
	deadline := time.Now().Add(30 * time.Second)
	for {
		segs, _ := r.hub.Ring().List("")
		notUploaded := 0
		for _, s := range segs {
			if s.State != ring.Uploaded {
				notUploaded++
			}
		}
		if len(segs) > 0 && notUploaded == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d segments not uploaded 30 s after the cameras stopped; upload status %+v", notUploaded, len(segs), r.hub.Status().Upload)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	var channels struct {
		Channels []struct{ ID, Camera string }
	}
	relay.Do(t, p.UserTk, "GET", "/api/v1/channels", nil, http.StatusOK, &channels)
	if len(channels.Channels) != 2 {
		t.Fatalf("%d channels, want one per camera: %+v", len(channels.Channels), channels)
	}
	for _, ch := range channels.Channels {
		camID := ch.Camera[strings.IndexByte(ch.Camera, '.')+1:]
		local := r.segments(camID)
		q := url.Values{"from": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "to": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}}
		var listing struct{ Recordings []proto.Recording }
		relay.Do(t, p.UserTk, "GET", "/api/v1/channels/"+ch.ID+"/recordings?"+q.Encode(), nil, http.StatusOK, &listing)
		if len(listing.Recordings) != len(local) || len(local) < 14 {
			t.Fatalf("%s: relay lists %d recordings, the hub recorded %d (want about 15 in a minute)", camID, len(listing.Recordings), len(local))
		}
		byStart := map[int64]proto.Recording{}
		for _, rec := range listing.Recordings {
			if _, dup := byStart[rec.Start.UnixMilli()]; dup {
				t.Errorf("%s: two recordings start at %v", camID, rec.Start)
			}
			byStart[rec.Start.UnixMilli()] = rec
		}
		for _, s := range local {
			rec, ok := byStart[s.Start.UnixMilli()]
			if !ok || !rec.End.Equal(s.End) || rec.Bytes != s.Bytes {
				t.Errorf("%s: segment %s (%v-%v, %d bytes) listed as %+v", camID, s.Path, s.Start, s.End, s.Bytes, rec)
				continue
			}
			if s.State != ring.Uploaded {
				t.Errorf("%s: %s is %s in the index after upload", camID, s.Path, s.State)
			}
			want, _ := os.ReadFile(filepath.Join(r.dir, s.Path))
			got := download(t, rec.URL)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %s downloaded %d bytes, not identical to the %d recorded", camID, rec.Key, len(got), len(want))
				continue
			}
			f := filepath.Join(t.TempDir(), "dl.mp4")
			os.WriteFile(f, got, 0o644)
			testbed.CheckSegment(t, f, "h264", 25, 50)
		}
	}
	if st := r.hub.Status().Upload; st == nil || st.Uploaded == 0 {
		t.Errorf("upload status %+v", st)
	}
}

func download(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET presigned URL: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET presigned URL: %s: %s", resp.Status, b)
	}
	return b
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
