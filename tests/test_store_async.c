/*
 * test_store_async.c: the asynchronous Redis store (core/store/store_async.c)
 * against a real redis-server on a loopback TCP port started for the test
 * (tests/redis-harness.c), driven by a libevent loop that every test runs
 * in bounded steps, so that no test can hang.
 *
 * Covers: 500 placements in flight at once into a small cell (each callback
 * once, the cell full and never over-committed, a synchronous replica
 * seeing the same groups, fsck clean); a synchronous writer racing the
 * asynchronous store; release; Redis killed with commits in flight (each
 * gets BERTH_EIO, the process survives SIGPIPE at its default disposition,
 * a place after the restart succeeds); a Redis that stops answering (the
 * phase timeout); close with work pending, from
 * outside and from inside a callback; calls refused at once never calling
 * back; a replica left behind by a trimmed log (reloaded from the snapshot,
 * then committing on top of it); a 3-master Redis Cluster whose cell's slot
 * moves while commits are in flight (MOVED on the commits) and while the
 * replica is stale (MOVED inside the snapshot's MULTI).
 *
 * Effects (a caller's own records written with a commit), read back with a
 * plain hiredis connection: every kind written with a placement, a release,
 * a restart or alone (records, guarded by the group's generation); none
 * written when the commit fails (no room, not placed, a guard); EXPECT and
 * CLAIM refusing the whole commit with the index of the effect, and
 * nothing changed in Redis or in the engine; UNCLAIM and HINCRBY's floor;
 * bad effects refused by the call itself; a Regular placement preempting
 * Spot groups (eviction records, the victims gone everywhere) and a Spot
 * one evicting nothing; replicas converging; two commits guarded by one
 * EXPECT, exactly one applying; and effects Redis cannot carry out (wrong
 * type, no integer, overflow, a bad expiry), which must not leave a commit
 * half-applied.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "../core/berth.h"
#include "redis-harness.h"
#include "test-time.h"

#define TEST_SECONDS 240            /* the whole binary, at most            */

typedef struct fixture {
    berth_test_redis_t *redis;
    struct event_base *base;
} fixture_t;

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_store_async: timed out\n";
    (void)!write(2, msg, sizeof msg - 1);
    berth_test_redis_cleanup_all();
    _exit(1);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    berth_test_redis_options_t o = {BERTH_TEST_REDIS_TCP, BERTH_TEST_REDIS_AOF_EVERYSEC, 0};
    f->redis = berth_test_redis_start(&o);
    f->base = event_base_new();
    if (f->redis == NULL || f->base == NULL) {
        berth_test_redis_stop(f->redis);
        if (f->base != NULL)
            event_base_free(f->base);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    event_base_free(f->base);
    berth_test_redis_stop(f->redis);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

typedef struct side {
    berth_engine_t *engine;
    berth_store_t *store;
} side_t;

static void options(fixture_t *f, const char *cell, berth_store_options_t *o)
{
    berth_store_options_init(o);
    o->url = f->redis->url;
    o->cell = cell;
    o->timeout_ms = 3000;
}

static void side_open(fixture_t *f, const char *cell, side_t *s)
{
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &s->engine, &err), 0);
    berth_store_options_t o;
    options(f, cell, &o);
    if (berth_store_open(&o, s->engine, &s->store, &err) != 0)
        fail_msg("open: %s: %s", err.name, err.message);
}

static void side_close(side_t *s)
{
    berth_store_close(s->store);
    berth_engine_free(s->engine);
}

typedef struct async_side {
    berth_engine_t *engine;
    berth_store_async_t *store;
} async_side_t;

static void async_open(fixture_t *f, const char *cell, uint32_t max_retries, async_side_t *a)
{
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &a->engine, &err), 0);
    berth_store_options_t o;
    options(f, cell, &o);
    if (max_retries)
        o.max_retries = max_retries;
    if (berth_store_async_open(&o, a->engine, f->base, &a->store, &err) != 0)
        fail_msg("async open: %s: %s", err.name, err.message);
}

static void async_close(async_side_t *a)
{
    berth_store_async_close(a->store);
    berth_engine_free(a->engine);
}

static void put_host(side_t *s, const char *name, uint32_t cores, uint32_t mem)
{
    berth_host_t h;
    memset(&h, 0, sizeof h);
    h.name = name;
    h.cores = cores;
    h.memory_mib = mem;
    h.os = BERTH_OS_LINUX;
    h.state = BERTH_HOST_READY;
    berth_error_t err;
    if (berth_store_host_put(s->store, &h, &err) != 0)
        fail_msg("host put: %s: %s", err.name, err.message);
}

static berth_request_t request(uint32_t cores, uint32_t mem)
{
    berth_request_t r;
    memset(&r, 0, sizeof r);
    r.demand.millicores = cores * 1000;
    r.demand.requested_millicores = cores * 1000;
    r.demand.memory_mib = mem;
    r.os = BERTH_OS_LINUX;
    return r;
}

/* One call's outcome as its callback saw it. */
typedef struct outcome {
    int calls;
    int status;
    char host[BERTH_NAME_MAX + 1];
    char name[BERTH_ERROR_NAME_MAX];
    int *total;                     /* callbacks seen, over a test          */
} outcome_t;

static void record(int status, const berth_placement_t *placement, const berth_error_t *err,
                   void *data)
{
    outcome_t *o = data;
    o->calls++;
    o->status = status;
    (*o->total)++;
    if (status == 0) {
        assert_null(err);
        if (placement != NULL)
            snprintf(o->host, sizeof o->host, "%s", placement->host);
    } else {
        assert_non_null(err);
        assert_null(placement);
        assert_int_equal(err->code, status);
        snprintf(o->name, sizeof o->name, "%s", err->name);
    }
}

static void never(int status, const berth_placement_t *placement, const berth_error_t *err,
                  void *data)
{
    (void)status, (void)placement, (void)err, (void)data;
    fail_msg("a refused call's callback ran");
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

/* Runs the loop one turn at a time (each turn at most 20 ms) until
 * *count reaches target or `ms` have passed. */
static void run_until(struct event_base *base, const int *count, int target, int ms)
{
    struct event *t = evtimer_new(base, tick, NULL);
    assert_non_null(t);
    double end = now_ms() + ms;
    while ((count == NULL || *count < target) && now_ms() < end) {
        struct timeval tv = {0, 20000};
        evtimer_add(t, &tv);
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(t);
}

static void fsck_print(const char *violation, void *data)
{
    (void)data;
    print_error("fsck: %s\n", violation);
}

/* The cell as a fresh synchronous replica sees it: fsck clean, no host
 * over capacity; returns its group count. */
static size_t check_cell(fixture_t *f, const char *cell)
{
    side_t c;
    side_open(f, cell, &c);
    berth_error_t err;
    assert_int_equal(berth_store_fsck(c.store, fsck_print, NULL, &err), 0);
    berth_engine_stats_t st;
    berth_engine_stats(c.engine, &st);
    assert_true(st.used_millicores <= st.capacity_millicores);
    assert_true(st.used_memory_mib <= st.capacity_memory_mib);
    size_t n = berth_engine_group_count(c.engine);
    side_close(&c);
    return n;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_many_in_flight(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "many", &a);
    put_host(&a, "h1", 8, 65536);
    put_host(&a, "h2", 8, 65536);
    put_host(&a, "h3", 8, 65536);
    put_host(&a, "h4", 8, 65536);
    async_side_t b;
    async_open(f, "many", 0, &b);
    enum { N = 500 };
    static outcome_t out[N];
    int total = 0;
    berth_request_t r = request(1, 1024);
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "g%d", i);
        memset(&out[i], 0, sizeof out[i]);
        out[i].total = &total;
        berth_error_t err;
        assert_int_equal(berth_store_async_place(b.store, key, &r, "{\"spec\":1}", record,
                                                 &out[i], &err), 0);
    }
    /* Nothing runs before the loop does. */
    assert_int_equal(total, 0);
    run_until(f->base, &total, N, 30000);
    assert_int_equal(total, N);
    int placed = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].calls, 1);
        if (out[i].status == 0) {
            placed++;
            assert_true(out[i].host[0] == 'h');
        } else {
            assert_int_equal(out[i].status, BERTH_ENOSPC);
        }
    }
    /* 32 cores of room, 1 core each: exactly full, never over. */
    assert_int_equal(placed, 32);
    assert_int_equal(berth_engine_group_count(b.engine), 32);
    /* The committed groups are what another replica sees. */
    berth_error_t err;
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    assert_int_equal(berth_engine_group_count(a.engine), 32);
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "g%d", i);
        berth_placement_t p;
        int rc = berth_engine_group_get(a.engine, key, &p);
        assert_int_equal(rc, out[i].status == 0 ? 0 : BERTH_ENOENT);
        if (rc == 0)
            assert_string_equal(p.host, out[i].host);
    }
    char *spec = NULL;
    for (int i = 0; i < N; i++)
        if (out[i].status == 0) {
            char key[32];
            snprintf(key, sizeof key, "g%d", i);
            assert_int_equal(berth_store_group_read(a.store, key, &spec, NULL, &err), 0);
            assert_string_equal(spec, "{\"spec\":1}");
            berth_free(spec);
            break;
        }
    assert_int_equal(check_cell(f, "many"), 32);
    async_close(&b);
    side_close(&a);
}

static void test_conflict_with_sync_writer(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "race", &a);
    put_host(&a, "h1", 4, 65536);
    put_host(&a, "h2", 4, 65536);
    put_host(&a, "h3", 4, 65536);
    async_side_t b;
    async_open(f, "race", 0, &b);
    /* Rounds of: the async store queues placements while the synchronous
     * store places others between single turns of the loop, so that the
     * async choices are often stale by the time they commit. */
    enum { ROUNDS = 12, PER = 6 };
    static outcome_t out[ROUNDS][PER];
    int total = 0, sync_placed = 0, async_placed = 0;
    berth_request_t r = request(1, 1024);
    for (int round = 0; round < ROUNDS; round++) {
        int target = total + PER;
        for (int i = 0; i < PER; i++) {
            char key[32];
            snprintf(key, sizeof key, "a%d-%d", round, i);
            memset(&out[round][i], 0, sizeof out[round][i]);
            out[round][i].total = &total;
            berth_error_t err;
            assert_int_equal(berth_store_async_place(b.store, key, &r, NULL, record,
                                                     &out[round][i], &err), 0);
        }
        struct event *t = evtimer_new(f->base, tick, NULL);
        double end = now_ms() + 20000;
        int step = 0;
        while (total < target && now_ms() < end) {
            struct timeval tv = {0, 5000};
            evtimer_add(t, &tv);
            event_base_loop(f->base, EVLOOP_ONCE);
            char key[32];
            snprintf(key, sizeof key, "s%d-%d", round, step++);
            berth_error_t err;
            int rc = berth_store_place(a.store, key, &r, NULL, NULL, &err);
            assert_true(rc == 0 || rc == BERTH_ENOSPC);
            sync_placed += rc == 0;
        }
        event_free(t);
        assert_int_equal(total, target);
        for (int i = 0; i < PER; i++) {
            assert_int_equal(out[round][i].calls, 1);
            assert_true(out[round][i].status == 0 || out[round][i].status == BERTH_ENOSPC);
            async_placed += out[round][i].status == 0;
        }
        /* Empty the cell for the next round, through both stores. */
        berth_error_t err;
        assert_int_equal(berth_store_sync(a.store, &err), 0);
        for (int i = 0; i < PER; i++) {
            char key[32];
            snprintf(key, sizeof key, "a%d-%d", round, i);
            if (out[round][i].status == 0)
                assert_int_equal(berth_store_release(a.store, key, &err), 0);
        }
        for (int s = 0; s < step; s++) {
            char key[32];
            snprintf(key, sizeof key, "s%d-%d", round, s);
            int rc = berth_store_release(a.store, key, &err);
            assert_true(rc == 0 || rc == BERTH_ENOENT);
        }
        assert_int_equal(check_cell(f, "race"), 0);
    }
    /* Both sides placed, and the async side's engine followed the log. */
    assert_true(async_placed > 0);
    assert_true(sync_placed > 0);
    int probe_total = 0;
    outcome_t probe = {.total = &probe_total};
    berth_error_t err;
    assert_int_equal(berth_store_async_place(b.store, "probe", &r, NULL, record, &probe, &err),
                     0);
    run_until(f->base, &probe_total, 1, 10000);
    assert_int_equal(probe.status, 0);
    assert_int_equal(berth_engine_group_count(b.engine), 1);
    async_close(&b);
    side_close(&a);
}

