#!/bin/sh
# test_faults.sh: Berth under crashes.  Starts, in one temporary directory,
# a redis-server with AOF (appendfsync always: an acknowledged write
# survives SIGKILL) on a unix socket, a berthd (--cell faults) on a free
# port of 127.0.0.1 and two berth-agents with the sim plugin (h1, h2).  A
# client loop (curl) keeps creating, updating and deleting container groups
# through the REST API, on names drawn from a small set (g0-g7) and on
# names used once (u<N>), and logs every
# request with its answer.  Meanwhile a fault loop kills berthd, an agent
# or redis-server with SIGKILL every 1-4 s and restarts it (same arguments,
# same data, same host name) for BERTH_FAULT_SECONDS (default 45).
#
# Then the client stops, everything settles (bounded waits), and the test
# checks:
#   - `berthctl fsck` finds no violation;
#   - no group key is in two hosts' group sets (berth:{faults}:hostgroups:*),
#     checked here explicitly: fsck only reads the sets of hosts that have
#     a host record;
#   - every group placed has a resource record and every resource record a
#     placement (no container that no record owns, no record left unplaced);
#   - every instance view (berth:{faults}:views) belongs to an existing
#     group: the sim keeps no runtime across an agent restart, so the views
#     are what the agents run;
#   - every acknowledged create of a name used once (u<N>, 15% of the
#     requests) left its record: none was lost to a crash;
#   - every acknowledged request (2xx) is reflected: per name, the final
#     state is the effect of the last acknowledged request (PUT -> GET 200
#     with that PUT's tag gen; DELETE -> GET 404), or the effect of an
#     unanswered request sent after it (a request that got no answer or a
#     non-2xx answer may or may not have been applied).
# A final state that only an unanswered request sent BEFORE the last
# acknowledged one explains is a STALE REPLAY: every request is one atomic
# commit and nothing is replayed later, so none may happen; a stale replay
# is a violation (BERTH_FAULTS_STRICT=0 only reports it, for diagnosis).
# It prints the requests sent and acknowledged, the faults injected by kind
# and the violations; exits 1 when there is any.
#
# The fault loop draws from its own generator seeded with BERTH_FAULT_SEED
# (default 20240607), so the fault kinds and intervals repeat from run to
# run; the timing of the requests around them does not.
#
# Exits 77 (skipped) when berthd, berth-agent, redis-server, redis-cli,
# curl or timeout is missing -- unless BERTH_REQUIRE_ENGINES=1 (CI), which
# turns that into a failure.  Every wait is bounded; everything started is
# killed at exit.
#
# Environment (set by "make check"): top_srcdir, top_builddir, BERTH_PLUGIN_PATH;
# BERTH_FAULT_SECONDS, BERTH_FAULT_SEED.
set -u

: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
name=test_faults
logs="berthd.log h1.log h2.log redis.log"
log_lines=20
berthctl="$top_builddir/tools/berthctl/berthctl"
berthd="$top_builddir/tools/berthd/berthd"
[ -f "$berthd" ] || berthd="$top_builddir/tools/berthd"
agent="$top_builddir/tools/berth-agent/berth-agent"
fault_seconds=${BERTH_FAULT_SECONDS:-45}
seed=${BERTH_FAULT_SEED:-20240607}
cell=faults
. "$top_srcdir/tests/shell-lib.sh"

require_fault_programs

tmp=$(mktemp -d /tmp/berth-faults.XXXXXX)
sock="$tmp/redis.sock"
redis_pid="" berthd_pid="" h1_pid="" h2_pid="" client_pid=""

all_pids() {
    echo "$client_pid $berthd_pid $h1_pid $h2_pid $redis_pid"
}

