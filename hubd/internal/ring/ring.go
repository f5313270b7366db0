// Package ring keeps recorded segments in a disk ring bounded in bytes and
// indexes them in bbolt; it evicts oldest first and repairs itself after a crash.
package ring

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// State is a segment's place in its life.
type State string

// Segment states. Recording segments are never evicted.
const (
	Recording State = "recording"
	Pending   State = "pending" // closed, not yet uploaded
	Uploaded  State = "uploaded"
)

// Segment is one index entry.
type Segment struct {
	ID     uint64    `json:"id"`
	Camera string    `json:"camera"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Bytes  int64     `json:"bytes"`
	Codec  string    `json:"codec"`
	Frames int       `json:"frames"`
	Path   string    `json:"path"` // relative to the data dir
	State  State     `json:"upload_state"`
	// MD5 of the file (hex), computed while it was written: S3's ETag of a
	// single-part PUT, so the relay can verify an upload without reading it.
	MD5 string `json:"md5,omitempty"`
}

// Duration is End - Start.
func (s Segment) Duration() time.Duration { return s.End.Sub(s.Start) }

var (
	bucketSegments = []byte("segments")
	bucketMeta     = []byte("meta")
	keyEvicted     = []byte("evicted")
	keyEvictedLost = []byte("evicted_before_upload")
)

// ErrLocked is returned by ReadIndex while a running hubd holds the index.
var ErrLocked = errors.New("index is held by a running hubd")

// Config of a ring.
type Config struct {
	DataDir  string
	MaxBytes int64
	Logger   *slog.Logger
	// Scan checks a segment file during recovery and says how much of it is
	// playable (segment.Scan); the ring does not parse media itself.
	Scan func(path string) (ScanInfo, error)
}

// ScanInfo is what recovery needs to know of a file.
type ScanInfo struct {
	ValidSize int64
	Frames    int
	Duration  time.Duration
	Codec     string
}

// Ring is the on-disk segment ring. It is safe for concurrent use.
type Ring struct {
	cfg Config
	db  *bolt.DB
	log *slog.Logger

	mu     sync.Mutex
	used   int64            // bytes of all segment files, open ones included
	closed []*entry         // closed segments by ID, oldest first
	open   map[uint64]int64 // bytes written to each open segment
	stats  Stats
	// warnedFull keeps the "ring smaller than open segments" warning to one line.
	warnedFull bool
	// closedCh is closed and replaced each time a segment closes, so any
	// number of waiters (the uploader) wake without polling.
	closedCh chan struct{}
	// pinned segments are being uploaded: evicted only when nothing else
	// can go. lostPinned are those evicted anyway; they count as lost until
	// their upload completes (the open file still reads).
	pinned, lostPinned map[uint64]bool
}

type entry struct {
	id       uint64
	bytes    int64
	path     string
	uploaded bool
}

// Stats are the ring's counters.
type Stats struct {
	UsedBytes           int64
	MaxBytes            int64
	Segments            int
	Pending             int
	Evicted             uint64 // all evictions since the index was created
	EvictedBeforeUpload uint64 // of which not yet uploaded: recordings lost to the cloud
	RecoveredSegments   int    // repaired at the last start
	OrphansRemoved      int
}

const indexFile = "index.db"

// SegmentsDir is where segment files live below the data dir.
const SegmentsDir = "segments"

// Open opens (creating if needed) the ring in cfg.DataDir and makes index and
// files agree: interrupted segments are repaired to their last complete
// fragment, entries without files are dropped, files without entries deleted.
func Open(cfg Config) (*Ring, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, SegmentsDir), 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	db, err := openIndex(filepath.Join(cfg.DataDir, indexFile), cfg.Logger)
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open index %s: %w", filepath.Join(cfg.DataDir, indexFile), ErrLocked)
		}
		return nil, fmt.Errorf("open index: %w", err)
	}
	r := &Ring{cfg: cfg, db: db, log: cfg.Logger.With("component", "ring"), open: map[uint64]int64{}, closedCh: make(chan struct{}),
		pinned: map[uint64]bool{}, lostPinned: map[uint64]bool{}}
	r.stats.MaxBytes = cfg.MaxBytes
	if err := r.recover(); err != nil {
		db.Close()
		return nil, fmt.Errorf("recover ring: %w", err)
	}
	return r, nil
}

// Close closes the index. Open segments must be committed or aborted first.
func (r *Ring) Close() error { return r.db.Close() }

func key(id uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, id)
	return k
}

func putSegment(b *bolt.Bucket, s *Segment) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return b.Put(key(s.ID), v)
}

func (r *Ring) abs(rel string) string { return filepath.Join(r.cfg.DataDir, rel) }

// File is a segment being written.
type File struct {
	r   *Ring
	f   *os.File
	seg Segment
	n   int64
	md5 hash.Hash
}

// Create starts a segment: the index entry is written before the file exists,
// so after a crash every file on disk is either indexed or an orphan to delete.
func (r *Ring) Create(cameraID, codec string, start time.Time) (*File, error) {
	seg := Segment{Camera: cameraID, Codec: codec, Start: start.UTC().Truncate(time.Millisecond), State: Recording}
	err := r.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSegments)
		if err != nil {
			return err
		}
		seg.ID, err = b.NextSequence()
		if err != nil {
			return err
		}
		seg.End = seg.Start
		seg.Path = filepath.Join(SegmentsDir, cameraID, seg.Start.Format("2006-01-02"),
			fmt.Sprintf("%s-%d.mp4", seg.Start.Format("150405.000"), seg.ID))
		return putSegment(b, &seg)
	})
	if err != nil {
		return nil, fmt.Errorf("index new segment of %s: %w", cameraID, err)
	}
	p := r.abs(seg.Path)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, fmt.Errorf("create segment dir: %w", err)
	}
	f, err := os.OpenFile(p+".part", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	r.mu.Lock()
	r.open[seg.ID] = 0
	r.mu.Unlock()
	return &File{r: r, f: f, seg: seg, md5: md5.New()}, nil
}

// Segment returns the entry as it stands.
func (f *File) Segment() Segment { return f.seg }

// Write appends to the segment; the ring evicts closed segments to make room.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	f.md5.Write(p[:n])
	f.n += int64(n)
	f.r.grow(f.seg.ID, int64(n))
	if err != nil {
		return n, fmt.Errorf("write segment %s: %w", f.seg.Path, err)
	}
	return n, nil
}

// Sync flushes the file to stable storage.
func (f *File) Sync() error {
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("fsync segment %s: %w", f.seg.Path, err)
	}
	return nil
}

// Commit closes a complete segment: fsync, rename into place, fsync the
// directory, then mark it pending upload in the index.
func (f *File) Commit(end time.Time, frames int) error {
	if err := f.f.Sync(); err != nil {
		f.f.Close()
		return fmt.Errorf("fsync segment %s: %w", f.seg.Path, err)
	}
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("close segment %s: %w", f.seg.Path, err)
	}
	p := f.r.abs(f.seg.Path)
	if err := os.Rename(p+".part", p); err != nil {
		return fmt.Errorf("rename segment %s: %w", f.seg.Path, err)
	}
	syncDir(filepath.Dir(p))
	f.seg.End = end.UTC().Truncate(time.Millisecond)
	f.seg.Bytes = f.n
	f.seg.Frames = frames
	f.seg.State = Pending
	f.seg.MD5 = hex.EncodeToString(f.md5.Sum(nil))
	return f.r.closeSegment(f.seg)
}

// Abort removes a segment that holds nothing playable.
func (f *File) Abort() error {
	f.f.Close()
	if err := os.Remove(f.r.abs(f.seg.Path) + ".part"); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove aborted segment: %w", err)
	}
	f.r.mu.Lock()
	f.r.used -= f.r.open[f.seg.ID]
	delete(f.r.open, f.seg.ID)
	f.r.mu.Unlock()
	return f.r.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSegments).Delete(key(f.seg.ID))
	})
}

func (r *Ring) closeSegment(seg Segment) error {
	err := r.db.Update(func(tx *bolt.Tx) error {
		return putSegment(tx.Bucket(bucketSegments), &seg)
	})
	if err != nil {
		return fmt.Errorf("index segment %d: %w", seg.ID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.used += seg.Bytes - r.open[seg.ID]
	delete(r.open, seg.ID)
	r.insertClosed(&entry{id: seg.ID, bytes: seg.Bytes, path: seg.Path, uploaded: seg.State == Uploaded})
	r.evictLocked()
	close(r.closedCh)
	r.closedCh = make(chan struct{})
	return nil
}

// Closed returns a channel that is closed when the next segment closes.
func (r *Ring) Closed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closedCh
}

// Pending returns up to limit closed segments not yet uploaded, oldest first.
func (r *Ring) Pending(limit int) ([]Segment, error) {
	var out []Segment
	err := r.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSegments).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var s Segment
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			if s.State == Pending {
				out = append(out, s)
			}
		}
		return nil
	})
	return out, err
}

func (r *Ring) insertClosed(e *entry) {
	i := sort.Search(len(r.closed), func(i int) bool { return r.closed[i].id >= e.id })
	r.closed = append(r.closed, nil)
	copy(r.closed[i+1:], r.closed[i:])
	r.closed[i] = e
}

func (r *Ring) grow(id uint64, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open[id] += n
	r.used += n
	r.evictLocked()
}

// evictLocked deletes closed segments until the ring fits: uploaded ones
// first (they are safe in S3), then, only when it must, the oldest pending.
// Once it has to evict, it also takes uploaded segments down to the low
// watermark (see lowWater), all in one index transaction: each transaction
// rewrites a few index pages, so on an SD card one per segment would cost
// more than the segment's own metadata.
func (r *Ring) evictLocked() {
	if r.used <= r.cfg.MaxBytes {
		return
	}
	var victims []*entry
	taken := map[uint64]bool{}
	used := r.used
	for used > r.cfg.MaxBytes {
		e := r.victimLocked(taken)
		if e == nil {
			if !r.warnedFull {
				r.log.Warn("ring is smaller than the segments being written; nothing left to evict",
					"used_bytes", r.used, "max_bytes", r.cfg.MaxBytes)
				r.warnedFull = true
			}
			break
		}
		victims, taken[e.id], used = append(victims, e), true, used-e.bytes
	}
	for low := lowWater(r.cfg.MaxBytes); used > low; {
		var e *entry
		for _, c := range r.closed {
			if c.uploaded && !r.pinned[c.id] && !taken[c.id] {
				e = c
				break
			}
		}
		if e == nil {
			break
		}
		victims, taken[e.id], used = append(victims, e), true, used-e.bytes
	}
	if len(victims) == 0 {
		return
	}
	if err := r.evict(victims); err != nil {
		r.log.Error("evict segments", "segments", len(victims), "err", err)
		return
	}
	kept := r.closed[:0]
	for _, e := range r.closed {
		if !taken[e.id] {
			kept = append(kept, e)
		}
	}
	clear(r.closed[len(kept):])
	r.closed = kept
	r.used = used
	r.warnedFull = false
}

// lowWater is where eviction, once started, stops taking uploaded
// segments: 1/64 of the ring below its bound (128 MiB of 8 GiB, about 17
// segments of a 2 Mbit/s camera, evicted in one transaction).
func lowWater(max int64) int64 { return max - max/64 }

// victimLocked picks the next segment to evict, none of taken: the oldest
// uploaded one, else the oldest pending one not being uploaded, else the
// oldest being uploaded.
func (r *Ring) victimLocked(taken map[uint64]bool) *entry {
	for _, e := range r.closed {
		if e.uploaded && !r.pinned[e.id] && !taken[e.id] {
			return e
		}
	}
	for _, e := range r.closed {
		if !r.pinned[e.id] && !taken[e.id] {
			return e
		}
	}
	for _, e := range r.closed {
		if !taken[e.id] {
			return e // only segments being uploaded are left
		}
	}
	return nil
}

// evict removes victims from the index in one transaction, then their files.
func (r *Ring) evict(victims []*entry) error {
	var lost int64
	for _, e := range victims {
		if !e.uploaded {
			lost++
		}
	}
	err := r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSegments)
		for _, e := range victims {
			if err := b.Delete(key(e.id)); err != nil {
				return err
			}
		}
		if err := add(tx, keyEvicted, int64(len(victims))); err != nil {
			return err
		}
		if lost > 0 {
			return add(tx, keyEvictedLost, lost)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range victims {
		if err := os.Remove(r.abs(e.path)); err != nil && !os.IsNotExist(err) {
			r.log.Error("remove evicted segment", "path", e.path, "err", err)
		}
		removeEmptyParents(filepath.Dir(r.abs(e.path)), r.abs(SegmentsDir))
		r.stats.Evicted++
		if r.pinned[e.id] {
			r.lostPinned[e.id] = true
		}
		if e.uploaded {
			r.log.Debug("evicted uploaded segment", "path", e.path, "bytes", e.bytes)
		} else {
			r.stats.EvictedBeforeUpload++
			r.log.Warn("ring full: evicted a segment that was not uploaded yet",
				"path", e.path, "bytes", e.bytes, "evicted_before_upload_total", r.stats.EvictedBeforeUpload)
		}
	}
	return nil
}

// add changes a persisted counter by d.
func add(tx *bolt.Tx, k []byte, d int64) error {
	b, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	var n uint64
	if v := b.Get(k); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(int64(n)+d))
	return b.Put(k, v)
}

// Pin marks a segment as being uploaded: eviction takes others first.
func (r *Ring) Pin(id uint64) {
	r.mu.Lock()
	r.pinned[id] = true
	r.mu.Unlock()
}

// Unpin ends Pin.
func (r *Ring) Unpin(id uint64) {
	r.mu.Lock()
	delete(r.pinned, id)
	delete(r.lostPinned, id)
	r.mu.Unlock()
}

var errGone = errors.New("segment is no longer in the index")

// MarkUploaded records that a segment reached the cloud, which makes it the
// first to go when the ring needs room. A pinned segment the ring had to
// evict during its upload is no longer lost: it is taken off that count.
func (r *Ring) MarkUploaded(id uint64) error {
	err := r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSegments)
		v := b.Get(key(id))
		if v == nil {
			return errGone
		}
		var s Segment
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		s.State = Uploaded
		return putSegment(b, &s)
	})
	if errors.Is(err, errGone) {
		r.mu.Lock()
		lost := r.lostPinned[id]
		delete(r.lostPinned, id)
		r.mu.Unlock()
		if !lost {
			return fmt.Errorf("mark segment %d uploaded: %w", id, err)
		}
		if err := r.db.Update(func(tx *bolt.Tx) error { return add(tx, keyEvictedLost, -1) }); err != nil {
			return fmt.Errorf("mark segment %d uploaded: %w", id, err)
		}
		r.mu.Lock()
		r.stats.EvictedBeforeUpload--
		r.mu.Unlock()
		r.log.Info("a segment evicted during its upload reached the cloud after all", "id", id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark segment %d uploaded: %w", id, err)
	}
	r.mu.Lock()
	for _, e := range r.closed {
		if e.id == id {
			e.uploaded = true
		}
	}
	r.mu.Unlock()
	return nil
}

// Stats returns the counters.
func (r *Ring) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.UsedBytes = r.used
	s.Segments = len(r.closed)
	for _, e := range r.closed {
		if !e.uploaded {
			s.Pending++
		}
	}
	return s
}

// List returns the indexed segments (all cameras when cameraID is ""),
// oldest first.
func (r *Ring) List(cameraID string) ([]Segment, error) { return list(r.db, cameraID) }

func list(db *bolt.DB, cameraID string) ([]Segment, error) {
	var out []Segment
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSegments)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var s Segment
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			if cameraID == "" || s.Camera == cameraID {
				out = append(out, s)
			}
			return nil
		})
	})
	return out, err
}

// ReadIndex lists the segments of a ring that no process holds open; it
// returns ErrLocked while hubd runs (ask hubd itself then).
func ReadIndex(dataDir, cameraID string) ([]Segment, error) {
	p := filepath.Join(dataDir, indexFile)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("no index at %s (has hubd run with this data_dir yet?): %w", p, err)
	}
	db, err := bolt.Open(p, 0o640, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("open index: %w", err)
	}
	defer db.Close()
	return list(db, cameraID)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: some filesystems refuse fsync on directories
		d.Close()
	}
}

// removeEmptyParents removes dir and its parents up to (not including) stop
// while they are empty, so evicted days leave no directory litter.
func removeEmptyParents(dir, stop string) {
	for dir != stop && len(dir) > len(stop) {
		if err := os.Remove(dir); err != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}
