package testbed

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Restart starts versitygw again on the same address, with the same root
// credentials, over the same directory (objects written before survive),
// after stopping the running server if it still runs. URLs presigned before
// stay valid. s.Stop then stops the new process (t.Cleanup calls it too).
func (s *S3) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	bin, err := findVersitygw()
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatalf("testbed: S3.Restart: endpoint %q: %v", s.Endpoint, err)
	}
	addr := u.Host
	const health = "/testbed-health"
	newCmd := func() *exec.Cmd {
		cmd := exec.Command(bin,
			"--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region,
			"--port", addr, "--health", health, "--quiet",
			"posix", s.Dir)
		cmd.Env = filterEnv(os.Environ(), "VGW_", "ROOT_ACCESS_KEY", "ROOT_SECRET", "LOGFILE", "WEBHOOK")
		cmd.Dir = filepath.Dir(s.Dir)
		return cmd
	}
	// The port was just released by the old process; should the bind fail
	// anyway (a socket not yet gone), versitygw exits and we try again.
	var p *proc
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err = startProc("versitygw", newCmd(), s.out)
		if err != nil {
			t.Fatalf("testbed: S3.Restart: %v", err)
		}
		if err = waitTCP(addr, p, 15*time.Second); err == nil {
			break
		}
		p.stop()
		if time.Now().After(deadline) {
			t.Fatalf("testbed: S3.Restart: %v\n%s", err, s.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.Stop = stopper(p.stop)
	if err := waitHTTPOK(s.Endpoint+health, p, 10*time.Second); err != nil {
		t.Fatalf("testbed: S3.Restart: %v\n%s", err, s.Logs())
	}
}

// Port is the TCP port the relay listens on.
func (r *Relay) Port() int {
	u, err := url.Parse(r.URL)
	if err != nil {
		return 0
	}
	_, p, _ := net.SplitHostPort(u.Host)
	n, _ := strconv.Atoi(p)
	return n
}

// Restart stops the relay if it still runs and starts it again on the same
// port over the same data dir (tenants, hubs, credentials and recordings
// survive), with media in s3 (nil: the embedded local store). The returned
// relay replaces r; the admin token is the same.
func (r *Relay) Restart(t testing.TB, s3 *S3) *Relay {
	t.Helper()
	r.Stop()
	return StartRelay(t, RelayOptions{S3: s3, DataDir: r.DataDir, Port: r.Port()})
}
