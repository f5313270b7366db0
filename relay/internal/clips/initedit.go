package clips

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	amp4 "github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// A clip's fragments carry the camera's timeline as it is: tfdt counts
// 90 kHz ticks since the Unix epoch (hubd/internal/segment), so a clip
// would start at about 1.8e9 s and a player would show a position of half
// a million hours. Segments keep that timeline (it is what lets a clip
// join them by copying bytes); the clip's own init section says where the
// clip starts and how long it lasts. Relay reads the first recording's
// init section (ftyp+moov, under 1 KiB of metadata), writes a copy with
//
//   - an edit list (moov/trak/edts/elst, version 1, one edit): media_time =
//     the first sample's presentation time on the track's timeline,
//     segment_duration = the clip's media duration in the movie timescale,
//     rate 1, so players present the clip from 0;
//   - mvhd, tkhd and mdhd durations, and an mvex/mehd fragment_duration,
//     which players read as the length of a fragmented file;
//
// and the clip starts with that copy instead of the original: one more
// small piece for the scratch chain, like the rewritten head of the end
// cut. Every other box is copied byte for byte. The boxes are read and
// written with go-mp4 (the box library mediacommon uses); the init must
// be what hubd writes: an ftyp and a moov of one video track (H.264,
// H.265 or MJPEG, as mediacommon parses it) whose timescale is the one of
// the fragment index, with one mvhd, tkhd, mdhd and mvex. Anything else
// is refused with errInitEdit, and the clip keeps the original init
// (playable, on the camera's clock; logged and counted).

// maxInitBytes bounds the init section relay reads and rewrites (hubd's
// are under 1 KiB; H.265 parameter sets can make them a few KiB).
const maxInitBytes = 64 << 10

// errInitEdit: the init section is not one relay can rewrite.
var errInitEdit = errors.New("init section cannot be rewritten")

// initEdit is what a clip's init section is to say.
type initEdit struct {
	timescale uint32 // of the track, as the fragment index says
	mediaTime uint64 // track ticks: the first sample's presentation time
	duration  uint64 // track ticks: the clip's media duration
}

// rewriteInit returns init (ftyp+moov) with e's edit list and durations.
func rewriteInit(init []byte, e initEdit) (out []byte, err error) {
	bad := func(format string, a ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w: %s", errInitEdit, fmt.Sprintf(format, a...))
	}
	defer func() {
		// The box library trusts sizes and counts: whatever it trips on
		// in a hub's bytes is a refusal, never a crash of relay.
		if r := recover(); r != nil {
			out, err = bad("parse: %v", r)
		}
	}()
	switch {
	case len(init) == 0 || len(init) > maxInitBytes:
		return bad("%d bytes", len(init))
	case e.timescale == 0 || e.duration == 0:
		return bad("timescale %d, duration %d", e.timescale, e.duration)
	case e.mediaTime > math.MaxInt64:
		return bad("media time %d", e.mediaTime)
	}
	// An ftyp and a moov, and nothing else: the box library does not
	// check that a box at the top ends where the input does.
	ftyp, _ := boxAt(init, 0)
	moov, _ := boxAt(init, ftyp.size)
	if ftyp.typ != "ftyp" || ftyp.size < 8 || moov.typ != "moov" || moov.size < 8 || ftyp.size+moov.size != int64(len(init)) {
		return bad("want an ftyp and a moov box filling %d bytes", len(init))
	}
	if err := checkInit(init, e.timescale); err != nil {
		return bad("%v", err)
	}
	w := &initWriter{e: e, in: bytes.NewReader(init)}
	w.w = amp4.NewWriter(&w.buf)
	if _, err := amp4.ReadBoxStructure(w.in, w.box); err != nil {
		return bad("%v", err)
	}
	if err := w.complete(); err != nil {
		return bad("%v", err)
	}
	out = w.buf.Bytes()
	if len(out) > maxInitBytes {
		return bad("rewritten to %d bytes", len(out))
	}
	// What was written must still be an init section of the same track.
	if err := checkInit(out, e.timescale); err != nil {
		return bad("rewritten: %v", err)
	}
	return out, nil
}

