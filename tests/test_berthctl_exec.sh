#!/bin/sh
# test_berthctl_exec.sh: `berthctl container exec` as a WebSocket client of
# berthd's exec sessions, end to end.  Starts a private redis-server (unix
# socket only), a berthd on a free port of 127.0.0.1, a second berthd over
# TLS (a self-signed certificate made here) and a berth-agent with the sim
# plugin, all in one temporary directory; then checks the output, the exit
# status of the command as berthctl's, a session berthd refuses (exit 1 and
# its message), a request refused before the session (a stopped group),
# wss:// with --cacert and a token, and, under script(1) for a terminal on
# stdin, that the terminal is raw during the session and put back after
# it, also when SIGTERM ends berthctl; then the interactive session: a
# line of piped stdin read by the process, no terminal without one on
# stdin, and under script(1) the terminal's size and a resize reaching the
# process, and the shell's exit status.
#
# Every wait is bounded (berthctl by timeout(1) too); everything started is
# killed at exit.  Exits 77 (skipped) when tools/berthd was not built,
# redis-server is missing, or berthd does not answer within 20 s -- unless
# BERTH_REQUIRE_ENGINES=1, which turns those into failures.
#
# Environment (set by "make check"): top_srcdir, top_builddir, BERTH_PLUGIN_PATH.
set -u

: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
name=test_berthctl_exec
logs="berthd.log berthd-tls.log agent.log"
berthctl="$top_builddir/tools/berthctl/berthctl"
berthd="$top_builddir/tools/berthd/berthd"
[ -f "$berthd" ] || berthd="$top_builddir/tools/berthd"
agent="$top_builddir/tools/berth-agent/berth-agent"
. "$top_srcdir/tests/shell-lib.sh"

begin_berthd_test berthctl-exec

