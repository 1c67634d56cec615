#!/usr/bin/env bash
# Ingress benchmark (not a test): webhook acks/s and latency at 64 connections (wrk -t1 -c64) for
# the full durable route (body limit, allowlist, decode, group-committed insert with
# synchronous=FULL) against two baselines in the same server and run: a bare POST route that
# reads the body and answers, and GET /healthz (the figure issue 18 compares with). The watcher
# runs as in serve (auto-track off: every delivery is marked ignored). Also prints the server's CPU
# time per request (steadier than requests/s on a shared machine). Needs wrk (apt-get install wrk).
# Usage: scripts/bench-ingress.sh [seconds] [--debug]   (BOOKWATCH_BIN=path: that binary, no build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-10}
config=release; [ "${2:-}" = "--debug" ] && config=debug
cd "$root"
if [ -n "${BOOKWATCH_BIN:-}" ]; then
    bin=$BOOKWATCH_BIN
else
    swift build -c "$config" --product bookwatch > /dev/null
    bin="$root/.build/$config/bookwatch"
fi
work=$(mktemp -d)
port=$("$root/scripts/free-port.py" 20000 30000)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
OCROLUS_API_URL=http://127.0.0.1:9 OCROLUS_AUTH_URL=http://127.0.0.1:9/oauth/token OCROLUS_CLIENT_ID=bench OCROLUS_CLIENT_SECRET=bench \
BOOKWATCH_AUTO_TRACK=false BOOKWATCH_BENCH_BARE_ROUTE=1 BOOKWATCH_PORT=$port BOOKWATCH_DATABASE="$work/bench.sqlite" \
    "$bin" serve --log-level critical > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.1; done
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"event_name":"document.verification_succeeded","severity":"LOW","notification_type":"STATUS","book_pk":71400892,"book_uuid":"09c52985-2f05-4022-a738-9277cc335c7e","doc_uuid":"5c12b7b2-8f0e-4c4e-9b51-2a8c1f3f9d10","uploaded_doc_pk":133257741,"uploaded_doc_uuid":"5c12b7b2-8f0e-4c4e-9b51-2a8c1f3f9d10"}'
LUA
# The server's CPU time (utime+stime, clock ticks) around each route's run: CPU per request is a
# steadier figure than requests/s, which moves with whatever else the machine runs.
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
run() {
    local before; before=$(ticks)
    if [ "$1" = /healthz ]; then
        wrk -t1 -c64 -d"${seconds}s" --latency "http://127.0.0.1:$port$1"
    else
        wrk -t1 -c64 -d"${seconds}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port$1"
    fi
    echo "cpu_ticks $(( $(ticks) - before ))"
}
healthz=$(run /healthz); bare=$(run /bench/bare); durable=$(run /webhooks/ocrolus)
rps() { echo "$1" | awk '/Requests\/sec/ {print $2}'; }
cpu() { echo "$1" | awk -v hz="$hz" '/ requests in / {n = $1} /^cpu_ticks/ {t = $2} END {printf "%.1f", t / hz * 1e6 / n}'; }
pct() { echo "$1" | awk -v p="$2" '$1 == p {print $2}'; }
stored=$(python3 -c "import sqlite3; print(sqlite3.connect('$work/bench.sqlite').execute('select count(*) from webhook_inbox').fetchone()[0])")
printf "%-10s %12s %10s %10s %14s\n" route "requests/s" p50 p99 "cpu us/request"
for route in healthz bare durable; do
    out=${!route}
    printf "%-10s %12s %10s %10s %14s\n" "$route" "$(rps "$out")" "$(pct "$out" 50%)" "$(pct "$out" 99%)" "$(cpu "$out")"
done
python3 -c "print(f'durable/healthz: {float(\"$(rps "$durable")\")/float(\"$(rps "$healthz")\"):.2f}; durable/bare: {float(\"$(rps "$durable")\")/float(\"$(rps "$bare")\"):.2f}; rows stored: $stored')"
