#!/bin/sh
# run-all.sh: Berth's whole test suite, from a fresh clone or a used tree.
#
# Builds and runs "make check" twice: a normal build in build/ and an
# AddressSanitizer/UndefinedBehaviorSanitizer build in build-sanitize/
# (configure --enable-sanitizers), generating ./configure first when it is
# missing; then runs the library's and the daemons' tests in build/ again
# under valgrind memcheck (tests/valgrind.sh; required with CI=true).
# Prints each test's summary lines, and exits non-zero when anything
# failed.  Sets BERTH_TEST_TIME_SCALE for each run, which lengthens the
# tests' deadlines for waits (tests/test-time.h).
#
# Engine tests.  Run as root, with docker.io, podman, runc and
# busybox-static installed, it first starts private container engines once
# for both suites (tests/engines.sh start build-engines: dockerd, Podman's
# API service and a local busybox image, all under build-engines/), exports
# the BERTH_TEST_* variables the engine tests read, and stops the engines
# when it exits, whatever the outcome (on INT and TERM too).  Otherwise it
# says that the engine tests will be skipped and goes on.  With CI=true it
# exports BERTH_REQUIRE_ENGINES=1, so that the engine tests fail rather
# than skip, and fails at once when the engines cannot be started.  Engines
# named by BERTH_TEST_DOCKER_SOCK and BERTH_TEST_RUNC_IMAGES already in the
# environment are used as they are.
#
# Writes only into build/, build-sanitize/ and build-engines/ (and the
# files autoreconf generates; should the tree's path be too long for the
# engines' unix sockets, build-engines/ is a fresh directory under /tmp
# instead, removed at exit); never edits sources.
set -u

cd "$(dirname "$0")/.." || exit 1
root=$(pwd)

ci=false
[ "${CI:-}" = true ] && ci=true

# Engine start-up and shut-down are bounded: engines.sh bounds each of its
# waits, and these bound the whole.
ENGINES_START_TIMEOUT=300
ENGINES_STOP_TIMEOUT=300
engines_dir=
engines_tmp=

stop_engines() {
    if [ -n "$engines_dir" ]; then
        echo "==> stopping the engines under $engines_dir"
        timeout -k 10 "$ENGINES_STOP_TIMEOUT" "$root/tests/engines.sh" stop "$engines_dir" ||
            echo "==> warning: tests/engines.sh stop $engines_dir failed" >&2
        engines_dir=
    fi
    if [ -n "$engines_tmp" ]; then
        rm -rf "$engines_tmp"
        engines_tmp=
    fi
}

trap 'stop_engines' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints why engines cannot run here, or nothing when they can.
engines_missing() {
    if [ "$(id -u)" != 0 ]; then
        echo "not running as root"
        return
    fi
    missing=
    for prog in docker dockerd podman runc curl ip timeout setsid; do
        command -v "$prog" >/dev/null 2>&1 || missing="$missing $prog"
    done
    /bin/busybox --list >/dev/null 2>&1 || missing="$missing busybox-static"
    [ -z "$missing" ] || echo "missing:$missing"
}

