/*
 * redis-harness.c: real redis-server processes for Berth's tests (see
 * redis-harness.h for the contract).
 *
 * It must never leave a server running or a directory behind: every server
 * is registered until it is stopped, dies with its parent
 * (PR_SET_PDEATHSIG), and is killed by an atexit cleanup that only the
 * starting process runs.  It must never touch a Redis it did not start, and
 * never wait without a bound.
 */
#define _GNU_SOURCE
#include "redis-harness.h"

#include "lib/clock.h"
#include "lib/random.h"
#include "lib/redis-server.h"
#include "lib/spawn.h"

#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HARNESS_START_WAIT_MS 10000
#define HARNESS_STOP_WAIT_MS 10000
#define HARNESS_CLUSTER_WAIT_MS 30000
#define HARNESS_MAX_SERVERS 64

/* Servers started by this process and not yet stopped; the atexit cleanup
 * walks them.  `registry_owner` is the pid that registered the cleanup, so
 * forked children (which inherit both) leave the servers alone. */
static berth_test_redis_t *registry[HARNESS_MAX_SERVERS];
static pid_t registry_owner;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Waits for `pid` to exit, at most `wait_ms`.  Returns 0 once reaped (or
 * when it is not our child any more), -1 on timeout. */
static int reap(pid_t pid, long wait_ms)
{
    return berth__spawn_reap(pid, wait_ms, NULL) < 0 ? -1 : 0;
}

void berth_test_redis_cleanup_all(void)
{
    if (registry_owner != getpid())
        return;
    for (int i = 0; i < HARNESS_MAX_SERVERS; i++) {
        berth_test_redis_t *r = registry[i];
        if (r == NULL)
            continue;
        if (r->pid > 0) {
            kill(r->pid, SIGKILL);
            reap(r->pid, HARNESS_STOP_WAIT_MS);
            r->pid = 0;
        }
        remove_tree(r->dir);
        r->dir[0] = '\0';
        registry[i] = NULL;
    }
}

static int registry_add(berth_test_redis_t *r)
{
    if (registry_owner != getpid()) {
        registry_owner = getpid();
        atexit(berth_test_redis_cleanup_all);
    }
    for (int i = 0; i < HARNESS_MAX_SERVERS; i++) {
        if (registry[i] == NULL) {
            registry[i] = r;
            return 0;
        }
    }
    fprintf(stderr, "redis-harness: more than %d servers at once\n", HARNESS_MAX_SERVERS);
    return -1;
}

static void registry_remove(berth_test_redis_t *r)
{
    for (int i = 0; i < HARNESS_MAX_SERVERS; i++)
        if (registry[i] == r)
            registry[i] = NULL;
}

redisContext *berth_test_redis_connect(const berth_test_redis_t *r)
{
    struct timeval tv = { 5, 0 };
    redisContext *c = r->opts.transport == BERTH_TEST_REDIS_UNIX
                          ? redisConnectUnixWithTimeout(r->socket_path, tv)
                          : redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c == NULL)
        return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* How lib/redis-server.c is to run r's server: dies with the test
 * process whatever kills it. */
static berth__redis_server_options_t server_options(const berth_test_redis_t *r)
{
    const char *fsync = r->opts.aof == BERTH_TEST_REDIS_AOF_OFF      ? NULL
                        : r->opts.aof == BERTH_TEST_REDIS_AOF_ALWAYS ? "always"
                                                                     : "everysec";
    return (berth__redis_server_options_t){
        .dir = r->dir,
        .socket_path = r->opts.transport == BERTH_TEST_REDIS_UNIX ? r->socket_path : NULL,
        .port = r->port,
        .appendfsync = fsync,
        .cluster = r->opts.cluster != 0,
        .death_signal = SIGKILL,
    };
}

/* Starts redis-server for r (its dir, port and options already set) and
 * waits for PING.  Returns 0, or -1 with the server killed and reaped (its
 * directory kept: the caller decides). */
static int start_server(berth_test_redis_t *r)
{
    berth__redis_server_options_t o = server_options(r);
    char err[256];
    pid_t pid = berth__redis_server_start(&o, HARNESS_START_WAIT_MS, err, sizeof err);
    if (pid < 0) {
        fprintf(stderr, "redis-harness: %s\n", err);
        r->pid = 0;
        return -1;
    }
    r->pid = pid;
    return 0;
}

