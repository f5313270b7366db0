package live

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Record is when a live session started and stopped: Kind "stream" (a hub
// pushed a camera stream) or "viewer" (one client watched it).
type Record struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Channel     string    `json:"channel"`
	Tenant      string    `json:"tenant"`
	Hub         string    `json:"hub"`
	Camera      string    `json:"camera"`
	Quality     string    `json:"quality"`
	Transport   string    `json:"transport"` // viewer: whep, mse, mjpeg; stream: link or hub (who started it)
	Stream      string    `json:"stream,omitempty"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended,omitzero"`
	Bytes       uint64    `json:"bytes"` // stream: received from the hub; viewer: sent to it
	Frames      uint64    `json:"frames"`
	Dropped     uint64    `json:"dropped,omitempty"`
	PeakViewers int       `json:"peak_viewers,omitempty"`
	EndReason   string    `json:"end_reason,omitempty"`
}

// recordQueue bounds records waiting to be written; past it they are
// dropped with a warning (metadata, never worth stalling media for).
const recordQueue = 4096

var bucketRecords = []byte("live_sessions")

// records keeps session records in their own bbolt file, written in
// batches by one goroutine. Key: channel, 0, start (ns, big endian), id.
type records struct {
	db     *bolt.DB
	log    *slog.Logger
	keep   time.Duration
	q      chan Record
	done   chan struct{}
	closer sync.Once

	mu     sync.RWMutex // closed vs senders
	closed bool
}

func openRecords(path string, keep time.Duration, log *slog.Logger) (*records, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open live session records %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketRecords)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("live session records: %w", err)
	}
	r := &records{db: db, log: log, keep: keep, q: make(chan Record, recordQueue), done: make(chan struct{})}
	go r.writer()
	return r, nil
}

func recordKey(r Record) []byte {
	k := make([]byte, 0, len(r.Channel)+1+8+len(r.ID))
	k = append(k, r.Channel...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(r.Started.UnixNano()))
	return append(k, r.ID...)
}

func (s *Service) record(r Record) {
	if s.records == nil {
		return
	}
	s.records.mu.RLock()
	defer s.records.mu.RUnlock()
	if s.records.closed {
		return
	}
	select {
	case s.records.q <- r:
	default:
		s.metrics.recordsDropped.Inc()
		s.log.Warn("live session record dropped: writer behind", "session", r.ID)
	}
}

func (r *records) writer() {
	defer close(r.done)
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	r.prune()
	for {
		select {
		case rec, ok := <-r.q:
			if !ok {
				return
			}
			batch := []Record{rec}
		more:
			for len(batch) < 256 {
				select {
				case rec, ok := <-r.q:
					if !ok {
						break more
					}
					batch = append(batch, rec)
				default:
					break more
				}
			}
			if err := r.db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketRecords)
				for _, rec := range batch {
					val, err := json.Marshal(rec)
					if err != nil {
						return err
					}
					if err := b.Put(recordKey(rec), val); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				r.log.Error("write live session records", "n", len(batch), "err", err)
			}
		case <-prune.C:
			r.prune()
		}
	}
}

// prune deletes records that started before the retention.
func (r *records) prune() {
	cut := uint64(time.Now().Add(-r.keep).UnixNano())
	n := 0
	err := r.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(k) < i+9 || binary.BigEndian.Uint64(k[i+1:]) < cut {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		r.log.Error("prune live session records", "err", err)
	} else if n > 0 {
		r.log.Info("pruned old live session records", "n", n)
	}
}

// list returns a channel's newest records first: an index seek, not a scan.
func (r *records) list(ctx context.Context, channel string, limit int) ([]Record, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	prefix := append([]byte(channel), 0)
	out := []Record{}
	err := r.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		end := append(bytes.Clone(prefix), 0xff)
		k, _ := c.Seek(end)
		var v []byte
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Prev() {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

func (r *records) close() {
	r.closer.Do(func() {
		r.mu.Lock()
		r.closed = true
		close(r.q)
		r.mu.Unlock()
		<-r.done
		_ = r.db.Close()
	})
}
