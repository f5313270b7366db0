package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// sofOffset returns where the SOF segment of a JPEG starts and its length.
func sofOffset(t testing.TB, b []byte) (at, n int) {
	t.Helper()
	for i := 2; i+4 <= len(b); {
		m := b[i+1]
		n := int(b[i+2])<<8 | int(b[i+3])
		if m == 0xC0 || m == 0xC2 {
			return i, n
		}
		i += 2 + n
	}
	t.Fatal("no SOF in the fixture")
	return 0, 0
}

func TestJPEGSizeReal(t *testing.T) {
	jpg := readFixture(t, "jpg")
	w, h, err := JPEGSize(jpg)
	if err != nil || w != 320 || h != 240 {
		t.Fatalf("JPEGSize = %dx%d, %v; want 320x240", w, h, err)
	}
	// Every cut before the end of the frame header fails, every later one
	// succeeds: the size needs the SOF, not the image data.
	at, n := sofOffset(t, jpg)
	for cut := 0; cut <= len(jpg); cut++ {
		w, h, err := JPEGSize(jpg[:cut])
		if cut < at+2+n {
			if err == nil {
				t.Fatalf("cut at %d (SOF ends at %d): %dx%d, want an error", cut, at+2+n, w, h)
			}
		} else if err != nil || w != 320 || h != 240 {
			t.Fatalf("cut at %d: %dx%d, %v", cut, w, h, err)
		}
	}
}

// jpegOf builds a JPEG of segments after SOI.
func jpegOf(segs ...[]byte) []byte {
	b := []byte{0xFF, 0xD8}
	for _, s := range segs {
		b = append(b, s...)
	}
	return b
}

// seg is a marker segment with a payload; its length field counts itself.
func seg(marker byte, payload ...byte) []byte {
	n := len(payload) + 2
	return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
}

// sof is a frame header of h x w with one component.
func sof(marker byte, w, h int) []byte {
	return seg(marker, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 1, 1, 0x11, 0)
}

func TestJPEGSize(t *testing.T) {
	app0 := seg(0xE0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")...)
	dqt := seg(0xDB, make([]byte, 65)...)
	dht := seg(0xC4, make([]byte, 29)...)
	sos := seg(0xDA, 1, 1, 0, 0, 63, 0)
	tests := []struct {
		name string
		b    []byte
		w, h int
		err  string
	}{
		{"baseline", jpegOf(app0, dqt, sof(0xC0, 1920, 1080), dht, sos), 1920, 1080, ""},
		{"progressive", jpegOf(sof(0xC2, 640, 480)), 640, 480, ""},
		{"extended sequential", jpegOf(sof(0xC1, 16, 8)), 16, 8, ""},
		{"largest", jpegOf(sof(0xC0, 65535, 65535)), 65535, 65535, ""},
		{"DHT, JPG and DAC are not frame headers", jpegOf(dht, seg(0xC8, 1, 2, 3), seg(0xCC, 0, 0), sof(0xC0, 2, 1)), 2, 1, ""},
		{"fill bytes before a marker", jpegOf([]byte{0xFF, 0xFF, 0xFF}, sof(0xC0, 4, 4)), 4, 4, ""},
		{"standalone markers skipped", jpegOf([]byte{0xFF, 0xD0, 0xFF, 0x01, 0xFF, 0xD8}, sof(0xC0, 4, 4)), 4, 4, ""},
		{"frame header of 7 bytes", jpegOf([]byte{0xFF, 0xC0, 0, 7, 8, 0, 9, 0, 10}), 10, 9, ""},

		{"empty", nil, 0, 0, "start-of-image"},
		{"SOI only", []byte{0xFF, 0xD8}, 0, 0, "start-of-image"},
		{"no SOI", sof(0xC0, 320, 240), 0, 0, "start-of-image"},
		{"PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), 0, 0, "start-of-image"},
		{"SOS before SOF", jpegOf(dqt, sos, sof(0xC0, 320, 240)), 0, 0, "no frame header before the image data"},
		{"EOI before SOF", jpegOf([]byte{0xFF, 0xD9}, sof(0xC0, 320, 240)), 0, 0, "no frame header"},
		{"zero height", jpegOf(sof(0xC0, 320, 0)), 0, 0, "JPEG of 320x0"},
		{"zero width", jpegOf(sof(0xC2, 0, 240)), 0, 0, "JPEG of 0x240"},
		{"segment overruns the data", jpegOf(app0[:4], []byte("JFIF")), 0, 0, "overruns"},
		{"segment length 0xFFFF", jpegOf([]byte{0xFF, 0xE1, 0xFF, 0xFF, 0, 0, 0, 0}), 0, 0, "overruns"},
		{"segment length 1", jpegOf([]byte{0xFF, 0xE0, 0x00, 0x01}, sof(0xC0, 1, 1)), 0, 0, "overruns"},
		{"segment length 0", jpegOf([]byte{0xFF, 0xE0, 0x00, 0x00}, sof(0xC0, 1, 1)), 0, 0, "overruns"},
		{"frame header too short", jpegOf([]byte{0xFF, 0xC0, 0, 6, 8, 0, 9, 0}), 0, 0, "frame header too short"},
		{"SOF cut", jpegOf(sof(0xC0, 320, 240)[:8]), 0, 0, "overruns"},
		{"garbage between segments", jpegOf(app0, []byte{0x00, 0x11}, sof(0xC0, 8, 8)), 0, 0, "expected a marker"},
		{"truncated after segments", jpegOf(app0, dqt), 0, 0, "truncated"},
		{"truncated marker", jpegOf(app0, []byte{0xFF, 0xC0, 0x00}), 0, 0, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h, err := JPEGSize(tt.b)
			if tt.err == "" {
				if err != nil || w != tt.w || h != tt.h {
					t.Fatalf("JPEGSize = %dx%d, %v; want %dx%d", w, h, err, tt.w, tt.h)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("JPEGSize = %dx%d, %v; want an error containing %q", w, h, err, tt.err)
			}
			if w != 0 || h != 0 {
				t.Fatalf("error with a size %dx%d", w, h)
			}
		})
	}
}

func FuzzJPEGSize(f *testing.F) {
	jpg := readFixture(f, "jpg")
	at, n := sofOffset(f, jpg)
	f.Add(jpg[:at+2+n+16])
	f.Add(jpg[:at+2+n-1])
	f.Add(jpegOf(sof(0xC0, 1920, 1080)))
	f.Add(jpegOf([]byte{0xFF, 0xFF, 0xD0, 0xFF, 0xC0, 0, 7, 8, 0, 9, 0, 10}))
	f.Add(jpegOf(seg(0xDA, 1)))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		w, h, err := JPEGSize(data)
		if err == nil && (w <= 0 || h <= 0) {
			t.Fatalf("JPEGSize = %dx%d without error", w, h)
		}
		if err != nil && (w != 0 || h != 0) {
			t.Fatalf("JPEGSize = %dx%d with error %v", w, h, err)
		}
	})
}

