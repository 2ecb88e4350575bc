#!/usr/bin/env bash
# Side-by-side comparison on this machine, loopback only:
#   redis-server alone, twemproxy (nutcracker) in front of redis-server,
#   KVNDB through its Redis-protocol port: `serve --memory` (router and one
#   memory database in one process) and a router with one memory database
#   process,
#   KVNDB with two memory databases, and KVNDB's own protocol (kvndb bench).
# Every target gets `redis-benchmark -c 50 -n N -d 100 -r 100000 -t set` and
# then `-t get`, with -P 1 and -P 16 (N=400000 unless given as the first
# argument; other tests as the second, e.g. "incr setnx", where setnx is
# `SET key:__rand_int__ <100 bytes> NX`). Beside each figure it prints every server process's CPU time per
# request: user + system time from /proc/PID/stat over that run, divided by
# the requests (steadier than throughput on a shared machine). Installs the
# peers from Debian's packages when they are missing. Prints one table.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-400000}
# The tests: set and get unless given, e.g. "incr setnx" (SET key value NX).
OPS=${2:-set get}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
if ! command -v redis-benchmark >/dev/null || ! command -v redis-server >/dev/null ||
  ! command -v nutcracker >/dev/null; then
  echo "Installing redis-server, redis-tools and nutcracker..." >&2
  (apt-get update && apt-get install -y redis-server redis-tools nutcracker) >/dev/null
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "Nothing listens on port $1" >&2
  return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
redis_pid=$!
wait_port "$redis_port"

twem_port=$(free_port)
cat >"$work/nutcracker.yml" <<EOF
kvndb_bench:
  listen: 127.0.0.1:$twem_port
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
    - 127.0.0.1:$redis_port:1
EOF
nutcracker -c "$work/nutcracker.yml" -o "$work/nutcracker.log" &
pids+=($!)
twem_pid=$!
wait_port "$twem_port"

kv1_port=$(free_port)
kv1_resp=$(free_port)
deno run -A main.ts serve 127.0.0.1 "$kv1_port" --memory --resp-port "$kv1_resp" \
  >"$work/kvndb1.log" 2>&1 &
pids+=($!)
serve_pid=$!
wait_port "$kv1_resp"

# start_router NAME DATABASES: a router with its RESP port and DATABASES
# memory database processes; sets NAME_port, NAME_resp and NAME_procs (the
# "label:pid" list of its processes).
start_router() {
  local port resp procs i
  port=$(free_port)
  resp=$(free_port)
  deno run -A main.ts router 127.0.0.1 "$port" --resp-port "$resp" \
    --state none >"$work/$1.log" 2>&1 &
  pids+=($!)
  procs="router:$!"
  wait_port "$resp"
  for i in $(seq 1 "$2"); do
    deno run -A main.ts memory 127.0.0.1 "$port" >>"$work/$1-db.log" 2>&1 &
    pids+=($!)
    procs="$procs db$i:$!"
  done
  printf -v "$1_port" '%s' "$port"
  printf -v "$1_resp" '%s' "$resp"
  printf -v "$1_procs" '%s' "$procs"
}
# wait_ready RESP_PORT COUNT: until COUNT databases are connected and one serves.
wait_ready() {
  for _ in $(seq 1 200); do
    if redis-cli -p "$1" info 2>/dev/null | grep -q "connected_slaves:$2" &&
      redis-cli -p "$1" dbsize 2>/dev/null | grep -qE '^[0-9]+$'; then return 0; fi
    sleep 0.1
  done
  echo "The router on RESP port $1 has not got $2 ready databases" >&2
  return 1
}
start_router kvp 1
start_router kv2 2
wait_ready "$kv1_resp" 1
wait_ready "$kvp_resp" 1
wait_ready "$kv2_resp" 2

# cpu_ticks PID: the process's user + system time so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# measure NAME P OP PROCS COMMAND...: runs COMMAND (which prints
# "requests/s p50 p99"), and prints a table row with each process's CPU time
# per request over the run.
measure() {
  local name=$1 p=$2 op=$3 procs=$4 before=() after=() proc i=0 cpu="" out
  shift 4
  for proc in $procs; do before+=("$(cpu_ticks "${proc#*:}")"); done
  out=$("$@")
  for proc in $procs; do
    after=$(cpu_ticks "${proc#*:}")
    cpu="$cpu${cpu:+, }${proc%%:*} $(awk -v t=$((after - before[i])) -v us="$TICK_US" -v n="$N" 'BEGIN { printf "%.2f", t * us / n }')"
    i=$((i + 1))
  done
  read -r rps p50 p99 <<<"$out"
  printf "| %-40s | %2s | %-5s | %10.0f | %7s | %7s | %-36s |\n" "$name" "$p" "$op" "$rps" "$p50" "$p99" "$cpu"
}

redis_bench() { # port pipeline op -> "rps p50 p99"
  local test=(-t "$3")
  # SET NX is not one of redis-benchmark's tests: run it as a command.
  if [ "$3" = setnx ]; then test=(SET "key:__rand_int__" "$SETNX_VALUE" NX); fi
  redis-benchmark -h 127.0.0.1 -p "$1" -c 50 -n "$N" -d 100 -r 100000 -P "$2" --csv "${test[@]}" 2>/dev/null |
    awk -F'","' 'NR>1 { gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2, $5, $7 }'
}
SETNX_VALUE=$(printf 'x%.0s' $(seq 1 100))
kvndb_bench() { # port pipeline op -> "rps p50 p99"
  deno run -A main.ts bench 127.0.0.1 "$1" -c 50 -n "$N" -d 100 -r 100000 -t "$3" -P "$2" --json |
    deno eval --ext=ts "
      const r = JSON.parse(await new Response(Deno.stdin.readable).text());
      const t = r.results[0];
      console.log(Math.round(t.rps), t.latency.p50.toFixed(3), t.latency.p99.toFixed(3));"
}

echo "Date: $(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg), N=$N, 50 clients, 100-byte values, 100,000 random keys"
echo
echo "| target                                   |  P | op    | requests/s | p50 ms  | p99 ms  | CPU µs per request, per process      |"
echo "| ---------------------------------------- | -- | ----- | ---------: | ------: | ------: | ------------------------------------ |"
for p in 1 16; do
  for op in $OPS; do
    measure "redis-server alone" "$p" "$op" "redis:$redis_pid" redis_bench "$redis_port" "$p" "$op"
    measure "twemproxy + redis-server" "$p" "$op" "twemproxy:$twem_pid redis:$redis_pid" redis_bench "$twem_port" "$p" "$op"
    measure "KVNDB serve --memory, RESP port" "$p" "$op" "serve:$serve_pid" redis_bench "$kv1_resp" "$p" "$op"
    measure "KVNDB router + 1 memory db process, RESP" "$p" "$op" "$kvp_procs" redis_bench "$kvp_resp" "$p" "$op"
    measure "KVNDB, 2 memory dbs, RESP port" "$p" "$op" "$kv2_procs" redis_bench "$kv2_resp" "$p" "$op"
    # kvndb bench has no counters or conditional sets.
    if [ "$op" = set ] || [ "$op" = get ]; then
      measure "KVNDB serve --memory, native (bench)" "$p" "$op" "serve:$serve_pid" kvndb_bench "$kv1_port" "$p" "$op"
    fi
  done
done
