package main

import (
	"bytes"
	"errors"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFFmpegArgs(t *testing.T) {
	o := &options{segment: 2.5, transport: "tcp"}
	got := ffmpegArgs("rtsp://127.0.0.1:5/cam1", "/tmp/r/cam1", o)
	want := strings.Fields("-nostdin -v error -rtsp_transport tcp -i rtsp://127.0.0.1:5/cam1 -c copy -f segment " +
		"-segment_time 2.5 -segment_format mp4 -segment_format_options movflags=+frag_keyframe+empty_moov " +
		"-reset_timestamps 1 /tmp/r/cam1/%05d.mp4")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	o.segment = 30
	if got := ffmpegArgs("u", "d", o); got[12] != "30" {
		t.Fatalf("-segment_time %q, want 30", got[12])
	}
}

func TestParsePacketSizes(t *testing.T) {
	pk, b, err := parsePacketSizes("1200\n34,\n\n5\n")
	if err != nil || pk != 3 || b != 1239 {
		t.Fatalf("got %d packets, %d bytes, %v; want 3, 1239", pk, b, err)
	}
	if pk, b, err := parsePacketSizes(""); err != nil || pk != 0 || b != 0 {
		t.Fatalf("empty: %d, %d, %v", pk, b, err)
	}
	for _, bad := range []string{"12\nN/A\n", "-4\n"} {
		if _, _, err := parsePacketSizes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRatio(t *testing.T) {
	if r := ratio(1, 4); r == nil || *r != 0.25 {
		t.Fatalf("ratio(1, 4) = %v", r)
	}
	if r := ratio(1, 0); r != nil {
		t.Fatalf("ratio(1, 0) = %v, want nil", *r)
	}
	if got := formatRatio(ratio(1, 3)); got != "0.33x" {
		t.Fatalf("formatRatio = %q", got)
	}
	if got := formatRatio(nil); !strings.HasPrefix(got, "n/a") {
		t.Fatalf("formatRatio(nil) = %q", got)
	}
}

func TestFFmpegExit(t *testing.T) {
	if s, ok := ffmpegExit(nil); s != "0" || !ok {
		t.Fatalf("nil: %q %v", s, ok)
	}
	for code, wantOK := range map[string]bool{"255": true, "1": false} {
		err := exec.Command("sh", "-c", "exit "+code).Run()
		if err == nil {
			t.Fatal("sh exited 0")
		}
		// As child.stop returns it: wrapped with the process name.
		if s, ok := ffmpegExit(errors.Join(errors.New("ffmpeg cam1"), err)); s != code || ok != wantOK {
			t.Errorf("exit %s: got %q %v", code, s, ok)
		}
	}
	if s, ok := ffmpegExit(errors.New("did not exit within 10s of SIGINT: killed")); ok || !strings.Contains(s, "killed") {
		t.Errorf("killed: %q %v", s, ok)
	}
}

func TestCamerasWriting(t *testing.T) {
	dir := t.TempDir()
	for i, size := range []int{0, 36, -1} { // cam1 empty file, cam2 a header, cam3 nothing
		cam := filepath.Join(dir, "cam"+string(rune('1'+i)))
		if err := os.Mkdir(cam, 0o750); err != nil {
			t.Fatal(err)
		}
		if size >= 0 {
			if err := os.WriteFile(filepath.Join(cam, "00000.mp4"), make([]byte, size), 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := camerasWriting(dir, 3); err != nil || n != 1 {
		t.Fatalf("got %d, %v; want 1", n, err)
	}
	if _, err := camerasWriting(dir, 4); err == nil {
		t.Fatal("missing camera dir accepted")
	}
}

func TestReportReference(t *testing.T) {
	r := &result{Streams: 2, WindowSeconds: 10, CPUPercent: 1, CPUPerStream: 0.5, PeakRSSBytes: 10 << 20,
		BytesReceived: 1000, BytesWritten: 1010, WriteAmp: 1.01, HubdExit: "0"}
	r.Budget = judge(r)
	r.setReference(&refResult{Recorder: refLabel, Streams: 2, Processes: 2, WindowSeconds: 10, CPUPercent: 2,
		CPUPerStream: 1, PeakRSSBytes: 40 << 20, PayloadBytes: 1000, BytesWritten: 1002, WriteAmp: 1.002,
		Exits: []string{"255", "255"}})
	plain := &result{Streams: 4, HubdExit: "0"}
	plain.Budget = judge(plain)

	var b bytes.Buffer
	if err := report(&b, []*result{r, plain}, true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	row := "2 ffmpeg -c copy 10.0s 2.00 1.000 40.0 1000 1002 1.0020 0 0 0"
	found := false
	for _, line := range strings.Split(out, "\n") {
		found = found || strings.Join(strings.Fields(line), " ") == row
	}
	if !found {
		t.Errorf("no table row %q:\n%s", row, out)
	}
	for _, want := range []string{
		"2 streams: hubd/ffmpeg CPU per stream: 0.50x, peak RSS: 0.25x\n",
		"2 streams: ffmpeg exits 255 255",
		`"hubd_over_ref_cpu_per_stream": 0.5,`,
		`"hubd_over_ref_peak_rss": 0.25,`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "4 streams: hubd/ffmpeg") {
		t.Errorf("ratio line for a run without reference:\n%s", out)
	}

	b.Reset()
	if err := report(&b, []*result{plain}, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "ffmpeg") {
		t.Errorf("reference output without a reference:\n%s", b.String())
	}
}

func TestStopAllKillsAfterGrace(t *testing.T) {
	// One process stops on SIGINT, one ignores it and is killed after grace.
	var procs []*procstat.Child
	for _, script := range []string{"exec sleep 30", `trap "" INT; exec sleep 30`} {
		c, err := procstat.StartChild("sh", exec.Command("sh", "-c", script))
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, c)
	}
	defer stopAll(procs, syscall.SIGKILL, time.Second)
	time.Sleep(200 * time.Millisecond) // let sh set its trap and exec
	errs := stopAll(procs, syscall.SIGINT, 300*time.Millisecond)
	if errs[0] == nil || strings.Contains(errs[0].Error(), "killed") {
		t.Errorf("SIGINT: %v, want the signal's exit", errs[0])
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "of SIGINT: killed") {
		t.Errorf("ignored SIGINT: %v, want killed", errs[1])
	}
}
