package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/zipnvr/zipnvr/relay/internal/clips"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// Clip routes: a clip is a time range of a channel that relay cuts into
// one MP4 file (and an HLS playlist over it) once its recordings are in.
// Creation answers at once; the coordinator (relay/internal/clips) does
// the rest in the background.

// ClipService is what the API needs of the clip coordinator
// (*clips.Coordinator implements it).
type ClipService interface {
	Create(ctx context.Context, ch store.Channel, start, end time.Time, pinned bool) (store.Clip, error)
	Delete(ctx context.Context, cl store.Clip) error
	SetPinned(ctx context.Context, id string, pinned bool) (store.Clip, error)
	// Recordings lists the recordings attached so far to a clip in progress.
	Recordings(ctx context.Context, cl store.Clip) ([]store.Recording, error)
	// RecordingAdded is told of every new recording (upload notice).
	RecordingAdded(channel string)
}

var _ ClipService = (*clips.Coordinator)(nil)

type clipRequest struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Pinned bool      `json:"pinned"`
}

type clipRecordingView struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Bytes int64     `json:"bytes"`
}

// clipView is a clip as clients see it.
type clipView struct {
	ID       string    `json:"id"`
	Channel  string    `json:"channel"`
	Camera   string    `json:"camera"`
	Status   string    `json:"status"`
	Reason   string    `json:"reason,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Pinned   bool      `json:"pinned"`
	Created  time.Time `json:"created"`
	Deadline time.Time `json:"deadline"`
	Finished time.Time `json:"finished,omitzero"`
	// Recordings attached (in progress: so far; finished: those in the file).
	Recordings []clipRecordingView `json:"recordings,omitempty"`
	Gaps       []store.Gap         `json:"gaps,omitempty"`
	// When finished: the file's media range (it starts at the keyframe at
	// or before Start), size and presigned URL, and the HLS playlist.
	MediaStart time.Time  `json:"media_start,omitzero"`
	MediaEnd   time.Time  `json:"media_end,omitzero"`
	Bytes      int64      `json:"bytes,omitempty"`
	URL        string     `json:"url,omitempty"`
	HLSURL     string     `json:"hls_url,omitempty"`
	URLExpires *time.Time `json:"url_expires,omitempty"`
}

func (s *Server) clipService() (ClipService, error) {
	if s.clips == nil {
		return nil, errorf(http.StatusServiceUnavailable, "clips are not enabled on this relay")
	}
	return s.clips, nil
}

// visibleClip is the clip of the path if p may see it; else 404 (another
// tenant's clip is as absent as an unknown one).
func (s *Server) visibleClip(r *http.Request, p principal) (store.Clip, error) {
	id := r.PathValue("id")
	cl, err := s.store.Clip(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !p.sees(cl.Tenant) {
		return cl, errorf(http.StatusNotFound, "clip %q not found", id)
	}
	return cl, err
}

func (s *Server) createClip(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.clipService()
	if err != nil {
		return err
	}
	ch, err := s.visibleChannel(r, p)
	if err != nil {
		return err
	}
	var in clipRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	switch {
	case in.Start.IsZero():
		return errorf(http.StatusBadRequest, "start: missing (an RFC 3339 time, e.g. \"2026-11-25T10:00:00Z\")")
	case in.End.IsZero():
		return errorf(http.StatusBadRequest, "end: missing (an RFC 3339 time, e.g. \"2026-11-25T10:05:00Z\")")
	}
	cl, err := svc.Create(r.Context(), ch, in.Start, in.End, in.Pinned)
	var re *clips.RangeError
	if errors.As(err, &re) {
		return errorf(http.StatusBadRequest, "%s", re.Msg)
	}
	if err != nil {
		return err
	}
	s.log.Info("clip requested", "tenant", ch.Tenant, "channel", ch.ID, "clip", cl.ID, "start", cl.Start, "end", cl.End)
	w.Header().Set("Location", Prefix+"/clips/"+cl.ID)
	writeJSON(w, http.StatusAccepted, s.newClipView(cl))
	return nil
}

func (s *Server) newClipView(cl store.Clip) clipView {
	v := clipView{ID: cl.ID, Channel: cl.Channel, Camera: cl.Camera, Status: cl.Status, Reason: cl.Reason,
		Start: cl.Start, End: cl.End, Pinned: cl.Pinned, Created: cl.Created, Deadline: cl.Deadline,
		Finished: cl.Finished, Gaps: cl.Gaps, MediaStart: cl.MediaStart, MediaEnd: cl.MediaEnd, Bytes: cl.Bytes}
	for _, rec := range cl.Recordings {
		v.Recordings = append(v.Recordings, clipRecordingView{ID: rec.ID, Start: rec.Start, End: rec.End, Bytes: rec.Bytes})
	}
	return v
}

// withURLs adds the presigned file URL and the signed playlist URL of a
// finished clip.
func (s *Server) withURLs(r *http.Request, v *clipView, cl store.Clip) error {
	if cl.Status != store.ClipFinished || cl.Key == "" {
		return nil
	}
	ps, err := s.objects.PresignGet(r.Context(), cl.Key, s.opts.DownloadExpiry)
	if err != nil {
		return s.objectError("presign GET", cl.Key, err)
	}
	s.metrics.presigns.WithLabelValues(http.MethodGet).Inc()
	exp := ps.Expires.UTC()
	v.URL, v.URLExpires = ps.URL, &exp
	v.HLSURL = s.publicURL(r) + s.playlistPath(cl.ID, exp)
	return nil
}

func (s *Server) getClip(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.clipService()
	if err != nil {
		return err
	}
	cl, err := s.visibleClip(r, p)
	if err != nil {
		return err
	}
	v := s.newClipView(cl)
	if cl.Status == store.ClipInProgress {
		recs, err := svc.Recordings(r.Context(), cl)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			v.Recordings = append(v.Recordings, clipRecordingView{ID: rec.ID, Start: rec.Start, End: rec.End, Bytes: rec.Bytes})
		}
	}
	if err := s.withURLs(r, &v, cl); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) listClips(w http.ResponseWriter, r *http.Request, p principal) error {
	if _, err := s.clipService(); err != nil {
		return err
	}
	ch, err := s.visibleChannel(r, p)
	if err != nil {
		return err
	}
	if len(r.URL.Query()) > 0 {
		return errorf(http.StatusBadRequest, "this listing takes no query parameters")
	}
	cls, err := s.store.ChannelClips(r.Context(), ch.ID)
	if err != nil {
		return err
	}
	out := struct {
		Channel string     `json:"channel"`
		Clips   []clipView `json:"clips"`
	}{Channel: ch.ID, Clips: make([]clipView, 0, len(cls))}
	// Newest first: the one just cut is what a client looks for.
	for i := len(cls) - 1; i >= 0; i-- {
		v := s.newClipView(cls[i])
		v.Recordings = nil // GET /clips/{id} has them
		if err := s.withURLs(r, &v, cls[i]); err != nil {
			return err
		}
		out.Clips = append(out.Clips, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteClip(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.clipService()
	if err != nil {
		return err
	}
	cl, err := s.visibleClip(r, p)
	if err != nil {
		return err
	}
	if err := svc.Delete(r.Context(), cl); err != nil {
		return s.objectError("delete clip", cl.Key, err)
	}
	s.log.Info("clip deleted", "tenant", cl.Tenant, "channel", cl.Channel, "clip", cl.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pinClip (PUT) keeps a clip past its channel's retention; unpinClip
// (DELETE) lets retention take it again.
func (s *Server) pinClip(w http.ResponseWriter, r *http.Request, p principal) error {
	return s.setPinned(w, r, p, true)
}

func (s *Server) unpinClip(w http.ResponseWriter, r *http.Request, p principal) error {
	return s.setPinned(w, r, p, false)
}

func (s *Server) setPinned(w http.ResponseWriter, r *http.Request, p principal, pinned bool) error {
	svc, err := s.clipService()
	if err != nil {
		return err
	}
	cl, err := s.visibleClip(r, p)
	if err != nil {
		return err
	}
	cl, err = svc.SetPinned(r.Context(), cl.ID, pinned)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "clip %q not found", r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	v := s.newClipView(cl)
	if err := s.withURLs(r, &v, cl); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// The playlist route is public: players (a browser's <video>, ffmpeg)
// cannot send a bearer token, so its URL carries an expiry and an HMAC
// of the clip id and expiry, like a presigned URL. The playlist itself
// points at the clip file's presigned URL, made fresh on each request.

func (s *Server) playlistSig(id string, exp int64) string {
	m := hmac.New(sha256.New, s.clipURLKey)
	fmt.Fprintf(m, "clip playlist\n%s\n%d", id, exp)
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) playlistPath(id string, exp time.Time) string {
	e := exp.Unix()
	q := url.Values{"exp": {strconv.FormatInt(e, 10)}, "sig": {s.playlistSig(id, e)}}
	return Prefix + "/clips/" + url.PathEscape(id) + "/playlist.m3u8?" + q.Encode()
}

// publicURL is where clients reach relay: the configured public URL, else
// the address the request came to.
func (s *Server) publicURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return s.opts.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) clipPlaylist(w http.ResponseWriter, r *http.Request, _ principal) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	sig, herr := hex.DecodeString(q.Get("sig"))
	want, _ := hex.DecodeString(s.playlistSig(id, exp))
	switch {
	case err != nil || herr != nil || !hmac.Equal(sig, want):
		return errorf(http.StatusUnauthorized, "playlist URL not signed by this relay (take hls_url from GET %s/clips/{id})", Prefix)
	case time.Unix(exp, 0).Before(s.now()):
		return errorf(http.StatusUnauthorized, "playlist URL expired (take a new hls_url from GET %s/clips/{id})", Prefix)
	}
	cl, err := s.store.Clip(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "clip %q not found", id)
	}
	if err != nil {
		return err
	}
	if cl.Status != store.ClipFinished {
		return errorf(http.StatusConflict, "clip %q is %s, not finished", id, cl.Status)
	}
	layout, err := s.store.ClipLayout(r.Context(), id)
	if err != nil {
		return fmt.Errorf("layout of clip %s: %w", id, err)
	}
	ps, err := s.objects.PresignGet(r.Context(), cl.Key, s.opts.DownloadExpiry)
	if err != nil {
		return s.objectError("presign GET", cl.Key, err)
	}
	pl, err := clips.Playlist(layout, ps.URL)
	if err != nil {
		return fmt.Errorf("playlist of clip %s: %w", id, err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", "no-store") // it holds a presigned URL
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(pl))
	return nil
}
