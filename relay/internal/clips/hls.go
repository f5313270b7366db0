package clips

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Playlist is the clip file as an HLS (fMP4, RFC 8216 version 7) VOD
// playlist: the init section and the segments are byte ranges of the one
// MP4 file at mediaURL (a presigned GET), so HLS costs no object of its own.
func Playlist(layoutJSON []byte, mediaURL string) (string, error) {
	var l layout
	if err := json.Unmarshal(layoutJSON, &l); err != nil {
		return "", fmt.Errorf("clip layout: %w", err)
	}
	if l.Timescale == 0 || l.InitSize <= 0 || l.InitOffset < 0 || len(l.Segments) == 0 {
		return "", fmt.Errorf("clip layout: empty")
	}
	if strings.ContainsAny(mediaURL, "\"\r\n") {
		return "", fmt.Errorf("media URL cannot be quoted in a playlist")
	}
	target := 1
	for _, s := range l.Segments {
		target = max(target, int(math.Round(float64(s.Ticks)/float64(l.Timescale))))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", target)
	b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\",BYTERANGE=\"%d@%d\"\n", mediaURL, l.InitSize, l.InitOffset)
	for _, s := range l.Segments {
		if s.Disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n#EXT-X-BYTERANGE:%d@%d\n%s\n", float64(s.Ticks)/float64(l.Timescale), s.Length, s.Offset, mediaURL)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.String(), nil
}
