package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/hub"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

// TestMain lets the test binary be hubd itself (HUBD_TEST_MAIN=1), so the
// crash test kills a real hubd process without building one.
func TestMain(m *testing.M) {
	if os.Getenv("HUBD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(testbed.RunInNetNS(m))
}

// startHubd starts the test binary as `hubd run -config cfgPath`, its
// output to out; it dies with the test binary.
func startHubd(t *testing.T, cfgPath string, out io.Writer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "-config", cfgPath)
	cmd.Env = append(os.Environ(), "HUBD_TEST_MAIN=1")
	cmd.Stderr, cmd.Stdout = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// writeHubdConfig writes head plus one TCP camera per id of srv into
// dir/hubd.yaml and returns its path.
func writeHubdConfig(t *testing.T, dir, head string, srv *fakecam.Server, cams []string) string {
	t.Helper()
	cfg := head + "cameras:\n"
	for _, c := range cams {
		cfg += fmt.Sprintf("  - id: %s\n    streams: {high: %q}\n    transport: tcp\n", c, srv.URL(c))
	}
	p := filepath.Join(dir, "hubd.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKill9 kills hubd with SIGKILL at random moments (during start-up and
// recovery too) and checks after each kill that a restart finds index and
// files in agreement, every segment playable, and at most the fragment in
// flight lost. HUBD_KILLS sets the count (default 20).
func TestKill9(t *testing.T) {
	testbed.RequireTools(t, "ffprobe", "ffmpeg")
	kills := 20
	if s := os.Getenv("HUBD_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	clip, err := fakecam.EncodeClip(context.Background(), fakecam.ClipOptions{GOP: 25})
	if err != nil {
		t.Fatal(err)
	}
	cams := []string{"cam1", "cam2"}
	srv, err := fakecam.Start(fakecam.Options{Clip: clip, Paths: cams})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	dir := t.TempDir()
	cfgPath := writeHubdConfig(t, dir, fmt.Sprintf("hub: {id: crash, data_dir: %q, ring_bytes: 1GiB}\nrecording: {segment_seconds: 3, fragment_seconds: 1}\n",
		filepath.Join(dir, "data")), srv, cams)
	logPath := filepath.Join(dir, "hubd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	checked := map[string]bool{}
	var worst time.Duration
	for i := 0; i < kills; i++ {
		cmd := startHubd(t, cfgPath, logf)
		// Mostly mid-recording, sometimes during start-up and repair.
		life := time.Duration(200+rng.IntN(4800)) * time.Millisecond
		time.Sleep(life)
		killedAt := time.Now()
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		fmt.Fprintf(logf, "---- test: SIGKILL %d after %v\n", i+1, life)

		segs := recoverAndCheck(t, filepath.Join(dir, "data"), checked)
		if life > 3*time.Second { // long enough to have written past start-up
			for _, c := range cams {
				var last time.Time
				for _, s := range segs {
					if s.Camera == c && s.End.After(last) {
						last = s.End
					}
				}
				// Fragments are 1 s: what was written before the one in flight
				// must have survived (plus scheduling slack on a busy machine).
				lost := killedAt.Sub(last)
				worst = max(worst, lost)
				if lost > 2500*time.Millisecond {
					t.Errorf("kill %d: %s lost %v before the kill, want at most the fragment in flight", i+1, c, lost)
				}
			}
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("after kill %d:\nhubd log:\n%s", i+1, tail(string(log), 4000))
		}
	}
	t.Logf("%d kills: %d segments checked, all playable, index and files agree; worst media lost before a kill: %v",
		kills, len(checked), worst.Round(time.Millisecond))
}

// recoverAndCheck runs the recovery hubd runs at start, then checks that
// index and files agree and that each new segment passes ffprobe/ffmpeg.
func recoverAndCheck(t *testing.T, dataDir string, checked map[string]bool) []ring.Segment {
	t.Helper()
	r, err := ring.Open(ring.Config{DataDir: dataDir, MaxBytes: 1 << 30, Scan: hub.ScanFile})
	if err != nil {
		t.Fatalf("reopen ring: %v", err)
	}
	segs, err := r.List("")
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	indexed := map[string]int64{}
	for _, s := range segs {
		if s.State == ring.Recording {
			t.Errorf("segment %s still marked recording after recovery", s.Path)
		}
		indexed[s.Path] = s.Bytes
	}
	onDisk := map[string]int64{}
	filepath.WalkDir(filepath.Join(dataDir, ring.SegmentsDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, _ := d.Info()
			rel, _ := filepath.Rel(dataDir, p)
			onDisk[rel] = info.Size()
		}
		return nil
	})
	for p, n := range indexed {
		if got, ok := onDisk[p]; !ok || got != n {
			t.Errorf("index has %s (%d bytes), disk has %d (present %v)", p, n, got, ok)
		}
	}
	for p := range onDisk {
		if _, ok := indexed[p]; !ok {
			t.Errorf("file %s is not in the index", p)
		}
	}
	for _, s := range segs {
		if checked[s.Path] {
			continue
		}
		checked[s.Path] = true
		pr := testbed.CheckSegment(t, filepath.Join(dataDir, s.Path), "h264", 25, 25)
		if pr.Packets != s.Frames {
			t.Errorf("%s: index says %d frames, ffprobe counts %d", s.Path, s.Frames, pr.Packets)
		}
	}
	return segs
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[strings.LastIndex(s[:len(s)-n], "\n")+1:]
}
