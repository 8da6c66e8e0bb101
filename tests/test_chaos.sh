#!/bin/sh
# test_chaos.sh: Berth under a bounded storm of faults.  Starts, in one
# temporary directory, a redis-server with AOF (appendfsync always) on a
# unix socket, two berthds of one cell (chaos) on free ports of 127.0.0.1,
# each reaching Redis through its own cutting proxy (redis-cut-proxy,
# tests/cut-proxy.h), and four berth-agents with the sim plugin (h1-h4,
# 12 cores and 32 GiB each: the groups on the clients' names, a core each,
# fill up to all of it, so that some requests are refused for room).
#
# Four clients (curl loops, each a process of its own) send creates,
# updates, deletes, stops and starts, each request to either berthd, and
# log every request with its answer.  Each client owns its names (c<N>g0-
# c<N>g5, plus up to 8 names used once, c<N>u<SEQ>), so a client's log is the
# order of the requests on its names; 15% of the requests go to names all
# clients share (s0-s3), where requests race each other through both
# berthds: the order of those is unknown, so they count only in the cell's
# own checks (capacity, placements and records, generations, fsck).  Meanwhile a fault loop, every
# 0.3-1.2 s, does one of: SIGKILL a berthd and restart it; SIGKILL an agent
# and restart it (same host name); SIGSTOP an agent for 0.5-2.5 s (well
# under its 10 s heartbeat TTL) then SIGCONT it; SIGKILL redis-server and
# restart it on its AOF; arm a berthd's proxy, which cuts every Redis
# connection of that berthd right after its next commit FCALL (the commit
# applies; berthd never sees its reply).  The clients stop once they have
# sent BERTH_CHAOS_OPS requests in all (default 3000) and the fault loop
# has injected BERTH_CHAOS_FAULTS faults (default 50); BERTH_CHAOS_SECONDS
# (default 150) bounds the storm however far it got, and the test then
# fails unless both floors were met.
#
# Then everything settles (bounded waits) and the test counts, and prints
# as ONE summary line:
#   lost                        acknowledged requests not reflected: per
#                               name, the final state (GET through a
#                               berthd: absent, or present with the tag of
#                               the PUT it shows) must be the effect of the
#                               last acknowledged PUT or DELETE, or of a PUT
#                               or DELETE sent after it that got no 2xx
#                               answer (it may or may not have applied);
#                               every acknowledged create of a name used
#                               once must have its record; and a name
#                               whose last acknowledged request was a stop,
#                               with nothing sent after it, must show
#                               Stopped
#   over_capacity               placed groups on a host whose placements
#                               add up to more than its cores or memory
#   placed_without_resource     placements with no berthd resource record
#   resource_without_placement  resource records, not Stopped, with no
#                               placement
#   generation_mismatch         placed groups whose agent's instance view
#                               (berth:{chaos}:views) does not describe the
#                               placement's generation (the resource
#                               record's, or the placement's when the
#                               group moved)
#   not_running                 groups whose last acknowledged request was
#                               a PUT or a start, with no unanswered stop
#                               or DELETE after it, that do not show
#                               Running
#   fsck                        `berthctl fsck` of the cell
# e.g. "chaos: ops=3412 faults=61 lost=0 over_capacity=0 ... fsck=clean".
# Every count must be 0 and fsck clean.
#
# The fault loop draws from its own generator seeded with BERTH_CHAOS_SEED
# (default 20261208); the timing of the requests around the faults does
# not repeat.  Exits 77 (skipped) when a program it needs is missing --
# unless BERTH_REQUIRE_ENGINES=1 (CI), which turns that into a failure.
# Every wait is bounded; every process started is stopped by its pid on
# every exit path.  BERTH_CHAOS_KEEP=1 keeps the temporary directory.
#
# Environment (set by "make check"): top_srcdir, top_builddir, BERTH_PLUGIN_PATH;
# BERTH_CHAOS_OPS, BERTH_CHAOS_FAULTS, BERTH_CHAOS_SECONDS, BERTH_CHAOS_SEED.
set -u
LC_ALL=C
export LC_ALL