cleanup() {
    touch "$tmp/stop" 2>/dev/null
    pids=$(all_pids)
    stop_pids
    if [ "${BERTH_FAULTS_KEEP:-0}" = 1 ]; then
        echo "$name: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- the processes ---------------------------------------------------------------

# berthd on $port; waits at most 20 s for /healthz to answer 200.
start_berthd() {
    "$berthd" --listen "127.0.0.1:$port" --redis "unix://$sock" \
        --cell "$cell" --data-dir "$tmp/berthd" >>"$tmp/berthd.log" 2>&1 &
    berthd_pid=$!
    i=0
    while [ $i -lt 80 ]; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$base/healthz" 2>/dev/null)
        [ "$code" = 200 ] && return 0
        kill -0 "$berthd_pid" 2>/dev/null || return 1
        sleep 0.25
        i=$((i + 1))
    done
    return 1
}

# start_agent HOST: sets ${HOST}_pid.
start_agent() {
    start_fault_agent "$1" 1024 4194304
}

start_redis_aof || { dump_logs; skip "redis-server did not start"; }
mkdir -p "$tmp/berthd"
started=0
for try in 1 2 3 4 5; do
    port=$(( 10000 + ($$ * 31 + try * 977 + $(od -An -N2 -tu2 /dev/urandom)) % 22000 ))
    base="http://127.0.0.1:$port"
    if start_berthd; then started=1; break; fi
    kill -9 "$berthd_pid" 2>/dev/null
    wait "$berthd_pid" 2>/dev/null
    berthd_pid=""
    grep -q -i "address already in use" "$tmp/berthd.log" || break
done
[ $started = 1 ] || { dump_logs; skip "berthd did not answer within 20 s"; }
start_agent h1
start_agent h2
i=0
while [ $i -lt 80 ]; do
    [ "$(rcli hlen "berth:{$cell}:hosts" 2>/dev/null)" = 2 ] && break
    sleep 0.25
    i=$((i + 1))
done
[ "$(rcli hlen "berth:{$cell}:hosts")" = 2 ] || { dump_logs; skip "the agents did not register within 20 s"; }
echo "$name: redis, berthd ($base) and agents h1, h2 up; faults for $fault_seconds s (seed $seed)"

# ---- the client --------------------------------------------------------------------

api=2023-05-01
names="g0 g1 g2 g3 g4 g5 g6 g7"
url() {
    echo "$base/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.ContainerInstance/containerGroups/$1?api-version=$api"
}

# Logs one line per request to ops.log: SEQ OP NAME GEN HTTP-STATUS (000: no
# answer).  A PUT's document carries its sequence number as tag and
# environment variable, so an update is a real redeploy and the final GET
# tells which PUT it shows.
client_loop() {
    seed=$(( $1 ))
    n=0
    while [ ! -f "$tmp/stop" ] && [ $n -lt 1000000 ]; do
        n=$((n + 1))
        rnd 8
        nm=g$r
        cpu=0.5
        rnd 20
        if [ $r -lt 3 ]; then
            # a name of its own, never touched again
            nm=u$n
            cpu=0.1
            r=0
        fi
        if [ $r -lt 12 ]; then
            op=PUT
            printf '{"location": "eastus", "tags": {"gen": "%s"}, "properties": {"osType": "Linux", "restartPolicy": "Always", "containers": [{"name": "main", "properties": {"image": "busybox:latest", "command": ["sleep", "100000"], "resources": {"requests": {"cpu": %s, "memoryInGB": %s}}, "environmentVariables": [{"name": "GEN", "value": "%s"}]}}]}}' \
                "$n" "$cpu" "$cpu" "$n" >"$tmp/body.json"
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X PUT \
                -H 'Content-Type: application/json' --data-binary "@$tmp/body.json" \
                "$(url "$nm")" 2>/dev/null)
        else
            op=DELETE
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X DELETE \
                "$(url "$nm")" 2>/dev/null)
        fi
        echo "$n $op $nm $n ${code:-000}" >>"$tmp/ops.log"
    done
}

: >"$tmp/ops.log"
client_loop $((seed + 7)) &
client_pid=$!

# ---- the faults ----------------------------------------------------------------------

