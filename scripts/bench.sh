#!/usr/bin/env bash
# The benchmark suite (docs/benchmarks.md): prints figures, fails only if a benchmark cannot run.
#   scripts/bench.sh            full run: strategies at 1,000 Books, scale at 1k/10k/100k, store, ingress,
#                               hot paths (about 40 minutes on 2 cores)
#   scripts/bench.sh --smoke    seconds-long runs of each, to keep them compiling and working
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
smoke=false; [ "${1:-}" = "--smoke" ] && smoke=true
if $smoke; then config=debug; else config=release; fi
swift build -c "$config" --product bookwatch > /dev/null
bin="$root/.build/$config/bookwatch"

echo "== strategies"
if $smoke; then "$bin" bench strategies --books 20 --loss 0,1 --strategies hybrid,hybrid-strict,naive,webhook-only; else "$bin" bench strategies --books 1000 --strategies hybrid,hybrid-strict,naive,webhook-only; fi
echo "== strategies, loss starting after webhooks earned trust"
if $smoke; then "$bin" bench strategies --books 20 --loss 1 --loss-from 1800 --strategies hybrid
else "$bin" bench strategies --books 1000 --loss 0.3,1 --loss-from 1800 --strategies hybrid,hybrid-strict; fi
echo "== the adversary's worlds (issue 14): polls every 1-5 s with 5xx and bare 404s; answers up to 8 s late"
if $smoke; then "$bin" bench strategies --books 10 --loss 0.3 --rate 20 --world adversary --strategies hybrid
else
    "$bin" bench strategies --books 200 --loss 0.3 --rate 20 --world adversary --strategies hybrid,hybrid-strict
    "$bin" bench strategies --books 1000 --loss 0 --world slow-answers --strategies hybrid,webhook-only
fi
echo "== scale"
if $smoke; then "$bin" bench scale --books 200 --idle-seconds 1; else "$bin" bench scale --books 1000,10000,100000; fi
echo "== store (SQLite vs PostgreSQL)"
if ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1; then
    books=2000; $smoke && books=20
    scripts/with-postgres.sh sh -c "\"$bin\" bench store --books $books --workers 1,3,6 --postgres \"\$BOOKWATCH_TEST_POSTGRES_URL?sslmode=disable\""
else
    "$bin" bench store --books 200 --workers 1,3
    echo "PostgreSQL server binaries not installed (apt-get install postgresql): SQLite only"
fi
echo "== ingress"
if command -v wrk > /dev/null; then
    if $smoke; then scripts/bench-ingress.sh 1 --debug; else scripts/bench-ingress.sh 10; fi
else
    echo "wrk not installed (apt-get install wrk): ingress skipped"
fi
echo "== hot paths"
if $smoke; then
    (cd Benchmarks && swift package --disable-sandbox benchmark --benchmark-build-configuration debug --no-progress)
else
    (cd Benchmarks && swift package --disable-sandbox benchmark --no-progress)
fi
