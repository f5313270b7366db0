package testbed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Probe is ffprobe's/ffmpeg's verdict on one media file.
type Probe struct {
	FormatName    string // e.g. "mov,mp4,m4a,3gp,3g2,mj2"
	Codec         string // "h264", "hevc", "mjpeg"
	Width, Height int
	Packets       int    // nb_read_packets of v:0 (-count_packets)
	FirstFlags    string // flags of the first packet: "K_" for a keyframe
	// Duration is from the packets (latest pts+duration minus earliest pts):
	// a fragmented file's format duration cannot be trusted.
	Duration     float64
	FirstPTS     float64 // pts of the first packet in file order
	DecodeErrors string  // output of `ffmpeg -v error -xerror -i FILE -f null -` ("" = clean)
	MonotonicDTS bool    // every packet's DTS strictly greater than the previous one
	ProbeError   string  // ffprobe's failure or error output ("" = read cleanly)
}

type ffprobeOut struct {
	Format struct {
		FormatName string `json:"format_name"`
	} `json:"format"`
	Streams []struct {
		CodecName     string `json:"codec_name"`
		Width         int    `json:"width"`
		Height        int    `json:"height"`
		NbReadPackets string `json:"nb_read_packets"`
	} `json:"streams"`
	Packets []struct {
		PTS      string `json:"pts_time"`
		DTS      string `json:"dts_time"`
		Duration string `json:"duration_time"`
		Flags    string `json:"flags"`
	} `json:"packets"`
}

// ProbeFile measures path with ffprobe and a full ffmpeg decode. Problems
// with the file end up in the returned fields, never as test failures:
// judging is CheckSegment's job (or the caller's). Missing tools fail the test.
func ProbeFile(t testing.TB, path string) Probe {
	t.Helper()
	RequireTools(t, "ffprobe", "ffmpeg")
	var p Probe

	cmd := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
		"-show_entries", "format=format_name:stream=codec_name,width,height,nb_read_packets:packet=pts_time,dts_time,duration_time,flags",
		"-of", "json", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var out ffprobeOut
	if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil || stderr.Len() > 0 {
		p.ProbeError = strings.TrimSpace(fmt.Sprintf("%v\n%s", errOrEmpty(err), stderr.String()))
	}
	p.FormatName = out.Format.FormatName
	if len(out.Streams) > 0 {
		s := out.Streams[0]
		p.Codec, p.Width, p.Height = s.CodecName, s.Width, s.Height
		p.Packets, _ = strconv.Atoi(s.NbReadPackets)
	}
	if len(out.Packets) > 0 {
		p.FirstFlags = out.Packets[0].Flags
		p.FirstPTS, _ = strconv.ParseFloat(out.Packets[0].PTS, 64)
		minPTS, maxEnd := math.Inf(1), math.Inf(-1)
		p.MonotonicDTS = true
		prevDTS := math.Inf(-1)
		for _, pk := range out.Packets {
			if pts, err := strconv.ParseFloat(pk.PTS, 64); err == nil {
				dur, _ := strconv.ParseFloat(pk.Duration, 64)
				minPTS = min(minPTS, pts)
				maxEnd = max(maxEnd, pts+dur)
			}
			dts, err := strconv.ParseFloat(pk.DTS, 64)
			if err != nil || dts <= prevDTS {
				p.MonotonicDTS = false
			}
			if err == nil {
				prevDTS = dts
			}
		}
		if maxEnd > minPTS {
			p.Duration = maxEnd - minPTS
		}
	}

	dec := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", path, "-f", "null", "-")
	msg, err := dec.CombinedOutput()
	p.DecodeErrors = strings.TrimSpace(string(msg))
	if err != nil && p.DecodeErrors == "" {
		p.DecodeErrors = "ffmpeg: " + err.Error()
	}
	return p
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// CheckSegment runs ProbeFile and reports (t.Errorf) every broken rule for a
// recorded segment: MP4/MOV container, codec wantCodec ("h264", "hevc"),
// starting with a keyframe, decoding without errors, strictly increasing DTS,
// and, when fps > 0, a packet count within gopFrames of duration*fps.
func CheckSegment(t testing.TB, path, wantCodec string, fps float64, gopFrames int) Probe {
	t.Helper()
	p := ProbeFile(t, path)
	if p.ProbeError != "" {
		t.Errorf("%s: ffprobe: %s", path, p.ProbeError)
	}
	if !hasToken(p.FormatName, "mp4") && !hasToken(p.FormatName, "mov") {
		t.Errorf("%s: format %q, want mov/mp4", path, p.FormatName)
	}
	if p.Codec != wantCodec {
		t.Errorf("%s: codec %q, want %q", path, p.Codec, wantCodec)
	}
	if p.Packets == 0 {
		t.Errorf("%s: no video packets", path)
	}
	if !strings.HasPrefix(p.FirstFlags, "K") {
		t.Errorf("%s: first packet flags %q, want a keyframe (K...)", path, p.FirstFlags)
	}
	if p.DecodeErrors != "" {
		t.Errorf("%s: decode errors:\n%s", path, p.DecodeErrors)
	}
	if !p.MonotonicDTS {
		t.Errorf("%s: packet DTS not strictly increasing", path)
	}
	if fps > 0 {
		want := p.Duration * fps
		if math.Abs(float64(p.Packets)-want) > float64(gopFrames) {
			t.Errorf("%s: %d packets in %.3f s at %g fps, want %.0f ± %d", path, p.Packets, p.Duration, fps, want, gopFrames)
		}
	}
	return p
}
