package main

import (
	"reflect"
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
