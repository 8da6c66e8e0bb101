# tests/shell-lib.sh: what Berth's shell tests share (POSIX sh).  A test
# sets these variables, then sources this file:
#
#   name       the test's name, which starts its skip messages
#   logs       the log files under $tmp that dump_logs shows (may be empty)
#   log_lines  how many lines of each log dump_logs shows (default 30)
#
# and, before any of the functions below runs, $tmp (its temporary
# directory) and $pids (the processes it started, space-separated), or has
# begin_berthd_test set them.
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
# For the tests that drive berthctl against a private berthd, with
# $berthctl, $berthd and $agent (the programs), $endpoint (berthd's URL,
# once known) and $secret (a value never to be printed) set:
#
#   begin_berthd_test PREFIX
#                  exits 1 when $berthctl was not built; skips when $berthd
#                  or $agent was not built or redis-server is missing; then
#                  makes $tmp (/tmp/PREFIX.XXXXXX), empties $pids,
#                  installs `trap cleanup EXIT` and exit 1 on INT, TERM and
#                  HUP, and writes $tmp/secrets.key (write_secrets_key).
#   write_secrets_key FILE
#                  a new key file of mode 600 holding one random key (id
#                  k1): berthd and the agents seal and unseal with it.
#   start_redis_socket
#                  starts a redis-server listening on $tmp/r.sock only
#                  (log: $tmp/redis.log) and waits at most 10 s for it;
#                  skips when it does not start.
#   start_berthd LOG SCHEME [CTL-ARGS] -- [BERTHD-ARGS]
#                  starts a berthd of cell c1 on that redis with
#                  --secrets-key $tmp/secrets.key, on a free port
#                  of 127.0.0.1 (a few random tries: a berthd that cannot
#                  listen exits), and waits at most 20 s for `berthctl host
#                  list CTL-ARGS` to work.  Sets $started_endpoint (empty on
#                  failure); returns 1 on failure.
#   start_berthd_endpoint
#                  start_berthd with log berthd.log over http; sets
#                  $endpoint, or dumps the logs and skips.
#   start_sim_agent HOST LOG [AGENT-ARGS]
#                  starts a berth-agent of cell c1 with the sim plugin (8
#                  cores, 16 GiB, --secrets-key $tmp/secrets.key) for HOST,
#                  its output in $tmp/LOG.
#   wait_for_hosts HOST...
#                  runs `ctl host list` until it names every HOST (at most
#                  20 s); $rc and $tmp/out are those of the last run.
#   ctl ARGS       runs berthctl ARGS against $endpoint with --timeout 60
#                  (bounded by `timeout 90` too when it exists): stdout in
#                  $tmp/out, stderr in $tmp/err, the exit status in $rc.
#   expect STATUS DESCRIPTION
#                  prints "ok: DESCRIPTION" and returns 0 when $rc is
#                  STATUS; else fails, shows the output (and with
#                  expect_dumps_logs=1 the logs) and returns 1.
#   has FILE TEXT DESCRIPTION
#                  fails unless $tmp/FILE (out or err) holds the fixed TEXT.
#   no_secret DESCRIPTION
#                  fails when $tmp/out or $tmp/err holds $secret.
#
# For the fault tests, with $tmp, $sock (a unix socket path in $tmp) and
# $seed set:
#
#   require_fault_programs
#                  exits 1 when $berthctl was not built; skips when $berthd
#                  or $agent was not built, or redis-server, redis-cli,
#                  curl or timeout is missing.
#   rnd N          sets $r to 0..N-1 from a linear congruential generator
#                  whose state is $seed (seeded by the test, so that its
#                  draws repeat from run to run).
#   sleep_ms MS    sleeps MS milliseconds.
#   rcli ARGS      redis-cli ARGS on $sock, bounded by `timeout 10`.
#   allowed_states NAME LOG
#                  prints the final states of group NAME that a request
#                  log allows (lines "SEQ OP NAME TAG STATUS ...", in the
#                  order sent; STATUS 000: no answer): the effect of the
#                  last acknowledged (2xx) PUT or DELETE (present:TAG, or
#                  absent; absent when there is none), then that of every
#                  PUT or DELETE sent after it without a 2xx answer (it may
#                  or may not have applied).  Other operations count not.
#   start_fault_agent HOST CORES MEMORY-MIB
#                  starts a berth-agent of cell $cell on $sock with the sim
#                  plugin for HOST (heartbeat every 500 ms, TTL 10 s), its
#                  output appended to $tmp/HOST.log; sets ${HOST}_pid.
#   start_redis_aof
#                  starts a redis-server on $sock only, its data in $tmp
#                  with AOF and appendfsync always (an acknowledged write
#                  survives SIGKILL), its output appended to
#                  $tmp/redis.log; sets $redis_pid and waits at most 20 s
#                  for it to answer (it loads the AOF first); returns 1
#                  when it does not.
#
# Sourcing starts nothing and installs no trap.

# shellcheck shell=sh disable=SC2154 # name, tmp, pids and the programs are the test's
: "${log_lines:=30}"
: "${logs:=}"
: "${expect_dumps_logs:=0}"

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

begin_berthd_test() {
    [ -x "$berthctl" ] || { echo "$name: $berthctl was not built"; exit 1; }
    { [ -f "$berthd" ] && [ -x "$berthd" ]; } || skip "tools/berthd was not built"
    [ -x "$agent" ] || skip "tools/berth-agent/berth-agent was not built"
    command -v redis-server >/dev/null 2>&1 || skip "redis-server is not installed"
    tmp=$(mktemp -d "/tmp/$1.XXXXXX")
    pids=""
    trap cleanup EXIT
    trap 'exit 1' INT TERM HUP
    write_secrets_key "$tmp/secrets.key"
}

