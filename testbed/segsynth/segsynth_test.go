package segsynth

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/fragindex"
	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

func TestSegments(t *testing.T) {
	testbed.RequireTools(t, "ffmpeg", "ffprobe")
	clip, err := fakecam.EncodeClip(context.Background(), fakecam.ClipOptions{Width: 320, Height: 240, FPS: 25, Seconds: 4, GOP: 25, BitrateKbps: 300})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	w, err := New(Options{Clip: clip, Start: start, SegmentDuration: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var prevEnd uint64
	for i := range 4 {
		if i == 2 {
			w.Skip(10 * time.Second)
		}
		s, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if s.Frames != 75 || s.End.Sub(s.Start) != 3*time.Second {
			t.Errorf("segment %d: %d frames, %v-%v", i, s.Frames, s.Start, s.End)
		}
		n, err := fragindex.TrailerSize(s.Data[len(s.Data)-fragindex.MfroSize:], int64(len(s.Data)))
		if err != nil {
			t.Fatal(err)
		}
		ix, err := fragindex.Parse(s.Data[int64(len(s.Data))-n:], int64(len(s.Data)))
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 || i == 3 {
			if ix.Start() != prevEnd {
				t.Errorf("segment %d starts at %d, previous ended at %d", i, ix.Start(), prevEnd)
			}
		}
		if i == 2 && ix.Start() != prevEnd+10*90000 {
			t.Errorf("after a 10 s gap, segment starts at %d, want %d", ix.Start(), prevEnd+10*90000)
		}
		prevEnd = ix.EndTime
		p := filepath.Join(t.TempDir(), "s.mp4")
		os.WriteFile(p, s.Data, 0o644)
		testbed.CheckSegment(t, p, "h264", 25, 25)
	}
}
