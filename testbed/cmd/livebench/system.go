package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/zipnvr/zipnvr/testbed/procstat"
)

// system is what one bench runs: a camera, relay and hubd.
type system struct {
	cam     *procstat.Child
	relay   *procstat.Relay
	hubd    *procstat.Child
	user    string // user API token
	channel string
	camID   string // relay's camera id
	http    *http.Client
}

// relayLive: loopback candidates only (the namespace has nothing else, and
// outside one no packet may go to another address); a short stop delay so
// cold starts need not wait long for the last stream to end.
const relayLive = "live: {stop_after_seconds: 1, ice: {loopback: true, interfaces: [lo]}}\n"

func startSystem(ctx context.Context, o options, dir string, logf func(string, ...any)) (*system, error) {
	s := &system{http: &http.Client{Timeout: 30 * time.Second}}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	var urls []string
	var err error
	s.cam, urls, err = procstat.StartFakecam(ctx, o.fakecam, []string{"-listen", "127.0.0.1:0", "-n", "1",
		"-fps", strconv.Itoa(o.fps), "-gop", strconv.Itoa(o.gop), "-kbps", strconv.Itoa(o.kbps),
		"-seconds", strconv.Itoa(max(4, 2*o.gop/o.fps))}, 1, filepath.Join(dir, "fakecam.log"))
	if err != nil {
		return nil, err
	}
	if s.relay, err = procstat.StartRelayWith(ctx, o.relay, dir, relayLive, "GOMAXPROCS="+strconv.Itoa(o.relayProcs)); err != nil {
		return nil, err
	}
	cred, err := s.relay.NewHub(ctx, "hub-1")
	if err != nil {
		return nil, err
	}
	if s.user, err = s.relay.NewUser(ctx, "bench"); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "hubd.yaml")
	yaml := fmt.Sprintf("hub: {id: hub-1, data_dir: %s}\nrelay: {url: %s, credential: %s}\nlog: {level: info}\n"+
		"cameras:\n  - id: cam1\n    record: \"off\"\n    transport: tcp\n    streams: {high: %s}\n",
		strconv.Quote(filepath.Join(dir, "hubd")), strconv.Quote(s.relay.URL), strconv.Quote(cred), strconv.Quote(urls[0]))
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	if s.hubd, err = procstat.StartChildLogging("hubd", exec.Command(o.hubd, "run", "-config", cfg), filepath.Join(dir, "hubd.log")); err != nil {
		return nil, err
	}
	logf("relay %s, hubd and fakecam (%s) started; waiting for the hub's link and camera", s.relay.URL, urls[0])
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out struct {
			Cameras []struct{ ID, Channel string }
		}
		err := s.get(ctx, "/api/v1/cameras", &out)
		links, _ := s.metric(ctx, "relay_hub_links")
		if err == nil && links == 1 && len(out.Cameras) == 1 && out.Cameras[0].Channel != "" {
			s.camID, s.channel = out.Cameras[0].ID, out.Cameras[0].Channel
			break
		}
		if s.hubd.Exited() {
			return nil, fmt.Errorf("hubd exited: %v\n%s", s.hubd.Err(), procstat.Tail(filepath.Join(dir, "hubd.log"), 15))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("relay has no linked hub with a camera channel after 30 s (links %g, %+v, %v)", links, out.Cameras, err)
		}
		if err := procstat.SleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

func (s *system) stop() {
	for _, c := range []*procstat.Child{s.hubd, s.cam} {
		if c != nil {
			_ = c.Stop(10 * time.Second)
		}
	}
	if s.relay != nil {
		_ = s.relay.Stop(10 * time.Second)
	}
}

// get decodes a relay API answer (user token) into out.
func (s *system) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.relay.URL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.user)
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// metrics reads relay's /metrics.
func (s *system) metrics(ctx context.Context) (map[string]float64, error) {
	m, err := procstat.ScrapeMetrics(ctx, s.http, s.relay.URL+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("relay %w", err)
	}
	return m, nil
}

func (s *system) metric(ctx context.Context, series string) (float64, error) {
	m, err := s.metrics(ctx)
	if err != nil {
		return 0, err
	}
	return m[series], nil
}

// waitMetric waits until series == want.
func (s *system) waitMetric(ctx context.Context, series string, want float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, err := s.metric(ctx, series)
		if err == nil && v == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("relay %s = %g after %s, want %g (%v)", series, v, timeout, want, err)
		}
		if err := procstat.SleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// pageURL opens relay's page logged in and watching the camera over WebRTC.
func (s *system) pageURL() string {
	return fmt.Sprintf("%s/#token=%s&camera=%s&quality=high&transport=webrtc", s.relay.URL, s.user, s.camID)
}
