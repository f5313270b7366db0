package testbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(RunInNetNS(m)) }

func TestNetNS(t *testing.T) {
	if os.Getenv("TESTBED_NETNS") == "" {
		t.Skip("not in a private network namespace (not root, no unshare, or TESTBED_NO_NETNS=1)")
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Flags&net.FlagLoopback == 0 || ifs[0].Flags&net.FlagUp == 0 {
		t.Fatalf("interfaces %+v, want only lo, up", ifs)
	}
}

type streamInfo struct {
	Codec         string
	Width, Height int
}

// ffprobeStream asks ffprobe (a client we did not write) what url carries.
func ffprobeStream(t *testing.T, url string, extra ...string) (streamInfo, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-v", "error"}, extra...)
	args = append(args, "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height", "-of", "json", url)
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var out struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
	}
	var si streamInfo
	if err == nil {
		if err = json.Unmarshal(stdout.Bytes(), &out); err == nil && len(out.Streams) > 0 {
			si = streamInfo{out.Streams[0].CodecName, out.Streams[0].Width, out.Streams[0].Height}
		}
	}
	return si, stderr.String(), err
}

func withPassword(cam *Camera, pass string) *Camera {
	c := *cam
	c.Pass = pass
	return &c
}

func TestGstCamera(t *testing.T) {
	RequireTools(t, "ffprobe", "ffmpeg")
	for _, tc := range []struct {
		name      string
		opts      GstOptions
		wantCodec string
		udpCheck  bool
		fixedPort bool
	}{
		{"h264", GstOptions{}, "h264", true, false},
		{"h264-basic-fixed-port", GstOptions{Auth: "basic"}, "h264", false, true},
		{"h264-digest", GstOptions{Auth: "digest", User: "viewer", Pass: "p@ss:word"}, "h264", false, false},
		{"h265", GstOptions{Codec: "h265", Width: 640, Height: 360}, "hevc", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.fixedPort {
				tc.opts.Port = FreePort(t)
			}
			cam := GstCamera(t, tc.opts)
			if tc.fixedPort && cam.URL != fmt.Sprintf("rtsp://127.0.0.1:%d/cam", tc.opts.Port) {
				t.Errorf("URL %q does not use port %d", cam.URL, tc.opts.Port)
			}
			wantW, wantH := 1280, 720
			if tc.opts.Width > 0 {
				wantW, wantH = tc.opts.Width, tc.opts.Height
			}
			si, stderr, err := ffprobeStream(t, cam.AuthURL(), "-rtsp_transport", "tcp")
			if err != nil {
				t.Fatalf("ffprobe %s: %v\n%s", cam.AuthURL(), err, stderr)
			}
			if si != (streamInfo{tc.wantCodec, wantW, wantH}) {
				t.Errorf("ffprobe: %+v, want %s %dx%d", si, tc.wantCodec, wantW, wantH)
			}
			if tc.opts.Auth != "" {
				checkRTSPAuth(t, cam)
			}
			if tc.udpCheck {
				checkUDPSocketsOnLoopback(t, cam)
			}
		})
	}
}

// checkRTSPAuth: wrong or no credentials must get 401 from the camera, both
// for our DESCRIBE and for ffprobe.
func checkRTSPAuth(t *testing.T, cam *Camera) {
	t.Helper()
	if st, _, err := RTSPDescribe(cam.URL, "", "", 5*time.Second); err != nil || st != 401 {
		t.Errorf("DESCRIBE without credentials: status %d, err %v; want 401", st, err)
	}
	if st, _, err := RTSPDescribe(cam.URL, cam.User, "wrong", 5*time.Second); err != nil || st != 401 {
		t.Errorf("DESCRIBE with wrong password: status %d, err %v; want 401", st, err)
	}
	bad := withPassword(cam, "wrong").AuthURL()
	if _, stderr, err := ffprobeStream(t, bad, "-rtsp_transport", "tcp"); err == nil || !strings.Contains(stderr, "401") {
		t.Errorf("ffprobe with wrong password: err %v, stderr %q; want a 401 failure", err, stderr)
	}
}

