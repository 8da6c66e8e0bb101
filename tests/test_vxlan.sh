#!/bin/sh
# test_vxlan.sh: how a Berth subnet spans hosts (README, "Virtual
# networks"), built by hand in network namespaces this test makes: two
# hosts joined by an underlay link, on each a bridge per subnet with a
# VXLAN device (one VNI per subnet, no learning, the flooding list made
# from the other hosts' addresses, as the agents would make it from the
# cell's host records), and group namespaces plugged into the bridges.
#
# Checks that two groups of subnet A on different hosts reach each other
# by IP (and that the traffic crossed the underlay in VXLAN: the receiving
# host's VXLAN device counted packets), that a group on subnet B's segment
# cannot reach them even with an address in A's range, and that a public
# group (its own bridge, routed by its host) cannot either.  Every probe
# is one ping with a one-second deadline; nothing leaves the namespaces.
#
# Exits 77 (skipped) when not root, without ip(8) or busybox, or when the
# kernel refuses namespaces or VXLAN devices -- unless
# BERTH_REQUIRE_ENGINES=1 (CI), which makes that a failure.
name=test_vxlan
logs=""
tmp=""
pids=""
. "${top_srcdir:-.}/tests/shell-lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null 2>&1 || skip "ip(8) is not installed"
command -v busybox >/dev/null 2>&1 || skip "busybox is not installed"

# Namespace names unique to this run.
p="bvx$$"
spaces="${p}h1 ${p}h2 ${p}g1 ${p}g2 ${p}g3 ${p}g4"
cleanup() {
    for ns in $spaces; do
        ip netns del "$ns" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

for ns in $spaces; do
    ip netns add "$ns" 2>/dev/null || skip "cannot make network namespaces"
    ip -n "$ns" link set lo up
done
nsx() { ns="$1"; shift; ip netns exec "$p$ns" "$@"; }

# The underlay: h1 192.168.250.1, h2 192.168.250.2.
ip -n "${p}h1" link add u0 type veth peer name u0 netns "${p}h2"
ip -n "${p}h1" addr add 192.168.250.1/30 dev u0
ip -n "${p}h2" addr add 192.168.250.2/30 dev u0
ip -n "${p}h1" link set u0 up
ip -n "${p}h2" link set u0 up

# A subnet on a host: bridge b<S>, VXLAN v<S> (VNI, no learning) on it,
# and one all-zero FDB entry per other host carrying the subnet.
subnet_on_host() {
    host=$1 s=$2 vni=$3 local=$4 peer=$5
    ip -n "$p$host" link add "b$s" type bridge || return 1
    ip -n "$p$host" link add "v$s" type vxlan id "$vni" dstport 4789 local "$local" \
        dev u0 nolearning || return 1
    ip -n "$p$host" link set "v$s" master "b$s"
    nsx "$host" bridge fdb append 00:00:00:00:00:00 dev "v$s" dst "$peer"
    ip -n "$p$host" link set "v$s" up
    ip -n "$p$host" link set "b$s" up
}
subnet_on_host h1 A 4101 192.168.250.1 192.168.250.2 || skip "the kernel refuses VXLAN"
subnet_on_host h2 A 4101 192.168.250.2 192.168.250.1
subnet_on_host h2 B 4102 192.168.250.2 192.168.250.1

# A group: namespace g<N> with eth0 (ADDR) plugged into bridge BR of HOST.
group() {
    g=$1 host=$2 br=$3 addr=$4
    ip -n "$p$host" link add "p$g" type veth peer name eth0 netns "$p$g"
    ip -n "$p$host" link set "p$g" master "$br"
    ip -n "$p$host" link set "p$g" up
    ip -n "$p$g" addr add "$addr" dev eth0
    ip -n "$p$g" link set eth0 up
}
group g1 h1 bA 10.30.0.2/24
group g2 h2 bA 10.30.0.3/24
# Subnet B's segment, with an address in A's range: only the VNI differs.
group g3 h2 bB 10.30.0.4/24
# A public group: its own bridge on h1 with the gateway, routed by h1.
ip -n "${p}h1" link add bP type bridge
ip -n "${p}h1" addr add 172.30.0.1/24 dev bP
ip -n "${p}h1" link set bP up
group g4 h1 bP 172.30.0.2/24
ip -n "${p}g4" route add default via 172.30.0.1
nsx h1 sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'

ping1() { nsx "$1" busybox ping -c 1 -W 1 "$2" >/dev/null 2>&1; }
rx() { nsx h2 cat /sys/class/net/vA/statistics/rx_packets; }

before=$(rx)
ping1 g1 10.30.0.3 || fail "subnet A: g1 (host 1) does not reach g2 (host 2)"
ping1 g2 10.30.0.2 || fail "subnet A: g2 (host 2) does not reach g1 (host 1)"
after=$(rx)
[ "$after" -gt "$before" ] || fail "host 2's VXLAN device saw no packet ($before, $after)"
ping1 g3 10.30.0.2 && fail "subnet B's group reached subnet A's g1"
ping1 g3 10.30.0.3 && fail "subnet B's group reached subnet A's g2 on its own host"
ping1 g4 10.30.0.2 && fail "a public group reached subnet A's g1"
ping1 g4 172.30.0.1 || fail "the public group does not reach its own gateway"

if [ "$failures" -ne 0 ]; then
    echo "$name: $failures failures"
    exit 1
fi
echo "$name: subnet A spans two hosts over VXLAN; subnet B and a public group are kept out"
exit 0
