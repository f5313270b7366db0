package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.RunInNetNS(m)) }

// TestUploadURLExpiresEndToEnd: a relay process with upload_url_seconds
// 10 hands a hub a PUT URL; used after 11 s the object store refuses it
// (S3: versitygw; local: relay's own signed URLs), nothing is stored and
// the notice is refused; a fresh URL works. Both stores in parallel.
func TestUploadURLExpiresEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a URL to expire")
	}
	stores := map[string]*testbed.S3{"local": nil, "s3": testbed.S3Server(t)}
	var wg sync.WaitGroup
	for name, s3 := range stores {
		wg.Go(func() {
			t.Run(name, func(t *testing.T) { expiryCase(t, s3) })
		})
	}
	wg.Wait()
}

func expiryCase(t *testing.T, s3 *testbed.S3) {
	relay := testbed.StartRelay(t, testbed.RelayOptions{S3: s3, Config: "upload_url_seconds: 10\n"})
	p := relay.Provision(t, "home", "hub1")
	relay.Do(t, p.HubCredential, "PUT", proto.PathHubCameras, proto.CameraReport{Cameras: []camera.Camera{
		{ID: "cam1", Streams: camera.Streams{High: "rtsp://10.0.0.2/1"}, Record: "high"}}}, http.StatusOK, nil)
	content := []byte("an fMP4 segment, as far as this test is concerned")
	sum := md5.Sum(content)
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	req := proto.UploadRequest{Camera: "cam1", Start: start, End: start.Add(4 * time.Second), Bytes: int64(len(content)), Codec: "h264", MD5: hex.EncodeToString(sum[:])}

	var up proto.Upload
	relay.Do(t, p.HubCredential, "POST", proto.PathHubUploads, req, http.StatusOK, &up)
	if d := time.Until(up.Expires); d > 11*time.Second || d < 5*time.Second {
		t.Fatalf("URL expires in %v, want 10 s", d)
	}
	time.Sleep(time.Until(up.Expires) + time.Second)
	if code, body := put(t, up, content); code != http.StatusForbidden || !strings.Contains(strings.ToLower(body), "expired") {
		t.Fatalf("expired URL: %d %s, want 403 saying it expired", code, body)
	}
	// Nothing was stored: the notice is refused.
	notice := proto.RecordingNotice{Key: up.Key, UploadRequest: req}
	relay.Do(t, p.HubCredential, "POST", proto.PathHubRecordings, notice, http.StatusConflict, nil)

	relay.Do(t, p.HubCredential, "POST", proto.PathHubUploads, req, http.StatusOK, &up)
	if code, body := put(t, up, content); code != http.StatusOK {
		t.Fatalf("fresh URL: %d %s", code, body)
	}
	relay.Do(t, p.HubCredential, "POST", proto.PathHubRecordings, notice, http.StatusCreated, nil)
}

func put(t *testing.T, up proto.Upload, content []byte) (int, string) {
	req, err := http.NewRequest(up.Method, up.URL, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range up.Headers {
		req.Header[k] = v
	}
	req.ContentLength = int64(len(content))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", up.Key, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
