package onvif_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/onvif"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.RunInNetNS(m)) }

// The digest of the ONVIF core spec: Base64(SHA-1(nonce + created + password)).
func TestSecurityHeader(t *testing.T) {
	nonce := []byte("0123456789abcdef")
	created := time.Date(2026, 11, 25, 6, 0, 0, 123e6, time.UTC)
	h := sha1.Sum([]byte(string(nonce) + "2026-11-25T06:00:00.123Z" + "p<ss&"))
	want := base64.StdEncoding.EncodeToString(h[:])
	got := onvif.SecurityHeader("ad<min", "p<ss&", created, nonce)
	for _, s := range []string{"<wsse:Username>ad&lt;min</wsse:Username>", want, base64.StdEncoding.EncodeToString(nonce),
		"<wsu:Created>2026-11-25T06:00:00.123Z</wsu:Created>", "#PasswordDigest"} {
		if !strings.Contains(got, s) {
			t.Errorf("header lacks %s:\n%s", s, got)
		}
	}
	if strings.Contains(got, "p<ss") || strings.Contains(got, "p&lt;ss") {
		t.Error("the password itself is in the header")
	}
}

// TestDiscoverAndDescribe: a directed WS-Discovery probe finds the test
// camera; its profiles become the camera's streams, snapshot and PTZ.
func TestDiscoverAndDescribe(t *testing.T) {
	cam := testbed.ONVIFCamera(t, testbed.ONVIFCameraOptions{Name: "Porch cam", PTZ: true, SnapshotURL: "http://127.0.0.1:8080/snap.jpg",
		StreamURLs: []string{"rtsp://127.0.0.1:8554/main", "rtsp://127.0.0.1:8554/mid", "rtsp://127.0.0.1:8554/sub"}})
	devs, err := onvif.Probe(context.Background(), cam.DiscoveryAddr, 500*time.Millisecond)
	if err != nil || len(devs) != 1 {
		t.Fatalf("probe: %+v, %v", devs, err)
	}
	d := devs[0]
	if d.Endpoint != cam.Endpoint || d.XAddrs[0] != cam.DeviceURL || d.Name() != "Porch cam" {
		t.Fatalf("device %+v", d)
	}
	c, err := onvif.CameraFor(context.Background(), d, cam.User, cam.Pass)
	if err != nil {
		t.Fatal(err)
	}
	want := camera.Streams{High: "rtsp://127.0.0.1:8554/main", Mid: "rtsp://127.0.0.1:8554/mid", Low: "rtsp://127.0.0.1:8554/sub"}
	if c.Streams != want || c.Snapshot != "http://127.0.0.1:8080/snap.jpg" || c.PTZ.Kind != "onvif" ||
		c.Params[onvif.ParamURL] != cam.DeviceURL || c.Params[onvif.ParamProfile] != "prof0" || c.Name != "Porch cam" || c.IP != "127.0.0.1" {
		t.Fatalf("camera %+v", c)
	}
	if c.ID != onvif.CameraID(cam.Endpoint) || !strings.HasPrefix(c.ID, "onvif-") {
		t.Errorf("id %q", c.ID)
	}
	c.ApplyDefaults()
	if err := c.Validate(camera.DefaultSyntax); err != nil {
		t.Errorf("discovered camera does not validate: %v", err)
	}
	// Every request but the clock's carried a valid digest.
	for _, r := range cam.Requests() {
		if !r.Authorized {
			t.Errorf("%s refused", r.Action)
		}
	}
}

