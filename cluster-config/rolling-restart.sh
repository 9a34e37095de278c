#!/usr/bin/env bash
# Rolls the local 3-node cluster one node at a time onto a new build, the pipeline from the SREcon talk:
#   drain -> verify empty -> leave -> replace
# For each node: `connectctl connect drain` (readiness 503, GOAWAY to its links: agents move to the other nodes
# at once, busy links finish their streams), `connectctl connect ready --wait` until it holds no link, stream or
# proxy request, SIGTERM (leave the cluster, hand its session entities off, stop), start it again on the new
# build, wait for /readyz. Traffic keeps flowing through the other nodes the whole time.
#   cluster-config/start-local-cluster.sh && cluster-config/rolling-restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${CONNECT_RUN_DIR:-.run/local}
TOKEN=${CONNECT_ADMIN_TOKEN:-dev-token-not-secret}
WAIT=${CONNECT_READY_WAIT:-120}

echo "building the new version (Release)"
dotnet build -c Release src/Connect.Host -v quiet -nologo >/dev/null
dotnet build -c Release src/Connect.Ctl -v quiet -nologo >/dev/null
ctl() { dotnet src/Connect.Ctl/bin/Release/net10.0/connectctl.dll "$@" --token "$TOKEN"; }

for n in 1 2 3; do
  admin=$((9110 + n - 1))
  cluster_port=$((7090 + (n - 1) * 100))
  # Ask a neighbour, as a pipeline would (the node itself would do too).
  via=$((9110 + (n % 3)))
  address="127.0.0.1:$cluster_port"
  echo "== node $n ($address)"
  start=$(date +%s.%N)
  ctl "127.0.0.1:$via" connect drain -a "$address"
  if ! ctl "127.0.0.1:$via" connect ready -a "$address" --wait "$WAIT"; then
    echo "node $n still holds links or streams after ${WAIT}s; stopping anyway (its drain deadline resets what is left)" >&2
  fi
  drained=$(date +%s.%N)
  CONNECT_RUN_DIR=$RUN_DIR cluster-config/stop-local-cluster.sh "$n"
  CONNECT_RUN_DIR=$RUN_DIR CONNECT_SKIP_BUILD=1 cluster-config/start-local-cluster.sh "$n"
  done_at=$(date +%s.%N)
  printf 'node %s: drained in %.1f s, replaced and ready after %.1f s\n' "$n" "$(echo "$drained - $start" | bc)" "$(echo "$done_at - $start" | bc)"
  curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null
done
echo "rolling restart done"
