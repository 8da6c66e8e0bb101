#!/bin/sh
# run-bench.sh: Berth's standard benchmark set, from a build directory.
#
#   cd build && ../bench/run-bench.sh OUTDIR        (or: make bench)
#
# Runs berth-bench from the build directory ($top_builddir, or the current
# directory):
#   incore    1,000, 10,000 and 100,000 hosts, every policy on the same
#             input (firstfit, the baseline, at 1,000 and 10,000 only: its
#             linear scan would take hours at 100,000), 3 runs each;
#   redis     10,000 hosts, 1, 2 and 4 schedulers, 3 runs each, each run
#             with its own private redis-server;
#   api       a private redis-server on a unix socket, berthd over HTTPS (a
#             throwaway self-signed pair) with a tokens file, 4 berth-agents
#             with the sim plugin and a large capacity, then creates over 1
#             and 8 connections;
#   pool      the same set-up with the agents' simulator pulling in 800 ms
#             and starting in 200 ms: creates to Running without, then
#             with, a standby pool of the same document;
#   quality   packing quality on the traces of ../shared/traces next to the
#             source tree, when present (the packing benchmarks in
#             quality.csv, the replayed workloads in replay.csv, with the
#             GPU replays -- gpu-spot2026, gpu-pai2020 and their multi-GPU
#             mixes, against plain best fit too -- and image locality on
#             against off in locality.csv);
#   redeploy  updates of running groups.
# and writes into OUTDIR: <bench>.csv (every result), results.jsonl (the
# same as JSON lines), medians.csv (incore: the median of each figure over
# the runs, per hosts and policy), redis-medians.csv (per schedulers),
# packing.csv (quality's packing ratio per workload, one column per
# policy), gpu.csv (the GPU replays: per workload and policy, GPUs
# stranded, GPU groups rejected, all groups rejected), run.log (what each step said on stderr), then draws
# OUTDIR/*.png with gnuplot and bench/plot.gp (skipped, with a message,
# when gnuplot is missing).  Those files of an earlier run in OUTDIR
# (*.csv, results.jsonl, run.log, *.png) are removed first, as the
# scenarios append to their CSV files.
#
# Every step runs under timeout(1), and all of them share one budget,
# BERTH_BENCH_BUDGET seconds (1140: the whole set stays under 20 minutes);
# a step that would start with less than 10 s left is skipped.  Everything
# the script starts is stopped at exit, and its temporary directory is
# removed.  It measures and never judges: a slow result is not a failure.
# Exit status: 0 when every step produced its results, 1 when one failed or
# was skipped (the others' results and plots are still written), 2 for a
# usage error or a build that lacks berth-bench.
#
# Environment: top_builddir, BERTH_BENCH_BUDGET, BERTH_BENCH_RUNS (3),
# BERTH_BENCH_API_GROUPS (2000), BERTH_BENCH_TRACES (the traces folder).
set -u

usage() {
    echo "usage: run-bench.sh OUTDIR   (from the build directory, or with top_builddir set)"
}
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    "") usage >&2; exit 2 ;;
esac

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${top_builddir:-.}" && pwd)
. "$src/bench/stack.sh"
bench="$build/bench/berth-bench"
berthd="$build/tools/berthd/berthd"
agent="$build/tools/berth-agent/berth-agent"
runs=${BERTH_BENCH_RUNS:-3}
budget=${BERTH_BENCH_BUDGET:-1140}
api_groups=${BERTH_BENCH_API_GROUPS:-2000}
traces=${BERTH_BENCH_TRACES:-$src/../shared/traces}

