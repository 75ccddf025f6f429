#!/usr/bin/env bash
# run.sh [-r RUNS] [SECONDS] [TARGET...]: builds the fuzz targets in the clang sanitizer build
# (tests/sanitizers/build.sh asan: libFuzzer, ASan, UBSan; the library objects are the ones the
# ASan end-to-end pass uses) and runs each TARGET (default: all) from its committed corpus in
# tests/fuzz/corpus/TARGET for SECONDS (default 20), or for RUNS inputs with -r. Targets run
# side by side, FUZZ_JOBS at a time (default: one per core). New inputs go to a scratch copy
# (with FUZZ_MERGE_INTO=DIR, those that add coverage are merged into DIR/TARGET afterwards); a
# crash prints the input and fails. Exits 77 (skipped) without clang.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=""
if [ "${1:-}" = "-r" ]; then RUNS=$2; shift 2; fi
SECS=${1:-20}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(config frame vlan bridge filter offload stream coalesce vhost virtq virtq_packed)
command -v clang++-14 >/dev/null || command -v clang++ >/dev/null || { echo "fuzz: no clang++; skipped" >&2; exit 77; }
BUILD=${SANITIZER_BUILD_DIR:-$ROOT/build-asan}
export OUT=$(mktemp -d /tmp/fdlinkd-fuzz.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
echo "fuzz: building in $BUILD"
"$ROOT/tests/sanitizers/build.sh" asan "$BUILD" fuzz_targets

fuzz_one() {
  local t=$1 dir="$OUT/$1"
  mkdir -p "$dir/corpus"
  cp "$HERE/corpus/$t"/* "$dir/corpus/"
  local opts=(-print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$dir/" -max_len=8192)
  [ -f "$HERE/$t.dict" ] && opts+=(-dict="$HERE/$t.dict")
  if [ -n "$RUNS" ]; then opts+=(-runs="$RUNS"); else opts+=(-max_total_time="$SECS"); fi
  local rc=0 start=$SECONDS
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$BUILD/tests/fuzz/fuzz_$t" "${opts[@]}" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  local execs rate
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc):"
    grep -vE "^(INFO|#[0-9]|    #)" "$dir/log" | grep -vE "^\s*$" | head -25
    for a in "$dir"/crash-* "$dir"/timeout-* "$dir"/oom-* "$dir"/leak-*; do
      [ -f "$a" ] && { echo "fuzz: input $(basename "$a"):"; od -A d -c "$a" | head -20; }
    done
    return 1
  fi
  if [ -n "${FUZZ_MERGE_INTO:-}" ]; then
    mkdir -p "$FUZZ_MERGE_INTO/$t"
    "$BUILD/tests/fuzz/fuzz_$t" -merge=1 -max_len=8192 "$FUZZ_MERGE_INTO/$t" "$dir/corpus" >"$dir/merge.log" 2>&1
  fi
  echo "fuzz: $t: ${execs:-?} inputs in $((SECONDS - start)) s (${rate:-?}/s), corpus $(ls "$HERE/corpus/$t" | wc -l) -> $(ls "$dir/corpus" | wc -l)"
}
export -f fuzz_one
export HERE BUILD RUNS SECS
printf '%s\n' "${TARGETS[@]}" | xargs -P "${FUZZ_JOBS:-$(nproc)}" -I{} bash -c 'fuzz_one {}'
