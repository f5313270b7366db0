package clips

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/fragindex"
	"github.com/zipnvr/zipnvr/relay/internal/media"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestFindHoles(t *testing.T) {
	rec := func(a, b int) store.Recording {
		return store.Recording{Start: t0.Add(time.Duration(a) * time.Second), End: t0.Add(time.Duration(b) * time.Second)}
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name     string
		from, to int
		recs     []store.Recording
		want     []span
	}{
		{"covered", 2, 8, []store.Recording{rec(0, 4), rec(4, 10)}, nil},
		{"nothing", 2, 8, nil, []span{{at(2), at(8)}}},
		{"middle", 0, 12, []store.Recording{rec(0, 4), rec(6, 12)}, []span{{at(4), at(6)}}},
		{"both ends", 0, 12, []store.Recording{rec(2, 10)}, []span{{at(0), at(2)}, {at(10), at(12)}}},
		{"overlapping recordings", 0, 10, []store.Recording{rec(0, 6), rec(5, 10)}, nil},
		{"recording inside another", 0, 10, []store.Recording{rec(0, 8), rec(2, 4), rec(8, 10)}, nil},
		{"outside the range", 4, 6, []store.Recording{rec(0, 2), rec(8, 10)}, []span{{at(4), at(6)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := findHoles(at(tt.from), at(tt.to), tt.recs, holeTolerance)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("holes = %v, want %v", got, tt.want)
			}
		})
	}
	// Recordings that touch within the tolerance leave no hole.
	touching := []store.Recording{{Start: t0, End: t0.Add(4*time.Second - 100*time.Millisecond)}, {Start: t0.Add(4 * time.Second), End: t0.Add(8 * time.Second)}}
	if h := findHoles(t0, t0.Add(8*time.Second), touching, holeTolerance); len(h) != 0 {
		t.Errorf("100 ms between recordings is a hole: %v", h)
	}
}

// objects is an in-memory object store executing compositions, to check
// what planChain plans.
type objects map[string][]byte

func (o objects) compose(t *testing.T, dst string, parts []media.Part, minPart int64) {
	t.Helper()
	var b []byte
	for i, p := range parts {
		if i < len(parts)-1 && p.Length < minPart {
			t.Fatalf("%s: part %d of %d bytes before the last (minimum %d)", dst, i, p.Length, minPart)
		}
		src, ok := o[p.Key]
		if !ok || p.Offset < 0 || p.Offset+p.Length > int64(len(src)) || p.Length < 1 {
			t.Fatalf("%s: part %d: range %d+%d of %q (%d bytes)", dst, i, p.Offset, p.Length, p.Key, len(src))
		}
		b = append(b, src[p.Offset:p.Offset+p.Length]...)
	}
	o[dst] = b
}

// TestPlanChain: whatever the piece sizes, the chain yields exactly the
// concatenation of the pieces, and no composition has a small part before
// its last.
func TestPlanChain(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		minPart := int64(1 + rng.IntN(64))
		if round%10 == 0 {
			minPart = 1
		}
		o := objects{"seed": bytes.Repeat([]byte{0}, int(max(minPart, 1)))}
		var pieces []media.Part
		var want []byte
		for i := range 1 + rng.IntN(20) {
			key := fmt.Sprintf("rec%d", i)
			size := 1 + rng.IntN(int(minPart)*3)
			data := make([]byte, size)
			for j := range data {
				data[j] = byte(rng.IntN(256))
			}
			o[key] = data
			off := rng.IntN(size)
			n := 1 + rng.IntN(size-off)
			pieces = append(pieces, media.Part{Key: key, Offset: int64(off), Length: int64(n)})
			want = append(want, data[off:off+n]...)
		}
		steps, final := planChain(pieces, minPart, "seed", func(i int) string { return fmt.Sprintf("scratch%d", i) })
		for _, s := range steps {
			o.compose(t, s.dst, s.parts, minPart)
		}
		o.compose(t, "clip", final, minPart)
		if !bytes.Equal(o["clip"], want) {
			t.Fatalf("round %d (min part %d, %d pieces): the clip differs from its pieces", round, minPart, len(pieces))
		}
		if minPart == 1 && len(steps) != 0 {
			t.Fatalf("round %d: scratch compositions without a minimum part size", round)
		}
	}
}

