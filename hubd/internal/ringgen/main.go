// Command ringgen fills a hubd data dir with a backlog of closed segments
// through hubd's own ring (Open, Create, Write, Commit), so the index, the
// file names and the MD5s are exactly what a recording hubd leaves after an
// outage. It lives below hubd/ because the ring is internal to hubd;
// testbed/cmd/drainbench builds and runs it.
//
// Content is pseudo-random bytes: the uploader and S3 look at size and MD5,
// never at the media, and random bytes compress nowhere on the way.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/ring"
)

func main() {
	dir := flag.String("dir", "", "data dir to create the ring in (must not hold one yet)")
	total := flag.Int64("bytes", 0, "bytes of segments in all")
	segBytes := flag.Int64("segment-bytes", 0, "bytes per segment (the last one holds the remainder)")
	segDur := flag.Duration("segment-duration", 30*time.Second, "time span of each segment")
	cam := flag.String("camera", "cam1", "camera id of the segments")
	seed := flag.Uint64("seed", 1, "seed of the content")
	flag.Parse()
	if err := run(*dir, *total, *segBytes, *segDur, *cam, *seed); err != nil {
		fmt.Fprintf(os.Stderr, "ringgen: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, total, segBytes int64, segDur time.Duration, cam string, seed uint64) error {
	if dir == "" || total <= 0 || segBytes <= 0 || segDur <= 0 {
		return errors.New("-dir, -bytes, -segment-bytes and -segment-duration are required and positive")
	}
	n := (total + segBytes - 1) / segBytes
	r, err := ring.Open(ring.Config{
		DataDir:  dir,
		MaxBytes: 2*total + 1<<30, // nothing may be evicted
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Scan: func(string) (ring.ScanInfo, error) {
			return ring.ScanInfo{}, errors.New("ringgen does not repair segments")
		},
	})
	if err != nil {
		return err
	}
	// The backlog ends a minute ago, as after an outage that just ended.
	start := time.Now().Add(-time.Minute - time.Duration(n)*segDur).Truncate(time.Second)
	rng := rand.NewChaCha8(seedBytes(seed))
	buf := make([]byte, 256<<10)
	var written int64
	for i := int64(0); i < n; i++ {
		size := min(segBytes, total-written)
		f, err := r.Create(cam, "h264", start)
		if err != nil {
			r.Close()
			return err
		}
		for left := size; left > 0; {
			b := buf[:min(int64(len(buf)), left)]
			_, _ = rng.Read(b) // never fails
			if _, err := f.Write(b); err != nil {
				r.Close()
				return err
			}
			left -= int64(len(b))
		}
		end := start.Add(segDur)
		if err := f.Commit(end, int(segDur/(40*time.Millisecond))); err != nil {
			r.Close()
			return err
		}
		written += size
		start = end
	}
	st := r.Stats()
	if err := r.Close(); err != nil {
		return err
	}
	if st.Pending != int(n) || st.UsedBytes != total {
		return fmt.Errorf("ring holds %d pending segments, %d bytes; want %d, %d", st.Pending, st.UsedBytes, n, total)
	}
	fmt.Printf("ringgen %d segments %d bytes\n", n, total)
	return nil
}

func seedBytes(s uint64) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(s >> (8 * i))
	}
	return b
}
