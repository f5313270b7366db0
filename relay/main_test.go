package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/relay/internal/auth"
	"github.com/zipnvr/zipnvr/relay/internal/config"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"version"}, {"version", "-h"}, {"run", "-h"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errb.String())
		}
		if out.Len()+errb.Len() == 0 {
			t.Errorf("%v printed nothing", args)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "relay ") {
		t.Errorf("version: %q", out.String())
	}
	errb.Reset()
	if code := run([]string{"run", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-config") {
		t.Errorf("run -h does not document -config: %q", errb.String())
	}
	errb.Reset()
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errb.String())
	}
	if code := run(nil, &out, &errb); code != 2 {
		t.Errorf("no command: exit %d", code)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"malformed YAML", "listen: [", "config"},
		{"unknown key", "colour: red", "colour"},
		{"short admin token", "admin_token: short", "admin_token"},
		{"bad size", "max_body_bytes: lots", "lots"},
		{"bad s3", "s3: {endpoint: nope}", "s3.endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "relay.yaml")
			os.WriteFile(p, []byte(tt.yaml), 0o644)
			var out, errb bytes.Buffer
			if code := run([]string{"run", "-config", p}, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("error %q does not name %q", errb.String(), tt.want)
			}
		})
	}
}

// TestServe starts relay without an admin token: it generates one into the
// data dir (mode 0600), logs the file and never the token, serves the API
// on loopback and stops on cancel.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %q\nlog: {level: debug}\n", dir)))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not start")
	}

	tokFile := filepath.Join(dir, auth.AdminTokenFile)
	fi, err := os.Stat(tokFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(tokFile)
	token := strings.TrimSpace(string(b))

	get := func(path, tok string, body io.Reader) (int, string) {
		method := "GET"
		if body != nil {
			method = "POST"
		}
		req, _ := http.NewRequest(method, "http://"+addr+path, body)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if code, body := get("/healthz", "", nil); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %d %s", code, body)
	}
	code, body := get("/api/v1/admin/tenants", token, strings.NewReader(`{"name":"Acme"}`))
	var tn struct{ ID string }
	if code != 201 || json.Unmarshal([]byte(body), &tn) != nil || tn.ID == "" {
		t.Fatalf("create tenant: %d %s", code, body)
	}
	if code, _ := get("/api/v1/cameras", "", nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, body := get("/metrics", "", nil); code != 200 || !strings.Contains(body, "relay_http_requests_total") || !strings.Contains(body, "process_") {
		t.Fatalf("metrics: %d", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("relay did not stop")
	}
	l := logs.String()
	if !strings.Contains(l, tokFile) || strings.Contains(l, token) {
		t.Fatalf("logs must name %s and never the token:\n%s", tokFile, l)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
