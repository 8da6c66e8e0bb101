#!/bin/sh
# test_symbols.sh: checks the shared library's exported symbols against the
# public header.  Every dynamic symbol libberth.so defines must start with
# "berth_" (and not "berth__", the internal prefix), every function
# the public headers (core/berth.h, core/berth-plugin.h) declare with
# BERTH_EXPORT must be among them, and no berth_ symbol may be left
# undefined (the library must load in a program that links nothing else).  Reads the
# build tree only; writes nothing but a temporary directory it removes.
#
# Environment (set by "make check"): top_srcdir, top_builddir.
set -eu

lib="$top_builddir/core/.libs/libberth.so"
headers="$top_srcdir/core/berth.h $top_srcdir/core/berth-plugin.h"
if [ ! -f "$lib" ]; then
    echo "test_symbols: $lib was not built (configured with --disable-shared?)"
    exit 77
fi

tmp=$(mktemp -d /tmp/berth-symbols.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Defined dynamic symbols, without absolute ones (symbol version nodes).
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sed 's/@.*//' | sort -u \
    >"$tmp/exported"
# Function names declared with BERTH_EXPORT: join each declaration up to its
# opening parenthesis, then keep the identifier just before it.
# shellcheck disable=SC2086
sed -n '/^BERTH_EXPORT/,/(/p' $headers | tr '\n' ' ' | grep -o 'BERTH_EXPORT[^(]*(' |
    sed 's/($//; s/.*[^A-Za-z0-9_]//' | sort -u >"$tmp/declared"

status=0
if [ ! -s "$tmp/declared" ]; then
    echo "test_symbols: found no BERTH_EXPORT declarations in $headers"
    status=1
fi
while read -r sym; do
    case "$sym" in
    berth__*) echo "test_symbols: internal symbol exported: $sym"; status=1 ;;
    berth_*) ;;
    *) echo "test_symbols: symbol without the berth_ prefix exported: $sym"; status=1 ;;
    esac
done <"$tmp/exported"
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
    echo "test_symbols: declared in a public header but not exported:"
    echo "$missing" | sed 's/^/  /'
    status=1
fi
# The library stands alone: every berth_ symbol it uses, it defines (an
# internal helper of lib/ it calls must be compiled into it).
undefined=$(nm -D --undefined-only "$lib" | awk '{ print $2 }' | sed 's/@.*//' | grep '^berth_' || true)
if [ -n "$undefined" ]; then
    echo "test_symbols: used but not defined by the library:"
    echo "$undefined" | sed 's/^/  /'
    status=1
fi
echo "test_symbols: $(wc -l <"$tmp/exported") symbols exported, $(wc -l <"$tmp/declared") declared"
exit $status
