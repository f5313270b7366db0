package store

import (
	"errors"
	"testing"
	"time"
)

func TestClips(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A store from before clips existed has no clip buckets: reads see none.
	if cs, err := s.OpenClips(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("OpenClips on a fresh store: %v, %v", cs, err)
	}
	if _, err := s.Clip(ctx, "cl_x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Clip of a fresh store: %v", err)
	}
	if _, err := s.ClipLayout(ctx, "cl_x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ClipLayout of a fresh store: %v", err)
	}
	mk := func(id, ch string, created time.Time) Clip {
		return Clip{ID: id, Tenant: "tn", Channel: ch, Camera: "hub.cam1", Start: t0, End: t0.Add(time.Minute),
			Status: ClipInProgress, Created: created, Deadline: created.Add(time.Hour)}
	}
	a, b, c := mk("cl_a", "ch1", t0.Add(2*time.Second)), mk("cl_b", "ch1", t0.Add(time.Second)), mk("cl_c", "ch2", t0)
	for _, cl := range []Clip{a, b, c} {
		if err := s.PutClip(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	a.Status, a.Key, a.Bytes = ClipFinished, "tn/ch1/_clips/cl_a.mp4", 1234
	a.Gaps = []Gap{{Start: t0, End: t0.Add(time.Second), Reason: "not recorded"}}
	if err := s.PutClip(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.PutClipLayout(ctx, "cl_a", []byte("layout")); err != nil {
		t.Fatal(err)
	}
	moved := c
	moved.Channel = "ch1"
	if err := s.PutClip(ctx, moved); err == nil {
		t.Error("a clip moved to another channel")
	}
	// Everything survives a reopen.
	s.Close()
	if s, err = OpenBolt(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	open, err := s.OpenClips(ctx)
	if err != nil || len(open) != 2 {
		t.Fatalf("OpenClips = %+v, %v; want b and c", open, err)
	}
	list, err := s.ChannelClips(ctx, "ch1")
	if err != nil || len(list) != 2 || list[0].ID != "cl_b" || list[1].ID != "cl_a" {
		t.Fatalf("ChannelClips(ch1) = %+v, %v; want b, a (by creation)", list, err)
	}
	if got := list[1]; got.Status != ClipFinished || got.Bytes != 1234 || len(got.Gaps) != 1 || got.Gaps[0].Reason != "not recorded" {
		t.Errorf("clip a read back as %+v", got)
	}
	if l, err := s.ClipLayout(ctx, "cl_a"); err != nil || string(l) != "layout" {
		t.Errorf("ClipLayout = %q, %v", l, err)
	}
	if all, err := s.ChannelClips(ctx, ""); err != nil || len(all) != 3 {
		t.Errorf("every channel's clips: %d, %v", len(all), err)
	}
	if err := s.DeleteClip(ctx, "cl_a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Clip(ctx, "cl_a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted clip: %v", err)
	}
	if _, err := s.ClipLayout(ctx, "cl_a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted clip's layout: %v", err)
	}
	if err := s.DeleteClip(ctx, "cl_a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if list, _ := s.ChannelClips(ctx, "ch1"); len(list) != 1 {
		t.Errorf("after delete, ch1 lists %d clips", len(list))
	}
	if err := s.PutClipLayout(ctx, "cl_a", []byte("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("layout of a deleted clip: %v", err)
	}
}

func TestSnapshots(t *testing.T) {
	s := openTest(t)
	if list, err := s.ChannelSnapshots(ctx, "ch1", 0); err != nil || len(list) != 0 {
		t.Fatalf("fresh store: %v, %v", list, err)
	}
	for i, ch := range []string{"ch1", "ch1", "ch2", "ch1", "ch10"} {
		sn := Snapshot{ID: "sn_" + string(rune('a'+i)), Tenant: "tn", Channel: ch, Camera: "hub.cam1",
			Source: SnapshotClient, Status: SnapshotPending, Key: "k", Created: t0.Add(time.Duration(i) * time.Second)}
		if err := s.PutSnapshot(ctx, sn); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ChannelSnapshots(ctx, "ch1", 0)
	if err != nil || len(list) != 3 || list[0].ID != "sn_d" || list[2].ID != "sn_a" {
		t.Fatalf("ChannelSnapshots(ch1) = %+v, %v; want d, b, a", list, err)
	}
	if list, _ := s.ChannelSnapshots(ctx, "ch1", 2); len(list) != 2 || list[0].ID != "sn_d" {
		t.Errorf("limit 2: %+v", list)
	}
	if list, _ := s.ChannelSnapshots(ctx, "ch10", 0); len(list) != 1 || list[0].ID != "sn_e" {
		t.Errorf("ch10 (sorts after ch1|...): %+v", list)
	}
	if all, err := s.ChannelSnapshots(ctx, "", 0); err != nil || len(all) != 5 {
		t.Errorf("every channel's snapshots: %d, %v", len(all), err)
	}
	sn, _ := s.Snapshot(ctx, "sn_b")
	sn.Status, sn.Bytes = SnapshotReady, 2000
	if err := s.PutSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Snapshot(ctx, "sn_b"); got.Status != SnapshotReady || got.Bytes != 2000 {
		t.Errorf("updated snapshot read back as %+v", got)
	}
	if err := s.DeleteSnapshot(ctx, "sn_b"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ChannelSnapshots(ctx, "ch1", 0); len(list) != 2 {
		t.Errorf("after delete: %+v", list)
	}
	if err := s.DeleteSnapshot(ctx, "sn_b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}
