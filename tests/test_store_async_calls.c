/*
 * test_store_async_calls.c: the asynchronous store's reads and agent calls
 * (core/services/store_async_calls.c) against a real redis-server on a loopback TCP
 * port (tests/redis-harness.c), driven by a libevent loop run in bounded
 * steps, with the agents' side played either by the library's own call
 * handler (berth_hostlink_call_next() / _call_reply(), driven between
 * turns of the loop) or by berth-agent with the simulator plugin
 * (tests/agent-harness.c).
 *
 * Covers: calls refused at once (never calling back) and never calling
 * back from inside the call; each read's success and ENOENT, and its
 * outcome equal to the synchronous read's (code, name, message, target),
 * a malformed eviction record and an undecodable group record included;
 * 1000 reads in flight at once; logs and exec answered by a real agent
 * (output, exit code, a runtime's refusal); 60 calls in flight answered
 * by the call handler, each with its own answer, an announcement heard
 * twice calling back once; a host whose agent never answers: ten calls in
 * flight complete with AgentUnavailable after their timeout while a view
 * read and a call to another host, queued after them, are answered first; an answer written without
 * its announcement, and one announced just before the deadline, both
 * read; a Redis that holds writes (a step's timeout drops the connection,
 * the next call reconnects); Redis killed with calls waiting and an XADD
 * in flight (each BERTH_EIO once), a read while it is down, and a read
 * and a call after its restart; close with calls pending, from outside
 * and from inside a callback (each callback once, "Closed"); the hosts'
 * image sets listed and loaded into the engine in slices (520 hosts),
 * matching berth_store_images_sync(), and a set of the wrong type;
 * interactive sessions with the agent's end played by the test (input said
 * before the agent heard of the session delivered in order with a resize
 * and the end of input, output of more than one pop, the exit code; the
 * caller's close heard by the agent and no callback after it; the agent's
 * failure; no agent within start_ms; a group not in the cell; the store
 * closed under an open session).
 *
 * Every wait is bounded and scales with $BERTH_TEST_TIME_SCALE
 * (tests/test-time.h); nothing asserts speed, only order and outcome.  The
 * test never touches a Redis it did not start and never writes into the
 * source tree.
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
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "../core/berth.h"
#include "agent-harness.h"
#include "redis-harness.h"
#include "test-time.h"

#define TEST_SECONDS 300            /* the whole binary, at most (scaled)   */

typedef struct fixture {
    berth_test_redis_t *redis;
    struct event_base *base;
    redisContext *raw;              /* the test's own connection            */
} fixture_t;

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_store_async_calls: timed out\n";
    (void)!write(2, msg, sizeof msg - 1);
    berth_test_redis_cleanup_all();
    _exit(1);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    /* appendfsync always: a Redis killed and restarted keeps the cell. */
    berth_test_redis_options_t o = {BERTH_TEST_REDIS_TCP, BERTH_TEST_REDIS_AOF_ALWAYS, 0};
    f->redis = berth_test_redis_start(&o);
    f->base = event_base_new();
    f->raw = f->redis != NULL ? berth_test_redis_connect(f->redis) : NULL;
    if (f->redis == NULL || f->base == NULL || f->raw == NULL) {
        if (f->raw != NULL)
            redisFree(f->raw);
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
    redisFree(f->raw);
    event_base_free(f->base);
    berth_test_redis_stop(f->redis);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

/* A reply to `fmt` on the test's connection that is no error. */
static redisReply *ask(fixture_t *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(f->raw, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", fmt, r->str);
    return r;
}

static void raw(fixture_t *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(f->raw, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", fmt, r->str);
    freeReplyObject(r);
}

typedef struct side {
    berth_engine_t *engine;
    berth_store_t *store;
} side_t;

static void options(fixture_t *f, const char *cell, berth_store_options_t *o)
{
    berth_store_options_init(o);
    o->url = f->redis->url;
    o->cell = cell;
    o->timeout_ms = (uint32_t)test_deadline_ms(3000);
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

static void async_open_timeout(fixture_t *f, const char *cell, uint32_t timeout_ms,
                               async_side_t *a)
{
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &a->engine, &err), 0);
    berth_store_options_t o;
    options(f, cell, &o);
    if (timeout_ms != 0)
        o.timeout_ms = timeout_ms;
    if (berth_store_async_open(&o, a->engine, f->base, &a->store, &err) != 0)
        fail_msg("async open: %s: %s", err.name, err.message);
}

static void async_open(fixture_t *f, const char *cell, async_side_t *a)
{
    async_open_timeout(f, cell, 0, a);
}

static void async_close(async_side_t *a)
{
    berth_store_async_close(a->store);
    berth_engine_free(a->engine);
}

static void put_host(side_t *s, const char *name)
{
    berth_host_t h;
    memset(&h, 0, sizeof h);
    h.name = name;
    h.cores = 64;
    h.memory_mib = 262144;
    h.os = BERTH_OS_LINUX;
    h.state = BERTH_HOST_READY;
    berth_error_t err;
    if (berth_store_host_put(s->store, &h, &err) != 0)
        fail_msg("host put %s: %s: %s", name, err.name, err.message);
}

/* Places `key` (1 core) with document `spec` (may be NULL); returns its host. */
static void place(side_t *s, const char *key, const char *spec, char host[BERTH_NAME_MAX + 1])
{
    berth_request_t r;
    memset(&r, 0, sizeof r);
    r.demand.millicores = 1000;
    r.demand.requested_millicores = 1000;
    r.demand.memory_mib = 1024;
    r.os = BERTH_OS_LINUX;
    berth_placement_t p;
    berth_error_t err;
    if (berth_store_place(s->store, key, &r, spec, &p, &err) != 0)
        fail_msg("place %s: %s: %s", key, err.name, err.message);
    if (host != NULL)
        snprintf(host, BERTH_NAME_MAX + 1, "%s", p.host);
}

/* One call's outcome as its callback saw it. */
typedef struct result {
    int calls;
    int status;
    int seq;                        /* the order callbacks ran in           */
    berth_error_t err;
    char *text;                     /* view, document, output, images (joined by ' ') */
    size_t len;
    bool text_null;
    uint64_t generation;
    char host[BERTH_NAME_MAX + 1];
    int exit_code;
    berth_eviction_t eviction;
    size_t n;
} result_t;

static int callbacks;                /* callbacks seen, over a test          */
static bool queueing;                /* inside a call that queues            */

static void seen(result_t *r, int status, const berth_error_t *err)
{
    assert_false(queueing); /* never from inside the call that queued it */
    r->calls++;
    r->status = status;
    r->seq = ++callbacks;
    if (status == 0) {
        assert_null(err);
        berth_error_clear(&r->err);
    } else {
        assert_non_null(err);
        assert_int_equal(err->code, status);
        r->err = *err;
    }
}

static void keep_text(result_t *r, const char *text, size_t len)
{
    free(r->text);
    r->text = NULL;
    r->text_null = text == NULL;
    r->len = len;
    if (text != NULL) {
        assert_int_equal(text[len], '\0');
        r->text = malloc(len + 1);
        assert_non_null(r->text);
        memcpy(r->text, text, len + 1);
    }
}

static void read_cb(int status, const char *text, size_t len, const berth_error_t *err,
                    void *data)
{
    result_t *r = data;
    seen(r, status, err);
    if (status != 0)
        assert_null(text);
    keep_text(r, text, len);
}

static void group_cb(int status, const char *spec, uint64_t generation, const char *host,
                     const berth_error_t *err, void *data)
{
    result_t *r = data;
    seen(r, status, err);
    keep_text(r, spec, spec != NULL ? strlen(spec) : 0);
    r->generation = generation;
    if (status == 0) {
        assert_non_null(host);
        snprintf(r->host, sizeof r->host, "%s", host);
    } else {
        assert_null(host);
        assert_null(spec);
    }
}

static void eviction_cb(int status, const berth_eviction_t *eviction, const berth_error_t *err,
                        void *data)
{
    result_t *r = data;
    seen(r, status, err);
    if (status == 0) {
        assert_non_null(eviction);
        r->eviction = *eviction;
    } else {
        assert_null(eviction);
    }
}

static void call_cb(int status, const char *output, size_t len, int exit_code,
                    const berth_error_t *err, void *data)
{
    result_t *r = data;
    seen(r, status, err);
    keep_text(r, output, len);
    r->exit_code = exit_code;
    if (status != 0)
        assert_null(output);
}

static void images_cb(int status, const char *const *images, size_t n, const berth_error_t *err,
                      void *data)
{
    result_t *r = data;
    seen(r, status, err);
    r->n = n;
    free(r->text);
    r->text = NULL;
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(images[i]) + 1;
    r->text = calloc(1, len);
    assert_non_null(r->text);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            assert_true(strcmp(images[i - 1], images[i]) < 0); /* sorted, each once */
            strcat(r->text, " ");
        }
        strcat(r->text, images[i]);
    }
    if (n == 0)
        assert_null(images);
}

