package snapshots

import (
	"errors"
	"fmt"
)

// JPEGInfo is what the first bytes of a JPEG tell.
type JPEGInfo struct {
	// Width and Height are zero when the frame header lies beyond the bytes
	// read (large EXIF or ICC segments come first).
	Width, Height int
}

// HeadBytes is how much of an upload relay reads to check it: enough for
// the markers before the frame header of a camera or phone JPEG, small
// beside the image.
const HeadBytes = 64 << 10

// ErrNotJPEG is wrapped by CheckJPEG's errors.
var ErrNotJPEG = errors.New("not a JPEG")

// CheckJPEG checks the first bytes of an image: the JPEG start marker, then
// well-formed marker segments up to the frame header (SOFn), whose size it
// reports. Running out of bytes before the frame header is no error (head
// is a prefix of the file); anything that cannot be a JPEG is. It never
// decodes the image.
func CheckJPEG(head []byte) (JPEGInfo, error) {
	bad := func(format string, a ...any) (JPEGInfo, error) {
		return JPEGInfo{}, fmt.Errorf("%w: %s", ErrNotJPEG, fmt.Sprintf(format, a...))
	}
	if len(head) < 4 || head[0] != 0xFF || head[1] != 0xD8 || head[2] != 0xFF {
		n := min(len(head), 4)
		return bad("starts with % x, want ff d8 ff (start of image)", head[:n])
	}
	i := 2
	for {
		// Fill bytes (0xFF) may precede a marker.
		for i < len(head) && head[i] == 0xFF && i+1 < len(head) && head[i+1] == 0xFF {
			i++
		}
		if i+2 > len(head) {
			return JPEGInfo{}, nil // the head ends before the frame header
		}
		if head[i] != 0xFF {
			return bad("byte %#02x at offset %d where a marker should be", head[i], i)
		}
		m := head[i+1]
		switch {
		case m == 0xD8:
			return bad("second start of image at offset %d", i)
		case m == 0xD9:
			return bad("end of image at offset %d before any frame header", i)
		case m == 0xDA:
			return bad("scan at offset %d before any frame header", i)
		case m == 0x00 || m == 0x01 || m >= 0xD0 && m <= 0xD7:
			return bad("marker ff %02x at offset %d outside a scan", m, i)
		}
		if i+4 > len(head) {
			return JPEGInfo{}, nil
		}
		seg := int(head[i+2])<<8 | int(head[i+3])
		if seg < 2 {
			return bad("segment length %d of marker ff %02x at offset %d", seg, m, i)
		}
		// SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC).
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC {
			if seg < 8 {
				return bad("frame header of %d bytes at offset %d", seg, i)
			}
			if i+9 > len(head) {
				return JPEGInfo{}, nil
			}
			h := int(head[i+5])<<8 | int(head[i+6])
			w := int(head[i+7])<<8 | int(head[i+8])
			if w == 0 {
				return bad("frame header at offset %d gives width 0", i)
			}
			return JPEGInfo{Width: w, Height: h}, nil
		}
		i += 2 + seg
	}
}
