/*
 * test_store.c: the Redis store (core/store/store.c, core/store/functions.c) against a
 * real redis-server started for the test on a unix socket in a temporary
 * directory (tests/redis-harness.c); the system's Redis is never touched.
 *
 * Covers: opening an empty cell, host put/update/state/remove, placing,
 * redeploying and releasing with a second store's replica seeing each
 * change, a commit refused by Redis (conflict, retries, clean ENOSPC), a
 * trimmed change log forcing a replica to reload, functions reloaded after
 * FUNCTION FLUSH, a group's document read back, batches (and their
 * assignments as one stream entry per host), and fsck on a good
 * cell and on each kind of corruption injected with raw commands.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <signal.h>

#include <hiredis/hiredis.h>

#include "store-internal.h"
#include "redis-harness.h"

typedef struct fixture {
    berth_test_redis_t *redis;
    redisContext *raw;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    berth_test_redis_options_t o = {BERTH_TEST_REDIS_UNIX, BERTH_TEST_REDIS_AOF_EVERYSEC, 0};
    f->redis = berth_test_redis_start(&o);
    if (f->redis == NULL) {
        free(f);
        return -1;
    }
    f->raw = berth_test_redis_connect(f->redis);
    if (f->raw == NULL) {
        berth_test_redis_stop(f->redis);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    redisFree(f->raw);
    berth_test_redis_stop(f->redis);
    free(f);
    return 0;
}

/* A store on the fixture's server for `cell`, with a fresh engine. */
typedef struct side {
    berth_engine_t *engine;
    berth_store_t *store;
} side_t;

/* Opens a store on `cell` over a new engine made with options `eo` (NULL:
 * the defaults). */
static void side_open_with(fixture_t *f, const char *cell, uint32_t log_max_len,
                           const berth_engine_options_t *eo, side_t *s)
{
    berth_error_t err;
    assert_int_equal(berth_engine_new(eo, &s->engine, &err), 0);
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = f->redis->url;
    o.cell = cell;
    o.max_retries = 3;
    if (log_max_len)
        o.log_max_len = log_max_len;
    int rc = berth_store_open(&o, s->engine, &s->store, &err);
    if (rc != 0)
        fail_msg("open: %s: %s", err.name, err.message);
}

static void side_open(fixture_t *f, const char *cell, uint32_t log_max_len, side_t *s)
{
    side_open_with(f, cell, log_max_len, NULL, s);
}

static void side_close(side_t *s)
{
    berth_store_close(s->store);
    berth_engine_free(s->engine);
}

static void raw(fixture_t *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(f->raw, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("raw command: %s", r->str);
    freeReplyObject(r);
}

static berth_host_t host_desc(const char *name, uint32_t cores, uint32_t mem)
{
    berth_host_t h;
    memset(&h, 0, sizeof h);
    h.name = name;
    h.cores = cores;
    h.memory_mib = mem;
    h.os = BERTH_OS_LINUX;
    h.state = BERTH_HOST_READY;
    return h;
}

static berth_request_t request(uint32_t cores, uint32_t mem)
{
    berth_request_t r;
    memset(&r, 0, sizeof r);
    r.demand.millicores = cores * 1000;
    r.demand.requested_millicores = cores * 1000;
    r.demand.memory_mib = mem;
    r.os = BERTH_OS_LINUX;
    r.cpu_digest = 0xfedcba9876543210ull;
    return r;
}

static void put(side_t *s, berth_host_t h)
{
    berth_error_t err;
    int rc = berth_store_host_put(s->store, &h, &err);
    if (rc != 0)
        fail_msg("host put: %s: %s", err.name, err.message);
}

static void place(side_t *s, const char *key, berth_request_t r, const char *spec,
                  berth_placement_t *out)
{
    berth_error_t err;
    int rc = berth_store_place(s->store, key, &r, spec, out, &err);
    if (rc != 0)
        fail_msg("place %s: %s: %s", key, err.name, err.message);
}

static void used(side_t *s, const char *host, uint32_t mc, uint32_t groups)
{
    berth_host_usage_t u;
    assert_int_equal(berth_engine_host_get(s->engine, host, NULL, &u), 0);
    assert_int_equal(u.millicores, mc);
    assert_int_equal(u.groups, groups);
}

static void test_open_empty(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "empty", 0, &a);
    assert_int_equal(berth_engine_host_count(a.engine), 0);
    berth_error_t err;
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    assert_int_equal(berth_store_fsck(a.store, NULL, NULL, &err), 0);

    /* A store needs an empty engine, a valid cell and a reachable Redis. */
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = f->redis->url;
    o.cell = "empty";
    berth_store_t *s = NULL;
    berth_host_t h = host_desc("h1", 2, 1024);
    assert_int_equal(berth_engine_host_add(a.engine, &h, NULL), 0);
    assert_int_equal(berth_store_open(&o, a.engine, &s, &err), BERTH_EEXIST);
    assert_int_equal(berth_engine_host_remove(a.engine, "h1", NULL), 0);
    berth_engine_t *e2;
    assert_int_equal(berth_engine_new(NULL, &e2, NULL), 0);
    o.cell = "Bad_Cell";
    assert_int_equal(berth_store_open(&o, e2, &s, &err), BERTH_EINVAL);
    o.cell = "empty";
    o.url = "unix:///nonexistent/redis.sock";
    assert_int_equal(berth_store_open(&o, e2, &s, &err), BERTH_EIO);
    assert_string_equal(err.name, "RedisUnavailable");
    o.url = "http://x";
    assert_int_equal(berth_store_open(&o, e2, &s, &err), BERTH_EINVAL);
    assert_null(s);
    berth_engine_free(e2);
    side_close(&a);
}

