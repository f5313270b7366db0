package fakecam

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// Clip is a pre-encoded elementary stream split into access units.
type Clip struct {
	Codec string     // "h264" or "h265"
	FPS   int        // frames per second the clip was encoded for
	AUs   [][][]byte // access units, each a list of NAL units without start codes; AUs[0] is a keyframe carrying the parameter sets
	GOP   int        // frames between keyframes
}

// ClipOptions selects what EncodeClip produces. Zero fields take the defaults:
// h264, 1280x720, 25 fps, 4 s, GOP 50, 2000 kbit/s (the shape of a typical
// camera main stream, and of the gst-rtsp-server peer in /work/shared/peers.md).
type ClipOptions struct {
	Codec         string
	Width, Height int
	FPS           int
	Seconds       int
	GOP           int
	BitrateKbps   int
}

func (o ClipOptions) withDefaults() ClipOptions {
	if o.Codec == "" {
		o.Codec = "h264"
	}
	if o.Width == 0 {
		o.Width = 1280
	}
	if o.Height == 0 {
		o.Height = 720
	}
	if o.FPS == 0 {
		o.FPS = 25
	}
	if o.Seconds == 0 {
		o.Seconds = 4
	}
	if o.GOP == 0 {
		o.GOP = 50
	}
	if o.BitrateKbps == 0 {
		o.BitrateKbps = 2000
	}
	return o
}

type clipEntry struct {
	done chan struct{}
	clip *Clip
	err  error
}

var (
	clipCacheMu sync.Mutex
	clipCache   = map[ClipOptions]*clipEntry{}
)

