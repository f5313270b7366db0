package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/testbed"
	"github.com/zipnvr/zipnvr/testbed/procstat"
)

// results of one bench.
type results struct {
	cold, join []float64 // first frame, seconds
	// Added latency (hub got the frame -> relay sent it over WebRTC), over
	// the first-frame runs: quantiles from relay's summary, and the count.
	lat50, lat95, lat99 float64
	latFrames           float64
	loadLatMean         float64 // mean over the load window

	idleCPU, oneCPU, loadCPU float64 // relay, % of one core
	load                     *viewersResult
	camBps                   float64 // camera bytes/s into relay over the load window
	dropped                  float64 // frames relay dropped for slow viewers in the load window
	clientCPU                float64 // the viewers process, % of one core
	machineBusy              float64 // whole machine over the load window, % of all cores
	loadavg                  [2]string
	// udpDrops: UDP datagrams the kernel dropped for a full receive buffer
	// during the joining runs (the namespace's counter: only our sockets;
	// -1 unknown). Packets the browser never got.
	udpDrops int64
	cores    int
}

func measure(ctx context.Context, o options, dir string, logf func(string, ...any)) (*results, error) {
	r := &results{cores: numCPU()}
	r.loadavg[0] = loadavg()
	s, err := startSystem(ctx, o, dir, logf)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	hz := procstat.ClockTicks()

	// 1. relay idle with the hub linked.
	if err := procstat.SleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	if r.idleCPU, _, err = cpuWindow(ctx, s.relay.PID(), hz, o.window); err != nil {
		return nil, err
	}
	logf("relay idle: %.2f %% of a core", r.idleCPU)

	b, err := testbed.NewBrowser(ctx, testbed.BrowserOptions{Path: o.browser})
	if err != nil {
		return nil, err
	}
	defer b.Close()

	// 2. cold starts: no stream runs when the page opens.
	if o.cold {
		for i := range o.runs {
			if err := s.waitMetric(ctx, "relay_live_streams", 0, 20*time.Second); err != nil {
				return nil, err
			}
			// The hub's pull has stopped too (it follows relay's close).
			if err := procstat.SleepCtx(ctx, 300*time.Millisecond); err != nil {
				return nil, err
			}
			sec, err := firstFrame(b, s.pageURL(), logf)
			if err != nil {
				return nil, fmt.Errorf("cold run %d: %w", i+1, err)
			}
			r.cold = append(r.cold, sec)
			logf("cold run %d: first frame %.0f ms", i+1, sec*1000)
		}
	}

	// 3. a background viewer keeps the stream up; relay with 1 stream, 1 viewer.
	keeper, err := startViewers(ctx, s, dir, "keeper", 1, 0)
	if err != nil {
		return nil, err
	}
	defer keeper.stop()
	if err := procstat.SleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	if r.oneCPU, _, err = cpuWindow(ctx, s.relay.PID(), hz, o.window); err != nil {
		return nil, err
	}
	logf("relay, one stream and one viewer: %.2f %% of a core", r.oneCPU)

	// 4. joining the running stream at a random point of its GOP.
	gop := time.Duration(o.gop) * time.Second / time.Duration(o.fps)
	udp0, udpErr := udpRcvbufErrors()
	for i := range o.runs {
		if err := procstat.SleepCtx(ctx, time.Duration(rand.Int64N(int64(gop)))); err != nil {
			return nil, err
		}
		sec, err := firstFrame(b, s.pageURL(), logf)
		if err != nil {
			return nil, fmt.Errorf("joining run %d: %w", i+1, err)
		}
		r.join = append(r.join, sec)
		logf("joining run %d: first frame %.0f ms", i+1, sec*1000)
	}
	if udp1, err := udpRcvbufErrors(); err == nil && udpErr == nil {
		r.udpDrops = int64(udp1 - udp0)
	} else {
		r.udpDrops = -1
	}
	m, err := s.metrics(ctx)
	if err != nil {
		return nil, err
	}
	const sd = "relay_live_send_delay_seconds"
	r.lat50, r.lat95, r.lat99 = m[sd+`{quantile="0.5"}`], m[sd+`{quantile="0.95"}`], m[sd+`{quantile="0.99"}`]
	r.latFrames = m[sd+"_count"]
	b.Close()
	keeper.stop()

	// 5. N viewers of the one camera.
	if o.viewers > 0 {
		if err := r.loadStep(ctx, o, s, dir, hz, logf); err != nil {
			return nil, err
		}
	}
	r.loadavg[1] = loadavg()
	return r, nil
}

