#!/usr/bin/env bash
# Builds the libFuzzer target over the webhook decoder and signature parser and runs it.
# Usage: scripts/fuzz.sh [seconds]   (default 600). Not part of CI. See docs/fuzzing.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/Fuzz"
# SwiftPM names a path dependency after its directory, which differs between checkouts.
sed "s/ROOT_PACKAGE/$(basename "$root")/" Package.swift.in > Package.swift
swift build -Xswiftc -sanitize=fuzzer,address
mkdir -p "$root/fuzz-artifacts" work-corpus
cp -n corpus/* work-corpus/ 2>/dev/null || true
./.build/debug/WebhookFuzz work-corpus corpus -max_total_time="${1:-600}" -max_len=4096 \
    -artifact_prefix="$root/fuzz-artifacts/" -print_final_stats=1
