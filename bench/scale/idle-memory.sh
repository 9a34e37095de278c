#!/usr/bin/env bash
# RSS per idle link on ONE node, as a slope (docs/SCALING.md, "Memory per idle link: second pass"). One Release node,
# one connect-sim process per step adding that step's links (one link per session, all on this node); at each step,
# after SETTLE s with every link idle: the node's RSS, over its baseline and as the slope since the previous step.
# After the last step (GCDUMP=1, the default) a dotnet-gcdump of the node and its per-type table (top TOP types), and
# the RSS once more (the dump runs a full blocking GC first: "after a full GC").
#
#   bench/scale/idle-memory.sh                                   # steps 4000 7000 10000, results in $OUT
#   STEPS="2000 4000" SETTLE=20 OUT=/tmp/mem bench/scale/idle-memory.sh
#   NODE_ENV="DOTNET_GCConserveMemory=5" bench/scale/idle-memory.sh     # the same with a GC setting (env of the node)
#
# Knobs: STEPS (total links per step) SETTLE (s) PORT_BASE (tunnel +0, proxy +1, admin +2, cluster +3, data +4;
# default 12000) JITTER_MS BOUND (s per wait) CPU_WINDOW (s of idle CPU at the last step) GCDUMP TOP NODE_ENV (extra environment of the node) NODE_DLL OUT
# SIM_DLL NO_BUILD=1 DUMP=1 (also a full heap dump after the last step, with dotnet-dump's `eeheap -gc` and `dumpheap -stat`:
# committed vs. used GC memory, and the free space between live objects). Every wait is bounded. Results: $OUT/idle-memory-summary.txt (appended), node log, simulator logs.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${OUT:-$repo/bench/results/scale}"
mkdir -p "$out"
STEPS="${STEPS:-4000 7000 10000}"
SETTLE="${SETTLE:-30}"
PORT_BASE="${PORT_BASE:-12000}"
JITTER_MS="${JITTER_MS:-5000}"
BOUND="${BOUND:-300}"
GCDUMP="${GCDUMP:-1}"
DUMP="${DUMP:-0}"
CPU_WINDOW="${CPU_WINDOW:-30}"
TOP="${TOP:-60}"
NODE_ENV="${NODE_ENV:-}"
TOKEN=dev-token-not-secret
summary="$out/idle-memory-summary.txt"
ulimit -n "$(ulimit -Hn)"

if [ "${NO_BUILD:-0}" != 1 ]; then
  for p in src/Connect.Host bench/Connect.Bench.Sim; do
    dotnet build -c Release "$repo/$p" -nologo -v quiet >/dev/null
  done
fi
node_dll="${NODE_DLL:-$repo/src/Connect.Host/bin/Release/net10.0/connect-node.dll}"
sim_dll="${SIM_DLL:-$repo/bench/Connect.Bench.Sim/bin/Release/net10.0/connect-sim.dll}"
tools="${DOTNET_TOOLS:-$HOME/.dotnet/tools}"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done; kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
say() { echo "$*" | tee -a "$summary"; }
# The last "open=N" a simulator log reported.
open_in() { grep -o "open=[0-9]*" "$1" 2>/dev/null | tail -1 | cut -d= -f2; }

say "== $(date -u +%FT%TZ) idle-memory: STEPS=\"$STEPS\" SETTLE=$SETTLE NODE_ENV=\"$NODE_ENV\" node ${NODE_DLL:-build $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet || echo +dirty)}; load $(cut -d' ' -f1-3 /proc/loadavg)"
base=$PORT_BASE
# shellcheck disable=SC2086
env DOTNET_gcServer=0 $NODE_ENV dotnet "$node_dll" --tunnel-port "$base" --proxy-port $((base+1)) --admin-port $((base+2)) \
  --cluster-port $((base+3)) --data-port $((base+4)) --Logging:LogLevel:Default=Warning --Logging:LogLevel:Akka=Warning \
  --Connect:Tunnel:PublicUrl=ws://127.0.0.1:$base >"$out/idle-memory-node.log" 2>&1 &