func (r *results) loadStep(ctx context.Context, o options, s *system, dir string, hz float64, logf func(string, ...any)) error {
	logf("starting %d viewers", o.viewers)
	v, err := startViewers(ctx, s, dir, "viewers", o.viewers, o.window)
	if err != nil {
		return err
	}
	defer v.stop()
	m0, err := s.metrics(ctx)
	if err != nil {
		return err
	}
	c0, err := procstat.CPUTicks(v.child.PID())
	if err != nil {
		return err
	}
	busy0, total0, err := machineTicks()
	if err != nil {
		return err
	}
	var elapsed time.Duration
	if r.loadCPU, elapsed, err = cpuWindow(ctx, s.relay.PID(), hz, o.window); err != nil {
		return err
	}
	c1, _ := procstat.CPUTicks(v.child.PID())
	busy1, total1, _ := machineTicks()
	m1, err := s.metrics(ctx)
	if err != nil {
		return err
	}
	r.clientCPU = 100 * float64(c1-c0) / hz / elapsed.Seconds()
	if total1 > total0 {
		r.machineBusy = 100 * float64(busy1-busy0) / float64(total1-total0)
	}
	r.camBps = (m1["relay_live_bytes_in_total"] - m0["relay_live_bytes_in_total"]) / elapsed.Seconds()
	const dropped = `relay_live_frames_dropped_total{transport="whep"}`
	r.dropped = m1[dropped] - m0[dropped]
	const sd = "relay_live_send_delay_seconds"
	if n := m1[sd+"_count"] - m0[sd+"_count"]; n > 0 {
		r.loadLatMean = (m1[sd+"_sum"] - m0[sd+"_sum"]) / n
	}
	res, err := v.result(ctx, o.window+30*time.Second)
	if err != nil {
		return err
	}
	r.load = res
	logf("%d viewers: relay %.1f %% of a core, viewers process %.1f %%, machine %.0f %% busy",
		res.Connected, r.loadCPU, r.clientCPU, r.machineBusy)
	return nil
}

// firstFrame opens the page in a new tab and returns the time from
// navigation start to the first frame the page saw decoded, checking it
// plays the camera's 1280x720 over WebRTC.
func firstFrame(b *testbed.Browser, url string, logf func(string, ...any)) (float64, error) {
	tab, err := b.NewTab()
	if err != nil {
		return 0, err
	}
	defer tab.Close()
	if err := tab.Navigate(url, 15*time.Second); err != nil {
		return 0, fmt.Errorf("navigate: %w", err)
	}
	const state = "JSON.stringify({state: zipnvr.state, detail: zipnvr.detail, transport: zipnvr.transport, stats: zipnvr.stats, events: zipnvr.events.slice(-10)})"
	if err := tab.WaitFor("zipnvr.firstFrameMs !== null && zipnvr.stats && zipnvr.stats.width > 0", state, 15*time.Second); err != nil {
		return 0, err
	}
	var got struct {
		MS            float64 `json:"ms"`
		Transport     string  `json:"transport"`
		Width, Height int
	}
	if err := tab.Eval("({ms: zipnvr.firstFrameMs, transport: zipnvr.transport, width: zipnvr.stats.width, height: zipnvr.stats.height})", &got, 5*time.Second); err != nil {
		return 0, err
	}
	if got.Transport != "webrtc" || got.Width != 1280 || got.Height != 720 {
		return 0, fmt.Errorf("page played %s %dx%d, want webrtc 1280x720", got.Transport, got.Width, got.Height)
	}
	if got.MS > slowFirstFrame && logf != nil {
		// Say why: the page's own steps and the receiver's loss counters.
		var why any
		_ = tab.Eval(`(async () => { const pc = app.session && app.session.pc; let rtp = {};
			if (pc) (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp') rtp = {lost: r.packetsLost, nacks: r.nackCount,
				plis: r.pliCount, keyframes: r.keyFramesDecoded, decoded: r.framesDecoded, dropped: r.framesDropped}; });
			return {rtp, events: zipnvr.events.slice(-12)}; })()`, &why, 5*time.Second)
		logf("slow first frame (%.0f ms): %v", got.MS, why)
	}
	return got.MS / 1000, nil
}

