package clips

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	amp4 "github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// A clip file is a progressive MP4, moov first:
//
//	[ftyp][moov: one track, sample tables][mdat (64-bit size):
//	    [the fragmented init section, for HLS]
//	    [the recordings' moof/mdat fragments, copied server-side]]
//
// The fragments keep the camera's timeline in their tfdt (about 1.8e9 s:
// one timeline across segments is what lets a clip join them by copying
// bytes). A fragmented clip made of them is presented from 0 by an edit
// list, but ffmpeg and Chromium take a fragmented file's duration from
// the last tfdt: a player would show a length of half a million hours.
// Rewriting every moof would cost one 5 MiB scratch composition per
// fragment. Instead the file is not fragmented: relay reads each
// fragment's moof (metadata: a few hundred bytes) and writes sample
// tables (stts, ctts, stss, stsc, stsz, co64) that point at the samples
// inside the copied fragments. Inside the one big mdat the moof boxes are
// opaque bytes; each fragment's samples are one chunk. Decode time 0 is
// the first kept keyframe; samples decoding at or after the clip's end
// are not in the tables (their bytes are copied, unused); between
// recordings the last sample lasts over any hole, so that the file's time
// is the wall-clock offset from media_start (a gap shows as a frozen
// frame). The HLS playlist still serves the fragments, by byte ranges of
// the same file, with the init section (rewritten, initedit.go) that the
// mdat holds first.

// errProgressive: the recordings cannot be described as a progressive file.
var errProgressive = errors.New("clip cannot be written as a progressive MP4")

// planFrag is one fragment of the plan: where it is in its recording and
// in the file (before the head replaces the init section).
type planFrag struct {
	src    source
	offset int64 // in src
	length int64 // moof and mdat
	pos    int64 // in the file
	head   []byte
}

// moofTables reads and caches (per recording: recordings never change)
// the sample tables of fragments.
type moofTables struct {
	pr    *prober
	mu    sync.Mutex
	cache map[string]map[int64]fragTable // by recording id, then fragment offset
	order []string
	bytes int64 // read, for the log
}

// tableCache bounds the recordings whose tables are cached (a 30 s
// segment of 25 fps: 750 samples, about 12 kB).
const tableCache = 512

func (m *moofTables) bytesRead() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes
}

func (m *moofTables) cached(id string, off int64) (fragTable, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.cache[id][off]
	return t, ok
}

func (m *moofTables) store(id string, off int64, t fragTable) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cache == nil {
		m.cache = map[string]map[int64]fragTable{}
	}
	r, ok := m.cache[id]
	if !ok {
		r = map[int64]fragTable{}
		m.cache[id] = r
		m.order = append(m.order, id)
		if len(m.order) > tableCache {
			delete(m.cache, m.order[0])
			m.order = m.order[1:]
		}
	}
	r[off] = t
}

// read returns the tables of frags, reading the moofs not cached: the
// recordings in parallel (bounded), the fragments of one in order, each
// read with one ranged GET of the size of the previous moof and its mdat
// header (hubd's moofs of one recording differ by a few bytes), and a
// second GET when the moof is larger. The reads stop at the moof; at most
// the few bytes by which a moof is smaller than its predecessor are read
// past its mdat header.
func (m *moofTables) read(ctx context.Context, frags []planFrag) ([]fragTable, error) {
	out := make([]fragTable, len(frags))
	var groups [][]int
	for i, f := range frags {
		if i == 0 || f.src.rec.ID != frags[i-1].src.rec.ID {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], i)
	}
	errs := make([]error, len(groups))
	sem := make(chan struct{}, probeParallel)
	var wg sync.WaitGroup
	for g, idx := range groups {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			guess := int64(0)
			for _, i := range idx {
				f := frags[i]
				var err error
				out[i], guess, err = m.one(ctx, f, guess)
				if err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err // the first recording's: one error says what to do (retry, or fall back)
		}
	}
	return out, nil
}

