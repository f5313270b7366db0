package clips

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// A clip ends exactly at its end, not at the end of the fragment holding
// it: the last fragment is cut after its last sample that decodes before
// end. Its samples lie in its mdat in decode order, one after the other,
// so the cut fragment is [a rewritten moof and mdat header] + [a prefix of
// the original mdat payload]. Relay reads only the moof (metadata, a few
// hundred bytes), writes the new head as a small object, and the object
// store copies the payload prefix like any other piece.
//
// The moof is parsed and written with mediacommon's fmp4 types, the ones
// hubd's segmenter writes with. They carry the sample payloads (Unmarshal
// slices them out of the mdat, Marshal writes them), which relay must not
// read: the payload is stood in for by zeros, of which only the sizes
// matter. And a moof is cut only if it is exactly what mediacommon writes
// for its samples (marshalling what was parsed gives back every byte of
// the moof and mdat header): then it has one track and one trun, its
// data_offset counts from the moof (default-base-is-moof) to right after
// the mdat header, and its samples fill the mdat in order, so dropping the
// trailing samples and shortening the boxes leaves a valid fragment.
// Anything else is refused with an error and the caller keeps the whole
// fragment: a clip up to one fragment longer, never a broken file.

// maxCutPayload bounds the stand-in payload a cut allocates (a 1 s
// fragment of 50 Mbit/s video is about 6 MB).
const maxCutPayload = 64 << 20

// maxMoofBytes bounds the moof relay reads (mediacommon refuses truns of
// more than 19200 samples, 16 bytes each).
const maxMoofBytes = 512 << 10

// fragmentCut is a fragment cut after its first samples.
type fragmentCut struct {
	moofSize int64  // of the original moof; its payload starts at moofSize+8
	mdatSize int64  // of the original mdat, header included
	head     []byte // the new moof and mdat header
	dataLen  int64  // bytes of the kept samples: the prefix of the original payload
	kept     int    // samples kept ...
	samples  int    // ... of the fragment's
	end      uint64 // decode time just after the last kept sample
}

// errCutHead: the fragment head is not one relay can cut.
var errCutHead = errors.New("fragment head cannot be cut")

// moofSize reads the size of the moof box that starts a fragment from its
// first 8 bytes.
func moofSize(hdr []byte) (int64, error) {
	if len(hdr) < 8 || string(hdr[4:8]) != "moof" {
		return 0, fmt.Errorf("%w: no moof box header", errCutHead)
	}
	n := int64(binary.BigEndian.Uint32(hdr))
	if n < 16 || n > maxMoofBytes {
		return 0, fmt.Errorf("%w: moof of %d bytes", errCutHead, n)
	}
	return n, nil
}

// cutFragment cuts the fragment whose head (its moof box, then the 8-byte
// header of its mdat) is head, after the last sample decoding before
// `before` (timeline ticks): samples with decode time < before stay, so
// the fragment covers the range [.., before) and at most one frame past
// it. kept == samples means nothing needs cutting (head is then the
// original). At least one sample must stay.
func cutFragment(head []byte, before uint64) (fragmentCut, error) {
	return cutFragmentMax(head, before, maxCutPayload)
}

func cutFragmentMax(head []byte, before uint64, maxPayload int64) (fc fragmentCut, err error) {
	bad := func(format string, a ...any) (fragmentCut, error) {
		return fragmentCut{}, fmt.Errorf("%w: %s", errCutHead, fmt.Sprintf(format, a...))
	}
	defer func() {
		// The box library trusts sizes more than a hub deserves: whatever
		// it trips on is a refusal, never a crash of relay.
		if r := recover(); r != nil {
			fc, err = bad("parse: %v", r)
		}
	}()
	m, err := moofSize(head)
	if err != nil {
		return fc, err
	}
	if int64(len(head)) != m+8 || string(head[m+4:m+8]) != "mdat" {
		return bad("%d bytes, want a moof of %d and an mdat header", len(head), m)
	}
	mdat := int64(binary.BigEndian.Uint32(head[m:]))
	if mdat < 8+1 || mdat-8 > maxPayload {
		return bad("mdat of %d bytes", mdat) // 0 (to the end), 1 (64-bit size), empty or oversized
	}
	// The moof with stand-in payload: mediacommon reads the sample sizes
	// against it, no byte of it is looked at.
	buf := make([]byte, m+mdat)
	copy(buf, head)
	var parts fmp4.Parts
	if err := parts.Unmarshal(buf); err != nil {
		return bad("parse: %v", err)
	}
	if len(parts) != 1 || len(parts[0].Tracks) != 1 || len(parts[0].Tracks[0].Samples) == 0 {
		return bad("want one fragment of one track with samples")
	}
	part := parts[0]
	track := part.Tracks[0]
	// Only a moof in the very form mediacommon writes is cut (see above).
	full, err := marshalHead(part)
	if err != nil {
		return bad("marshal: %v", err)
	}
	if !bytes.Equal(full, head) {
		return bad("not in the layout hubd writes (one trun, data right after the mdat header, samples filling the mdat)")
	}
	fc = fragmentCut{moofSize: m, mdatSize: mdat, samples: len(track.Samples), end: track.BaseTime}
	if track.BaseTime >= before {
		return bad("the first sample decodes at %d, not before %d", track.BaseTime, before)
	}
	for _, s := range track.Samples {
		if fc.end >= before {
			break
		}
		fc.end += uint64(s.Duration)
		fc.dataLen += int64(len(s.Payload))
		fc.kept++
	}
	if fc.kept == fc.samples {
		fc.head = head
		return fc, nil
	}
	cut := *part
	cut.Tracks = []*fmp4.PartTrack{{ID: track.ID, BaseTime: track.BaseTime, Samples: track.Samples[:fc.kept]}}
	if fc.head, err = marshalHead(&cut); err != nil {
		return bad("marshal the cut: %v", err)
	}
	return fc, nil
}

// marshalHead writes p and returns its moof and mdat header.
func marshalHead(p *fmp4.Part) ([]byte, error) {
	var buf seekablebuffer.Buffer
	if err := p.Marshal(&buf); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	m, err := moofSize(b)
	if err != nil || int64(len(b)) < m+8 {
		return nil, fmt.Errorf("marshalled fragment without moof and mdat: %v", err)
	}
	return b[:m+8], nil
}
