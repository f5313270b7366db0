package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Snapshots of the Bolt store.
var (
	bSnapshots        = []byte("snapshots")         // id -> Snapshot
	bChannelSnapshots = []byte("channel_snapshots") // <channel>|<created ms, be64>|<id>
)

// Snapshot sources and statuses.
const (
	SnapshotClient   = "client"   // a user uploads it through a presigned PUT
	SnapshotAgent    = "agent"    // the hub captured it on a user's request
	SnapshotSchedule = "schedule" // the hub captured it as a scheduled thumbnail

	SnapshotPending = "pending"
	SnapshotReady   = "ready"
	SnapshotFailed  = "failed"
)

// Snapshot is one still image of a channel.
type Snapshot struct {
	ID      string `json:"id"`
	Tenant  string `json:"tenant"`
	Channel string `json:"channel"`
	Camera  string `json:"camera"` // <hub>.<camera>
	Source  string `json:"source"`
	Status  string `json:"status"`
	// Error says why a snapshot failed (camera unreachable, not a JPEG...).
	Error string `json:"error,omitempty"`
	Key   string `json:"key"`
	// Bytes is the signed size of an upload, then the object's.
	Bytes   int64     `json:"bytes"`
	Created time.Time `json:"created"`
	// UploadExpires: a pending upload not done by then has failed.
	UploadExpires time.Time `json:"upload_expires,omitzero"`
	Ready         time.Time `json:"ready,omitzero"`
}

// PutSnapshot stores s, new or changed.
func (s *Bolt) PutSnapshot(ctx context.Context, sn Snapshot) error {
	sn.Created = MS(sn.Created)
	if sn.ID == "" || sn.Channel == "" {
		return fmt.Errorf("put snapshot: id and channel required")
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		if err := createBuckets(tx, bSnapshots, bChannelSnapshots); err != nil {
			return err
		}
		var old Snapshot
		switch err := get(tx, bSnapshots, sn.ID, &old); {
		case err == nil:
			if old.Channel != sn.Channel || !old.Created.Equal(sn.Created) {
				return fmt.Errorf("put snapshot %s: channel or creation time changed", sn.ID)
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if err := put(tx, bSnapshots, sn.ID, sn); err != nil {
			return err
		}
		return tx.Bucket(bChannelSnapshots).Put(createdKey(sn.Channel, sn.Created, sn.ID), nil)
	})
}

// Snapshot returns one snapshot.
func (s *Bolt) Snapshot(ctx context.Context, id string) (Snapshot, error) {
	var sn Snapshot
	err := s.view(ctx, func(tx *bolt.Tx) error { return getIn(tx, bSnapshots, id, &sn) })
	return sn, err
}

// ChannelSnapshots lists a channel's snapshots, newest first, at most limit
// (0: all); channel "" lists every channel's (for the retention sweep).
func (s *Bolt) ChannelSnapshots(ctx context.Context, channel string, limit int) ([]Snapshot, error) {
	var out []Snapshot
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bChannelSnapshots)
		if b == nil {
			return nil
		}
		prefix := []byte(channel + "|")
		c := b.Cursor()
		var k []byte
		if channel == "" {
			prefix = nil
			k, _ = c.Last()
		} else {
			// Seek past the channel's last key, then walk back.
			if k, _ = c.Seek([]byte(channel + "}")); k == nil { // '}' sorts right after '|'
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		}
		for ; k != nil && hasPrefix(k, prefix); k, _ = c.Prev() {
			var sn Snapshot
			if err := get(tx, bSnapshots, idOfCreatedKey(k), &sn); err != nil {
				return fmt.Errorf("snapshot index %q: %w", k, err)
			}
			out = append(out, sn)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// DeleteSnapshot forgets a snapshot (the caller deletes its object first).
func (s *Bolt) DeleteSnapshot(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		var sn Snapshot
		if err := getIn(tx, bSnapshots, id, &sn); err != nil {
			return err
		}
		if err := tx.Bucket(bSnapshots).Delete([]byte(id)); err != nil {
			return err
		}
		return tx.Bucket(bChannelSnapshots).Delete(createdKey(sn.Channel, sn.Created, id))
	})
}