func (m *moofTables) one(ctx context.Context, f planFrag, guess int64) (fragTable, int64, error) {
	if f.head != nil {
		ms, err := moofSize(f.head)
		if err != nil || ms > int64(len(f.head)) {
			return fragTable{}, guess, fmt.Errorf("%w: cut head: %v", errProgressive, err)
		}
		t, err := parseFragTable(f.head[:ms], f.length)
		return t, guess, err
	}
	if t, ok := m.cached(f.src.rec.ID, f.offset); ok {
		return t, guess, nil
	}
	key := f.src.rec.Key
	if guess < 16 {
		guess = 8
	}
	n := min(guess, f.length)
	b, err := m.pr.get(ctx, key, f.offset, n)
	if err != nil {
		return fragTable{}, guess, fmt.Errorf("read the moof at %d of %s: %w", f.offset, key, err)
	}
	ms, err := moofSize(b)
	if err != nil {
		return fragTable{}, guess, fmt.Errorf("%w: %s at %d: %v", errProgressive, key, f.offset, err)
	}
	if ms+8 > f.length {
		return fragTable{}, guess, fmt.Errorf("%w: %s at %d: moof of %d bytes in a fragment of %d", errProgressive, key, f.offset, ms, f.length)
	}
	if ms+8 > int64(len(b)) {
		rest, err := m.pr.get(ctx, key, f.offset+int64(len(b)), ms+8-int64(len(b)))
		if err != nil {
			return fragTable{}, guess, fmt.Errorf("read the moof at %d of %s: %w", f.offset, key, err)
		}
		b = append(b, rest...)
	}
	m.mu.Lock()
	m.bytes += int64(len(b))
	m.mu.Unlock()
	if string(b[ms+4:ms+8]) != "mdat" || int64(binary.BigEndian.Uint32(b[ms:])) != f.length-ms {
		return fragTable{}, guess, fmt.Errorf("%w: %s at %d: no mdat of %d bytes after the moof", errProgressive, key, f.offset, f.length-ms)
	}
	t, err := parseFragTable(b[:ms], f.length)
	if err != nil {
		return t, guess, fmt.Errorf("%s at %d: %w", key, f.offset, err)
	}
	m.store(f.src.rec.ID, f.offset, t)
	return t, ms + 8, nil
}

// sampleTables are the file's track: samples in decode order, chunks (one
// per fragment) at file offsets before the head is added.
type sampleTables struct {
	durs, sizes []uint32
	ctos        []int32
	sync        []uint32 // 1-based sample numbers
	chunkOff    []int64
	chunkLen    []uint32 // samples per chunk
	total       uint64   // decode time at the end of the last sample
}

// buildTables lays the fragments' samples on the file's timeline: decode
// time 0 at the first sample (a keyframe), samples decoding at or after
// end left out, and the first sample of each later recording at its
// wall-clock offset from mediaStart (the previous sample lasts over a
// hole). timescale is the track's.
func buildTables(frags []planFrag, tabs []fragTable, mediaStart, end time.Time, timescale uint32) (sampleTables, error) {
	var st sampleTables
	bad := func(format string, a ...any) (sampleTables, error) {
		return sampleTables{}, fmt.Errorf("%w: %s", errProgressive, fmt.Sprintf(format, a...))
	}
	if len(frags) == 0 || len(frags) != len(tabs) {
		return bad("%d fragments, %d tables", len(frags), len(tabs))
	}
	var running, prevTl uint64
	for i, f := range frags {
		t := tabs[i]
		want := running
		switch {
		case i == 0:
			if len(t.samples) == 0 || !t.samples[0].sync {
				return bad("the first fragment does not start with a keyframe")
			}
		case f.src.rec.ID != frags[i-1].src.rec.ID:
			if d := f.src.wall(t.baseTime).Sub(mediaStart); d > 0 {
				want = uint64(math.Round(d.Seconds() * float64(timescale)))
			}
		case t.baseTime > prevTl:
			want = running + (t.baseTime - prevTl)
		}
		if want > running {
			last := len(st.durs) - 1
			if uint64(st.durs[last])+want-running > math.MaxUint32 {
				return bad("a hole of %d ticks", want-running)
			}
			st.durs[last] += uint32(want - running)
			running = want
		}
		before := f.src.ticksBefore(end)
		tl, n := t.baseTime, uint32(0)
		for _, s := range t.samples {
			if tl >= before {
				break
			}
			if s.sync {
				st.sync = append(st.sync, uint32(len(st.durs)+1))
			}
			st.durs = append(st.durs, s.dur)
			st.sizes = append(st.sizes, s.size)
			st.ctos = append(st.ctos, s.cto)
			tl += uint64(s.dur)
			running += uint64(s.dur)
			n++
		}
		if n > 0 {
			st.chunkOff = append(st.chunkOff, f.pos+t.dataOff)
			st.chunkLen = append(st.chunkLen, n)
		}
		prevTl = tl
	}
	if len(st.durs) == 0 || uint64(len(st.durs)) > math.MaxUint32 {
		return bad("%d samples", len(st.durs))
	}
	if st.ctos[0] < 0 {
		return bad("first composition offset %d", st.ctos[0])
	}
	st.total = running
	return st, nil
}

