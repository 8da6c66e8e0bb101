/*
 * test_store_async.c: the asynchronous Redis store (core/store_async.c)
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
        int rc = berth_group_get(a.engine, key, &p);
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
    assert_int_equal(berth_host_get(a, host, NULL, &ua), 0);
    assert_int_equal(berth_host_get(b, host, NULL, &ub), 0);
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
    assert_int_equal(berth_group_get(b.engine, "warm", &gone), BERTH_ENOENT);
    side_t fresh;
    side_open(f, "trimmed", &fresh);
    assert_int_equal(berth_engine_group_count(fresh.engine), 21);
    for (size_t i = 0; i < 3; i++)
        same_host(b.engine, fresh.engine, hosts[i]);
    berth_placement_t p;
    assert_int_equal(berth_group_get(fresh.engine, "after", &p), 0);
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
