package snapshots_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/relay/internal/clips"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/media"
	"github.com/zipnvr/zipnvr/relay/internal/snapshots"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// jpegHead is enough of a JPEG for relay's check (SOI, JFIF, SOF0 640x360, EOI).
var jpegHead = []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
	0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0x68, 0x02, 0x80, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9}

// TestRetention: snapshots go with their channel's retention as recordings
// do, object and entry, in relay's retention pass (the clip coordinator's
// sweep, which relay runs): those older than the retention, and at once
// every snapshot of a deleted channel.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }

	st, err := store.OpenBolt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	local, err := media.NewLocal(media.LocalConfig{Dir: t.TempDir(), BaseURL: srv.URL + "/media", Secret: bytes.Repeat([]byte{7}, 32), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/media/", local.Handler())

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateTenant(ctx, store.Tenant{ID: "tn_1", Name: "home", Created: now()}))
	hub := store.Hub{ID: "hub1", Tenant: "tn_1", CredentialHash: []byte("x"), Created: now()}
	must(st.CreateHub(ctx, hub))
	cams, err := st.SyncCameras(ctx, hub, []camera.Camera{
		{ID: "cam1", Streams: camera.Streams{MJPEG: "http://192.0.2.1/a"}, Record: "off"},
		{ID: "cam2", Streams: camera.Streams{MJPEG: "http://192.0.2.1/b"}, Record: "off"},
	}, store.ChannelOptions{RetentionDays: 1, Now: now()})
	must(err)

	svc, err := snapshots.New(snapshots.Config{Store: st, Objects: local, Links: hublink.New(hublink.Config{}), Now: now})
	must(err)
	defer svc.Close()
	take := func(chID string) store.Snapshot {
		ch, err := st.Channel(ctx, chID)
		must(err)
		sn, ps, err := svc.CreateUpload(ctx, ch, int64(len(jpegHead)))
		must(err)
		req, err := ps.NewRequest(ctx, bytes.NewReader(jpegHead))
		must(err)
		resp, err := http.DefaultClient.Do(req)
		must(err)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT: %s", resp.Status)
		}
		if sn, err = svc.Get(ctx, sn.ID); err != nil || sn.Status != store.SnapshotReady {
			t.Fatalf("snapshot %+v, %v", sn, err)
		}
		return sn
	}
	old := take(cams[0].Channel)
	gone := take(cams[1].Channel)
	mu.Lock()
	clock = clock.Add(20 * time.Hour)
	mu.Unlock()
	young := take(cams[0].Channel)

	coord, err := clips.New(clips.Config{Store: st, Objects: local, Hubs: hublink.New(hublink.Config{}), Now: now})
	must(err)
	sweep := func(want int) {
		t.Helper()
		stats, err := coord.Sweep(ctx)
		if err != nil || stats.Snapshots != want {
			t.Fatalf("sweep: %+v, %v; want %d snapshots removed", stats, err, want)
		}
	}
	present := func(sn store.Snapshot) bool {
		t.Helper()
		_, err := st.Snapshot(ctx, sn.ID)
		_, herr := local.Head(ctx, sn.Key)
		if (err == nil) != (herr == nil) {
			t.Fatalf("snapshot %s: entry %v, object %v: one without the other", sn.ID, err, herr)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	sweep(0)
	must(st.DeleteChannel(ctx, cams[1].Channel, now()))
	sweep(1)
	if present(gone) || !present(old) || !present(young) {
		t.Fatal("a deleted channel's snapshot is not the only one gone")
	}
	mu.Lock()
	clock = clock.Add(5 * time.Hour) // old is 25 h old, young 5 h; retention 1 day
	mu.Unlock()
	sweep(1)
	if present(old) || !present(young) {
		t.Fatal("retention removed the wrong snapshot")
	}
}
