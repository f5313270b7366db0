package segment_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/zipnvr/zipnvr/hubd/internal/hub"
	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/hubd/internal/segment"
	"github.com/zipnvr/zipnvr/pkg/fragindex"
	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

type rig struct {
	t    *testing.T
	dir  string
	ring *ring.Ring
	seg  *segment.Segmenter
	now  time.Time
}

func newRig(t *testing.T, segDur time.Duration) *rig {
	t.Helper()
	dir := t.TempDir()
	r, err := ring.Open(ring.Config{DataDir: dir, MaxBytes: 1 << 30, Scan: hub.ScanFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	rg := &rig{t: t, dir: dir, ring: r, now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	rg.seg = segment.New(segment.Config{
		CameraID: "cam1", Store: hub.RingStore{R: r},
		SegmentDuration: segDur, FragmentDuration: time.Second, FsyncInterval: 2 * time.Second,
		MaxFrameGap: 2 * time.Second, MaxDrift: 2 * time.Second,
		Now: func() time.Time { return rg.now },
	})
	return rg
}

func clip(t *testing.T, o fakecam.ClipOptions) *fakecam.Clip {
	t.Helper()
	testbed.RequireTools(t, "ffmpeg", "ffprobe")
	c, err := fakecam.EncodeClip(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func track(c *fakecam.Clip) media.Track {
	if c.Codec == "h265" {
		return media.Track{Codec: media.H265}
	}
	return media.Track{Codec: media.H264}
}

func isKey(c *fakecam.Clip, au [][]byte) bool {
	if c.Codec == "h265" {
		return h265.IsRandomAccess(au)
	}
	return h264.IsRandomAccess(au)
}

// feed writes AUs [from, to) of c at DTS base + i*frame; received follows
// the DTS on the hub clock unless the caller moves rg.now itself.
func (rg *rig) feed(c *fakecam.Clip, from, to int, base int64) {
	rg.t.Helper()
	step := int64(media.ClockRate / c.FPS)
	for i := from; i < to; i++ {
		au := c.AUs[i%len(c.AUs)]
		dts := base + int64(i)*step
		rg.now = rg.now.Add(time.Second / time.Duration(c.FPS))
		f := &media.Frame{DTS: dts, PTS: dts, AU: au, RandomAccess: isKey(c, au), Received: rg.now}
		if err := rg.seg.Write(f); err != nil {
			rg.t.Fatal(err)
		}
	}
}

func (rg *rig) close() []ring.Segment {
	rg.t.Helper()
	if err := rg.seg.Close(); err != nil {
		rg.t.Fatal(err)
	}
	segs, err := rg.ring.List("")
	if err != nil {
		rg.t.Fatal(err)
	}
	return segs
}

func (rg *rig) check(segs []ring.Segment, codec string, fps float64, gop int) {
	rg.t.Helper()
	for _, s := range segs {
		p := testbed.CheckSegment(rg.t, filepath.Join(rg.dir, s.Path), codec, fps, gop)
		if p.Packets != s.Frames {
			rg.t.Errorf("%s: index says %d frames, ffprobe counts %d", s.Path, s.Frames, p.Packets)
		}
		tol := 0.05
		if codec == "mjpeg" {
			tol += 1 / fps // ffprobe gives MJPEG-in-MP4 packets no duration, even ffmpeg's own
		}
		if d := s.Duration().Seconds() - p.Duration; d > tol || d < -tol {
			rg.t.Errorf("%s: index duration %.3fs, ffprobe %.3fs", s.Path, s.Duration().Seconds(), p.Duration)
		}
	}
}

func TestSegmenterCutsOnKeyframes(t *testing.T) {
	for _, codec := range []string{"h264", "h265"} {
		t.Run(codec, func(t *testing.T) {
			c := clip(t, fakecam.ClipOptions{Codec: codec, Width: 320, Height: 240, FPS: 25, Seconds: 2, GOP: 25, BitrateKbps: 300})
			rg := newRig(t, 2*time.Second)
			rg.seg.Start(track(c))
			rg.feed(c, 0, 25*9, 0) // 9 s: 4 full segments of 2 s and one of 1 s
			segs := rg.close()
			if len(segs) != 5 {
				t.Fatalf("got %d segments, want 5: %+v", len(segs), segs)
			}
			for i, s := range segs {
				want := 50
				if i == 4 {
					want = 25
				}
				if s.Frames != want {
					t.Errorf("segment %d has %d frames, want %d", i, s.Frames, want)
				}
				if i > 0 && !s.Start.Equal(segs[i-1].End) {
					t.Errorf("segment %d starts at %v, previous ended at %v: wall clock must be contiguous", i, s.Start, segs[i-1].End)
				}
			}
			wantCodec := codec
			if codec == "h265" {
				wantCodec = "hevc"
			}
			rg.check(segs, wantCodec, 25, 25)
		})
	}
}

func TestSegmenterDiscontinuities(t *testing.T) {
	c := clip(t, fakecam.ClipOptions{Width: 320, Height: 240, FPS: 25, Seconds: 2, GOP: 25, BitrateKbps: 300})
	step := int64(media.ClockRate / 25)
	tests := []struct {
		name         string
		run          func(rg *rig)
		wantSegments int
		wantFrames   int
		wantDisc     uint64
	}{
		{"frames before the first keyframe are dropped", func(rg *rig) {
			rg.feed(c, 10, 60, 0)
		}, 1, 35, 0},
		{"forward timestamp jump closes the segment", func(rg *rig) {
			rg.feed(c, 0, 40, 0)
			rg.feed(c, 40, 100, 10*media.ClockRate) // +10 s mid-GOP: wait for the keyframe at 50
		}, 2, 40 + 50, 1},
		{"backward timestamp jump closes the segment", func(rg *rig) {
			rg.feed(c, 0, 40, 100*media.ClockRate)
			rg.feed(c, 40, 100, 0)
		}, 2, 40 + 50, 1},
		{"small gap is bridged, not cut", func(rg *rig) {
			rg.feed(c, 0, 40, 0)
			rg.feed(c, 40, 75, step*10) // 10 frames missing = 0.4 s < max gap
		}, 1, 75, 0},
		{"new session closes the segment", func(rg *rig) {
			rg.feed(c, 0, 30, 0)
			rg.seg.Start(track(c))
			rg.feed(c, 0, 30, 5*media.ClockRate)
		}, 2, 60, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, 30*time.Second)
			rg.seg.Start(track(c))
			tt.run(rg)
			segs := rg.close()
			frames := 0
			for _, s := range segs {
				frames += s.Frames
			}
			if len(segs) != tt.wantSegments || frames != tt.wantFrames {
				t.Errorf("got %d segments with %d frames, want %d with %d", len(segs), frames, tt.wantSegments, tt.wantFrames)
			}
			if got := rg.seg.C.Discontinuities.Load(); got != tt.wantDisc {
				t.Errorf("discontinuities = %d, want %d", got, tt.wantDisc)
			}
			rg.check(segs, "h264", 0, 25)
		})
	}
}

func TestSegmenterParameterChangeStartsNewInit(t *testing.T) {
	small := clip(t, fakecam.ClipOptions{Width: 320, Height: 240, FPS: 25, Seconds: 2, GOP: 25, BitrateKbps: 300})
	big := clip(t, fakecam.ClipOptions{Width: 640, Height: 480, FPS: 25, Seconds: 2, GOP: 25, BitrateKbps: 600})
	rg := newRig(t, 30*time.Second)
	rg.seg.Start(track(small))
	rg.feed(small, 0, 50, 0)
	rg.feed(big, 50, 100, 0) // continuous timestamps, new SPS at frame 50
	segs := rg.close()
	if len(segs) != 2 {
		t.Fatalf("got %d segments, want 2", len(segs))
	}
	p0 := testbed.CheckSegment(t, filepath.Join(rg.dir, segs[0].Path), "h264", 25, 25)
	p1 := testbed.CheckSegment(t, filepath.Join(rg.dir, segs[1].Path), "h264", 25, 25)
	if p0.Width != 320 || p1.Width != 640 {
		t.Errorf("widths %d and %d, want 320 then 640", p0.Width, p1.Width)
	}
}

func TestSegmenterWallClock(t *testing.T) {
	c := clip(t, fakecam.ClipOptions{Width: 320, Height: 240, FPS: 25, Seconds: 2, GOP: 25, BitrateKbps: 300})
	t.Run("camera clock drift re-anchors at a segment boundary", func(t *testing.T) {
		rg := newRig(t, 2*time.Second)
		rg.seg.Start(track(c))
		rg.feed(c, 0, 50, 0)
		rg.now = rg.now.Add(5 * time.Second) // frames now arrive 5 s later than the camera clock says
		rg.feed(c, 50, 150, 0)
		segs := rg.close()
		last := segs[len(segs)-1]
		if gap := last.Start.Sub(segs[0].End); gap < 4*time.Second {
			t.Errorf("after 5 s of drift the wall clock was not re-anchored: %v", gap)
		}
		for i := 1; i < len(segs); i++ {
			if segs[i].Start.Before(segs[i-1].End) {
				t.Errorf("segment %d overlaps the previous one", i)
			}
		}
	})
	t.Run("stepped system clock is followed", func(t *testing.T) {
		rg := newRig(t, 2*time.Second)
		rg.seg.Start(track(c))
		rg.feed(c, 0, 50, 0)
		// Wall clock jumps an hour ahead; a monotonic reading would not move.
		rg.now = rg.now.Add(time.Hour)
		rg.feed(c, 50, 100, 0)
		segs := rg.close()
		if got := segs[len(segs)-1].Start.Sub(segs[0].Start); got < time.Hour {
			t.Errorf("segments after the step start %v after the first, want > 1h", got)
		}
	})
}

func TestSegmenterMJPEG(t *testing.T) {
	testbed.RequireTools(t, "ffmpeg")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10",
		"-frames:v", "1", "-c:v", "mjpeg", "-f", "image2pipe", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	rg := newRig(t, 2*time.Second)
	rg.seg.Start(media.Track{Codec: media.MJPEG})
	for i := 0; i < 50; i++ {
		ts := int64(i) * media.ClockRate / 10
		rg.now = rg.now.Add(100 * time.Millisecond)
		f := &media.Frame{DTS: ts, PTS: ts, AU: [][]byte{out}, RandomAccess: true, Received: rg.now, Width: 320, Height: 240}
		if err := rg.seg.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	segs := rg.close()
	if len(segs) != 3 {
		t.Fatalf("got %d segments, want 3 (2 s, 2 s, 1 s)", len(segs))
	}
	rg.check(segs, "mjpeg", 10, 1)
}

func TestScanTruncated(t *testing.T) {
	c := clip(t, fakecam.ClipOptions{Width: 320, Height: 240, FPS: 25, Seconds: 2, GOP: 25, BitrateKbps: 300})
	rg := newRig(t, 30*time.Second)
	rg.seg.Start(track(c))
	rg.feed(c, 0, 100, 0)
	segs := rg.close()
	full, err := os.ReadFile(filepath.Join(rg.dir, segs[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	whole, err := segment.Scan(bytesReaderAt(full), int64(len(full)))
	if err != nil || whole.Frames != 100 || whole.ValidSize != int64(len(full)) || !whole.Indexed {
		t.Fatalf("whole file: %+v, %v", whole, err)
	}
	trailer, err := fragindex.TrailerSize(full[len(full)-fragindex.MfroSize:], int64(len(full)))
	if err != nil {
		t.Fatal(err)
	}
	mediaEnd := int64(len(full)) - trailer
	// Every cut point must yield either "not playable" or a prefix of whole
	// fragments that ffprobe accepts.
	for _, cut := range []int{10, int(whole.InitSize), int(whole.InitSize) + 100, len(full) / 3, len(full) / 2, len(full) - 1} {
		res, err := segment.Scan(bytesReaderAt(full[:cut]), int64(cut))
		if err != nil {
			if cut > len(full)/3 {
				t.Errorf("cut at %d: %v", cut, err)
			}
			continue
		}
		// A cut inside the trailer keeps every fragment, without the index.
		if res.ValidSize > int64(cut) || res.Frames == 0 || res.Frames > 100 || res.Indexed ||
			res.Frames == 100 && (int64(cut) < mediaEnd || res.ValidSize != mediaEnd) {
			t.Errorf("cut at %d: %+v", cut, res)
		}
		p := filepath.Join(t.TempDir(), "cut.mp4")
		if err := os.WriteFile(p, full[:res.ValidSize], 0o644); err != nil {
			t.Fatal(err)
		}
		if pr := testbed.CheckSegment(t, p, "h264", 0, 25); pr.Packets != res.Frames {
			t.Errorf("cut at %d: scan says %d frames, ffprobe %d", cut, res.Frames, pr.Packets)
		}
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, nil
	}
	return copy(p, b[off:]), nil
}

// TestSegmenterNoKeyframeForAMinute: a camera whose stream never carries a
// keyframe records nothing, warns once, and starts at the first keyframe.
func TestSegmenterNoKeyframeForAMinute(t *testing.T) {
	c := clip(t, fakecam.ClipOptions{Width: 320, Height: 240, FPS: 25, Seconds: 2, GOP: 25, BitrateKbps: 300})
	var logs bytes.Buffer
	rg := newRig(t, 2*time.Second)
	rg.seg = segment.New(segment.Config{
		CameraID: "cam1", Store: hub.RingStore{R: rg.ring},
		SegmentDuration: 2 * time.Second, FragmentDuration: time.Second, FsyncInterval: 2 * time.Second,
		MaxFrameGap: 2 * time.Second, MaxDrift: 2 * time.Second,
		Now:    func() time.Time { return rg.now },
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	rg.seg.Start(track(c))
	step := int64(media.ClockRate / 25)
	for i := 0; i < 60*25; i++ { // a minute of P-frames only
		au := c.AUs[1+i%24]
		rg.now = rg.now.Add(40 * time.Millisecond)
		if err := rg.seg.Write(&media.Frame{DTS: int64(i) * step, PTS: int64(i) * step, AU: au, Received: rg.now}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "no keyframe"); n != 1 {
		t.Errorf("warned %d times about missing keyframes, want once:\n%s", n, logs.String())
	}
	rg.feed(c, 60*25, 60*25+50, 0) // keyframes again (the clip's frame 0 and 25)
	segs := rg.close()
	if len(segs) != 1 || rg.seg.C.FramesDropped.Load() != 60*25 {
		t.Fatalf("%d segments, %d dropped; want 1 segment after 1500 dropped frames", len(segs), rg.seg.C.FramesDropped.Load())
	}
	if !strings.Contains(logs.String(), "recording resumes") {
		t.Error("no log line when recording resumed")
	}
	rg.check(segs, "h264", 25, 25)
}