// checkInit: b is an init section of one video track of a codec hubd
// records, at timescale.
func checkInit(b []byte, timescale uint32) error {
	var in fmp4.Init
	if err := in.Unmarshal(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if len(in.Tracks) != 1 {
		return fmt.Errorf("%d tracks, want 1", len(in.Tracks))
	}
	tr := in.Tracks[0]
	switch tr.Codec.(type) {
	case *codecs.H264, *codecs.H265, *codecs.MJPEG:
	default:
		return fmt.Errorf("codec %T is not one hubd records", tr.Codec)
	}
	if tr.TimeScale != timescale {
		return fmt.Errorf("track timescale %d, the fragment index says %d", tr.TimeScale, timescale)
	}
	return nil
}

// initWriter copies an init section box by box, rewriting the few that
// carry durations and adding the edit list and mehd.
type initWriter struct {
	e   initEdit
	in  *bytes.Reader
	buf seekablebuffer.Buffer
	w   *amp4.Writer

	movieDur uint64         // e.duration in mvhd's timescale (mvhd comes before trak and mvex)
	seen     map[string]int // boxes read, by path
}

// The boxes read, by path: each must be there exactly once.
var initBoxes = []string{"ftyp", "moov", "moov/mvhd", "moov/trak", "moov/trak/tkhd",
	"moov/trak/mdia", "moov/trak/mdia/mdhd", "moov/mvex"}

func (w *initWriter) complete() error {
	for _, k := range initBoxes {
		if n := w.seen[k]; n != 1 {
			return fmt.Errorf("%d %s boxes, want 1", n, k)
		}
	}
	return nil
}

func (w *initWriter) box(h *amp4.ReadHandle) (any, error) {
	path := ""
	for i, t := range h.Path {
		if i > 0 {
			path += "/"
		}
		path += t.String()
	}
	if w.seen == nil {
		w.seen = map[string]int{}
	}
	w.seen[path]++
	if w.seen[path] > 1 && slices.Contains(initBoxes, path) {
		return nil, fmt.Errorf("a second %s box", path) // a second trak would need its own edit
	}
	switch path {
	case "ftyp":
	case "moov", "moov/trak", "moov/trak/mdia":
		return w.container(h, nil)
	case "moov/mvex":
		if w.movieDur == 0 {
			return nil, errors.New("mvex before mvhd")
		}
		return w.container(h, w.writeMehd)
	case "moov/mvhd":
		return nil, w.rewrite(h, func(b amp4.IBox) error {
			mvhd, ok := b.(*amp4.Mvhd)
			if !ok || mvhd.Timescale == 0 {
				return errors.New("mvhd without timescale")
			}
			d, err := rescale(w.e.duration, mvhd.Timescale, w.e.timescale)
			if err != nil {
				return err
			}
			w.movieDur = max(d, 1)
			if w.movieDur > math.MaxUint32 && mvhd.Version == 0 {
				mvhd.Version = 1
				mvhd.CreationTimeV1, mvhd.ModificationTimeV1 = uint64(mvhd.CreationTimeV0), uint64(mvhd.ModificationTimeV0)
			}
			mvhd.DurationV0, mvhd.DurationV1 = uint32(w.movieDur), w.movieDur
			return nil
		})
	case "moov/trak/tkhd":
		if w.movieDur == 0 {
			return nil, errors.New("trak before mvhd")
		}
		err := w.rewrite(h, func(b amp4.IBox) error {
			tkhd, ok := b.(*amp4.Tkhd)
			if !ok {
				return errors.New("bad tkhd")
			}
			if w.movieDur > math.MaxUint32 && tkhd.Version == 0 {
				tkhd.Version = 1
				tkhd.CreationTimeV1, tkhd.ModificationTimeV1 = uint64(tkhd.CreationTimeV0), uint64(tkhd.ModificationTimeV0)
			}
			tkhd.DurationV0, tkhd.DurationV1 = uint32(w.movieDur), w.movieDur
			return nil
		})
		if err != nil {
			return nil, err
		}
		// The edit list goes right after tkhd (ISO/IEC 14496-12 order).
		return nil, w.writeEdts()
	case "moov/trak/edts", "moov/mvex/mehd":
		return nil, nil // replaced by the ones written after tkhd and first in mvex
	case "moov/trak/mdia/mdhd":
		return nil, w.rewrite(h, func(b amp4.IBox) error {
			mdhd, ok := b.(*amp4.Mdhd)
			if !ok || mdhd.Timescale != w.e.timescale {
				return errors.New("mdhd timescale is not the fragment index's")
			}
			d := w.e.duration
			if d > math.MaxUint32 && mdhd.Version == 0 {
				mdhd.Version = 1
				mdhd.CreationTimeV1, mdhd.ModificationTimeV1 = uint64(mdhd.CreationTimeV0), uint64(mdhd.ModificationTimeV0)
			}
			mdhd.DurationV0, mdhd.DurationV1 = uint32(d), d
			return nil
		})
	default:
		if len(h.Path) == 1 {
			return nil, fmt.Errorf("a %s box beside ftyp and moov", path)
		}
	}
	return nil, w.w.CopyBox(w.in, &h.BoxInfo)
}

// container copies a box's header, then first (when not nil), then its
// children through w.box, and fixes its size.
func (w *initWriter) container(h *amp4.ReadHandle, first func() error) (any, error) {
	if _, err := w.w.StartBox(&amp4.BoxInfo{Type: h.BoxInfo.Type}); err != nil {
		return nil, err
	}
	if first != nil {
		if err := first(); err != nil {
			return nil, err
		}
	}
	if _, err := h.Expand(); err != nil {
		return nil, err
	}
	_, err := w.w.EndBox()
	return nil, err
}

// rewrite reads a full box, lets edit change it, and writes it.
func (w *initWriter) rewrite(h *amp4.ReadHandle, edit func(amp4.IBox) error) error {
	b, _, err := h.ReadPayload()
	if err != nil {
		return err
	}
	if err := edit(b); err != nil {
		return err
	}
	if _, err := w.w.StartBox(&amp4.BoxInfo{Type: h.BoxInfo.Type}); err != nil {
		return err
	}
	if _, err := amp4.Marshal(w.w, b, h.BoxInfo.Context); err != nil {
		return err
	}
	_, err = w.w.EndBox()
	return err
}

func (w *initWriter) writeEdts() error {
	if _, err := w.w.StartBox(&amp4.BoxInfo{Type: amp4.BoxTypeEdts()}); err != nil {
		return err
	}
	elst := &amp4.Elst{
		FullBox:    amp4.FullBox{Version: 1},
		EntryCount: 1,
		Entries: []amp4.ElstEntry{{
			SegmentDurationV1: w.movieDur,
			MediaTimeV1:       int64(w.e.mediaTime),
			MediaRateInteger:  1,
		}},
	}
	if err := w.writeBox(elst); err != nil {
		return err
	}
	_, err := w.w.EndBox()
	return err
}

func (w *initWriter) writeMehd() error {
	return w.writeBox(&amp4.Mehd{FullBox: amp4.FullBox{Version: 1}, FragmentDurationV1: w.movieDur})
}

func (w *initWriter) writeBox(b amp4.IBox) error {
	if _, err := w.w.StartBox(&amp4.BoxInfo{Type: b.GetType()}); err != nil {
		return err
	}
	if _, err := amp4.Marshal(w.w, b, amp4.Context{}); err != nil {
		return err
	}
	_, err := w.w.EndBox()
	return err
}

// rescale converts d ticks of scale from to scale to, rounding up (an
// edit a fraction of a tick short would hide the end of the last frame).
func rescale(d uint64, to, from uint32) (uint64, error) {
	hi, lo := bits.Mul64(d, uint64(to))
	lo, carry := bits.Add64(lo, uint64(from)-1, 0)
	hi += carry
	if hi >= uint64(from) {
		return 0, fmt.Errorf("duration %d/%d overflows timescale %d", d, from, to)
	}
	q, _ := bits.Div64(hi, lo, uint64(from))
	return q, nil
}
