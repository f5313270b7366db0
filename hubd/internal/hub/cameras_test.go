package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/hub"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

// reportSink is a relay stand-in that keeps each camera report (only the
// report route matters here; the uploader's requests get a 503).
type reportSink struct {
	mu      sync.Mutex
	reports [][]string
	srv     *httptest.Server
}

func newReportSink(t *testing.T) *reportSink {
	s := &reportSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != proto.PathHubCameras {
			http.Error(w, `{"error":"not here"}`, http.StatusServiceUnavailable)
			return
		}
		var rep proto.CameraReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			http.Error(w, `{"error":"bad"}`, http.StatusBadRequest)
			return
		}
		var ids []string
		for _, c := range rep.Cameras {
			ids = append(ids, c.ID)
		}
		s.mu.Lock()
		s.reports = append(s.reports, ids)
		s.mu.Unlock()
		w.Write([]byte(`{"cameras":[]}`))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// waitReport waits until the last report lists exactly ids.
func (s *reportSink) waitReport(t *testing.T, ids ...string) {
	t.Helper()
	want := fmt.Sprint(ids)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		var last string
		if n := len(s.reports); n > 0 {
			last = fmt.Sprint(s.reports[n-1])
		}
		s.mu.Unlock()
		if last == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Fatalf("relay never got the report %s; reports %v", want, s.reports)
}

// TestDynamicCameras: cameras added at run time record, removed ones stop
// (their segments stay), changed ones restart, the relay hears each change,
// and a source cannot override the config nor bring an invalid camera in.
func TestDynamicCameras(t *testing.T) {
	clip, err := fakecam.EncodeClip(context.Background(), fakecam.ClipOptions{Width: 320, Height: 240, Seconds: 2, GOP: 25, BitrateKbps: 300})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := fakecam.Start(fakecam.Options{Clip: clip, Paths: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sink := newReportSink(t)
	r := startHubWith(t, fmt.Sprintf("relay: {url: %q, credential: x}\n", sink.srv.URL), 1, camYAML("cam1", srv.URL("a"), "", "", "tcp"))
	sink.waitReport(t, "cam1")
	r.waitSegments("cam1", 1, 10*time.Second)

	// A discovered camera is added; one with the config's id does not
	// replace the config's; an invalid one is left out with a log line.
	r.hub.SetCameras(hub.FromZipato, []camera.Camera{
		{ID: "cam2", Name: "Garden", Streams: camera.Streams{High: srv.URL("b")}, Transport: camera.TransportTCP},
		{ID: "cam1", Streams: camera.Streams{High: srv.URL("c")}},
		{ID: "bad id!", Streams: camera.Streams{High: srv.URL("c")}},
	})
	sink.waitReport(t, "cam1", "cam2")
	r.waitSegments("cam2", 1, 10*time.Second)
	if c, _ := r.hub.Camera("cam1"); c.Streams.High != srv.URL("a") {
		t.Errorf("cam1 was taken from the device tree: %+v", c)
	}
	if src, _ := r.hub.CameraSource("cam2"); src != hub.FromZipato {
		t.Errorf("cam2 source %q", src)
	}
	if n := r.logs.count("camera ignored: invalid"); n != 1 {
		t.Errorf("invalid camera logged %d times, want 1", n)
	}
	// The same list again changes nothing and logs nothing new.
	sessions := r.status("cam2").Sessions
	r.hub.SetCameras(hub.FromZipato, []camera.Camera{
		{ID: "cam2", Name: "Garden", Streams: camera.Streams{High: srv.URL("b")}, Transport: camera.TransportTCP},
		{ID: "bad id!", Streams: camera.Streams{High: srv.URL("c")}},
	})
	if n := r.logs.count("camera ignored: invalid"); n != 1 {
		t.Errorf("invalid camera logged %d times after a resync, want 1", n)
	}
	if st := r.status("cam2"); st.Sessions != sessions {
		t.Errorf("an unchanged camera was restarted: sessions %d -> %d", sessions, st.Sessions)
	}

	// A change restarts the recorder with the new stream.
	r.hub.SetCameras(hub.FromZipato, []camera.Camera{
		{ID: "cam2", Name: "Garden", Streams: camera.Streams{High: srv.URL("c")}, Transport: camera.TransportTCP},
	})
	if c, _ := r.hub.Camera("cam2"); c.Streams.High != srv.URL("c") {
		t.Fatalf("cam2 not changed: %+v", c)
	}
	before := len(r.closed("cam2"))
	r.waitSegments("cam2", before+1, 10*time.Second)
	if n := r.logs.count("camera changed: restarting its recorder"); n != 1 {
		t.Errorf("restart logged %d times", n)
	}

	// Removal stops the recorder; the segments stay in the ring, closed.
	r.hub.SetCameras(hub.FromZipato, nil)
	sink.waitReport(t, "cam1")
	if _, ok := r.hub.Camera("cam2"); ok {
		t.Error("cam2 still known after removal")
	}
	for _, rec := range r.hub.Recorders() {
		if rec.Status().Camera == "cam2" {
			t.Error("cam2 still has a recorder")
		}
	}
	segs, _ := r.hub.Ring().List("cam2")
	if len(segs) < 2 {
		t.Fatalf("cam2 has %d segments after removal", len(segs))
	}
	for _, s := range segs {
		if s.State == "recording" {
			t.Errorf("segment %s still open after the camera was removed", s.Path)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	if now, _ := r.hub.Ring().List("cam2"); len(now) != len(segs) {
		t.Errorf("cam2 still recording after removal: %d -> %d segments", len(segs), len(now))
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r.check("cam1", "h264", 25, 25)
	r.check("cam2", "h264", 25, 25)
}