// slowFirstFrame: a first frame later than this (ms) is explained in the log.
const slowFirstFrame = 800

// cpuWindow sleeps d and returns pid's CPU over it, % of one core.
func cpuWindow(ctx context.Context, pid int, hz float64, d time.Duration) (float64, time.Duration, error) {
	t0 := time.Now()
	c0, err := procstat.CPUTicks(pid)
	if err != nil {
		return 0, 0, err
	}
	if err := procstat.SleepCtx(ctx, d); err != nil {
		return 0, 0, err
	}
	c1, err := procstat.CPUTicks(pid)
	if err != nil {
		return 0, 0, err
	}
	el := time.Since(t0)
	return 100 * float64(c1-c0) / hz / el.Seconds(), el, nil
}

// viewers is a running `livebench viewers` process.
type viewers struct {
	child *procstat.Child
	lines chan string
}

// startViewers starts n pion viewers of s's camera in a child process and
// waits until they are up; window 0 keeps them until stop.
func startViewers(ctx context.Context, s *system, dir, name string, n int, window time.Duration) (*viewers, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	lines := make(chan string, 4)
	cmd := exec.Command(self, "viewers", "-relay", s.relay.URL, "-channel", s.channel, "-user-token", s.user,
		"-n", strconv.Itoa(n), "-duration", window.String())
	cmd.Stdout, cmd.Stderr = &lineSplitter{lines: lines}, logFile
	child, err := procstat.StartChild(name, cmd, logFile)
	if err != nil {
		return nil, err
	}
	v := &viewers{child: child, lines: lines}
	select {
	case line := <-lines:
		ok, failed, err := parseReady(line)
		if err != nil {
			v.stop()
			return nil, err
		}
		if failed > 0 || ok != n {
			// Keep going: the load result counts them; a keeper must work.
			if n == 1 {
				v.stop()
				return nil, fmt.Errorf("%s: the viewer did not connect\n%s", name, procstat.Tail(logPath, 10))
			}
		}
		return v, nil
	case <-child.Done():
		return nil, fmt.Errorf("%s exited before its viewers were up: %v\n%s", name, child.Err(), procstat.Tail(logPath, 10))
	case <-time.After(time.Duration(n)*200*time.Millisecond + 60*time.Second):
		v.stop()
		return nil, fmt.Errorf("%s: %d viewers not up in time", name, n)
	case <-ctx.Done():
		v.stop()
		return nil, ctx.Err()
	}
}

// result waits for the JSON line the process prints after its window.
func (v *viewers) result(ctx context.Context, timeout time.Duration) (*viewersResult, error) {
	decode := func(line string) (*viewersResult, error) {
		var r viewersResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("viewers result %q: %w", line, err)
		}
		return &r, nil
	}
	select {
	case line := <-v.lines:
		return decode(line)
	case <-v.child.Done():
		// Wait has copied all of stdout by now: the line may be queued.
		select {
		case line := <-v.lines:
			return decode(line)
		default:
		}
		return nil, fmt.Errorf("viewers exited without a result: %v", v.child.Err())
	case <-time.After(timeout):
		return nil, fmt.Errorf("viewers: no result after %s", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (v *viewers) stop() { _ = v.child.Stop(20 * time.Second) }

// machineTicks reads the aggregate cpu line of /proc/stat: busy (not idle
// or iowait) and total ticks of every core.
func machineTicks() (busy, total uint64, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	if len(f) > 9 {
		f = f[:9] // user..steal; guest time is counted in user already
	}
	for i, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func numCPU() int {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
			n++
		}
	}
	return n
}

// udpRcvbufErrors reads Udp RcvbufErrors from /proc/net/snmp (per network
// namespace).
func udpRcvbufErrors() (uint64, error) {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	return parseRcvbufErrors(string(data))
}

// parseRcvbufErrors finds RcvbufErrors in the Udp: header and value lines.
func parseRcvbufErrors(data string) (uint64, error) {
	var names []string
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/net/snmp has no Udp RcvbufErrors")
}