static void test_release(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "rel", &a);
    put_host(&a, "h1", 2, 4096);
    async_side_t b;
    async_open(f, "rel", 0, &b);
    int total = 0;
    outcome_t p1 = {.total = &total}, rel = {.total = &total}, p2 = {.total = &total},
              missing = {.total = &total};
    berth_request_t r = request(2, 1024);
    berth_error_t err;
    /* Place, release, place again in one turn: the release ends its round,
     * so the second placement of the same key finds the room freed. */
    assert_int_equal(berth_store_async_place(b.store, "g", &r, NULL, record, &p1, &err), 0);
    assert_int_equal(berth_store_async_release(b.store, "g", record, &rel, &err), 0);
    assert_int_equal(berth_store_async_place(b.store, "g", &r, NULL, record, &p2, &err), 0);
    assert_int_equal(berth_store_async_release(b.store, "nope", record, &missing, &err), 0);
    run_until(f->base, &total, 4, 10000);
    assert_int_equal(total, 4);
    assert_int_equal(p1.status, 0);
    assert_int_equal(rel.status, 0);
    assert_int_equal(p2.status, 0);
    assert_int_equal(missing.status, BERTH_ENOENT);
    assert_int_equal(p1.calls + rel.calls + p2.calls + missing.calls, 4);
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    assert_int_equal(berth_engine_group_count(a.engine), 1);
    uint64_t gen = 0;
    assert_int_equal(berth_store_group_read(a.store, "g", NULL, &gen, &err), 0);
    assert_int_equal(gen, 1); /* released, then placed anew */
    outcome_t last = {.total = &total};
    assert_int_equal(berth_store_async_release(b.store, "g", record, &last, &err), 0);
    run_until(f->base, &total, 5, 10000);
    assert_int_equal(last.status, 0);
    assert_int_equal(berth_engine_group_count(b.engine), 0);
    assert_int_equal(check_cell(f, "rel"), 0);
    async_close(&b);
    side_close(&a);
}

static void raw(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, cmd);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", cmd, r->str);
    freeReplyObject(r);
}

static void test_redis_killed(void **state)
{
    fixture_t *f = *state;
    /* The caller's SIGPIPE disposition is the default one, which kills. */
    struct sigaction sa;
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    assert_true(sa.sa_handler == SIG_DFL);
    side_t a;
    side_open(f, "kill", &a);
    put_host(&a, "h1", 64, 262144);
    async_side_t b;
    async_open(f, "kill", 0, &b);
    int total = 0;
    berth_error_t err;
    berth_request_t r = request(1, 1024);
    /* A first commit connects the asynchronous side. */
    outcome_t warm = {.total = &total};
    assert_int_equal(berth_store_async_place(b.store, "warm", &r, NULL, record, &warm, &err), 0);
    run_until(f->base, &total, 1, 10000);
    assert_int_equal(warm.status, 0);
    /* Redis holds writes back, so the commits sent wait there unanswered;
     * then it dies with them in flight. */
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);
    raw(c, "CLIENT PAUSE 20000 WRITE");
    redisFree(c);
    enum { N = 40 };
    outcome_t out[N];
    total = 0;
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", i);
        memset(&out[i], 0, sizeof out[i]);
        out[i].total = &total;
        assert_int_equal(berth_store_async_place(b.store, key, &r, NULL, record, &out[i], &err),
                         0);
    }
    run_until(f->base, NULL, 0, 300);
    assert_int_equal(total, 0);
    assert_int_equal(berth_test_redis_kill(f->redis), 0);
    run_until(f->base, &total, N, 10000);
    assert_int_equal(total, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].calls, 1);
        assert_int_equal(out[i].status, BERTH_EIO);
        assert_string_equal(out[i].name, "RedisUnavailable");
    }
    /* While Redis is down a call still queues and fails through its callback. */
    outcome_t down = {.total = &total};
    assert_int_equal(berth_store_async_place(b.store, "down", &r, NULL, record, &down, &err), 0);
    run_until(f->base, &total, N + 1, 10000);
    assert_int_equal(down.status, BERTH_EIO);
    /* Back up: the next call reconnects and commits. */
    assert_int_equal(berth_test_redis_restart(f->redis), 0);
    outcome_t after = {.total = &total};
    assert_int_equal(berth_store_async_place(b.store, "after", &r, NULL, record, &after, &err),
                     0);
    run_until(f->base, &total, N + 2, 10000);
    assert_int_equal(after.calls, 1);
    if (after.status != 0)
        fail_msg("place after restart: %d %s", after.status, after.name);
    /* No commit was reported without its reply: the cell holds "warm",
     * "after", and none of those answered BERTH_EIO, as the log says. */
    assert_int_equal(berth_engine_group_count(b.engine), 2);
    assert_int_equal(check_cell(f, "kill"), 2);
    async_close(&b);
    side_close(&a);
}

static void test_timeout(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "slow", &a);
    put_host(&a, "h1", 8, 65536);
    berth_engine_t *e;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    berth_store_options_t o;
    options(f, "slow", &o);
    o.timeout_ms = 300;
    berth_store_async_t *s;
    assert_int_equal(berth_store_async_open(&o, e, f->base, &s, &err), 0);
    int total = 0;
    berth_request_t r = request(1, 1024);
    outcome_t warm = {.total = &total};
    assert_int_equal(berth_store_async_place(s, "warm", &r, NULL, record, &warm, &err), 0);
    run_until(f->base, &total, 1, 10000);
    assert_int_equal(warm.status, 0);
    /* Redis answers no commit for 2 s: the store gives up after 300 ms. */
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);
    raw(c, "CLIENT PAUSE 2000 WRITE");
    outcome_t slow = {.total = &total};
    double t0 = now_ms();
    assert_int_equal(berth_store_async_place(s, "slow", &r, NULL, record, &slow, &err), 0);
    run_until(f->base, &total, 2, 10000);
    assert_int_equal(slow.calls, 1);
    assert_int_equal(slow.status, BERTH_EIO);
    assert_string_equal(slow.name, "RedisUnavailable");
    assert_true(now_ms() - t0 < 1500);
    raw(c, "CLIENT UNPAUSE");
    redisFree(c);
    /* The next call reconnects; whatever became of the abandoned commit,
     * the replica follows the log. */
    outcome_t next = {.total = &total};
    assert_int_equal(berth_store_async_place(s, "next", &r, NULL, record, &next, &err), 0);
    run_until(f->base, &total, 3, 10000);
    assert_int_equal(next.status, 0);
    size_t n = check_cell(f, "slow");
    assert_int_equal(berth_engine_group_count(e), n);
    berth_store_async_close(s);
    berth_engine_free(e);
    side_close(&a);
}

typedef struct closer {
    berth_store_async_t *store;
    int calls;
    int *total;
} closer_t;

static void close_inside(int status, const berth_placement_t *placement,
                         const berth_error_t *err, void *data)
{
    (void)status, (void)placement, (void)err;
    closer_t *c = data;
    c->calls++;
    (*c->total)++;
    berth_store_async_close(c->store);
    /* Closing refuses new work at once. */
    berth_error_t e;
    berth_request_t r = request(1, 1);
    assert_int_equal(berth_store_async_place(c->store, "late", &r, NULL, never, NULL, &e),
                     BERTH_EIO);
    assert_string_equal(e.name, "Closed");
}

static void test_close_pending(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "close", &a);
    put_host(&a, "h1", 64, 262144);
    side_close(&a);
    berth_request_t r = request(1, 1024);
    berth_error_t err;

    /* Closed before the loop ran: every callback once, "Closed". */
    async_side_t b;
    async_open(f, "close", 0, &b);
    enum { N = 20 };
    outcome_t out[N];
    int total = 0;
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "c%d", i);
        memset(&out[i], 0, sizeof out[i]);
        out[i].total = &total;
        assert_int_equal(berth_store_async_place(b.store, key, &r, NULL, record, &out[i], &err),
                         0);
    }
    async_close(&b);
    assert_int_equal(total, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].calls, 1);
        assert_int_equal(out[i].status, BERTH_EIO);
        assert_string_equal(out[i].name, "Closed");
    }

    /* Closed with commits in flight: each once, whatever it was. */
    async_open(f, "close", 0, &b);
    total = 0;
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "d%d", i);
        memset(&out[i], 0, sizeof out[i]);
        out[i].total = &total;
        assert_int_equal(berth_store_async_place(b.store, key, &r, NULL, record, &out[i], &err),
                         0);
    }
    event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    async_close(&b);
    assert_int_equal(total, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].calls, 1);
        assert_true(out[i].status == 0 || out[i].status == BERTH_EIO);
    }

    /* Closed from inside a callback: the rest still called once each. */
    async_open(f, "close", 0, &b);
    total = 0;
    closer_t first = {b.store, 0, &total};
    assert_int_equal(berth_store_async_place(b.store, "e0", &r, NULL, close_inside, &first,
                                             &err), 0);
    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf(key, sizeof key, "e%d", i + 1);
        memset(&out[i], 0, sizeof out[i]);
        out[i].total = &total;
        assert_int_equal(berth_store_async_place(b.store, key, &r, NULL, record, &out[i], &err),
                         0);
    }
    run_until(f->base, &total, 6, 10000);
    assert_int_equal(total, 6);
    assert_int_equal(first.calls, 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(out[i].calls, 1);
    /* The loop holds nothing of the store any more. */
    run_until(f->base, NULL, 0, 100);
    assert_int_equal(total, 6);
    berth_engine_free(b.engine);
    check_cell(f, "close");
}

static void test_refused_at_once(void **state)
{
    fixture_t *f = *state;
    async_side_t b;
    async_open(f, "refuse", 0, &b);
    berth_request_t r = request(1, 1024);
    berth_error_t err;
    char longkey[300];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_int_equal(berth_store_async_place(b.store, NULL, &r, NULL, never, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_place(b.store, "", &r, NULL, never, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_place(b.store, longkey, &r, NULL, never, NULL, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.target, "key");
    assert_int_equal(berth_store_async_place(b.store, "k", NULL, NULL, never, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_place(b.store, "k", &r, NULL, NULL, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_release(b.store, "", never, NULL, &err), BERTH_EINVAL);
    run_until(f->base, NULL, 0, 100);
    async_close(&b);
    berth_store_async_close(NULL);

    /* Opening needs a base, an empty engine and a reachable Redis. */
    berth_engine_t *e;
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    berth_store_options_t o;
    options(f, "refuse", &o);
    berth_store_async_t *s = NULL;
    assert_int_equal(berth_store_async_open(&o, e, NULL, &s, &err), BERTH_EINVAL);
    o.url = "redis://127.0.0.1:1";
    assert_int_equal(berth_store_async_open(&o, e, f->base, &s, &err), BERTH_EIO);
    assert_null(s);
    berth_engine_free(e);
}

/* Usage and group count of `host` alike in both engines. */
static void same_host(berth_engine_t *a, berth_engine_t *b, const char *host)
{
    berth_host_usage_t ua, ub;
    assert_int_equal(berth_engine_host_get(a, host, NULL, &ua), 0);
    assert_int_equal(berth_engine_host_get(b, host, NULL, &ub), 0);
    assert_int_equal(ua.millicores, ub.millicores);
    assert_int_equal(ua.memory_mib, ub.memory_mib);
    assert_int_equal(ua.groups, ub.groups);
}

static void test_log_trimmed(void **state)
{
    fixture_t *f = *state;
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);
    /* Small stream nodes so MAXLEN ~ trims a tiny log for real. */
    raw(c, "CONFIG SET stream-node-max-entries 2");
    side_t a;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &a.engine, &err), 0);
    berth_store_options_t o;
    options(f, "trimmed", &o);
    o.log_max_len = 2;
    if (berth_store_open(&o, a.engine, &a.store, &err) != 0)
        fail_msg("open: %s: %s", err.name, err.message);
    const char *hosts[] = {"h1", "h2", "h3"};
    for (size_t i = 0; i < 3; i++)
        put_host(&a, hosts[i], 16, 65536);
    async_side_t b;
    async_open(f, "trimmed", 0, &b);
    int total = 0;
    berth_request_t r = request(1, 1024);
    /* A first commit connects the asynchronous side and brings its replica
     * in line with the log. */
    outcome_t warm = {.total = &total};
    assert_int_equal(berth_store_async_place(b.store, "warm", &r, NULL, record, &warm, &err), 0);
    run_until(f->base, &total, 1, 10000);
    assert_int_equal(warm.status, 0);
    /* Meanwhile the synchronous store commits far more changes than its log
     * keeps: places, then releases of some, so that the replica's reload
     * must also forget groups it never saw leave. */
    char key[32];
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "s%d", i);
        if (berth_store_place(a.store, key, &r, NULL, NULL, &err) != 0)
            fail_msg("place %s: %s: %s", key, err.name, err.message);
    }
    for (int i = 0; i < 30; i += 3) {
        snprintf(key, sizeof key, "s%d", i);
        assert_int_equal(berth_store_release(a.store, key, &err), 0);
    }
    assert_int_equal(berth_store_release(a.store, "warm", &err), 0);
    redisReply *len = redisCommand(c, "XLEN berth:{trimmed}:log");
    assert_non_null(len);
    assert_true(len->integer < 10);
    freeReplyObject(len);
    /* The log no longer reaches back to the replica's seq: the next round
     * reloads the snapshot, then commits on top of it. */
    outcome_t after = {.total = &total};
    assert_int_equal(berth_store_async_place(b.store, "after", &r, NULL, record, &after, &err),
                     0);
    run_until(f->base, &total, 2, 10000);
    assert_int_equal(after.calls, 1);
    if (after.status != 0)
        fail_msg("place after the trim: %d %s", after.status, after.name);
    /* 30 - 10 released + "after"; "warm" is gone. */
    assert_int_equal(berth_engine_group_count(b.engine), 21);
    berth_placement_t gone;
    assert_int_equal(berth_engine_group_get(b.engine, "warm", &gone), BERTH_ENOENT);
    side_t fresh;
    side_open(f, "trimmed", &fresh);
    assert_int_equal(berth_engine_group_count(fresh.engine), 21);
    for (size_t i = 0; i < 3; i++)
        same_host(b.engine, fresh.engine, hosts[i]);
    berth_placement_t p;
    assert_int_equal(berth_engine_group_get(fresh.engine, "after", &p), 0);
    assert_string_equal(p.host, after.host);
    assert_int_equal(berth_store_fsck(fresh.store, fsck_print, NULL, &err), 0);
    side_close(&fresh);
    assert_int_equal(check_cell(f, "trimmed"), 21);
    raw(c, "CONFIG SET stream-node-max-entries 100");
    redisFree(c);
    async_close(&b);
    side_close(&a);
}

