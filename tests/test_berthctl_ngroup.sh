#!/bin/sh
# test_berthctl_ngroup.sh: `berthctl ngroup create|show|list|scale|update|
# delete` end to end.  Starts a private redis-server (unix socket only), a
# berthd on a free port of 127.0.0.1 (its reconcile timer quickened with
# BERTHD_CLAIM_IDLE_MS) and three berth-agents with the sim plugin, one per
# zone, all in one temporary directory; then creates an NGroup of 3 spread
# over the zones, scales it to 5, rolls a template change out, lists, shows
# and deletes it, and checks exit statuses, output, usage errors, a
# CloudError naming the member at fault, and that no secret is printed.
# Every wait is bounded; everything started is killed at exit.
#
# Exits 77 (skipped) when tools/berthd was not built, redis-server is
# missing, or berthd does not answer within 20 s -- unless
# BERTH_REQUIRE_ENGINES=1, which turns those into failures.
#
# Environment (set by "make check"): top_srcdir, top_builddir, BERTH_PLUGIN_PATH.
set -u

: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
name=test_berthctl_ngroup
logs="berthd.log agent-1.log"
berthctl="$top_builddir/tools/berthctl"
berthd="$top_builddir/tools/berthd/berthd"
agent="$top_builddir/tools/berth-agent"
. "$top_srcdir/tests/shell-lib.sh"

[ -x "$berthctl" ] || { echo "test_berthctl_ngroup: $berthctl was not built"; exit 1; }
[ -f "$berthd" ] && [ -x "$berthd" ] || skip "tools/berthd was not built"
[ -x "$agent" ] || skip "tools/berth-agent was not built"
command -v redis-server >/dev/null 2>&1 || skip "redis-server is not installed"

tmp=$(mktemp -d /tmp/berthctl-ngroup.XXXXXX)
pids=""

trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if command -v timeout >/dev/null 2>&1; then bound="timeout 90"; else bound=""; fi
ctl() {
    $bound "$berthctl" "$@" --endpoint "$endpoint" --timeout 60 >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

expect() {
    if [ "$rc" != "$1" ]; then
        fail "$2: exit status $rc, expected $1"
        echo "---- stdout"; cat "$tmp/out"; echo "---- stderr"; cat "$tmp/err"
        dump_logs
        return 1
    fi
    echo "ok: $2"
    return 0
}

has() {
    grep -F -q -- "$2" "$tmp/$1" || { fail "$3: no '$2' in $1"; cat "$tmp/$1"; }
}

secret='s3cr3t-NGroup-42'
no_secret() {
    if grep -F -q -- "$secret" "$tmp/out" "$tmp/err"; then
        fail "$1: a secret value was printed"
    fi
}

# count_members ZONE: members of the shown NGroup in ZONE (table output).
count_members() {
    awk -v z="$1" '$1 ~ /^web-[0-9]+$/ && $2 == z { n++ } END { print n + 0 }' "$tmp/out"
}

# ---- redis, berthd, three agents ---------------------------------------------------

redis-server --port 0 --unixsocket "$tmp/r.sock" --daemonize no --save '' \
    --appendonly no >"$tmp/redis.log" 2>&1 &
pids="$pids $!"
i=0
while [ ! -S "$tmp/r.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$tmp/r.sock" ] || { cat "$tmp/redis.log"; skip "redis-server did not start"; }

endpoint=""
for try in 1 2 3 4 5; do
    port=$(( 30000 + ($$ * 31 + try * 977 + $(od -An -N2 -tu2 /dev/urandom)) % 30000 ))
    BERTHD_CLAIM_IDLE_MS=600 "$berthd" --listen "127.0.0.1:$port" \
        --redis "unix://$tmp/r.sock" --cell c1 >"$tmp/berthd.log" 2>&1 &
    bpid=$!
    deadline=$(( $(date +%s) + 20 ))
    while [ "$(date +%s)" -le "$deadline" ] && kill -0 "$bpid" 2>/dev/null; do
        if "$berthctl" host list --endpoint "http://127.0.0.1:$port" --timeout 1 \
            >/dev/null 2>&1; then
            endpoint="http://127.0.0.1:$port"
            pids="$pids $bpid"
            break 2
        fi
        sleep 0.25
    done
    kill -9 "$bpid" 2>/dev/null
    wait "$bpid" 2>/dev/null
    grep -q -i "address already in use" "$tmp/berthd.log" || break
done
[ -n "$endpoint" ] || { dump_logs; skip "berthd did not answer within 20 s"; }
echo "ok: berthd answers at $endpoint"

for z in 1 2 3; do
    "$agent" --redis "unix://$tmp/r.sock" --cell c1 --host "h$z" --zone "$z" --plugin sim \
        --cores 8 --memory-mib 16384 --tick-ms 50 \
        --plugin-config '{"start_latency_ms": 100}' >"$tmp/agent-$z.log" 2>&1 &
    pids="$pids $!"
done
i=0
while [ $i -lt 80 ]; do
    ctl host list
    [ "$rc" = 0 ] && grep -q '^h1 ' "$tmp/out" && grep -q '^h2 ' "$tmp/out" &&
        grep -q '^h3 ' "$tmp/out" && break
    sleep 0.25
    i=$((i + 1))
done
expect 0 "three hosts registered" || exit 1

# ---- the template ------------------------------------------------------------------

template() {
    cat >"$tmp/template.json" <<JSON
{"location": "westeurope", "tags": {"team": "web"},
 "properties": {"osType": "Linux", "containers": [{"name": "app", "properties": {
   "image": "busybox:latest",
   "environmentVariables": [{"name": "MODE", "value": "$1"},
                            {"name": "TOKEN", "secureValue": "$secret"}],
   "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}]}}
JSON
}

# ---- usage errors ----------------------------------------------------------------------

template one
ctl ngroup create -g rg1 -n web --file "$tmp/template.json"
expect 2 "create without --count is a usage error"
ctl ngroup create -g rg1 -n web --file "$tmp/template.json" --count lots
expect 2 "a bad --count is a usage error"
ctl ngroup frobnicate -g rg1 -n web
expect 2 "an unknown subcommand is a usage error"

# ---- create, show, list ------------------------------------------------------------

ctl ngroup create -g rg1 -n web --file "$tmp/template.json" --count 3 --zones 1,2,3 \
    --max-unavailable 1
expect 0 "ngroup create waits for Succeeded"
has out "Succeeded" "create shows the NGroup Succeeded"
no_secret "create"
for z in 1 2 3; do
    [ "$(count_members "$z")" = 1 ] || fail "zone $z holds $(count_members "$z") members, not 1"
done
echo "ok: one member per zone"

ctl ngroup show -g rg1 -n web -o json
expect 0 "ngroup show -o json"
has out '"desiredCount": 3' "show names the desired count"
has out '"runningCount": 3' "show counts the running members"
no_secret "show"

ctl ngroup list -g rg1
expect 0 "ngroup list"
has out "web" "list names the NGroup"

# ---- scale, update ---------------------------------------------------------------------

ctl ngroup scale -g rg1 -n web --count 5
expect 0 "ngroup scale to 5"
has out "Succeeded" "scale ends Succeeded"
n=$(awk '$1 ~ /^web-[0-9]+$/ { n++ } END { print n + 0 }' "$tmp/out")
[ "$n" = 5 ] || fail "5 members expected after scale, found $n"
for z in 1 2 3; do
    c=$(count_members "$z")
    [ "$c" -ge 1 ] && [ "$c" -le 2 ] || fail "zone $z holds $c members after scale"
done

template two
ctl ngroup update -g rg1 -n web --file "$tmp/template.json"
expect 0 "ngroup update rolls the new template out"
has out "Succeeded" "update ends Succeeded"
awk '$1 == "web" && $3 != 2 { exit 1 }' "$tmp/out" || fail "revision 2 expected after update"
n=$(awk '$1 ~ /^web-[0-9]+$/ && $4 == 2 { n++ } END { print n + 0 }' "$tmp/out")
[ "$n" = 5 ] || fail "5 members at revision 2 expected after update, found $n"
no_secret "update"

# ---- bad input: usage errors, and berthd's CloudError naming the member -------------

ctl ngroup scale -g rg1 -n web --count 5 --max-unavailable 0
expect 2 "--max-unavailable 0 is a usage error"
ctl ngroup create -g rg1 -n other --file "$tmp/template.json" --count 2 --zones 1,9
expect 3 "an unknown zone is refused by berthd"
has err "zones[1]" "the CloudError names the zone at fault"
ctl ngroup show -g rg1 -n other
expect 3 "nothing was created for the refused NGroup"
ctl ngroup show -g rg1 -n nosuch
expect 3 "show of a missing NGroup is an HTTP error"
has err "ResourceNotFound" "the CloudError's code is printed"

# ---- delete ------------------------------------------------------------------------------

ctl ngroup delete -g rg1 -n web
expect 0 "ngroup delete"
ctl ngroup show -g rg1 -n web
expect 3 "the NGroup is gone"
ctl container list -g rg1
ctl host list
expect 0 "host list after delete"

if [ "$failures" -gt 0 ]; then
    echo "test_berthctl_ngroup: $failures failure(s)"
    dump_logs
    exit 1
fi
echo "test_berthctl_ngroup: all ok"
exit 0