static void test_hosts(void **state)
{
    fixture_t *f = *state;
    side_t a, b;
    side_open(f, "hosts", 0, &a);
    side_open(f, "hosts", 0, &b);
    berth_error_t err;
    berth_host_t h = host_desc("h1", 8, 16384);
    h.zone = "1";
    put(&a, h);
    h.cores = 16;
    put(&a, h);
    berth_host_t bad = host_desc("h2", 0, 1024);
    assert_int_equal(berth_store_host_put(a.store, &bad, &err), BERTH_EINVAL);
    assert_int_equal(berth_store_sync(b.store, &err), 0);
    berth_host_t got;
    assert_int_equal(berth_engine_host_get(b.engine, "h1", &got, NULL), 0);
    assert_int_equal(got.cores, 16);
    assert_string_equal(got.zone, "1");
    assert_int_equal(berth_engine_host_count(b.engine), 1);

    assert_int_equal(berth_store_host_set_state(a.store, "h1", BERTH_HOST_CORDONED, &err), 0);
    assert_int_equal(berth_store_host_set_state(a.store, "nope", BERTH_HOST_DOWN, &err),
                     BERTH_ENOENT);
    assert_int_equal(berth_store_sync(b.store, &err), 0);
    assert_int_equal(berth_engine_host_get(b.engine, "h1", &got, NULL), 0);
    assert_int_equal(got.state, BERTH_HOST_CORDONED);

    /* A busy host can neither go nor change OS. */
    assert_int_equal(berth_store_host_set_state(a.store, "h1", BERTH_HOST_READY, &err), 0);
    place(&a, "g1", request(2, 1024), NULL, NULL);
    assert_int_equal(berth_store_host_remove(b.store, "h1", &err), BERTH_EBUSY);
    h.os = BERTH_OS_WINDOWS;
    h.os_build = BERTH_WINDOWS_LTSC2022;
    assert_int_equal(berth_store_host_put(b.store, &h, &err), BERTH_EBUSY);
    assert_int_equal(berth_store_release(b.store, "g1", &err), 0);
    assert_int_equal(berth_store_host_remove(b.store, "h1", &err), 0);
    assert_int_equal(berth_store_host_remove(b.store, "h1", &err), BERTH_ENOENT);
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    assert_int_equal(berth_engine_host_count(a.engine), 0);
    assert_int_equal(berth_store_fsck(a.store, NULL, NULL, &err), 0);
    side_close(&a);
    side_close(&b);
}

/* A stopped group started again goes back to its old host when it fits,
 * and elsewhere when it does not. */
static void test_place_prefer(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "prefer", 0, &a);
    put(&a, host_desc("h1", 8, 8192));
    put(&a, host_desc("h2", 4, 8192));
    berth_error_t err;
    berth_placement_t p;
    berth_request_t r = request(2, 1024);
    /* Binpack alone would choose the fuller or smaller host; ask for h1. */
    assert_int_equal(berth_store_place_prefer(a.store, "g", &r, "h1", NULL, &p, &err), 0);
    assert_string_equal(p.host, "h1");
    assert_int_equal(berth_store_release(a.store, "g", &err), 0);
    assert_int_equal(berth_store_place_prefer(a.store, "g", &r, "h2", NULL, &p, &err), 0);
    assert_string_equal(p.host, "h2");
    assert_int_equal(berth_store_release(a.store, "g", &err), 0);
    /* h2 cannot hold 6 cores: the preference gives way. */
    berth_request_t big = request(6, 1024);
    assert_int_equal(berth_store_place_prefer(a.store, "big", &big, "h2", NULL, &p, &err), 0);
    assert_string_equal(p.host, "h1");
    /* An unknown host is no obstacle either. */
    assert_int_equal(berth_store_place_prefer(a.store, "g", &r, "gone", NULL, &p, &err), 0);
    assert_int_equal(berth_store_fsck(a.store, NULL, NULL, &err), 0);
    side_close(&a);
}

static void test_place_redeploy_release(void **state)
{
    fixture_t *f = *state;
    side_t a, b;
    side_open(f, "place", 0, &a);
    put(&a, host_desc("h1", 4, 8192));
    put(&a, host_desc("h2", 4, 8192));
    side_open(f, "place", 0, &b); /* opened from the snapshot */
    berth_placement_t p;
    const char *spec = "{\"location\":\"westeurope\",\"properties\":{}}";
    place(&a, "g1", request(3, 2048), spec, &p);
    assert_int_equal(p.kind, BERTH_PLACED_NEW);
    char first[BERTH_NAME_MAX + 1];
    strcpy(first, p.host);

    berth_error_t err;
    assert_int_equal(berth_store_sync(b.store, &err), 0);
    berth_placement_t q;
    assert_int_equal(berth_engine_group_get(b.engine, "g1", &q), 0);
    assert_string_equal(q.host, first);
    used(&b, first, 3000, 1);
    /* The document is stored once: in the group record, not in the change
     * log (replicas never need it). */
    redisReply *r = redisCommand(f->raw, "HGET berth:{place}:groups g1");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(memmem(r->str, r->len, "westeurope", 10));
    freeReplyObject(r);
    r = redisCommand(f->raw, "XREVRANGE berth:{place}:log + - COUNT 1");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    const redisReply *fields = r->element[0]->element[1];
    bool found_rec = false;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, "rec") == 0) {
            found_rec = true;
            assert_true(fields->element[i + 1]->len > 0);
            assert_null(memmem(fields->element[i + 1]->str, fields->element[i + 1]->len,
                               "westeurope", 10));
        }
    assert_true(found_rec);
    freeReplyObject(r);

    /* Redeploy from the other store: stays. */
    place(&b, "g1", request(3, 4096), NULL, &p);
    assert_int_equal(p.kind, BERTH_PLACED_STAYED);
    assert_string_equal(p.host, first);
    uint64_t gen = 0;
    char *doc = NULL;
    assert_int_equal(berth_store_group_read(a.store, "g1", &doc, &gen, &err), 0);
    assert_null(doc); /* the redeploy gave no document */
    assert_true(gen == 2);

    /* Cordoned: a redeploy stays, a new group goes elsewhere. */
    assert_int_equal(berth_store_host_set_state(a.store, first, BERTH_HOST_CORDONED, &err), 0);
    place(&b, "g1", request(3, 2048), spec, &p);
    assert_int_equal(p.kind, BERTH_PLACED_STAYED);
    place(&b, "g2", request(1, 1024), NULL, &p);
    assert_string_not_equal(p.host, first);
    /* Down: the redeploy moves. */
    assert_int_equal(berth_store_host_set_state(a.store, first, BERTH_HOST_DOWN, &err), 0);
    place(&a, "g1", request(3, 2048), spec, &p);
    assert_int_equal(p.kind, BERTH_PLACED_MOVED);
    assert_string_equal(p.previous_host, first);
    assert_int_equal(berth_store_group_read(b.store, "g1", &doc, &gen, &err), 0);
    assert_string_equal(doc, spec);
    assert_true(gen == 4);
    berth_free(doc);
    assert_int_equal(berth_store_sync(b.store, &err), 0);
    used(&b, first, 0, 0);
    used(&b, p.host, 4000, 2);

    /* A redeploy that changes the CPU fingerprint is refused. */
    berth_request_t changed = request(3, 2048);
    changed.cpu_digest = 7;
    assert_int_equal(berth_store_place(b.store, "g1", &changed, NULL, NULL, &err),
                     BERTH_ECONFLICT);

    assert_int_equal(berth_store_release(b.store, "g1", &err), 0);
    assert_int_equal(berth_store_release(a.store, "g1", &err), BERTH_ENOENT);
    assert_int_equal(berth_store_group_read(a.store, "g1", NULL, NULL, &err), BERTH_ENOENT);
    assert_int_equal(berth_engine_group_get(a.engine, "g1", NULL), BERTH_ENOENT);
    assert_int_equal(berth_engine_group_count(a.engine), 1);

    /* A fresh replica agrees, and the cell is sound. */
    side_t c;
    side_open(f, "place", 0, &c);
    assert_int_equal(berth_engine_group_count(c.engine), 1);
    berth_host_t hd;
    assert_int_equal(berth_engine_host_get(c.engine, first, &hd, NULL), 0);
    assert_int_equal(hd.state, BERTH_HOST_DOWN);
    assert_int_equal(berth_store_fsck(c.store, NULL, NULL, &err), 0);
    side_close(&c);
    side_close(&a);
    side_close(&b);
}

