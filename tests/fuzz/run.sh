#!/usr/bin/env bash
# run.sh [SECONDS]: builds the offload fuzz target with clang (libFuzzer, ASan, UBSan) and
# runs it from the seed corpus for SECONDS (default 20). Exits 77 (skipped) without clang.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${1:-20}
CXX=$(command -v clang++-14 || command -v clang++ || true)
[ -n "$CXX" ] || { echo "fuzz: no clang++; skipped" >&2; exit 77; }
OUT=$(mktemp -d /tmp/fdlinkd-fuzz.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
"$CXX" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$ROOT/lib" "$HERE/offload_fuzz.cpp" "$ROOT"/lib/offload/*.cpp "$ROOT/lib/writer/egress.cpp" \
  "$ROOT/lib/core/batch.cpp" "$ROOT/lib/core/worker.cpp" \
  "$ROOT/lib/core/counters.cpp" -o "$OUT/offload_fuzz"
mkdir -p "$OUT/corpus"
cp "$HERE"/corpus/* "$OUT/corpus/"
"$OUT/offload_fuzz" -max_total_time="$SECS" -print_final_stats=1 "$OUT/corpus" 2>&1 |
  grep -E "stat::number_of_executed_units|stat::new_units_added|ERROR|SUMMARY" || true
# libFuzzer exits non-zero on a crash; PIPESTATUS keeps that.
exit "${PIPESTATUS[0]}"
