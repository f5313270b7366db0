# One entry point per task; see README.md.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X github.com/zipnvr/zipnvr/pkg/buildinfo.Version=$(VERSION) \
             -X github.com/zipnvr/zipnvr/pkg/buildinfo.Commit=$(COMMIT) \
             -X github.com/zipnvr/zipnvr/pkg/buildinfo.Date=$(DATE)
FUZZTIME  ?= 20s
DIST      ?= dist

.PHONY: all build setup run test test-unit lint fuzz bench clean cross packages test-qemu bench-footprint bench-live bench-clips

all: build

build:
	mkdir -p .bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o .bin/hubd ./hubd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o .bin/relay ./relay

# Static, stripped, version-stamped hubd and relay for the hubs and the
# cloud: $(DIST)/linux-{armv7,arm64,amd64}/{hubd,relay}.
cross:
	$(call xbuild,arm,7,armv7)
	$(call xbuild,arm64,,arm64)
	$(call xbuild,amd64,,amd64)
define xbuild
	mkdir -p $(DIST)/linux-$(3)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(1) GOARM=$(2) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/linux-$(3)/hubd ./hubd
	CGO_ENABLED=0 GOOS=linux GOARCH=$(1) GOARM=$(2) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/linux-$(3)/relay ./relay
endef

# .deb (armhf, arm64, amd64) of hubd and relay and .ipk (opkg) of hubd,
# built with nfpm into $(DIST)/packages (README, Packages).
packages: cross
	$(GO) run ./packaging -dist $(DIST) -out $(DIST)/packages -version '$(VERSION)'

setup:
	scripts/setup.sh

# The whole system on this machine: a simulated camera and hubd.
run: setup
	scripts/run-local.sh

# Everything CI runs: lint, then every test (race detector on) against the
# real peers that setup installs. Integration tests enter a private network
# namespace by themselves (testbed.RunInNetNS).
test: setup lint test-qemu
	$(GO) test -race -count=1 -timeout 25m ./...

# The unit tests again as the hubs run them: built for ARMv7 (GOARM=7) and
# ARM64 and executed under qemu-user (binfmt need not be mounted). No -race
# (not on GOARCH=arm); only packages whose tests need no peer process.
QEMU_PKGS := ./pkg/... ./hubd/internal/config ./hubd/internal/ingest ./hubd/internal/httpauth \
	./hubd/internal/segment ./hubd/internal/ring ./hubd/internal/recorder ./hubd/internal/upload \
	./relay/internal/config ./relay/internal/auth ./relay/internal/store ./relay/internal/retention \
	./relay/internal/api ./testbed/procstat ./internal/service
test-qemu:
	CGO_ENABLED=0 GOARCH=arm GOARM=7 $(GO) test -exec qemu-arm-static -count=1 -short $(QEMU_PKGS)
	CGO_ENABLED=0 GOARCH=arm64 $(GO) test -exec qemu-aarch64-static -count=1 -short $(QEMU_PKGS)

# Unit tests only (no peers needed): skips the integration packages.
test-unit:
	$(GO) test -count=1 -short ./pkg/... ./hubd/internal/config ./hubd/internal/ingest ./hubd/internal/httpauth

# The hubs are 32-bit: everything must build and vet for ARMv7 too.
lint:
	$(GO) vet ./...
	CGO_ENABLED=0 GOARCH=arm GOARM=7 $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	.bin/staticcheck ./...

# Each fuzz target for FUZZTIME (go test runs one target per invocation).
fuzz:
	$(GO) test ./pkg/camera -run XXX -fuzz FuzzExpand -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/config -run XXX -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/ingest -run XXX -fuzz FuzzCheckH264 -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/ingest -run XXX -fuzz FuzzCheckH265 -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/ingest -run XXX -fuzz FuzzJPEGSize -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/ingest -run XXX -fuzz FuzzMultipart -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/httpauth -run XXX -fuzz FuzzParseChallenge -fuzztime $(FUZZTIME)
	$(GO) test ./relay/internal/media -run XXX -fuzz FuzzKey -fuzztime $(FUZZTIME)
	$(GO) test ./relay/internal/snapshots -run XXX -fuzz FuzzCheckJPEG -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/zipato -run XXX -fuzz FuzzParseTree -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/zipato -run XXX -fuzz FuzzBoxAnswer -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/zipato -run XXX -fuzz FuzzParseCommand -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/onvif -run XXX -fuzz FuzzParseProbeMatches -fuzztime $(FUZZTIME)
	$(GO) test ./hubd/internal/onvif -run XXX -fuzz FuzzDecodeEnvelope -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/fragindex -run XXX -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./relay/internal/clips -run XXX -fuzz FuzzCutFragment -fuzztime $(FUZZTIME)
	$(GO) test ./relay/internal/clips -run XXX -fuzz FuzzRewriteInit -fuzztime $(FUZZTIME)
	$(GO) test ./relay/internal/clips -run XXX -fuzz FuzzParseFragTable -fuzztime $(FUZZTIME)

# Records N simulated 720p25 2 Mbit/s cameras for 60 s and prints CPU per
# stream, peak RSS and write amplification; then drains a 1 GiB upload
# backlog through the relay and compares with aws s3 cp (README, Performance).
bench: setup
	$(GO) run ./testbed/cmd/recbench -n 1,4 -duration 60s
	$(GO) run ./testbed/cmd/drainbench -aws /usr/bin/aws

# Clips (docs/clips.md): a 10-minute and a 2-hour clip of 2 Mbit/s video in
# versitygw; time from the last recording to finished and downloadable,
# relay CPU and bytes the relay reads.
bench-clips: setup
	$(GO) test -count=1 -run XXX -bench BenchmarkClip -benchtime 1x -timeout 20m ./relay/

# Hub footprint (docs/footprint.md): stripped hubd per CPU; 4 cameras
# recording and uploading, 60 s natively and under qemu-arm/aarch64-static:
# CPU per stream (ratio to amd64), RSS, FDs and goroutines per camera, SD
# card writes per hour and camera, index growth, every queue's bound and metric.
bench-footprint: setup
	$(GO) run ./testbed/cmd/footbench -n 4 -duration 60s

# Live view (docs/live.md): page navigation to first decoded frame in
# Chromium (20 runs, cold and joining a running stream), the latency relay
# adds, relay CPU per stream and per viewer, 200 pion viewers on one relay core.
bench-live: setup
	$(GO) run ./testbed/cmd/livebench -runs 20 -viewers 200

clean:
	rm -rf .bin .run dist
