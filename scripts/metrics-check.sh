#!/usr/bin/env bash
# Metrics check: `bookwatch serve` as a real process against `bookwatch simulate`, scraped twice.
# Checks that `promtool check metrics` has nothing to say, that the series move between scrapes
# (webhooks, polls, Ocrolus calls, retrievals, HTTP requests), that every metric the alert rules
# and the Grafana dashboard use is exposed, and runs `promtool check rules` and
# `promtool test rules` on deploy/prometheus.
# Usage: scripts/metrics-check.sh path/to/bookwatch
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:?usage: metrics-check.sh path/to/bookwatch}")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
sim_port=$("$(dirname "$0")/free-port.py" 20000 30000 2); serve_port=$((sim_port + 1))
pids=()
cleanup() { for p in "${pids[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
export BOOKWATCH_DATABASE="$work/metrics.sqlite"
secret=whsec-metrics-check-0123456789

"$bin" simulate --books 20 --seed 3 --port "$sim_port" --speed 100 \
    --webhook-url "http://127.0.0.1:$serve_port/webhooks/ocrolus" --webhook-secret "$secret" \
    --drop 0.3 --duplicate 0.2 --api-429 0.05 > sim.log 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$sim_port/_sim/stats" 50 || true
curl -sf "http://127.0.0.1:$sim_port/_sim/stats" | python3 -c 'import sys,json; print(" ".join(t["uuid"] for t in json.load(sys.stdin)["truth"]))' \
    | xargs "$bin" track > /dev/null
OCROLUS_API_URL="http://127.0.0.1:$sim_port" OCROLUS_AUTH_URL="http://127.0.0.1:$sim_port/oauth/token" \
OCROLUS_CLIENT_ID=metrics OCROLUS_CLIENT_SECRET=metrics-secret BOOKWATCH_WEBHOOK_SECRET="$secret" \
BOOKWATCH_PORT="$serve_port" BOOKWATCH_POLL_MIN_SECONDS=2 BOOKWATCH_POLL_MAX_SECONDS=20 BOOKWATCH_ANALYTICS_RETRY_MAX_SECONDS=5 \
    "$bin" serve --log-format json --log-level notice > serve.log 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$serve_port/healthz" || true
# A real Prometheus server scrapes serve every second, as in production.
prom_port=$((serve_port + 1))
cat > prometheus.yml <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$root/deploy/prometheus/bookwatch-rules.yml"]
scrape_configs:
  - job_name: bookwatch
    static_configs: [{targets: ["127.0.0.1:$serve_port"]}]
YML
prometheus --config.file=prometheus.yml --storage.tsdb.path="$work/tsdb" --web.listen-address="127.0.0.1:$prom_port" > prometheus.log 2>&1 &
pids+=($!)
sleep 3
curl -sf "http://127.0.0.1:$serve_port/metrics" > first.prom
curl -sf "http://127.0.0.1:$serve_port/books/00000000-0000-4000-8000-000000000000" > /dev/null || true  # a 404, recorded by route
# The second scrape waits for the first stored retrieval (at least 8 s after the first, at most
# 90 s): on a loaded CI machine the first Book may finish later than on an idle one.
stored() { grep -E '^bookwatch_analytics_retrievals_total\{[^}]*outcome="stored"' "$1" | awk '{s += $NF} END {print s + 0}'; }
for i in $(seq 90); do
    sleep 1
    curl -sf "http://127.0.0.1:$serve_port/metrics" > second.prom || continue
    [ "$i" -ge 8 ] && [ "$(stored second.prom)" != 0 ] && break
done

lint=$(promtool check metrics < second.prom 2>&1) || { echo "metrics-check: promtool check metrics failed: $lint"; exit 1; }
[ -z "$lint" ] || { echo "metrics-check: promtool check metrics reports: $lint"; exit 1; }
promtool check rules "$root/deploy/prometheus/bookwatch-rules.yml" > /dev/null
(cd "$root/deploy/prometheus" && promtool test rules bookwatch-rules.test.yml > /dev/null)

python3 - first.prom second.prom "$root/deploy/prometheus/bookwatch-rules.yml" "$root/deploy/grafana/bookwatch-dashboard.json" <<'PY'
import json, re, sys
def samples(path):
    out = {}
    for line in open(path):
        if line.startswith("#") or not line.strip(): continue
        series, value = line.rsplit(" ", 1)
        out[series] = float(value)
    return out
def total(s, name, *match):
    return sum(v for k, v in s.items() if (k == name or k.startswith(name + "{")) and all(m in k for m in match))
first, second = samples(sys.argv[1]), samples(sys.argv[2])
families = {l.split()[2] for l in open(sys.argv[2]) if l.startswith("# TYPE ")}
exposed = set(families) | {f + s for f in families for s in ("_bucket", "_sum", "_count")}
problems = []
moving = [("bookwatch_webhooks_received_total", 'outcome="accepted"'), ("bookwatch_polls_total",), ("bookwatch_ocrolus_requests_total",),
          ("bookwatch_http_requests_total", 'route="/webhooks/ocrolus"'), ("bookwatch_webhook_ack_seconds_count",)]
for name, *match in moving:
    if total(second, name, *match) <= total(first, name, *match):
        problems.append(f"{name}{match} did not move ({total(first, name, *match)} -> {total(second, name, *match)})")
if total(second, "bookwatch_analytics_retrievals_total", 'outcome="stored"') < 1: problems.append("no analytics stored")
if total(second, "bookwatch_completion_seconds_count") != total(second, "bookwatch_analytics_retrievals_total", 'outcome="stored"'):
    problems.append("completion_seconds_count differs from stored retrievals")
if total(second, "bookwatch_http_requests_total", 'status_code="404"') < 1: problems.append("the 404 was not recorded")
required = ["bookwatch_books", "bookwatch_documents", "bookwatch_webhooks_received_total", "bookwatch_webhook_ack_seconds",
            "bookwatch_inbox_pending", "bookwatch_ocrolus_requests_total", "bookwatch_ocrolus_request_seconds",
            "bookwatch_rate_limiter_wait_seconds", "bookwatch_polls_total", "bookwatch_polls_overdue",
            "bookwatch_analytics_retrievals_total", "bookwatch_analytics_not_ready_total", "bookwatch_completion_seconds",
            "bookwatch_webhook_silence_seconds", "bookwatch_unknown_status_total", "bookwatch_build_info"]
problems += [f"{n} is not exposed" for n in required if n not in families]
used = set(re.findall(r"\bbookwatch_[a-z_]+", open(sys.argv[3]).read() + open(sys.argv[4]).read()))
problems += [f"rules or dashboard use {n}, which is not exposed" for n in sorted(used - exposed)]
json.load(open(sys.argv[4]))
if problems:
    print("metrics-check: " + "; ".join(problems)); sys.exit(1)
stored = int(total(second, "bookwatch_analytics_retrievals_total", 'outcome="stored"'))
polls, hooks = int(total(second, "bookwatch_polls_total")), int(total(second, "bookwatch_webhooks_received_total"))
print(f"metrics-check: {len(families)} families, promtool clean, series moving ({polls} polls, {hooks} webhooks, "
      f"{stored} retrievals); rules and dashboard reference only exposed series")
PY
# Prometheus's query API: the scrape target is up and the series moved within its own storage.
query() { curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'; }
up=$(query 'up{job="bookwatch"}')
polls=$(query 'sum(increase(bookwatch_polls_total[30s]))')
hooks=$(query 'sum(increase(bookwatch_webhooks_received_total{outcome="accepted"}[30s]))')
python3 -c "import sys; sys.exit(0 if '$up' == '1' and float('${polls/none/0}') > 0 and float('${hooks/none/0}') > 0 else 1)" \
    || { echo "metrics-check: Prometheus sees up=$up, poll increase $polls, webhook increase $hooks"; exit 1; }
echo "metrics-check: Prometheus scraped serve: up=$up, polls +$polls and webhooks +$hooks over 30 s"

# --log-format json: every line of serve's log is one JSON object with ts, level, logger, msg.
python3 -c '
import json, sys
lines = [json.loads(l) for l in open("serve.log") if l.strip()]
bad = [l for l in lines if not {"ts", "level", "logger", "msg"} <= l.keys()]
sys.exit(f"metrics-check: log lines without ts/level/logger/msg: {bad[:2]}" if bad else 0)
'
# SIGTERM: a graceful shutdown, exit 0, within 10 s.
serve_pid=${pids[1]}  # simulate, serve, prometheus
kill -TERM "$serve_pid"
for _ in $(seq 100); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$serve_pid" 2>/dev/null; then echo "metrics-check: serve did not stop within 10 s of SIGTERM"; exit 1; fi
wait "$serve_pid" || { echo "metrics-check: serve exited $? after SIGTERM"; tail -3 serve.log; exit 1; }
echo "metrics-check: serve stopped cleanly on SIGTERM"
