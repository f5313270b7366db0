package api

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/zipnvr/zipnvr/relay/internal/auth"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// Admin routes: tenants, and the users and hubs of a tenant. Secrets are in
// the creation answer only: relay keeps their hashes.

type nameRequest struct {
	Name string `json:"name"`
}

type hubRequest struct {
	ID string `json:"id"`
}

type tenantView struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

type userView struct {
	ID      string    `json:"id"`
	Tenant  string    `json:"tenant"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Token   string    `json:"token"` // shown once
}

type hubView struct {
	ID         string    `json:"id"`
	Tenant     string    `json:"tenant"`
	Created    time.Time `json:"created"`
	Credential string    `json:"credential"` // shown once: goes into hubd's relay.credential
}

// checkName refuses empty, overlong or control-character names.
func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", errorf(http.StatusBadRequest, "name: must be 1-200 characters")
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", errorf(http.StatusBadRequest, "name: must not contain control characters")
	}
	return name, nil
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request, _ principal) error {
	var in nameRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	name, err := checkName(in.Name)
	if err != nil {
		return err
	}
	t := store.Tenant{ID: store.NewID("tn"), Name: name, Created: store.MS(s.now())}
	if err := s.store.CreateTenant(r.Context(), t); err != nil {
		return err
	}
	s.log.Info("tenant created", "tenant", t.ID)
	writeJSON(w, http.StatusCreated, tenantView{ID: t.ID, Name: t.Name, Created: t.Created})
	return nil
}

// tenantOf is the tenant named in the path, or a 404.
func (s *Server) tenantOf(r *http.Request) (store.Tenant, error) {
	t, err := s.store.Tenant(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return t, errorf(http.StatusNotFound, "tenant %q not found", r.PathValue("id"))
	}
	return t, err
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ principal) error {
	var in nameRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	name, err := checkName(in.Name)
	if err != nil {
		return err
	}
	t, err := s.tenantOf(r)
	if err != nil {
		return err
	}
	tok := auth.New(auth.User)
	u := store.User{ID: store.NewID("us"), Tenant: t.ID, Name: name, TokenHash: auth.Hash(tok), Created: store.MS(s.now())}
	if err := s.store.CreateUser(r.Context(), u); err != nil {
		return err
	}
	s.log.Info("user created", "tenant", t.ID, "user", u.ID)
	writeJSON(w, http.StatusCreated, userView{ID: u.ID, Tenant: t.ID, Name: name, Created: u.Created, Token: tok})
	return nil
}

func (s *Server) createHub(w http.ResponseWriter, r *http.Request, _ principal) error {
	var in hubRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if !store.ValidHubID(in.ID) {
		return errorf(http.StatusBadRequest, "id: must be 1-64 of A-Z a-z 0-9 _ - starting with a letter or digit (no dot), got %q", in.ID)
	}
	t, err := s.tenantOf(r)
	if err != nil {
		return err
	}
	cred := auth.New(auth.Hub)
	h := store.Hub{ID: in.ID, Tenant: t.ID, CredentialHash: auth.Hash(cred), Created: store.MS(s.now())}
	if err := s.store.CreateHub(r.Context(), h); errors.Is(err, store.ErrExists) {
		// Hub ids are global (they prefix camera ids).
		return errorf(http.StatusConflict, "hub %q exists already", in.ID)
	} else if err != nil {
		return err
	}
	s.log.Info("hub registered", "tenant", t.ID, "hub", h.ID)
	writeJSON(w, http.StatusCreated, hubView{ID: h.ID, Tenant: t.ID, Created: h.Created, Credential: cred})
	return nil
}
