package recorder_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/ingest"
	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/hubd/internal/recorder"
	"github.com/zipnvr/zipnvr/hubd/internal/segment"
	"github.com/zipnvr/zipnvr/pkg/camera"
)

// scripted is a Source whose sessions are given by the test.
type scripted struct {
	mu       sync.Mutex
	sessions int
	run      func(n int, ctx context.Context, sink ingest.Sink) error
}

func (s *scripted) Run(ctx context.Context, sink ingest.Sink) error {
	s.mu.Lock()
	s.sessions++
	n := s.sessions
	s.mu.Unlock()
	return s.run(n, ctx, sink)
}

// slowDisk is a Store whose writes take a while, like a busy SD card.
type slowDisk struct {
	delay   time.Duration
	commits atomic.Int32
}

func (d *slowDisk) Create(string, media.Codec, time.Time) (segment.File, error) {
	return &slowFile{d: d}, nil
}

type slowFile struct{ d *slowDisk }

func (f *slowFile) Write(p []byte) (int, error) { time.Sleep(f.d.delay); return len(p), nil }
func (f *slowFile) Sync() error                 { return nil }
func (f *slowFile) Commit(time.Time, int) error { f.d.commits.Add(1); return nil }
func (f *slowFile) Abort() error                { return nil }

func newRecorder(src ingest.Source, store segment.Store, logs *bytes.Buffer, queue int) *recorder.Recorder {
	return recorder.New(recorder.Config{
		Camera: camera.Camera{ID: "cam1", Record: "high"},
		Segment: segment.Config{Store: store, SegmentDuration: time.Second, FragmentDuration: 200 * time.Millisecond,
			FsyncInterval: time.Second, MaxFrameGap: 2 * time.Second, MaxDrift: 2 * time.Second},
		QueueFrames:  queue,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 20 * time.Millisecond, AuthRetry: 30 * time.Millisecond,
		NewSource: func(camera.Camera, camera.Syntax, *slog.Logger) (ingest.Source, error) { return src, nil },
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
	})
}

// MJPEG frames need no parameter sets, so any bytes make a valid stream here.
func jpegFrame(i int) *media.Frame {
	ts := int64(i) * media.ClockRate / 25
	return &media.Frame{DTS: ts, PTS: ts, AU: [][]byte{bytes.Repeat([]byte{0xAB}, 1000)}, RandomAccess: true,
		Received: time.Now(), Width: 64, Height: 48}
}

func TestQueueOverflowDropsAndCounts(t *testing.T) {
	src := &scripted{run: func(n int, ctx context.Context, sink ingest.Sink) error {
		if n > 1 {
			<-ctx.Done()
			return nil
		}
		sink.Track(media.Track{Codec: media.MJPEG})
		for i := 0; i < 500; i++ { // a burst far faster than the disk
			sink.Frame(jpegFrame(i))
		}
		<-ctx.Done()
		return nil
	}}
	var logs bytes.Buffer
	rec := newRecorder(src, &slowDisk{delay: 5 * time.Millisecond}, &logs, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for st := rec.Status(); st.FramesIn+st.QueueDropped < 500 && time.Now().Before(deadline); st = rec.Status() {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := rec.Status()
	if st.QueueDropped == 0 || st.FramesIn+st.QueueDropped != 500 {
		t.Errorf("queue dropped %d, wrote %d of 500: every frame is either queued or counted", st.QueueDropped, st.FramesIn)
	}
	if n := strings.Count(logs.String(), "disk writer is behind"); n == 0 {
		t.Error("overflow not logged")
	}
}

func TestAuthErrorLoggedOnceAndRetriedSlowly(t *testing.T) {
	src := &scripted{run: func(int, context.Context, ingest.Sink) error {
		return errors.Join(ingest.ErrAuth, errors.New("401"))
	}}
	var logs bytes.Buffer
	rec := newRecorder(src, &slowDisk{}, &logs, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rec.Run(ctx)
	src.mu.Lock()
	attempts := src.sessions
	src.mu.Unlock()
	if n := strings.Count(logs.String(), "refused the credentials: check"); n != 1 {
		t.Errorf("auth failure logged %d times over %d attempts, want once", n, attempts)
	}
	// 300 ms at a 30 ms auth retry: about 10 attempts, not hundreds.
	if attempts < 2 || attempts > 20 {
		t.Errorf("%d attempts in 300 ms with a 30 ms auth retry", attempts)
	}
	if st := rec.Status(); !strings.Contains(st.LastError, "credentials") {
		t.Errorf("status last error %q", st.LastError)
	}
}

func TestReconnectAfterSessionFailure(t *testing.T) {
	src := &scripted{run: func(n int, ctx context.Context, sink ingest.Sink) error {
		if n < 3 {
			return errors.New("connection refused")
		}
		sink.Track(media.Track{Codec: media.MJPEG})
		for i := 0; i < 30; i++ {
			sink.Frame(jpegFrame(i))
		}
		<-ctx.Done()
		return nil
	}}
	var logs bytes.Buffer
	rec := newRecorder(src, &slowDisk{}, &logs, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for rec.Status().FramesIn < 30 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	st := rec.Status()
	if st.Sessions != 1 || st.FramesIn != 30 {
		t.Errorf("status %+v: want the third attempt to connect and record 30 frames", st)
	}
	if n := strings.Count(logs.String(), "camera session failed"); n != 1 {
		t.Errorf("the same failure logged %d times, want once", n)
	}
}

// TestSessionEndClosesSegment: what a camera sent before it went away is
// committed at once (so it can be uploaded), not when the camera returns.
func TestSessionEndClosesSegment(t *testing.T) {
	src := &scripted{run: func(n int, ctx context.Context, sink ingest.Sink) error {
		if n > 1 {
			<-ctx.Done() // the camera stays away
			return nil
		}
		sink.Track(media.Track{Codec: media.MJPEG})
		for i := 0; i < 10; i++ {
			sink.Frame(jpegFrame(i))
		}
		return errors.New("connection reset")
	}}
	var logs bytes.Buffer
	disk := &slowDisk{}
	rec := newRecorder(src, disk, &logs, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for disk.commits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := disk.commits.Load()
	cancel()
	<-done
	if got != 1 {
		t.Fatalf("%d segments committed while the camera was away, want 1", got)
	}
}
