package testbed

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// PerlOptions configures PerlCamera; zero values mean the GstOptions defaults.
type PerlOptions struct {
	Width, Height, FPS, KeyInt, Bitrate int
	Path                                string
}

// perlServer runs the packaged rtsp-server-perl script after setting
// $RTSP::Server::RTP_START_PORT: the server resets its RTP port counter to
// that package variable (20000) whenever a connection object is destroyed
// while nothing is mounted (seen when the publisher reconnects), ignoring
// --rtp_start_port from then on.
const perlServer = `$RTSP::Server::RTP_START_PORT = shift @ARGV; my $f = "/usr/bin/rtsp-server-perl"; ` +
	`-r $f or die "cannot read $f: $!\n"; do $f; die $@ if $@;`

// PerlCamera starts rtsp-server-perl (a relay) on loopback with an ffmpeg
// that publishes testsrc2 H.264 into it, and returns once a DESCRIBE shows the
// published stream. Clients must use UDP, get no auth, and join mid-GOP.
// The publisher is restarted if it dies, as a real camera's encoder would be.
func PerlCamera(t testing.TB, o PerlOptions) *Camera {
	t.Helper()
	RequireTools(t, "perl", "/usr/bin/rtsp-server-perl", "ffmpeg")
	d := videoDefaults{o.Width, o.Height, o.FPS, o.KeyInt, o.Bitrate, o.Path}
	d.fill(25)

	clientPort, sourcePort := FreePort(t), FreePort(t)
	for sourcePort == clientPort {
		sourcePort = FreePort(t)
	}
	// The server takes 2 ports per stream for the source and 2 per client
	// SETUP, and never reuses them while the mount exists.
	const rtpPorts = 200
	rtpBase := freeUDPRange(t, rtpPorts)

	srvOut := newTailBuffer(16 << 10)
	srvCmd := exec.Command("perl", "-MRTSP::Server", "-e", perlServer, strconv.Itoa(rtpBase),
		"--clientport", strconv.Itoa(clientPort), "--serverport", strconv.Itoa(sourcePort),
		"--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1",
		"--rtp_start_port", strconv.Itoa(rtpBase))
	// The script does `use lib 'lib'`: keep a stray ./lib from shadowing it.
	srvCmd.Dir = t.TempDir()
	srv, err := startProc("rtsp-server-perl", srvCmd, srvOut)
	if err != nil {
		t.Fatalf("testbed: PerlCamera: %v", err)
	}

	pub := &publisher{out: newTailBuffer(16 << 10), args: []string{
		"-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
		"-re", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", d.width, d.height, d.fps),
		"-c:v", "libx264", "-preset", "superfast", "-tune", "zerolatency", "-profile:v", "main",
		"-b:v", fmt.Sprintf("%dk", d.bitrate), "-g", strconv.Itoa(d.keyInt), "-keyint_min", strconv.Itoa(d.keyInt),
		"-sc_threshold", "0", "-bf", "0",
		"-f", "rtsp", fmt.Sprintf("rtsp://127.0.0.1:%d%s", sourcePort, d.path),
	}}
	cam := &Camera{
		URL:      fmt.Sprintf("rtsp://127.0.0.1:%d%s", clientPort, d.path),
		Stop:     stopper(pub.stop, srv.stop),
		servers:  []*proc{srv},
		logs:     []namedLog{{srv.name, srvOut}, {"ffmpeg publisher", pub.out}},
		rtpPorts: [2]int{rtpBase, rtpBase + rtpPorts},
		pub:      pub,
	}
	registerStop(t, cam)

	for _, port := range []int{clientPort, sourcePort} {
		if err := waitTCP(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), srv, 15*time.Second); err != nil {
			t.Fatalf("testbed: PerlCamera: %v\n%s", err, cam.Logs())
		}
	}
	if err := pub.start(); err != nil {
		t.Fatalf("testbed: PerlCamera: %v", err)
	}
	if err := waitDescribe(cam, srv, 20*time.Second); err != nil {
		t.Fatalf("testbed: PerlCamera: %v\n%s", err, cam.Logs())
	}
	return cam
}

// publisher keeps one ffmpeg pushing into the relay, restarting it when it
// exits until stop is called.
type publisher struct {
	args []string
	out  *tailBuffer

	mu      sync.Mutex
	cur     *proc
	stopped bool
	wg      sync.WaitGroup
}

func (p *publisher) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.spawnLocked(); err != nil {
		return err
	}
	p.wg.Add(1)
	go p.supervise()
	return nil
}

func (p *publisher) spawnLocked() error {
	cmd := exec.Command("ffmpeg", p.args...)
	pr, err := startProc("ffmpeg publisher", cmd, p.out)
	if err != nil {
		return err
	}
	p.cur = pr
	return nil
}

func (p *publisher) supervise() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		cur := p.cur
		p.mu.Unlock()
		<-cur.done
		// Back off so that a relay refusing the stream does not spin us.
		time.Sleep(500 * time.Millisecond)
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		fmt.Fprintf(p.out, "testbed: publisher exited (%v), restarting\n", cur.err)
		if err := p.spawnLocked(); err != nil {
			fmt.Fprintf(p.out, "testbed: %v\n", err)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

func (p *publisher) stop() {
	p.mu.Lock()
	p.stopped = true
	cur := p.cur
	p.mu.Unlock()
	if cur != nil {
		cur.stop()
	}
	p.wg.Wait()
}
