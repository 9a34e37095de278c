#!/usr/bin/env bash
# Starts a local 3-node Connect cluster on loopback (cluster-config/local/node{1,2,3}.json), one process per node,
# and waits until every node answers /readyz. Logs and pids go to $CONNECT_RUN_DIR (default .run/local).
#   cluster-config/start-local-cluster.sh          # build (Release) and start all three
#   cluster-config/start-local-cluster.sh 2        # start only node 2 (e.g. after a restart)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${CONNECT_RUN_DIR:-.run/local}
mkdir -p "$RUN_DIR"
NODES=("${@:-1 2 3}")
read -r -a NODES <<<"${NODES[*]}"

if [ -z "${CONNECT_SKIP_BUILD:-}" ]; then
  dotnet build -c Release src/Connect.Host -v quiet -nologo >/dev/null
fi
NODE_DLL=src/Connect.Host/bin/Release/net10.0/connect-node.dll

admin_port() { echo $((9110 + $1 - 1)); }

for n in "${NODES[@]}"; do
  if [ -f "$RUN_DIR/node$n.pid" ] && kill -0 "$(cat "$RUN_DIR/node$n.pid")" 2>/dev/null; then
    echo "node $n already running (pid $(cat "$RUN_DIR/node$n.pid"))"
    continue
  fi
  nohup dotnet "$NODE_DLL" --config "cluster-config/local/node$n.json" >"$RUN_DIR/node$n.log" 2>&1 &
  echo $! >"$RUN_DIR/node$n.pid"
  rm -f "$RUN_DIR/node$n.slot" # the usual ports (rolling-restart.sh moves a node to its other slot)
  echo "node $n starting (pid $!, log $RUN_DIR/node$n.log)"
  if [ "$n" = 1 ] && [ "${#NODES[@]}" -gt 1 ]; then
    sleep 1 # the first seed forms the cluster; the others join it
  fi
done

for n in "${NODES[@]}"; do
  port=$(admin_port "$n")
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
      echo "node $n ready: tunnel ws://127.0.0.1:$((7070 + (n - 1) * 100))  proxy http://127.0.0.1:$((7080 + (n - 1) * 100))  admin http://127.0.0.1:$port"
      continue 2
    fi
    sleep 0.5
  done
  echo "node $n did not become ready in 60 s; see $RUN_DIR/node$n.log" >&2
  exit 1
done
