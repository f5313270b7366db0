package hub_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/testbed"
)

type snapshotEntry struct {
	ID, Channel, Camera, Source, Status, Error, URL string
	Bytes                                           int64
}

// waitSnapshot polls the relay until the snapshot is no longer pending.
func waitSnapshot(t *testing.T, relay *testbed.Relay, token, id string) snapshotEntry {
	t.Helper()
	var sn snapshotEntry
	for deadline := time.Now().Add(30 * time.Second); ; {
		relay.Do(t, token, "GET", "/api/v1/snapshots/"+id, nil, http.StatusOK, &sn)
		if sn.Status != "pending" {
			return sn
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot %s still pending after 30 s", id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// probeJPEG downloads a snapshot and lets ffprobe say what it is.
func probeJPEG(t *testing.T, sn snapshotEntry) string {
	t.Helper()
	img := download(t, sn.URL)
	if int64(len(img)) != sn.Bytes {
		t.Errorf("snapshot %s: downloaded %d bytes, listed %d", sn.ID, len(img), sn.Bytes)
	}
	f := filepath.Join(t.TempDir(), "snap.jpg")
	if err := os.WriteFile(f, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", sn.ID, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestAgentSnapshots: a real relay process (S3 on versitygw), hubd in
// process, an MJPEG camera with Digest auth. Through the REST API: a
// snapshot from the camera's snapshot URL, one from the MJPEG stream of a
// camera without a snapshot URL, a camera that is off (the entry fails
// with the reason), scheduled thumbnails, and the hub offline (503 at once).
func TestAgentSnapshots(t *testing.T) {
	testbed.RequireTools(t, "ffmpeg", "ffprobe")
	s3 := testbed.S3Server(t)
	relay := testbed.StartRelay(t, testbed.RelayOptions{S3: s3})
	p := relay.Provision(t, "home", "hub1")
	mj := testbed.MJPEGCamera(t, testbed.MJPEGOptions{Auth: "digest", Width: 320, Height: 240, FPS: 5})
	dead := fmt.Sprintf("http://127.0.0.1:%d", testbed.FreePort(t)) // nothing listens
	cams := fmt.Sprintf(`  - id: snapcam
    username: %q
    password: %q
    streams: {mjpeg: %q}
    snapshot: %q
    record: "off"
  - id: mjpegonly
    username: %q
    password: %q
    streams: {mjpeg: %q}
    record: "off"
  - id: offcam
    streams: {mjpeg: %q}
    snapshot: %q
    record: "off"
`, mj.User, mj.Pass, mj.URL, mj.SnapshotURL(), mj.User, mj.Pass, mj.URL, dead+"/mjpeg", dead+"/snapshot.jpg")
	extra := fmt.Sprintf("relay: {url: %q, credential: %q}\nsnapshots: {every_minutes: 0.1}\n", relay.URL, p.HubCredential)
	r := startHubWith(t, extra, 2, cams)

	// The cameras' channels, once the hub has reported them.
	channels := map[string]string{}
	for deadline := time.Now().Add(15 * time.Second); len(channels) < 3; {
		var list struct{ Channels []struct{ ID, Camera string } }
		relay.Do(t, p.UserTk, "GET", "/api/v1/channels", nil, http.StatusOK, &list)
		for _, ch := range list.Channels {
			channels[strings.TrimPrefix(ch.Camera, "hub1.")] = ch.ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("channels %v after 15 s", channels)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for deadline := time.Now().Add(15 * time.Second); !r.hub.Link().Up(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("control link not up after 15 s")
		}
	}

	agent := func(cam string) snapshotEntry {
		var sn snapshotEntry
		relay.Do(t, p.UserTk, "POST", "/api/v1/channels/"+channels[cam]+"/snapshots?source=agent", nil, http.StatusAccepted, &sn)
		if sn.Status != "pending" || sn.Source != "agent" {
			t.Fatalf("%s: accepted as %+v", cam, sn)
		}
		return waitSnapshot(t, relay, p.UserTk, sn.ID)
	}
	for _, cam := range []string{"snapcam", "mjpegonly"} {
		sn := agent(cam)
		if sn.Status != "ready" || sn.URL == "" || sn.Error != "" {
			t.Fatalf("%s: %+v", cam, sn)
		}
		if got := probeJPEG(t, sn); got != "mjpeg,320,240" {
			t.Errorf("%s: ffprobe says %q, want mjpeg,320,240", cam, got)
		}
	}
	if n := r.logs.count("snapshot uploaded"); n < 2 {
		t.Errorf("hubd logged %d uploads", n)
	}
	sn := agent("offcam")
	if sn.Status != "failed" || sn.URL != "" || !strings.Contains(sn.Error, "hub hub1: camera offcam") ||
		!strings.Contains(sn.Error, "connection refused") || !strings.Contains(sn.Error, "snapshot URL") || !strings.Contains(sn.Error, "MJPEG stream") {
		t.Errorf("camera off: %+v", sn)
	}

	// Thumbnails: one round at once, the next 6 s later; the camera that
	// is off has none.
	count := func(cam string) (ready int) {
		var list struct{ Snapshots []snapshotEntry }
		relay.Do(t, p.UserTk, "GET", "/api/v1/channels/"+channels[cam]+"/snapshots", nil, http.StatusOK, &list)
		for _, s := range list.Snapshots {
			if s.Source == "schedule" && s.Status == "ready" && s.URL != "" {
				ready++
			}
			if s.Source == "schedule" && s.Status == "failed" {
				t.Errorf("%s: scheduled thumbnail failed: %+v", cam, s)
			}
		}
		return ready
	}
	for deadline := time.Now().Add(20 * time.Second); count("snapcam") < 2 || count("mjpegonly") < 2; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("thumbnails after 20 s: snapcam %d, mjpegonly %d, want 2 each", count("snapcam"), count("mjpegonly"))
		}
	}
	if n := count("offcam"); n != 0 {
		t.Errorf("offcam has %d thumbnails", n)
	}
	if r.logs.count("thumbnail failed") == 0 {
		t.Error("the failing thumbnail of offcam was not logged")
	}

	// The hub goes away: a clear error at once, no entry.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	var e struct{ Error string }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest("POST", relay.URL+"/api/v1/channels/"+channels["snapcam"]+"/snapshots?source=agent", nil)
		req.Header.Set("Authorization", "Bearer "+p.UserTk)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			relay.Do(t, p.UserTk, "POST", "/api/v1/channels/"+channels["snapcam"]+"/snapshots?source=agent", nil, http.StatusServiceUnavailable, &e)
			break
		}
		// Until relay notices the link is gone, a request may be taken
		// and fail on its own: that is the link-loss path, not this one.
		if time.Now().After(deadline) {
			t.Fatalf("agent snapshot with the hub stopped: %d, want 503", resp.StatusCode)
		}
	}
	if !strings.Contains(e.Error, "hub hub1 has no control link") {
		t.Errorf("hub offline: %q", e.Error)
	}
}
