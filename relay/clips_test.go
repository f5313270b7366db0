package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/fragindex"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
	"github.com/zipnvr/zipnvr/testbed/segsynth"
)

// Clips end to end: a real relay process over a real S3 (versitygw), fed
// by a hub's upload path (presigned PUT, notice) with segments in hubd's
// format from testbed/segsynth; ffprobe and ffmpeg judge the files.

// clipGOP is the stream's keyframe interval (25 frames at 25 fps).
const clipGOP = time.Second

// clipFrame is one frame's duration (25 fps): a clip ends with the frame
// that holds its end.
const clipFrame = 40 * time.Millisecond

type clipBed struct {
	t       testing.TB
	s3      *testbed.S3
	relay   *testbed.Relay
	p       testbed.Provisioned
	channel string
	w       *segsynth.Writer
}

func newClipBed(t *testing.T, start time.Time, segment time.Duration) *clipBed {
	t.Helper()
	return newClipBedWith(t, clipStream, start, segment)
}

// clipStream is the tests' camera: 360p25, a keyframe every second.
var clipStream = fakecam.ClipOptions{Width: 640, Height: 360, FPS: 25, Seconds: 4, GOP: 25, BitrateKbps: 600}

// newClipBedWith is newClipBed with the camera's stream.
func newClipBedWith(t testing.TB, stream fakecam.ClipOptions, start time.Time, segment time.Duration) *clipBed {
	return newClipBedOn(t, true, stream, start, segment)
}

