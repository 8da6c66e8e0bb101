/*
 * test_store_wait.c: commits confirmed by replicas (the store options
 * wait_replicas and wait_timeout_ms: Redis's WAIT after each commit).
 *
 * A master and a replica (two redis-server processes on loopback TCP ports
 * started for the test, the second made a replica with REPLICAOF).  With
 * the replica running, every commit the store reports a success is already
 * on the replica: the test reads it there at once, for the synchronous
 * store (one placement, a batch) and the asynchronous one.  With the
 * replica stopped (SIGSTOP), a commit is applied by the master but not
 * confirmed: the synchronous place, the batch and the asynchronous place
 * each report BERTH_EIO named NotReplicated, and the replica catches up
 * with what the master applied.  After SIGCONT, commits are confirmed
 * again.  Options that cannot work (a wait as long as the command timeout)
 * are refused at open.
 *
 * Every wait is bounded; the replica is always let go on (SIGCONT) before
 * the servers stop.  Judges no timing: WAIT_MS is long enough for a busy
 * machine's replica to confirm, and a stopped replica makes each of the
 * three unconfirmed commits take that long.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "../core/berth.h"
#include "redis-harness.h"

#define TEST_SECONDS 120            /* the whole binary, at most            */
#define WAIT_MS 4000u               /* the store's wait for its replica    */

typedef struct fixture {
    berth_test_redis_t *master, *replica;
    struct event_base *base;
} fixture_t;

static fixture_t *live;             /* for on_alarm(): let the replica go   */

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_store_wait: timed out\n";
    (void)!write(2, msg, sizeof msg - 1);
    if (live != NULL && live->replica != NULL && live->replica->pid > 0)
        kill(live->replica->pid, SIGCONT);
    berth_test_redis_cleanup_all();
    _exit(1);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Whether the master reports a replica online (at most 10 s). */
static int replica_online(const berth_test_redis_t *master)
{
    redisContext *c = berth_test_redis_connect(master);
    if (c == NULL)
        return 0;
    int ok = 0;
    for (double end = now_ms() + 10000; !ok && now_ms() < end;) {
        redisReply *r = redisCommand(c, "INFO replication");
        ok = r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, "state=online") != NULL;
        if (r != NULL)
            freeReplyObject(r);
        if (!ok)
            usleep(20000);
    }
    redisFree(c);
    return ok;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    berth_test_redis_options_t o = {BERTH_TEST_REDIS_TCP, BERTH_TEST_REDIS_AOF_OFF, 0};
    f->master = berth_test_redis_start(&o);
    f->replica = berth_test_redis_start(&o);
    f->base = event_base_new();
    redisContext *c = f->replica != NULL ? berth_test_redis_connect(f->replica) : NULL;
    redisReply *r = c != NULL && f->master != NULL
                        ? redisCommand(c, "REPLICAOF 127.0.0.1 %d", f->master->port)
                        : NULL;
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS && f->base != NULL &&
        replica_online(f->master);
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    if (!ok) {
        fprintf(stderr, "test_store_wait: no master with an online replica\n");
        berth_test_redis_stop(f->replica);
        berth_test_redis_stop(f->master);
        if (f->base != NULL)
            event_base_free(f->base);
        free(f);
        return -1;
    }
    live = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    kill(f->replica->pid, SIGCONT);
    live = NULL;
    event_base_free(f->base);
    berth_test_redis_stop(f->replica);
    berth_test_redis_stop(f->master);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

static void options(const fixture_t *f, const char *cell, berth_store_options_t *o)
{
    berth_store_options_init(o);
    o->url = f->master->url;
    o->cell = cell;
    o->timeout_ms = 2 * WAIT_MS;
    o->wait_replicas = 1;
    o->wait_timeout_ms = WAIT_MS;
}

