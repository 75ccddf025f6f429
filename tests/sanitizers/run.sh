#!/usr/bin/env bash
# run.sh tsan|asan: builds fdlinkd with a sanitizer in its own build directory and runs the
# tests that exercise what that sanitizer checks, once each.
#   tsan: ThreadSanitizer on the multi-worker paths: the bridge with two worker threads (frames
#         crossing workers, learned MACs posted between them), fast_paths with fds = 2 and two
#         workers, a live reload with two workers, the control socket and metrics reading the
#         workers' counters, vhost_user links (rings set up by one thread, used by others), and
#         the unit tests.
#   asan: AddressSanitizer + UndefinedBehaviorSanitizer (clang; the same build makes the fuzz
#         targets, tests/fuzz) on the unit tests and the end-to-end tests that cover each sink
#         and receive mode once.
# Any report fails the run (halt_on_error; reports go to $OUT/*.log and are printed).
# Exits 77 (skipped) when not root (the end-to-end tests need network namespaces).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KIND=${1:?tsan or asan}
[ "$(id -u)" -eq 0 ] || { echo "sanitizers: need root for the end-to-end tests; skipped" >&2; exit 77; }
BUILD=${SANITIZER_BUILD_DIR:-$ROOT/build-$KIND}
OUT=$(mktemp -d "/tmp/fdlinkd-$KIND.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
case $KIND in
  tsan) export TSAN_OPTIONS="halt_on_error=1 exitcode=66 log_path=$OUT/report second_deadlock_stack=1"
        # (fast_paths' ring modes lose frames to the ~10x slowdown: their loss checks fail)
        # (and a live reload with two workers: the switch posted to each, state taken over;
        # two af_xdp links on two workers, each sending to the other's AF_XDP socket; vhost_user
        # links set up by the control thread while workers use their rings: hostile frontends,
        # and testpmd's two queue pairs on two workers)
        e2e=("bridge.sh workers2" "fast_paths.sh readv_sendmmsg" "reload.sh bridge2" "ops.sh control"
             "af_xdp.sh xdp" "vhost_user.sh frontend" "vhost_user.sh testpmd")
        units="*two workers*,*tee*,*graph*,*pcap*" ;;
  asan) export ASAN_OPTIONS="halt_on_error=1 exitcode=66 log_path=$OUT/report detect_leaks=1"
        export UBSAN_OPTIONS="halt_on_error=1 exitcode=66 log_path=$OUT/report print_stacktrace=1"
        # (bridge vlan reads with readv, packet_mmap and recvmmsg; vlan_tags packet_mmap sends
        # through a TX ring; then a TAP, a unix socket, offloads, the filter/tee/pcap sinks, a
        # plugin, and a link going away and coming back; a vxlan link with gro toward its
        # af_packet side, and two VNIs on one socket with a reload; a TPACKET_V2 ring with
        # super-frames read from the socket's queue; an af_xdp link's UMEM, both ways; a vhost_user
        # link with hostile frontends)
        e2e=("bridge.sh vlan" "sinks.sh filter" "plugin.sh" "vnet_offloads.sh plain"
             "vlan_tags.sh packet_mmap" "unix_seqpacket.sh" "tap_afpacket.sh" "link_recovery.sh recvmmsg"
             "reload.sh traffic" "ops.sh control" "unix_stream.sh connect" "backpressure.sh"
             "vxlan_link.sh v4" "vxlan_vnis.sh" "ring_latency.sh v2" "af_xdp.sh afp"
             "vhost_user.sh frontend")
        units="*" ;;
  *) echo "usage: run.sh tsan|asan" >&2; exit 2 ;;
esac

echo "sanitizers: building ($KIND) in $BUILD"
export OUT
"$HERE/build.sh" "$KIND" "$BUILD" fdlinkd fdlinkctl unit_tests mac_rewrite bad_abi_plugin

report() {
  if ls "$OUT"/report* >/dev/null 2>&1; then
    echo "sanitizers: $KIND reported:" >&2
    cat "$OUT"/report* >&2
    exit 1
  fi
}
"$BUILD/tests/unit_tests" "$units" >"$OUT/unit.log" 2>&1 || { tail -20 "$OUT/unit.log"; report; exit 1; }
report
echo "sanitizers: $KIND unit tests clean ($(grep -E 'passed|test cases' "$OUT/unit.log" | tail -1))"
export FDLINKD="$BUILD/daemon/fdlinkd" FDLINKCTL="$BUILD/ctl/fdlinkctl" MAC_REWRITE_PLUGIN="$BUILD/plugins/mac_rewrite.so" \
  BAD_ABI_PLUGIN="$BUILD/tests/bad_abi_plugin.so"
for t in "${e2e[@]}"; do
  set -- $t
  "$ROOT/tests/e2e/$1" "${2:-}" >"$OUT/e2e.log" 2>&1 || { tail -30 "$OUT/e2e.log"; report; echo "sanitizers: $t failed" >&2; exit 1; }
  report
  echo "sanitizers: $KIND e2e $t clean ($(grep -c '^ok:' "$OUT/e2e.log") checks)"
done
echo "sanitizers: $KIND: no report"
