#!/bin/sh
# fuzz.sh: builds Berth's libFuzzer targets with clang and runs each for a
# bounded time.
#
# The targets (tests/fuzz/fuzz_*.c) are compiled with
# -fsanitize=fuzzer,address,undefined in $top_builddir/fuzz-build/, together
# with libberth's sources (core/*/*.c and the lib/ files it compiles,
# compiled there too: the build's own objects come from whatever compiler
# configure found) and the berthd files each reads through:
#
#   document   ACI group documents (libberth alone)
#   record     the msgpack records in Redis (libberth alone)
#   request    paths, queries, headers, bodies: tools/berthd/resource.c,
#              query.c (libevent's evhttp decodes queries), apiversions.c
#   body       NGroup and pool bodies: tools/berthd/bodies.c, resource.c
#   inventory  host inventories (libberth alone)
#   ws         a WebSocket exec client's bytes: tools/berthd/wsproto.c,
#              framed by wslay (linked from the system, not instrumented)
#   head       a request's raw head as it arrives: tools/berthd/httphead.c
#   wsanswer   berthd's answer to berthctl's WebSocket upgrade:
#              tools/berthctl/wsanswer.c
#
# Each fuzzer starts from a copy of its seed corpus
# (tests/fuzz/corpus/<target>/, never written to) plus its regressions, and
# runs for BERTH_FUZZ_SECONDS (default 20) seconds; the targets run side by
# side, each under `timeout`, so the whole takes about BERTH_FUZZ_SECONDS
# plus the build: 100 s in all from an empty fuzz-build/ on two cores (75 s
# compiling libberth and linking the eight; the objects are kept and
# rebuilt only when a source changes).
#
# A crash, leak, sanitizer report, time-out (10 s for one input) or broken
# invariant fails the test: the input is saved as
# fuzz-build/artifacts/<target>/crash-* (leak-*, timeout-*, oom-*) and the
# log's end is printed.  Fix the bug, then copy the input into
# tests/fuzz/regressions/<target>/ so every "make check" replays it.
#
# Exits 77 (skipped) when clang or its libFuzzer runtime is missing (Debian:
# apt-get install -y clang libclang-rt-14-dev), unless BERTH_REQUIRE_ENGINES=1
# or CI=true, which make that a failure.
#
# Environment: top_srcdir, top_builddir (set by "make check"; default: this
# script's source tree, the current directory); BERTH_FUZZ_SECONDS;
# BERTH_FUZZ_TARGETS (default all eight, as listed above); BERTH_FUZZ_CC
# (default clang).
set -eu

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=.}"
secs=${BERTH_FUZZ_SECONDS:-20}
targets=${BERTH_FUZZ_TARGETS:-document record request body inventory ws head wsanswer}
cc=${BERTH_FUZZ_CC:-clang}
src=$(cd "$top_srcdir" && pwd)
mkdir -p "$top_builddir/fuzz-build"
out=$(cd "$top_builddir/fuzz-build" && pwd)

required=false
if [ "${BERTH_REQUIRE_ENGINES:-}" = 1 ] || [ "${CI:-}" = true ]; then
    required=true
fi
skip() {
    if $required; then
        echo "fuzz: FAILED: $1 (required: BERTH_REQUIRE_ENGINES=1 or CI=true)"
        exit 1
    fi
    echo "fuzz: skipped: $1"
    exit 77
}

case $secs in
    '' | *[!0-9]*) echo "fuzz: BERTH_FUZZ_SECONDS must be a number of seconds"; exit 1 ;;
esac
command -v "$cc" >/dev/null 2>&1 ||
    skip "$cc not found (Debian: apt-get install -y clang libclang-rt-14-dev)"
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$out/probe.c"
"$cc" -fsanitize=fuzzer,address,undefined "$out/probe.c" -o "$out/probe" >"$out/probe.log" 2>&1 ||
    skip "$cc cannot link libFuzzer (Debian: apt-get install -y libclang-rt-14-dev)"

