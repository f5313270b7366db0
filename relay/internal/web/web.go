// Package web is relay's page at /: log in with a user token, list cameras,
// watch one live (WebRTC, else fMP4 over WebSocket, or MJPEG) with a quality
// picker; browse a channel's recordings on a timeline and play them, cut and
// download clips, take and list snapshots, and steer PTZ (browse.js).
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// File returns an embedded file and its content type; ok is false when
// there is none of that name.
func File(name string) (data []byte, contentType string, ok bool) {
	if name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		return nil, "", false
	}
	b, err := fs.ReadFile(files, "static/"+name)
	if err != nil {
		return nil, "", false
	}
	switch path.Ext(name) {
	case ".html":
		contentType = "text/html; charset=utf-8"
	case ".js":
		contentType = "text/javascript; charset=utf-8"
	case ".css":
		contentType = "text/css; charset=utf-8"
	default:
		contentType = http.DetectContentType(b)
	}
	return b, contentType, true
}

// Serve writes an embedded file with headers that keep the page to itself:
// no framing, scripts only from relay, no referrer (URLs may hold tokens).
// Recordings, clips and snapshots play from presigned URLs of the object
// store, whose origin is S3's (or relay's public_url, which need not be
// the origin the page was opened at): images and media may come from any
// http(s) origin; scripts, styles and API calls stay on relay.
func Serve(w http.ResponseWriter, name string) bool {
	b, ct, ok := File(name)
	if !ok {
		return false
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data: http: https:; media-src 'self' blob: http: https:; connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return true
}
