package ingest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// The fixtures in testdata are real encoder output, made with ffmpeg 5.1
// (Debian 12) by:
//
//	ffmpeg -f lavfi -i testsrc2=size=320x240:rate=25 -t 1 -c:v libx264 -bf 0 -g 25 -f h264 - > testdata/testsrc2_320x240.h264
//	ffmpeg -f lavfi -i testsrc2=size=320x240:rate=25 -t 1 -c:v libx265 -bf 0 -g 25 -f hevc - > testdata/testsrc2_320x240.hevc
//	ffmpeg -f lavfi -i testsrc2=size=320x240 -frames:v 1 -f image2pipe -c:v mjpeg - > testdata/testsrc2_320x240.jpg
//
// TestCheckLiveEncoder runs the same commands again when ffmpeg is installed.

var ffmpegArgs = map[string][]string{
	"h264": {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "1", "-c:v", "libx264", "-bf", "0", "-g", "25", "-f", "h264", "-"},
	"hevc": {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "1", "-c:v", "libx265", "-x265-params", "log-level=error", "-bf", "0", "-g", "25", "-f", "hevc", "-"},
	"jpg":  {"-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", "-f", "image2pipe", "-c:v", "mjpeg", "-"},
}

func readFixture(t testing.TB, ext string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "testsrc2_320x240."+ext))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitAUs splits an Annex-B stream into access units: the parameter sets
// and SEI before a slice, plus that slice (the encoders write one slice per
// picture).
func splitAUs(t testing.TB, stream []byte, isVCL func(n []byte) bool) [][][]byte {
	t.Helper()
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(stream); err != nil {
		t.Fatalf("Annex-B: %v", err)
	}
	var aus [][][]byte
	var pending [][]byte
	for _, n := range nalus {
		pending = append(pending, n)
		if isVCL(n) {
			aus = append(aus, pending)
			pending = nil
		}
	}
	if len(pending) != 0 {
		t.Fatalf("%d NAL units after the last slice", len(pending))
	}
	return aus
}

func isVCL264(n []byte) bool {
	typ := h264.NALUType(n[0] & 0x1f)
	return typ >= h264.NALUTypeNonIDR && typ <= h264.NALUTypeIDR
}

func isVCL265(n []byte) bool { return len(n) >= 2 && (n[0]>>1)&0x3f <= 31 }

func h264AUs(t testing.TB) [][][]byte {
	return splitAUs(t, readFixture(t, "h264"), isVCL264)
}

func h265AUs(t testing.TB) [][][]byte {
	return splitAUs(t, readFixture(t, "hevc"), isVCL265)
}

// bitWriter writes the Exp-Golomb slice headers of hand-made NAL units.
type bitWriter struct {
	b []byte
	n int
}

func (w *bitWriter) bit(v uint32) {
	if w.n%8 == 0 {
		w.b = append(w.b, 0)
	}
	if v != 0 {
		w.b[len(w.b)-1] |= 0x80 >> (w.n % 8)
	}
	w.n++
}

func (w *bitWriter) ue(v uint32) {
	x := uint64(v) + 1
	bits := 0
	for y := x; y > 1; y >>= 1 {
		bits++
	}
	for i := 0; i < bits; i++ {
		w.bit(0)
	}
	for i := bits; i >= 0; i-- {
		w.bit(uint32(x>>i) & 1)
	}
}

// rbsp ends the header with a stop bit and some slice data bytes.
func (w *bitWriter) rbsp() []byte {
	w.bit(1)
	return append(w.b, 0xAA, 0x55)
}

