#!/bin/sh
# berth-demo.sh: Berth's main job on one machine, from a build directory.
#
#   cd build && ../tools/berth-demo.sh
#
# Starts berthd with its embedded Redis (a private redis-server in a
# temporary data directory) and one berth-agent for this machine -- the
# Docker plugin when a Docker engine answers on /var/run/docker.sock and
# holds busybox:latest, the simulator otherwise -- then creates the sample
# container groups of fixtures/samples/ through the REST API with
# `berthctl container create`, and shows where they landed and their
# state (`berthctl container list`, `berthctl host list`).  At the end it
# deletes the groups and stops everything it started; it leaves nothing
# behind.  Every wait is bounded.  Environment: BERTH_DEMO_PORT (18080).
# The samples' BERTH_SIM_* variables tell the simulator when a container
# exits (its containers run no commands); real runtimes ignore them.
set -eu

build=$(pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
port=${BERTH_DEMO_PORT:-18080}
endpoint="http://127.0.0.1:$port"
data=$(mktemp -d /tmp/berth-demo.XXXXXX)
berthd_pid=
agent_pid=

for bin in tools/berthd/berthd tools/berth-agent/berth-agent tools/berthctl/berthctl; do
    [ -x "$build/$bin" ] || { echo "berth-demo: $build/$bin is not built (run make)" >&2; exit 2; }
done
BERTH_PLUGIN_PATH="$build/plugins/sim/.libs:$build/plugins/docker/.libs:$build/plugins/runc/.libs"
export BERTH_PLUGIN_PATH

cleanup() {
    status=$?
    if [ -n "$berthd_pid" ]; then
        for f in "$src"/fixtures/samples/*.json; do
            name=$(basename "$f" .json)
            "$build/tools/berthctl/berthctl" container delete --endpoint "$endpoint" -g demo -n "$name" \
                >/dev/null 2>&1 || true
        done
    fi
    # The agent removes what it ran once the records are gone; give it a moment.
    [ -n "$agent_pid" ] && sleep 1 && kill "$agent_pid" 2>/dev/null || true
    [ -n "$berthd_pid" ] && kill "$berthd_pid" 2>/dev/null || true
    for pid in $agent_pid $berthd_pid; do
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$data"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> berthd on $endpoint (embedded Redis in $data/berthd)"
"$build/tools/berthd/berthd" --listen "127.0.0.1:$port" --data-dir "$data/berthd" \
    >"$data/berthd.log" 2>&1 &
berthd_pid=$!
i=0
until curl -fsS "$endpoint/healthz" >/dev/null 2>&1; do
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
if [ -S /var/run/docker.sock ] && command -v docker >/dev/null 2>&1 &&
    docker image inspect busybox:latest >/dev/null 2>&1; then
    plugin=docker
    config="{\"socket\": \"/var/run/docker.sock\", \"data_dir\": \"$data/docker\", \"secret_dir\": \"/dev/shm/berth-demo-$$\"}"
    capacity=
else
    plugin=sim
    config='{"start_latency_ms": 300}'
    capacity="--cores 8 --memory-mib 16384"
fi
echo "==> berth-agent for host $host with the $plugin plugin"
# shellcheck disable=SC2086
"$build/tools/berth-agent/berth-agent" --redis "unix://$data/berthd/redis.sock" --host "$host" \
    --plugin "$plugin" --plugin-config "$config" $capacity >"$data/agent.log" 2>&1 &
agent_pid=$!
# The first create needs the host registered: wait for berthd to list it.
i=0
until curl -fsS "$endpoint/berth/hosts" 2>/dev/null | grep -q "\"name\":\"$host\""; do
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
    "$build/tools/berthctl/berthctl" container create --endpoint "$endpoint" -g demo -n "$name" \
        --file "$f" --timeout 60
done

echo "==> where they landed"
"$build/tools/berthctl/berthctl" container list --endpoint "$endpoint" -g demo
echo
"$build/tools/berthctl/berthctl" host list --endpoint "$endpoint"
echo
echo "==> the logs of pair/client"
"$build/tools/berthctl/berthctl" container logs --endpoint "$endpoint" -g demo -n pair \
    --container-name client
echo "==> done; cleaning up"
