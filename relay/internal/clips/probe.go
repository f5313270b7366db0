package clips

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/zipnvr/zipnvr/pkg/fragindex"
	"github.com/zipnvr/zipnvr/relay/internal/media"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// prober reads recordings' fragment indexes: the trailer hubd writes (two
// ranged GETs of a few hundred bytes), else, for a segment without one
// (repaired after a crash), a walk over its box headers. It never reads a
// byte of media (mdat payload), and counts what it reads.
type prober struct {
	objects media.Composer
	// indexBytes counts every byte read (indexes, box headers, init sections).
	indexBytes atomic.Int64
	requests   atomic.Int64

	mu    sync.Mutex
	cache map[string]fragindex.Index // by recording id; recordings never change
	order []string                   // insertion order, for the bound
}

// probeCache bounds the cached indexes (a few hundred bytes each).
const probeCache = 20000

func newProber(o media.Composer) *prober {
	return &prober{objects: o, cache: map[string]fragindex.Index{}}
}

// errNotJoinable: the recording is not a segment relay can join.
var errNotJoinable = errors.New("recording is not a joinable fMP4 segment")

func (p *prober) get(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := p.objects.GetRange(ctx, key, off, n)
	p.requests.Add(1)
	p.indexBytes.Add(int64(len(b)))
	if err == nil && int64(len(b)) != n {
		err = fmt.Errorf("%w: read %d of %d bytes at %d (object shorter than recorded)", errNotJoinable, len(b), n, off)
	}
	return b, err
}

// index returns rec's fragment index.
func (p *prober) index(ctx context.Context, rec store.Recording) (fragindex.Index, error) {
	p.mu.Lock()
	ix, ok := p.cache[rec.ID]
	p.mu.Unlock()
	if ok {
		return ix, nil
	}
	ix, err := p.trailer(ctx, rec)
	if errors.Is(err, fragindex.ErrNoIndex) {
		ix, err = p.walk(ctx, rec)
	}
	if err != nil {
		return ix, err
	}
	p.mu.Lock()
	if _, ok := p.cache[rec.ID]; !ok {
		p.cache[rec.ID] = ix
		p.order = append(p.order, rec.ID)
		if len(p.order) > probeCache {
			delete(p.cache, p.order[0])
			p.order = p.order[1:]
		}
	}
	p.mu.Unlock()
	return ix, nil
}

func (p *prober) trailer(ctx context.Context, rec store.Recording) (fragindex.Index, error) {
	if rec.Bytes < fragindex.MfroSize+64 {
		return fragindex.Index{}, fmt.Errorf("%w: %d bytes", errNotJoinable, rec.Bytes)
	}
	mfro, err := p.get(ctx, rec.Key, rec.Bytes-fragindex.MfroSize, fragindex.MfroSize)
	if err != nil {
		return fragindex.Index{}, err
	}
	n, err := fragindex.TrailerSize(mfro, rec.Bytes)
	if err != nil {
		return fragindex.Index{}, err
	}
	mfra, err := p.get(ctx, rec.Key, rec.Bytes-n, n)
	if err != nil {
		return fragindex.Index{}, err
	}
	return fragindex.Parse(mfra, rec.Bytes)
}

// maxWalkFragments bounds a walk (a segment lasts at most an hour).
const maxWalkFragments = fragindex.MaxFragments

