package retention

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

type fakeDeleter struct {
	mu      sync.Mutex
	deleted map[string]bool
	failOn  string
}

func (f *fakeDeleter) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if key == f.failOn {
		return errors.New("object store down")
	}
	f.deleted[key] = true
	return nil
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s, err := store.OpenBolt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.CreateTenant(ctx, store.Tenant{ID: "tn_a"})
	hub := store.Hub{ID: "hub-1", Tenant: "tn_a", CredentialHash: []byte("h")}
	s.CreateHub(ctx, hub)
	cams, err := s.SyncCameras(ctx, hub, []camera.Camera{{ID: "keep"}, {ID: "gone"}}, store.ChannelOptions{RetentionDays: 2, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	keep, gone := cams[1].Channel, cams[0].Channel // sorted by id: gone, keep
	ages := []time.Duration{72 * time.Hour, 49 * time.Hour, 47 * time.Hour, time.Hour}
	var recs []store.Recording
	for _, ch := range []string{keep, gone} {
		for i, age := range ages {
			start := now.Add(-age)
			recs = append(recs, store.Recording{Channel: ch, Start: start, End: start.Add(time.Minute), Key: fmt.Sprintf("%s/%d.mp4", ch, i)})
		}
	}
	if _, err := s.PutRecordings(ctx, recs); err != nil {
		t.Fatal(err)
	}
	s.DeleteChannel(ctx, gone, now)

	objects := &fakeDeleter{deleted: map[string]bool{}, failOn: keep + "/1.mp4"}
	sw := &Sweeper{Store: s, Objects: objects, Now: func() time.Time { return now }, Batch: 2}
	st, err := sw.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// keep: 0 removed, 1 failed (kept for the next pass), 2 and 3 young; gone: all 4, then forgotten.
	if st.Recordings != 5 || st.Channels != 1 || st.Failed != 1 {
		t.Fatalf("first pass %+v", st)
	}
	if _, err := s.Channel(ctx, gone); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted channel not forgotten: %v", err)
	}
	objects.failOn = ""
	if st, err = sw.Sweep(ctx); err != nil || st.Recordings != 1 || st.Failed != 0 {
		t.Fatalf("second pass %+v %v", st, err)
	}
	left, _ := s.Recordings(ctx, store.RecordingQuery{Channel: keep, From: now.Add(-100 * time.Hour), To: now, Limit: 10})
	if len(left) != 2 || left[0].Key != keep+"/2.mp4" {
		t.Fatalf("left %+v", left)
	}
	for _, k := range []string{keep + "/0.mp4", keep + "/1.mp4", gone + "/3.mp4"} {
		if !objects.deleted[k] {
			t.Errorf("object %s not deleted", k)
		}
	}
	if objects.deleted[keep+"/2.mp4"] {
		t.Error("a recording within retention was deleted")
	}
}
