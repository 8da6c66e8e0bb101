#!/bin/sh
# berth-demo.sh: Berth's main job on one machine, from a build directory.
#
#   cd build && ../tools/berth-demo.sh
#
# Starts a private container engine as the engine tests do
# (tests/engines.sh start DIR docker, or podman when Docker is not there or
# cannot start: its own daemon, storage, bridge and local busybox:latest
# image under the demo's temporary directory, no registry), berthd with its
# embedded Redis (a private redis-server in the same directory) and one
# berth-agent for this machine with the Docker plugin on that engine's
# socket.  It then creates the sample container groups of fixtures/samples/
# through the REST API with `berthctl container create`, shows where they
# landed (`berthctl container list`, whose HOST column names the host, and
# `berthctl host list`), fetches the web sample's page through the port the
# engine published for it (hostIp:hostPort, from `berthctl container
# show`), runs a command in one of its containers (`berthctl container
# exec`), then a shell there that reads a line from its stdin and exits 3
# (exec is interactive; berthctl exits with the shell's status), and
# shows pair/client's logs.  At the end it deletes the groups,
# stops the agent, berthd and the engine (tests/engines.sh stop) and
# removes its directory: also on failure, Ctrl-C or SIGTERM; it leaves
# nothing behind.
#
# When no engine can start (not root, neither docker.io nor podman
# installed, or the engine cannot run a container here, as in some CI
# sandboxes) it says why in one line and runs the same demo on the
# simulator plugin, which runs no containers: it never fails because of an
# engine.  The agent registers 8 cores and 16 GiB either way, so that the
# samples' requests fit on a small machine (busybox uses almost nothing).
# Every wait is bounded (the programs it runs under timeout(1) run in the
# foreground, so that Ctrl-C reaches them).  Environment: BERTH_DEMO_PORT (18080);
# BERTH_DEMO_ENGINE: docker or podman tries that engine alone, sim shows
# the simulator without trying one (default: docker, then podman).
# The samples' BERTH_SIM_* variables tell the simulator when a container
# exits; real runtimes ignore them.
set -eu

