package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// The layout of a hubd data dir (hubd/internal/ring).
const (
	segmentsDir = "segments"
	indexFile   = "index.db"
)

// backlog is the ring an outage left: the pristine data dir every drain
// starts from a clone of, and whose segments/ the reference uploads.
type backlog struct {
	dataDir  string
	segments int
	bytes    int64
	segDur   time.Duration
}

// segmentDuration is the time span of a segment of n bytes at bitrate
// (bit/s), between hubd's 1 s minimum and the relay's 1 h maximum.
func segmentDuration(n int64, bitrate float64) time.Duration {
	d := time.Duration(float64(n) * 8 / bitrate * float64(time.Second)).Round(time.Millisecond)
	return min(max(d, time.Second), time.Hour)
}

// makeBacklog writes o.bytes of segments into a new data dir with hubd's
// ring code (ringgen) and checks what is on disk.
func makeBacklog(ctx context.Context, o *options, bins binaries, dir string) (*backlog, error) {
	b := &backlog{dataDir: filepath.Join(dir, "backlog"), segDur: segmentDuration(o.segBytes, cameraBitrate)}
	cmd := exec.CommandContext(ctx, bins.ringgen, "-dir", b.dataDir, "-bytes", strconv.FormatInt(o.bytes, 10),
		"-segment-bytes", strconv.FormatInt(o.segBytes, 10), "-segment-duration", b.segDur.String(), "-camera", benchCamera)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ringgen: %w: %s", err, out)
	}
	n, total, err := scanTree(filepath.Join(b.dataDir, segmentsDir))
	if err != nil {
		return nil, err
	}
	want := int((o.bytes + o.segBytes - 1) / o.segBytes)
	if n != want || total != o.bytes {
		return nil, fmt.Errorf("backlog holds %d files, %d bytes; want %d, %d", n, total, want, o.bytes)
	}
	b.segments, b.bytes = n, total
	return b, nil
}

// clone makes dst a data dir holding the backlog: the index is copied (the
// drain marks segments uploaded in it), the segment files are hard links
// (nothing writes them; the reference and every drain read the same inodes,
// so the page cache treats them alike).
func (b *backlog) clone(dst string) error {
	if err := os.MkdirAll(dst, 0o750); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(b.dataDir, indexFile), filepath.Join(dst, indexFile)); err != nil {
		return err
	}
	src := filepath.Join(b.dataDir, segmentsDir)
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(b.dataDir, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		return os.Link(p, filepath.Join(dst, rel))
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// scanTree counts the regular files below root and their bytes; a missing
// root holds nothing.
func scanTree(root string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == root {
				return fs.SkipDir
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += info.Size()
		return nil
	})
	return files, bytes, err
}
