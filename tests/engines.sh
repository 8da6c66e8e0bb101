#!/bin/sh
#
# tests/engines.sh: private container engines for Berth's engine tests.
#
#   tests/engines.sh start DIR [ENGINE]
#                                starts dockerd and Podman's Docker-compatible
#                                API service on unix sockets under DIR, each
#                                with its own storage and its own bridge, and
#                                loads a local busybox:latest image into both
#                                (and unpacks it for the runc plugin), runs a
#                                container on each to see that it can; writes
#                                DIR/env for the tests to source.  ENGINE
#                                `docker` or `podman` starts that engine alone
#                                (berth-demo.sh needs one); `all` (the
#                                default) starts both.  DIR/env exports the
#                                socket of each engine started.  When runsc
#                                (gVisor) is installed, dockerd also gets a
#                                runtime "berth-runsc" (runsc through
#                                tools/berth-runsc/berth-runsc), checked by
#                                running a container under it, and DIR/env
#                                exports its name as
#                                BERTH_TEST_DOCKER_RUNTIME; Podman gets a
#                                second API service on the same storage
#                                with the wrapper as its runtime, whose
#                                socket DIR/env exports as
#                                BERTH_TEST_PODMAN_RUNTIME_SOCK.
#   tests/engines.sh stop DIR    stops what `start DIR` started (containers,
#                                the Podman service, dockerd) and removes its
#                                bridges and mounts; safe to call twice.
#
# It never touches the machine's own engines, images or networks: every
# engine's data, sockets and pid files live under DIR.  Needs root and the
# packages docker.io, podman, runc and busybox-static (one engine alone
# needs only its own package of the first two); no registry is used.  A
# failed start stops what it started and prints why on stderr, its last line
# "engines.sh: could not ..." naming the step.  Every wait is bounded.

set -u

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

die() {
    echo "engines.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start DIR [docker|podman|all] | stop DIR" >&2
    exit 2
}

[ $# -eq 2 ] || { [ $# -eq 3 ] && [ "$1" = start ]; } || usage
action=$1
engines=${3:-all}
case $engines in
    docker | podman | all) ;;
    *) usage ;;
