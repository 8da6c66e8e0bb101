# tests/shell-lib.sh: what Berth's shell tests share (POSIX sh).  A test
# sets these variables, then sources this file:
#
#   name       the test's name, which starts its skip messages
#   logs       the log files under $tmp that dump_logs shows (may be empty)
#   log_lines  how many lines of each log dump_logs shows (default 30)
#
# and, before any of the functions below runs, $tmp (its temporary
# directory) and $pids (the processes it started, space-separated).
# Sourcing sets failures=0 and defines:
#
#   skip MESSAGE   prints "$name: SKIP: MESSAGE" and exits 77 (skipped); with
#                  BERTH_REQUIRE_ENGINES=1 (CI) prints "$name: FAIL
#                  (BERTH_REQUIRE_ENGINES=1): MESSAGE" and exits 1 instead.
#   fail MESSAGE   prints "FAIL: MESSAGE" and counts it in $failures; the
#                  test goes on, and judges $failures at its end.
#   dump_logs      prints the last $log_lines lines of each of $logs that
#                  exists in $tmp, after a "---- last lines of FILE" line.
#   stop_pids      sends SIGTERM to every process of $pids, allows them 5 s
#                  in all to exit, sends SIGKILL to the rest and reaps them.
#   cleanup        stop_pids, then removes $tmp; a test installs it with
#                  `trap cleanup EXIT` (or defines its own, calling
#                  stop_pids).
#
# It starts nothing and installs no trap itself.

# shellcheck shell=sh disable=SC2154 # name, tmp and pids are the test's
: "${log_lines:=30}"
: "${logs:=}"

skip() {
    if [ "${BERTH_REQUIRE_ENGINES:-0}" = 1 ]; then
        echo "$name: FAIL (BERTH_REQUIRE_ENGINES=1): $*"
        exit 1
    fi
    echo "$name: SKIP: $*"
    exit 77
}

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

dump_logs() {
    for f in $logs; do
        [ -f "$tmp/$f" ] || continue
        echo "---- last lines of $f"
        tail -n "$log_lines" "$tmp/$f"
    done
}

stop_pids() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    # at most 5 s for a clean exit, then SIGKILL
    i=0
    while [ $i -lt 50 ]; do
        alive=""
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
        [ -z "$alive" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
}

cleanup() {
    stop_pids
    rm -rf "$tmp"
}
