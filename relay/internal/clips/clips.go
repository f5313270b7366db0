// Package clips cuts a channel's time range into one MP4 file and an HLS
// playlist, server-side: relay attaches recordings as they arrive, then has
// the object store copy their byte ranges into the file (never reading media).
package clips

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/wslink"
	"github.com/zipnvr/zipnvr/relay/internal/media"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// Objects is what clips need of object storage.
type Objects interface {
	media.Composer
	Head(ctx context.Context, key string) (media.ObjectInfo, error)
	Delete(ctx context.Context, key string) error
}

// Hubs reaches hubs over their control links (*hublink.Registry).
type Hubs interface {
	Online(hubID string) bool
	Call(ctx context.Context, hubID, typ string, req, resp any) error
}

// Config of a Coordinator; zero values take the defaults noted.
type Config struct {
	Store   store.Store
	Objects Objects
	Hubs    Hubs
	Logger  *slog.Logger
	// MaxWait bounds how long after its range ends (or after its creation,
	// if later) a clip waits for recordings: what has not arrived by then
	// is a gap. Default 24 h (relay's clips.max_wait_minutes).
	MaxWait time.Duration
	// MinPartBytes overrides the object store's minimum part size
	// (0: the store's own; S3 needs 5 MiB).
	MinPartBytes int64
	// Poll is how often open clips are looked at without a trigger
	// (deadlines, hubs coming back). Default 5 s.
	Poll time.Duration
	// HLSTarget is the least duration of an HLS segment. Default 4 s.
	HLSTarget time.Duration
	// Registerer receives the metrics; nil: not registered.
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Limits of a clip's range.
const (
	MaxDuration = 12 * time.Hour
	// MaxAhead is how far into the future a clip may end.
	MaxAhead = 6 * time.Hour
	// holeTolerance: recordings closer than this touch (ms rounding, the
	// hub's re-anchoring of its clock).
	holeTolerance = 250 * time.Millisecond
	// coverageEvery spaces the questions to a hub about one clip.
	coverageEvery = 2 * time.Second
	// unknownSettle: when the hub cannot say what it holds (an older hubd),
	// a hole this old is taken for a gap.
	unknownSettle = 2 * time.Minute
	maxAttempts   = 20
	maxBuilds     = 2
	maxListing    = 10000
)

// Gap reasons.
const (
	ReasonRetention = "beyond the channel's retention"
	ReasonNotOnHub  = "not recorded: the hub holds nothing for this time (camera off or unreachable, or evicted from the hub before upload)"
	ReasonDeadline  = "not uploaded before the clip's deadline (hub offline?)"
	ReasonUnknown   = "not uploaded, and the hub cannot say whether it holds it"
	ReasonMissing   = "recording listed but its object is missing or unreadable"
)

// Coordinator builds clips. Create, Delete and Pin are safe for concurrent
// use; Run drives the clips in progress.
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	prober  *prober
	tables  *moofTables
	metrics *metrics
	wake    chan struct{}
	builds  chan struct{}

	seedMu sync.Mutex
	seedOK string // the seed object known to exist

	mu    sync.Mutex
	state map[string]*clipState // clips in progress
	dirty map[string]bool       // channels with new recordings
}

// clipState is what the coordinator knows of a clip in progress beyond the store.
type clipState struct {
	channel   string
	busy      bool               // an evaluation runs
	again     bool               // something happened during it: evaluate once more
	cancel    context.CancelFunc // of a running build
	asked     time.Time          // last coverage question to the hub
	coverage  *proto.Coverage    // its answer (nil: none yet, or the hub could not tell)
	unknown   bool               // the hub answered that it cannot tell
	nextBuild time.Time          // after a failed build
}

