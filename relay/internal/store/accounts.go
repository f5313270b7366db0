package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Tenants, users and hubs of the Bolt store.

func (s *Bolt) CreateTenant(ctx context.Context, t Tenant) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if err := insert(tx, bTenants, t.ID, t); err != nil {
			return fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		return nil
	})
}

func (s *Bolt) Tenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	err := s.view(ctx, func(tx *bolt.Tx) error { return get(tx, bTenants, id, &t) })
	return t, err
}

func (s *Bolt) CreateUser(ctx context.Context, u User) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bTenants).Get([]byte(u.Tenant)) == nil {
			return fmt.Errorf("tenant %s: %w", u.Tenant, ErrNotFound)
		}
		if len(u.TokenHash) == 0 || tx.Bucket(bUserTokens).Get(u.TokenHash) != nil {
			return fmt.Errorf("user token: %w", ErrExists)
		}
		if err := insert(tx, bUsers, u.ID, u); err != nil {
			return fmt.Errorf("user %s: %w", u.ID, err)
		}
		return tx.Bucket(bUserTokens).Put(u.TokenHash, []byte(u.ID))
	})
}

func (s *Bolt) UserByTokenHash(ctx context.Context, hash []byte) (User, error) {
	var u User
	err := s.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bUserTokens).Get(hash)
		if id == nil {
			return ErrNotFound
		}
		return get(tx, bUsers, string(id), &u)
	})
	return u, err
}

func (s *Bolt) CreateHub(ctx context.Context, h Hub) error {
	if !ValidHubID(h.ID) {
		return fmt.Errorf("hub id %q: must be 1-64 of A-Z a-z 0-9 _ - (no dot)", h.ID)
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bTenants).Get([]byte(h.Tenant)) == nil {
			return fmt.Errorf("tenant %s: %w", h.Tenant, ErrNotFound)
		}
		if len(h.CredentialHash) == 0 || tx.Bucket(bHubCreds).Get(h.CredentialHash) != nil {
			return fmt.Errorf("hub credential: %w", ErrExists)
		}
		if err := insert(tx, bHubs, h.ID, h); err != nil {
			return fmt.Errorf("hub %s: %w", h.ID, err)
		}
		return tx.Bucket(bHubCreds).Put(h.CredentialHash, []byte(h.ID))
	})
}

func (s *Bolt) Hub(ctx context.Context, id string) (Hub, error) {
	var h Hub
	err := s.view(ctx, func(tx *bolt.Tx) error { return get(tx, bHubs, id, &h) })
	return h, err
}

func (s *Bolt) HubByCredentialHash(ctx context.Context, hash []byte) (Hub, error) {
	return cached(&s.hubsByCred, string(hash), func() (Hub, error) {
		var h Hub
		err := s.view(ctx, func(tx *bolt.Tx) error {
			id := tx.Bucket(bHubCreds).Get(hash)
			if id == nil {
				return ErrNotFound
			}
			return get(tx, bHubs, string(id), &h)
		})
		return h, err
	})
}
