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
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "random.h"

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

/* A connection to 127.0.0.1:port with a 5 s timeout, or NULL. */
static redisContext *cluster_connect(int port)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c != NULL && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c != NULL)
        redisSetTimeout(c, tv);
    return c;
}

/* Whether node `port` answers `cmd` (no arguments) with text holding
 * `needle`; with `count`, whether it answers text at all, adding to *count
 * the times `needle` appears in it. */
static bool cluster_info_has(int port, const char *cmd, const char *needle, int *count)
{
    redisContext *c = cluster_connect(port);
    if (c == NULL)
        return false;
    redisReply *r = redisCommand(c, cmd);
    bool ok = r != NULL && r->type == REDIS_REPLY_STRING;
    if (ok && count != NULL)
        for (const char *p = strstr(r->str, needle); p != NULL; p = strstr(p + 1, needle))
            (*count)++;
    else if (ok)
        ok = strstr(r->str, needle) != NULL;
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Contract: redis-server.h. */
int berth__redis_cluster_create(const int *ports, int n, int replicas_per_master,
                                int64_t wait_ms, char *err, size_t cap)
{
    int masters = n / (1 + replicas_per_master);
    if (n < 3 || replicas_per_master < 0 || masters < 3 || n > 64 ||
        masters * (1 + replicas_per_master) != n) {
        snprintf(err, cap, "a cluster of %d nodes cannot have 3 or more masters with %d "
                 "replicas each", n, replicas_per_master);
        return -1;
    }
    const char *argv[72];
    char addrs[64][24], reps[16];
    int a = 0;
    argv[a++] = "redis-cli";
    argv[a++] = "--cluster";
    argv[a++] = "create";
    for (int i = 0; i < n; i++) {
        snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%d", ports[i]);
        argv[a++] = addrs[i];
    }
    snprintf(reps, sizeof reps, "%d", replicas_per_master);
    argv[a++] = "--cluster-replicas";
    argv[a++] = reps;
    argv[a++] = "--cluster-yes";
    argv[a] = NULL;
    berth__spawn_options_t so = {
        .capture = BERTH__SPAWN_CAPTURE_STDOUT | BERTH__SPAWN_CAPTURE_STDERR,
        .death_signal = SIGKILL,
    };
    char output[8192];
    berth__spawn_result_t res;
    int rc = berth__spawn_run((char *const *)argv, &so, wait_ms, output, sizeof output, &res);
    if (rc != 0 || res.exit_status != 0) {
        snprintf(err, cap, "redis-cli --cluster create failed (%s): %.300s",
                 rc != 0 ? res.message : "non-zero status", output);
        return -1;
    }
    /* Every node says ok, and the masters have all their replicas online. */
    int64_t deadline = berth__clock_monotonic_ms() + wait_ms;
    for (;;) {
        bool ok = true;
        int online = 0;
        for (int i = 0; ok && i < n; i++)
            ok = cluster_info_has(ports[i], "CLUSTER INFO", "cluster_state:ok", NULL) &&
                 cluster_info_has(ports[i], "INFO replication", "state=online", &online);
        if (ok && online >= masters * replicas_per_master)
            return 0;
        if (berth__clock_monotonic_ms() >= deadline) {
            snprintf(err, cap, "the cluster was not ok with its replicas online within "
                     "%lld ms", (long long)wait_ms);
            return -1;
        }
        berth__clock_sleep_ms(50);
    }
}

/* Contract: redis-server.h. */
int berth__redis_free_port(bool need_bus)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return 0;
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        /* Stay below 55535 so that the bus port is a valid port too. */
        uint32_t pick;
        if (berth__random_bytes(&pick, sizeof pick) != 0)
            return 0;
        sa.sin_port = htons((uint16_t)(20000 + pick % 35000));
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        int port = ntohs(sa.sin_port);
        close(fd);
        if (!ok || port == 6379)
            continue;
        if (need_bus) {
            int bus = socket(AF_INET, SOCK_STREAM, 0);
            if (bus < 0)
                return 0;
            sa.sin_port = htons((uint16_t)(port + 10000));
            ok = bind(bus, (struct sockaddr *)&sa, sizeof sa) == 0;
            close(bus);
            if (!ok)
                continue;
        }
        return port;
    }
    return 0;
}
