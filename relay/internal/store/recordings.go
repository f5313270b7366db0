package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Recordings of the Bolt store. A recording's key is
// "<channel>|<start ms, big-endian uint64>|<id>": a channel's recordings are
// contiguous and sorted by start, so a time range is one cursor Seek plus as
// many Next calls as there are results (with 1 M recordings, a scan would not do).

// A recording's value is binary: end, bytes, created (be64 each, times in
// ms), then camera, codec, key and etag as uvarint-length strings. End comes
// first so that a listing skips what ends before From without decoding.

func encodeValue(r Recording) []byte {
	v := make([]byte, 0, 24+len(r.Camera)+len(r.Codec)+len(r.Key)+len(r.ETag)+8)
	v = binary.BigEndian.AppendUint64(v, uint64(r.End.UnixMilli()))
	v = binary.BigEndian.AppendUint64(v, uint64(r.Bytes))
	v = binary.BigEndian.AppendUint64(v, uint64(r.Created.UnixMilli()))
	for _, str := range []string{r.Camera, r.Codec, r.Key, r.ETag} {
		v = binary.AppendUvarint(v, uint64(len(str)))
		v = append(v, str...)
	}
	return v
}

// valueEnd is the end (ms) of an encoded recording.
func valueEnd(v []byte) int64 { return int64(binary.BigEndian.Uint64(v)) }

func decodeValue(v []byte, r *Recording) error {
	if len(v) < 24 {
		return errors.New("value too short")
	}
	r.End = time.UnixMilli(valueEnd(v)).UTC()
	r.Bytes = int64(binary.BigEndian.Uint64(v[8:]))
	r.Created = time.UnixMilli(int64(binary.BigEndian.Uint64(v[16:]))).UTC()
	v = v[24:]
	for _, dst := range []*string{&r.Camera, &r.Codec, &r.Key, &r.ETag} {
		n, w := binary.Uvarint(v)
		if w <= 0 || uint64(len(v)-w) < n {
			return errors.New("truncated string")
		}
		*dst = string(v[w : w+int(n)])
		v = v[w+int(n):]
	}
	return nil
}

func recordingPrefix(channel string) []byte { return []byte(channel + "|") }

func recordingKey(channel string, startMS int64, id string) []byte {
	k := make([]byte, 0, len(channel)+len(id)+10)
	k = append(k, channel...)
	k = append(k, '|')
	k = binary.BigEndian.AppendUint64(k, uint64(startMS))
	k = append(k, '|')
	return append(k, id...)
}

// channelOfKey is the channel part of a recording key (channel ids have no "|").
func channelOfKey(k []byte) string {
	if i := bytes.IndexByte(k, '|'); i >= 0 {
		return string(k[:i])
	}
	return string(k)
}

// decodeRecording rebuilds a recording from its key and value.
func decodeRecording(channel string, k, v []byte) (Recording, error) {
	if len(k) < len(channel)+10 {
		return Recording{}, fmt.Errorf("recording key %q is too short", k)
	}
	rest := k[len(channel)+1:] // start(8) | id
	r := Recording{
		ID:      string(rest[9:]),
		Channel: channel,
		Start:   time.UnixMilli(int64(binary.BigEndian.Uint64(rest[:8]))).UTC(),
	}
	if err := decodeValue(v, &r); err != nil {
		return Recording{}, fmt.Errorf("decode recording %q: %w", k, err)
	}
	return r, nil
}

// checkRecording normalizes r (UTC, ms, ID from Key) and refuses what the
// key layout cannot hold.
func checkRecording(r *Recording) error {
	r.Start, r.End, r.Created = MS(r.Start), MS(r.End), MS(r.Created)
	switch {
	case r.Key == "":
		return errors.New("recording without a key")
	case r.Channel == "":
		return fmt.Errorf("recording %s without a channel", r.Key)
	case r.Start.UnixMilli() < 0:
		return fmt.Errorf("recording %s starts before 1970", r.Key)
	case !r.End.After(r.Start):
		return fmt.Errorf("recording %s ends before it starts", r.Key)
	case r.End.Sub(r.Start) > MaxRecordingDuration:
		return fmt.Errorf("recording %s lasts more than %s", r.Key, MaxRecordingDuration)
	}
	if id := RecordingID(r.Key); r.ID == "" {
		r.ID = id
	} else if r.ID != id {
		return fmt.Errorf("recording %s: id %s is not the hash of its key", r.Key, r.ID)
	}
	return nil
}