: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
name=test_chaos
logs="d1.log d2.log h1.log h2.log h3.log h4.log redis.log p1.log p2.log"
log_lines=15
berthctl="$top_builddir/tools/berthctl/berthctl"
berthd="$top_builddir/tools/berthd/berthd"
agent="$top_builddir/tools/berth-agent/berth-agent"
proxy="$top_builddir/tests/redis-cut-proxy"
ops_floor=${BERTH_CHAOS_OPS:-3000}
faults_floor=${BERTH_CHAOS_FAULTS:-50}
storm_seconds=${BERTH_CHAOS_SECONDS:-150}
seed=${BERTH_CHAOS_SEED:-20261208}
cell=chaos
clients="1 2 3 4"
hosts="h1 h2 h3 h4"
. "$top_srcdir/tests/shell-lib.sh"

[ -x "$proxy" ] || { echo "$name: $proxy was not built"; exit 1; }
require_fault_programs

tmp=$(mktemp -d /tmp/berth-chaos.XXXXXX)
sock="$tmp/redis.sock"
redis_pid="" d1_pid="" d2_pid="" p1_pid="" p2_pid=""
h1_pid="" h2_pid="" h3_pid="" h4_pid=""
c1_pid="" c2_pid="" c3_pid="" c4_pid=""