static void result_free(result_t *r)
{
    free(r->text);
    r->text = NULL;
}

static void never_read(int status, const char *text, size_t len, const berth_error_t *err,
                       void *data)
{
    (void)status, (void)text, (void)len, (void)err, (void)data;
    fail_msg("a refused call's callback ran");
}

static void never_call(int status, const char *output, size_t len, int exit_code,
                       const berth_error_t *err, void *data)
{
    (void)status, (void)output, (void)len, (void)exit_code, (void)err, (void)data;
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

/* Runs one turn of the loop (at most `ms`). */
static void turn(struct event_base *base, int ms)
{
    struct event *t = evtimer_new(base, tick, NULL);
    assert_non_null(t);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(t, &tv);
    event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
}

/* Runs the loop until `callbacks` reaches target or `ms` (scaled) pass. */
static void run_until(struct event_base *base, int target, int ms)
{
    double end = now_ms() + test_deadline_ms(ms);
    while (callbacks < target && now_ms() < end)
        turn(base, 20);
}

/* The hostlink of `host`, the agent's side of calls driven by the test. */
static berth_hostlink_t *link_open(fixture_t *f, const char *cell, const char *host)
{
    berth_store_options_t o;
    options(f, cell, &o);
    berth_hostlink_t *l = NULL;
    berth_error_t err;
    if (berth_hostlink_open(&o, host, &l, &err) != 0)
        fail_msg("hostlink: %s: %s", err.name, err.message);
    return l;
}

/* Answers every call waiting for the link's host, as an agent would:
 * exec prints its words and exits with their count; logs prints the
 * container's name, the tail and whether timestamps were asked for.
 * Returns the number answered. */
static int serve(berth_hostlink_t *l)
{
    int n = 0;
    berth_call_t *call;
    berth_error_t err;
    while (berth_hostlink_call_next(l, &call, &err) == 1) {
        char out[512] = "";
        int code = 0;
        if (call->op == BERTH_CALL_EXEC) {
            for (size_t i = 0; i < call->argc; i++) {
                strcat(out, i > 0 ? " " : "");
                strncat(out, call->argv[i], 100);
            }
            strcat(out, "\n");
            code = (int)call->argc;
        } else {
            snprintf(out, sizeof out, "logs of %s tail %u%s\n", call->container, call->tail,
                     call->timestamps ? " ts" : "");
        }
        if (berth_hostlink_call_reply(l, call, out, strlen(out), code, NULL, &err) != 0)
            fail_msg("reply: %s: %s", err.name, err.message);
        berth_call_free(call);
        n++;
    }
    return n;
}

/* Runs the loop and the call handler by turns until `callbacks` reaches
 * target or `ms` (scaled) pass. */
static void run_serving(struct event_base *base, berth_hostlink_t *l, int target, int ms)
{
    double end = now_ms() + test_deadline_ms(ms);
    while (callbacks < target && now_ms() < end) {
        turn(base, 10);
        serve(l);
    }
}

static long long xlen(fixture_t *f, const char *key)
{
    redisReply *r = ask(f, "XLEN %s", key);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* The same outcome as a synchronous call's. */
static void same_outcome(const result_t *r, int sync_rc, const berth_error_t *sync_err)
{
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->status, sync_rc);
    if (sync_rc != 0) {
        assert_string_equal(r->err.name, sync_err->name);
        assert_string_equal(r->err.message, sync_err->message);
        assert_string_equal(r->err.target, sync_err->target);
    }
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_refused_at_once(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "refuse", &a);
    put_host(&a, "h1");
    place(&a, "g", NULL, NULL);
    async_side_t b;
    async_open(f, "refuse", &b);
    berth_error_t err;
    char longkey[300];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    const char *echo[] = {"echo", "hi"}, *bad[] = {"echo", "\xff\xfe"};
    const char *nul[] = {"echo", NULL};
    callbacks = 0;
    queueing = true;
    assert_int_equal(berth_store_async_view_read(NULL, "g", never_read, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_view_read(b.store, "g", NULL, NULL, &err), BERTH_EINVAL);
    assert_int_equal(berth_store_async_view_read(b.store, "", never_read, NULL, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.target, "key");
    assert_int_equal(berth_store_async_view_read(b.store, NULL, never_read, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_metrics_read(b.store, longkey, never_read, NULL, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.target, "key");
    assert_int_equal(berth_store_async_group_read(b.store, longkey, NULL, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_eviction_read(b.store, longkey, NULL, NULL, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_images_list(b.store, NULL, NULL, &err), BERTH_EINVAL);
    assert_int_equal(berth_store_async_images_sync(NULL, never_read, NULL, &err), BERTH_EINVAL);
    /* The agent calls refuse what berth_store_container_logs()/_exec() refuse. */
    assert_int_equal(berth_store_async_container_logs(b.store, "g", "Bad_Name", 0, false, 1000,
                                                      never_call, NULL, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "container");
    assert_int_equal(berth_store_async_container_logs(b.store, "g", NULL, 0, false, 1000,
                                                      never_call, NULL, &err), BERTH_EINVAL);
    assert_int_equal(berth_store_async_container_logs(b.store, "g", "app", 0, false, 0,
                                                      never_call, NULL, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "timeout_ms");
    assert_int_equal(berth_store_async_container_logs(b.store, longkey, "app", 0, false, 1000,
                                                      never_call, NULL, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "key");
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", echo, 0, 1000,
                                                      never_call, NULL, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "InvalidCommand");
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", NULL, 2, 1000,
                                                      never_call, NULL, &err), BERTH_EINVAL);
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", bad, 2, 1000,
                                                      never_call, NULL, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "InvalidCommand");
    assert_string_equal(err.target, "command");
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", nul, 2, 1000,
                                                      never_call, NULL, &err), BERTH_EINVAL);
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", echo, 2, 1000, NULL,
                                                      NULL, &err), BERTH_EINVAL);
    /* The synchronous calls refuse the same arguments with the same error. */
    char *out = NULL;
    int code;
    berth_error_t serr;
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", bad, 2, 1000,
                                                      never_call, NULL, &err), BERTH_EINVAL);
    assert_int_equal(berth_store_container_exec(a.store, "g", "app", bad, 2, 1000, &out, &code,
                                                &serr), BERTH_EINVAL);
    assert_string_equal(err.message, serr.message);
    assert_int_equal(berth_store_async_container_logs(b.store, "g", "Bad_Name", 0, false, 1000,
                                                      never_call, NULL, &err), BERTH_EINVAL);
    assert_int_equal(berth_store_container_logs(a.store, "g", "Bad_Name", 0, false, 1000, &out,
                                                &serr), BERTH_EINVAL);
    assert_string_equal(err.message, serr.message);
    queueing = false;
    run_until(f->base, 1, 100);
    assert_int_equal(callbacks, 0);

    /* A call queued does not call back before the loop runs. */
    result_t r = {0};
    queueing = true;
    assert_int_equal(berth_store_async_view_read(b.store, "g", read_cb, &r, &err), 0);
    queueing = false;
    assert_int_equal(r.calls, 0);
    run_until(f->base, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, BERTH_ENOENT);
    result_free(&r);
    async_close(&b);
    side_close(&a);
}