func (s *Bolt) PutRecordings(ctx context.Context, recs []Recording) ([]PutResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	recs = append([]Recording(nil), recs...)
	for i := range recs {
		if err := checkRecording(&recs[i]); err != nil {
			return nil, err
		}
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return s.put.submit(ctx, recs)
}

// putRecordings writes one caller's recordings inside a shared transaction.
// It checks everything before writing anything, so that a refused request
// leaves no trace: refused is the caller's error, failed the transaction's.
func putRecordings(tx *bolt.Tx, recs []Recording) (res []PutResult, refused, failed error) {
	channels := map[string]bool{}
	for _, r := range recs {
		if _, ok := channels[r.Channel]; ok {
			continue
		}
		var ch Channel
		err := get(tx, bChannels, r.Channel, &ch)
		if errors.Is(err, ErrNotFound) || err == nil && ch.IsDeleted() {
			return nil, fmt.Errorf("recording %s: channel %s: %w", r.Key, r.Channel, ErrChannelGone), nil
		}
		if err != nil {
			return nil, nil, err
		}
		channels[r.Channel] = true
	}
	ids, rb := tx.Bucket(bRecordingIDs), tx.Bucket(bRecordings)
	for _, r := range recs {
		if k := ids.Get([]byte(r.ID)); k != nil {
			old, err := decodeRecording(channelOfKey(k), k, rb.Get(k))
			if err != nil {
				return nil, nil, err
			}
			res = append(res, PutResult{Recording: old})
			continue
		}
		k := recordingKey(r.Channel, r.Start.UnixMilli(), r.ID)
		if err := rb.Put(k, encodeValue(r)); err != nil {
			return nil, nil, err
		}
		if err := ids.Put([]byte(r.ID), k); err != nil {
			return nil, nil, err
		}
		res = append(res, PutResult{Recording: r, Created: true})
	}
	return res, nil, nil
}

func (s *Bolt) Recording(ctx context.Context, id string) (Recording, error) {
	var r Recording
	err := s.view(ctx, func(tx *bolt.Tx) error {
		k := tx.Bucket(bRecordingIDs).Get([]byte(id))
		if k == nil {
			return ErrNotFound
		}
		var err error
		r, err = decodeRecording(channelOfKey(k), k, tx.Bucket(bRecordings).Get(k))
		return err
	})
	return r, err
}

func (s *Bolt) Recordings(ctx context.Context, q RecordingQuery) ([]Recording, error) {
	var out []Recording
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, _, err = listRecordings(tx, q)
		return err
	})
	return out, err
}

// listRecordings answers q and says how many index entries it visited, so
// tests can check that a listing costs its results, not the index size.
func listRecordings(tx *bolt.Tx, q RecordingQuery) ([]Recording, int, error) {
	if q.Limit <= 0 {
		return nil, 0, errors.New("recording listing without a limit")
	}
	from, to := MS(q.From).UnixMilli(), MS(q.To).UnixMilli()
	prefix := recordingPrefix(q.Channel)
	var seek []byte
	if q.After != nil {
		seek = recordingKey(q.Channel, MS(q.After.Start).UnixMilli(), q.After.ID)
	} else {
		// A recording that began up to MaxRecordingDuration before From may
		// still overlap it.
		seek = recordingKey(q.Channel, max(0, from-MaxRecordingDuration.Milliseconds()), "")
	}
	var out []Recording
	visited := 0
	c := tx.Bucket(bRecordings).Cursor()
	k, v := c.Seek(seek)
	if q.After != nil && bytes.Equal(k, seek) {
		k, v = c.Next()
	}
	for ; k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		visited++
		if len(k) < len(prefix)+8 {
			return nil, visited, fmt.Errorf("bad recording key %q", k)
		}
		if int64(binary.BigEndian.Uint64(k[len(prefix):])) >= to {
			break
		}
		if len(v) < 8 || valueEnd(v) <= from {
			continue
		}
		r, err := decodeRecording(q.Channel, k, v)
		if err != nil {
			return nil, visited, err
		}
		out = append(out, r)
		if len(out) == q.Limit {
			break
		}
	}
	return out, visited, nil
}

func (s *Bolt) DeleteRecordings(ctx context.Context, ids []string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		idx, rb := tx.Bucket(bRecordingIDs), tx.Bucket(bRecordings)
		for _, id := range ids {
			k := idx.Get([]byte(id))
			if k == nil {
				continue // deleted already: retention may repeat a pass
			}
			if err := rb.Delete(k); err != nil {
				return err
			}
			if err := idx.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}
