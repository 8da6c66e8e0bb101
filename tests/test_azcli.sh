#!/bin/sh
# test_azcli.sh: the Azure CLI (Debian's azure-cli) against berthd, end to
# end.  Starts a private redis-server (unix socket only), a berthd over
# HTTPS (a self-signed certificate for 127.0.0.1 made here) with a tokens
# file naming one OAuth client, and a berth-agent with the sim plugin; then,
# in a private AZURE_CONFIG_DIR kept offline (no telemetry, no extension
# installs, no version check; trust through REQUESTS_CA_BUNDLE), registers
# berthd as a cloud, logs in with a service principal and runs `az container
# create|show|list|logs|exec|stop|start|restart|delete`, checking exit statuses
# and output (exec once with a command, once as an interactive shell that
# gets az's keystrokes), and that neither the client secret nor an access
# token is printed or logged.  Every az call is bounded by `timeout`; everything
# started is killed at exit.
#
# Exits 77 (skipped) when az is not installed; when tools/berthd was not
# built, redis-server or openssl is missing or berthd does not answer
# within 20 s, too -- unless BERTH_REQUIRE_ENGINES=1, which turns those
# into failures.
#
# Environment (set by "make check"): top_srcdir, top_builddir, BERTH_PLUGIN_PATH.
set -u

: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
name=test_azcli
logs="berthd.log agent.log"
berthctl="$top_builddir/tools/berthctl/berthctl"
# berthd builds as tools/berthd/berthd (tools/berthd is its source directory)
berthd="$top_builddir/tools/berthd/berthd"
[ -f "$berthd" ] || berthd="$top_builddir/tools/berthd"
agent="$top_builddir/tools/berth-agent/berth-agent"
. "$top_srcdir/tests/shell-lib.sh"

if ! command -v az >/dev/null 2>&1; then
    echo "$name: SKIP: az is not installed (apt-get install -y azure-cli)"
    exit 77
fi
command -v openssl >/dev/null 2>&1 || skip "openssl is not installed"
command -v timeout >/dev/null 2>&1 || skip "timeout (coreutils) is not installed"

begin_berthd_test azcli

sub=5f1c2a9e-0b7d-4e36-9a51-3c2d8e7f6a10
client=berth-ci-app
secret='Cl1ent-Secret-value-7f3a'

# ---- certificate, tokens, redis, berthd, the agent ----------------------------

timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    >"$tmp/openssl.log" 2>&1 ||
    { cat "$tmp/openssl.log"; skip "openssl cannot make a certificate"; }
# The secret is a bearer token of $sub and client $client's secret; the
# operator's token (every subscription, the hosts' routes) is berthctl's, to
# see berthd start and the agent's host register.
operator='Operat0r-token-value-2b9e'
printf '# test_azcli\n%s %s %s\n%s *\n' "$secret" "$sub" "$client" "$operator" >"$tmp/tokens"
chmod 600 "$tmp/tokens"

start_redis_socket
start_berthd berthd.log https --cacert "$tmp/cert.pem" --token "$operator" -- \
    --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --tokens "$tmp/tokens" \
    --location northeurope
endpoint=$started_endpoint
[ -n "$endpoint" ] || { dump_logs; skip "berthd did not answer within 20 s"; }
echo "ok: berthd answers at $endpoint"

start_sim_agent h1 agent.log
i=0
while [ $i -lt 80 ]; do
    BERTH_TOKEN=$operator ctl host list --cacert "$tmp/cert.pem"
    [ "$rc" = 0 ] && grep -q "^h1 " "$tmp/out" && break
    sleep 0.25
    i=$((i + 1))
done
expect 0 "host list" || dump_logs
has out "h1" "the agent's host registered"

# ---- a private, offline az ------------------------------------------------------

AZURE_CONFIG_DIR="$tmp/az"
AZURE_CORE_COLLECT_TELEMETRY=no
AZURE_CORE_OUTPUT=json
AZURE_EXTENSION_USE_DYNAMIC_INSTALL=no
AZURE_CORE_NO_COLOR=true
REQUESTS_CA_BUNDLE="$tmp/cert.pem"
NO_PROXY=127.0.0.1,localhost
no_proxy=$NO_PROXY
export AZURE_CONFIG_DIR AZURE_CORE_COLLECT_TELEMETRY AZURE_CORE_OUTPUT \
    AZURE_EXTENSION_USE_DYNAMIC_INSTALL AZURE_CORE_NO_COLOR REQUESTS_CA_BUNDLE NO_PROXY no_proxy
mkdir -p "$AZURE_CONFIG_DIR"
# Without it az asks azure.microsoft.com for its latest version once.
echo '{}' >"$AZURE_CONFIG_DIR/versionCheck.json"

# az ARGS: runs az with a bound of 180 s, stdout in $tmp/out, stderr in
# $tmp/err, the exit status in $rc.
az_run() {
    timeout 180 az "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    rc=$?
}

# only FILE TEXT DESCRIPTION: fails unless $tmp/FILE is exactly TEXT.
only() {
    got=$(cat "$tmp/$1")
    [ "$got" = "$2" ] || fail "$3: got '$got', expected '$2'"
}

secrets_hidden() {
    if grep -F -q -e "$secret" -e "berth1." "$tmp/out" "$tmp/err"; then
        fail "$1: the client secret or an access token was printed"
    fi
}