berth_test_redis_t *berth_test_redis_start(const berth_test_redis_options_t *opts)
{
    berth_test_redis_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    if (opts != NULL)
        r->opts = *opts;
    if (r->opts.cluster)
        r->opts.transport = BERTH_TEST_REDIS_TCP;

    snprintf(r->dir, sizeof r->dir, "/tmp/berth-redis-XXXXXX");
    if (mkdtemp(r->dir) == NULL) {
        fprintf(stderr, "redis-harness: mkdtemp: %s\n", strerror(errno));
        free(r);
        return NULL;
    }
    if (registry_add(r) < 0) {
        remove_tree(r->dir);
        free(r);
        return NULL;
    }
    snprintf(r->socket_path, sizeof r->socket_path, "%s/redis.sock", r->dir);

    /* A TCP port can be taken between choosing and binding: try a few. */
    int attempts = r->opts.transport == BERTH_TEST_REDIS_TCP ? 5 : 1;
    for (int i = 0; i < attempts; i++) {
        if (r->opts.transport == BERTH_TEST_REDIS_TCP) {
            r->port = berth__redis_free_port(r->opts.cluster);
            if (r->port == 0) {
                fprintf(stderr, "redis-harness: no free loopback port\n");
                break;
            }
            snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
        } else {
            r->port = 0;
            snprintf(r->url, sizeof r->url, "unix://%s", r->socket_path);
        }
        if (start_server(r) == 0)
            return r;
    }
    registry_remove(r);
    remove_tree(r->dir);
    free(r);
    return NULL;
}

int berth_test_redis_kill(berth_test_redis_t *r)
{
    if (r == NULL || r->pid <= 0)
        return 0;
    kill(r->pid, SIGKILL);
    int rc = reap(r->pid, HARNESS_STOP_WAIT_MS);
    if (rc == 0)
        r->pid = 0;
    return rc;
}

int berth_test_redis_restart(berth_test_redis_t *r)
{
    if (berth_test_redis_kill(r) < 0)
        return -1;
    return start_server(r);
}

void berth_test_redis_stop(berth_test_redis_t *r)
{
    if (r == NULL)
        return;
    if (r->pid > 0) {
        berth__spawn_stop(r->pid, SIGTERM, HARNESS_STOP_WAIT_MS);
        r->pid = 0;
    }
    registry_remove(r);
    remove_tree(r->dir);
    free(r);
}

berth_test_redis_t *berth_test_redis_group;

int berth_test_redis_group_setup(void **state)
{
    (void)state;
    berth_test_redis_options_t o = {BERTH_TEST_REDIS_UNIX, BERTH_TEST_REDIS_AOF_OFF, 0};
    berth_test_redis_group = berth_test_redis_start(&o);
    return berth_test_redis_group != NULL ? 0 : -1;
}

int berth_test_redis_group_teardown(void **state)
{
    (void)state;
    berth_test_redis_stop(berth_test_redis_group);
    berth_test_redis_group = NULL;
    return 0;
}

static int cluster_node_ok(const berth_test_redis_t *node)
{
    redisContext *c = berth_test_redis_connect(node);
    if (c == NULL)
        return 0;
    redisReply *reply = redisCommand(c, "CLUSTER INFO");
    int ok = reply != NULL && reply->type == REDIS_REPLY_STRING &&
             strstr(reply->str, "cluster_state:ok") != NULL;
    if (reply != NULL)
        freeReplyObject(reply);
    redisFree(c);
    return ok;
}

void berth_test_cluster_stop(berth_test_cluster_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->count; i++)
        berth_test_redis_stop(c->nodes[i]);
    free(c->nodes);
    free(c);
}

/* The first node of c that is running, or NULL. */
static berth_test_redis_t *cluster_live_node(const berth_test_cluster_t *c)
{
    for (int i = 0; i < c->count; i++)
        if (c->nodes[i]->pid > 0)
            return c->nodes[i];
    return NULL;
}

/* Whether every running node says cluster_state:ok. */
static int cluster_ok(const berth_test_cluster_t *c)
{
    for (int i = 0; i < c->count; i++)
        if (c->nodes[i]->pid > 0 && !cluster_node_ok(c->nodes[i]))
            return 0;
    return 1;
}

