// Package segsynth writes fMP4 segments in hubd's format (one tfdt timeline
// across segments, a pkg/fragindex trailer) from an encoded clip, for relay
// tests and benchmarks that need hours of recordings without recording them.
package segsynth

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/zipnvr/zipnvr/pkg/fragindex"
	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

// clockRate is hubd's media clock (90 kHz, the RTP video clock).
const clockRate = 90000

// Options of a Writer; zero durations take hubd's defaults.
type Options struct {
	Clip  *fakecam.Clip // H.264; repeated as long as needed
	Start time.Time
	// SegmentDuration: a segment is cut at the first keyframe at or after it (default 30 s).
	SegmentDuration time.Duration
	// FragmentDuration: a fragment is flushed at each keyframe or after it (default 1 s).
	FragmentDuration time.Duration
}

// Segment is one segment file.
type Segment struct {
	Start, End time.Time
	Data       []byte
	Frames     int
	MD5        string // hex, as hubd's ring records it
}

// Writer makes consecutive segments of one stream.
type Writer struct {
	o     Options
	init  []byte
	frame int64 // next frame of the stream
	base  int64 // timeline of frame 0
	start time.Time
	seq   uint32
}

// New checks o and prepares the init section.
func New(o Options) (*Writer, error) {
	if o.Clip == nil || o.Clip.Codec != "h264" || len(o.Clip.AUs) == 0 || o.Clip.FPS <= 0 {
		return nil, errors.New("segsynth: an H.264 clip is required")
	}
	if o.SegmentDuration <= 0 {
		o.SegmentDuration = 30 * time.Second
	}
	if o.FragmentDuration <= 0 {
		o.FragmentDuration = time.Second
	}
	var sps, pps []byte
	for _, n := range o.Clip.AUs[0] {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
	}
	if sps == nil || pps == nil {
		return nil, errors.New("segsynth: the clip's first access unit has no SPS/PPS")
	}
	var buf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: clockRate, Codec: &codecs.H264{SPS: sps, PPS: pps}}}}
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("segsynth: init: %w", err)
	}
	w := &Writer{o: o, init: buf.Bytes(), start: o.Start}
	w.base = epochTicks(o.Start)
	w.seq = uint32(w.base / clockRate)
	return w, nil
}

func epochTicks(t time.Time) int64 {
	return t.Unix()*clockRate + int64(t.Nanosecond())*clockRate/int64(time.Second)
}

func (w *Writer) step() int64 { return clockRate / int64(w.o.Clip.FPS) }

func (w *Writer) au(i int64) [][]byte { return w.o.Clip.AUs[i%int64(len(w.o.Clip.AUs))] }

func (w *Writer) key(i int64) bool { return h264.IsRandomAccess(w.au(i)) }

// Skip leaves a gap of d: the camera was off; the stream restarts at the
// next keyframe on a timeline that jumps as the wall clock does.
func (w *Writer) Skip(d time.Duration) {
	for !w.key(w.frame) {
		w.frame++
	}
	w.start = w.start.Add(d)
	w.base += d.Nanoseconds() * clockRate / int64(time.Second)
}

// Next returns the next segment.
func (w *Writer) Next() (Segment, error) {
	for !w.key(w.frame) { // a segment starts with a keyframe
		w.frame++
	}
	step := w.step()
	first := w.frame
	data := append([]byte(nil), w.init...)
	var frags []fragindex.Fragment
	var samples []*fmp4.Sample
	fragStart := first
	flush := func() error {
		if len(samples) == 0 {
			return nil
		}
		base := uint64(w.base + fragStart*step)
		var buf seekablebuffer.Buffer
		part := fmp4.Part{SequenceNumber: w.seq, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: base, Samples: samples}}}
		if err := part.Marshal(&buf); err != nil {
			return err
		}
		frags = append(frags, fragindex.Fragment{Offset: int64(len(data)), Time: base, Sync: !samples[0].IsNonSyncSample})
		data = append(data, buf.Bytes()...)
		w.seq++
		samples = nil
		return nil
	}
	for i := first; ; i++ {
		key := w.key(i)
		if i > first && key && time.Duration((i-first)*step)*time.Second/clockRate >= w.o.SegmentDuration {
			w.frame = i
			break
		}
		if i > first && (key || time.Duration((i-fragStart)*step)*time.Second/clockRate >= w.o.FragmentDuration) {
			if err := flush(); err != nil {
				return Segment{}, err
			}
			fragStart = i
		}
		samples = append(samples, &fmp4.Sample{Duration: uint32(step), IsNonSyncSample: !key, Payload: mustAVCC(w.au(i))})
	}
	if err := flush(); err != nil {
		return Segment{}, err
	}
	ix := fragindex.Index{Timescale: clockRate, InitSize: int64(len(w.init)), InitHash: fragindex.HashInit(w.init),
		EndTime: uint64(w.base + w.frame*step), DataEnd: int64(len(data)), Fragments: frags}
	data = append(data, ix.Marshal()...)
	sum := md5.Sum(data)
	seg := Segment{
		Start:  w.start.Add(time.Duration(first*step) * time.Second / clockRate).Truncate(time.Millisecond),
		End:    w.start.Add(time.Duration(w.frame*step) * time.Second / clockRate).Truncate(time.Millisecond),
		Data:   data,
		Frames: int(w.frame - first),
		MD5:    hex.EncodeToString(sum[:]),
	}
	return seg, nil
}

// mustAVCC is the access unit in AVCC form (H.264 and H.265 alike);
// mediacommon's Marshal cannot fail.
func mustAVCC(au [][]byte) []byte {
	b, _ := h264.AVCC(au).Marshal()
	return b
}
