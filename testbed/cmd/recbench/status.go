package main

import (
	"context"
	"github.com/zipnvr/zipnvr/testbed/procstat"
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

// statusClient reads hubd's status report over its control socket.
type statusClient struct{ *procstat.HubdClient }

func newStatusClient(sock string) *statusClient {
	return &statusClient{procstat.NewHubdClient(sock)}
}

func (c *statusClient) status(ctx context.Context) (*statusReport, error) {
	var st statusReport
	if err := c.Status(ctx, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