// EncodeClip encodes a testsrc2 clip with ffmpeg (once per process for the
// same options: tests and benchmarks start many servers from one clip, and
// encoding dominates their start-up time).
func EncodeClip(ctx context.Context, o ClipOptions) (*Clip, error) {
	o = o.withDefaults()
	if o.Codec != "h264" && o.Codec != "h265" {
		return nil, fmt.Errorf("fakecam: unsupported codec %q (want h264 or h265)", o.Codec)
	}
	if o.Width <= 0 || o.Height <= 0 || o.FPS <= 0 || o.Seconds <= 0 || o.GOP <= 0 || o.BitrateKbps <= 0 {
		return nil, fmt.Errorf("fakecam: invalid clip options %+v", o)
	}

	for {
		clipCacheMu.Lock()
		e, ok := clipCache[o]
		if !ok {
			e = &clipEntry{done: make(chan struct{})}
			clipCache[o] = e
			clipCacheMu.Unlock()

			e.clip, e.err = encodeClip(ctx, o)
			if e.err != nil {
				// Failures are not cached: the usual cause is a cancelled
				// context, and the next caller may well have a live one.
				clipCacheMu.Lock()
				delete(clipCache, o)
				clipCacheMu.Unlock()
			}
			close(e.done)
			return e.clip, e.err
		}
		clipCacheMu.Unlock()

		select {
		case <-e.done:
			if e.err == nil {
				return e.clip, nil
			}
			// The encoder we waited for failed (maybe only its context was
			// cancelled): try again on our own context.
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func encodeClip(ctx context.Context, o ClipOptions) (*Clip, error) {
	args := []string{
		"-hide_banner", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", o.Width, o.Height, o.FPS),
		"-t", strconv.Itoa(o.Seconds),
		"-pix_fmt", "yuv420p",
	}
	gop := strconv.Itoa(o.GOP)
	rate := strconv.Itoa(o.BitrateKbps) + "k"
	switch o.Codec {
	case "h264":
		// -threads 1: with zerolatency, x264 otherwise uses one slice per
		// thread, so the clip's shape would depend on the machine's core count.
		args = append(args, "-c:v", "libx264", "-threads", "1",
			"-preset", "superfast", "-tune", "zerolatency", "-profile:v", "main",
			"-b:v", rate, "-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-bf", "0",
			"-f", "h264", "pipe:1")
	case "h265":
		// libx265 ignores -sc_threshold; open-gop=0 makes every keyframe an
		// IDR rather than a CRA, like cameras do.
		args = append(args, "-c:v", "libx265",
			"-preset", "superfast", "-tune", "zerolatency", "-profile:v", "main",
			"-b:v", rate, "-g", gop, "-keyint_min", gop, "-bf", "0",
			"-x265-params", "scenecut=0:open-gop=0:bframes=0:pools=1:frame-threads=1:log-level=error",
			"-f", "hevc", "pipe:1")
	}

	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("fakecam: ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}

	aus, err := splitAccessUnits(o.Codec, out)
	if err != nil {
		return nil, err
	}
	return &Clip{Codec: o.Codec, FPS: o.FPS, AUs: aus, GOP: o.GOP}, nil
}

// splitNALUs cuts an Annex-B byte stream at its start codes.
// mediacommon's h264.AnnexB.Unmarshal does the same for a single access unit
// but refuses more than 50 NAL units per call, so it cannot take a whole
// stream; this is the same scan without the cap.
func splitNALUs(buf []byte) ([][]byte, error) {
	var nalus [][]byte
	start := -1
	i := 0
	for i+2 < len(buf) {
		if buf[i] == 0 && buf[i+1] == 0 && buf[i+2] == 1 {
			if start >= 0 {
				nalus = appendNALU(nalus, buf[start:i])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start < 0 {
		return nil, h264.ErrAnnexBNoInitialDelimiter
	}
	nalus = appendNALU(nalus, buf[start:])
	if len(nalus) == 0 {
		return nil, h264.ErrAnnexBNoNALUs
	}
	return nalus, nil
}

func appendNALU(nalus [][]byte, n []byte) [][]byte {
	// Zeros before a start code are the leading byte of a 4-byte start code
	// or trailing_zero_8bits; a NAL unit never ends in 0x00.
	for len(n) > 0 && n[len(n)-1] == 0 {
		n = n[:len(n)-1]
	}
	if len(n) == 0 {
		return nalus
	}
	return append(nalus, n)
}

// splitAccessUnits groups NAL units into access units (H.264 7.4.1.2.3,
// H.265 7.4.2.4.4): a new one starts at the first slice of a picture or at a
// parameter set / AUD / SEI that follows a slice. Parameter sets are also
// copied in front of every later keyframe, because cameras repeat them there
// and receivers that join mid-stream rely on it.
func splitAccessUnits(codec string, stream []byte) ([][][]byte, error) {
	nalus, err := splitNALUs(stream)
	if err != nil {
		return nil, err
	}

	var (
		aus    [][][]byte
		cur    [][]byte
		hasVCL bool
	)
	flush := func() {
		if len(cur) > 0 {
			aus = append(aus, cur)
		}
		cur = nil
		hasVCL = false
	}
	for _, n := range nalus {
		vcl, firstSlice, startsAU := classifyNALU(codec, n)
		switch {
		case vcl && firstSlice && hasVCL:
			flush()
		case !vcl && startsAU && hasVCL:
			flush()
		}
		cur = append(cur, n)
		if vcl {
			hasVCL = true
		}
	}
	flush()

	if len(aus) == 0 || !isKeyframe(codec, aus[0]) {
		return nil, errors.New("fakecam: clip does not start with a keyframe")
	}
	params := paramSets(codec, aus[0])
	if len(params) == 0 {
		return nil, errors.New("fakecam: first access unit has no parameter sets")
	}
	for i, au := range aus {
		if i > 0 && isKeyframe(codec, au) && len(paramSets(codec, au)) == 0 {
			aus[i] = append(append([][]byte{}, params...), au...)
		}
	}
	return aus, nil
}

// classifyNALU reports whether n is a slice, whether it is the first slice of
// its picture, and (for non-slices) whether it may only appear at the start
// of an access unit.
func classifyNALU(codec string, n []byte) (vcl, firstSlice, startsAU bool) {
	if codec == "h265" {
		if len(n) < 2 {
			return false, false, false
		}
		typ := h265.NALUType((n[0] >> 1) & 0x3f)
		if typ <= 31 {
			return true, len(n) > 2 && n[2]&0x80 != 0, false
		}
		switch {
		case typ >= h265.NALUType_VPS_NUT && typ <= h265.NALUType_AUD_NUT,
			typ == h265.NALUType_PREFIX_SEI_NUT,
			typ >= 41 && typ <= 44, typ >= 48 && typ <= 55:
			return false, false, true
		}
		return false, false, false
	}

	typ := h264.NALUType(n[0] & 0x1f)
	switch typ {
	case h264.NALUTypeNonIDR, h264.NALUTypeIDR:
		// first_mb_in_slice is the first ue(v) of the slice header: 0 is
		// coded as a single 1 bit.
		return true, len(n) > 1 && n[1]&0x80 != 0, false
	case h264.NALUTypeSEI, h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeAccessUnitDelimiter:
		return false, false, true
	}
	return false, false, typ >= 14 && typ <= 18
}

func isKeyframe(codec string, au [][]byte) bool {
	if codec == "h265" {
		return h265.IsRandomAccess(au)
	}
	return h264.IsRandomAccess(au)
}

// paramSets returns the VPS/SPS/PPS of au, in stream order.
func paramSets(codec string, au [][]byte) [][]byte {
	var out [][]byte
	for _, n := range au {
		if isParamSet(codec, n) {
			out = append(out, n)
		}
	}
	return out
}

func isParamSet(codec string, n []byte) bool {
	if codec == "h265" {
		typ := h265.NALUType((n[0] >> 1) & 0x3f)
		return typ == h265.NALUType_VPS_NUT || typ == h265.NALUType_SPS_NUT || typ == h265.NALUType_PPS_NUT
	}
	typ := h264.NALUType(n[0] & 0x1f)
	return typ == h264.NALUTypeSPS || typ == h264.NALUTypePPS
}

// findParam returns the first NAL unit of the given type in au.
func findParam(codec string, au [][]byte, typ uint8) []byte {
	for _, n := range au {
		if codec == "h265" {
			if (n[0]>>1)&0x3f == typ {
				return n
			}
		} else if n[0]&0x1f == typ {
			return n
		}
	}
	return nil
}

// isSlice reports whether n carries picture data (the part CorruptNext
// scrambles).
func isSlice(codec string, n []byte) bool {
	vcl, _, _ := classifyNALU(codec, n)
	return vcl
}

func naluHeaderLen(codec string) int {
	if codec == "h265" {
		return 2
	}
	return 1
}
