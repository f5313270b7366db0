package clips

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	amp4 "github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// Parameter sets of real streams (mediacommon's test vectors): a 1920x1080
// H.264 SPS and an H.265 VPS/SPS/PPS.
var (
	testH264SPS = []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
		0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20}
	testH265VPS = []byte{0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0xb0, 0x00, 0x00, 0x03,
		0x00, 0x00, 0x03, 0x00, 0x7b, 0x18, 0xb0, 0x24}
	testH265SPS = []byte{0x42, 0x01, 0x01, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0xb0, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
		0x00, 0x7b, 0xa0, 0x07, 0x82, 0x00, 0x88, 0x7d, 0xb6, 0x71, 0x8b, 0x92, 0x44, 0x80, 0x53, 0x88,
		0x88, 0x92, 0xcf, 0x24, 0xa6, 0x92, 0x72, 0xc9, 0x12, 0x49, 0x22, 0xdc, 0x91, 0xaa, 0x48, 0xfc,
		0xa2, 0x23, 0xff, 0x00, 0x01, 0x00, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x01}
	testH265PPS = []byte{0x44, 0x01, 0xc0, 0x25, 0x2f, 0x05, 0x32, 0x40}
)

// hubInit writes an init section as hubd's segmenter does
// (segment.marshalInit): one track, ID 1, 90 kHz.
func hubInit(t testing.TB, c codecs.Codec, scale uint32) []byte {
	t.Helper()
	var buf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: scale, Codec: c}}}
	if err := init.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func hubInits(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"h264":  hubInit(t, &codecs.H264{SPS: testH264SPS, PPS: []byte{0x08}}, frameTicks*25),
		"h265":  hubInit(t, &codecs.H265{VPS: testH265VPS, SPS: testH265SPS, PPS: testH265PPS}, frameTicks*25),
		"mjpeg": hubInit(t, &codecs.MJPEG{Width: 640, Height: 480}, frameTicks*25),
	}
}

// parseBoxes returns the paths of init's boxes down to the ones relay
// rewrites, in order, and those boxes.
func parseBoxes(t testing.TB, b []byte) ([]string, map[string]amp4.IBox) {
	t.Helper()
	var paths []string
	boxes := map[string]amp4.IBox{}
	_, err := amp4.ReadBoxStructure(bytes.NewReader(b), func(h *amp4.ReadHandle) (any, error) {
		p := ""
		for i, x := range h.Path {
			if i > 0 {
				p += "/"
			}
			p += x.String()
		}
		paths = append(paths, p)
		switch h.BoxInfo.Type.String() {
		case "mvhd", "tkhd", "mdhd", "elst", "mehd":
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			boxes[h.BoxInfo.Type.String()] = box
		}
		switch h.BoxInfo.Type.String() {
		case "moov", "trak", "mdia", "edts", "mvex":
			return h.Expand()
		}
		return nil, nil
	})
	if err != nil {
		t.Fatalf("the rewritten init does not parse: %v", err)
	}
	return paths, boxes
}

func TestRewriteInit(t *testing.T) {
	const scale = 90000
	tests := []struct {
		name      string
		mediaTime uint64
		duration  uint64
		movieDur  uint64 // in mvhd's timescale (1000)
	}{
		{"epoch timeline", 161_692_781_277_685, 9320 * 90, 9320},
		{"not a whole ms: rounded up", 1_000_000, 3000*7 + 1, 234},
		{"past 32 bits in the movie timescale", 5, (math.MaxUint32 + 10) * 90, math.MaxUint32 + 10},
		{"past 32 bits in the track timescale", 5, 12 * 3600 * 90000 * 2, 24 * 3600 * 1000},
	}
	for codec, init := range hubInits(t) {
		for _, tt := range tests {
			t.Run(codec+"/"+tt.name, func(t *testing.T) {
				out, err := rewriteInit(init, initEdit{timescale: scale, mediaTime: tt.mediaTime, duration: tt.duration})
				if err != nil {
					t.Fatal(err)
				}
				// Still the same track for mediacommon, as hubd wrote it.
				var in, got fmp4.Init
				if err := in.Unmarshal(bytes.NewReader(init)); err != nil {
					t.Fatal(err)
				}
				if err := got.Unmarshal(bytes.NewReader(out)); err != nil {
					t.Fatalf("rewritten init: %v", err)
				}
				if len(got.Tracks) != 1 || got.Tracks[0].ID != in.Tracks[0].ID || got.Tracks[0].TimeScale != scale {
					t.Errorf("rewritten track %+v, want %+v", got.Tracks[0], in.Tracks[0])
				}
				paths, boxes := parseBoxes(t, out)
				want := []string{"ftyp", "moov", "moov/mvhd", "moov/trak", "moov/trak/tkhd", "moov/trak/edts", "moov/trak/edts/elst", "moov/trak/mdia"}
				for i, p := range want {
					if i >= len(paths) || paths[i] != p {
						t.Fatalf("boxes %v, want them to start %v", paths, want)
					}
				}
				if n := len(paths); paths[n-3] != "moov/mvex" || paths[n-2] != "moov/mvex/mehd" || paths[n-1] != "moov/mvex/trex" {
					t.Errorf("boxes end %v, want mvex with mehd before trex", paths[n-3:])
				}
				elst := boxes["elst"].(*amp4.Elst)
				if elst.Version != 1 || len(elst.Entries) != 1 || elst.GetMediaTime(0) != int64(tt.mediaTime) ||
					elst.GetSegmentDuration(0) != tt.movieDur || elst.Entries[0].MediaRateInteger != 1 {
					t.Errorf("elst %+v, want one edit of %d at %d, rate 1", elst, tt.movieDur, tt.mediaTime)
				}
				mvhd := boxes["mvhd"].(*amp4.Mvhd)
				if mvhd.Timescale != 1000 || mvhd.GetDuration() != tt.movieDur {
					t.Errorf("mvhd duration %d/%d, want %d/1000", mvhd.GetDuration(), mvhd.Timescale, tt.movieDur)
				}
				if d := boxes["tkhd"].(*amp4.Tkhd).GetDuration(); d != tt.movieDur {
					t.Errorf("tkhd duration %d, want %d", d, tt.movieDur)
				}
				if d := boxes["mehd"].(*amp4.Mehd).GetFragmentDuration(); d != tt.movieDur {
					t.Errorf("mehd duration %d, want %d", d, tt.movieDur)
				}
				if d := boxes["mdhd"].(*amp4.Mdhd).GetDuration(); d != tt.duration {
					t.Errorf("mdhd duration %d, want %d", d, tt.duration)
				}
				// Rewriting the rewritten init replaces its edit and mehd.
				again, err := rewriteInit(out, initEdit{timescale: scale, mediaTime: tt.mediaTime, duration: tt.duration})
				if err != nil || !bytes.Equal(again, out) {
					t.Errorf("rewriting the rewritten init: %v (same: %v)", err, bytes.Equal(again, out))
				}
			})
		}
	}
}

