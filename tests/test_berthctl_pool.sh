#!/bin/sh
# test_berthctl_pool.sh: `berthctl pool create|show|list|delete` end to end.
# Starts a private redis-server (unix socket only), a berthd on a free port
# of 127.0.0.1 and one berth-agent with the sim plugin, all in one
# temporary directory; then creates a standby pool of 2 and waits for its
# members to be ready, shows it (table and JSON), lists it beside a second
# pool, resizes it, refuses a bad template with a CloudError naming the
# member at fault, deletes both, and checks exit statuses, output, usage
# errors and that no secret of the template is printed.  Every wait is
# bounded; everything started is killed at exit.
#
# Exits 77 (skipped) when tools/berthd was not built, redis-server is
# missing, or berthd does not answer within 20 s -- unless
# BERTH_REQUIRE_ENGINES=1, which turns those into failures.
#
# Environment (set by "make check"): top_srcdir, top_builddir, BERTH_PLUGIN_PATH.
set -u

: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
name=test_berthctl_pool
logs="berthd.log agent.log"
berthctl="$top_builddir/tools/berthctl"
berthd="$top_builddir/tools/berthd/berthd"
agent="$top_builddir/tools/berth-agent"
. "$top_srcdir/tests/shell-lib.sh"

[ -x "$berthctl" ] || { echo "test_berthctl_pool: $berthctl was not built"; exit 1; }
{ [ -f "$berthd" ] && [ -x "$berthd" ]; } || skip "tools/berthd was not built"
[ -x "$agent" ] || skip "tools/berth-agent was not built"
command -v redis-server >/dev/null 2>&1 || skip "redis-server is not installed"

tmp=$(mktemp -d /tmp/berthctl-pool.XXXXXX)
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

secret='s3cr3t-Pool-77'
no_secret() {
    if grep -F -q -- "$secret" "$tmp/out" "$tmp/err"; then
        fail "$1: a secret value was printed"
    fi
}

# row NAME: the table row of pool NAME in the output ("" when none).
row() {
    awk -v n="$1" '$1 == n' "$tmp/out"
}

# ---- redis, berthd, one agent --------------------------------------------------------

redis-server --port 0 --unixsocket "$tmp/r.sock" --daemonize no --save '' \
    --appendonly no >"$tmp/redis.log" 2>&1 &
pids="$pids $!"
i=0
while [ ! -S "$tmp/r.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$tmp/r.sock" ] || { cat "$tmp/redis.log"; skip "redis-server did not start"; }

endpoint=""
for try in 1 2 3 4 5; do
    port=$(( 30000 + ($$ * 37 + try * 953 + $(od -An -N2 -tu2 /dev/urandom)) % 30000 ))
    "$berthd" --listen "127.0.0.1:$port" --redis "unix://$tmp/r.sock" --cell c1 \
        >"$tmp/berthd.log" 2>&1 &
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

"$agent" --redis "unix://$tmp/r.sock" --cell c1 --host h1 --plugin sim \
    --cores 8 --memory-mib 16384 --tick-ms 50 \
    --plugin-config '{"start_latency_ms": 100}' >"$tmp/agent.log" 2>&1 &
pids="$pids $!"
i=0
while [ $i -lt 80 ]; do
    ctl host list
    [ "$rc" = 0 ] && grep -q '^h1 ' "$tmp/out" && break
    sleep 0.25
    i=$((i + 1))
done
expect 0 "the host registered" || exit 1

# ---- the template ------------------------------------------------------------------

