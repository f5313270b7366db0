#!/usr/bin/env bash
# Runs the whole system on this machine with embedded defaults: a simulated
# camera (testbed/cmd/fakecam: 2 cameras, 720p25 H.264) and hubd recording
# both into .run/data. Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .bin .run
go build -o .bin/hubd ./hubd
go build -o .bin/fakecam ./testbed/cmd/fakecam

PORT=${PORT:-8554}
.bin/fakecam -listen "127.0.0.1:$PORT" -n 2 > .run/fakecam.out 2> .run/fakecam.log &
CAM_PID=$!
HUBD_PID=""
cleanup() {
  [ -n "$HUBD_PID" ] && kill "$HUBD_PID" 2>/dev/null && wait "$HUBD_PID" 2>/dev/null
  kill "$CAM_PID" 2>/dev/null; wait "$CAM_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
for _ in $(seq 100); do grep -q "fakecam ready" .run/fakecam.out 2>/dev/null && break; sleep 0.1; done
grep -q "fakecam ready" .run/fakecam.out || { echo "camera stand-in did not start:"; cat .run/fakecam.log; exit 1; }

cat > .run/hubd.yaml <<YAML
# Written by scripts/run-local.sh: two simulated cameras, 10 s segments.
hub: {id: local, data_dir: $PWD/.run/data, ring_bytes: 2GiB}
recording: {segment_seconds: 10}
cameras:
  - id: cam1
    name: Front door (simulated)
    ip: 127.0.0.1
    port: $PORT
    streams: {high: "rtsp://\${ip}:\${port}/cam1"}
  - id: cam2
    name: Garden (simulated)
    ip: 127.0.0.1
    port: $PORT
    streams: {high: "rtsp://\${ip}:\${port}/cam2"}
YAML
echo "recording 2 simulated cameras into .run/data; in another shell:"
echo "  .bin/hubd recordings -config .run/hubd.yaml      # the segments"
echo "  .bin/hubd status -config .run/hubd.yaml          # what each camera is doing"
echo "Ctrl-C stops."
.bin/hubd run -config .run/hubd.yaml &
HUBD_PID=$!
wait "$HUBD_PID"