// checkUDPSocketsOnLoopback plays the camera over UDP with ffmpeg and
// checks, while RTP flows, that every socket of the camera's server
// processes is bound to 127.0.0.1 and that some are UDP.
func checkUDPSocketsOnLoopback(t *testing.T, cam *Camera) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
		"-rtsp_transport", "udp", "-i", cam.AuthURL(), "-t", "4", "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	defer cancel()
	deadline := time.Now().Add(8 * time.Second)
	for {
		udp, bad := serverSockets(t, cam)
		if len(bad) > 0 {
			t.Fatalf("sockets not on loopback: %v", bad)
		}
		if udp >= 2 {
			return // RTP and RTCP
		}
		if time.Now().After(deadline) {
			t.Fatalf("no UDP sockets in the camera's servers while ffmpeg plays over UDP; ffmpeg: %s", stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// serverSockets counts the UDP sockets of cam's server processes and lists
// any TCP/UDP socket whose local address is not loopback, and any UDP socket
// outside the RTP port range the camera was given.
func serverSockets(t *testing.T, cam *Camera) (udp int, bad []string) {
	t.Helper()
	if len(cam.servers) == 0 {
		t.Fatal("camera has no server processes to inspect")
	}
	for _, p := range cam.servers {
		pid := p.cmd.Process.Pid
		inodes := map[string]bool{}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if ino, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
				inodes[strings.TrimSuffix(ino, "]")] = true
			}
		}
		for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
			f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			sc.Scan() // header
			for sc.Scan() {
				fields := strings.Fields(sc.Text())
				if len(fields) < 10 || !inodes[fields[9]] {
					continue
				}
				local, portHex, _ := strings.Cut(fields[1], ":")
				if local != "0100007F" && local != "00000000000000000000000001000000" {
					bad = append(bad, fmt.Sprintf("%s %s %s: not loopback", p.name, table, fields[1]))
				}
				if strings.HasPrefix(table, "udp") {
					udp++
					port, _ := strconv.ParseUint(portHex, 16, 16)
					if int(port) < cam.rtpPorts[0] || int(port) >= cam.rtpPorts[1] {
						bad = append(bad, fmt.Sprintf("%s %s port %d outside [%d,%d)", p.name, table, port, cam.rtpPorts[0], cam.rtpPorts[1]))
					}
				}
			}
			f.Close()
		}
	}
	return udp, bad
}

func TestPerlCamera(t *testing.T) {
	RequireTools(t, "ffprobe", "ffmpeg")
	t.Parallel()
	cam := PerlCamera(t, PerlOptions{Width: 640, Height: 360})
	if cam.User != "" {
		t.Errorf("perl camera has credentials %q", cam.User)
	}
	si, stderr, err := ffprobeStream(t, cam.URL, "-rtsp_transport", "udp")
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", cam.URL, err, stderr)
	}
	if si != (streamInfo{"h264", 640, 360}) {
		t.Errorf("ffprobe: %+v, want h264 640x360", si)
	}
	checkUDPSocketsOnLoopback(t, cam)

	// When the publisher dies it comes back, and the relay's RTP ports stay in
	// our range (the relay resets its port counter when the mount goes away).
	cam.pub.mu.Lock()
	first := cam.pub.cur
	cam.pub.mu.Unlock()
	first.stop()
	deadline := time.Now().Add(15 * time.Second)
	for {
		cam.pub.mu.Lock()
		cur := cam.pub.cur
		cam.pub.mu.Unlock()
		if cur != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("publisher not restarted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := waitDescribe(cam, cam.servers[0], 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if si, stderr, err := ffprobeStream(t, cam.URL, "-rtsp_transport", "udp"); err != nil || si.Codec != "h264" {
		t.Errorf("ffprobe after publisher restart: %+v, %v\n%s", si, err, stderr)
	}
	checkUDPSocketsOnLoopback(t, cam)
}