// walk builds the index of a segment without trailer from its boxes: the
// init section (for its hash and timescale), then each moof (its tfdt, the
// first sample's flags, the sample durations) and the size of each mdat,
// skipping the mdat payload. Two small reads per fragment: only repaired
// segments take this path.
func (p *prober) walk(ctx context.Context, rec store.Recording) (fragindex.Index, error) {
	var ix fragindex.Index
	head, err := p.get(ctx, rec.Key, 0, min(64, rec.Bytes))
	if err != nil {
		return ix, err
	}
	ftyp, ok := boxAt(head, 0)
	if !ok || ftyp.typ != "ftyp" {
		return ix, fmt.Errorf("%w: no ftyp", errNotJoinable)
	}
	moov, ok := boxAt(head, ftyp.size)
	if !ok || moov.typ != "moov" {
		return ix, fmt.Errorf("%w: no moov after ftyp", errNotJoinable)
	}
	ix.InitSize = ftyp.size + moov.size
	if ix.InitSize > rec.Bytes || ix.InitSize > media.MaxRangeBytes {
		return ix, fmt.Errorf("%w: init section of %d bytes", errNotJoinable, ix.InitSize)
	}
	init, err := p.get(ctx, rec.Key, 0, ix.InitSize)
	if err != nil {
		return ix, err
	}
	var in fmp4.Init
	if err := in.Unmarshal(bytes.NewReader(init)); err != nil || len(in.Tracks) != 1 {
		return ix, fmt.Errorf("%w: init section: %v", errNotJoinable, err)
	}
	ix.Timescale, ix.InitHash = in.Tracks[0].TimeScale, fragindex.HashInit(init)
	for off := ix.InitSize; off+8 <= rec.Bytes; {
		if len(ix.Fragments) == maxWalkFragments {
			return ix, fmt.Errorf("%w: more than %d fragments", errNotJoinable, maxWalkFragments)
		}
		hdr, err := p.get(ctx, rec.Key, off, 8)
		if err != nil {
			return ix, err
		}
		moof, _ := boxAt(hdr, 0)
		if moof.typ != "moof" {
			break // the end, or an index of another kind
		}
		if moof.size < 16 || off+moof.size+8 > rec.Bytes || moof.size > media.MaxRangeBytes-16 {
			return ix, fmt.Errorf("%w: moof of %d bytes at %d", errNotJoinable, moof.size, off)
		}
		// The moof and the header of the mdat after it.
		b, err := p.get(ctx, rec.Key, off, moof.size+8)
		if err != nil {
			return ix, err
		}
		mi, err := parseMoof(b[8:moof.size])
		f, dur := mi.frag, mi.dur
		if err != nil {
			return ix, fmt.Errorf("%w: moof at %d: %v", errNotJoinable, off, err)
		}
		mdat, ok := boxAt(b, moof.size)
		if !ok || mdat.typ != "mdat" || mdat.size == 1 {
			return ix, fmt.Errorf("%w: no mdat after the moof at %d", errNotJoinable, off)
		}
		f.Offset = off
		ix.Fragments = append(ix.Fragments, f)
		ix.EndTime = f.Time + dur
		ix.DataEnd = off + moof.size + mdat.size
		if ix.DataEnd > rec.Bytes {
			return ix, fmt.Errorf("%w: mdat at %d runs past the end", errNotJoinable, off+moof.size)
		}
		off = ix.DataEnd
	}
	if len(ix.Fragments) == 0 {
		return ix, fmt.Errorf("%w: no fragment", errNotJoinable)
	}
	// What a trailer would have said must hold here too.
	trailer := ix.Marshal()
	if _, err := fragindex.Parse(trailer, ix.DataEnd+int64(len(trailer))); err != nil {
		return ix, fmt.Errorf("%w: %v", errNotJoinable, err)
	}
	return ix, nil
}

type boxHeader struct {
	typ  string
	size int64
}

// boxAt reads the 8-byte box header at off of b (64-bit sizes are not
// used by the boxes read here and come back as size 1).
func boxAt(b []byte, off int64) (boxHeader, bool) {
	if off < 0 || off+8 > int64(len(b)) {
		return boxHeader{}, false
	}
	return boxHeader{typ: string(b[off+4 : off+8]), size: int64(binary.BigEndian.Uint32(b[off:]))}, true
}

// moofInfo is what relay reads of a moof.
type moofInfo struct {
	frag     fragindex.Fragment // decode time, first sample's sync flag
	dur      uint64             // of its samples
	firstCTO int64              // the first sample's composition offset (pts - dts)
}

// parseMoof reads the decode time, the first sample's sync flag and
// composition offset, and the total duration of a one-track moof (its
// body, after the header).
func parseMoof(body []byte) (mi moofInfo, err error) {
	f, dur, cto, err := parseMoofFields(body)
	return moofInfo{frag: f, dur: dur, firstCTO: cto}, err
}

