// Package fragindex is the fragment index hubd appends to every segment and
// relay reads to join segments into clips without reading their media.
//
// The index is an ISO BMFF 'mfra' box at the end of the file: a standard
// 'tfra' (keyframe fragments, for players' seeking), a 'uuid' box with every
// fragment's offset, decode time and keyframe flag plus what joining needs
// (init section size and hash, timeline end, media end), and the 'mfro' box
// whose last 4 bytes give the size of 'mfra'. Reading the last 16 bytes of an
// object, then the mfra they point to, is two small ranged GETs.
package fragindex

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Fragment is one moof+mdat of a segment.
type Fragment struct {
	Offset int64  // of the moof, from the start of the file
	Time   uint64 // tfdt: decode time of its first sample, in Timescale units
	Sync   bool   // its first sample is a keyframe
}

// Index describes a segment file.
type Index struct {
	Timescale uint32
	// InitSize is the length of ftyp+moov at the start of the file.
	InitSize int64
	// InitHash identifies the init section: segments with equal hashes
	// share codec, parameter sets and timescale, so their fragments join.
	InitHash [8]byte
	// EndTime is the decode time just after the last sample.
	EndTime uint64
	// DataEnd is the end of the last mdat: the index starts there.
	DataEnd   int64
	Fragments []Fragment
}

// UUID names fragindex's box inside mfra.
var UUID = [16]byte{0x7a, 0x6e, 0x76, 0x72, 0x2d, 0x66, 0x72, 0x61, 0x67, 0x69, 0x64, 0x78, 0x00, 0x00, 0x00, 0x01} // "znvr-fragidx" v1

const (
	version = 1
	// MfroSize is the length of the mfro box that ends a segment.
	MfroSize = 16
	// MaxFragments bounds an index (a one-hour segment of 1 s fragments
	// has 3600); a larger count is refused as corrupt.
	MaxFragments = 1 << 16
	// MaxTrailerBytes bounds the mfra box a reader fetches.
	MaxTrailerBytes = 64 + 19*MaxFragments + 56 + 17*MaxFragments
	uuidHead        = 8 + 16 + 4 + 4 + 8 + 8 + 8 + 8 + 4 // box header, usertype, version/flags, fields, count
	uuidEntry       = 8 + 8 + 1
	tfraHead        = 8 + 4 + 4 + 4 + 4 // header, version/flags, track_ID, lengths, number_of_entry
	tfraEntry       = 8 + 8 + 1 + 1 + 1 // time, moof_offset (version 1), traf/trun/sample numbers (1 byte each)
)

// HashInit is the InitHash of an init section.
func HashInit(init []byte) [8]byte {
	sum := sha256.Sum256(init)
	var h [8]byte
	copy(h[:], sum[:8])
	return h
}

// Start is the decode time of the first sample.
func (ix *Index) Start() uint64 {
	if len(ix.Fragments) == 0 {
		return ix.EndTime
	}
	return ix.Fragments[0].Time
}

// FragmentEnd is the end offset of fragment i (the next one's start, or DataEnd).
func (ix *Index) FragmentEnd(i int) int64 {
	if i+1 < len(ix.Fragments) {
		return ix.Fragments[i+1].Offset
	}
	return ix.DataEnd
}

// FragmentEndTime is the decode time just after fragment i.
func (ix *Index) FragmentEndTime(i int) uint64 {
	if i+1 < len(ix.Fragments) {
		return ix.Fragments[i+1].Time
	}
	return ix.EndTime
}

// Marshal returns the mfra box to append at DataEnd.
func (ix *Index) Marshal() []byte {
	var syncs int
	for _, f := range ix.Fragments {
		if f.Sync {
			syncs++
		}
	}
	tfraLen := tfraHead + tfraEntry*syncs
	uuidLen := uuidHead + uuidEntry*len(ix.Fragments)
	total := 8 + tfraLen + uuidLen + MfroSize
	b := make([]byte, 0, total)
	be := binary.BigEndian

	b = be.AppendUint32(b, uint32(total))
	b = append(b, "mfra"...)

	b = be.AppendUint32(b, uint32(tfraLen))
	b = append(b, "tfra"...)
	b = append(b, 1, 0, 0, 0) // version 1: 64-bit time and offset
	b = be.AppendUint32(b, 1) // track_ID
	b = be.AppendUint32(b, 0) // 1-byte traf, trun and sample numbers
	b = be.AppendUint32(b, uint32(syncs))
	for _, f := range ix.Fragments {
		if f.Sync {
			b = be.AppendUint64(b, f.Time)
			b = be.AppendUint64(b, uint64(f.Offset))
			b = append(b, 1, 1, 1) // first traf, first trun, first sample
		}
	}

	b = be.AppendUint32(b, uint32(uuidLen))
	b = append(b, "uuid"...)
	b = append(b, UUID[:]...)
	b = append(b, version, 0, 0, 0)
	b = be.AppendUint32(b, ix.Timescale)
	b = be.AppendUint64(b, uint64(ix.InitSize))
	b = append(b, ix.InitHash[:]...)
	b = be.AppendUint64(b, ix.EndTime)
	b = be.AppendUint64(b, uint64(ix.DataEnd))
	b = be.AppendUint32(b, uint32(len(ix.Fragments)))
	for _, f := range ix.Fragments {
		b = be.AppendUint64(b, uint64(f.Offset))
		b = be.AppendUint64(b, f.Time)
		var flags byte
		if f.Sync {
			flags = 1
		}
		b = append(b, flags)
	}

	b = be.AppendUint32(b, MfroSize)
	b = append(b, "mfro"...)
	b = append(b, 0, 0, 0, 0) // version 0
	b = be.AppendUint32(b, uint32(total))
	return b
}