const mixedCT = "multipart/x-mixed-replace; boundary=myboundary"

// stream builds a multipart body; each part is written with or without
// Content-Length.
func stream(boundary string, withLength bool, parts ...[]byte) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		fmt.Fprintf(&b, "%s\r\nContent-Type: image/jpeg\r\n", boundary)
		if withLength {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(p))
		}
		b.WriteString("\r\n")
		b.Write(p)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// readAll calls Next until an error, at most 100 times.
func readAll(t *testing.T, mr *MultipartReader) ([][]byte, error) {
	t.Helper()
	var parts [][]byte
	for i := 0; i < 100; i++ {
		p, err := mr.Next()
		if err != nil {
			return parts, err
		}
		parts = append(parts, bytes.Clone(p))
	}
	t.Fatal("100 parts without an error")
	return nil, nil
}

func TestMultipartReader(t *testing.T) {
	jpg := readFixture(t, "jpg")
	small := []byte("\xFF\xD8 a body with\r\nlines\nand --myboundary inside\r\n")
	withCRLF := []byte("ends with CRLF\r\n")
	tests := []struct {
		name  string
		ct    string
		body  string
		parts [][]byte
		err   error  // the error after the parts; nil means io.EOF
		msg   string // substring of a non-EOF error
	}{
		{name: "parts with Content-Length", body: string(stream("--myboundary", true, jpg, small, jpg)),
			parts: [][]byte{jpg, small, jpg}},
		{name: "Content-Length keeps a trailing CRLF of the body", body: string(stream("--myboundary", true, withCRLF)),
			parts: [][]byte{withCRLF}},
		{name: "empty part with Content-Length 0", body: string(stream("--myboundary", true, []byte{}, jpg)),
			parts: [][]byte{{}, jpg}},
		{name: "parts without Content-Length", body: string(stream("--myboundary", false, jpg, jpg)) + "--myboundary\r\n",
			parts: [][]byte{jpg, jpg}, err: errors.New("part header"), msg: "part header"},
		{name: "parts without Content-Length, closed", body: string(stream("--myboundary", false, jpg, []byte("second"), jpg)) + "--myboundary--\r\n",
			parts: [][]byte{jpg, []byte("second"), jpg}},
		{name: "without Content-Length, LF line ends", body: "--myboundary\nContent-Type: image/jpeg\n\nAAA\n--myboundary\n\nBBB\n--myboundary--\n",
			parts: [][]byte{[]byte("AAA"), []byte("BBB")}},
		{name: "without Content-Length, lines in the body kept", body: string(stream("--myboundary", false, small)) + "--myboundary--\r\n",
			parts: [][]byte{small}},
		{name: "mixed", body: string(stream("--myboundary", true, jpg)) + string(stream("--myboundary", false, []byte("x"))) +
			string(stream("--myboundary", true, []byte("y"))), parts: [][]byte{jpg, []byte("x"), []byte("y")}},
		{name: "boundary declared with leading dashes", ct: "multipart/x-mixed-replace; boundary=--myboundary",
			body: string(stream("--myboundary", true, jpg, jpg)), parts: [][]byte{jpg, jpg}},
		{name: "boundary declared with leading dashes, no length", ct: "multipart/x-mixed-replace;boundary=--myboundary",
			body: string(stream("--myboundary", false, jpg, []byte("b"))) + "--myboundary--\r\n", parts: [][]byte{jpg, []byte("b")}},
		{name: "declared with dashes, delimiter with four", ct: "multipart/x-mixed-replace; boundary=--myboundary",
			body: string(stream("----myboundary", true, jpg)), parts: [][]byte{jpg}},
		{name: "declared with dashes, delimiter with four, no length", ct: "multipart/x-mixed-replace; boundary=--myboundary",
			body: string(stream("----myboundary", false, []byte("a"), []byte("b"))) + "----myboundary--\r\n", parts: [][]byte{[]byte("a"), []byte("b")}},
		{name: "quoted boundary", ct: `multipart/x-mixed-replace; boundary="my boundary"`,
			body: string(stream("--my boundary", true, jpg)), parts: [][]byte{jpg}},
		{name: "multipart/mixed", ct: "multipart/mixed; boundary=myboundary",
			body: string(stream("--myboundary", true, jpg)), parts: [][]byte{jpg}},
		{name: "preamble garbage", body: "HTTP/1.0 200 OK junk\r\n\x00\x01\xFF garbage\r\n-- not it\r\n\r\n" + string(stream("--myboundary", true, jpg)),
			parts: [][]byte{jpg}},
		{name: "preamble without CRLF before boundary line", body: "garbage\n" + string(stream("--myboundary", false, []byte("a"))) + "--myboundary--",
			parts: [][]byte{[]byte("a")}},
		{name: "trailing bytes after a sized part", body: "--myboundary\r\nContent-Length: 3\r\n\r\nabcTRAILING\r\n" + string(stream("--myboundary", true, []byte("d"))),
			parts: [][]byte{[]byte("abc"), []byte("d")}},
		{name: "boundary with transport padding", body: "--myboundary  \r\nContent-Length: 1\r\n\r\na\r\n--myboundary-- \r\n",
			parts: [][]byte{[]byte("a")}},
		{name: "closing boundary first", body: "--myboundary--\r\n", parts: nil},
		{name: "closing boundary after sized parts", body: string(stream("--myboundary", true, jpg, jpg)) + "--myboundary--\r\n" + string(stream("--myboundary", true, jpg)),
			parts: [][]byte{jpg, jpg}},
		{name: "empty body", body: "", parts: nil},
		{name: "Content-Length at the maximum", body: fmt.Sprintf("--myboundary\r\nContent-Length: %d\r\n\r\n%s\r\n", MaxJPEGBytes, strings.Repeat("j", MaxJPEGBytes)),
			parts: [][]byte{[]byte(strings.Repeat("j", MaxJPEGBytes))}},
		{name: "Content-Length over the maximum", body: fmt.Sprintf("--myboundary\r\nContent-Length: %d\r\n\r\nxx", MaxJPEGBytes+1),
			err: errors.New(""), msg: "out of range"},
		{name: "Content-Length huge", body: "--myboundary\r\nContent-Length: 99999999999999999999\r\n\r\n", err: errors.New(""), msg: "out of range"},
		{name: "Content-Length negative", body: "--myboundary\r\nContent-Length: -5\r\n\r\n", err: errors.New(""), msg: "out of range"},
		{name: "Content-Length not a number", body: "--myboundary\r\nContent-Length: 12kB\r\n\r\n", err: errors.New(""), msg: "out of range"},
		{name: "body shorter than Content-Length", body: "--myboundary\r\nContent-Length: 100\r\n\r\nshort", err: errors.New(""), msg: "part body"},
		{name: "part without length over the maximum", body: "--myboundary\r\n\r\n" + strings.Repeat(strings.Repeat("x", 1023)+"\n", MaxJPEGBytes/1024+2),
			err: errors.New(""), msg: "larger than"},
		{name: "part without length never ended", body: "--myboundary\r\n\r\nabc", err: errors.New(""), msg: "part body"},
		{name: "no boundary in 1 MiB", body: strings.Repeat("garbage line\r\n", 80000), err: errors.New(""), msg: "no multipart boundary"},
		{name: "no boundary in one long line", body: strings.Repeat("g", 2<<20), err: errors.New(""), msg: "no multipart boundary"},
		{name: "bad part header", body: "--myboundary\r\n: no name\r\n\r\n", err: errors.New(""), msg: "part header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.ct
			if ct == "" {
				ct = mixedCT
			}
			for _, reader := range []struct {
				name string
				r    func() io.Reader
			}{
				{"whole", func() io.Reader { return strings.NewReader(tt.body) }},
				{"byte by byte", func() io.Reader { return iotest.OneByteReader(strings.NewReader(tt.body)) }},
			} {
				if reader.name == "byte by byte" && len(tt.body) > 1<<16 {
					continue
				}
				mr, err := NewMultipartReader(ct, reader.r())
				if err != nil {
					t.Fatalf("NewMultipartReader(%q): %v", ct, err)
				}
				parts, err := readAll(t, mr)
				if len(parts) != len(tt.parts) {
					t.Fatalf("%s: %d parts, want %d (then %v)", reader.name, len(parts), len(tt.parts), err)
				}
				for i := range parts {
					if !bytes.Equal(parts[i], tt.parts[i]) {
						t.Fatalf("%s: part %d = %q..., want %q...", reader.name, i, clipBytes(parts[i]), clipBytes(tt.parts[i]))
					}
				}
				if tt.err == nil {
					if err != io.EOF {
						t.Fatalf("%s: after the parts: %v, want io.EOF", reader.name, err)
					}
					// EOF stays EOF.
					if _, err := mr.Next(); err != io.EOF {
						t.Fatalf("%s: Next after EOF: %v", reader.name, err)
					}
				} else if err == nil || err == io.EOF || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("%s: after the parts: %v, want an error containing %q", reader.name, err, tt.msg)
				}
			}
		})
	}
}