start_redis_socket
start_berthd_endpoint
start_sim_agent h1 agent.log
agent_pid=${pids##* }
wait_for_hosts h1
expect 0 "host list" || dump_logs

ctl container create -g rg -n g --image busybox:latest --cpu 1 \
    --command-line "sh -c 'sleep 1000'"
expect 0 "create g" || dump_logs
# A container that has exited: berthd opens the session, the agent refuses
# the command.
ctl container create -g rg -n ended --image busybox:latest --cpu 1 --restart-policy Never \
    --environment-variables BERTH_SIM_EXIT_AFTER_MS=200
expect 0 "create ended" || dump_logs
ctl container create -g rg -n off --image busybox:latest --cpu 1
expect 0 "create off" || dump_logs
ctl container stop -g rg -n off
expect 0 "stop off"

# ---- output and exit status ------------------------------------------------------

ctl container exec -g rg -n g --exec-command "echo hello" </dev/null
expect 0 "exec" || dump_logs
has out "hello" "exec writes the output (the sim's shell runs echo)"
ctl container exec -g rg -n g --container-name g --exec-command "exit 3" </dev/null
expect 3 "exec exits with the command's exit status"
ctl container exec -g rg -n g --exec-command "exit 0" </dev/null
expect 0 "exit status 0"
ctl container exec -g rg -n g --exec-command "exit 255" </dev/null
expect 255 "exit status 255"
[ -s "$tmp/err" ] && fail "a clean session printed on stderr: $(cat "$tmp/err")"

# stdin not a terminal: its bytes are sent and its end is reached; the
# session still ends with the command.
printf 'hello\n' >"$tmp/in"
ctl container exec -g rg -n g --exec-command 'sh -c "read x; echo got $x"' <"$tmp/in"
expect 0 "exec with stdin from a file"

# ---- refusals --------------------------------------------------------------------

i=0
while [ $i -lt 80 ]; do
    ctl container exec -g rg -n ended --exec-command "echo hi" </dev/null
    [ "$rc" != 0 ] && break
    sleep 0.25
    i=$((i + 1))
done
expect 1 "a session berthd refuses -> 1"
has err "is not running" "the refusal's message is printed"
has err "ContainerNotRunning" "the refusal's code is printed"
grep -F -q "berthd:" "$tmp/out" && fail "the refusal went to stdout"

# A stopped group: berthd refuses the exec request itself, an HTTP error.
ctl container exec -g rg -n off --exec-command "echo hi" </dev/null
expect 3 "exec on a stopped group -> 3"
has err "ContainerGroupStopped" "the CloudError's code"
has err "is stopped" "the CloudError's message"

ctl container exec -g rg -n no-such --exec-command "echo hi" </dev/null
expect 3 "exec on a missing group -> 3"
has err "ResourceNotFound" "the CloudError's code"
ctl container exec -g rg -n g </dev/null
expect 2 "exec without --exec-command -> 2"

# ---- wss:// over TLS, with the test's CA and a token -------------------------------

if command -v openssl >/dev/null 2>&1 &&
    timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
        >"$tmp/openssl.log" 2>&1; then
    token='tok-Exec-0123456789abcdef'
    printf '%s *\n' "$token" >"$tmp/tokens"
    start_berthd berthd-tls.log https --cacert "$tmp/cert.pem" --token "$token" -- \
        --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --tokens "$tmp/tokens"
    if [ -z "$started_endpoint" ]; then
        fail "berthd with TLS did not start"
        tail -n 20 "$tmp/berthd-tls.log"
    else
        plain=$endpoint
        endpoint=$started_endpoint
        ctl container exec -g rg -n g --exec-command "echo over-wss; exit 5" \
            --cacert "$tmp/cert.pem" --token "$token" </dev/null
        expect 5 "wss:// with --cacert and a token" || tail -n 5 "$tmp/berthd-tls.log"
        has out "over-wss" "the output over wss://"
        grep -q '"path":"/berth/exec/[0-9a-f]*","status":101' "$tmp/berthd-tls.log" ||
            fail "the TLS berthd served no WebSocket session"
        ctl container exec -g rg -n g --exec-command "echo hi" --insecure --token "$token" \
            </dev/null
        expect 0 "wss:// with --insecure"
        grep -F -q "$token" "$tmp/out" "$tmp/err" && fail "the token was printed"
        endpoint=$plain
    fi
else
    echo "note: no openssl; wss:// not tested"
fi

# ---- a terminal on stdin (script(1)) -----------------------------------------------

# run_tty SCRIPT: runs the shell script SCRIPT under script(1), its
# terminal's output in $tmp/tty.out, with $tmp/tty.in (a FIFO) as what is
# typed; the test writes to fd 4 and closes it with `tty_end`.
run_tty() {
    rm -f "$tmp/tty.in" "$tmp/ttyname" "$tmp/ctlpid" "$tmp/before" "$tmp/after"
    mkfifo "$tmp/tty.in"
    timeout 90 script -qec "sh $1" /dev/null <"$tmp/tty.in" >"$tmp/tty.out" 2>&1 &
    tty_pid=$!
    exec 4>"$tmp/tty.in"
}

# tty_end: closes what is typed and waits (bounded) for script(1); $rc is
# berthctl's exit status as the inner script saw it ("" when none).
tty_end() {
    wait "$tty_pid" 2>/dev/null
    exec 4>&-
    rc=$(sed -n 's/.*status \([0-9]*\).*/\1/p' "$tmp/tty.out" | tail -n 1)
}

# wait_raw: waits (at most 20 s) until berthctl made the terminal raw,
# i.e. its settings differ from $tmp/before.  Returns 1 when they never did.
wait_raw() {
    i=0
    while [ $i -lt 200 ]; do
        if [ -s "$tmp/ttyname" ] && [ -s "$tmp/before" ] && [ -s "$tmp/ctlpid" ]; then
            now=$(stty -F "$(cat "$tmp/ttyname")" -g 2>/dev/null)
            [ -n "$now" ] && [ "$now" != "$(cat "$tmp/before")" ] && return 0
        fi
        kill -0 "$tty_pid" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# The inner script: a terminal of 30x100, berthctl in the background on it
# (its pid in $tmp/ctlpid), the terminal's settings before and after.
tty_script() {
    cat >"$tmp/tty.sh" <<EOF
tty >"$tmp/ttyname.new"
stty rows 30 cols 100
stty -g >"$tmp/before"
"$berthctl" container exec -g rg -n g --exec-command '$1' --endpoint "$endpoint" \
    --timeout 60 </dev/tty &
echo \$! >"$tmp/ctlpid"
mv "$tmp/ttyname.new" "$tmp/ttyname"
wait \$!
echo "status \$?"
stty -g >"$tmp/after"
EOF
}

if command -v script >/dev/null 2>&1 && command -v mkfifo >/dev/null 2>&1; then
    tty_script "echo on-tty; exit 4"
    run_tty "$tmp/tty.sh"
    tty_end
    [ "$rc" = 4 ] || { fail "exec on a terminal: status '$rc', expected 4"; cat "$tmp/tty.out"; }
    grep -q "on-tty" "$tmp/tty.out" || fail "exec on a terminal: no output"
    # Raw: the output's "\r\n" (the session's terminal's) reached this
    # terminal with no second "\r" added.
    grep -q "on-tty$(printf '\r\r')" "$tmp/tty.out" &&
        fail "the terminal was not raw during the session (\\r added to \\r\\n)"
    if [ -s "$tmp/before" ] && cmp -s "$tmp/before" "$tmp/after"; then
        echo "ok: the terminal's settings are back after the session"
    else
        fail "the terminal's settings changed: '$(cat "$tmp/before" 2>/dev/null)' then" \
            "'$(cat "$tmp/after" 2>/dev/null)'"
    fi

    # SIGTERM during the session: with the agent gone, the command waits
    # for it (berthd's agent timeout), the terminal raw meanwhile.
    kill "$agent_pid" 2>/dev/null
    wait "$agent_pid" 2>/dev/null
    tty_script "echo waiting"
    run_tty "$tmp/tty.sh"
    if wait_raw; then
        echo "ok: the terminal is raw during the session"
        kill -TERM "$(cat "$tmp/ctlpid")"
        tty_end
        [ "$rc" = 143 ] || { fail "SIGTERM: status '$rc', expected 143"; cat "$tmp/tty.out"; }
        if [ -s "$tmp/before" ] && cmp -s "$tmp/before" "$tmp/after"; then
            echo "ok: the terminal's settings are back after SIGTERM"
        else
            fail "SIGTERM left the terminal changed"
        fi
    else
        tty_end
        fail "the terminal never went raw"
        cat "$tmp/tty.out"
    fi
else
    echo "note: no script(1) or mkfifo; the terminal is not tested"
    kill "$agent_pid" 2>/dev/null
    wait "$agent_pid" 2>/dev/null
fi

# The agent gone: berthd ends the session with an error close.
ctl container exec -g rg -n g --exec-command "echo hi" </dev/null
expect 1 "exec with the agent gone -> 1"
grep -F -q "closed with 45" "$tmp/err" || fail "no 45xx close reported: $(cat "$tmp/err")"

# ---- interactive sessions (berthd carrying input) -----------------------------------

start_sim_agent h1 agent.log
i=0
while [ $i -lt 80 ]; do
    ctl container exec -g rg -n g --exec-command "exit 0" </dev/null
    [ "$rc" = 0 ] && break
    sleep 0.25
    i=$((i + 1))
done
expect 0 "the agent is back"
printf 'hello\n' >"$tmp/in"
ctl container exec -g rg -n g --exec-command 'sh -c "read x; echo got $x"' <"$tmp/in"
expect 0 "read x from piped stdin"
has out "got hello" "the process read stdin"
ctl container exec -g rg -n g --exec-command 'stty size' </dev/null
grep -q "30 100\|24 80" "$tmp/out" && fail "a process without a terminal has a size"

if command -v script >/dev/null 2>&1 && command -v mkfifo >/dev/null 2>&1; then
    tty_script "sh"
    run_tty "$tmp/tty.sh"
    if wait_raw; then
        printf 'stty size\n' >&4
        # The first size is out before the terminal changes.
        i=0
        while [ $i -lt 100 ] && ! grep -q "30 100" "$tmp/tty.out" 2>/dev/null; do
            sleep 0.1
            i=$((i + 1))
        done
        # The resize reaches berthctl as SIGWINCH, then the process.
        stty -F "$(cat "$tmp/ttyname")" rows 40 cols 120
        printf 'stty size\nexit 3\n' >&4
    fi
    tty_end
    [ "$rc" = 3 ] || fail "interactive sh: status '$rc', expected 3"
    grep -q "30 100" "$tmp/tty.out" || fail "the process's terminal is not 30x100"
    grep -q "40 120" "$tmp/tty.out" || fail "the resize did not reach the process"
    cmp -s "$tmp/before" "$tmp/after" || fail "the terminal's settings changed"
    [ $failures = 0 ] || cat "$tmp/tty.out"
fi

if [ "$failures" -ne 0 ]; then
    dump_logs
    echo "test_berthctl_exec: $failures failure(s)"
    exit 1
fi
echo "test_berthctl_exec: all passed"
exit 0