func TestRewriteInitRefuses(t *testing.T) {
	inits := hubInits(t)
	h264 := inits["h264"]
	ok := initEdit{timescale: 90000, mediaTime: 1 << 40, duration: 90000}
	twoTracks := func() []byte {
		var buf seekablebuffer.Buffer
		init := fmp4.Init{Tracks: []*fmp4.InitTrack{
			{ID: 1, TimeScale: 90000, Codec: &codecs.H264{SPS: testH264SPS, PPS: []byte{0x08}}},
			{ID: 2, TimeScale: 90000, Codec: &codecs.MJPEG{Width: 640, Height: 480}},
		}}
		if err := init.Marshal(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	audio := func() []byte {
		var buf seekablebuffer.Buffer
		init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 48000, Codec: &codecs.Opus{ChannelCount: 2}}}}
		if err := init.Marshal(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	withBox := func(b []byte, box string) []byte { // an extra top-level box after the moov
		return append(append([]byte(nil), b...), 0, 0, 0, 8, box[0], box[1], box[2], box[3])
	}
	truncated := h264[:len(h264)-7]
	grown := append([]byte(nil), h264...)
	binary.BigEndian.PutUint32(grown[binary.BigEndian.Uint32(h264):], uint32(len(h264))) // the moov's size past the end
	tests := []struct {
		name string
		init []byte
		e    initEdit
	}{
		{"empty", nil, ok},
		{"not an init section", bytes.Repeat([]byte{0xab}, 100), ok},
		{"truncated", truncated, ok},
		{"a box size past the end", grown, ok},
		{"an mdat after the moov", withBox(h264, "mdat"), ok},
		{"two tracks", twoTracks(), ok},
		{"an audio track", audio(), ok},
		{"another timescale than the index's", h264, initEdit{timescale: 1000, mediaTime: 1, duration: 1000}},
		{"no duration", h264, initEdit{timescale: 90000, mediaTime: 1}},
		{"a media time past int64", h264, initEdit{timescale: 90000, mediaTime: math.MaxInt64 + 1, duration: 1}},
		{"too large", append(bytes.Repeat([]byte{0}, maxInitBytes), h264...), ok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := append([]byte(nil), tt.init...)
			out, err := rewriteInit(tt.init, tt.e)
			if !errors.Is(err, errInitEdit) || out != nil {
				t.Errorf("rewriteInit = %d bytes, %v; want errInitEdit", len(out), err)
			}
			if !bytes.Equal(before, tt.init) {
				t.Errorf("the input was changed")
			}
		})
	}
}

// FuzzRewriteInit: any bytes, any edit: no panic; what is accepted is an
// init section of one track that says the edit it was asked for.
func FuzzRewriteInit(f *testing.F) {
	for _, init := range hubInits(f) {
		f.Add(init, uint64(1)<<40, uint64(90000))
	}
	f.Add([]byte("\x00\x00\x00\x08ftyp"), uint64(0), uint64(1))
	f.Fuzz(func(t *testing.T, init []byte, mediaTime, duration uint64) {
		e := initEdit{timescale: 90000, mediaTime: mediaTime, duration: duration}
		out, err := rewriteInit(init, e)
		if err != nil {
			if !errors.Is(err, errInitEdit) {
				t.Fatalf("error %v is not errInitEdit", err)
			}
			return
		}
		var in fmp4.Init
		if err := in.Unmarshal(bytes.NewReader(out)); err != nil || len(in.Tracks) != 1 {
			t.Fatalf("accepted, and the result does not parse as one track: %v", err)
		}
		_, boxes := parseBoxes(t, out)
		elst, ok := boxes["elst"].(*amp4.Elst)
		if !ok || len(elst.Entries) != 1 || elst.GetMediaTime(0) != int64(mediaTime) {
			t.Fatalf("accepted, and the edit list is %+v, want media time %d", boxes["elst"], mediaTime)
		}
		if d, ok := boxes["mdhd"].(*amp4.Mdhd); !ok || d.GetDuration() != duration {
			t.Fatalf("accepted, and mdhd is %+v, want duration %d", boxes["mdhd"], duration)
		}
	})
}
