// Package media holds the access-unit types that flow from ingest to the
// segmenter (and later to live view): remuxed, never decoded.
package media

import "time"

// Codec names a video codec as the index and ffprobe spell it.
type Codec string

// Codecs hubd records.
const (
	H264  Codec = "h264"
	H265  Codec = "h265"
	MJPEG Codec = "mjpeg"
)

// ClockRate is the media clock of every Frame timestamp (RTP video clock).
const ClockRate = 90000

// Track describes a session's video at its start. Parameter sets may be
// refreshed in-band later; the segmenter watches for that.
type Track struct {
	Codec         Codec
	VPS, SPS, PPS []byte // H.264 uses SPS/PPS, H.265 all three; MJPEG none
	Width, Height int    // MJPEG only (H.26x carry it in the SPS)
}

// Frame is one access unit.
type Frame struct {
	// DTS and PTS are in ClockRate ticks on the source's clock; they are only
	// comparable inside one session (a reconnect starts a new timeline).
	DTS, PTS int64
	// AU holds the NAL units without start codes (H.26x) or one JPEG (MJPEG).
	AU [][]byte
	// AVCC, when set, is AU as one buffer of length-prefixed NAL units (the
	// form MP4 stores), with AU's slices pointing into it: ingest builds it
	// in the one copy it makes anyway, so the writer copies nothing more.
	AVCC []byte
	// RandomAccess is set on IDR/IRAP access units and on every JPEG.
	RandomAccess bool
	// Received is when the frame arrived, with the monotonic clock reading.
	Received time.Time
	// Width and Height of a JPEG (0 for H.26x).
	Width, Height int
}

// Size is the payload size in bytes.
func (f *Frame) Size() int {
	n := 0
	for _, nalu := range f.AU {
		n += len(nalu)
	}
	return n
}