/* A reply to `fmt` on `ctx` that is no error. */
static redisReply *ask(redisContext *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", fmt, r->str);
    return r;
}

static void node_id(redisContext *ctx, char *id, size_t cap)
{
    redisReply *r = ask(ctx, "CLUSTER MYID");
    snprintf(id, cap, "%s", r->str);
    freeReplyObject(r);
}

static long long count_keys(redisContext *ctx, const char *pattern)
{
    redisReply *r = ask(ctx, "KEYS %s", pattern);
    long long n = (long long)r->elements;
    freeReplyObject(r);
    return n;
}

/* Places n groups named PREFIXi through the asynchronous store; each must
 * succeed. */
static void place_all(struct event_base *base, async_side_t *b, const char *prefix, int n)
{
    outcome_t out[16];
    int total = 0;
    berth_request_t r = request(1, 256);
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s%d", prefix, i);
        memset(&out[i], 0, sizeof out[i]);
        out[i].total = &total;
        berth_error_t err;
        assert_int_equal(berth_store_async_place(b->store, key, &r, NULL, record, &out[i], &err),
                         0);
    }
    run_until(base, &total, n, 20000);
    assert_int_equal(total, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out[i].calls, 1);
        if (out[i].status != 0)
            fail_msg("%s%d: %d %s", prefix, i, out[i].status, out[i].name);
    }
}

/* Moves `slot` from the node on `src` (id src_id) to the node on `dst`
 * (id dst_id) without writing on `src`, so that it works while Redis holds
 * the writes there: the keys are copied, `dst` takes the slot, `thr` is
 * told, and `src` learns it over the cluster bus and drops its copy. */
static void move_slot(redisContext *src, redisContext *dst, redisContext *thr, long long slot,
                      const char *src_id, const char *dst_id, const char *pattern)
{
    freeReplyObject(ask(dst, "CLUSTER SETSLOT %lld IMPORTING %s", slot, src_id));
    redisReply *keys = ask(src, "KEYS %s", pattern);
    assert_true(keys->elements > 0);
    for (size_t k = 0; k < keys->elements; k++) {
        const char *key = keys->element[k]->str;
        redisReply *dump = ask(src, "DUMP %s", key);
        assert_int_equal(dump->type, REDIS_REPLY_STRING);
        freeReplyObject(ask(dst, "ASKING"));
        freeReplyObject(ask(dst, "RESTORE %s 0 %b REPLACE", key, dump->str, dump->len));
        freeReplyObject(dump);
    }
    freeReplyObject(keys);
    freeReplyObject(ask(dst, "CLUSTER SETSLOT %lld NODE %s", slot, dst_id));
    freeReplyObject(ask(thr, "CLUSTER SETSLOT %lld NODE %s", slot, dst_id));
    bool learned = false;
    for (double end = now_ms() + 10000; !learned && now_ms() < end;) {
        redisReply *n = ask(src, "CLUSTER COUNTKEYSINSLOT %lld", slot);
        learned = n->integer == 0;
        freeReplyObject(n);
        if (!learned)
            usleep(50000);
    }
    assert_true(learned);
}

static void test_cluster_moved(void **state)
{
    fixture_t *f = *state;
    berth_test_cluster_t *cl = berth_test_cluster_start(3);
    if (cl == NULL)
        fail_msg("cannot start a Redis Cluster");
    const char *cell = "moved";
    berth_test_redis_t *owner = berth_test_cluster_node_for_key(cl, "berth:{moved}:hosts");
    assert_non_null(owner);
    berth_test_redis_t *other = NULL, *third = NULL;
    for (int i = 0; i < cl->masters; i++)
        if (cl->nodes[i] != owner) {
            if (other == NULL)
                other = cl->nodes[i];
            else if (third == NULL)
                third = cl->nodes[i];
        }
    assert_non_null(third);

    side_t a;
    berth_error_t err;
    berth_store_options_t o;
    assert_int_equal(berth_engine_new(NULL, &a.engine, &err), 0);
    berth_store_options_init(&o);
    o.url = owner->url;
    o.cell = cell;
    o.timeout_ms = 15000;
    if (berth_store_open(&o, a.engine, &a.store, &err) != 0)
        fail_msg("open: %s: %s", err.name, err.message);
    put_host(&a, "h1", 64, 262144);

    /* Opened on a node without the cell's slot: open() follows that MOVED
     * (it is berth_store_open()'s), so the commits go to the owner. */
    async_side_t b;
    assert_int_equal(berth_engine_new(NULL, &b.engine, &err), 0);
    o.url = other->url;
    if (berth_store_async_open(&o, b.engine, f->base, &b.store, &err) != 0)
        fail_msg("async open: %s: %s", err.name, err.message);
    place_all(f->base, &b, "a", 8);

    /* Then the slot moves to `other` while commits are in flight to the
     * owner: Redis holds the owner's writes, so the asynchronous store's
     * catch-up read is answered there and its commits wait; the keys are
     * copied to `other`, which takes the slot; once the owner has learned
     * that, its held commits are answered with MOVED. */
    redisContext *src = berth_test_redis_connect(owner), *dst = berth_test_redis_connect(other),
                 *thr = berth_test_redis_connect(third);
    assert_non_null(src);
    assert_non_null(dst);
    assert_non_null(thr);
    char src_id[64], dst_id[64];
    node_id(src, src_id, sizeof src_id);
    node_id(dst, dst_id, sizeof dst_id);
    redisReply *sr = ask(src, "CLUSTER KEYSLOT berth:{moved}:hosts");
    long long slot = sr->integer;
    freeReplyObject(sr);

    freeReplyObject(ask(src, "CLIENT PAUSE 15000 WRITE"));
    enum { N = 6 };
    outcome_t out[N];
    int total = 0;
    berth_request_t r = request(1, 256);
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "b%d", i);
        memset(&out[i], 0, sizeof out[i]);
        out[i].total = &total;
        assert_int_equal(berth_store_async_place(b.store, key, &r, NULL, record, &out[i], &err),
                         0);
    }
    run_until(f->base, NULL, 0, 300);
    assert_int_equal(total, 0);

    move_slot(src, dst, thr, slot, src_id, dst_id, "berth:{moved}:*");
    freeReplyObject(ask(src, "CLIENT UNPAUSE"));
    run_until(f->base, &total, N, 20000);
    assert_int_equal(total, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].calls, 1);
        if (out[i].status != 0)
            fail_msg("b%d after the move: %d %s", i, out[i].status, out[i].name);
    }
    /* And the store keeps committing to the new owner. */
    place_all(f->base, &b, "c", 4);
    assert_int_equal(berth_engine_group_count(b.engine), 8 + N + 4);


    /* A stale replica whose slot moved: its snapshot read, inside MULTI,
     * is refused with MOVED (EXEC then says only EXECABORT), and it must
     * follow that.  To get there, another store trims the log past the
     * replica, and a key of the wrong type makes its reload fail once, so
     * that it stays stale while the slot moves back. */
    freeReplyObject(ask(dst, "CONFIG SET stream-node-max-entries 2"));
    side_t t;
    assert_int_equal(berth_engine_new(NULL, &t.engine, &err), 0);
    o.url = other->url;
    uint32_t log_max_len = o.log_max_len;
    o.log_max_len = 2;
    if (berth_store_open(&o, t.engine, &t.store, &err) != 0)
        fail_msg("open: %s: %s", err.name, err.message);
    o.log_max_len = log_max_len;
    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf(key, sizeof key, "t%d", i);
        if (berth_store_place(t.store, key, &r, NULL, NULL, &err) != 0)
            fail_msg("place %s: %s: %s", key, err.name, err.message);
    }
    side_close(&t);
    redisReply *ex = ask(dst, "EXISTS berth:{moved}:skus");
    assert_int_equal(ex->integer, 0);
    freeReplyObject(ex);
    freeReplyObject(ask(dst, "SET berth:{moved}:skus broken"));
    int more = 0;
    outcome_t broken = {.total = &more};
    assert_int_equal(berth_store_async_place(b.store, "d", &r, NULL, record, &broken, &err), 0);
    run_until(f->base, &more, 1, 20000);
    assert_int_equal(broken.calls, 1);
    assert_int_equal(broken.status, BERTH_EIO);
    freeReplyObject(ask(dst, "DEL berth:{moved}:skus"));
    move_slot(dst, src, thr, slot, dst_id, src_id, "berth:{moved}:*");
    outcome_t back = {.total = &more};
    assert_int_equal(berth_store_async_place(b.store, "e", &r, NULL, record, &back, &err), 0);
    run_until(f->base, &more, 2, 20000);
    assert_int_equal(back.calls, 1);
    if (back.status != 0)
        fail_msg("place after the slot moved back: %d %s", back.status, back.name);
    enum { GROUPS = 8 + N + 4 + 20 + 1 };
    assert_int_equal(berth_engine_group_count(b.engine), GROUPS);

    /* Every key of the cell sits on its owner now. */
    assert_true(count_keys(src, "berth:{moved}:*") > 0);
    assert_int_equal(count_keys(dst, "berth:{moved}:*"), 0);
    assert_int_equal(count_keys(thr, "berth:{moved}:*"), 0);
    redisFree(src);
    redisFree(dst);
    redisFree(thr);

    side_t c;
    assert_int_equal(berth_engine_new(NULL, &c.engine, &err), 0);
    o.url = owner->url;
    if (berth_store_open(&o, c.engine, &c.store, &err) != 0)
        fail_msg("open: %s: %s", err.name, err.message);
    assert_int_equal(berth_store_fsck(c.store, fsck_print, NULL, &err), 0);
    assert_int_equal(berth_engine_group_count(c.engine), GROUPS);
    same_host(b.engine, c.engine, "h1");
    side_close(&c);
    async_close(&b);
    side_close(&a);
    berth_test_cluster_stop(cl);
}

/* ---- effects ------------------------------------------------------------------ */

/* One call's outcome as its callback saw it, with the whole error. */
typedef struct result {
    int calls;
    int status;
    bool placement;                 /* the callback was given one           */
    char host[BERTH_NAME_MAX + 1];
    uint32_t evicted;
    berth_error_t err;
} result_t;

static int noted_calls;             /* noted()'s callbacks, over the binary */

static void noted(int status, const berth_placement_t *placement, const berth_error_t *err,
                  void *data)
{
    result_t *o = data;
    o->calls++;
    noted_calls++;
    o->status = status;
    o->placement = placement != NULL;
    if (status == 0) {
        assert_null(err);
        if (placement != NULL) {
            snprintf(o->host, sizeof o->host, "%s", placement->host);
            o->evicted = placement->evicted;
        }
    } else {
        assert_non_null(err);
        assert_null(placement);
        assert_int_equal(err->code, status);
        o->err = *err;
    }
}

/* Runs the loop until noted() has run n more times than `before`. */
static void await_calls(fixture_t *f, int before, int n)
{
    run_until(f->base, &noted_calls, before + n, test_deadline_ms(15000));
    assert_int_equal(noted_calls, before + n);
}

static berth_effect_t effect(berth_effect_op_t op, const char *key, const char *field,
                             const char *value, int64_t n)
{
    berth_effect_t e;
    memset(&e, 0, sizeof e);
    e.op = op;
    e.key = key;
    e.field = field;
    e.value = value;
    e.n = n;
    return e;
}

#define COUNT_OF(a) (sizeof (a) / sizeof (a)[0])

/* Each call below queues one call (which must be accepted) and waits for
 * its callback. */
static result_t place_fx(fixture_t *f, berth_store_async_t *s, const char *key,
                         berth_request_t r, const berth_effect_t *e, size_t n)
{
    result_t o;
    memset(&o, 0, sizeof o);
    berth_error_t err;
    int before = noted_calls;
    if (berth_store_async_place_with(s, key, &r, NULL, e, n, noted, &o, &err) != 0)
        fail_msg("place_with %s refused: %s: %s", key, err.name, err.message);
    await_calls(f, before, 1);
    assert_int_equal(o.calls, 1);
    return o;
}

static result_t release_fx(fixture_t *f, berth_store_async_t *s, const char *key,
                           const berth_effect_t *e, size_t n)
{
    result_t o;
    memset(&o, 0, sizeof o);
    berth_error_t err;
    int before = noted_calls;
    if (berth_store_async_release_with(s, key, 0, e, n, noted, &o, &err) != 0)
        fail_msg("release_with %s refused: %s: %s", key, err.name, err.message);
    await_calls(f, before, 1);
    assert_int_equal(o.calls, 1);
    assert_false(o.placement);
    return o;
}

