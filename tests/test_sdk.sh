#!/bin/sh
# test_sdk.sh: drives berthd end to end with the Azure SDK for JavaScript
# (@azure/arm-containerinstance, the versions pinned in tests/sdk/).
#
# Starts, all under a temporary directory: a private redis-server on a unix
# socket, berthd over HTTPS (a self-signed certificate for 127.0.0.1) with a
# tokens file, and one berth-agent running the sim plugin; then runs
# tests/sdk/sdk-test.mjs against berthd and exits with its status.
#
# Passes when every SDK step passes, berthd then stops cleanly on SIGTERM
# (exit 0, no sanitizer report) and the secure environment value the test
# sets appears in neither berthd's nor the agent's log.
#
# The SDK is installed once with "npm ci" from tests/sdk/package-lock.json
# into $top_builddir/tests/sdk-run/<checksum of tests/sdk/package*.json>/
# (reused while those files stay the same), so the source tree stays clean.
# Skips (exit 77) when node (18 or newer), npm, openssl or redis-server is
# missing, or when npm cannot reach its registry; BERTH_REQUIRE_ENGINES=1
# turns every skip into a failure.  Every wait is bounded, and everything
# started is stopped on exit.
#
# Environment (set by "make check"): top_srcdir, top_builddir,
# BERTH_PLUGIN_PATH.
set -u

: "${top_srcdir:?top_srcdir is not set}"
: "${top_builddir:?top_builddir is not set}"

SUB=00000000-0000-0000-0000-000000000001

say() { echo "test_sdk: $*"; }

skip() {
    if [ "${BERTH_REQUIRE_ENGINES:-0}" = 1 ]; then
        say "FAIL (BERTH_REQUIRE_ENGINES=1): $*"
        exit 1
    fi
    say "SKIP: $*"
    exit 77
}

fail() {
    say "FAIL: $*"
    exit 1
}

# ---- what it needs ------------------------------------------------------

for tool in node npm openssl redis-server timeout; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) ||
    skip "node does not run"
[ "$node_major" -ge 18 ] 2>/dev/null || skip "node $(node --version) is older than 18"

if [ -d "$top_builddir/tools/berthd" ]; then
    berthd="$top_builddir/tools/berthd/berthd"
else
    berthd="$top_builddir/tools/berthd"
fi
agent="$top_builddir/tools/berth-agent/berth-agent"
[ -x "$berthd" ] || fail "$berthd is not built"
[ -x "$agent" ] || fail "$agent is not built"