cleanup() {
    touch "$tmp/stop" 2>/dev/null
    # A stopped agent must be continued to take its SIGTERM.
    for p in $h1_pid $h2_pid $h3_pid $h4_pid; do kill -CONT "$p" 2>/dev/null; done
    pids="$c1_pid $c2_pid $c3_pid $c4_pid $d1_pid $d2_pid $h1_pid $h2_pid $h3_pid $h4_pid"
    pids="$pids $p1_pid $p2_pid $redis_pid"
    stop_pids
    if [ "${BERTH_CHAOS_KEEP:-0}" = 1 ]; then
        echo "$name: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- the processes ---------------------------------------------------------------

# start_proxy N: berthd N's proxy; sets pN_pid and pN_port.
start_proxy() {
    rm -f "$tmp/p$1.port"
    "$proxy" --upstream "unix:$sock" --port-file "$tmp/p$1.port" >>"$tmp/p$1.cuts" \
        2>>"$tmp/p$1.log" &
    eval "p$1_pid=\$!"
    i=0
    while [ ! -s "$tmp/p$1.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -s "$tmp/p$1.port" ] || return 1
    eval "p$1_port=\$(cat \"\$tmp/p$1.port\")"
}

# start_berthd N: berthd N on the port it had (a free one the first time),
# through its proxy; waits at most 20 s for /healthz to answer 200.
start_berthd() {
    eval "port=\${d$1_port:-}"
    eval "pport=\$p$1_port"
    tries=1
    [ -z "$port" ] && tries=5
    t=0
    while [ $t -lt $tries ]; do
        t=$((t + 1))
        if [ $tries -gt 1 ]; then
            port=$(( 10000 + ($$ * 31 + t * 977 + $1 * 7919 + $(od -An -N2 -tu2 /dev/urandom)) % 22000 ))
        fi
        "$berthd" --listen "127.0.0.1:$port" --redis "redis://127.0.0.1:$pport" \
            --cell "$cell" --data-dir "$tmp/d$1" >>"$tmp/d$1.log" 2>&1 &
        pid=$!
        eval "d$1_pid=$pid"
        i=0
        while [ $i -lt 80 ]; do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
                "http://127.0.0.1:$port/healthz" 2>/dev/null)
            if [ "$code" = 200 ]; then
                eval "d$1_port=$port"
                echo "$port" >"$tmp/d$1.port"
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
            i=$((i + 1))
        done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        eval "d$1_pid=''"
        grep -q -i "address already in use" "$tmp/d$1.log" || [ $tries = 1 ] || break
    done
    return 1
}

# start_agent HOST: sets ${HOST}_pid.
start_agent() {
    start_fault_agent "$1" 12 32768
}

mkdir -p "$tmp/d1" "$tmp/d2"
start_redis_aof || { dump_logs; skip "redis-server did not start"; }
for n in 1 2; do
    start_proxy $n || { dump_logs; echo "$name: FAIL: proxy $n did not start"; exit 1; }
    start_berthd $n || { dump_logs; skip "berthd $n did not answer within 20 s"; }
done
for h in $hosts; do start_agent "$h"; done
i=0
while [ $i -lt 80 ]; do
    [ "$(rcli hlen "berth:{$cell}:hosts" 2>/dev/null)" = 4 ] && break
    sleep 0.25
    i=$((i + 1))
done
[ "$(rcli hlen "berth:{$cell}:hosts")" = 4 ] || { dump_logs; skip "the agents did not register within 20 s"; }
echo "$name: redis, berthds on ports $d1_port and $d2_port, agents $hosts up;" \
    "at least $ops_floor requests and $faults_floor faults, at most $storm_seconds s (seed $seed)"

# ---- the clients -------------------------------------------------------------------

api=2023-05-01
path() {
    echo "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.ContainerInstance/containerGroups/$1"
}

# client_loop N: logs one line per request to ops-N.log: SEQ OP NAME TAG
# HTTP-STATUS (000: no answer) and, for an error, its code.  A PUT's document carries its tag (N,
# SEQ: unique across clients) as tag and environment variable, so an
# update is a real redeploy and a GET tells which PUT it shows.  Stops on
# $tmp/stop, or after 20 times its share of requests whatever happens.
client_loop() {
    c=$1
    seed=$(( $1 * 7777 + 13 ))
    n=0 uniques=0
    share=$(( (ops_floor + 3) / 4 ))
    while [ ! -f "$tmp/stop" ] && [ $n -lt $((share * 20)) ]; do
        n=$((n + 1))
        [ $n = "$share" ] && touch "$tmp/client$c.done"
        rnd 2
        port=$(cat "$tmp/d$((r + 1)).port")
        rnd 6
        nm=c${c}g$r
        cpu=1 mem=2
        tag="$c$(printf '%06d' $n)"
        rnd 20
        if [ $r -ge 17 ]; then
            # a name every client uses (s0-s3): requests on it race
            # between the clients and the two berthds
            rnd 4
            nm=s$r
            rnd 20
        elif [ $r -lt 1 ] && [ $uniques -lt 8 ]; then
            # a name of its own, never touched again (8 at most: each
            # holds a core to the end)
            nm=c${c}u$n r=0
            uniques=$((uniques + 1))
        fi
        u="http://127.0.0.1:$port$(path "$nm")"
        if [ $r -lt 10 ]; then
            op=PUT
            printf '{"location": "eastus", "tags": {"gen": "%s"}, "properties": {"osType": "Linux", "restartPolicy": "Always", "containers": [{"name": "main", "properties": {"image": "busybox:latest", "command": ["sleep", "100000"], "resources": {"requests": {"cpu": %s, "memoryInGB": %s}}, "environmentVariables": [{"name": "GEN", "value": "%s"}]}}]}}' \
                "$tag" "$cpu" "$mem" "$tag" >"$tmp/body-$c.json"
            code=$(curl -s -o "$tmp/answer-$c.json" -w '%{http_code}' --max-time 5 -X PUT \
                -H 'Content-Type: application/json' --data-binary "@$tmp/body-$c.json" \
                "$u?api-version=$api" 2>/dev/null)
        elif [ $r -lt 13 ]; then
            op=DELETE
            code=$(curl -s -o "$tmp/answer-$c.json" -w '%{http_code}' --max-time 5 -X DELETE \
                "$u?api-version=$api" 2>/dev/null)
        else
            op=stop
            [ $r -ge 16 ] && op=start
            code=$(curl -s -o "$tmp/answer-$c.json" -w '%{http_code}' --max-time 5 -X POST \
                -H 'Content-Length: 0' "$u/$op?api-version=$api" 2>/dev/null)
        fi
        # an error's code, from the answer's body
        why=""
        case ${code:-000} in
        2*|000) ;;
        *) why=$(sed -n 's/.*"code": *"\([A-Za-z]*\)".*/\1/p' "$tmp/answer-$c.json" | head -n 1) ;;
        esac
        echo "$n $op $nm $tag ${code:-000} $why" >>"$tmp/ops-$c.log"
        rm -f "$tmp/answer-$c.json"
    done
    touch "$tmp/client$c.done"
}