# write_secrets_key FILE: a new key file (mode 600, one random 256-bit key
# with id k1) that start_berthd and start_sim_agent give their daemons.
write_secrets_key() {
    (umask 077 && printf 'k1 %s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >"$1")
}

start_redis_socket() {
    redis-server --port 0 --unixsocket "$tmp/r.sock" --daemonize no --save '' \
        --appendonly no >"$tmp/redis.log" 2>&1 &
    pids="$pids $!"
    i=0
    while [ ! -S "$tmp/r.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -S "$tmp/r.sock" ] || { cat "$tmp/redis.log"; skip "redis-server did not start"; }
}

start_berthd() {
    log=$1 scheme=$2
    shift 2
    ctl_args=""
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do ctl_args="$ctl_args $1"; shift; done
    [ $# -gt 0 ] && shift
    started_endpoint=""
    for try in 1 2 3 4 5; do
        port=$(( 10000 + ($$ * 31 + try * 977 + $(od -An -N2 -tu2 /dev/urandom)) % 22000 ))
        "$berthd" --listen "127.0.0.1:$port" --redis "unix://$tmp/r.sock" --cell c1 \
            --secrets-key "$tmp/secrets.key" "$@" \
            >"$tmp/$log" 2>&1 &
        bpid=$!
        deadline=$(( $(date +%s) + 20 ))
        while [ "$(date +%s)" -le "$deadline" ] && kill -0 "$bpid" 2>/dev/null; do
            # shellcheck disable=SC2086
            if "$berthctl" host list --endpoint "$scheme://127.0.0.1:$port" --timeout 1 \
                $ctl_args >/dev/null 2>&1; then
                started_endpoint="$scheme://127.0.0.1:$port"
                pids="$pids $bpid"
                return 0
            fi
            sleep 0.25
        done
        kill -9 "$bpid" 2>/dev/null
        wait "$bpid" 2>/dev/null
        grep -q -i "address already in use" "$tmp/$log" || break
    done
    return 1
}

start_berthd_endpoint() {
    start_berthd berthd.log http --
    endpoint=$started_endpoint
    [ -n "$endpoint" ] || { dump_logs; skip "berthd did not answer within 20 s"; }
    echo "ok: berthd answers at $endpoint"
}

start_sim_agent() {
    agent_host=$1 agent_log=$2
    shift 2
    "$agent" --redis "unix://$tmp/r.sock" --cell c1 --host "$agent_host" --plugin sim \
        --secrets-key "$tmp/secrets.key" --cores 8 --memory-mib 16384 --tick-ms 50 "$@" >"$tmp/$agent_log" 2>&1 &
    pids="$pids $!"
}

wait_for_hosts() {
    i=0
    while [ $i -lt 80 ]; do
        ctl host list
        if [ "$rc" = 0 ]; then
            missing=""
            for h in "$@"; do grep -q "^$h " "$tmp/out" || missing="$missing $h"; done
            [ -z "$missing" ] && break
        fi
        sleep 0.25
        i=$((i + 1))
    done
}

if command -v timeout >/dev/null 2>&1; then ctl_bound="timeout 90"; else ctl_bound=""; fi
ctl() {
    $ctl_bound "$berthctl" "$@" --endpoint "$endpoint" --timeout 60 >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

expect() {
    if [ "$rc" != "$1" ]; then
        fail "$2: exit status $rc, expected $1"
        echo "---- stdout"; cat "$tmp/out"; echo "---- stderr"; cat "$tmp/err"
        [ "$expect_dumps_logs" = 1 ] && dump_logs
        return 1
    fi
    echo "ok: $2"
    return 0
}

has() {
    grep -F -q -- "$2" "$tmp/$1" || { fail "$3: no '$2' in $1"; cat "$tmp/$1"; }
}

no_secret() {
    if grep -F -q -- "$secret" "$tmp/out" "$tmp/err"; then
        fail "$1: a secret value was printed"
    fi
}

require_fault_programs() {
    [ -x "$berthctl" ] || { echo "$name: $berthctl was not built"; exit 1; }
    { [ -f "$berthd" ] && [ -x "$berthd" ]; } || skip "tools/berthd was not built"
    [ -x "$agent" ] || skip "tools/berth-agent/berth-agent was not built"
    for tool in redis-server redis-cli curl timeout; do
        command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
    done
}

rnd() {
    seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
    r=$(( seed / 65536 % $1 ))
}

sleep_ms() {
    sleep "$(( $1 / 1000 )).$(printf '%03d' $(( $1 % 1000 )))"
}

rcli() {
    timeout 10 redis-cli -s "$sock" "$@"
}

allowed_states() {
    awk -v nm="$1" '
        $3 == nm && ($2 == "PUT" || $2 == "DELETE") {
            eff = ($2 == "PUT") ? "present:" $4 : "absent"
            if ($5 ~ /^2/) { n = 0; last = eff } else { un[++n] = eff }
        }
        END {
            printf "%s", (last == "" ? "absent" : last)
            for (i = 1; i <= n; i++) printf " %s", un[i]
        }' "$2"
}

start_fault_agent() {
    "$agent" --redis "unix://$sock" --cell "$cell" --host "$1" --plugin sim --cores "$2" \
        --memory-mib "$3" --tick-ms 50 --heartbeat-ms 500 --ttl-ms 10000 \
        >>"$tmp/$1.log" 2>&1 &
    eval "$1_pid=\$!"
}

start_redis_aof() {
    redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$tmp" \
        --appendonly yes --appendfsync always --save '' --daemonize no \
        >>"$tmp/redis.log" 2>&1 &
    redis_pid=$!
    i=0
    while [ $i -lt 200 ]; do
        [ "$(rcli ping 2>/dev/null)" = PONG ] && return 0
        kill -0 "$redis_pid" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
