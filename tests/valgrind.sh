#!/bin/sh
# valgrind.sh: the library's and the daemons' tests under valgrind memcheck.
#
#   tests/valgrind.sh BUILD-DIR
#
# Runs, from an already built (and checked) build directory, every cmocka
# test of the library, then the daemon tests (test_berthd,
# test_berthd_server, test_agent, test_preempt, test_ngroups, test_pool,
# test_berthd_ws: the interactive sessions' threads in the agent)
# with berthd and berth-agent under valgrind (through $BERTH_TEST_BERTHD_WRAPPER and
# $BERTH_TEST_AGENT_WRAPPER: their harnesses check each process's exit
# status, which valgrind sets to 9 on any error or definite leak).  Any
# invalid access, use of uninitialised memory or definite leak fails the
# run.  jemalloc's allocator is named to valgrind (--soname-synonyms) so that
# the programs that link it are checked too.  Every test is bounded by
# `timeout`.  Exits 0 when all pass, 1 otherwise, 77 without valgrind.
set -u

build=${1:?usage: tests/valgrind.sh BUILD-DIR}
build=$(cd "$build" && pwd) || exit 1
root=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null 2>&1 || { echo "valgrind.sh: valgrind is not installed"; exit 77; }

vg="valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite"
vg="$vg --soname-synonyms=somalloc=*jemalloc*"
top_srcdir=$root
top_builddir=$build
BERTH_PLUGIN_PATH="$build/plugins/sim/.libs:$build/plugins/docker/.libs:$build/plugins/runc/.libs"
export top_srcdir top_builddir BERTH_PLUGIN_PATH

# Every wait of the tests may take this many times longer (tests/test-time.h).
BERTH_TEST_TIME_SCALE=${BERTH_TEST_TIME_SCALE:-6}
export BERTH_TEST_TIME_SCALE

status=0
run() {
    name=$1
    shift
    log="$build/tests/$name.valgrind.log"
    start=$(date +%s)
    (cd "$build" && timeout 900 "$@") >"$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "valgrind: $name: ok ($(( $(date +%s) - start )) s)"
    else
        echo "valgrind: $name: FAILED (exit $rc); the end of $log:"
        tail -n 40 "$log"
        status=1
    fi
}

# The library, each test program whole under memcheck.
for t in test_model test_validate test_demand test_engine test_index test_random \
    test_placement_score test_inventory test_error test_codec test_store test_store_async test_store_wait \
    test_store_async_calls test_plugin; do
    # shellcheck disable=SC2086
    run "$t" ./libtool --mode=execute $vg "./tests/$t"
done

# The daemons: berthd and the agents under memcheck, the tests driving them
# as usual (a small fleet: a few agents under valgrind are slow enough).
BERTH_TEST_BERTHD_WRAPPER="$build/libtool --mode=execute $vg"
BERTH_TEST_AGENT_WRAPPER="$build/libtool --mode=execute $vg"
BERTH_TEST_FLEET=3
export BERTH_TEST_BERTHD_WRAPPER BERTH_TEST_AGENT_WRAPPER BERTH_TEST_FLEET
run test_berthd ./tests/test_berthd
run test_berthd_server ./tests/test_berthd_server
run test_agent ./tests/test_agent
run test_preempt ./tests/test_preempt
run test_ngroups ./tests/test_ngroups
run test_pool ./tests/test_pool
run test_berthd_ws ./tests/test_berthd_ws

if [ $status -eq 0 ]; then
    echo "valgrind: all clean"
fi
exit $status
