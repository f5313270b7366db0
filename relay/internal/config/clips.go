package config

import (
	"fmt"
	"time"
)

// Clips configures clip building (docs/clips.md).
type Clips struct {
	// MaxWaitMinutes bounds how long after its range ends (or after its
	// creation, if later) a clip waits for recordings still to be uploaded
	// (a hub offline with a backlog): what has not arrived by then is a
	// gap. A clip's deadline is fixed when it is created.
	MaxWaitMinutes int `yaml:"max_wait_minutes"`
}

// Bounds of clips.max_wait_minutes: a minute, and the longest a hub could
// hold a backlog worth waiting for (the default retention, 30 days).
const (
	minClipWaitMinutes = 1
	maxClipWaitMinutes = 30 * 24 * 60
)

func defaultClips() Clips { return Clips{MaxWaitMinutes: 24 * 60} }

// MaxWait is MaxWaitMinutes as a duration.
func (c Clips) MaxWait() time.Duration { return time.Duration(c.MaxWaitMinutes) * time.Minute }

func (c Clips) validate() error {
	if c.MaxWaitMinutes < minClipWaitMinutes || c.MaxWaitMinutes > maxClipWaitMinutes {
		return &KeyError{Key: "clips.max_wait_minutes", Reason: fmt.Sprintf("must be %d to %d (30 days), got %d", minClipWaitMinutes, maxClipWaitMinutes, c.MaxWaitMinutes)}
	}
	return nil
}
