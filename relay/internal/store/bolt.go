package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket layout. Values are JSON unless said otherwise; the tenant index values are empty.
var (
	bTenants        = []byte("tenants")         // id -> Tenant
	bUsers          = []byte("users")           // id -> User
	bUserTokens     = []byte("user_tokens")     // sha256(token) -> user id
	bHubs           = []byte("hubs")            // id -> Hub
	bHubCreds       = []byte("hub_credentials") // sha256(credential) -> hub id
	bCameras        = []byte("cameras")         // <hub>.<cam> -> Camera (a hub's cameras share the prefix "<hub>.")
	bTenantCameras  = []byte("tenant_cameras")  // <tenant>|<camera id>
	bChannels       = []byte("channels")        // id -> Channel
	bTenantChannels = []byte("tenant_channels") // <tenant>|<channel id>
	bRecordings     = []byte("recordings")      // <channel>|<start ms, be64>|<id> -> binary (encodeValue)
	bRecordingIDs   = []byte("recording_ids")   // id -> its key in bRecordings

	allBuckets = [][]byte{bTenants, bUsers, bUserTokens, bHubs, bHubCreds, bCameras,
		bTenantCameras, bChannels, bTenantChannels, bRecordings, bRecordingIDs}
)

// DBFile is the metadata file below the data dir.
const DBFile = "relay.db"

// Bolt is the bbolt Store.
type Bolt struct {
	db        *bolt.DB
	put       *committer
	closeOnce sync.Once
	// Read-through caches of hub requests' lookups; see hotCache.
	hubsByCred hotCache[Hub]
	cameras    hotCache[Camera]
	channels   hotCache[Channel]
	closeErr   error
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating) the store in dir/relay.db. A second relay on the
// same file fails after a second instead of waiting forever for the lock.
func OpenBolt(dir string) (*Bolt, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, DBFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: locked by another relay", path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return &Bolt{db: db, put: newCommitter(db)}, nil
}

// Close waits for pending recording commits, then closes the file.
func (s *Bolt) Close() error {
	s.closeOnce.Do(func() {
		s.put.close()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

func (s *Bolt) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func (s *Bolt) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.invalidate() // after the commit: see hotCache
	return s.db.Update(fn)
}

func (s *Bolt) invalidate() {
	s.hubsByCred.invalidate()
	s.cameras.invalidate()
	s.channels.invalidate()
}

// get decodes the JSON value at key into v, or returns ErrNotFound.
func get(tx *bolt.Tx, bucket []byte, key string, v any) error {
	data := tx.Bucket(bucket).Get([]byte(key))
	if data == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return nil
}

func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), data)
}

// insert is put that refuses an existing key.
func insert(tx *bolt.Tx, bucket []byte, key string, v any) error {
	if tx.Bucket(bucket).Get([]byte(key)) != nil {
		return ErrExists
	}
	return put(tx, bucket, key, v)
}

// indexKey is "<a>|<b>" for the tenant indexes.
func indexKey(a, b string) []byte { return []byte(a + "|" + b) }

// scanPrefix calls fn with every key in bucket that starts with prefix,
// from a cursor seek.
func scanPrefix(tx *bolt.Tx, bucket, prefix []byte, fn func(k, v []byte) error) error {
	c := tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

// Path is the metadata file.
func (s *Bolt) Path() string { return s.db.Path() }
