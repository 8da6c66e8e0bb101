#!/bin/sh
# test_demo.sh: the main job, tools/berth-demo.sh, on private engines.
#
# Runs the demo from the build directory once per engine installed
# (BERTH_DEMO_ENGINE=docker, then podman), on a free port of 127.0.0.1, and
# checks its output: it started that engine (not the simulator), every
# sample group is listed with the agent's host in the HOST column of
# `berthctl container list`, the web sample's page ("hello from Berth")
# came through its published port, the exec in web/httpd listed the
# index.html its command wrote, the interactive exec's shell read "hello"
# from berthctl's stdin and its status 3 came back as berthctl's, and the
# engine was stopped.  It then
# checks that nothing is left behind: the demo's temporary directory and
# its /dev/shm secret directory are gone, no process names that directory
# (dockerd, containerd, podman, conmon, berthd, the agent, redis-server)
# and neither of the engine's bridges (named as tests/engines.sh names
# them) exists.  A last run is interrupted as Ctrl-C would (SIGINT to its
# process group) once it creates groups, and must leave nothing behind
# either.  A run whose engine daemon fails at once (a failing program bound
# over it in a mount namespace of the demo's own, when unshare -m is
# permitted) must fall back to the simulator, say why, exit 0 and leave
# nothing behind.
#
# Exits 77 (skipped) when not run as root, when neither docker.io nor
# podman (with runc and busybox-static) is installed, or when berthd,
# berth-agent or redis-server is missing -- unless BERTH_REQUIRE_ENGINES=1
# (CI), which turns that into a failure.  Every wait is bounded; a demo
# still running when the test ends is sent SIGTERM, which makes it clean
# up, then SIGKILL after 3 minutes.
#
# Environment (set by "make check"): top_srcdir, top_builddir.
set -u

: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
name=test_demo
# shellcheck source=tests/shell-lib.sh
. "$top_srcdir/tests/shell-lib.sh"

[ "$(id -u)" = 0 ] || skip "not running as root (the demo's engines need root)"
for bin in tools/berthd/berthd tools/berth-agent/berth-agent tools/berthctl/berthctl; do
    [ -x "$top_builddir/$bin" ] || skip "$bin was not built"
done
command -v redis-server >/dev/null 2>&1 || skip "redis-server is not installed"
env --default-signal=INT true 2>/dev/null || skip "env has no --default-signal (coreutils 8.31)"
for prog in runc curl ip timeout setsid; do
    command -v "$prog" >/dev/null 2>&1 || skip "$prog is not installed"
done
/bin/busybox --list >/dev/null 2>&1 || skip "busybox-static is not installed"
engines=
command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && engines=docker
command -v podman >/dev/null 2>&1 && engines="$engines podman"
[ -n "$engines" ] || skip "neither docker.io nor podman is installed"

tmp=$(mktemp -d /tmp/test_demo.XXXXXX)
demo_pid=
demo_rc=0
secrets=
demo_wrap=