// addEPB inserts emulation prevention bytes as an encoder does.
func addEPB(rbsp []byte) []byte {
	var out []byte
	zeros := 0
	for _, c := range rbsp {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// h264Slice builds an H.264 slice NAL unit of type typ (1 or 5).
func h264Slice(typ byte, firstMB, sliceType, pps uint32) []byte {
	var w bitWriter
	w.ue(firstMB)
	w.ue(sliceType)
	w.ue(pps)
	return append([]byte{0x60 | typ}, addEPB(w.rbsp())...)
}

// h265Slice builds an H.265 slice NAL unit of type typ.
func h265Slice(typ byte, pps uint32) []byte {
	var w bitWriter
	w.bit(1) // first_slice_segment_in_pic_flag
	if typ >= 16 && typ <= 23 {
		w.bit(0) // no_output_of_prior_pics_flag
	}
	w.ue(pps)
	return append([]byte{typ << 1, 0x01}, addEPB(w.rbsp())...)
}

func TestBitWriterMatchesReader(t *testing.T) {
	for _, v := range []uint32{0, 1, 2, 3, 7, 12, 255, 256, 65535, 1 << 20, 1<<31 - 1, 1<<32 - 2} {
		var w bitWriter
		w.ue(v)
		w.ue(5)
		r := bitReader{b: w.rbsp()}
		got, err := r.ue()
		if err != nil || got != v {
			t.Fatalf("ue(%d) read back as %d, %v", v, got, err)
		}
		if got, err := r.ue(); err != nil || got != 5 {
			t.Fatalf("second ue read back as %d, %v", got, err)
		}
	}
}

func TestBitReader(t *testing.T) {
	tests := []struct {
		in   []byte
		want []uint32
		err  string // error of the read after want
	}{
		{[]byte{0x80}, []uint32{0}, ""},
		{[]byte{0xA6, 0x42, 0x80}, []uint32{0, 1, 2, 3, 4}, "truncated"}, // 1 010 011 00100 00101 0000000
		{[]byte{}, nil, "truncated"},
		{[]byte{0x00}, nil, "truncated"},
		{[]byte{0x00, 0x00, 0x00, 0x00, 0x80}, nil, "too long"},                           // 32 zeros
		{[]byte{0x00, 0x00, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFE}, []uint32{1<<32 - 2}, ""}, // 31 zeros: the largest code
		{[]byte{0x01}, nil, "truncated"},                                                  // 7 zeros, a 1, no suffix
	}
	for _, tt := range tests {
		r := bitReader{b: tt.in}
		for i, want := range tt.want {
			got, err := r.ue()
			if err != nil || got != want {
				t.Fatalf("%x: code %d = %d, %v; want %d", tt.in, i, got, err, want)
			}
		}
		if tt.err != "" {
			if _, err := r.ue(); err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("%x: error %v, want %q", tt.in, err, tt.err)
			}
		}
	}
}

func TestCheckH264RealStream(t *testing.T) {
	aus := h264AUs(t)
	if len(aus) != 25 {
		t.Fatalf("%d access units, want 25", len(aus))
	}
	if !h264.IsRandomAccess(aus[0]) {
		t.Fatal("the first access unit is not an IDR")
	}
	for i, au := range aus {
		if err := CheckH264(au); err != nil {
			t.Fatalf("AU %d (%d NAL units): %v", i, len(au), err)
		}
	}
	// The same NAL units re-grouped: one AU of the whole GOP is valid too.
	var all [][]byte
	for _, au := range aus {
		all = append(all, au...)
	}
	if err := CheckH264(all); err != nil {
		t.Fatalf("whole stream as one AU: %v", err)
	}
}

func TestCheckH264(t *testing.T) {
	idrAU := h264AUs(t)[0]
	var sps, pps, idr []byte
	for _, n := range idrAU {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		case h264.NALUTypeIDR:
			idr = n
		}
	}
	if sps == nil || pps == nil || idr == nil {
		t.Fatalf("first AU lacks SPS, PPS or IDR: %d NAL units", len(idrAU))
	}
	with := func(n []byte, f func(b []byte)) []byte {
		b := bytes.Clone(n)
		f(b)
		return b
	}
	// A first_mb_in_slice whose code has 23 leading zeros: its RBSP holds
	// 00 00 01, which the NAL unit carries as 00 00 03 01.
	epbSlice := h264Slice(5, 1<<23-1, 7, 0)
	if !bytes.Contains(epbSlice, []byte{0, 0, 3}) {
		t.Fatalf("test slice %x has no emulation prevention byte", epbSlice)
	}
	tests := []struct {
		name string
		au   [][]byte
		err  string // "" means valid
	}{
		{"real IDR AU", [][]byte{sps, pps, idr}, ""},
		{"slice alone", [][]byte{idr}, ""},
		{"AUD, SEI and slice", [][]byte{{0x09, 0xF0}, {0x06, 0x05, 0x01, 0x00, 0x80}, idr}, ""},
		{"hand-made P slice", [][]byte{h264Slice(1, 0, 0, 0)}, ""},
		{"every slice_type", [][]byte{h264Slice(1, 0, 0, 0), h264Slice(1, 1, 1, 0), h264Slice(1, 2, 2, 0), h264Slice(1, 3, 3, 0), h264Slice(1, 4, 4, 0),
			h264Slice(5, 5, 5, 0), h264Slice(5, 6, 6, 0), h264Slice(5, 7, 7, 0), h264Slice(5, 8, 8, 0), h264Slice(5, 9, 9, 0)}, ""},
		{"pps 255", [][]byte{h264Slice(5, 0, 7, 255)}, ""},
		{"emulation prevention in header", [][]byte{epbSlice}, ""},
		{"long slice header beyond 64 bytes", [][]byte{append(h264Slice(1, 0, 5, 0), make([]byte, 200)...)}, ""},

		{"empty AU", [][]byte{}, "empty access unit"},
		{"nil AU", nil, "empty access unit"},
		{"AU without slice", [][]byte{sps, pps}, "no slice"},
		{"AU of SEI only", [][]byte{{0x06, 0x05, 0x01, 0x00, 0x80}}, "no slice"},
		{"data partition is not a slice", [][]byte{{0x02, 0x88, 0x80}}, "no slice"},
		{"empty NAL unit", [][]byte{sps, {}, idr}, "NAL unit 1 is empty"},
		{"forbidden bit on slice", [][]byte{sps, pps, with(idr, func(b []byte) { b[0] |= 0x80 })}, "NAL unit 2 has the forbidden bit"},
		{"forbidden bit on SPS", [][]byte{with(sps, func(b []byte) { b[0] |= 0x80 }), pps, idr}, "NAL unit 0 has the forbidden bit"},
		{"type 0", [][]byte{{0x60, 0x88}, idr}, "unspecified type 0"},
		{"type 24", [][]byte{idr, {0x78, 0x01}}, "unspecified type 24"},
		{"type 31", [][]byte{{0x7F}, idr}, "unspecified type 31"},
		{"truncated slice header: no header", [][]byte{{0x65}}, "truncated"},
		{"truncated slice header: zeros", [][]byte{{0x65, 0x00}}, "truncated"},
		{"truncated slice header: cut real IDR", [][]byte{sps, pps, idr[:1]}, "truncated"},
		{"truncated slice header: no pps", [][]byte{{0x41, 0x88}}, "truncated"}, // 1 0001000: first_mb 0, slice_type 7, then nothing
		{"slice_type 10", [][]byte{h264Slice(1, 0, 10, 0)}, "slice_type 10"},
		{"slice_type 12", [][]byte{h264Slice(5, 0, 12, 0)}, "slice_type 12"},
		{"pps 256", [][]byte{h264Slice(1, 0, 0, 256)}, "pic_parameter_set_id 256"},
		{"Exp-Golomb too long", [][]byte{{0x65, 0x00, 0x00, 0x00, 0x00, 0x80}}, "too long"},
		{"second slice broken", [][]byte{idr, h264Slice(1, 0, 12, 0)}, "NAL unit 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckH264(tt.au)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("CheckH264: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("CheckH264 = %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

func TestCheckH265RealStream(t *testing.T) {
	aus := h265AUs(t)
	if len(aus) != 25 {
		t.Fatalf("%d access units, want 25", len(aus))
	}
	if !h265.IsRandomAccess(aus[0]) {
		t.Fatal("the first access unit is not an IRAP")
	}
	for i, au := range aus {
		if err := CheckH265(au); err != nil {
			t.Fatalf("AU %d (%d NAL units): %v", i, len(au), err)
		}
	}
}

func TestCheckH265(t *testing.T) {
	aus := h265AUs(t)
	first := aus[0]
	var params [][]byte
	var irap, trail []byte
	for _, n := range first {
		typ := h265.NALUType((n[0] >> 1) & 0x3f)
		switch {
		case typ == h265.NALUType_VPS_NUT || typ == h265.NALUType_SPS_NUT || typ == h265.NALUType_PPS_NUT:
			params = append(params, n)
		case typ >= 16 && typ <= 21:
			irap = n
		}
	}
	trail = aus[1][len(aus[1])-1]
	if len(params) != 3 || irap == nil || !isVCL265(trail) {
		t.Fatalf("first AU: %d parameter sets, IRAP %v; second AU's last NAL unit type %d", len(params), irap != nil, (trail[0]>>1)&0x3f)
	}
	with := func(n []byte, f func(b []byte)) []byte {
		b := bytes.Clone(n)
		f(b)
		return b
	}
	au := func(nalus ...[]byte) [][]byte { return nalus }
	tests := []struct {
		name string
		au   [][]byte
		err  string
	}{
		{"real IRAP AU", append(append([][]byte{}, params...), irap), ""},
		{"real trailing picture", au(trail), ""},
		{"hand-made TRAIL_R", au(h265Slice(1, 0)), ""},
		{"hand-made IDR_W_RADL", au(h265Slice(19, 0)), ""},
		{"hand-made CRA", au(h265Slice(21, 63)), ""},
		{"every non-reserved slice type", au(h265Slice(0, 0), h265Slice(2, 1), h265Slice(3, 2), h265Slice(4, 3), h265Slice(5, 4),
			h265Slice(6, 5), h265Slice(7, 6), h265Slice(8, 7), h265Slice(9, 8), h265Slice(16, 9), h265Slice(17, 10), h265Slice(18, 11), h265Slice(20, 12)), ""},
		{"unspecified types 48..63 pass", au(h265Slice(1, 0), []byte{48 << 1, 0x01}, []byte{63 << 1, 0x01}), ""},
		{"temporal id 7", au(with(trail, func(b []byte) { b[1] = b[1]&^7 | 7 })), ""},

		{"empty AU", au(), "empty access unit"},
		{"AU without slice", params, "no slice"},
		{"AUD and SEI only", au([]byte{35 << 1, 0x01, 0x50}, []byte{39 << 1, 0x01, 0x05}), "no slice"},
		{"NAL unit of 1 byte", au(h265Slice(1, 0), []byte{0x02}), "NAL unit 1 is shorter than its header"},
		{"empty NAL unit", au([]byte{}, h265Slice(1, 0)), "NAL unit 0 is shorter"},
		{"forbidden bit on slice", au(params[0], with(irap, func(b []byte) { b[0] |= 0x80 })), "NAL unit 1 has the forbidden bit"},
		{"forbidden bit on VPS", au(with(params[0], func(b []byte) { b[0] |= 0x80 }), irap), "NAL unit 0 has the forbidden bit"},
		{"temporal id plus1 zero", au(with(irap, func(b []byte) { b[1] &^= 7 })), "nuh_temporal_id_plus1 = 0"},
		{"reserved type 41", au(h265Slice(1, 0), []byte{41 << 1, 0x01, 0x80}), "reserved type 41"},
		{"reserved type 47", au([]byte{47 << 1, 0x01}, h265Slice(1, 0)), "reserved type 47"},
		{"reserved slice type 10", au(h265Slice(10, 0)), "reserved slice type 10"},
		{"reserved slice type 15", au(h265Slice(15, 0)), "reserved slice type 15"},
		{"reserved IRAP 22", au(h265Slice(22, 0)), "reserved slice type 22"},
		{"reserved VCL 31", au(h265Slice(31, 0)), "reserved slice type 31"},
		{"truncated slice header: header only", au([]byte{19 << 1, 0x01}), "truncated"},
		{"truncated slice header: IRAP flags only", au([]byte{19 << 1, 0x01, 0x80}), "truncated"}, // 1 0 then 000000
		{"pps 64", au(h265Slice(1, 64)), "slice_pic_parameter_set_id 64"},
		{"Exp-Golomb too long", au([]byte{1 << 1, 0x01, 0x80, 0x00, 0x00, 0x00, 0x00, 0x80}), "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckH265(tt.au)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("CheckH265: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("CheckH265 = %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

// TestCheckLiveEncoder checks the encoders installed here, not only the
// stored fixtures; it is skipped where ffmpeg is missing.
func TestCheckLiveEncoder(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil || testing.Short() {
		t.Skip("ffmpeg not installed (or -short)")
	}
	run := func(kind string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args := append([]string{"-nostdin", "-loglevel", "error"}, ffmpegArgs[kind]...)
		out, err := exec.CommandContext(ctx, ffmpeg, args...).Output()
		if err != nil {
			if strings.Contains(err.Error(), "exit status") {
				t.Skipf("ffmpeg cannot make %s here: %v", kind, err)
			}
			t.Fatalf("ffmpeg %s: %v", kind, err)
		}
		return out
	}
	for i, au := range splitAUs(t, run("h264"), isVCL264) {
		if err := CheckH264(au); err != nil {
			t.Fatalf("libx264 AU %d: %v", i, err)
		}
	}
	for i, au := range splitAUs(t, run("hevc"), isVCL265) {
		if err := CheckH265(au); err != nil {
			t.Fatalf("libx265 AU %d: %v", i, err)
		}
	}
	if w, h, err := JPEGSize(run("jpg")); err != nil || w != 320 || h != 240 {
		t.Fatalf("mjpeg encoder: JPEGSize = %dx%d, %v", w, h, err)
	}
}

// splitFuzz cuts data into NAL units at each 00 00 01 start code, or, when
// there is none, at each byte 0xFF (so a NAL unit may itself contain any byte
// but 0xFF there, and empty NAL units happen).
func splitFuzz(data []byte) [][]byte {
	if bytes.Contains(data, []byte{0, 0, 1}) {
		return bytes.Split(data, []byte{0, 0, 1})
	}
	return bytes.Split(data, []byte{0xFF})
}

func joinFuzz(au [][]byte) []byte { return bytes.Join(au, []byte{0, 0, 1}) }

func FuzzCheckH264(f *testing.F) {
	aus := h264AUs(f)
	f.Add(joinFuzz(aus[0]))
	f.Add(joinFuzz(aus[1]))
	f.Add(joinFuzz([][]byte{h264Slice(5, 0, 12, 0)}))
	f.Add(joinFuzz([][]byte{h264Slice(5, 1<<23-1, 7, 0)}))
	f.Add([]byte{0x65})
	f.Add([]byte{0x65, 0x00, 0x00, 0x00, 0x00, 0x80})
	f.Add([]byte{})
	f.Add([]byte{0x67, 0xFF, 0x68, 0xFF, 0x41, 0x9a})
	f.Fuzz(func(t *testing.T, data []byte) {
		au := splitFuzz(data)
		if err := CheckH264(au); err == nil {
			slices := 0
			for _, n := range au {
				if len(n) == 0 || n[0]&0x80 != 0 {
					t.Fatalf("accepted NAL unit %x", n)
				}
				if typ := n[0] & 0x1f; typ == 1 || typ == 5 {
					slices++
				}
			}
			if slices == 0 {
				t.Fatal("accepted an AU without slice")
			}
		}
	})
}

func FuzzCheckH265(f *testing.F) {
	aus := h265AUs(f)
	f.Add(joinFuzz(aus[0]))
	f.Add(joinFuzz(aus[1]))
	f.Add(joinFuzz([][]byte{h265Slice(19, 64)}))
	f.Add(joinFuzz([][]byte{h265Slice(22, 0)}))
	f.Add([]byte{19 << 1, 0x01})
	f.Add([]byte{0x26})
	f.Add([]byte{})
	f.Add([]byte{0x40, 0x01, 0xFF, 0x42, 0x01, 0xFF, 0x02, 0x01, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		au := splitFuzz(data)
		if err := CheckH265(au); err == nil {
			slices := 0
			for _, n := range au {
				if len(n) < 2 || n[0]&0x80 != 0 || n[1]&7 == 0 {
					t.Fatalf("accepted NAL unit %x", n)
				}
				if (n[0]>>1)&0x3f <= 31 {
					slices++
				}
			}
			if slices == 0 {
				t.Fatal("accepted an AU without slice")
			}
		}
	})
}
