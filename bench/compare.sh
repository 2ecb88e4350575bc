#!/usr/bin/env bash
# Side-by-side comparison on this machine, loopback only:
#   redis-server alone, twemproxy (nutcracker) in front of redis-server,
#   KVNDB through its Redis-protocol port: `serve --memory` (router and one
#   memory database in one process) and a router with one memory database
#   process,
#   KVNDB with two memory databases, and KVNDB's own protocol (kvndb bench).
# Every target gets `redis-benchmark -c 50 -n N -d 100 -t set,get` with -P 1
# and -P 16 (N=200000 unless given as the first argument). Installs the peers
# from Debian's packages when they are missing. Prints one table.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
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
wait_port "$twem_port"

kv1_port=$(free_port)
kv1_resp=$(free_port)
deno run -A main.ts serve 127.0.0.1 "$kv1_port" --memory --resp-port "$kv1_resp" \
  >"$work/kvndb1.log" 2>&1 &
pids+=($!)
wait_port "$kv1_resp"

# start_router NAME DATABASES: a router with its RESP port and DATABASES
# memory database processes; sets NAME_port and NAME_resp.
start_router() {
  local port resp
  port=$(free_port)
  resp=$(free_port)
  deno run -A main.ts router 127.0.0.1 "$port" --resp-port "$resp" \
    --state none >"$work/$1.log" 2>&1 &
  pids+=($!)
  wait_port "$resp"
  for _ in $(seq 1 "$2"); do
    deno run -A main.ts memory 127.0.0.1 "$port" >>"$work/$1-db.log" 2>&1 &
    pids+=($!)
  done
  printf -v "$1_port" '%s' "$port"
  printf -v "$1_resp" '%s' "$resp"
}
start_router kvp 1
start_router kv2 2
sleep 2

run_redis_benchmark() { # name port pipeline
  redis-benchmark -h 127.0.0.1 -p "$2" -c 50 -n "$N" -d 100 -t set,get -P "$3" --csv 2>/dev/null |
    awk -F'","' -v name="$1" -v p="$3" 'NR>1 { gsub(/"/, "", $1); gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7);
      printf "| %-40s | %2s | %-3s | %10.0f | %7s | %7s |\n", name, p, $1, $2, $5, $7 }'
}
run_kvndb_bench() { # name port pipeline
  deno run -A main.ts bench 127.0.0.1 "$2" -c 50 -n "$N" -d 100 -t set,get -P "$3" --json |
    deno eval --ext=ts "
      const r = JSON.parse(await new Response(Deno.stdin.readable).text());
      for (const t of r.results) console.log('| ' + '$1'.padEnd(40) + ' | ' + String($3).padStart(2) + ' | ' + t.test.toUpperCase().padEnd(3) + ' | ' + Math.round(t.rps).toString().padStart(10) + ' | ' + t.latency.p50.toFixed(3).padStart(7) + ' | ' + t.latency.p99.toFixed(3).padStart(7) + ' |');"
}

echo "Date: $(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, N=$N, 50 clients, 100-byte values"
echo
echo "| target                                   |  P | op  |   requests/s | p50 ms  | p99 ms  |"
echo "| ---------------------------------------- | -- | --- | ----------: | ------: | ------: |"
for p in 1 16; do
  run_redis_benchmark "redis-server alone" "$redis_port" "$p"
  run_redis_benchmark "twemproxy + redis-server" "$twem_port" "$p"
  run_redis_benchmark "KVNDB serve --memory, RESP port" "$kv1_resp" "$p"
  run_redis_benchmark "KVNDB router + 1 memory db process, RESP" "$kvp_resp" "$p"
  run_redis_benchmark "KVNDB, 2 memory dbs, RESP port" "$kv2_resp" "$p"
  run_kvndb_bench "KVNDB serve --memory, native (bench)" "$kv1_port" "$p"
done
