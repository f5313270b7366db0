package testbed

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

// S3 is a running S3-compatible server (versitygw, posix backend) with one
// empty bucket, reachable on 127.0.0.1 with path-style addressing.
type S3 struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	Region    string // "us-east-1"
	Bucket    string // exists and is empty at start
	AccessKey string // root credentials, random per server
	SecretKey string
	// Dir is the posix backend's root: each directory in it is a bucket and
	// object "a/b" of bucket B is the plain file Dir/B/a/b.
	Dir string
	// Stop stops the server (SIGTERM to its process group, SIGKILL after
	// 2 s) and waits for it; idempotent, and also registered with t.Cleanup.
	// The data in Dir stays until the test's temporary directory is removed.
	Stop func()

	out *tailBuffer
}

// Logs returns the tail of the server's output, for test failure messages.
func (s *S3) Logs() string { return s.out.String() }

// versitygwVersion is the version scripts/setup.sh installs into .bin.
const versitygwVersion = "v1.8.0"

// S3Server starts versitygw with its posix backend in a directory under
// t.TempDir(), on a free 127.0.0.1 port, with a bucket created as a
// directory, and returns once the server answers HTTP. The server is stopped
// by t.Cleanup (its log is printed when the test failed). The test fails
// (does not skip) when versitygw is missing: it is looked up on PATH, then
// in <module root>/.bin.
func S3Server(t testing.TB) *S3 {
	t.Helper()
	bin, err := findVersitygw()
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	s := &S3{
		Region:    "us-east-1",
		Bucket:    "recordings",
		AccessKey: "testbed" + randHex(6),
		SecretKey: randHex(20),
		Dir:       filepath.Join(t.TempDir(), "s3"),
		out:       newTailBuffer(32 << 10),
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, s.Bucket), 0o755); err != nil {
		t.Fatalf("testbed: S3Server: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	s.Endpoint = "http://" + addr
	const health = "/testbed-health"
	cmd := exec.Command(bin,
		"--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region,
		"--port", addr, "--health", health, "--quiet",
		"posix", s.Dir)
	// versitygw takes most of its options from VGW_* and ROOT_* variables
	// too: the caller's environment must not reconfigure it.
	cmd.Env = filterEnv(os.Environ(), "VGW_", "ROOT_ACCESS_KEY", "ROOT_SECRET", "LOGFILE", "WEBHOOK")
	cmd.Dir = filepath.Dir(s.Dir)
	p, err := startProc("versitygw", cmd, s.out)
	if err != nil {
		t.Fatalf("testbed: S3Server: %v", err)
	}
	s.Stop = stopper(p.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testbed: versitygw %s log:\n%s", s.Endpoint, s.Logs())
		}
		s.Stop()
	})
	if err := waitTCP(addr, p, 15*time.Second); err != nil {
		t.Fatalf("testbed: S3Server: %v\n%s", err, s.Logs())
	}
	if err := waitHTTPOK(s.Endpoint+health, p, 10*time.Second); err != nil {
		t.Fatalf("testbed: S3Server: %v\n%s", err, s.Logs())
	}
	return s
}

// waitHTTPOK polls url until it answers 200.
func waitHTTPOK(url string, p *proc, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before answering %s", p.name, p.waitErr(), url)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer %s after %s: %v", p.name, url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// findVersitygw looks for the versitygw binary on PATH, then in the module
// root's .bin directory (where scripts/setup.sh installs it).
func findVersitygw() (string, error) {
	root, err := moduleRoot()
	return lookVersitygw(root, err)
}

func lookVersitygw(root string, rootErr error) (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	install := fmt.Sprintf("install it with scripts/setup.sh (GOBIN=$PWD/.bin go install github.com/versity/versitygw/cmd/versitygw@%s)", versitygwVersion)
	if rootErr != nil {
		return "", fmt.Errorf("versitygw (S3 server) not found on PATH, and no module root to look in (%v); %s", rootErr, install)
	}
	p := filepath.Join(root, ".bin", "versitygw")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p, nil
	}
	return "", fmt.Errorf("versitygw (S3 server) not found on PATH nor at %s; %s", p, install)
}

// moduleRoot is the directory holding go.mod: searched upwards from the
// working directory (go test runs in the package's directory), then from
// this source file's directory.
func moduleRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("no go.mod above the working directory")
}

// filterEnv returns env without the variables whose names start with any of
// prefixes.
func filterEnv(env []string, prefixes ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
