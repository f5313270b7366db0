package api

import (
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// segment is a checked, normalized upload request.
type segment struct {
	Camera     string
	Start, End time.Time // UTC, ms
	Bytes      int64
	Codec      string
	MD5        string // lower-case hex
}

const (
	// maxObjectBytes is S3's limit for one PUT.
	maxObjectBytes = 5 << 30
	// contentType of every segment: hubd writes fragmented MP4.
	contentType = "video/mp4"
	timeFormat  = "2006-01-02T15:04:05.000Z07:00"
	// maxClockAhead tolerates a hub clock ahead of relay's.
	maxClockAhead = 24 * time.Hour
)

var (
	codecPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)
	md5Pattern   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	// earliest refuses the clock of a hub that has not synced it yet.
	earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func checkSegment(in proto.UploadRequest, now time.Time) (segment, error) {
	bad := func(format string, a ...any) (segment, error) {
		return segment{}, errorf(http.StatusBadRequest, format, a...)
	}
	seg := segment{Camera: in.Camera, Start: store.MS(in.Start), End: store.MS(in.End), Bytes: in.Bytes,
		Codec: in.Codec, MD5: strings.ToLower(in.MD5)}
	switch {
	case seg.Camera == "":
		return bad("camera: missing")
	case in.Start.IsZero():
		return bad("start: missing (RFC 3339)")
	case in.End.IsZero():
		return bad("end: missing (RFC 3339)")
	case seg.Start.Before(earliest):
		return bad("start %s is before 2000: is the hub's clock set?", seg.Start.Format(timeFormat))
	case seg.Start.After(now.Add(maxClockAhead)):
		return bad("start %s is more than %s ahead of relay's clock", seg.Start.Format(timeFormat), maxClockAhead)
	case !seg.End.After(seg.Start):
		return bad("end %s is not after start %s", seg.End.Format(timeFormat), seg.Start.Format(timeFormat))
	case seg.End.Sub(seg.Start) > store.MaxRecordingDuration:
		return bad("a recording lasts at most %s, this one %s", store.MaxRecordingDuration, seg.End.Sub(seg.Start))
	case seg.Bytes <= 0 || seg.Bytes > maxObjectBytes:
		return bad("bytes: must be 1 to %d, got %d", int64(maxObjectBytes), seg.Bytes)
	case !codecPattern.MatchString(seg.Codec):
		return bad("codec: must be 1-32 of a-z 0-9 . _ - (e.g. h264), got %q", in.Codec)
	case !md5Pattern.MatchString(seg.MD5):
		return bad("md5: must be 32 hex digits, got %q", in.MD5)
	}
	return seg, nil
}

// uploadKey is where a segment goes: below the channel's prefix, by camera,
// day and start. It depends on nothing else, so a hub that asks again after
// a crash gets the same key and a re-upload replaces instead of duplicating.
func uploadKey(ch store.Channel, cameraID string, start time.Time) string {
	return ch.Prefix + cameraID + "/" + start.UTC().Format("2006/01/02/150405.000") + ".mp4"
}
