package proto

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// TestWireNames pins the JSON names: hubd and relay of different versions
// must understand each other.
func TestWireNames(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"notice", RecordingNotice{Key: "k", UploadRequest: UploadRequest{Camera: "cam1", Start: start, End: start.Add(time.Second), Bytes: 5, Codec: "h264", MD5: "00"}},
			`{"key":"k","camera":"cam1","start":"2026-11-25T10:00:00Z","end":"2026-11-25T10:00:01Z","bytes":5,"codec":"h264","md5":"00"}`},
		{"report drops passwords", CameraReport{Cameras: []camera.Camera{{ID: "cam1", Username: "admin", Password: "secret"}}},
			`{"cameras":[{"id":"cam1","username":"admin","streams":{},"ptz":{},"record":""}]}`},
		{"error", Error{Error: "bad"}, `{"error":"bad"}`},
		{"recording without URL", Recording{ID: "r", Start: start, End: start, Created: start},
			`{"id":"r","channel":"","camera":"","start":"2026-11-25T10:00:00Z","end":"2026-11-25T10:00:00Z","bytes":0,"codec":"","key":"","etag":"","created":"2026-11-25T10:00:00Z"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.v)
		if err != nil || string(b) != tt.want {
			t.Errorf("%s:\n got %s %v\nwant %s", tt.name, b, err, tt.want)
		}
		if strings.Contains(string(b), "secret") {
			t.Errorf("%s: password on the wire", tt.name)
		}
	}
}