# Starts the engines and sources their env file; fails with a message.
start_engines() {
    dir="$root/build-engines"
    # A unix socket path holds at most 107 bytes and the engines make
    # sockets well below DIR (containerd's, Podman's), so DIR stays within
    # 60; engines.sh's env file is sourced, so the path stays plain.
    case $dir in
        *[!A-Za-z0-9/._-]*) dir= ;;
    esac
    if [ -z "$dir" ] || [ ${#dir} -gt 60 ]; then
        engines_tmp=$(mktemp -d /tmp/berth-engines.XXXXXX) || return 1
        dir=$engines_tmp
    fi
    echo "==> starting engines: tests/engines.sh start $dir"
    engines_dir=$dir
    timeout -k 10 "$ENGINES_START_TIMEOUT" "$root/tests/engines.sh" start "$dir" || return 1
    [ -f "$dir/env" ] || {
        echo "tests/engines.sh wrote no $dir/env" >&2
        return 1
    }
    . "$dir/env" || return 1
    export BERTH_TEST_DOCKER_SOCK BERTH_TEST_PODMAN_SOCK BERTH_TEST_RUNC_IMAGES \
        BERTH_TEST_IMAGE
    return 0
}

if [ "$ci" = true ]; then
    BERTH_REQUIRE_ENGINES=1
    export BERTH_REQUIRE_ENGINES
fi

if [ -n "${BERTH_TEST_DOCKER_SOCK:-}" ] && [ -n "${BERTH_TEST_RUNC_IMAGES:-}" ]; then
    echo "==> engines from the environment: $BERTH_TEST_DOCKER_SOCK, $BERTH_TEST_RUNC_IMAGES"
else
    why=$(engines_missing)
    if [ -n "$why" ]; then
        if [ "$ci" = true ]; then
            echo "==> FAILED: CI needs the engine tests, but engines cannot start ($why)" >&2
            exit 1
        fi
        echo "==> engine tests will be skipped ($why; they need root, docker.io, podman, runc and busybox-static)"
    elif ! start_engines; then
        if [ "$ci" = true ]; then
            echo "==> FAILED: CI needs the engine tests, but tests/engines.sh could not start the engines" >&2
            exit 1
        fi
        echo "==> engine tests will be skipped (tests/engines.sh could not start the engines)"
        stop_engines
    fi
fi

if [ ! -x "$root/configure" ]; then
    echo "==> autoreconf -fi"
    autoreconf -fi || exit 1
fi
# Prints the summary of every test log in build directory $1: cmocka's
# count and verdict lines, or a shell test's result.
summarize() {
    for log in "$1"/tests/*.log; do
        [ -f "$log" ] || continue
        name=$(basename "$log" .log)
        lines=$(grep -E '^\[ *(=+|PASSED|FAILED) *\]' "$log")
        if [ -z "$lines" ]; then
            trs="${log%.log}.trs"
            lines=$(sed -n 's/^:test-result: //p' "$trs" 2>/dev/null)
        fi
        printf '%s:\n' "$name"
        printf '%s\n' "$lines" | sed 's/^/    /'
    done
}

# Configures (when needed), builds and checks in build directory $1 with
# configure arguments $2...
suite() {
    dir=$1
    shift
    echo "==> $dir: configure $*"
    mkdir -p "$root/$dir" || return 1
    if [ ! -f "$root/$dir/Makefile" ]; then
        (cd "$root/$dir" && ../configure -q "$@") || return 1
    fi
    echo "==> $dir: make -j2 check"
    (cd "$root/$dir" && make -j2 && make -j2 check)
    rc=$?
    summarize "$root/$dir"
    if [ $rc -ne 0 ] && [ -f "$root/$dir/test-suite.log" ]; then
        echo "==> $dir: test-suite.log"
        cat "$root/$dir/test-suite.log"
    fi
    return $rc
}

# Deadlines of waits scale with how slow each run is (tests/test-time.h):
# two jobs at once on a shared machine, then the sanitizers on top.
status=0
BERTH_TEST_TIME_SCALE=2 suite build || status=1
BERTH_TEST_TIME_SCALE=3 suite build-sanitize --enable-sanitizers || status=1
# The library's and the daemons' tests again under valgrind memcheck, in the
# normal build (tests/valgrind.sh).
echo "==> build: valgrind"
"$root/tests/valgrind.sh" "$root/build"
vrc=$?
if [ $vrc -eq 77 ] && [ "${CI:-}" != true ]; then
    echo "==> valgrind is not installed: the memcheck pass is skipped"
elif [ $vrc -ne 0 ]; then
    status=1
fi
if [ $status -eq 0 ]; then
    echo "==> all tests passed (build, build-sanitize, valgrind)"
else
    echo "==> FAILED"
fi
exit $status
