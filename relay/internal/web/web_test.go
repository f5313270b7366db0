package web

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFile(t *testing.T) {
	tests := []struct {
		name, contentType string
		ok                bool
	}{
		{"index.html", "text/html; charset=utf-8", true},
		{"app.js", "text/javascript; charset=utf-8", true},
		{"browse.js", "text/javascript; charset=utf-8", true},
		{"style.css", "text/css; charset=utf-8", true},
		{"browse.css", "text/css; charset=utf-8", true},
		{"", "", false},
		{"nosuch.js", "", false},
		{"../web.go", "", false},
		{"static/app.js", "", false},
		{".hidden", "", false},
	}
	for _, tt := range tests {
		b, ct, ok := File(tt.name)
		if ok != tt.ok || ct != tt.contentType || ok && len(b) == 0 {
			t.Errorf("File(%q) = %d bytes, %q, %v; want %q, %v", tt.name, len(b), ct, ok, tt.contentType, tt.ok)
		}
	}
}

// The page loads every script and style it names, from relay.
func TestIndexNamesEmbeddedFiles(t *testing.T) {
	b, _, _ := File("index.html")
	page := string(b)
	for _, name := range []string{"app.js", "browse.js", "style.css", "browse.css"} {
		if !strings.Contains(page, `"/web/`+name+`"`) {
			t.Errorf("index.html does not load /web/%s", name)
		}
	}
}

// Scripts, styles and API calls stay on relay; media and images may come
// from the object store's presigned URLs on any http(s) origin.
func TestServeHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	if !Serve(w, "index.html") {
		t.Fatal("index.html not served")
	}
	csp := map[string]string{}
	for _, d := range strings.Split(w.Header().Get("Content-Security-Policy"), ";") {
		if f := strings.Fields(d); len(f) > 0 {
			csp[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for dir, want := range map[string]string{
		"script-src":      "'self'",
		"style-src":       "'self'",
		"connect-src":     "'self'",
		"frame-ancestors": "'none'",
		"media-src":       "'self' blob: http: https:",
		"img-src":         "'self' blob: data: http: https:",
	} {
		if csp[dir] != want {
			t.Errorf("CSP %s = %q, want %q", dir, csp[dir], want)
		}
	}
	if w.Header().Get("Referrer-Policy") != "no-referrer" || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers %v", w.Header())
	}
}
