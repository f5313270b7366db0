// Package web is relay's page at /: log in with a user token, list cameras,
// watch one live (WebRTC, else fMP4 over WebSocket, or MJPEG) with a quality picker.
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
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return true
}