func TestMJPEGCamera(t *testing.T) {
	RequireTools(t, "ffprobe", "curl")
	for _, auth := range []string{"", "basic", "digest"} {
		name := auth
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cam := MJPEGCamera(t, MJPEGOptions{Auth: auth, Width: 640, Height: 360})
			if !strings.HasSuffix(cam.URL, "/mjpeg") || !strings.HasSuffix(cam.SnapshotURL(), "/snapshot.jpg") {
				t.Fatalf("URLs %q %q", cam.URL, cam.SnapshotURL())
			}
			if auth != "" {
				for _, u := range []string{cam.URL, cam.SnapshotURL()} {
					resp, err := http.Get(u)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					scheme, _ := splitChallenge(resp.Header.Get("WWW-Authenticate"))
					if resp.StatusCode != 401 || !strings.EqualFold(scheme, auth) {
						t.Errorf("GET %s without credentials: %s, WWW-Authenticate %q; want 401 %s",
							u, resp.Status, resp.Header.Get("WWW-Authenticate"), auth)
					}
					if st := authGet(t, withPassword(cam, "wrong"), u, nil); st != 401 {
						t.Errorf("GET %s with wrong password: %d, want 401", u, st)
					}
				}
			}

			// Snapshot, via our client and via curl.
			var snap []byte
			if st := authGet(t, cam, cam.SnapshotURL(), func(r *http.Response) {
				if ct := r.Header.Get("Content-Type"); ct != "image/jpeg" {
					t.Errorf("snapshot Content-Type %q", ct)
				}
				snap, _ = io.ReadAll(r.Body)
			}); st != 200 {
				t.Fatalf("snapshot: status %d", st)
			}
			checkJPEG(t, snap, 640, 360)
			curlArgs := []string{"-s", "-f", "--max-time", "10", "-o", filepath.Join(t.TempDir(), "snap.jpg"), "-w", "%{http_code} %{content_type}"}
			switch auth {
			case "basic":
				curlArgs = append(curlArgs, "--basic", "-u", cam.User+":"+cam.Pass)
			case "digest":
				curlArgs = append(curlArgs, "--digest", "-u", cam.User+":"+cam.Pass)
			}
			out, err := exec.Command("curl", append(curlArgs, cam.SnapshotURL())...).CombinedOutput()
			if err != nil || string(out) != "200 image/jpeg" {
				t.Errorf("curl snapshot: %v: %q", err, out)
			}

			// Stream: parts at about FPS, each a whole JPEG with Content-Length.
			if st := authGet(t, cam, cam.URL, func(r *http.Response) { checkMJPEGStream(t, r, 10) }); st != 200 {
				t.Fatalf("stream: status %d", st)
			}

			// ffprobe as a third-party MJPEG client (it does Digest with qop=auth).
			si, stderr, err := ffprobeStream(t, cam.AuthURL())
			if err != nil || si != (streamInfo{"mjpeg", 640, 360}) {
				t.Errorf("ffprobe %s: %+v, %v\n%s", cam.AuthURL(), si, err, stderr)
			}
		})
	}
}

// authGet does GET u with cam's credentials the way a camera client does:
// first without, then answering the 401 challenge. It returns the final status
// and hands a 200 response to read.
func authGet(t *testing.T, cam *Camera, u string, read func(*http.Response)) int {
	t.Helper()
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == 401 && cam.User != "" {
		resp.Body.Close()
		req, _ := http.NewRequest("GET", u, nil)
		authz, err := authorization(resp.Header.Values("WWW-Authenticate"), "GET", req.URL.RequestURI(), cam.User, cam.Pass)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", authz)
		if resp, err = client.Do(req); err != nil {
			t.Fatal(err)
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 && read != nil {
		read(resp)
	}
	return resp.StatusCode
}

func checkJPEG(t *testing.T, b []byte, w, h int) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("JPEG (%d bytes): %v", len(b), err)
	}
	if sz := img.Bounds().Size(); sz.X != w || sz.Y != h {
		t.Errorf("JPEG is %v, want %dx%d", sz, w, h)
	}
}

func checkMJPEGStream(t *testing.T, r *http.Response, fps int) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: %v", r.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	const window = 2 * time.Second
	start := time.Now()
	parts := 0
	for time.Since(start) < window {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", parts, err)
		}
		if ct := p.Header.Get("Content-Type"); ct != "image/jpeg" {
			t.Errorf("part Content-Type %q", ct)
		}
		n, err := strconv.Atoi(p.Header.Get("Content-Length"))
		if err != nil {
			t.Fatalf("part Content-Length %q", p.Header.Get("Content-Length"))
		}
		b, err := io.ReadAll(p)
		if err != nil || len(b) != n {
			t.Fatalf("part body %d bytes (%v), Content-Length %d", len(b), err, n)
		}
		if parts == 0 {
			checkJPEG(t, b, 640, 360)
		}
		parts++
	}
	// The first part is the latest frame at once, then one per frame.
	want := window.Seconds() * float64(fps)
	if float64(parts) < want*0.6 || float64(parts) > want*1.5+1 {
		t.Errorf("%d parts in %s, want about %.0f", parts, window, want)
	}
}

