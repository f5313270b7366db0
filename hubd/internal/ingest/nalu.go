package ingest

import (
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// bitReader reads Exp-Golomb codes from the start of an RBSP.
type bitReader struct {
	b   []byte
	pos int // in bits
}

var errShort = errors.New("header truncated")

func (r *bitReader) bit() (uint32, error) {
	if r.pos >= len(r.b)*8 {
		return 0, errShort
	}
	v := uint32(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v, nil
}

func (r *bitReader) ue() (uint32, error) {
	zeros := 0
	for {
		b, err := r.bit()
		if err != nil {
			return 0, err
		}
		if b == 1 {
			break
		}
		zeros++
		if zeros > 31 {
			return 0, errors.New("Exp-Golomb code too long")
		}
	}
	v := uint32(0)
	for i := 0; i < zeros; i++ {
		b, err := r.bit()
		if err != nil {
			return 0, err
		}
		v = v<<1 | b
	}
	return v + (1 << zeros) - 1, nil
}

// CheckH264 rejects an access unit whose NAL units cannot be H.264: a
// forbidden bit, a reserved type, or a slice header that does not parse. We
// never decode, so this is the cheap guard that keeps line noise and broken
// packetisers out of recordings; the segment stays decodable.
func CheckH264(au [][]byte) error {
	if len(au) == 0 {
		return errors.New("empty access unit")
	}
	slices := 0
	for i, n := range au {
		if len(n) == 0 {
			return fmt.Errorf("NAL unit %d is empty", i)
		}
		if n[0]&0x80 != 0 {
			return fmt.Errorf("NAL unit %d has the forbidden bit set", i)
		}
		typ := h264.NALUType(n[0] & 0x1f)
		switch {
		case typ == 0 || (typ >= 24 && typ <= 31):
			return fmt.Errorf("NAL unit %d has unspecified type %d", i, typ)
		case typ == h264.NALUTypeNonIDR || typ == h264.NALUTypeIDR:
			slices++
			if err := checkH264Slice(n); err != nil {
				return fmt.Errorf("NAL unit %d (%v): %w", i, typ, err)
			}
		}
	}
	if slices == 0 {
		return errors.New("no slice in access unit")
	}
	return nil
}

func checkH264Slice(n []byte) error {
	r := bitReader{b: h264.EmulationPreventionRemove(n[1:min(len(n), 64)])}
	if _, err := r.ue(); err != nil { // first_mb_in_slice
		return err
	}
	st, err := r.ue()
	if err != nil {
		return err
	}
	if st > 9 {
		return fmt.Errorf("slice_type %d out of range", st)
	}
	pps, err := r.ue()
	if err != nil {
		return err
	}
	if pps > 255 {
		return fmt.Errorf("pic_parameter_set_id %d out of range", pps)
	}
	return nil
}

// CheckH265 is CheckH264 for H.265.
func CheckH265(au [][]byte) error {
	if len(au) == 0 {
		return errors.New("empty access unit")
	}
	slices := 0
	for i, n := range au {
		if len(n) < 2 {
			return fmt.Errorf("NAL unit %d is shorter than its header", i)
		}
		if n[0]&0x80 != 0 {
			return fmt.Errorf("NAL unit %d has the forbidden bit set", i)
		}
		if n[1]&0x07 == 0 {
			return fmt.Errorf("NAL unit %d has nuh_temporal_id_plus1 = 0", i)
		}
		typ := h265.NALUType((n[0] >> 1) & 0x3f)
		switch {
		case typ >= 41 && typ <= 47:
			return fmt.Errorf("NAL unit %d has reserved type %d", i, typ)
		case typ <= 31:
			slices++
			if typ >= 10 && typ <= 15 || typ >= 22 {
				return fmt.Errorf("NAL unit %d has reserved slice type %d", i, typ)
			}
			if err := checkH265Slice(n, typ); err != nil {
				return fmt.Errorf("NAL unit %d (%v): %w", i, typ, err)
			}
		}
	}
	if slices == 0 {
		return errors.New("no slice in access unit")
	}
	return nil
}

func checkH265Slice(n []byte, typ h265.NALUType) error {
	r := bitReader{b: h264.EmulationPreventionRemove(n[2:min(len(n), 64)])}
	if _, err := r.bit(); err != nil { // first_slice_segment_in_pic_flag
		return err
	}
	if typ >= 16 && typ <= 23 { // IRAP: no_output_of_prior_pics_flag
		if _, err := r.bit(); err != nil {
			return err
		}
	}
	pps, err := r.ue()
	if err != nil {
		return err
	}
	if pps > 63 {
		return fmt.Errorf("slice_pic_parameter_set_id %d out of range", pps)
	}
	return nil
}
