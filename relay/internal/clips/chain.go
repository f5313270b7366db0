package clips

import (
	"github.com/zipnvr/zipnvr/relay/internal/media"
)

// S3 composes an object from byte ranges of others (multipart
// upload-part-copy), but every part except the last must hold at least
// 5 MiB. A clip's pieces are often smaller: its init section (under 1 KiB),
// the trimmed rest of its first recording, and every recording of a
// low-bitrate camera. A part must come from one object, so small pieces
// cannot simply be merged.
//
// The way out costs server-side copies only. A scratch object is built as
// [the last >= 5 MiB of what comes before] + [the small piece]: a valid
// composition, since the small piece is its last part. The scratch objects
// overlap, each holding the 5 MiB before its piece; the final object takes
// from each scratch object the bytes not yet taken, once at least 5 MiB are
// due (or at the end). Before the first piece there is nothing: a seed
// object of 5 MiB stands in, and no byte of it reaches the clip.
//
// Cost: one composition of 5 MiB + the piece per small piece, inside the
// object store; the relay moves no media. Pieces of 5 MiB or more with
// nothing pending before them go into the final object as they are.

// step is one scratch composition; steps run in order (each may copy from
// the previous one).
type step struct {
	dst   string
	parts []media.Part
}

// planChain turns pieces (the clip's byte ranges, in order) into the
// scratch compositions to run first and the parts of the final one, every
// part but the last at least minPart bytes. seed is an object of at least
// minPart bytes; scratch names the i-th scratch object.
func planChain(pieces []media.Part, minPart int64, seed string, scratch func(i int) string) (steps []step, final []media.Part) {
	if minPart <= 1 {
		return nil, append([]media.Part(nil), pieces...)
	}
	// Positions are in the final file. tail is an object range whose
	// content equals the bytes just before pos: the content of
	// tail.Key at [tail.end-tail.avail, tail.end) is the file's
	// [pos-tail.avail, pos) (or seed bytes, before the start).
	type tailRef struct {
		key        string
		end, avail int64
	}
	tail := tailRef{key: seed, end: minPart, avail: minPart}
	var pos, emitted int64
	for i, p := range pieces {
		last := i == len(pieces)-1
		pending := pos - emitted
		if pending == 0 && (p.Length >= minPart || last) {
			final = append(final, p)
			pos += p.Length
			emitted = pos
			tail = tailRef{key: p.Key, end: p.Offset + p.Length, avail: p.Length}
			continue
		}
		// pending < minPart <= tail.avail, so the lead covers what is due.
		lead := max(minPart, pending)
		dst := scratch(len(steps))
		steps = append(steps, step{dst: dst, parts: []media.Part{
			{Key: tail.key, Offset: tail.end - lead, Length: lead},
			p,
		}})
		// dst holds the file's [pos-lead, pos+p.Length).
		next := pos + p.Length
		if next-emitted >= minPart || last {
			final = append(final, media.Part{Key: dst, Offset: emitted - (pos - lead), Length: next - emitted})
			emitted = next
		}
		tail = tailRef{key: dst, end: lead + p.Length, avail: lead + p.Length}
		pos = next
	}
	return steps, final
}
