package snapshots

import (
	"bytes"
	"errors"
	"testing"
)

// header is a JPEG's start up to its frame header: SOI, APP0 (JFIF), and a
// baseline SOF0 of 640x360.
var header = []byte{0xFF, 0xD8,
	0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
	0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0x68, 0x02, 0x80, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestCheckJPEG(t *testing.T) {
	bigAPP := cat([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xF0}, bytes.Repeat([]byte{'x'}, 100)) // EXIF longer than the head
	progressive := bytes.Clone(header)
	progressive[21] = 0xC2
	tests := []struct {
		name string
		in   []byte
		w, h int
		ok   bool
	}{
		{"baseline", header, 640, 360, true},
		{"progressive", progressive, 640, 360, true},
		{"fill bytes before a marker", cat(header[:20], []byte{0xFF, 0xFF}, header[20:]), 640, 360, true},
		{"head ends in an APP segment", bigAPP, 0, 0, true},
		{"head ends in the frame header", header[:25], 0, 0, true},
		{"just the magic", []byte{0xFF, 0xD8, 0xFF, 0xE0}, 0, 0, true},
		{"empty", nil, 0, 0, false},
		{"three bytes", []byte{0xFF, 0xD8, 0xFF}, 0, 0, false},
		{"PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), 0, 0, false},
		{"text", []byte("hello, this is not an image"), 0, 0, false},
		{"HTML login page", []byte("<html><body>401</body></html>"), 0, 0, false},
		{"scan before the frame header", cat(header[:20], []byte{0xFF, 0xDA, 0x00, 0x08}), 0, 0, false},
		{"end of image first", []byte{0xFF, 0xD8, 0xFF, 0xD9, 0, 0}, 0, 0, false},
		{"second start of image", []byte{0xFF, 0xD8, 0xFF, 0xD8, 0, 0}, 0, 0, false},
		{"restart marker outside a scan", []byte{0xFF, 0xD8, 0xFF, 0xD3, 0, 4}, 0, 0, false},
		{"segment length 1", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0, 0}, 0, 0, false},
		{"garbage after a segment", cat(header[:20], []byte{0x12, 0x34, 0x56}), 0, 0, false},
		{"frame header too short", []byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x05, 8, 0, 1, 0, 1}, 0, 0, false},
		{"width 0", []byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 8, 0, 1, 0, 0, 3}, 0, 0, false},
	}
	for _, tc := range tests {
		info, err := CheckJPEG(tc.in)
		if tc.ok != (err == nil) || info.Width != tc.w || info.Height != tc.h {
			t.Errorf("%s: %+v, %v; want %dx%d ok=%v", tc.name, info, err, tc.w, tc.h, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNotJPEG) {
			t.Errorf("%s: %v does not wrap ErrNotJPEG", tc.name, err)
		}
	}
}

// FuzzCheckJPEG: no input panics, and since relay reads a prefix of the
// file, whatever it accepts it also accepts cut shorter (down to the magic).
func FuzzCheckJPEG(f *testing.F) {
	f.Add(header)
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xF0, 0})
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0xC0, 0, 0x11, 8, 0, 1, 0, 1, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := CheckJPEG(b)
		if err != nil {
			return
		}
		if info.Width < 0 || info.Height < 0 || len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
			t.Fatalf("accepted % x as %+v", b, info)
		}
		for n := 4; n < len(b); n++ {
			if _, err := CheckJPEG(b[:n]); err != nil {
				t.Fatalf("accepts % x but not its first %d bytes: %v", b, n, err)
			}
		}
	})
}