/* Rewrites a host record's usage behind the store's back, as a buggy or
 * hostile writer would. */
static void inject_usage(fixture_t *f, const char *cell, const char *host, long mc)
{
    char key[128];
    snprintf(key, sizeof key, "berth:{%s}:hosts", cell);
    raw(f, "EVAL %s 1 %s %s %ld",
        "local h = cmsgpack.unpack(redis.call('HGET', KEYS[1], ARGV[1])) "
        "h.used_mc = tonumber(ARGV[2]) "
        "redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack(h)) return 1",
        key, host, mc);
}

static void test_conflict(void **state)
{
    fixture_t *f = *state;
    side_t a, b;
    side_open(f, "conflict", 0, &a);
    side_open(f, "conflict", 0, &b);
    put(&a, host_desc("only", 4, 8192));
    berth_error_t err;
    assert_int_equal(berth_store_sync(b.store, &err), 0);
    /* Another writer takes the last room without a log entry: B's replica
     * still sees room, Redis refuses every commit, B retries and gives up
     * cleanly with nothing changed. */
    inject_usage(f, "conflict", "only", 4000);
    berth_request_t r = request(2, 1024);
    assert_int_equal(berth_store_place(b.store, "late", &r, NULL, NULL, &err), BERTH_ENOSPC);
    assert_non_null(strstr(err.message, "kept changing"));
    assert_int_equal(berth_engine_group_get(b.engine, "late", NULL), BERTH_ENOENT);
    assert_int_equal(berth_store_group_read(b.store, "late", NULL, NULL, &err), BERTH_ENOENT);
    used(&b, "only", 0, 0);
    inject_usage(f, "conflict", "only", 0);

    /* A fills the host; B catches up from the log before choosing and
     * finds no room: ENOSPC from its engine, nothing committed. */
    place(&a, "first", request(4, 1024), NULL, NULL);
    assert_int_equal(berth_store_place(b.store, "second", &r, NULL, NULL, &err), BERTH_ENOSPC);
    assert_int_equal(berth_engine_group_get(b.engine, "first", NULL), 0);
    assert_int_equal(berth_store_fsck(a.store, NULL, NULL, &err), 0);
    side_close(&a);
    side_close(&b);
}

static void test_log_trim_reload(void **state)
{
    fixture_t *f = *state;
    /* Small stream nodes so MAXLEN ~ trims a tiny log for real. */
    raw(f, "CONFIG SET stream-node-max-entries 2");
    side_t a, b;
    side_open(f, "trim", 2, &a);
    side_open(f, "trim", 2, &b);
    put(&a, host_desc("h1", 64, 65536));
    char key[16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "g%d", i);
        place(&a, key, request(1, 256), NULL, NULL);
    }
    redisReply *r = redisCommand(f->raw, "XLEN berth:{trim}:log");
    assert_non_null(r);
    assert_true(r->integer < 10);
    freeReplyObject(r);
    berth_error_t err;
    assert_int_equal(berth_store_sync(b.store, &err), 0);
    assert_int_equal(berth_engine_group_count(b.engine), 20);
    used(&b, "h1", 20000, 20);
    raw(f, "CONFIG SET stream-node-max-entries 100");
    side_close(&a);
    side_close(&b);
}

static void test_function_flush(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "flush", 0, &a);
    put(&a, host_desc("h1", 4, 4096));
    raw(f, "FUNCTION FLUSH");
    place(&a, "g1", request(1, 512), NULL, NULL);
    raw(f, "FUNCTION FLUSH");
    berth_error_t err;
    assert_int_equal(berth_store_release(a.store, "g1", &err), 0);
    raw(f, "FUNCTION FLUSH");
    const char *keys[] = {"b1", "b2"};
    berth_request_t reqs[2] = {request(1, 512), request(1, 512)};
    int results[2];
    assert_int_equal(berth_store_place_batch(a.store, 2, keys, reqs, NULL, results, &err), 0);
    assert_int_equal(results[0], 0);
    assert_int_equal(results[1], 0);
    side_close(&a);
}

