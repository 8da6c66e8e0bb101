#!/bin/sh
# test_berthctl_api.sh: berthctl's container and host commands end to end.
# Starts a private redis-server (unix socket only), a berthd on a free port
# of 127.0.0.1 and a berth-agent with the sim plugin, all in one temporary
# directory, then drives `berthctl container create|show|list|logs|exec|
# restart|stop|start|delete` and `berthctl host list` against them, checks
# exit statuses, output and that no secret value is ever printed.  Every
# wait is bounded; everything started is killed at exit.
#
# Exits 77 (skipped) when tools/berthd was not built, redis-server is
# missing, or berthd does not answer within 20 s -- unless
# BERTH_REQUIRE_ENGINES=1, which turns those into failures.
#
# Environment (set by "make check"): top_srcdir, top_builddir, BERTH_PLUGIN_PATH.
set -u

: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
name=test_berthctl_api
logs="berthd.log agent.log"
berthctl="$top_builddir/tools/berthctl/berthctl"
# berthd builds as tools/berthd/berthd (tools/berthd is its source directory)
berthd="$top_builddir/tools/berthd/berthd"
[ -f "$berthd" ] || berthd="$top_builddir/tools/berthd"
agent="$top_builddir/tools/berth-agent/berth-agent"
. "$top_srcdir/tests/shell-lib.sh"

begin_berthd_test berthctl-api

secret='s3cr3t-Value-42'

# ---- start redis, berthd, the agent -------------------------------------------

start_redis_socket
start_berthd_endpoint

# The sim's registry refuses images under bad/ (a pull failure: Failed).
start_sim_agent h1 agent.log --metrics-interval 1 \
    --plugin-config '{"rules": [{"image": "bad/*", "pull_fail": true}]}'

# ---- host list: wait (at most 20 s) for h1 --------------------------------------

wait_for_hosts h1
expect 0 "host list" || dump_logs
has out "h1" "host list names the agent's host"
has out "NAME" "host list has a header"
has out "[" "host list draws utilization bars"

# ---- create from flags ------------------------------------------------------

ctl container create -g rg1 -n web --image busybox:latest --cpu 0.5 --memory 1.5 \
    --ports 80 443 --ip-address Public --dns-name-label web-label \
    --environment-variables MODE=test LEVEL=2 --secure-environment-variables "PASSWORD=$secret" \
    --command-line "sh -c 'sleep 1000'" --restart-policy OnFailure
expect 0 "create from flags" || dump_logs
has err "provisioningState" "create shows progress"
has out "Succeeded" "create ends Succeeded"
has out "PASSWORD=<redacted>" "create summary redacts the secure variable"
no_secret "create"

ctl container show -g rg1 -n web
expect 0 "show"
has out "web" "show names the group"
has out "busybox:latest" "show lists the image"
has out "0.5" "show gives the CPU"
has out "Host:" "show has the host line"
grep -q "^Host: *h1\$" "$tmp/out" || fail "show: the host is not h1"
has out "80/TCP (127.0.0.1:" "show gives where port 80 is published"
no_secret "show"

ctl container show -g rg1 -n web --output json
expect 0 "show --output json"
has out '"name": "web"' "show json is the document"
has out '"provisioningState"' "show json has the provisioningState"
no_secret "show --output json"

# ---- show --metrics: wait (at most 20 s) for the agent's first samples -----------

i=0
while [ $i -lt 80 ]; do
    ctl container show -g rg1 -n web --metrics
    [ "$rc" = 0 ] && grep -Eq '^NetworkBytesReceivedPerSecond +- +20[0-9-]+T' "$tmp/out" && break
    sleep 0.25
    i=$((i + 1))
done
expect 0 "show --metrics" || dump_logs
has out "busybox:latest" "show --metrics still shows the group"
grep -Eq '^CpuUsage +web +20[0-9-]+T[0-9:]+Z +[0-9.]+ +Count$' "$tmp/out" ||
    fail "show --metrics: no CPU average for container web"
# The simulator holds half the requested 1.5 GB (as GiB).
grep -Eq '^MemoryUsage +web +20[0-9-]+T[0-9:]+Z +805306368 +Bytes$' "$tmp/out" ||
    fail "show --metrics: no memory average of 805306368 bytes for container web"
