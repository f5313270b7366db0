package clips

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

const frameTicks = 3600 // 25 fps at 90 kHz

// fragment writes a fragment as hubd's segmenter does (mediacommon's
// Part.Marshal): n samples of frameTicks, a keyframe first, sample i of
// 100+7*i bytes of payload that tell which sample they are, decoding from
// base; pts offsets when bframes.
func fragment(t testing.TB, base uint64, n int, bframes bool) []byte {
	t.Helper()
	tr := &fmp4.PartTrack{ID: 1, BaseTime: base}
	for i := range n {
		s := &fmp4.Sample{Duration: frameTicks, IsNonSyncSample: i > 0, Payload: bytes.Repeat([]byte{byte(i + 1)}, 100+7*i)}
		if bframes {
			s.PTSOffset = int32(frameTicks * (i % 3))
		}
		tr.Samples = append(tr.Samples, s)
	}
	var buf seekablebuffer.Buffer
	if err := (&fmp4.Part{SequenceNumber: 7, Tracks: []*fmp4.PartTrack{tr}}).Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// head is a fragment's moof and mdat header: what relay reads of it.
func head(frag []byte) []byte {
	m := binary.BigEndian.Uint32(frag)
	return frag[:m+8]
}

func parseFragment(t testing.TB, b []byte) *fmp4.PartTrack {
	t.Helper()
	var ps fmp4.Parts
	if err := ps.Unmarshal(b); err != nil {
		t.Fatalf("the cut fragment does not parse: %v", err)
	}
	if len(ps) != 1 || len(ps[0].Tracks) != 1 {
		t.Fatalf("the cut fragment has %d parts", len(ps))
	}
	return ps[0].Tracks[0]
}

func TestCutFragment(t *testing.T) {
	const base = 1_000_000
	tests := []struct {
		name    string
		n       int
		bframes bool
		before  uint64
		kept    int
	}{
		{"in the middle", 25, false, base + 10*frameTicks + 1, 11},
		{"a sample at before is left out", 25, false, base + 10*frameTicks, 10},
		{"at the first sample", 25, false, base + 1, 1},
		{"at the last sample", 25, false, base + 24*frameTicks + 1, 25},
		{"before the last sample", 25, false, base + 24*frameTicks, 24},
		{"past the fragment", 25, false, base + 100*frameTicks, 25},
		{"one sample", 1, false, base + 1, 1},
		{"with pts offsets", 25, true, base + 12*frameTicks + 5, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frag := fragment(t, base, tt.n, tt.bframes)
			h := head(frag)
			fc, err := cutFragment(h, tt.before)
			if err != nil {
				t.Fatal(err)
			}
			if fc.kept != tt.kept || fc.samples != tt.n {
				t.Fatalf("kept %d of %d samples, want %d of %d", fc.kept, fc.samples, tt.kept, tt.n)
			}
			if fc.moofSize+fc.mdatSize != int64(len(frag)) {
				t.Errorf("moof %d + mdat %d, the fragment has %d bytes", fc.moofSize, fc.mdatSize, len(frag))
			}
			if want := uint64(base + tt.kept*frameTicks); fc.end != want {
				t.Errorf("end %d, want %d", fc.end, want)
			}
			// The cut fragment: its head, then the kept prefix of the payload.
			cut := append(append([]byte(nil), fc.head...), frag[fc.moofSize+8:fc.moofSize+8+fc.dataLen]...)
			if tt.kept == tt.n && !bytes.Equal(cut, frag) {
				t.Fatal("nothing to cut, but the fragment changed")
			}
			orig, got := parseFragment(t, frag), parseFragment(t, cut)
			if got.BaseTime != base || got.ID != 1 || len(got.Samples) != tt.kept {
				t.Fatalf("cut fragment: track %d at %d with %d samples", got.ID, got.BaseTime, len(got.Samples))
			}
			for i, s := range got.Samples {
				o := orig.Samples[i]
				if s.Duration != o.Duration || s.PTSOffset != o.PTSOffset || s.IsNonSyncSample != o.IsNonSyncSample || !bytes.Equal(s.Payload, o.Payload) {
					t.Errorf("sample %d: %+v, want %+v", i, s, o)
				}
			}
		})
	}
}

