#!/usr/bin/env bash
# Runs the whole system on this machine with embedded defaults: a relay
# (media kept in its data dir behind its own signed URLs), two simulated
# cameras (testbed/cmd/fakecam: 720p25 H.264), and hubd recording both and
# uploading every segment to the relay. State lives in .run/; Ctrl-C stops
# everything this script started (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .bin .run
go build -o .bin/hubd ./hubd
go build -o .bin/relay ./relay
go build -o .bin/fakecam ./testbed/cmd/fakecam

CAM_PORT=${CAM_PORT:-8554}
RELAY_PORT=${RELAY_PORT:-8080}
PIDS=()
cleanup() {
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill "${PIDS[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# The admin token is made once and kept (mode 0600) so .run/ survives restarts.
[ -s .run/admin_token ] || { umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > .run/admin_token; }
TOKEN=$(cat .run/admin_token)
cat > .run/relay.yaml <<YAML
# Written by scripts/run-local.sh: embedded defaults, media in data_dir.
listen: 127.0.0.1:$RELAY_PORT
data_dir: $PWD/.run/relay
admin_token: "$TOKEN"
YAML
.bin/relay run -config .run/relay.yaml 2> .run/relay.log &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$RELAY_PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$RELAY_PORT/healthz" >/dev/null || { echo "relay did not start:"; cat .run/relay.log; exit 1; }

api() { # METHOD PATH TOKEN [JSON]: prints the answer, fails on an error status
  curl -fsS -X "$1" "http://127.0.0.1:$RELAY_PORT$2" -H "Authorization: Bearer $3" \
    ${4:+-H "Content-Type: application/json" -d "$4"}
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
if [ ! -s .run/hub_credential ]; then
  tenant=$(api POST /api/v1/admin/tenants "$TOKEN" '{"name":"home"}' | field id)
  (umask 077
   api POST "/api/v1/admin/tenants/$tenant/hubs" "$TOKEN" '{"id":"hub1"}' | field credential > .run/hub_credential
   api POST "/api/v1/admin/tenants/$tenant/users" "$TOKEN" '{"name":"me"}' | field token > .run/user_token)
fi

.bin/fakecam -listen "127.0.0.1:$CAM_PORT" -n 2 > .run/fakecam.out 2> .run/fakecam.log &
PIDS+=($!)
for _ in $(seq 100); do grep -q "fakecam ready" .run/fakecam.out 2>/dev/null && break; sleep 0.1; done
grep -q "fakecam ready" .run/fakecam.out || { echo "camera stand-in did not start:"; cat .run/fakecam.log; exit 1; }

cat > .run/hubd.yaml <<YAML
# Written by scripts/run-local.sh: two simulated cameras, 10 s segments.
hub: {id: hub1, data_dir: $PWD/.run/data, ring_bytes: 2GiB}
recording: {segment_seconds: 10}
relay: {url: "http://127.0.0.1:$RELAY_PORT", credential: "$(cat .run/hub_credential)"}
cameras:
  - id: cam1
    name: Front door (simulated)
    ip: 127.0.0.1
    port: $CAM_PORT
    streams: {high: "rtsp://\${ip}:\${port}/cam1"}
  - id: cam2
    name: Garden (simulated)
    ip: 127.0.0.1
    port: $CAM_PORT
    streams: {high: "rtsp://\${ip}:\${port}/cam2"}
YAML
cat <<MSG
relay on http://127.0.0.1:$RELAY_PORT, 2 simulated cameras, hubd recording and uploading.
Open http://127.0.0.1:$RELAY_PORT/ and log in with the token in .run/user_token to watch live,
browse recordings, cut clips and take snapshots. In another shell:
  .bin/hubd recordings -config .run/hubd.yaml        # the local ring
  .bin/hubd status -config .run/hubd.yaml            # cameras, ring, uploads
  curl -H "Authorization: Bearer \$(cat .run/user_token)" http://127.0.0.1:$RELAY_PORT/api/v1/channels
  curl -H "Authorization: Bearer \$(cat .run/user_token)" "http://127.0.0.1:$RELAY_PORT/api/v1/channels/CHANNEL/recordings"
Logs: .run/relay.log, .run/fakecam.log; hubd logs here. Ctrl-C stops.
MSG
.bin/hubd run -config .run/hubd.yaml &
PIDS+=($!)
wait "${PIDS[-1]}"
