package proto

import (
	"bytes"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	in := Frame{DTS: -3600, PTS: 1 << 40, RandomAccess: true, Received: time.Unix(1764064800, 123456789),
		Payload: []byte{0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x06}}
	b := EncodeFrame(nil, &in)
	out, err := DecodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.DTS != in.DTS || out.PTS != in.PTS || !out.RandomAccess || !out.Received.Equal(in.Received) || !bytes.Equal(out.Payload, in.Payload) {
		t.Fatalf("got %+v", out)
	}
	nalus, err := SplitAVCC(out.Payload, nil)
	if err != nil || len(nalus) != 2 || nalus[0][0] != 0x65 || nalus[1][0] != 0x06 {
		t.Fatalf("SplitAVCC: %q %v", nalus, err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := EncodeFrame(nil, &Frame{Payload: []byte{0, 0, 0, 1, 9}})
	for name, b := range map[string][]byte{
		"empty":         nil,
		"header only":   good[:FrameHeaderSize],
		"version 2":     append([]byte{2}, good[1:]...),
		"unknown flags": append([]byte{1, 0x80}, good[2:]...),
	} {
		if _, err := DecodeFrame(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, b := range map[string][]byte{
		"short length":  {0, 0, 1},
		"past the end":  {0, 0, 0, 9, 1, 2},
		"zero length":   {0, 0, 0, 0},
		"nothing":       {},
		"huge length":   {0xff, 0xff, 0xff, 0xff, 1},
		"trailing byte": {0, 0, 0, 1, 9, 0},
	} {
		if _, err := SplitAVCC(b, nil); err == nil {
			t.Errorf("SplitAVCC %s: accepted", name)
		}
	}
	for _, s := range []string{`{}`, `{"type":"track","codec":"h264"}`, `{"type":"track","codec":"vp8"}`,
		`{"type":"state"}`, `[1]`, `{"type":"track","codec":"h265","sps":"AQ==","pps":"AQ=="}`} {
		if _, err := DecodeStreamMessage([]byte(s)); err == nil {
			t.Errorf("stream message %s: accepted", s)
		}
	}
	if _, err := DecodeStreamMessage([]byte(`{"type":"track","codec":"h264","sps":"Z00AHw==","pps":"aO48gA=="}`)); err != nil {
		t.Error(err)
	}
}

// FuzzDecodeFrame: frames and stream messages from a hub never panic, and
// what decodes re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(EncodeFrame(nil, &Frame{RandomAccess: true, Payload: []byte{0, 0, 0, 1, 0x65}}))
	f.Add([]byte(`{"type":"track","codec":"mjpeg"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if fr, err := DecodeFrame(b); err == nil {
			if again := EncodeFrame(nil, &fr); !bytes.Equal(again, b) {
				t.Fatalf("re-encoded %x, want %x", again, b)
			}
			_, _ = SplitAVCC(fr.Payload, nil)
		}
		_, _ = DecodeStreamMessage(b)
	})
}