// newClipBedOn is newClipBedWith on S3 (versitygw) or, without, on the
// relay's local media store.
func newClipBedOn(t testing.TB, useS3 bool, stream fakecam.ClipOptions, start time.Time, segment time.Duration) *clipBed {
	t.Helper()
	testbed.RequireTools(t, "ffmpeg", "ffprobe")
	clip, err := fakecam.EncodeClip(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	b := &clipBed{t: t}
	if useS3 {
		b.s3 = testbed.S3Server(t)
	}
	b.relay = testbed.StartRelay(t, testbed.RelayOptions{S3: b.s3})
	b.p = b.relay.Provision(t, "home", "hub1")
	var rep proto.CameraReportResult
	b.relay.Do(t, b.p.HubCredential, "PUT", proto.PathHubCameras, proto.CameraReport{Cameras: []camera.Camera{
		{ID: "cam1", Name: "Door", Streams: camera.Streams{High: "rtsp://192.0.2.1/1"}, Record: "high"},
	}}, http.StatusOK, &rep)
	b.channel = rep.Cameras[0].Channel
	b.w, err = segsynth.New(segsynth.Options{Clip: clip, Start: start, SegmentDuration: segment})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// next makes the stream's next segment.
func (b *clipBed) next() segsynth.Segment {
	b.t.Helper()
	s, err := b.w.Next()
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// upload runs the hub's upload of s: presigned PUT to S3, then the notice.
func (b *clipBed) upload(s segsynth.Segment) {
	b.t.Helper()
	req := proto.UploadRequest{Camera: "cam1", Start: s.Start, End: s.End, Bytes: int64(len(s.Data)), Codec: "h264", MD5: s.MD5}
	var up proto.Upload
	b.relay.Do(b.t, b.p.HubCredential, "POST", proto.PathHubUploads, req, http.StatusOK, &up)
	put, _ := http.NewRequest(up.Method, up.URL, bytes.NewReader(s.Data))
	for k, v := range up.Headers {
		put.Header[k] = v
	}
	put.ContentLength = int64(len(s.Data))
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		b.t.Fatalf("PUT segment: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("PUT segment: %d %s", resp.StatusCode, body)
	}
	b.relay.Do(b.t, b.p.HubCredential, "POST", proto.PathHubRecordings, proto.RecordingNotice{Key: up.Key, UploadRequest: req}, http.StatusCreated, nil)
}

type clipAnswer struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Start, End time.Time
	Recordings []struct{ ID string }
	Gaps       []struct {
		Start, End time.Time
		Reason     string
	}
	MediaStart time.Time `json:"media_start"`
	MediaEnd   time.Time `json:"media_end"`
	Bytes      int64     `json:"bytes"`
	URL        string    `json:"url"`
	HLSURL     string    `json:"hls_url"`
}

func (b *clipBed) create(start, end time.Time) clipAnswer {
	b.t.Helper()
	var c clipAnswer
	b.relay.Do(b.t, b.p.UserTk, "POST", "/api/v1/channels/"+b.channel+"/clips", map[string]time.Time{"start": start, "end": end}, http.StatusAccepted, &c)
	if c.ID == "" || c.Status != "in_progress" {
		b.t.Fatalf("created clip %+v, want an id and in_progress", c)
	}
	return c
}

func (b *clipBed) get(id string) clipAnswer {
	b.t.Helper()
	var c clipAnswer
	b.relay.Do(b.t, b.p.UserTk, "GET", "/api/v1/clips/"+id, nil, http.StatusOK, &c)
	return c
}

// wait polls the clip until it is no longer in progress.
func (b *clipBed) wait(id string, timeout time.Duration) clipAnswer {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := b.get(id)
		if c.Status != "in_progress" {
			return c
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("clip %s still in progress after %v: %+v", id, timeout, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkClip judges a finished clip's file with ffprobe and ffmpeg: it
// plays without one decoder message, starts with a keyframe at or at most
// one GOP before start, its timestamps are continuous, it ends with the
// frame that holds end, so it lasts from that keyframe to end within one
// frame, plus the gaps.
func checkClip(t *testing.T, c clipAnswer, gaps time.Duration) testbed.Probe {
	t.Helper()
	if c.Status != "finished" || c.URL == "" || c.HLSURL == "" {
		t.Fatalf("clip %+v: want finished with url and hls_url", c)
	}
	path := testbed.DownloadFile(t, c.URL, "clip.mp4")
	if fi, _ := os.Stat(path); fi.Size() != c.Bytes {
		t.Errorf("file has %d bytes, the clip says %d", fi.Size(), c.Bytes)
	}
	p := testbed.CheckSegment(t, path, "h264", 25, 2)
	// The file starts at the keyframe at or before start and ends with the
	// frame that holds end. It is a progressive MP4 whose sample tables
	// start at 0 (the fragments inside it keep the camera's timeline,
	// segsynth's like hubd's counting from the epoch), so ffprobe's format
	// duration, what a browser shows, is the clip's.
	if lead := c.Start.Sub(c.MediaStart); gaps == 0 && (lead < 0 || lead >= clipGOP) {
		t.Errorf("file starts at %s, %v before the clip's start %s: want the keyframe at or before it (GOP %v)", c.MediaStart, lead, c.Start, clipGOP)
	}
	testbed.CheckClipTiming(t, path, p, c.MediaEnd.Sub(c.MediaStart), clipFrame)
	if tail := c.MediaEnd.Sub(c.End); tail < 0 || tail >= clipFrame {
		t.Errorf("file ends at %s, %v after the clip's end %s: want the end of the frame holding it (%v)", c.MediaEnd, tail, c.End, clipFrame)
	}
	// A gap inside the range is a frozen frame (the sample before it
	// lasts over it), so the file lasts from the keyframe to end within
	// one frame
	// (ffprobe's times are in ms: 1 ms of rounding).
	got, want := time.Duration(p.Duration*float64(time.Second)), c.End.Sub(c.MediaStart)
	if d := got - want; d < -gaps-time.Millisecond || d > clipFrame+time.Millisecond {
		t.Errorf("file lasts %v, from the keyframe at %s to the end %s is %v: want that within one frame (%v) plus gaps (%v)",
			got, c.MediaStart.Format(time.StampMilli), c.End.Format(time.StampMilli), want, clipFrame, gaps)
	}
	if media := c.MediaEnd.Sub(c.MediaStart); math.Abs(p.Duration-media.Seconds()) > 0.001 {
		t.Errorf("file lasts %.3f s, the clip's media range %v", p.Duration, media)
	}
	// The HLS playlist plays: ffmpeg reads it over HTTP, byte ranges of the file.
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", c.HLSURL, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg on the HLS playlist: %v\n%s", err, out)
	}
	hls, first := hlsPackets(t, c.HLSURL)
	if hls != p.Packets {
		t.Errorf("the HLS stream has %d packets, the file %d", hls, p.Packets)
	}
	// Through HLS too the stream starts at 0 (EXT-X-MAP is the clip's
	// init section).
	if first < 0 || first >= clipFrame.Seconds() {
		t.Errorf("the HLS stream's first pts is %.3f s, want 0", first)
	}
	return p
}

// browserDuration is the duration headless Chromium gives the video at
// url once its metadata is loaded.
func browserDuration(t *testing.T, url string) float64 {
	t.Helper()
	br := testbed.StartBrowser(t)
	tab, err := br.NewTab()
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	// Opened as a page of its own, the file is Chromium's media document:
	// one <video> of it.
	if err := tab.Navigate(url, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	v := `document.querySelector('video')`
	if err := tab.WaitFor(v+` && `+v+`.readyState >= 1`, v+` && (`+v+`.error ? 'error ' + `+v+`.error.code + ' ' + `+v+`.error.message : 'readyState ' + `+v+`.readyState)`, 20*time.Second); err != nil {
		t.Fatalf("Chromium on the clip: %v", err)
	}
	var d float64
	if err := tab.Eval(v+`.duration`, &d, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return d
}

// hlsPackets counts the video packets ffprobe reads through the playlist,
// and gives the first one's pts.
func hlsPackets(t *testing.T, url string) (int, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time", "-of", "csv=p=0", url).CombinedOutput()
	if err != nil {
		t.Errorf("ffprobe on the HLS playlist: %v\n%s", err, out)
		return -1, -1
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		t.Errorf("ffprobe on the HLS playlist: no packets: %q", out)
		return -1, -1
	}
	first, err := strconv.ParseFloat(strings.TrimSuffix(lines[0], ","), 64)
	if err != nil {
		t.Errorf("ffprobe on the HLS playlist: pts %q", lines[0])
	}
	return len(lines), first
}

// TestClipOfFinishedRecordings: every recording is there before the clip
// is asked for; the clip trims to the keyframe at or before its start
// (here mid-GOP, in the second recording) and ends with the frame that
// holds its end (in the fifth, mid-fragment).
func TestClipOfFinishedRecordings(t *testing.T) {
	for _, store := range []string{"s3", "local"} {
		t.Run(store, func(t *testing.T) { testClipOfFinishedRecordings(t, store == "s3") })
	}
}

func testClipOfFinishedRecordings(t *testing.T, useS3 bool) {
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second).UTC()
	b := newClipBedOn(t, useS3, clipStream, t0, 3*time.Second)
	for range 6 {
		b.upload(b.next())
	}
	start, end := t0.Add(4*time.Second+400*time.Millisecond), t0.Add(13*time.Second+300*time.Millisecond)
	c := b.create(start, end)
	c = b.wait(c.ID, 30*time.Second)
	if len(c.Gaps) != 0 || len(c.Recordings) != 4 {
		t.Errorf("clip of recordings 2-5: %d recordings, gaps %+v", len(c.Recordings), c.Gaps)
	}
	// Trim exactness: the keyframe at or before 4.4 s is at 4 s.
	if want := t0.Add(4 * time.Second); !c.MediaStart.Equal(want) {
		t.Errorf("media_start %s, want the keyframe at %s", c.MediaStart, want)
	}
	// End exactness: the frame holding 13.3 s is the one from 13.28 s to 13.32 s.
	if want := t0.Add(13*time.Second + 320*time.Millisecond); !c.MediaEnd.Equal(want) {
		t.Errorf("media_end %s, want the end of the frame holding the clip's end, %s", c.MediaEnd, want)
	}
	p := checkClip(t, c, 0)
	if useS3 {
		// What a person's player shows: Chromium's <video>.duration.
		if d := browserDuration(t, c.URL); math.Abs(d-9.32) > clipFrame.Seconds() {
			t.Errorf("Chromium says the clip lasts %.3f s, want 9.32", d)
		}
	}
	if math.Abs(p.Duration-9.32) > 0.0015 {
		t.Errorf("file lasts %.3f s, want 9.320 (the keyframe at 4 s to the end of the frame holding 13.3 s)", p.Duration)
	}
	if p.Packets != 233 {
		t.Errorf("file holds %d frames, want 233 (4 s to 13.32 s at 25 fps)", p.Packets)
	}

	// Listed with its channel; deleted with its file.
	var list struct{ Clips []clipAnswer }
	b.relay.Do(t, b.p.UserTk, "GET", "/api/v1/channels/"+b.channel+"/clips", nil, http.StatusOK, &list)
	if len(list.Clips) != 1 || list.Clips[0].ID != c.ID || list.Clips[0].URL == "" {
		t.Errorf("list: %+v", list)
	}
	b.relay.Do(t, b.p.UserTk, "DELETE", "/api/v1/clips/"+c.ID, nil, http.StatusNoContent, nil)
	if resp, err := http.Get(c.URL); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("the clip's file after delete: %d, want 404", resp.StatusCode)
		}
	}
	b.relay.Do(t, b.p.UserTk, "GET", "/api/v1/clips/"+c.ID, nil, http.StatusNotFound, nil)
}

// TestClipEndUncuttable: a last fragment whose moof is not in the layout
// hubd writes (here its trun is version 0: valid, and equivalent without
// composition offsets, but not what mediacommon writes) is not cut. The
// MP4 still ends with the frame holding end (its sample tables leave the
// fragment's later samples out), presents from 0 with its duration; the
// HLS stream, made of the fragments as they are, ends with the whole
// fragment; both play cleanly, and relay logs why it kept it.
func TestClipEndUncuttable(t *testing.T) {
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second).UTC()
	b := newClipBed(t, t0, 3*time.Second)
	for range 3 {
		s := b.next()
		trunVersion0(t, &s)
		b.upload(s)
	}
	c := b.create(t0.Add(1400*time.Millisecond), t0.Add(5300*time.Millisecond))
	c = b.wait(c.ID, 30*time.Second)
	if c.Status != "finished" || len(c.Gaps) != 0 {
		t.Fatalf("clip %+v, want finished without gaps", c)
	}
	if !c.MediaStart.Equal(t0.Add(time.Second)) || !c.MediaEnd.Equal(t0.Add(5320*time.Millisecond)) {
		t.Errorf("media %s to %s, want the keyframe at 1 s to the end of the frame holding 5.3 s, at 5.32 s", c.MediaStart, c.MediaEnd)
	}
	path := testbed.DownloadFile(t, c.URL, "clip.mp4")
	p := testbed.CheckSegment(t, path, "h264", 25, 2)
	if math.Abs(p.Duration-4.32) > 0.0015 || p.Packets != 108 {
		t.Errorf("file lasts %.3f s with %d frames, want 4.32 s and 108 (1 s to 5.32 s)", p.Duration, p.Packets)
	}
	testbed.CheckClipTiming(t, path, p, c.MediaEnd.Sub(c.MediaStart), clipFrame)
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", c.HLSURL, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg on the HLS playlist: %v\n%s", err, out)
	}
	if n, _ := hlsPackets(t, c.HLSURL); n != 125 {
		t.Errorf("the HLS stream has %d packets, want 125 (1 s to the end of the fragment holding 5.3 s, at 6 s)", n)
	}
	if !strings.Contains(b.relay.Logs(), "clip ends with the whole fragment holding its end") {
		t.Errorf("relay did not log why it kept the whole fragment")
	}
}

