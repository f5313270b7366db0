package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/link"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/pkg/proto"
)

// Clip coverage: relay waits for the recordings of a clip's range; for a
// time it has no recording of, it asks the hub whether one will still come
// (a closed segment not uploaded yet, the backlog of an outage, or the
// segment being written) or whether the hub holds nothing for it (camera
// off or unreachable, or evicted before upload): a gap the clip lists.

// maxCoverageSpan bounds the range one question may ask about (relay's
// clips last at most 12 h).
const maxCoverageSpan = 7 * 24 * time.Hour

// registerCoverage answers relay's coverage questions on the link.
func (h *Hub) registerCoverage() {
	if h.link != nil {
		h.link.Handle(proto.LinkCoverage, h.handleLinkCoverage)
	}
}

func (h *Hub) handleLinkCoverage(_ context.Context, body json.RawMessage) (any, error) {
	var req proto.CoverageRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, link.Errorf(http.StatusBadRequest, "coverage: bad request: %v", err)
	}
	switch {
	case req.Camera == "":
		return nil, link.Errorf(http.StatusBadRequest, "coverage: camera missing")
	case !req.To.After(req.From):
		return nil, link.Errorf(http.StatusBadRequest, "coverage: to %s is not after from %s", req.To, req.From)
	case req.To.Sub(req.From) > maxCoverageSpan:
		return nil, link.Errorf(http.StatusBadRequest, "coverage: range longer than %s", maxCoverageSpan)
	}
	// The ring answers even for a camera no longer configured: its backlog
	// still uploads.
	segs, err := h.ring.List(req.Camera)
	if err != nil {
		return nil, link.Errorf(http.StatusInternalServerError, "coverage: read the index: %v", err)
	}
	cov := coverage(segs, req.From, req.To)
	h.log.Debug("clip coverage asked", "camera", req.Camera, "from", req.From, "to", req.To,
		"pending_spans", len(cov.Pending), "recording_since", cov.RecordingSince)
	return cov, nil
}

// coverage is what the hub will still upload of [from, to) from segs (one
// camera's index entries, oldest first): pending segments overlapping the
// range, merged where they touch, and the start of the segment being
// written.
func coverage(segs []ring.Segment, from, to time.Time) proto.Coverage {
	// Segments of one recording touch to the millisecond; a little slack
	// merges them without joining across a real outage of the camera.
	const touch = 250 * time.Millisecond
	cov := proto.Coverage{Pending: []proto.Interval{}}
	for _, s := range segs {
		switch s.State {
		case ring.Recording:
			if cov.RecordingSince.IsZero() || s.Start.Before(cov.RecordingSince) {
				cov.RecordingSince = s.Start.UTC()
			}
		case ring.Pending:
			if !s.Start.Before(to) || !s.End.After(from) {
				continue
			}
			if n := len(cov.Pending); n > 0 && !s.Start.After(cov.Pending[n-1].End.Add(touch)) {
				if s.End.After(cov.Pending[n-1].End) {
					cov.Pending[n-1].End = s.End.UTC()
				}
				continue
			}
			if len(cov.Pending) == proto.MaxCoverageIntervals {
				// Past the frame limit: say the rest is pending as one span,
				// which errs on waiting, never on a false gap.
				cov.Pending[len(cov.Pending)-1].End = to.UTC()
				continue
			}
			cov.Pending = append(cov.Pending, proto.Interval{Start: s.Start.UTC(), End: s.End.UTC()})
		}
	}
	return cov
}
