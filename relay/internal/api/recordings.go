package api

import (
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// Listing limits of GET /channels/{id}/recordings.
const (
	defaultLimit = 1000
	maxLimit     = 10000
	defaultSpan  = 24 * time.Hour
)

type recordingList struct {
	Channel    string            `json:"channel"`
	From       time.Time         `json:"from"`
	To         time.Time         `json:"to"`
	Recordings []proto.Recording `json:"recordings"`
	// Next, when set, is the "after" parameter of the next page.
	Next string `json:"next,omitempty"`
}

// recordingQuery reads from, to, limit and after; only those are accepted,
// so that a typo ("form=") is an error rather than a silent default.
func recordingQuery(q url.Values, now time.Time) (store.RecordingQuery, error) {
	for k := range q {
		switch k {
		case "from", "to", "limit", "after":
		default:
			return store.RecordingQuery{}, errorf(http.StatusBadRequest, "unknown query parameter %q (want from, to, limit, after)", k)
		}
	}
	parse := func(name string, def time.Time) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return t, errorf(http.StatusBadRequest, "%s: %q is not an RFC 3339 time (e.g. 2026-11-25T10:00:00Z; write + as %%2B)", name, v)
		}
		return t.UTC(), nil
	}
	to, err := parse("to", now)
	if err != nil {
		return store.RecordingQuery{}, err
	}
	from, err := parse("from", to.Add(-defaultSpan))
	if err != nil {
		return store.RecordingQuery{}, err
	}
	if from.After(to) {
		return store.RecordingQuery{}, errorf(http.StatusBadRequest, "from (%s) is after to (%s)", from.Format(timeFormat), to.Format(timeFormat))
	}
	rq := store.RecordingQuery{From: from, To: to, Limit: defaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return rq, errorf(http.StatusBadRequest, "limit: must be 1 to %d, got %q", maxLimit, v)
		}
		rq.Limit = n
	}
	if v := q.Get("after"); v != "" {
		c, err := decodeCursor(v)
		if err != nil {
			return rq, errorf(http.StatusBadRequest, "after: not a cursor of this listing (use \"next\" of the previous page)")
		}
		rq.After = &c
	}
	return rq, nil
}

func (s *Server) listRecordings(w http.ResponseWriter, r *http.Request, p principal) error {
	ch, err := s.visibleChannel(r, p)
	if err != nil {
		return err
	}
	q, err := recordingQuery(r.URL.Query(), s.now())
	if err != nil {
		return err
	}
	q.Channel = ch.ID
	recs, err := s.store.Recordings(r.Context(), q)
	if err != nil {
		return err
	}
	out := recordingList{Channel: ch.ID, From: q.From, To: q.To, Recordings: make([]proto.Recording, 0, len(recs))}
	for _, rec := range recs {
		ps, err := s.objects.PresignGet(r.Context(), rec.Key, s.opts.DownloadExpiry)
		if err != nil {
			return s.objectError("presign GET", rec.Key, err)
		}
		v := recordingView(rec)
		exp := ps.Expires.UTC()
		v.URL, v.URLExpires = ps.URL, &exp
		out.Recordings = append(out.Recordings, v)
	}
	s.metrics.presigns.WithLabelValues(http.MethodGet).Add(float64(len(recs)))
	if len(recs) == q.Limit {
		last := recs[len(recs)-1]
		out.Next = encodeCursor(store.Cursor{Start: last.Start, ID: last.ID})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// A cursor is opaque to clients: start (ms, be64) and id, base64url.
func encodeCursor(c store.Cursor) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(c.Start.UnixMilli()))
	return base64.RawURLEncoding.EncodeToString(append(b, c.ID...))
}

func decodeCursor(s string) (store.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 9 || len(b) > 8+64 {
		return store.Cursor{}, errorf(http.StatusBadRequest, "bad cursor")
	}
	return store.Cursor{Start: time.UnixMilli(int64(binary.BigEndian.Uint64(b))).UTC(), ID: string(b[8:])}, nil
}
