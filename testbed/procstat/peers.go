package procstat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FakecamReadyTag starts the line fakecam prints once it serves.
const FakecamReadyTag = "fakecam ready "

// StartFakecam starts the fakecam binary with args (which should listen on
// 127.0.0.1:0) and returns its stream URLs from the ready line, insisting
// they are n and on loopback. Its output goes to logPath.
func StartFakecam(ctx context.Context, bin string, args []string, n int, logPath string) (*Child, []string, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, fmt.Errorf("fakecam log: %w", err)
	}
	w := &lineWatcher{log: logFile, prefix: FakecamReadyTag, ready: make(chan string, 1)}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = w, logFile
	c, err := StartChild("fakecam", cmd, logFile)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Child, []string, error) {
		_ = c.Stop(10 * time.Second)
		return nil, nil, err
	}
	select {
	case line := <-w.ready:
		urls, err := parseFakecamReady(line, n)
		if err != nil {
			return fail(err)
		}
		return c, urls, nil
	case <-c.Done():
		return fail(fmt.Errorf("fakecam exited before it was ready: %v\n%s", c.Err(), Tail(logPath, 15)))
	case <-time.After(30 * time.Second): // it encodes its clip with ffmpeg first
		return fail(fmt.Errorf("fakecam not ready after 30 s\n%s", Tail(logPath, 15)))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

func parseFakecamReady(line string, n int) ([]string, error) {
	var urls []string
	for _, f := range strings.Fields(strings.TrimPrefix(line, FakecamReadyTag)) {
		if !strings.HasPrefix(f, "rtsp://") {
			continue
		}
		u, err := url.Parse(f)
		if err != nil {
			return nil, fmt.Errorf("fakecam ready line: %w", err)
		}
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("fakecam serves %s, not on loopback", f)
		}
		urls = append(urls, f)
	}
	if len(urls) != n {
		return nil, fmt.Errorf("fakecam ready line has %d URLs, want %d: %q", len(urls), n, line)
	}
	return urls, nil
}

// lineWatcher copies a child's stdout to its log and hands the first line
// with prefix to ready (an io.Writer, so exec's Wait drains the output).
type lineWatcher struct {
	log    io.Writer
	prefix string
	ready  chan string
	buf    []byte
	found  bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	if _, err := w.log.Write(p); err != nil {
		return 0, err
	}
	if w.found {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if strings.HasPrefix(line, w.prefix) {
			w.found, w.buf = true, nil
			w.ready <- line
			return len(p), nil
		}
	}
}

// Relay is a relay process a benchmark started, keeping media in its own
// data dir (no S3), on a free port of 127.0.0.1.
type Relay struct {
	*Child
	URL        string
	adminToken string
	tenant     string
	http       *http.Client
}

// StartRelay starts bin with a config in dir and waits for /healthz.
func StartRelay(ctx context.Context, bin, dir string) (*Relay, error) {
	return StartRelayWith(ctx, bin, dir, "")
}

// StartRelayWith is StartRelay with extra top-level YAML appended to the
// config (e.g. a live: section) and extra environment (e.g. GOMAXPROCS=1).
func StartRelayWith(ctx context.Context, bin, dir, extraYAML string, env ...string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	tok := make([]byte, 24)
	_, _ = rand.Read(tok)
	r := &Relay{URL: "http://" + addr, adminToken: "bench-admin-" + hex.EncodeToString(tok), http: &http.Client{Timeout: 30 * time.Second}}
	cfg := filepath.Join(dir, "relay.yaml")
	// strconv.Quote output is a valid YAML double-quoted scalar for these ASCII values.
	yaml := fmt.Sprintf("listen: %s\ndata_dir: %s\nadmin_token: %s\nlog: {level: warn}\n",
		strconv.Quote(addr), strconv.Quote(filepath.Join(dir, "relay")), strconv.Quote(r.adminToken)) + extraYAML
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "relay.log")
	cmd := exec.Command(bin, "run", "-config", cfg)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if r.Child, err = StartChildLogging("relay", cmd, logPath); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := r.http.Get(r.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		if r.Exited() || time.Now().After(deadline) {
			_ = r.Stop(10 * time.Second)
			return nil, fmt.Errorf("relay not healthy at %s: %v\n%s", r.URL, err, Tail(logPath, 15))
		}
		if err := SleepCtx(ctx, 50*time.Millisecond); err != nil {
			_ = r.Stop(10 * time.Second)
			return nil, err
		}
	}
}

// NewHub registers hub id (in one tenant of the run) and returns the hub's
// credential for hubd's relay.credential.
func (r *Relay) NewHub(ctx context.Context, id string) (string, error) {
	if r.tenant == "" {
		var t struct{ ID string }
		if err := r.call(ctx, "/api/v1/admin/tenants", map[string]string{"name": "bench"}, &t); err != nil {
			return "", err
		}
		r.tenant = t.ID
	}
	var h struct{ Credential string }
	if err := r.call(ctx, "/api/v1/admin/tenants/"+r.tenant+"/hubs", map[string]string{"id": id}, &h); err != nil {
		return "", err
	}
	if h.Credential == "" {
		return "", fmt.Errorf("relay gave hub %s no credential", id)
	}
	return h.Credential, nil
}

// NewUser creates a user in the run's tenant (the one NewHub made, so call
// that first) and returns the user's API token.
func (r *Relay) NewUser(ctx context.Context, name string) (string, error) {
	if r.tenant == "" {
		return "", fmt.Errorf("relay: NewUser before NewHub (no tenant yet)")
	}
	var u struct{ Token string }
	if err := r.call(ctx, "/api/v1/admin/tenants/"+r.tenant+"/users", map[string]string{"name": name}, &u); err != nil {
		return "", err
	}
	if u.Token == "" {
		return "", fmt.Errorf("relay gave user %s no token", name)
	}
	return u.Token, nil
}

// call POSTs JSON with the admin token and decodes a 201 answer.
func (r *Relay) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}
