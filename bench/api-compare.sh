#!/bin/sh
# api-compare.sh: creates through the REST API, two berthd builds in turns
# on the same input.
#
#   bench/api-compare.sh NEW_BERTHD OLD_BERTHD [GROUPS] [ROUNDS] [CONNECTIONS...]
#
# From a build directory (or with top_builddir set), for each of ROUNDS
# rounds (default 3) and each berthd in turn (NEW, then OLD): starts a
# private redis-server (unix socket, AOF with appendfsync everysec), the
# berthd over HTTPS with a bearer token (a throwaway self-signed pair) and
# four berth-agents with the sim plugin and a large capacity (the agent and
# plugin of the berthd's own build tree: a berthd and its agents share one
# cell's schema), then runs
# `berth-bench api` with GROUPS creates (default 4000) over each number of
# CONNECTIONS (default 1 8 32), and stops everything.  In the first round
# it also counts, with MONITOR, the commands berthd sends Redis per
# request with the agents stopped (1,000 creates and their deletes over
# one connection).  Prints one line per run and, at the end,
# the median creates/s and p99 per berthd and connection count, and the
# ratio NEW/OLD; after each run, the CPU seconds berthd, Redis and the
# agents spent in it (the run includes the deletes and, for the agents,
# running every group).  It measures and never judges.  Everything it starts is
# stopped by its pid at exit; the temporary directory is removed.
set -u

[ $# -ge 2 ] || { echo "usage: api-compare.sh NEW_BERTHD OLD_BERTHD [GROUPS] [ROUNDS] [CONNECTIONS...]" >&2; exit 2; }
new=$1
old=$2
groups=${3:-4000}
rounds=${4:-3}
shift 2
[ $# -gt 0 ] && shift
[ $# -gt 0 ] && shift
conns=${*:-1 8 32}
build=$(cd "${top_builddir:-.}" && pwd)
. "$(dirname "$0")/stack.sh"
bench="$build/bench/berth-bench"
# The build tree a berthd (BUILD/tools/berthd/berthd) belongs to.
build_of() {
    (cd "$(dirname "$1")/../.." && pwd)
}
# The berth-agent of that build: tools/berth-agent/berth-agent, or
# tools/berth-agent in a build from before the agent had a folder.
agent_of() {
    a="$(build_of "$1")/tools/berth-agent"
    if [ -d "$a" ]; then echo "$a/berth-agent"; else echo "$a"; fi
}
for f in "$new" "$old" "$bench" "$(agent_of "$new")" "$(agent_of "$old")"; do
    [ -x "$f" ] || { echo "api-compare: $f is not an executable" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/berth-api-compare.XXXXXX) || exit 1
pids=""
results="$tmp/results"
: >"$results"
stop_all() {
    for p in $pids; do
        kill "$p" 2>/dev/null
    done
    for p in $pids; do
        wait "$p" 2>/dev/null
    done
    pids=""
}
trap 'stop_all; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rcli() {
    redis-cli -s "$run/redis.sock" "$@"
}

setup() {
    berthd=$1
    run="$tmp/run"
    rm -rf "$run"
    mkdir -p "$run"
    stack_redis "$run" && stack_berthd "$berthd" "$run" &&
        stack_agents "$(agent_of "$berthd")" "$(build_of "$berthd")/plugins/sim/.libs" "$run"
}

# CPU seconds (user + system) a process has used, from /proc.
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
        "/proc/$1/stat" 2>/dev/null || echo 0
}

# CPU seconds of berthd, redis-server and the agents together, as three words.
cpu_all() {
    a=0
    for p in $agent_pids; do a=$(awk -v x="$a" -v y="$(cpu_s "$p")" 'BEGIN { print x + y }'); done
    echo "$(cpu_s "$bpid") $(cpu_s "$rpid") $a"
}

field() {
    sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"
}

# Commands per request: the agents stopped (SIGSTOP), so that Redis hears
# only berthd (and its timers: a PING a second, a catch-up a tick), 1,000
# creates then their 1,000 deletes over one connection, without waiting
# for them to run (no list polls), the commands counted with MONITOR
# (commands run inside Functions, which MONITOR shows as "lua", left out:
# they cost no round trip).
commands_per_request() {
    for p in $agent_pids; do kill -STOP "$p"; done
    timeout 120 redis-cli -s "$run/redis.sock" monitor >"$run/monitor.txt" 2>/dev/null &
    mpid=$!
    sleep 0.3
    "$bench" api --endpoint "$endpoint" --token "$token" --cacert "$run/berthd.crt" \
        --groups 1000 --connections 1 --running-timeout 0 >/dev/null 2>>"$run/bench.err"
    sleep 0.3
    kill "$mpid" 2>/dev/null
    wait "$mpid" 2>/dev/null
    for p in $agent_pids; do kill -CONT "$p"; done
    grep -v '\[0 lua\]' "$run/monitor.txt" | grep -c '^[0-9]' |
        awk '{ printf "%.1f", $1 / 2000 }'
}

r=1
while [ $r -le "$rounds" ]; do
    for which in new old; do
        eval "bin=\$$which"
        setup "$bin" || { stop_all; exit 1; }
        if [ $r -eq 1 ]; then
            per=$(commands_per_request)
            echo "$which: $per Redis commands per request (creates and deletes, agents stopped)"
            echo "cmds $which $per" >>"$results"
        fi
        for c in $conns; do
            before=$(cpu_all)
            line=$("$bench" api --endpoint "$endpoint" --token "$token" --cacert "$run/berthd.crt" \
                --groups "$groups" --connections "$c" --running-timeout 120 2>>"$run/bench.err")
            rate=$(echo "$line" | field creates_per_sec)
            p99=$(echo "$line" | field p99_ms)
            errors=$(echo "$line" | field errors)
            echo "$which $c $rate $p99 ${errors:-?}" >>"$results"
            echo "round $r $which: $c connection(s): ${rate:-?} creates/s, p99 ${p99:-?} ms, errors ${errors:-?}"
            echo "$before $(cpu_all)" | awk '{ printf "    CPU seconds over the run: berthd %.2f, redis %.2f, agents %.2f\n", $4 - $1, $5 - $2, $6 - $3 }'

        done
        stop_all
    done
    r=$((r + 1))
done

echo "medians over $rounds round(s), $groups creates each:"
for c in $conns; do
    med() {
        awk -v w="$1" -v c="$c" -v col="$2" '$1 == w && $2 == c { print $col }' "$results" |
            sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'
    }
    nr=$(med new 3)
    orate=$(med old 3)
    np=$(med new 4)
    op=$(med old 4)
    ratio=$(awk -v a="$nr" -v b="$orate" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }')
    echo "  $c connection(s): new $nr creates/s (p99 $np ms), old $orate creates/s (p99 $op ms): ${ratio}x"
done
awk '$1 == "cmds" { printf "  Redis commands per request: %s %s\n", $2, $3 }' "$results"
