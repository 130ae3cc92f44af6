#!/usr/bin/env bash
# The client-side ceiling of `etcdctl check perf` on this machine.
#
# Runs `etcdctl check perf --load=LOAD` against bench/ceiling, a stand-in KV server that stores
# nothing ("none") or only appends each put to a preallocated file and fdatasyncs it with group
# commit ("fsync"). No real server, ours or etcd, can do better than the "fsync" figure here.
#
# Usage: scripts/bench/ceiling.sh [LOAD] [REPEATS]     (defaults: l 3)
set -euo pipefail
load=${1:-l}
repeats=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
home=${XDG_CACHE_HOME:-$HOME/.cache}/etcd-benchmark
bin="$home/ceiling"

command -v etcdctl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-client; }
command -v go >/dev/null && [[ -d /usr/share/gocode/src/go.etcd.io/etcd ]] ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-etcd-server-dev; }
mkdir -p "$home/gopath" "$home/gocache"
(cd "$root/bench/ceiling" &&
  env GO111MODULE=off GOPATH="$home/gopath:/usr/share/gocode" GOCACHE="$home/gocache" GOFLAGS= GOPROXY=off \
    go build -o "$bin" .)

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
for mode in none fsync; do
  for ((i = 1; i <= repeats; i++)); do
    "$bin" "127.0.0.1:$port" "$mode" &
    pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    verdict=$(etcdctl --endpoints="127.0.0.1:$port" check perf --load="$load" 2>&1 | tr '\r' '\n' | grep -E '^(PASS|FAIL)' | tr '\n' ' ' || true)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "check perf $load, server $mode, run $i: $verdict"
  done
done
