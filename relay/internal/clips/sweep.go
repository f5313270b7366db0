package clips

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// sweepEvery: retention is in days, so a quarter of an hour late is nothing.
const sweepEvery = 15 * time.Minute

// SweepStats counts what one retention pass removed.
type SweepStats struct {
	Clips, Snapshots int
}

func (c *Coordinator) sweepLogged(ctx context.Context) {
	st, err := c.Sweep(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		c.log.Error("clip and snapshot retention failed", "err", err)
	case st.Clips > 0 || st.Snapshots > 0:
		c.log.Info("clip and snapshot retention", "clips_removed", st.Clips, "snapshots_removed", st.Snapshots)
	}
}

// Sweep applies the channels' retention to clips and snapshots, as to
// recordings: a clip ending before the cutoff goes unless pinned, a
// snapshot taken before it goes; a deleted channel loses them all. The
// object goes first, then the metadata.
func (c *Coordinator) Sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	now := c.now()
	channels := map[string]*store.Channel{}
	channel := func(id string) (*store.Channel, error) {
		if ch, ok := channels[id]; ok {
			return ch, nil
		}
		ch, err := c.cfg.Store.Channel(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			channels[id] = nil
			return nil, nil
		case err != nil:
			return nil, err
		}
		channels[id] = &ch
		return &ch, nil
	}
	expired := func(ch *store.Channel, t time.Time, pinned bool) bool {
		if ch == nil || ch.IsDeleted() {
			return true // a deleted channel takes everything with it
		}
		return !pinned && t.Before(now.Add(-time.Duration(ch.RetentionDays)*24*time.Hour))
	}
	clips, err := c.cfg.Store.ChannelClips(ctx, "")
	if err != nil {
		return st, fmt.Errorf("list clips: %w", err)
	}
	for _, cl := range clips {
		ch, err := channel(cl.Channel)
		if err != nil {
			return st, err
		}
		if !expired(ch, cl.End, cl.Pinned) {
			continue
		}
		if err := c.Delete(ctx, cl); err != nil {
			return st, fmt.Errorf("delete clip %s: %w", cl.ID, err)
		}
		st.Clips++
	}
	snaps, err := c.cfg.Store.ChannelSnapshots(ctx, "", 0)
	if err != nil {
		return st, fmt.Errorf("list snapshots: %w", err)
	}
	for _, sn := range snaps {
		ch, err := channel(sn.Channel)
		if err != nil {
			return st, err
		}
		if !expired(ch, sn.Created, false) {
			continue
		}
		if err := c.cfg.Objects.Delete(ctx, sn.Key); err != nil {
			return st, fmt.Errorf("delete snapshot %s: %w", sn.ID, err)
		}
		if err := c.cfg.Store.DeleteSnapshot(ctx, sn.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return st, fmt.Errorf("delete snapshot %s: %w", sn.ID, err)
		}
		st.Snapshots++
	}
	return st, nil
}
