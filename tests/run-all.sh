#!/bin/sh
# run-all.sh: Berth's whole test suite, from a fresh clone or a used tree.
#
# Builds and runs "make check" twice: a normal build in build/ and an
# AddressSanitizer/UndefinedBehaviorSanitizer build in build-sanitize/
# (configure --enable-sanitizers), generating ./configure first when it is
# missing.  Prints each test's summary lines, and exits non-zero when
# anything failed.  Writes only into those two build directories (and the
# files autoreconf generates); never edits sources.
set -u

cd "$(dirname "$0")/.." || exit 1
root=$(pwd)

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

status=0
suite build || status=1
suite build-sanitize --enable-sanitizers || status=1
if [ $status -eq 0 ]; then
    echo "==> all tests passed (build, build-sanitize)"
else
    echo "==> FAILED"
fi
exit $status