// New checks cfg.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Store == nil || cfg.Objects == nil || cfg.Hubs == nil {
		return nil, errors.New("clips: Store, Objects and Hubs are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 24 * time.Hour
	}
	if cfg.MinPartBytes <= 0 {
		cfg.MinPartBytes = cfg.Objects.MinPartBytes()
	}
	if cfg.MinPartBytes > media.MaxSmallPut {
		return nil, fmt.Errorf("clips: minimum part size %d is above %d", cfg.MinPartBytes, media.MaxSmallPut)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.HLSTarget <= 0 {
		cfg.HLSTarget = 4 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Coordinator{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "clips"),
		prober: newProber(cfg.Objects),
		wake:   make(chan struct{}, 1),
		builds: make(chan struct{}, maxBuilds),
		state:  map[string]*clipState{},
		dirty:  map[string]bool{},
	}
	c.tables = &moofTables{pr: c.prober}
	var err error
	if c.metrics, err = newMetrics(cfg.Registerer, c); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Coordinator) now() time.Time { return c.cfg.Now().UTC() }

// RecordingAdded says a channel got a recording: its clips in progress are
// looked at now. It never blocks (the upload notice path calls it).
func (c *Coordinator) RecordingAdded(channel string) {
	c.mu.Lock()
	c.dirty[channel] = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Key is where a clip's file goes: below its channel's prefix, where no
// camera id can collide ("_" cannot start one).
func Key(ch store.Channel, id string) string { return ch.Prefix + "_clips/" + id + ".mp4" }

func scratchKey(ch store.Channel, id string, i int) string {
	return fmt.Sprintf("%s_clips/%s.parts/%05d", ch.Prefix, id, i)
}

// initKey holds a clip's rewritten init section (initedit.go) during its
// build.
func initKey(ch store.Channel, id string) string {
	return fmt.Sprintf("%s_clips/%s.parts/init", ch.Prefix, id)
}

// headKey holds the rewritten head (moof, mdat header) of a clip's cut
// last fragment while the file is built.
func headKey(ch store.Channel, id string) string {
	return fmt.Sprintf("%s_clips/%s.parts/head", ch.Prefix, id)
}

// Create validates a range and starts a clip of it.
func (c *Coordinator) Create(ctx context.Context, ch store.Channel, start, end time.Time, pinned bool) (store.Clip, error) {
	now := c.now()
	start, end = store.MS(start), store.MS(end)
	switch {
	case !end.After(start):
		return store.Clip{}, &RangeError{fmt.Sprintf("end %s is not after start %s", end.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))}
	case end.Sub(start) > MaxDuration:
		return store.Clip{}, &RangeError{fmt.Sprintf("a clip lasts at most %s, this one %s", MaxDuration, end.Sub(start))}
	case end.After(now.Add(MaxAhead)):
		return store.Clip{}, &RangeError{fmt.Sprintf("end %s is more than %s in the future", end.Format(time.RFC3339Nano), MaxAhead)}
	}
	cl := store.Clip{
		ID: store.NewID("cl"), Tenant: ch.Tenant, Channel: ch.ID, Camera: ch.Camera,
		Start: start, End: end, Status: store.ClipInProgress, Pinned: pinned,
		Created: now, Deadline: store.MS(later(now, end).Add(c.cfg.MaxWait)),
	}
	if err := c.cfg.Store.PutClip(ctx, cl); err != nil {
		return cl, fmt.Errorf("store clip: %w", err)
	}
	c.mu.Lock()
	c.state[cl.ID] = &clipState{channel: cl.Channel}
	c.mu.Unlock()
	c.metrics.created.Inc()
	c.log.Info("clip created", "clip", cl.ID, "channel", ch.ID, "start", start, "end", end)
	c.RecordingAdded(ch.ID)
	return cl, nil
}

// RangeError is a clip range the coordinator refuses.
type RangeError struct{ Msg string }

func (e *RangeError) Error() string { return e.Msg }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// SetPinned pins (exempts from retention) or unpins a clip.
func (c *Coordinator) SetPinned(ctx context.Context, id string, pinned bool) (store.Clip, error) {
	cl, err := c.cfg.Store.Clip(ctx, id)
	if err != nil {
		return cl, err
	}
	cl.Pinned = pinned
	return cl, c.cfg.Store.PutClip(ctx, cl)
}

