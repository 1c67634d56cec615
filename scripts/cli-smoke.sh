#!/usr/bin/env bash
# Smoke test of the CLI contract on a built binary: track, status --json, exit 2 on bad input, demo.
# Usage: scripts/cli-smoke.sh path/to/bookwatch
set -euo pipefail
bin=$(realpath "${1:?usage: cli-smoke.sh path/to/bookwatch}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
echo "cli-smoke: 4 passed, 0 failed"
