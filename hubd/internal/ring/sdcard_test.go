package ring_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/ring"
)

// writeBytes is this process's write_bytes from /proc/self/io: bytes it
// caused to be sent to the storage layer (a page counts when it becomes
// dirty), which is what wears an SD card. -1 where the kernel does not
// account it (no CONFIG_TASK_IO_ACCOUNTING, tmpfs).
func writeBytes(t testing.TB) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return -1
}

// pageData is one page of segment: it dirties exactly one page, so what a
// lifecycle writes beyond it is the index's.
var pageData = bytes.Repeat([]byte{7}, 4096)

// lifecycle records, closes and uploads one segment; with a ring of a few
// pages, each one also evicts the oldest: everything a recorded segment
// costs the index in steady state.
func lifecycle(t testing.TB, r *ring.Ring, i int) {
	start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 30 * time.Second)
	f, err := r.Create("cam1", "h264", start)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(pageData); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(start.Add(30*time.Second), 750); err != nil {
		t.Fatal(err)
	}
	if err := r.MarkUploaded(f.Segment().ID); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkIndexWritesPerSegment reports the bytes the index sends to
// storage per segment (create, close, uploaded, evicted): with 30 s
// segments a camera makes 120 an hour (README, SD card). The ring holds
// 1024 segments, about the ratio of 7.5 MB segments in the default 8 GiB.
func BenchmarkIndexWritesPerSegment(b *testing.B) {
	dir := b.TempDir()
	r, err := ring.Open(ring.Config{DataDir: dir, MaxBytes: 1024 * 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for i := range 1100 { // fill the ring: in steady state each segment evicts one
		lifecycle(b, r, i)
	}
	w0 := writeBytes(b)
	if w0 < 0 {
		b.Skip("no write_bytes accounting in /proc/self/io")
	}
	b.ResetTimer()
	for i := range b.N {
		lifecycle(b, r, 1100+i)
	}
	b.StopTimer()
	w := writeBytes(b) - w0 - int64(b.N)*int64(len(pageData))
	b.ReportMetric(float64(w)/float64(b.N), "index-bytes/segment")
	b.ReportMetric(float64(w)/float64(b.N)*120/1024, "index-KiB/hour/camera")
}

func fileSize(t testing.TB, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestIndexGrowthBounded: a ring in steady state (each new segment evicts
// the oldest) keeps its index file the same size: bbolt reuses the pages
// that evictions free. 3000 segments are 25 hours of one camera.
func TestIndexGrowthBounded(t *testing.T) {
	dir := t.TempDir()
	r, err := ring.Open(ring.Config{DataDir: dir, MaxBytes: 64 * 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	idx := filepath.Join(dir, "index.db")
	var sizes []int64
	for i := range 3000 {
		lifecycle(t, r, i)
		if (i+1)%500 == 0 {
			sizes = append(sizes, fileSize(t, idx))
		}
	}
	// After the first 500 (the ring filled long before), the file does not grow.
	for i, s := range sizes[1:] {
		if s > sizes[0] {
			t.Fatalf("index grew in steady state: %v bytes after each 500 segments (%d)", sizes, i)
		}
	}
	t.Logf("index.db after each 500 segments: %v bytes", sizes)
}

// TestIndexCompactedAtOpen: after a burst left the index mostly free pages
// (a long outage with a huge ring, then eviction), the next start rewrites
// it to its live size, once; the entries and counters survive.
func TestIndexCompactedAtOpen(t *testing.T) {
	dir := t.TempDir()
	r, err := ring.Open(ring.Config{DataDir: dir, MaxBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	// Many live entries grow the file...
	for i := range 4000 {
		lifecycle(t, r, i)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	idx := filepath.Join(dir, "index.db")
	grown := fileSize(t, idx)
	// ...then a small ring evicts nearly all of them.
	r, err = ring.Open(ring.Config{DataDir: dir, MaxBytes: 10 * 4096})
	if err != nil {
		t.Fatal(err)
	}
	lifecycle(t, r, 4000) // closing a segment evicts down to the bound
	before, _ := r.List("")
	st := r.Stats()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, idx); got < grown {
		t.Fatalf("index shrank to %d before a restart (bbolt never shrinks a file by itself): test premise broken", got)
	}
	r, err = ring.Open(ring.Config{DataDir: dir, MaxBytes: 10 * 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	compacted := fileSize(t, idx)
	if compacted*4 > grown {
		t.Errorf("index %d bytes after a restart, was %d: not compacted", compacted, grown)
	}
	after, _ := r.List("")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("entries changed by compaction:\n%v\n%v", before, after)
	}
	if got := r.Stats(); got.Evicted != st.Evicted || got.EvictedBeforeUpload != st.EvictedBeforeUpload {
		t.Errorf("counters changed by compaction: %+v, were %+v", got, st)
	}
	if _, err := os.Stat(idx + ".compact"); !os.IsNotExist(err) {
		t.Errorf("compaction left its temp file: %v", err)
	}
	t.Logf("index.db: %d bytes grown, %d after compaction at open", grown, compacted)
}