[ -x "$bench" ] || { echo "run-bench: $bench is not built (run make)" >&2; exit 2; }
mkdir -p "$1" || exit 2
out=$(cd "$1" && pwd)
# Results are appended: start from empty files.
rm -f "$out"/*.csv "$out"/results.jsonl "$out"/run.log "$out"/*.png
log="$out/run.log"
: >"$out/results.jsonl"

start=$(date +%s)
deadline=$((start + budget))
failed=""
tmp=""
pids=""
running=""

cleanup() {
    # timeout(1) passes the signal on to the step's whole process group
    [ -n "$running" ] && kill "$running" 2>/dev/null && wait "$running" 2>/dev/null
    running=""
    for p in $pids; do kill "$p" 2>/dev/null; done
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
    pids=""
    [ -n "$tmp" ] && rm -rf "$tmp"
    tmp=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

note() {
    echo "$*"
    echo "== $*" >>"$log"
}

# step NAME CAP COMMAND...: runs COMMAND under timeout, bounded by CAP
# seconds and by what is left of the budget; its JSON lines go to
# results.jsonl (and through --csv to OUTDIR), its stderr to run.log.
step() {
    name=$1 cap=$2
    shift 2
    left=$((deadline - $(date +%s)))
    if [ "$left" -lt 10 ]; then
        note "$name: skipped, the time budget is spent"
        failed="$failed${failed:+; }$name"
        return 1
    fi
    [ "$cap" -gt "$left" ] && cap=$left
    note "$name (at most ${cap}s)"
    # In the background, so that a signal to this script reaches the trap
    # (timeout(1) runs its command in a process group of its own).
    timeout -k 10 "$cap" "$@" >>"$out/results.jsonl" 2>>"$log" &
    running=$!
    wait "$running"
    rc=$?
    running=""
    if [ $rc -ne 0 ]; then
        [ $rc -eq 124 ] && what="timed out after ${cap}s" || what="exit status $rc"
        note "$name: $what (see run.log)"
        failed="$failed${failed:+; }$name"
        return 1
    fi
    return 0
}

# medians IN OUT KEYCOL...: for each distinct value of the key columns (in
# the order they first appear), the median of every numeric column over
# its rows, and the first value of the others; adds a "runs" column.
medians() {
    [ -s "$1" ] || return 0
    in=$1 dst=$2
    shift 2
    awk -F, -v keys="$*" '
        function isnum(s) { return s ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ }
        # a comma inside a quoted cell becomes \034 until the row is printed
        function unquote_commas(   i, ch, q, t) {
            q = 0; t = ""
            for (i = 1; i <= length($0); i++) {
                ch = substr($0, i, 1)
                if (ch == "\"") q = !q
                t = t (q && ch == "," ? "\034" : ch)
            }
            $0 = t
        }
        { unquote_commas() }
        NR == 1 {
            header = $0; ncol = NF
            for (c = 1; c <= NF; c++) col[$c] = c
            nk = split(keys, kname, " ")
            next
        }
        {
            k = ""
            for (j = 1; j <= nk; j++) k = k SUBSEP $(col[kname[j]])
            if (!(k in count)) { order[++ngroups] = k; count[k] = 0; line[k] = $0 }
            n = ++count[k]
            for (c = 1; c <= ncol; c++) val[k, c, n] = $c
        }
        END {
            print header ",runs"
            for (g = 1; g <= ngroups; g++) {
                k = order[g]; n = count[k]
                split(line[k], first, ",")
                row = ""
                for (c = 1; c <= ncol; c++) {
                    numeric = 1
                    for (i = 1; i <= n; i++) {
                        v[i] = val[k, c, i]
                        if (!isnum(v[i])) numeric = 0
                    }
                    if (numeric) {
                        for (i = 2; i <= n; i++) {      # insertion sort, n is small
                            x = v[i]
                            for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]
                            v[j + 1] = x
                        }
                        cell = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
                    } else {
                        cell = first[c]
                    }
                    row = row (c > 1 ? "," : "") cell
                }
                gsub(/\034/, ",", row)
                print row "," n
            }
        }' "$in" >"$dst"
}

# ---- incore -----------------------------------------------------------------

for hosts in 1000 10000 100000; do
    run=1
    while [ $run -le "$runs" ]; do
        # about 25 s at 10,000 and 100,000 hosts on an idle 2-core machine
        step "incore $hosts hosts, run $run/$runs" 180 \
            "$bench" incore --hosts $hosts --csv "$out"
        run=$((run + 1))
    done
done
medians "$out/incore.csv" "$out/medians.csv" hosts policy

# ---- redis ------------------------------------------------------------------

if command -v redis-server >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1; then
    for k in 1 2 4; do
        run=1
        while [ $run -le "$runs" ]; do
            step "redis $k scheduler(s), run $run/$runs" 120 \
                "$bench" redis --hosts 10000 --schedulers $k --csv "$out"
            run=$((run + 1))
        done
    done
    medians "$out/redis.csv" "$out/redis-medians.csv" schedulers
else
    note "redis: skipped, redis-server or redis-benchmark is not installed"
    failed="$failed${failed:+; }redis"
fi

# ---- api --------------------------------------------------------------------

# api_setup [PLUGIN-CONFIG]: starts redis-server, berthd (HTTPS, tokens)
# and 4 sim agents (with that simulator configuration, when given) in $tmp;
# sets $endpoint and $token.  Returns 1 (after a note) when one of them
# does not come up within its bound.
api_setup() {
    tmp=$(mktemp -d /tmp/berth-run-bench.XXXXXX) || return 1
    if ! { stack_redis "$tmp" && stack_berthd "$berthd" "$tmp" &&
        stack_agents "$agent" "$build/plugins/sim/.libs" "$tmp" "${1:-}"; } 2>"$tmp/why"; then
        note "api: $(head -n 1 "$tmp/why")"
        cat "$tmp/why" >>"$log"
        return 1
    fi
}

if [ ! -x "$berthd" ] || [ ! -x "$agent" ]; then
    note "api: skipped, berthd or berth-agent is not built"
    failed="$failed${failed:+; }api"
elif ! command -v redis-server >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1 ||
    ! command -v curl >/dev/null 2>&1; then
    note "api: skipped, it needs redis-server, openssl and curl"
    failed="$failed${failed:+; }api"
elif [ $((deadline - $(date +%s))) -lt 60 ]; then
    # its setup alone may take up to a minute
    note "api: skipped, the time budget is spent"
    failed="$failed${failed:+; }api"
elif api_setup; then
    for c in 1 8; do
        step "api $c connection(s)" 180 "$bench" api --endpoint "$endpoint" --token "$token" \
            --cacert "$tmp/berthd.crt" --groups "$api_groups" --connections $c \
            --running-timeout 60 --csv "$out"
    done
    cleanup
else
    failed="$failed${failed:+; }api"
    cleanup
fi

# ---- pool -------------------------------------------------------------------

if [ ! -x "$berthd" ] || [ ! -x "$agent" ] || ! command -v redis-server >/dev/null 2>&1 ||
    ! command -v openssl >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
    note "pool: skipped, it needs berthd, berth-agent, redis-server, openssl and curl"
    failed="$failed${failed:+; }pool"
elif [ $((deadline - $(date +%s))) -lt 90 ]; then
    note "pool: skipped, the time budget is spent"
    failed="$failed${failed:+; }pool"
elif api_setup '{"pull_latency_ms": 800, "start_latency_ms": 200}'; then
    step "pool" 120 "$bench" pool --endpoint "$endpoint" --token "$token" \
        --cacert "$tmp/berthd.crt" --groups 40 --pool-size 40 --csv "$out"
    cleanup
else
    failed="$failed${failed:+; }pool"
    cleanup
fi

# ---- quality and redeploy -----------------------------------------------------

if [ -d "$traces" ]; then
    step "quality" 420 "$bench" quality --traces "$traces" --csv "$out"
else
    note "quality: $traces is missing; running without traces"
    step "quality" 420 "$bench" quality --csv "$out"
fi
step "redeploy" 180 "$bench" redeploy --csv "$out"

# packing.csv: quality's packing ratios (hosts used over the optimum where
# it is known, over the lower bound elsewhere) of each packing benchmark,
# from its "all" rows: one row per benchmark and bound, one column per
# packer, for the bar chart.  The replayed workloads have no bound: their
# figures stay in quality.csv and results.jsonl.
if [ -s "$out/quality.csv" ]; then
    awk -F, '
        NR == 1 { for (c = 1; c <= NF; c++) col[$c] = c; next }
        $(col["family"]) == "all" {
            w = $(col["workload"]); p = $(col["policy"])
            if (!(w in seen)) { seen[w] = 1; order[++n] = w }
            opt[w, p] = $(col["ratio_to_optimum"])
            lb[w, p] = $(col["ratio_to_lower_bound"])
            nopt[w] = $(col["instances_with_optimum"])
            nlb[w] = $(col["instances_with_lower_bound"])
        }
        END {
            np = split("firstfit binpack spread ffd", packer, " ")
            print "workload,firstfit,binpack,spread,ffd"
            for (i = 1; i <= n; i++) {
                w = order[i]
                if (nopt[w] > 0) {
                    row = w " / optimum (" nopt[w] ")"
                    for (j = 1; j <= np; j++) row = row "," opt[w, packer[j]]
                    print row
                }
                if (nlb[w] > 0) {
                    row = w " / lower bound (" nlb[w] ")"
                    for (j = 1; j <= np; j++) row = row "," lb[w, packer[j]]
                    print row
                }
            }
        }' "$out/quality.csv" >"$out/packing.csv"
fi

# gpu.csv: the GPU replays side by side, from replay.csv.
if [ -s "$out/replay.csv" ]; then
    awk -F, '
        NR == 1 { for (c = 1; c <= NF; c++) col[$c] = c
                  print "workload,policy,stranded_gpu_min_frac,stranded_gpu_min_peak," \
                        "gpu_rejected,gpu_groups,rejected,groups"; next }
        $(col["workload"]) ~ /^gpu-/ {
            print $(col["workload"]) "," $(col["policy"]) "," $(col["stranded_gpu_min_frac"]) \
                "," $(col["stranded_gpu_min_peak"]) "," $(col["gpu_rejected"]) "," \
                $(col["gpu_groups"]) "," $(col["rejected"]) "," $(col["groups"])
        }' "$out/replay.csv" >"$out/gpu.csv"
fi

# ---- plots ------------------------------------------------------------------

if command -v gnuplot >/dev/null 2>&1; then
    note "plots into $out"
    gnuplot -e "dir='$out'" "$src/bench/plot.gp" 2>>"$log" || note "gnuplot failed (see run.log)"
else
    note "gnuplot is not installed: no plots (apt-get install gnuplot-nox)"
fi

elapsed=$(( $(date +%s) - start ))
if [ -n "$failed" ]; then
    note "done in ${elapsed}s; not measured: $failed"
    exit 1
fi
note "done in ${elapsed}s; results in $out"
exit 0