static result_t restart_fx(fixture_t *f, berth_store_async_t *s, const char *key,
                           const berth_effect_t *e, size_t n)
{
    result_t o;
    memset(&o, 0, sizeof o);
    berth_error_t err;
    int before = noted_calls;
    if (berth_store_async_restart(s, key, e, n, noted, &o, &err) != 0)
        fail_msg("restart %s refused: %s: %s", key, err.name, err.message);
    await_calls(f, before, 1);
    assert_int_equal(o.calls, 1);
    assert_false(o.placement);
    return o;
}

static result_t records_fx(fixture_t *f, berth_store_async_t *s, const char *key,
                           int64_t generation, const berth_effect_t *e, size_t n)
{
    result_t o;
    memset(&o, 0, sizeof o);
    berth_error_t err;
    int before = noted_calls;
    if (berth_store_async_records(s, key, generation, e, n, noted, &o, &err) != 0)
        fail_msg("records %s refused: %s: %s", key, err.name, err.message);
    await_calls(f, before, 1);
    assert_int_equal(o.calls, 1);
    assert_false(o.placement);
    return o;
}

/* A failed call's status, error name and target are these. */
static void refused(const result_t *o, int status, const char *name, const char *target)
{
    if (o->status != status)
        fail_msg("status %d, not %d (%s: %s)", o->status, status, o->err.name,
                 o->err.message);
    assert_string_equal(o->err.name, name);
    assert_string_equal(o->err.target, target);
}

static void succeeded(const result_t *o)
{
    if (o->status != 0)
        fail_msg("status %d: %s: %s (%s)", o->status, o->err.name, o->err.message,
                 o->err.target);
}

/* HGET berth:{cell}:name field into buf; false when the field is absent. */
static bool hget(redisContext *c, const char *cell, const char *name, const char *field,
                 char *buf, size_t cap)
{
    redisReply *x = ask(c, "HGET berth:{%s}:%s %s", cell, name, field);
    bool present = x->type == REDIS_REPLY_STRING;
    if (present && buf != NULL)
        snprintf(buf, cap, "%.*s", (int)x->len, x->str);
    freeReplyObject(x);
    return present;
}

/* The field's value, which must be present. */
static void hget_is(redisContext *c, const char *cell, const char *name, const char *field,
                    const char *want)
{
    char got[256];
    if (!hget(c, cell, name, field, got, sizeof got))
        fail_msg("%s %s is absent, not '%s'", name, field, want);
    assert_string_equal(got, want);
}

static void hset(redisContext *c, const char *cell, const char *name, const char *field,
                 const char *value)
{
    freeReplyObject(ask(c, "HSET berth:{%s}:%s %s %s", cell, name, field, value));
}

/* The integer reply to a command (ask()'s format). */
static long long number(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *x = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(x);
    if (x->type != REDIS_REPLY_INTEGER)
        fail_msg("%s: not an integer reply (%s)", fmt, x->str != NULL ? x->str : "");
    long long n = x->integer;
    freeReplyObject(x);
    return n;
}

/* SHA-1 of value in 40 lowercase hex digits, as Redis computes it. */
static void sha1_hex(redisContext *c, const char *value, char out[41])
{
    redisReply *x = ask(c, "EVAL %s 0 %s", "return redis.sha1hex(ARGV[1])", value);
    assert_int_equal(x->type, REDIS_REPLY_STRING);
    assert_int_equal(x->len, 40);
    memcpy(out, x->str, 41);
    freeReplyObject(x);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every key of the cell with its serialised value (DUMP) and TTL in one
 * buffer (free with free()), *len its size: two states compare equal when
 * nothing in the cell changed between them. */
static char *cell_state(redisContext *c, const char *cell, size_t *len)
{
    redisReply *keys = ask(c, "KEYS berth:{%s}:*", cell);
    size_t n = keys->elements;
    char **names = calloc(n ? n : 1, sizeof *names);
    assert_non_null(names);
    for (size_t i = 0; i < n; i++)
        names[i] = keys->element[i]->str;
    qsort(names, n, sizeof *names, by_name);
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        redisReply *d = ask(c, "DUMP %s", names[i]);
        redisReply *t = ask(c, "PTTL %s", names[i]);
        size_t need = strlen(names[i]) + 1 + d->len + 32;
        while (used + need > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        used += (size_t)sprintf(buf + used, "%s", names[i]) + 1;
        memcpy(buf + used, d->str, d->len);
        used += d->len;
        /* A TTL counts only as being there: it runs down meanwhile. */
        used += (size_t)sprintf(buf + used, "|%d|", t->integer >= 0);
        freeReplyObject(d);
        freeReplyObject(t);
    }
    free(names);
    freeReplyObject(keys);
    *len = used;
    return buf;
}

/* What the cell and the engine held at one moment. */
typedef struct snapshot {
    char *cell;
    size_t len;
    berth_engine_stats_t stats;
    size_t spot;
} snapshot_t;

static void snap(redisContext *c, const char *cell, berth_engine_t *e, snapshot_t *s)
{
    s->cell = cell_state(c, cell, &s->len);
    berth_engine_stats(e, &s->stats);
    s->spot = berth_engine_spot_count(e);
}

/* Nothing changed since `before` (freed here), in Redis nor in the engine. */
static void unchanged(redisContext *c, const char *cell, berth_engine_t *e, snapshot_t *before)
{
    snapshot_t now;
    snap(c, cell, e, &now);
    assert_int_equal(now.len, before->len);
    assert_memory_equal(now.cell, before->cell, now.len);
    assert_int_equal(now.stats.groups, before->stats.groups);
    assert_int_equal(now.stats.used_millicores, before->stats.used_millicores);
    assert_int_equal(now.stats.used_memory_mib, before->stats.used_memory_mib);
    assert_int_equal(now.spot, before->spot);
    free(now.cell);
    free(before->cell);
    before->cell = NULL;
}

/* Both engines hold the same hosts' usage and the same groups' placements
 * for `keys`. */
static void same_engines(berth_engine_t *a, berth_engine_t *b, const char *const *keys,
                         size_t n)
{
    berth_engine_stats_t sa, sb;
    berth_engine_stats(a, &sa);
    berth_engine_stats(b, &sb);
    assert_int_equal(sa.hosts, sb.hosts);
    assert_int_equal(sa.groups, sb.groups);
    assert_int_equal(sa.used_millicores, sb.used_millicores);
    assert_int_equal(sa.used_memory_mib, sb.used_memory_mib);
    assert_int_equal(berth_engine_spot_count(a), berth_engine_spot_count(b));
    for (size_t i = 0; i < n; i++) {
        berth_placement_t pa, pb;
        int ra = berth_engine_group_get(a, keys[i], &pa);
        int rb = berth_engine_group_get(b, keys[i], &pb);
        assert_int_equal(ra, rb);
        if (ra == 0) {
            assert_string_equal(pa.host, pb.host);
            assert_int_equal(pa.demand.millicores, pb.demand.millicores);
            assert_int_equal(pa.demand.memory_mib, pb.demand.memory_mib);
        }
    }
}

static bool in_engine(berth_engine_t *e, const char *key)
{
    berth_placement_t p;
    return berth_engine_group_get(e, key, &p) == 0;
}

/* Assignments on host's stream with op `op` for `key` (an entry holds one
 * or more: op, key, gen, repeated). */
static int assign_count(redisContext *c, const char *cell, const char *host, const char *op,
                        const char *key)
{
    redisReply *x = ask(c, "XRANGE berth:{%s}:assign:%s - +", cell, host);
    int found = 0;
    for (size_t i = 0; i < x->elements; i++) {
        redisReply *fv = x->element[i]->element[1];
        for (size_t j = 0; j + 5 < fv->elements; j += 6)
            found += strcmp(fv->element[j + 1]->str, op) == 0 &&
                     strcmp(fv->element[j + 3]->str, key) == 0;
    }
    freeReplyObject(x);
    return found;
}

static berth_request_t spot_request(uint32_t cores, uint32_t mem)
{
    berth_request_t r = request(cores, mem);
    r.priority = BERTH_PRIORITY_SPOT;
    return r;
}

/* A placement writes every kind of effect with it, from copies taken at
 * the call; one the cell has no room for writes none; a second replica
 * sees the same cell. */
static void test_fx_place(void **state)
{
    fixture_t *f = *state;
    const char *cell = "fx-place";
    side_t a;
    side_open(f, cell, &a);
    put_host(&a, "h1", 8, 32768);
    async_side_t b;
    async_open(f, cell, 0, &b);
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);

    char doc[64], field[16], op[16];
    snprintf(doc, sizeof doc, "{\"name\": \"web\", \"v\": 1}");
    snprintf(field, sizeof field, "web");
    snprintf(op, sizeof op, "op:1");
    static const char blob[] = {'a', '\0', 'b', '\0', 'c'};
    berth_effect_t e[] = {
        effect(BERTH_EFFECT_HSET, "resources", field, doc, 0),
        effect(BERTH_EFFECT_ZADD, "index", field, NULL, 0),
        effect(BERTH_EFFECT_HINCRBY, "counts", "linux", NULL, 2),
        effect(BERTH_EFFECT_SET, op, NULL, "Running", 60),
        effect(BERTH_EFFECT_SET, "op:plain", NULL, "Done", 0),
        effect(BERTH_EFFECT_CLAIM, "names", "web.example", "web", 0),
        effect(BERTH_EFFECT_HSET, "blobs", field, blob, 0),
    };
    e[6].value_len = sizeof blob;
    result_t o;
    memset(&o, 0, sizeof o);
    berth_error_t err;
    int before = noted_calls;
    berth_request_t r = request(2, 4096);
    assert_int_equal(berth_store_async_place_with(b.store, "web", &r, "{\"spec\": 1}", e,
                                                  COUNT_OF(e), noted, &o, &err), 0);
    /* The store copied every string: the caller's may change at once. */
    memset(doc, 'X', sizeof doc - 1);
    memset(field, 'X', sizeof field - 1);
    memset(op, 'X', sizeof op - 1);
    memset(e, 0, sizeof e);
    assert_int_equal(o.calls, 0);
    await_calls(f, before, 1);
    succeeded(&o);
    assert_true(o.placement);
    assert_string_equal(o.host, "h1");
    assert_int_equal(o.evicted, 0);
    assert_true(in_engine(b.engine, "web"));
    assert_true(hget(c, cell, "groups", "web", NULL, 0));
    hget_is(c, cell, "resources", "web", "{\"name\": \"web\", \"v\": 1}");
    redisReply *x = ask(c, "ZSCORE berth:{%s}:index web", cell);
    assert_int_equal(x->type, REDIS_REPLY_STRING);
    assert_string_equal(x->str, "0");
    freeReplyObject(x);
    hget_is(c, cell, "counts", "linux", "2");
    x = ask(c, "GET berth:{%s}:op:1", cell);
    assert_int_equal(x->type, REDIS_REPLY_STRING);
    assert_string_equal(x->str, "Running");
    freeReplyObject(x);
    long long ttl = number(c, "TTL berth:{%s}:op:1", cell);
    assert_true(ttl > 0 && ttl <= 60);
    assert_int_equal(number(c, "TTL berth:{%s}:op:plain", cell), -1);
    hget_is(c, cell, "names", "web.example", "web");
    x = ask(c, "HGET berth:{%s}:blobs web", cell);
    assert_int_equal(x->type, REDIS_REPLY_STRING);
    assert_int_equal(x->len, sizeof blob);
    assert_memory_equal(x->str, blob, sizeof blob);
    freeReplyObject(x);
    /* The caller's strings after the call reached nothing. */
    assert_int_equal(number(c, "EXISTS berth:{%s}:XXXXXXXXXXXXXXX", cell), 0);
    assert_false(hget(c, cell, "resources", "XXXXXXXXXXXXXXX", NULL, 0));

    /* No room for a placement: none of its effects is written, nothing
     * else changes. */
    snapshot_t s0;
    snap(c, cell, b.engine, &s0);
    berth_effect_t big[] = {
        effect(BERTH_EFFECT_HSET, "resources", "big", "{}", 0),
        effect(BERTH_EFFECT_ZADD, "index", "big", NULL, 0),
        effect(BERTH_EFFECT_HINCRBY, "counts", "linux", NULL, 1),
        effect(BERTH_EFFECT_SET, "op:2", NULL, "Running", 60),
        effect(BERTH_EFFECT_CLAIM, "names", "big.example", "big", 0),
        effect(BERTH_EFFECT_DEL, "op:plain", NULL, NULL, 0),
    };
    o = place_fx(f, b.store, "big", request(16, 4096), big, COUNT_OF(big));
    assert_int_equal(o.status, BERTH_ENOSPC);
    assert_false(in_engine(b.engine, "big"));
    unchanged(c, cell, b.engine, &s0);

    /* No effects at all: a plain placement. */
    o = place_fx(f, b.store, "plain", request(1, 1024), NULL, 0);
    succeeded(&o);

    /* The other kinds of write, with a later commit. */
    berth_effect_t undo[] = {
        effect(BERTH_EFFECT_HDEL, "resources", "web", NULL, 0),
        effect(BERTH_EFFECT_ZREM, "index", "web", NULL, 0),
        effect(BERTH_EFFECT_DEL, "op:plain", NULL, NULL, 0),
        effect(BERTH_EFFECT_HDEL, "resources", "never-there", NULL, 0),
    };
    o = place_fx(f, b.store, "undo", request(1, 1024), undo, COUNT_OF(undo));
    succeeded(&o);
    assert_false(hget(c, cell, "resources", "web", NULL, 0));
    assert_int_equal(number(c, "EXISTS berth:{%s}:index", cell), 0);
    assert_int_equal(number(c, "EXISTS berth:{%s}:op:plain", cell), 0);

    /* A synchronous replica and a fresh one see what the store's engine
     * holds. */
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    const char *keys[] = {"web", "big", "plain", "undo"};
    same_engines(a.engine, b.engine, keys, COUNT_OF(keys));
    assert_int_equal(check_cell(f, cell), 3);
    redisFree(c);
    async_close(&b);
    side_close(&a);
}

