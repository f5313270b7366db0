package main

import (
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseArches(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"amd64,armv7,arm64", []string{"amd64", "armv7", "arm64"}, ""},
		{"arm64, amd64", []string{"amd64", "arm64"}, ""}, // the reference goes first
		{"amd64", []string{"amd64"}, ""},
		{"armv7", nil, "amd64 must be in the list"},
		{"amd64,mips", nil, `unknown arch "mips"`},
		{"amd64,amd64", nil, "listed twice"},
	}
	for _, tt := range tests {
		got, err := parseArches(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %v %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseFlagsBounds(t *testing.T) {
	for _, args := range [][]string{{"-n", "0"}, {"-duration", "1s"}, {"-ring-mib", "8"}, {"-segment", "0.5"}, {"-warmup", "0s"}, {"extra"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.n != 4 || o.duration != 60*time.Second || len(o.arches) != 3 {
		t.Fatalf("defaults: %+v %v", o, err)
	}
}

func TestHubdConfig(t *testing.T) {
	got := hubdConfig("foot-amd64", "/tmp/d", 16<<20, 10, "http://127.0.0.1:5", "cr\"ed", []string{"rtsp://127.0.0.1:6/cam1"})
	want := `hub: {id: "foot-amd64", data_dir: "/tmp/d", ring_bytes: 16777216}
recording: {segment_seconds: 10}
relay: {url: "http://127.0.0.1:5", credential: "cr\"ed"}
log: {level: warn}
cameras:
  - id: cam1
    streams: {high: "rtsp://127.0.0.1:6/cam1"}
    transport: tcp
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := hubdConfig("h", "/d", 16<<20, 10, "u", "c", nil); !strings.HasSuffix(got, "cameras: []\n") {
		t.Fatalf("no-camera config:\n%s", got)
	}
}

func TestCheckQueues(t *testing.T) {
	specs := []queueSpec{
		{Name: "per camera", Limit: 512, Metric: "hubd_queue_frames", PerCamera: true},
		{Name: "ring", LimitOf: "hubd_ring_max_bytes", Metric: "hubd_ring_used_bytes"},
		{Name: "idle, none", Limit: 16, Idle: true},
		{Name: "flight", Limit: 2, Metric: "hubd_uploads_in_flight"},
	}
	m := map[string]float64{
		`hubd_queue_frames{camera="cam1"}`: 3, `hubd_queue_frames{camera="cam2"}`: 600,
		"hubd_ring_used_bytes": 10, "hubd_ring_max_bytes": 20,
		"hubd_uploads_in_flight_other": 1, // a longer name is not the family
	}
	got := checkQueues(specs, m, 2)
	want := []struct {
		pass bool
		why  string
	}{{false, "600 above the bound 512"}, {true, ""}, {false, "no metric"}, {false, "absent from /metrics"}}
	for i, w := range want {
		if got[i].Pass != w.pass || !strings.Contains(got[i].Why, w.why) {
			t.Errorf("%s: pass %v why %q, want %v %q", specs[i].Name, got[i].Pass, got[i].Why, w.pass, w.why)
		}
	}
	if got := checkQueues(specs[:1], m, 3); got[0].Pass || !strings.Contains(got[0].Why, "2 series of hubd_queue_frames for 3 cameras") {
		t.Errorf("series count not checked: %+v", got[0])
	}
}

func TestDerive(t *testing.T) {
	amd := &runResult{Arch: "amd64", Streams: 4, Window: 60 * time.Second, CPUSeconds: 0.6, FDs: 24, Goroutines: 49,
		Base: fixedCost{FDs: 12, Goroutines: 17}, WriteBytes: 66 << 20, SegmentBytes: 64 << 20, Segments: 24,
		Evicted: 3, IndexMid: 32 << 10, IndexEnd: 32 << 10, PeakRSSBytes: 23 << 20}
	arm := &runResult{Arch: "armv7", Streams: 4, Window: 60 * time.Second, CPUSeconds: 1.8, SegmentBytes: 1, WriteBytes: 3}
	rep := &benchReport{Binaries: []binarySize{{"amd64", 13 << 20}, {"armv7", 26 << 20}}, Runs: []*runResult{amd, arm}}
	rep.derive()
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	if !near(amd.CPUPerStream, 0.25) || !near(arm.CPURatio, 3) || !near(amd.FDsPerCam, 3) || !near(amd.GoroutinesPerC, 8) {
		t.Errorf("per stream/camera: %+v", amd)
	}
	if !near(amd.WritesPerHour, float64(66<<20)*60/4) || !near(amd.RestPerSegment, float64(2<<20)/24) {
		t.Errorf("writes: %v %v", amd.WritesPerHour, amd.RestPerSegment)
	}
	fails := map[string]bool{}
	for _, v := range rep.Budget {
		if !v.Pass {
			fails[v.What] = true
		}
	}
	for _, want := range []string{"hubd stripped binary, armv7 <= 25 MiB", "armv7: bytes to storage <= 1.25 x segment bytes (no file rewritten)", "armv7: index does not grow once the ring evicts"} {
		if !fails[want] {
			t.Errorf("%q not failed: %v", want, fails)
		}
	}
	if len(fails) != 3 {
		t.Errorf("unexpected failures: %v", fails)
	}
	var b strings.Builder
	if err := report(&b, rep, true); err != nil || !strings.Contains(b.String(), "FAIL  hubd stripped binary, armv7") {
		t.Errorf("report: %v\n%s", err, b.String())
	}
}

func TestFromMetrics(t *testing.T) {
	m0 := map[string]float64{`hubd_bytes_written_total{camera="cam1"}`: 100, `hubd_bytes_written_total{camera="cam2"}`: 50, "hubd_uploads_total": 1}
	m1 := map[string]float64{`hubd_bytes_written_total{camera="cam1"}`: 300, `hubd_bytes_written_total{camera="cam2"}`: 150, "hubd_uploads_total": 4,
		`hubd_frames_dropped_total{camera="cam1",reason="queue_full"}`: 2, `hubd_frames_dropped_total{camera="cam1",reason="no_keyframe"}`: 9,
		"go_goroutines": 49}
	var r runResult
	r.fromMetrics(m0, m1)
	if r.SegmentBytes != 300 || r.Uploads != 3 || r.QueueFull != 2 || r.Goroutines != 49 {
		t.Fatalf("%+v", r)
	}
}
