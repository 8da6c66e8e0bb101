#!/bin/sh
# test_berthctl_pool.sh: `berthctl pool create|show|list|delete` end to end.
# Starts a private redis-server (unix socket only), a berthd on a free port
# of 127.0.0.1 and one berth-agent with the sim plugin, all in one
# temporary directory; then creates a standby pool of 2 from a container
# group profile made from a template file and waits for its members to be
# ready, shows it (table and JSON), lists it beside a second pool naming
# the same profile, resizes it, refuses a bad template with a CloudError
# naming the member at fault and a profile that does not exist, deletes
# both, and checks exit statuses, output, usage errors and that no secret
# of the template is printed.  Every wait is
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
expect_dumps_logs=1
berthctl="$top_builddir/tools/berthctl/berthctl"
berthd="$top_builddir/tools/berthd/berthd"
agent="$top_builddir/tools/berth-agent/berth-agent"
. "$top_srcdir/tests/shell-lib.sh"

begin_berthd_test berthctl-pool

secret='s3cr3t-Pool-77'

# row NAME: the table row of pool NAME in the output ("" when none).
row() {
    awk -v n="$1" '$1 == n' "$tmp/out"
}

# ---- redis, berthd, one agent --------------------------------------------------------

start_redis_socket
start_berthd_endpoint
start_sim_agent h1 agent.log --plugin-config '{"start_latency_ms": 100}'
wait_for_hosts h1
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
ctl pool create -g rg1 -n web-pool --file "$tmp/template.json" --size 2001
expect 2 "a --size past the limit is a usage error"
ctl pool create -g rg1 -n web-pool --file "$tmp/template.json" --size 2 --revision 0
expect 2 "a --revision of 0 is a usage error"
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
has out 'containerGroupProfiles/web-pool' "the JSON references the profile"
has out '"revision": 1' "the JSON names the profile's revision"
no_secret "pool show -o json"

ctl pool create -g rg1 -n other-pool --profile web-pool --size 0 --no-wait
expect 0 "a second pool of the same profile, empty, without waiting"
ctl pool create -g rg1 -n lost-pool --profile no-such-profile --size 1 --no-wait
expect 3 "a pool of a profile that does not exist is refused"
has err "properties.containerGroupProperties.containerGroupProfile.id" \
    "the CloudError names the profile reference"
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
has err "properties.containers[0].properties.resources.requests.cpu" \
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