static void test_reads(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "reads", &a);
    put_host(&a, "h1");
    char host[BERTH_NAME_MAX + 1];
    place(&a, "sub/rg/with-spec", "{\"doc\": \"ü\"}", host);
    place(&a, "sub/rg/with-spec", "{\"doc\": 2}", NULL); /* generation 2 */
    place(&a, "sub/rg/no-spec", NULL, NULL);
    raw(f, "HSET berth:{reads}:views sub/rg/with-spec %s", "{\"host\":\"h1\",\"generation\":2}");
    raw(f, "HSET berth:{reads}:metrics sub/rg/with-spec %s",
        "{\"host\":\"h1\",\"generation\":2,\"interval\":60,\"samples\":[]}");
    raw(f, "HSET berth:{reads}:evictions sub/rg/evicted %s",
        "{\"host\":\"h1\",\"by\":\"sub/rg/big\",\"time\":\"1700000000123\"}");
    raw(f, "HSET berth:{reads}:evictions sub/rg/corrupt %s", "{\"host\":\"h1\"}");
    async_side_t b;
    async_open(f, "reads", &b);

    enum { V_OK, V_NONE, M_OK, M_NONE, G_SPEC, G_NOSPEC, G_NONE, E_OK, E_NONE, E_BAD, N };
    result_t r[N];
    memset(r, 0, sizeof r);
    berth_error_t err;
    callbacks = 0;
    queueing = true;
    assert_int_equal(berth_store_async_view_read(b.store, "sub/rg/with-spec", read_cb, &r[V_OK],
                                                 &err), 0);
    assert_int_equal(berth_store_async_view_read(b.store, "sub/rg/none", read_cb, &r[V_NONE],
                                                 &err), 0);
    assert_int_equal(berth_store_async_metrics_read(b.store, "sub/rg/with-spec", read_cb,
                                                    &r[M_OK], &err), 0);
    assert_int_equal(berth_store_async_metrics_read(b.store, "sub/rg/no-spec", read_cb,
                                                    &r[M_NONE], &err), 0);
    assert_int_equal(berth_store_async_group_read(b.store, "sub/rg/with-spec", group_cb,
                                                  &r[G_SPEC], &err), 0);
    assert_int_equal(berth_store_async_group_read(b.store, "sub/rg/no-spec", group_cb,
                                                  &r[G_NOSPEC], &err), 0);
    assert_int_equal(berth_store_async_group_read(b.store, "sub/rg/none", group_cb, &r[G_NONE],
                                                  &err), 0);
    assert_int_equal(berth_store_async_eviction_read(b.store, "sub/rg/evicted", eviction_cb,
                                                     &r[E_OK], &err), 0);
    assert_int_equal(berth_store_async_eviction_read(b.store, "sub/rg/with-spec", eviction_cb,
                                                     &r[E_NONE], &err), 0);
    assert_int_equal(berth_store_async_eviction_read(b.store, "sub/rg/corrupt", eviction_cb,
                                                     &r[E_BAD], &err), 0);
    queueing = false;
    run_until(f->base, N, 10000);
    assert_int_equal(callbacks, N);

    /* Each outcome is the synchronous read's. */
    char *text = NULL;
    berth_error_t serr;
    int rc = berth_store_view_read(a.store, "sub/rg/with-spec", &text, &serr);
    same_outcome(&r[V_OK], rc, &serr);
    assert_string_equal(r[V_OK].text, text);
    assert_int_equal(r[V_OK].len, strlen(text));
    berth_free(text);
    rc = berth_store_view_read(a.store, "sub/rg/none", &text, &serr);
    assert_int_equal(rc, BERTH_ENOENT);
    same_outcome(&r[V_NONE], rc, &serr);
    assert_true(r[V_NONE].text_null);
    rc = berth_store_metrics_read(a.store, "sub/rg/with-spec", &text, &serr);
    same_outcome(&r[M_OK], rc, &serr);
    assert_string_equal(r[M_OK].text, text);
    berth_free(text);
    rc = berth_store_metrics_read(a.store, "sub/rg/no-spec", &text, &serr);
    assert_int_equal(rc, BERTH_ENOENT);
    same_outcome(&r[M_NONE], rc, &serr);
    assert_true(r[M_NONE].text_null);

    uint64_t gen = 0;
    rc = berth_store_group_read(a.store, "sub/rg/with-spec", &text, &gen, &serr);
    same_outcome(&r[G_SPEC], rc, &serr);
    assert_string_equal(r[G_SPEC].text, text);
    assert_string_equal(r[G_SPEC].text, "{\"doc\": 2}");
    assert_int_equal(r[G_SPEC].generation, 2);
    assert_int_equal(gen, 2);
    assert_string_equal(r[G_SPEC].host, host);
    berth_free(text);
    same_outcome(&r[G_NOSPEC], 0, NULL);
    assert_true(r[G_NOSPEC].text_null);
    assert_int_equal(r[G_NOSPEC].generation, 1);
    assert_string_equal(r[G_NOSPEC].host, "h1");
    rc = berth_store_group_read(a.store, "sub/rg/none", NULL, NULL, &serr);
    assert_int_equal(rc, BERTH_ENOENT);
    same_outcome(&r[G_NONE], rc, &serr);

    berth_eviction_t ev;
    rc = berth_store_eviction_read(a.store, "sub/rg/evicted", &ev, &serr);
    same_outcome(&r[E_OK], rc, &serr);
    assert_string_equal(r[E_OK].eviction.host, "h1");
    assert_string_equal(r[E_OK].eviction.by, "sub/rg/big");
    assert_int_equal(r[E_OK].eviction.time_ms, 1700000000123ull);
    rc = berth_store_eviction_read(a.store, "sub/rg/with-spec", &ev, &serr);
    assert_int_equal(rc, BERTH_ENOENT);
    same_outcome(&r[E_NONE], rc, &serr);
    rc = berth_store_eviction_read(a.store, "sub/rg/corrupt", &ev, &serr);
    assert_int_equal(rc, BERTH_EINVAL);
    assert_string_equal(serr.name, "CorruptRecord");
    same_outcome(&r[E_BAD], rc, &serr);

    /* A group record Redis holds that does not decode: BERTH_EIO, with the
     * decoder's detail, as the synchronous read says. */
    raw(f, "HSET berth:{reads}:groups sub/rg/garbled %b", "\x93\x01\x02", (size_t)3);
    result_t g = {0};
    int target = callbacks + 1;
    assert_int_equal(berth_store_async_group_read(b.store, "sub/rg/garbled", group_cb, &g, &err),
                     0);
    run_until(f->base, target, 10000);
    rc = berth_store_group_read(a.store, "sub/rg/garbled", NULL, NULL, &serr);
    assert_int_equal(rc, BERTH_EIO);
    same_outcome(&g, rc, &serr);
    /* An agent call to it fails the same way before anything is sent. */
    result_t c = {0};
    target = callbacks + 1;
    assert_int_equal(berth_store_async_container_logs(b.store, "sub/rg/garbled", "app", 0, false,
                                                      1000, call_cb, &c, &err), 0);
    run_until(f->base, target, 10000);
    char *out = NULL;
    rc = berth_store_container_logs(a.store, "sub/rg/garbled", "app", 0, false, 1000, &out,
                                    &serr);
    same_outcome(&c, rc, &serr);
    /* And a call for a group the cell does not hold: ResourceNotFound. */
    result_t missing = {0};
    target = callbacks + 1;
    assert_int_equal(berth_store_async_container_logs(b.store, "sub/rg/none", "app", 0, false,
                                                      1000, call_cb, &missing, &err), 0);
    run_until(f->base, target, 10000);
    rc = berth_store_container_logs(a.store, "sub/rg/none", "app", 0, false, 1000, &out, &serr);
    assert_int_equal(rc, BERTH_ENOENT);
    same_outcome(&missing, rc, &serr);
    raw(f, "HDEL berth:{reads}:groups sub/rg/garbled");

    for (int i = 0; i < N; i++)
        result_free(&r[i]);
    result_free(&g);
    result_free(&c);
    result_free(&missing);
    async_close(&b);
    side_close(&a);
}

