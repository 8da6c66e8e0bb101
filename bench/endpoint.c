/*
 * endpoint.c: the `redis` scenario's Redis connection (endpoint.h): URLs,
 * one-shot commands over hiredis, the server's own figures, and the
 * private redis-server in a temporary directory.  Every wait is bounded,
 * and it never removes a directory it did not make.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "endpoint.h"
#include "lib/redis-server.h"
#include "lib/spawn.h"

#define REDIS_WAIT_MS 10000

/* See endpoint.h. */
int bench_endpoint_parse(const char *url, endpoint_t *ep)
{
    memset(ep, 0, sizeof *ep);
    if (strncmp(url, "unix://", 7) == 0) {
        ep->is_unix = true;
        return snprintf(ep->path, sizeof ep->path, "%s", url + 7) < (int)sizeof ep->path &&
                       ep->path[0] == '/' ? 0 : -1;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *hp = url + 8, *colon = strrchr(hp, ':');
    if (colon == NULL || colon == hp || (size_t)(colon - hp) >= sizeof ep->host)
        return -1;
    memcpy(ep->host, hp, (size_t)(colon - hp));
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    snprintf(ep->port, sizeof ep->port, "%ld", port);
    return 0;
}

/* A hiredis connection to the endpoint with a 5 s timeout, or NULL. */
static redisContext *endpoint_connect(const endpoint_t *ep)
{
    struct timeval tv = {5, 0};
    redisContext *c = ep->is_unix ? redisConnectUnixWithTimeout(ep->path, tv)
                                  : redisConnectWithTimeout(ep->host, atoi(ep->port), tv);
    if (c != NULL && c->err != 0) {
        redisFree(c);
        return NULL;
    }
    if (c != NULL)
        redisSetTimeout(c, tv);
    return c;
}

/* The text of a reply that is not an array (a nil's is NULL), and whether
 * it is an error. */
static const char *reply_text(const redisReply *r, size_t *len, bool *error)
{
    *error = r->type == REDIS_REPLY_ERROR;
    if (r->type == REDIS_REPLY_NIL) {
        *len = 0;
        return NULL;
    }
    *len = r->len;
    return r->str;
}

/* Sends one command and reads its reply, which must be a simple string, an
 * integer, a bulk string or a flat array of those; stores its text in *out
 * (free(); an array's elements joined by '\n', a nil element as nothing).
 * Returns 0, or -1 (I/O failure, a nil or nested reply, an error reply or
 * element: its text in *out when there is one). */
int bench_endpoint_command(const endpoint_t *ep, int argc, const char *const *argv, char **out)
{
    *out = NULL;
    redisContext *c = endpoint_connect(ep);
    if (c == NULL)
        return -1;
    redisReply *r = redisCommandArgv(c, argc, (const char **)argv, NULL);
    redisFree(c);
    if (r == NULL)
        return -1;
    bool is_array = r->type == REDIS_REPLY_ARRAY;
    size_t count = is_array ? r->elements : 1;
    /* First checked and sized, then copied. */
    size_t total = 0;
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        redisReply *e = is_array ? r->element[i] : r;
        if (e->type == REDIS_REPLY_ARRAY || (!is_array && e->type == REDIS_REPLY_NIL)) {
            freeReplyObject(r);
            return -1;
        }
        if (e->type == REDIS_REPLY_INTEGER) {
            char num[32];
            total += (size_t)snprintf(num, sizeof num, "%lld", e->integer) + 1;
        } else {
            total += (e->type == REDIS_REPLY_NIL ? 0 : e->len) + 1;
        }
    }
    char *text = malloc(total + 1);
    if (text == NULL) {
        freeReplyObject(r);
        return -1;
    }
    size_t w = 0;
    for (size_t i = 0; i < count; i++) {
        redisReply *e = is_array ? r->element[i] : r;
        if (i > 0)
            text[w++] = '\n';
        if (e->type == REDIS_REPLY_INTEGER) {
            w += (size_t)snprintf(text + w, total + 1 - w, "%lld", e->integer);
            continue;
        }
        bool error;
        size_t len;
        const char *body = reply_text(e, &len, &error);
        if (body != NULL)
            memcpy(text + w, body, len);
        w += len;
        if (error)
            rc = -1;
    }
    text[w] = '\0';
    freeReplyObject(r);
    *out = text;
    return rc;
}

/* Removes the private server's directory, and nothing that is not one
 * (a path under /tmp/berth-bench-).  Returns system()'s status, or -1. */