// trackInit is what the progressive moov takes from the recording's init
// section.
type trackInit struct {
	timescale     uint32
	trackID       uint32
	width, height uint32 // 16.16
	language      [3]byte
	hdlr, stsd    []byte // whole boxes, copied
}

// readTrackInit takes the track's description from an init section hubd
// writes (checked by checkInit).
func readTrackInit(init []byte, timescale uint32) (ti trackInit, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: parse the init section: %v", errProgressive, r)
		}
	}()
	if err := checkInit(init, timescale); err != nil {
		return ti, fmt.Errorf("%w: %v", errProgressive, err)
	}
	r := bytes.NewReader(init)
	trak := amp4.BoxPath{amp4.BoxTypeMoov(), amp4.BoxTypeTrak()}
	mdia := append(trak, amp4.BoxTypeMdia())
	boxes, err := amp4.ExtractBoxesWithPayload(r, nil, []amp4.BoxPath{append(trak, amp4.BoxTypeTkhd()), append(mdia, amp4.BoxTypeMdhd())})
	if err != nil {
		return ti, fmt.Errorf("%w: %v", errProgressive, err)
	}
	var haveTkhd, haveMdhd bool
	for _, b := range boxes {
		switch v := b.Payload.(type) {
		case *amp4.Tkhd:
			ti.trackID, ti.width, ti.height, haveTkhd = v.TrackID, v.Width, v.Height, true
		case *amp4.Mdhd:
			ti.timescale, ti.language, haveMdhd = v.Timescale, v.Language, true
		}
	}
	raw := func(path amp4.BoxPath) ([]byte, error) {
		bi, err := amp4.ExtractBox(r, nil, path)
		if err != nil || len(bi) != 1 || bi[0].Offset+bi[0].Size > uint64(len(init)) {
			return nil, fmt.Errorf("%w: want one %v: %v", errProgressive, path, err)
		}
		return init[bi[0].Offset : bi[0].Offset+bi[0].Size], nil
	}
	if ti.hdlr, err = raw(append(mdia, amp4.BoxTypeHdlr())); err != nil {
		return ti, err
	}
	if ti.stsd, err = raw(append(mdia, amp4.BoxTypeMinf(), amp4.BoxTypeStbl(), amp4.BoxTypeStsd())); err != nil {
		return ti, err
	}
	if !haveTkhd || !haveMdhd || ti.timescale != timescale || ti.trackID == 0 {
		return ti, fmt.Errorf("%w: init section without tkhd or mdhd at timescale %d", errProgressive, timescale)
	}
	return ti, nil
}

var identity = [9]int32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}

