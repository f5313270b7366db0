package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/relay/internal/auth"
)

var ctx = context.Background()

// t0 is a fixed wall-clock origin for recordings.
var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func openTest(t testing.TB) *Bolt {
	t.Helper()
	s, err := OpenBolt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fixture is a tenant with a hub that reported camera cam1 (so it has a channel).
type fixture struct {
	tenant Tenant
	hub    Hub
	cam    Camera
	ch     Channel
}

func newFixture(t testing.TB, s Store, tenant, hub string) fixture {
	t.Helper()
	f := fixture{tenant: Tenant{ID: tenant, Name: tenant, Created: t0}}
	if err := s.CreateTenant(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	f.hub = Hub{ID: hub, Tenant: tenant, CredentialHash: auth.Hash(auth.New(auth.Hub)), Created: t0}
	if err := s.CreateHub(ctx, f.hub); err != nil {
		t.Fatal(err)
	}
	cams, err := s.SyncCameras(ctx, f.hub, []camera.Camera{{ID: "cam1", Name: "Front"}}, ChannelOptions{RetentionDays: 30, Now: t0})
	if err != nil || len(cams) != 1 {
		t.Fatalf("sync: %v %+v", err, cams)
	}
	f.cam = cams[0]
	if f.ch, err = s.Channel(ctx, f.cam.Channel); err != nil {
		t.Fatal(err)
	}
	return f
}

func rec(ch Channel, start time.Time, d time.Duration) Recording {
	key := fmt.Sprintf("%scam1/%s.mp4", ch.Prefix, start.UTC().Format("20060102T150405.000Z"))
	return Recording{Channel: ch.ID, Camera: ch.Camera, Start: start, End: start.Add(d), Bytes: 1000, Codec: "h264", Key: key, ETag: "abc", Created: t0}
}

func TestAccounts(t *testing.T) {
	s := openTest(t)
	if err := s.CreateTenant(ctx, Tenant{ID: "tn_a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, Tenant{ID: "tn_a", Name: "again"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate tenant: %v", err)
	}
	tok := auth.New(auth.User)
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"user", s.CreateUser(ctx, User{ID: "us_1", Tenant: "tn_a", TokenHash: auth.Hash(tok)}), nil},
		{"user same token", s.CreateUser(ctx, User{ID: "us_2", Tenant: "tn_a", TokenHash: auth.Hash(tok)}), ErrExists},
		{"user no tenant", s.CreateUser(ctx, User{ID: "us_3", Tenant: "tn_x", TokenHash: auth.Hash(auth.New(auth.User))}), ErrNotFound},
		{"hub", s.CreateHub(ctx, Hub{ID: "hub-1", Tenant: "tn_a", CredentialHash: auth.Hash("c1")}), nil},
		{"hub same id", s.CreateHub(ctx, Hub{ID: "hub-1", Tenant: "tn_a", CredentialHash: auth.Hash("c2")}), ErrExists},
		{"hub same credential", s.CreateHub(ctx, Hub{ID: "hub-2", Tenant: "tn_a", CredentialHash: auth.Hash("c1")}), ErrExists},
		{"hub no tenant", s.CreateHub(ctx, Hub{ID: "hub-3", Tenant: "tn_x", CredentialHash: auth.Hash("c3")}), ErrNotFound},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) || (tt.want == nil) != (tt.err == nil) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if err := s.CreateHub(ctx, Hub{ID: "a.b", Tenant: "tn_a", CredentialHash: auth.Hash("c4")}); err == nil {
		t.Error("hub id with a dot accepted")
	}
	u, err := s.UserByTokenHash(ctx, auth.Hash(tok))
	if err != nil || u.ID != "us_1" || u.Tenant != "tn_a" {
		t.Fatalf("user by token: %+v %v", u, err)
	}
	if _, err := s.UserByTokenHash(ctx, auth.Hash("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	h, err := s.HubByCredentialHash(ctx, auth.Hash("c1"))
	if err != nil || h.ID != "hub-1" {
		t.Fatalf("hub by credential: %+v %v", h, err)
	}
}

func TestSyncCameras(t *testing.T) {
	s := openTest(t)
	f := newFixture(t, s, "tn_a", "hub-1")
	if f.ch.Prefix != "tn_a/"+f.ch.ID+"/" || f.ch.Camera != "hub-1.cam1" || f.ch.RetentionDays != 30 {
		t.Fatalf("auto channel %+v", f.ch)
	}
	later := t0.Add(time.Hour)
	cams, err := s.SyncCameras(ctx, f.hub, []camera.Camera{{ID: "cam2", Password: "secret"}}, ChannelOptions{RetentionDays: 7, Now: later})
	if err != nil || len(cams) != 2 {
		t.Fatalf("second sync: %v %+v", err, cams)
	}
	c1, c2 := cams[0], cams[1]
	if c1.ID != "hub-1.cam1" || !c1.Removed || c1.Channel != f.ch.ID {
		t.Errorf("cam1 after it left the list: %+v", c1)
	}
	if c2.ID != "hub-1.cam2" || c2.Removed || c2.Channel == "" || c2.Camera.Password != "" || !c2.Reported.Equal(later) {
		t.Errorf("cam2: %+v", c2)
	}
	// cam1 back: same channel, not removed; a channel deleted by a user stays deleted.
	if err := s.DeleteChannel(ctx, c2.Channel, later); err != nil {
		t.Fatal(err)
	}
	cams, err = s.SyncCameras(ctx, f.hub, []camera.Camera{{ID: "cam1"}, {ID: "cam2"}}, ChannelOptions{RetentionDays: 7, Now: later})
	if err != nil || cams[0].Removed || cams[0].Channel != f.ch.ID || cams[1].Channel != "" {
		t.Fatalf("third sync: %v %+v", err, cams)
	}
	if _, err := s.SyncCameras(ctx, f.hub, []camera.Camera{{ID: "x"}, {ID: "x"}}, ChannelOptions{Now: later}); err == nil {
		t.Fatal("duplicate camera accepted")
	}
	// Tenant scoping of listings.
	g := newFixture(t, s, "tn_b", "hub-10") // "hub-1." must not match "hub-10."
	for _, tt := range []struct {
		tenant string
		want   int
	}{{"tn_a", 2}, {"tn_b", 1}, {"", 3}, {"tn_none", 0}} {
		cs, err := s.Cameras(ctx, tt.tenant)
		if err != nil || len(cs) != tt.want {
			t.Errorf("Cameras(%q) = %d, %v; want %d", tt.tenant, len(cs), err, tt.want)
		}
	}
	chs, _ := s.Channels(ctx, ChannelQuery{Tenant: "tn_b"})
	if len(chs) != 1 || chs[0].ID != g.ch.ID {
		t.Errorf("channels of tn_b: %+v", chs)
	}
	chs, _ = s.Channels(ctx, ChannelQuery{Tenant: "tn_a"})
	all, _ := s.Channels(ctx, ChannelQuery{IncludeDeleted: true})
	if len(chs) != 1 || len(all) != 3 {
		t.Errorf("channels of tn_a %d (want 1 active), all %d (want 3)", len(chs), len(all))
	}
}

func TestEnsureAndDeleteChannel(t *testing.T) {
	s := openTest(t)
	f := newFixture(t, s, "tn_a", "hub-1")
	opts := ChannelOptions{RetentionDays: 5, Now: t0}
	ch, created, err := s.EnsureChannel(ctx, f.cam.ID, opts)
	if err != nil || created || ch.ID != f.ch.ID {
		t.Fatalf("existing channel: %+v %v %v", ch, created, err)
	}
	if err := s.DeleteChannel(ctx, f.ch.ID, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteChannel(ctx, f.ch.ID, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.PutRecordings(ctx, []Recording{rec(f.ch, t0, time.Second)}); !errors.Is(err, ErrChannelGone) {
		t.Fatalf("recording on a deleted channel: %v", err)
	}
	ch, created, err = s.EnsureChannel(ctx, f.cam.ID, opts)
	if err != nil || !created || ch.ID == f.ch.ID || ch.RetentionDays != 5 {
		t.Fatalf("new channel: %+v %v %v", ch, created, err)
	}
	if _, _, err := s.EnsureChannel(ctx, "hub-1.nope", opts); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown camera: %v", err)
	}
	// Purge: only deleted channels without recordings.
	if _, err := s.PutRecordings(ctx, []Recording{rec(ch, t0, time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PurgeChannel(ctx, ch.ID); err == nil {
		t.Fatal("purged an active channel")
	}
	s.DeleteChannel(ctx, ch.ID, t0)
	if err := s.PurgeChannel(ctx, ch.ID); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("purge with recordings: %v", err)
	}
	if err := s.PurgeChannel(ctx, f.ch.ID); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if _, err := s.Channel(ctx, f.ch.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("purged channel: %v", err)
	}
}

func TestPutRecordingsIdempotent(t *testing.T) {
	s := openTest(t)
	f := newFixture(t, s, "tn_a", "hub-1")
	r := rec(f.ch, t0.Add(123456789*time.Nanosecond), 4*time.Second)
	res, err := s.PutRecordings(ctx, []Recording{r, r})
	if err != nil || len(res) != 2 || !res[0].Created || res[1].Created {
		t.Fatalf("put twice in one call: %+v %v", res, err)
	}
	got := res[0].Recording
	if got.ID != RecordingID(r.Key) || !got.Start.Equal(t0.Add(123*time.Millisecond)) || got.Start.Location() != time.UTC {
		t.Fatalf("stored %+v", got)
	}
	again := r
	again.Bytes = 999 // a repeated notify returns what is stored
	res, err = s.PutRecordings(ctx, []Recording{again})
	if err != nil || res[0].Created || res[0].Recording != got {
		t.Fatalf("repeat: %+v %v, want %+v", res, err, got)
	}
	byID, err := s.Recording(ctx, got.ID)
	if err != nil || byID != got {
		t.Fatalf("Recording(id) = %+v %v", byID, err)
	}
	// All or nothing: one bad channel refuses the whole call.
	ok := rec(f.ch, t0.Add(time.Minute), time.Second)
	bad := rec(Channel{ID: "ch_none", Prefix: "x/"}, t0, time.Second)
	if _, err := s.PutRecordings(ctx, []Recording{ok, bad}); !errors.Is(err, ErrChannelGone) {
		t.Fatalf("bad channel: %v", err)
	}
	if _, err := s.Recording(ctx, RecordingID(ok.Key)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("half of a refused call stored: %v", err)
	}
	for _, b := range []Recording{
		{Channel: f.ch.ID, Start: t0, End: t0.Add(time.Second)},                     // no key
		{Key: "k", Start: t0, End: t0.Add(time.Second)},                             // no channel
		{Key: "k", Channel: f.ch.ID, Start: t0, End: t0},                            // empty
		{Key: "k", Channel: f.ch.ID, Start: t0, End: t0.Add(2 * time.Hour)},         // too long
		{Key: "k", Channel: f.ch.ID, Start: time.Unix(-5, 0), End: time.Unix(1, 0)}, // before 1970
		{Key: "k", ID: "wrong", Channel: f.ch.ID, Start: t0, End: t0.Add(time.Second)},
	} {
		if _, err := s.PutRecordings(ctx, []Recording{b}); err == nil {
			t.Errorf("accepted %+v", b)
		}
	}
}

func TestRecordingsRange(t *testing.T) {
	s := openTest(t)
	f := newFixture(t, s, "tn_a", "hub-1")
	g := newFixture(t, s, "tn_b", "hub-2")
	// 10 s recordings back to back from t0, on both channels.
	var recs []Recording
	for i := range 100 {
		recs = append(recs, rec(f.ch, t0.Add(time.Duration(i)*10*time.Second), 10*time.Second),
			rec(g.ch, t0.Add(time.Duration(i)*10*time.Second), 10*time.Second))
	}
	if _, err := s.PutRecordings(ctx, recs); err != nil {
		t.Fatal(err)
	}
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	tests := []struct {
		name      string
		from, to  time.Time
		limit     int
		wantFirst time.Time
		wantN     int
	}{
		{"all", at(-3600), at(5000), 1000, at(0), 100},
		{"aligned", at(100), at(200), 1000, at(100), 10},
		{"overlap at both ends", at(105), at(195), 1000, at(100), 10},
		{"inside one", at(101), at(102), 1000, at(100), 1},
		{"end is exclusive", at(95), at(100), 1000, at(90), 1},
		{"before", at(-100), at(0), 1000, time.Time{}, 0},
		{"after", at(1000), at(2000), 1000, time.Time{}, 0},
		{"limit", at(0), at(1000), 7, at(0), 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Recordings(ctx, RecordingQuery{Channel: f.ch.ID, From: tt.from, To: tt.to, Limit: tt.limit})
			if err != nil || len(got) != tt.wantN {
				t.Fatalf("got %d, %v; want %d", len(got), err, tt.wantN)
			}
			for i, r := range got {
				if r.Channel != f.ch.ID || (i > 0 && !r.Start.After(got[i-1].Start)) {
					t.Fatalf("recording %d: %+v", i, r)
				}
			}
			if tt.wantN > 0 && !got[0].Start.Equal(tt.wantFirst) {
				t.Fatalf("first starts %v, want %v", got[0].Start, tt.wantFirst)
			}
		})
	}
	// Paging with After visits every recording once.
	var all []Recording
	q := RecordingQuery{Channel: f.ch.ID, From: at(0), To: at(1000), Limit: 30}
	for {
		page, err := s.Recordings(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < q.Limit {
			break
		}
		last := page[len(page)-1]
		q.After = &Cursor{Start: last.Start, ID: last.ID}
	}
	if len(all) != 100 {
		t.Fatalf("paging returned %d recordings, want 100", len(all))
	}
	if _, err := s.Recordings(ctx, RecordingQuery{Channel: f.ch.ID, From: at(0), To: at(1)}); err == nil {
		t.Fatal("listing without a limit")
	}
	ids := []string{all[0].ID, all[1].ID, "unknown"}
	if err := s.DeleteRecordings(ctx, ids); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Recordings(ctx, RecordingQuery{Channel: f.ch.ID, From: at(0), To: at(1000), Limit: 1000})
	if len(got) != 98 || got[0].ID != all[2].ID {
		t.Fatalf("after delete: %d", len(got))
	}
}

// TestListingSeeks checks that a listing visits its results (plus the
// look-back window), not the channel's or the store's other recordings.
func TestListingSeeks(t *testing.T) {
	s := openTest(t)
	f := newFixture(t, s, "tn_a", "hub-1")
	g := newFixture(t, s, "tn_b", "hub-2")
	// 4 s recordings for 12 hours on two channels, in batches like a drain.
	for b := range 20 {
		var recs []Recording
		for i := b * 540; i < (b+1)*540; i++ {
			start := t0.Add(time.Duration(i) * 4 * time.Second)
			recs = append(recs, rec(f.ch, start, 4*time.Second), rec(g.ch, start, 4*time.Second))
		}
		if _, err := s.PutRecordings(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	q := RecordingQuery{Channel: f.ch.ID, From: t0.Add(10 * time.Hour), To: t0.Add(10*time.Hour + time.Minute), Limit: 1000}
	var got []Recording
	var visited int
	s.db.View(func(tx *bolt.Tx) error {
		var err error
		got, visited, err = listRecordings(tx, q)
		return err
	})
	lookBack := int(MaxRecordingDuration / (4 * time.Second))
	if len(got) != 15 || visited > len(got)+lookBack+1 {
		t.Fatalf("%d results, %d entries visited (want 15 and at most %d)", len(got), visited, 15+lookBack+1)
	}
}

func TestConcurrentPutsShareCommits(t *testing.T) {
	s := openTest(t)
	f := newFixture(t, s, "tn_a", "hub-1")
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rec(f.ch, t0.Add(time.Duration(i%200)*time.Second), time.Second) // each twice
			res, err := s.PutRecordings(ctx, []Recording{r})
			if err == nil && res[0].Recording.ID != RecordingID(r.Key) {
				err = fmt.Errorf("result %+v", res[0])
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.Recordings(ctx, RecordingQuery{Channel: f.ch.ID, From: t0, To: t0.Add(time.Hour), Limit: 1000})
	if len(got) != 200 {
		t.Fatalf("%d recordings, want 200", len(got))
	}
	s.Close()
	if _, err := s.PutRecordings(ctx, []Recording{rec(f.ch, t0, time.Second)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s, "tn_a", "hub-1")
	r := rec(f.ch, t0, time.Second)
	s.PutRecordings(ctx, []Recording{r})
	if _, err := OpenBolt(dir); err == nil || !errors.Is(err, err) {
		t.Fatal("second open of a locked store succeeded")
	}
	s.Close()
	s, err = OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Recording(ctx, RecordingID(r.Key)); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}
