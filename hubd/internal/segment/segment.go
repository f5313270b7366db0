// Package segment remuxes a camera's access units, never decoding them, into
// fMP4 segment files: cut on keyframes, one fragment per GOP or finer.
package segment

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/pkg/fragindex"
)

// File is a segment being written; the ring implements it.
type File interface {
	io.Writer
	Sync() error
	// Commit closes a segment holding every frame written, ending at end.
	Commit(end time.Time, frames int) error
	// Abort discards a segment that holds nothing playable.
	Abort() error
}

// Store creates segment files.
type Store interface {
	Create(cameraID string, codec media.Codec, start time.Time) (File, error)
}

// Config of a Segmenter.
type Config struct {
	CameraID string
	Store    Store
	// SegmentDuration is the target length; a segment is cut at the first
	// keyframe at or after it.
	SegmentDuration time.Duration
	// FragmentDuration bounds a fragment: a crash loses at most the fragment in flight.
	FragmentDuration time.Duration
	// FsyncInterval bounds what a power loss can take from written fragments.
	FsyncInterval time.Duration
	// MaxFrameGap: a larger or negative step between two DTS is a discontinuity.
	MaxFrameGap time.Duration
	// MaxDrift: when the camera's clock and the hub's monotonic clock disagree
	// by more, wall-clock time is re-anchored at the next segment.
	MaxDrift time.Duration
	Logger   *slog.Logger
	// Now is the hub clock (time.Now when nil); tests step it.
	Now func() time.Time
}

// Counters are the segmenter's liveness figures, read concurrently by metrics.
type Counters struct {
	FramesIn        atomic.Uint64
	BytesIn         atomic.Uint64 // payload bytes of every frame received (the elementary stream)
	FramesDropped   atomic.Uint64 // before the first keyframe or without parameter sets
	Segments        atomic.Uint64
	Fragments       atomic.Uint64
	BytesWritten    atomic.Uint64
	Discontinuities atomic.Uint64
	LastFragment    atomic.Int64 // unix nanoseconds of the last fragment written
}

// Segmenter turns frames of one camera into segments. It is not safe for
// concurrent use: one goroutine per camera feeds it.
type Segmenter struct {
	cfg Config
	log *slog.Logger
	C   Counters

	track media.Track

	file      File
	segStart  int64     // DTS of the segment's first sample
	segWall   time.Time // wall-clock time of that sample
	segFrames int
	seq       uint32

	frag      []*fmp4.Sample
	fragStart int64
	pending   *media.Frame // last frame, waiting for the next to know its duration
	endDTS    int64        // end of the last sample added
	lastDelta int64
	lastSync  time.Time
	cutAtKey  bool // drift seen: cut at the next keyframe

	// wall-clock anchor: the hub time of a DTS, kept across segments of a session
	anchorSet  bool
	anchorWall time.Time
	anchorDTS  int64

	// The media timeline written as tfdt: continuous across the segments of
	// an unbroken stream, so that relay can join segments into one file by
	// copying bytes. It starts at the wall clock (in ClockRate ticks since
	// the Unix epoch) when the stream breaks, and never goes back.
	tlSet  bool
	tlDTS  int64 // a DTS of the current stream ...
	tlBase int64 // ... and its timeline position
	tlEnd  int64 // timeline end of the last sample written

	// The open segment's fragment index, written as its trailer on close.
	written  int64 // bytes written to the file
	initSize int64
	initHash [8]byte
	index    []fragindex.Fragment

	waitingSince time.Time // when frames started being dropped for want of a keyframe
	warnedWait   bool

	buf seekablebuffer.Buffer
}

// New returns a segmenter; call Start before the first frame of each session.
func New(cfg Config) *Segmenter {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Segmenter{cfg: cfg, log: cfg.Logger.With("camera", cfg.CameraID, "component", "segmenter")}
}

func ticks(d time.Duration) int64 { return int64(d) * media.ClockRate / int64(time.Second) }

// epochTicks is t in ClockRate ticks since the Unix epoch (no overflow:
// seconds and the fraction are scaled apart).
func epochTicks(t time.Time) int64 {
	return t.Unix()*media.ClockRate + int64(t.Nanosecond())*media.ClockRate/int64(time.Second)
}

// timeline maps a DTS of the current stream to the tfdt timeline.
func (s *Segmenter) timeline(dts int64) int64 { return s.tlBase + dts - s.tlDTS }

