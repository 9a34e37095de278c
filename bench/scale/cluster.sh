#!/usr/bin/env bash
# Three-node scale measurements for docs/SCALING.md (issue 16). Three phases, each on three fresh node processes:
#
#  1. steps: grow to each total in STEPS (links, spread evenly, SESSIONS x LINKS at the last step); at each step, per
#     node: RSS over its baseline and as a slope from the previous step, idle CPU (and per 10k links), and the admin
#     plane asked from node 2 (/v1/nodes, /v1/sessions pages, /ops, connectctl cluster show), each timed and sized.
#  2. storm (STORM=on): cold start of SESSIONS x LINKS at once (time until every link is attached), then proxy load
#     through nodes 1 and 2 (connect-sim load: absolute-form GET and CONNECT to the sessions) and SIGKILL of node 3
#     (a third of the links): time until every session is re-linked, failed requests during the storm with reasons,
#     time until node 3 is removed and its shards are homed on the survivors, and whether a survivor was ever seen
#     unreachable (polled from both survivors, and grepped from their logs).
#  3. drain (DRAIN_LINKS > 0): DRAIN_LINKS idle one-link sessions all on node 1, a drain of node 1 (POST /v1/nodes/drain,
#     what `connectctl connect drain -a` sends):
#     time until node 1 holds no link, until every session is linked again elsewhere, and until node 1 exits after
#     SIGTERM (its leave).
#
#  4. control plane (CP_STREAMS > 0): CP_SESSIONS one-link sessions; CP_STREAMS CONNECTs and CP_STREAMS absolute-form
#     GETs, one after the other with curl, through node 1's proxy for a session of each placement (entity and link on
#     the two other nodes; entity on node 1, link elsewhere; link on node 1, entity elsewhere), each measured by diffing
#     every node's connect_remote_messages_total around it: remote messages per new stream, by type.
#  The steps also diff those counters over each step's idle window (REST_WINDOW s, at least the CPU window): remote
#  messages per second at rest, by type, and per 1,000 sessions.
#
#   bench/scale/cluster.sh                                            # 10,000 sessions x 2 links, steps 5k 10k 20k
#   SESSIONS=20000 LINKS=1 STORM=off DRAIN_LINKS=0 bench/scale/cluster.sh
#   SESSIONS=300 LINKS=2 STEPS="200 600" DRAIN_LINKS=500 SETTLE=3 CPU_WINDOW=5 bench/scale/cluster.sh   # a quick try
#
# Knobs: SESSIONS LINKS STEPS STORM DRAIN_LINKS PORT_BASE (node n uses PORT_BASE + (n-1)*1000 + 0..4: tunnel, proxy,
# admin, cluster, data) SIM_MAX (links per simulator process: the hard fd limit is per process) JITTER_MS SETTLE
# CPU_WINDOW REST_WINDOW LOAD_RATE LOAD_MODE BOUND (seconds for each wait) CP_STREAMS CP_SESSIONS OUT NODE_DLL. Every wait is bounded; a wait that runs
# out is reported as such and the run goes on. Results: $OUT/cluster-summary.txt, one log per process.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${OUT:-$repo/bench/results/scale}"
mkdir -p "$out"
SESSIONS="${SESSIONS:-10000}"
LINKS="${LINKS:-2}"
STEPS="${STEPS:-5000 10000 20000}"
STORM="${STORM:-on}"
DRAIN_LINKS="${DRAIN_LINKS:-7000}"
PORT_BASE="${PORT_BASE:-37000}"
SIM_MAX="${SIM_MAX:-7000}"
JITTER_MS="${JITTER_MS:-10000}"
SETTLE="${SETTLE:-20}"
CPU_WINDOW="${CPU_WINDOW:-30}"
# An idle link reports its load every 60 s +- 5 s: the rate at rest needs a window of about two periods.
REST_WINDOW="${REST_WINDOW:-120}"
CP_STREAMS="${CP_STREAMS:-50}"
CP_SESSIONS="${CP_SESSIONS:-12}"
LOAD_RATE="${LOAD_RATE:-100}"
LOAD_MODE="${LOAD_MODE:-both}"
BOUND="${BOUND:-600}"
TOKEN=dev-token-not-secret
total=$((SESSIONS * LINKS))
summary="$out/cluster-summary.txt"
ulimit -n "$(ulimit -Hn)"

