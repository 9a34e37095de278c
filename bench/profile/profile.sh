#!/usr/bin/env bash
# Profiles one CONNECT download path on loopback: curl -> Connect node -> WebSocket -> agent -> byte source, and the
# same through squid, with
#   - perf stat: syscalls and context switches per MiB for each process (node, agent, squid, the source, curl);
#   - perf record (CPU samples, kernel + JIT frames via DOTNET_PerfMapEnabled) -> flame graph SVG per process;
#   - dotnet-trace (EventPipe sample profiler) -> speedscope -> managed flame graph SVG per process.
# Output: bench/results/profile/ (SVGs, counts.txt). Bounded: every download loop has a count and a time limit.
#   bench/profile/profile.sh [LABEL] [MiB per download, default 256] [downloads per window, default 6]
# COUNTS_ONLY=1 skips the flame graphs; SKIP_BUILD=1 the Release build.
# PROFILE_ENV="NAME=VALUE ..." adds environment variables to the node and the agent (to try a runtime knob).
# NODE_DLL / AGENT_DLL run another build (an A/B "before" built with `dotnet build -c Release -o DIR`); SKIP_BUILD implied.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
label=${1:-now}
mib=${2:-256}
count=${3:-6}
out=bench/results/profile
mkdir -p "$out"
work=$(mktemp -d /tmp/connect-profile.XXXXXX)
chmod 777 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export PATH="$PATH:$HOME/.dotnet/tools"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below the kernel's ephemeral range (32768-60999): a busy machine's outgoing connections cannot hold these ports.
free_port() { for _ in $(seq 1 50); do c=$((20000 + RANDOM % 12000)); port_free "$c" && { echo "$c"; return; }; done; exit 1; }
wait_port() { for _ in $(seq 1 300); do port_free "$1" || return 0; sleep 0.1; done; echo "port $1 did not open" >&2; exit 1; }

node_dll=${NODE_DLL:-src/Connect.Host/bin/Release/net10.0/connect-node.dll}
agent_dll=${AGENT_DLL:-src/Connect.Client/bin/Release/net10.0/connect-client.dll}
[[ -n ${SKIP_BUILD:-}${NODE_DLL:-}${AGENT_DLL:-} ]] || for project in src/Connect.Host src/Connect.Client; do
  dotnet build -c Release "$project" -nologo -v quiet >/dev/null
done

src_port=$(free_port); python3 bench/profile/source.py "$src_port" $((mib << 20)) & pids+=($!); src_pid=$!
tunnel=$(free_port); proxy=$(free_port); admin=$(free_port); cluster=$(free_port); data=$(free_port)
env ${PROFILE_ENV:-} DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 dotnet "$node_dll" \
  --tunnel-port "$tunnel" --proxy-port "$proxy" --admin-port "$admin" --cluster-port "$cluster" --data-port "$data" \
  --Logging:LogLevel:Default=Warning --Logging:LogLevel:Akka=Warning >"$work/node.log" 2>&1 & pids+=($!); node_pid=$!
wait_port "$proxy"; wait_port "$src_port"
env ${PROFILE_ENV:-} DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 dotnet "$agent_dll" --server "ws://127.0.0.1:$tunnel" \
  --session prof --token dev-token-not-secret --status-interval 0 >"$work/agent.log" 2>&1 & pids+=($!); agent_pid=$!

squid_port=$(free_port)
cat >"$work/squid.conf" <<CONF
http_port 127.0.0.1:$squid_port
http_access allow all
cache deny all
cache_mem 0 MB
access_log none
cache_log $work/cache.log
cache_store_log none
pid_filename $work/squid.pid
coredump_dir $work
shutdown_lifetime 1 seconds
via off
forwarded_for delete
CONF
squid -N -f "$work/squid.conf" & pids+=($!); squid_pid=$!
wait_port "$squid_port"

connect_proxy="http://prof:dev-token-not-secret@127.0.0.1:$proxy"
squid_proxy="http://127.0.0.1:$squid_port"
url="http://127.0.0.1:$src_port/"
# Wait for the agent's link: the first CONNECT that gets bytes.
for _ in $(seq 1 100); do
  curl -s -p -x "$connect_proxy" -r 0-0 --max-time 5 -o /dev/null "$url" -w '%{size_download}' 2>/dev/null | grep -q '^[1-9]' && break
  sleep 0.3
done

# Runs COUNT downloads through PROXY (bounded by 60 s in all); prints total bytes and seconds.
downloads() {
  local proxy=$1 start end bytes=0 n
  start=$(date +%s.%N)
  for _ in $(seq 1 "$count"); do
    n=$(curl -s -p -x "$proxy" --max-time 30 -o /dev/null -w '%{size_download}' "$url" || echo 0)
    bytes=$((bytes + ${n%.*}))
    (( $(date +%s) - ${start%.*} > 60 )) && break
  done
  end=$(date +%s.%N)
  echo "$bytes $(echo "$end - $start" | bc -l)"
}
cpu_s() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
events='syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_recvmsg,syscalls:sys_enter_sendmsg,syscalls:sys_enter_readv,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,context-switches'

