// Package retention removes expired recordings: those older than their
// channel's retention, and every recording of a deleted channel. The object
// goes first, then the metadata, so a crash in between leaves a recording
// whose object is gone (removed again on the next pass: Delete of an absent
// object succeeds), never an object nothing points to.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// Deleter removes objects; a missing object is no error.
type Deleter interface {
	Delete(ctx context.Context, key string) error
}

// Sweeper sweeps the store. Fields are set before Run or Sweep.
type Sweeper struct {
	Store   store.Store
	Objects Deleter
	Log     *slog.Logger
	Now     func() time.Time // default time.Now
	// Batch is how many recordings one metadata transaction removes.
	Batch int
}

// Stats of one pass.
type Stats struct {
	Recordings int // removed
	Channels   int // deleted channels forgotten
	Failed     int // object deletions that failed (retried next pass)
}

// endOfTime is past every recording: a deleted channel loses them all.
var endOfTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Run sweeps at once and then every interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st, err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log().Error("retention sweep failed", "err", err)
		case st.Recordings > 0 || st.Channels > 0 || st.Failed > 0:
			s.log().Info("retention sweep", "recordings_removed", st.Recordings, "channels_forgotten", st.Channels, "object_deletes_failed", st.Failed)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Sweeper) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// Sweep makes one pass over every channel.
func (s *Sweeper) Sweep(ctx context.Context) (Stats, error) {
	var st Stats
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	chans, err := s.Store.Channels(ctx, store.ChannelQuery{IncludeDeleted: true})
	if err != nil {
		return st, fmt.Errorf("list channels: %w", err)
	}
	for _, ch := range chans {
		cutoff := now().Add(-time.Duration(ch.RetentionDays) * 24 * time.Hour)
		if ch.IsDeleted() {
			cutoff = endOfTime
		}
		done, err := s.sweepChannel(ctx, ch, cutoff, &st)
		if err != nil {
			return st, err
		}
		if done && ch.IsDeleted() {
			if err := s.Store.PurgeChannel(ctx, ch.ID); err != nil {
				return st, fmt.Errorf("purge channel %s: %w", ch.ID, err)
			}
			st.Channels++
		}
	}
	return st, nil
}

// sweepChannel removes the channel's recordings that start before cutoff;
// done says none is left (an object deletion failure stops the channel
// until the next pass).
func (s *Sweeper) sweepChannel(ctx context.Context, ch store.Channel, cutoff time.Time, st *Stats) (done bool, err error) {
	batch := s.Batch
	if batch <= 0 {
		batch = 1000
	}
	for {
		recs, err := s.Store.Recordings(ctx, store.RecordingQuery{Channel: ch.ID, From: time.UnixMilli(0), To: cutoff, Limit: batch})
		if err != nil {
			return false, fmt.Errorf("list recordings of %s: %w", ch.ID, err)
		}
		var ids []string
		var failed error
		for _, r := range recs {
			if failed = s.Objects.Delete(ctx, r.Key); failed != nil {
				st.Failed++
				s.log().Warn("delete object failed; retrying next pass", "channel", ch.ID, "key", r.Key, "err", failed)
				break
			}
			ids = append(ids, r.ID)
		}
		if err := s.Store.DeleteRecordings(ctx, ids); err != nil {
			return false, fmt.Errorf("delete recordings of %s: %w", ch.ID, err)
		}
		st.Recordings += len(ids)
		if failed != nil {
			return false, ctx.Err()
		}
		if len(recs) < batch {
			return true, nil
		}
	}
}
