#!/bin/sh
# test_headers.sh: the public headers (berth.h, berth-plugin.h) compile on
# their own as strict ISO C (C99 and C11 with -pedantic-errors) and as C++
# (C++11 and C++17), each with every warning an error, so that any embedder's
# compiler accepts them.  Compiles one small program per language standard
# that includes both headers and uses their types and constants; never
# writes outside its temporary directory.
#
# Environment (set by "make check"): top_srcdir, CC; CXX (default c++).
set -u

: "${CC:=cc}"
: "${CXX:=c++}"
tmp=$(mktemp -d /tmp/berth-headers.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

cat >"$tmp/use.c" <<'PROG'
#include "berth.h"
#include "berth-plugin.h"

int main(void)
{
    berth_error_t err;
    berth_request_t req;
    berth_assignment_t as;
    (void)err;
    (void)req;
    (void)as;
    return BERTH_EINVAL < 0 && sizeof(berth_plugin_ops_t) > 0 ? 0 : 1;
}
PROG
cp "$tmp/use.c" "$tmp/use.cpp"

fail=0
for std in c99 c11; do
    if ! $CC -std=$std -pedantic-errors -Wall -Wextra -Werror -I"$top_srcdir/core" \
        -c "$tmp/use.c" -o "$tmp/use-$std.o" >"$tmp/$std.log" 2>&1; then
        cat "$tmp/$std.log"
        echo "test_headers: the public headers do not compile as -std=$std -pedantic-errors"
        fail=1
    fi
done
if ! command -v "$CXX" >/dev/null 2>&1; then
    echo "test_headers: no C++ compiler ($CXX): the C++ half is skipped"
    [ $fail -eq 0 ] && exit 77
    exit 1
fi
for std in c++11 c++17; do
    if ! "$CXX" -std=$std -pedantic-errors -Wall -Wextra -Werror -I"$top_srcdir/core" \
        -c "$tmp/use.cpp" -o "$tmp/use-$std.o" >"$tmp/$std.log" 2>&1; then
        cat "$tmp/$std.log"
        echo "test_headers: the public headers do not compile as C++ (-std=$std)"
        fail=1
    fi
done
[ $fail -eq 0 ] && echo "test_headers: berth.h and berth-plugin.h compile as C99, C11, C++11 and C++17"
exit $fail