static int remove_dir(const char *dir)
{
    /* Only what this program put there: the socket, log, AOF directory. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return dir[0] != '\0' && strncmp(dir, "/tmp/berth-bench-", 17) == 0 ? system(cmd) : -1;
}
/* Stops the private redis-server (SIGTERM, then SIGKILL, each wait
 * bounded) and removes its directory; does nothing for a server_t that
 * holds neither. */
void bench_server_stop(server_t *sv)
{
    if (sv->pid > 0) {
        berth__spawn_stop(sv->pid, SIGTERM, REDIS_WAIT_MS);
        sv->pid = 0;
    }
    if (sv->dir[0] != '\0')
        remove_dir(sv->dir);
    sv->dir[0] = '\0';
}

/* Starts a private redis-server (AOF with `appendfsync`, no RDB) in a new
 * temporary directory: on a unix socket there when `cluster` is false,
 * else a cluster node on a free loopback port (tried a few times: a port
 * can be taken between choosing and binding).  Returns 0 with *ep set, or
 * -1. */
static int server_start(server_t *sv, endpoint_t *ep, const char *appendfsync, bool cluster)
{
    memset(sv, 0, sizeof *sv);
    snprintf(sv->dir, sizeof sv->dir, "/tmp/berth-bench-XXXXXX");
    if (mkdtemp(sv->dir) == NULL) {
        fprintf(stderr, "berth-bench: mkdtemp: %s\n", strerror(errno));
        sv->dir[0] = '\0';
        return -1;
    }
    memset(ep, 0, sizeof *ep);
    ep->is_unix = !cluster;
    snprintf(ep->path, sizeof ep->path, "%s/redis.sock", sv->dir);
    snprintf(ep->host, sizeof ep->host, "127.0.0.1");
    /* Never outlive the benchmark, however it ends. */
    berth__redis_server_options_t opts = {
        .dir = sv->dir,
        .socket_path = cluster ? NULL : ep->path,
        .appendfsync = appendfsync,
        .cluster = cluster,
        .death_signal = SIGKILL,
    };
    char err[256] = "no free loopback port";
    for (int attempt = 0; attempt < (cluster ? 5 : 1); attempt++) {
        opts.port = cluster ? berth__redis_free_port(true) : 0;
        snprintf(ep->port, sizeof ep->port, "%d", opts.port);
        if (cluster && opts.port == 0)
            break;
        pid_t pid = berth__redis_server_start(&opts, REDIS_WAIT_MS, err, sizeof err);
        if (pid > 0) {
            sv->pid = pid;
            return 0;
        }
    }
    fprintf(stderr, "berth-bench: %s\n", err);
    bench_server_stop(sv);
    return -1;
}

/* Contract: endpoint.h. */
int bench_server_start(server_t *sv, endpoint_t *ep, const char *appendfsync)
{
    return server_start(sv, ep, appendfsync, false);
}

/* Contract: endpoint.h. */
int bench_cluster_node_start(server_t *sv, endpoint_t *ep, const char *appendfsync)
{
    return server_start(sv, ep, appendfsync, true);
}

/* FCALLs Redis has run, from INFO commandstats; 0 when it does not say. */
uint64_t bench_endpoint_fcalls(const endpoint_t *ep)
{
    char *info = NULL;
    const char *argv[] = {"INFO", "commandstats"};
    uint64_t calls = 0;
    if (bench_endpoint_command(ep, 2, argv, &info) == 0 && info != NULL) {
        const char *line = strstr(info, "cmdstat_fcall:calls=");
        if (line != NULL)
            calls = strtoull(line + strlen("cmdstat_fcall:calls="), NULL, 10);
    }
    free(info);
    return calls;
}

/* The AOF fsync policy a server runs with, into out[cap]: its appendfsync
 * ("everysec", "always", "no"), or "no AOF" when AOF is off.  Returns 0,
 * or -1 when the server does not say (CONFIG may be disabled). */
int bench_endpoint_appendfsync(const endpoint_t *ep, char *out, size_t cap)
{
    char *info = NULL, *conf = NULL;
    const char *persistence[] = {"INFO", "persistence"};
    const char *get[] = {"CONFIG", "GET", "appendfsync"};
    int rc = -1;
    if (bench_endpoint_command(ep, 2, persistence, &info) == 0 && info != NULL &&
        strstr(info, "aof_enabled:0") != NULL) {
        snprintf(out, cap, "no AOF");
        rc = 0;
    } else if (bench_endpoint_command(ep, 3, get, &conf) == 0 && conf != NULL &&
               strncmp(conf, "appendfsync\n", 12) == 0 && conf[12] != '\0') {
        snprintf(out, cap, "%s", conf + 12);
        rc = 0;
    }
    free(info);
    free(conf);
    return rc;
}
