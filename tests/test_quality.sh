#!/bin/sh
# test_quality.sh: a correctness check of berth-bench's `quality` scenario
# on a few BPPLIB instances.  Runs `berth-bench quality --set bpplib
# --limit 20` on the subset the repository holds (tests/data/traces), or on
# the folder BERTH_TRACES names (a full traces folder, optional), and checks
# that
# every output line is a JSON result with the expected members, that no
# packer used fewer hosts than the optimum or lower bound (a packing bug:
# a bound can never be beaten), that no packing was infeasible or left an
# item out, and that every ratio to a bound is at least 1 (the JSON lines
# for their members, the CSV rows for the values).  Judges no timing.
#
# Environment (set by "make check"): top_srcdir, top_builddir; BERTH_TRACES
# (optional): a traces folder holding bpplib/ to use instead of the subset.
set -eu

: "${top_srcdir:=.}"
: "${top_builddir:=.}"
# Only what the repository holds, unless a traces folder is named.
traces="${BERTH_TRACES:-$top_srcdir/tests/data/traces}"
if [ ! -f "$traces/bpplib/bounds.tsv" ] || [ ! -d "$traces/bpplib/instances" ]; then
    echo "test_quality: no BPPLIB traces under $traces (bpplib/bounds.tsv, bpplib/instances)"
    exit 1
fi
tmp=$(mktemp -d /tmp/berth-quality.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

if ! "$top_builddir/bench/berth-bench" quality --set bpplib --limit 20 --traces "$traces" \
        --csv "$tmp" >"$tmp/out.json" 2>"$tmp/err.txt"; then
    echo "test_quality: berth-bench quality failed:"
    cat "$tmp/err.txt"
    exit 1
fi
[ -s "$tmp/quality.csv" ] || { echo "test_quality: no quality.csv written"; exit 1; }

keys="bench workload family policy order instances items hosts_used optimum_or_lb
ratio_to_optimum instances_with_optimum ratio_to_lower_bound instances_with_lower_bound
hosts_vs_firstfit stranded_cpu stranded_memory stranded_gpu seconds instances_skipped
instances_inexact unplaced infeasible"

# Every stdout line is one flat JSON object holding every member.
fail=0
[ -s "$tmp/out.json" ] || { echo "test_quality: no result"; exit 1; }
if grep -v '^{"bench":"quality",.*}$' "$tmp/out.json" | grep -q .; then
    echo "test_quality: a line is not a quality result:"
    grep -v '^{"bench":"quality",.*}$' "$tmp/out.json" | head -3
    fail=1
fi
for k in $keys; do
    if grep -v "\"$k\":" "$tmp/out.json" | grep -q .; then
        echo "test_quality: a result lacks \"$k\""
        fail=1
    fi
done

# The same results as CSV rows, checked by column name.
awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    function v(name) { return $(col[name]) }
    {
        rows++
        where = v("workload") "/" v("family") "/" v("policy")
        seen[v("policy")] = 1
        if (v("workload") != "bpplib") { print "test_quality: " where ": not bpplib"; bad = 1 }
        if (v("instances") + 0 <= 0) { print "test_quality: " where ": no instance"; bad = 1 }
        if (v("hosts_used") + 0 < v("optimum_or_lb") + 0) {
            print "test_quality: " where ": " v("hosts_used") " hosts, below the bound " \
                v("optimum_or_lb")
            bad = 1
        }
        split("ratio_to_optimum ratio_to_lower_bound", ratios, " ")
        for (r in ratios)
            if (v(ratios[r]) != "" && v(ratios[r]) + 0 < 1) {
                print "test_quality: " where ": " ratios[r] " " v(ratios[r]) " < 1"
                bad = 1
            }
        split("unplaced infeasible instances_skipped", zeros, " ")
        for (z in zeros)
            if (v(zeros[z]) + 0 != 0) {
                print "test_quality: " where ": " zeros[z] " = " v(zeros[z])
                bad = 1
            }
    }
    END {
        if (rows == 0) { print "test_quality: no CSV row"; bad = 1 }
        split("binpack spread firstfit ffd", want, " ")
        for (p in want)
            if (!(want[p] in seen)) { print "test_quality: no " want[p] " result"; bad = 1 }
        exit bad
    }
' "$tmp/quality.csv" || fail=1
[ "$fail" -eq 0 ] || exit 1
echo "test_quality: ok"
