#!/bin/sh
# test_berthctl_hosts.sh: `berthctl host cordon|uncordon|drain`,
# `berthctl container logs --follow` and `container attach` end to end.
# Starts a private redis-server (unix socket only), a berthd on a free port of 127.0.0.1 and
# two berth-agents with the sim plugin (h1, h2), all in one temporary
# directory; cordons a host, drains one onto the other, and follows the
# logs of a group until it ends.  Every wait is bounded (the follow by
# timeout(1) too); everything started is killed at exit.
#
# Exits 77 (skipped) when tools/berthd was not built, redis-server is
# missing, or berthd does not answer within 20 s -- unless
# BERTH_REQUIRE_ENGINES=1, which turns those into failures.
#
# Environment (set by "make check"): top_srcdir, top_builddir, BERTH_PLUGIN_PATH.
set -u

: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
name=test_berthctl_hosts
logs="berthd.log agent1.log agent2.log"
berthctl="$top_builddir/tools/berthctl/berthctl"
berthd="$top_builddir/tools/berthd/berthd"
[ -f "$berthd" ] || berthd="$top_builddir/tools/berthd"
agent="$top_builddir/tools/berth-agent/berth-agent"
. "$top_srcdir/tests/shell-lib.sh"

begin_berthd_test berthctl-hosts

start_redis_socket
start_berthd_endpoint
start_sim_agent h1 agent1.log
start_sim_agent h2 agent2.log
wait_for_hosts h1 h2
expect 0 "host list" || dump_logs

# ---- usage and errors ---------------------------------------------------------

ctl host cordon
expect 2 "cordon without a host -> 2"
ctl host cordon h1 h2
expect 2 "cordon with two hosts -> 2"
ctl host cordon no-such-host
expect 3 "cordon of an unknown host -> 3"
has err "HostNotFound" "the error names the code"

# ---- cordon: new groups go elsewhere; uncordon ------------------------------------

ctl host cordon h2
expect 0 "cordon h2"
has out "host h2 cordoned" "cordon says the state"
ctl host list
has out "cordoned" "host list shows the cordoned host"
ctl container create -g rg -n g1 --image busybox:latest --cpu 1
expect 0 "create g1" || dump_logs
ctl container create -g rg -n g2 --image busybox:latest --cpu 1
expect 0 "create g2" || dump_logs
for g in g1 g2; do
    ctl container show -g rg -n $g
    grep -q "^Host: *h1\$" "$tmp/out" || fail "$g did not land on h1 (h2 cordoned)"
done
ctl host uncordon h2
expect 0 "uncordon h2"
has out "host h2 ready" "uncordon says the state"

# ---- drain: every group moves to h2 ----------------------------------------------

ctl host drain h1
expect 0 "drain h1" || dump_logs
has out "host h1 drained" "drain ends drained"
has err "moved" "drain shows what moved"
for g in g1 g2; do
    ok=0
    i=0
    while [ $i -lt 80 ]; do
        ctl container show -g rg -n $g
        if grep -q "^Host: *h2\$" "$tmp/out" && grep -q "Succeeded" "$tmp/out"; then
            ok=1
            break
        fi
        sleep 0.25
        i=$((i + 1))
    done
    [ $ok = 1 ] || fail "$g did not run on h2 after the drain"
done
ctl host list --output json
has out '"state": "cordoned"' "h1 stays cordoned after the drain"
ctl host drain h1 --no-wait --output json
expect 0 "drain --no-wait of an empty host"
has out '"remaining": []' "nothing remains"
ctl host uncordon h1
expect 0 "uncordon h1"

# ---- logs --follow until the group ends ------------------------------------------

ctl container create -g rg -n job --image busybox:latest --cpu 1 --restart-policy Never \
    --environment-variables BERTH_SIM_EXIT_AFTER_MS=3000
expect 0 "create job" || dump_logs
ctl container logs -g rg -n job --follow
expect 0 "logs --follow ends with the group" || dump_logs
has out "started" "follow prints the start"
has out "exited with code 0" "follow prints the last line"
n=$(grep -c "started" "$tmp/out")
[ "$n" = 1 ] || fail "follow printed 'started' $n times, not once"

# ---- attach: the output until the group ends -------------------------------------

ctl container create -g rg -n job2 --image busybox:latest --cpu 1 --restart-policy Never \
    --environment-variables BERTH_SIM_EXIT_AFTER_MS=3000
expect 0 "create job2" || dump_logs
ctl container attach -g rg -n job2
expect 0 "attach ends with the group" || dump_logs
has out "started" "attach prints the start"
has out "exited with code 0" "attach prints the last line"

if [ "$failures" -ne 0 ]; then
    dump_logs
    echo "test_berthctl_hosts: $failures failure(s)"
    exit 1
fi
echo "test_berthctl_hosts: all passed"
exit 0
