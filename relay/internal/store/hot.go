package store

import (
	"sync"
)

// hotCache keeps the small, read-mostly entities every hub request looks up
// (the hub behind a credential, its camera, the camera's channel), so that
// a recording notice reads bbolt once instead of four times. bbolt is
// single-process (the file is locked), so this process sees every write:
// each update transaction empties the cache after it commits, and a lookup
// stores what it read only if no update finished meanwhile.
type hotCache[V any] struct {
	mu      sync.Mutex
	gen     uint64
	entries map[string]V
}

// maxHotEntries bounds a cache; past it, the cache starts over.
const maxHotEntries = 100_000

func (c *hotCache[V]) get(key string) (V, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[key]
	return v, ok, c.gen
}

// put stores v read under generation gen, unless an update has finished since.
func (c *hotCache[V]) put(key string, v V, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.entries == nil || len(c.entries) >= maxHotEntries {
		c.entries = map[string]V{}
	}
	c.entries[key] = v
}

func (c *hotCache[V]) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = nil
}

// cached reads key through c: load runs only on a miss, and misses
// (ErrNotFound and other errors) are not remembered.
func cached[V any](c *hotCache[V], key string, load func() (V, error)) (V, error) {
	v, ok, gen := c.get(key)
	if ok {
		return v, nil
	}
	v, err := load()
	if err == nil {
		c.put(key, v, gen)
	}
	return v, err
}
