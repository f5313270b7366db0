package procstat

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"
)

// HubdClient asks a running hubd over its control socket, as `hubd status`
// does, so a benchmark reads hubd's own counters without a TCP port.
type HubdClient struct{ http *http.Client }

// NewHubdClient returns a client of the socket at sock. It opens a
// connection per request: a kept-alive one would count among the file
// descriptors the benchmarks report for hubd.
func NewHubdClient(sock string) *HubdClient {
	return &HubdClient{http: &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		},
	}}
}

// Status decodes GET /v1/status into v.
func (c *HubdClient) Status(ctx context.Context, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://hubd/v1/status", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ask hubd status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ask hubd status: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode hubd status: %w", err)
	}
	return nil
}

// Metrics fetches hubd's GET /metrics: the series (name{labels}) to its
// value.
func (c *HubdClient) Metrics(ctx context.Context) (map[string]float64, error) {
	m, err := ScrapeMetrics(ctx, c.http, "http://hubd/metrics")
	if err != nil {
		return nil, fmt.Errorf("ask hubd: %w", err)
	}
	return m, nil
}

// ScrapeMetrics GETs a Prometheus text endpoint and returns its samples:
// the series (name{labels}) to its value.
func ScrapeMetrics(ctx context.Context, c *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}
