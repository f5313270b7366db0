package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/snapshots"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// Snapshot routes (relay/internal/snapshots does the work): a client
// uploads a JPEG through a presigned PUT, or relay asks the hub to capture
// one; a listing shows each with a presigned GET once it is ready.

type snapshotView struct {
	ID      string    `json:"id"`
	Channel string    `json:"channel"`
	Camera  string    `json:"camera"`
	Source  string    `json:"source"` // client, agent, schedule
	Status  string    `json:"status"` // pending, ready, failed
	Error   string    `json:"error,omitempty"`
	Bytes   int64     `json:"bytes,omitempty"`
	Created time.Time `json:"created"`
	Ready   time.Time `json:"ready,omitzero"`
	// URL downloads the image (ready snapshots only).
	URL        string     `json:"url,omitempty"`
	URLExpires *time.Time `json:"url_expires,omitempty"`
	// Upload is where a client PUTs its image (the answer to its POST only).
	Upload *proto.Upload `json:"upload,omitempty"`
}

func newSnapshotView(sn store.Snapshot) snapshotView {
	return snapshotView{ID: sn.ID, Channel: sn.Channel, Camera: sn.Camera, Source: sn.Source, Status: sn.Status,
		Error: sn.Error, Bytes: sn.Bytes, Created: sn.Created, Ready: sn.Ready}
}

type snapshotUploadRequest struct {
	// Bytes is the exact size of the JPEG; the upload URL takes no other.
	Bytes int64 `json:"bytes"`
}

// Listing limits of GET /channels/{id}/snapshots.
const (
	defaultSnapshotLimit = 100
	maxSnapshotLimit     = 1000
)

func (s *Server) snapshotService() (*snapshots.Service, error) {
	if s.opts.Snapshots == nil {
		return nil, errorf(http.StatusServiceUnavailable, "snapshots are not enabled on this relay")
	}
	return s.opts.Snapshots, nil
}

// snapshotError maps the service's errors to statuses.
func (s *Server) snapshotError(err error) error {
	switch {
	case errors.Is(err, snapshots.ErrTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "%v", err)
	case errors.Is(err, snapshots.ErrBadRequest):
		return errorf(http.StatusBadRequest, "%v", err)
	case errors.Is(err, snapshots.ErrHubOffline):
		return errorf(http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, snapshots.ErrNoCamera):
		return errorf(http.StatusConflict, "%v", err)
	}
	return err
}

func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.snapshotService()
	if err != nil {
		return err
	}
	ch, err := s.visibleChannel(r, p)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	for k := range q {
		if k != "source" {
			return errorf(http.StatusBadRequest, "unknown query parameter %q (want source)", k)
		}
	}
	switch src := q.Get("source"); src {
	case "", store.SnapshotClient:
		var in snapshotUploadRequest
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		sn, ps, err := svc.CreateUpload(r.Context(), ch, in.Bytes)
		if err != nil {
			return s.snapshotError(err)
		}
		s.metrics.presigns.WithLabelValues(http.MethodPut).Inc()
		v := newSnapshotView(sn)
		v.Upload = &proto.Upload{Key: sn.Key, URL: ps.URL, Method: ps.Method, Headers: ps.Header, Expires: ps.Expires.UTC()}
		writeJSON(w, http.StatusCreated, v)
	case store.SnapshotAgent:
		// The hub decides the size: no body is needed, an empty object is fine.
		if r.ContentLength != 0 {
			var in struct{}
			if err := decodeJSON(r, &in); err != nil {
				return err
			}
		}
		sn, err := svc.RequestAgent(r.Context(), ch)
		if err != nil {
			return s.snapshotError(err)
		}
		writeJSON(w, http.StatusAccepted, newSnapshotView(sn))
	default:
		return errorf(http.StatusBadRequest, "source: %q is not a snapshot source (client, the default, or agent)", src)
	}
	return nil
}

// withURL adds a presigned GET to a ready snapshot.
func (s *Server) withURL(r *http.Request, sn store.Snapshot) (snapshotView, error) {
	v := newSnapshotView(sn)
	if sn.Status != store.SnapshotReady {
		return v, nil
	}
	ps, err := s.objects.PresignGet(r.Context(), sn.Key, s.opts.DownloadExpiry)
	if err != nil {
		return v, s.objectError("presign GET", sn.Key, err)
	}
	s.metrics.presigns.WithLabelValues(http.MethodGet).Inc()
	exp := ps.Expires.UTC()
	v.URL, v.URLExpires = ps.URL, &exp
	return v, nil
}

func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.snapshotService()
	if err != nil {
		return err
	}
	ch, err := s.visibleChannel(r, p)
	if err != nil {
		return err
	}
	limit := defaultSnapshotLimit
	for k, vs := range r.URL.Query() {
		if k != "limit" {
			return errorf(http.StatusBadRequest, "unknown query parameter %q (want limit)", k)
		}
		n, err := strconv.Atoi(vs[0])
		if err != nil || n < 1 || n > maxSnapshotLimit {
			return errorf(http.StatusBadRequest, "limit: must be 1 to %d, got %q", maxSnapshotLimit, vs[0])
		}
		limit = n
	}
	list, err := svc.List(r.Context(), ch.ID, limit)
	if err != nil {
		return err
	}
	out := struct {
		Channel   string         `json:"channel"`
		Snapshots []snapshotView `json:"snapshots"`
	}{Channel: ch.ID, Snapshots: make([]snapshotView, 0, len(list))}
	for _, sn := range list {
		v, err := s.withURL(r, sn)
		if err != nil {
			return err
		}
		out.Snapshots = append(out.Snapshots, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.snapshotService()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	notFound := errorf(http.StatusNotFound, "snapshot %q not found", id)
	sn, err := s.store.Snapshot(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !p.sees(sn.Tenant) {
		return notFound
	}
	if err != nil {
		return err
	}
	// A deleted channel's snapshots go with it.
	if ch, err := s.store.Channel(r.Context(), sn.Channel); errors.Is(err, store.ErrNotFound) || err == nil && ch.IsDeleted() {
		return notFound
	} else if err != nil {
		return err
	}
	if sn, err = svc.Refresh(r.Context(), sn); err != nil {
		return err
	}
	v, err := s.withURL(r, sn)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
