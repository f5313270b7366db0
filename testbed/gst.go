package testbed

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

//go:embed gst_camera.py
var gstScript string

// gstPython is Debian's interpreter: a python3 earlier on PATH may lack gi.
const gstPython = "/usr/bin/python3"

// GstOptions configures GstCamera; zero values mean the defaults noted.
type GstOptions struct {
	Codec              string // "h264" (default) or "h265"
	Auth               string // "" (none), "basic" or "digest"
	User, Pass         string // default "admin"/"secret" when Auth != ""
	Width, Height, FPS int    // default 1280x720 @ 25
	KeyInt             int    // frames between keyframes, default 2*FPS (2 s GOP)
	Bitrate            int    // kbit/s, default 2000
	Port               int    // 0 = pick a free port
	Path               string // mount path, default "/cam"
}

type videoDefaults struct {
	width, height, fps, keyInt, bitrate int
	path                                string
}

func (d *videoDefaults) fill(defFPS int) {
	if d.width <= 0 || d.height <= 0 {
		d.width, d.height = 1280, 720
	}
	if d.fps <= 0 {
		d.fps = defFPS
	}
	if d.keyInt <= 0 {
		d.keyInt = 2 * d.fps
	}
	if d.bitrate <= 0 {
		d.bitrate = 2000
	}
	if d.path == "" {
		d.path = "/cam"
	}
	if !strings.HasPrefix(d.path, "/") {
		d.path = "/" + d.path
	}
}

// GstCamera starts gst-rtsp-server (Python GI) serving one mount on
// 127.0.0.1, with one encoder pipeline per client. It returns once a DESCRIBE
// with the camera's credentials answers 200 with a video SDP.
func GstCamera(t testing.TB, o GstOptions) *Camera {
	t.Helper()
	RequireTools(t, gstPython)
	d := videoDefaults{o.Width, o.Height, o.FPS, o.KeyInt, o.Bitrate, o.Path}
	d.fill(25)
	switch o.Codec {
	case "":
		o.Codec = "h264"
	case "h264", "h265":
	default:
		t.Fatalf("testbed: GstCamera: unknown codec %q", o.Codec)
	}
	switch o.Auth {
	case "":
		o.User, o.Pass = "", ""
	case "basic", "digest":
		if o.User == "" {
			o.User = "admin"
		}
		if o.Pass == "" {
			o.Pass = "secret"
		}
	default:
		t.Fatalf("testbed: GstCamera: unknown auth %q", o.Auth)
	}
	// 2 ports per UDP client; tests rarely have more than a few.
	const rtpPorts = 64
	rtpMin := freeUDPRange(t, rtpPorts)
	cfg, _ := json.Marshal(map[string]any{
		"codec": o.Codec, "auth": o.Auth, "user": o.User, "pass": o.Pass,
		"width": d.width, "height": d.height, "fps": d.fps,
		"keyint": d.keyInt, "bitrate": d.bitrate,
		"port": o.Port, "path": d.path,
		"rtp_min": rtpMin, "rtp_max": rtpMin + rtpPorts - 1,
	})

	out := newTailBuffer(16 << 10)
	cmd := exec.Command(gstPython, "-c", gstScript, string(cfg))
	cmd.Dir = t.TempDir()
	p, stdout, err := startProcStdout("gst-rtsp-server", cmd, out)
	if err != nil {
		t.Fatalf("testbed: GstCamera: %v", err)
	}
	cam := &Camera{User: o.User, Pass: o.Pass, Stop: p.stop, servers: []*proc{p},
		logs: []namedLog{{p.name, out}}, rtpPorts: [2]int{rtpMin, rtpMin + rtpPorts}}
	registerStop(t, cam)

	ready := make(chan int, 1)
	go func() {
		defer stdout.Close()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if port, ok := strings.CutPrefix(line, "READY "); ok {
				n, _ := strconv.Atoi(port)
				select {
				case ready <- n:
				default: // keep draining stdout whatever the script prints
				}
				continue
			}
			fmt.Fprintln(out, line)
		}
	}()
	var port int
	select {
	case port = <-ready:
	case <-p.done:
		t.Fatalf("testbed: GstCamera: gst-rtsp-server exited (%v) before listening:\n%s", p.waitErr(), out)
	case <-time.After(30 * time.Second): // a fresh machine first builds GStreamer's plugin registry
		t.Fatalf("testbed: GstCamera: gst-rtsp-server not ready after 30 s:\n%s", out)
	}
	if port <= 0 {
		t.Fatalf("testbed: GstCamera: gst-rtsp-server reported no port:\n%s", out)
	}
	cam.URL = fmt.Sprintf("rtsp://127.0.0.1:%d%s", port, d.path)
	if err := waitDescribe(cam, p, 15*time.Second); err != nil {
		t.Fatalf("testbed: GstCamera: %v\n%s", err, out)
	}
	return cam
}

// waitDescribe polls DESCRIBE until the peer answers 200 with a video SDP:
// an open port alone does not mean the pipeline can be built.
func waitDescribe(cam *Camera, alive *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		status, sdp, err := RTSPDescribe(cam.URL, cam.User, cam.Pass, 3*time.Second)
		if err == nil && status == 200 && strings.Contains(sdp, "m=video") {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("status %d, body %q", status, sdp)
		}
		if alive.exited() {
			return fmt.Errorf("%s exited (%v); last DESCRIBE %s: %s", alive.name, alive.waitErr(), cam.URL, last)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("DESCRIBE %s not ready after %s: %s", cam.URL, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
