package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/zipnvr/zipnvr/testbed/procstat"
)

// target is a hub CPU: how hubd is built for it and what runs it here.
type target struct {
	env  []string // GOARCH, GOARM
	qemu string   // the user-mode emulator; "" runs natively
}

var targets = map[string]target{
	"amd64": {env: []string{"GOOS=linux", "GOARCH=amd64"}},
	"armv7": {env: []string{"GOOS=linux", "GOARCH=arm", "GOARM=7"}, qemu: "qemu-arm-static"},
	"arm64": {env: []string{"GOOS=linux", "GOARCH=arm64"}, qemu: "qemu-aarch64-static"},
}

// The flags make cross strips with (the version stamps add a few bytes).
const stripFlags = "-s -w"

const stopGrace = 20 * time.Second // hubd commits open segments on SIGTERM; slower under emulation

// bench builds, starts the shared peers and measures every arch.
func bench(ctx context.Context, o *options, dir string, logf func(string, ...any)) (*benchReport, error) {
	if runtime.GOARCH != "amd64" || runtime.GOOS != "linux" {
		return nil, fmt.Errorf("footbench runs on linux/amd64 (the native reference), not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	root, err := procstat.ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	rep := &benchReport{Cameras: o.n, Window: o.duration, SegmentSeconds: o.segment, RingBytes: o.ringMiB << 20,
		Camera: fmt.Sprintf("%s %dfps H.264 %d kbit/s, GOP %d, RTSP/TCP", o.size, o.fps, o.kbps, o.gop)}

	bins := filepath.Join(dir, "bin")
	hubds := map[string]string{}
	for _, a := range o.arches {
		t := targets[a]
		if t.qemu != "" {
			if _, err := exec.LookPath(t.qemu); err != nil {
				logf("%s not on PATH: %s is built and sized but not run", t.qemu, a)
			}
		}
		out := filepath.Join(bins, "hubd-"+a)
		logf("building hubd for %s (stripped, static)", a)
		if err := procstat.GoBuild(ctx, root, procstat.Build{Pkg: "./hubd", Out: out, Env: t.env, LDFlags: stripFlags}); err != nil {
			return nil, err
		}
		fi, err := os.Stat(out)
		if err != nil {
			return nil, err
		}
		rep.Binaries = append(rep.Binaries, binarySize{Arch: a, Bytes: fi.Size()})
		hubds[a] = out
	}
	relayBin, fakecamBin := o.relay, o.fakecam
	for _, b := range []struct {
		bin *string
		pkg string
	}{{&relayBin, "./relay"}, {&fakecamBin, "./testbed/cmd/fakecam"}} {
		if *b.bin != "" {
			continue
		}
		*b.bin = filepath.Join(bins, filepath.Base(b.pkg))
		logf("building %s", b.pkg)
		if err := procstat.GoBuild(ctx, root, procstat.Build{Pkg: b.pkg, Out: *b.bin}); err != nil {
			return nil, err
		}
	}

	cam, urls, err := procstat.StartFakecam(ctx, fakecamBin, []string{"-listen", "127.0.0.1:0", "-n", strconv.Itoa(o.n),
		"-size", o.size, "-fps", strconv.Itoa(o.fps), "-gop", strconv.Itoa(o.gop), "-kbps", strconv.Itoa(o.kbps)},
		o.n, filepath.Join(dir, "fakecam.log"))
	if err != nil {
		return nil, err
	}
	defer cam.Stop(10 * time.Second)
	relayDir := filepath.Join(dir, "relay")
	if err := os.MkdirAll(relayDir, 0o750); err != nil {
		return nil, err
	}
	relay, err := procstat.StartRelay(ctx, relayBin, relayDir)
	if err != nil {
		return nil, err
	}
	defer relay.Stop(10 * time.Second)

	hz := procstat.ClockTicks()
	for _, a := range o.arches {
		t := targets[a]
		if t.qemu != "" {
			if _, err := exec.LookPath(t.qemu); err != nil {
				continue
			}
		}
		e := &hubRun{o: o, arch: a, bin: hubds[a], qemu: t.qemu, relay: relay, hz: hz, logf: logf}
		base, err := e.baseline(ctx, filepath.Join(dir, a+"-0"))
		if err != nil {
			return nil, fmt.Errorf("%s, no camera: %w", a, err)
		}
		res, err := e.measure(ctx, filepath.Join(dir, a), urls)
		if err != nil {
			return nil, fmt.Errorf("%s, %d cameras: %w", a, o.n, err)
		}
		res.Base = base
		rep.Runs = append(rep.Runs, res)
		for _, p := range res.Problems {
			rep.Problems = append(rep.Problems, a+": "+p)
		}
		if cam.Exited() || relay.Exited() {
			return nil, fmt.Errorf("a peer died during the %s run (fakecam: %v, relay: %v)", a, cam.Err(), relay.Err())
		}
	}
	rep.derive()
	return rep, nil
}
