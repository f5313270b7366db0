package clips

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amp4 "github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/zipnvr/zipnvr/pkg/fragindex"
	"github.com/zipnvr/zipnvr/relay/internal/media"
	"github.com/zipnvr/zipnvr/relay/internal/store"
	"github.com/zipnvr/zipnvr/testbed"
)

func moofOf(frag []byte) []byte { return frag[:binary.BigEndian.Uint32(frag)] }

// trunV0 returns frag with its trun switched to version 0 (valid without
// negative composition offsets; not what mediacommon writes).
func trunV0(t testing.TB, frag []byte) []byte {
	t.Helper()
	out := bytes.Clone(frag)
	i := bytes.Index(moofOf(out), []byte("trun"))
	if i < 0 {
		t.Fatal("no trun")
	}
	out[i+4] = 0
	return out
}

func TestParseFragTable(t *testing.T) {
	const base = 1_800_000_000 * 90000
	for _, tt := range []struct {
		name    string
		frag    []byte
		n       int
		bframes bool
	}{
		{"hubd's layout", fragment(t, base, 25, false), 25, false},
		{"with pts offsets", fragment(t, base, 25, true), 25, true},
		{"one sample", fragment(t, base, 1, false), 1, false},
		{"trun version 0", trunV0(t, fragment(t, base, 25, true)), 25, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			moof := moofOf(tt.frag)
			ft, err := parseFragTable(moof, int64(len(tt.frag)))
			if err != nil {
				t.Fatal(err)
			}
			if ft.baseTime != base || ft.dataOff != int64(len(moof))+8 || len(ft.samples) != tt.n {
				t.Fatalf("base %d, data at %d, %d samples; want %d, %d, %d", ft.baseTime, ft.dataOff, len(ft.samples), uint64(base), len(moof)+8, tt.n)
			}
			off := ft.dataOff
			for i, s := range ft.samples {
				cto := int32(0)
				if tt.bframes {
					cto = int32(frameTicks * (i % 3))
				}
				if s.dur != frameTicks || s.size != uint32(100+7*i) || s.sync != (i == 0) || s.cto != cto {
					t.Errorf("sample %d: %+v", i, s)
				}
				if p := tt.frag[off : off+int64(s.size)]; !bytes.Equal(p, bytes.Repeat([]byte{byte(i + 1)}, int(s.size))) {
					t.Errorf("sample %d: its bytes are not where the table says", i)
				}
				off += int64(s.size)
			}
		})
	}
}

func TestParseFragTableRefuses(t *testing.T) {
	frag := fragment(t, 1000, 25, false)
	moof := moofOf(frag)
	set := func(b []byte, at int, v ...byte) []byte {
		out := bytes.Clone(b)
		copy(out[at:], v)
		return out
	}
	trun := bytes.Index(moof, []byte("trun"))
	tfhd := bytes.Index(moof, []byte("tfhd"))
	two := append(bytes.Clone(moof), moof[8:]...)
	binary.BigEndian.PutUint32(two, uint32(len(two)))
	for _, tt := range []struct {
		name    string
		moof    []byte
		fragLen int64
	}{
		{"empty", nil, 100},
		{"not a moof", set(moof, 4, 'm', 'o', 'o', 'v'), int64(len(frag))},
		{"truncated", moof[:len(moof)-10], int64(len(frag))},
		{"size past the bytes", set(moof, 0, 0, 0, 0xff, 0xff), int64(len(frag))},
		{"samples past the fragment", moof, int64(len(frag)) - 1},
		{"two tracks", two, int64(len(frag))},
		{"no samples", set(moof, trun+8, 0, 0, 0, 0), int64(len(frag))},
		{"too many samples", set(moof, trun+8, 0, 0x10, 0, 0), int64(len(frag))},
		{"explicit base data offset", set(moof, tfhd+7, moof[tfhd+7]|1), int64(len(frag))},
		{"data offset into the moof", set(moof, trun+12, 0, 0, 0, 8), int64(len(frag))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseFragTable(tt.moof, tt.fragLen); !errors.Is(err, errFragTable) {
				t.Errorf("err %v, want errFragTable", err)
			}
		})
	}
}

func FuzzParseFragTable(f *testing.F) {
	for _, frag := range [][]byte{fragment(f, 1000, 25, false), fragment(f, 1<<40, 3, true), trunV0(f, fragment(f, 5, 2, true))} {
		f.Add(moofOf(frag), int64(len(frag)))
	}
	f.Fuzz(func(t *testing.T, moof []byte, fragLen int64) {
		ft, err := parseFragTable(moof, fragLen)
		if err != nil {
			if !errors.Is(err, errFragTable) {
				t.Fatalf("error %v is not errFragTable", err)
			}
			return
		}
		data := ft.dataOff
		for _, s := range ft.samples {
			if s.dur == 0 || s.size == 0 {
				t.Fatalf("accepted an empty sample %+v", s)
			}
			data += int64(s.size)
		}
		if len(ft.samples) == 0 || ft.dataOff < int64(len(moof))+8 || data > fragLen {
			t.Fatalf("accepted %d samples with data at %d..%d in a fragment of %d", len(ft.samples), ft.dataOff, data, fragLen)
		}
	})
}

