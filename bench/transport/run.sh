#!/usr/bin/env bash
# Transport benchmark (make bench-transport): meshwire vs kernel TCP vs raw UDP, two Node
# processes per run, inside network namespaces we create and delete here (names mwbench*),
# lo at MTU 1500 with TSO/GSO/GRO off, random loss by nftables on input.
set -euo pipefail
cd "$(dirname "$0")/../.."
PEER=dist/bench/transport/peer.js
MAX_BYTES=${MAX_BYTES:-268435456}
MAX_SECONDS=${MAX_SECONDS:-10}
# Runs per scenario; the report takes the median (this shared VM's speed varies by +-20%).
REPEAT=${REPEAT:-5}
OUT=$(mktemp /tmp/mwbench.XXXXXX.jsonl)
NAMESPACES=()
# nftables by absolute path: under npm, node_modules/.bin/nft (from @vercel/nft) shadows it
NFT=$(command -v /usr/sbin/nft /sbin/nft | head -1)
NFT=${NFT:-nft}

cleanup() {
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

make_ns() { # name permille [mtu]
  local ns=$1 permille=$2 mtu=${3:-1500}
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip netns exec "$ns" ip link set lo mtu "$mtu" up
  # tx-udp-segmentation too: a GSO send (native/udp_batch.c) is then cut into datagrams
  # before the device, as a NIC would, so the loss rule below sees each datagram
  ip netns exec "$ns" ethtool -K lo tso off gso off gro off tx-udp-segmentation off >/dev/null 2>&1 || true
  if [[ $permille -gt 0 ]]; then
    ip netns exec "$ns" "$NFT" -f - <<NFT
table inet mwbench {
  chain input {
    type filter hook input priority 0; policy accept;
    numgen random mod 1000 < $permille drop
  }
}
NFT
  fi
}

run() { # scenario ns kind port [congestion]
  local scenario=$1 ns=$2 kind=$3 port=$4 cc=${5:-bbr}
  local rfile
  rfile=$(mktemp)
  ip netns exec "$ns" node "$PEER" recv "$kind" "$port" "$MAX_SECONDS" >"$rfile" &
  local rpid=$!
  for _ in $(seq 1 100); do grep -q ready "$rfile" && break; sleep 0.05; done
  local sline
  sline=$(timeout $((2 * MAX_SECONDS + 30)) ip netns exec "$ns" node "$PEER" send "$kind" 127.0.0.1 "$port" "$MAX_BYTES" "$MAX_SECONDS" "$cc" | grep '^{' || true)
  wait "$rpid" || true
  local rline
  rline=$(grep '^{' "$rfile" || true)
  rm -f "$rfile"
  [[ -n $sline ]] && echo "${sline%\}},\"scenario\":\"$scenario\",\"rep\":$REP}" >>"$OUT"
  [[ -n $rline ]] && echo "${rline%\}},\"scenario\":\"$scenario\",\"rep\":$REP}" >>"$OUT"
  echo "$scenario: $(echo "$rline" | head -c 200)"
}

make_ns mwbench0 0
make_ns mwbench10 10
make_ns mwbench50 50
# jumbo frames (MTU 9000, datagrams of 8972 B): what a datacenter network with jumbo frames
# gets from --max-datagram-size 8972, against raw UDP at the same size
make_ns mwbenchj 0 9000

# What one datagram costs this kernel, in the loss-free namespace (bench/transport/udp_syscalls.c):
# the batch driver saves the per-call part, GSO most of the per-datagram part; in the report.
SYSCALLS=$(mktemp /tmp/mwbench.XXXXXX.syscalls)
if cc -O2 -o "$SYSCALLS.bin" bench/transport/udp_syscalls.c 2>/dev/null; then
  ip netns exec mwbench0 "$SYSCALLS.bin" 0.5 >"$SYSCALLS" || true
fi
rm -f "$SYSCALLS.bin"

# interleaved, so a slow spell of the host affects every scenario alike
for REP in $(seq 1 "$REPEAT"); do
  run udp_raw.loss0 mwbench0 udp 7501
  for loss in 0 1 5; do
    ns=mwbench$((loss * 10))
    run "tcp.loss$loss" "$ns" tcp 7502
    run "meshwire.loss$loss" "$ns" rudp 7503
  done
  # the same transport on node:dgram instead of the batched driver (the default)
  BENCH_UDP_DRIVER=dgram run meshwire_dgram.loss0 mwbench0 rudp 7506
  BENCH_DATAGRAM_SIZE=8972 run udp_raw.jumbo mwbenchj udp 7504
  BENCH_DATAGRAM_SIZE=8972 run meshwire.jumbo mwbenchj rudp 7505
done

node dist/bench/transport/report.js "$OUT" "$PWD" "$SYSCALLS"
rm -f "$OUT" "$SYSCALLS"