func clipBytes(b []byte) []byte { return b[:min(len(b), 24)] }

func TestNewMultipartReaderContentType(t *testing.T) {
	tests := []struct {
		ct  string
		err string // "" means accepted
	}{
		{"multipart/x-mixed-replace; boundary=frame", ""},
		{"multipart/x-mixed-replace;boundary=--frame", ""},
		{`Multipart/X-Mixed-Replace; Boundary="frame"`, ""},
		{"multipart/mixed; boundary=" + strings.Repeat("b", 200), ""},
		{"image/jpeg", "not multipart"},
		{"text/html; boundary=frame", "not multipart"},
		{"application/octet-stream", "not multipart"},
		{"multipart/x-mixed-replace", "no usable boundary"},
		{"multipart/x-mixed-replace; charset=utf-8", "no usable boundary"},
		{"multipart/x-mixed-replace; boundary=", "content type"},
		{`multipart/x-mixed-replace; boundary=""`, "no usable boundary"},
		{"multipart/x-mixed-replace; boundary=--", "no usable boundary"},
		{"multipart/x-mixed-replace; boundary=-----", "no usable boundary"},
		{"multipart/mixed; boundary=" + strings.Repeat("b", 201), "no usable boundary"},
		{"", "content type"},
		{"multipart/x-mixed-replace; boundary=a; boundary=b", "content type"},
		{";;;", "content type"},
	}
	for _, tt := range tests {
		_, err := NewMultipartReader(tt.ct, strings.NewReader(""))
		if tt.err == "" {
			if err != nil {
				t.Errorf("NewMultipartReader(%q): %v", tt.ct, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("NewMultipartReader(%q) = %v, want an error containing %q", tt.ct, err, tt.err)
		}
	}
}

func FuzzMultipart(f *testing.F) {
	jpg := readFixture(f, "jpg")
	f.Add(stream("--myboundary", true, jpg[:64], []byte("x")))
	f.Add(append(stream("--myboundary", false, []byte("a"), []byte("b")), "--myboundary--\r\n"...))
	f.Add([]byte("junk\r\n--myboundary\r\nContent-Length: 3\r\n\r\nabc\r\n--myboundary--"))
	f.Add([]byte("--myboundary\r\nContent-Length: 8388609\r\n\r\n"))
	f.Add([]byte("--myboundary\r\nContent-Length: -1\r\n\r\n"))
	f.Add([]byte("----myboundary\n\nA\n----myboundary--\n"))
	f.Add([]byte("--myboundary\r\n: bad\r\n\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		mr, err := NewMultipartReader(mixedCT, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for i := 0; i < 100; i++ {
			p, err := mr.Next()
			if err != nil {
				if p != nil {
					t.Fatalf("Next returned %d bytes with the error %v", len(p), err)
				}
				break
			}
			if len(p) > MaxJPEGBytes {
				t.Fatalf("part of %d bytes", len(p))
			}
			total += len(p)
			if total > len(data) {
				t.Fatalf("parts hold %d bytes, more than the %d of the stream", total, len(data))
			}
		}
	})
}