// TestProgressiveFile writes a clip of two recordings with a 2 s hole
// between them and an end in the middle of the last fragment, as relay
// composes it ([head][the recordings' fragments]), and reads it back: the
// sample tables start at 0, the sample before the hole lasts over it, the
// samples from the end on are left out, every sample's bytes are where
// the tables say, the durations say the whole, and ffprobe agrees.
func TestProgressiveFile(t *testing.T) {
	const sec = 90000
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	base := uint64(t0.Unix()) * sec
	init := hubInit(t, &codecs.H264{SPS: testH264SPS, PPS: []byte{0x08}}, sec)
	type rec struct {
		start time.Time
		frags [][]byte
	}
	recs := []rec{
		{t0, [][]byte{fragment(t, base, 25, true), fragment(t, base+sec, 25, true), fragment(t, base+2*sec, 25, true)}},
		{t0.Add(5 * time.Second), [][]byte{fragment(t, base+5*sec, 25, true), fragment(t, base+6*sec, 25, true)}},
	}
	end := t0.Add(6*time.Second + 500*time.Millisecond) // 13 samples of the last fragment decode before it
	var (
		frags []planFrag
		tabs  []fragTable
		body  = bytes.Clone(init) // the file after the head, as the plan lays it out
	)
	for i, r := range recs {
		ix := fragindex.Index{Timescale: sec, InitSize: int64(len(init))}
		off := int64(len(init))
		for j := range r.frags {
			ix.Fragments = append(ix.Fragments, fragindex.Fragment{Offset: off, Time: base + uint64(i*5+j)*sec, Sync: true})
			off += int64(len(r.frags[j]))
		}
		s := source{rec: store.Recording{ID: r.start.String(), Key: r.start.String(), Start: r.start}, ix: ix}
		for j, fr := range r.frags {
			frags = append(frags, planFrag{src: s, offset: ix.Fragments[j].Offset, length: int64(len(fr)), pos: int64(len(body))})
			ft, err := parseFragTable(moofOf(fr), int64(len(fr)))
			if err != nil {
				t.Fatal(err)
			}
			tabs = append(tabs, ft)
			body = append(body, fr...)
		}
	}
	st, err := buildTables(frags, tabs, t0, end, sec)
	if err != nil {
		t.Fatal(err)
	}
	const samples = 75 + 25 + 13
	if len(st.durs) != samples || st.total != 6*sec+13*frameTicks {
		t.Fatalf("%d samples lasting %d ticks, want %d lasting 6.52 s", len(st.durs), st.total, samples)
	}
	ti, err := readTrackInit(init, sec)
	if err != nil {
		t.Fatal(err)
	}
	head0, err := writeHead(ti, st, 0, int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	shift := int64(len(head0)) // the body starts with the init section, as the plan's
	head, err := writeHead(ti, st, shift, int64(len(body)))
	if err != nil || len(head) != len(head0) {
		t.Fatalf("head of %d bytes, then %d: %v", len(head0), len(head), err)
	}
	file := append(head, body...)
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}

	// Read the tables back and find every sample's bytes.
	boxes, err := amp4.ExtractBoxesWithPayload(bytes.NewReader(file), nil, []amp4.BoxPath{
		{amp4.BoxTypeMoov(), amp4.BoxTypeMvhd()},
		{amp4.BoxTypeMoov(), amp4.BoxTypeMvex()},
		{amp4.BoxTypeMoov(), amp4.BoxTypeTrak(), amp4.BoxTypeMdia(), amp4.BoxTypeMinf(), amp4.BoxTypeStbl(), amp4.BoxTypeAny()},
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		stts *amp4.Stts
		stsz *amp4.Stsz
		stsc *amp4.Stsc
		co64 *amp4.Co64
		stss *amp4.Stss
		ctts *amp4.Ctts
	)
	for _, b := range boxes {
		switch v := b.Payload.(type) {
		case *amp4.Mvhd:
			if v.GetDuration() != st.total || v.Timescale != sec {
				t.Errorf("mvhd: %d/%d", v.GetDuration(), v.Timescale)
			}
		case *amp4.Mvex:
			t.Error("the moov has an mvex: a fragmented file")
		case *amp4.Stts:
			stts = v
		case *amp4.Stsz:
			stsz = v
		case *amp4.Stsc:
			stsc = v
		case *amp4.Co64:
			co64 = v
		case *amp4.Stss:
			stss = v
		case *amp4.Ctts:
			ctts = v
		}
	}
	if stts == nil || stsz == nil || stsc == nil || co64 == nil || stss == nil || ctts == nil {
		t.Fatalf("missing sample tables: stts %v stsz %v stsc %v co64 %v stss %v ctts %v", stts != nil, stsz != nil, stsc != nil, co64 != nil, stss != nil, ctts != nil)
	}
	var durs []uint32
	for _, e := range stts.Entries {
		for range e.SampleCount {
			durs = append(durs, e.SampleDelta)
		}
	}
	if len(durs) != samples || durs[74] != frameTicks+2*sec || durs[0] != frameTicks {
		t.Errorf("stts: %d samples, the last before the hole lasts %d, want %d and %d", len(durs), durs[74], samples, frameTicks+2*sec)
	}
	if want := []uint32{1, 26, 51, 76, 101}; len(stss.SampleNumber) != len(want) || !bytes.Equal(u32s(stss.SampleNumber), u32s(want)) {
		t.Errorf("stss %v, want %v", stss.SampleNumber, want)
	}
	if stsz.SampleCount != samples || co64.EntryCount != 5 {
		t.Fatalf("stsz of %d samples, %d chunks", stsz.SampleCount, co64.EntryCount)
	}
	k := 0
	for c, off := range co64.ChunkOffset {
		n := uint32(0)
		for _, e := range stsc.Entries {
			if e.FirstChunk <= uint32(c+1) {
				n = e.SamplesPerChunk
			}
		}
		for i := range n {
			size := stsz.EntrySize[k]
			if size != 100+7*i || !bytes.Equal(file[off:off+uint64(size)], bytes.Repeat([]byte{byte(i + 1)}, int(size))) {
				t.Fatalf("sample %d (chunk %d, %d): not at %d+%d", k, c, i, off, size)
			}
			off += uint64(size)
			k++
		}
	}
	if k != samples {
		t.Errorf("chunks hold %d samples, want %d", k, samples)
	}

	// ffprobe: starts at 0, lasts 6.52 s, 113 packets.
	testbed.RequireTools(t, "ffprobe")
	start, dur := testbed.FormatTiming(t, path)
	if start != 0 || dur < 6.519 || dur > 6.521 {
		t.Errorf("ffprobe: start %.3f, duration %.3f; want 0 and 6.52", start, dur)
	}
	m := testbed.ReadMP4Timing(t, path)
	if m.Fragmented || len(m.Edits) != 1 || m.Edits[0].MediaTime != 0 || m.Edits[0].SegmentDuration != st.total {
		t.Errorf("timing %+v", m)
	}
}

func u32s(v []uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// rangeObjects serves GetRange from memory (the rest of media.Composer is
// not used by the moof reads).
type rangeObjects struct {
	media.Composer
	objs map[string][]byte
}

func (o rangeObjects) GetRange(_ context.Context, key string, off, n int64) ([]byte, error) {
	b := o.objs[key]
	if off < 0 || off > int64(len(b)) {
		return nil, fmt.Errorf("range %d of %d bytes", off, len(b))
	}
	return b[off:min(off+n, int64(len(b)))], nil
}

// TestMoofTablesRead: the moofs of a recording whose fragments differ in
// size (the guess from the previous moof too small, then too large) are
// read with one or two ranged GETs each, give the tables of the moofs, and
// a second read comes from the cache.
func TestMoofTablesRead(t *testing.T) {
	rec := []byte("init")
	var frags []planFrag
	var want []fragTable
	s := source{rec: store.Recording{ID: "r", Key: "r"}}
	for i, n := range []int{25, 10, 30, 25, 1} {
		fr := fragment(t, uint64(i)*90000, n, i%2 == 0)
		frags = append(frags, planFrag{src: s, offset: int64(len(rec)), length: int64(len(fr)), pos: int64(len(rec))})
		ft, err := parseFragTable(moofOf(fr), int64(len(fr)))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ft)
		rec = append(rec, fr...)
	}
	pr := newProber(rangeObjects{objs: map[string][]byte{"r": rec}})
	m := &moofTables{pr: pr}
	got, err := m.read(context.Background(), frags)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tables differ from the moofs'")
	}
	if n := pr.requests.Load(); n < int64(len(frags)) || n > 2*int64(len(frags)) {
		t.Errorf("%d ranged GETs for %d moofs", n, len(frags))
	}
	before := pr.requests.Load()
	if again, err := m.read(context.Background(), frags); err != nil || fmt.Sprint(again) != fmt.Sprint(want) || pr.requests.Load() != before {
		t.Errorf("second read: %v, %d more GETs", err, pr.requests.Load()-before)
	}
	// A recording shorter than its index says is errNotJoinable (the
	// build falls back), not a crash.
	short := newProber(rangeObjects{objs: map[string][]byte{"r": rec[:len(rec)-100]}})
	if _, err := (&moofTables{pr: short}).read(context.Background(), frags); !errors.Is(err, errNotJoinable) {
		t.Errorf("short recording: %v, want errNotJoinable", err)
	}
}

