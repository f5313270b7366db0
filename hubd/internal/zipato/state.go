package zipato

import (
	"context"
	"encoding/json"
	"time"
)

// CameraState is what hubd publishes, retained, on
// <root>cameras/<id>/state. It never carries a credential.
type CameraState struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Online: the camera's stream session is up (false for a camera not recorded).
	Online bool `json:"online"`
	// Recording: a recorder runs for it (record is not off).
	Recording bool   `json:"recording"`
	Record    string `json:"record"` // high, mid, low, mjpeg or off
	PTZ       bool   `json:"ptz"`
	Source    string `json:"source,omitempty"` // config, device_tree_file, zipato_mqtt, onvif
	// LastSegment is when the last fragment reached the disk.
	LastSegment *time.Time `json:"last_segment,omitempty"`
	// UploadBacklog counts the camera's closed segments not yet uploaded.
	UploadBacklog int    `json:"upload_backlog"`
	LastError     string `json:"last_error,omitempty"`
}

// publishLoop publishes each camera's state when it changed, every
// StateInterval, and clears the retained state of cameras that are gone.
func (c *Client) publishLoop(ctx context.Context) {
	if c.cfg.State == nil {
		return
	}
	t := time.NewTicker(c.cfg.StateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.PublishState()
	}
}

// PublishState publishes the changed states now (also called by the hub
// right after a change, so that a record on/off shows at once).
func (c *Client) PublishState() {
	if c.cfg.State == nil || !c.connected.Load() {
		return
	}
	states := c.cfg.State()
	c.mu.Lock()
	force := c.republish
	c.republish = false
	c.mu.Unlock()
	seen := map[string]bool{}
	for _, st := range states {
		if !validUUID(st.ID) {
			continue
		}
		seen[st.ID] = true
		// LastSegment moves with every fragment; publish it at most once
		// per interval, which is what the ticker gives.
		c.mu.Lock()
		old, had := c.published[st.ID]
		c.mu.Unlock()
		if had && !force && statesEqual(old, st) {
			continue
		}
		data, err := json.Marshal(st)
		if err != nil {
			continue
		}
		if c.publish(c.topic(cameraTopic+st.ID+stateSuffix), true, data) {
			c.mu.Lock()
			c.published[st.ID] = st
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	var gone []string
	for id := range c.published {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	c.mu.Unlock()
	for _, id := range gone {
		// An empty retained message deletes the retained state.
		if c.publish(c.topic(cameraTopic+id+stateSuffix), true, nil) {
			c.mu.Lock()
			delete(c.published, id)
			c.mu.Unlock()
		}
	}
}

func statesEqual(a, b CameraState) bool {
	at, bt := a.LastSegment, b.LastSegment
	a.LastSegment, b.LastSegment = nil, nil
	if a != b {
		return false
	}
	switch {
	case at == nil || bt == nil:
		return at == bt
	default:
		return at.Equal(*bt)
	}
}