// trunVersion0 rewrites every fragment of s with a version 0 trun.
func trunVersion0(t *testing.T, s *segsynth.Segment) {
	t.Helper()
	size := int64(len(s.Data))
	n, err := fragindex.TrailerSize(s.Data[size-fragindex.MfroSize:], size)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := fragindex.Parse(s.Data[size-n:], size)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ix.Fragments {
		moof := s.Data[f.Offset : f.Offset+int64(binary.BigEndian.Uint32(s.Data[f.Offset:]))]
		i := bytes.Index(moof, []byte("trun"))
		if i < 0 || moof[i+4] != 1 {
			t.Fatalf("fragment at %d: no version 1 trun", f.Offset)
		}
		moof[i+4] = 0
	}
	sum := md5.Sum(s.Data)
	s.MD5 = hex.EncodeToString(sum[:])
}

// TestClipIntoTheFuture: a clip that ends 20 s from now stays in progress
// while its recordings come in as they are recorded, and finishes when
// the last one arrives.
func TestClipIntoTheFuture(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s of real time")
	}
	now := time.Now().UTC()
	t0 := now.Add(-6 * time.Second).Truncate(time.Second)
	b := newClipBed(t, t0, 3*time.Second)
	start, end := t0.Add(2*time.Second), now.Add(20*time.Second)
	c := b.create(start, end)
	uploaded := 0
	for {
		s := b.next()
		if d := time.Until(s.End); d > 0 {
			time.Sleep(d) // recorded in real time
		}
		if got := b.get(c.ID); got.Status != "in_progress" {
			t.Fatalf("clip %s before its recordings are in (%d uploaded)", got.Status, uploaded)
		}
		b.upload(s)
		uploaded++
		if !s.End.Before(end) {
			break
		}
	}
	arrived := time.Now()
	c = b.wait(c.ID, 15*time.Second)
	t.Logf("finished %v after the last recording arrived", time.Since(arrived).Round(time.Millisecond))
	if len(c.Gaps) != 0 {
		t.Errorf("gaps %+v", c.Gaps)
	}
	checkClip(t, c, 0)
}

