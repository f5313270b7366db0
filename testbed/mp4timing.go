package testbed

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	amp4 "github.com/abema/go-mp4"
)

// FormatTiming is ffprobe's format start_time and duration of path, in
// seconds: where a player puts the file's first frame and how long it
// says the file lasts.
func FormatTiming(t testing.TB, path string) (start, duration float64) {
	t.Helper()
	RequireTools(t, "ffprobe")
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=start_time,duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var f struct {
		Format struct {
			Start    string `json:"start_time"`
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	start, _ = strconv.ParseFloat(f.Format.Start, 64)
	duration, _ = strconv.ParseFloat(f.Format.Duration, 64)
	return start, duration
}

// MP4Timing is what an MP4's moov declares about its first track's time:
// the movie's and the track's durations, the fragmented movie's (mehd),
// and the edit list.
type MP4Timing struct {
	MovieTimescale   uint32
	MovieDuration    uint64 // mvhd, movie timescale
	TrackDuration    uint64 // tkhd, movie timescale
	FragmentDuration uint64 // mvex/mehd, movie timescale; 0 without mehd
	Fragmented       bool   // the moov has an mvex: the media is in fragments
	MediaTimescale   uint32
	MediaDuration    uint64 // mdhd, media timescale
	Edits            []Edit
}

// Edit is one entry of an edit list.
type Edit struct {
	SegmentDuration uint64 // movie timescale
	MediaTime       int64  // media timescale; -1 for an empty edit
	Rate            int16
}

// ReadMP4Timing reads the timing boxes of path's moov with go-mp4.
func ReadMP4Timing(t testing.TB, path string) MP4Timing {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m MP4Timing
	tracks := 0
	_, err = amp4.ReadBoxStructure(f, func(h *amp4.ReadHandle) (any, error) {
		switch h.BoxInfo.Type.String() {
		case "mvex":
			m.Fragmented = true
			return h.Expand()
		case "moov", "mdia", "edts":
			return h.Expand()
		case "trak":
			if tracks++; tracks > 1 {
				return nil, nil
			}
			return h.Expand()
		case "mvhd", "mehd", "tkhd", "mdhd", "elst":
			b, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			switch b := b.(type) {
			case *amp4.Mvhd:
				m.MovieTimescale, m.MovieDuration = b.Timescale, b.GetDuration()
			case *amp4.Mehd:
				m.FragmentDuration = b.GetFragmentDuration()
			case *amp4.Tkhd:
				m.TrackDuration = b.GetDuration()
			case *amp4.Mdhd:
				m.MediaTimescale, m.MediaDuration = b.Timescale, b.GetDuration()
			case *amp4.Elst:
				for i := range b.Entries {
					m.Edits = append(m.Edits, Edit{SegmentDuration: b.GetSegmentDuration(i), MediaTime: b.GetMediaTime(i), Rate: b.Entries[i].MediaRateInteger})
				}
			}
		}
		return nil, nil
	})
	if err != nil {
		t.Fatalf("read the boxes of %s: %v", path, err)
	}
	return m
}

// CheckClipTiming reports (t.Errorf) every way the clip file at path,
// probed as p, fails to present its media from 0 for media: ffprobe's
// format start_time and the first packet's pts within one frame of 0,
// ffprobe's format duration (what ffmpeg-based players, Chromium among
// them, show as the length) within one frame of media; the file is not
// fragmented (progressive, moov first); one edit (rate 1) whose segment
// duration, the mvhd and tkhd durations and the mdhd duration all say
// media within one frame.
func CheckClipTiming(t testing.TB, path string, p Probe, media, frame time.Duration) MP4Timing {
	t.Helper()
	start, dur := FormatTiming(t, path)
	if start < 0 || start >= frame.Seconds() {
		t.Errorf("%s: format start_time %.3f s, want 0 (within one frame, %v)", path, start, frame)
	}
	if d := time.Duration(dur * float64(time.Second)); d-media < -frame || d-media > frame {
		t.Errorf("%s: ffprobe's format duration %.3f s, the clip's media lasts %v: want within one frame (%v)", path, dur, media, frame)
	}
	if p.FirstPTS < 0 || p.FirstPTS >= frame.Seconds() {
		t.Errorf("%s: first pts %.3f s, want 0 (within one frame, %v)", path, p.FirstPTS, frame)
	}
	m := ReadMP4Timing(t, path)
	near := func(what string, ticks uint64, scale uint32) {
		if scale == 0 {
			t.Errorf("%s: %s in timescale 0", path, what)
			return
		}
		d := time.Duration(float64(ticks) / float64(scale) * float64(time.Second))
		if diff := d - media; diff < -frame || diff > frame {
			t.Errorf("%s: %s says %v, the clip's media lasts %v: want within one frame (%v)", path, what, d, media, frame)
		}
	}
	if len(m.Edits) != 1 || m.Edits[0].MediaTime < 0 || m.Edits[0].Rate != 1 {
		t.Errorf("%s: edit list %+v, want one edit of the media at rate 1", path, m.Edits)
	} else {
		near("the edit", m.Edits[0].SegmentDuration, m.MovieTimescale)
	}
	near("mvhd", m.MovieDuration, m.MovieTimescale)
	near("tkhd", m.TrackDuration, m.MovieTimescale)
	if m.Fragmented {
		t.Errorf("%s: a fragmented MP4 (mvex in its moov), want a progressive one", path)
	}
	near("mdhd", m.MediaDuration, m.MediaTimescale)
	return m
}
