package store

import (
	"errors"
	"sync"
	"testing"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// TestCachedLookupsSeeWrites: the hub, camera and channel lookups are
// cached, and every write shows through at once.
func TestCachedLookupsSeeWrites(t *testing.T) {
	s := openTest(t)
	f := newFixture(t, s, "tn_a", "hub-1")
	for range 2 { // the second round reads from the cache
		if h, err := s.HubByCredentialHash(ctx, f.hub.CredentialHash); err != nil || h.ID != "hub-1" {
			t.Fatalf("hub: %+v %v", h, err)
		}
		if c, err := s.Camera(ctx, f.cam.ID); err != nil || c.Removed || c.Camera.Name != "Front" {
			t.Fatalf("camera: %+v %v", c, err)
		}
		if ch, err := s.Channel(ctx, f.ch.ID); err != nil || ch.IsDeleted() {
			t.Fatalf("channel: %+v %v", ch, err)
		}
	}
	if _, err := s.SyncCameras(ctx, f.hub, []camera.Camera{{ID: "cam1", Name: "Porch", Params: map[string]string{"a": "1"}}}, ChannelOptions{RetentionDays: 30, Now: t0}); err != nil {
		t.Fatal(err)
	}
	c, err := s.Camera(ctx, f.cam.ID)
	if err != nil || c.Camera.Name != "Porch" {
		t.Fatalf("camera after re-report: %+v %v", c, err)
	}
	c.Camera.Params["a"] = "changed by a caller"
	if c, _ := s.Camera(ctx, f.cam.ID); c.Camera.Params["a"] != "1" {
		t.Fatal("a caller's change reached the cache")
	}
	if err := s.DeleteChannel(ctx, f.ch.ID, t0); err != nil {
		t.Fatal(err)
	}
	if ch, err := s.Channel(ctx, f.ch.ID); err != nil || !ch.IsDeleted() {
		t.Fatalf("channel after delete: %+v %v", ch, err)
	}
	if _, err := s.SyncCameras(ctx, f.hub, []camera.Camera{}, ChannelOptions{RetentionDays: 30, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Camera(ctx, f.cam.ID); err != nil || !c.Removed {
		t.Fatalf("camera after removal: %+v %v", c, err)
	}
	if _, err := s.HubByCredentialHash(ctx, []byte("no such credential hash")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown credential: %v", err)
	}
}

// TestCacheRace: readers racing an update never keep a value older than
// the update once it has returned.
func TestCacheRace(t *testing.T) {
	s := openTest(t)
	f := newFixture(t, s, "tn_a", "hub-1")
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Camera(ctx, f.cam.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for _, name := range names {
		if _, err := s.SyncCameras(ctx, f.hub, []camera.Camera{{ID: "cam1", Name: name}}, ChannelOptions{RetentionDays: 30, Now: t0}); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Camera(ctx, f.cam.ID); err != nil || c.Camera.Name != name {
			t.Fatalf("after writing %q read %q (%v)", name, c.Camera.Name, err)
		}
	}
	close(stop)
	wg.Wait()
}