/* A cell of schema 1 is upgraded when opened; one of an unknown schema is
 * refused, naming it, and left as it was. */
static void test_cell_schema(void **state)
{
    fixture_t *f = *state;
    raw(f, "HSET berth:{old}:meta schema 1");
    side_t a;
    side_open(f, "old", 0, &a);
    redisReply *r = redisCommand(f->raw, "HGET berth:{old}:meta schema");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(atoi(r->str), BERTH_CELL_SCHEMA);
    freeReplyObject(r);
    side_close(&a);
    raw(f, "HSET berth:{future}:meta schema 99");
    berth_engine_t *e = NULL;
    berth_store_t *s = NULL;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = f->redis->url;
    o.cell = "future";
    assert_int_equal(berth_store_open(&o, e, &s, &err), BERTH_EIO);
    assert_string_equal(err.name, "UnknownRecordVersion");
    assert_non_null(strstr(err.message, "schema version 99"));
    r = redisCommand(f->raw, "HGET berth:{future}:meta schema");
    assert_string_equal(r->str, "99");
    freeReplyObject(r);
    berth_engine_free(e);
}

static void test_batch(void **state)
{
    fixture_t *f = *state;
    side_t a, b;
    side_open(f, "batch", 0, &a);
    side_open(f, "batch", 0, &b);
    put(&a, host_desc("h1", 8, 8192));
    put(&a, host_desc("h2", 8, 8192));
    enum { N = 20 };
    const char *keys[N];
    char names[N][16];
    berth_request_t reqs[N];
    berth_placement_t outs[N];
    int results[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        keys[i] = names[i];
        reqs[i] = request(1, 512);
    }
    keys[5] = keys[4]; /* the same key twice: a create then a redeploy */
    berth_error_t err;
    assert_int_equal(berth_store_place_batch(a.store, N, keys, reqs, outs, results, &err), 0);
    int ok = 0, nospc = 0;
    for (int i = 0; i < N; i++) {
        if (results[i] == 0)
            ok++;
        else if (results[i] == BERTH_ENOSPC)
            nospc++;
    }
    /* 19 distinct keys, 16 cores. */
    assert_int_equal(ok, 17);
    assert_int_equal(nospc, 3);
    assert_int_equal(outs[4].kind, BERTH_PLACED_NEW);
    assert_int_equal(berth_engine_group_count(a.engine), 16);
    assert_int_equal(berth_store_sync(b.store, &err), 0);
    assert_int_equal(berth_engine_group_count(b.engine), 16);
    assert_int_equal(berth_store_fsck(b.store, NULL, NULL, &err), 0);

    /* A applies its own commits from their replies; another writer's commit
     * between two batches reaches A through the log first, and A, B and a
     * fresh replica agree on every host. */
    put(&a, host_desc("h3", 8, 8192));
    place(&b, "from-b", request(2, 512), NULL, NULL);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        keys[i] = names[i];
    }
    assert_int_equal(berth_store_place_batch(a.store, 4, keys, reqs, outs, results, &err), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(results[i], 0);
    assert_int_equal(berth_engine_group_get(a.engine, "from-b", NULL), 0);
    /* The batch went as one call: its four placements are one log entry,
     * seq and then op, name, rec for each, in order. */
    redisReply *r = redisCommand(f->raw, "XREVRANGE berth:{batch}:log + - COUNT 1");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    const redisReply *fields = r->element[0]->element[1];
    assert_int_equal(fields->elements, 2 + 6 * 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(fields->element[2 + 6 * i + 1]->str, "place");
        assert_string_equal(fields->element[2 + 6 * i + 3]->str, keys[i]);
    }
    freeReplyObject(r);
    assert_int_equal(berth_store_sync(b.store, &err), 0);
    assert_int_equal(berth_engine_group_count(a.engine), 21);
    assert_int_equal(berth_engine_group_count(b.engine), 21);
    const char *hosts[] = {"h1", "h2", "h3"};
    for (int i = 0; i < 3; i++) {
        berth_host_usage_t ua, ub;
        assert_int_equal(berth_engine_host_get(a.engine, hosts[i], NULL, &ua), 0);
        assert_int_equal(berth_engine_host_get(b.engine, hosts[i], NULL, &ub), 0);
        assert_int_equal(ua.millicores, ub.millicores);
        assert_int_equal(ua.groups, ub.groups);
    }
    /* A fresh replica loaded from the snapshot holds the same. */
    side_t c;
    side_open(f, "batch", 0, &c);
    assert_int_equal(berth_engine_group_count(c.engine), 21);
    for (int i = 0; i < 4; i++) {
        berth_placement_t pa, pc;
        assert_int_equal(berth_engine_group_get(a.engine, keys[i], &pa), 0);
        assert_int_equal(berth_engine_group_get(c.engine, keys[i], &pc), 0);
        assert_string_equal(pa.host, pc.host);
    }
    assert_int_equal(berth_store_fsck(c.store, NULL, NULL, &err), 0);
    side_close(&c);
    side_close(&a);
    side_close(&b);
}

/* The replica's map on the shared table (table.h): puts, finds, deletes
 * that move the last entry into the hole, keys that differ only in length,
 * clear and reuse. */