for c in $clients; do
    : >"$tmp/ops-$c.log"
    client_loop "$c" &
    eval "c${c}_pid=\$!"
done

# ---- the faults ----------------------------------------------------------------------

f_berthd=0 f_agent=0 f_stop=0 f_redis=0 f_cut=0 restart_failures=0
fault() {
    echo "$(date +%s) $*" >>"$tmp/faults.log"
}
# crash WHAT PIDVAR: SIGKILLs the process whose pid $PIDVAR holds, reaps
# it, logs the fault and waits 0-299 ms before the caller restarts it.
crash() {
    eval "p=\$$2"
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    fault "$1 killed"
    rnd 300
    sleep_ms "$r"
}
clients_done() {
    for c in $clients; do [ -f "$tmp/client$c.done" ] || return 1; done
    return 0
}
end=$(( $(date +%s) + storm_seconds ))
faults=0
while [ "$(date +%s)" -lt "$end" ]; do
    [ $faults -ge "$faults_floor" ] && clients_done && break
    rnd 901
    sleep_ms $((300 + r))
    rnd 10
    case $r in
    0|1)
        rnd 2
        n=$((r + 1))
        crash "berthd $n" "d${n}_pid"
        f_berthd=$((f_berthd + 1))
        start_berthd $n || { restart_failures=$((restart_failures + 1)); fault "berthd $n restart failed"; }
        ;;
    2|3)
        rnd 4
        h=h$((r + 1))
        crash "agent $h" "${h}_pid"
        f_agent=$((f_agent + 1))
        start_agent "$h"
        ;;
    4|5)
        rnd 4
        h=h$((r + 1))
        eval "p=\$${h}_pid"
        kill -STOP "$p" 2>/dev/null
        f_stop=$((f_stop + 1))
        fault "agent $h stopped"
        rnd 2001
        sleep_ms $((500 + r))
        kill -CONT "$p" 2>/dev/null
        ;;
    6)
        crash redis redis_pid
        f_redis=$((f_redis + 1))
        start_redis_aof || { restart_failures=$((restart_failures + 1)); fault "redis restart failed"; }
        ;;
    *)
        rnd 2
        n=$((r + 1))
        eval "p=\$p${n}_pid"
        kill -USR1 "$p" 2>/dev/null
        f_cut=$((f_cut + 1))
        fault "proxy $n armed"
        ;;
    esac
    faults=$((faults + 1))
done

# ---- stop the clients, settle -------------------------------------------------------------

touch "$tmp/stop"
for c in $clients; do
    eval "p=\$c${c}_pid"
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    eval "c${c}_pid=''"
done
# A proxy still armed would cut a later commit: nothing commits from here
# on, but restart both so that the checks read through clean proxies.
cuts=$(cat "$tmp/p1.cuts" "$tmp/p2.cuts" 2>/dev/null | wc -l)

errors=0
error() {
    echo "ERROR: $*"
    errors=$((errors + 1))
}

# Everything must be running again (a restart that failed above is retried).
kill -0 "$redis_pid" 2>/dev/null || start_redis_aof || error "redis-server does not restart"
for n in 1 2; do
    eval "p=\$d${n}_pid"
    kill -0 "$p" 2>/dev/null || start_berthd $n || error "berthd $n does not restart"