static void test_many_reads(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "many", &a);
    put_host(&a, "h1");
    enum { KEYS = 100, N = 1000 };
    for (int i = 0; i < KEYS; i += 2)
        raw(f, "HSET berth:{many}:views k%d {\"n\":%d}", i, i);
    async_side_t b;
    async_open(f, "many", &b);
    static result_t r[N];
    memset(r, 0, sizeof r);
    callbacks = 0;
    berth_error_t err;
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i % KEYS);
        assert_int_equal(berth_store_async_view_read(b.store, key, read_cb, &r[i], &err), 0);
    }
    assert_int_equal(callbacks, 0);
    run_until(f->base, N, 30000);
    assert_int_equal(callbacks, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        if ((i % KEYS) % 2 == 0) {
            char want[32];
            snprintf(want, sizeof want, "{\"n\":%d}", i % KEYS);
            assert_int_equal(r[i].status, 0);
            assert_string_equal(r[i].text, want);
        } else {
            assert_int_equal(r[i].status, BERTH_ENOENT);
            assert_string_equal(r[i].err.name, "ResourceNotFound");
        }
        result_free(&r[i]);
    }
    async_close(&b);
    side_close(&a);
}

static const char *const FAST[] = {"--cores", "8", "--memory-mib", "16384", "--tick-ms", "50",
                                   "--heartbeat-ms", "200", "--ttl-ms", "2000", NULL};

static void test_real_agent(void **state)
{
    fixture_t *f = *state;
    test_sched_t sched;
    assert_int_equal(test_sched_open(&sched, f->redis->url, "agent"), 0);
    test_agent_t agent;
    assert_int_equal(test_agent_start(&agent, f->redis->url, "agent", "sim-1", "sim",
                                      "{\"images\": [\"busybox:latest\"]}", FAST), 0);
    if (!test_sched_wait_host(&sched, "sim-1", 10000)) {
        test_agent_dump(&agent, 20);
        fail_msg("the agent never registered");
    }
    const char *doc =
        "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
        " \"restartPolicy\": \"Always\", \"containers\": [{\"name\": \"app\","
        " \"properties\": {\"image\": \"busybox:latest\", \"resources\": {\"requests\":"
        " {\"cpu\": 0.5, \"memoryInGB\": 0.5}}}}]}}";
    assert_int_equal(test_sched_place(&sched, "sub/rg/calls", doc, NULL), 0);
    json_t *v = test_view_wait(&sched, "sub/rg/calls", test_pred_running, "app", 15000,
                               "the group running");
    if (v == NULL)
        test_agent_dump(&agent, 30);
    assert_non_null(v);
    json_decref(v);

    async_side_t b;
    async_open(f, "agent", &b);
    uint32_t t = (uint32_t)test_deadline_ms(5000);
    enum { LOGS, LOGS_TS, ECHO, EXIT4, NOPE, N };
    result_t r[N];
    memset(r, 0, sizeof r);
    const char *echo[] = {"echo", "hello", "there"}, *ex[] = {"exit", "4"};
    berth_error_t err;
    callbacks = 0;
    assert_int_equal(berth_store_async_container_logs(b.store, "sub/rg/calls", "app", 0, false,
                                                      t, call_cb, &r[LOGS], &err), 0);
    assert_int_equal(berth_store_async_container_logs(b.store, "sub/rg/calls", "app", 1, true,
                                                      t, call_cb, &r[LOGS_TS], &err), 0);
    assert_int_equal(berth_store_async_container_exec(b.store, "sub/rg/calls", "app", echo, 3, t,
                                                      call_cb, &r[ECHO], &err), 0);
    assert_int_equal(berth_store_async_container_exec(b.store, "sub/rg/calls", "app", ex, 2, t,
                                                      call_cb, &r[EXIT4], &err), 0);
    assert_int_equal(berth_store_async_container_logs(b.store, "sub/rg/calls", "nope", 0, false,
                                                      t, call_cb, &r[NOPE], &err), 0);
    run_until(f->base, N, 20000);
    if (callbacks != N)
        test_agent_dump(&agent, 30);
    assert_int_equal(callbacks, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].calls, 1);
    if (r[LOGS].status != 0)
        fail_msg("logs: %s: %s", r[LOGS].err.name, r[LOGS].err.message);
    assert_non_null(strstr(r[LOGS].text, "started\n"));
    assert_int_equal(r[LOGS].exit_code, 0);
    assert_int_equal(r[LOGS_TS].status, 0);
    assert_true(r[LOGS_TS].text[4] == '-' && strstr(r[LOGS_TS].text, "Z started\n") != NULL);
    assert_int_equal(r[ECHO].status, 0);
    assert_string_equal(r[ECHO].text, "echo hello there\n");
    assert_int_equal(r[ECHO].exit_code, 0);
    assert_int_equal(r[EXIT4].status, 0);
    assert_int_equal(r[EXIT4].exit_code, 4);
    /* The runtime's refusal travels back with its code, as it does to the
     * synchronous caller. */
    char *out = NULL;
    berth_error_t serr;
    int rc = berth_store_container_logs(sched.store, "sub/rg/calls", "nope", 0, false, t, &out,
                                        &serr);
    assert_int_equal(rc, BERTH_ENOENT);
    same_outcome(&r[NOPE], rc, &serr);
    assert_string_equal(r[NOPE].err.name, "ContainerNotFound");
    /* The blocking caller still works beside the announcements. */
    int code = -1;
    assert_int_equal(berth_store_container_exec(sched.store, "sub/rg/calls", "app", echo, 3, t,
                                                &out, &code, &serr), 0);
    assert_string_equal(out, "echo hello there\n");
    berth_free(out);
    for (int i = 0; i < N; i++)
        result_free(&r[i]);
    async_close(&b);
    int st = test_agent_stop(&agent);
    if (st != 0)
        test_agent_dump(&agent, 40);
    assert_int_equal(st, 0);
    unlink(agent.log_path);
    test_sched_close(&sched);
}

static void test_many_calls_answered(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "answered", &a);
    put_host(&a, "h1");
    place(&a, "g", NULL, NULL);
    berth_hostlink_t *l = link_open(f, "answered", "h1");
    async_side_t b;
    async_open(f, "answered", &b);
    enum { N = 60 };
    static result_t r[N];
    memset(r, 0, sizeof r);
    char words[N][3][16];
    const char *argv[N][3];
    callbacks = 0;
    uint32_t t = (uint32_t)test_deadline_ms(10000);
    berth_error_t err;
    for (int i = 0; i < N; i++) {
        snprintf(words[i][0], sizeof words[i][0], "run");
        snprintf(words[i][1], sizeof words[i][1], "call-%d", i);
        snprintf(words[i][2], sizeof words[i][2], "x");
        for (int w = 0; w < 3; w++)
            argv[i][w] = words[i][w];
        if (i % 3 == 2)
            assert_int_equal(berth_store_async_container_logs(b.store, "g", "app", (uint32_t)i,
                                                              i % 2 == 0, t, call_cb, &r[i],
                                                              &err), 0);
        else
            assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", argv[i],
                                                              (size_t)(1 + i % 3), t, call_cb,
                                                              &r[i], &err), 0);
    }
    run_serving(f->base, l, N, 20000);
    assert_int_equal(callbacks, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        if (r[i].status != 0)
            fail_msg("call %d: %s: %s", i, r[i].err.name, r[i].err.message);
        char want[128];
        if (i % 3 == 2) {
            snprintf(want, sizeof want, "logs of app tail %d%s\n", i, i % 2 == 0 ? " ts" : "");
            assert_int_equal(r[i].exit_code, 0);
        } else if (i % 3 == 0) {
            snprintf(want, sizeof want, "run\n");
            assert_int_equal(r[i].exit_code, 1);
        } else {
            snprintf(want, sizeof want, "run call-%d\n", i);
            assert_int_equal(r[i].exit_code, 2);
        }
        assert_string_equal(r[i].text, want);
        result_free(&r[i]);
    }

    /* An answer announced twice calls back once: the second LPOP finds
     * nothing and the call (already done) is no longer waiting. */
    result_t once = {0}, later = {0};
    int target = callbacks + 1;
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", argv[1], 2, t,
                                                      call_cb, &once, &err), 0);
    /* The call reaches the stream; the test answers it by hand and then
     * announces the same reply key again. */
    berth_call_t *call = NULL;
    double end = now_ms() + test_deadline_ms(10000);
    while (call == NULL && now_ms() < end) {
        turn(f->base, 10);
        if (berth_hostlink_call_next(l, &call, &err) != 1)
            call = NULL;
    }
    assert_non_null(call);
    assert_int_equal(berth_hostlink_call_reply(l, call, "one\n", 4, 7, NULL, &err), 0);
    raw(f, "PUBLISH berth:{answered}:replies %s", call->reply);
    raw(f, "PUBLISH berth:{answered}:replies %s", call->reply);
    berth_call_free(call);
    run_until(f->base, target, 10000);
    assert_int_equal(once.calls, 1);
    assert_int_equal(once.status, 0);
    assert_string_equal(once.text, "one\n");
    assert_int_equal(once.exit_code, 7);
    /* The store still answers the next call, and the first never again. */
    target = callbacks + 1;
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", argv[2], 3, t,
                                                      call_cb, &later, &err), 0);
    run_serving(f->base, l, target, 10000);
    assert_int_equal(later.calls, 1);
    assert_int_equal(later.status, 0);
    assert_int_equal(once.calls, 1);
    result_free(&once);
    result_free(&later);
    async_close(&b);
    berth_hostlink_close(l);
    side_close(&a);
}