// ErrNoIndex: the object does not end with a fragindex trailer (a segment
// cut short by a crash and repaired, or written by another program).
var ErrNoIndex = errors.New("no fragment index at the end of the segment")

// TrailerSize reads the mfro box (the last MfroSize bytes of an object of
// objectSize bytes) and returns the size of the mfra box that ends the object.
func TrailerSize(mfro []byte, objectSize int64) (int64, error) {
	if len(mfro) != MfroSize {
		return 0, fmt.Errorf("mfro: %d bytes, want %d", len(mfro), MfroSize)
	}
	be := binary.BigEndian
	if be.Uint32(mfro) != MfroSize || string(mfro[4:8]) != "mfro" {
		return 0, ErrNoIndex
	}
	n := int64(be.Uint32(mfro[12:]))
	if n < 8+MfroSize || n > MaxTrailerBytes || n > objectSize {
		return 0, fmt.Errorf("%w: mfro gives an mfra of %d bytes in an object of %d", ErrNoIndex, n, objectSize)
	}
	return n, nil
}

// Parse decodes the mfra box that ends an object of objectSize bytes and
// checks it against itself: it comes from a hub, so nothing in it is trusted
// before the checks pass.
func Parse(mfra []byte, objectSize int64) (Index, error) {
	var ix Index
	bad := func(format string, a ...any) (Index, error) {
		return Index{}, fmt.Errorf("%w: %s", ErrNoIndex, fmt.Sprintf(format, a...))
	}
	be := binary.BigEndian
	if len(mfra) < 8+MfroSize || int64(len(mfra)) > objectSize {
		return bad("%d bytes", len(mfra))
	}
	if int(be.Uint32(mfra)) != len(mfra) || string(mfra[4:8]) != "mfra" {
		return bad("no mfra box of %d bytes", len(mfra))
	}
	if n, err := TrailerSize(mfra[len(mfra)-MfroSize:], objectSize); err != nil || n != int64(len(mfra)) {
		return bad("mfro does not match the mfra box")
	}
	var found bool
	for body := mfra[8 : len(mfra)-MfroSize]; len(body) > 0; {
		if len(body) < 8 {
			return bad("truncated box header")
		}
		n := int(be.Uint32(body))
		if n < 8 || n > len(body) {
			return bad("box of %d bytes in %d", n, len(body))
		}
		box := body[:n]
		body = body[n:]
		if string(box[4:8]) != "uuid" || len(box) < 24 || [16]byte(box[8:24]) != UUID {
			continue // tfra and anything else: the uuid box says it all
		}
		if found {
			return bad("two index boxes")
		}
		found = true
		if len(box) < uuidHead || box[24] != version {
			return bad("index box of %d bytes, version %d", len(box), box[24])
		}
		p := box[28:]
		ix.Timescale = be.Uint32(p)
		ix.InitSize = int64(be.Uint64(p[4:]))
		copy(ix.InitHash[:], p[12:20])
		ix.EndTime = be.Uint64(p[20:])
		ix.DataEnd = int64(be.Uint64(p[28:]))
		count := int(be.Uint32(p[36:]))
		p = p[40:]
		if count < 1 || count > MaxFragments || len(p) != count*uuidEntry {
			return bad("%d fragments in %d bytes", count, len(p))
		}
		ix.Fragments = make([]Fragment, count)
		for i := range ix.Fragments {
			e := p[i*uuidEntry:]
			ix.Fragments[i] = Fragment{Offset: int64(be.Uint64(e)), Time: be.Uint64(e[8:]), Sync: e[16]&1 != 0}
		}
	}
	if !found {
		return bad("no zipnvr index box in mfra")
	}
	if err := ix.check(objectSize - int64(len(mfra))); err != nil {
		return bad("%v", err)
	}
	return ix, nil
}

// check verifies the index describes a well-formed segment whose media ends
// at dataEnd.
func (ix *Index) check(dataEnd int64) error {
	switch {
	case ix.Timescale == 0:
		return errors.New("timescale 0")
	case ix.InitSize < 16:
		return fmt.Errorf("init section of %d bytes", ix.InitSize)
	case ix.DataEnd != dataEnd:
		return fmt.Errorf("media ends at %d, the index starts at %d", ix.DataEnd, dataEnd)
	case ix.Fragments[0].Offset != ix.InitSize:
		return fmt.Errorf("first fragment at %d, not right after the %d-byte init section", ix.Fragments[0].Offset, ix.InitSize)
	case !ix.Fragments[0].Sync:
		return errors.New("first fragment does not start with a keyframe")
	}
	for i, f := range ix.Fragments {
		if i > 0 {
			prev := ix.Fragments[i-1]
			if f.Offset <= prev.Offset+8 {
				return fmt.Errorf("fragment %d at %d, not after fragment %d at %d", i, f.Offset, i-1, prev.Offset)
			}
			if f.Time <= prev.Time {
				return fmt.Errorf("fragment %d at time %d, not after fragment %d at %d", i, f.Time, i-1, prev.Time)
			}
		}
		if f.Offset+8 > ix.DataEnd {
			return fmt.Errorf("fragment %d at %d, past the media end %d", i, f.Offset, ix.DataEnd)
		}
	}
	if last := ix.Fragments[len(ix.Fragments)-1]; ix.EndTime <= last.Time {
		return fmt.Errorf("end time %d not after the last fragment's %d", ix.EndTime, last.Time)
	}
	return nil
}