k_berthd=0 k_agent=0 k_redis=0 restart_failures=0
end=$(( $(date +%s) + fault_seconds ))
while [ "$(date +%s)" -lt "$end" ]; do
    rnd 3001
    sleep_ms $((1000 + r))
    rnd 3
    case $r in
    0)
        kill -9 "$berthd_pid" 2>/dev/null
        wait "$berthd_pid" 2>/dev/null
        k_berthd=$((k_berthd + 1))
        echo "fault: berthd killed at $(date +%s)" >>"$tmp/faults.log"
        rnd 500
        sleep_ms "$r"
        start_berthd || { restart_failures=$((restart_failures + 1)); echo "berthd restart failed" >>"$tmp/faults.log"; }
        ;;
    1)
        rnd 2
        h=h$((r + 1))
        eval "p=\$${h}_pid"
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
        k_agent=$((k_agent + 1))
        echo "fault: agent $h killed at $(date +%s)" >>"$tmp/faults.log"
        rnd 500
        sleep_ms "$r"
        start_agent "$h"
        ;;
    2)
        kill -9 "$redis_pid" 2>/dev/null
        wait "$redis_pid" 2>/dev/null
        k_redis=$((k_redis + 1))
        echo "fault: redis killed at $(date +%s)" >>"$tmp/faults.log"
        rnd 500
        sleep_ms "$r"
        start_redis_aof || { restart_failures=$((restart_failures + 1)); echo "redis restart failed" >>"$tmp/faults.log"; }
        ;;
    esac
done

# ---- stop the client, settle -------------------------------------------------------------

touch "$tmp/stop"
i=0
while kill -0 "$client_pid" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 "$client_pid" 2>/dev/null
wait "$client_pid" 2>/dev/null
client_pid=""

violations=0 stale=0
violation() {
    echo "VIOLATION: $*"
    violations=$((violations + 1))
}

# Everything must be running again (a restart that failed above is retried).
kill -0 "$redis_pid" 2>/dev/null || start_redis_aof || violation "redis-server does not restart"
kill -0 "$berthd_pid" 2>/dev/null || start_berthd || violation "berthd does not restart"
for h in h1 h2; do
    eval "p=\$${h}_pid"
    kill -0 "$p" 2>/dev/null || { violation "agent $h died on its own"; start_agent "$h"; }
done

# No request is left to finish: each one was a single atomic commit, so
# nothing of berthd's lingers in Redis but records (no request stream).
[ "$(rcli exists "berth:{$cell}:requests" 2>/dev/null)" = 0 ] ||
    violation "a request stream exists: berth:{$cell}:requests"

# Views follow placements: wait (at most 30 s) until every view belongs to a
# placed group.
orphan_views() {
    rcli hkeys "berth:{$cell}:groups" | sort >"$tmp/groups.txt"
    rcli hkeys "berth:{$cell}:views" | sort >"$tmp/views.txt"
    comm -13 "$tmp/groups.txt" "$tmp/views.txt"
}
i=0
while [ $i -lt 120 ]; do
    [ -z "$(orphan_views)" ] && break
    sleep 0.25
    i=$((i + 1))
done

# ---- checks ----------------------------------------------------------------------------

timeout 60 "$berthctl" fsck --redis "unix://$sock" --cell "$cell" >"$tmp/fsck.out" 2>"$tmp/fsck.err"
rc=$?
if [ $rc -ne 0 ]; then
    violation "berthctl fsck exited $rc"
    cat "$tmp/fsck.out" "$tmp/fsck.err"
else
    echo "ok: $(cat "$tmp/fsck.err")"
fi

# No group in two hosts' sets (including the sets of hosts without a record).
: >"$tmp/members.txt"
for k in $(rcli --scan --pattern "berth:{$cell}:hostgroups:*"); do
    rcli smembers "$k" >>"$tmp/members.txt"
done
dups=$(sort "$tmp/members.txt" | uniq -d)
[ -z "$dups" ] || violation "groups in more than one host's group set: $dups"