static void put_host(berth_store_t *s, const char *name, uint32_t cores, uint32_t mem)
{
    berth_host_t h;
    memset(&h, 0, sizeof h);
    h.name = name;
    h.cores = cores;
    h.memory_mib = mem;
    h.os = BERTH_OS_LINUX;
    h.state = BERTH_HOST_READY;
    berth_error_t err;
    if (berth_store_host_put(s, &h, &err) != 0)
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

/* Whether server r holds group `key` of `cell` (its group record). */
static bool holds_group(const berth_test_redis_t *r, const char *cell, const char *key)
{
    redisContext *c = berth_test_redis_connect(r);
    assert_non_null(c);
    redisReply *rep = redisCommand(c, "HEXISTS berth:{%s}:groups %s", cell, key);
    assert_non_null(rep);
    bool held = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    redisFree(c);
    return held;
}

/* Waits (at most 10 s) until the replica holds group `key`. */
static bool replica_gets(const fixture_t *f, const char *cell, const char *key)
{
    for (double end = now_ms() + 10000; now_ms() < end; usleep(20000))
        if (holds_group(f->replica, cell, key))
            return true;
    return false;
}

static void replica_stop(const fixture_t *f)
{
    assert_int_equal(kill(f->replica->pid, SIGSTOP), 0);
}

static void replica_go_on(const fixture_t *f)
{
    assert_int_equal(kill(f->replica->pid, SIGCONT), 0);
}

/* ---- the synchronous store ---------------------------------------------------- */

static void test_sync_place(void **state)
{
    fixture_t *f = *state;
    berth_engine_t *e;
    berth_store_t *s;
    berth_error_t err;
    berth_store_options_t o;
    options(f, "wait-sync", &o);
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    if (berth_store_open(&o, e, &s, &err) != 0)
        fail_msg("open: %s: %s", err.name, err.message);
    put_host(s, "h1", 16, 65536);

    /* confirmed: on the replica the moment the call returns */
    berth_request_t req = request(1, 1024);
    berth_placement_t pl;
    assert_int_equal(berth_store_place(s, "g1", &req, NULL, &pl, &err), 0);
    assert_true(holds_group(f->replica, "wait-sync", "g1"));

    /* not confirmed: applied by the master, reported NotReplicated */
    replica_stop(f);
    assert_int_equal(berth_store_place(s, "g2", &req, NULL, &pl, &err), BERTH_EIO);
    assert_string_equal(err.name, "NotReplicated");
    assert_non_null(strstr(err.message, "not acknowledged"));
    assert_true(holds_group(f->master, "wait-sync", "g2"));
    replica_go_on(f);
    assert_true(replica_gets(f, "wait-sync", "g2"));
    /* the store reads its own unconfirmed commit back from the log */
    assert_int_equal(berth_store_sync(s, &err), 0);
    assert_int_equal(berth_engine_group_get(e, "g2", NULL), 0);

    /* confirmed again once the replica answers */
    assert_int_equal(berth_store_place(s, "g3", &req, NULL, &pl, &err), 0);
    assert_true(holds_group(f->replica, "wait-sync", "g3"));
    berth_store_close(s);
    berth_engine_free(e);
}

static void test_batch(void **state)
{
    fixture_t *f = *state;
    berth_engine_t *e;
    berth_store_t *s;
    berth_error_t err;
    berth_store_options_t o;
    options(f, "wait-batch", &o);
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    if (berth_store_open(&o, e, &s, &err) != 0)
        fail_msg("open: %s: %s", err.name, err.message);
    put_host(s, "h1", 64, 262144);
    const char *keys[] = {"b1", "b2", "b3"};
    berth_request_t reqs[3] = {request(1, 512), request(2, 512), request(1, 1024)};
    int results[3];
    assert_int_equal(berth_store_place_batch(s, 3, keys, reqs, NULL, results, &err), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(results[i], 0);
        assert_true(holds_group(f->replica, "wait-batch", keys[i]));
    }

    replica_stop(f);
    const char *more[] = {"b4", "b5"};
    assert_int_equal(berth_store_place_batch(s, 2, more, reqs, NULL, results, &err), BERTH_EIO);
    assert_string_equal(err.name, "NotReplicated");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(results[i], BERTH_EIO);
        assert_true(holds_group(f->master, "wait-batch", more[i]));
    }
    replica_go_on(f);
    assert_true(replica_gets(f, "wait-batch", "b5"));
    berth_store_close(s);
    berth_engine_free(e);
}

