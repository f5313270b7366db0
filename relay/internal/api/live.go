package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/token"
	"github.com/zipnvr/zipnvr/relay/internal/live"
	"github.com/zipnvr/zipnvr/relay/internal/store"
	"github.com/zipnvr/zipnvr/relay/internal/web"
)

// Live view routes. The stream token routes (WHEP, WebSocket, MJPEG) are
// public in the route table: the stream token, not a user token, is their
// credential, checked by live.Service without a database read.

type streamTokenRequest struct {
	Quality string `json:"quality"`
}

// streamTokenView is the answer to POST /channels/{id}/stream-token.
type streamTokenView struct {
	live.Grant
	WHEPURL  string `json:"whep_url"`
	WSURL    string `json:"ws_url"`
	MJPEGURL string `json:"mjpeg_url,omitempty"`
}

func (s *Server) liveService() (*live.Service, error) {
	if s.live == nil {
		return nil, errorf(http.StatusServiceUnavailable, "live view is not enabled on this relay")
	}
	return s.live, nil
}

// liveError turns an error of the live package into an API error.
func liveError(err error) error {
	if err == nil {
		return nil
	}
	if code, msg, ok := live.StatusOf(err); ok {
		return errorf(code, "%s", msg)
	}
	return err
}

func (s *Server) createStreamToken(w http.ResponseWriter, r *http.Request, p principal) error {
	ch, err := s.visibleChannel(r, p)
	if err != nil {
		return err
	}
	lv, err := s.liveService()
	if err != nil {
		return err
	}
	var req streamTokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	q, err := camera.ParseQuality(req.Quality)
	if err != nil {
		return errorf(http.StatusBadRequest, "quality: %v", err)
	}
	cam, err := s.store.Camera(r.Context(), ch.Camera)
	if errors.Is(err, store.ErrNotFound) || err == nil && cam.Removed {
		return errorf(http.StatusConflict, "channel %s has no camera (removed from its hub)", ch.ID)
	} else if err != nil {
		return err
	}
	if cam.Camera.Streams.Get(q) == "" {
		return errorf(http.StatusConflict, "camera %s has no %s stream (it has: %s)", cam.ID, q, strings.Join(qualitiesOf(cam.Camera), ", "))
	}
	g, err := lv.Issue(live.Request{Tenant: ch.Tenant, Channel: ch.ID, Hub: cam.Hub, Camera: cam.Camera.ID, Quality: q})
	if err != nil {
		return liveError(err)
	}
	base := Prefix + "/channels/" + url.PathEscape(ch.ID)
	out := streamTokenView{Grant: g, WHEPURL: base + "/whep", WSURL: base + "/live/ws"}
	if q == camera.MJPEG {
		out.MJPEGURL = base + "/live/mjpeg"
	}
	s.log.Info("stream token issued", "tenant", ch.Tenant, "channel", ch.ID, "quality", q, "session", g.Session)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func qualitiesOf(c camera.Camera) []string {
	var out []string
	for _, q := range camera.Qualities {
		if c.Streams.Get(q) != "" {
			out = append(out, string(q))
		}
	}
	if out == nil {
		return []string{"none"}
	}
	return out
}

// streamClaims checks the stream token of a live request against the
// channel of its path. The token comes as bearer, or as ?token= where a
// browser cannot set headers (WebSocket, <img>).
func (s *Server) streamClaims(r *http.Request, lv *live.Service, queryOK bool) (token.Claims, error) {
	tok := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return token.Claims{}, errorf(http.StatusUnauthorized, "Authorization must be Bearer <stream token>")
		}
		tok = strings.TrimSpace(t)
	} else if queryOK {
		tok = r.URL.Query().Get("token")
	}
	c, err := lv.Authorize(tok, r.PathValue("id"))
	return c, liveError(err)
}