func parseMoofFields(body []byte) (fragindex.Fragment, uint64, int64, error) {
	var f fragindex.Fragment
	var firstCTO int64
	var traf []byte
	for b := body; len(b) >= 8; {
		h, _ := boxAt(b, 0)
		if h.size < 8 || h.size > int64(len(b)) {
			return f, 0, 0, errors.New("bad box size")
		}
		if h.typ == "traf" {
			if traf != nil {
				return f, 0, 0, errors.New("more than one track")
			}
			traf = b[8:h.size]
		}
		b = b[h.size:]
	}
	if traf == nil {
		return f, 0, 0, errors.New("no traf")
	}
	var (
		defDur, defFlags uint32
		haveTfdt, trun   bool
		dur              uint64
		firstFlags       uint32
		haveFirst        bool
	)
	be := binary.BigEndian
	for b := traf; len(b) >= 8; {
		h, _ := boxAt(b, 0)
		if h.size < 12 || h.size > int64(len(b)) {
			return f, 0, 0, errors.New("bad box size in traf")
		}
		body := b[8:h.size]
		version, flags := body[0], be.Uint32(body)&0xffffff
		body = body[4:]
		switch h.typ {
		case "tfhd":
			if len(body) < 4 {
				return f, 0, 0, errors.New("short tfhd")
			}
			p := body[4:]
			skip := func(n int) bool {
				if len(p) < n {
					return false
				}
				p = p[n:]
				return true
			}
			if flags&0x1 != 0 && !skip(8) || flags&0x2 != 0 && !skip(4) {
				return f, 0, 0, errors.New("short tfhd")
			}
			if flags&0x8 != 0 {
				if len(p) < 4 {
					return f, 0, 0, errors.New("short tfhd")
				}
				defDur = be.Uint32(p)
				p = p[4:]
			}
			if flags&0x10 != 0 && !skip(4) {
				return f, 0, 0, errors.New("short tfhd")
			}
			if flags&0x20 != 0 {
				if len(p) < 4 {
					return f, 0, 0, errors.New("short tfhd")
				}
				defFlags = be.Uint32(p)
			}
		case "tfdt":
			switch {
			case version == 1 && len(body) >= 8:
				f.Time = be.Uint64(body)
			case version == 0 && len(body) >= 4:
				f.Time = uint64(be.Uint32(body))
			default:
				return f, 0, 0, errors.New("short tfdt")
			}
			haveTfdt = true
		case "trun":
			if trun {
				return f, 0, 0, errors.New("more than one trun")
			}
			trun = true
			if len(body) < 4 {
				return f, 0, 0, errors.New("short trun")
			}
			count := int(be.Uint32(body))
			p := body[4:]
			if flags&0x1 != 0 {
				p = p[min(4, len(p)):]
			}
			if flags&0x4 != 0 {
				if len(p) < 4 {
					return f, 0, 0, errors.New("short trun")
				}
				firstFlags, haveFirst = be.Uint32(p), true
				p = p[4:]
			}
			entry := 0
			for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
				if flags&bit != 0 {
					entry += 4
				}
			}
			if count < 1 || len(p) < count*entry {
				return f, 0, 0, fmt.Errorf("trun of %d samples in %d bytes", count, len(p))
			}
			for i := range count {
				e := p[i*entry:]
				d := defDur
				if flags&0x100 != 0 {
					d = be.Uint32(e)
					e = e[4:]
				}
				if flags&0x200 != 0 {
					e = e[4:]
				}
				if i == 0 && !haveFirst && flags&0x400 != 0 {
					firstFlags, haveFirst = be.Uint32(e), true
				}
				if flags&0x400 != 0 {
					e = e[4:]
				}
				if i == 0 && flags&0x800 != 0 {
					if version == 0 {
						firstCTO = int64(be.Uint32(e))
					} else {
						firstCTO = int64(int32(be.Uint32(e)))
					}
				}
				dur += uint64(d)
			}
		}
		b = b[h.size:]
	}
	if !haveTfdt || !trun || dur == 0 {
		return f, 0, 0, errors.New("no tfdt, trun or sample durations")
	}
	if !haveFirst {
		firstFlags = defFlags
	}
	f.Sync = firstFlags&0x10000 == 0 // sample_is_non_sync_sample
	return f, dur, firstCTO, nil
}
