package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Cameras and channels of the Bolt store.

func (s *Bolt) SyncCameras(ctx context.Context, hub Hub, cams []camera.Camera, opts ChannelOptions) ([]Camera, error) {
	now := MS(opts.Now)
	var out []Camera
	err := s.update(ctx, func(tx *bolt.Tx) error {
		out = out[:0]
		existing := map[string]Camera{}
		err := scanPrefix(tx, bCameras, []byte(hub.ID+"."), func(k, v []byte) error {
			var c Camera
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode camera %s: %w", k, err)
			}
			existing[c.ID] = c
			return nil
		})
		if err != nil {
			return err
		}
		reported := map[string]bool{}
		for _, cam := range cams {
			cam.Password = "" // never stored, whatever the caller passed
			id := CameraID(hub.ID, cam.ID)
			if reported[id] {
				return fmt.Errorf("camera %s reported twice", cam.ID)
			}
			reported[id] = true
			c, ok := existing[id]
			if !ok {
				c = Camera{ID: id, Tenant: hub.Tenant, Hub: hub.ID, Created: now}
				ch, err := createChannel(tx, hub.Tenant, id, opts)
				if err != nil {
					return err
				}
				c.Channel = ch.ID
				if err := tx.Bucket(bTenantCameras).Put(indexKey(hub.Tenant, id), nil); err != nil {
					return err
				}
			}
			c.Camera, c.Removed, c.Reported = cam, false, now
			if err := put(tx, bCameras, id, c); err != nil {
				return err
			}
			existing[id] = c
		}
		for id, c := range existing {
			if !reported[id] && !c.Removed {
				c.Removed = true
				if err := put(tx, bCameras, id, c); err != nil {
					return err
				}
				existing[id] = c
			}
		}
		for _, c := range existing {
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sync cameras of hub %s: %w", hub.ID, err)
	}
	sortCameras(out)
	return out, nil
}

func (s *Bolt) Camera(ctx context.Context, id string) (Camera, error) {
	c, err := cached(&s.cameras, id, func() (Camera, error) {
		var c Camera
		err := s.view(ctx, func(tx *bolt.Tx) error { return get(tx, bCameras, id, &c) })
		return c, err
	})
	// The cached value is shared: hand out a map of the caller's own.
	c.Camera.Params = maps.Clone(c.Camera.Params)
	return c, err
}

func (s *Bolt) Cameras(ctx context.Context, tenant string) ([]Camera, error) {
	var out []Camera
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if tenant == "" {
			return tx.Bucket(bCameras).ForEach(func(k, v []byte) error {
				var c Camera
				if err := json.Unmarshal(v, &c); err != nil {
					return fmt.Errorf("decode camera %s: %w", k, err)
				}
				out = append(out, c)
				return nil
			})
		}
		prefix := indexKey(tenant, "")
		return scanPrefix(tx, bTenantCameras, prefix, func(k, _ []byte) error {
			var c Camera
			if err := get(tx, bCameras, string(k[len(prefix):]), &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	sortCameras(out)
	return out, err
}

// createChannel adds a channel for a camera (the caller links the camera).
func createChannel(tx *bolt.Tx, tenant, cameraID string, opts ChannelOptions) (Channel, error) {
	ch := Channel{Tenant: tenant, Camera: cameraID, RetentionDays: opts.RetentionDays, Created: MS(opts.Now)}
	for {
		ch.ID = NewID("ch")
		if tx.Bucket(bChannels).Get([]byte(ch.ID)) == nil {
			break // 64 random bits: a collision is theoretical, but cheap to rule out
		}
	}
	ch.Prefix = ChannelPrefix(tenant, ch.ID)
	if err := put(tx, bChannels, ch.ID, ch); err != nil {
		return ch, err
	}
	return ch, tx.Bucket(bTenantChannels).Put(indexKey(tenant, ch.ID), nil)
}

func (s *Bolt) EnsureChannel(ctx context.Context, cameraID string, opts ChannelOptions) (Channel, bool, error) {
	var ch Channel
	var created bool
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var c Camera
		if err := get(tx, bCameras, cameraID, &c); err != nil {
			return err
		}
		if c.Channel != "" {
			created = false
			return get(tx, bChannels, c.Channel, &ch)
		}
		var err error
		if ch, err = createChannel(tx, c.Tenant, c.ID, opts); err != nil {
			return err
		}
		created, c.Channel = true, ch.ID
		return put(tx, bCameras, c.ID, c)
	})
	return ch, created, err
}

func (s *Bolt) Channel(ctx context.Context, id string) (Channel, error) {
	return cached(&s.channels, id, func() (Channel, error) {
		var ch Channel
		err := s.view(ctx, func(tx *bolt.Tx) error { return get(tx, bChannels, id, &ch) })
		return ch, err
	})
}

func (s *Bolt) Channels(ctx context.Context, q ChannelQuery) ([]Channel, error) {
	var out []Channel
	keep := func(ch Channel) {
		if q.IncludeDeleted || !ch.IsDeleted() {
			out = append(out, ch)
		}
	}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if q.Tenant == "" {
			return tx.Bucket(bChannels).ForEach(func(k, v []byte) error {
				var ch Channel
				if err := json.Unmarshal(v, &ch); err != nil {
					return fmt.Errorf("decode channel %s: %w", k, err)
				}
				keep(ch)
				return nil
			})
		}
		prefix := indexKey(q.Tenant, "")
		return scanPrefix(tx, bTenantChannels, prefix, func(k, _ []byte) error {
			var ch Channel
			if err := get(tx, bChannels, string(k[len(prefix):]), &ch); err != nil {
				return err
			}
			keep(ch)
			return nil
		})
	})
	return out, err
}

func (s *Bolt) DeleteChannel(ctx context.Context, id string, at time.Time) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		var ch Channel
		if err := get(tx, bChannels, id, &ch); err != nil {
			return err
		}
		if ch.IsDeleted() {
			return ErrNotFound
		}
		ch.Deleted = MS(at)
		if err := put(tx, bChannels, id, ch); err != nil {
			return err
		}
		var c Camera
		switch err := get(tx, bCameras, ch.Camera, &c); {
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		if c.Channel != id {
			return nil
		}
		c.Channel = ""
		return put(tx, bCameras, c.ID, c)
	})
}

func (s *Bolt) PurgeChannel(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		var ch Channel
		if err := get(tx, bChannels, id, &ch); err != nil {
			return err
		}
		if !ch.IsDeleted() {
			return fmt.Errorf("purge channel %s: not deleted", id)
		}
		prefix := recordingPrefix(id)
		if k, _ := tx.Bucket(bRecordings).Cursor().Seek(prefix); k != nil && hasPrefix(k, prefix) {
			return ErrNotEmpty
		}
		if err := tx.Bucket(bChannels).Delete([]byte(id)); err != nil {
			return err
		}
		return tx.Bucket(bTenantChannels).Delete(indexKey(ch.Tenant, id))
	})
}

func sortCameras(cs []Camera) {
	// Map order is random; ids make listings stable.
	slices.SortFunc(cs, func(a, b Camera) int { return strings.Compare(a.ID, b.ID) })
}
