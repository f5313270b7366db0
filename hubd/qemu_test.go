package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/testbed"
)

// buildCross builds hubd for a hub's CPU, statically as make cross does.
// The test runs in a network namespace: modules come from the cache only.
func buildCross(t *testing.T, goarch, goarm string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hubd-"+goarch)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm,
		"GOPROXY=off", "GOFLAGS=-mod=readonly")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build hubd for %s: %v\n%s(run scripts/setup.sh first: it downloads the modules)", goarch, err, msg)
	}
	return out
}

// TestRecordARMv7UnderQEMU runs hubd built for the 32-bit ARMv7 hubs under
// qemu-arm-static: it records a gst-rtsp-server camera (H.264 720p25, 2 s
// GOP) for 30 s in 10 s segments, stops cleanly on SIGTERM, and every
// segment passes the ffprobe/ffmpeg checks.
func TestRecordARMv7UnderQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s of recording under emulation")
	}
	testbed.RequireTools(t, "qemu-arm-static", "ffprobe", "ffmpeg")
	bin := buildCross(t, "arm", "7")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != elf.EM_ARM || f.Class != elf.ELFCLASS32 {
		t.Fatalf("%s is %v %v, want 32-bit ARM", bin, f.Class, f.Machine)
	}
	f.Close()

	cam := testbed.GstCamera(t, testbed.GstOptions{})
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "hubd.yaml")
	yaml := fmt.Sprintf("hub: {id: armv7, data_dir: %q}\nrecording: {segment_seconds: 10}\ncameras:\n  - id: cam1\n    streams: {high: %q}\n    transport: tcp\n", dataDir, cam.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command("qemu-arm-static", bin, "run", "-config", cfg)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("hubd (ARMv7, qemu) exited while recording: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hubd (ARMv7, qemu) did not stop cleanly: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("hubd (ARMv7, qemu) still running 20 s after SIGTERM\n%s", logs.String())
	}

	segs, err := ring.ReadIndex(dataDir, "cam1")
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for _, s := range segs {
		if s.State != ring.Pending {
			t.Errorf("%s: state %s after a clean stop", s.Path, s.State)
		}
		p := testbed.CheckSegment(t, filepath.Join(dataDir, s.Path), "h264", 25, 50)
		if p.Packets != s.Frames {
			t.Errorf("%s: index says %d frames, ffprobe counts %d", s.Path, s.Frames, p.Packets)
		}
		total += s.Duration()
	}
	// Start-up under emulation and the first keyframe take a few seconds of the 30.
	if len(segs) < 3 || total < 24*time.Second {
		t.Fatalf("recorded %d segments, %s in all; want >= 3 segments and >= 24 s of 30\n%s", len(segs), total, logs.String())
	}
	t.Logf("ARMv7 hubd under qemu: %d segments, %s recorded of 30 s", len(segs), total.Round(time.Millisecond))
}
