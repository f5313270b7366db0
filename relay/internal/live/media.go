package live

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/rtp"

	"github.com/zipnvr/zipnvr/pkg/proto"
)

// trackInfo is one camera session: codec and parameter sets. Frames of a
// new track are on a new timeline.
type trackInfo struct {
	codec         string
	vps, sps, pps []byte
	width, height int
	n             int // 1, 2, ... per stream
	based         bool
	base          int64 // DTS of the track's first frame (fMP4 times start near 0)

	mseOnce sync.Once
	mseInit []byte
	mseType string // MIME type with codecs= for MediaSource.isTypeSupported
	mseErr  error
}

func newTrack(m proto.StreamMessage) (*trackInfo, error) {
	t := &trackInfo{codec: m.Codec, vps: m.VPS, sps: m.SPS, pps: m.PPS, width: m.Width, height: m.Height}
	switch m.Codec {
	case proto.CodecH264:
		var sps h264.SPS
		if err := sps.Unmarshal(m.SPS); err != nil {
			return nil, fmt.Errorf("track: H.264 SPS: %w", err)
		}
		t.width, t.height = sps.Width(), sps.Height()
	case proto.CodecH265:
		var sps h265.SPS
		if err := sps.Unmarshal(m.SPS); err != nil {
			return nil, fmt.Errorf("track: H.265 SPS: %w", err)
		}
		t.width, t.height = sps.Width(), sps.Height()
	}
	return t, nil
}

// profileLevelID is the H.264 profile-level-id for SDP, mapped onto the
// profiles browsers offer (they decode a stream's level regardless).
func (t *trackInfo) profileLevelID() string {
	if len(t.sps) < 4 {
		return "42e01f"
	}
	switch t.sps[1] {
	case 66:
		return "42e01f"
	case 77:
		return "4d001f"
	default:
		return "64001f"
	}
}

// mse returns the fMP4 init segment and its MIME type.
func (t *trackInfo) mse() ([]byte, string, error) {
	t.mseOnce.Do(func() {
		var c codecs.Codec
		switch t.codec {
		case proto.CodecH264:
			c = &codecs.H264{SPS: t.sps, PPS: t.pps}
			t.mseType = fmt.Sprintf(`video/mp4; codecs="avc1.%02x%02x%02x"`, t.sps[1], t.sps[2], t.sps[3])
		case proto.CodecH265:
			c = &codecs.H265{VPS: t.vps, SPS: t.sps, PPS: t.pps}
			var sps h265.SPS
			if err := sps.Unmarshal(t.sps); err != nil {
				t.mseErr = err
				return
			}
			t.mseType = `video/mp4; codecs="` + hvcCodec(sps.ProfileTierLevel) + `"`
		default:
			t.mseErr = fmt.Errorf("%s cannot go to Media Source Extensions", t.codec)
			return
		}
		var buf seekablebuffer.Buffer
		init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000, Codec: c}}}
		if err := init.Marshal(&buf); err != nil {
			t.mseErr = fmt.Errorf("fMP4 init: %w", err)
			return
		}
		t.mseInit = buf.Bytes()
	})
	return t.mseInit, t.mseType, t.mseErr
}

// hvcCodec is the RFC 6381 codecs parameter of an H.265 stream (ISO/IEC
// 14496-15 annex E): hvc1.<space><profile>.<compat>.<tier><level>.<constraints>.
func hvcCodec(p h265.SPS_ProfileTierLevel) string {
	space := ""
	if p.GeneralProfileSpace > 0 && p.GeneralProfileSpace < 4 {
		space = string(rune('A' + p.GeneralProfileSpace - 1))
	}
	var compat uint32
	for i, f := range p.GeneralProfileCompatibilityFlag {
		if f {
			compat |= 1 << i // reversed bit order: flag j is bit j of the value
		}
	}
	tier := "L"
	if p.GeneralTierFlag != 0 {
		tier = "H"
	}
	var cons byte
	for i, f := range []bool{p.GeneralProgressiveSourceFlag, p.GeneralInterlacedSourceFlag,
		p.GeneralNonPackedConstraintFlag, p.GeneralFrameOnlyConstraintFlag} {
		if f {
			cons |= 0x80 >> i
		}
	}
	s := fmt.Sprintf("hvc1.%s%d.%X.%s%d", space, p.GeneralProfileIdc, compat, tier, p.GeneralLevelIdc)
	if cons != 0 {
		s += fmt.Sprintf(".%X", cons)
	}
	return s
}

// frame is one access unit as relay received it; shared read-only by every
// viewer. Derived forms (RTP packets, fMP4 fragment) are made once, on
// first use.
type frame struct {
	track    *trackInfo
	dts, pts int64
	duration int64
	key      bool
	received time.Time // at the hub, from the camera (hub clock)
	arrived  time.Time // at relay
	payload  []byte    // AVCC or JPEG
	nalus    [][]byte
	seq      uint32

	rtpOnce sync.Once
	rtp     []*rtp.Packet // payload and marker only; each viewer sets its header
	rtpErr  error

	fragOnce sync.Once
	frag     []byte
	fragErr  error
}

// packets returns f packetized for WebRTC, made once per stream.
func (f *frame) packets(st *stream) ([]*rtp.Packet, error) {
	f.rtpOnce.Do(func() {
		st.packMu.Lock()
		defer st.packMu.Unlock()
		if st.pack == nil {
			st.pack = &packetizer{}
		}
		f.rtp, f.rtpErr = st.pack.encode(f.nalus)
	})
	return f.rtp, f.rtpErr
}

// rtpPayload leaves room in a 1200-byte packet (what WebRTC stacks assume
// fits any path) for the RTP header, extensions and the SRTP tag.
const rtpPayload = 1100

type packetizer struct {
	enc *rtph264.Encoder
}

func (p *packetizer) encode(nalus [][]byte) ([]*rtp.Packet, error) {
	if p.enc == nil {
		p.enc = &rtph264.Encoder{PayloadType: 96, PayloadMaxSize: rtpPayload, PacketizationMode: 1}
		if err := p.enc.Init(); err != nil {
			return nil, err
		}
	}
	// Access unit delimiters and SEI are of no use to a browser's decoder.
	keep := make([][]byte, 0, len(nalus))
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
			continue
		}
		keep = append(keep, n)
	}
	if len(keep) == 0 {
		return nil, nil
	}
	return p.enc.Encode(keep)
}

// fragment returns f as one fMP4 fragment (moof+mdat) on its track's
// timeline, made once for every MSE viewer.
func (f *frame) fragment() ([]byte, error) {
	f.fragOnce.Do(func() {
		base := f.dts - f.track.base + 90000 // > 0 even if DTS dips below the first
		if base < 0 {
			base = 0
		}
		part := fmp4.Part{SequenceNumber: f.seq, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: uint64(base),
			Samples: []*fmp4.Sample{{Duration: uint32(f.duration), PTSOffset: int32(f.pts - f.dts),
				IsNonSyncSample: !f.key, Payload: f.payload}}}}}
		var buf seekablebuffer.Buffer
		if err := part.Marshal(&buf); err != nil {
			f.fragErr = fmt.Errorf("fMP4 fragment: %w", err)
			return
		}
		f.frag = buf.Bytes()
	})
	return f.frag, f.fragErr
}

// codecLabel is how the page names a codec.
func codecLabel(c string) string { return strings.ToUpper(strings.Replace(c, "h26", "H.26", 1)) }