static void test_unanswered(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "quiet", &a);
    put_host(&a, "dead");
    place(&a, "g", NULL, NULL);
    /* "live" takes the next group; its agent's side is the test's. */
    berth_error_t err;
    assert_int_equal(berth_store_host_set_state(a.store, "dead", BERTH_HOST_CORDONED, &err), 0);
    put_host(&a, "live");
    char host[BERTH_NAME_MAX + 1];
    place(&a, "g-live", NULL, host);
    assert_string_equal(host, "live");
    berth_hostlink_t *l = link_open(f, "quiet", "live");
    raw(f, "HSET berth:{quiet}:views g {\"host\":\"dead\"}");
    async_side_t b;
    async_open(f, "quiet", &b);
    enum { N = 10 };
    result_t r[N], view = {0}, answered = {0};
    memset(r, 0, sizeof r);
    uint32_t t = (uint32_t)test_deadline_ms(3000);
    const char *ls[] = {"ls"};
    callbacks = 0;
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0)
            assert_int_equal(berth_store_async_container_logs(b.store, "g", "app", 0, false, t,
                                                              call_cb, &r[i], &err), 0);
        else
            assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1, t,
                                                              call_cb, &r[i], &err), 0);
    }
    /* The calls go out (no agent will ever read them) ... */
    double end = now_ms() + test_deadline_ms(10000);
    while (xlen(f, "berth:{quiet}:calls:dead") < N && now_ms() < end)
        turn(f->base, 10);
    assert_int_equal(xlen(f, "berth:{quiet}:calls:dead"), N);
    assert_int_equal(callbacks, 0);
    /* ... and a read and a call to a live host queued after them are
     * answered while they wait. */
    assert_int_equal(berth_store_async_view_read(b.store, "g", read_cb, &view, &err), 0);
    assert_int_equal(berth_store_async_container_exec(b.store, "g-live", "app", ls, 1, t,
                                                      call_cb, &answered, &err), 0);
    run_serving(f->base, l, N + 2, 20000);
    assert_int_equal(callbacks, N + 2);
    assert_int_equal(view.calls, 1);
    assert_int_equal(view.status, 0);
    assert_true(view.seq <= 2);
    assert_int_equal(answered.calls, 1);
    assert_int_equal(answered.status, 0);
    assert_string_equal(answered.text, "ls\n");
    assert_true(answered.seq <= 2);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, BERTH_EIO);
        assert_string_equal(r[i].err.name, "AgentUnavailable");
        char want[128];
        snprintf(want, sizeof want, "the agent of host dead did not answer within %u ms", t);
        assert_string_equal(r[i].err.message, want);
        assert_true(r[i].seq > 2);
        result_free(&r[i]);
    }
    result_free(&view);
    result_free(&answered);
    async_close(&b);
    berth_hostlink_close(l);
    side_close(&a);
}

/* The reply key the only call on `stream` names (after it is there). */
static void wait_call(fixture_t *f, const char *stream, char *reply, size_t cap)
{
    double end = now_ms() + test_deadline_ms(10000);
    while (xlen(f, stream) < 1 && now_ms() < end)
        turn(f->base, 10);
    redisReply *x = ask(f, "XRANGE %s - +", stream);
    assert_int_equal(x->elements, 1);
    const redisReply *fields = x->element[0]->element[1];
    reply[0] = '\0';
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, "reply") == 0)
            snprintf(reply, cap, "%s", fields->element[i + 1]->str);
    freeReplyObject(x);
    assert_true(reply[0] != '\0');
    raw(f, "DEL %s", stream);
}

static void test_late_answers(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "late", &a);
    put_host(&a, "h1");
    place(&a, "g", NULL, NULL);
    async_side_t b;
    async_open(f, "late", &b);
    uint32_t t = (uint32_t)test_deadline_ms(1500);
    const char *ls[] = {"ls"};
    berth_error_t err;
    char reply[256];

    /* An answer written without its announcement (lost): the last look at
     * the deadline reads it. */
    result_t silent = {0};
    callbacks = 0;
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1, t, call_cb,
                                                      &silent, &err), 0);
    wait_call(f, "berth:{late}:calls:h1", reply, sizeof reply);
    raw(f, "RPUSH %s %s", reply, "{\"ok\":true,\"exitCode\":3}\nquiet\n");
    run_until(f->base, 1, 10000);
    assert_int_equal(silent.calls, 1);
    if (silent.status != 0)
        fail_msg("unannounced answer: %s: %s", silent.err.name, silent.err.message);
    assert_string_equal(silent.text, "quiet\n");
    assert_int_equal(silent.exit_code, 3);

    /* An answer announced just before the deadline. */
    result_t close_call = {0};
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1, t, call_cb,
                                                      &close_call, &err), 0);
    double sent = now_ms();
    wait_call(f, "berth:{late}:calls:h1", reply, sizeof reply);
    while (now_ms() < sent + t - 300 && callbacks < 2)
        turn(f->base, 10);
    assert_int_equal(callbacks, 1);
    raw(f, "RPUSH %s %s", reply, "{\"ok\":true,\"exitCode\":0}\njust in time\n");
    raw(f, "PUBLISH berth:{late}:replies %s", reply);
    run_until(f->base, 2, 10000);
    assert_int_equal(close_call.calls, 1);
    if (close_call.status != 0)
        fail_msg("late answer: %s: %s", close_call.err.name, close_call.err.message);
    assert_string_equal(close_call.text, "just in time\n");

    /* The agent's failure comes back as the agent reported it. */
    result_t failed = {0};
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1, t, call_cb,
                                                      &failed, &err), 0);
    wait_call(f, "berth:{late}:calls:h1", reply, sizeof reply);
    raw(f, "RPUSH %s %s", reply,
        "{\"ok\":false,\"code\":-3,\"name\":\"ContainerNotFound\",\"message\":\"no app\","
        "\"target\":\"container\"}\n");
    raw(f, "PUBLISH berth:{late}:replies %s", reply);
    run_until(f->base, 3, 10000);
    assert_int_equal(failed.calls, 1);
    assert_int_equal(failed.status, BERTH_ENOENT);
    assert_string_equal(failed.err.name, "ContainerNotFound");
    assert_string_equal(failed.err.message, "no app");
    assert_string_equal(failed.err.target, "container");
    result_free(&silent);
    result_free(&close_call);
    result_free(&failed);
    async_close(&b);
    side_close(&a);
}

