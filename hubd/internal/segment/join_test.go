package segment_test

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/pkg/fragindex"
	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

// readIndexed reads a segment file and its trailer.
func readIndexed(t *testing.T, path string) ([]byte, fragindex.Index) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := fragindex.TrailerSize(b[len(b)-fragindex.MfroSize:], int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ix, err := fragindex.Parse(b[int64(len(b))-n:], int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b, ix
}

// TestSegmentsJoinByCopy is the contract relay's clips rely on: the
// segments of one stream share their init section and carry one continuous
// tfdt timeline, so the init of the first followed by byte ranges of whole
// fragments (from any keyframe fragment on) is one valid MP4 with
// continuous timestamps, and the trailer says where every fragment is.
func TestSegmentsJoinByCopy(t *testing.T) {
	c := clip(t, fakecam.ClipOptions{Width: 320, Height: 240, FPS: 25, Seconds: 2, GOP: 25, BitrateKbps: 300})
	rg := newRig(t, 2*time.Second)
	rg.seg.Start(track(c))
	rg.feed(c, 0, 25*9, 0)
	segs := rg.close()
	if len(segs) != 5 {
		t.Fatalf("%d segments, want 5", len(segs))
	}
	var out bytes.Buffer
	var prevEnd uint64
	var init0 [8]byte
	for i, s := range segs {
		b, ix := readIndexed(t, filepath.Join(rg.dir, s.Path))
		if ix.Timescale != media.ClockRate || ix.DataEnd <= ix.InitSize {
			t.Fatalf("segment %d: index %+v", i, ix)
		}
		// The timeline follows the wall clock (ticks since the epoch) and
		// is continuous from one segment to the next.
		wall := float64(ix.Start()) / media.ClockRate
		if d := wall - float64(s.Start.UnixNano())/1e9; math.Abs(d) > 0.002 {
			t.Errorf("segment %d: timeline starts at %.3f, wall clock at %.3f", i, wall, float64(s.Start.UnixNano())/1e9)
		}
		if i == 0 {
			init0 = ix.InitHash
			out.Write(b[:ix.InitSize])
			// Start at the second keyframe fragment: a trim.
			k := 0
			for j, f := range ix.Fragments {
				if f.Sync && j > 0 {
					k = j
					break
				}
			}
			if k == 0 {
				t.Fatal("no second keyframe fragment in the first segment")
			}
			out.Write(b[ix.Fragments[k].Offset:ix.DataEnd])
		} else {
			if ix.InitHash != init0 {
				t.Errorf("segment %d: init section differs from the first's", i)
			}
			if ix.Start() != prevEnd {
				t.Errorf("segment %d starts at tick %d, the previous ended at %d", i, ix.Start(), prevEnd)
			}
			out.Write(b[ix.InitSize:ix.DataEnd])
		}
		prevEnd = ix.EndTime
	}
	joined := filepath.Join(t.TempDir(), "joined.mp4")
	if err := os.WriteFile(joined, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testbed.CheckSegment(t, joined, "h264", 25, 1)
	if p.Packets != 25*9-25 {
		t.Errorf("joined file has %d packets, want %d", p.Packets, 25*9-25)
	}
	checkContinuous(t, joined, 0.04)
}

// checkContinuous: every packet's DTS is the previous one's plus one frame.
func checkContinuous(t *testing.T, path string, frame float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=dts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	prev := math.NaN()
	for i, l := range strings.Fields(string(out)) {
		dts, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
		if err != nil {
			t.Fatalf("packet %d: dts %q", i, l)
		}
		if !math.IsNaN(prev) && math.Abs(dts-prev-frame) > 0.001 {
			t.Errorf("packet %d: DTS %.4f after %.4f: not continuous", i, dts, prev)
			return
		}
		prev = dts
	}
}