// index makes a fragment index: n fragments of one second, a keyframe
// every gop of them, starting at timeline t.
func index(t uint64, n, gop int, hash byte) fragindex.Index {
	ix := fragindex.Index{Timescale: 90000, InitSize: 100, InitHash: [8]byte{hash}}
	off := int64(100)
	for i := range n {
		ix.Fragments = append(ix.Fragments, fragindex.Fragment{Offset: off, Time: t + uint64(i)*90000, Sync: i%gop == 0})
		off += 1000
	}
	ix.DataEnd, ix.EndTime = off, t+uint64(n)*90000
	return ix
}

func src(key string, start time.Time, ix fragindex.Index) source {
	n := len(ix.Fragments)
	return source{rec: store.Recording{ID: key, Key: key, Start: start, End: start.Add(time.Duration(n) * time.Second)}, ix: ix}
}

func TestMakePlan(t *testing.T) {
	base := uint64(t0.Unix()) * 90000
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	a := src("a", t0, index(base, 10, 2, 1))                     // [0, 10), keyframes every 2 s
	b := src("b", sec(10), index(base+10*90000, 10, 2, 1))       // [10, 20), continuous
	gap := src("c", sec(25), index(base+25*90000, 10, 2, 1))     // [25, 35): a 5 s gap before
	other := src("d", sec(20), index(base+20*90000, 10, 2, 2))   // [20, 30): another init
	overlap := src("e", sec(19), index(base+19*90000, 10, 2, 1)) // [19, 29): 1 s back
	tests := []struct {
		name       string
		start, end float64
		srcs       []source
		pieces     string
		mediaStart time.Time
		mediaEnd   time.Time
		gaps       []string
		disc       int // HLS segments after a discontinuity
	}{
		{"trim inside one", 3.5, 6.5, []source{a}, "a@0+100 a@2100+5000", sec(2), sec(7), nil, 0},
		{"start on a keyframe", 4, 6, []source{a}, "a@0+100 a@4100+2000", sec(4), sec(6), nil, 0},
		{"across two", 5, 13.2, []source{a, b}, "a@0+100 a@4100+6000 b@100+4000", sec(4), sec(14), nil, 0},
		{"before the first recording", -5, 3, []source{a}, "a@0+100 a@100+3000", sec(0), sec(3), nil, 0},
		{"with a gap", 8, 28, []source{a, b, gap}, "a@0+100 a@8100+2000 b@100+10000 c@100+3000", sec(8), sec(28), nil, 1},
		{"parameters change", 15, 25, []source{b, other}, "b@0+100 b@4100+6000", sec(14), sec(20), []string{reasonParams}, 0},
		{"overlap skips to a keyframe past it", 15, 25, []source{b, overlap}, "b@0+100 b@4100+6000 e@2100+4000", sec(14), sec(25), nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := makePlan(sec(tt.start), sec(tt.end), tt.srcs, 4*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var ps []string
			var size int64
			for _, pc := range p.pieces {
				ps = append(ps, fmt.Sprintf("%s@%d+%d", pc.Key, pc.Offset, pc.Length))
				size += pc.Length
			}
			if got := strings.Join(ps, " "); got != tt.pieces {
				t.Errorf("pieces %s, want %s", got, tt.pieces)
			}
			if !p.mediaStart.Equal(tt.mediaStart) || !p.mediaEnd.Equal(tt.mediaEnd) {
				t.Errorf("media %v-%v, want %v-%v", p.mediaStart, p.mediaEnd, tt.mediaStart, tt.mediaEnd)
			}
			var gaps []string
			for _, g := range p.gaps {
				gaps = append(gaps, g.Reason)
			}
			if fmt.Sprint(gaps) != fmt.Sprint(tt.gaps) {
				t.Errorf("gaps %v, want %v", gaps, tt.gaps)
			}
			// The HLS segments tile the file after the init section, each
			// starting at a keyframe fragment.
			if size != p.size || p.layout.InitSize != 100 {
				t.Errorf("size %d, plan says %d; init %d", size, p.size, p.layout.InitSize)
			}
			next, disc := int64(100), 0
			var ticks uint64
			for _, s := range p.layout.Segments {
				if s.Offset != next {
					t.Errorf("HLS segment at %d, want %d", s.Offset, next)
				}
				next += s.Length
				ticks += s.Ticks
				if s.Disc {
					disc++
				}
			}
			if next != p.size || disc != tt.disc {
				t.Errorf("HLS segments end at %d (file %d), %d discontinuities (want %d)", next, p.size, disc, tt.disc)
			}
			if want := p.mediaEnd.Sub(p.mediaStart); tt.disc == 0 && time.Duration(ticks)*time.Second/90000 != want {
				t.Errorf("HLS duration %v, media %v", time.Duration(ticks)*time.Second/90000, want)
			}
		})
	}
	if _, err := makePlan(sec(40), sec(50), []source{a, b}, 4*time.Second); err == nil {
		t.Error("a plan for a range without recordings")
	}
}

