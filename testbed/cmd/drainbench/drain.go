package main

import (
	"context"
	"fmt"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
)

// pollEvery is how often hubd is asked for its counters during a drain.
// The drain's end comes from hubd's own last_upload timestamp, so the poll
// interval does not limit the precision.
const pollEvery = 50 * time.Millisecond

// statusReport mirrors the part of hubd's GET /v1/status (hub.StatusReport)
// drainbench reads; hubd's types are internal, the JSON is the interface.
type statusReport struct {
	Ring struct {
		Segments       int
		Pending        int
		OrphansRemoved int
	} `json:"ring"`
	Upload *struct {
		Uploaded      int       `json:"uploaded"`
		UploadedBytes int64     `json:"uploaded_bytes"`
		Failures      int       `json:"failures"`
		LastError     string    `json:"last_error"`
		LastUpload    time.Time `json:"last_upload"`
	} `json:"upload"`
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
	if st.Upload == nil {
		return nil, fmt.Errorf("hubd status has no upload section: is relay.url configured?")
	}
	return &st, nil
}

// hubdConfig is the YAML of one drain: no camera is recorded (the report
// hubd sends at start lists none, so the relay marks cam1 removed; a removed
// camera's backlog still uploads), the ring is large enough that nothing is
// evicted.
func hubdConfig(hubID, dataDir string, ringBytes int64, relayURL, credential string, parallel int) string {
	// strconv.Quote output is a valid YAML double-quoted scalar for these ASCII values.
	return fmt.Sprintf("hub: {id: %s, data_dir: %s, ring_bytes: %d}\n"+
		"relay: {url: %s, credential: %s, parallel_uploads: %d}\n"+
		"log: {level: info}\ncameras: []\n",
		strconv.Quote(hubID), strconv.Quote(dataDir), ringBytes, strconv.Quote(relayURL), strconv.Quote(credential), parallel)
}

// env is what a run needs of the servers and the backlog.
type env struct {
	o      *options
	bins   binaries
	dir    string
	hz     float64
	s3     *s3Server
	relay  *relayServer
	tenant string
	bl     *backlog
	logf   func(string, ...any)
}

// serverTicks reads the CPU ticks of the relay and versitygw, taken around a run.
func (e *env) serverTicks() (relay, s3 uint64, err error) {
	if relay, err = procstat.CPUTicks(e.relay.PID()); err != nil {
		return
	}
	s3, err = procstat.CPUTicks(e.s3.PID())
	return
}