esac
use_docker=false
use_podman=false
[ "$engines" = podman ] || use_docker=true
[ "$engines" = docker ] || use_podman=true
case $2 in
    /*) dir=$2 ;;
    *) dir=$(pwd)/$2 ;;
esac
dir=${dir%/}
[ -n "$dir" ] || die "refusing to use / as the engines' directory"

# Names derived from DIR, so that two engine sets never share a bridge or a
# subnet.
hash=$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
docker_bridge="bd$((hash % 100000000))"
podman_bridge="bp$((hash % 100000000))"
octet2=$((hash / 7 % 200 + 20))
octet3=$((hash / 1400 % 250 + 1))
docker_subnet="10.$octet2.$octet3"
podman_subnet="10.$octet2.$((octet3 + 1 > 254 ? 2 : octet3 + 1))"

docker_sock="$dir/docker.sock"
# runsc through the wrapper that hides /proc/sys/net (see the script).
runsc_wrapper=$(cd "$(dirname "$0")/.." && pwd)/tools/berth-runsc/berth-runsc
docker_runtime=berth-runsc
podman_sock="$dir/podman.sock"
podman_runsc_sock="$dir/podman-runsc.sock"
podman_root="$dir/podman/root"
podman_run="$dir/podman/run"
podman_conf="$dir/podman/containers.conf"

dk() {
    timeout 60 docker -H "unix://$docker_sock" "$@"
}

# Podman on DIR's storage, with runtime $pm_runtime (runc unless set).
pm() {
    CONTAINERS_CONF="$podman_conf" timeout 120 podman --root "$podman_root" \
        --runroot "$podman_run" --runtime "${pm_runtime:-runc}" --cgroup-manager cgroupfs \
        --events-backend file "$@"
}

# Waits (at most $2 seconds) until the engine API on socket $1 answers;
# gives up at once when process $3 (optional: the engine) has exited.
wait_api() {
    i=0
    while [ "$i" -lt "$(($2 * 4))" ]; do
        if [ -S "$1" ] && curl -sf --max-time 2 --unix-socket "$1" http://engine/_ping >/dev/null 2>&1; then
            return 0
        fi
        if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
            gone=1
            return 1
        fi
        sleep 0.25
        i=$((i + 1))
    done
    return 1
}

# Sends TERM to the process in pid file $1, then KILL after $2 seconds.
stop_pid() {
    [ -f "$1" ] || return 0
    pid=$(cat "$1" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        i=0
        while kill -0 "$pid" 2>/dev/null && [ "$i" -lt "$(($2 * 4))" ]; do
            sleep 0.25
            i=$((i + 1))
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$1"
    return 0
}

# Builds the busybox root filesystem in $1 from the static busybox.
make_rootfs() {
    rm -rf "$1"
    mkdir -p "$1/bin" "$1/etc" "$1/tmp" "$1/proc" "$1/sys" "$1/dev" "$1/root" \
        "$1/var/www" || return 1
    chmod 1777 "$1/tmp"
    cp /bin/busybox "$1/bin/busybox" || return 1
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] && continue
        ln -sf busybox "$1/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
        >"$1/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
    return 0
}

stop_all() {
    # Containers first, so that no shim or conmon outlives its engine.
    if [ -S "$docker_sock" ] && wait_api "$docker_sock" 1; then
        ids=$(dk ps -aq 2>/dev/null)
        [ -n "$ids" ] && dk rm -f $ids >/dev/null 2>&1
    fi
    stop_pid "$dir/docker/dockerd.pid" 30
    if [ -d "$podman_root" ]; then
        pm rm -af -t 2 >/dev/null 2>&1
    fi
    stop_pid "$dir/podman/service.pid" 15
    stop_pid "$dir/podman/service-runsc.pid" 15
    # dockerd's containerd, should it be left.
    for pidfile in "$dir"/docker/exec/containerd/containerd.pid; do
        stop_pid "$pidfile" 10
    done
    # Podman's conmons outlive an exec by minutes (--exit-delay): end the
    # ones serving this DIR's containers, by pid.
    for proc in /proc/[0-9]*; do
        [ "$(cat "$proc/comm" 2>/dev/null)" = conmon ] || continue
        if tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -qF -- "$podman_root/"; then
            kill -KILL "${proc#/proc/}" 2>/dev/null
        fi
    done
    # gVisor's sandbox and gofer processes of a container whose start failed
    # outlive their shim; dockerd and Podman run them with --root under DIR:
    # end those, by pid.
    for proc in /proc/[0-9]*; do
        case $(cat "$proc/comm" 2>/dev/null) in
            runsc* | exe) ;;
            *) continue ;;
        esac
        if tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -qF -- "--root=$dir/"; then
            kill -KILL "${proc#/proc/}" 2>/dev/null
        fi
    done
    # Mounts left under DIR (overlays, network namespaces, shm), deepest first.
    if [ -d "$dir" ]; then
        awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null; done
    fi
    for br in "$docker_bridge" "$podman_bridge"; do
        ip link show "$br" >/dev/null 2>&1 && ip link delete "$br" 2>/dev/null
    done
    rm -f "$dir/env" "$docker_sock" "$podman_sock" "$podman_runsc_sock"
    return 0
}

start_docker() {
    mkdir -p "$dir/docker/data" "$dir/docker/exec" || return 1
    if $use_runsc; then
        printf '{"runtimes": {"%s": {"path": "%s"}}}\n' "$docker_runtime" "$runsc_wrapper" \
            >"$dir/docker/daemon.json"
    else
        echo '{}' >"$dir/docker/daemon.json"
    fi
    # A bridge of our own: two engine sets on one machine must not share
    # docker0.  Published ports go through docker-proxy on 127.0.0.1, which
    # needs no iptables rules, so dockerd leaves the host's firewall alone.
    if ! ip link show "$docker_bridge" >/dev/null 2>&1; then
        ip link add name "$docker_bridge" type bridge || return 1
        ip addr add "$docker_subnet.1/24" dev "$docker_bridge" || return 1
    fi
    ip link set "$docker_bridge" up || return 1
    setsid dockerd --host "unix://$docker_sock" --data-root "$dir/docker/data" \
        --exec-root "$dir/docker/exec" --pidfile "$dir/docker/dockerd.pid" \
        --config-file "$dir/docker/daemon.json" --bridge "$docker_bridge" \
        --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=true \
        >"$dir/docker/dockerd.log" 2>&1 </dev/null &
    gone=0
    wait_api "$docker_sock" 60 $! || {
        tail -n 20 "$dir/docker/dockerd.log" >&2
        if [ "$gone" = 1 ]; then
            echo "dockerd exited before answering on $docker_sock" >&2
        else
            echo "dockerd did not answer on $docker_sock within 60 s" >&2
        fi
        return 1
    }
    return 0
}

start_podman() {
    mkdir -p "$podman_root" "$podman_run" "$dir/podman/networks" "$dir/podman/tmp" || return 1
    cat >"$podman_conf" <<EOF
[engine]
runtime = "runc"
tmp_dir = "$dir/podman/tmp"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
network_config_dir = "$dir/podman/networks"
default_subnet = "$podman_subnet.0/24"
EOF
    # The default network under its own bridge name and subnet.
    cat >"$dir/podman/networks/podman.json" <<EOF
{
  "name": "podman",
  "id": "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9",
  "driver": "bridge",
  "network_interface": "$podman_bridge",
  "created": "2024-01-01T00:00:00Z",
  "subnets": [ { "subnet": "$podman_subnet.0/24", "gateway": "$podman_subnet.1" } ],
  "ipv6_enabled": false,
  "internal": false,
  "dns_enabled": false,
  "ipam_options": { "driver": "host-local" }
}
EOF
    podman_service runc "$podman_sock" service || return 1
    # Podman's Docker API ignores HostConfig.Runtime: what a service creates
    # runs under the runtime it was started with, and the containers share
    # the storage, so the plugin creates a group's members through this one.
    if $use_runsc; then
        podman_service "$runsc_wrapper" "$podman_runsc_sock" service-runsc || return 1
    fi
    return 0
}

# Starts a Podman API service with runtime $1 on socket $2, its pid and log
# in $dir/podman/$3.pid and .log; waits until it answers.
podman_service() {
    CONTAINERS_CONF="$podman_conf" setsid podman --root "$podman_root" \
        --runroot "$podman_run" --runtime "$1" --cgroup-manager cgroupfs \
        --events-backend file system service --time=0 "unix://$2" \
        >"$dir/podman/$3.log" 2>&1 </dev/null &
    echo $! >"$dir/podman/$3.pid"
    gone=0
    wait_api "$2" 60 $! || {
        tail -n 20 "$dir/podman/$3.log" >&2
        if [ "$gone" = 1 ]; then
            echo "the podman service exited before answering on $2" >&2
        else
            echo "podman service did not answer on $2 within 60 s" >&2
        fi
        return 1
    }
    return 0
}

load_images() {
    rootfs="$dir/images/busybox_latest/rootfs"
    make_rootfs "$rootfs" || return 1
    tar -C "$rootfs" -cf "$dir/images/busybox.tar" . || return 1
    if $use_docker; then
        load_docker_image || return 1
    fi
    if $use_podman; then
        load_podman_image || return 1
    fi
    rm -f "$dir/images/busybox.tar"
    return 0
}

load_docker_image() {
    dk import --change 'CMD ["sh"]' "$dir/images/busybox.tar" busybox:latest >/dev/null ||
        return 1
    dk image inspect busybox:latest >/dev/null 2>&1 || {
        echo "docker does not show busybox:latest after import" >&2
        return 1
    }
    return 0
}

load_podman_image() {
    # Podman names an imported image localhost/busybox:latest; its Docker API
    # resolves short names against docker.io, so tag it there as well.
    pm import --change 'CMD ["sh"]' "$dir/images/busybox.tar" busybox:latest \
        >/dev/null 2>"$dir/podman/import.log" || {
        cat "$dir/podman/import.log" >&2
        return 1
    }
    pm tag localhost/busybox:latest docker.io/library/busybox:latest || return 1
    curl -sf --max-time 10 --unix-socket "$podman_sock" \
        http://engine/v1.41/images/busybox:latest/json >/dev/null || {
        echo "podman's API does not find busybox:latest after import" >&2
        return 1
    }
    return 0
}

# Runs a busybox container to its end on each engine started, on the
# engine's default network: an engine that answers but cannot run a
# container (no cgroups, no overlay mounts, no bridge) is not started.
try_containers() {
    if $use_docker; then
        out=$(dk run --rm busybox:latest echo berth-engine-ok 2>&1)
        [ "$out" = berth-engine-ok ] || {
            printf '%s\n' "$out" | tail -n 5 >&2
            echo "dockerd cannot run a busybox container" >&2
            return 1
        }
        if $use_runsc; then
            # gVisor's kernel answers for itself in the sandbox's dmesg.
            out=$(dk run --rm --runtime "$docker_runtime" busybox:latest dmesg 2>&1)
            case $out in
                *gVisor*) ;;
                *)
                    printf '%s\n' "$out" | tail -n 5 >&2
                    echo "dockerd cannot run a busybox container under runsc" >&2
                    return 1
                    ;;
            esac
        fi
    fi
    if $use_podman; then
        # Podman sets rlimits above what an unprivileged parent may hold
        # unless told otherwise (the plugin's "ulimits" option).
        out=$(pm run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
            busybox:latest echo berth-engine-ok 2>&1)
        [ "$out" = berth-engine-ok ] || {
            printf '%s\n' "$out" | tail -n 5 >&2
            echo "podman cannot run a busybox container" >&2
            return 1
        }
        if $use_runsc; then
            out=$(pm_runtime=$runsc_wrapper pm run --rm --ulimit nofile=1024:1024 \
                --ulimit nproc=1024:1024 busybox:latest dmesg 2>&1)
            case $out in
                *gVisor*) ;;
                *)
                    printf '%s\n' "$out" | tail -n 5 >&2
                    echo "podman cannot run a busybox container under runsc" >&2
                    return 1
                    ;;
            esac
        fi
    fi
    return 0
}

case $action in
    start)
        [ "$(id -u)" = 0 ] || die "must run as root (dockerd and rootful podman)"
        progs="runc curl tar ip timeout setsid"
        $use_docker && progs="dockerd docker $progs"
        $use_podman && progs="podman $progs"
        for prog in $progs; do
            command -v "$prog" >/dev/null 2>&1 || die "$prog not found (install docker.io, podman, runc, curl, iproute2)"
        done
        [ -x /bin/busybox ] || die "/bin/busybox not found (install busybox-static)"
        use_runsc=false
        if command -v runsc >/dev/null 2>&1; then
            [ -x "$runsc_wrapper" ] || die "$runsc_wrapper not found or not executable"
            use_runsc=true
        fi
        /bin/busybox --list >/dev/null 2>&1 || die "/bin/busybox has no --list (need busybox-static)"
        if [ ${#dir} -gt 90 ]; then
            die "$dir is too long for a unix socket path"
        fi
        mkdir -p "$dir" || die "cannot create $dir"
        stop_all
        if $use_docker && ! start_docker; then
            stop_all
            die "could not start dockerd"
        fi
        if $use_podman && ! start_podman; then
            stop_all
            die "could not start the podman service"
        fi
        if ! load_images; then
            stop_all
            die "could not load the busybox image"
        fi
        if ! try_containers; then
            stop_all
            die "could not run a container"
        fi
        {
            $use_docker && echo "export BERTH_TEST_DOCKER_SOCK=$docker_sock"
            $use_runsc && $use_docker && echo "export BERTH_TEST_DOCKER_RUNTIME=$docker_runtime"
            $use_runsc && $use_podman &&
                echo "export BERTH_TEST_PODMAN_RUNTIME_SOCK=$podman_runsc_sock"
            $use_podman && echo "export BERTH_TEST_PODMAN_SOCK=$podman_sock"
            echo "export BERTH_TEST_RUNC_IMAGES=$dir/images"
            echo "export BERTH_TEST_IMAGE=busybox:latest"
        } >"$dir/env"
        echo "engines started under $dir (source $dir/env)"
        ;;
    stop)
        [ "$(id -u)" = 0 ] || die "must run as root"
        stop_all
        ;;
    *)
        usage
        ;;
esac
exit 0