/* EXPECT and CLAIM guard the whole commit; UNCLAIM and HINCRBY's floor. */
static void test_fx_guards(void **state)
{
    fixture_t *f = *state;
    const char *cell = "fx-guard";
    side_t a;
    side_open(f, cell, &a);
    put_host(&a, "h1", 8, 32768);
    async_side_t b;
    async_open(f, cell, 0, &b);
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);
    berth_request_t r = request(1, 1024);
    char v1[41], v0[41];
    hset(c, cell, "resources", "cur", "version-1");
    sha1_hex(c, "version-1", v1);
    sha1_hex(c, "version-0", v0);
    /* A first commit, so that what follows starts connected. */
    result_t o = place_fx(f, b.store, "warm", r, NULL, 0);
    succeeded(&o);

    /* A wrong SHA-1 refuses the whole commit, naming the effect. */
    snapshot_t s0;
    snap(c, cell, b.engine, &s0);
    berth_effect_t stale[] = {
        effect(BERTH_EFFECT_HSET, "resources", "bad", "{}", 0),
        effect(BERTH_EFFECT_EXPECT, "resources", "cur", v0, 0),
        effect(BERTH_EFFECT_HSET, "resources", "cur", "version-2", 0),
        effect(BERTH_EFFECT_HINCRBY, "counts", "all", NULL, 1),
    };
    o = place_fx(f, b.store, "bad", r, stale, COUNT_OF(stale));
    refused(&o, BERTH_ESTALE, "RecordChanged", "effects[1]");
    assert_false(in_engine(b.engine, "bad"));
    unchanged(c, cell, b.engine, &s0);
    /* At index 0 and at the last index too, with a good guard before it. */
    stale[0] = effect(BERTH_EFFECT_EXPECT, "resources", "cur", v0, 0);
    snap(c, cell, b.engine, &s0);
    o = place_fx(f, b.store, "bad", r, stale, COUNT_OF(stale));
    refused(&o, BERTH_ESTALE, "RecordChanged", "effects[0]");
    berth_effect_t last[] = {
        effect(BERTH_EFFECT_EXPECT, "resources", "cur", v1, 0),
        effect(BERTH_EFFECT_HSET, "resources", "bad", "{}", 0),
        effect(BERTH_EFFECT_EXPECT, "resources", "other", v1, 0),
    };
    o = place_fx(f, b.store, "bad", r, last, COUNT_OF(last));
    refused(&o, BERTH_ESTALE, "RecordChanged", "effects[2]");
    unchanged(c, cell, b.engine, &s0);

    /* The right SHA-1 passes, and the commit's own write follows it. */
    berth_effect_t fresh[] = {
        effect(BERTH_EFFECT_EXPECT, "resources", "cur", v1, 0),
        effect(BERTH_EFFECT_HSET, "resources", "cur", "version-2", 0),
        effect(BERTH_EFFECT_HSET, "resources", "good", "{}", 0),
    };
    o = place_fx(f, b.store, "good", r, fresh, COUNT_OF(fresh));
    succeeded(&o);
    assert_true(in_engine(b.engine, "good"));
    hget_is(c, cell, "resources", "cur", "version-2");
    hget_is(c, cell, "resources", "good", "{}");
    /* The same guard again: the field has changed since. */
    snap(c, cell, b.engine, &s0);
    o = place_fx(f, b.store, "good2", r, fresh, COUNT_OF(fresh));
    refused(&o, BERTH_ESTALE, "RecordChanged", "effects[0]");
    unchanged(c, cell, b.engine, &s0);

    /* EXPECT "": the field must be absent (NULL means "" too). */
    berth_effect_t absent[] = {
        effect(BERTH_EFFECT_EXPECT, "resources", "new1", "", 0),
        effect(BERTH_EFFECT_EXPECT, "elsewhere", "new1", NULL, 0),
        effect(BERTH_EFFECT_HSET, "resources", "new1", "first", 0),
    };
    o = place_fx(f, b.store, "new1", r, absent, COUNT_OF(absent));
    succeeded(&o);
    hget_is(c, cell, "resources", "new1", "first");
    snap(c, cell, b.engine, &s0);
    absent[2] = effect(BERTH_EFFECT_HSET, "resources", "new1", "second", 0);
    o = place_fx(f, b.store, "new1b", r, absent, COUNT_OF(absent));
    refused(&o, BERTH_ESTALE, "RecordChanged", "effects[0]");
    unchanged(c, cell, b.engine, &s0);
    hget_is(c, cell, "resources", "new1", "first");

    /* CLAIM: a field held with another value refuses everything. */
    hset(c, cell, "names", "web.example", "someone");
    snap(c, cell, b.engine, &s0);
    berth_effect_t take[] = {
        effect(BERTH_EFFECT_HSET, "resources", "c1", "{}", 0),
        effect(BERTH_EFFECT_CLAIM, "names", "web.example", "c1", 0),
        effect(BERTH_EFFECT_SET, "op:c1", NULL, "Running", 0),
    };
    o = place_fx(f, b.store, "c1", r, take, COUNT_OF(take));
    refused(&o, BERTH_EEXIST, "RecordTaken", "effects[1]");
    assert_false(in_engine(b.engine, "c1"));
    unchanged(c, cell, b.engine, &s0);
    hget_is(c, cell, "names", "web.example", "someone");
    /* Held with the same value: passes; absent: taken. */
    berth_effect_t same[] = {
        effect(BERTH_EFFECT_CLAIM, "names", "web.example", "someone", 0),
        effect(BERTH_EFFECT_CLAIM, "names", "api.example", "someone", 0),
    };
    o = place_fx(f, b.store, "someone", r, same, COUNT_OF(same));
    succeeded(&o);
    hget_is(c, cell, "names", "web.example", "someone");
    hget_is(c, cell, "names", "api.example", "someone");

    /* UNCLAIM deletes only while the value matches. */
    berth_effect_t unclaim_other[] = {
        effect(BERTH_EFFECT_UNCLAIM, "names", "web.example", "c1", 0),
        effect(BERTH_EFFECT_UNCLAIM, "names", "nobody.example", "c1", 0),
    };
    o = records_fx(f, b.store, "someone", -1, unclaim_other, COUNT_OF(unclaim_other));
    succeeded(&o);
    hget_is(c, cell, "names", "web.example", "someone");
    berth_effect_t unclaim[] = {effect(BERTH_EFFECT_UNCLAIM, "names", "web.example", "someone", 0)};
    o = records_fx(f, b.store, "someone", -1, unclaim, COUNT_OF(unclaim));
    succeeded(&o);
    assert_false(hget(c, cell, "names", "web.example", NULL, 0));
    hget_is(c, cell, "names", "api.example", "someone");
    /* Once released, another may claim it. */
    berth_effect_t again[] = {effect(BERTH_EFFECT_CLAIM, "names", "web.example", "c1", 0)};
    o = records_fx(f, b.store, "c1", -1, again, COUNT_OF(again));
    succeeded(&o);
    hget_is(c, cell, "names", "web.example", "c1");

    /* HINCRBY counts up and down; a field that falls to 0 (or below) is
     * deleted. */
    berth_effect_t up[] = {
        effect(BERTH_EFFECT_HINCRBY, "counts", "n", NULL, 3),
        effect(BERTH_EFFECT_HINCRBY, "counts", "n", NULL, 2),
        effect(BERTH_EFFECT_HINCRBY, "counts", "keep", NULL, 1),
    };
    o = records_fx(f, b.store, "x", -1, up, COUNT_OF(up));
    succeeded(&o);
    hget_is(c, cell, "counts", "n", "5");
    berth_effect_t down[] = {effect(BERTH_EFFECT_HINCRBY, "counts", "n", NULL, -5)};
    o = records_fx(f, b.store, "x", -1, down, COUNT_OF(down));
    succeeded(&o);
    assert_false(hget(c, cell, "counts", "n", NULL, 0));
    hget_is(c, cell, "counts", "keep", "1");
    berth_effect_t below[] = {
        effect(BERTH_EFFECT_HINCRBY, "counts", "keep", NULL, -2),
        effect(BERTH_EFFECT_HINCRBY, "counts", "never", NULL, -1),
    };
    o = records_fx(f, b.store, "x", -1, below, COUNT_OF(below));
    succeeded(&o);
    assert_int_equal(number(c, "EXISTS berth:{%s}:counts", cell), 0);

    assert_int_equal(check_cell(f, cell), 4); /* warm, good, new1, someone */
    redisFree(c);
    async_close(&b);
    side_close(&a);
}

/* Bad effects are refused by the call itself: nothing is queued, the
 * callback never runs and the cell never changes. */