// TestClipAcrossRelayRestart: a clip in progress survives a restart of
// the relay and finishes when its last recordings arrive afterwards.
func TestClipAcrossRelayRestart(t *testing.T) {
	t0 := time.Now().Add(-5 * time.Minute).Truncate(time.Second).UTC()
	b := newClipBed(t, t0, 3*time.Second)
	segs := make([]segsynth.Segment, 5)
	for i := range segs {
		segs[i] = b.next()
	}
	for _, s := range segs[:2] {
		b.upload(s)
	}
	c := b.create(t0.Add(time.Second), t0.Add(14*time.Second))
	time.Sleep(300 * time.Millisecond)
	if got := b.get(c.ID); got.Status != "in_progress" || len(got.Recordings) != 2 {
		t.Fatalf("before the restart: %+v, want in progress with 2 recordings", got)
	}
	b.relay = b.relay.Restart(t, b.s3)
	if got := b.get(c.ID); got.Status != "in_progress" {
		t.Fatalf("after the restart: %+v, want still in progress", got)
	}
	for _, s := range segs[2:] {
		b.upload(s)
	}
	c = b.wait(c.ID, 30*time.Second)
	if len(c.Gaps) != 0 || len(c.Recordings) != 5 {
		t.Errorf("after the restart: %d recordings, gaps %+v", len(c.Recordings), c.Gaps)
	}
	checkClip(t, c, 0)
	if !strings.Contains(b.relay.Logs(), "resuming clips in progress") {
		t.Errorf("the restarted relay did not say it resumed the clip")
	}
}

// TestClipBeyondRetention: a range older than the channel's retention
// (30 days) holds nothing: the clip fails with the reason.
func TestClipBeyondRetention(t *testing.T) {
	t0 := time.Now().Add(-31 * 24 * time.Hour).Truncate(time.Second).UTC()
	b := newClipBed(t, t0, 3*time.Second)
	c := b.create(t0, t0.Add(10*time.Second))
	c = b.wait(c.ID, 15*time.Second)
	if c.Status != "failed" || !strings.Contains(c.Reason, "retention") || c.URL != "" {
		t.Errorf("clip beyond retention: %+v, want failed with the reason", c)
	}
}