// BenchmarkWriteHead: the moov of a 2 h clip of 25 fps (180,000 samples
// in 7,200 fragments), as relay writes it with go-mp4.
func BenchmarkWriteHead(b *testing.B) {
	init := hubInit(b, &codecs.H264{SPS: testH264SPS, PPS: []byte{0x08}}, 90000)
	ti, err := readTrackInit(init, 90000)
	if err != nil {
		b.Fatal(err)
	}
	var st sampleTables
	for i := range 180000 {
		st.durs = append(st.durs, frameTicks)
		st.sizes = append(st.sizes, uint32(5000+i%700))
		st.ctos = append(st.ctos, 0)
		if i%50 == 0 {
			st.sync = append(st.sync, uint32(i+1))
		}
		if i%25 == 0 {
			st.chunkOff = append(st.chunkOff, int64(i)*10000)
			st.chunkLen = append(st.chunkLen, 25)
		}
	}
	st.total = 180000 * frameTicks
	b.ResetTimer()
	for range b.N {
		h, err := writeHead(ti, st, 1000, 1<<31)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(h)), "head_B")
	}
}

// TestProgressiveCodecs: the moov of each codec hubd records (the sample
// description copied from its init section) is one ffprobe reads as that
// codec, at 0, for the tables' duration; MJPEG, all keyframes, has no stss.
func TestProgressiveCodecs(t *testing.T) {
	testbed.RequireTools(t, "ffprobe")
	for name, init := range hubInits(t) {
		t.Run(name, func(t *testing.T) {
			fr := fragment(t, 1_000_000, 25, false)
			if name == "mjpeg" {
				fr = allSync(t, fr)
			}
			ft, err := parseFragTable(moofOf(fr), int64(len(fr)))
			if err != nil {
				t.Fatal(err)
			}
			s := source{rec: store.Recording{ID: "r", Key: "r"}, ix: fragindex.Index{Timescale: frameTicks * 25}}
			frags := []planFrag{{src: s, offset: 0, length: int64(len(fr)), pos: 0}}
			st, err := buildTables(frags, []fragTable{ft}, time.Time{}, time.Time{}.Add(time.Hour), frameTicks*25)
			if err != nil {
				t.Fatal(err)
			}
			ti, err := readTrackInit(init, frameTicks*25)
			if err != nil {
				t.Fatal(err)
			}
			h0, err := writeHead(ti, st, 0, int64(len(fr)))
			if err != nil {
				t.Fatal(err)
			}
			h, err := writeHead(ti, st, int64(len(h0)), int64(len(fr)))
			if err != nil {
				t.Fatal(err)
			}
			file := append(h, fr...)
			if got := bytes.Contains(file[:len(h)], []byte("stss")); got == (name == "mjpeg") {
				t.Errorf("stss written: %v", got)
			}
			path := filepath.Join(t.TempDir(), "clip.mp4")
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}
			start, dur := testbed.FormatTiming(t, path)
			if start != 0 || dur < 0.999 || dur > 1.001 {
				t.Errorf("ffprobe: start %.3f, duration %.3f; want 0 and 1", start, dur)
			}
			out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,nb_frames", "-of", "csv=p=0", path).Output()
			want := map[string]string{"h264": "h264,25", "h265": "hevc,25", "mjpeg": "mjpeg,25"}[name]
			if err != nil || strings.TrimSpace(string(out)) != want {
				t.Errorf("ffprobe: %q %v, want %q", out, err, want)
			}
		})
	}
}

// allSync marks every sample of frag a sync sample (as MJPEG's are).
func allSync(t testing.TB, frag []byte) []byte {
	t.Helper()
	ft, err := parseFragTable(moofOf(frag), int64(len(frag)))
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(frag)
	trun := bytes.Index(moofOf(out), []byte("trun"))
	flags := binary.BigEndian.Uint32(out[trun+4:]) & 0xffffff
	p := trun + 12 // after the type, version and flags, and sample count
	if flags&0x1 != 0 {
		p += 4
	}
	if flags&0x4 != 0 {
		p += 4
	}
	entry := 0
	for _, b := range []uint32{0x100, 0x200, 0x400, 0x800} {
		if flags&b != 0 {
			entry += 4
		}
	}
	if flags&0x400 == 0 {
		t.Fatalf("trun without sample flags")
	}
	at := 0
	for _, b := range []uint32{0x100, 0x200} {
		if flags&b != 0 {
			at += 4
		}
	}
	for i := range ft.samples {
		binary.BigEndian.PutUint32(out[p+i*entry+at:], 0x02000000)
	}
	return out
}