static void test_fx_refused_at_once(void **state)
{
    fixture_t *f = *state;
    const char *cell = "fx-refuse";
    side_t a;
    side_open(f, cell, &a);
    put_host(&a, "h1", 8, 32768);
    async_side_t b;
    async_open(f, cell, 0, &b);
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);
    berth_request_t r = request(1, 1024);
    result_t o = place_fx(f, b.store, "g", r, NULL, 0);
    succeeded(&o);
    snapshot_t s0;
    snap(c, cell, b.engine, &s0);

    static const char *const own[] = {
        "meta", "hosts", "skus", "groups", "log", "seq", "views", "agents", "ngroups",
        "ngroupnotes", "pools", "poolseq", "evictions", "hostgroups:h1", "assign:h1",
        "alive:h1", "images:h1", "poolmembers:p", "calls:1", "reply:1", "assign:",
    };
    static const char *const malformed[] = {
        "", "a b", "a{b", "a}b", "{x}", "tab\there", "new\nline", "del\x7f", "hi\x80gh",
    };
    char sha[41], hex39[40], hex41[42], nothex[41], upper[41], longkey[BERTH_NAME_MAX + 34];
    memset(sha, 'a', 40);
    sha[40] = '\0';
    memcpy(hex39, sha, 39);
    hex39[39] = '\0';
    memcpy(hex41, sha, 40);
    hex41[40] = 'a';
    hex41[41] = '\0';
    memset(nothex, 'z', 40);
    nothex[40] = '\0';
    /* Redis's sha1hex() writes lowercase: an uppercase digest never matches. */
    memset(upper, 'A', 40);
    upper[40] = '\0';
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';

    enum { CASES = 64 };
    berth_effect_t bad[CASES];
    int want[CASES];
    size_t nbad = 0;
    for (size_t i = 0; i < COUNT_OF(own); i++) {
        want[nbad] = BERTH_EINVAL;
        bad[nbad++] = effect(BERTH_EFFECT_HSET, own[i], "f", "v", 0);
    }
    for (size_t i = 0; i < COUNT_OF(malformed); i++) {
        want[nbad] = BERTH_EINVAL;
        bad[nbad++] = effect(BERTH_EFFECT_SET, malformed[i], NULL, "v", 0);
    }
    want[nbad] = BERTH_EINVAL;
    bad[nbad++] = effect(BERTH_EFFECT_SET, NULL, NULL, "v", 0);
    want[nbad] = BERTH_EINVAL;
    bad[nbad++] = effect(BERTH_EFFECT_SET, longkey, NULL, "v", 0);
    const char *expectations[] = {hex39, hex41, nothex, upper, "not-a-sha"};
    for (size_t i = 0; i < COUNT_OF(expectations); i++) {
        want[nbad] = BERTH_EINVAL;
        bad[nbad++] = effect(BERTH_EFFECT_EXPECT, "resources", "f", expectations[i], 0);
    }
    want[nbad] = BERTH_EINVAL;
    bad[nbad++] = effect((berth_effect_op_t)0, "resources", "f", "v", 0);
    want[nbad] = BERTH_EINVAL;
    bad[nbad++] = effect((berth_effect_op_t)(BERTH_EFFECT_UNCLAIM + 1), "resources", "f", "v", 0);
    want[nbad] = BERTH_EINVAL;
    bad[nbad++] = effect((berth_effect_op_t)-1, "resources", "f", "v", 0);
    const berth_effect_op_t fielded[] = {
        BERTH_EFFECT_HSET, BERTH_EFFECT_HDEL, BERTH_EFFECT_ZADD, BERTH_EFFECT_ZREM,
        BERTH_EFFECT_HINCRBY, BERTH_EFFECT_EXPECT, BERTH_EFFECT_CLAIM, BERTH_EFFECT_UNCLAIM,
    };
    for (size_t i = 0; i < COUNT_OF(fielded); i++) {
        want[nbad] = BERTH_EINVAL;
        bad[nbad++] = effect(fielded[i], "resources", NULL, "", 0);
        want[nbad] = BERTH_EINVAL;
        bad[nbad++] = effect(fielded[i], "resources", "", "", 0);
    }
    /* Over BERTH_EFFECT_VALUE_MAX: refused on its length alone. */
    want[nbad] = BERTH_ETOOBIG;
    bad[nbad] = effect(BERTH_EFFECT_HSET, "resources", "f", "v", 0);
    bad[nbad++].value_len = (size_t)BERTH_EFFECT_VALUE_MAX + 1;
    assert_true(nbad <= CASES);

    berth_error_t err;
    for (size_t i = 0; i < nbad; i++) {
        /* The bad effect after a good one: its index is named. */
        berth_effect_t two[2] = {effect(BERTH_EFFECT_HSET, "resources", "ok", "v", 0), bad[i]};
        berth_error_clear(&err);
        int rc = berth_store_async_place_with(b.store, "n", &r, NULL, two, 2, never, NULL,
                                              &err);
        if (rc != want[i])
            fail_msg("case %zu (key '%s'): place_with gave %d, not %d", i,
                     bad[i].key ? bad[i].key : "(null)", rc, want[i]);
        assert_int_equal(err.code, want[i]);
        assert_string_equal(err.target, "effects");
        assert_non_null(strstr(err.message, "effect 1:"));
        assert_int_equal(berth_store_async_release_with(b.store, "g", 0, &bad[i], 1, never, NULL,
                                                        &err), want[i]);
        assert_int_equal(berth_store_async_restart(b.store, "g", &bad[i], 1, never, NULL,
                                                   &err), want[i]);
        assert_int_equal(berth_store_async_records(b.store, "g", -1, &bad[i], 1, never, NULL,
                                                   &err), want[i]);
    }
    /* More than BERTH_EFFECTS_MAX, or none given as an array. */
    berth_effect_t many[BERTH_EFFECTS_MAX + 1];
    for (size_t i = 0; i < COUNT_OF(many); i++)
        many[i] = effect(BERTH_EFFECT_HINCRBY, "counts", "many", NULL, 1);
    assert_int_equal(berth_store_async_place_with(b.store, "n", &r, NULL, many, COUNT_OF(many),
                                                  never, NULL, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "effects");
    assert_int_equal(berth_store_async_release_with(b.store, "g", 0, many, COUNT_OF(many), never, NULL,
                                                    &err), BERTH_EINVAL);
    assert_int_equal(berth_store_async_restart(b.store, "g", many, COUNT_OF(many), never, NULL,
                                               &err), BERTH_EINVAL);
    assert_int_equal(berth_store_async_records(b.store, "g", -1, many, COUNT_OF(many), never, NULL,
                                               &err), BERTH_EINVAL);
    assert_int_equal(berth_store_async_records(b.store, "g", -1, NULL, 1, never, NULL, &err),
                     BERTH_EINVAL);
    /* The other arguments of the new calls. */
    assert_int_equal(berth_store_async_records(b.store, "g", -2, NULL, 0, never, NULL, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.target, "generation");
    assert_int_equal(berth_store_async_records(b.store, "", -1, NULL, 0, never, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_restart(b.store, "", NULL, 0, never, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_restart(b.store, "g", NULL, 0, NULL, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_place_with(b.store, "n", NULL, NULL, NULL, 0, never,
                                                  NULL, &err), BERTH_EINVAL);
    assert_int_equal(berth_store_async_release_with(b.store, "", 0, NULL, 0, never, NULL, &err),
                     BERTH_EINVAL);
    run_until(f->base, NULL, 0, 200);
    unchanged(c, cell, b.engine, &s0);

    /* Exactly BERTH_EFFECTS_MAX is fine. */
    o = records_fx(f, b.store, "g", -1, many, BERTH_EFFECTS_MAX);
    succeeded(&o);
    char want_n[16];
    snprintf(want_n, sizeof want_n, "%d", BERTH_EFFECTS_MAX);
    hget_is(c, cell, "counts", "many", want_n);
    redisFree(c);
    async_close(&b);
    side_close(&a);
}

/* A release writes its effects; one of a group that is not placed, or one
 * a guard refuses, writes nothing. */
static void test_fx_release(void **state)
{
    fixture_t *f = *state;
    const char *cell = "fx-rel";
    side_t a;
    side_open(f, cell, &a);
    put_host(&a, "h1", 8, 32768);
    async_side_t b;
    async_open(f, cell, 0, &b);
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);
    berth_request_t r = request(2, 2048);
    berth_effect_t made[] = {
        effect(BERTH_EFFECT_HSET, "resources", "g", "{\"state\": \"Running\"}", 0),
        effect(BERTH_EFFECT_ZADD, "index", "g", NULL, 0),
        effect(BERTH_EFFECT_HINCRBY, "counts", "groups", NULL, 1),
        effect(BERTH_EFFECT_CLAIM, "names", "g.example", "g", 0),
    };
    result_t o = place_fx(f, b.store, "g", r, made, COUNT_OF(made));
    succeeded(&o);
    char sha[41];
    sha1_hex(c, "{\"state\": \"Running\"}", sha);

    /* A guard that refuses keeps the group where it is. */
    snapshot_t s0;
    snap(c, cell, b.engine, &s0);
    berth_effect_t stale[] = {
        effect(BERTH_EFFECT_HDEL, "resources", "g", NULL, 0),
        effect(BERTH_EFFECT_EXPECT, "resources", "g", "", 0),
    };
    o = release_fx(f, b.store, "g", stale, COUNT_OF(stale));
    refused(&o, BERTH_ESTALE, "RecordChanged", "effects[1]");
    assert_true(in_engine(b.engine, "g"));
    unchanged(c, cell, b.engine, &s0);
    berth_effect_t taken[] = {effect(BERTH_EFFECT_CLAIM, "names", "g.example", "other", 0)};
    snap(c, cell, b.engine, &s0);
    o = release_fx(f, b.store, "g", taken, COUNT_OF(taken));
    refused(&o, BERTH_EEXIST, "RecordTaken", "effects[0]");
    unchanged(c, cell, b.engine, &s0);

    /* The release with its effects. */
    berth_effect_t gone[] = {
        effect(BERTH_EFFECT_EXPECT, "resources", "g", sha, 0),
        effect(BERTH_EFFECT_HDEL, "resources", "g", NULL, 0),
        effect(BERTH_EFFECT_ZREM, "index", "g", NULL, 0),
        effect(BERTH_EFFECT_HINCRBY, "counts", "groups", NULL, -1),
        effect(BERTH_EFFECT_UNCLAIM, "names", "g.example", "g", 0),
        effect(BERTH_EFFECT_SET, "op:release-g", NULL, "Succeeded", 300),
    };
    o = release_fx(f, b.store, "g", gone, COUNT_OF(gone));
    succeeded(&o);
    assert_false(in_engine(b.engine, "g"));
    assert_false(hget(c, cell, "groups", "g", NULL, 0));
    assert_int_equal(assign_count(c, cell, "h1", "release", "g"), 1);
    assert_false(hget(c, cell, "resources", "g", NULL, 0));
    assert_int_equal(number(c, "EXISTS berth:{%s}:index", cell), 0);
    assert_int_equal(number(c, "EXISTS berth:{%s}:counts", cell), 0);
    assert_int_equal(number(c, "EXISTS berth:{%s}:names", cell), 0);
    long long ttl = number(c, "TTL berth:{%s}:op:release-g", cell);
    assert_true(ttl > 0 && ttl <= 300);

    /* Not placed (any more): BERTH_ENOENT, nothing written. */
    snap(c, cell, b.engine, &s0);
    berth_effect_t orphan[] = {
        effect(BERTH_EFFECT_SET, "op:release-g2", NULL, "Succeeded", 0),
        effect(BERTH_EFFECT_HSET, "resources", "g", "{}", 0),
    };
    o = release_fx(f, b.store, "g", orphan, COUNT_OF(orphan));
    refused(&o, BERTH_ENOENT, "ResourceNotFound", "key");
    o = release_fx(f, b.store, "never", orphan, COUNT_OF(orphan));
    assert_int_equal(o.status, BERTH_ENOENT);
    unchanged(c, cell, b.engine, &s0);
    assert_int_equal(check_cell(f, cell), 0);
    redisFree(c);
    async_close(&b);
    side_close(&a);
}

/* A restart asks the group's agent (an entry on its host's assignment
 * stream) with the effects written; a group not placed is BERTH_ENOENT. */
static void test_fx_restart(void **state)
{
    fixture_t *f = *state;
    const char *cell = "fx-restart";
    side_t a;
    side_open(f, cell, &a);
    put_host(&a, "h1", 8, 32768);
    async_side_t b;
    async_open(f, cell, 0, &b);
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);
    result_t o = place_fx(f, b.store, "g", request(1, 1024), NULL, 0);
    succeeded(&o);
    assert_int_equal(assign_count(c, cell, "h1", "restart", "g"), 0);

    berth_effect_t e[] = {
        effect(BERTH_EFFECT_EXPECT, "operations", "restart-1", "", 0),
        effect(BERTH_EFFECT_HSET, "operations", "restart-1", "Running", 0),
    };
    o = restart_fx(f, b.store, "g", e, COUNT_OF(e));
    succeeded(&o);
    assert_int_equal(assign_count(c, cell, "h1", "restart", "g"), 1);
    hget_is(c, cell, "operations", "restart-1", "Running");
    /* Without effects too. */
    o = restart_fx(f, b.store, "g", NULL, 0);
    succeeded(&o);
    assert_int_equal(assign_count(c, cell, "h1", "restart", "g"), 2);

    /* A guard that refuses: no restart is asked for. */
    snapshot_t s0;
    snap(c, cell, b.engine, &s0);
    o = restart_fx(f, b.store, "g", e, COUNT_OF(e));
    refused(&o, BERTH_ESTALE, "RecordChanged", "effects[0]");
    unchanged(c, cell, b.engine, &s0);
    assert_int_equal(assign_count(c, cell, "h1", "restart", "g"), 2);

    /* Not placed. */
    berth_effect_t orphan[] = {effect(BERTH_EFFECT_HSET, "operations", "restart-2", "Running", 0)};
    snap(c, cell, b.engine, &s0);
    o = restart_fx(f, b.store, "nope", orphan, COUNT_OF(orphan));
    refused(&o, BERTH_ENOENT, "ResourceNotFound", "key");
    unchanged(c, cell, b.engine, &s0);
    /* Placed once, released since (by another store). */
    berth_error_t err;
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    assert_int_equal(berth_store_release(a.store, "g", &err), 0);
    o = restart_fx(f, b.store, "g", orphan, COUNT_OF(orphan));
    assert_int_equal(o.status, BERTH_ENOENT);
    assert_false(hget(c, cell, "operations", "restart-2", NULL, 0));
    assert_int_equal(assign_count(c, cell, "h1", "restart", "g"), 2);
    assert_false(in_engine(b.engine, "g"));
    redisFree(c);
    async_close(&b);
    side_close(&a);
}

/* Effects alone, guarded by the group's generation. */
static void test_fx_records(void **state)
{
    fixture_t *f = *state;
    const char *cell = "fx-records";
    side_t a;
    side_open(f, cell, &a);
    put_host(&a, "h1", 8, 32768);
    async_side_t b;
    async_open(f, cell, 0, &b);
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);
    uint64_t gen = 99;
    assert_int_equal(berth_store_async_generation(b.store, "g", &gen), BERTH_ENOENT);

    /* -1: no check; 0: the group must not be placed. */
    berth_effect_t e1[] = {effect(BERTH_EFFECT_HSET, "resources", "f1", "1", 0)};
    result_t o = records_fx(f, b.store, "g", -1, e1, COUNT_OF(e1));
    succeeded(&o);
    hget_is(c, cell, "resources", "f1", "1");
    berth_effect_t e2[] = {effect(BERTH_EFFECT_HSET, "resources", "f2", "2", 0)};
    o = records_fx(f, b.store, "g", 0, e2, COUNT_OF(e2));
    succeeded(&o);
    hget_is(c, cell, "resources", "f2", "2");
    assert_int_equal(berth_engine_group_count(b.engine), 0);
    assert_false(hget(c, cell, "groups", "g", NULL, 0));

    o = place_fx(f, b.store, "g", request(1, 1024), NULL, 0);
    succeeded(&o);
    assert_int_equal(berth_store_async_generation(b.store, "g", &gen), 0);
    assert_int_equal(gen, 1);

    /* Placed now: 0 and a wrong generation refuse, writing nothing. */
    snapshot_t s0;
    snap(c, cell, b.engine, &s0);
    berth_effect_t e3[] = {
        effect(BERTH_EFFECT_HSET, "resources", "f3", "3", 0),
        effect(BERTH_EFFECT_ZADD, "index", "f3", NULL, 0),
    };
    o = records_fx(f, b.store, "g", 0, e3, COUNT_OF(e3));
    refused(&o, BERTH_ESTALE, "RecordChanged", "generation");
    o = records_fx(f, b.store, "g", (int64_t)gen + 1, e3, COUNT_OF(e3));
    refused(&o, BERTH_ESTALE, "RecordChanged", "generation");
    unchanged(c, cell, b.engine, &s0);
    /* The current generation passes; so does -1. */
    o = records_fx(f, b.store, "g", (int64_t)gen, e3, COUNT_OF(e3));
    succeeded(&o);
    hget_is(c, cell, "resources", "f3", "3");
    berth_effect_t e4[] = {effect(BERTH_EFFECT_HSET, "resources", "f4", "4", 0)};
    o = records_fx(f, b.store, "g", -1, e4, COUNT_OF(e4));
    succeeded(&o);
    hget_is(c, cell, "resources", "f4", "4");
    /* A guard among the effects refuses with its own index. */
    snap(c, cell, b.engine, &s0);
    berth_effect_t e5[] = {
        effect(BERTH_EFFECT_HSET, "resources", "f5", "5", 0),
        effect(BERTH_EFFECT_EXPECT, "resources", "f4", "", 0),
    };
    o = records_fx(f, b.store, "g", (int64_t)gen, e5, COUNT_OF(e5));
    refused(&o, BERTH_ESTALE, "RecordChanged", "effects[1]");
    unchanged(c, cell, b.engine, &s0);

    /* A redeploy moves the group to generation 2 (read through the
     * replica); the old one refuses, the new one passes. */
    o = place_fx(f, b.store, "g", request(1, 1024), NULL, 0);
    succeeded(&o);
    uint64_t gen2 = 0;
    assert_int_equal(berth_store_async_generation(b.store, "g", &gen2), 0);
    assert_int_equal(gen2, gen + 1);
    berth_effect_t e6[] = {effect(BERTH_EFFECT_HSET, "resources", "f6", "6", 0)};
    snap(c, cell, b.engine, &s0);
    o = records_fx(f, b.store, "g", (int64_t)gen, e6, COUNT_OF(e6));
    refused(&o, BERTH_ESTALE, "RecordChanged", "generation");
    unchanged(c, cell, b.engine, &s0);
    o = records_fx(f, b.store, "g", (int64_t)gen2, e6, COUNT_OF(e6));
    succeeded(&o);
    hget_is(c, cell, "resources", "f6", "6");

    /* Changed by another store: the replica's generation follows once a
     * round has caught up, and the old one refuses meanwhile. */
    berth_error_t err;
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    berth_request_t r = request(1, 1024);
    assert_int_equal(berth_store_place(a.store, "g", &r, "{\"v\": 3}", NULL, &err), 0);
    berth_effect_t e7[] = {effect(BERTH_EFFECT_HSET, "resources", "f7", "7", 0)};
    o = records_fx(f, b.store, "g", (int64_t)gen2, e7, COUNT_OF(e7));
    refused(&o, BERTH_ESTALE, "RecordChanged", "generation");
    assert_false(hget(c, cell, "resources", "f7", NULL, 0));
    uint64_t gen3 = 0;
    assert_int_equal(berth_store_async_generation(b.store, "g", &gen3), 0);
    assert_int_equal(gen3, gen2 + 1);
    o = records_fx(f, b.store, "g", (int64_t)gen3, e7, COUNT_OF(e7));
    succeeded(&o);
    hget_is(c, cell, "resources", "f7", "7");
    /* Released by the other store: 0 passes again. */
    assert_int_equal(berth_store_release(a.store, "g", &err), 0);
    berth_effect_t e8[] = {effect(BERTH_EFFECT_HSET, "resources", "f8", "8", 0)};
    o = records_fx(f, b.store, "g", 0, e8, COUNT_OF(e8));
    succeeded(&o);
    hget_is(c, cell, "resources", "f8", "8");
    assert_int_equal(berth_store_async_generation(b.store, "g", &gen3), BERTH_ENOENT);
    assert_int_equal(check_cell(f, cell), 0);
    redisFree(c);
    async_close(&b);
    side_close(&a);
}

/* A Regular placement that finds no room evicts Spot groups through the
 * asynchronous store, with its effects; a Spot one evicts nothing; a guard
 * that refuses leaves the victims in place; replicas converge. */
static void test_fx_preempt(void **state)
{
    fixture_t *f = *state;
    const char *cell = "fx-preempt";
    side_t a;
    side_open(f, cell, &a);
    put_host(&a, "h1", 4, 16384);
    berth_error_t err;
    static const char *const spots[] = {"s0", "s1", "s2", "s3"};
    for (size_t i = 0; i < COUNT_OF(spots); i++) {
        berth_request_t s = spot_request(1, 2048);
        if (berth_store_place(a.store, spots[i], &s, NULL, NULL, &err) != 0)
            fail_msg("place %s: %s", spots[i], err.message);
    }
    async_side_t b, b2;
    async_open(f, cell, 0, &b);
    async_open(f, cell, 0, &b2);
    assert_int_equal(berth_engine_spot_count(b.engine), 4);
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);

    /* A guard that refuses the preemption: no victim goes. */
    result_t o;
    snapshot_t s0;
    snap(c, cell, b.engine, &s0);
    char held[41];
    sha1_hex(c, "held", held);
    berth_effect_t stale[] = {
        effect(BERTH_EFFECT_HSET, "resources", "reg", "{}", 0),
        effect(BERTH_EFFECT_EXPECT, "resources", "reg", held, 0),
    };
    o = place_fx(f, b.store, "reg", request(2, 2048), stale, COUNT_OF(stale));
    refused(&o, BERTH_ESTALE, "RecordChanged", "effects[1]");
    unchanged(c, cell, b.engine, &s0);
    for (size_t i = 0; i < COUNT_OF(spots); i++)
        assert_true(in_engine(b.engine, spots[i]));
    assert_int_equal(number(c, "EXISTS berth:{%s}:evictions", cell), 0);

    /* The preemption with its effects. */
    berth_effect_t e[] = {
        effect(BERTH_EFFECT_EXPECT, "resources", "reg", "", 0),
        effect(BERTH_EFFECT_HSET, "resources", "reg", "{\"priority\": \"Regular\"}", 0),
        effect(BERTH_EFFECT_HINCRBY, "counts", "regular", NULL, 1),
        effect(BERTH_EFFECT_CLAIM, "names", "reg.example", "reg", 0),
    };
    o = place_fx(f, b.store, "reg", request(2, 2048), e, COUNT_OF(e));
    succeeded(&o);
    assert_true(o.placement);
    assert_string_equal(o.host, "h1");
    assert_int_equal(o.evicted, 2);
    assert_true(in_engine(b.engine, "reg"));
    hget_is(c, cell, "resources", "reg", "{\"priority\": \"Regular\"}");
    hget_is(c, cell, "counts", "regular", "1");
    hget_is(c, cell, "names", "reg.example", "reg");
    assert_true(hget(c, cell, "groups", "reg", NULL, 0));
    size_t gone = 0;
    for (size_t i = 0; i < COUNT_OF(spots); i++) {
        bool in_redis = hget(c, cell, "groups", spots[i], NULL, 0);
        assert_true(in_redis == in_engine(b.engine, spots[i]));
        berth_eviction_t ev;
        int rc = berth_store_eviction_read(a.store, spots[i], &ev, &err);
        if (in_redis) {
            assert_int_equal(rc, BERTH_ENOENT);
            continue;
        }
        gone++;
        assert_int_equal(rc, 0);
        assert_string_equal(ev.host, "h1");
        assert_string_equal(ev.by, "reg");
        assert_true(ev.time_ms > 1600000000000ull);
        assert_int_equal(assign_count(c, cell, "h1", "release", spots[i]), 1);
    }
    assert_int_equal(gone, 2);
    assert_int_equal(berth_engine_spot_count(b.engine), 2);

    /* A Spot group that finds no room is refused and evicts nothing. */
    snap(c, cell, b.engine, &s0);
    berth_effect_t se[] = {
        effect(BERTH_EFFECT_HSET, "resources", "spot-new", "{}", 0),
        effect(BERTH_EFFECT_HINCRBY, "counts", "spot", NULL, 1),
    };
    o = place_fx(f, b.store, "spot-new", spot_request(1, 1024), se, COUNT_OF(se));
    assert_int_equal(o.status, BERTH_ENOSPC);
    assert_false(in_engine(b.engine, "spot-new"));
    unchanged(c, cell, b.engine, &s0);

    /* Replicas converge: the synchronous one, the other asynchronous one
     * (through a round of its own), a fresh one. */
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    const char *keys[] = {"s0", "s1", "s2", "s3", "reg", "spot-new"};
    same_engines(a.engine, b.engine, keys, COUNT_OF(keys));
    o = records_fx(f, b2.store, "reg", -1, NULL, 0);
    succeeded(&o);
    same_engines(b2.engine, b.engine, keys, COUNT_OF(keys));
    uint64_t g1 = 0, g2 = 0;
    assert_int_equal(berth_store_async_generation(b.store, "reg", &g1), 0);
    assert_int_equal(berth_store_async_generation(b2.store, "reg", &g2), 0);
    assert_int_equal(g1, g2);
    assert_int_equal(check_cell(f, cell), 3);
    free(s0.cell);
    redisFree(c);
    async_close(&b2);
    async_close(&b);
    side_close(&a);
}