static void test_map(void **state)
{
    (void)state;
    berth__map_t m;
    memset(&m, 0, sizeof m);
    assert_null(berth__map_find(&m, "a", 1));
    enum { N = 1000 };
    char key[32];
    for (int i = 0; i < N; i++) {
        int len = snprintf(key, sizeof key, "g-%d", i);
        berth__map_entry_t *e = berth__map_put(&m, key, (size_t)len);
        assert_non_null(e);
        assert_int_equal(e->value, 0);
        e->value = (uint64_t)i + 1;
    }
    assert_int_equal(m.n, N);
    /* "g-1" and "g-10" differ only in length; a prefix is no match. */
    assert_int_equal(berth__map_find(&m, "g-10", 4)->value, 11);
    assert_int_equal(berth__map_find(&m, "g-10", 3)->value, 2);
    assert_null(berth__map_find(&m, "g-", 2));
    assert_int_equal(berth__map_put(&m, "g-7", 3)->value, 8);
    assert_int_equal(m.n, N);
    for (int i = 0; i < N; i += 3) {
        int len = snprintf(key, sizeof key, "g-%d", i);
        berth__map_del(&m, key, (size_t)len);
    }
    berth__map_del(&m, "absent", 6);
    for (int i = 0; i < N; i++) {
        int len = snprintf(key, sizeof key, "g-%d", i);
        berth__map_entry_t *e = berth__map_find(&m, key, (size_t)len);
        if (i % 3 == 0) {
            assert_null(e);
        } else {
            assert_non_null(e);
            assert_int_equal(e->value, (uint64_t)i + 1);
            assert_int_equal(e->keylen, (uint32_t)len);
            assert_string_equal(e->key, key);
        }
    }
    assert_int_equal(m.n, N - (N + 2) / 3);
    berth__map_clear(&m);
    assert_int_equal(m.n, 0);
    assert_null(berth__map_find(&m, "g-1", 3));
    assert_non_null(berth__map_put(&m, "g-1", 3));
    assert_non_null(berth__map_find(&m, "g-1", 3));
    berth__map_free(&m);
    assert_null(berth__map_find(&m, "g-1", 3));
    berth__map_free(&m);
}

