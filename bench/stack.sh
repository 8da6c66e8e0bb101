# stack.sh: the REST API stack the API benchmarks run against, sourced by
# run-bench.sh and api-compare.sh: a private redis-server (unix socket, AOF
# with appendfsync everysec), berthd over HTTPS with a bearer token (a
# throwaway self-signed pair) and four berth-agents with the sim plugin and
# a large capacity.
#
# Every process it starts is appended to $pids (the caller stops them by
# pid); every wait is bounded; it prints why it failed on stderr and returns
# 1.  It never writes outside the directory it is given.

# stack_redis DIR: starts redis-server in DIR (DIR/redis.sock) and waits up
# to 10 s for it to answer; sets $rpid.
stack_redis() {
    redis-server --port 0 --unixsocket "$1/redis.sock" --unixsocketperm 700 --dir "$1" \
        --save '' --appendonly yes --appendfsync everysec --daemonize no \
        --logfile "$1/redis.log" &
    rpid=$!
    pids="$pids $rpid"
    stack_i=0
    until [ "$(redis-cli -s "$1/redis.sock" ping 2>/dev/null)" = PONG ]; do
        stack_i=$((stack_i + 1))
        [ $stack_i -gt 100 ] && { echo "redis-server did not answer" >&2; return 1; }
        sleep 0.1
    done
}

# stack_berthd BERTHD DIR: a key pair and a token in DIR, then BERTHD on a
# free loopback port (five tries), serving the cell "bench" of DIR's Redis,
# waited for up to 20 s per try; sets $endpoint, $token and $bpid.
stack_berthd() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
        -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
        -keyout "$2/berthd.key" -out "$2/berthd.crt" >/dev/null 2>&1 ||
        { echo "openssl req failed" >&2; return 1; }
    token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    echo "$token *" >"$2/tokens"
    endpoint=""
    for stack_try in 1 2 3 4 5; do
        stack_port=$(od -An -N2 -tu2 /dev/urandom)
        stack_port=$((20000 + ($$ * 31 + stack_try * 977 + stack_port) % 30000))
        "$1" --listen "127.0.0.1:$stack_port" --redis "unix://$2/redis.sock" --cell bench \
            --tls-cert "$2/berthd.crt" --tls-key "$2/berthd.key" --tokens "$2/tokens" \
            --data-dir "$2/berthd" >"$2/berthd.log" 2>&1 &
        bpid=$!
        stack_i=0
        while [ $stack_i -lt 100 ] && kill -0 "$bpid" 2>/dev/null; do
            if curl -fsS --max-time 2 --cacert "$2/berthd.crt" \
                "https://127.0.0.1:$stack_port/healthz" >/dev/null 2>&1; then
                endpoint="https://127.0.0.1:$stack_port"
                break
            fi
            sleep 0.2
            stack_i=$((stack_i + 1))
        done
        if [ -n "$endpoint" ]; then
            pids="$pids $bpid"
            return 0
        fi
        kill -9 "$bpid" 2>/dev/null
        wait "$bpid" 2>/dev/null
    done
    echo "berthd did not come up:" >&2
    tail -n 20 "$2/berthd.log" >&2
    return 1
}

# stack_agents AGENT PLUGIN_DIR DIR [SIM_CONFIG]: four agents (hosts sim-1
# to sim-4) on DIR's Redis with the sim plugin of PLUGIN_DIR (and that
# simulator configuration, when given), waited for until berthd at
# $endpoint lists all four (up to 30 s); sets $agent_pids.
stack_agents() {
    agent_pids=""
    for stack_n in 1 2 3 4; do
        BERTH_PLUGIN_PATH="$2" "$1" --redis "unix://$3/redis.sock" \
            --cell bench --host "sim-$stack_n" --plugin sim --cores 4096 \
            --memory-mib 16777216 ${4:+--plugin-config "$4"} >"$3/agent-$stack_n.log" 2>&1 &
        pids="$pids $!"
        agent_pids="$agent_pids $!"
    done
    stack_i=0
    until [ "$(curl -fsS --max-time 2 --cacert "$3/berthd.crt" \
        -H "Authorization: Bearer $token" "$endpoint/berth/hosts" 2>/dev/null |
        grep -o '"sim-[0-9]"' | sort -u | wc -l)" -ge 4 ]; do
        stack_i=$((stack_i + 1))
        [ $stack_i -gt 150 ] && { echo "the 4 agents did not register:" >&2;
            tail -n 5 "$3"/agent-*.log >&2; return 1; }
        sleep 0.2
    done
}
