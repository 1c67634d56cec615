#!/usr/bin/env bash
# Migrate test (issue 18): `bookwatch serve` on SQLite against `bookwatch simulate` (lossy
# webhooks, reopens), stopped mid-run; `bookwatch migrate --to postgres://...` copies its database;
# two replicas carry on on PostgreSQL until the scenario ends. Checks, from the simulator's own
# counters and the PostgreSQL database: every Book complete (or deleted/failed), every finished
# generation retrieved, no (Book, generation, endpoint) answered 200 twice, each stored once, and
# every delivery answered 200 (before or after the switch) in the inbox and processed.
# Needs BOOKWATCH_TEST_POSTGRES_URL (scripts/with-postgres.sh sets it).
# Usage: scripts/with-postgres.sh scripts/migrate-test.sh path/to/bookwatch [books]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:?usage: migrate-test.sh path/to/bookwatch [books]}")
books=${2:-30}
: "${BOOKWATCH_TEST_POSTGRES_URL:?run under scripts/with-postgres.sh (BOOKWATCH_TEST_POSTGRES_URL is not set)}"
work=$(mktemp -d)
schema="migrate_$RANDOM$RANDOM"
postgres="$BOOKWATCH_TEST_POSTGRES_URL?sslmode=disable&schema=$schema"
sim_port=$("$(dirname "$0")/free-port.py" 20000 30000 3); ports=($((sim_port + 1)) $((sim_port + 2)))
pids=(); serve_pids=()
cleanup() { for p in "${pids[@]}" "${serve_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
secret=whsec-migrate-test-0123456789
urls=$(printf 'http://127.0.0.1:%s/webhooks/ocrolus,' "${ports[@]}"); urls=${urls%,}

"$bin" simulate --books "$books" --seed 12 --port "$sim_port" --speed 50 --flavour mixed \
    --webhook-url "$urls" --webhook-secret "$secret" --drop 0.2 --duplicate 0.2 --reorder 0.2 > sim.log 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$sim_port/_sim/stats" 50

# serve DATABASE INDEX: one replica (its port takes half the webhook attempts; the other port's
# attempts fail while it is down, and Ocrolus retries them).
serve() {
    BOOKWATCH_DATABASE="$1" OCROLUS_API_URL="http://127.0.0.1:$sim_port" OCROLUS_AUTH_URL="http://127.0.0.1:$sim_port/oauth/token" \
    OCROLUS_CLIENT_ID=migrate OCROLUS_CLIENT_SECRET=migrate-secret BOOKWATCH_WEBHOOK_SECRET="$secret" \
    BOOKWATCH_PORT="${ports[$2]}" BOOKWATCH_POLL_MIN_SECONDS=2 BOOKWATCH_POLL_MAX_SECONDS=20 BOOKWATCH_ANALYTICS_RETRY_MAX_SECONDS=5 \
        "$bin" serve --log-level warning > "serve-$2-$(date +%s%N).log" 2>&1 &
    serve_pids+=($!)
    wait_for "http://127.0.0.1:${ports[$2]}/readyz" 300
}

BOOKWATCH_DATABASE="$work/node.sqlite" track_simulated "$bin" "$sim_port"
serve "$work/node.sqlite" 0
# Mid-run: once about a third of the Books have been retrieved (others processing, some jobs open).
retrieved() { curl -sf "http://127.0.0.1:$sim_port/_sim/stats" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["analyticsOKByKey"]))'; }
until [ "$(retrieved)" -ge $((books / 3)) ] || [ "$SECONDS" -ge 120 ]; do sleep 0.5; done
kill -TERM "${serve_pids[0]}"; wait "${serve_pids[0]}" || true; serve_pids=()
before=$(curl -sf "http://127.0.0.1:$sim_port/_sim/stats" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["analyticsOKByKey"]))')
"$bin" migrate --database "$work/node.sqlite" --to "$postgres" --force --batch-rows 7 > migrate.log
echo "migrate-test: stopped the SQLite node after $before retrievals; migrate copied $(tr '\n' ' ' < migrate.log | sed 's/copied .*//')"
serve "$postgres" 0
serve "$postgres" 1

check() {
    curl -sf "http://127.0.0.1:$sim_port/_sim/stats" > stats.json
    python3 - stats.json "$1" <<'PY'
import json, os, subprocess, sys
from urllib.parse import urlparse, parse_qs
stats, final = json.load(open(sys.argv[1])), sys.argv[2] == "final"
url = urlparse(os.environ["MIGRATE_TEST_DATABASE"])
env = dict(os.environ, PGPASSWORD=url.password or "", PGOPTIONS=f"-c search_path={parse_qs(url.query)['schema'][0]}")
def query(sql):
    out = subprocess.run(["psql", "-h", url.hostname, "-p", str(url.port), "-U", url.username, "-d", url.path.lstrip("/"),
                          "-AtF", "|", "-c", sql], env=env, check=True, capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines() if line]
states = dict(query("SELECT uuid, state FROM books"))
stored = query("SELECT book_uuid, generation, endpoint, COUNT(*) FROM analytics_results GROUP BY 1, 2, 3")
inbox = {r[0] for r in query("SELECT request_id FROM webhook_inbox WHERE request_id IS NOT NULL")}
unprocessed = int(query("SELECT COUNT(*) FROM webhook_inbox WHERE processed_at IS NULL")[0][0])
superseded = int(query("SELECT COUNT(*) FROM analytics_jobs WHERE state = 'superseded'")[0][0])
keys = stats["analyticsOKByKey"]
problems = []
unfinished = [t["uuid"] for t in stats["truth"] if t["finishedByNow"] < t["finishedGenerations"]]
if unfinished: problems.append(f"the scenario is still running for {len(unfinished)} Books")
twice = [k for k, v in keys.items() if v > 1]
if twice: problems.append(f"retrieved twice: {twice[:3]}")
if any(int(r[3]) > 1 for r in stored): problems.append("a result stored twice")
if len(stored) > len(keys) or len(keys) - len(stored) > superseded:
    problems.append(f"{len(stored)} results stored for {len(keys)} retrievals and {superseded} superseded generations")
for t in stats["truth"]:
    if t.get("deletedAt") is None:
        last = f'{t["uuid"]}:{t["finishedGenerations"]}:summary'
        if t["finishedGenerations"] and last not in keys: problems.append(f"{t['uuid']} generation {t['finishedGenerations']} not retrieved")
        if states.get(t["uuid"]) != "complete": problems.append(f"{t['uuid']} is {states.get(t['uuid'])}")
missing = [i for i in stats["acceptedRequestIDs"] if i not in inbox]
if missing: problems.append(f"{len(missing)} deliveries answered 200 are not in the inbox")
if unprocessed: problems.append(f"{unprocessed} inbox rows not processed yet")
if problems:
    if final: print("migrate-test: " + "; ".join(problems[:6]))
    sys.exit(1)
print(f"migrate-test: {len(keys)} retrievals, each once and stored once ({superseded} superseded by a reopen); "
      f"{len(stats['acceptedRequestIDs'])} deliveries answered 200, all in the inbox and processed; every Book complete")
PY
}
export MIGRATE_TEST_DATABASE="$postgres"
deadline=$((SECONDS + 240))
until check progress > /dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then check final || true; echo "migrate-test: 0 passed, 1 failed"; exit 1; fi
    sleep 2
done
check final
echo "migrate-test: 1 passed, 0 failed"