# Placements and resource records match one to one.
rcli hkeys "berth:{$cell}:resources" | sort >"$tmp/resources.txt"
rcli hkeys "berth:{$cell}:groups" | sort >"$tmp/groups.txt"
x=$(comm -13 "$tmp/resources.txt" "$tmp/groups.txt")
[ -z "$x" ] || violation "groups placed without a resource record: $x"
x=$(comm -23 "$tmp/resources.txt" "$tmp/groups.txt")
[ -z "$x" ] || violation "resource records without a placement: $x"
x=$(orphan_views)
[ -z "$x" ] || violation "instance views of groups that do not exist: $x"

# The final state of each name against the requests' log.
for nm in $names; do
    body=$(curl -s --max-time 10 -w '\n%{http_code}' "$(url "$nm")" 2>/dev/null)
    code=$(echo "$body" | tail -n 1)
    case $code in
    200)
        gen=$(echo "$body" | sed -n 's/.*"gen": *"\([0-9]*\)".*/\1/p' | head -n 1)
        state="present:$gen" ;;
    404) state="absent" ;;
    *) state="error:$code" ;;
    esac
    # The states allowed: the last acknowledged request's effect (absent
    # when there is none), and the effect of every request after it that
    # got no 2xx answer.
    allowed=$(allowed_states "$nm" "$tmp/ops.log")
    ok=0
    for a in $allowed; do [ "$a" = "$state" ] && ok=1; done
    if [ $ok = 1 ]; then
        echo "ok: $nm is $state"
    else
        # Did an earlier unanswered request win (applied after a later
        # acknowledged one)?
        earlier=$(awk -v nm="$nm" -v st="$state" '$3 == nm && $5 !~ /^2/ {
            eff = ($2 == "PUT") ? "present:" $4 : "absent"; if (eff == st) print $1 }' "$tmp/ops.log" | tail -n 1)
        if [ -n "$earlier" ] && [ "${BERTH_FAULTS_STRICT:-1}" = 0 ]; then
            # Reported only, when asked (BERTH_FAULTS_STRICT=0).
            echo "STALE REPLAY: $nm is $state, from unanswered request #$earlier replayed after the last acknowledged one (allowed: $allowed)"
            stale=$((stale + 1))
        else
            violation "$nm is $state; allowed: $allowed${earlier:+ (matches unanswered request #$earlier, sent before the last acknowledged one)}"
        fi
        grep " $nm " "$tmp/ops.log" | tail -n 6
    fi
done

# Every acknowledged create of a name of its own must have its record.
rcli hkeys "berth:{$cell}:resources" | sed -n 's|^sub1/rg1/\(u[0-9]*\)$|\1|p' | sort >"$tmp/unique.txt"
awk '$3 ~ /^u/ && $5 ~ /^2/ { print $3 }' "$tmp/ops.log" | sort >"$tmp/unique-acked.txt"
x=$(comm -23 "$tmp/unique-acked.txt" "$tmp/unique.txt" | tr '\n' ' ')
[ -z "$x" ] || violation "acknowledged creates lost: $x"
echo "ok: $(wc -l <"$tmp/unique-acked.txt") acknowledged creates of names of their own, $(wc -l <"$tmp/unique.txt") such groups exist"

sent=$(wc -l <"$tmp/ops.log")
acked=$(awk '$5 ~ /^2/' "$tmp/ops.log" | wc -l)
noanswer=$(awk '$5 == "000"' "$tmp/ops.log" | wc -l)
other=$((sent - acked - noanswer))
echo "$name: requests sent $sent, acknowledged $acked, no answer $noanswer, other answers $other"
awk '$5 !~ /^2/ && $5 != "000" { c[$2 " " $5]++ } END { for (k in c) print "  answered " k ": " c[k] }' "$tmp/ops.log"
echo "$name: faults injected $((k_berthd + k_agent + k_redis)): berthd $k_berthd, agent $k_agent, redis $k_redis; restarts that failed at once $restart_failures"
echo "$name: violations $violations; stale replays $stale"
if [ "$acked" -eq 0 ]; then
    violation "no request was acknowledged"
fi
if [ $violations -ne 0 ]; then
    dump_logs
    echo "$name: FAIL"
    exit 1
fi
echo "$name: passed"
exit 0
