#!/usr/bin/env bash
# The chaos search's mutation check (docs/testing.md): re-introduces each bug of
# scripts/chaos-mutations.py alone, builds a release binary, searches seeds from 1 until an
# invariant breaks (or SEEDS seeds pass). The source is reverted right after each build, and on
# any exit. Usage: scripts/mutation-check.sh [SEEDS] [NAME...]
# About 2 minutes of build and up to ~2 minutes of search per mutation on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-60}
shift || true
names=("$@")
if ((${#names[@]} == 0)); then
    names=(M1-bare404-gone M2-stale-answer-reopens M3-untrack-not-sticky M4-no-fence M5-claim-counts-attempt M6-no-view-after M7-grant-before-token)
fi
git diff --quiet -- Sources || { echo "mutation-check: Sources has uncommitted changes; commit or stash them first" >&2; exit 2; }
scratch=${MUTATION_SCRATCH:-.build/mutations}
mkdir -p "$scratch"
applied=""
# Interrupted (Ctrl-C, a failed build step): the mutation in force is reverted.
trap 'if [[ -n "$applied" ]]; then python3 scripts/chaos-mutations.py "$applied" revert; fi' EXIT
for name in "${names[@]}"; do
    python3 scripts/chaos-mutations.py "$name" apply
    applied=$name
    status=0
    swift build -c release --product bookwatch --scratch-path "$scratch" >"$scratch/$name.log" 2>&1 || status=$?
    python3 scripts/chaos-mutations.py "$name" revert
    applied=""
    if ((status != 0)); then echo "$name: build failed ($scratch/$name.log)"; continue; fi
    out=$("$scratch/release/bookwatch" bench chaos --seed 1 --seeds "$seeds" --steps 1000 --stop-on-failure --jobs 2 2>&1 || true)
    echo "$name: $(grep -E '^searched' <<<"$out")"
    grep -m1 FAILED <<<"$out" || true
done