/* Two commits guarded by the same EXPECT, queued in one loop turn: in one
 * store's round (pipelined), in separate rounds (one key), and from two
 * stores at once: exactly one applies each time. */
static void test_fx_same_guard(void **state)
{
    fixture_t *f = *state;
    const char *cell = "fx-race";
    side_t a;
    side_open(f, cell, &a);
    put_host(&a, "h1", 16, 65536);
    async_side_t b, b2;
    async_open(f, cell, 0, &b);
    async_open(f, cell, 0, &b2);
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);
    berth_request_t r = request(1, 1024);
    berth_error_t err;
    enum { TRIALS = 3 };
    for (int t = 0; t < TRIALS; t++) {
        char value[32], sha[41], k1[16], k2[16];
        snprintf(value, sizeof value, "v%d", t);
        hset(c, cell, "resources", "shared", value);
        sha1_hex(c, value, sha);
        snprintf(k1, sizeof k1, "x%d", t);
        snprintf(k2, sizeof k2, "y%d", t);
        berth_effect_t e1[] = {
            effect(BERTH_EFFECT_EXPECT, "resources", "shared", sha, 0),
            effect(BERTH_EFFECT_HSET, "resources", "shared", k1, 0),
            effect(BERTH_EFFECT_HINCRBY, "counts", "winners", NULL, 1),
        };
        berth_effect_t e2[] = {
            effect(BERTH_EFFECT_EXPECT, "resources", "shared", sha, 0),
            effect(BERTH_EFFECT_HSET, "resources", "shared", k2, 0),
            effect(BERTH_EFFECT_HINCRBY, "counts", "winners", NULL, 1),
        };
        result_t o[2];
        memset(o, 0, sizeof o);
        int before = noted_calls;
        /* t 0: two placements in one round of one store; t 1: two records
         * of one key (two rounds); t 2: one placement from each store. */
        if (t == 0) {
            assert_int_equal(berth_store_async_place_with(b.store, k1, &r, NULL, e1, COUNT_OF(e1),
                                                          noted, &o[0], &err), 0);
            assert_int_equal(berth_store_async_place_with(b.store, k2, &r, NULL, e2, COUNT_OF(e2),
                                                          noted, &o[1], &err), 0);
        } else if (t == 1) {
            assert_int_equal(berth_store_async_records(b.store, "one", -1, e1, COUNT_OF(e1), noted,
                                                       &o[0], &err), 0);
            assert_int_equal(berth_store_async_records(b.store, "one", -1, e2, COUNT_OF(e2), noted,
                                                       &o[1], &err), 0);
        } else {
            assert_int_equal(berth_store_async_place_with(b.store, k1, &r, NULL, e1, COUNT_OF(e1),
                                                          noted, &o[0], &err), 0);
            assert_int_equal(berth_store_async_place_with(b2.store, k2, &r, NULL, e2, COUNT_OF(e2),
                                                          noted, &o[1], &err), 0);
        }
        await_calls(f, before, 2);
        assert_int_equal(o[0].calls, 1);
        assert_int_equal(o[1].calls, 1);
        int won = o[0].status == 0 ? 0 : 1;
        succeeded(&o[won]);
        refused(&o[1 - won], BERTH_ESTALE, "RecordChanged", "effects[0]");
        hget_is(c, cell, "resources", "shared", won == 0 ? k1 : k2);
        char wins[8];
        snprintf(wins, sizeof wins, "%d", t + 1);
        hget_is(c, cell, "counts", "winners", wins);
        if (t != 1) {
            const char *winner = won == 0 ? k1 : k2, *loser = won == 0 ? k2 : k1;
            assert_true(hget(c, cell, "groups", winner, NULL, 0));
            assert_false(hget(c, cell, "groups", loser, NULL, 0));
            berth_engine_t *we = t == 2 && won == 1 ? b2.engine : b.engine;
            berth_engine_t *le = t == 2 && won == 0 ? b2.engine : b.engine;
            assert_true(in_engine(we, winner));
            assert_false(in_engine(le, loser));
        }
    }
    /* Both stores' replicas agree after a round each. */
    result_t o = records_fx(f, b.store, "z", -1, NULL, 0);
    succeeded(&o);
    o = records_fx(f, b2.store, "z", -1, NULL, 0);
    succeeded(&o);
    const char *keys[] = {"x0", "y0", "x2", "y2"};
    same_engines(b.engine, b2.engine, keys, COUNT_OF(keys));
    assert_int_equal(check_cell(f, cell), 2);
    redisFree(c);
    async_close(&b2);
    async_close(&b);
    side_close(&a);
}

