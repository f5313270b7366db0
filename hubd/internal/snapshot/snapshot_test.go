package snapshot_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/snapshot"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.RunInNetNS(m)) }

// judge has ffprobe read the JPEG: codec and size.
func judge(t *testing.T, jpeg []byte, want string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "snap.jpg")
	if err := os.WriteFile(p, jpeg, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", p).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Fatalf("ffprobe: %q (%v), want %q", out, err, want)
	}
}

func TestCapture(t *testing.T) {
	testbed.RequireTools(t, "ffmpeg", "ffprobe")
	cam := testbed.MJPEGCamera(t, testbed.MJPEGOptions{Auth: "digest", User: "admin", Pass: "p@ss:w/rd", Width: 640, Height: 360})
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/html" {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>login</html>"))
			return
		}
		http.NotFound(w, r)
	}))
	defer broken.Close()
	base := camera.Camera{ID: "cam1", Username: "admin", Password: "p@ss:w/rd"}
	tests := []struct {
		name     string
		snapshot string
		mjpeg    string
		pass     string
		wantErr  error
		errHas   string
	}{
		{name: "snapshot URL, Digest", snapshot: cam.SnapshotURL()},
		{name: "MJPEG stream only", mjpeg: cam.URL},
		{name: "snapshot URL 404, MJPEG fallback", snapshot: broken.URL + "/nothing", mjpeg: cam.URL},
		{name: "snapshot URL gives HTML, MJPEG fallback", snapshot: broken.URL + "/html", mjpeg: cam.URL},
		{name: "wrong password", snapshot: cam.SnapshotURL(), mjpeg: cam.URL, pass: "hunter2", wantErr: snapshot.ErrAuth},
		{name: "no source", wantErr: snapshot.ErrNoSource},
		{name: "snapshot URL gives HTML, no stream", snapshot: broken.URL + "/html", errHas: "not a JPEG"},
		{name: "unreachable", snapshot: "http://127.0.0.1:1/snap.jpg", errHas: "snapshot URL"},
		// Foscam's CGI takes the password in the query: it must not reach
		// the error (which lands on the snapshot entry and in MQTT answers).
		{name: "password in the query, 404", snapshot: broken.URL + "/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=${username}&pwd=${password}", errHas: "pwd=xxxxx"},
		{name: "password in the query, unreachable", snapshot: "http://127.0.0.1:1/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=${username}&pwd=${password}", errHas: "pwd=xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Snapshot, c.Streams.MJPEG = tt.snapshot, tt.mjpeg
			if tt.pass != "" {
				c.Password = tt.pass
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			jpeg, err := snapshot.Capture(ctx, c, camera.DefaultSyntax)
			if tt.wantErr == nil && tt.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				judge(t, jpeg, "mjpeg,640,360")
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %q lacks %q", err, tt.errHas)
			}
			for _, secret := range []string{"p@ss", "hunter2", "p%40ss"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows the password: %v", err)
				}
			}
		})
	}
}

// A camera that sends endless garbage as its "stream": the capture ends
// within its timeout with an error.
func TestCaptureBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=b")
		for i := 0; i < 1000 && r.Context().Err() == nil; i++ {
			w.Write([]byte("--b\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\n\r\nnope\r\n"))
		}
	}))
	defer srv.Close()
	c := snapshot.New(snapshot.Config{Timeout: 2 * time.Second})
	start := time.Now()
	_, err := c.Capture(context.Background(), camera.Camera{ID: "g", Streams: camera.Streams{MJPEG: srv.URL + "/mjpeg"}}, camera.DefaultSyntax)
	if err == nil || !strings.Contains(err.Error(), "no JPEG") || time.Since(start) > 3*time.Second {
		t.Fatalf("garbage stream: %v after %v", err, time.Since(start))
	}
}
