package snapshots_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.RunInNetNS(m)) }

type entry struct {
	ID, Source, Status, Error, URL string
	Bytes                          int64
	Upload                         *proto.Upload
}

// put sends body to a presigned upload as a phone would, with the signed
// headers; contentLength and contentType override them when set. It
// returns the status, or 0 when the server cut the connection (what
// versitygw does to a body longer than signed).
func put(t *testing.T, up *proto.Upload, body []byte, contentType string) int {
	t.Helper()
	req, err := http.NewRequest(up.Method, up.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range up.Headers {
		if k != "Content-Length" {
			req.Header[k] = vs
		}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.ContentLength = int64(len(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("PUT refused with a transport error: %v", err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Logf("PUT of %d bytes as %q refused: %s", len(body), req.Header.Get("Content-Type"), resp.Status)
	}
	return resp.StatusCode
}

// TestClientUpload runs the client upload through a relay process against
// each object store relay has: versitygw (S3) and its own local store. A
// real JPEG becomes ready and downloads intact; a text file is failed with
// the reason; a body longer than signed, or of another type, is refused by
// the store itself and the entry never becomes ready.
func TestClientUpload(t *testing.T) {
	testbed.RequireTools(t, "ffmpeg")
	jpgPath := filepath.Join(t.TempDir(), "phone.jpg")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x480", "-frames:v", "1", jpgPath).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	jpg, err := os.ReadFile(jpgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, store := range []string{"s3", "local"} {
		t.Run(store, func(t *testing.T) {
			var o testbed.RelayOptions
			if store == "s3" {
				o.S3 = testbed.S3Server(t)
			}
			relay := testbed.StartRelay(t, o)
			p := relay.Provision(t, "home", "hub1")
			var rep proto.CameraReportResult
			relay.Do(t, p.HubCredential, "PUT", proto.PathHubCameras, proto.CameraReport{Cameras: []camera.Camera{
				{ID: "cam1", Streams: camera.Streams{MJPEG: "http://192.0.2.1/mjpeg"}, Record: "off"},
			}}, http.StatusOK, &rep)
			base := "/api/v1/channels/" + rep.Cameras[0].Channel + "/snapshots"
			create := func(n int) entry {
				var e entry
				relay.Do(t, p.UserTk, "POST", base, map[string]int{"bytes": n}, http.StatusCreated, &e)
				if e.Status != "pending" || e.Source != "client" || e.Upload == nil || e.Upload.Headers.Get("Content-Type") != "image/jpeg" {
					t.Fatalf("created %+v", e)
				}
				return e
			}
			get := func(id string) entry {
				var e entry
				relay.Do(t, p.UserTk, "GET", "/api/v1/snapshots/"+id, nil, http.StatusOK, &e)
				return e
			}

			good := create(len(jpg))
			if code := put(t, good.Upload, jpg, ""); code != http.StatusOK {
				t.Fatalf("PUT of the JPEG: %d", code)
			}
			if e := get(good.ID); e.Status != "ready" || e.URL == "" || e.Bytes != int64(len(jpg)) {
				t.Fatalf("JPEG upload: %+v", e)
			}
			resp, err := http.Get(get(good.ID).URL)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(got, jpg) {
				t.Fatalf("download: %s, %d bytes, identical %v", resp.Status, len(got), bytes.Equal(got, jpg))
			}

			text := []byte(strings.Repeat("this is not an image\n", 10))
			notJPEG := create(len(text))
			if code := put(t, notJPEG.Upload, text, ""); code != http.StatusOK {
				t.Fatalf("PUT of the text: %d", code)
			}
			if e := get(notJPEG.ID); e.Status != "failed" || e.URL != "" || !strings.Contains(e.Error, "not a JPEG") {
				t.Errorf("text upload: %+v", e)
			}

			// The size limit is in the URL: a longer body, or another type,
			// is refused by the object store; nothing becomes ready.
			small := create(1000)
			if code := put(t, small.Upload, jpg, ""); code/100 == 2 {
				t.Errorf("PUT of %d bytes on a URL signed for 1000: %d", len(jpg), code)
			}
			if code := put(t, small.Upload, jpg[:1000], "image/png"); code/100 == 2 {
				t.Errorf("PUT as image/png on a URL signed for image/jpeg: %d", code)
			}
			if e := get(small.ID); e.Status != "pending" || e.URL != "" {
				t.Errorf("after refused uploads: %+v", e)
			}
			var e struct{ Error string }
			relay.Do(t, p.UserTk, "POST", base, map[string]int{"bytes": 8<<20 + 1}, http.StatusRequestEntityTooLarge, &e)
			if !strings.Contains(e.Error, "at most "+strconv.Itoa(8<<20)) {
				t.Errorf("over the limit: %q", e.Error)
			}

			var list struct{ Snapshots []entry }
			relay.Do(t, p.UserTk, "GET", base, nil, http.StatusOK, &list)
			ready := 0
			for _, e := range list.Snapshots {
				if e.Status == "ready" {
					ready++
					if e.ID != good.ID || e.URL == "" {
						t.Errorf("listed as ready: %+v", e)
					}
				}
			}
			if len(list.Snapshots) != 3 || ready != 1 {
				t.Errorf("listing: %+v", list.Snapshots)
			}
		})
	}
}
