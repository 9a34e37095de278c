#!/usr/bin/env bash
# Runs the whole Connect benchmark suite on this machine (loopback only) and regenerates docs/BENCHMARKS.md.
#   bench/run.sh            full run (1 GiB transfers, 3 runs each; ~20 min)
#   bench/run.sh --quick    smoke run (64 MiB, 1 run; a few minutes), labelled QUICK in the doc
#   bench/run.sh --scenario bulk-download[,small-connect,...]
#                           only those scenarios, no microbenchmarks and no perf profile; the report goes to
#                           bench/results/scenario/ (docs/BENCHMARKS.md is left alone): for measuring one change
#                           against the squid of the same run. Scenarios: bulk-download bulk-upload bulk-absolute
#                           small-absolute small-connect open-rate fairness stream-memory scale drain.
# BENCH_SKIP_BUILD=1 skips the Release build (for repeated scenario runs of one build).
# Extra arguments go to connect-bench (e.g. --only bulk-download,scale).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

quick=()
micro_job=(--job short)
extra=()
scenario=""
next_is_scenario=0
for arg in "$@"; do
  if [[ $next_is_scenario == 1 ]]; then scenario=$arg; next_is_scenario=0; continue; fi
  case "$arg" in
    --quick) quick=(--quick); micro_job=(--job dry) ;;
    --scenario) next_is_scenario=1 ;;
    --scenario=*) scenario=${arg#--scenario=} ;;
    *) extra+=("$arg") ;;
  esac
done
[[ $next_is_scenario == 1 ]] && { echo "--scenario needs a value (e.g. bulk-download)" >&2; exit 2; }

# 5,000 idle links plus proxy connections need file descriptors in the node and in the bench process.
ulimit -n "$(ulimit -Hn)" || true
echo "file descriptor limit: $(ulimit -n)"

if ! command -v squid >/dev/null 2>&1; then
  echo "installing squid (Debian package)"
  apt-get install -y squid >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y squid >/dev/null; }
fi

echo "building Release"
[[ -n ${BENCH_SKIP_BUILD:-} ]] && echo "(skipped: BENCH_SKIP_BUILD is set)" || for project in src/Connect.Host src/Connect.Client bench/Connect.Bench bench/Connect.Bench.Micro; do
  dotnet build -c Release "$project" -nologo -v quiet >/dev/null
done

# squid: minimal config in a temp dir, loopback only, no cache, no access log, CONNECT to any port.
work=$(mktemp -d /tmp/connect-bench.XXXXXX)
chmod 777 "$work"
squid_pid=""
cleanup() {
  if [[ -n "$squid_pid" ]] && kill -0 "$squid_pid" 2>/dev/null; then
    kill -TERM "$squid_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$squid_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$squid_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
squid_port=""
for _ in $(seq 1 50); do
  candidate=$((20000 + RANDOM % 10000))
  if port_free "$candidate"; then squid_port=$candidate; break; fi
done
[[ -n "$squid_port" ]] || { echo "no free port for squid" >&2; exit 1; }

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
max_filedescriptors 16384
forwarded_for delete
via off
CONF
squid -N -f "$work/squid.conf" &
squid_pid=$!
for _ in $(seq 1 100); do
  if ! port_free "$squid_port"; then break; fi
  sleep 0.1
done
port_free "$squid_port" && { echo "squid did not start; its log:" >&2; cat "$work/cache.log" >&2 || true; exit 1; }
squid_version=$(squid -v | head -1 | sed 's/Squid Cache: Version //')
echo "squid $squid_version on 127.0.0.1:$squid_port (pid $squid_pid)"

if [[ -n "$scenario" ]]; then
  mkdir -p bench/results/scenario
  echo "scenario run: $scenario (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  dotnet bench/Connect.Bench/bin/Release/net10.0/connect-bench.dll suite \
    --repo "$repo" --out bench/results/scenario --doc bench/results/scenario/BENCHMARKS.md \
    --squid-port "$squid_port" --squid-pid "$squid_pid" --squid-version "$squid_version" \
    --command "bench/run.sh --scenario $scenario${quick:+ --quick}" --only "$scenario" "${quick[@]}" "${extra[@]}"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi

mkdir -p bench/results
echo "microbenchmarks (BenchmarkDotNet ${micro_job[*]})"
rm -rf bench/results/micro
(cd bench/results && dotnet "$repo/bench/Connect.Bench.Micro/bin/Release/net10.0/Connect.Bench.Micro.dll" \
  --filter '*' "${micro_job[@]}" --inProcess --artifacts "$repo/bench/results/micro" --exporters github >"$repo/bench/results/micro.log" 2>&1) \
  || echo "microbenchmarks failed; see bench/results/micro.log"

command_line="bench/run.sh${quick:+ --quick}"
[[ ${#extra[@]} -gt 0 ]] && command_line+=" ${extra[*]}"
dotnet bench/Connect.Bench/bin/Release/net10.0/connect-bench.dll suite \
  --repo "$repo" --out bench/results --doc docs/BENCHMARKS.md --micro bench/results/micro \
  --squid-port "$squid_port" --squid-pid "$squid_pid" --squid-version "$squid_version" \
  --profile --command "$command_line" "${quick[@]}" "${extra[@]}"
