// Package testbed starts real third-party peers (cameras, ...) on loopback and judges media files for integration tests.
// A client tested only against our own stand-ins proves little, so these helpers run the real programs.
package testbed

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Camera is a running camera stand-in.
type Camera struct {
	URL        string // full URL without credentials
	User, Pass string // credentials the camera requires ("" when no auth)
	// Stop stops the peer's processes by process group (SIGTERM, SIGKILL after 2 s)
	// and waits for them; idempotent, and also registered with t.Cleanup.
	Stop func()

	snapshotURL string
	servers     []*proc    // processes that listen: their sockets must stay on loopback
	logs        []namedLog // output tails for failure messages
	rtpPorts    [2]int     // UDP range [min, max) the servers were given
	pub         *publisher // PerlCamera's restartable source
}

type namedLog struct {
	name string
	out  *tailBuffer
}

// SnapshotURL is the single-JPEG URL of an MJPEG camera ("" for RTSP cameras).
func (c *Camera) SnapshotURL() string { return c.snapshotURL }

// AuthURL is URL with the credentials embedded, as ffmpeg and most NVR
// configurations expect them.
func (c *Camera) AuthURL() string {
	if c.User == "" {
		return c.URL
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c.URL
	}
	u.User = url.UserPassword(c.User, c.Pass)
	return u.String()
}

// Logs returns the captured output tail of the camera's processes, for test
// failure messages.
func (c *Camera) Logs() string {
	var b strings.Builder
	for _, l := range c.logs {
		fmt.Fprintf(&b, "--- %s:\n%s\n", l.name, l.out.String())
	}
	return b.String()
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testbed: no free TCP port on 127.0.0.1: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RequireTools fails the test (not skip: CI installs them) naming any missing binary.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("testbed: missing tools %s (CI installs them; see shared/peers.md)", strings.Join(missing, ", "))
	}
}

// freeUDPRange finds n consecutive UDP ports (starting at an even one, as
// RTP wants) that are free on 127.0.0.1 now. It stays below Linux's
// ephemeral range so that client sockets are unlikely to take them later.
func freeUDPRange(t testing.TB, n int) int {
	t.Helper()
	const lo, hi = 20000, 32000
	for attempt := 0; attempt < 50; attempt++ {
		var r [4]byte
		_, _ = rand.Read(r[:])
		base := lo + int(binary.BigEndian.Uint32(r[:])%uint32(hi-lo-n))
		base &^= 1
		if udpRangeFree(base, n) {
			return base
		}
	}
	t.Fatalf("testbed: no free range of %d UDP ports on 127.0.0.1 in [%d,%d)", n, lo, hi)
	return 0
}

func udpRangeFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// waitTCP waits until something accepts TCP connections on addr, giving up
// early when the process that should listen there has exited.
func waitTCP(addr string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before listening on %s", p.name, p.waitErr(), addr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s: %v", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tailBuffer keeps the last max bytes written to it: peers may log for a long
// time, and only the end matters in a failure message.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
	cut bool
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		n := copy(b.buf, b.buf[len(b.buf)-b.max:])
		b.buf = b.buf[:n]
		b.cut = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return "[...]" + string(b.buf)
	}
	return string(b.buf)
}

// proc is one peer process, alone in its process group so that stopping it
// also stops anything it spawned, without ever matching processes by name.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error // Wait's result; read only after done is closed
	once sync.Once
}

// startProc starts cmd with stderr (and stdout, unless the caller took it)
// going into out.
func startProc(name string, cmd *exec.Cmd, out *tailBuffer) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// A test binary killed by go test's timeout must not leave cameras
		// running. (Linux ties this to the forking thread, which the Go
		// runtime keeps alive unless a goroutine exits while locked to it.)
		Pdeathsig: syscall.SIGKILL,
	}
	if cmd.Stderr == nil {
		cmd.Stderr = out
	}
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	// Grandchildren holding our pipes must not block Wait forever.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) waitErr() error {
	<-p.done
	if p.err == nil {
		return errors.New("exit status 0")
	}
	return p.err
}

// startProcStdout is startProc with the process's stdout returned as a
// pipe. Unlike cmd.StdoutPipe, Wait does not close it under the reader, so
// the reader sees every byte and then a clean EOF; the caller closes it.
func startProcStdout(name string, cmd *exec.Cmd, out *tailBuffer) (*proc, *os.File, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdout = pw
	p, err := startProc(name, cmd, out)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, nil, err
	}
	return p, pr, nil
}

// stop sends SIGTERM to the process group, SIGKILL after 2 s, and waits.
func (p *proc) stop() {
	p.once.Do(func() {
		if p.exited() {
			return
		}
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// stopper returns an idempotent function that runs fns in order once.
func stopper(fns ...func()) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, f := range fns {
				f()
			}
		})
	}
}

// registerStop wires c.Stop into t.Cleanup and prints the peers' logs when
// the test failed, since a peer's complaint is often the real cause.
func registerStop(t testing.TB, c *Camera) {
	t.Cleanup(func() {
		if t.Failed() && len(c.logs) > 0 {
			t.Logf("testbed: camera %s logs:\n%s", c.URL, c.Logs())
		}
		c.Stop()
	})
}