done
for h in $hosts; do
    eval "p=\$${h}_pid"
    kill -CONT "$p" 2>/dev/null
    kill -0 "$p" 2>/dev/null || { error "agent $h died on its own"; start_agent "$h"; }
done

cat "$tmp"/ops-*.log >"$tmp/ops.log"
ops=$(wc -l <"$tmp/ops.log")
[ "$ops" -ge "$ops_floor" ] || error "only $ops requests were sent in $storm_seconds s (floor $ops_floor)"
[ $faults -ge "$faults_floor" ] || error "only $faults faults were injected in $storm_seconds s (floor $faults_floor)"

# The placements, decoded by Redis itself (the records are msgpack): one
# line "KEY HOST GEN" per group, then "over N": how many groups sit on a
# host whose placements add up to more than its cores or memory (or on a
# host without a record).
placements_lua='
local hosts = {}
local h = redis.call("HGETALL", KEYS[1])
for i = 1, #h, 2 do
    local r = cmsgpack.unpack(h[i + 1])
    hosts[h[i]] = {cores = r.cores, mem = r.mem, mc = 0, m = 0, n = 0}
end
local out, on = {}, {}
local g = redis.call("HGETALL", KEYS[2])
for i = 1, #g, 2 do
    local r = cmsgpack.unpack(g[i + 1])
    out[#out + 1] = g[i] .. " " .. tostring(r.host) .. " " .. tostring(r.gen)
    local x = hosts[r.host]
    if x == nil then
        x = {cores = 0, mem = 0, mc = 0, m = 0, n = 0}
        hosts[r.host] = x
    end
    x.mc = x.mc + (r.mc or 0)
    x.m = x.m + (r.mem or 0)
    x.n = x.n + 1
end
local over = 0
for _, x in pairs(hosts) do
    if x.mc > x.cores * 1000 or x.m > x.mem then over = over + x.n end
end
out[#out + 1] = "over " .. over
return out'
placements() {
    rcli eval "$placements_lua" 2 "berth:{$cell}:hosts" "berth:{$cell}:groups" >"$tmp/placements.txt"
    sed '$d' "$tmp/placements.txt" | sort >"$tmp/placed.txt"
}

# berthd's resource records: "KEY GEN STATE" per record.
resources() {
    rcli --raw hgetall "berth:{$cell}:resources" | awk '
        NR % 2 == 1 { key = $0; next }
        {
            gen = $0; sub(/.*"generation": *"?/, "", gen); sub(/[^0-9].*/, "", gen)
            st = "-"
            if ($0 ~ /"state": *"Stopped"/) st = "Stopped"
            print key, gen, st
        }' | sort >"$tmp/resources.txt"
}

# The instance views: "KEY GEN" per view.
views() {
    rcli --raw hgetall "berth:{$cell}:views" | awk '
        NR % 2 == 1 { key = $0; next }
        { gen = $0; sub(/.*"generation": *"?/, "", gen); sub(/[^0-9].*/, "", gen); print key, gen }' |
        sort >"$tmp/views.txt"
}

# Placed groups whose view does not describe the generation they must run:
# the placement's, which is the record's unless the group moved since.
generation_mismatches() {
    placements
    resources
    views
    join "$tmp/placed.txt" "$tmp/resources.txt" >"$tmp/placed-rec.txt"
    join -a 1 -e none -o 0,1.2,1.3,1.4,2.2 "$tmp/placed-rec.txt" "$tmp/views.txt" |
        awk '{ want = ($3 > $4) ? $3 : $4; if ($5 != want) print $1 " placement " $3 " record " $4 " view " $5 }'
}

# Settle: at most 60 s for every placed group's view to describe its
# generation (agents that were stopped or restarted catch up).
i=0
while [ $i -lt 240 ]; do
    [ -z "$(generation_mismatches)" ] && break
    sleep 0.25
    i=$((i + 1))
done

# ---- what the requests' log says each name must be ----------------------------------------

base1="http://127.0.0.1:$d1_port"
base2="http://127.0.0.1:$d2_port"
# get NAME [BASE]: sets $state (absent, present:TAG, error:CODE) and $run
# (the group's instanceView.state).
get() {
    body=$(curl -s --max-time 10 -w '\n%{http_code}' "${2:-$base1}$(path "$1")?api-version=$api" 2>/dev/null)
    code=$(echo "$body" | tail -n 1)
    run=$(echo "$body" | sed -n 's/.*"instanceView": *{"state": *"\([A-Za-z]*\)".*/\1/p' | head -n 1)
    case $code in
    200) state="present:$(echo "$body" | sed -n 's/.*"gen": *"\([0-9]*\)".*/\1/p' | head -n 1)" ;;
    404) state="absent" ;;
    *) state="error:$code" ;;
    esac
}

# Names that must run: the last acknowledged request was a PUT or a start
# and no stop or DELETE was sent after it ("run NAME").  Names that must be
# stopped: the last acknowledged request was a stop and nothing was sent
# after it ("stop NAME").  The shared names' order is unknown: left out.
awk '
    $3 ~ /^s/ { next }
    {
        if ($5 ~ /^2/) { last[$3] = $2; stopping[$3] = 0; other[$3] = 0 }
        else if ($2 == "stop" || $2 == "DELETE") stopping[$3] = 1
        else other[$3] = 1
    }
    END {
        for (n in last) {
            if ((last[n] == "PUT" || last[n] == "start") && !stopping[n]) print "run", n
            if (last[n] == "stop" && !stopping[n] && !other[n]) print "stop", n
        }
    }' "$tmp/ops.log" | sort >"$tmp/must.txt"
sed -n 's/^run //p' "$tmp/must.txt" >"$tmp/must-run.txt"
sed -n 's/^stop //p' "$tmp/must.txt" >"$tmp/must-stop.txt"

not_running_names() {
    for nm in $(cat "$tmp/must-run.txt"); do
        get "$nm"
        [ "$run" = Running ] || echo "$nm $state $run"
    done
}
# at most 60 s for them all to run
i=0
while [ $i -lt 60 ]; do
    not_running_names >"$tmp/not-running.txt"
    [ -s "$tmp/not-running.txt" ] || break
    sleep 1
    i=$((i + 1))
done

lost=0
for nm in $(awk '$3 ~ /^c[0-9]*g/ { print $3 }' "$tmp/ops.log" | sort -u); do
    get "$nm"
    # both berthds must answer the same
    s1=$state
    get "$nm" "$base2"
    [ "$state" = "$s1" ] || error "$nm: berthd 1 shows $s1, berthd 2 shows $state"
    allowed=$(allowed_states "$nm" "$tmp/ops.log")
    ok=0
    for a in $allowed; do [ "$a" = "$s1" ] && ok=1; done
    if [ $ok = 0 ]; then
        lost=$((lost + 1))
        echo "LOST: $nm is $s1; allowed: $allowed"
        grep " $nm " "$tmp/ops.log" | tail -n 8
    fi
done
# Every acknowledged stop that nothing followed holds.
for nm in $(cat "$tmp/must-stop.txt"); do
    get "$nm"
    if [ "$run" != Stopped ]; then
        lost=$((lost + 1))
        echo "LOST: the acknowledged stop of $nm: it is $state, $run"
        grep " $nm " "$tmp/ops.log" | tail -n 8
    fi
done
# Every acknowledged create of a name of its own has its record.
rcli hkeys "berth:{$cell}:resources" | sed -n 's|^sub1/rg1/\(c[0-9]*u[0-9]*\)$|\1|p' | sort >"$tmp/unique.txt"
awk '$3 ~ /u/ && $5 ~ /^2/ { print $3 }' "$tmp/ops.log" | sort >"$tmp/unique-acked.txt"
for nm in $(comm -23 "$tmp/unique-acked.txt" "$tmp/unique.txt"); do
    lost=$((lost + 1))
    echo "LOST: the acknowledged create of $nm: no record"
done

# ---- the cell's own consistency --------------------------------------------------------------

generation_mismatches >"$tmp/gen-mismatch.txt"
over=$(sed -n 's/^over //p' "$tmp/placements.txt")
[ -n "$over" ] || { error "the placements could not be read"; over=0; }
cut -d ' ' -f 1 "$tmp/placed.txt" >"$tmp/placed-keys.txt"
cut -d ' ' -f 1 "$tmp/resources.txt" >"$tmp/resource-keys.txt"
awk '$3 != "Stopped" { print $1 }' "$tmp/resources.txt" >"$tmp/resource-live-keys.txt"
comm -23 "$tmp/placed-keys.txt" "$tmp/resource-keys.txt" >"$tmp/placed-without.txt"
comm -13 "$tmp/placed-keys.txt" "$tmp/resource-live-keys.txt" >"$tmp/resource-without.txt"

timeout 60 "$berthctl" fsck --redis "unix://$sock" --cell "$cell" >"$tmp/fsck.out" 2>"$tmp/fsck.err"
fsck_rc=$?
fsck=clean
if [ $fsck_rc -ne 0 ]; then
    fsck="exit$fsck_rc"
    cat "$tmp/fsck.out" "$tmp/fsck.err"
fi

show() {
    [ -s "$tmp/$1" ] || return 0
    echo "---- $2"
    head -n 20 "$tmp/$1"
}
show placed-without.txt "groups placed without a resource record"
show resource-without.txt "resource records (not Stopped) without a placement"
show gen-mismatch.txt "placed groups whose view describes another generation"
show not-running.txt "groups that should be Running (name, state, instance view state)"

acked=$(awk '$5 ~ /^2/' "$tmp/ops.log" | wc -l)
noanswer=$(awk '$5 == "000"' "$tmp/ops.log" | wc -l)
echo "$name: requests sent $ops, acknowledged $acked, no answer $noanswer;" \
    "names that must run $(wc -l <"$tmp/must-run.txt"), must be stopped $(wc -l <"$tmp/must-stop.txt")"
awk '$5 !~ /^2/ && $5 != "000" { c[$2 " " $5 " " $6]++ } END { for (k in c) print "  answered " k ": " c[k] }' \
    "$tmp/ops.log" | sort
echo "$name: faults $faults: berthd killed $f_berthd, agent killed $f_agent, agent stopped $f_stop," \
    "redis killed $f_redis, proxy armed $f_cut (cuts made $cuts); restarts that failed at once $restart_failures"
[ "$acked" -gt 0 ] || error "no request was acknowledged"
# Under --enable-sanitizers a daemon's report lands in its log.
for f in d1.log d2.log h1.log h2.log h3.log h4.log p1.log p2.log; do
    grep -q -E "ERROR: [A-Za-z]*Sanitizer|runtime error:" "$tmp/$f" 2>/dev/null &&
        error "a sanitizer report in $f: $(grep -m 1 -E "Sanitizer|runtime error:" "$tmp/$f")"
done

summary="chaos: ops=$ops faults=$faults lost=$lost over_capacity=$over"
summary="$summary placed_without_resource=$(wc -l <"$tmp/placed-without.txt")"
summary="$summary resource_without_placement=$(wc -l <"$tmp/resource-without.txt")"
summary="$summary generation_mismatch=$(wc -l <"$tmp/gen-mismatch.txt")"
summary="$summary not_running=$(wc -l <"$tmp/not-running.txt") fsck=$fsck"
echo "$summary"
case $summary in
*"lost=0 over_capacity=0 placed_without_resource=0 resource_without_placement=0 generation_mismatch=0 not_running=0 fsck=clean")
    [ $errors -eq 0 ] && { echo "$name: passed"; exit 0; } ;;
esac
dump_logs
echo "$name: FAIL"
exit 1