func TestCutFragmentRefuses(t *testing.T) {
	const base = 1_000_000
	frag := fragment(t, base, 25, false)
	h := head(frag)
	m := int(binary.BigEndian.Uint32(h))
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), h...)) }
	// Two tracks: mediacommon writes them, but a clip's segments have one.
	var two seekablebuffer.Buffer
	s := func() []*fmp4.Sample { return []*fmp4.Sample{{Duration: frameTicks, Payload: []byte{1, 2, 3}}} }
	if err := (&fmp4.Part{Tracks: []*fmp4.PartTrack{{ID: 1, Samples: s()}, {ID: 2, Samples: s()}}}).Marshal(&two); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		head   []byte
		before uint64
	}{
		{"empty", nil, base + 1},
		{"not a moof", edit(func(b []byte) []byte { copy(b[4:], "moov"); return b }), base + frameTicks},
		{"moof only", h[:m], base + frameTicks},
		{"truncated moof", h[:m/2], base + frameTicks},
		{"moof size past the data", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b, uint32(m+100)); return b }), base + frameTicks},
		{"tiny moof size", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b, 8); return b }), base + frameTicks},
		{"no mdat after it", edit(func(b []byte) []byte { copy(b[m+4:], "free"); return b }), base + frameTicks},
		{"64-bit mdat", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[m:], 1); return b }), base + frameTicks},
		{"mdat to the end of file", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[m:], 0); return b }), base + frameTicks},
		{"mdat larger than the samples", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[m:], uint32(len(frag)-m+10)); return b }), base + frameTicks},
		{"mdat smaller than the samples", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[m:], uint32(len(frag)-m-10)); return b }), base + frameTicks},
		{"data not right after the mdat header", edit(func(b []byte) []byte {
			// trun's data_offset: the last field of the trun header, before
			// 25 entries of 12 bytes (duration, size, flags).
			at := m - 25*12 - 4
			binary.BigEndian.PutUint32(b[at:], binary.BigEndian.Uint32(b[at:])+4)
			return b
		}), base + frameTicks},
		{"first sample not before the cut", h, base},
		{"two tracks", head(two.Bytes()), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc, err := cutFragment(tt.head, tt.before)
			if !errors.Is(err, errCutHead) {
				t.Fatalf("cut %+v, err %v: want a refusal (errCutHead)", fc, err)
			}
			t.Log(err)
		})
	}
}

// FuzzCutFragment: a moof comes from a hub. Whatever it holds, the cut
// never panics, and what it accepts is a valid fragment of the samples it
// says it kept.
func FuzzCutFragment(f *testing.F) {
	for _, n := range []int{1, 2, 25} {
		f.Add(head(fragment(f, 90000, n, false)), uint64(90000+frameTicks+1))
		f.Add(head(fragment(f, 90000, n, true)), uint64(90000+2*frameTicks))
	}
	f.Add([]byte("\x00\x00\x00\x10moof\x00\x00\x00\x08mdat\x00\x00\x00\x09mdat"), uint64(1))
	f.Fuzz(func(t *testing.T, h []byte, before uint64) {
		fc, err := cutFragmentMax(h, before, 1<<20)
		if err != nil {
			if !errors.Is(err, errCutHead) {
				t.Fatalf("error %v is not a refusal", err)
			}
			return
		}
		if fc.kept < 1 || fc.kept > fc.samples || fc.dataLen < 1 || fc.dataLen > fc.mdatSize-8 || fc.moofSize+8 != int64(len(h)) {
			t.Fatalf("cut %d of %d samples, %d of %d payload bytes, moof %d of a %d-byte head", fc.kept, fc.samples, fc.dataLen, fc.mdatSize-8, fc.moofSize, len(h))
		}
		cut := append(append([]byte(nil), fc.head...), make([]byte, fc.dataLen)...)
		tr := parseFragment(t, cut)
		if len(tr.Samples) != fc.kept {
			t.Fatalf("the cut holds %d samples, want %d", len(tr.Samples), fc.kept)
		}
		end := tr.BaseTime
		for i, s := range tr.Samples {
			if end >= before {
				t.Fatalf("sample %d decodes at %d, not before %d", i, end, before)
			}
			end += uint64(s.Duration)
		}
		if end != fc.end {
			t.Fatalf("the cut ends at %d, says %d", end, fc.end)
		}
	})
}
