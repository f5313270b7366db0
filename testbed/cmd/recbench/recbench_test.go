package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseCounts(t *testing.T) {
	got, err := parseCounts("1, 4,16")
	if err != nil || !reflect.DeepEqual(got, []int{1, 4, 16}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "1,,4", "x", "-2"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseReady(t *testing.T) {
	line := "fakecam ready rtsp://127.0.0.1:41234/cam1 rtsp://127.0.0.1:41234/cam2 (2 streams)"
	got, err := parseReady(line, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"rtsp://127.0.0.1:41234/cam1", "rtsp://127.0.0.1:41234/cam2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	if _, err := parseReady(line, 3); err == nil {
		t.Error("wrong URL count accepted")
	}
	if _, err := parseReady("fakecam ready rtsp://192.0.2.1:554/cam1 (1 streams)", 1); err == nil {
		t.Error("non-loopback camera accepted")
	}
}

func TestLineWatcherSplitWrites(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newLineWatcher(f, fakecamReadyTag)
	for _, p := range []string{"encoding clip\nfakecam re", "ady rtsp://127.0.0.1:1/cam1 (1 streams)", "\nmore\n"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if line := <-w.ready; !strings.HasSuffix(line, "(1 streams)") {
		t.Fatalf("ready line %q", line)
	}
}

func TestJudgeRSSOnlyAtFourStreams(t *testing.T) {
	r := &result{Streams: 1, CPUPerStream: 0.4, PeakRSSBytes: 40 << 20, WriteAmp: 1.01}
	r.Budget = judge(r)
	if !allPass([]*result{r}) {
		t.Fatalf("RSS judged at 1 stream: %+v", r.Budget)
	}
	r.Streams = 4
	r.Budget = judge(r)
	if allPass([]*result{r}) {
		t.Fatalf("40 MiB passed at 4 streams: %+v", r.Budget)
	}
}

func TestHubdConfigQuotes(t *testing.T) {
	o := &options{segment: 30, transport: "tcp"}
	got := hubdConfig("/tmp/d", []string{"rtsp://127.0.0.1:5/cam1"}, o)
	want := `hub: {id: bench, data_dir: "/tmp/d", ring_bytes: 8GiB}
recording: {segment_seconds: 30}
log: {level: warn}
cameras:
  - id: cam1
    streams: {high: "rtsp://127.0.0.1:5/cam1"}
    transport: tcp
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
