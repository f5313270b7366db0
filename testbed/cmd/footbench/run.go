package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/testbed/procstat"
)

// hubRun starts and measures hubd of one arch.
type hubRun struct {
	o     *options
	arch  string
	bin   string
	qemu  string // "" natively
	relay *procstat.Relay
	hz    float64
	logf  func(string, ...any)
}

// hubStatus is the part of hubd's GET /v1/status footbench reads (the JSON
// is the interface: hubd's types are internal to hubd).
type hubStatus struct {
	Cameras []struct {
		Camera    string `json:"camera"`
		Connected bool   `json:"connected"`
		LastError string `json:"last_error"`
	} `json:"cameras"`
}

// started is a running hubd of one run.
type started struct {
	child   *procstat.Child
	client  *procstat.HubdClient
	dataDir string
	log     string
}

func (s *started) withLog(err error) error {
	return fmt.Errorf("%w\nhubd log (%s):\n%s", err, s.log, procstat.Tail(s.log, 15))
}

// start writes a config for the cameras (none for the baseline), registers
// the run's hub with the relay and starts hubd, natively or under qemu.
func (e *hubRun) start(ctx context.Context, runDir, hubID string, urls []string) (*started, error) {
	dataDir := filepath.Join(runDir, "data") // fresh: the index and ring start empty
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	cred, err := e.relay.NewHub(ctx, hubID)
	if err != nil {
		return nil, fmt.Errorf("register hub: %w", err)
	}
	cfg := hubdConfig(hubID, dataDir, e.o.ringMiB<<20, e.o.segment, e.relay.URL, cred, urls)
	cfgPath := filepath.Join(runDir, "hubd.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("write hubd config: %w", err)
	}
	args := []string{e.bin, "run", "-config", cfgPath}
	if e.qemu != "" {
		args = append([]string{e.qemu}, args...)
	}
	s := &started{dataDir: dataDir, log: filepath.Join(runDir, "hubd.log"),
		client: procstat.NewHubdClient(filepath.Join(dataDir, "hubd.sock"))}
	if s.child, err = procstat.StartChildLogging("hubd", exec.Command(args[0], args[1:]...), s.log); err != nil {
		return nil, err
	}
	var st hubStatus
	if err := procstat.WaitHubd(ctx, s.client, s.child, 30*time.Second, &st); err != nil { // slow to start under emulation
		_ = s.child.Stop(stopGrace)
		return nil, s.withLog(err)
	}
	return s, nil
}

// hubdConfig is the YAML of one run: camK records fakecam's camK and every
// segment is uploaded through the relay.
func hubdConfig(hubID, dataDir string, ringBytes int64, segment float64, relayURL, credential string, urls []string) string {
	var b strings.Builder
	// strconv.Quote output is a valid YAML double-quoted scalar for these ASCII values.
	fmt.Fprintf(&b, "hub: {id: %s, data_dir: %s, ring_bytes: %d}\n", strconv.Quote(hubID), strconv.Quote(dataDir), ringBytes)
	fmt.Fprintf(&b, "recording: {segment_seconds: %g}\n", segment)
	fmt.Fprintf(&b, "relay: {url: %s, credential: %s}\n", strconv.Quote(relayURL), strconv.Quote(credential))
	b.WriteString("log: {level: warn}\n")
	if len(urls) == 0 {
		b.WriteString("cameras: []\n")
	} else {
		b.WriteString("cameras:\n")
	}
	for i, u := range urls {
		fmt.Fprintf(&b, "  - id: cam%d\n    streams: {high: %s}\n    transport: tcp\n", i+1, strconv.Quote(u))
	}
	return b.String()
}

// baseline runs hubd without a camera for the warmup: what it costs before
// any camera (runtime, relay link, control socket, index).
func (e *hubRun) baseline(ctx context.Context, runDir string) (fixedCost, error) {
	var fc fixedCost
	s, err := e.start(ctx, runDir, "foot-"+e.arch+"-0", nil)
	if err != nil {
		return fc, err
	}
	defer s.child.Stop(stopGrace)
	e.logf("%s: hubd without cameras (pid %d) for %s", e.arch, s.child.PID(), e.o.warmup)
	if err := procstat.Watch(ctx, []*procstat.Child{s.child}, e.o.warmup, time.Second, func() error { return nil }); err != nil {
		return fc, s.withLog(err)
	}
	m, err := s.client.Metrics(ctx)
	if err != nil {
		return fc, s.withLog(err)
	}
	fc.Goroutines = m["go_goroutines"]
	if fc.FDs, err = procstat.OpenFDs(s.child.PID()); err != nil {
		return fc, err
	}
	ps, err := procstat.ReadStatus(s.child.PID())
	if err != nil {
		return fc, err
	}
	fc.RSSBytes = ps.RSS
	if err := s.child.Stop(stopGrace); err != nil {
		return fc, s.withLog(err)
	}
	return fc, nil
}