// drainOne drains a fresh clone of the backlog with hubd at parallel
// uploads, timed from hubd's start to its last upload.
func drainOne(ctx context.Context, e *env, round, parallel int) (*result, error) {
	name := fmt.Sprintf("hubd-r%d-p%d", round, parallel)
	runDir := filepath.Join(e.dir, name)
	dataDir := filepath.Join(runDir, "data")
	if err := e.bl.clone(dataDir); err != nil {
		return nil, fmt.Errorf("clone backlog: %w", err)
	}
	acct, err := e.relay.newHub(ctx, e.tenant, name)
	if err != nil {
		return nil, err
	}
	ringBytes := max(int64(8<<30), 2*e.bl.bytes)
	cfgPath := filepath.Join(runDir, "hubd.yaml")
	if err := os.WriteFile(cfgPath, []byte(hubdConfig(name, dataDir, ringBytes, e.relay.url, acct.credential, parallel)), 0o600); err != nil {
		return nil, err
	}
	before, err := e.relay.metrics(ctx)
	if err != nil {
		return nil, err
	}
	relay0, s30, err := e.serverTicks()
	if err != nil {
		return nil, err
	}
	syncDisks()

	logPath := filepath.Join(runDir, "hubd.log")
	start := time.Now()
	hub, err := procstat.StartChildLogging("hubd", exec.Command(e.bins.hubd, "run", "-config", cfgPath), logPath)
	if err != nil {
		return nil, err
	}
	defer hub.Stop(stopGrace)
	withLog := func(err error) error {
		return fmt.Errorf("%s: %w\nhubd log (%s):\n%s", name, err, logPath, procstat.Tail(logPath, 15))
	}

	client := newStatusClient(filepath.Join(dataDir, "hubd.sock"))
	deadline := start.Add(e.o.timeout)
	var st *statusReport
	for {
		if hub.Exited() {
			return nil, withLog(fmt.Errorf("hubd exited during the drain: %v", hub.Err()))
		}
		s, err := client.status(ctx)
		if err == nil {
			st = s
			if st.Upload.Uploaded >= e.bl.segments {
				break
			}
		}
		if time.Now().After(deadline) {
			msg := "never answered on its control socket"
			if st != nil {
				msg = fmt.Sprintf("%d of %d segments uploaded, %d failures, last error %q", st.Upload.Uploaded, e.bl.segments, st.Upload.Failures, st.Upload.LastError)
			}
			return nil, withLog(fmt.Errorf("drain not done after %s (-timeout): %s", e.o.timeout, msg))
		}
		if err := procstat.SleepCtx(ctx, pollEvery); err != nil {
			return nil, err
		}
	}
	polled := time.Now()
	hubTicks, err := procstat.CPUTicks(hub.PID())
	if err != nil {
		return nil, err
	}
	relay1, s31, err := e.serverTicks()
	if err != nil {
		return nil, err
	}
	after, err := e.relay.metrics(ctx)
	if err != nil {
		return nil, err
	}
	exitErr := hub.Stop(stopGrace)

	r := &result{Round: round, Uploader: "hubd", Parallel: parallel, Bytes: e.bl.bytes, Segments: e.bl.segments,
		UploaderCPU: float64(hubTicks) / e.hz, RelayCPU: float64(relay1-relay0) / e.hz, S3CPU: float64(s31-s30) / e.hz,
		Failures: st.Upload.Failures, Prefix: acct.prefix}
	end := st.Upload.LastUpload
	if end.IsZero() || end.After(polled) || end.Before(start) {
		end = polled // hubd's timestamp is missing or odd: fall back to the poll
	}
	r.Seconds = end.Sub(start).Seconds()
	r.Relay = relayTimes(before, after)
	if st.Upload.Uploaded != e.bl.segments || st.Upload.UploadedBytes != e.bl.bytes {
		r.Problems = append(r.Problems, fmt.Sprintf("hubd uploaded %d segments, %d bytes; want %d, %d",
			st.Upload.Uploaded, st.Upload.UploadedBytes, e.bl.segments, e.bl.bytes))
	}
	if st.Ring.Segments != e.bl.segments || st.Ring.OrphansRemoved != 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("hubd's ring opened with %d segments (%d orphans removed); want %d: the backlog's index is not what hubd reads",
			st.Ring.Segments, st.Ring.OrphansRemoved, e.bl.segments))
	}
	if exitErr != nil {
		r.Problems = append(r.Problems, withLog(exitErr).Error())
	}
	if n := int(r.Relay.Stored); n != e.bl.segments {
		r.Problems = append(r.Problems, fmt.Sprintf("relay stored %d recordings, want %d", n, e.bl.segments))
	}
	e.checkObjects(r)
	return r, nil
}

// relayRoute is what the relay's metrics say of one hub API route during
// a run: requests and the handler time they took.
type relayRoute struct {
	Requests    int     `json:"requests"`
	MeanSeconds float64 `json:"mean_seconds"`
}

// relayStats are the relay's view of a drain.
type relayStats struct {
	Presign relayRoute `json:"presign"` // POST /api/v1/hub/uploads
	Notify  relayRoute `json:"notify"`  // POST /api/v1/hub/recordings (HEAD on S3 + bbolt write)
	Stored  float64    `json:"recordings_stored"`
}

func relayTimes(before, after map[string]float64) relayStats {
	route := func(path string) relayRoute {
		label := "POST " + path
		n := after[routeSeries("count", label)] - before[routeSeries("count", label)]
		sum := after[routeSeries("sum", label)] - before[routeSeries("sum", label)]
		rr := relayRoute{Requests: int(n)}
		if n > 0 {
			rr.MeanSeconds = sum / n
		}
		return rr
	}
	return relayStats{
		Presign: route(proto.PathHubUploads),
		Notify:  route(proto.PathHubRecordings),
		Stored:  after["relay_recordings_stored_total"] - before["relay_recordings_stored_total"],
	}
}

// checkObjects compares what landed below the run's prefix in the bucket
// with the backlog, then removes it unless -keep: every run writes into an
// S3 that holds nothing but the previous runs' data otherwise.
func (e *env) checkObjects(r *result) {
	root := filepath.Join(e.s3.dir, bucket, filepath.FromSlash(strings.TrimSuffix(r.Prefix, "/")))
	n, total, err := scanTree(root)
	switch {
	case err != nil:
		r.Problems = append(r.Problems, fmt.Sprintf("scan bucket prefix %s: %v", r.Prefix, err))
	case n != e.bl.segments || total != e.bl.bytes:
		r.Problems = append(r.Problems, fmt.Sprintf("bucket prefix %s holds %d objects, %d bytes; want %d, %d", r.Prefix, n, total, e.bl.segments, e.bl.bytes))
	}
	if !e.o.keep && len(r.Problems) == 0 {
		if err := os.RemoveAll(root); err != nil {
			e.logf("remove %s: %v", root, err)
		}
	}
}