func TestReadJPEG(t *testing.T) {
	var stream bytes.Buffer
	stream.WriteString("junk\xff\x00")
	var want [][]byte
	for i := 0; i < 3; i++ {
		img := image.NewGray(image.Rect(0, 0, 64, 48))
		for p := range img.Pix {
			img.Pix[p] = uint8(p*7 + i*50)
		}
		img.Set(0, 0, color.Gray{255})
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 100}); err != nil {
			t.Fatal(err)
		}
		want = append(want, b.Bytes())
		stream.Write(b.Bytes())
	}
	r := bufio.NewReader(&stream)
	for i, w := range want {
		got, err := readJPEG(r)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, w) {
			t.Fatalf("frame %d: %d bytes, want %d", i, len(got), len(w))
		}
	}
	if _, err := readJPEG(r); err != io.EOF {
		t.Fatalf("after last frame: %v, want EOF", err)
	}
}

// recordTB collects Errorf calls so that CheckSegment's verdict on a bad
// file can be tested without failing this test.
type recordTB struct {
	testing.TB
	errs []string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckSegment(t *testing.T) {
	RequireTools(t, "ffmpeg", "ffprobe")
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mp4")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi",
		"-i", "testsrc2=size=320x240:rate=25", "-t", "4", "-c:v", "libx264", "-g", "50",
		"-f", "mp4", "-movflags", "+frag_keyframe+empty_moov", good).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}

	p := CheckSegment(t, good, "h264", 25, 50)
	if p.Packets != 100 || p.Width != 320 || p.Height != 240 || !strings.HasPrefix(p.FirstFlags, "K") ||
		p.Duration < 3.95 || p.Duration > 4.05 || !p.MonotonicDTS || !strings.Contains(p.FormatName, "mp4") {
		t.Errorf("good file probe: %+v", p)
	}

	rec := &recordTB{TB: t}
	CheckSegment(rec, good, "hevc", 25, 50)
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "codec") {
		t.Errorf("wrong codec: errors %q, want one about the codec", rec.errs)
	}

	// Few packets for the time they claim: fewer than duration*fps - gop.
	rec = &recordTB{TB: t}
	CheckSegment(rec, good, "h264", 60, 50)
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "packets") {
		t.Errorf("wrong fps: errors %q, want one about packets", rec.errs)
	}

	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"truncated", data[:len(data)*6/10]},
		{"corrupt", corrupt(data)},
	} {
		path := filepath.Join(dir, bc.name+".mp4")
		if err := os.WriteFile(path, bc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		rec := &recordTB{TB: t}
		p := CheckSegment(rec, path, "h264", 25, 50)
		if len(rec.errs) == 0 {
			t.Errorf("%s file passed CheckSegment: %+v", bc.name, p)
		} else {
			t.Logf("%s file: %d complaints, first: %.200s", bc.name, len(rec.errs), rec.errs[0])
		}
	}
}

// corrupt overwrites a stretch in the middle of the media data with noise.
func corrupt(data []byte) []byte {
	b := bytes.Clone(data)
	for i := len(b) / 2; i < len(b)/2+4000 && i < len(b); i++ {
		b[i] = byte(i*131 + 7)
	}
	return b
}

// fatalTB records Fatalf and ends the calling goroutine like testing does, so
// that a peer's start-up failure message can be inspected.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestGstCameraPortBusy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		GstCamera(f, GstOptions{Port: ln.Addr().(*net.TCPAddr).Port})
	}()
	<-done
	if !strings.Contains(f.fatal, "cannot listen") {
		t.Errorf("GstCamera on a busy port: fatal %q, want the peer's complaint", f.fatal)
	}
	t.Logf("message: %s", f.fatal)
}