// writeHead writes the file's head: ftyp, moov (chunk offsets shifted by
// shift) and the 64-bit mdat header for an mdat of mdatBody bytes.
func writeHead(ti trackInit, st sampleTables, shift, mdatBody int64) ([]byte, error) {
	var buf seekablebuffer.Buffer
	w := amp4.NewWriter(&buf)
	put := func(b amp4.IBox) error {
		if _, err := w.StartBox(&amp4.BoxInfo{Type: b.GetType()}); err != nil {
			return err
		}
		if _, err := amp4.Marshal(w, b, amp4.Context{}); err != nil {
			return err
		}
		_, err := w.EndBox()
		return err
	}
	open := func(t amp4.BoxType) error {
		_, err := w.StartBox(&amp4.BoxInfo{Type: t})
		return err
	}
	end := func() error {
		_, err := w.EndBox()
		return err
	}
	raw := func(b []byte) error {
		_, err := w.Write(b)
		return err
	}
	full1 := amp4.FullBox{Version: 1}
	ftyp := &amp4.Ftyp{MajorBrand: [4]byte{'i', 's', 'o', 'm'}, MinorVersion: 0x200}
	for _, b := range []string{"isom", "iso2", "mp41"} {
		ftyp.AddCompatibleBrand([4]byte([]byte(b)))
	}
	// Run-length tables.
	stts := &amp4.Stts{}
	for _, d := range st.durs {
		if n := len(stts.Entries); n > 0 && stts.Entries[n-1].SampleDelta == d {
			stts.Entries[n-1].SampleCount++
		} else {
			stts.Entries = append(stts.Entries, amp4.SttsEntry{SampleCount: 1, SampleDelta: d})
		}
	}
	stts.EntryCount = uint32(len(stts.Entries))
	var ctts *amp4.Ctts
	for _, o := range st.ctos {
		if o != 0 {
			ctts = &amp4.Ctts{FullBox: full1}
			break
		}
	}
	if ctts != nil {
		for _, o := range st.ctos {
			if n := len(ctts.Entries); n > 0 && ctts.Entries[n-1].SampleOffsetV1 == o {
				ctts.Entries[n-1].SampleCount++
			} else {
				ctts.Entries = append(ctts.Entries, amp4.CttsEntry{SampleCount: 1, SampleOffsetV1: o})
			}
		}
		ctts.EntryCount = uint32(len(ctts.Entries))
	}
	stsc := &amp4.Stsc{}
	for i, n := range st.chunkLen {
		if k := len(stsc.Entries); k == 0 || stsc.Entries[k-1].SamplesPerChunk != n {
			stsc.Entries = append(stsc.Entries, amp4.StscEntry{FirstChunk: uint32(i + 1), SamplesPerChunk: n, SampleDescriptionIndex: 1})
		}
	}
	stsc.EntryCount = uint32(len(stsc.Entries))
	stsz := &amp4.Stsz{SampleCount: uint32(len(st.sizes)), EntrySize: st.sizes}
	co64 := &amp4.Co64{EntryCount: uint32(len(st.chunkOff)), ChunkOffset: make([]uint64, len(st.chunkOff))}
	for i, o := range st.chunkOff {
		co64.ChunkOffset[i] = uint64(o + shift)
	}
	elst := &amp4.Elst{FullBox: full1, EntryCount: 1, Entries: []amp4.ElstEntry{{
		SegmentDurationV1: st.total, MediaTimeV1: int64(st.ctos[0]), MediaRateInteger: 1,
	}}}
	steps := []func() error{
		func() error { return put(ftyp) },
		func() error { return open(amp4.BoxTypeMoov()) },
		func() error {
			return put(&amp4.Mvhd{FullBox: full1, Timescale: ti.timescale, DurationV1: st.total,
				Rate: 0x10000, Volume: 0x100, Matrix: identity, NextTrackID: ti.trackID + 1})
		},
		func() error { return open(amp4.BoxTypeTrak()) },
		func() error {
			return put(&amp4.Tkhd{FullBox: amp4.FullBox{Version: 1, Flags: [3]byte{0, 0, 3}}, TrackID: ti.trackID,
				DurationV1: st.total, Matrix: identity, Width: ti.width, Height: ti.height})
		},
		func() error { return open(amp4.BoxTypeEdts()) },
		func() error { return put(elst) },
		end,
		func() error { return open(amp4.BoxTypeMdia()) },
		func() error {
			return put(&amp4.Mdhd{FullBox: full1, Timescale: ti.timescale, DurationV1: st.total, Language: ti.language})
		},
		func() error { return raw(ti.hdlr) },
		func() error { return open(amp4.BoxTypeMinf()) },
		func() error { return put(&amp4.Vmhd{FullBox: amp4.FullBox{Flags: [3]byte{0, 0, 1}}}) },
		func() error { return open(amp4.BoxTypeDinf()) },
		func() error { return open(amp4.BoxTypeDref()) },
		func() error {
			_, err := amp4.Marshal(w, &amp4.Dref{EntryCount: 1}, amp4.Context{})
			return err
		},
		func() error {
			return put(&amp4.Url{FullBox: amp4.FullBox{Flags: [3]byte{0, 0, amp4.UrlSelfContained}}})
		},
		end, end, // dref, dinf
		func() error { return open(amp4.BoxTypeStbl()) },
		func() error { return raw(ti.stsd) },
		func() error { return put(stts) },
		func() error {
			if ctts == nil {
				return nil
			}
			return put(ctts)
		},
		func() error {
			if len(st.sync) == len(st.durs) {
				return nil // every sample is a sync sample (MJPEG): no stss
			}
			return put(&amp4.Stss{EntryCount: uint32(len(st.sync)), SampleNumber: st.sync})
		},
		func() error { return put(stsc) },
		func() error { return put(stsz) },
		func() error { return put(co64) },
		end, end, end, end, end, // stbl, minf, mdia, trak, moov
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, fmt.Errorf("%w: write the moov: %v", errProgressive, err)
		}
	}
	b := buf.Bytes()
	b = binary.BigEndian.AppendUint32(b, 1)
	b = append(b, "mdat"...)
	b = binary.BigEndian.AppendUint64(b, uint64(16+mdatBody))
	return b, nil
}
