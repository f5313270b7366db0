#!/usr/bin/env bash
# Installs what building, running and testing need on a fresh Debian 12
# machine: the real peers the tests talk to, Go modules, and the linters.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-rtsp
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x fonts-dejavu-core
  ffmpeg rtsp-server-perl mosquitto mosquitto-clients qemu-user-static curl iproute2
  util-linux make awscli systemd chromium
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "setup: Go 1.26+ is required (https://go.dev/dl/)" >&2; exit 1; }
# Modules are fetched here: integration tests run in a network namespace
# that has only loopback.
go mod download
mkdir -p .bin
[ -x .bin/staticcheck ] || GOBIN="$PWD/.bin" go install honnef.co/go/tools/cmd/staticcheck@v0.6.1
# versitygw: the S3 server the relay's tests upload to (about 70 s to build cold).
[ -x .bin/versitygw ] || GOBIN="$PWD/.bin" go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
echo "setup: ready"
