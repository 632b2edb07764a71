#!/usr/bin/env bash
# Debian packages meshwire's make targets use. Usage: apt-deps.sh [build|test|bench|all]
# (default all). Idempotent: apt-get runs only when a package is missing, and only as
# root; otherwise it names the missing packages and exits 1.
set -euo pipefail
group=${1:-all}
# gcc, libc6-dev and make build our native addons (native/udp_batch.c, native/aead_openssl.c)
build=(gcc libc6-dev make)
# python3-grpcio/protobuf: the non-JavaScript client test; dnsmasq-base, nftables,
# iproute2, ethtool: cluster DNS, loss injection and network namespaces; openssl: test PKI
test=(python3-grpcio python3-protobuf protobuf-compiler dnsmasq-base nftables iproute2 ethtool openssl)
# nats-server: the benchmarks' anchor; the rest: network namespaces and loss injection
bench=(nats-server nftables iproute2 ethtool)
case "$group" in
  build) pkgs=("${build[@]}") ;;
  test) pkgs=("${build[@]}" "${test[@]}") ;;
  bench) pkgs=("${build[@]}" "${bench[@]}") ;;
  all) pkgs=("${build[@]}" "${test[@]}" nats-server) ;;
  *)
    echo "apt-deps: unknown group '$group' (build, test, bench or all)" >&2
    exit 2
    ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  [[ " ${missing[*]} " == *" $p "* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "apt-deps ($group): ok"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "apt-deps ($group): missing Debian packages: ${missing[*]}" >&2
  echo "apt-deps: installing them needs root: run 'sudo make apt-deps' (or: sudo apt-get install ${missing[*]}), then this command again" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "apt-deps ($group): missing packages ${missing[*]} and no apt-get (meshwire's set-up expects Debian or Ubuntu)" >&2
  exit 1
fi
echo "apt-deps ($group): installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
echo "apt-deps ($group): ok"