// whep answers a WHEP offer (RFC 9725): application/sdp in, 201 with the
// answer and the session's resource URL out.
func (s *Server) whep(w http.ResponseWriter, r *http.Request, _ principal) error {
	lv, err := s.liveService()
	if err != nil {
		return err
	}
	c, err := s.streamClaims(r, lv, false)
	if err != nil {
		return err
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/sdp (an SDP offer)")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return errorf(http.StatusRequestEntityTooLarge, "offer larger than %d bytes", maxErr.Limit)
		}
		return errorf(http.StatusBadRequest, "read offer: %v", err)
	}
	answer, session, err := lv.WHEP(r.Context(), c, string(body))
	if err != nil {
		return liveError(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", Prefix+"/channels/"+url.PathEscape(c.Channel)+"/whep/"+url.PathEscape(session))
	h.Set("Cache-Control", "no-store")
	for _, srv := range lv.ICEServers() {
		for _, u := range srv.URLs {
			link := "<" + u + `>; rel="ice-server"`
			if srv.Username != "" {
				link += `; username="` + srv.Username + `"; credential="` + srv.Credential + `"; credential-type="password"`
			}
			h.Add("Link", link)
		}
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
	return nil
}

func (s *Server) deleteWHEP(w http.ResponseWriter, r *http.Request, _ principal) error {
	lv, err := s.liveService()
	if err != nil {
		return err
	}
	c, err := s.streamClaims(r, lv, false)
	if err != nil {
		return err
	}
	if err := lv.EndWHEP(c, r.PathValue("session")); err != nil {
		return liveError(err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) liveWS(w http.ResponseWriter, r *http.Request, _ principal) error {
	lv, err := s.liveService()
	if err != nil {
		return err
	}
	c, err := s.streamClaims(r, lv, true)
	if err != nil {
		return err
	}
	return liveError(lv.ServeMSE(w, r, c))
}

func (s *Server) liveMJPEG(w http.ResponseWriter, r *http.Request, _ principal) error {
	lv, err := s.liveService()
	if err != nil {
		return err
	}
	c, err := s.streamClaims(r, lv, true)
	if err != nil {
		return err
	}
	return liveError(lv.ServeMJPEG(w, r, c))
}

// liveState lists the channel's running streams (viewers, codec, state).
func (s *Server) liveState(w http.ResponseWriter, r *http.Request, p principal) error {
	ch, err := s.visibleChannel(r, p)
	if err != nil {
		return err
	}
	lv, err := s.liveService()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"channel": ch.ID, "streams": lv.Streams(ch.ID)})
	return nil
}

// liveSessions lists the channel's recent live sessions, newest first.
func (s *Server) liveSessions(w http.ResponseWriter, r *http.Request, p principal) error {
	ch, err := s.visibleChannel(r, p)
	if err != nil {
		return err
	}
	lv, err := s.liveService()
	if err != nil {
		return err
	}
	limit := 100
	for k, v := range r.URL.Query() {
		if k != "limit" {
			return errorf(http.StatusBadRequest, "unknown query parameter %q (want limit)", k)
		}
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > 1000 {
			return errorf(http.StatusBadRequest, "limit: want 1 to 1000, got %q", v[0])
		}
		limit = n
	}
	recs, err := lv.Sessions(r.Context(), ch.ID, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"channel": ch.ID, "sessions": recs})
	return nil
}

// hubLive upgrades a hub's stream socket (the hub is authenticated; the
// stream token in its header names the stream).
func (s *Server) hubLive(w http.ResponseWriter, r *http.Request, p principal) error {
	lv, err := s.liveService()
	if err != nil {
		return err
	}
	return liveError(lv.ServeHub(w, r, p.hub.ID))
}

// webPage serves the page at / and its files under /web/.
func (s *Server) webPage(w http.ResponseWriter, r *http.Request, _ principal) error {
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	if !web.Serve(w, name) {
		return errorf(http.StatusNotFound, "no file %q", name)
	}
	return nil
}
