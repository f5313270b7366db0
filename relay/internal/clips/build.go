package clips

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	res.key = Key(ch, cl.ID)
	var scratch []string // objects of this build only, deleted after it
	defer func() {
		// Scratch objects are of no use once the file exists (or failed).
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, key := range scratch {
			if err := c.cfg.Objects.Delete(dctx, key); err != nil {
				c.log.Warn("delete scratch object", "key", key, "err", err)
			}
		}
	}()
	if p.tail != nil {
		head := headKey(ch, cl.ID)
		scratch = append(scratch, head)
		if err := c.cutTail(ctx, &p, head); err != nil {
			return res, err
		}
	}
	init := initKey(ch, cl.ID)
	err = c.progressive(ctx, &p, init, cl.End)
	if errors.Is(err, errProgressive) || errors.Is(err, errFragTable) {
		// A valid file still: fragmented, presented from 0 by its init
		// section, but ffmpeg and browsers read its duration from the
		// camera's clock.
		c.log.Warn("clip written as a fragmented MP4", "clip", cl.ID, "err", err)
		c.metrics.fragmented.Inc()
		err = c.editInit(ctx, &p, init)
	}
	if p.pieces[0].Key == init {
		scratch = append(scratch, init)
	}
	if err != nil {
		return res, err
	}
	res.plan = p

	minPart := c.cfg.MinPartBytes
	seed := ""
	if minPart > 1 {
		if seed, err = c.ensureSeed(ctx, minPart); err != nil {
			return res, err
		}
	}
	steps, final := planChain(p.pieces, minPart, seed, func(i int) string { return scratchKey(ch, cl.ID, i) })
	res.steps = len(steps)
	for _, s := range steps {
		scratch = append(scratch, s.dst)
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

// cutTail cuts the plan's last fragment after its last sample inside the
// range (cut.go): relay reads the fragment's moof and the mdat header (two
// ranged GETs: the moof's size, then the rest), writes the rewritten head
// as object headKey, and the plan copies a prefix of the payload. A head
// relay cannot cut leaves the whole fragment in the plan (the file then
// ends up to one fragment late, which media_end says) and is logged; a
// store that cannot be read or written fails the build, to be retried.
func (c *Coordinator) cutTail(ctx context.Context, p *plan, headKey string) error {
	t := p.tail
	keep := func(err error) error {
		c.log.Warn("clip ends with the whole fragment holding its end", "key", t.src.rec.Key, "offset", t.offset, "err", err)
		c.metrics.uncut.Inc()
		return nil
	}
	hdr, err := c.prober.get(ctx, t.src.rec.Key, t.offset, 8)
	c.metrics.tailRead.Add(float64(len(hdr)))
	if errors.Is(err, errNotJoinable) {
		return keep(err)
	}
	if err != nil {
		return fmt.Errorf("read the moof of the clip's last fragment: %w", err)
	}
	m, err := moofSize(hdr)
	if err != nil {
		return keep(err)
	}
	if m+8 >= t.length {
		return keep(fmt.Errorf("%w: moof of %d bytes in a fragment of %d", errCutHead, m, t.length))
	}
	rest, err := c.prober.get(ctx, t.src.rec.Key, t.offset+8, m)
	if errors.Is(err, errNotJoinable) {
		return keep(err)
	}
	if err != nil {
		return fmt.Errorf("read the moof of the clip's last fragment: %w", err)
	}
	c.metrics.tailRead.Add(float64(len(rest)))
	fc, err := cutFragment(append(hdr, rest...), t.before)
	if err != nil {
		return keep(err)
	}
	if fc.moofSize+fc.mdatSize != t.length {
		return keep(fmt.Errorf("%w: moof and mdat of %d bytes, the index says %d", errCutHead, fc.moofSize+fc.mdatSize, t.length))
	}
	if fc.kept == fc.samples {
		return nil // its last sample starts inside the range: nothing to cut
	}
	if err := c.cfg.Objects.Put(ctx, headKey, fc.head, "application/octet-stream"); err != nil {
		return fmt.Errorf("store the head of the clip's last fragment: %w", err)
	}
	if err := p.cutTail(fc, headKey); err != nil {
		return keep(err) // p is unchanged
	}
	c.log.Debug("clip's last fragment cut at its end", "key", t.src.rec.Key, "samples", fc.kept, "of", fc.samples,
		"moof_bytes", fc.moofSize, "head_bytes", len(fc.head), "payload_bytes", fc.dataLen)
	return nil
}

// editInit makes the file start with a copy of its init section that
// presents it from 0 and says how long it lasts (initedit.go): relay reads
// the first recording's init section and the first fragment's moof (for
// the first sample's composition offset), writes the copy as object key,
// and the plan takes it instead of the original. An init section or moof
// relay cannot read as hubd writes them leaves the original in the plan
// (the file then runs on the camera's clock: valid, but a player shows
// the position as the time since 1970) and is logged and counted; a store
// that cannot be read or written fails the build, to be retried.
func (c *Coordinator) editInit(ctx context.Context, p *plan, key string) error {
	h := p.head
	keep := func(err error) error {
		c.log.Warn("clip keeps its recordings' init section: it starts at the camera's clock", "key", h.src.rec.Key, "err", err)
		c.metrics.initKept.Inc()
		return nil
	}
	read := func(off, n int64) ([]byte, error) {
		b, err := c.prober.get(ctx, h.src.rec.Key, off, n)
		if err != nil && !errors.Is(err, errNotJoinable) {
			err = fmt.Errorf("read the head of the clip's first recording: %w", err)
		}
		return b, err
	}
	size := p.layout.InitSize
	if size <= 0 || size > maxInitBytes {
		return keep(fmt.Errorf("%w: %d bytes", errInitEdit, size))
	}
	init, err := read(0, size)
	if errors.Is(err, errNotJoinable) {
		return keep(err)
	} else if err != nil {
		return err
	}
	hdr, err := read(h.offset, 8)
	if errors.Is(err, errNotJoinable) {
		return keep(err)
	} else if err != nil {
		return err
	}
	m, err := moofSize(hdr)
	if err != nil {
		return keep(err)
	}
	moof, err := read(h.offset+8, m-8)
	if errors.Is(err, errNotJoinable) {
		return keep(err)
	} else if err != nil {
		return err
	}
	mi, err := parseMoof(moof)
	if err != nil {
		return keep(fmt.Errorf("%w: first moof: %v", errInitEdit, err))
	}
	if mi.frag.Time != p.tlStart {
		return keep(fmt.Errorf("%w: first moof decodes at %d, the index says %d", errInitEdit, mi.frag.Time, p.tlStart))
	}
	pts := int64(p.tlStart) + mi.firstCTO
	if pts < 0 || p.tlEnd <= p.tlStart {
		return keep(fmt.Errorf("%w: first presentation time %d, media %d to %d", errInitEdit, pts, p.tlStart, p.tlEnd))
	}
	out, err := rewriteInit(init, initEdit{timescale: p.layout.Timescale, mediaTime: uint64(pts), duration: p.tlEnd - p.tlStart})
	if err != nil {
		return keep(err)
	}
	edited := *p
	edited.pieces = slices.Clone(p.pieces)
	edited.layout.Segments = slices.Clone(p.layout.Segments)
	if err := edited.replaceInit(key, int64(len(out)), 0, int64(len(out))); err != nil {
		return keep(err)
	}
	*p = edited // the plan now names the object: it is deleted after the build even if storing it fails
	if err := c.cfg.Objects.Put(ctx, key, out, "application/octet-stream"); err != nil {
		return fmt.Errorf("store the clip's init section: %w", err)
	}
	c.log.Debug("clip's init section rewritten", "clip_key", key, "bytes", len(out), "media_time", pts, "duration_ticks", p.tlEnd-p.tlStart)
	return nil
}

// progressive makes the file a progressive MP4 (progressive.go): relay
// reads the first recording's init section and every fragment's moof,
// writes ftyp, moov (sample tables pointing into the copied fragments),
// the mdat header and the fragmented init section for HLS as object key,
// and the plan takes it instead of the original init section. Recordings
// relay cannot describe so are errProgressive or errFragTable (the caller
// falls back to a fragmented file); a store that cannot be read or
// written fails the build, to be retried.
func (c *Coordinator) progressive(ctx context.Context, p *plan, key string, end time.Time) error {
	h := p.head
	size := p.layout.InitSize
	if size <= 0 || size > maxInitBytes || len(p.frags) == 0 {
		return fmt.Errorf("%w: init section of %d bytes, %d fragments", errProgressive, size, len(p.frags))
	}
	notJoinable := func(err error) error {
		if errors.Is(err, errNotJoinable) {
			return fmt.Errorf("%w: %v", errProgressive, err)
		}
		return err
	}
	init, err := c.prober.get(ctx, h.src.rec.Key, 0, size)
	if err != nil {
		return notJoinable(fmt.Errorf("read the init section of the clip's first recording: %w", err))
	}
	ti, err := readTrackInit(init, p.layout.Timescale)
	if err != nil {
		return err
	}
	before := c.tables.bytesRead()
	reads := c.prober.requests.Load()
	tabs, err := c.tables.read(ctx, p.frags)
	c.metrics.moofRead.Add(float64(c.tables.bytesRead() - before))
	if err != nil {
		return notJoinable(err)
	}
	if tabs[0].baseTime != p.tlStart {
		return fmt.Errorf("%w: first moof decodes at %d, the index says %d", errProgressive, tabs[0].baseTime, p.tlStart)
	}
	st, err := buildTables(p.frags, tabs, p.mediaStart, end, p.layout.Timescale)
	if err != nil {
		return err
	}
	// The init section of the HLS playlist, inside the mdat: presented
	// from 0 like the file (initedit.go), else the original.
	frag := init
	pts := p.tlStart + uint64(st.ctos[0])
	if out, err := rewriteInit(init, initEdit{timescale: p.layout.Timescale, mediaTime: pts, duration: p.tlEnd - p.tlStart}); err == nil {
		frag = out
	} else {
		c.log.Warn("clip's HLS keeps its recordings' init section: it starts at the camera's clock", "key", h.src.rec.Key, "err", err)
		c.metrics.initKept.Inc()
	}
	body := int64(len(frag)) + p.size - size // the mdat: init section, then the recordings' bytes
	head, err := writeHead(ti, st, 0, body)
	if err != nil {
		return err
	}
	shift := int64(len(head)+len(frag)) - size
	if head, err = writeHead(ti, st, shift, body); err != nil {
		return err
	}
	if int64(len(head)+len(frag))-size != shift {
		return fmt.Errorf("%w: the moov changed size with its offsets", errProgressive)
	}
	obj := append(head, frag...)
	edited := *p
	edited.pieces = slices.Clone(p.pieces)
	edited.layout.Segments = slices.Clone(p.layout.Segments)
	if err := edited.replaceInit(key, int64(len(obj)), int64(len(head)), int64(len(frag))); err != nil {
		return fmt.Errorf("%w: %v", errProgressive, err)
	}
	edited.mediaEnd = p.mediaStart.Add(ticksDuration(int64(st.total), p.layout.Timescale))
	*p = edited // the plan now names the object: it is deleted after the build even if storing it fails
	if err := c.cfg.Objects.Put(ctx, key, obj, "application/octet-stream"); err != nil {
		return fmt.Errorf("store the clip's moov: %w", err)
	}
	c.log.Debug("clip written as a progressive MP4", "clip_key", key, "head_bytes", len(obj), "samples", len(st.durs),
		"chunks", len(st.chunkOff), "moof_reads", c.prober.requests.Load()-reads, "duration_ticks", st.total)
	return nil
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
