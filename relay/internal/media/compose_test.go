package media

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
)

// composer is a Store that also composes (both implementations are).
type composer interface {
	Store
	Composer
}

// TestComposers runs the object operations relay does itself against both
// stores: ranged reads, small puts, and server-side composition with the
// store's part rules.
func TestComposers(t *testing.T) {
	for _, impl := range []struct {
		name string
		mk   func(t *testing.T) composer
	}{
		{"local", func(t *testing.T) composer { _, l, _ := newLocalEnv(t); return l }},
		{"s3", func(t *testing.T) composer { _, s, _ := newS3Env(t); return s }},
	} {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			c := impl.mk(t)
			testRanges(t, c)
			testCompose(t, c)
		})
	}
}

func testRanges(t *testing.T, c composer) {
	body := randBytes(100_000)
	key := "tenant/ch/range test/a b.bin"
	put(t, c, key, body, "application/octet-stream")
	for _, r := range []struct{ off, n, want int64 }{{0, 3, 3}, {99_990, 100, 10}, {500, 4096, 4096}} {
		got, err := c.GetRange(ctxT(t), key, r.off, r.n)
		if err != nil || int64(len(got)) != r.want || !bytes.Equal(got, body[r.off:r.off+r.want]) {
			t.Errorf("GetRange(%d, %d) = %d bytes, %v; want %d bytes of the object", r.off, r.n, len(got), err, r.want)
		}
	}
	if _, err := c.GetRange(ctxT(t), "tenant/ch/absent", 0, 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRange of an absent key: %v, want ErrNotFound", err)
	}
	if _, err := c.GetRange(ctxT(t), key, 0, MaxRangeBytes+1); err == nil {
		t.Error("GetRange above MaxRangeBytes accepted")
	}

	small := []byte("relay's own small object")
	if err := c.Put(ctxT(t), "tenant/ch/own.txt", small, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if info, err := c.Head(ctxT(t), "tenant/ch/own.txt"); err != nil || info.Size != int64(len(small)) || info.ContentType != "text/plain" {
		t.Errorf("Head after Put: %+v, %v", info, err)
	}
	if err := c.Put(ctxT(t), "tenant/ch/big", make([]byte, MaxSmallPut+1), "text/plain"); err == nil {
		t.Error("Put above MaxSmallPut accepted")
	}
}

func testCompose(t *testing.T, c composer) {
	unit := max(c.MinPartBytes(), 200_000)
	a, b := randBytes(int(unit)+1000), randBytes(int(unit)+500)
	put(t, c, "tenant/ch/cam1/seg a.mp4", a, "video/mp4")
	put(t, c, "tenant/ch/cam1/seg-b.mp4", b, "video/mp4")
	parts := []Part{
		{Key: "tenant/ch/cam1/seg a.mp4", Offset: 10, Length: unit},
		{Key: "tenant/ch/cam1/seg-b.mp4", Offset: 0, Length: unit},
		{Key: "tenant/ch/cam1/seg a.mp4", Offset: 0, Length: 7}, // the last part may be tiny
	}
	want := append(append(append([]byte(nil), a[10:10+unit]...), b[:unit]...), a[:7]...)
	info, err := c.Compose(ctxT(t), "tenant/ch/_clips/x.mp4", parts, "video/mp4")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(want)) || info.ContentType != "video/mp4" {
		t.Errorf("composed object: %+v, want %d bytes of video/mp4", info, len(want))
	}
	st, got, _ := get(t, c, "tenant/ch/_clips/x.mp4", nil)
	if st != http.StatusOK || !bytes.Equal(got, want) {
		t.Errorf("composed object: GET %d, %d bytes, equal to the parts: %v", st, len(got), bytes.Equal(got, want))
	}

	// A small part before the last is refused before anything is written.
	if c.MinPartBytes() > 1 {
		bad := []Part{{Key: parts[0].Key, Length: 100}, parts[1]}
		if _, err := c.Compose(ctxT(t), "tenant/ch/_clips/y.mp4", bad, "video/mp4"); !errors.Is(err, ErrPartTooSmall) {
			t.Errorf("small first part: %v, want ErrPartTooSmall", err)
		}
		mustNotExist(t, c, "tenant/ch/_clips/y.mp4")
	}
	// A missing source fails the composition and leaves no object.
	missing := []Part{parts[0], {Key: "tenant/ch/cam1/absent.mp4", Length: 10}}
	if _, err := c.Compose(ctxT(t), "tenant/ch/_clips/z.mp4", missing, "video/mp4"); err == nil {
		t.Error("composition from an absent object succeeded")
	}
	mustNotExist(t, c, "tenant/ch/_clips/z.mp4")
	// A range past the end of its object fails too.
	past := []Part{{Key: parts[2].Key, Offset: int64(len(a)) - 5, Length: 10}}
	if _, err := c.Compose(ctxT(t), "tenant/ch/_clips/w.mp4", past, "video/mp4"); err == nil {
		t.Errorf("a range past the end of a %d-byte object was composed", len(a))
	}
	mustNotExist(t, c, "tenant/ch/_clips/w.mp4")
}
