#!/bin/sh
# test_load.sh: berthd under load, over HTTPS with bearer tokens, and its
# memory across identical rounds.  Starts, in one temporary directory, a
# redis-server (AOF everysec, unix socket only), a berthd with TLS (a
# self-signed pair for 127.0.0.1 made here with openssl) and a tokens file
# on a free port of 127.0.0.1, and 4 berth-agents with the sim plugin and
# large capacities.  Then:
#
#   warm-up   berth-bench api --groups 500 --connections 8
#   rounds    3 x berth-bench api --groups 1000 --connections 16
#
# (each berth-bench api run creates its groups over keep-alive connections,
# waits until they run, then deletes them all, so every round starts from
# the same empty cell and creates the same names).  berthd's RSS (VmRSS of
# /proc/PID/status) is read after the warm-up and after each round, its peak
# (VmHWM) at the end.  It reports requests per second and the PUT latency
# percentiles of every round (berth-bench's JSON line).
#
# It FAILS when any request errored, when berthd died, or when berthd's RSS
# after the last round exceeds its RSS after the first round by more than
# 20% (and by more than BERTH_LOAD_RSS_SLACK_KIB, default 2048 KiB).  Why
# those thresholds: berthd links jemalloc, which by default keeps freed
# pages for a while (its decay), so RSS would depend on when jemalloc
# happened to purge: the test runs berthd with MALLOC_CONF
# dirty_decay_ms:0,muzzy_decay_ms:0, so freed pages go back at once and RSS
# follows what berthd holds.  The first rounds grow it to its working set
# (caches, connection buffers, jemalloc's arenas and metadata).  The
# warm-up round and the first full round absorb that;
# after them identical rounds should reuse the same memory, so growth
# across them means memory that is never freed (a leak).  20% is well above
# the round-to-round noise of jemalloc's page purging yet well below what a
# leak of even a few hundred bytes per request adds over 2,000 requests;
# the absolute slack keeps a small RSS from turning page-granular noise
# into a failure.  In a sanitizer build (berthd linked with ASan) the RSS
# is reported but not judged: ASan's quarantine keeps up to 256 MiB of
# freed memory on purpose, and LeakSanitizer reports leaks there.  No timing is ever asserted: the figures are reported
# only.
#
# Exits 77 (skipped) when berthd, berth-agent, berth-bench, redis-server,
# redis-cli, openssl or timeout is missing -- unless BERTH_REQUIRE_ENGINES=1
# (CI), which turns that into a failure.  Every wait is bounded; everything
# started is killed at exit.
#
# Environment (set by "make check"): top_srcdir, top_builddir, BERTH_PLUGIN_PATH.
set -u

: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
name=test_load
logs="berthd.log a1.log redis.log"
log_lines=20
berthd="$top_builddir/tools/berthd/berthd"
[ -f "$berthd" ] || berthd="$top_builddir/tools/berthd"
agent="$top_builddir/tools/berth-agent/berth-agent"
bench="$top_builddir/bench/berth-bench"
cell=load
rounds=3
round_groups=${BERTH_LOAD_GROUPS:-1000}
warm_groups=${BERTH_LOAD_WARM_GROUPS:-500}
slack_kib=${BERTH_LOAD_RSS_SLACK_KIB:-2048}
. "$top_srcdir/tests/shell-lib.sh"

[ -f "$berthd" ] && [ -x "$berthd" ] || skip "tools/berthd was not built"
[ -x "$agent" ] || skip "tools/berth-agent/berth-agent was not built"
[ -x "$bench" ] || skip "bench/berth-bench was not built"
for tool in redis-server redis-cli openssl curl timeout; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done

# berthd may be a libtool wrapper (it execs .libs/berthd, keeping its pid).
real="$berthd"
[ -f "$(dirname "$berthd")/.libs/berthd" ] && real="$(dirname "$berthd")/.libs/berthd"
sanitized=0
grep -a -q __asan_init "$real" 2>/dev/null && sanitized=1

tmp=$(mktemp -d /tmp/berth-load.XXXXXX)
sock="$tmp/redis.sock"
pids=""
berthd_pid=""

trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- redis, the key pair, berthd, the agents -----------------------------------------

redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$tmp" \
    --appendonly yes --appendfsync everysec --save '' --daemonize no \
    >"$tmp/redis.log" 2>&1 &
pids="$pids $!"
i=0
while [ $i -lt 100 ]; do
    [ "$(timeout 5 redis-cli -s "$sock" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
    i=$((i + 1))
done
[ "$(timeout 5 redis-cli -s "$sock" ping 2>/dev/null)" = PONG ] || { dump_logs; skip "redis-server did not start"; }

timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    >"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log"; skip "openssl cannot make a key pair"; }
token="load-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s *\n' "$token" >"$tmp/tokens"
chmod 600 "$tmp/tokens"

