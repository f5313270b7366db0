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
	// tail is the plan's last fragment when it runs past the range's end
	// (nil when it ends at or before it); cutting it (cut.go) makes the
	// file end exactly at end.
	tail *tailFragment
	// head is the file's first fragment, and tlStart and tlEnd the
	// timeline positions (decode times) of the file's first sample and of
	// the end of its last: what the rewritten init section says
	// (initedit.go).
	head           headFragment
	tlStart, tlEnd uint64
	// frags are the file's fragments, in order (progressive.go).
	frags []planFrag
}

// headFragment is the file's first fragment, in its recording.
type headFragment struct {
	src    source
	offset int64
}

// tailFragment is a plan's last fragment, taken whole.
type tailFragment struct {
	src            source
	offset, length int64  // of the fragment (moof and mdat) in src
	endTime        uint64 // timeline end of its last sample
	before         uint64 // its samples decoding before this are inside the range
}

// ticksBefore is the first timeline position of s at or after wall-clock
// time t: the samples of s decoding before it are those before t.
func (s source) ticksBefore(t time.Time) uint64 {
	d := t.Sub(s.rec.Start)
	if d <= 0 {
		return s.ix.Start()
	}
	scale := int64(s.ix.Timescale)
	q, r := int64(d/time.Second), int64(d%time.Second)
	return s.ix.Start() + uint64(q*scale+(r*scale+int64(time.Second)-1)/int64(time.Second))
}

// layout locates the clip file's HLS segments (byte ranges that start with
// a keyframe), stored with the clip so the playlist needs no media read.
type layout struct {
	InitSize int64 `json:"init_size"`
	// InitOffset is where the fragmented init section is in the file
	// (inside the progressive file's mdat; 0 in files of before).
	InitOffset int64        `json:"init_offset,omitempty"`
	Timescale  uint32       `json:"timescale"`
	Segments   []hlsSegment `json:"segments"`
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
// [start, end): from the keyframe fragment at or before start through the
// fragment holding end (whole; p.tail says which, for cutTail to cut after
// its last sample before end). Fragments of one stream join as they are (one
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
			p.head, p.tlStart = headFragment{src: s, offset: first.Offset}, first.Time
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
			p.frags = append(p.frags, planFrag{src: s, offset: f.Offset, length: n, pos: off})
		}
		length := ix.FragmentEnd(i1-1) - first.Offset
		p.pieces = append(p.pieces, media.Part{Key: s.rec.Key, Offset: first.Offset, Length: length})
		p.size += length
		prevEnd = ix.FragmentEndTime(i1 - 1)
		p.mediaEnd, p.tlEnd = s.wall(prevEnd), prevEnd
		p.used = append(p.used, s.rec)
		p.tail = nil
		if before := s.ticksBefore(end); prevEnd > before {
			last := ix.Fragments[i1-1]
			p.tail = &tailFragment{src: s, offset: last.Offset, length: ix.FragmentEnd(i1-1) - last.Offset, endTime: prevEnd, before: before}
		}
		have = true
	}
	if !have {
		return p, fmt.Errorf("no recording has a fragment in the range")
	}
	closeSeg(prevEnd)
	return p, nil
}

// cutTail makes the plan end with the cut fc of its tail fragment instead
// of the whole fragment: the pieces end with the new head (stored as
// object headKey) and the prefix of the fragment's payload that fc keeps;
// size, media end and the last HLS segment follow.
func (p *plan) cutTail(fc fragmentCut, headKey string) error {
	t := p.tail
	if t == nil || len(p.pieces) == 0 || len(p.layout.Segments) == 0 {
		return fmt.Errorf("the plan has no tail fragment to cut")
	}
	last := &p.pieces[len(p.pieces)-1]
	switch {
	case len(p.frags) == 0 || p.frags[len(p.frags)-1].offset != t.offset || p.frags[len(p.frags)-1].src.rec.Key != t.src.rec.Key:
		return fmt.Errorf("the plan's last fragment is not its tail fragment")
	case last.Key != t.src.rec.Key || last.Offset+last.Length != t.offset+t.length || last.Length < t.length:
		return fmt.Errorf("the plan's last piece %s@%d+%d does not end with its tail fragment at %d+%d", last.Key, last.Offset, last.Length, t.offset, t.length)
	case fc.kept < 1 || fc.dataLen < 1 || fc.moofSize+8+fc.dataLen > t.length || fc.end > t.endTime:
		return fmt.Errorf("cut of %d samples (%d bytes) does not fit the fragment of %d bytes", fc.kept, fc.dataLen, t.length)
	}
	last.Length -= t.length
	if last.Length == 0 {
		p.pieces = p.pieces[:len(p.pieces)-1]
	}
	p.pieces = append(p.pieces,
		media.Part{Key: headKey, Offset: 0, Length: int64(len(fc.head))},
		media.Part{Key: t.src.rec.Key, Offset: t.offset + fc.moofSize + 8, Length: fc.dataLen})
	grow := int64(len(fc.head)) + fc.dataLen - t.length
	p.size += grow
	seg := &p.layout.Segments[len(p.layout.Segments)-1]
	seg.Length += grow
	seg.Ticks -= t.endTime - fc.end
	p.mediaEnd, p.tlEnd = t.src.wall(fc.end), fc.end
	p.tail = nil
	lf := &p.frags[len(p.frags)-1]
	lf.head, lf.length = fc.head, int64(len(fc.head))+fc.dataLen
	return nil
}

// replaceInit makes the file start with the object key (size bytes)
// instead of the first recording's init section: size, offsets of the
// HLS segments and where the layout's init section is (initSize bytes at
// initOffset of the file) follow.
func (p *plan) replaceInit(key string, size, initOffset, initSize int64) error {
	if len(p.pieces) == 0 || p.pieces[0].Offset != 0 || p.pieces[0].Length != p.layout.InitSize || p.layout.InitOffset != 0 ||
		size <= 0 || initSize <= 0 || initOffset < 0 || initOffset+initSize > size {
		return fmt.Errorf("the plan does not start with an init section")
	}
	grow := size - p.pieces[0].Length
	p.pieces[0] = media.Part{Key: key, Offset: 0, Length: size}
	p.size += grow
	p.layout.InitSize, p.layout.InitOffset = initSize, initOffset
	for i := range p.layout.Segments {
		p.layout.Segments[i].Offset += grow
	}
	return nil
}
