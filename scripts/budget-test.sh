#!/usr/bin/env bash
# Budget test (issue 18): `bookwatch serve` replicas on one PostgreSQL database against a simulator
# that enforces the organisation's limit (--rate-limit 5 --rate-burst 25, per real second), with far
# more polling work waiting than the limit allows (no webhooks, short poll intervals). From the
# simulator's own counters, per window: the 429s its limit answered, and the requests it admitted
# per second, for
#   1. baseline: three replicas, each its own bucket at the organisation's figure (before issue 18,
#      when the operator does not divide the rate by hand);
#   2. shared: the same three replicas drawing from the deployment's one budget;
#   3. shared, after one replica is SIGKILLed: its share goes to the other two.
# Checks windows 2 and 3: at most one burst (25) of 429s, and at least 90% of the limit admitted.
# Needs BOOKWATCH_TEST_POSTGRES_URL (scripts/with-postgres.sh sets it).
# Usage: scripts/with-postgres.sh scripts/budget-test.sh path/to/bookwatch [seconds per window]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:?usage: budget-test.sh path/to/bookwatch [seconds per window]}")
window=${2:-20}
: "${BOOKWATCH_TEST_POSTGRES_URL:?run under scripts/with-postgres.sh (BOOKWATCH_TEST_POSTGRES_URL is not set)}"
rate=5
burst=25
work=$(mktemp -d)
schema="budget_$RANDOM$RANDOM"
export BOOKWATCH_DATABASE="$BOOKWATCH_TEST_POSTGRES_URL?sslmode=disable&schema=$schema"
sim_port=$("$(dirname "$0")/free-port.py" 20000 30000 4); ports=($((sim_port + 1)) $((sim_port + 2)) $((sim_port + 3)))
pids=(); serve_pids=()
cleanup() { for p in "${pids[@]}" "${serve_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

"$bin" simulate --books 300 --seed 5 --port "$sim_port" --speed 1 --drop 1 \
    --rate-limit "$rate" --rate-burst "$burst" > sim.log 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$sim_port/_sim/stats" 50
track_simulated "$bin" "$sim_port"

# start_replicas PHASE [ENV...]: three replicas at the organisation's figures.
start_replicas() {
    local phase=$1; shift
    serve_pids=()
    for index in 0 1 2; do
        env "$@" OCROLUS_API_URL="http://127.0.0.1:$sim_port" OCROLUS_AUTH_URL="http://127.0.0.1:$sim_port/oauth/token" \
            OCROLUS_CLIENT_ID=budget OCROLUS_CLIENT_SECRET=budget-secret \
            BOOKWATCH_PORT="${ports[$index]}" BOOKWATCH_POLL_MIN_SECONDS=2 BOOKWATCH_POLL_MAX_SECONDS=20 \
            BOOKWATCH_RATE_LIMIT="$rate" BOOKWATCH_RATE_BURST="$burst" BOOKWATCH_LEASE_SECONDS=60 \
            "$bin" serve --log-level warning > "serve-$phase-$index.log" 2>&1 &
        serve_pids+=($!)
    done
    for port in "${ports[@]}"; do wait_for "http://127.0.0.1:$port/readyz" 300; done
}

stop_replicas() {
    for p in "${serve_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${serve_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    serve_pids=()
}

# sample NAME: the simulator's counters now.
sample() { curl -sf "http://127.0.0.1:$sim_port/_sim/stats" > "$1.json"; date +%s.%N > "$1.time"; }

# measure LABEL: warm up 8 s (the bucket's first burst drains), then one window; prints and records the figures.
measure() {
    sleep 8
    sample "$1-a"; sleep "$window"; sample "$1-b"
    python3 - "$1" "$rate" "$burst" <<'PY' | tee -a figures.txt
import json, sys
label, rate, burst = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
a, b = (json.load(open(f"{label}-{x}.json")) for x in "ab")
seconds = float(open(f"{label}-b.time").read()) - float(open(f"{label}-a.time").read())
admitted = (b["requestsAdmitted"] - a["requestsAdmitted"]) / seconds
limited = b["answersRateLimited"] - a["answersRateLimited"]
print(f"{label}: {admitted + limited / seconds:.2f} requests/s sent, {admitted:.2f}/s admitted ({100 * admitted / rate:.0f}% of {rate:g}/s), "
      f"{limited} answered 429 by the organisation's limit in {seconds:.0f} s")
json.dump({"admitted": admitted, "limited": limited, "seconds": seconds}, open(f"{label}.result", "w"))
PY
}

start_replicas own BOOKWATCH_BENCH_OWN_BUCKET=1
measure "baseline, three replicas, a bucket each"
stop_replicas
# The baseline emptied the organisation's bucket: let it refill (burst / rate), as a real deployment's
# would be between such runs. The shared budget's first burst then counts against the check.
sleep $((burst / rate + 1))
sample shared-start
start_replicas shared
measure "shared budget, three replicas"
disown "${serve_pids[1]}"; kill -9 "${serve_pids[1]}"
while kill -0 "${serve_pids[1]}" 2>/dev/null; do sleep 0.1; done
measure "shared budget, one replica SIGKILLed"
sample shared-end

python3 - "$rate" "$burst" <<'PY'
import json, sys
rate, burst = float(sys.argv[1]), float(sys.argv[2])
start, end = json.load(open("shared-start.json")), json.load(open("shared-end.json"))
limited = end["answersRateLimited"] - start["answersRateLimited"]
problems = []
for label in ("shared budget, three replicas", "shared budget, one replica SIGKILLed"):
    result = json.load(open(f"{label}.result"))
    if result["admitted"] < 0.9 * rate:
        problems.append(f"{label}: {result['admitted']:.2f}/s admitted, under 90% of {rate:g}/s")
if limited > burst:
    problems.append(f"{limited} answered 429 by the organisation's limit while the budget was shared, more than one burst ({burst:g})")
print(f"budget-test: {limited} answered 429 by the organisation's limit from the shared replicas' start to the end")
if problems:
    print("budget-test: " + "; ".join(problems))
    print("budget-test: 0 passed, 1 failed")
    sys.exit(1)
print("budget-test: 1 passed, 0 failed")
PY
