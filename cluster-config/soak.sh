#!/usr/bin/env bash
# Soak test (not in CI): mixed load on the local 3-node cluster for SOAK_SECONDS (default 30 min) with a rolling
# restart every RESTART_EVERY seconds (default 5 min). Prints requests and failures per kind, each node's RSS over
# time, and each drain's time. Everything is on loopback; every loop is bounded in count and time.
#   cluster-config/soak.sh                                   # 30 min, restart every 5 min
#   SOAK_SECONDS=360 RESTART_EVERY=180 cluster-config/soak.sh  # a short run
# Load: 3 agents (sessions soak-1..3, each with all three servers), python3's http.server as the private app
# (HTTP/1.0, closes after every response, backlog 5), small GETs through a load balancer's curl loop (absolute-form
# and CONNECT, round robin over nodes whose /readyz is 200, a refused connect retried on the next node), and a
# 1 MiB download every few seconds checked against its SHA-256.
set -uo pipefail
cd "$(dirname "$0")/.."
SOAK_SECONDS=${SOAK_SECONDS:-1800}
RESTART_EVERY=${RESTART_EVERY:-300}
RUN_DIR=${CONNECT_RUN_DIR:-.run/soak}
TOKEN=dev-token-not-secret
APP_PORT=${SOAK_APP_PORT:-3099}
mkdir -p "$RUN_DIR"
export CONNECT_RUN_DIR=$RUN_DIR

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  cluster-config/stop-local-cluster.sh >/dev/null 2>&1
}
trap cleanup EXIT

echo "building (Release)"
dotnet build -c Release src/Connect.Host -v quiet -nologo >/dev/null || exit 1
dotnet build -c Release src/Connect.Client -v quiet -nologo >/dev/null || exit 1
dotnet build -c Release src/Connect.Ctl -v quiet -nologo >/dev/null || exit 1
CONNECT_SKIP_BUILD=1 cluster-config/start-local-cluster.sh || exit 1

app_dir=$(mktemp -d)
echo "hello from the soak app" >"$app_dir/index.html"
head -c $((1024 * 1024)) /dev/urandom >"$app_dir/blob"
blob_sha=$(sha256sum "$app_dir/blob" | cut -d' ' -f1)
python3 -m http.server "$APP_PORT" --bind 127.0.0.1 --directory "$app_dir" >"$RUN_DIR/app.log" 2>&1 &
pids+=($!)

for s in 1 2 3; do
  dotnet src/Connect.Client/bin/Release/net10.0/connect-client.dll --session "soak-$s" --token "$TOKEN" \
    --server ws://127.0.0.1:7070 --server ws://127.0.0.1:7170 --server ws://127.0.0.1:7270 \
    --server ws://127.0.0.1:7075 --server ws://127.0.0.1:7175 --server ws://127.0.0.1:7275 --links 2 >"$RUN_DIR/agent$s.log" 2>&1 &
  pids+=($!)
done
sleep 5

end=$(( $(date +%s) + SOAK_SECONDS ))
: >"$RUN_DIR/results"
# A load balancer's curl loop: next backend whose /readyz is 200; a refused connect (curl exit 7) goes to the next one.
# Backends are both port slots of each node: rolling-restart.sh surges each replacement onto the node's other slot.
load() {
  local kind=$1 i=0 b n slot proxy out code
  while [ "$(date +%s)" -lt "$end" ] && [ "$i" -lt 1000000 ]; do
    i=$((i + 1))
    for try in 0 1 2 3 4 5; do
      b=$(( (i + try) % 6 )); n=$(( b % 3 )); slot=$(( b / 3 ))
      proxy=$((7080 + n * 100 + 5 * slot))
      curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$((9110 + n + 10 * slot))/readyz" 2>/dev/null || continue
      session=soak-$(( i % 3 + 1 ))
      case $kind in
        get) out=$(curl -sS -f -m 30 -x "http://$session:$TOKEN@127.0.0.1:$proxy" "http://127.0.0.1:$APP_PORT/" 2>&1); code=$? ;;
        connect) out=$(curl -sS -f -m 30 -p -x "http://$session:$TOKEN@127.0.0.1:$proxy" "http://127.0.0.1:$APP_PORT/" 2>&1); code=$? ;;
        blob) out=$(curl -sS -f -m 60 -x "http://$session:$TOKEN@127.0.0.1:$proxy" "http://127.0.0.1:$APP_PORT/blob" 2>&1 | sha256sum | cut -d' ' -f1); code=$?
              [ "$out" = "$blob_sha" ] || code=99 ;;
      esac
      if [ "$code" -eq 7 ]; then continue; fi # refused before anything was sent: the next node
      if [ "$code" -eq 0 ]; then echo "$kind ok" >>"$RUN_DIR/results"; else echo "$kind FAILED $(date +%T) node $((n + 1)) exit $code: ${out:0:200}" >>"$RUN_DIR/results"; fi
      break
    done
    [ "$kind" = blob ] && sleep 2
  done
}
load get & pids+=($!)
load get & pids+=($!)
load connect & pids+=($!)
load blob & pids+=($!)

# Each node's RSS every 30 s.
(
  while [ "$(date +%s)" -lt "$end" ]; do
    line="$(date +%T)"
    for n in 1 2 3; do
      pid=$(cat "$RUN_DIR/node$n.pid" 2>/dev/null)
      rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ')
      line="$line node$n=$(( ${rss:-0} / 1024 ))MiB"
    done
    echo "$line" >>"$RUN_DIR/rss"
    sleep 30
  done
) & pids+=($!)

next_restart=$(( $(date +%s) + RESTART_EVERY ))
while [ "$(date +%s)" -lt "$end" ]; do
  if [ "$(date +%s)" -ge "$next_restart" ] && [ $(( end - $(date +%s) )) -gt 90 ]; then
    echo "$(date +%T) rolling restart"
    cluster-config/rolling-restart.sh 2>&1 | grep -E '^node [0-9]: replacement' | tee -a "$RUN_DIR/drains"
    next_restart=$(( $(date +%s) + RESTART_EVERY ))
  fi
  sleep 5
done
sleep 35 # let the last requests and RSS samples land

echo "== requests"
for kind in get connect blob; do
  printf '%-8s ok %6d  failed %d\n' "$kind" "$(grep -c "^$kind ok" "$RUN_DIR/results")" "$(grep -c "^$kind FAILED" "$RUN_DIR/results")"
done
grep FAILED "$RUN_DIR/results" | head -20
echo "== RSS (every 30 s)"
cat "$RUN_DIR/rss"
echo "== drains"
cat "$RUN_DIR/drains" 2>/dev/null
! grep -q FAILED "$RUN_DIR/results"