func dur(t int64) time.Duration { return time.Duration(t * int64(time.Second) / media.ClockRate) }

// Start begins a session (a connection to the camera): its timeline has
// nothing to do with the previous one, so the open segment is closed.
func (s *Segmenter) Start(t media.Track) error {
	err := s.finish("new session")
	s.track = t
	s.anchorSet, s.tlSet = false, false
	s.waitingSince = time.Time{}
	return err
}

// Close commits the open segment.
func (s *Segmenter) Close() error { return s.finish("stop") }

// Write adds one frame.
func (s *Segmenter) Write(f *media.Frame) error {
	s.C.FramesIn.Add(1)
	s.C.BytesIn.Add(uint64(f.Size()))
	if s.track.Codec == "" {
		s.C.FramesDropped.Add(1)
		return nil
	}
	if f.RandomAccess {
		if err := s.updateParams(f); err != nil {
			return err
		}
	}
	if s.file == nil {
		return s.startAt(f)
	}

	delta := f.DTS - s.pending.DTS
	if delta <= 0 || delta > ticks(s.cfg.MaxFrameGap) {
		s.C.Discontinuities.Add(1)
		s.log.Warn("timestamp discontinuity: closing segment", "step", dur(delta), "max_gap", s.cfg.MaxFrameGap)
		if err := s.finish("timestamp jump"); err != nil {
			return err
		}
		s.anchorSet, s.tlSet = false, false // the camera's timeline broke: its clock says nothing now
		return s.startAt(f)
	}
	s.lastDelta = delta
	s.addSample(s.pending, delta)
	s.pending = nil

	if f.RandomAccess && (s.cutAtKey || f.DTS-s.segStart >= ticks(s.cfg.SegmentDuration)) {
		if err := s.finish("duration reached"); err != nil {
			return err
		}
		return s.startAt(f)
	}
	s.pending = f
	if f.RandomAccess || f.DTS-s.fragStart >= ticks(s.cfg.FragmentDuration) {
		return s.flush()
	}
	return nil
}

// startAt opens a segment at f if f can start one, else drops f.
func (s *Segmenter) startAt(f *media.Frame) error {
	if !f.RandomAccess || !s.paramsReady() {
		s.C.FramesDropped.Add(1)
		now := s.cfg.Now()
		if s.waitingSince.IsZero() {
			s.waitingSince = now
		} else if !s.warnedWait && now.Sub(s.waitingSince) > 10*time.Second {
			s.log.Warn("no keyframe with parameter sets yet: dropping frames until one arrives",
				"waiting", now.Sub(s.waitingSince).Round(time.Second), "dropped", s.C.FramesDropped.Load())
			s.warnedWait = true
		}
		return nil
	}
	if s.warnedWait {
		s.log.Info("keyframe arrived: recording resumes", "dropped", s.C.FramesDropped.Load())
	}
	s.waitingSince, s.warnedWait = time.Time{}, false

	init, err := s.marshalInit()
	if err != nil {
		s.C.FramesDropped.Add(1)
		s.log.Warn("cannot build init section: dropping keyframe", "err", err)
		return nil
	}
	wall := s.wallClock(f)
	file, err := s.cfg.Store.Create(s.cfg.CameraID, s.track.Codec, wall)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if _, err := file.Write(init); err != nil {
		_ = file.Abort()
		return err
	}
	s.C.BytesWritten.Add(uint64(len(init)))
	if !s.tlSet {
		s.tlBase, s.tlDTS, s.tlSet = max(epochTicks(wall), s.tlEnd), f.DTS, true
		// Sequence numbers keep increasing across segments (and, being
		// seeded from the clock, mostly across restarts), as in one file.
		s.seq = max(s.seq, uint32(s.tlBase/media.ClockRate))
	}
	s.written, s.initSize, s.initHash, s.index = int64(len(init)), int64(len(init)), fragindex.HashInit(init), s.index[:0]
	s.file, s.segStart, s.segWall, s.segFrames = file, f.DTS, wall, 0
	s.fragStart, s.frag, s.pending, s.cutAtKey = f.DTS, s.frag[:0], f, false
	s.lastSync = s.cfg.Now()
	return nil
}

