package proto

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Live view: relay asks a hub over the link to push one camera stream; the
// hub opens a stream socket (a second WebSocket, media only) and pushes
// access units on it until relay closes it or sends live.stop.
//
// Flow (the seed's token flow):
//  1. a client gets a stream token from relay (POST /channels/{id}/stream-token);
//  2. relay hands a token to the hub (LinkLiveStart), or a LAN client does
//     (hubd's live.lan_listen);
//  3. the hub dials PathHubLiveStream with its credential and the token
//     (HeaderStreamToken); relay verifies both and attaches the socket;
//  4. the hub pulls the camera and pushes a StreamMessage "track", then
//     binary frames (EncodeFrame);
//  5. relay closes the socket (or sends LinkLiveStop) when the last viewer
//     has been gone for a few seconds; relay records start and stop.

// Link request types relay sends to a hub.
const (
	LinkLiveStart = "live.start" // LiveStartRequest -> LiveStartReply
	LinkLiveStop  = "live.stop"  // LiveStopRequest -> empty reply
)

// PathHubLiveStream is the hub's stream socket: GET, WebSocket upgrade, hub
// credential as bearer, stream token in HeaderStreamToken.
const PathHubLiveStream = "/api/v1/hub/live"

// HeaderStreamToken carries the stream token on the hub's stream socket.
const HeaderStreamToken = "X-Stream-Token"

// LiveStartRequest asks a hub to push a stream. The token names camera and
// quality; the hub presents it back to relay on the stream socket.
type LiveStartRequest struct {
	Token string `json:"token"`
}

// LiveStartReply says the stream socket is open.
type LiveStartReply struct {
	Session string `json:"session"`
}

// LiveStopRequest asks a hub to stop pushing a session's stream.
type LiveStopRequest struct {
	Session string `json:"session"`
}

// Codec names on the stream socket (as ffprobe spells them).
const (
	CodecH264  = "h264"
	CodecH265  = "h265"
	CodecMJPEG = "mjpeg"
)

// Stream message types (text frames, JSON StreamMessage).
const (
	// StreamTrack starts a camera session: codec and parameter sets. Frames
	// after it are on a new timeline (a camera reconnect restarts it).
	StreamTrack = "track"
	// StreamState reports the camera side: State "connecting", "live" or
	// "camera_error" with Error.
	StreamState = "state"
)

// StreamMessage is a text frame on the stream socket.
type StreamMessage struct {
	Type  string `json:"type"`
	Codec string `json:"codec,omitempty"`
	// VPS, SPS, PPS of H.26x (JSON base64); Width/Height of MJPEG.
	VPS    []byte `json:"vps,omitempty"`
	SPS    []byte `json:"sps,omitempty"`
	PPS    []byte `json:"pps,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	State  string `json:"state,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Validate checks a message from a hub.
func (m StreamMessage) Validate() error {
	switch m.Type {
	case StreamTrack:
		switch m.Codec {
		case CodecH264:
			if len(m.SPS) == 0 || len(m.PPS) == 0 {
				return errors.New("track: H.264 without SPS/PPS")
			}
		case CodecH265:
			if len(m.VPS) == 0 || len(m.SPS) == 0 || len(m.PPS) == 0 {
				return errors.New("track: H.265 without VPS/SPS/PPS")
			}
		case CodecMJPEG:
		default:
			return fmt.Errorf("track: unknown codec %q", m.Codec)
		}
	case StreamState:
		if m.State == "" {
			return errors.New("state: empty")
		}
	default:
		return fmt.Errorf("unknown stream message type %q", m.Type)
	}
	return nil
}

// MaxStreamMessage bounds a text frame; MaxFrame a binary one (a 4K JPEG at
// high quality is ~3 MB, an H.26x keyframe less).
const (
	MaxStreamMessage = 64 << 10
	MaxFrame         = 8 << 20
)

// Frame is one access unit on the stream socket (a binary frame):
//
//	byte  0      FrameVersion
//	byte  1      flags: bit 0 = random access (IDR/IRAP; every JPEG)
//	bytes 2-9    DTS, int64 big endian, 90 kHz, on the track's timeline
//	bytes 10-17  PTS, int64 big endian, 90 kHz
//	bytes 18-25  when the hub received the last packet of the unit from the
//	             camera, Unix nanoseconds (for the added-latency metric)
//	bytes 26-    payload: length-prefixed (4-byte) NAL units, or one JPEG
type Frame struct {
	DTS, PTS     int64
	RandomAccess bool
	Received     time.Time
	Payload      []byte
}

// FrameVersion is the layout above.
const FrameVersion = 1

// FrameHeaderSize is the fixed part of a frame.
const FrameHeaderSize = 26

// EncodeFrame appends f's wire form to dst.
func EncodeFrame(dst []byte, f *Frame) []byte {
	var h [FrameHeaderSize]byte
	h[0] = FrameVersion
	if f.RandomAccess {
		h[1] = 1
	}
	binary.BigEndian.PutUint64(h[2:], uint64(f.DTS))
	binary.BigEndian.PutUint64(h[10:], uint64(f.PTS))
	binary.BigEndian.PutUint64(h[18:], uint64(f.Received.UnixNano()))
	dst = append(dst, h[:]...)
	return append(dst, f.Payload...)
}

// DecodeFrame parses a frame; Payload aliases b.
func DecodeFrame(b []byte) (Frame, error) {
	if len(b) < FrameHeaderSize+1 {
		return Frame{}, fmt.Errorf("frame: %d bytes, shorter than a header and payload", len(b))
	}
	if b[0] != FrameVersion {
		return Frame{}, fmt.Errorf("frame: version %d, want %d", b[0], FrameVersion)
	}
	if b[1]&^1 != 0 {
		return Frame{}, fmt.Errorf("frame: unknown flags %#x", b[1])
	}
	return Frame{
		RandomAccess: b[1]&1 != 0,
		DTS:          int64(binary.BigEndian.Uint64(b[2:])),
		PTS:          int64(binary.BigEndian.Uint64(b[10:])),
		Received:     time.Unix(0, int64(binary.BigEndian.Uint64(b[18:]))),
		Payload:      b[FrameHeaderSize:],
	}, nil
}

// SplitAVCC splits length-prefixed NAL units, refusing a length that runs
// past the end or an empty unit. The units alias b.
func SplitAVCC(b []byte, dst [][]byte) ([][]byte, error) {
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("AVCC: %d trailing bytes", len(b))
		}
		n := binary.BigEndian.Uint32(b)
		if n == 0 || uint64(n) > uint64(len(b)-4) {
			return nil, fmt.Errorf("AVCC: NAL unit of %d bytes with %d left", n, len(b)-4)
		}
		dst = append(dst, b[4:4+n:4+n])
		b = b[4+n:]
	}
	if len(dst) == 0 {
		return nil, errors.New("AVCC: no NAL unit")
	}
	return dst, nil
}

// DecodeStreamMessage parses and validates a text frame.
func DecodeStreamMessage(b []byte) (StreamMessage, error) {
	var m StreamMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("stream message: %w", err)
	}
	return m, m.Validate()
}