// A camera that advertises service addresses on another host (NAT, a
// second interface) is reached at the host it was found at.
func TestAdvertisedHostReplaced(t *testing.T) {
	cam := testbed.ONVIFCamera(t, testbed.ONVIFCameraOptions{StreamURLs: []string{"rtsp://127.0.0.1/x"}, AdvertiseHost: "192.0.2.1"})
	c := &onvif.Client{DeviceURL: cam.DeviceURL, Username: cam.User, Password: cam.Pass}
	svc, err := c.Services(context.Background())
	if err != nil || !strings.HasPrefix(svc.Media, cam.URL+"/") {
		t.Fatalf("services %+v, %v", svc, err)
	}
	if _, err := c.Profiles(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWrongPassword(t *testing.T) {
	cam := testbed.ONVIFCamera(t, testbed.ONVIFCameraOptions{StreamURLs: []string{"rtsp://127.0.0.1/x"}})
	c := &onvif.Client{DeviceURL: cam.DeviceURL, Username: cam.User, Password: "hunter2"}
	_, err := c.Profiles(context.Background())
	if !errors.Is(err, onvif.ErrUnauthorized) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("wrong password: %v", err)
	}
	devs := []onvif.Device{{Endpoint: "urn:uuid:x", XAddrs: []string{cam.DeviceURL}}}
	if _, err := onvif.CameraFor(context.Background(), devs[0], cam.User, "hunter2"); !errors.Is(err, onvif.ErrUnauthorized) {
		t.Fatalf("CameraFor: %v", err)
	}
}

// TestDiscoverer runs the discovery loop against the test camera: found
// once, handed over as a camera, skipped when another source has its host.
func TestDiscoverer(t *testing.T) {
	cam := testbed.ONVIFCamera(t, testbed.ONVIFCameraOptions{PTZ: true, StreamURLs: []string{"rtsp://127.0.0.1/x"}})
	got := make(chan []camera.Camera, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go onvif.Discoverer{Address: cam.DiscoveryAddr, Interval: time.Hour, Wait: 300 * time.Millisecond,
		Username: cam.User, Password: cam.Pass, Record: "off", OnCameras: func(c []camera.Camera) { got <- c }}.Run(ctx)
	select {
	case cams := <-got:
		if len(cams) != 1 || cams[0].Record != "off" || cams[0].Password != cam.Pass {
			t.Fatalf("cameras %+v", cams)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no cameras from discovery")
	}
	skip := make(chan []camera.Camera, 4)
	go onvif.Discoverer{Address: cam.DiscoveryAddr, Interval: time.Hour, Wait: 300 * time.Millisecond,
		Skip: func(host string) bool { return host == "127.0.0.1" }, OnCameras: func(c []camera.Camera) { skip <- c }}.Run(ctx)
	if cams := <-skip; len(cams) != 0 {
		t.Fatalf("a known host was not skipped: %+v", cams)
	}
}

func TestParseProbeMatches(t *testing.T) {
	msg := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">
<s:Header><a:RelatesTo>uuid:1</a:RelatesTo></s:Header><s:Body><d:ProbeMatches>
<d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:cam</a:Address></a:EndpointReference><d:XAddrs>http://10.0.0.5/onvif/device_service ftp://x/ http://[fe80::1]/onvif/device_service</d:XAddrs><d:Scopes>onvif://www.onvif.org/name/Back%20yard</d:Scopes></d:ProbeMatch>
<d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:noaddr</a:Address></a:EndpointReference></d:ProbeMatch>
</d:ProbeMatches></s:Body></s:Envelope>`
	devs, err := onvif.ParseProbeMatches([]byte(msg), "uuid:1")
	if err != nil || len(devs) != 1 || len(devs[0].XAddrs) != 2 || devs[0].Name() != "Back yard" {
		t.Fatalf("%+v, %v", devs, err)
	}
	if _, err := onvif.ParseProbeMatches([]byte(msg), "uuid:2"); err == nil {
		t.Error("an answer to another probe was taken")
	}
	if _, err := onvif.ParseProbeMatches([]byte("<not"), ""); err == nil {
		t.Error("garbage parsed")
	}
}

func TestCameraID(t *testing.T) {
	for in, want := range map[string]string{
		"urn:uuid:1f2e-3d":                     "onvif-1f2e-3d",
		"uuid:a/b c":                           "onvif-a-b-c",
		"urn:uuid:" + strings.Repeat("x", 100): "onvif-" + strings.Repeat("x", 58),
	} {
		if got := onvif.CameraID(in); got != want {
			t.Errorf("CameraID(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseProbeMatches(f *testing.F) {
	f.Add([]byte(`<Envelope><Body><ProbeMatches><ProbeMatch><EndpointReference><Address>urn:uuid:x</Address></EndpointReference><XAddrs>http://1.2.3.4/onvif</XAddrs></ProbeMatch></ProbeMatches></Body></Envelope>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		devs, err := onvif.ParseProbeMatches(data, "")
		if err != nil {
			return
		}
		for _, d := range devs {
			if d.Endpoint == "" || len(d.XAddrs) == 0 {
				t.Fatalf("incomplete device %+v", d)
			}
			id := onvif.CameraID(d.Endpoint)
			if len(id) > 64 || strings.ContainsAny(id, "/ ") {
				t.Fatalf("camera id %q", id)
			}
		}
	})
}
