package clips

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/zipnvr/zipnvr/pkg/fragindex"
	"github.com/zipnvr/zipnvr/relay/internal/media"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// result of a build.
type result struct {
	plan
	key   string
	steps int // scratch compositions
}

// nothingError: no recording of the range can go into a file.
type nothingError struct{ gaps []store.Gap }

func (e *nothingError) Error() string { return "no recording to build the clip from" }

// probeParallel bounds the index reads of one build in flight.
const probeParallel = 8

// compose reads the recordings' indexes, plans the file and has the object
// store assemble it.
func (c *Coordinator) compose(ctx context.Context, cl store.Clip, ch store.Channel, recs []store.Recording) (result, error) {
	var res result
	srcs := make([]source, len(recs))
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, probeParallel)
	for i, r := range recs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ix, err := c.prober.index(ctx, r)
			srcs[i], errs[i] = source{rec: r, ix: ix}, err
		})
	}
	wg.Wait()
	var ok []source
	var skipped []store.Gap
	for i, err := range errs {
		switch {
		case err == nil:
			ok = append(ok, srcs[i])
		case errors.Is(err, media.ErrNotFound), errors.Is(err, errNotJoinable), errors.Is(err, fragindex.ErrNoIndex):
			c.log.Warn("recording left out of a clip", "clip", cl.ID, "key", recs[i].Key, "err", err)
			skipped = append(skipped, store.Gap{Start: recs[i].Start, End: recs[i].End, Reason: ReasonMissing})
		default:
			return res, fmt.Errorf("read the index of %s: %w", recs[i].Key, err)
		}
	}
	p, err := makePlan(cl.Start, cl.End, ok, c.cfg.HLSTarget)
	if err != nil {
		return res, &nothingError{gaps: append(skipped, p.gaps...)}
	}
	p.gaps = append(skipped, p.gaps...)
	res.plan = p
	res.key = Key(ch, cl.ID)

	minPart := c.cfg.MinPartBytes
	seed := ""
	if minPart > 1 {
		if seed, err = c.ensureSeed(ctx, minPart); err != nil {
			return res, err
		}
	}
	steps, final := planChain(p.pieces, minPart, seed, func(i int) string { return scratchKey(ch, cl.ID, i) })
	res.steps = len(steps)
	defer func() {
		// Scratch objects are of no use once the file exists (or failed).
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, s := range steps {
			if err := c.cfg.Objects.Delete(dctx, s.dst); err != nil {
				c.log.Warn("delete scratch object", "key", s.dst, "err", err)
			}
		}
	}()
	for _, s := range steps {
		if _, err := c.cfg.Objects.Compose(ctx, s.dst, s.parts, "application/octet-stream"); err != nil {
			return res, err
		}
		c.metrics.copied.Add(float64(partsBytes(s.parts)))
	}
	info, err := c.cfg.Objects.Compose(ctx, res.key, final, "video/mp4")
	if err != nil {
		return res, err
	}
	c.metrics.copied.Add(float64(partsBytes(final)))
	if info.Size != p.size {
		return res, fmt.Errorf("composed %s has %d bytes, the plan %d", res.key, info.Size, p.size)
	}
	return res, nil
}

func partsBytes(ps []media.Part) int64 {
	var n int64
	for _, p := range ps {
		n += p.Length
	}
	return n
}

// seedKey holds minPart zero bytes that stand before a clip's first piece
// in the scratch chain (see chain.go); no byte of it reaches a clip.
func seedKey(minPart int64) string { return "_relay/clip-seed-" + strconv.FormatInt(minPart, 10) }

// ensureSeed makes the seed object exist (once per bucket: relay uploads
// minPart zero bytes the first time).
func (c *Coordinator) ensureSeed(ctx context.Context, minPart int64) (string, error) {
	key := seedKey(minPart)
	c.seedMu.Lock()
	defer c.seedMu.Unlock()
	if c.seedOK == key {
		return key, nil
	}
	info, err := c.cfg.Objects.Head(ctx, key)
	if err == nil && info.Size == minPart {
		c.seedOK = key
		return key, nil
	}
	if err != nil && !errors.Is(err, media.ErrNotFound) {
		return "", fmt.Errorf("clip seed object: %w", err)
	}
	if err := c.cfg.Objects.Put(ctx, key, make([]byte, minPart), "application/octet-stream"); err != nil {
		return "", fmt.Errorf("clip seed object: %w", err)
	}
	c.log.Info("created the clip seed object", "key", key, "bytes", minPart)
	c.seedOK = key
	return key, nil
}
