package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// User routes on channels.

type channelView struct {
	ID            string    `json:"id"`
	Tenant        string    `json:"tenant"`
	Camera        string    `json:"camera"`
	Prefix        string    `json:"prefix"`
	RetentionDays int       `json:"retention_days"`
	Created       time.Time `json:"created"`
}

func newChannelView(ch store.Channel) channelView {
	return channelView{ID: ch.ID, Tenant: ch.Tenant, Camera: ch.Camera, Prefix: ch.Prefix,
		RetentionDays: ch.RetentionDays, Created: ch.Created}
}

// visibleChannel is the channel of the path if p may see it and it is not
// deleted; else 404.
func (s *Server) visibleChannel(r *http.Request, p principal) (store.Channel, error) {
	id := r.PathValue("id")
	ch, err := s.store.Channel(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && (ch.IsDeleted() || !p.sees(ch.Tenant)) {
		return ch, errorf(http.StatusNotFound, "channel %q not found", id)
	}
	return ch, err
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request, p principal) error {
	chs, err := s.store.Channels(r.Context(), store.ChannelQuery{Tenant: p.scope()})
	if err != nil {
		return err
	}
	out := struct {
		Channels []channelView `json:"channels"`
	}{Channels: []channelView{}}
	for _, ch := range chs {
		out.Channels = append(out.Channels, newChannelView(ch))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request, p principal) error {
	ch, err := s.visibleChannel(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newChannelView(ch))
	return nil
}

// deleteChannel stops recording the camera into relay at once (uploads get
// 409); its recordings and objects are removed by the retention sweeper.
func (s *Server) deleteChannel(w http.ResponseWriter, r *http.Request, p principal) error {
	ch, err := s.visibleChannel(r, p)
	if err != nil {
		return err
	}
	if err := s.store.DeleteChannel(r.Context(), ch.ID, s.now()); errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "channel %q not found", ch.ID) // deleted concurrently
	} else if err != nil {
		return err
	}
	s.log.Info("channel deleted", "tenant", ch.Tenant, "channel", ch.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