if pkg-config --exists msgpack-c 2>/dev/null; then msgpack="msgpack-c"; else msgpack="msgpack"; fi
modules="jansson hiredis $msgpack libevent_core libevent_extra libcrypto"
# shellcheck disable=SC2086 # word lists
pkg-config --exists $modules || { echo "fuzz: pkg-config cannot find $modules"; exit 1; }
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# shellcheck disable=SC2086 # word lists
cflags="-std=gnu11 -g -O1 $san -I$src -I$src/core -I$src/core/base -I$src/core/model
    -I$src/core/engine -I$src/core/store -I$src/core/services -I$src/tools/berthd -I$src/tests/fuzz
    -DBERTH_BUILDING $(pkg-config --cflags $modules)"
# shellcheck disable=SC2086 # word lists
libs="$(pkg-config --libs $modules) -ldl -lm"

# libberth's objects, instrumented for coverage; rebuilt when a source, a
# header or this script is newer than the object.  In parallel, one job per source.
mkdir -p "$out/obj" "$out/logs"
pids=
objs=
for c in "$src"/core/*/*.c "$src"/lib/base64.c "$src"/lib/clock.c "$src"/lib/random.c; do
    o="$out/obj/$(basename "$c" .c).o"
    objs="$objs $o"
    if [ -f "$o" ] && [ -z "$(find "$c" "$src"/core/*.h "$src"/core/*/*.h "$src"/lib/*.h "$src/tests/fuzz.sh" -newer "$o" 2>/dev/null)" ]; then
        continue
    fi
    # shellcheck disable=SC2086 # flags are word lists
    timeout 300 "$cc" $cflags -fsanitize=fuzzer-no-link -c "$c" -o "$o" \
        >"$out/logs/$(basename "$c" .c).log" 2>&1 &
    pids="$pids $!"
done
failed=false
for p in $pids; do
    wait "$p" || failed=true
done
if $failed; then
    cat "$out"/logs/*.log
    echo "fuzz: compiling libberth with $cc failed"
    rm -f "$out"/obj/*.o
    exit 1
fi

dict() {
    [ -f "$src/tests/fuzz/$1.dict" ] && echo "-dict=$src/tests/fuzz/$1.dict"
    return 0
}

# Link and start every target, then wait for them all.
run=$(mktemp -d "$out/run.XXXXXX")
trap 'rm -rf "$run"' EXIT INT TERM
for t in $targets; do
    extra=
    [ "$t" = request ] && extra="$src/tools/berthd/resource.c $src/tools/berthd/query.c $src/tools/berthd/apiversions.c"
    [ "$t" = body ] && extra="$src/tools/berthd/bodies.c $src/tools/berthd/resource.c"
    # wslay has no pkg-config module on Debian.
    [ "$t" = ws ] && extra="$src/tools/berthd/wsproto.c -lwslay"
    [ "$t" = head ] && extra="$src/tools/berthd/httphead.c"
    [ "$t" = wsanswer ] && extra="-I$src/tools/berthctl $src/tools/berthctl/wsanswer.c"
    # shellcheck disable=SC2086 # flags are word lists
    if ! timeout 300 "$cc" $cflags -fsanitize=fuzzer "$src/tests/fuzz/fuzz_$t.c" $extra $objs \
            $libs -o "$out/fuzz-$t" >"$out/logs/link-$t.log" 2>&1; then
        cat "$out/logs/link-$t.log"
        echo "fuzz: building fuzz-$t failed"
        exit 1
    fi
done
for t in $targets; do
    mkdir -p "$run/$t" "$out/artifacts/$t"
    cp -R "$src/tests/fuzz/corpus/$t/." "$run/$t/"
    # shellcheck disable=SC2046 # dict prints one word or none
    timeout $((secs + 120)) "$out/fuzz-$t" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 $(dict "$t") \
        -artifact_prefix="$out/artifacts/$t/" "$run/$t" "$src/tests/fuzz/regressions/$t" \
        >"$out/logs/run-$t.log" 2>&1 &
    echo "$!" >"$run/$t.pid"
done
status=0
for t in $targets; do
    if wait "$(cat "$run/$t.pid")"; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/logs/run-$t.log")
        echo "fuzz: $t: ${runs:-?} inputs in ${secs} s, no crash"
    else
        status=1
        tail -n 60 "$out/logs/run-$t.log"
        echo "fuzz: $t FAILED (log: $out/logs/run-$t.log); saved inputs:"
        find "$out/artifacts/$t" -type f | sed 's|^|  |'
    fi
done
exit $status