static void test_options(void **state)
{
    fixture_t *f = *state;
    berth_engine_t *e;
    berth_store_t *s = NULL;
    berth_error_t err;
    berth_store_options_t o;
    options(f, "wait-options", &o);
    o.wait_timeout_ms = o.timeout_ms;
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    assert_int_equal(berth_store_open(&o, e, &s, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "wait_timeout_ms");
    assert_null(s);
    o.wait_timeout_ms = 0;
    assert_int_equal(berth_store_open(&o, e, &s, &err), BERTH_EINVAL);
    /* no wait asked: the timeout is not read */
    o.wait_replicas = 0;
    assert_int_equal(berth_store_open(&o, e, &s, &err), 0);
    berth_store_close(s);
    berth_engine_free(e);
}

/* ---- the asynchronous store --------------------------------------------------- */

typedef struct outcome {
    int calls, status;
    char name[BERTH_ERROR_NAME_MAX];
} outcome_t;

static void record(int status, const berth_placement_t *placement, const berth_error_t *err,
                   void *data)
{
    (void)placement;
    outcome_t *o = data;
    o->calls++;
    o->status = status;
    if (err != NULL)
        snprintf(o->name, sizeof o->name, "%s", err->name);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

/* Runs the loop in turns of at most 20 ms until o has its callback, or 5 s. */
static void run_until_called(struct event_base *base, const outcome_t *o)
{
    struct event *t = evtimer_new(base, tick, NULL);
    assert_non_null(t);
    for (double end = now_ms() + 5000; o->calls == 0 && now_ms() < end;) {
        struct timeval tv = {0, 20000};
        evtimer_add(t, &tv);
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(t);
    assert_int_equal(o->calls, 1);
}

static void test_async_place(void **state)
{
    fixture_t *f = *state;
    berth_engine_t *e, *se;
    berth_store_t *s;
    berth_store_async_t *a;
    berth_error_t err;
    berth_store_options_t o;
    options(f, "wait-async", &o);
    assert_int_equal(berth_engine_new(NULL, &se, &err), 0);
    if (berth_store_open(&o, se, &s, &err) != 0)
        fail_msg("open: %s: %s", err.name, err.message);
    put_host(s, "h1", 16, 65536);
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    if (berth_store_async_open(&o, e, f->base, &a, &err) != 0)
        fail_msg("async open: %s: %s", err.name, err.message);

    berth_request_t req = request(1, 1024);
    outcome_t one = {0};
    assert_int_equal(berth_store_async_place(a, "a1", &req, NULL, record, &one, &err), 0);
    run_until_called(f->base, &one);
    assert_int_equal(one.status, 0);
    assert_true(holds_group(f->replica, "wait-async", "a1"));

    replica_stop(f);
    outcome_t two = {0};
    assert_int_equal(berth_store_async_place(a, "a2", &req, NULL, record, &two, &err), 0);
    run_until_called(f->base, &two);
    assert_int_equal(two.status, BERTH_EIO);
    assert_string_equal(two.name, "NotReplicated");
    assert_true(holds_group(f->master, "wait-async", "a2"));
    replica_go_on(f);
    assert_true(replica_gets(f, "wait-async", "a2"));

    outcome_t three = {0};
    assert_int_equal(berth_store_async_place(a, "a3", &req, NULL, record, &three, &err), 0);
    run_until_called(f->base, &three);
    assert_int_equal(three.status, 0);
    assert_true(holds_group(f->replica, "wait-async", "a3"));

    berth_store_async_close(a);
    berth_engine_free(e);
    berth_store_close(s);
    berth_engine_free(se);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(TEST_SECONDS);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_place),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_async_place),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
