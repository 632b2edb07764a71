#!/usr/bin/env bash
# Debian packages used by the tests and benchmarks. Idempotent: installs only what is missing.
set -euo pipefail
# gcc, libc6-dev and make build the batched UDP driver (native/udp_batch.c)
pkgs=(gcc libc6-dev make python3-grpcio python3-protobuf protobuf-compiler nats-server dnsmasq-base nftables iproute2 ethtool openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "apt-deps: ok (${pkgs[*]})"
