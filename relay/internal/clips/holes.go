package clips

import (
	"time"

	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// span is a half-open wall-clock interval [start, end).
type span struct{ start, end time.Time }

// findHoles returns the parts of [from, to) that no recording covers
// (recs sorted by start); holes shorter than tol are not holes.
func findHoles(from, to time.Time, recs []store.Recording, tol time.Duration) []span {
	var out []span
	cursor := from
	for _, r := range recs {
		if !r.End.After(cursor) {
			continue
		}
		if !r.Start.Before(to) {
			break
		}
		if r.Start.Sub(cursor) > tol {
			out = append(out, span{cursor, r.Start})
		}
		cursor = r.End
	}
	if to.Sub(cursor) > tol {
		out = append(out, span{cursor, to})
	}
	return out
}
