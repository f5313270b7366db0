package ring

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Compaction thresholds: the index is rewritten at start only when at least
// compactMinFree bytes and more than half of the file are free pages. In
// steady state bbolt reuses the pages evictions free, so the file stays the
// size the ring's entries need; only a burst (a long outage filling a large
// ring with short segments, then eviction) leaves it mostly empty, and then
// it is rewritten once, never on a schedule.
const compactMinFree = 1 << 20

// boltOptions: NoFreelistSync keeps bbolt from writing its free-page list
// at every commit (it rebuilds it by scanning at open, which for an index
// of some thousand entries is milliseconds): fewer pages per transaction on
// the SD card.
func boltOptions() *bolt.Options {
	return &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}
}

// openIndex opens the bbolt index at path, compacting it first when it is
// mostly free pages. A compaction interrupted by a crash leaves path.compact,
// which is removed: path itself is replaced only by an atomic rename.
func openIndex(path string, log *slog.Logger) (*bolt.DB, error) {
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove interrupted index compaction: %w", err)
	}
	db, err := bolt.Open(path, 0o640, boltOptions())
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open index %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open index: %w", err)
	}
	size, free, err := freeBytes(db)
	if err != nil || free < compactMinFree || free*2 <= size {
		return db, err
	}
	start := time.Now()
	if err := compact(db, tmp); err != nil {
		// The index works uncompacted: log and go on with it.
		log.Warn("index compaction failed; using the index as it is", "component", "ring", "err", err)
		os.Remove(tmp)
		return db, nil
	}
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("close index before compaction: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("replace index with its compaction: %w", err)
	}
	syncDir(filepath.Dir(path))
	if db, err = bolt.Open(path, 0o640, boltOptions()); err != nil {
		return nil, fmt.Errorf("open compacted index: %w", err)
	}
	after, _, _ := freeBytes(db)
	log.Info("compacted the index", "component", "ring", "bytes_before", size, "bytes_after", after, "took", time.Since(start).Round(time.Millisecond))
	return db, nil
}

// freeBytes is the file size bbolt sees and how much of it is free pages.
func freeBytes(db *bolt.DB) (size, free int64, err error) {
	err = db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	st := db.Stats()
	return size, int64(st.FreePageN+st.PendingPageN) * int64(db.Info().PageSize), err
}

// compact copies db into a new file at dst with bbolt's own Compact, fsynced.
func compact(db *bolt.DB, dst string) error {
	out, err := bolt.Open(dst, 0o640, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType, NoSync: true})
	if err != nil {
		return err
	}
	if err := bolt.Compact(out, db, 1<<20); err != nil {
		out.Close()
		return err
	}
	out.NoSync = false
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
