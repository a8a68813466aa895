#!/bin/sh
# Runs wrk against one HTTP endpoint at 1, 16, 64 and 256 connections (one request
# in flight on each, keep-alive), puts first (they also fill the keys the gets
# read), then gets, and prints one line per run:
#   put|get CONNS requests/s p50 p99 (load average) [errors]
# Usage: wrk-table.sh URL kv|etcd [SECONDS [CONNS...]]
#   kv-example: kv-example/bench/wrk-table.sh http://127.0.0.1:9001 kv 10
#   etcd:       kv-example/bench/wrk-table.sh http://127.0.0.1:2379 etcd 10
# GET_OP=stale reads kv-example with ?stale instead.
set -eu
url=$1; system=$2; secs=${3:-10}
script=$(dirname "$0")/wrk.lua
shift 2; [ $# -gt 0 ] && shift
conns=${*:-1 16 64 256}
run() {
    op=$1; c=$2
    threads=2; [ "$c" -lt 2 ] && threads=1
    out=$(wrk -t"$threads" -c"$c" -d"${secs}s" --latency -s "$script" "$url" -- "$system" "$op" 10000)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s ", $0}')
    printf '%-5s %4s conns %10s req/s  p50 %8s  p99 %8s  (load %s) %s\n' "$op" "$c" "$rps" \
        "$p50" "$p99" "$(cut -d' ' -f1-3 /proc/loadavg)" "$errors"
}
for c in $conns; do run put "$c"; done
for c in $conns; do run "${GET_OP:-get}" "$c"; done
