package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPutRecordings stores recordings in batches of one transaction
// each (a hub draining a backlog); ns/op is per recording.
func BenchmarkPutRecordings(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := openTest(b)
			f := newFixture(b, s, "tn_a", "hub-1")
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				recs := make([]Recording, 0, batch)
				for j := i; j < i+batch && j < b.N; j++ {
					recs = append(recs, rec(f.ch, t0.Add(time.Duration(j)*time.Second), time.Second))
				}
				if _, err := s.PutRecordings(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "recordings/s")
		})
	}
}

// BenchmarkPutRecordingConcurrent is the notify path: one recording per
// call, from many callers at once; each call returns once durable, and the
// group commit makes concurrent calls share fsyncs.
func BenchmarkPutRecordingConcurrent(b *testing.B) {
	s := openTest(b)
	var chans []Channel
	for i := range 16 {
		chans = append(chans, newFixture(b, s, fmt.Sprintf("tn_%d", i), fmt.Sprintf("hub-%d", i)).ch)
	}
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			r := rec(chans[i%int64(len(chans))], t0.Add(time.Duration(i)*time.Second), time.Second)
			if _, err := s.PutRecordings(ctx, []Recording{r}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "recordings/s")
}

// listStores caches filled stores across benchmark runs: filling 1 M
// recordings takes a while.
var listStores sync.Map // size -> *listStore

type listStore struct {
	once  sync.Once
	s     *Bolt
	chans []Channel
}

// filled returns a store with n recordings of 4 s over 100 channels.
func filled(b *testing.B, n int) *listStore {
	v, _ := listStores.LoadOrStore(n, &listStore{})
	ls := v.(*listStore)
	ls.once.Do(func() {
		s, err := OpenBolt(b.TempDir()) // removed after the first benchmark using it: fine, bolt keeps the file open
		if err != nil {
			b.Fatal(err)
		}
		ls.s = s
		for i := range 100 {
			ls.chans = append(ls.chans, newFixture(b, s, fmt.Sprintf("tn_%d", i), fmt.Sprintf("hub-%d", i)).ch)
		}
		per := n / len(ls.chans)
		const batch = 5000
		for c, ch := range ls.chans {
			for i := 0; i < per; i += batch {
				recs := make([]Recording, 0, batch)
				for j := i; j < i+batch && j < per; j++ {
					recs = append(recs, rec(ch, t0.Add(time.Duration(j)*4*time.Second), 4*time.Second))
				}
				if _, err := s.PutRecordings(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			_ = c
		}
	})
	return ls
}

// BenchmarkListRecordings lists 1 h (900 recordings) or 1 min (15) of one
// channel at random times, in stores of 100 k and 1 M recordings, and
// reports the p99 latency. Latency must not grow with the store size.
func BenchmarkListRecordings(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		for _, span := range []time.Duration{time.Minute, time.Hour} {
			b.Run(fmt.Sprintf("recordings=%d/span=%s", n, span), func(b *testing.B) {
				ls := filled(b, n)
				per := n / len(ls.chans)
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					ch := ls.chans[rand.IntN(len(ls.chans))]
					from := t0.Add(time.Duration(rand.IntN(per*4-int(span.Seconds()))) * time.Second)
					start := time.Now()
					got, err := ls.s.Recordings(ctx, RecordingQuery{Channel: ch.ID, From: from, To: from.Add(span), Limit: 10000})
					lat = append(lat, time.Since(start))
					if err != nil || len(got) < int(span/(4*time.Second)) {
						b.Fatalf("%d recordings, %v", len(got), err)
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}
