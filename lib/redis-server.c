/*
 * lib/redis-server.c: starting and waiting for a private redis-server (see
 * redis-server.h).
 *
 * It must never pass a bind address other than 127.0.0.1, never let Redis
 * write RDB snapshots or daemonize, and never leave a server it gave up on
 * running.
 */
#include "redis-server.h"

#include "clock.h"
#include "spawn.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <hiredis/hiredis.h>

/* Contract: redis-server.h. */
pid_t berth__redis_server_spawn(const berth__redis_server_options_t *opts, char *err,
                                size_t cap)
{
    char port[16], logfile[600], conf_file[600];
    snprintf(port, sizeof port, "%d", opts->port);
    snprintf(logfile, sizeof logfile, "%s/redis.log", opts->dir);
    snprintf(conf_file, sizeof conf_file, "%s/nodes.conf", opts->dir);

    const char *argv[40];
    int n = 0;
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = port;
    if (opts->port != 0) {
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
    }
    if (opts->socket_path != NULL) {
        argv[n++] = "--unixsocket";
        argv[n++] = opts->socket_path;
        argv[n++] = "--unixsocketperm";
        argv[n++] = "700";
    }
    argv[n++] = "--dir";
    argv[n++] = opts->dir;
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--logfile";
    argv[n++] = logfile;
    argv[n++] = "--appendonly";
    argv[n++] = opts->appendfsync != NULL ? "yes" : "no";
    if (opts->appendfsync != NULL) {
        argv[n++] = "--appendfsync";
        argv[n++] = opts->appendfsync;
    }
    if (opts->pidfile != NULL) {
        argv[n++] = "--pidfile";
        argv[n++] = opts->pidfile;
    }
    if (opts->cluster) {
        argv[n++] = "--cluster-enabled";
        argv[n++] = "yes";
        argv[n++] = "--cluster-config-file";
        argv[n++] = conf_file;
        /* A killed node must not hold a cluster up for long. */
        argv[n++] = "--cluster-node-timeout";
        argv[n++] = "2000";
    }
    argv[n] = NULL;

    berth__spawn_options_t so = {
        .own_process_group = opts->own_process_group,
        .death_signal = opts->death_signal,
    };
    return berth__spawn_start((char *const *)argv, &so, err, cap);
}

/* Contract: redis-server.h. */
bool berth__redis_server_ping(const char *socket_path, int port, int64_t timeout_ms)
{
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    redisContext *c = socket_path != NULL ? redisConnectUnixWithTimeout(socket_path, tv)
                                          : redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL)
        return false;
    bool ok = false;
    if (c->err == 0) {
        redisSetTimeout(c, tv);
        redisReply *reply = redisCommand(c, "PING");
        ok = reply != NULL && reply->type == REDIS_REPLY_STATUS &&
             strcmp(reply->str, "PONG") == 0;
        if (reply != NULL)
            freeReplyObject(reply);
    }
    redisFree(c);
    return ok;
}

/* Contract: redis-server.h. */
int berth__redis_server_wait(pid_t pid, const berth__redis_server_options_t *opts,
                             int64_t wait_ms, int *status, char *err, size_t cap)
{
    int64_t deadline = berth__clock_monotonic_ms() + wait_ms;
    for (;;) {
        if (berth__redis_server_ping(opts->socket_path, opts->port, 200))
            return 0;
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            if (status != NULL)
                *status = st;
            snprintf(err, cap, "redis-server exited at start (%s %d); see %s/redis.log",
                     WIFEXITED(st) ? "status" : "signal",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), opts->dir);
            return -1;
        }
        if (berth__clock_monotonic_ms() >= deadline) {
            snprintf(err, cap, "redis-server did not answer PING within %lld ms",
                     (long long)wait_ms);
            return -1;
        }
        berth__clock_sleep_ms(20);
    }
}

/* Contract: redis-server.h. */
pid_t berth__redis_server_start(const berth__redis_server_options_t *opts, int64_t wait_ms,
                                char *err, size_t cap)
{
    pid_t pid = berth__redis_server_spawn(opts, err, cap);
    if (pid < 0)
        return -1;
    int st = -1;            /* stays -1 while it runs */
    if (berth__redis_server_wait(pid, opts, wait_ms, &st, err, cap) != 0) {
        if (st == -1)
            berth__spawn_stop(pid, SIGKILL, 10000);
        return -1;
    }
    return pid;
}
