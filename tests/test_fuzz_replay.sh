#!/bin/sh
# test_fuzz_replay.sh: replays the fuzz targets' saved inputs.  Runs each
# replay program (tests/fuzz/replay.c linked with one target) over the
# target's seed corpus and its regressions (tests/fuzz/corpus/<target>/,
# tests/fuzz/regressions/<target>/), in whatever build "make check" runs --
# with the sanitizers too in a sanitizer build.  An input that once crashed
# a fuzzer stays fixed this way without clang or libFuzzer.  Each replay is
# bounded by `timeout` (120 s).
#
# Environment (set by "make check"): top_srcdir, top_builddir.
set -eu

: "${top_srcdir:?set by make check}" "${top_builddir:?set by make check}"
status=0
for target in document record request body inventory ws head wsanswer; do
    prog="$top_builddir/tests/fuzz/replay-$target"
    if [ ! -x "$prog" ]; then
        echo "test_fuzz_replay: $prog was not built"
        exit 1
    fi
    if ! timeout 120 "$prog" "$top_srcdir/tests/fuzz/corpus/$target" \
            "$top_srcdir/tests/fuzz/regressions/$target"; then
        echo "test_fuzz_replay: $target FAILED; rerun with -v to name the input:"
        echo "  $prog -v $top_srcdir/tests/fuzz/corpus/$target $top_srcdir/tests/fuzz/regressions/$target"
        status=1
    fi
done
exit $status