for p in src/Connect.Host src/Connect.Ctl bench/Connect.Bench.Sim; do
  dotnet build -c Release "$repo/$p" -nologo -v quiet >/dev/null
done
node_dll="${NODE_DLL:-$repo/src/Connect.Host/bin/Release/net10.0/connect-node.dll}"
ctl_dll="$repo/src/Connect.Ctl/bin/Release/net10.0/connectctl.dll"
sim_dll="$repo/bench/Connect.Bench.Sim/bin/Release/net10.0/connect-sim.dll"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 1 120); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done; kill -9 "$p" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT

base_of() { echo $((PORT_BASE + ($1 - 1) * 1000)); }
addr_of() { echo "127.0.0.1:$(( $(base_of "$1") + 3 ))"; }
admin_of() { echo "127.0.0.1:$(( $(base_of "$1") + 2 ))"; }
tunnels() { local u=() n; for n in "$@"; do u+=("ws://127.0.0.1:$(base_of "$n")/v1/tunnel"); done; (IFS=,; echo "${u[*]}"); }
ms() { date +%s%3N; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
api() { curl -fs -m 30 -H "Authorization: Bearer $TOKEN" "http://$(admin_of "$1")$2"; }
# timed OUTFILE CMD...: runs CMD (its output to OUTFILE), prints milliseconds.
timed() { local f=$1 t0; shift; t0=$(ms); "$@" >"$f" 2>&1 || true; echo $(( $(ms) - t0 )); }
ctl() { dotnet "$ctl_dll" "$@" --token "$TOKEN"; }
say() { echo "$*" | tee -a "$summary"; }

# start_node N [SEED_NODE]: sets node_pid[N] (not in a subshell, so the EXIT trap knows every process).
declare -A node_pid
start_node() {
  local n=$1 seed=${2:-} base; base=$(base_of "$1")
  local args=(--tunnel-port "$base" --proxy-port $((base+1)) --admin-port $((base+2)) --cluster-port $((base+3)) --data-port $((base+4))
    --Logging:LogLevel:Default=Warning --Logging:LogLevel:Akka=Warning --Connect:Tunnel:PublicUrl=ws://127.0.0.1:$base)
  [ -n "$seed" ] && args+=(--seed "akka.tcp://connect@$(addr_of "$seed")")
  DOTNET_gcServer=0 dotnet "$node_dll" "${args[@]}" >"$out/$phase-node$n.log" 2>&1 &
  node_pid[$n]=$!
  pids+=("${node_pid[$n]}")
}
# Node ports 37000+ lie inside Linux's default ephemeral range (32768-60999): another process's outgoing connection
# may hold one for a moment, so a node that finds its port taken is started again (bounded). For the big run, reserve
# them: sysctl -w net.ipv4.ip_local_reserved_ports=37000-39004 (or pick a PORT_BASE below 32768).
start_cluster() {
  local n try
  for n in 1 2 3; do
    for try in $(seq 1 10); do
      if [ "$n" = 1 ]; then start_node 1; else start_node "$n" 1; fi
      for _ in $(seq 1 240); do
        kill -0 "${node_pid[$n]}" 2>/dev/null || break
        curl -fs "http://$(admin_of "$n")/readyz" >/dev/null 2>&1 && break
        sleep 0.5
      done
      kill -0 "${node_pid[$n]}" 2>/dev/null && break
      grep -q "already in use" "$out/$phase-node$n.log" || { echo "node $n exited during start-up; see $out/$phase-node$n.log" >&2; exit 1; }
      echo "node $n: a port was in use (try $try of 10); starting it again in 3 s" >&2
      sleep 3
    done
    kill -0 "${node_pid[$n]}" 2>/dev/null || { echo "node $n could not bind its ports; see $out/$phase-node$n.log" >&2; exit 1; }
  done
  for _ in $(seq 1 120); do
    [ "$(api 1 /v1/nodes | jq '[.nodes[] | select(.status == "Up")] | length' 2>/dev/null || echo 0)" = 3 ] && break
    sleep 0.5
  done
}
# remote_snapshot TAG: every live node's connect_remote_messages_total samples, prefixed with the node, into a file.
remote_snapshot() {
  local f="$out/$phase-remote-$1.prom" n; : >"$f"
  for n in 1 2 3; do curl -fs -m 10 "http://$(admin_of "$n")/metrics" 2>/dev/null | grep '^connect_remote_messages_total' | sed "s/^/node$n /" >>"$f" || true; done
}
# remote_report FROM TO DIVISOR: the messages sent between two snapshots, summed over the nodes (a remote message is
# sent by one node and received by another: the "out" side counts each once), divided by DIVISOR: "total T; type n, ...".
remote_report() {
  awk -v div="$3" 'FNR == NR {a[$1 " " $2] = $3; next}
    $2 ~ /direction="out"/ {d = $3 - a[$1 " " $2]; match($2, /type="[^"]*"/); t = substr($2, RSTART + 6, RLENGTH - 7); s[t] += d; tot += d}
    END {printf "total %.2f;", tot / div; n = 0; for (t in s) if (s[t] > 0) printf "%s %s %.2f", (n++ ? "," : ""), t, s[t] / div; print ""}' \
    "$out/$phase-remote-$1.prom" "$out/$phase-remote-$2.prom"
}
node_links() { api 1 "/v1/nodes?address=$(addr_of "$1")" | jq -r --arg a "$(addr_of "$1")" '.nodes[] | select(.address | endswith($a)) | .links // "?"' 2>/dev/null || echo "?"; }

# start_sims TAG SESSIONS LINKS [sim args...]: as many simulator processes as SIM_MAX allows, prefixes TAGc0, TAGc1, ...
# Appends to sim_logs / sim_specs (PREFIX:SESSIONS, for the load) and sim_links_started.
sim_logs=(); sim_specs=(); sim_links_started=0
start_sims() {
  local tag=$1 sessions=$2 links=$3; shift 3
  local per=$((SIM_MAX / links)) k=0 left=$sessions n
  while [ "$left" -gt 0 ]; do
    n=$(( left < per ? left : per ))
    local log="$out/$phase-sim-${tag}c$k.log"
    timeout $((BOUND * 6)) dotnet "$sim_dll" --token "$TOKEN" --sessions "$n" --links "$links" --prefix "${tag}c$k" \
      --jitter-ms "$JITTER_MS" --duration-s $((BOUND * 5)) --report-s 1 "$@" >"$log" 2>&1 &
    pids+=("$!"); sim_logs+=("$log"); sim_specs+=("${tag}c$k:$n")
    sim_links_started=$((sim_links_started + n * links))
    left=$((left - n)); k=$((k + 1))
  done
}
# Links open now, summed over every simulator's last report.
open_links() {
  local sum=0 f v
  for f in "${sim_logs[@]}"; do v=$(grep -o "open=[0-9]*" "$f" 2>/dev/null | tail -1 | cut -d= -f2); sum=$((sum + ${v:-0})); done
  echo "$sum"
}
# wait_open N: waits (bounded) until N links are open; prints the milliseconds it took, or "not within BOUND s (X open)".
wait_open() {
  local want=$1 t0; t0=$(ms)
  while [ $(( $(ms) - t0 )) -lt $((BOUND * 1000)) ]; do
    [ "$(open_links)" -ge "$want" ] && { echo $(( $(ms) - t0 )); return; }
    sleep 0.2
  done
  echo "not within $BOUND s ($(open_links) open)"
}

echo "machine: $(nproc) cores, $(free -m | awk '/Mem/ {print $2}') MiB; load $(cut -d' ' -f1-3 /proc/loadavg); fd limit $(ulimit -n)" | tee "$summary"
say "config: SESSIONS=$SESSIONS LINKS=$LINKS ($total links) STEPS=\"$STEPS\" STORM=$STORM DRAIN_LINKS=$DRAIN_LINKS PORT_BASE=$PORT_BASE SIM_MAX=$SIM_MAX JITTER_MS=$JITTER_MS LOAD_RATE=$LOAD_RATE"

# ---- 1. steps: memory, idle CPU and the admin plane at 5k, 10k, 20k links on three nodes ----
phase=steps
start_cluster
sleep 5
declare -A base_rss prev_rss prev_links
for n in 1 2 3; do base_rss[$n]=$(rss_kib "${node_pid[$n]}"); prev_rss[$n]=${base_rss[$n]}; prev_links[$n]=0; done
say "== steps: baseline RSS node1 ${base_rss[1]} KiB, node2 ${base_rss[2]} KiB, node3 ${base_rss[3]} KiB"
have=0
for step in $STEPS; do
  [ "$step" -gt "$total" ] && step=$total
  [ "$step" -le "$have" ] && continue
  sessions=$(( (step - have) / LINKS ))
  [ "$sessions" -gt 0 ] || continue
  t0=$(ms)
  remote_snapshot "attach0-$step"
  start_sims "st$step" "$sessions" "$LINKS" --servers "$(tunnels 1 2 3)"
  waited=$(wait_open "$sim_links_started")
  attach=$([[ "$waited" =~ ^[0-9]+$ ]] && echo "$(( $(ms) - t0 )) ms" || echo "$waited")
  have=$sim_links_started
  sleep "$SETTLE"
  declare -A rss links t0cpu t1cpu
  remote_snapshot "rest0-$have"; rest0=$(ms)
  for n in 1 2 3; do t0cpu[$n]=$(cpu_ticks "${node_pid[$n]}"); done
  sleep "$CPU_WINDOW"
  for n in 1 2 3; do t1cpu[$n]=$(cpu_ticks "${node_pid[$n]}"); done
  # The rest window goes on past the CPU window, before anything asks the admin API (its queries are remote messages too).
  [ "$REST_WINDOW" -gt "$CPU_WINDOW" ] && sleep $((REST_WINDOW - CPU_WINDOW))
  remote_snapshot "rest1-$have"; rest_s=$(awk -v a="$rest0" -v b="$(ms)" 'BEGIN {printf "%.1f", (b - a) / 1000}')
  say "== $have links ($((have / LINKS)) sessions x $LINKS), spread over three nodes; this step's $((sessions * LINKS)) new links attached in $attach (jitter ${JITTER_MS} ms)"
  say "remote messages per new link while this step's links attached (the endpoint's link count, attach, first report; every node, sent): $(remote_report "attach0-$step" "rest0-$have" "$((sessions * LINKS))")"
  say "remote messages at rest over ${rest_s} s (every node's connect_remote_messages_total, sent), per second: $(remote_report "rest0-$have" "rest1-$have" "$rest_s")"
  say "  per second per 1,000 sessions: $(remote_report "rest0-$have" "rest1-$have" "$(awk -v r="$rest_s" -v s="$((have / LINKS))" 'BEGIN {print r * s / 1000}')")"
  for n in 1 2 3; do
    t1=${t1cpu[$n]}
    rss[$n]=$(rss_kib "${node_pid[$n]}"); links[$n]=$(node_links "$n")
    cpu=$(awk -v a="${t0cpu[$n]}" -v b="$t1" -v w="$CPU_WINDOW" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) / hz / w * 100}')
    per10k=$(awk -v c="$cpu" -v l="${links[$n]}" 'BEGIN {if (l > 0) printf "%.1f", c * 10000 / l; else print "-"}')
    over=$(( rss[$n] - base_rss[$n] ))
    per=$(awk -v o="$over" -v l="${links[$n]}" 'BEGIN {if (l > 0) printf "%.1f", o / l; else print "-"}')
    slope=$(awk -v r="${rss[$n]}" -v p="${prev_rss[$n]}" -v l="${links[$n]}" -v q="${prev_links[$n]}" 'BEGIN {if (l > q) printf "%.1f", (r - p) / (l - q); else print "-"}')
    say "node$n: ${links[$n]} links; RSS ${rss[$n]} KiB, ${over} KiB over baseline = ${per} KiB/link; slope since previous step ${slope} KiB/link; idle CPU ${cpu}% of a core over ${CPU_WINDOW} s = ${per10k}% per 10k links"
    prev_rss[$n]=${rss[$n]}; prev_links[$n]=${links[$n]}
  done
  f=$(mktemp)
  t=$(timed "$f" api 2 /v1/nodes); say "asked on node2: /v1/nodes ${t} ms $(wc -c <"$f") B; counts: $(jq -c '[.nodes[] | {a: .address[-5:], l: .links, e: .entities}]' "$f" 2>/dev/null)"
  t=$(timed "$f" api 2 "/v1/sessions?limit=100"); say "  /v1/sessions?limit=100 ${t} ms $(wc -c <"$f") B ($(jq '.sessions | length' "$f" 2>/dev/null) sessions, errors $(jq -c .errors "$f" 2>/dev/null))"
  t=$(timed "$f" api 2 "/v1/sessions?limit=1000"); say "  /v1/sessions?limit=1000 ${t} ms $(wc -c <"$f") B ($(jq '.sessions | length' "$f" 2>/dev/null) sessions)"
  t=$(timed "$f" curl -fs -m 30 "http://$(admin_of 2)/ops"); say "  /ops ${t} ms $(wc -c <"$f") B (the page; it then follows /v1/events)"
  t=$(timed "$f" ctl "$(admin_of 2)" cluster show); say "  connectctl cluster show ${t} ms:"; sed 's/^/    /' "$f" | cut -c1-160 | tee -a "$summary"
  rm -f "$f"
done
cleanup; sim_logs=(); sim_specs=(); sim_links_started=0

# ---- 2. storm: cold start, proxy load, SIGKILL node 3 ----
if [ "$STORM" = on ]; then
  phase=storm
  start_cluster
  sleep 5
  t0=$(ms)
  start_sims storm "$SESSIONS" "$LINKS" --servers "$(tunnels 1 2 3)"
  waited=$(wait_open "$total")
  say "== storm: cold start of $SESSIONS sessions x $LINKS links = $total links on three fresh nodes (jitter ${JITTER_MS} ms): every link attached after $([[ "$waited" =~ ^[0-9]+$ ]] && echo "$(( $(ms) - t0 )) ms" || echo "$waited")"
  sleep 10
  held=$(node_links 3)
  shards_before=$(api 1 /v1/sharding | jq '[.regions[].shards] | add' 2>/dev/null || echo "?")
  say "node3 holds $held links; $shards_before shards in the cluster; entities per node: $(api 1 /v1/nodes | jq -c '[.nodes[] | {a: .address[-5:], e: .entities, s: .shards}]' 2>/dev/null)"
  load_log="$out/storm-load.log"
  load_s=$((BOUND / 4 + 30))
  dotnet "$sim_dll" load --proxies "127.0.0.1:$(( $(base_of 1) + 1 )),127.0.0.1:$(( $(base_of 2) + 1 ))" --token "$TOKEN" \
    --sessions "$(IFS=,; echo "${sim_specs[*]}")" --rate "$LOAD_RATE" --mode "$LOAD_MODE" --duration-s "$load_s" --timeout-s 30 --report-s 1 >"$load_log" 2>&1 &
  load_pid=$!; pids+=("$load_pid")
  for _ in $(seq 1 100); do grep -q "ok=[1-9]" "$load_log" 2>/dev/null && break; sleep 0.2; done
  sleep 5
  before=$(grep "^t=" "$load_log" | tail -1)
  inflight=$(echo "$before" | grep -o "inflight=[0-9]*" | cut -d= -f2)
  kill -9 "${node_pid[3]}"
  t0=$(ms); kill_ms=$t0
  relinked=""; removed=""; homed=""; flaps=0
  while [ $(( $(ms) - t0 )) -lt $((BOUND * 1000)) ]; do
    now=$(( $(ms) - t0 ))
    if [ -z "$relinked" ] && [ "$now" -gt 1500 ] && [ "$(open_links)" -ge "$total" ]; then relinked=$now; fi
    for n in 1 2; do
      v=$(api "$n" /v1/nodes 2>/dev/null || true)
      # A survivor (node 1 or 2) seen unreachable by either survivor is a flap.
      if [ -n "$v" ] && [ "$(echo "$v" | jq --arg a "$(addr_of 1)" --arg b "$(addr_of 2)" '[.nodes[] | select((.address | endswith($a) or endswith($b)) and (.reachable | not))] | length' 2>/dev/null || echo 0)" != 0 ]; then flaps=$((flaps + 1)); fi
      if [ "$n" = 1 ] && [ -z "$removed" ] && [ -n "$v" ] && [ "$(echo "$v" | jq '.nodes | length' 2>/dev/null)" = 2 ]; then removed=$(( $(ms) - t0 )); fi
    done
    if [ -n "$removed" ] && [ -z "$homed" ]; then
      s=$(api 1 /v1/sharding 2>/dev/null || true)
      if [ -n "$s" ] && [ "$(echo "$s" | jq --arg c "$(addr_of 3)" '[.regions[].nodes[] | select(.address | endswith($c))] | length' 2>/dev/null)" = 0 ] \
         && [ "$(echo "$s" | jq '[.regions[].shards] | add' 2>/dev/null || echo 0)" -ge "$shards_before" ]; then homed=$(( $(ms) - t0 )); fi
    fi
    [ -n "$relinked" ] && [ -n "$removed" ] && [ -n "$homed" ] && break
    sleep 0.3
  done
  # The load runs on to its end (bounded by its duration plus its request timeout).
  for _ in $(seq 1 $(( (load_s + 60) * 2 ))); do kill -0 "$load_pid" 2>/dev/null || break; sleep 0.5; done
  # Akka logs "Marking node(s) as UNREACHABLE [Member(address = ...)]": only lines naming a survivor are a flap.
  logged=$(cat "$out/storm-node1.log" "$out/storm-node2.log" | grep -o "as UNREACHABLE \[.*" | grep -c -e "$(addr_of 1)" -e "$(addr_of 2)" || true)
  delayed=$(cat "$out/storm-node1.log" "$out/storm-node2.log" | grep -c "heartbeat was delayed" || true)
  say "SIGKILL node3 (${held} links): every link open again after ${relinked:-not within $BOUND s ($(open_links) of $total open)} ms (simulators report every 1 s: +-1 s)"
  say "node3 removed (downed by the survivors) after ${removed:-not within $BOUND s} ms; every shard homed on a survivor (/v1/sharding: no shard on node3, >= $shards_before shards) after ${homed:-not within the bound} ms"
  say "survivors seen unreachable by a survivor (polls of /v1/nodes on nodes 1 and 2, ~3 a second): $flaps; survivor marked UNREACHABLE in the survivors' logs: $logged times; "heartbeat was delayed" warnings: $delayed"
  say "proxy load ($LOAD_RATE req/s, $LOAD_MODE, through nodes 1 and 2 to the $LINKS-link sessions): before the kill: ${before:-none}"
  grep -E "^(load|failure):" "$load_log" | sed 's/^/  /' | tee -a "$summary" || say "  the load printed no total; see $load_log"
  # Split by start time: a request that started after the kill must not fail; one in flight at the kill may be cut.
  after=$(grep "^failed-request:" "$load_log" | awk -v k="$kill_ms" '{split($2, a, "="); if (a[2] + 0 >= k) n++} END {print n + 0}')
  before_kill=$(grep "^failed-request:" "$load_log" | awk -v k="$kill_ms" '{split($2, a, "="); if (a[2] + 0 < k) n++} END {print n + 0}')
  say "failed requests that started after the kill: $after (goal 0); that started before it: $before_kill (about ${inflight:-?} were in flight ~1 s before the kill)"
  grep "^failed-request:" "$load_log" | awk -v k="$kill_ms" '{split($2, a, "="); if (a[2] + 0 >= k) {$1 = ""; $2 = "+" (a[2] - k) "ms"; print "  after the kill:" $0}}' | head -20 | tee -a "$summary"
  cleanup; sim_logs=(); sim_specs=(); sim_links_started=0
fi

# ---- 3. drain: DRAIN_LINKS idle links all on node 1, drained with connectctl, then SIGTERM (leave) ----
if [ "$DRAIN_LINKS" -gt 0 ]; then
  phase=drain
  start_cluster
  sleep 5
  start_sims drain "$DRAIN_LINKS" 1 --servers "$(tunnels 1 2 3)" --start-server 0
  waited=$(wait_open "$DRAIN_LINKS")
  sleep 5
  say "== drain: $DRAIN_LINKS idle one-link sessions, all on node1 ($(node_links 1) links there) after ${waited} ms"
  f=$(mktemp)
  # POST /v1/nodes/drain is what `connectctl connect drain -a` sends; curl keeps the CLI's start-up out of the timing.
  t0=$(ms)
  curl -fs -m 30 -X POST -H "Authorization: Bearer $TOKEN" "http://$(admin_of 2)/v1/nodes/drain?address=$(addr_of 1)" >"$f" 2>&1 || true
  say "POST /v1/nodes/drain?address=node1 on node2 (connectctl connect drain -a) answered in $(( $(ms) - t0 )) ms: $(head -c 200 "$f")"
  drained=""; relinked=""
  while [ $(( $(ms) - t0 )) -lt $((BOUND * 1000)) ]; do
    [ -z "$drained" ] && [ "$(api 2 "/v1/nodes?address=$(addr_of 1)" | jq -r --arg a "$(addr_of 1)" '.nodes[] | select(.address | endswith($a)) | .links' 2>/dev/null)" = 0 ] && drained=$(( $(ms) - t0 ))
    [ -z "$relinked" ] && [ "$(open_links)" -ge "$DRAIN_LINKS" ] && [ $(( $(ms) - t0 )) -gt 1500 ] && relinked=$(( $(ms) - t0 ))
    [ -n "$drained" ] && [ -n "$relinked" ] && break
    sleep 0.2
  done
  t=$(timed "$f" ctl "$(admin_of 2)" connect ready -a "$(addr_of 1)")
  say "node1 holds no link after ${drained:-not within $BOUND s} ms; every session linked again (on nodes 2 and 3: $(node_links 2) + $(node_links 3)) after ${relinked:-not within $BOUND s ($(open_links) open)} ms (+-1 s)"
  say "connectctl connect ready -a node1: ${t} ms: $(head -1 "$f")"
  t0=$(ms); kill -TERM "${node_pid[1]}"
  for _ in $(seq 1 $((BOUND * 5))); do kill -0 "${node_pid[1]}" 2>/dev/null || break; sleep 0.2; done
  say "node1 after SIGTERM (leave, hand-off): $(kill -0 "${node_pid[1]}" 2>/dev/null && echo "still running after $BOUND s" || echo "exited after $(( $(ms) - t0 )) ms"); members seen by node2: $(api 2 /v1/nodes | jq -c '[.nodes[] | {a: .address[-5:], s: .status}]' 2>/dev/null)"
  rm -f "$f"
  cleanup
fi

# ---- 4. control plane: remote messages per new stream, by where the session's entity and link are ----
if [ "$CP_STREAMS" -gt 0 ]; then
  phase=cp
  start_cluster
  sleep 5
  start_sims cp "$CP_SESSIONS" 1 --servers "$(tunnels 1 2 3)"
  waited=$(wait_open "$CP_SESSIONS")
  # Past every link's first (jittered, 5-10 s) load report; the next comes ~60 s later, so the runs below see at most
  # one forced report per idle link (CP_SESSIONS in all), against several messages per stream.
  sleep 12
  f="$out/cp-sessions.json"
  api 1 "/v1/sessions?limit=1000" >"$f" || true
  a1=$(addr_of 1)
  # pick FILTER: the first session whose one link and entity satisfy FILTER (jq; $e = entity host:port, $l = link's, $a = node 1's).
  pick() {
    jq -r --arg a "$a1" ".sessions[] | select((.links | length) == 1) | (.entityNode | split(\"@\") | last) as \$e | (.links[0].node | split(\"@\") | last) as \$l | select($1) | .name" "$f" 2>/dev/null | head -1
  }
  say "== control plane: $CP_SESSIONS one-link sessions attached after $waited ms; $CP_STREAMS streams of each kind, one after the other, through node1's proxy (${a1})"
  for placement in 'via:$e != $a and $l != $a and $e != $l' 'entity:$e == $a and $l != $a' 'link:$l == $a and $e != $a'; do
    name=${placement%%:*}; session=$(pick "${placement#*:}")
    if [ -z "$session" ]; then say "placement $name: no session of the $CP_SESSIONS is placed so (raise CP_SESSIONS)"; continue; fi
    where=$(jq -r --arg s "$session" '.sessions[] | select(.name == $s) | "entity on \(.entityNode | split("@") | last), link on \(.links[0].node | split("@") | last)"' "$f")
    for kind in connect get; do
      remote_snapshot "$name-$kind-0"
      ok=0
      for i in $(seq 1 "$CP_STREAMS"); do
        if [ "$kind" = connect ]; then args=(-p); else args=(); fi
        body=$(curl -s -m 20 "${args[@]}" -x "http://$session:$TOKEN@127.0.0.1:$(( $(base_of 1) + 1 ))" "http://app.internal/cp/$i" 2>/dev/null || true)
        [ "$body" = "ok $session" ] && ok=$((ok + 1))
      done
      # The link's load report for the last stream is debounced by 50 ms; let it land.
      sleep 2
      remote_snapshot "$name-$kind-1"
      say "placement $name ($session: $where), $kind: $ok of $CP_STREAMS ok; remote messages per stream (all nodes, sent): $(remote_report "$name-$kind-0" "$name-$kind-1" "$CP_STREAMS")"
    done
  done
  cleanup
fi
