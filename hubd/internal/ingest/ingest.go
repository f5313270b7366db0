// Package ingest pulls video from cameras (RTSP through gortsplib, MJPEG over
// HTTP) and hands access units on, copied and timestamped, never decoded.
package ingest

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/zipnvr/zipnvr/hubd/internal/media"
)

// Sink receives a session's track and then its frames, on the ingest
// goroutine. It must not block: the recorder queues behind it.
type Sink interface {
	Track(t media.Track)
	Frame(f *media.Frame)
}

// Source is one camera stream.
type Source interface {
	// Run connects, plays and delivers frames until ctx ends (nil error) or
	// the session fails. Each call is a new session with its own timeline.
	Run(ctx context.Context, sink Sink) error
}

// ErrAuth marks a camera refusing our credentials: retrying fast won't help.
var ErrAuth = errors.New("camera refused the credentials")

// ErrUnsupported marks a stream hubd cannot record (no H.264/H.265/MJPEG track).
var ErrUnsupported = errors.New("no recordable video track")

// copyAVCC copies NAL units into one length-prefixed (AVCC) buffer: the RTP
// packet buffers they point into are reused by the time the frame reaches
// the disk writer, and AVCC is the form the file stores. The returned NAL
// units point into the buffer.
func copyAVCC(au [][]byte) ([][]byte, []byte) {
	n := 0
	for _, nalu := range au {
		n += 4 + len(nalu)
	}
	buf := make([]byte, n)
	out := make([][]byte, len(au))
	pos := 0
	for i, nalu := range au {
		binary.BigEndian.PutUint32(buf[pos:], uint32(len(nalu)))
		pos += 4
		out[i] = buf[pos : pos+len(nalu) : pos+len(nalu)]
		pos += copy(buf[pos:], nalu)
	}
	return out, buf
}
