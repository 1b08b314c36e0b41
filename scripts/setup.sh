#!/usr/bin/env bash
# Installs every Debian package Sluice needs to build, test and run. Safe to run again:
# it asks apt only for what is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git clang-format clang
  libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libssl-dev
  libabsl-dev librocksdb-dev librdkafka-dev libcurl4-openssl-dev libgoogle-glog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcpp-httplib-dev
  influxdb kcat curl netcat-openbsd zlib1g-dev prometheus libpq-dev postgresql
  systemd python3-yaml chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# influxdb's package may start a system service; tests start their own influxd on free ports.
# So may prometheus's (tests run promtool and a prometheus server of their own).
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now influxdb prometheus >/dev/null 2>&1 || true
fi
echo "setup: done"