// wallClock returns the hub time of f's DTS. Inside a session it follows the
// camera's clock from an anchor (so consecutive segments touch), and
// re-anchors when that drifts from the hub's monotonic clock or when the
// system clock was stepped (NTP at boot): media time and wall-clock time are
// kept apart so one can never corrupt the other.
func (s *Segmenter) wallClock(f *media.Frame) time.Time {
	recv := f.Received
	if recv.IsZero() {
		recv = s.cfg.Now()
	}
	if s.anchorSet {
		expected := s.anchorWall.Add(dur(f.DTS - s.anchorDTS))
		drift := recv.Sub(expected) // monotonic readings on both sides
		step := recv.Round(0).Sub(s.anchorWall.Round(0)) - recv.Sub(s.anchorWall)
		switch {
		case abs(step) > s.cfg.MaxDrift:
			s.log.Warn("system clock was stepped: re-anchoring wall-clock time", "step", step.Round(time.Millisecond))
		case abs(drift) > s.cfg.MaxDrift:
			s.log.Warn("camera clock drifted from hub clock: re-anchoring wall-clock time", "drift", drift.Round(time.Millisecond))
		default:
			return expected
		}
	}
	s.anchorSet, s.anchorWall, s.anchorDTS = true, recv, f.DTS
	return recv
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func (s *Segmenter) addSample(f *media.Frame, duration int64) {
	if len(s.frag) == 0 {
		s.fragStart = f.DTS
	}
	s.endDTS = f.DTS + duration
	s.frag = append(s.frag, &fmp4.Sample{
		Duration:        uint32(duration),
		PTSOffset:       int32(f.PTS - f.DTS),
		IsNonSyncSample: !f.RandomAccess,
		Payload:         payload(s.track.Codec, f),
	})
}

func payload(c media.Codec, f *media.Frame) []byte {
	if c == media.MJPEG {
		return f.AU[0]
	}
	if f.AVCC != nil {
		return f.AVCC
	}
	n := 0
	for _, nalu := range f.AU {
		n += 4 + len(nalu)
	}
	b := make([]byte, n)
	pos := 0
	for _, nalu := range f.AU {
		b[pos], b[pos+1], b[pos+2], b[pos+3] = byte(len(nalu)>>24), byte(len(nalu)>>16), byte(len(nalu)>>8), byte(len(nalu))
		pos += 4 + copy(b[pos+4:], nalu)
	}
	return b
}

// flush writes the buffered samples as one moof+mdat.
func (s *Segmenter) flush() error {
	if len(s.frag) == 0 {
		return nil
	}
	s.buf.Reset()
	base := s.timeline(s.fragStart)
	part := fmp4.Part{
		SequenceNumber: s.seq,
		Tracks:         []*fmp4.PartTrack{{ID: 1, BaseTime: uint64(base), Samples: s.frag}},
	}
	if err := part.Marshal(&s.buf); err != nil {
		return fmt.Errorf("marshal fragment: %w", err)
	}
	if _, err := s.file.Write(s.buf.Bytes()); err != nil {
		return err
	}
	s.index = append(s.index, fragindex.Fragment{Offset: s.written, Time: uint64(base), Sync: !s.frag[0].IsNonSyncSample})
	s.written += int64(len(s.buf.Bytes()))
	s.tlEnd = s.timeline(s.endDTS)
	s.seq++
	s.segFrames += len(s.frag)
	clear(s.frag) // drop payload references: the GC may reclaim them now
	s.frag = s.frag[:0]
	s.C.Fragments.Add(1)
	s.C.BytesWritten.Add(uint64(len(s.buf.Bytes())))
	now := s.cfg.Now()
	s.C.LastFragment.Store(now.UnixNano())
	if now.Sub(s.lastSync) >= s.cfg.FsyncInterval {
		if err := s.file.Sync(); err != nil {
			return err
		}
		s.lastSync = now
	}
	if s.anchorSet && s.pending != nil && !s.pending.Received.IsZero() {
		expected := s.anchorWall.Add(dur(s.pending.DTS - s.anchorDTS))
		if abs(s.pending.Received.Sub(expected)) > s.cfg.MaxDrift {
			s.cutAtKey = true
		}
	}
	return nil
}

// finish closes the open segment. A pending frame still belongs to it and
// gets the previous frame's duration: the next frame, which would tell, is
// not on this timeline.
func (s *Segmenter) finish(reason string) error {
	if s.file == nil {
		return nil
	}
	if s.pending != nil {
		d := s.lastDelta
		if d <= 0 {
			d = media.ClockRate / 25
		}
		s.addSample(s.pending, d)
		s.pending = nil
	}
	err := s.flush()
	file := s.file
	s.file = nil
	if err != nil {
		_ = file.Abort()
		return err
	}
	if s.segFrames == 0 {
		return file.Abort()
	}
	// The trailer lets relay join this segment to its neighbours by copying
	// byte ranges, without reading the media (pkg/fragindex).
	ix := fragindex.Index{Timescale: media.ClockRate, InitSize: s.initSize, InitHash: s.initHash,
		EndTime: uint64(s.tlEnd), DataEnd: s.written, Fragments: s.index}
	trailer := ix.Marshal()
	if _, err := file.Write(trailer); err != nil {
		_ = file.Abort()
		return fmt.Errorf("write fragment index: %w", err)
	}
	s.C.BytesWritten.Add(uint64(len(trailer)))
	endWall := s.segWall.Add(dur(s.endDTS - s.segStart))
	if err := file.Commit(endWall, s.segFrames); err != nil {
		return fmt.Errorf("commit segment: %w", err)
	}
	s.C.Segments.Add(1)
	s.log.Debug("segment closed", "reason", reason, "start", s.segWall.UTC(),
		"duration", dur(s.endDTS-s.segStart), "frames", s.segFrames)
	return nil
}

func (s *Segmenter) paramsReady() bool {
	switch s.track.Codec {
	case media.H264:
		return s.track.SPS != nil && s.track.PPS != nil
	case media.H265:
		return s.track.VPS != nil && s.track.SPS != nil && s.track.PPS != nil
	case media.MJPEG:
		return true
	}
	return false
}

// updateParams follows parameter sets sent in-band with keyframes; a change
// (resolution, profile, a camera reconfigured) needs a new init section, so
// it closes the segment.
func (s *Segmenter) updateParams(f *media.Frame) error {
	t := s.track
	switch t.Codec {
	case media.H264:
		for _, n := range f.AU {
			if len(n) == 0 {
				continue
			}
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				t.SPS = n
			case h264.NALUTypePPS:
				t.PPS = n
			}
		}
	case media.H265:
		for _, n := range f.AU {
			if len(n) < 2 {
				continue
			}
			switch h265.NALUType((n[0] >> 1) & 0b111111) {
			case h265.NALUType_VPS_NUT:
				t.VPS = n
			case h265.NALUType_SPS_NUT:
				t.SPS = n
			case h265.NALUType_PPS_NUT:
				t.PPS = n
			}
		}
	case media.MJPEG:
		t.Width, t.Height = f.Width, f.Height
	}
	if bytes.Equal(t.VPS, s.track.VPS) && bytes.Equal(t.SPS, s.track.SPS) && bytes.Equal(t.PPS, s.track.PPS) &&
		t.Width == s.track.Width && t.Height == s.track.Height {
		return nil
	}
	// Copies: the frame's NAL units may share a buffer that gets reused.
	t.VPS, t.SPS, t.PPS = clone(t.VPS), clone(t.SPS), clone(t.PPS)
	had := s.file != nil
	if had {
		s.C.Discontinuities.Add(1)
		s.log.Info("stream parameters changed: closing segment", "codec", t.Codec)
		if err := s.finish("parameters changed"); err != nil {
			return err
		}
	}
	s.track = t
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func (s *Segmenter) marshalInit() ([]byte, error) {
	var c codecs.Codec
	switch s.track.Codec {
	case media.H264:
		var sps h264.SPS
		if err := sps.Unmarshal(s.track.SPS); err != nil {
			return nil, fmt.Errorf("H.264 SPS: %w", err)
		}
		c = &codecs.H264{SPS: s.track.SPS, PPS: s.track.PPS}
	case media.H265:
		var sps h265.SPS
		if err := sps.Unmarshal(s.track.SPS); err != nil {
			return nil, fmt.Errorf("H.265 SPS: %w", err)
		}
		c = &codecs.H265{VPS: s.track.VPS, SPS: s.track.SPS, PPS: s.track.PPS}
	case media.MJPEG:
		if s.track.Width <= 0 || s.track.Height <= 0 {
			return nil, fmt.Errorf("JPEG without dimensions")
		}
		c = &codecs.MJPEG{Width: s.track.Width, Height: s.track.Height}
	default:
		return nil, fmt.Errorf("codec %q not recordable", s.track.Codec)
	}
	var buf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: media.ClockRate, Codec: c}}}
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("marshal init: %w", err)
	}
	return buf.Bytes(), nil
}
