#!/usr/bin/env bash
# `make cluster`: three meshwire nodes on loopback with static peers (DESIGN.md section 9):
#   node-a gRPC 127.0.0.1:7400, UDP 7401, metrics 9464
#   node-b gRPC 127.0.0.1:7410, UDP 7411, metrics 9465
#   node-c gRPC 127.0.0.1:7420, UDP 7421, metrics 9466
# Logs go to .tools/cluster/<id>.log. Ctrl-C (or SIGTERM) drains and stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/cluster
peers="node-a=127.0.0.1:7401,node-b=127.0.0.1:7411,node-c=127.0.0.1:7421"
pids=()
start() {
  local id=$1 grpc=$2 udp=$3 metrics=$4
  node dist/src/cli/main.js serve --node-id "$id" --grpc-listen "127.0.0.1:$grpc" \
    --peer-listen "127.0.0.1:$udp" --metrics-listen "127.0.0.1:$metrics" --peers "$peers" \
    >".tools/cluster/$id.log" 2>&1 &
  pids+=($!)
}
stop() {
  echo "stopping the cluster..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  exit 0
}
trap stop INT TERM
start node-a 7400 7401 9464
start node-b 7410 7411 9465
start node-c 7420 7421 9466
sleep 2
for p in "${pids[@]}"; do
  if ! kill -0 "$p" 2>/dev/null; then
    echo "a node failed to start; see .tools/cluster/*.log" >&2
    tail -n 5 .tools/cluster/*.log >&2
    stop
  fi
done
cat <<'MSG'
meshwire cluster up: node-a 127.0.0.1:7400, node-b 127.0.0.1:7410, node-c 127.0.0.1:7420
Try, in another terminal:
  npx meshwire sub 'orders.>' -s 127.0.0.1:7420          # subscriber on node-c
  npx meshwire send orders.new hello -s 127.0.0.1:7400    # published on node-a
  npx meshwire reply-with 'svc.time' "$(date)" -s 127.0.0.1:7410
  npx meshwire request svc.time now -s 127.0.0.1:7400
  npx meshwire peers -s 127.0.0.1:7400
Logs: .tools/cluster/*.log. Ctrl-C stops the cluster.
MSG
wait