static void test_redis_holds_writes(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "held", &a);
    put_host(&a, "h1");
    place(&a, "g", NULL, NULL);
    raw(f, "HSET berth:{held}:views g {\"v\":1}");
    async_side_t b;
    async_open_timeout(f, "held", 300, &b);
    berth_error_t err;
    result_t warm = {0};
    callbacks = 0;
    assert_int_equal(berth_store_async_view_read(b.store, "g", read_cb, &warm, &err), 0);
    run_until(f->base, 1, 10000);
    assert_int_equal(warm.status, 0);
    /* Redis holds writes: the call's XADD gets no answer, and the step's
     * timeout (the store's, 300 ms; the call's own is a minute) drops the
     * connection. */
    raw(f, "CLIENT PAUSE %d WRITE", test_deadline_ms(20000));
    result_t call = {0};
    const char *ls[] = {"ls"};
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1, 60000, call_cb,
                                                      &call, &err), 0);
    run_until(f->base, 2, 10000);
    assert_int_equal(call.calls, 1);
    assert_int_equal(call.status, BERTH_EIO);
    assert_string_equal(call.err.name, "RedisUnavailable");
    assert_non_null(strstr(call.err.message, "calling the agent"));
    /* The next call reconnects; reads are answered while writes are held. */
    result_t next = {0};
    assert_int_equal(berth_store_async_view_read(b.store, "g", read_cb, &next, &err), 0);
    run_until(f->base, 3, 10000);
    assert_int_equal(next.calls, 1);
    assert_int_equal(next.status, 0);
    assert_string_equal(next.text, "{\"v\":1}");
    raw(f, "CLIENT UNPAUSE");
    result_free(&warm);
    result_free(&call);
    result_free(&next);
    async_close(&b);
    side_close(&a);
}

static void test_redis_killed(void **state)
{
    fixture_t *f = *state;
    struct sigaction sa;
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    assert_true(sa.sa_handler == SIG_DFL);
    side_t a;
    side_open(f, "kill", &a);
    put_host(&a, "h1");
    place(&a, "g", NULL, NULL);
    raw(f, "HSET berth:{kill}:views g {\"v\":1}");
    async_side_t b;
    async_open(f, "kill", &b);
    berth_error_t err;
    enum { WAITING = 4, N = WAITING + 1 };
    result_t r[N];
    memset(r, 0, sizeof r);
    const char *ls[] = {"ls"};
    uint32_t t = (uint32_t)test_deadline_ms(60000);
    callbacks = 0;
    for (int i = 0; i < WAITING; i++)
        assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1, t, call_cb,
                                                          &r[i], &err), 0);
    double end = now_ms() + test_deadline_ms(10000);
    while (xlen(f, "berth:{kill}:calls:h1") < WAITING && now_ms() < end)
        turn(f->base, 10);
    assert_int_equal(xlen(f, "berth:{kill}:calls:h1"), WAITING);
    /* One more, whose XADD Redis holds when it dies. */
    raw(f, "CLIENT PAUSE %d WRITE", test_deadline_ms(20000));
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1, t, call_cb,
                                                      &r[WAITING], &err), 0);
    for (int i = 0; i < 20; i++)
        turn(f->base, 10);
    assert_int_equal(callbacks, 0);
    redisFree(f->raw);
    f->raw = NULL;
    assert_int_equal(berth_test_redis_kill(f->redis), 0);
    run_until(f->base, N, 10000);
    assert_int_equal(callbacks, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, BERTH_EIO);
        assert_string_equal(r[i].err.name, "RedisUnavailable");
    }
    assert_non_null(strstr(r[WAITING].err.message, "calling the agent"));
    assert_non_null(strstr(r[0].err.message, "waiting for the agent"));
    /* While Redis is down a read still queues and fails through its callback. */
    result_t down = {0};
    assert_int_equal(berth_store_async_view_read(b.store, "g", read_cb, &down, &err), 0);
    run_until(f->base, N + 1, 10000);
    assert_int_equal(down.calls, 1);
    assert_int_equal(down.status, BERTH_EIO);
    assert_string_equal(down.err.name, "RedisUnavailable");
    /* Back up: the next calls reconnect (and subscribe again). */
    assert_int_equal(berth_test_redis_restart(f->redis), 0);
    f->raw = berth_test_redis_connect(f->redis);
    assert_non_null(f->raw);
    raw(f, "DEL berth:{kill}:calls:h1");
    berth_hostlink_t *l = link_open(f, "kill", "h1");
    result_t view = {0}, call = {0};
    assert_int_equal(berth_store_async_view_read(b.store, "g", read_cb, &view, &err), 0);
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1,
                                                      (uint32_t)test_deadline_ms(10000),
                                                      call_cb, &call, &err), 0);
    run_serving(f->base, l, N + 3, 20000);
    assert_int_equal(view.calls, 1);
    if (view.status != 0)
        fail_msg("read after the restart: %s: %s", view.err.name, view.err.message);
    assert_string_equal(view.text, "{\"v\":1}");
    assert_int_equal(call.calls, 1);
    if (call.status != 0)
        fail_msg("call after the restart: %s: %s", call.err.name, call.err.message);
    assert_string_equal(call.text, "ls\n");
    for (int i = 0; i < N; i++)
        result_free(&r[i]);
    result_free(&down);
    result_free(&view);
    result_free(&call);
    berth_hostlink_close(l);
    async_close(&b);
    side_close(&a);
}

/* A callback that closes the store.  The store is gone once the close
 * returns: nothing may use it after that. */
typedef struct closer {
    berth_store_async_t *store;
    result_t r;
} closer_t;

static void close_inside(int status, const char *text, size_t len, const berth_error_t *err,
                         void *data)
{
    closer_t *c = data;
    read_cb(status, text, len, err, &c->r);
    berth_store_async_close(c->store);
}

/* The callback of a call the close completes: the store refuses new calls. */
static berth_store_async_t *closing_store;

static void closed_call(int status, const char *output, size_t len, int exit_code,
                        const berth_error_t *err, void *data)
{
    call_cb(status, output, len, exit_code, err, data);
    berth_error_t e;
    assert_int_equal(berth_store_async_view_read(closing_store, "g", never_read, NULL, &e),
                     BERTH_EIO);
    assert_string_equal(e.name, "Closed");
}

static void test_close_pending(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "close", &a);
    put_host(&a, "h1");
    place(&a, "g", NULL, NULL);
    berth_error_t err;
    const char *ls[] = {"ls"};
    uint32_t t = (uint32_t)test_deadline_ms(60000);

    /* Closed before the loop ran: every callback once, "Closed". */
    async_side_t b;
    async_open(f, "close", &b);
    enum { N = 6 };
    result_t r[N];
    memset(r, 0, sizeof r);
    callbacks = 0;
    assert_int_equal(berth_store_async_view_read(b.store, "g", read_cb, &r[0], &err), 0);
    assert_int_equal(berth_store_async_group_read(b.store, "g", group_cb, &r[1], &err), 0);
    assert_int_equal(berth_store_async_eviction_read(b.store, "g", eviction_cb, &r[2], &err), 0);
    assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1, t, call_cb,
                                                      &r[3], &err), 0);
    assert_int_equal(berth_store_async_images_list(b.store, images_cb, &r[4], &err), 0);
    assert_int_equal(berth_store_async_images_sync(b.store, read_cb, &r[5], &err), 0);
    async_close(&b);
    assert_int_equal(callbacks, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, BERTH_EIO);
        assert_string_equal(r[i].err.name, "Closed");
        result_free(&r[i]);
    }

    /* Closed with calls waiting for their agents and reads in flight. */
    async_open(f, "close", &b);
    result_t w[N];
    memset(w, 0, sizeof w);
    callbacks = 0;
    for (int i = 0; i < N; i++)
        assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1, t, call_cb,
                                                          &w[i], &err), 0);
    double end = now_ms() + test_deadline_ms(10000);
    while (xlen(f, "berth:{close}:calls:h1") < N && now_ms() < end)
        turn(f->base, 10);
    assert_int_equal(xlen(f, "berth:{close}:calls:h1"), N);
    result_t reads[3];
    memset(reads, 0, sizeof reads);
    for (int i = 0; i < 3; i++)
        assert_int_equal(berth_store_async_view_read(b.store, "g", read_cb, &reads[i], &err), 0);
    turn(f->base, 1);
    async_close(&b);
    assert_int_equal(callbacks, N + 3);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].status, BERTH_EIO);
        assert_string_equal(w[i].err.name, "Closed");
        result_free(&w[i]);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(reads[i].calls, 1);
        assert_true(reads[i].status == BERTH_ENOENT ||
                    (reads[i].status == BERTH_EIO &&
                     strcmp(reads[i].err.name, "Closed") == 0));
        result_free(&reads[i]);
    }
    raw(f, "DEL berth:{close}:calls:h1");

    /* Closed from inside a callback, with calls waiting: the others are
     * called once each, "Closed", before the close returns, and no call
     * can be queued from them. */
    async_open(f, "close", &b);
    memset(w, 0, sizeof w);
    callbacks = 0;
    for (int i = 0; i < N; i++)
        assert_int_equal(berth_store_async_container_exec(b.store, "g", "app", ls, 1, t,
                                                          closed_call, &w[i], &err), 0);
    end = now_ms() + test_deadline_ms(10000);
    while (xlen(f, "berth:{close}:calls:h1") < N && now_ms() < end)
        turn(f->base, 10);
    closer_t c = {.store = b.store};
    closing_store = b.store;
    assert_int_equal(berth_store_async_view_read(b.store, "g", close_inside, &c, &err), 0);
    run_until(f->base, N + 1, 10000);
    assert_int_equal(callbacks, N + 1);
    assert_int_equal(c.r.calls, 1);
    assert_int_equal(c.r.seq, 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].status, BERTH_EIO);
        assert_string_equal(w[i].err.name, "Closed");
        result_free(&w[i]);
    }
    /* Nothing runs after the close. */
    run_until(f->base, N + 2, 200);
    assert_int_equal(callbacks, N + 1);
    result_free(&c.r);
    berth_engine_free(b.engine);
    side_close(&a);
}

