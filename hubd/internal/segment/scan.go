package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/zipnvr/zipnvr/pkg/fragindex"
)

// ScanResult is what a segment file holds up to its last complete fragment.
type ScanResult struct {
	Codec     string // h264, h265, mjpeg
	InitSize  int64  // bytes of ftyp+moov
	ValidSize int64  // bytes up to the end of the last complete moof+mdat
	Fragments int
	Frames    int
	// Duration in ClockRate ticks from the first sample's DTS to the end of the last.
	Duration int64
	// TimeScale of the track.
	TimeScale uint32
	// Indexed: the file ends with a valid fragment index (pkg/fragindex),
	// counted in ValidSize; a segment cut short by a crash has none.
	Indexed bool
}

// ErrNotPlayable marks a file that holds no complete fragment starting with a
// sync sample: it must not be indexed.
var ErrNotPlayable = errors.New("no playable fragment")

// maxScanBytes bounds what a repair reads into memory (a 30 s segment of an
// 8 Mbit/s camera is 30 MB).
const maxScanBytes = 512 << 20

// Scan reads an fMP4 file written by Writer (or cut short by a crash) and
// reports its last complete fragment, so recovery can truncate a half-written
// moof/mdat and index what plays. The boxes are parsed with mediacommon.
func Scan(r io.ReaderAt, size int64) (ScanResult, error) {
	var res ScanResult
	if size > maxScanBytes {
		return res, fmt.Errorf("file of %d bytes is larger than a segment can be", size)
	}
	buf := make([]byte, size)
	if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("read: %w", err)
	}

	type box struct {
		typ        string
		start, end int64
	}
	var boxes []box
	for off := int64(0); off+8 <= size; {
		n := int64(binary.BigEndian.Uint32(buf[off:]))
		typ := string(buf[off+4 : off+8])
		hdr := int64(8)
		if n == 1 {
			if off+16 > size {
				break
			}
			n = int64(binary.BigEndian.Uint64(buf[off+8:]))
			hdr = 16
		}
		if n < hdr || off+n > size { // size 0 ("to end") is never written by us: incomplete
			break
		}
		boxes = append(boxes, box{typ, off, off + n})
		off += n
	}
	if len(boxes) < 2 || boxes[0].typ != "ftyp" || boxes[1].typ != "moov" {
		return res, fmt.Errorf("%w: no ftyp+moov at the start", ErrNotPlayable)
	}
	res.InitSize = boxes[1].end
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(buf[:res.InitSize])); err != nil {
		return res, fmt.Errorf("%w: init: %v", ErrNotPlayable, err)
	}
	if len(init.Tracks) != 1 {
		return res, fmt.Errorf("%w: %d tracks, want 1", ErrNotPlayable, len(init.Tracks))
	}
	res.TimeScale = init.Tracks[0].TimeScale
	switch init.Tracks[0].Codec.(type) {
	case *codecs.H264:
		res.Codec = "h264"
	case *codecs.H265:
		res.Codec = "h265"
	case *codecs.MJPEG:
		res.Codec = "mjpeg"
	default:
		return res, fmt.Errorf("%w: unsupported codec %T", ErrNotPlayable, init.Tracks[0].Codec)
	}

	res.ValidSize = res.InitSize
	next := 2
	for ; next+1 < len(boxes); next += 2 {
		if boxes[next].typ != "moof" || boxes[next+1].typ != "mdat" {
			break
		}
		res.ValidSize = boxes[next+1].end
	}
	mediaEnd := res.ValidSize
	if res.ValidSize == res.InitSize {
		return res, fmt.Errorf("%w: no complete fragment", ErrNotPlayable)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(buf[res.InitSize:res.ValidSize]); err != nil {
		return res, fmt.Errorf("%w: fragments: %v", ErrNotPlayable, err)
	}
	var first, end uint64
	for i, p := range parts {
		if len(p.Tracks) != 1 {
			return res, fmt.Errorf("%w: fragment %d has %d tracks", ErrNotPlayable, i, len(p.Tracks))
		}
		tr := p.Tracks[0]
		if i == 0 {
			first = tr.BaseTime
			if len(tr.Samples) == 0 || tr.Samples[0].IsNonSyncSample {
				return res, fmt.Errorf("%w: first sample is not a sync sample", ErrNotPlayable)
			}
		}
		if tr.BaseTime != end && i > 0 {
			return res, fmt.Errorf("%w: fragment %d starts at %d, previous ended at %d", ErrNotPlayable, i, tr.BaseTime, end)
		}
		end = tr.BaseTime
		for _, s := range tr.Samples {
			end += uint64(s.Duration)
		}
		res.Frames += len(tr.Samples)
	}
	res.Fragments = len(parts)
	res.Duration = int64(end - first)
	if next < len(boxes) && boxes[next].typ == "mfra" && boxes[next].start == mediaEnd {
		b := boxes[next]
		if ix, err := fragindex.Parse(buf[b.start:b.end], b.end); err == nil && len(ix.Fragments) == res.Fragments {
			res.ValidSize, res.Indexed = b.end, true
		}
	}
	return res, nil
}
