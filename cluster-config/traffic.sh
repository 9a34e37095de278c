#!/usr/bin/env bash
# A load balancer's view of the local cluster: sends `curl -x` requests, round robin over the nodes whose /readyz
# answers 200, for the given sessions, and prints a line per failure and a summary. Bounded in count and time.
# Its backends are both port slots of each node (rolling-restart.sh surges a node's replacement onto the other slot),
# like a target group that holds the old and the new instance during a deploy.
#   cluster-config/traffic.sh [SECONDS] [URL] [SESSION...]
#   cluster-config/traffic.sh 120 http://localhost:3000/ demo-1 demo-2 demo-3
set -uo pipefail
SECONDS_TO_RUN=${1:-60}
URL=${2:-http://localhost:3000/}
shift 2 2>/dev/null || true
SESSIONS=("${@:-demo}")
TOKEN=${CONNECT_TOKEN:-dev-token-not-secret}
end=$(( $(date +%s) + SECONDS_TO_RUN ))
ok=0; failed=0; i=0
while [ "$(date +%s)" -lt "$end" ] && [ "$i" -lt 100000 ]; do
  b=$(( i % 6 )); i=$((i + 1))
  n=$(( b % 3 )); slot=$(( b / 3 ))
  admin=$((9110 + n + 10 * slot)); proxy=$((7080 + n * 100 + 5 * slot))
  curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$admin/readyz" 2>/dev/null || continue
  session=${SESSIONS[$(( i % ${#SESSIONS[@]} ))]}
  mode=$([ $((i % 2)) -eq 0 ] && echo "-p" || echo "")
  if out=$(curl -sS -f -m 30 $mode -x "http://$session:$TOKEN@127.0.0.1:$proxy" "$URL" -o /dev/null -w '%{http_code}' 2>&1); then
    ok=$((ok + 1))
  else
    failed=$((failed + 1))
    echo "$(date +%T) FAILED via node $((n + 1)) (port $proxy) session $session ${mode:+(CONNECT)}: $out"
  fi
done
echo "traffic: $ok ok, $failed failed in ${SECONDS_TO_RUN}s"
[ "$failed" -eq 0 ]
