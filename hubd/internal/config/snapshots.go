package config

import (
	"fmt"
	"time"
)

// Snapshots configures the hub's scheduled thumbnails: every camera with a
// snapshot URL or an MJPEG stream is captured every EveryMinutes and
// uploaded to relay (which lists them as source "schedule"). Snapshots a
// user asks for need no setting.
type Snapshots struct {
	// EveryMinutes is the period (fractions allowed, at least 0.1); 0
	// (default) turns scheduled thumbnails off. They need relay.url.
	EveryMinutes float64 `yaml:"every_minutes"`
}

// maxSnapshotMinutes is a day: a longer period is a mistake in the unit.
const maxSnapshotMinutes = 24 * 60

func (s Snapshots) validate() error {
	// Written so that NaN fails too.
	if !(s.EveryMinutes == 0 || s.EveryMinutes >= 0.1 && s.EveryMinutes <= maxSnapshotMinutes) {
		return &KeyError{Key: "snapshots.every_minutes", Reason: fmt.Sprintf("must be 0 (off) or 0.1 to %d, got %g", maxSnapshotMinutes, s.EveryMinutes)}
	}
	return nil
}

// Every is the thumbnail period; 0 when off.
func (s Snapshots) Every() time.Duration {
	return time.Duration(s.EveryMinutes * float64(time.Minute))
}