static void test_images(void **state)
{
    fixture_t *f = *state;
    side_t a;
    side_open(f, "images", &a);
    enum { HOSTS = 520 };
    char name[32];
    for (int i = 0; i < HOSTS; i++) {
        snprintf(name, sizeof name, "h%03d", i);
        put_host(&a, name);
    }
    /* Host i holds app-(i % 7) and busybox; h000 also odd members that
     * are no image references; h001 holds nothing. */
    for (int i = 0; i < HOSTS; i++)
        if (i != 1)
            raw(f, "SADD berth:{images}:images:h%03d busybox:latest registry.local/app-%d:1", i,
                i % 7);
    raw(f, "SADD berth:{images}:images:h000 %b %s", "", (size_t)0, "docker.io/library/redis");
    raw(f, "SADD berth:{images}:images:ghost other:1"); /* no such host: not read */
    async_side_t b;
    async_open(f, "images", &b);
    result_t list = {0}, sync = {0};
    berth_error_t err;
    callbacks = 0;
    assert_int_equal(berth_store_async_images_list(b.store, images_cb, &list, &err), 0);
    assert_int_equal(berth_store_async_images_sync(b.store, read_cb, &sync, &err), 0);
    run_until(f->base, 2, 30000);
    assert_int_equal(callbacks, 2);
    assert_int_equal(list.status, 0);
    assert_int_equal(list.n, 9);
    assert_string_equal(list.text,
                        "busybox:latest docker.io/library/redis registry.local/app-0:1 "
                        "registry.local/app-1:1 registry.local/app-2:1 registry.local/app-3:1 "
                        "registry.local/app-4:1 registry.local/app-5:1 registry.local/app-6:1");
    assert_int_equal(sync.calls, 1);
    assert_int_equal(sync.status, 0);
    assert_true(sync.text_null);
    /* The engine now holds what berth_store_images_sync() loads. */
    assert_int_equal(berth_store_images_sync(a.store, &err), 0);
    for (int i = 0; i < HOSTS; i++) {
        snprintf(name, sizeof name, "h%03d", i);
        int n = berth_engine_host_images_count(b.engine, name);
        assert_int_equal(n, berth_engine_host_images_count(a.engine, name));
        assert_int_equal(n, i == 1 ? 0 : i == 0 ? 3 : 2);
    }
    /* A set of the wrong type fails both alike. */
    raw(f, "SET berth:{images}:images:h300 notaset");
    result_t bad = {0}, badlist = {0};
    assert_int_equal(berth_store_async_images_sync(b.store, read_cb, &bad, &err), 0);
    assert_int_equal(berth_store_async_images_list(b.store, images_cb, &badlist, &err), 0);
    run_until(f->base, 4, 30000);
    berth_error_t serr;
    int rc = berth_store_images_sync(a.store, &serr);
    assert_int_equal(rc, BERTH_EIO);
    same_outcome(&bad, rc, &serr);
    same_outcome(&badlist, rc, &serr);
    /* An engine without hosts lists nothing. */
    async_side_t empty;
    async_open(f, "noimages", &empty);
    result_t none = {0};
    assert_int_equal(berth_store_async_images_list(empty.store, images_cb, &none, &err), 0);
    run_until(f->base, 5, 10000);
    assert_int_equal(none.calls, 1);
    assert_int_equal(none.status, 0);
    assert_int_equal(none.n, 0);
    result_free(&list);
    result_free(&sync);
    result_free(&bad);
    result_free(&badlist);
    result_free(&none);
    async_close(&empty);
    async_close(&b);
    side_close(&a);
}

/* ---- interactive sessions --------------------------------------------------------------- */

/* A session's outputs and end, as its callback saw them. */
typedef struct session_seen {
    char out[65536];
    size_t len;
    int chunks;
    int ends;
    int status, exit_code;
    berth_error_t err;
} session_seen_t;

static void session_cb(berth_store_async_session_t *sess, bool ended, const char *bytes,
                       size_t len, int status, int exit_code, const berth_error_t *err,
                       void *data)
{
    (void)sess;
    session_seen_t *r = data;
    assert_false(queueing);
    callbacks++;
    if (!ended) {
        assert_true(r->len + len < sizeof r->out);
        memcpy(r->out + r->len, bytes, len);
        r->len += len;
        r->chunks++;
        return;
    }
    r->ends++;
    r->status = status;
    r->exit_code = exit_code;
    if (err != NULL)
        r->err = *err;
}

/* session_cb(), then the session closed from inside its callback at its
 * end, as a daemon does. */
static void closing_session_cb(berth_store_async_session_t *sess, bool ended, const char *bytes,
                               size_t len, int status, int exit_code, const berth_error_t *err,
                               void *data)
{
    session_cb(sess, ended, bytes, len, status, exit_code, err, data);
    if (ended)
        berth_store_async_session_close(sess);
}

/* Turns the loop until the link's host has a call (bounded). */
static berth_call_t *next_call(fixture_t *f, berth_hostlink_t *l)
{
    berth_call_t *call = NULL;
    berth_error_t err;
    double end = now_ms() + test_deadline_ms(5000);
    while (call == NULL && now_ms() < end) {
        turn(f->base, 10);
        if (berth_hostlink_call_next(l, &call, &err) < 0)
            fail_msg("calls: %s", err.message);
    }
    assert_non_null(call);
    return call;
}

/* Turns the loop until the agent's end hears something (bounded). */
static void next_msg(fixture_t *f, berth_session_link_t *sl, berth_session_msg_t *m)
{
    berth_error_t err;
    double end = now_ms() + test_deadline_ms(5000);
    int rc = 0;
    while (rc == 0 && now_ms() < end) {
        turn(f->base, 10);
        rc = berth_session_link_next(sl, m, &err);
        if (rc < 0)
            fail_msg("session input: %s", err.message);
    }
    assert_int_equal(rc, 1);
}