build=$(pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
port=${BERTH_DEMO_PORT:-18080}
endpoint="http://127.0.0.1:$port"
ctl="$build/tools/berthctl/berthctl"
berthd_pid=
agent_pid=
engine=
engine_sock=
secrets="/dev/shm/berth-demo-$$"

for bin in tools/berthd/berthd tools/berth-agent/berth-agent tools/berthctl/berthctl; do
    [ -x "$build/$bin" ] || { echo "berth-demo: $build/$bin is not built (run make)" >&2; exit 2; }
done
BERTH_PLUGIN_PATH="$build/plugins/sim/.libs:$build/plugins/docker/.libs:$build/plugins/runc/.libs"
export BERTH_PLUGIN_PATH
data=$(mktemp -d /tmp/berth-demo.XXXXXX)

# Waits at most $1 tenths of a second for process $2 to exit.
wait_exit() {
    i=0
    while kill -0 "$2" 2>/dev/null && [ $i -lt "$1" ]; do sleep 0.1; i=$((i + 1)); done
}

cleanup() {
    status=$?
    set +e
    # Cleaning up is bounded; a second Ctrl-C, or a reader of the output
    # that went away (SIGPIPE), must not leave an engine behind.
    trap '' INT TERM HUP PIPE
    if [ -n "$berthd_pid" ]; then
        for f in "$src"/fixtures/samples/*.json; do
            name=$(basename "$f" .json)
            timeout --foreground 90 "$ctl" container delete --endpoint "$endpoint" -g demo -n "$name" \
                --timeout 60 >/dev/null 2>&1 || true
        done
    fi
    if [ -n "$agent_pid" ]; then
        # The agent removes what it ran once the records are gone: give it
        # at most 20 s to leave the engine empty (the engine's stop removes
        # whatever is left).
        i=0
        while [ -n "$engine" ] && [ $i -lt 80 ] && kill -0 "$agent_pid" 2>/dev/null &&
            curl -sf --max-time 2 --unix-socket "$engine_sock" \
                'http://engine/v1.41/containers/json?all=1' 2>/dev/null | grep -q '"Id"'; do
            sleep 0.25
            i=$((i + 1))
        done
        [ -n "$engine" ] || sleep 1
        kill "$agent_pid" 2>/dev/null || true
        wait_exit 100 "$agent_pid"
        kill -9 "$agent_pid" 2>/dev/null || true
    fi
    if [ -n "$berthd_pid" ]; then
        kill "$berthd_pid" 2>/dev/null || true
        wait_exit 100 "$berthd_pid"
        kill -9 "$berthd_pid" 2>/dev/null || true
    fi
    if [ -n "$engine" ] || [ -d "$data/engine" ]; then
        if timeout -k 10 120 "$src/tests/engines.sh" stop "$data/engine" >>"$data/engine.log" 2>&1
        then
            [ -n "$engine" ] && echo "==> stopped the engine ($engine)"
        else
            echo "berth-demo: tests/engines.sh stop $data/engine failed:" >&2
            tail -n 5 "$data/engine.log" >&2
            status=1
        fi
    fi
    rm -rf "$secrets"
    rm -rf "$data" || status=1
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# Starts engine $1 (docker or podman) under $data/engine; on failure sets
# $why to engines.sh's reason.
start_engine() {
    echo "==> starting a private $1 engine under $data/engine"
    if timeout --foreground -k 10 300 "$src/tests/engines.sh" start "$data/engine" "$1" \
        >>"$data/engine.log" 2>&1; then
        # shellcheck source=/dev/null
        . "$data/engine/env"
        engine=$1
        if [ "$1" = docker ]; then engine_sock=$BERTH_TEST_DOCKER_SOCK; else engine_sock=$BERTH_TEST_PODMAN_SOCK; fi
        return 0
    fi
    # The last line names the step, the two before it the cause.
    why=$(grep -v '^engines started' "$data/engine.log" | tail -n 3 | sed 's/^engines\.sh: //' |
        tr '\n' ';' | sed 's/;$//; s/;/; /g')
    [ -n "$why" ] || why="tests/engines.sh start timed out"
    return 1
}

why=
want=${BERTH_DEMO_ENGINE:-any}
case $want in
    any | docker | podman | sim) ;;
    *) echo "berth-demo: BERTH_DEMO_ENGINE must be docker, podman or sim, not '$want'" >&2; exit 2 ;;
esac
if [ "$want" = sim ]; then
    why="BERTH_DEMO_ENGINE=sim"
elif [ "$(id -u)" != 0 ]; then
    why="not running as root"
elif ! command -v dockerd >/dev/null 2>&1 && ! command -v podman >/dev/null 2>&1; then
    why="neither docker.io nor podman is installed"
elif ! /bin/busybox --list >/dev/null 2>&1; then
    why="busybox-static is not installed"
else
    if [ "$want" != podman ] && command -v dockerd >/dev/null 2>&1 &&
        command -v docker >/dev/null 2>&1; then
        start_engine docker || true
    fi
    if [ -z "$engine" ] && [ "$want" != docker ] && command -v podman >/dev/null 2>&1; then
        start_engine podman || true
    fi
    if [ -z "$engine" ] && [ -z "$why" ]; then
        case $want in
            docker) why="docker.io is not installed" ;;
            podman) why="podman is not installed" ;;
            *) why="dockerd has no docker client and podman is not installed" ;;
        esac
    fi
fi
if [ -z "$engine" ]; then
    echo "==> no container engine could start ($why): showing the simulator"
fi

# The key berthd seals every secret with before it reaches Redis, and the
# agent unseals it with for the runtime: one random 256-bit key, mode 600.
(umask 077 && printf 'demo %s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" \
    >"$data/secrets.key")
echo "==> berthd on $endpoint (embedded Redis in $data/berthd)"
"$build/tools/berthd/berthd" --listen "127.0.0.1:$port" --data-dir "$data/berthd" \
    --secrets-key "$data/secrets.key" >"$data/berthd.log" 2>&1 &
berthd_pid=$!
i=0
until curl -fsS --max-time 2 "$endpoint/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$berthd_pid" 2>/dev/null; then
        echo "berth-demo: berthd did not come up:" >&2
        tail -n 20 "$data/berthd.log" >&2
        exit 1
    fi
    sleep 0.1
done

host=$(hostname -s 2>/dev/null | tr -c 'A-Za-z0-9._\n-' '-' | cut -c1-63)
[ -n "$host" ] || host=localhost
case $engine in
    docker)
        plugin=docker
        config="{\"socket\": \"$engine_sock\", \"data_dir\": \"$data/docker\", \"secret_dir\": \"$secrets\", \"stop_grace_s\": 2}"
        ;;
    podman)
        plugin=docker
        config="{\"socket\": \"$engine_sock\", \"data_dir\": \"$data/docker\", \"secret_dir\": \"$secrets\", \"stop_grace_s\": 2, \"ulimits\": true}"
        ;;
    *)
        plugin=sim
        config='{"start_latency_ms": 300}'
        ;;
esac
echo "==> berth-agent for host $host with the $plugin plugin${engine:+ on the $engine engine}"
"$build/tools/berth-agent/berth-agent" --redis "unix://$data/berthd/redis.sock" --host "$host" \
    --plugin "$plugin" --plugin-config "$config" --secrets-key "$data/secrets.key" \
    --cores 8 --memory-mib 16384 \
    >"$data/agent.log" 2>&1 &
agent_pid=$!
# The first create needs the host registered: wait for berthd to list it.
i=0
until curl -fsS --max-time 2 "$endpoint/berth/hosts" 2>/dev/null | grep -q "\"name\":\"$host\""; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$agent_pid" 2>/dev/null; then
        echo "berth-demo: berth-agent did not register host $host:" >&2
        tail -n 20 "$data/agent.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "==> creating the sample groups of fixtures/samples/"
for f in "$src"/fixtures/samples/*.json; do
    name=$(basename "$f" .json)
    timeout --foreground 90 "$ctl" container create --endpoint "$endpoint" -g demo -n "$name" \
        --file "$f" --timeout 60 || {
        rc=$?
        # Interrupted (timeout passes the signal on): the trap says the rest.
        [ $rc -gt 128 ] && [ $rc -ne 137 ] && exit $rc
        echo "berth-demo: creating $name failed; the agent's last lines:" >&2
        tail -n 20 "$data/agent.log" >&2
        exit 1
    }
done

echo "==> where they landed"
timeout --foreground 90 "$ctl" container list --endpoint "$endpoint" -g demo --timeout 60
echo
timeout --foreground 90 "$ctl" host list --endpoint "$endpoint" --timeout 60
echo

# The web sample's port, as published on the host: "IP address: ... ports
# 8080/TCP (HOSTIP:HOSTPORT)" once the agent has reported it.
echo "==> the web sample's page, through its published port"
published=
i=0
while [ -z "$published" ] && [ $i -lt 60 ]; do
    published=$(timeout --foreground 90 "$ctl" container show --endpoint "$endpoint" -g demo -n web \
        --timeout 60 2>/dev/null | sed -n 's|^IP address:.* 8080/TCP (\([0-9.]*:[0-9]*\)).*|\1|p')
    [ -n "$published" ] || sleep 0.5
    i=$((i + 1))
done
if [ -z "$published" ]; then
    echo "berth-demo: the web group's port 8080 was not published within 30 s" >&2
    exit 1
fi
if [ -n "$engine" ]; then
    echo "curl http://$published/"
    # httpd may still be starting when the group is Running.
    i=0
    until page=$(curl -fsS --max-time 2 "http://$published/" 2>"$data/curl.err"); do
        i=$((i + 1))
        if [ $i -ge 40 ]; then
            # The page depends on the engine's port publishing: say so, but
            # the main job does not fail because of an engine.
            echo "berth-demo: warning: no page on http://$published/ within 20 s:" \
                "$(cat "$data/curl.err")" >&2
            page=
            break
        fi
        sleep 0.5
    done
    [ -z "$page" ] || printf '%s\n' "$page"
else
    echo "published on $published (the simulator serves nothing there)"
fi
echo

if [ -n "$engine" ]; then
    echo "==> exec in web/httpd: ls -l /tmp (where its command wrote the page)"
    command="ls -l /tmp"
else
    echo "==> exec in web/httpd: echo (the simulator runs no programs; its small shell knows echo, read, exit and stty size)"
    command="echo hello from the simulator"
fi
timeout --foreground 90 "$ctl" container exec --endpoint "$endpoint" -g demo -n web --container-name httpd \
    --exec-command "$command" --timeout 60
echo

echo "==> an interactive exec in web/httpd: a shell reads a line from stdin, then exits 3"
status=0
echo hello |
    timeout --foreground 90 "$ctl" container exec --endpoint "$endpoint" -g demo -n web \
        --container-name httpd --exec-command "sh -c 'read x; echo got \$x; exit 3'" \
        --timeout 60 || status=$?
echo "(berthctl exited with the shell's status: $status)"
echo

echo "==> the logs of pair/client"
timeout --foreground 90 "$ctl" container logs --endpoint "$endpoint" -g demo -n pair \
    --container-name client --timeout 60
echo "==> done; cleaning up"
