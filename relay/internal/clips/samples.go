package clips

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// fragTable is what a fragment's moof says of its samples: what a
// progressive MP4's sample tables need (progressive.go).
type fragTable struct {
	baseTime uint64 // tfdt: decode time of the first sample
	dataOff  int64  // of the first sample's data, counted from the moof's first byte
	samples  []fragSample
}

type fragSample struct {
	dur, size uint32
	cto       int32 // composition offset (pts - dts)
	sync      bool
}

// errFragTable: a moof relay cannot read sample tables from.
var errFragTable = errors.New("moof cannot be read as sample tables")

// maxFragSamples bounds the samples of one fragment (mediacommon refuses
// truns of more than 19200 samples; a 1 s fragment of 25 fps has 25).
const maxFragSamples = 1 << 16

// parseFragTable reads the sample table of a one-track moof (the whole
// box, header included) whose fragment is fragLen bytes long (moof and
// mdat): tfdt, tfhd defaults and one trun. Sample data must be relative
// to the moof (default-base-is-moof or no base offset, as hubd writes)
// and lie inside the fragment. Anything else is errFragTable.
func parseFragTable(moof []byte, fragLen int64) (fragTable, error) {
	var t fragTable
	bad := func(format string, a ...any) (fragTable, error) {
		return fragTable{}, fmt.Errorf("%w: %s", errFragTable, fmt.Sprintf(format, a...))
	}
	be := binary.BigEndian
	top, ok := boxAt(moof, 0)
	if !ok || top.typ != "moof" || top.size != int64(len(moof)) {
		return bad("not one moof box of %d bytes", len(moof))
	}
	var traf []byte
	for b := moof[8:]; len(b) > 0; {
		h, ok := boxAt(b, 0)
		if !ok || h.size < 8 || h.size > int64(len(b)) {
			return bad("bad box size in moof")
		}
		if h.typ == "traf" {
			if traf != nil {
				return bad("more than one track")
			}
			traf = b[8:h.size]
		}
		b = b[h.size:]
	}
	if traf == nil {
		return bad("no traf")
	}
	var (
		defDur, defSize, defFlags uint32
		haveTfhd, haveTfdt, trun  bool
	)
	for b := traf; len(b) > 0; {
		h, ok := boxAt(b, 0)
		if !ok || h.size < 12 || h.size > int64(len(b)) {
			return bad("bad box size in traf")
		}
		body := b[8:h.size]
		version, flags := body[0], be.Uint32(body)&0xffffff
		p := body[4:]
		b = b[h.size:]
		take := func(n int) ([]byte, bool) {
			if len(p) < n {
				return nil, false
			}
			v := p[:n]
			p = p[n:]
			return v, true
		}
		switch h.typ {
		case "tfhd":
			if haveTfhd {
				return bad("two tfhd")
			}
			haveTfhd = true
			if flags&0x1 != 0 {
				return bad("tfhd with an explicit base data offset")
			}
			if _, ok := take(4); !ok { // track_ID
				return bad("short tfhd")
			}
			if flags&0x2 != 0 {
				if _, ok := take(4); !ok {
					return bad("short tfhd")
				}
			}
			for _, f := range []struct {
				bit uint32
				v   *uint32
			}{{0x8, &defDur}, {0x10, &defSize}, {0x20, &defFlags}} {
				if flags&f.bit != 0 {
					v, ok := take(4)
					if !ok {
						return bad("short tfhd")
					}
					*f.v = be.Uint32(v)
				}
			}
		case "tfdt":
			if haveTfdt {
				return bad("two tfdt")
			}
			haveTfdt = true
			switch {
			case version == 1 && len(p) >= 8:
				t.baseTime = be.Uint64(p)
			case version == 0 && len(p) >= 4:
				t.baseTime = uint64(be.Uint32(p))
			default:
				return bad("short tfdt")
			}
		case "trun":
			if trun {
				return bad("more than one trun")
			}
			if !haveTfhd {
				return bad("trun before tfhd")
			}
			trun = true
			v, ok := take(4)
			if !ok {
				return bad("short trun")
			}
			count := be.Uint32(v)
			if count < 1 || count > maxFragSamples {
				return bad("trun of %d samples", count)
			}
			if flags&0x1 != 0 {
				v, ok := take(4)
				if !ok {
					return bad("short trun")
				}
				t.dataOff = int64(int32(be.Uint32(v)))
			} else {
				// No data offset: the data starts at the base, the moof.
				t.dataOff = 0
			}
			var first uint32
			haveFirst := false
			if flags&0x4 != 0 {
				v, ok := take(4)
				if !ok {
					return bad("short trun")
				}
				first, haveFirst = be.Uint32(v), true
			}
			entry := 0
			for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
				if flags&bit != 0 {
					entry += 4
				}
			}
			if len(p) < int(count)*entry {
				return bad("trun of %d samples in %d bytes", count, len(p))
			}
			t.samples = make([]fragSample, count)
			for i := range t.samples {
				s := fragSample{dur: defDur, size: defSize}
				fl := defFlags
				if i == 0 && haveFirst {
					fl = first
				}
				e := p[i*entry:]
				if flags&0x100 != 0 {
					s.dur, e = be.Uint32(e), e[4:]
				}
				if flags&0x200 != 0 {
					s.size, e = be.Uint32(e), e[4:]
				}
				if flags&0x400 != 0 {
					if !(i == 0 && haveFirst) {
						fl = be.Uint32(e)
					}
					e = e[4:]
				}
				if flags&0x800 != 0 {
					s.cto = int32(be.Uint32(e))
					if version == 0 && s.cto < 0 {
						return bad("composition offset %d past int32", be.Uint32(e))
					}
				}
				s.sync = fl&0x10000 == 0 // sample_is_non_sync_sample
				if s.dur == 0 || s.size == 0 {
					return bad("sample %d with duration %d, size %d", i, s.dur, s.size)
				}
				t.samples[i] = s
			}
		}
	}
	if !haveTfdt || !trun {
		return bad("no tfdt or trun")
	}
	var data int64
	for _, s := range t.samples {
		data += int64(s.size)
	}
	if t.dataOff < int64(len(moof))+8 || t.dataOff+data > fragLen {
		return bad("sample data at %d+%d outside the fragment's mdat (moof %d, fragment %d bytes)", t.dataOff, data, len(moof), fragLen)
	}
	return t, nil
}
