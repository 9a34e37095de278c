#!/usr/bin/env bash
# Stops nodes of the local cluster gracefully (SIGTERM: drain links, leave the cluster, stop), waiting for each.
#   cluster-config/stop-local-cluster.sh        # all nodes
#   cluster-config/stop-local-cluster.sh 3      # only node 3
set -uo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${CONNECT_RUN_DIR:-.run/local}
NODES=("${@:-3 2 1}")
read -r -a NODES <<<"${NODES[*]}"
for n in "${NODES[@]}"; do
  pidfile="$RUN_DIR/node$n.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    # The drain deadline is 60 s in cluster-config/local; allow it plus the leave.
    for _ in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "node $n (pid $pid) did not stop in 100 s; killing it" >&2
      kill -KILL "$pid"
    else
      echo "node $n stopped"
    fi
  fi
  rm -f "$pidfile"
done