counts="$out/counts-$label.txt"
{
  echo "# $label: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), $count x $mib MiB CONNECT downloads per path, one stream"
  echo "# git $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet || echo '+dirty')"
  echo "# PROFILE_ENV=${PROFILE_ENV:-} node=$node_dll agent=$agent_dll"
} >"$counts"
downloads "$connect_proxy" >/dev/null # warm-up (JIT)
for path in connect squid; do
  if [[ $path == connect ]]; then proxy_url=$connect_proxy; procs="node:$node_pid agent:$agent_pid source:$src_pid"; else proxy_url=$squid_proxy; procs="squid:$squid_pid source:$src_pid"; fi
  stat_pids=(); declare -A before=()
  for entry in $procs; do
    name=${entry%%:*}; pid=${entry##*:}
    before[$name]=$(cpu_s "$pid")
    perf stat -x, -e "$events" -p "$pid" -o "$work/stat-$path-$name.csv" & stat_pids+=($!)
  done
  sleep 0.5
  read -r bytes secs < <(downloads "$proxy_url")
  for p in "${stat_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  wait "${stat_pids[@]}" 2>/dev/null || true
  mibs=$(echo "$bytes / 1048576" | bc -l)
  printf '%s: %.0f MiB in %.2f s = %.0f MiB/s\n' "$path" "$mibs" "$secs" "$(echo "$mibs / $secs" | bc -l)" >>"$counts"
  for entry in $procs; do
    name=${entry%%:*}; pid=${entry##*:}
    cpu=$(echo "$(cpu_s "$pid") - ${before[$name]}" | bc -l)
    printf '  %-7s CPU %.2f s/GiB;' "$name" "$(echo "$cpu * 1024 / $mibs" | bc -l)" >>"$counts"
    awk -F, -v mib="$mibs" '$1 ~ /^[0-9]+$/ { split($3, e, ":"); n = e[2] == "" ? $3 : e[2]; sub("sys_enter_", "", n); if ($1 > 0) printf " %s %.1f/MiB", n, $1 / mib } END { print "" }' \
      "$work/stat-$path-$name.csv" >>"$counts"
  done
  unset before
done

# COUNTS_ONLY=1: the counts and rates above only (quick A/B runs of one change), no flame graphs.
[[ -n ${COUNTS_ONLY:-} ]] && { cat "$counts"; exit 0; }

# CPU flame graphs (perf, kernel + JIT frames) of node and agent during one window.
perf record -F 499 -g -p "$node_pid" -o "$work/node.perf" -- sleep 10 >/dev/null 2>&1 & rec1=$!
perf record -F 499 -g -p "$agent_pid" -o "$work/agent.perf" -- sleep 10 >/dev/null 2>&1 & rec2=$!
downloads "$connect_proxy" >/dev/null
wait $rec1 $rec2 || true
for who in node agent; do
  perf script -i "$work/$who.perf" >"$work/$who.perf.txt" 2>/dev/null || true
  python3 bench/profile/flamegraph.py perf "$work/$who.perf.txt" "$out/flame-$who-perf-$label.svg" \
    "connect-$who, perf CPU samples during 1-stream CONNECT downloads ($label)" | tee -a "$counts"
done

# Managed flame graphs (dotnet-trace sample profiler) of node and agent during one window.
if command -v dotnet-trace >/dev/null; then
  dotnet-trace collect -p "$node_pid" --profile dotnet-sampled-thread-time --duration 00:00:00:08 -o "$work/node.nettrace" >/dev/null 2>&1 & tr1=$!
  dotnet-trace collect -p "$agent_pid" --profile dotnet-sampled-thread-time --duration 00:00:00:08 -o "$work/agent.nettrace" >/dev/null 2>&1 & tr2=$!
  sleep 1
  downloads "$connect_proxy" >/dev/null
  wait $tr1 $tr2 || true
  for who in node agent; do
    if dotnet-trace convert --format speedscope -o "$work/$who.speedscope.json" "$work/$who.nettrace" >/dev/null 2>&1; then
      json=$(ls "$work"/$who.speedscope*.json | head -1)
      python3 bench/profile/flamegraph.py speedscope "$json" "$out/flame-$who-managed-$label.svg" \
        "connect-$who, dotnet-trace sampled thread time minus waits, 1-stream CONNECT downloads ($label)" | tee -a "$counts"
    fi
  done
fi
cat "$counts"
