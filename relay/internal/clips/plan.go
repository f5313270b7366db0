package clips

import (
	"fmt"
	"time"

	"github.com/zipnvr/zipnvr/pkg/fragindex"
	"github.com/zipnvr/zipnvr/relay/internal/media"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// source is a recording with its fragment index.
type source struct {
	rec store.Recording
	ix  fragindex.Index
}

// wall is the wall-clock time of timeline position t of s: recordings carry
// their wall-clock start; inside one, media time counts.
func (s source) wall(t uint64) time.Time {
	return s.rec.Start.Add(ticksDuration(int64(t)-int64(s.ix.Start()), s.ix.Timescale))
}

func ticksDuration(t int64, scale uint32) time.Duration {
	return time.Duration(float64(t) / float64(scale) * float64(time.Second))
}

// plan is what a clip file is made of: byte ranges of recordings in order
// (the first is the init section of the first recording), and where its
// HLS segments are.
type plan struct {
	pieces     []media.Part
	size       int64
	used       []store.Recording
	gaps       []store.Gap // recordings that could not join
	mediaStart time.Time
	mediaEnd   time.Time
	layout     layout
}

// layout locates the clip file's HLS segments (byte ranges that start with
// a keyframe), stored with the clip so the playlist needs no media read.
type layout struct {
	InitSize  int64        `json:"init_size"`
	Timescale uint32       `json:"timescale"`
	Segments  []hlsSegment `json:"segments"`
}

type hlsSegment struct {
	Offset int64  `json:"o"`
	Length int64  `json:"l"`
	Ticks  uint64 `json:"t"`           // duration in Timescale units
	Disc   bool   `json:"d,omitempty"` // the timeline jumps before it (a gap)
}

// Reasons of gaps the plan finds.
const (
	reasonParams  = "the camera's stream parameters changed (codec, resolution): not joinable with the clip's start"
	reasonOverlap = "overlaps the previous recording's timeline (hub clock stepped back)"
)

// makePlan chooses the fragments of srcs (sorted by start) that cover
// [start, end): from the keyframe fragment at or before start to the first
// fragment at or after end. Fragments of one stream join as they are (one
// timeline, one init section); a recording that cannot join is skipped and
// reported as a gap. hlsTarget is the least duration of an HLS segment.
func makePlan(start, end time.Time, srcs []source, hlsTarget time.Duration) (plan, error) {
	var p plan
	var (
		have     bool
		initHash [8]byte
		prevEnd  uint64 // timeline end of the last fragment taken
		cur      *hlsSegment
		curStart uint64
	)
	closeSeg := func(endTime uint64) {
		if cur != nil {
			cur.Ticks = endTime - curStart
			p.layout.Segments = append(p.layout.Segments, *cur)
			cur = nil
		}
	}
	for _, s := range srcs {
		ix := s.ix
		if !s.rec.End.After(start) || !s.rec.Start.Before(end) || len(ix.Fragments) == 0 {
			continue
		}
		if have && ix.InitHash != initHash {
			p.gaps = append(p.gaps, store.Gap{Start: s.rec.Start, End: s.rec.End, Reason: reasonParams})
			continue
		}
		i0 := 0
		if !have {
			// The keyframe fragment at or before start.
			for i, f := range ix.Fragments {
				if f.Sync && !s.wall(f.Time).After(start) {
					i0 = i
				}
			}
		} else if ix.Start() < prevEnd {
			// Overlap: resume at the first keyframe fragment past it.
			i0 = -1
			for i, f := range ix.Fragments {
				if f.Sync && f.Time >= prevEnd {
					i0 = i
					break
				}
			}
			if i0 < 0 {
				p.gaps = append(p.gaps, store.Gap{Start: s.rec.Start, End: s.rec.End, Reason: reasonOverlap})
				continue
			}
		}
		// Up to the first fragment starting at or after end.
		i1 := len(ix.Fragments)
		for i := i0 + 1; i < len(ix.Fragments); i++ {
			if !s.wall(ix.Fragments[i].Time).Before(end) {
				i1 = i
				break
			}
		}
		if i1 <= i0 {
			continue
		}
		first := ix.Fragments[i0]
		if !have {
			p.pieces = append(p.pieces, media.Part{Key: s.rec.Key, Offset: 0, Length: ix.InitSize})
			p.size = ix.InitSize
			p.layout.InitSize, p.layout.Timescale = ix.InitSize, ix.Timescale
			initHash = ix.InitHash
			p.mediaStart = s.wall(first.Time)
		}
		disc := have && first.Time != prevEnd
		if disc {
			closeSeg(prevEnd)
		}
		for i := i0; i < i1; i++ {
			f := ix.Fragments[i]
			off := p.size + f.Offset - first.Offset
			n := ix.FragmentEnd(i) - f.Offset
			if cur != nil && f.Sync && ticksDuration(int64(f.Time-curStart), ix.Timescale) >= hlsTarget {
				closeSeg(f.Time)
			}
			if cur == nil {
				cur, curStart = &hlsSegment{Offset: off, Disc: disc && i == i0}, f.Time
			}
			cur.Length += n
		}
		length := ix.FragmentEnd(i1-1) - first.Offset
		p.pieces = append(p.pieces, media.Part{Key: s.rec.Key, Offset: first.Offset, Length: length})
		p.size += length
		prevEnd = ix.FragmentEndTime(i1 - 1)
		p.mediaEnd = s.wall(prevEnd)
		p.used = append(p.used, s.rec)
		have = true
	}
	if !have {
		return p, fmt.Errorf("no recording has a fragment in the range")
	}
	closeSeg(prevEnd)
	return p, nil
}