berth_test_cluster_t *berth_test_cluster_start_replicas(int masters, int replicas_per_master,
                                                        berth_test_redis_aof_t aof)
{
    if (masters < 3 || replicas_per_master < 0 || masters * (1 + replicas_per_master) > 64) {
        fprintf(stderr, "redis-harness: a cluster needs at least 3 masters, and at most "
                        "64 nodes\n");
        return NULL;
    }
    berth_test_cluster_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    int count = masters * (1 + replicas_per_master);
    c->nodes = calloc((size_t)count, sizeof *c->nodes);
    if (c->nodes == NULL) {
        free(c);
        return NULL;
    }
    c->masters = masters;
    berth_test_redis_options_t opts = { BERTH_TEST_REDIS_TCP, aof, 1 };
    for (int i = 0; i < count; i++) {
        c->nodes[i] = berth_test_redis_start(&opts);
        if (c->nodes[i] == NULL) {
            berth_test_cluster_stop(c);
            return NULL;
        }
        c->count = i + 1;
    }
    snprintf(c->url, sizeof c->url, "%s", c->nodes[0]->url);
    int ports[64];
    for (int i = 0; i < count; i++)
        ports[i] = c->nodes[i]->port;
    char err[512];
    if (berth__redis_cluster_create(ports, count, replicas_per_master, HARNESS_CLUSTER_WAIT_MS,
                                    err, sizeof err) < 0) {
        fprintf(stderr, "redis-harness: %s\n", err);
        berth_test_cluster_stop(c);
        return NULL;
    }
    return c;
}

berth_test_cluster_t *berth_test_cluster_start(int masters)
{
    return berth_test_cluster_start_replicas(masters, 0, BERTH_TEST_REDIS_AOF_OFF);
}

berth_test_redis_t *berth_test_cluster_node_for_key(const berth_test_cluster_t *c,
                                                    const char *key)
{
    berth_test_redis_t *live = cluster_live_node(c);
    redisContext *ctx = live != NULL ? berth_test_redis_connect(live) : NULL;
    if (ctx == NULL)
        return NULL;
    berth_test_redis_t *found = NULL;
    redisReply *slot = redisCommand(ctx, "CLUSTER KEYSLOT %s", key);
    redisReply *slots = redisCommand(ctx, "CLUSTER SLOTS");
    if (slot != NULL && slot->type == REDIS_REPLY_INTEGER && slots != NULL &&
        slots->type == REDIS_REPLY_ARRAY) {
        /* Each entry: start, end, [ip, port, id], replicas... */
        for (size_t i = 0; i < slots->elements && found == NULL; i++) {
            redisReply *e = slots->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
                slot->integer < e->element[0]->integer || slot->integer > e->element[1]->integer)
                continue;
            redisReply *master = e->element[2];
            if (master->type != REDIS_REPLY_ARRAY || master->elements < 2)
                continue;
            for (int k = 0; k < c->count; k++)
                if (c->nodes[k]->port == master->element[1]->integer)
                    found = c->nodes[k];
        }
    }
    if (slot != NULL)
        freeReplyObject(slot);
    if (slots != NULL)
        freeReplyObject(slots);
    redisFree(ctx);
    return found;
}

/* Whether `node` answers a command on `key` itself (no MOVED, no
 * CLUSTERDOWN): it is the master of the key's slot. */
static int cluster_node_serves(const berth_test_redis_t *node, const char *key)
{
    redisContext *ctx = berth_test_redis_connect(node);
    if (ctx == NULL)
        return 0;
    redisReply *r = redisCommand(ctx, "EXISTS %s", key);
    int ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
    if (r != NULL)
        freeReplyObject(r);
    redisFree(ctx);
    return ok;
}

berth_test_redis_t *berth_test_cluster_wait_master(const berth_test_cluster_t *c,
                                                   const char *key, long wait_ms)
{
    long long deadline = berth__clock_monotonic_ms() + wait_ms;
    for (;;) {
        berth_test_redis_t *m = cluster_ok(c) ? berth_test_cluster_node_for_key(c, key) : NULL;
        if (m != NULL && m->pid > 0 && cluster_node_serves(m, key))
            return m;
        if (berth__clock_monotonic_ms() >= deadline)
            return NULL;
        berth__clock_sleep_ms(50);
    }
}