cat >"$tmp/template.json" <<JSON
{"location": "westeurope",
 "properties": {"osType": "Linux", "restartPolicy": "Always",
   "containers": [{"name": "app", "properties": {
     "image": "busybox:latest",
     "environmentVariables": [{"name": "MODE", "value": "standby"},
                              {"name": "TOKEN", "secureValue": "$secret"}],
     "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}]}}
JSON
sed 's/"cpu": 1,/"cpu": 0,/' "$tmp/template.json" >"$tmp/bad.json"

# ---- usage errors ----------------------------------------------------------------------

ctl pool create -g rg1 -n web-pool --file "$tmp/template.json"
expect 2 "create without --size is a usage error"
ctl pool create -g rg1 -n web-pool --file "$tmp/template.json" --size 1001
expect 2 "a --size past the limit is a usage error"
ctl pool create -g rg1 -n web-pool --size 2
expect 2 "create without --file is a usage error"
ctl pool show -g rg1
expect 2 "show without -n is a usage error"
ctl pool list
expect 2 "list without -g is a usage error"
ctl pool frobnicate -g rg1 -n web-pool
expect 2 "an unknown verb is a usage error"
ctl pool create -g rg1 -n web-pool --file "$tmp/missing.json" --size 2
expect 2 "a missing template file is a usage error"

# ---- create, show, list ------------------------------------------------------------------

ctl pool create -g rg1 -n web-pool --file "$tmp/template.json" --size 2
expect 0 "pool create waits for 2 ready members"
has err "created" "create says the pool is new"
has err "2 of 2 ready" "create shows its progress"
r=$(row web-pool)
[ -n "$r" ] || fail "create prints the pool's row"
echo "$r" | awk '{ exit !($2 == "Succeeded" && $3 == 2 && $4 == 2 && $5 == 2) }' ||
    fail "create's row: state Succeeded, size 2, 2 members, 2 ready: '$r'"
no_secret "pool create"

ctl pool show -g rg1 -n web-pool
expect 0 "pool show"
row web-pool | awk '{ exit !($3 == 2 && $5 == 2) }' || fail "show: size 2, 2 ready"
ctl pool show -g rg1 -n web-pool -o json
expect 0 "pool show -o json"
has out '"maxReadyCapacity": 2' "the JSON names the size"
has out '"readyCapacity": 2' "the JSON names the ready members"
has out 'busybox:latest' "the JSON holds the template"
no_secret "pool show -o json"

ctl pool create -g rg1 -n other-pool --file "$tmp/template.json" --size 0 --no-wait
expect 0 "a second pool, empty, without waiting"
ctl pool list -g rg1
expect 0 "pool list"
if [ -z "$(row web-pool)" ] || [ -z "$(row other-pool)" ]; then fail "list shows both pools"; fi
[ "$(awk 'NR > 1 { print $1 }' "$tmp/out" | tr '\n' ' ')" = "other-pool web-pool " ] ||
    fail "list is in name order"
ctl pool list -g rg1 -o json
expect 0 "pool list -o json"
has out '"value"' "the JSON list is a value array"
no_secret "pool list -o json"
ctl pool list -g rg2
expect 0 "pool list of another resource group"
[ -z "$(row web-pool)" ] || fail "another resource group has no pools"

ctl pool create -g rg1 -n web-pool --file "$tmp/template.json" --size 1
expect 0 "pool create of an existing pool resizes it"
has err "updated" "create says the pool was replaced"
row web-pool | awk '{ exit !($3 == 1 && $5 >= 1) }' || fail "the pool keeps 1 now"

# ---- bad input -------------------------------------------------------------------------

ctl pool create -g rg1 -n bad-pool --file "$tmp/bad.json" --size 1
expect 3 "a template asking for no CPU is refused by berthd"
has err "properties.containerGroupProperties.containerGroupProfile.properties.containers[0].properties.resources.requests.cpu" \
    "the CloudError names the member at fault"
ctl pool show -g rg1 -n bad-pool
expect 3 "nothing was created for the refused pool"
has err "ResourceNotFound" "the CloudError's code is printed"

# ---- delete ----------------------------------------------------------------------------

ctl pool delete -g rg1 -n web-pool
expect 0 "pool delete"
has out "web-pool: deleted" "delete says so"
ctl pool show -g rg1 -n web-pool
expect 3 "the pool is gone"
ctl pool delete -g rg1 -n web-pool
expect 0 "deleting a missing pool is no error"
has out "no such pool" "a second delete says there was none"
ctl pool delete -g rg1 -n other-pool
expect 0 "delete of the second pool"
ctl pool list -g rg1
expect 0 "pool list after delete"
[ "$(awk 'NR > 1' "$tmp/out" | wc -l)" -eq 0 ] || fail "no pools are left"

if [ "$failures" -gt 0 ]; then
    echo "test_berthctl_pool: $failures failure(s)"
    dump_logs
    exit 1
fi
echo "test_berthctl_pool: all ok"
exit 0
