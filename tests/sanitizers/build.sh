#!/usr/bin/env bash
# build.sh tsan|asan DIR TARGET...: configures DIR as a sanitizer build of fdlinkd (reusing it
# when it is already one) and builds TARGETs. Output goes to $OUT/build.log when OUT is set.
#   tsan: gcc, ThreadSanitizer.
#   asan: clang, AddressSanitizer + UndefinedBehaviorSanitizer, with libFuzzer's coverage
#         instrumentation (fuzzer-no-link): the same objects make the daemon the end-to-end
#         tests run and the fuzz targets (FDLINKD_FUZZ), so the library is compiled once.
# Debug info is -g1 (line tables: reports still name file and line), and ASan builds at -O0:
# on runtime.cpp that is 9.6 s against 24.6 s at -O1 -g, and the build was most of the pass.
# (The Debug configuration's own -g is emptied, or it would come after these flags.)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KIND=${1:?tsan or asan}
BUILD=${2:?build directory}
shift 2
LOG=${OUT:-$(mktemp -d)}/build.log
case $KIND in
  tsan) flags="-fsanitize=thread -O1 -g1 -Wno-tsan"
        compilers=() ;;
  asan) CXX=$(command -v clang++-14 || command -v clang++ || true)
        CC=$(command -v clang-14 || command -v clang || true)
        [ -n "$CXX" ] && [ -n "$CC" ] || { echo "sanitizers: asan needs clang (apt-get install clang-14)" >&2; exit 1; }
        flags="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O0 -g1"
        compilers=(-DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DFDLINKD_FUZZ=ON) ;;
  *) echo "usage: build.sh tsan|asan DIR TARGET..." >&2; exit 2 ;;
esac
# A directory configured with another compiler (an older layout) cannot be switched: start over.
if [ -f "$BUILD/CMakeCache.txt" ] && ! grep -q "^FDLINKD_SANITIZER:STRING=$KIND-3\$" "$BUILD/CMakeCache.txt"; then
  rm -rf "$BUILD"
fi
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG= -DCMAKE_C_FLAGS_DEBUG= -DFDLINKD_HARDENING=OFF -DFDLINKD_SANITIZER="$KIND-3" \
  "${compilers[@]}" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
  -DCMAKE_SHARED_LINKER_FLAGS="$flags" -DCMAKE_MODULE_LINKER_FLAGS="$flags" >"$LOG" 2>&1 ||
  { tail -30 "$LOG"; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target "$@" >>"$LOG" 2>&1 ||
  { grep -E "error" "$LOG" | head -30; exit 1; }
