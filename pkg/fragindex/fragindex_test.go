package fragindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func sample() Index {
	return Index{
		Timescale: 90000,
		InitSize:  700,
		InitHash:  HashInit([]byte("init")),
		EndTime:   158_760_000_000_000 + 4*90000,
		DataEnd:   700 + 4000,
		Fragments: []Fragment{
			{Offset: 700, Time: 158_760_000_000_000, Sync: true},
			{Offset: 1700, Time: 158_760_000_000_000 + 90000},
			{Offset: 2700, Time: 158_760_000_000_000 + 2*90000, Sync: true},
			{Offset: 3700, Time: 158_760_000_000_000 + 3*90000},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	ix := sample()
	b := ix.Marshal()
	size := ix.DataEnd + int64(len(b))
	n, err := TrailerSize(b[len(b)-MfroSize:], size)
	if err != nil || n != int64(len(b)) {
		t.Fatalf("TrailerSize = %d, %v; want %d", n, err, len(b))
	}
	got, err := Parse(b, size)
	if err != nil {
		t.Fatal(err)
	}
	if got.Timescale != ix.Timescale || got.InitSize != ix.InitSize || got.InitHash != ix.InitHash ||
		got.EndTime != ix.EndTime || got.DataEnd != ix.DataEnd || len(got.Fragments) != len(ix.Fragments) {
		t.Fatalf("got %+v, want %+v", got, ix)
	}
	for i := range ix.Fragments {
		if got.Fragments[i] != ix.Fragments[i] {
			t.Errorf("fragment %d: %+v, want %+v", i, got.Fragments[i], ix.Fragments[i])
		}
	}
	if got.Start() != ix.Fragments[0].Time || got.FragmentEnd(3) != ix.DataEnd || got.FragmentEndTime(1) != ix.Fragments[2].Time {
		t.Error("accessors disagree with the fragments")
	}
	// The standard tfra lists the two keyframe fragments.
	if i := bytes.Index(b, []byte("tfra")); i < 0 || binary.BigEndian.Uint32(b[i+16:]) != 2 {
		t.Errorf("tfra does not list 2 sync fragments")
	}
}

func TestParseRefuses(t *testing.T) {
	good := sample()
	tests := []struct {
		name   string
		mutate func(*Index)
	}{
		{"no fragments", func(ix *Index) { ix.Fragments = nil }},
		{"first not sync", func(ix *Index) { ix.Fragments[0].Sync = false }},
		{"first not after init", func(ix *Index) { ix.Fragments[0].Offset = 800 }},
		{"offsets out of order", func(ix *Index) { ix.Fragments[2].Offset = 1000 }},
		{"times out of order", func(ix *Index) { ix.Fragments[2].Time = ix.Fragments[1].Time }},
		{"end before last", func(ix *Index) { ix.EndTime = ix.Fragments[3].Time }},
		{"fragment past the media", func(ix *Index) { ix.Fragments[3].Offset = ix.DataEnd }},
		{"zero timescale", func(ix *Index) { ix.Timescale = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := good
			ix.Fragments = append([]Fragment(nil), good.Fragments...)
			tt.mutate(&ix)
			b := ix.Marshal()
			if _, err := Parse(b, ix.DataEnd+int64(len(b))); !errors.Is(err, ErrNoIndex) {
				t.Errorf("Parse = %v, want ErrNoIndex", err)
			}
		})
	}
	b := good.Marshal()
	if _, err := Parse(b, good.DataEnd+int64(len(b))+1); err == nil {
		t.Error("an index that does not end the object was accepted")
	}
	if _, err := TrailerSize(make([]byte, MfroSize), 1000); !errors.Is(err, ErrNoIndex) {
		t.Errorf("zero bytes as mfro: %v", err)
	}
}

// FuzzParse: a hub's trailer is outside input to relay.
func FuzzParse(f *testing.F) {
	ix := sample()
	b := ix.Marshal()
	f.Add(b, ix.DataEnd+int64(len(b)))
	f.Add(b[:40], int64(100))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		if len(b) >= MfroSize {
			_, _ = TrailerSize(b[len(b)-MfroSize:], size)
		}
		got, err := Parse(b, size)
		if err != nil {
			return
		}
		// What Parse accepts is self-consistent.
		if len(got.Fragments) == 0 || got.Fragments[0].Offset != got.InitSize || got.DataEnd+int64(len(b)) != size {
			t.Fatalf("accepted an inconsistent index %+v", got)
		}
	})
}
