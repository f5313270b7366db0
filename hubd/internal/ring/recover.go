package ring

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// recover makes the index and the files agree after any stop, clean or not.
// hubd writes the index entry before the file and renames the file into place
// before marking it closed, so every inconsistency a kill -9 or power loss can
// leave falls into one of the cases below.
func (r *Ring) recover() error {
	var entries []Segment
	err := r.db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketSegments); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		r.stats.Evicted = u64(meta.Get(keyEvicted))
		r.stats.EvictedBeforeUpload = u64(meta.Get(keyEvictedLost))
		return nil
	})
	if err != nil {
		return err
	}
	entries, err = r.List("")
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}

	known := map[string]bool{}
	for i := range entries {
		s := &entries[i]
		keep, changed, err := r.recoverOne(s)
		if err != nil {
			return err
		}
		switch {
		case !keep:
			if err := r.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSegments).Delete(key(s.ID)) }); err != nil {
				return fmt.Errorf("drop index entry %d: %w", s.ID, err)
			}
			continue
		case changed:
			if err := r.db.Update(func(tx *bolt.Tx) error { return putSegment(tx.Bucket(bucketSegments), s) }); err != nil {
				return fmt.Errorf("update index entry %d: %w", s.ID, err)
			}
		}
		known[s.Path] = true
		r.used += s.Bytes
		r.closed = append(r.closed, &entry{id: s.ID, bytes: s.Bytes, path: s.Path, uploaded: s.State == Uploaded})
	}

	// Files the index does not know were created by a run that died before
	// indexing them, or left by hand: they are not recordings of ours.
	root := r.abs(SegmentsDir)
	var dirs []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root {
				dirs = append(dirs, p)
			}
			return nil
		}
		rel, _ := filepath.Rel(r.cfg.DataDir, p)
		if !known[rel] {
			r.log.Warn("removing orphan file not in the index", "path", rel)
			r.stats.OrphansRemoved++
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan segment files: %w", err)
	}
	for i := len(dirs) - 1; i >= 0; i-- { // deepest first
		_ = os.Remove(dirs[i]) // fails, as it should, when not empty
	}
	if r.stats.RecoveredSegments > 0 || r.stats.OrphansRemoved > 0 {
		r.log.Info("ring recovered after an unclean stop",
			"repaired_segments", r.stats.RecoveredSegments, "orphans_removed", r.stats.OrphansRemoved)
	}
	r.log.Info("ring open", "segments", len(r.closed), "used_bytes", r.used, "max_bytes", r.cfg.MaxBytes)
	r.evictLocked()
	return nil
}

// recoverOne checks one entry against its file. keep=false drops the entry.
func (r *Ring) recoverOne(s *Segment) (keep, changed bool, err error) {
	p := r.abs(s.Path)
	if s.State != Recording {
		st, err := os.Stat(p)
		if err != nil {
			r.log.Warn("indexed segment file is missing; dropping its entry", "path", s.Path)
			return false, false, nil
		}
		if st.Size() == s.Bytes && s.MD5 != "" {
			return true, false, nil
		}
		if st.Size() == s.Bytes { // indexed before hubd recorded MD5s
			sum, err := fileMD5(p)
			if err != nil {
				return false, false, err
			}
			s.MD5 = sum
			return true, true, nil
		}
		// The file changed size after it was closed: only a disk fault or a
		// hand does that. Re-check it like an interrupted one.
		r.log.Warn("segment size differs from the index; re-checking", "path", s.Path, "indexed", s.Bytes, "on_disk", st.Size())
	}
	src := p + ".part"
	if _, err := os.Stat(src); err != nil {
		src = p // renamed into place, but the index was not updated
		if _, err := os.Stat(src); err != nil {
			return false, false, nil // died before the first byte
		}
	}
	info, err := r.cfg.Scan(src)
	if err != nil {
		r.log.Warn("interrupted segment holds nothing playable; removing it", "path", s.Path, "reason", err)
		if err := os.Remove(src); err != nil {
			return false, false, fmt.Errorf("remove %s: %w", src, err)
		}
		return false, false, nil
	}
	if err := truncateAndPlace(src, p, info.ValidSize); err != nil {
		return false, false, err
	}
	s.Bytes = info.ValidSize
	s.Frames = info.Frames
	if s.MD5, err = fileMD5(p); err != nil {
		return false, false, err
	}
	s.End = s.Start.Add(info.Duration).Truncate(1e6)
	if s.State == Recording {
		s.State = Pending
	}
	r.stats.RecoveredSegments++
	r.log.Info("repaired interrupted segment to its last complete fragment",
		"path", s.Path, "bytes", s.Bytes, "frames", s.Frames, "duration", info.Duration)
	return true, true, nil
}

func truncateAndPlace(src, dst string, size int64) error {
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s for repair: %w", src, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("truncate %s: %w", src, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", src, err)
	}
	f.Close()
	if src != dst {
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("rename %s: %w", src, err)
		}
		syncDir(filepath.Dir(dst))
	}
	return nil
}

func fileMD5(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func u64(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