// Delete removes a clip: a build in progress stops, the file and its
// scratch objects go, then the metadata.
func (c *Coordinator) Delete(ctx context.Context, cl store.Clip) error {
	c.mu.Lock()
	if st := c.state[cl.ID]; st != nil && st.cancel != nil {
		st.cancel()
	}
	delete(c.state, cl.ID)
	c.mu.Unlock()
	if err := c.deleteObjects(ctx, cl); err != nil {
		return err
	}
	if err := c.cfg.Store.DeleteClip(ctx, cl.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	c.log.Info("clip deleted", "clip", cl.ID, "channel", cl.Channel)
	return nil
}

func (c *Coordinator) deleteObjects(ctx context.Context, cl store.Clip) error {
	ch := store.Channel{Prefix: store.ChannelPrefix(cl.Tenant, cl.Channel)}
	if err := c.cfg.Objects.Delete(ctx, Key(ch, cl.ID)); err != nil {
		return fmt.Errorf("delete clip file: %w", err)
	}
	return nil
}

// Recordings lists the channel's recordings in a clip's range (what a clip
// in progress has attached so far).
func (c *Coordinator) Recordings(ctx context.Context, cl store.Clip) ([]store.Recording, error) {
	var out []store.Recording
	q := store.RecordingQuery{Channel: cl.Channel, From: cl.Start, To: cl.End, Limit: 1000}
	for {
		recs, err := c.cfg.Store.Recordings(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		if len(recs) < q.Limit || len(out) >= maxListing {
			return out, nil
		}
		last := recs[len(recs)-1]
		q.After = &store.Cursor{Start: last.Start, ID: last.ID}
	}
}

// Run drives the clips in progress until ctx ends: those left by a previous
// run first, then each as recordings arrive, hubs answer and deadlines pass.
func (c *Coordinator) Run(ctx context.Context) error {
	open, err := c.cfg.Store.OpenClips(ctx)
	if err != nil {
		return fmt.Errorf("clips: list clips in progress: %w", err)
	}
	c.mu.Lock()
	for _, cl := range open {
		if c.state[cl.ID] == nil {
			c.state[cl.ID] = &clipState{channel: cl.Channel}
		}
	}
	c.mu.Unlock()
	if len(open) > 0 {
		c.log.Info("resuming clips in progress", "clips", len(open))
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(c.cfg.Poll)
	defer tick.Stop()
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	wg.Go(func() { c.sweepLogged(ctx) })
	all := true
	for {
		c.schedule(ctx, &wg, all)
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
			all = false
		case <-tick.C:
			all = true
		case <-sweep.C:
			wg.Go(func() { c.sweepLogged(ctx) })
			all = false
		}
	}
}

// schedule starts an evaluation of every clip in progress (all) or of
// those of channels with new recordings; a clip being evaluated is
// evaluated again right after.
func (c *Coordinator) schedule(ctx context.Context, wg *sync.WaitGroup, all bool) {
	c.mu.Lock()
	dirty := c.dirty
	c.dirty = map[string]bool{}
	var ids []string
	for id, st := range c.state {
		if !all && !dirty[st.channel] {
			continue
		}
		if st.busy {
			st.again = true
			continue
		}
		st.busy = true
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		wg.Go(func() {
			for {
				c.evaluate(ctx, id)
				c.mu.Lock()
				st := c.state[id]
				if st == nil || !st.again || ctx.Err() != nil {
					if st != nil {
						st.busy = false
					}
					c.mu.Unlock()
					return
				}
				st.again = false
				c.mu.Unlock()
			}
		})
	}
}

// evaluate looks at one clip in progress: attach, ask the hub about the
// holes, and build the file once nothing more can arrive.
func (c *Coordinator) evaluate(ctx context.Context, id string) {
	cl, err := c.cfg.Store.Clip(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && cl.Status != store.ClipInProgress {
		c.forget(id)
		return
	}
	if err != nil {
		c.log.Warn("read clip", "clip", id, "err", err)
		return
	}
	ch, err := c.cfg.Store.Channel(ctx, cl.Channel)
	if errors.Is(err, store.ErrNotFound) || err == nil && ch.IsDeleted() {
		c.fail(ctx, cl, "the channel was deleted")
		return
	}
	if err != nil {
		c.log.Warn("read channel of clip", "clip", id, "err", err)
		return
	}
	c.mu.Lock()
	st := c.state[id]
	c.mu.Unlock()
	if st == nil {
		return
	}
	now := c.now()
	if now.Before(st.nextBuild) {
		return
	}
	recs, err := c.Recordings(ctx, cl)
	if err != nil {
		c.log.Warn("list recordings of clip", "clip", id, "err", err)
		return
	}
	open, gaps := c.classify(cl, ch, recs, now, st)
	// Holes in the past need the hub's word: will it still upload them?
	past := false
	for _, h := range open {
		past = past || !h.end.After(now)
	}
	hub, cam, _ := store.SplitCameraID(cl.Camera)
	if past && now.Sub(st.asked) >= coverageEvery && c.cfg.Hubs.Online(hub) {
		c.askHub(ctx, st, hub, cam, open)
		// What the hub marked uploaded is stored by now: list again.
		if recs, err = c.Recordings(ctx, cl); err != nil {
			c.log.Warn("list recordings of clip", "clip", id, "err", err)
			return
		}
		open, gaps = c.classify(cl, ch, recs, now, st)
	}
	if len(open) > 0 {
		return // more will come
	}
	c.build(ctx, cl, ch, recs, gaps, st)
}

// classify splits the clip's holes into those still expected and gaps:
// beyond retention, past the deadline, or (from the hub's last answer) not
// held by the hub.
func (c *Coordinator) classify(cl store.Clip, ch store.Channel, recs []store.Recording, now time.Time, st *clipState) ([]span, []store.Gap) {
	horizon := now.Add(-time.Duration(ch.RetentionDays) * 24 * time.Hour)
	var open []span
	var gaps []store.Gap
	gap := func(h span, reason string) {
		gaps = append(gaps, store.Gap{Start: h.start, End: h.end, Reason: reason})
	}
	for _, h := range findHoles(cl.Start, cl.End, recs, holeTolerance) {
		if h.start.Before(horizon) && h.end.After(horizon) {
			// Only the part older than retention is gone for sure; the
			// rest is judged like any hole.
			gap(span{h.start, horizon}, ReasonRetention)
			h.start = horizon
		}
		switch {
		case !h.end.After(horizon):
			gap(h, ReasonRetention)
		case !now.Before(cl.Deadline):
			gap(h, ReasonDeadline)
		case h.end.After(now):
			open = append(open, h) // the range is not over
		case st.unknown:
			if now.Sub(h.end) >= unknownSettle {
				gap(h, ReasonUnknown)
			} else {
				open = append(open, h)
			}
		case st.coverage == nil || expected(h, st.coverage):
			open = append(open, h)
		default:
			gap(h, ReasonNotOnHub)
		}
	}
	return open, gaps
}

// expected says whether the hub will still upload something of hole h.
func expected(h span, cov *proto.Coverage) bool {
	if !cov.RecordingSince.IsZero() && h.end.After(cov.RecordingSince) {
		return true
	}
	for _, p := range cov.Pending {
		if p.Start.Before(h.end) && p.End.After(h.start) {
			return true
		}
	}
	return false
}

func (c *Coordinator) askHub(ctx context.Context, st *clipState, hub, cam string, open []span) {
	st.asked = c.now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var cov proto.Coverage
	err := c.cfg.Hubs.Call(cctx, hub, proto.LinkCoverage, proto.CoverageRequest{Camera: cam, From: open[0].start, To: open[len(open)-1].end}, &cov)
	c.metrics.coverage.Inc()
	switch {
	case err == nil:
		st.coverage, st.unknown = &cov, false
	case isUnsupported(err):
		st.coverage, st.unknown = nil, true
	default:
		// Offline meanwhile, or a timeout: ask again later.
		c.log.Debug("hub coverage", "hub", hub, "camera", cam, "err", err)
	}
}

// isUnsupported: the hub answered that it does not know the request (an
// older hubd) or the camera.
func isUnsupported(err error) bool {
	var re *wslink.Error
	if errors.As(err, &re) {
		return re.Status == http.StatusNotImplemented || re.Status == http.StatusNotFound || re.Status == http.StatusBadRequest
	}
	return false
}

// forget drops a clip from the coordinator's working set.
func (c *Coordinator) forget(id string) {
	c.mu.Lock()
	delete(c.state, id)
	c.mu.Unlock()
}

func (c *Coordinator) fail(ctx context.Context, cl store.Clip, reason string) {
	cl.Status, cl.Reason, cl.Finished = store.ClipFailed, reason, c.now()
	if err := c.cfg.Store.PutClip(ctx, cl); err != nil {
		c.log.Warn("store failed clip", "clip", cl.ID, "err", err)
		return
	}
	c.forget(cl.ID)
	c.metrics.failed.Inc()
	c.log.Warn("clip failed", "clip", cl.ID, "channel", cl.Channel, "reason", reason)
}

// build makes the file from recs (the range's recordings, by start) once no
// more can arrive; gaps are the holes that will stay.
func (c *Coordinator) build(ctx context.Context, cl store.Clip, ch store.Channel, recs []store.Recording, gaps []store.Gap, st *clipState) {
	select {
	case c.builds <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-c.builds }()
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	if c.state[cl.ID] != st {
		c.mu.Unlock()
		return // deleted meanwhile
	}
	st.cancel = cancel
	c.mu.Unlock()

	began := time.Now()
	res, err := c.compose(bctx, cl, ch, recs)
	if err != nil {
		if bctx.Err() != nil {
			return
		}
		var nothing *nothingError
		if errors.As(err, &nothing) {
			gaps = append(gaps, nothing.gaps...)
			c.fail(ctx, cl, "nothing to put in the file: "+describeGaps(cl, gaps))
			return
		}
		cl.Attempts++
		if cl.Attempts >= maxAttempts {
			c.fail(ctx, cl, "could not build the file: "+err.Error())
			return
		}
		wait := min(time.Duration(1<<min(cl.Attempts, 6))*5*time.Second, 5*time.Minute)
		st.nextBuild = c.now().Add(wait)
		c.log.Warn("clip build failed; retrying", "clip", cl.ID, "attempt", cl.Attempts, "retry_in", wait, "err", err)
		_ = c.cfg.Store.PutClip(ctx, cl)
		return
	}
	gaps = append(gaps, res.gaps...)
	sort.Slice(gaps, func(i, j int) bool { return gaps[i].Start.Before(gaps[j].Start) })
	layout, err := json.Marshal(res.layout)
	if err != nil {
		c.log.Error("encode clip layout", "clip", cl.ID, "err", err)
		return
	}
	// A clip deleted while its file was being built must stay deleted.
	if _, err := c.cfg.Store.Clip(ctx, cl.ID); errors.Is(err, store.ErrNotFound) {
		_ = c.deleteObjects(context.WithoutCancel(ctx), cl)
		return
	}
	if err := c.cfg.Store.PutClipLayout(ctx, cl.ID, layout); err != nil {
		c.log.Warn("store clip layout", "clip", cl.ID, "err", err)
		return
	}
	cl.Status, cl.Finished = store.ClipFinished, c.now()
	cl.Key, cl.Bytes = res.key, res.size
	cl.MediaStart, cl.MediaEnd = store.MS(res.mediaStart), store.MS(res.mediaEnd)
	cl.Gaps = gaps
	cl.Recordings = make([]store.ClipRecording, 0, len(res.used))
	for _, r := range res.used {
		cl.Recordings = append(cl.Recordings, store.ClipRecording{ID: r.ID, Key: r.Key, Start: r.Start, End: r.End, Bytes: r.Bytes})
	}
	if err := c.cfg.Store.PutClip(ctx, cl); err != nil {
		c.log.Warn("store finished clip", "clip", cl.ID, "err", err)
		return
	}
	c.forget(cl.ID)
	c.metrics.finished.Inc()
	c.metrics.buildSeconds.Observe(time.Since(began).Seconds())
	c.log.Info("clip finished", "clip", cl.ID, "channel", cl.Channel, "recordings", len(res.used), "gaps", len(gaps),
		"bytes", res.size, "scratch_compositions", res.steps, "build", time.Since(began).Round(time.Millisecond))
}

// describeGaps says in one line why a clip holds nothing.
func describeGaps(cl store.Clip, gaps []store.Gap) string {
	if len(gaps) == 0 {
		return "no recording in the range"
	}
	reasons := map[string]bool{}
	var out string
	for _, g := range gaps {
		if !reasons[g.Reason] {
			reasons[g.Reason] = true
			if out != "" {
				out += "; "
			}
			out += g.Reason
		}
	}
	return out
}
