#!/usr/bin/env bash
# Rolls the local 3-node cluster one node at a time onto a new build with a SURGE (docs/OPERATIONS.md, "Downing
# during a rolling restart: surge"): the replacement joins first, so the cluster never drops to two members and one
# crash during the roll still leaves a keep-majority survivor side. Then the pipeline from the SREcon talk:
#   start replacement -> wait Up/ready -> drain old -> verify empty -> leave -> stop old
# Each node has two port slots so old and new can run side by side on one machine: slot 0 is the usual set (tunnel
# 7n70, proxy 7n80, Akka 7n90, data 7n91, admin 911n), slot 1 is +5 (7n75, 7n85, 7n95, 7n96) and admin 912n. A roll
# moves every node to its other slot; $CONNECT_RUN_DIR/node<n>.slot remembers which one it is on. Load balancers and
# agents should know both slots (cluster-config/traffic.sh and soak.sh do).
#   cluster-config/start-local-cluster.sh && cluster-config/rolling-restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${CONNECT_RUN_DIR:-.run/local}
TOKEN=${CONNECT_ADMIN_TOKEN:-dev-token-not-secret}
WAIT=${CONNECT_READY_WAIT:-120}
NODE_DLL=src/Connect.Host/bin/Release/net10.0/connect-node.dll

echo "building the new version (Release)"
dotnet build -c Release src/Connect.Host -v quiet -nologo >/dev/null
dotnet build -c Release src/Connect.Ctl -v quiet -nologo >/dev/null
ctl() { dotnet src/Connect.Ctl/bin/Release/net10.0/connectctl.dll "$@" --token "$TOKEN"; }

slot_of() { cat "$RUN_DIR/node$1.slot" 2>/dev/null || echo 0; }
# Ports of node $1 in slot $2.
offset() { echo $(( ($1 - 1) * 100 + 5 * $2 )); }
cluster_port() { echo $(( 7090 + $(offset "$1" "$2") )); }
admin_port() { echo $(( 9110 + $1 - 1 + 10 * $2 )); }

wait_ready() {
  for _ in $(seq 1 240); do
    curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

for n in 1 2 3; do
  old_slot=$(slot_of "$n")
  new_slot=$(( 1 - old_slot ))
  old_pid=$(cat "$RUN_DIR/node$n.pid")
  old_address="127.0.0.1:$(cluster_port "$n" "$old_slot")"
  off=$(offset "$n" "$new_slot")
  new_admin=$(admin_port "$n" "$new_slot")
  # Seeds: every member running now (the old node included), wherever its slot is.
  seeds=()
  for m in 1 2 3; do seeds+=(--seed "akka.tcp://connect@127.0.0.1:$(cluster_port "$m" "$(slot_of "$m")")"); done
  # A neighbour's admin port, as a pipeline would ask (the node itself would do too).
  via_node=$(( n % 3 + 1 ))
  via="127.0.0.1:$(admin_port "$via_node" "$(slot_of "$via_node")")"

  echo "== node $n ($old_address -> 127.0.0.1:$(cluster_port "$n" "$new_slot"))"
  start=$(date +%s.%N)
  # 1. Surge: the replacement joins while the old node still serves (4 members for a moment).
  nohup dotnet "$NODE_DLL" --config "cluster-config/local/node$n.json" "${seeds[@]}" \
    --tunnel-port $((7070 + off)) --proxy-port $((7080 + off)) --cluster-port $((7090 + off)) --data-port $((7091 + off)) \
    --admin-port "$new_admin" >"$RUN_DIR/node$n.next.log" 2>&1 &
  new_pid=$!
  if ! wait_ready "$new_admin"; then
    echo "the replacement of node $n did not become ready in 120 s; see $RUN_DIR/node$n.next.log; the old node keeps serving" >&2
    kill -TERM "$new_pid" 2>/dev/null || true
    exit 1
  fi
  joined=$(date +%s.%N)
  # 2. Drain the old node (readiness 503, GOAWAY: agents move, busy links finish), wait until it holds nothing.
  ctl "$via" connect drain -a "$old_address"
  if ! ctl "$via" connect ready -a "$old_address" --wait "$WAIT"; then
    echo "node $n still holds links or streams after ${WAIT}s; stopping anyway (its drain deadline resets what is left)" >&2
  fi
  drained=$(date +%s.%N)
  # 3. Stop it (SIGTERM: leave the cluster, hand its entities off), as stop-local-cluster.sh does.
  kill -TERM "$old_pid"
  for _ in $(seq 1 200); do kill -0 "$old_pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$old_pid" 2>/dev/null; then
    echo "node $n (pid $old_pid) did not stop in 100 s; killing it" >&2
    kill -KILL "$old_pid"
  fi
  stopped=$(date +%s.%N)
  echo "$new_pid" >"$RUN_DIR/node$n.pid"
  echo "$new_slot" >"$RUN_DIR/node$n.slot"
  mv "$RUN_DIR/node$n.next.log" "$RUN_DIR/node$n.log"
  printf 'node %s: replacement ready after %.1f s, old drained in %.1f s, old stopped %.1f s after the start\n' "$n" \
    "$(echo "$joined - $start" | bc)" "$(echo "$drained - $joined" | bc)" "$(echo "$stopped - $start" | bc)"
done
echo "rolling restart done"
