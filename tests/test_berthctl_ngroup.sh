#!/bin/sh
# test_berthctl_ngroup.sh: `berthctl ngroup create|show|list|scale|update|
# delete` end to end.  Starts a private redis-server (unix socket only), a
# berthd on a free port of 127.0.0.1 (its reconcile timer quickened with
# BERTHD_TICK_MS) and three berth-agents with the sim plugin, one per
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
expect_dumps_logs=1
berthctl="$top_builddir/tools/berthctl/berthctl"
berthd="$top_builddir/tools/berthd/berthd"
agent="$top_builddir/tools/berth-agent/berth-agent"
. "$top_srcdir/tests/shell-lib.sh"

begin_berthd_test berthctl-ngroup

secret='s3cr3t-NGroup-42'

# count_members ZONE: members of the shown NGroup in ZONE (table output).
count_members() {
    awk -v z="$1" '$1 ~ /^web-[0-9]+$/ && $2 == z { n++ } END { print n + 0 }' "$tmp/out"
}

# ---- redis, berthd, three agents ---------------------------------------------------

start_redis_socket
# berthd's reconcile timer quickened (for berthd alone)
BERTHD_TICK_MS=300
export BERTHD_TICK_MS
start_berthd_endpoint
unset BERTHD_TICK_MS
for z in 1 2 3; do
    start_sim_agent "h$z" "agent-$z.log" --zone "$z" --plugin-config '{"start_latency_ms": 100}'
done
wait_for_hosts h1 h2 h3
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
    --max-batch-percent 34
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

ctl ngroup scale -g rg1 -n web --count 5 --max-batch-percent 0
expect 2 "--max-batch-percent 0 is a usage error"
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