/* Redis applies a commit and its effects all or nothing (berth.h,
 * "Effects"), also when an effect is one Redis cannot carry out: a hash
 * write on a key holding a string (there before, or made so by an earlier
 * effect of the same commit), HINCRBY of a field that is no integer or past
 * 64 bits, SET with an expiry Redis refuses, a guard on a key that is no
 * hash.  Each such commit must fail with the cell, the effects before the
 * bad one and the engine unchanged.  Every case runs; the failures are
 * listed together. */
static void test_fx_all_or_nothing(void **state)
{
    fixture_t *f = *state;
    const char *cell = "fx-atomic";
    side_t a;
    side_open(f, cell, &a);
    put_host(&a, "h1", 8, 32768);
    async_side_t b;
    async_open(f, cell, 0, &b);
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);
    result_t o = place_fx(f, b.store, "warm", request(1, 1024), NULL, 0);
    succeeded(&o);
    freeReplyObject(ask(c, "SET berth:{%s}:plain text", cell));
    hset(c, cell, "counts", "word", "not-a-number");
    hset(c, cell, "counts", "big", "9223372036854775000");
    char sha[41];
    sha1_hex(c, "text", sha);
    berth_effect_t wrong_type[] = {
        effect(BERTH_EFFECT_HSET, "resources", "g1", "{}", 0),
        effect(BERTH_EFFECT_HSET, "plain", "f", "v", 0),
    };
    berth_effect_t made_wrong[] = {
        effect(BERTH_EFFECT_HSET, "resources", "g2", "{}", 0),
        effect(BERTH_EFFECT_SET, "fresh", NULL, "text", 0),
        effect(BERTH_EFFECT_ZADD, "fresh", "member", NULL, 0),
    };
    berth_effect_t not_integer[] = {
        effect(BERTH_EFFECT_HSET, "resources", "g3", "{}", 0),
        effect(BERTH_EFFECT_HINCRBY, "counts", "word", NULL, 1),
    };
    berth_effect_t overflow[] = {
        effect(BERTH_EFFECT_HSET, "resources", "g4", "{}", 0),
        effect(BERTH_EFFECT_HINCRBY, "counts", "big", NULL, 1000),
    };
    berth_effect_t expiry[] = {
        effect(BERTH_EFFECT_HSET, "resources", "g5", "{}", 0),
        effect(BERTH_EFFECT_SET, "op:g5", NULL, "Running", INT64_MAX),
    };
    berth_effect_t guard_type[] = {
        effect(BERTH_EFFECT_HSET, "resources", "g6", "{}", 0),
        effect(BERTH_EFFECT_EXPECT, "plain", "f", sha, 0),
    };
    struct {
        const char *key, *what;
        berth_effect_t *e;
        size_t n;
    } cases[] = {
        {"g1", "HSET on a string key", wrong_type, COUNT_OF(wrong_type)},
        {"g2", "ZADD on a key an earlier SET made a string", made_wrong, COUNT_OF(made_wrong)},
        {"g3", "HINCRBY of a field that is no integer", not_integer, COUNT_OF(not_integer)},
        {"g4", "HINCRBY past 64 bits", overflow, COUNT_OF(overflow)},
        {"g5", "SET with an expiry Redis refuses", expiry, COUNT_OF(expiry)},
        {"g6", "EXPECT on a string key", guard_type, COUNT_OF(guard_type)},
    };
    int failures = 0;
    for (size_t i = 0; i < COUNT_OF(cases); i++) {
        /* A round with nothing to write first, so the replica has caught up
         * with whatever an earlier case left. */
        o = records_fx(f, b.store, "sync", -1, NULL, 0);
        succeeded(&o);
        snapshot_t s0;
        snap(c, cell, b.engine, &s0);
        /* Refused at once (nothing queued) keeps the contract too. */
        memset(&o, 0, sizeof o);
        berth_request_t r = request(1, 1024);
        berth_error_t err;
        int before = noted_calls;
        int rc = berth_store_async_place_with(b.store, cases[i].key, &r, NULL, cases[i].e,
                                              cases[i].n, noted, &o, &err);
        if (rc < 0) {
            o.status = rc;
            o.err = err;
        } else {
            await_calls(f, before, 1);
        }
        /* Only a failure that wrote nothing keeps the contract: the effect
         * Redis refused cannot have been written. */
        bool placed = hget(c, cell, "groups", cases[i].key, NULL, 0);
        bool first = hget(c, cell, "resources", cases[i].key, NULL, 0);
        size_t len;
        char *now = cell_state(c, cell, &len);
        bool same = len == s0.len && memcmp(now, s0.cell, len) == 0;
        free(now);
        free(s0.cell);
        if (o.status != 0 && same && !placed && !first)
            continue;
        failures++;
        print_error("%s (%s): status %d %s (%s); Redis %s the placement and %s the effect "
                    "before the bad one%s\n", cases[i].key, cases[i].what, o.status,
                    o.err.name, o.err.message, placed ? "holds" : "lacks",
                    first ? "holds" : "lacks", same ? "" : ", the cell changed");
    }
    redisFree(c);
    async_close(&b);
    side_close(&a);
    if (failures > 0)
        fail_msg("%d of %zu commits were not applied all or nothing", failures, COUNT_OF(cases));
}

/* ---- documents kept while not placed ------------------------------------------------ */

/* One document read as its callback saw it. */
typedef struct doc_result {
    int calls, status;
    char text[256];
    bool text_null;
    uint64_t generation;
    char host[BERTH_NAME_MAX + 1];
    bool host_null;
} doc_result_t;

static void doc_noted(int status, const char *spec, uint64_t generation, const char *host,
                      const berth_error_t *err, void *data)
{
    doc_result_t *o = data;
    o->calls++;
    noted_calls++;
    o->status = status;
    if (status != 0)
        assert_non_null(err);
    o->text_null = spec == NULL;
    snprintf(o->text, sizeof o->text, "%s", spec != NULL ? spec : "");
    o->generation = generation;
    o->host_null = host == NULL;
    snprintf(o->host, sizeof o->host, "%s", host != NULL ? host : "");
}

static doc_result_t document_read(fixture_t *f, berth_store_async_t *s, const char *key)
{
    doc_result_t o;
    memset(&o, 0, sizeof o);
    berth_error_t err;
    int before = noted_calls;
    if (berth_store_async_document_read(s, key, doc_noted, &o, &err) != 0)
        fail_msg("document_read %s refused: %s", key, err.message);
    await_calls(f, before, 1);
    assert_int_equal(o.calls, 1);
    return o;
}

/* The synchronous read agrees: document and generation, or ENOENT. */
static void sync_document_is(berth_store_t *s, const char *key, const char *want, uint64_t gen)
{
    char *text = NULL;
    uint64_t g = 99;
    berth_error_t err;
    int rc = berth_store_document_read(s, key, &text, &g, &err);
    if (want == NULL) {
        assert_int_equal(rc, BERTH_ENOENT);
        assert_null(text);
        return;
    }
    if (rc != 0)
        fail_msg("document_read %s: %s", key, err.message);
    assert_string_equal(text, want);
    assert_int_equal(g, gen);
    berth_free(text);
}

/* A group's document is in one place: its record while placed; the cell's
 * documents hash after a release that keeps it or an eviction, until the
 * group is placed again or the document is dropped. */
static void test_documents_kept(void **state)
{
    fixture_t *f = *state;
    const char *cell = "kept";
    side_t a;
    side_open(f, cell, &a);
    put_host(&a, "h1", 4, 16384);
    berth_error_t err;
    berth_request_t one = request(1, 1024);
    if (berth_store_place(a.store, "g", &one, "{\"doc\": 1}", NULL, &err) != 0)
        fail_msg("place g: %s", err.message);
    async_side_t b;
    async_open(f, cell, 0, &b);
    redisContext *c = berth_test_redis_connect(f->redis);
    assert_non_null(c);

    /* Placed: the record's document, its generation and host. */
    doc_result_t d = document_read(f, b.store, "g");
    assert_int_equal(d.status, 0);
    assert_string_equal(d.text, "{\"doc\": 1}");
    assert_int_equal(d.generation, 1);
    assert_string_equal(d.host, "h1");
    assert_false(hget(c, cell, "documents", "g", NULL, 0));

    /* Released, keeping it: the cell holds it once, at generation 0. */
    result_t o;
    memset(&o, 0, sizeof o);
    int before = noted_calls;
    assert_int_equal(berth_store_async_release_with(b.store, "g", BERTH_RELEASE_KEEP_DOCUMENT,
                                                    NULL, 0, noted, &o, &err), 0);
    await_calls(f, before, 1);
    succeeded(&o);
    assert_false(hget(c, cell, "groups", "g", NULL, 0));
    hget_is(c, cell, "documents", "g", "{\"doc\": 1}");
    d = document_read(f, b.store, "g");
    assert_int_equal(d.status, 0);
    assert_string_equal(d.text, "{\"doc\": 1}");
    assert_int_equal(d.generation, 0);
    assert_true(d.host_null);
    sync_document_is(a.store, "g", "{\"doc\": 1}", 0);
    char *text = NULL;
    assert_int_equal(berth_store_group_read(a.store, "g", &text, NULL, &err), BERTH_ENOENT);

    /* Placed again: the record holds the (new) document, the kept copy goes. */
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    if (berth_store_place(a.store, "g", &one, "{\"doc\": 2}", NULL, &err) != 0)
        fail_msg("place g again: %s", err.message);
    assert_false(hget(c, cell, "documents", "g", NULL, 0));
    sync_document_is(a.store, "g", "{\"doc\": 2}", 1);

    /* A plain release keeps nothing. */
    o = release_fx(f, b.store, "g", NULL, 0);
    succeeded(&o);
    assert_false(hget(c, cell, "documents", "g", NULL, 0));
    d = document_read(f, b.store, "g");
    assert_int_equal(d.status, BERTH_ENOENT);
    assert_true(d.text_null);
    sync_document_is(a.store, "g", NULL, 0);

    /* An owner drops a kept document with an effect; no other write there
     * is allowed. */
    if (berth_store_place(a.store, "h", &one, "{\"doc\": \"h\"}", NULL, &err) != 0)
        fail_msg("place h: %s", err.message);
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    memset(&o, 0, sizeof o);
    before = noted_calls;
    assert_int_equal(berth_store_async_release_with(b.store, "h", BERTH_RELEASE_KEEP_DOCUMENT,
                                                    NULL, 0, noted, &o, &err), 0);
    await_calls(f, before, 1);
    succeeded(&o);
    hget_is(c, cell, "documents", "h", "{\"doc\": \"h\"}");
    berth_effect_t bad = effect(BERTH_EFFECT_HSET, "documents", "h", "{}", 0);
    assert_int_equal(berth_store_async_records(b.store, "h", 0, &bad, 1, noted, &o, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_release_with(b.store, "h", 2, NULL, 0, noted, &o, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.target, "flags");
    berth_effect_t drop = effect(BERTH_EFFECT_HDEL, "documents", "h", NULL, 0);
    o = records_fx(f, b.store, "h", 0, &drop, 1);
    succeeded(&o);
    assert_false(hget(c, cell, "documents", "h", NULL, 0));

    /* An evicted Spot group's document stays beside its eviction record;
     * forgetting the eviction drops both. */
    berth_request_t spot = spot_request(4, 1024);
    if (berth_store_place(a.store, "spot", &spot, "{\"doc\": \"spot\"}", NULL, &err) != 0)
        fail_msg("place spot: %s", err.message);
    assert_int_equal(berth_store_sync(a.store, &err), 0);
    o = place_fx(f, b.store, "reg", request(2, 1024), NULL, 0);
    succeeded(&o);
    assert_int_equal(o.evicted, 1);
    hget_is(c, cell, "documents", "spot", "{\"doc\": \"spot\"}");
    d = document_read(f, b.store, "spot");
    assert_int_equal(d.status, 0);
    assert_string_equal(d.text, "{\"doc\": \"spot\"}");
    assert_int_equal(d.generation, 0);
    assert_int_equal(berth_store_eviction_forget(a.store, "spot", &err), 0);
    assert_false(hget(c, cell, "documents", "spot", NULL, 0));
    assert_false(hget(c, cell, "evictions", "spot", NULL, 0));
    redisFree(c);
    async_close(&b);
    side_close(&a);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(TEST_SECONDS);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_at_once),
        cmocka_unit_test(test_many_in_flight),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_conflict_with_sync_writer),
        cmocka_unit_test(test_close_pending),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_redis_killed),
        cmocka_unit_test(test_log_trimmed),
        cmocka_unit_test(test_cluster_moved),
        cmocka_unit_test(test_fx_place),
        cmocka_unit_test(test_fx_guards),
        cmocka_unit_test(test_fx_refused_at_once),
        cmocka_unit_test(test_fx_release),
        cmocka_unit_test(test_fx_restart),
        cmocka_unit_test(test_fx_records),
        cmocka_unit_test(test_fx_preempt),
        cmocka_unit_test(test_fx_same_guard),
        cmocka_unit_test(test_fx_all_or_nothing),
        cmocka_unit_test(test_documents_kept),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
