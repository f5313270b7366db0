package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"
)

// statusReport and camStatus mirror the part of hubd's GET /v1/status
// (hub.StatusReport, recorder.Status) recbench reads. hubd's types are
// internal to hubd; the JSON is the interface anyway.
type statusReport struct {
	Hub     string      `json:"hub"`
	Cameras []camStatus `json:"cameras"`
}

type camStatus struct {
	Camera        string `json:"camera"`
	Connected     bool   `json:"connected"`
	FramesIn      uint64 `json:"frames_in"`
	BytesIn       uint64 `json:"bytes_in"`
	FramesDropped uint64 `json:"frames_dropped"`
	QueueDropped  uint64 `json:"queue_dropped"`
	Segments      uint64 `json:"segments"`
	BytesWritten  uint64 `json:"bytes_written"`
	LastError     string `json:"last_error"`
}

// statusClient asks hubd over its Unix control socket.
type statusClient struct{ http *http.Client }

func newStatusClient(sock string) *statusClient {
	return &statusClient{http: &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			// An idle kept-alive connection would be one more open fd in
			// hubd's count, and not one recording needs.
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		},
	}}
}

func (c *statusClient) status(ctx context.Context) (*statusReport, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://hubd/v1/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask hubd status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ask hubd status: %s", resp.Status)
	}
	var st statusReport
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("decode hubd status: %w", err)
	}
	return &st, nil
}