grep -Eq '^NetworkBytesTransmittedPerSecond +- ' "$tmp/out" ||
    fail "show --metrics: no transmitted bytes row"
ctl container show -g rg1 -n web --metrics --output json
expect 0 "show --metrics --output json"
has out '"namespace": "Microsoft.ContainerInstance/containerGroups"' \
    "show --metrics json is Azure Monitor's answer"
ctl container show -g rg1 -n no-such-group --metrics
expect 3 "show --metrics of no group"
has err "ResourceNotFound" "show --metrics of no group names the error"

# ---- create from a file, with -n and --location overriding it ------------------

cat >"$tmp/group.json" <<'EOF'
{
  "name": "from-file",
  "location": "northeurope",
  "properties": {
    "osType": "Linux",
    "containers": [
      {"name": "main", "properties": {"image": "busybox:latest",
        "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}},
      {"name": "side", "properties": {"image": "busybox:latest",
        "resources": {"requests": {"cpu": 0.25, "memoryInGB": 0.5}}}}
    ]
  }
}
EOF
ctl container create -g rg1 --file "$tmp/group.json" -n filed --location eastus
expect 0 "create --file"
has out "filed" "create --file uses -n"
has out "eastus" "create --file uses --location"

ctl container create -g rg2 --file "$tmp/group.json" --no-wait
expect 0 "create --file --no-wait (name from the file)"

ctl container create -g rg3 -n spotty --image busybox:latest --cpu 0.5 --memory 0.5 \
    --priority Spot
expect 0 "create --priority Spot"
ctl container show -g rg3 -n spotty --output json
expect 0 "show the Spot group"
grep -q '"priority": *"Spot"' "$tmp/out" || fail "create --priority Spot: no Spot priority"

# ---- list -----------------------------------------------------------------------

ctl container list -g rg1
expect 0 "list -g"
has out "NAME" "list has a header"
has out "RESOURCE-GROUP" "list has the resource-group column"
has out "HOST" "list has the host column"
grep "^web " "$tmp/out" | grep -q " h1 " || fail "list: web's host is not h1"
has out "web" "list -g shows web"
has out "filed" "list -g shows filed"
grep -q "from-file" "$tmp/out" && fail "list -g rg1 shows a group of rg2"

ctl container list
expect 0 "list (subscription)"
has out "from-file" "list shows every resource group"
no_secret "list"

ctl container list --output json
expect 0 "list --output json"
has out '"name": "web"' "list json"
no_secret "list --output json"

# ---- logs and exec --------------------------------------------------------------

ctl container logs -g rg1 -n web --tail 10
expect 0 "logs"
ctl container logs -g rg1 -n filed --container-name side --timestamps
expect 0 "logs --container-name --timestamps"

ctl container exec -g rg1 -n web --exec-command "echo hello"
expect 0 "exec"
has out "hello" "exec prints the output"
ctl container exec -g rg1 -n filed --container-name side --exec-command "exit 3"
expect 3 "exec exits with the command's exit code"

# ---- restart, stop, start -------------------------------------------------------

ctl container restart -g rg1 -n web
expect 0 "restart"
ctl container show -g rg1 -n web --output json
expect 0 "show before the stop"
ports_before=$(grep -o '"hostPort": *[0-9]*' "$tmp/out" | tr -d ' ' | sort | tr '\n' ' ')
[ -n "$ports_before" ] || fail "show json: no hostPort on the published ports"
ctl container stop -g rg1 -n web
expect 0 "stop"
ctl container list -g rg1
expect 0 "list after the stop"
grep "^web " "$tmp/out" | grep -q " - " || fail "list: a stopped group still shows a host"
ctl container start -g rg1 -n web
expect 0 "start"
# The group comes back on h1 with the same host ports (bounded wait: the
# agent publishes them once it has created the group again).
ports_after=
for i in $(seq 1 100); do
    ctl container show -g rg1 -n web --output json
    ports_after=$(grep -o '"hostPort": *[0-9]*' "$tmp/out" | tr -d ' ' | sort | tr '\n' ' ')
    [ -n "$ports_after" ] && break
    sleep 0.2
done
[ "$ports_after" = "$ports_before" ] ||
    fail "stop/start changed the host ports: '$ports_before' then '$ports_after'"
echo "ok: host ports after stop/start: $ports_after"

ctl host list
expect 0 "host list with groups"
has out "%" "host list shows utilization"

# ---- errors -------------------------------------------------------------------------

ctl container create -g rg1 -n bad --image busybox --no-such-flag
expect 2 "unknown flag -> 2"
ctl container create -g rg1 -n bad --image busybox --cpu lots
expect 2 "bad --cpu -> 2"
ctl container create -g rg1 -n bad --image busybox --priority Sometimes
expect 2 "bad --priority -> 2"
ctl container create -g rg1 -n Bad_Name --image busybox
expect 2 "invalid group name (checked locally) -> 2"
ctl container show -g rg1
expect 2 "show without -n -> 2"
ctl container create -g rg1 -n bad --file "$tmp/nonexistent.json"
expect 2 "missing --file -> 2"
ctl container show -g rg1 -n no-such-group
expect 3 "missing group -> 3"
has err "ResourceNotFound" "missing group prints the CloudError code"
ctl container logs -g rg-none -n no-such-group
expect 3 "logs of a missing group -> 3"
ctl container create -g rg1 -n too-big --image busybox --cpu 64 --memory 1
if [ "$rc" = 0 ]; then fail "a group larger than every host succeeded"; else echo "ok: too big -> $rc"; fi

ctl container create -g rg1 -n pull-fails --image bad/image
expect 1 "a group that ends Failed -> 1"
has err "provisioningState Failed" "create shows the Failed state"
has err "events:" "create prints the events of a Failed group"
ctl container create -g rg1 -n pull-fails-nowait --image bad/image --no-wait
expect 0 "create --no-wait returns once accepted"
ctl container delete -g rg1 -n pull-fails
expect 0 "delete the Failed group"
ctl container delete -g rg1 -n pull-fails-nowait
expect 0 "delete the --no-wait group"

"$berthctl" container show -g rg1 -n web --endpoint http://127.0.0.1:1 --timeout 5 \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
expect 3 "no server -> 3"

# ---- delete -------------------------------------------------------------------------

ctl container delete -g rg1 -n web
expect 0 "delete"
ctl container show -g rg1 -n web
expect 3 "show after delete -> 3"
has err "ResourceNotFound" "deleted group is not found"
ctl container delete -g rg1 -n filed --yes
expect 0 "delete --yes"
# ---- TLS and bearer tokens: a second berthd on the same cell ------------------

if command -v openssl >/dev/null 2>&1 &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
        >"$tmp/openssl.log" 2>&1; then
    token='tok-Abcdef-0123456789'
    printf '%s *\n' "$token" >"$tmp/tokens"
    start_berthd berthd-tls.log https --insecure --token "$token" -- \
        --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --tokens "$tmp/tokens"
    if [ -z "$started_endpoint" ]; then
        fail "berthd with TLS and tokens did not start"
        tail -n 20 "$tmp/berthd-tls.log"
    else
        plain=$endpoint
        endpoint=$started_endpoint
        ctl host list --cacert "$tmp/cert.pem" --token "$token"
        expect 0 "https with --cacert and --token"
        BERTH_TOKEN=$token ctl container list --cacert "$tmp/cert.pem"
        expect 0 "the token from \$BERTH_TOKEN"
        has out "from-file" "the TLS berthd serves the same cell"
        ctl host list --token "$token"
        expect 3 "an untrusted self-signed certificate -> 3"
        ctl host list --insecure --token "$token"
        expect 0 "--insecure skips verification"
        ctl container list --cacert "$tmp/cert.pem" --token wrong-token-123
        expect 3 "a wrong token -> 3"
        grep -F -q "wrong-token-123" "$tmp/out" "$tmp/err" && fail "the token was printed"
        ctl container list --cacert "$tmp/cert.pem"
        expect 3 "no token -> 3"
        endpoint=$plain
    fi
else
    echo "note: no openssl; TLS not tested"
fi

ctl container delete -g rg2 -n from-file
expect 0 "delete from-file"

if [ "$failures" -ne 0 ]; then
    dump_logs
    echo "test_berthctl_api: $failures failure(s)"
    exit 1
fi
echo "test_berthctl_api: all passed"
exit 0
