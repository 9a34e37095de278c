#!/usr/bin/env bash
# Idle CPU of one node holding N idle links (issue 16, docs/SCALING.md "Idle CPU: the profile"): what the node spends,
# on what, and how often. One Release node on loopback ports 27000-27004, nothing else talking to it, and one
# connect-sim process holding the links; for each agent mode in PINGS (the simulator's --ping-s: 15 = PINGs like
# connect-client, 0 = the agents only answer the node's PINGs) a fresh node and simulator, then, with every link idle:
#   1. CPU: the node's utime+stime over WINDOW s (% of one core, and per 10k links); the empty node's first;
#   2. events a second: PINGs sent/skipped/answered (the node's Connect.Node meter), syscalls, context switches
#      (perf stat), thread-pool work items, timers, GCs, lock contention (dotnet-counters, System.Runtime);
#   3. a CPU profile: perf record -g at 999 Hz (kernel + JIT frames through DOTNET_PerfMapEnabled) -> flame graph SVG
#      and top-stacks tables (bench/profile/top_stacks.py).
# Every step is bounded; every process started here is stopped on exit.
#
#   bench/scale/idle.sh                                        # 10,000 links, agents pinging and not
#   LINKS=2000 PINGS=15 WINDOW=10 SETTLE=5 PROFILE=0 bench/scale/idle.sh     # a quick try
#   LABEL=after OUT=/tmp/idle-after bench/scale/idle.sh
# OUT (default /tmp/idle-LABEL): summary.txt, logs, counters, perf tables and SVGs. SKIP_BUILD=1 uses the last build.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
LABEL="${LABEL:-now}"
out="${OUT:-/tmp/idle-$LABEL}"
mkdir -p "$out"
LINKS="${LINKS:-10000}"
PINGS="${PINGS:-15 0}"
SETTLE="${SETTLE:-20}"
WINDOW="${WINDOW:-30}"
BASE_WINDOW="${BASE_WINDOW:-20}"
PROFILE="${PROFILE:-1}"
TOKEN=dev-token-not-secret
BASE=27000
export PATH="$PATH:$HOME/.dotnet/tools"

[[ -n ${SKIP_BUILD:-} ]] || for p in src/Connect.Host bench/Connect.Bench.Sim; do
  dotnet build -c Release "$repo/$p" -nologo -v quiet >/dev/null