// measure records the cameras and uploads them; it returns the window's
// figures. Every process it starts is stopped on return.
func (e *hubRun) measure(ctx context.Context, runDir string, urls []string) (*runResult, error) {
	s, err := e.start(ctx, runDir, "foot-"+e.arch, urls)
	if err != nil {
		return nil, err
	}
	defer s.child.Stop(stopGrace)
	res := &runResult{Arch: e.arch, Exec: "native", Streams: len(urls)}
	if e.qemu != "" {
		res.Exec = e.qemu
	}
	if err := e.waitConnected(ctx, s, len(urls)); err != nil {
		return nil, s.withLog(err)
	}
	pid := s.child.PID()
	e.logf("%s: hubd pid %d recording %d cameras; warmup %s, then measuring %s", e.arch, pid, len(urls), e.o.warmup, e.o.duration)

	var peakRSS int64
	sampleRSS := func() error {
		ps, err := procstat.ReadStatus(pid)
		if err != nil {
			return err
		}
		peakRSS = max(peakRSS, ps.RSS)
		return nil
	}
	procs := []*procstat.Child{s.child}
	if err := procstat.Watch(ctx, procs, e.o.warmup, time.Second, sampleRSS); err != nil {
		return nil, s.withLog(fmt.Errorf("warmup: %w", err))
	}

	index := filepath.Join(s.dataDir, "index.db")
	m0, err := s.client.Metrics(ctx)
	if err != nil {
		return nil, s.withLog(err)
	}
	t0, err := procstat.CPUTicks(pid)
	if err != nil {
		return nil, err
	}
	w0, err := procstat.WriteBytes(pid)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if res.IndexStart, err = fileSize(index); err != nil {
		return nil, err
	}
	half := start.Add(e.o.duration / 2)
	sample := func() error {
		if res.IndexMid == 0 && !time.Now().Before(half) {
			var err error
			if res.IndexMid, err = fileSize(index); err != nil {
				return err
			}
		}
		return sampleRSS()
	}
	if err := procstat.Watch(ctx, procs, e.o.duration, time.Second, sample); err != nil {
		return nil, s.withLog(fmt.Errorf("measuring: %w", err))
	}
	t1, err := procstat.CPUTicks(pid)
	if err != nil {
		return nil, err
	}
	w1, err := procstat.WriteBytes(pid)
	if err != nil {
		return nil, err
	}
	res.Window = time.Since(start)
	if res.IndexEnd, err = fileSize(index); err != nil {
		return nil, err
	}
	if res.FDs, err = procstat.OpenFDs(pid); err != nil {
		return nil, err
	}
	m1, err := s.client.Metrics(ctx)
	if err != nil {
		return nil, s.withLog(err)
	}
	var st hubStatus
	if err := s.client.Status(ctx, &st); err != nil {
		return nil, s.withLog(err)
	}
	ps, err := procstat.ReadStatus(pid) // VmHWM: the peak over hubd's whole life
	if err != nil {
		return nil, err
	}
	res.PeakRSSBytes = max(peakRSS, ps.HWM)
	res.CPUSeconds = float64(t1-t0) / e.hz
	res.WriteBytes = w1 - w0
	res.fromMetrics(m0, m1)
	res.Queues = checkQueues(queueInventory(e.o), m1, len(urls))
	for _, c := range st.Cameras {
		if !c.Connected {
			res.Problems = append(res.Problems, fmt.Sprintf("camera %s not connected at the end: %s", c.Camera, c.LastError))
		}
	}
	if res.Uploads == 0 {
		res.Problems = append(res.Problems, "no segment uploaded in the window: not measuring recording AND uploading")
	}
	if err := s.child.Stop(stopGrace); err != nil {
		res.Problems = append(res.Problems, s.withLog(err).Error())
	}
	return res, nil
}

// waitConnected waits until hubd reports every camera connected.
func (e *hubRun) waitConnected(ctx context.Context, s *started, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st hubStatus
		if err := s.client.Status(ctx, &st); err != nil {
			return err
		}
		up := 0
		for _, c := range st.Cameras {
			if c.Connected {
				up++
			}
		}
		if up == n {
			return nil
		}
		if s.child.Exited() {
			return fmt.Errorf("hubd exited: %v", s.child.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d cameras connected after 30 s", up, n)
		}
		if err := procstat.SleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func fileSize(p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, fmt.Errorf("index size: %w", err)
	}
	return fi.Size(), nil
}
