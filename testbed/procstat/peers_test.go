package procstat

import (
	"strings"
	"testing"
)

func TestParseFakecamReady(t *testing.T) {
	tests := []struct {
		line    string
		n       int
		wantErr string
	}{
		{"fakecam ready rtsp://127.0.0.1:5000/cam1 rtsp://127.0.0.1:5000/cam2 (2 streams)", 2, ""},
		{"fakecam ready rtsp://127.0.0.1:5000/cam1 (1 streams)", 2, "1 URLs, want 2"},
		{"fakecam ready rtsp://10.0.0.1:5000/cam1 (1 streams)", 1, "not on loopback"},
	}
	for _, tt := range tests {
		urls, err := parseFakecamReady(tt.line, tt.n)
		if tt.wantErr == "" && (err != nil || len(urls) != tt.n) {
			t.Errorf("%q: %v %v", tt.line, urls, err)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%q: err %v, want %q", tt.line, err, tt.wantErr)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 42\n" +
		"hubd_queue_frames{camera=\"cam 1\"} 3 1700000000\nrelay_x{route=\"POST /a b\"} 1.5e+00\n"
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 42 || m[`hubd_queue_frames{camera="cam 1"}`] != 3 || m[`relay_x{route="POST /a b"}`] != 1.5 {
		t.Fatalf("got %v", m)
	}
	if _, err := ParseMetrics(strings.NewReader("go_goroutines\n")); err == nil {
		t.Fatal("a sample without value accepted")
	}
	if _, err := ParseMetrics(strings.NewReader("x{a=\"b\"} many\n")); err == nil {
		t.Fatal("a non-numeric value accepted")
	}
}
