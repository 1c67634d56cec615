#!/usr/bin/env bash
# PostgreSQL outage: `serve` on PostgreSQL while the server stops and starts again. A webhook
# during the outage gets 503 (never 200) within seconds (the 10 s call timeout), /readyz says not ready, and both come back
# by themselves once PostgreSQL is back; SIGTERM still exits 0.
# Usage: scripts/with-postgres.sh scripts/postgres-outage.sh path/to/bookwatch
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:?usage: postgres-outage.sh path/to/bookwatch}")
: "${BOOKWATCH_TEST_POSTGRES_URL:?run under scripts/with-postgres.sh}"
: "${BOOKWATCH_PG_DATA:?run under scripts/with-postgres.sh (BOOKWATCH_PG_DATA)}"
pg=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
port=$(python3 -c 'import os; from urllib.parse import urlparse; print(urlparse(os.environ["BOOKWATCH_TEST_POSTGRES_URL"]).port)')
owner=$(stat -c %U "$BOOKWATCH_PG_DATA")
as_owner() { if [ "$(id -un)" = "$owner" ]; then "$@"; else runuser -u "$owner" -- "$@"; fi; }
serve_port=$("$(dirname "$0")/free-port.py" 20000 30000)
log=$(mktemp)
BOOKWATCH_DATABASE="$BOOKWATCH_TEST_POSTGRES_URL?sslmode=disable&schema=outage" OCROLUS_CLIENT_ID=outage OCROLUS_CLIENT_SECRET=outage \
    OCROLUS_API_URL=http://127.0.0.1:9 BOOKWATCH_PORT=$serve_port "$bin" serve --log-level critical > "$log" 2>&1 &
serve_pid=$!
trap 'kill -9 $serve_pid 2>/dev/null || true; rm -f "$log"' EXIT
wait_for "http://127.0.0.1:$serve_port/readyz" || true
failures=0
expect() {  # expect WHAT GOT WANTED
    if [ "$2" = "$3" ]; then echo "postgres-outage: $1: $2"; else echo "postgres-outage: $1: got $2, wanted $3"; failures=$((failures + 1)); fi
}
post() {
    curl -s -o /dev/null -w "%{http_code} %{time_total}" -H 'Content-Type: application/json' -H "Webhook-Request-Id: $1" \
        -d '{"event_name":"document.upload_succeeded","book_uuid":"09c52985-2f05-4022-a738-9277cc335c7e","uploaded_doc_pk":1}' \
        "http://127.0.0.1:$serve_port/webhooks/ocrolus"
}
ready() { curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$serve_port/readyz"; }

read -r code _ <<< "$(post before)"; expect "webhook with PostgreSQL up" "$code" 200
as_owner "$pg/pg_ctl" -D "$BOOKWATCH_PG_DATA" -m fast stop > /dev/null
read -r code seconds <<< "$(post during)"
expect "webhook with PostgreSQL down" "$code" 503
expect "answered within 15 s" "$(python3 -c "print($seconds < 15)")" True
sleep 6
expect "readiness with PostgreSQL down" "$(ready)" 503
as_owner "$pg/pg_ctl" -D "$BOOKWATCH_PG_DATA" -l "$BOOKWATCH_PG_DATA/../server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $BOOKWATCH_PG_DATA/.." start > /dev/null
state=503
for _ in $(seq 30); do state=$(ready); [ "$state" = 200 ] && break; sleep 1; done
expect "readiness once PostgreSQL is back" "$state" 200
read -r code _ <<< "$(post after)"; expect "webhook once PostgreSQL is back" "$code" 200
kill -TERM $serve_pid
status=0; wait $serve_pid || status=$?
expect "SIGTERM exit code" "$status" 0
if [ "$failures" -gt 0 ]; then echo "postgres-outage: 0 passed, 1 failed"; exit 1; fi
echo "postgres-outage: 1 passed, 0 failed"
