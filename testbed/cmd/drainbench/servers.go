package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
)

const (
	serverUpTimeout = 20 * time.Second
	stopGrace       = 10 * time.Second
	region          = "us-east-1"
	bucket          = "drainbench"
)

// s3Server is versitygw with its posix backend: object KEY of the bucket
// is the plain file dir/bucket/KEY.
type s3Server struct {
	*procstat.Child
	endpoint             string
	dir                  string
	accessKey, secretKey string
	log                  string
}

// startS3 starts versitygw the way testbed.S3Server does (that one needs a
// testing.TB): random root credentials, a bucket created as a directory.
func startS3(ctx context.Context, bin, runDir string) (*s3Server, error) {
	s := &s3Server{dir: filepath.Join(runDir, "s3"), accessKey: "drainbench" + randHex(4), secretKey: randHex(20),
		log: filepath.Join(runDir, "versitygw.log")}
	if err := os.MkdirAll(filepath.Join(s.dir, bucket), 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s.endpoint = "http://" + addr
	const health = "/drainbench-health"
	cmd := exec.Command(bin, "--access", s.accessKey, "--secret", s.secretKey, "--region", region,
		"--port", addr, "--health", health, "--quiet", "posix", s.dir)
	// versitygw takes options from VGW_* and ROOT_* variables too: the
	// caller's environment must not reconfigure it.
	cmd.Env = filterEnv(os.Environ(), "VGW_", "ROOT_ACCESS_KEY", "ROOT_SECRET", "LOGFILE", "WEBHOOK")
	cmd.Dir = runDir
	if s.Child, err = procstat.StartChildLogging("versitygw", cmd, s.log); err != nil {
		return nil, err
	}
	if err := waitOK(ctx, s.endpoint+health, s.Child); err != nil {
		_ = s.Stop(stopGrace)
		return nil, fmt.Errorf("%w\n%s", err, procstat.Tail(s.log, 15))
	}
	return s, nil
}

// relayServer is a relay process storing media in the S3 server.
type relayServer struct {
	*procstat.Child
	url, adminToken string
	log             string
	http            *http.Client
}

func startRelay(ctx context.Context, bin, runDir string, s3 *s3Server) (*relayServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	r := &relayServer{url: "http://" + addr, adminToken: "drainbench-admin-" + randHex(16),
		log: filepath.Join(runDir, "relay.log"), http: &http.Client{Timeout: 30 * time.Second}}
	cfgPath := filepath.Join(runDir, "relay.yaml")
	if err := os.WriteFile(cfgPath, []byte(relayConfig(addr, filepath.Join(runDir, "relay"), r.adminToken, s3)), 0o600); err != nil {
		return nil, err
	}
	if r.Child, err = procstat.StartChildLogging("relay", exec.Command(bin, "run", "-config", cfgPath), r.log); err != nil {
		return nil, err
	}
	if err := waitOK(ctx, r.url+"/healthz", r.Child); err != nil {
		_ = r.Stop(stopGrace)
		return nil, fmt.Errorf("%w\n%s", err, procstat.Tail(r.log, 15))
	}
	return r, nil
}

// relayConfig is the relay's YAML: media in the S3 server, path-style.
func relayConfig(addr, dataDir, adminToken string, s3 *s3Server) string {
	// strconv.Quote output is a valid YAML double-quoted scalar for these ASCII values.
	return fmt.Sprintf("listen: %s\ndata_dir: %s\nadmin_token: %s\nlog: {level: info}\n"+
		"s3: {endpoint: %s, region: %s, bucket: %s, access_key: %s, secret_key: %s, path_style: true}\n",
		strconv.Quote(addr), strconv.Quote(dataDir), strconv.Quote(adminToken),
		strconv.Quote(s3.endpoint), strconv.Quote(region), strconv.Quote(bucket),
		strconv.Quote(s3.accessKey), strconv.Quote(s3.secretKey))
}

// waitOK polls url until it answers 200.
func waitOK(ctx context.Context, url string, c *procstat.Child) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(serverUpTimeout)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		if c.Exited() {
			return fmt.Errorf("%s exited (%v) before answering %s", c.Name(), c.Err(), url)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer %s after %s: %v", c.Name(), url, serverUpTimeout, err)
		}
		if err := procstat.SleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// call sends a JSON request with a bearer token and decodes the answer,
// which must have status want.
func (r *relayServer) call(ctx context.Context, token, method, path string, in any, want int, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s, want %d: %s", method, path, resp.Status, want, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// createTenant registers the tenant every hub of the run belongs to.
func (r *relayServer) createTenant(ctx context.Context, name string) (string, error) {
	var t struct{ ID string }
	if err := r.call(ctx, r.adminToken, http.MethodPost, "/api/v1/admin/tenants", map[string]string{"name": name}, http.StatusCreated, &t); err != nil {
		return "", err
	}
	return t.ID, nil
}

// hubAccount is a hub registered for one drain, with its camera's channel:
// each drain uploads below a channel prefix of its own.
type hubAccount struct {
	id, credential string
	channel        string
	prefix         string // the channel's object prefix in the bucket
}

// benchCamera is the camera whose backlog is drained. Its stream is never
// opened: the hub reported to the relay is hubd's config minus this camera.
const benchCamera = "cam1"

// newHub registers a hub and reports its camera with the hub's credential,
// as hubd does at start; the relay answers with the camera's channel.
func (r *relayServer) newHub(ctx context.Context, tenant, id string) (hubAccount, error) {
	h := hubAccount{id: id}
	var hub struct{ Credential string }
	if err := r.call(ctx, r.adminToken, http.MethodPost, "/api/v1/admin/tenants/"+tenant+"/hubs", map[string]string{"id": id}, http.StatusCreated, &hub); err != nil {
		return h, err
	}
	h.credential = hub.Credential
	report := map[string]any{"cameras": []any{map[string]any{
		"id": benchCamera, "streams": map[string]string{"high": "rtsp://127.0.0.1/x"}, "record": "high",
	}}}
	var res proto.CameraReportResult
	if err := r.call(ctx, h.credential, http.MethodPut, proto.PathHubCameras, report, http.StatusOK, &res); err != nil {
		return h, err
	}
	if len(res.Cameras) != 1 || res.Cameras[0].ID != benchCamera || res.Cameras[0].Channel == "" {
		return h, fmt.Errorf("camera report of hub %s: relay answered %+v, want %s with a channel", id, res.Cameras, benchCamera)
	}
	h.channel = res.Cameras[0].Channel
	h.prefix = tenant + "/" + h.channel + "/" // store.ChannelPrefix
	return h, nil
}

// metrics scrapes the relay's Prometheus text: series (name{labels}) to value.
func (r *relayServer) metrics(ctx context.Context) (map[string]float64, error) {
	m, err := procstat.ScrapeMetrics(ctx, r.http, r.url+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("relay %w", err)
	}
	return m, nil
}

// routeSeries names a series of the relay's request histogram.
func routeSeries(suffix, route string) string {
	return fmt.Sprintf("relay_http_request_duration_seconds_%s{route=%q}", suffix, route)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