func TestPlaylist(t *testing.T) {
	base := uint64(t0.Unix()) * 90000
	p, err := makePlan(t0.Add(8*time.Second), t0.Add(28*time.Second), []source{
		src("a", t0, index(base, 10, 2, 1)),
		src("b", t0.Add(10*time.Second), index(base+10*90000, 10, 2, 1)),
		src("c", t0.Add(25*time.Second), index(base+25*90000, 10, 2, 1)),
	}, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	j := mustJSON(t, p.layout)
	pl, err := Playlist(j, "https://s3.test/b/clip.mp4?X-Amz-Signature=abc&x=1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#EXTM3U\n#EXT-X-VERSION:7\n", "#EXT-X-TARGETDURATION:4\n", "#EXT-X-PLAYLIST-TYPE:VOD\n",
		`#EXT-X-MAP:URI="https://s3.test/b/clip.mp4?X-Amz-Signature=abc&x=1",BYTERANGE="100@0"`,
		"#EXTINF:4.000,\n#EXT-X-BYTERANGE:4000@100\n", "#EXT-X-DISCONTINUITY\n#EXTINF:", "#EXT-X-ENDLIST\n",
	} {
		if !strings.Contains(pl, want) {
			t.Errorf("playlist lacks %q:\n%s", want, pl)
		}
	}
	if _, err := Playlist(j, "https://x/\"quoted\""); err == nil {
		t.Error("a URL with a quote went into the playlist")
	}
	if _, err := Playlist([]byte("{}"), "https://x/"); err == nil {
		t.Error("an empty layout made a playlist")
	}
	// In a progressive file the init section is inside the mdat, after
	// the moov: the map is that byte range, the segments follow it.
	if err := p.replaceInit("head", 5000, 4800, 200); err != nil {
		t.Fatal(err)
	}
	pl, err = Playlist(mustJSON(t, p.layout), "https://x/c.mp4")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`BYTERANGE="200@4800"`, "#EXTINF:4.000,\n#EXT-X-BYTERANGE:4000@5000\n"} {
		if !strings.Contains(pl, want) {
			t.Errorf("playlist lacks %q:\n%s", want, pl)
		}
	}
	if err := p.replaceInit("again", 5000, 0, 100); err == nil {
		t.Error("replaced the init section twice")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPlanCutTail: the plan knows its last fragment when that runs past
// the range's end, and cutting it leaves pieces, size, media end and HLS
// layout consistent.
func TestPlanCutTail(t *testing.T) {
	base := uint64(t0.Unix()) * 90000
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	a := src("a", t0, index(base, 10, 2, 1))
	b := src("b", sec(10), index(base+10*90000, 10, 2, 1))
	tests := []struct {
		name       string
		start, end float64
		srcs       []source
		tail       string // key@offset+length of the tail fragment, "" for none
		before     uint64
		pieces     string // after the cut below
	}{
		{"fragment ends at end", 4, 6, []source{a}, "", 0, ""},
		{"end inside one", 3.5, 6.5, []source{a}, "a@6100+1000", base + 6*90000 + 45000, "a@0+100 a@2100+4000 head@0+90 a@6200+300"},
		{"end in the second", 5, 13.2, []source{a, b}, "b@3100+1000", base + 13*90000 + 18000, "a@0+100 a@4100+6000 b@100+3000 head@0+90 b@3200+300"},
		{"end in the first fragment taken", 4.2, 4.5, []source{a}, "a@4100+1000", base + 4*90000 + 45000, "a@0+100 head@0+90 a@4200+300"},
		{"end past the recordings", 15, 30, []source{a, b}, "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := makePlan(sec(tt.start), sec(tt.end), tt.srcs, 4*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if tt.tail == "" {
				if p.tail != nil {
					t.Fatalf("tail %+v, want none", *p.tail)
				}
				return
			}
			if p.tail == nil {
				t.Fatalf("no tail, want %s", tt.tail)
			}
			tl := *p.tail
			if got := fmt.Sprintf("%s@%d+%d", tl.src.rec.Key, tl.offset, tl.length); got != tt.tail || tl.before != tt.before {
				t.Fatalf("tail %s before %d, want %s before %d", got, tl.before, tt.tail, tt.before)
			}
			// A cut keeping 5 samples (0.2 s), 300 bytes of payload, under a 90-byte head.
			start := tl.endTime - 90000
			fc := fragmentCut{moofSize: 100 - 8, mdatSize: 908, head: make([]byte, 90), dataLen: 300, kept: 5, samples: 25, end: start + 5*3600}
			size, mediaStart := p.size, p.mediaStart
			if err := p.cutTail(fc, "head"); err != nil {
				t.Fatal(err)
			}
			var ps []string
			var sum int64
			for _, pc := range p.pieces {
				ps = append(ps, fmt.Sprintf("%s@%d+%d", pc.Key, pc.Offset, pc.Length))
				sum += pc.Length
			}
			if got := strings.Join(ps, " "); got != tt.pieces {
				t.Errorf("pieces %s, want %s", got, tt.pieces)
			}
			if want := size - 1000 + 390; p.size != want || sum != want {
				t.Errorf("size %d (pieces %d), want %d", p.size, sum, want)
			}
			if want := tl.src.wall(fc.end); !p.mediaEnd.Equal(want) || !p.mediaStart.Equal(mediaStart) {
				t.Errorf("media %v-%v, want %v-%v", p.mediaStart, p.mediaEnd, mediaStart, want)
			}
			next := p.layout.InitSize
			var ticks uint64
			for _, s := range p.layout.Segments {
				if s.Offset != next {
					t.Errorf("HLS segment at %d, want %d", s.Offset, next)
				}
				next += s.Length
				ticks += s.Ticks
			}
			if next != p.size {
				t.Errorf("HLS segments end at %d, the file at %d", next, p.size)
			}
			if got, want := time.Duration(ticks)*time.Second/90000, p.mediaEnd.Sub(p.mediaStart); got != want {
				t.Errorf("HLS lasts %v, the media %v", got, want)
			}
			if p.tail != nil || p.cutTail(fc, "head") == nil {
				t.Error("a plan was cut twice")
			}
		})
	}
	// A cut that does not fit its fragment leaves the plan as it was.
	p, _ := makePlan(sec(3.5), sec(6.5), []source{a}, 4*time.Second)
	before := fmt.Sprint(p.pieces, p.size, p.layout)
	if err := p.cutTail(fragmentCut{moofSize: 92, head: make([]byte, 90), dataLen: 5000, kept: 5, end: 1}, "head"); err == nil || fmt.Sprint(p.pieces, p.size, p.layout) != before {
		t.Errorf("an oversized cut: err %v, plan changed: %v", err, fmt.Sprint(p.pieces, p.size, p.layout) != before)
	}
}