static void test_sessions(void **state)
{
    fixture_t *f = *state;
    side_t s;
    side_open(f, "sess", &s);
    put_host(&s, "h1");
    place(&s, "sub/rg/a", NULL, NULL);
    async_side_t a;
    async_open(f, "sess", &a);
    berth_hostlink_t *l = link_open(f, "sess", "h1");
    berth_error_t err;
    const char *sh[] = {"sh"};
    berth_store_async_session_t *sess = NULL;

    /* Refused at once, never calling back. */
    callbacks = 0;
    assert_int_equal(berth_store_async_session_open(a.store, "sub/rg/a", "app", sh, 0, true, 24,
                                                    80, 5000, session_cb, NULL, &sess, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_session_open(a.store, "", "app", sh, 1, true, 24, 80,
                                                    5000, session_cb, NULL, &sess, &err),
                     BERTH_EINVAL);
    assert_int_equal(berth_store_async_session_open(a.store, "sub/rg/a", "app", sh, 1, true, 24,
                                                    80, 0, session_cb, NULL, &sess, &err),
                     BERTH_EINVAL);
    assert_null(sess);

    /* Input said before the agent heard of the session arrives in order;
     * output larger than one pop; the exit code. */
    session_seen_t r1 = {0};
    queueing = true;
    assert_int_equal(berth_store_async_session_open(a.store, "sub/rg/a", "app", sh, 1, true, 24,
                                                    80, 5000, session_cb, &r1, &sess, &err),
                     0);
    assert_int_equal(berth_store_async_session_input(sess, "one", 3, &err), 0);
    assert_int_equal(berth_store_async_session_resize(sess, 30, 100, &err), 0);
    assert_int_equal(berth_store_async_session_input(sess, "two", 3, &err), 0);
    assert_int_equal(berth_store_async_session_input(sess, NULL, 0, &err), 0);
    queueing = false;
    berth_call_t *call = next_call(f, l);
    assert_int_equal(call->op, BERTH_CALL_SESSION);
    assert_string_equal(call->key, "sub/rg/a");
    assert_string_equal(call->container, "app");
    assert_true(call->tty);
    assert_int_equal(call->rows, 24);
    assert_int_equal(call->cols, 80);
    assert_int_equal(call->argc, 1);
    assert_string_equal(call->argv[0], "sh");
    berth_session_link_t *sl = NULL;
    assert_int_equal(berth_hostlink_session_open(l, call, &sl, &err), 0);
    assert_int_equal(berth_session_link_alive(sl, &err), 0);
    berth_session_msg_t m;
    next_msg(f, sl, &m);
    assert_int_equal(m.kind, BERTH_SESSION_INPUT);
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.bytes, "one", 3);
    next_msg(f, sl, &m);
    assert_int_equal(m.kind, BERTH_SESSION_RESIZE);
    assert_int_equal(m.rows, 30);
    assert_int_equal(m.cols, 100);
    next_msg(f, sl, &m);
    assert_int_equal(m.kind, BERTH_SESSION_INPUT);
    assert_memory_equal(m.bytes, "two", 3);
    next_msg(f, sl, &m);
    assert_int_equal(m.kind, BERTH_SESSION_EOF);
    char expect[8192] = "";
    size_t elen = 0;
    for (int i = 0; i < 200; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %d\n", i);
        size_t backlog = 0;
        assert_int_equal(berth_session_link_output(sl, line, (size_t)n, &backlog, &err), 0);
        memcpy(expect + elen, line, (size_t)n);
        elen += (size_t)n;
    }
    assert_int_equal(berth_session_link_end(sl, 7, NULL, &err), 0);
    berth_session_link_close(sl);
    berth_call_free(call);
    double end = now_ms() + test_deadline_ms(5000);
    while (r1.ends == 0 && now_ms() < end)
        turn(f->base, 20);
    assert_int_equal(r1.ends, 1);
    assert_int_equal(r1.status, 0);
    assert_int_equal(r1.exit_code, 7);
    assert_int_equal(r1.len, elen);
    assert_memory_equal(r1.out, expect, elen);
    /* Ended: input is refused, the callback is not called again. */
    assert_int_equal(berth_store_async_session_input(sess, "x", 1, &err), BERTH_EINVAL);
    berth_store_async_session_close(sess);

    /* The caller closes: the agent's end hears the end; no callback. */
    session_seen_t r2 = {0};
    assert_int_equal(berth_store_async_session_open(a.store, "sub/rg/a", "app", sh, 1, false, 0,
                                                    0, 5000, session_cb, &r2, &sess, &err),
                     0);
    call = next_call(f, l);
    assert_false(call->tty);
    assert_int_equal(berth_hostlink_session_open(l, call, &sl, &err), 0);
    assert_int_equal(berth_session_link_alive(sl, &err), 0);
    assert_int_equal(berth_session_link_output(sl, "hi", 2, NULL, &err), 0);
    end = now_ms() + test_deadline_ms(5000);
    while (r2.len == 0 && now_ms() < end)
        turn(f->base, 20);
    assert_int_equal(r2.len, 2);
    berth_store_async_session_close(sess);
    next_msg(f, sl, &m);
    assert_int_equal(m.kind, BERTH_SESSION_END);
    assert_int_equal(berth_session_link_output(sl, "late", 4, NULL, &err), 0);
    assert_int_equal(berth_session_link_end(sl, 0, NULL, &err), 0);
    berth_session_link_close(sl);
    berth_call_free(call);
    for (int i = 0; i < 10; i++)
        turn(f->base, 20);
    assert_int_equal(r2.ends, 0);
    assert_int_equal(r2.len, 2);

    /* The agent's failure ends the session with its error. */
    session_seen_t r3 = {0};
    assert_int_equal(berth_store_async_session_open(a.store, "sub/rg/a", "app", sh, 1, true, 24,
                                                    80, 5000, session_cb, &r3, &sess, &err),
                     0);
    call = next_call(f, l);
    assert_int_equal(berth_hostlink_session_open(l, call, &sl, &err), 0);
    berth_error_t no;
    berth_error_set(&no, BERTH_EINVAL, "ContainerNotRunning", "container",
                    "container 'app' is not running");
    assert_int_equal(berth_session_link_end(sl, -1, &no, &err), 0);
    berth_session_link_close(sl);
    berth_call_free(call);
    end = now_ms() + test_deadline_ms(5000);
    while (r3.ends == 0 && now_ms() < end)
        turn(f->base, 20);
    assert_int_equal(r3.ends, 1);
    assert_int_equal(r3.status, BERTH_EINVAL);
    assert_string_equal(r3.err.name, "ContainerNotRunning");
    berth_store_async_session_close(sess);

    /* No agent starts it: AgentUnavailable once start_ms passed. */
    session_seen_t r4 = {0};
    assert_int_equal(berth_store_async_session_open(a.store, "sub/rg/a", "app", sh, 1, true, 24,
                                                    80, 300, session_cb, &r4, &sess, &err),
                     0);
    end = now_ms() + test_deadline_ms(5000);
    while (r4.ends == 0 && now_ms() < end)
        turn(f->base, 50);
    assert_int_equal(r4.ends, 1);
    assert_int_equal(r4.status, BERTH_EIO);
    assert_string_equal(r4.err.name, "AgentUnavailable");
    berth_store_async_session_close(sess);

    /* A group that is not in the cell. */
    session_seen_t r5 = {0};
    assert_int_equal(berth_store_async_session_open(a.store, "sub/rg/none", "app", sh, 1, true,
                                                    24, 80, 5000, session_cb, &r5, &sess, &err),
                     0);
    end = now_ms() + test_deadline_ms(5000);
    while (r5.ends == 0 && now_ms() < end)
        turn(f->base, 20);
    assert_int_equal(r5.ends, 1);
    assert_int_equal(r5.status, BERTH_ENOENT);
    berth_store_async_session_close(sess);

    /* Closing the store with sessions open: each ends ("Closed") once; the
     * user's close after that frees one, and two that close themselves
     * from their callback (as a daemon does) are freed too. */
    session_seen_t r6 = {0}, r7 = {0}, r8 = {0};
    assert_int_equal(berth_store_async_session_open(a.store, "sub/rg/a", "app", sh, 1, true, 24,
                                                    80, 5000, session_cb, &r6, &sess, &err),
                     0);
    berth_store_async_session_t *s7 = NULL, *s8 = NULL;
    assert_int_equal(berth_store_async_session_open(a.store, "sub/rg/a", "app", sh, 1, true, 24,
                                                    80, 5000, closing_session_cb, &r7, &s7,
                                                    &err),
                     0);
    assert_int_equal(berth_store_async_session_open(a.store, "sub/rg/a", "app", sh, 1, true, 24,
                                                    80, 5000, closing_session_cb, &r8, &s8,
                                                    &err),
                     0);
    for (int i = 0; i < 3; i++)
        berth_call_free(next_call(f, l));
    async_close(&a);
    assert_int_equal(r6.ends, 1);
    assert_string_equal(r6.err.name, "Closed");
    assert_int_equal(r7.ends, 1);
    assert_int_equal(r8.ends, 1);
    berth_store_async_session_close(sess);
    berth_hostlink_close(l);
    side_close(&s);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm((unsigned)test_deadline_ms(TEST_SECONDS * 1000) / 1000u);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refused_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_calls_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unanswered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_holds_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
