package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/zipnvr/zipnvr/relay/internal/auth"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// access is who may call a route.
type access int

const (
	public    access = iota // no token
	adminOnly               // the admin token
	hubOnly                 // a hub credential
	users                   // a user token (its tenant), or the admin token (every tenant)
)

type role int

const (
	roleNone role = iota
	roleAdmin
	roleUser
	roleHub
)

// principal is who a request comes from.
type principal struct {
	role   role
	tenant string    // of a user or hub; "" for the admin
	hub    store.Hub // the calling hub
}

// sees says whether p may see an object of tenant: other tenants' objects
// answer 404, as if absent, so that ids do not leak across tenants.
func (p principal) sees(tenant string) bool {
	return p.role == roleAdmin || p.tenant == tenant
}

// scope is the tenant filter of p's listings ("" = all, for the admin).
func (p principal) scope() string { return p.tenant }

// authenticate finds who sent r. Every failure is a 401 that says nothing
// about which tokens exist.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return principal{}, errorf(http.StatusUnauthorized, "missing bearer token (Authorization: Bearer <token>)")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return principal{}, errorf(http.StatusUnauthorized, "Authorization must be Bearer <token>")
	}
	hash := auth.Hash(tok)
	if auth.HashEqual(hash, s.adminHash) {
		return principal{role: roleAdmin}, nil
	}
	invalid := errorf(http.StatusUnauthorized, "invalid token")
	// The lookup is by SHA-256 of a 256-bit secret, so timing of the index
	// reveals nothing useful; the final comparison is constant time anyway.
	switch auth.KindOf(tok) {
	case auth.User:
		u, err := s.store.UserByTokenHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) || err == nil && !auth.HashEqual(u.TokenHash, hash) {
			return principal{}, invalid
		}
		if err != nil {
			return principal{}, err
		}
		return principal{role: roleUser, tenant: u.Tenant}, nil
	case auth.Hub:
		hub, err := s.store.HubByCredentialHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) || err == nil && !auth.HashEqual(hub.CredentialHash, hash) {
			return principal{}, invalid
		}
		if err != nil {
			return principal{}, err
		}
		return principal{role: roleHub, tenant: hub.Tenant, hub: hub}, nil
	}
	return principal{}, invalid
}

// authorize checks that p may call a route of access a.
func authorize(a access, p principal) error {
	switch {
	case a == adminOnly && p.role != roleAdmin:
		return errorf(http.StatusForbidden, "this route needs the admin token")
	case a == hubOnly && p.role != roleHub:
		return errorf(http.StatusForbidden, "this route needs a hub credential")
	case a == users && p.role != roleUser && p.role != roleAdmin:
		return errorf(http.StatusForbidden, "this route needs a user token")
	}
	return nil
}