# ---- cloud and login --------------------------------------------------------------

# The endpoint ends in '/': az fetches //metadata/endpoints.
az_run cloud register --name berth --endpoint-resource-manager "$endpoint/"
expect 0 "cloud register (reads berthd's metadata endpoints)" || dump_logs
clouds="$AZURE_CONFIG_DIR/clouds.config"
grep -F -q "endpoint_active_directory = $endpoint/adfs" "$clouds" ||
    { fail "the registered cloud's authority is not $endpoint/adfs"; cat "$clouds"; }
az_run cloud set --name berth
expect 0 "cloud set"

az_run login --service-principal -u "$client" -p 'not-the-secret-123' --tenant adfs
[ "$rc" != 0 ] || fail "login with a wrong secret succeeded"
has err "Client authentication failed" "a wrong secret is refused with the token endpoint's reason"
echo "ok: login with a wrong secret fails ($rc)"

az_run login --service-principal -u "$client" -p "$secret" --tenant adfs
expect 0 "login --service-principal" || dump_logs
has out "$sub" "login lists the client's subscription"
secrets_hidden "login"

az_run account show --query id -o tsv
expect 0 "account show"
only out "$sub" "the default subscription is the client's"

# ---- az container ---------------------------------------------------------------------

az_run container create -g rg1 -n web --image busybox --cpu 1 --memory 1 \
    --command-line "sh -c 'echo hello; sleep 1000'"
expect 0 "container create" || dump_logs
has out '"provisioningState": "Succeeded"' "create ends Succeeded"
arm_id="/subscriptions/$sub/resourceGroups/rg1/providers/Microsoft.ContainerInstance"
has out "\"id\": \"$arm_id/containerGroups/web\"" "create answers the ARM id"
has out '"location": "northeurope"' "create takes the resource group's location (--location)"
secrets_hidden "create"

az_run container show -g rg1 -n web --query "[name, containers[0].image, instanceView.state]" -o tsv
expect 0 "container show"
only out "$(printf 'web\nbusybox\nRunning')" "show names the group, its image and state"

az_run container show -g rg1 -n web -o table
expect 0 "container show -o table"
has out "1.0 core/1.0 gb" "the table gives the resources"

az_run container list --query "[].name" -o tsv
expect 0 "container list"
only out "web" "list names the group"

az_run container list -g rg1 --query "[].name" -o tsv
expect 0 "container list -g"
only out "web" "list -g names the group"

az_run container logs -g rg1 -n web
expect 0 "container logs"
has out "busybox" "logs are the container's (the sim's lines)"

# exec: az opens the WebSocket (wss: its trust comes from
# WEBSOCKET_CLIENT_CA_BUNDLE), sends the password and writes every frame to
# stdout; it needs a TTY on stdin, which script(1) gives it.
if command -v script >/dev/null 2>&1; then
    WEBSOCKET_CLIENT_CA_BUNDLE="$tmp/cert.pem" timeout 180 script -qec \
        "az container exec -g rg1 -n web --exec-command 'echo hi'" /dev/null \
        >"$tmp/out" 2>"$tmp/err" </dev/null
    rc=$?
    expect 0 "container exec" || dump_logs
    has out "hi" "exec writes the command's output (the sim's shell runs echo)"
    secrets_hidden "exec"
    # Interactive: keystrokes typed into az (Enter is a carriage return)
    # reach the shell, and its answers come back.
    (sleep 2; printf 'echo typed\r'; sleep 1; printf 'exit 5\r'; sleep 3) |
        WEBSOCKET_CLIENT_CA_BUNDLE="$tmp/cert.pem" timeout 180 script -qec \
            "az container exec -g rg1 -n web --exec-command sh" /dev/null \
            >"$tmp/out" 2>"$tmp/err"
    rc=$?
    expect 0 "interactive container exec" || dump_logs
    grep -q '^typed' "$tmp/out" || fail "az's keystrokes did not reach the shell: $(cat "$tmp/out")"
else
    echo "skipped: container exec (no script(1) for a TTY)"
fi

az_run container stop -g rg1 -n web
expect 0 "container stop"
az_run container show -g rg1 -n web --query instanceView.state -o tsv
expect 0 "show after stop"
only out "Stopped" "the group is stopped"

az_run container start -g rg1 -n web
expect 0 "container start"
az_run container show -g rg1 -n web --query instanceView.state -o tsv
expect 0 "show after start"
only out "Running" "the group runs again"

az_run container restart -g rg1 -n web
expect 0 "container restart"
az_run container show -g rg1 -n web --query instanceView.state -o tsv
expect 0 "show after restart"
only out "Running" "the group runs after restart"

az_run container delete -g rg1 -n web --yes
expect 0 "container delete"
az_run container show -g rg1 -n web
expect 3 "show of the deleted group -> 3"
has err "ResourceNotFound" "the deleted group is not found"

az_run container list --query "[].name" -o tsv
expect 0 "container list after delete"
only out "" "nothing is left"

# ---- nothing secret in berthd's log ---------------------------------------------------

if grep -F -q -e "$secret" -e "$operator" -e "berth1." "$tmp/berthd.log"; then
    fail "berthd logged the client secret or an access token"
fi

if [ "$failures" -ne 0 ]; then
    dump_logs
    echo "$name: $failures failure(s)"
    exit 1
fi
echo "$name: all passed"
exit 0