node=$!
pids+=("$node")
for _ in $(seq 1 240); do
  kill -0 "$node" 2>/dev/null || { echo "the node exited during start-up; see $out/idle-memory-node.log" >&2; exit 1; }
  curl -fs "http://127.0.0.1:$((base+2))/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
sleep "$SETTLE"
baseline=$(rss_kib "$node")
say "baseline RSS $baseline KiB"

prev_links=0; prev_rss=$baseline; k=0; logs=()
for total in $STEPS; do
  add=$((total - prev_links))
  log="$out/idle-memory-sim$k.log"
  timeout $((BOUND * 6)) dotnet "$sim_dll" --servers "ws://127.0.0.1:$base/v1/tunnel" --token "$TOKEN" --sessions "$add" \
    --prefix "mem$k" --jitter-ms "$JITTER_MS" --duration-s $((BOUND * 5)) --report-s 1 >"$log" 2>&1 &
  pids+=("$!"); logs+=("$log")
  t0=$(date +%s)
  while :; do
    open=0; for f in "${logs[@]}"; do open=$((open + $(open_in "$f" || echo 0) )); done
    [ "$open" -ge "$total" ] && break
    [ $(( $(date +%s) - t0 )) -ge "$BOUND" ] && { say "step $total: only $open links open after $BOUND s"; break; }
    sleep 1
  done
  sleep "$SETTLE"
  rss=$(rss_kib "$node")
  say "$total links: RSS $rss KiB ($(awk '/^Anonymous/ {print "anonymous " $2 " KiB"}' "/proc/$node/smaps_rollup")), $((rss - baseline)) KiB over baseline = $(awk -v d=$((rss - baseline)) -v n="$total" 'BEGIN {printf "%.1f", d / n}') KiB/link; slope since previous step $(awk -v d=$((rss - prev_rss)) -v n="$add" 'BEGIN {printf "%.1f", d / n}') KiB/link"
  prev_links=$total; prev_rss=$rss; k=$((k + 1))
done

# Idle CPU of the node over CPU_WINDOW s at the last step (a pool that trades pinned memory for gen0 garbage shows here).
ticks() { awk '{print $14 + $15}' "/proc/$node/stat"; }
c0=$(ticks); sleep "$CPU_WINDOW"; c1=$(ticks)
say "idle CPU at $prev_links links: $(awk -v t=$((c1 - c0)) -v w="$CPU_WINDOW" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", 100 * t / hz / w}') % of one core over $CPU_WINDOW s"
if [ "$DUMP" = 1 ]; then
  heap="$out/idle-memory-$prev_links-links.dump"
  "$tools/dotnet-dump" collect -p "$node" --type Heap -o "$heap" >/dev/null
  "$tools/dotnet-dump" analyze "$heap" -c "eeheap -gc" -c "dumpheap -stat" -c exit >"$out/idle-memory-$prev_links-links-heap.txt" 2>&1 || true
  rm -f "$heap"
  say "heap dump: $out/idle-memory-$prev_links-links-heap.txt ($(grep -m1 -i "GC Committed Heap Size\|Total Committed" "$out/idle-memory-$prev_links-links-heap.txt" || echo "see the file"))"
fi
if [ "$GCDUMP" = 1 ]; then
  dump="$out/idle-memory-$prev_links-links.gcdump"
  "$tools/dotnet-gcdump" collect -p "$node" -o "$dump" >/dev/null
  "$tools/dotnet-gcdump" report "$dump" 2>/dev/null | head -n $((TOP + 3)) >"$out/idle-memory-$prev_links-links-top-types.txt" || true
  rss=$(rss_kib "$node")
  say "after the dump's full GC: RSS $rss KiB, $((rss - baseline)) KiB over baseline = $(awk -v d=$((rss - baseline)) -v n="$prev_links" 'BEGIN {printf "%.1f", d / n}') KiB/link; per-type table: $out/idle-memory-$prev_links-links-top-types.txt"
fi
