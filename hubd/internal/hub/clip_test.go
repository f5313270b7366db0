package hub_test

import (
	"fmt"
	"math"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/hub"
	"github.com/zipnvr/zipnvr/testbed"
)

type hubClip struct {
	ID         string
	Status     string
	Reason     string
	Start, End time.Time
	Gaps       []struct {
		Start, End time.Time
		Reason     string
	}
	Recordings []struct{ ID string }
	MediaStart time.Time `json:"media_start"`
	MediaEnd   time.Time `json:"media_end"`
	URL        string
	HLSURL     string `json:"hls_url"`
}

// TestClipOverOutageAndGap: a hubd records a gst-rtsp-server camera into a
// real relay and versitygw. A clip is cut over the next 24 s, during which
// the camera is removed from the hub for 5 s (a real gap: nothing
// recorded) and then S3 goes down for 10 s (the hub keeps a backlog). The
// relay asks the hub what it holds: the clip waits through the outage,
// finishes once the backlog is uploaded, and lists exactly the camera's
// absence as a gap.
func TestClipOverOutageAndGap(t *testing.T) {
	if testing.Short() {
		t.Skip("about 45 s of recording")
	}
	testbed.RequireTools(t, "ffmpeg", "ffprobe")
	s3 := testbed.S3Server(t)
	relay := testbed.StartRelay(t, testbed.RelayOptions{S3: s3})
	p := relay.Provision(t, "home", "hub1")
	cam := testbed.GstCamera(t, testbed.GstOptions{Width: 640, Height: 360, Bitrate: 800})
	r := startHubWith(t, fmt.Sprintf("relay: {url: %q, credential: %q}\n", relay.URL, p.HubCredential), 2, camYAML("cam1", cam.URL, cam.User, cam.Pass, "tcp"))
	waitFor(t, 30*time.Second, "first upload and the control link", func() bool {
		st := r.hub.Status()
		return st.Upload != nil && st.Upload.Uploaded >= 1 && r.hub.Link().Up()
	})
	var channels struct{ Channels []struct{ ID string } }
	relay.Do(t, p.UserTk, "GET", "/api/v1/channels", nil, http.StatusOK, &channels)
	if len(channels.Channels) != 1 {
		t.Fatalf("channels %+v", channels)
	}
	start := time.Now().UTC().Add(time.Second)
	end := start.Add(24 * time.Second)
	var c hubClip
	relay.Do(t, p.UserTk, "POST", "/api/v1/channels/"+channels.Channels[0].ID+"/clips", map[string]time.Time{"start": start, "end": end}, http.StatusAccepted, &c)

	time.Sleep(time.Until(start.Add(5 * time.Second)))
	cams := r.hub.Cameras()
	r.hub.SetCameras(hub.FromConfig, nil)
	removed := time.Now()
	time.Sleep(5 * time.Second)
	r.hub.SetCameras(hub.FromConfig, cams)
	back := time.Now()
	time.Sleep(3 * time.Second)
	s3.Stop()
	time.Sleep(10 * time.Second)
	if got := getClip(t, relay, p.UserTk, c.ID); got.Status != "in_progress" {
		t.Fatalf("clip %s during the outage, with the hub's backlog still to come: %+v", got.Status, got)
	}
	s3.Restart(t)

	deadline := time.Now().Add(60 * time.Second)
	for c = getClip(t, relay, p.UserTk, c.ID); c.Status == "in_progress"; c = getClip(t, relay, p.UserTk, c.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("clip still in progress 60 s after the outage: %+v (hub: %+v)", c, r.hub.Status().Ring)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if c.Status != "finished" {
		t.Fatalf("clip %+v", c)
	}
	// One gap: the camera's absence (give or take the segment cut at its
	// removal and the reconnection), said to be unrecorded.
	if len(c.Gaps) != 1 {
		t.Fatalf("gaps %+v, want the camera's absence only", c.Gaps)
	}
	g := c.Gaps[0]
	if !strings.Contains(g.Reason, "not recorded") || g.Start.Before(removed.Add(-3*time.Second)) || g.Start.After(removed.Add(time.Second)) ||
		g.End.Before(back) || g.End.After(back.Add(5*time.Second)) {
		t.Errorf("gap %+v, want the camera's absence %s to %s, not recorded", g, removed.Format(time.StampMilli), back.Format(time.StampMilli))
	}
	gap := g.End.Sub(g.Start)

	// The file plays without one decoder message, starts at or at most one
	// GOP (2 s) before start, ends with the frame holding end, and so lasts
	// from that keyframe to end within one frame (25 fps; the camera's
	// clock against the hub's: 0.1 s): the gap is in it, a frozen frame
	// (the frame before it lasts over it), so the file's time is the
	// wall-clock time since media_start.
	const frame, drift = 40*time.Millisecond + time.Millisecond, 100 * time.Millisecond
	path := testbed.DownloadFile(t, c.URL, "clip.mp4")
	pr := testbed.CheckSegment(t, path, "h264", 0, 0)
	if lead := c.Start.Sub(c.MediaStart); lead < 0 || lead > 2*time.Second {
		t.Errorf("file starts %v before the clip's start", lead)
	}
	if past := c.MediaEnd.Sub(c.End); past < 0 || past > frame {
		t.Errorf("file ends %v after the clip's end: want within one frame (%v)", past, frame)
	}
	got, want := time.Duration(pr.Duration*float64(time.Second)), end.Sub(c.MediaStart)
	if d := got - want; d < -drift || d > frame+drift {
		t.Errorf("file lasts %v, from the keyframe at %s to the end %v: want within a frame (%v), the gap of %v included", got,
			c.MediaStart.Format(time.StampMilli), want, frame, gap)
	}
	if media := c.MediaEnd.Sub(c.MediaStart); math.Abs(pr.Duration-media.Seconds()) > drift.Seconds() {
		t.Errorf("file lasts %.3f s, its media range %v", pr.Duration, media)
	}
	// The file presents from 0 and ffprobe's format duration (a browser's)
	// is its length, though the fragments copied into it carry hubd's
	// timeline (counting from the epoch): it is a progressive MP4 whose
	// sample tables start at 0.
	testbed.CheckClipTiming(t, path, pr, c.MediaEnd.Sub(c.MediaStart), frame+drift)
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", c.HLSURL, "-f", "null", "-").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("ffmpeg on the HLS playlist: %v %s", err, out)
	}
}

func getClip(t *testing.T, relay *testbed.Relay, tok, id string) hubClip {
	t.Helper()
	var c hubClip
	relay.Do(t, tok, "GET", "/api/v1/clips/"+id, nil, http.StatusOK, &c)
	return c
}
