package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Clips of the Bolt store. Their buckets (and the snapshots') are created
// on first write: reads of a store without them see none.
var (
	bClips        = []byte("clips")         // id -> Clip
	bChannelClips = []byte("channel_clips") // <channel>|<created ms, be64>|<id>
	bOpenClips    = []byte("open_clips")    // id of every clip in progress
	bClipLayouts  = []byte("clip_layouts")  // id -> the clip file's layout (opaque to the store)
)

// Clip statuses.
const (
	ClipInProgress = "in_progress"
	ClipFinished   = "finished"
	ClipFailed     = "failed"
)

// Clip is a time range of a channel cut into one MP4 file.
type Clip struct {
	ID      string    `json:"id"`
	Tenant  string    `json:"tenant"`
	Channel string    `json:"channel"`
	Camera  string    `json:"camera"` // <hub>.<camera>
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Status  string    `json:"status"`
	// Reason says why a clip failed.
	Reason  string    `json:"reason,omitempty"`
	Pinned  bool      `json:"pinned,omitempty"`
	Created time.Time `json:"created"`
	// Deadline: what has not arrived by then is a gap.
	Deadline time.Time `json:"deadline"`
	Finished time.Time `json:"finished,omitzero"`
	// Recordings are those the file was built from (set when finished;
	// while in progress, they are the channel's recordings in the range).
	Recordings []ClipRecording `json:"recordings,omitempty"`
	Gaps       []Gap           `json:"gaps,omitempty"`
	// The file, once finished.
	Key        string    `json:"key,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	MediaStart time.Time `json:"media_start,omitzero"` // the keyframe at or before Start
	MediaEnd   time.Time `json:"media_end,omitzero"`
	// Attempts counts failed builds (the object store failing, say).
	Attempts int `json:"attempts,omitempty"`
}

// ClipRecording is a recording a clip is made of.
type ClipRecording struct {
	ID    string    `json:"id"`
	Key   string    `json:"key"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Bytes int64     `json:"bytes"`
}

// Gap is part of a clip's range that holds no video, and why.
type Gap struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason"`
}

func createdKey(channel string, created time.Time, id string) []byte {
	k := make([]byte, 0, len(channel)+len(id)+10)
	k = append(k, channel...)
	k = append(k, '|')
	k = binary.BigEndian.AppendUint64(k, uint64(created.UnixMilli()))
	k = append(k, '|')
	return append(k, id...)
}

func createBuckets(tx *bolt.Tx, names ...[]byte) error {
	for _, n := range names {
		if _, err := tx.CreateBucketIfNotExists(n); err != nil {
			return fmt.Errorf("bucket %s: %w", n, err)
		}
	}
	return nil
}

// getIn is get for a bucket that may not exist yet.
func getIn(tx *bolt.Tx, bucket []byte, key string, v any) error {
	if tx.Bucket(bucket) == nil {
		return ErrNotFound
	}
	return get(tx, bucket, key, v)
}

// PutClip stores c, new or changed; the channel and creation time of a clip
// never change.
func (s *Bolt) PutClip(ctx context.Context, c Clip) error {
	c.Start, c.End, c.Created = MS(c.Start), MS(c.End), MS(c.Created)
	if c.ID == "" || c.Channel == "" {
		return fmt.Errorf("put clip: id and channel required")
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		if err := createBuckets(tx, bClips, bChannelClips, bOpenClips, bClipLayouts); err != nil {
			return err
		}
		var old Clip
		switch err := get(tx, bClips, c.ID, &old); {
		case err == nil:
			if old.Channel != c.Channel || !old.Created.Equal(c.Created) {
				return fmt.Errorf("put clip %s: channel or creation time changed", c.ID)
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if err := put(tx, bClips, c.ID, c); err != nil {
			return err
		}
		if err := tx.Bucket(bChannelClips).Put(createdKey(c.Channel, c.Created, c.ID), nil); err != nil {
			return err
		}
		if c.Status == ClipInProgress {
			return tx.Bucket(bOpenClips).Put([]byte(c.ID), nil)
		}
		return tx.Bucket(bOpenClips).Delete([]byte(c.ID))
	})
}

// Clip returns a clip by id.
func (s *Bolt) Clip(ctx context.Context, id string) (Clip, error) {
	var c Clip
	err := s.view(ctx, func(tx *bolt.Tx) error { return getIn(tx, bClips, id, &c) })
	return c, err
}

// idOfCreatedKey is the id at the end of a createdKey.
func idOfCreatedKey(k []byte) string {
	i := bytes.IndexByte(k, '|')
	if i < 0 || len(k) < i+10 {
		return ""
	}
	return string(k[i+10:])
}

// ChannelClips lists a channel's clips ("" = every channel's, for the
// retention sweep), by channel then creation time.
func (s *Bolt) ChannelClips(ctx context.Context, channel string) ([]Clip, error) {
	var out []Clip
	prefix := []byte(channel + "|")
	if channel == "" {
		prefix = nil
	}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bChannelClips) == nil {
			return nil
		}
		return scanPrefix(tx, bChannelClips, prefix, func(k, _ []byte) error {
			var c Clip
			if err := get(tx, bClips, idOfCreatedKey(k), &c); err != nil {
				return fmt.Errorf("clip index %q: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// OpenClips lists every clip in progress (a restarted relay resumes them).
func (s *Bolt) OpenClips(ctx context.Context) ([]Clip, error) {
	var out []Clip
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bOpenClips)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			var c Clip
			if err := get(tx, bClips, string(k), &c); err != nil {
				return fmt.Errorf("open clip %s: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// DeleteClip forgets a clip and its layout (the caller deletes its object
// first); ErrNotFound when absent.
func (s *Bolt) DeleteClip(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		var c Clip
		if err := getIn(tx, bClips, id, &c); err != nil {
			return err
		}
		for _, d := range []struct {
			b []byte
			k []byte
		}{{bClips, []byte(id)}, {bChannelClips, createdKey(c.Channel, c.Created, id)}, {bOpenClips, []byte(id)}, {bClipLayouts, []byte(id)}} {
			if err := tx.Bucket(d.b).Delete(d.k); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutClipLayout stores the layout of a clip's file (its HLS segments).
func (s *Bolt) PutClipLayout(ctx context.Context, id string, layout []byte) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if err := createBuckets(tx, bClips, bChannelClips, bOpenClips, bClipLayouts); err != nil {
			return err
		}
		if tx.Bucket(bClips).Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return tx.Bucket(bClipLayouts).Put([]byte(id), layout)
	})
}

// ClipLayout returns what PutClipLayout stored.
func (s *Bolt) ClipLayout(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bClipLayouts)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}
