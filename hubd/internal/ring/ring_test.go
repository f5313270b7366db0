package ring_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/zipnvr/zipnvr/hubd/internal/hub"
	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/hubd/internal/segment"
	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

func open(t *testing.T, dir string, max int64) *ring.Ring {
	t.Helper()
	r, err := ring.Open(ring.Config{DataDir: dir, MaxBytes: max, Scan: hub.ScanFile})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func write(t *testing.T, r *ring.Ring, cam string, i int, data []byte, commit bool) *ring.File {
	t.Helper()
	start := t0.Add(time.Duration(i) * 4 * time.Second)
	f, err := r.Create(cam, "h264", start)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if commit {
		if err := f.Commit(start.Add(4*time.Second), 100); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestEvictionOrder(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, 1000)
	chunk := bytes.Repeat([]byte{1}, 300)
	for i := 0; i < 3; i++ {
		write(t, r, "cam1", i, chunk, true)
	}
	segs, _ := r.List("")
	if err := r.MarkUploaded(segs[1].ID); err != nil {
		t.Fatal(err)
	}
	write(t, r, "cam1", 3, chunk, true) // 1200 > 1000: the uploaded one goes first
	write(t, r, "cam2", 4, chunk, true) // then the oldest pending
	st := r.Stats()
	if st.Evicted != 2 || st.EvictedBeforeUpload != 1 || st.UsedBytes != 900 {
		t.Fatalf("stats %+v, want 2 evicted, 1 before upload, 900 bytes used", st)
	}
	left, _ := r.List("")
	var ids []uint64
	for _, s := range left {
		ids = append(ids, s.ID)
		if _, err := os.Stat(filepath.Join(dir, s.Path)); err != nil {
			t.Errorf("segment %d file: %v", s.ID, err)
		}
	}
	if len(ids) != 3 || ids[0] != segs[2].ID {
		t.Fatalf("left %v, want the three newest", ids)
	}
	for _, gone := range segs[:2] {
		if _, err := os.Stat(filepath.Join(dir, gone.Path)); !os.IsNotExist(err) {
			t.Errorf("evicted file %s still there", gone.Path)
		}
	}
	if cam2, _ := r.List("cam2"); len(cam2) != 1 {
		t.Errorf("List(cam2) = %d segments, want 1", len(cam2))
	}
	r.Close()

	// Counters survive a restart.
	r = open(t, dir, 1000)
	defer r.Close()
	if st := r.Stats(); st.Evicted != 2 || st.EvictedBeforeUpload != 1 || st.Segments != 3 {
		t.Fatalf("after reopen: %+v", st)
	}
}

func TestOpenSegmentsAreNeverEvicted(t *testing.T) {
	r := open(t, t.TempDir(), 500)
	defer r.Close()
	f := write(t, r, "cam1", 0, bytes.Repeat([]byte{1}, 800), false)
	if st := r.Stats(); st.Evicted != 0 || st.UsedBytes != 800 {
		t.Fatalf("%+v", st)
	}
	if err := f.Commit(t0.Add(time.Second), 1); err != nil {
		t.Fatal(err)
	}
}

// fmp4 makes a 4 s segment the way hubd does (the segmenter over real
// encoder output), one fragment per 1 s GOP.
func fmp4(t *testing.T) []byte {
	t.Helper()
	testbed.RequireTools(t, "ffmpeg", "ffprobe")
	c, err := fakecam.EncodeClip(context.Background(), fakecam.ClipOptions{Width: 320, Height: 240, FPS: 25, Seconds: 4, GOP: 25, BitrateKbps: 300})
	if err != nil {
		t.Fatal(err)
	}
	mem := &memFile{}
	seg := segment.New(segment.Config{CameraID: "cam1", Store: mem, SegmentDuration: time.Minute,
		FragmentDuration: time.Minute, FsyncInterval: time.Minute, MaxFrameGap: time.Second, MaxDrift: time.Second})
	seg.Start(media.Track{Codec: media.H264})
	for i, au := range c.AUs {
		dts := int64(i) * media.ClockRate / 25
		if err := seg.Write(&media.Frame{DTS: dts, PTS: dts, AU: au, RandomAccess: h264.IsRandomAccess(au), Received: t0.Add(time.Duration(i) * 40 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := seg.Close(); err != nil {
		t.Fatal(err)
	}
	return mem.Bytes()
}

type memFile struct{ bytes.Buffer }

func (m *memFile) Create(string, media.Codec, time.Time) (segment.File, error) { return m, nil }
func (m *memFile) Sync() error                                                 { return nil }
func (m *memFile) Commit(time.Time, int) error                                 { return nil }
func (m *memFile) Abort() error                                                { return nil }

func TestRecoveryAfterCrash(t *testing.T) {
	media := fmp4(t)
	dir := t.TempDir()
	r := open(t, dir, 1<<30)

	complete := write(t, r, "cam1", 0, media, true).Segment()
	interrupted := write(t, r, "cam1", 1, media[:len(media)*3/4], false).Segment() // cut mid-fragment
	noFragment := write(t, r, "cam1", 2, media[:200], false).Segment()             // cut inside the init
	renamed := write(t, r, "cam1", 3, media, false).Segment()                      // renamed, index not updated
	missing := write(t, r, "cam1", 4, media, true).Segment()                       // file lost
	r.Close()                                                                      // kill -9: nothing closed

	p := func(s ring.Segment) string { return filepath.Join(dir, s.Path) }
	if err := os.Rename(p(renamed)+".part", p(renamed)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p(missing)); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(dir, ring.SegmentsDir, "cam9", "2026-11-25", "stray.mp4")
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	os.WriteFile(orphan, media, 0o644)

	r = open(t, dir, 1<<30)
	defer r.Close()
	segs, err := r.List("")
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]ring.Segment{}
	for _, s := range segs {
		got[s.ID] = s
		if s.State != ring.Pending {
			t.Errorf("segment %d state %s after recovery, want pending", s.ID, s.State)
		}
		st, err := os.Stat(p(s))
		if err != nil || st.Size() != s.Bytes {
			t.Errorf("segment %d: file %v, index says %d bytes", s.ID, err, s.Bytes)
		}
		testbed.CheckSegment(t, p(s), "h264", 25, 25)
	}
	if len(segs) != 3 {
		t.Fatalf("%d segments after recovery, want complete+interrupted+renamed", len(segs))
	}
	if got[complete.ID].Bytes != int64(len(media)) || got[renamed.ID].Frames != 100 {
		t.Errorf("complete segments changed: %+v / %+v", got[complete.ID], got[renamed.ID])
	}
	rep := got[interrupted.ID]
	if rep.Frames < 50 || rep.Frames >= 100 || rep.Duration() != time.Duration(rep.Frames)*40*time.Millisecond {
		t.Errorf("interrupted segment repaired to %d frames lasting %v, want its complete GOPs", rep.Frames, rep.Duration())
	}
	for _, gone := range []string{p(noFragment) + ".part", p(noFragment), orphan, filepath.Dir(orphan)} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s should be gone after recovery", gone)
		}
	}
	if st := r.Stats(); st.RecoveredSegments != 2 || st.OrphansRemoved != 1 {
		t.Errorf("stats %+v, want 2 repaired, 1 orphan", st)
	}
}

func TestReadIndexWhileHeld(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, 1<<30)
	write(t, r, "cam1", 0, []byte("x"), true)
	if _, err := ring.ReadIndex(dir, ""); err != ring.ErrLocked {
		t.Fatalf("ReadIndex while held: %v, want ErrLocked", err)
	}
	r.Close()
	segs, err := ring.ReadIndex(dir, "cam1")
	if err != nil || len(segs) != 1 {
		t.Fatalf("ReadIndex: %v, %v", segs, err)
	}
}

func fileMD5(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func TestMD5PendingAndCloseNotice(t *testing.T) {
	media := fmp4(t)
	dir := t.TempDir()
	r := open(t, dir, 1<<30)
	closed := r.Closed()
	write(t, r, "cam1", 0, media, true)
	select {
	case <-closed:
	default:
		t.Fatal("Closed() did not fire when a segment closed")
	}
	write(t, r, "cam2", 1, media[:len(media)/2], true)
	write(t, r, "cam1", 2, media[:len(media)*3/4], false) // interrupted: repaired below
	segs, _ := r.List("")
	if err := r.MarkUploaded(segs[0].ID); err != nil {
		t.Fatal(err)
	}
	pending, err := r.Pending(10)
	if err != nil || len(pending) != 1 || pending[0].ID != segs[1].ID {
		t.Fatalf("Pending = %+v, %v; want only the second segment (first uploaded, third open)", pending, err)
	}
	r.Close()

	r = open(t, dir, 1<<30)
	defer r.Close()
	segs, _ = r.List("")
	for _, s := range segs {
		if want := fileMD5(t, filepath.Join(dir, s.Path)); s.MD5 != want {
			t.Errorf("%s: index MD5 %q, file MD5 %q", s.Path, s.MD5, want)
		}
	}
	if pending, _ := r.Pending(10); len(pending) != 2 || pending[0].ID >= pending[1].ID {
		t.Errorf("after repair, Pending = %+v, want 2 oldest first", pending)
	}
}

// TestPinnedSegmentsAreEvictedLast: a segment being uploaded goes only when
// nothing else can, and if it goes and its upload then completes, it is
// taken off the evicted-before-upload count.
func TestPinnedSegmentsAreEvictedLast(t *testing.T) {
	r := open(t, t.TempDir(), 1000)
	defer r.Close()
	chunk := bytes.Repeat([]byte{1}, 300)
	for i := 0; i < 3; i++ {
		write(t, r, "cam1", i, chunk, true)
	}
	segs, _ := r.List("")
	r.Pin(segs[0].ID)                   // the oldest is uploading
	write(t, r, "cam1", 3, chunk, true) // 1200 bytes: one must go
	left, _ := r.List("")
	if left[0].ID != segs[0].ID || len(left) != 3 {
		t.Fatalf("evicted the pinned segment while others could go: %+v", left)
	}
	r.Pin(left[1].ID)
	r.Pin(left[2].ID)
	r.Pin(segs[0].ID)
	// Only pinned segments left: the oldest goes anyway, counted as lost...
	write(t, r, "cam1", 4, chunk, true)
	if st := r.Stats(); st.EvictedBeforeUpload != 2 {
		t.Fatalf("stats %+v", st)
	}
	// ...until its upload completes.
	if err := r.MarkUploaded(segs[0].ID); err != nil {
		t.Fatalf("MarkUploaded of a pinned segment evicted under its upload: %v", err)
	}
	if st := r.Stats(); st.EvictedBeforeUpload != 1 {
		t.Errorf("evicted before upload = %d after its upload completed, want 1", st.EvictedBeforeUpload)
	}
	if err := r.MarkUploaded(99); err == nil {
		t.Error("MarkUploaded of an unknown segment succeeded")
	}
}