tmp=$(mktemp -d /tmp/berth-sdk.XXXXXX) || fail "mktemp failed"
# The key berthd seals the secure value with and the agent unseals it with.
(umask 077 && printf 'k1 %s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" \
    >"$tmp/secrets.key") || fail "cannot write $tmp/secrets.key"
redis_pid=
berthd_pid=
agent_pid=

# shellcheck disable=SC2317 # called from the EXIT trap
stop_pid() {
    stop_status=
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    stop_status=$?
    return 0
}

show_logs() {
    for f in berthd agent redis; do
        [ -s "$tmp/$f.log" ] || continue
        echo "---- last lines of $f.log ----"
        tail -n 40 "$tmp/$f.log"
    done
}

# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
    stop_pid "$agent_pid"
    stop_pid "$berthd_pid"
    stop_pid "$redis_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

# ---- the SDK, once per build tree ---------------------------------------

src="$top_srcdir/tests/sdk"
# One directory per version of tests/sdk/package*.json: a run never replaces
# a tree that another run with the same files is using.
lock_sum=$(cat "$src/package.json" "$src/package-lock.json" | cksum | cut -d' ' -f1) ||
    fail "cannot read tests/sdk/package*.json"
runs="$top_builddir/tests/sdk-run"
run="$runs/$lock_sum"
mkdir -p "$runs" || fail "cannot create $runs"
if [ -d "$run/node_modules/@azure/arm-containerinstance" ]; then
    say "reusing the SDK in $run"
else
    say "installing the SDK into $run (npm ci)"
    stage="$runs/tmp.$$"
    rm -rf "$stage"
    mkdir -p "$stage" || fail "cannot create $stage"
    cp "$src/package.json" "$src/package-lock.json" "$stage/" || fail "cannot copy tests/sdk"
    # --prefer-offline: what npm's cache holds (checked against the lock
    # file's integrity) is not fetched again.
    if ! (cd "$stage" && timeout 300 npm ci --no-audit --no-fund --no-update-notifier \
            --prefer-offline --fetch-retries 1 --fetch-retry-maxtimeout 10000) \
            >"$tmp/npm.log" 2>&1; then
        cat "$tmp/npm.log"
        rm -rf "$stage"
        if grep -Eq 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|socket hang up' \
                "$tmp/npm.log"; then
            skip "npm ci could not reach the registry"
        fi
        fail "npm ci failed"
    fi
    # Trees of other versions go; a run that installed the same tree
    # meanwhile wins the rename, and this one's copy is dropped.
    for old in "$runs"/*; do
        case $old in "$run" | "$runs"/tmp.*) ;; *) rm -rf "$old" ;; esac
    done
    mv -T "$stage" "$run" 2>/dev/null || rm -rf "$stage"
    [ -d "$run/node_modules/@azure/arm-containerinstance" ] || fail "npm ci left no SDK in $run"
fi
# The script must sit beside node_modules for its imports to resolve.
if ! cp "$src/sdk-test.mjs" "$tmp/sdk-test.mjs" ||
   ! ln -s "$run/node_modules" "$tmp/node_modules"; then
    fail "cannot stage sdk-test.mjs"
fi

# ---- certificate, tokens, redis ------------------------------------------

cert="$tmp/cert.pem"
key="$tmp/key.pem"
timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$key" -out "$cert" -days 1 >"$tmp/openssl.log" 2>&1 ||
    { cat "$tmp/openssl.log"; fail "openssl could not make a certificate"; }

token=sdk-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s %s\n' "$token" "$SUB" >"$tmp/tokens"
chmod 600 "$tmp/tokens"

sock="$tmp/r.sock"
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --save '' \
    --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
i=0
while [ ! -S "$sock" ]; do
    kill -0 "$redis_pid" 2>/dev/null || { show_logs; fail "redis-server exited"; }
    [ $i -lt 100 ] || { show_logs; fail "redis-server did not open $sock in 10 s"; }
    sleep 0.1
    i=$((i + 1))
done

# ---- berthd and one simulated agent ---------------------------------------

free_port() {
    node -e 'const s = require("net").createServer();
             s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# The health check, with the certificate trusted the way the SDK will.
healthy() {
    NODE_EXTRA_CA_CERTS="$cert" timeout 5 node -e '
        const req = require("https").get(process.argv[1], { timeout: 3000 }, (res) => {
            res.resume();
            process.exit(res.statusCode === 200 ? 0 : 1);
        });
        req.on("error", () => process.exit(1));
        req.on("timeout", () => { req.destroy(); process.exit(1); });' "$1" 2>/dev/null
}

# A port taken between free_port and berthd's bind: try another, three times.
attempt=0
while :; do
    attempt=$((attempt + 1))
    port=$(free_port) || fail "no free port"
    url="https://127.0.0.1:$port"
    timeout 900 "$berthd" --listen "127.0.0.1:$port" --redis "unix://$sock" --cell sdk \
        --tls-cert "$cert" --tls-key "$key" --tokens "$tmp/tokens" \
        --secrets-key "$tmp/secrets.key" >"$tmp/berthd.log" 2>&1 &
    berthd_pid=$!
    i=0
    up=0
    while [ $i -lt 100 ]; do
        if ! kill -0 "$berthd_pid" 2>/dev/null; then
            break
        fi
        if healthy "$url/healthz"; then
            up=1
            break
        fi
        sleep 0.1
        i=$((i + 1))
    done
    [ $up = 1 ] && break
    if kill -0 "$berthd_pid" 2>/dev/null; then
        show_logs
        fail "berthd did not answer $url/healthz in time"
    fi
    wait "$berthd_pid" 2>/dev/null
    berthd_pid=
    if [ $attempt -ge 3 ] || ! grep -qi 'in use' "$tmp/berthd.log"; then
        show_logs
        fail "berthd exited before answering $url/healthz"
    fi
done
say "berthd answers at $url"

timeout 900 "$agent" --redis "unix://$sock" --cell sdk --host sim-1 --plugin sim \
    --secrets-key "$tmp/secrets.key" --cores 8 --memory-mib 16384 --tick-ms 50 --backoff-initial-ms 200 \
    >"$tmp/agent.log" 2>&1 &
agent_pid=$!
# The SDK's first PUT needs the host: wait until it is registered and alive.
i=0
until [ "$(redis-cli -s "$sock" EXISTS 'berth:{sdk}:alive:sim-1' 2>/dev/null)" = 1 ]; do
    kill -0 "$agent_pid" 2>/dev/null || { show_logs; fail "berth-agent exited"; }
    [ $i -lt 300 ] || { show_logs; fail "berth-agent did not register sim-1 in 30 s"; }
    sleep 0.1
    i=$((i + 1))
done

# ---- the SDK's run --------------------------------------------------------

cd "$tmp" || fail "cannot cd to $tmp"
env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u all_proxy \
    NO_PROXY=127.0.0.1,localhost NODE_EXTRA_CA_CERTS="$cert" \
    timeout 300 node sdk-test.mjs "$url" "$token" "$SUB"
status=$?
if [ $status -ne 0 ]; then
    [ $status -eq 124 ] && say "sdk-test.mjs timed out"
    show_logs
    fail "sdk-test.mjs exited $status"
fi
# A clean shutdown: SIGTERM, then the logs are read for sanitizer reports.
stop_pid "$agent_pid"
agent_pid=
stop_pid "$berthd_pid"
berthd_status=$stop_status
berthd_pid=
if grep -Eq 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' \
        "$tmp/berthd.log" "$tmp/agent.log"; then
    show_logs
    fail "a sanitizer reported an error (see the logs above)"
fi
[ "$berthd_status" = 0 ] || { show_logs; fail "berthd exited $berthd_status on SIGTERM"; }

# sdk-test.mjs's secure environment value must not reach any log.
for f in berthd agent; do
    if grep -qF sdk-secret-value "$tmp/$f.log"; then
        grep -nF sdk-secret-value "$tmp/$f.log" | head -n 5
        fail "$f.log holds the secure environment value"
    fi
done
say "PASS"
exit 0