mkdir -p "$tmp/berthd"
endpoint=""
for try in 1 2 3 4 5; do
    port=$(( 10000 + ($$ * 31 + try * 977 + $(od -An -N2 -tu2 /dev/urandom)) % 22000 ))
    MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0 \
    "$berthd" --listen "127.0.0.1:$port" --redis "unix://$sock" --cell "$cell" \
        --data-dir "$tmp/berthd" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" \
        --tokens "$tmp/tokens" >"$tmp/berthd.log" 2>&1 &
    berthd_pid=$!
    i=0
    while [ $i -lt 80 ] && kill -0 "$berthd_pid" 2>/dev/null; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 --cacert "$tmp/cert.pem" \
            "https://127.0.0.1:$port/healthz" 2>/dev/null)
        [ "$code" = 200 ] && { endpoint="https://127.0.0.1:$port"; break; }
        sleep 0.25
        i=$((i + 1))
    done
    [ -n "$endpoint" ] && break
    kill -9 "$berthd_pid" 2>/dev/null
    wait "$berthd_pid" 2>/dev/null
    grep -q -i "address already in use" "$tmp/berthd.log" || break
done
[ -n "$endpoint" ] || { dump_logs; skip "berthd did not answer within 20 s"; }
pids="$pids $berthd_pid"

for h in 1 2 3 4; do
    "$agent" --redis "unix://$sock" --cell "$cell" --host "a$h" --plugin sim --cores 1024 \
        --memory-mib 4194304 --tick-ms 50 >"$tmp/a$h.log" 2>&1 &
    pids="$pids $!"
done
i=0
while [ $i -lt 80 ]; do
    [ "$(timeout 5 redis-cli -s "$sock" hlen "berth:{$cell}:hosts" 2>/dev/null)" = 4 ] && break
    sleep 0.25
    i=$((i + 1))
done
[ "$(timeout 5 redis-cli -s "$sock" hlen "berth:{$cell}:hosts")" = 4 ] ||
    { dump_logs; skip "the agents did not register within 20 s"; }
echo "$name: berthd at $endpoint (TLS, tokens), 4 sim agents"

# ---- the rounds ------------------------------------------------------------------------

# rss FIELD: berthd's VmRSS or VmHWM in KiB.
rss() {
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$berthd_pid/status" 2>/dev/null
}

# run_round LABEL GROUPS CONNECTIONS: one berth-bench api run; prints its
# figures, counts its errors.
run_round() {
    timeout 300 "$bench" api --endpoint "$endpoint" --token "$token" --insecure \
        --groups "$2" --connections "$3" --running-timeout 60 >"$tmp/bench.out" 2>"$tmp/bench.err"
    brc=$?
    line=$(grep '"bench"' "$tmp/bench.out" | tail -n 1)
    if [ -z "$line" ]; then
        fail "$1: berth-bench api exited $brc without a result"
        cat "$tmp/bench.err"
        return
    fi
    field() { echo "$line" | sed -n "s/.*\"$1\": *\([^,}]*\).*/\1/p"; }
    created=$(field created) errors=$(field errors)
    echo "$1: $created/$2 created, errors $errors, $(field creates_per_sec) requests/s," \
        "p50 $(field p50_ms) ms, p99 $(field p99_ms) ms, p99.9 $(field p999_ms) ms," \
        "all running after $(field all_running_after_s) s"
    [ "$brc" = 0 ] || fail "$1: berth-bench api exited $brc"
    [ "$errors" = 0 ] || fail "$1: $errors requests errored (first: $(field first_error))"
    [ "$created" = "$2" ] || fail "$1: $created of $2 created"
    kill -0 "$berthd_pid" 2>/dev/null || { fail "$1: berthd died"; dump_logs; exit 1; }
}

rss_start=$(rss VmRSS)
run_round "warm-up (${warm_groups}x8)" "$warm_groups" 8
rss_warm=$(rss VmRSS)
echo "$name: berthd RSS $rss_start KiB at start, $rss_warm KiB after the warm-up"
rss_first=""
r=1
while [ $r -le $rounds ]; do
    run_round "round $r (${round_groups}x16)" "$round_groups" 16
    rss_now=$(rss VmRSS)
    echo "$name: berthd RSS $rss_now KiB after round $r"
    [ -n "$rss_first" ] || rss_first=$rss_now
    r=$((r + 1))
done
rss_last=$rss_now
hwm=$(rss VmHWM)

left=$(timeout 5 redis-cli -s "$sock" hlen "berth:{$cell}:groups")
[ "$left" = 0 ] || fail "$left groups left placed after the rounds deleted theirs"

growth=$((rss_last - rss_first))
limit=$((rss_first / 5))
[ "$limit" -ge "$slack_kib" ] || limit=$slack_kib
echo "$name: berthd peak RSS (VmHWM) $hwm KiB; RSS after warm-up $rss_warm KiB," \
    "after round 1 $rss_first KiB, after round $rounds $rss_last KiB" \
    "(growth $growth KiB, limit $limit KiB)"
if [ "$sanitized" = 1 ]; then
    echo "$name: berthd is built with a sanitizer: its RSS is not judged"
elif [ "$growth" -gt "$limit" ]; then
    fail "berthd's RSS grew by $growth KiB across identical rounds (limit $limit KiB: 20%, at least $slack_kib KiB)"
fi

if [ "$failures" -ne 0 ]; then
    dump_logs
    echo "$name: $failures failure(s)"
    exit 1
fi
echo "$name: passed"
exit 0