/* XLEN of `key`, or -1. */
static long long stream_len(fixture_t *f, const char *key)
{
    redisReply *r = redisCommand(f->raw, "XLEN %s", key);
    long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* A batch's assignments to one host are one stream entry; the host link
 * hands them out one by one, in order, keeps the entry until each is
 * acknowledged, hands the whole entry out again after a restart, and skips
 * (acknowledges) entries that are not well-formed. */
static void test_batch_assignments(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "asg", 0, &a);
    put(&a, host_desc("h1", 8, 8192));
    enum { N = 4 };
    const char *keys[N] = {"b0", "b1", "b2", "b3"};
    berth_request_t reqs[N];
    int results[N];
    for (int i = 0; i < N; i++)
        reqs[i] = request(1, 512);
    berth_error_t err;
    assert_int_equal(berth_store_place_batch(a.store, N, keys, reqs, NULL, results, &err), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(results[i], 0);
    const char *stream = "berth:{asg}:assign:h1";
    assert_int_equal(stream_len(f, stream), 1);

    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = f->redis->url;
    o.cell = "asg";
    berth_hostlink_t *link = NULL;
    assert_int_equal(berth_hostlink_open(&o, "h1", &link, &err), 0);
    berth_assignment_t got[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(berth_hostlink_next(link, 0, &got[i], &err), 1);
        assert_int_equal(got[i].op, BERTH_ASSIGN_PLACE);
        assert_string_equal(got[i].key, keys[i]);
        assert_int_equal(got[i].generation, 1);
        assert_string_equal(got[i].id, got[0].id);
    }
    berth_assignment_t none;
    assert_int_equal(berth_hostlink_next(link, 0, &none, &err), 0);
    /* Three of four acknowledged (out of order): the entry stays. */
    assert_int_equal(berth_hostlink_ack(link, &got[2], &err), 0);
    assert_int_equal(berth_hostlink_ack(link, &got[0], &err), 0);
    assert_int_equal(berth_hostlink_ack(link, &got[1], &err), 0);
    assert_int_equal(stream_len(f, stream), 1);
    /* The agent restarts: the whole entry comes again. */
    berth_hostlink_close(link);
    assert_int_equal(berth_hostlink_open(&o, "h1", &link, &err), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(berth_hostlink_next(link, 0, &got[i], &err), 1);
        assert_string_equal(got[i].key, keys[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(stream_len(f, stream), 1);
        assert_int_equal(berth_hostlink_ack(link, &got[i], &err), 0);
    }
    assert_int_equal(stream_len(f, stream), 0);

    /* Entries not well-formed: a triple cut short, a second triple with an
     * unknown op, a generation that is not a number.  Each is skipped and
     * dropped; the good entry after them comes through. */
    raw(f, "XADD %s * op place key x", stream);
    raw(f, "XADD %s * op place key x gen 2 op bogus key y gen 1", stream);
    raw(f, "XADD %s * op release key x gen 2z", stream);
    raw(f, "XADD %s * op release key b0 gen 1 op restart key b1 gen 1", stream);
    assert_int_equal(berth_hostlink_next(link, 0, &got[0], &err), 1);
    assert_int_equal(got[0].op, BERTH_ASSIGN_RELEASE);
    assert_string_equal(got[0].key, "b0");
    assert_int_equal(berth_hostlink_next(link, 0, &got[1], &err), 1);
    assert_int_equal(got[1].op, BERTH_ASSIGN_RESTART);
    assert_string_equal(got[1].key, "b1");
    assert_int_equal(stream_len(f, stream), 1);
    assert_int_equal(berth_hostlink_ack(link, &got[0], &err), 0);
    assert_int_equal(berth_hostlink_ack(link, &got[1], &err), 0);
    assert_int_equal(stream_len(f, stream), 0);
    /* An assignment acknowledged twice changes nothing more. */
    assert_int_equal(berth_hostlink_ack(link, &got[1], &err), 0);
    redisReply *p = redisCommand(f->raw, "XPENDING %s agents", stream);
    assert_int_equal(p->element[0]->integer, 0);
    freeReplyObject(p);
    berth_hostlink_close(link);
    side_close(&a);
}

typedef struct seen {
    int n;
    char all[2048];
} seen_t;

/* A cell whose hosts use a GPU SKU outside the built-in table (T4) loads in
 * replicas that never heard of it: the cell keeps its SKU table. */
static void test_gpu_sku_table(void **state)
{
    fixture_t *f = *state;
    side_t early, a;
    side_open(f, "skus", 0, &early);    /* opened before the SKU exists */
    assert_int_equal(berth_engine_new(NULL, &a.engine, NULL), 0);
    berth_gpu_sku_t t4 = {"T4", 2, {{1, 8000, 32 * 1024}, {2, 16000, 64 * 1024}}};
    assert_int_equal(berth_engine_gpu_sku_add(a.engine, &t4, NULL), 0);
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = f->redis->url;
    o.cell = "skus";
    berth_error_t err;
    assert_int_equal(berth_store_open(&o, a.engine, &a.store, &err), 0);
    berth_host_t h = host_desc("t4-host", 16, 64 * 1024);
    h.gpu_sku = "T4";
    h.gpu_count = 2;
    put(&a, h);
    put(&a, h); /* an unchanged SKU logs nothing and changes nothing */

    /* a replica opened afterwards loads the SKU with the snapshot */
    side_t late;
    side_open(f, "skus", 0, &late);
    assert_non_null(berth_engine_gpu_sku_find(late.engine, "T4", NULL));
    assert_int_equal(berth_engine_host_get(late.engine, "t4-host", NULL, NULL), 0);
    /* the early replica learns it from the log, and places on it */
    uint32_t id;
    assert_int_equal(berth_store_sync(early.store, &err), 0);
    assert_non_null(berth_engine_gpu_sku_find(early.engine, "T4", &id));
    berth_request_t r = request(4, 8 * 1024);
    r.demand.gpu_count = 1;
    r.demand.gpu_sku = id;
    berth_placement_t p;
    place(&early, "inference", r, NULL, &p);
    assert_string_equal(p.host, "t4-host");
    assert_int_equal(berth_store_sync(late.store, &err), 0);
    berth_host_usage_t u;
    assert_int_equal(berth_engine_host_get(late.engine, "t4-host", NULL, &u), 0);
    assert_int_equal(u.gpu_count, 1);

    /* a SKU the engine's rules refuse changes nothing */
    berth_gpu_sku_t bad = {"", 1, {{1, 1000, 1024}}};
    assert_int_equal(berth_store_gpu_sku_put(a.store, &bad, &err), BERTH_EINVAL);
    assert_int_equal(berth_store_fsck(a.store, NULL, NULL, &err), 0);
    side_close(&late);
    side_close(&early);
    side_close(&a);
}

static uint64_t cell_seq(fixture_t *f, const char *cell)
{
    redisReply *r = redisCommand(f->raw, "GET berth:{%s}:seq", cell);
    assert_non_null(r);
    uint64_t seq = r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return seq;
}

/* The cell's sandbox policy: put in one step, loaded by a store opened
 * afterwards (its snapshot) and by one opened before (the log), applied to
 * the requests their engines compute; an unknown policy is refused and
 * logs nothing; a cell without one leaves each engine its own. */
static void test_cell_sandbox(void **state)
{
    fixture_t *f = *state;
    side_t early, a;
    side_open(f, "sbx", 0, &early);
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    eo.sandbox = BERTH_SANDBOX_ALL;
    side_open_with(f, "sbx", 0, &eo, &a);
    berth_error_t err;
    assert_int_equal(berth_engine_sandbox_get(a.engine), BERTH_SANDBOX_ALL);
    assert_int_equal(berth_engine_sandbox_get(early.engine), BERTH_SANDBOX_NONE);

    uint64_t seq = cell_seq(f, "sbx");
    assert_int_equal(berth_store_sandbox_put(a.store, (berth_sandbox_policy_t)5, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.name, "InvalidSandboxPolicy");
    assert_int_equal(cell_seq(f, "sbx"), seq);
    assert_int_equal(berth_store_sandbox_put(a.store, BERTH_SANDBOX_ALL, &err), 0);
    assert_int_equal(cell_seq(f, "sbx"), seq + 1);
    assert_int_equal(berth_store_sandbox_put(a.store, BERTH_SANDBOX_ALL, &err), 0);
    assert_int_equal(cell_seq(f, "sbx"), seq + 1); /* unchanged: nothing logged */

    side_t late;
    side_open(f, "sbx", 0, &late);
    assert_int_equal(berth_engine_sandbox_get(late.engine), BERTH_SANDBOX_ALL);
    assert_int_equal(berth_store_sync(early.store, &err), 0);
    assert_int_equal(berth_engine_sandbox_get(early.engine), BERTH_SANDBOX_ALL);
    static const char doc[] =
        "{\"name\": \"g\", \"properties\": {\"osType\": \"Linux\", \"containers\": ["
        "{\"name\": \"a\", \"properties\": {\"image\": \"nginx\", \"resources\": "
        "{\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}";
    berth_group_t *g = NULL;
    assert_int_equal(berth_group_parse(doc, sizeof doc - 1, &g, &err), 0);
    berth_request_t r;
    assert_int_equal(berth_engine_group_request(early.engine, g, &r, &err), 0);
    assert_true(r.sandbox);

    /* back to none, everywhere */
    assert_int_equal(berth_store_sandbox_put(a.store, BERTH_SANDBOX_NONE, &err), 0);
    assert_int_equal(berth_store_sync(late.store, &err), 0);
    assert_int_equal(berth_engine_sandbox_get(late.engine), BERTH_SANDBOX_NONE);
    assert_int_equal(berth_engine_group_request(late.engine, g, &r, &err), 0);
    assert_false(r.sandbox);
    assert_int_equal(berth_store_fsck(a.store, NULL, NULL, &err), 0);
    berth_group_free(g);
    side_close(&late);
    side_close(&early);
    side_close(&a);
}

/* The cell's per-group limits: put in one step, loaded by a store opened
 * afterwards (its snapshot) and by one opened before (the log); a cell
 * without limits leaves each engine its own. */
static void test_cell_limits(void **state)
{
    fixture_t *f = *state;
    side_t early, a;
    side_open(f, "lim", 0, &early);
    /* An engine created with limits of its own keeps them while the cell
     * sets none. */
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    eo.limits.max_millicores = 8000;
    side_open_with(f, "lim", 0, &eo, &a);
    berth_error_t err;
    berth_limits_t got;
    berth_engine_limits_get(a.engine, &got);
    assert_int_equal(got.max_millicores, 8000);
    berth_engine_limits_get(early.engine, &got);
    assert_int_equal(got.max_millicores, 4000);

    berth_limits_t l = eo.limits;
    l.max_millicores = 16000;
    l.max_memory_mib = 64 * 1024;
    l.max_ip_ports = 9;
    assert_int_equal(berth_store_limits_put(a.store, &l, &err), 0);
    berth_engine_limits_get(a.engine, &got);
    assert_memory_equal(&got, &l, sizeof l);
    uint64_t seq = cell_seq(f, "lim");
    assert_int_equal(berth_store_limits_put(a.store, &l, &err), 0);
    assert_int_equal(cell_seq(f, "lim"), seq); /* unchanged: nothing logged */

    /* a zero member is refused and changes nothing */
    berth_limits_t bad = l;
    bad.max_containers = 0;
    assert_int_equal(berth_store_limits_put(a.store, &bad, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "containers");
    assert_int_equal(cell_seq(f, "lim"), seq);

    /* a store opened afterwards loads them with the snapshot */
    side_t late;
    side_open(f, "lim", 0, &late);
    berth_engine_limits_get(late.engine, &got);
    assert_memory_equal(&got, &l, sizeof l);
    /* a store opened before learns them from the log */
    assert_int_equal(berth_store_sync(early.store, &err), 0);
    berth_engine_limits_get(early.engine, &got);
    assert_memory_equal(&got, &l, sizeof l);

    /* a 12-core, 48 GB group is valid on the cell's replicas */
    static const char doc[] =
        "{\"name\": \"big\", \"properties\": {\"osType\": \"Linux\", \"containers\": ["
        "{\"name\": \"a\", \"properties\": {\"image\": \"nginx\", \"resources\": "
        "{\"requests\": {\"cpu\": 12, \"memoryInGB\": 48}}}}]}}";
    berth_group_t *g = NULL;
    assert_int_equal(berth_group_parse(doc, sizeof doc - 1, &g, &err), 0);
    berth_engine_t *plain = NULL;
    assert_int_equal(berth_engine_new(NULL, &plain, NULL), 0);
    assert_int_equal(berth_engine_group_validate(plain, g, &err), BERTH_EINVAL);
    assert_int_equal(berth_engine_group_validate(early.engine, g, &err), 0);
    assert_int_equal(berth_engine_group_validate(late.engine, g, &err), 0);
    berth_engine_free(plain);
    berth_group_free(g);

    /* a later put replaces them everywhere */
    assert_int_equal(berth_store_limits_put(a.store, &eo.limits, &err), 0);
    assert_int_equal(berth_store_sync(late.store, &err), 0);
    berth_engine_limits_get(late.engine, &got);
    assert_int_equal(got.max_millicores, 8000);
    assert_int_equal(berth_store_fsck(a.store, NULL, NULL, &err), 0);
    side_close(&late);
    side_close(&early);
    side_close(&a);
}

/* The cell's subnets: put in one logged step, loaded by a store opened
 * afterwards (its snapshot) and by one opened before (the log); a refused
 * table and an equal one change nothing; a subnet's group is placed on the
 * hosts carrying it on every replica. */
static void test_cell_subnets(void **state)
{
    fixture_t *f = *state;
    side_t early, a;
    side_open(f, "sn", 0, &early);
    side_open(f, "sn", 0, &a);
    berth_error_t err;
    for (int i = 0; i < 2; i++) {
        berth_host_t h = {.name = i ? "h2" : "h1", .cores = 8, .memory_mib = 16384,
                          .os = BERTH_OS_LINUX, .state = BERTH_HOST_READY};
        assert_int_equal(berth_store_host_put(a.store, &h, &err), 0);
    }
    const char *hosts[] = {"h2"};
    berth_subnet_t t[] = {{.id = "sn-a", .cidr = "10.4.0.0/24", .hosts = hosts, .nhosts = 1}};
    assert_int_equal(berth_store_subnets_put(a.store, t, 1, &err), 0);
    assert_int_equal(berth_engine_subnet_find(a.engine, "sn-a"), 0);
    uint64_t seq = cell_seq(f, "sn");
    assert_int_equal(berth_store_subnets_put(a.store, t, 1, &err), 0);
    assert_int_equal(cell_seq(f, "sn"), seq); /* unchanged: nothing logged */

    berth_subnet_t bad[] = {t[0], {.id = "sn-b", .cidr = "10.4.0.0/16", .hosts = NULL}};
    assert_int_equal(berth_store_subnets_put(a.store, bad, 2, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "subnets[1].cidr");
    assert_int_equal(cell_seq(f, "sn"), seq);
    assert_int_equal(berth_engine_subnet_count(a.engine), 1);

    side_t late;
    side_open(f, "sn", 0, &late);
    assert_int_equal(berth_store_sync(early.store, &err), 0);
    side_t *replicas[] = {&early, &late};
    for (int i = 0; i < 2; i++) {
        berth_engine_t *e = replicas[i]->engine;
        char *json = NULL;
        assert_int_equal(berth_engine_subnets_json(e, &json), 0);
        assert_string_equal(json, "[{\"id\":\"sn-a\",\"cidr\":\"10.4.0.0/24\","
                                  "\"hosts\":[\"h2\"]}]");
        berth_free(json);
        berth_request_t r;
        memset(&r, 0, sizeof r);
        r.os = BERTH_OS_LINUX;
        r.demand.millicores = r.demand.requested_millicores = 1000;
        r.demand.memory_mib = 1024;
        r.subnet_mask = 1;
        berth_placement_t p;
        assert_int_equal(berth_engine_request_place(e, "rg/g", &r, &p, &err), 0);
        assert_string_equal(p.host, "h2");
    }
    /* a later put replaces the table everywhere */
    assert_int_equal(berth_store_subnets_put(a.store, NULL, 0, &err), 0);
    assert_int_equal(berth_store_sync(late.store, &err), 0);
    assert_int_equal(berth_engine_subnet_count(late.engine), 0);
    assert_int_equal(berth_store_fsck(a.store, NULL, NULL, &err), 0);
    side_close(&late);
    side_close(&early);
    side_close(&a);
}

/* Redis gone mid-session: every call answers BERTH_EIO and the process
 * lives (the store keeps SIGPIPE from killing it, and leaves the test's own
 * disposition, the default, alone); after a restart the store carries on. */
static void test_redis_gone_no_sigpipe(void **state)
{
    fixture_t *f = *state;
    struct sigaction before;
    assert_int_equal(sigaction(SIGPIPE, NULL, &before), 0);
    assert_true(before.sa_handler == SIG_DFL);
    /* What is written before the kill must survive it (everysec may lose
     * the last second, and this test is about SIGPIPE, not that loss). */
    redisReply *cfg = redisCommand(f->raw, "CONFIG SET appendfsync always");
    assert_non_null(cfg);
    assert_int_equal(cfg->type, REDIS_REPLY_STATUS);
    freeReplyObject(cfg);
    side_t a;
    side_open(f, "gone", 0, &a);
    put(&a, host_desc("h1", 8, 32 * 1024));
    berth_placement_t p;
    place(&a, "before", request(1, 1024), NULL, &p);
    assert_int_equal(berth_test_redis_kill(f->redis), 0);
    berth_error_t err;
    char key[32];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "during-%d", i);
        berth_request_t r = request(1, 1024);
        assert_int_equal(berth_store_place(a.store, key, &r, NULL, &p, &err), BERTH_EIO);
        assert_int_equal(berth_store_sync(a.store, &err), BERTH_EIO);
    }
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    assert_int_equal(sigismember(&pending, SIGPIPE), 0);
    assert_int_equal(berth_test_redis_restart(f->redis), 0);
    redisFree(f->raw);
    f->raw = berth_test_redis_connect(f->redis);
    assert_non_null(f->raw);
    place(&a, "after", request(1, 1024), NULL, &p);
    assert_string_equal(p.host, "h1");
    assert_int_equal(berth_engine_group_get(a.engine, "before", NULL), 0);
    side_close(&a);
}

static void collect(const char *violation, void *data)
{
    seen_t *s = data;
    s->n++;
    strncat(s->all, violation, sizeof s->all - strlen(s->all) - 2);
    strcat(s->all, "\n");
}

static void test_fsck(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "fsck", 0, &a);
    put(&a, host_desc("h1", 4, 4096));
    put(&a, host_desc("h2", 4, 4096));
    place(&a, "g1", request(2, 1024), NULL, NULL);
    seen_t s = {0, ""};
    berth_error_t err;
    assert_int_equal(berth_store_fsck(a.store, collect, &s, &err), 0);
    assert_int_equal(s.n, 0);

    /* Over capacity (and so also not the sum of its groups). */
    inject_usage(f, "fsck", "h2", 9000);
    assert_int_equal(berth_store_fsck(a.store, collect, &s, &err), 2);
    assert_non_null(strstr(s.all, "host 'h2' is over capacity"));
    assert_non_null(strstr(s.all, "host 'h2' records 9000 millicores"));
    inject_usage(f, "fsck", "h2", 0);

    /* A group on a host that does not exist. */
    berth__group_record_t *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->key = (berth__bytes_t){"ghost", 5};
    g->host = (berth__bytes_t){"nowhere", 7};
    g->generation = 1;
    g->millicores = 1000;
    g->memory_mib = 256;
    g->os = BERTH_OS_LINUX;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(berth__group_record_encode(&buf, g), 0);
    redisReply *r = redisCommand(f->raw, "HSET berth:{fsck}:groups ghost %b", buf.data,
                                 buf.size);
    assert_non_null(r);
    freeReplyObject(r);
    msgpack_sbuffer_destroy(&buf);
    free(g);
    s = (seen_t){0, ""};
    assert_int_equal(berth_store_fsck(a.store, collect, &s, &err), 1);
    assert_non_null(strstr(s.all, "'ghost' is on host 'nowhere', which does not exist"));
    raw(f, "HDEL berth:{fsck}:groups ghost");

    /* A set member without a group; a group missing from its set. */
    raw(f, "SADD berth:{fsck}:hostgroups:h2 orphan");
    s = (seen_t){0, ""};
    assert_int_equal(berth_store_fsck(a.store, collect, &s, &err), 1);
    assert_non_null(strstr(s.all, "'orphan', which has no record"));
    raw(f, "SREM berth:{fsck}:hostgroups:h2 orphan");
    berth_placement_t p;
    assert_int_equal(berth_engine_group_get(a.engine, "g1", &p), 0);
    raw(f, "SREM berth:{fsck}:hostgroups:%s g1", p.host);
    s = (seen_t){0, ""};
    assert_int_equal(berth_store_fsck(a.store, collect, &s, &err), 1);
    assert_non_null(strstr(s.all, "not in its group set"));
    raw(f, "SADD berth:{fsck}:hostgroups:%s g1", p.host);

    /* An unknown record version; a counter out of step with the log. */
    raw(f, "HSET berth:{fsck}:hosts h3 %s", "\x81\xa1v\x07");
    raw(f, "INCR berth:{fsck}:seq");
    s = (seen_t){0, ""};
    assert_int_equal(berth_store_fsck(a.store, collect, &s, &err), 2);
    assert_non_null(strstr(s.all, "host 'h3': its record is unreadable"));
    assert_non_null(strstr(s.all, "newest entry has seq"));
    side_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map),
        cmocka_unit_test_setup_teardown(test_open_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place_redeploy_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place_prefer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_trim_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cell_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_assignments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsck, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpu_sku_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cell_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cell_subnets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cell_sandbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_gone_no_sigpipe, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
