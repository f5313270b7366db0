package testbed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// RelayOptions configures a relay process.
type RelayOptions struct {
	// S3, when set, is where media goes; else the relay keeps it in its
	// data dir behind its own signed URLs (the embedded default).
	S3 *S3
	// DataDir survives a restart of the relay when the test reuses it;
	// empty means a new temp dir.
	DataDir string
	Port    int // 0: a free port
	// Config is YAML appended to the generated config (e.g.
	// "upload_url_seconds: 10\n").
	Config string
}

// Relay is a running relay process.
type Relay struct {
	URL        string // http://127.0.0.1:PORT
	AdminToken string
	DataDir    string
	Stop       func()
	logs       *tailBuffer
	pid        int
}

// PID is the relay's process id (for /proc measurements in benchmarks).
func (r *Relay) PID() int { return r.pid }

// Logs is the tail of the relay's log.
func (r *Relay) Logs() string { return r.logs.String() }

var relayBuild struct {
	once sync.Once
	path string
	err  error
}

// relayBinary builds the relay once per test binary, from the module cache
// only (GOPROXY=off): inside the test's network namespace there is no proxy.
func relayBinary(t testing.TB) string {
	relayBuild.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			relayBuild.err = err
			return
		}
		dir, err := os.MkdirTemp("", "testbed-relay-")
		if err != nil {
			relayBuild.err = err
			return
		}
		relayBuild.path = filepath.Join(dir, "relay")
		cmd := exec.Command("go", "build", "-o", relayBuild.path, "./relay")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			relayBuild.err = fmt.Errorf("go build ./relay: %v\n%s(run scripts/setup.sh first: it downloads the modules)", err, out)
		}
	})
	if relayBuild.err != nil {
		t.Fatal(relayBuild.err)
	}
	return relayBuild.path
}

// StartRelay builds and starts a relay on 127.0.0.1 and waits for /healthz.
func StartRelay(t testing.TB, o RelayOptions) *Relay {
	t.Helper()
	bin := relayBinary(t)
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Port == 0 {
		o.Port = FreePort(t)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", o.Port)
	token := "testbed-admin-token-" + strings.Repeat("x", 24)
	cfg := fmt.Sprintf("listen: %q\ndata_dir: %q\nadmin_token: %q\nlog: {level: debug}\n", addr, o.DataDir, token)
	if s := o.S3; s != nil {
		cfg += fmt.Sprintf("s3: {endpoint: %q, region: %q, bucket: %q, access_key: %q, secret_key: %q, path_style: true}\n",
			s.Endpoint, s.Region, s.Bucket, s.AccessKey, s.SecretKey)
	}
	cfg += o.Config
	cfgPath := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := newTailBuffer(64 << 10)
	p, err := startProc("relay", exec.Command(bin, "run", "-config", cfgPath), out)
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{URL: "http://" + addr, AdminToken: token, DataDir: o.DataDir, logs: out, pid: p.cmd.Process.Pid}
	r.Stop = stopper(p.stop)
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("relay log tail:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(r.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if p.exited() || time.Now().After(deadline) {
			r.Stop()
			t.Fatalf("relay did not become healthy at %s: %v\n%s", r.URL, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Provisioned are the credentials a test gets from the admin API.
type Provisioned struct {
	Tenant, Hub           string
	HubCredential, UserTk string
}

// Provision creates a tenant, a hub of it and a user of it.
func (r *Relay) Provision(t testing.TB, tenantName, hubID string) Provisioned {
	t.Helper()
	var tenant struct{ ID string }
	r.Do(t, r.AdminToken, "POST", "/api/v1/admin/tenants", map[string]string{"name": tenantName}, http.StatusCreated, &tenant)
	var hub struct{ Credential string }
	r.Do(t, r.AdminToken, "POST", "/api/v1/admin/tenants/"+tenant.ID+"/hubs", map[string]string{"id": hubID}, http.StatusCreated, &hub)
	var user struct{ Token string }
	r.Do(t, r.AdminToken, "POST", "/api/v1/admin/tenants/"+tenant.ID+"/users", map[string]string{"name": tenantName + "-user"}, http.StatusCreated, &user)
	if hub.Credential == "" || user.Token == "" {
		t.Fatalf("provisioning returned no credential/token")
	}
	return Provisioned{Tenant: tenant.ID, Hub: hubID, HubCredential: hub.Credential, UserTk: user.Token}
}

// Do calls the relay API with a bearer token and checks the status.
func (r *Relay) Do(t testing.TB, token, method, path string, body any, want int, out any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, r.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, buf.String())
	}
	if out != nil {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			t.Fatalf("%s %s: decode %v: %s", method, path, err, buf.String())
		}
	}
}

// Metrics returns the relay's /metrics text.
func (r *Relay) Metrics(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(r.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return buf.String()
}
