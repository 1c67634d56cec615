#!/usr/bin/env bash
# Smoke test of the CLI contract on a built binary: track, status --json, exit 2 on bad input, demo,
# and the first day's webhook setup (webhooks register/list/check) against `bookwatch simulate`.
# Usage: scripts/cli-smoke.sh path/to/bookwatch
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:?usage: cli-smoke.sh path/to/bookwatch}")
work=$(mktemp -d)
sim_port=$("$(dirname "$0")/free-port.py" 20000 30000 3); serve_port=$((sim_port + 1)); admin_port=$((sim_port + 2))
sim_pid=
serve_pid=
trap 'for p in $sim_pid $serve_pid; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
uuid=0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
fail() { echo "cli-smoke: $*" >&2; exit 1; }

"$bin" track "$uuid" >/dev/null
"$bin" status --json | grep -q '"state" : "tracking"' || fail "status --json does not show the Book in tracking"
before=$(sha256sum bookwatch.sqlite)
set +e
"$bin" track not-a-uuid 2>/dev/null; code=$?
set -e
[ "$code" -eq 2 ] || fail "track not-a-uuid exited $code, expected 2"
[ "$(sha256sum bookwatch.sqlite)" = "$before" ] || fail "a rejected track changed the database"
set +e
"$bin" frobnicate 2>/dev/null; code=$?
set -e
[ "$code" -eq 2 ] || fail "an unknown subcommand exited $code, expected 2"
# The README's first command, smaller: the demo ends, every finished generation retrieved once.
"$bin" demo --books 10 --seconds 8 > demo.out 2>&1 || fail "demo exited $?: $(tail -n 5 demo.out)"
grep -Eq "duplicates: 0$" demo.out || fail "demo retrieved something twice: $(tail -n 12 demo.out)"

# The first day's webhook setup over real sockets: the simulator's management API, and serve
# receiving the registered webhook's deliveries.
"$bin" simulate --books 2 --port "$sim_port" > sim.log 2>&1 &
sim_pid=$!
wait_for "http://127.0.0.1:$sim_port/_sim/stats" 50
export OCROLUS_API_URL="http://127.0.0.1:$sim_port" OCROLUS_AUTH_URL="http://127.0.0.1:$sim_port/oauth/token"
export OCROLUS_CLIENT_ID=smoke OCROLUS_CLIENT_SECRET=smoke-secret BOOKWATCH_PUBLIC_URL="http://127.0.0.1:$serve_port/webhooks/ocrolus"
export BOOKWATCH_PORT="$serve_port" BOOKWATCH_ADMIN_PORT="$admin_port" BOOKWATCH_DATABASE="$work/serve.sqlite"
set +e
"$bin" webhooks check > check-before.out 2>&1; code=$?
set -e
[ "$code" -eq 1 ] || fail "webhooks check with nothing registered exited $code, expected 1"
grep -q "gap: no webhook delivers" check-before.out || fail "webhooks check did not name the missing webhook: $(cat check-before.out)"
id=$("$bin" webhooks register 2>/dev/null) || fail "webhooks register failed"
[ "$id" = 1 ] || fail "webhooks register printed '$id', expected the id 1"
"$bin" webhooks list --json | python3 -c '
import json, sys
hooks = json.load(sys.stdin)
assert [h["id"] for h in hooks] == ["1"], hooks
assert hooks[0]["event_names"] == ["document.upload_succeeded", "document.verification_succeeded", "book.verified", "book.completed", "book.analytics_v2.generated"], hooks
' || fail "webhooks list --json does not show the registration with the default events"
set +e
"$bin" webhooks check > check-after.out 2>&1; code=$?
set -e
# Registered with every event, but no secret on either side yet: exactly those two gaps.
[ "$code" -eq 1 ] && [ "$(grep -c '^gap:' check-after.out)" -eq 2 ] && grep -q "no signing secret is set at Ocrolus" check-after.out \
    || fail "webhooks check after register: exit $code, $(cat check-after.out)"

# rotate-secret: the first run writes the secret and refuses (serve does not run yet) ...
set +e
"$bin" webhooks rotate-secret 1 --secret-file new.secret > rotate1.out 2>&1; code=$?
set -e
[ "$code" -eq 1 ] && [ -s new.secret ] && [ "$(stat -c %a new.secret)" = 600 ] || fail "rotate-secret before serve: exit $code, $(cat rotate1.out)"
grep -q "$(cat new.secret)" rotate1.out && fail "rotate-secret printed the secret"
# ... serve starts with it, the second run rotates at Ocrolus, and the test event is stored.
BOOKWATCH_WEBHOOK_SECRET_FILE="$work/new.secret" "$bin" serve --log-level error > serve.log 2>&1 &
serve_pid=$!
wait_for "http://127.0.0.1:$admin_port/readyz" 100 || fail "serve did not get ready: $(cat serve.log)"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$serve_port/metrics")" = 404 ] || fail "the public port serves /metrics beside --admin-port"
"$bin" webhooks rotate-secret 1 --secret-file new.secret > rotate2.out 2>&1 || fail "rotate-secret with serve accepting it: $(cat rotate2.out)"
"$bin" webhooks test 1 --wait 20 > test.out 2>&1 || fail "webhooks test: $(cat test.out)"
grep -q "signature verified" test.out || fail "the test delivery was not verified: $(cat test.out)"
"$bin" webhooks events 1 --json | python3 -c '
import json, sys
events = json.load(sys.stdin)
assert any(e["event_name"] == "test" and e["http_status"] == 200 for e in events), events
' || fail "webhooks events does not show the test delivered with 200"
BOOKWATCH_WEBHOOK_SECRET_FILE="$work/new.secret" "$bin" webhooks check > check-done.out 2>&1 || fail "webhooks check after setup: $(cat check-done.out)"
"$bin" webhooks update 1 --description "smoke" --json > /dev/null || fail "webhooks update failed"
"$bin" webhooks show 1 | grep -q "description  smoke" || fail "webhooks show does not show the update"
"$bin" webhooks delete 1 > /dev/null || fail "webhooks delete failed"
[ "$("$bin" webhooks list --json)" = "[]" ] || fail "webhooks list after delete is not empty"
echo "cli-smoke: 6 passed, 0 failed"