done
node_dll="${NODE_DLL:-$repo/src/Connect.Host/bin/Release/net10.0/connect-node.dll}"
sim_dll="$repo/bench/Connect.Bench.Sim/bin/Release/net10.0/connect-sim.dll"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done; kill -9 "$p" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pct_core() { awk -v a="$1" -v b="$2" -v w="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz / w * 100}'; }
# pings KIND: the node's connect.node.link.pings counter of that kind (sent, skipped, answered).
pings() { curl -fs "http://127.0.0.1:$((BASE+2))/metrics" | awk -v k="kind=\"$1\"" '/^connect_node_link_pings/ && index($0, k) {print $NF; found=1} END {if (!found) print 0}'; }

start_node() {
  DOTNET_gcServer=0 DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 dotnet "$node_dll" \
    --tunnel-port $BASE --proxy-port $((BASE+1)) --admin-port $((BASE+2)) --cluster-port $((BASE+3)) --data-port $((BASE+4)) \
    --Logging:LogLevel:Default=Warning --Logging:LogLevel:Akka=Warning --Connect:Tunnel:PublicUrl=ws://127.0.0.1:$BASE >"$out/node-$1.log" 2>&1 &
  node=$!; pids+=("$node")
  for _ in $(seq 1 120); do
    kill -0 "$node" 2>/dev/null || { echo "the node exited during start-up; see $out/node-$1.log" >&2; exit 1; }
    curl -fs "http://127.0.0.1:$((BASE+2))/readyz" >/dev/null 2>&1 && return
    sleep 0.5
  done
  echo "the node did not become ready; see $out/node-$1.log" >&2; exit 1
}

summary="$out/summary.txt"
{
  echo "# idle.sh $LABEL: $(date -u +%FT%TZ), git $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet || echo '+dirty')"
  echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the start (shared); LINKS=$LINKS WINDOW=$WINDOW s SETTLE=$SETTLE s"
} | tee "$summary"

first=1
for ping in $PINGS; do
  mode="ping$ping"
  start_node "$mode"
  sleep 5
  if [ "$first" = 1 ]; then
    # The per-node floor: the same node with no link (Akka's scheduler, cluster gossip with itself, Kestrel's timers).
    t0=$(cpu_ticks "$node"); sleep "$BASE_WINDOW"; t1=$(cpu_ticks "$node")
    echo "empty node: $(pct_core "$t0" "$t1" "$BASE_WINDOW") % of one core over $BASE_WINDOW s (load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$summary"
    first=0
  fi
  bound=$((SETTLE + 4 * WINDOW + 300))
  timeout $((bound + 30)) dotnet "$sim_dll" --servers ws://127.0.0.1:$BASE/v1/tunnel --token "$TOKEN" --sessions "$LINKS" \
    --prefix "$mode" --jitter-ms 10000 --ping-s "$ping" --duration-s "$bound" --report-s 10 >"$out/sim-$mode.log" 2>&1 &
  sim=$!; pids+=("$sim")
  for _ in $(seq 1 600); do grep -q "all $LINKS links open" "$out/sim-$mode.log" && break; kill -0 "$sim" 2>/dev/null || break; sleep 0.5; done
  sim_proc=$(pgrep -P "$sim" | head -1); sim_proc=${sim_proc:-$sim} # the simulator itself, not its timeout wrapper
  attach=$(grep -o "all $LINKS links open after [0-9.]* s" "$out/sim-$mode.log" || echo "NOT all links open")
  sleep "$SETTLE"

  # 1. CPU over the window, nothing else attached to the node (the metrics scrapes are just outside it).
  s0=$(pings sent); k0=$(pings skipped); a0=$(pings answered)
  t0=$(cpu_ticks "$node"); m0=$(cpu_ticks "$sim_proc"); w0=$(date +%s%3N)
  sleep "$WINDOW"
  t1=$(cpu_ticks "$node"); m1=$(cpu_ticks "$sim_proc"); w1=$(date +%s%3N)
  s1=$(pings sent); k1=$(pings skipped); a1=$(pings answered)
  secs=$(awk -v a="$w0" -v b="$w1" 'BEGIN {printf "%.2f", (b - a) / 1000}')
  cpu=$(pct_core "$t0" "$t1" "$secs")
  rate() { awk -v a="$1" -v b="$2" -v s="$secs" 'BEGIN {printf "%.0f", (b - a) / s}'; }
  {
    echo "== agents --ping-s $ping, $LINKS links: $attach"
    echo "node CPU $cpu % of one core over $secs s = $(awk -v c="$cpu" -v n="$LINKS" 'BEGIN {printf "%.2f", c * 10000 / n}') % per 10k links (load $(cut -d' ' -f1 /proc/loadavg)); simulator $(pct_core "$m0" "$m1" "$secs") %"
    echo "node PINGs a second: sent $(rate "$s0" "$s1"), skipped $(rate "$k0" "$k1"), agents' PINGs answered $(rate "$a0" "$a1"); threads $(awk '/^Threads/ {print $2}' /proc/$node/status)"
  } | tee -a "$summary"

  # 2a. Syscalls and context switches a second (perf stat counts in the kernel; its own cost is small).
  perf stat -x, -e 'context-switches,cpu-migrations,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_recvmsg,syscalls:sys_enter_sendmsg,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_epoll_ctl' \
    -p "$node" -o "$out/perfstat-$mode.csv" -- sleep 15 >/dev/null 2>&1 || true
  awk -F, '$1 ~ /^[0-9]+$/ { n = $3; sub("syscalls:sys_enter_", "", n); if ($1 > 0) printf " %s %.0f/s", n, $1 / 15 } END { print "" }' "$out/perfstat-$mode.csv" \
    | sed 's/^/node events:/' | tee -a "$summary"

  # 2b. Runtime counters a second (EventPipe; a separate window, as the session costs a little CPU of its own).
  timeout 60 dotnet-counters collect -p "$node" --refresh-interval 5 --duration 00:00:00:20 --format csv -o "$out/counters-$mode.csv" \
    --counters 'System.Runtime[dotnet.thread_pool.work_item.count,dotnet.thread_pool.thread.count,dotnet.timer.count,dotnet.gc.collections,dotnet.monitor.lock_contentions,dotnet.gc.heap.total_allocated,dotnet.process.cpu.time]' >/dev/null 2>&1 || true
  python3 - "$out/counters-$mode.csv" <<'PY' | tee -a "$summary"
import csv, collections, sys
rows = collections.defaultdict(list)
try:
    for r in csv.DictReader(open(sys.argv[1])):
        key = r["Counter Name"] + ("" if not r.get("Tags") else " " + r["Tags"])
        try:
            rows[(key, r["Counter Type"])].append(float(r["Mean/Increment"]))
        except (KeyError, ValueError):
            pass
except FileNotFoundError:
    print("runtime counters: none (dotnet-counters failed)")
    sys.exit()
parts = []
for (key, kind), values in sorted(rows.items()):
    values = values[1:] or values  # the first interval may straddle the session start
    mean = sum(values) / len(values)
    parts.append(f"{key} {mean / 5:.3g}/s" if kind == "Rate" else f"{key} {mean:.0f}")
print("runtime counters (mean of 5 s intervals): " + "; ".join(parts))
PY

  # 3. The profile.
  if [ "$PROFILE" = 1 ]; then
    perf record -F 999 -g -p "$node" -o "$out/node-$mode.perf" -- sleep "$WINDOW" >/dev/null 2>&1 || true
    perf script -i "$out/node-$mode.perf" >"$out/node-$mode.perf.txt" 2>/dev/null || true
    python3 "$repo/bench/profile/flamegraph.py" perf "$out/node-$mode.perf.txt" "$out/flame-idle-$LINKS-$mode-$LABEL.svg" \
      "connect-node, $LINKS idle links, agents --ping-s $ping, perf CPU samples over $WINDOW s ($LABEL)" >/dev/null
    python3 "$repo/bench/profile/top_stacks.py" "$out/node-$mode.perf.txt" "connect-node, $LINKS idle links, agents --ping-s $ping ($LABEL)" \
      --match 'Akka\.' --match 'Connect\.Actors\.Links\.LinkActor' --match 'Connect\.Actors\.Sessions' --match 'Connect\.Tunnel\.Multiplexing' \
      --match 'MuxSendScheduler' --match 'MuxKeepAlive' --match 'ReadLoopAsync' --match 'WebSocket' --match 'Kestrel|Microsoft\.AspNetCore' \
      --match 'System\.IO\.Pipelines' --match 'ThreadPool|PortableThreadPool|WorkerThread' --match 'SocketAsyncEngine|EventLoop' \
      --match 'TimerQueue|Timer\.' --match 'GC|gc_heap|WKS::' --match 'HashedWheelTimer|Scheduler' --match 'entry_SYSCALL|do_syscall' \
      >"$out/top-stacks-idle-$LINKS-$mode-$LABEL.txt" || true
    head -40 "$out/top-stacks-idle-$LINKS-$mode-$LABEL.txt" | tee -a "$summary"
    rm -f "$out/node-$mode.perf"
  fi
  cleanup
done
echo "results: $out" | tee -a "$summary"
