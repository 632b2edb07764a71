#!/usr/bin/env bash
# `make cluster`: three meshwire nodes on loopback with static peers (docs/design.md,
# "Configuration"). With the default ports:
#   node-a gRPC 127.0.0.1:7400, UDP 7401, metrics 9464
#   node-b gRPC 127.0.0.1:7410, UDP 7411, metrics 9465
#   node-c gRPC 127.0.0.1:7420, UDP 7421, metrics 9466
# The ports move with the environment (e.g. `MESHWIRE_CLUSTER_BASE_PORT=8400 make cluster`):
#   MESHWIRE_CLUSTER_BASE_PORT     node-a's gRPC port (7400); node-b and node-c are +10 and
#                                  +20, each node's UDP peer port is its gRPC port + 1
#   MESHWIRE_CLUSTER_METRICS_PORT  node-a's metrics port (9464); node-b +1, node-c +2
#   MESHWIRE_CLUSTER_LOG_DIR       where the logs go (.tools/cluster), one <id>.log per node
# Ctrl-C (or SIGTERM) drains and stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."

port_var() {
  local name=$1 value=$2 top=$3
  if ! [[ $value =~ ^[0-9]+$ ]] || ((value < 1 || value > top)); then
    echo "cluster.sh: $name=$value: expected a port from 1 to $top (the nodes use ports above it too)" >&2
    exit 2
  fi
}
base=${MESHWIRE_CLUSTER_BASE_PORT:-7400}
metrics=${MESHWIRE_CLUSTER_METRICS_PORT:-9464}
logs=${MESHWIRE_CLUSTER_LOG_DIR:-.tools/cluster}
port_var MESHWIRE_CLUSTER_BASE_PORT "$base" 65514
port_var MESHWIRE_CLUSTER_METRICS_PORT "$metrics" 65533

a=$base b=$((base + 10)) c=$((base + 20))
mkdir -p "$logs"
peers="node-a=127.0.0.1:$((a + 1)),node-b=127.0.0.1:$((b + 1)),node-c=127.0.0.1:$((c + 1))"
pids=()
start() {
  local id=$1 grpc=$2 metrics=$3
  node dist/src/cli/main.js serve --node-id "$id" --grpc-listen "127.0.0.1:$grpc" \
    --peer-listen "127.0.0.1:$((grpc + 1))" --metrics-listen "127.0.0.1:$metrics" --peers "$peers" \
    >"$logs/$id.log" 2>&1 &
  pids+=($!)
}
stop() {
  echo "stopping the cluster..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  exit "${1:-0}"
}
trap stop INT TERM
start node-a "$a" "$metrics"
start node-b "$b" $((metrics + 1))
start node-c "$c" $((metrics + 2))
sleep 2
for p in "${pids[@]}"; do
  if ! kill -0 "$p" 2>/dev/null; then
    echo "a node failed to start; see $logs/*.log" >&2
    tail -n 5 "$logs"/*.log >&2
    stop 1
  fi
done
cli="node dist/src/cli/main.js"
cat <<MSG
meshwire cluster up: node-a 127.0.0.1:$a, node-b 127.0.0.1:$b, node-c 127.0.0.1:$c
(UDP peers $((a + 1))/$((b + 1))/$((c + 1)), metrics $metrics/$((metrics + 1))/$((metrics + 2)))
Try, in another terminal:
  $cli sub 'orders.>' --text -s 127.0.0.1:$c          # subscriber on node-c
  $cli send orders.new hello -s 127.0.0.1:$a    # published on node-a
  $cli reply-with 'svc.time' "\$(date)" -s 127.0.0.1:$b
  $cli request svc.time now --text -s 127.0.0.1:$a
  $cli peers -s 127.0.0.1:$a
Logs: $logs/*.log. Ctrl-C stops the cluster.
MSG
wait