# Whether process $1 runs (a child that exited is a zombie until waited for).
running() {
    [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}

# Waits at most $2 seconds for process $1 to exit; returns 1 if it did not.
wait_gone() {
    i=0
    while running "$1"; do
        [ $i -ge $(($2 * 10)) ] && return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 0
}

stop_demo() {
    [ -n "$demo_pid" ] || return 0
    if running "$demo_pid"; then
        kill -TERM "$demo_pid" 2>/dev/null
        wait_gone "$demo_pid" 180 || kill -KILL "-$demo_pid" 2>/dev/null
    fi
    wait "$demo_pid" 2>/dev/null
    demo_rc=$?
    demo_pid=
}

cleanup() {
    stop_demo
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Starts the demo with engine $1 on a random port, in its own process group
# (through $demo_wrap, a command that execs its arguments, when set)
# (setsid execs it: its pid is the group's), output in $tmp/$2.out.  A
# background job starts with SIGINT ignored, and a shell cannot trap a
# signal ignored on entry: env --default-signal gives the demo SIGINT back,
# as a terminal's Ctrl-C finds it.
start_demo() {
    port=$(($(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 + 30000))
    # shellcheck disable=SC2086 # $demo_wrap is a command and its arguments
    (cd "$top_builddir" && BERTH_DEMO_ENGINE=$1 BERTH_DEMO_PORT=$port \
        exec env --default-signal=INT setsid $demo_wrap "$top_srcdir/tools/berth-demo.sh" \
        >"$tmp/$2.out" 2>&1 </dev/null) &
    demo_pid=$!
    secrets="/dev/shm/berth-demo-$demo_pid"
}

# Runs the demo with engine $1 to its end (at most 10 minutes), output in
# $tmp/$1.out, status in $demo_rc; a port taken by someone else (berthd
# cannot listen) is tried again with another.
run_demo() {
    for attempt in 1 2 3; do
        start_demo "$1" "$1"
        wait_gone "$demo_pid" 600 || echo "the demo with $1 ran for 10 minutes: stopping it"
        stop_demo
        grep -q 'berthd did not come up' "$tmp/$1.out" || return 0
        echo "berthd could not listen on port $port (attempt $attempt); another port"
    done
}

# Checks that the demo whose output is $tmp/$1.out left nothing behind.
check_nothing_left() {
    dir=$(sed -n 's|^==> starting a private [a-z]* engine under \(/tmp/berth-demo\.[A-Za-z0-9]*\)/engine$|\1|p' \
        "$tmp/$1.out" | head -n 1)
    if [ -z "$dir" ]; then
        fail "$1: the demo did not say where it started its engine"
        return
    fi
    [ ! -e "$dir" ] || fail "$1: $dir is left behind"
    [ -z "$secrets" ] || [ ! -e "$secrets" ] || fail "$1: $secrets is left behind"
    for proc in /proc/[0-9]*; do
        if tr '\0' ' ' 2>/dev/null <"$proc/cmdline" | grep -qF -- "$dir/"; then
            fail "$1: process ${proc#/proc/} of $dir is left: $(tr '\0' ' ' 2>/dev/null <"$proc/cmdline")"
        fi
    done
    # The bridges tests/engines.sh made for DIR/engine.
    hash=$(printf '%s' "$dir/engine" | cksum | cut -d' ' -f1)
    for br in "bd$((hash % 100000000))" "bp$((hash % 100000000))"; do
        if ip link show "$br" >/dev/null 2>&1; then
            fail "$1: bridge $br is left behind"
        fi
    done
    echo "ok: $1: nothing left behind ($dir)"
}

for engine in $engines; do
    echo "==> the demo with $engine"
    run_demo "$engine"
    out="$tmp/$engine.out"
    if [ "$demo_rc" -ne 0 ]; then
        fail "$engine: the demo exited with $demo_rc"
        cat "$out"
        continue
    fi
    grep -q "^==> starting a private $engine engine under " "$out" ||
        fail "$engine: the demo did not start a private $engine engine"
    if grep -q 'showing the simulator' "$out"; then
        fail "$engine: the demo fell back to the simulator: $(grep 'showing the simulator' "$out")"
        cat "$out"
        continue
    fi
    host=$(sed -n "s|^==> berth-agent for host \([^ ]*\) with the docker plugin on the $engine engine$|\1|p" "$out")
    [ -n "$host" ] || fail "$engine: the agent did not run the docker plugin on $engine"
    # `container list`: the header names HOST (5th column) and each sample
    # group sits on the agent's host.
    awk -v host="$host" '
        /^NAME +RESOURCE-GROUP +STATE +PROVISIONING +HOST / { table = 1; next }
        table && NF == 0 { table = 0 }
        table && $5 == host { seen[$1] = 1 }
        END { exit !(seen["batch"] && seen["pair"] && seen["web"]) }
    ' "$out" || fail "$engine: container list does not show batch, pair and web on host $host"
    # The page, on the line after "curl http://HOSTIP:HOSTPORT/".
    page=$(sed -n '/^curl http:\/\/[0-9.]*:[0-9]*\/$/{n;p;}' "$out")
    [ "$page" = "hello from Berth" ] ||
        fail "$engine: the web sample's page through its published port was '$page'"
    # The exec's output: `ls -l /tmp` in web/httpd, between its header and
    # the next one.
    sed -n '/^==> exec in web\/httpd: ls -l \/tmp/,/^==> the logs/p' "$out" |
        grep -q '^-rw.* root .* index\.html$' ||
        fail "$engine: the exec in web/httpd did not list /tmp/index.html"
    # The interactive exec: the line read from stdin, the shell's status.
    sed -n '/^==> an interactive exec in web\/httpd/,/^==> the logs/p' "$out" |
        grep -q '^got hello$' ||
        fail "$engine: the interactive exec did not read its line from stdin"
    grep -q "^(berthctl exited with the shell's status: 3)$" "$out" ||
        fail "$engine: the interactive exec's exit status did not come through"
    grep -q '^pong$' "$out" || fail "$engine: pair/client's logs do not show the server's pong"
    grep -q "^==> stopped the engine ($engine)$" "$out" ||
        fail "$engine: the demo did not say it stopped the engine"
    [ "$failures" -eq 0 ] || cat "$out"
    check_nothing_left "$engine"
done

# Ctrl-C in the middle: SIGINT to the demo's process group once it creates
# the groups.
engine=${engines%% *}
engine=${engine# }
echo "==> the demo with $engine, interrupted"
for attempt in 1 2 3; do
    start_demo "$engine" interrupted
    i=0
    until grep -q '^==> creating the sample groups' "$tmp/interrupted.out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -ge 1200 ] || ! running "$demo_pid"; then
            break
        fi
        sleep 0.25
    done
    # A port taken by someone else (berthd cannot listen): another one.
    running "$demo_pid" || ! grep -q 'berthd did not come up' "$tmp/interrupted.out" && break
    stop_demo
    echo "berthd could not listen on port $port (attempt $attempt); another port"
done
if running "$demo_pid"; then
    kill -INT "-$demo_pid" 2>/dev/null
    wait_gone "$demo_pid" 300 || fail "interrupted: the demo did not exit within 5 minutes of SIGINT"
    stop_demo
    [ "$demo_rc" -ne 0 ] || fail "interrupted: the demo exited 0"
    grep -q "^==> stopped the engine ($engine)$" "$tmp/interrupted.out" ||
        fail "interrupted: the demo did not say it stopped the engine"
    check_nothing_left interrupted
else
    stop_demo
    fail "interrupted: the demo ended before creating the groups"
fi
[ "$failures" -eq 0 ] || cat "$tmp/interrupted.out"

# An engine that cannot start: in a mount namespace of its own, the demo
# finds a daemon that fails at once (bound over the real one), and must
# show the simulator, say why in one line and exit 0.
case $engine in
    docker) daemon=dockerd ;;
    *) daemon=podman ;;
esac
daemon_path=$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v "$daemon")
if command -v unshare >/dev/null 2>&1 && unshare -m true 2>/dev/null; then
    echo "==> the demo with a $daemon that cannot start"
    printf '#!/bin/sh\necho "refused by test_demo" >&2\nexit 1\n' >"$tmp/broken-daemon"
    printf '#!/bin/sh\nmount --bind "%s" "%s" || exit 99\nexec "$@"\n' "$tmp/broken-daemon" \
        "$daemon_path" >"$tmp/no-engine.sh"
    chmod +x "$tmp/broken-daemon" "$tmp/no-engine.sh"
    demo_wrap="unshare -m $tmp/no-engine.sh"
    start_demo "$engine" no-engine
    demo_wrap=
    wait_gone "$demo_pid" 600 || echo "the demo without an engine ran for 10 minutes: stopping it"
    stop_demo
    out="$tmp/no-engine.out"
    [ "$demo_rc" -eq 0 ] || fail "no engine: the demo exited with $demo_rc"
    grep -q "^==> no container engine could start (.*refused by test_demo.*): showing the simulator$" \
        "$out" || fail "no engine: the demo did not say why it shows the simulator"
    grep -q '^==> berth-agent for host .* with the sim plugin$' "$out" ||
        fail "no engine: the agent did not run the simulator"
    grep -q '^hello from the simulator' "$out" || fail "no engine: the exec on the simulator said nothing"
    grep -q "^(berthctl exited with the shell's status: 3)$" "$out" ||
        fail "no engine: the interactive exec on the simulator did not end with status 3"
    grep -q "^==> stopped the engine" "$out" && fail "no engine: the demo claims to have stopped an engine"
    grep -q '^==> done; cleaning up$' "$out" || fail "no engine: the demo did not run to its end"
    check_nothing_left no-engine
    [ "$failures" -eq 0 ] || cat "$out"
else
    echo "(unshare -m is not permitted here: the fallback to the simulator is not tried)"
fi

if [ "$failures" -ne 0 ]; then
    echo "$name: $failures failure(s)"
    exit 1
fi
echo "$name: ok"
exit 0
