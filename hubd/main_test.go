package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/hub"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

func TestRunRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"malformed YAML", "hub: {id: [", "config"},
		{"unknown key", "hub: {id: h, colour: red}", "colour"},
		{"bad size", "hub: {ring_bytes: lots}", "lots"},
		{"camera without the recorded stream", "cameras:\n  - id: cam1\n    record: high\n    streams: {low: \"rtsp://x/\"}\n", "streams.high"},
		{"bad template", "cameras:\n  - id: cam1\n    streams: {high: \"rtsp://${nope}/\"}\n", "unknown placeholder ${nope}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "hubd.yaml")
			os.WriteFile(p, []byte(tt.yaml), 0o644)
			var out, errb bytes.Buffer
			if code := run([]string{"run", "-config", p}, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("error %q does not name %q", errb.String(), tt.want)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"version"}, {"run", "-h"}, {"recordings", "-h"}, {"status", "-h"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errb.String())
		}
		if out.Len()+errb.Len() == 0 {
			t.Errorf("%v printed nothing", args)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errb.String())
	}
}

// TestRecordingsWhileRunningAndAfter lists the ring through a running
// hubd's control socket, then from the index once it has stopped.
func TestRecordingsWhileRunningAndAfter(t *testing.T) {
	srv, err := fakecam.Start(fakecam.Options{Paths: []string{"cam1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hubd.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("hub: {id: cli, data_dir: %q}\nrecording: {segment_seconds: 2}\ncameras:\n  - id: cam1\n    streams: {high: %q}\n    transport: tcp\n",
		filepath.Join(dir, "data"), srv.URL("cam1"))), 0o644)

	var logs bytes.Buffer
	cmd := startHubd(t, cfg, &logs)
	defer cmd.Process.Kill()

	list := func() []ring.Segment {
		var out, errb bytes.Buffer
		if code := run([]string{"recordings", "-config", cfg, "-camera", "cam1", "-json"}, &out, &errb); code != 0 {
			if strings.Contains(errb.String(), "no index at") {
				return nil // hubd has not created it yet
			}
			t.Fatalf("recordings: exit %d: %s", code, errb.String())
		}
		var segs []ring.Segment
		if err := json.Unmarshal(out.Bytes(), &segs); err != nil {
			t.Fatalf("recordings -json: %v: %s", err, out.String())
		}
		return segs
	}
	deadline := time.Now().Add(15 * time.Second)
	var running []ring.Segment
	for time.Now().Before(deadline) {
		if running = list(); len(running) >= 2 && running[0].State == ring.Pending {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(running) < 2 {
		t.Fatalf("no closed segment listed while running: %+v\n%s", running, logs.String())
	}

	var out, errb bytes.Buffer
	if code := run([]string{"status", "-config", cfg, "-json"}, &out, &errb); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errb.String())
	}
	var rep hub.StatusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Cameras) != 1 || !rep.Cameras[0].Connected {
		t.Fatalf("status: %v %+v", err, rep)
	}
	out.Reset()
	if code := run([]string{"recordings", "-config", cfg}, &out, &errb); code != 0 || !strings.Contains(out.String(), "cam1") {
		t.Fatalf("recordings table: exit %d: %s", code, out.String())
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("hubd did not stop cleanly on SIGTERM: %v\n%s", err, logs.String())
	}
	after := list()
	if len(after) < len(running) {
		t.Fatalf("%d segments after stop, %d while running", len(after), len(running))
	}
	for _, s := range after {
		if s.State != ring.Pending {
			t.Errorf("%s: state %s after a clean stop", s.Path, s.State)
		}
	}
}
