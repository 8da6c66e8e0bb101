/*
 * test_berthd_worker.c: berthd's worker thread (tools/berthd/worker.c),
 * captured replies (tools/berthd/server.c) and the library's
 * berth_store_pool_claim_with(), against a real redis-server
 * (tests/redis-harness.c).  worker.c, server.c, pools.c and ngroups.c are
 * compiled in; the API (bd_api_*) is stood in for here, routing test paths
 * to the worker.  Requests go through a real evhttp server on loopback
 * and an evhttp client on the same loop.
 *
 * Covers: jobs run in order on one thread that is not the loop's, and
 * their done callbacks in order on the loop's; a job blocking for 2 s
 * leaves the loop running a 10 ms timer meanwhile; freeing with jobs queued
 * completes each exactly once ("Closed" for those that never ran, which
 * never run), also when freed from a done callback; the queue's bound
 * (BERTH_EBUSY, nothing queued, room again once jobs complete); captured
 * replies forwarded with their status, body, headers and route (and a
 * handler that sends nothing answered 500; a refusal naming a store key
 * shown with the resource's name), the request deep-copied, the
 * NGroup and standby-pool routes answered through the worker; a pool claim
 * on the worker writing its effects with the claim, refills queued after
 * it, guards that refuse (the asynchronous store's errors) and bad effects
 * changing nothing, no match writing nothing; a worker whose Redis is
 * away failing jobs with
 * BERTH_EIO and opening its store once Redis is back.
 *
 * Every wait is bounded (test-time.h); nothing asserts speed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <hiredis/hiredis.h>

#include "agent-harness.h"
#include "berthd-harness.h"
#include "redis-harness.h"
#include "profiles.h"
#include "worker.h"

#define WAIT_MS 15000

static pthread_t main_thread;
static int cell_counter;

static bool on_main(void)
{
    return pthread_equal(pthread_self(), main_thread) != 0;
}

/* ---- the loop ------------------------------------------------------------------------- */

typedef bool (*pred_fn)(void *data);

static void expire_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

/* Runs the loop until pred(data) holds or `ms` (scaled) pass; returns
 * pred(data). */
static bool run_until(struct event_base *base, pred_fn pred, void *data, int ms)
{
    bool expired = false;
    ms = test_deadline_ms(ms);
    struct event *t = evtimer_new(base, expire_cb, &expired);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(t, &tv);
    while (!pred(data) && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return pred(data);
}

static bool int_positive(void *data)
{
    return atomic_load((atomic_int *)data) > 0;
}

/* ---- the API, stood in for ------------------------------------------------------------ */

struct bd_api {
    bd_worker_t *w;
};

static atomic_int handler_on_worker;    /* 1 each time a handler ran off the loop */

static void echo_handler(bd_worker_ctx_t *ctx, const bd_request_t *req, bd_reply_t *reply,
                         char **seg, int n)
{
    (void)ctx;
    if (!on_main())
        atomic_fetch_add(&handler_on_worker, 1);
    bd_reply_route(reply, "Test_Echo");
    static const char *const headers[] = {"X-Test", "yes", "Retry-After", "7", NULL};
    bd_reply_send(reply, 201,
                  json_pack("{s:s, s:s, s:s, s:I, s:i, s:s, s:s?, s:b}", "path", req->path,
                            "query", req->query, "body", req->body, "bodyLen",
                            (json_int_t)req->body_len, "segments", n, "last", seg[n - 1],
                            "clientRequestId", req->client_request_id, "anySubscription",
                            req->any_subscription),
                  headers);
}

static void silent_handler(bd_worker_ctx_t *ctx, const bd_request_t *req, bd_reply_t *reply,
                           char **seg, int n)
{
    (void)ctx, (void)req, (void)reply, (void)seg, (void)n;
}

static void text_handler(bd_worker_ctx_t *ctx, const bd_request_t *req, bd_reply_t *reply,
                         char **seg, int n)
{
    (void)ctx, (void)req, (void)seg, (void)n;
    bd_reply_route(reply, "Test_Text");
    bd_reply_send_text(reply, 202, "hello", 5, "text/x-test");
    /* A second send is ignored: the first answer stands. */
    bd_reply_send_text(reply, 500, "again", 5, NULL);
}

/* A refusal naming a store key, as the core's messages do. */
static void keyed_handler(bd_worker_ctx_t *ctx, const bd_request_t *req, bd_reply_t *reply,
                          char **seg, int n)
{
    (void)ctx, (void)req, (void)seg, (void)n;
    bd_reply_error(reply, 409, "Conflict", "key", "NGroup 'sub1/rg/ng1' kept changing");
}

void bd_api_handle(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply)
{
    /* The segments live on this stack: the worker must have copied them. */
    char buf[1024];
    char *seg[16];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", req->path);
    for (char *save = NULL, *s = strtok_r(buf, "/", &save); s != NULL && n < 16;
         s = strtok_r(NULL, "/", &save))
        seg[n++] = s;
    if (n == 4 && strcmp(seg[2], "test") == 0) {
        bd_route_fn h = strcmp(seg[3], "echo") == 0     ? echo_handler
                        : strcmp(seg[3], "silent") == 0 ? silent_handler
                        : strcmp(seg[3], "keyed") == 0  ? keyed_handler
                                                        : text_handler;
        if (h == keyed_handler)
            bd_reply_resource(reply, "sub1/rg/ng1", "ng1", "nGroupName");
        bd_worker_route(api->w, h, req, reply, seg, n);
    } else if (n >= 7 && strcmp(seg[5], "Microsoft.StandbyPool") == 0) {
        bd_worker_pools(api->w, req, reply, seg, n);
    } else if (n >= 7 && strcmp(seg[5], "Microsoft.ContainerInstance") == 0) {
        bd_worker_ngroups(api->w, api, req, reply, seg, n);
    } else {
        bd_reply_error(reply, 404, "NotFound", "", "no test route");
    }
}

/* Container group profiles (profiles.c) are not compiled in: the NGroup
 * routes this test drives name none. */
int bd_profile_resolve(bd_api_t *api, const char *sub, const char *id, uint64_t revision,
                       bd_profile_cb cb, void *data)
{
    (void)api, (void)sub, (void)id, (void)revision, (void)cb, (void)data;
    return BERTH_ENOMEM;
}

int bd_profile_merge(const char *profile_doc, const char *body, size_t len, char **out,
                     size_t *out_len, berth_error_t *err)
{
    (void)profile_doc, (void)body, (void)len, (void)out_len;
    *out = NULL;
    return berth_error_set(err, BERTH_EINVAL, "NotCompiledIn", "", "no profiles here");
}

void bd_api_metrics(bd_api_t *api, struct evbuffer *out)
{
    (void)api, (void)out;
}

bool bd_api_healthy(bd_api_t *api, char *why, size_t cap)
{
    (void)api, (void)why, (void)cap;
    return true;
}

/* The WebSocket's interactive sessions are not driven here. */
berth_store_async_t *bd_api_async(bd_api_t *api, const char *key)
{
    (void)api, (void)key;
    return NULL;
}

uint32_t bd_api_agent_timeout_ms(const bd_api_t *api)
{
    (void)api;
    return 1000;
}

/* ---- fixtures ------------------------------------------------------------------------- */

typedef struct fixture {
    struct event_base *base;
    bd_config_t cfg;
    bd_worker_t *w;
    bd_server_t *srv;
    struct bd_api api;
    test_sched_t sched;
    bool sched_open;
    berth_hostlink_t *link;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->base = event_base_new();
    if (f->base == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->cfg.redis_url, sizeof f->cfg.redis_url, "%s", berth_test_redis_group->url);
    snprintf(f->cfg.cell, sizeof f->cfg.cell, "worker-%d", ++cell_counter);
    snprintf(f->cfg.listen_addr, sizeof f->cfg.listen_addr, "127.0.0.1");
    f->cfg.body_max = 1 << 20;
    f->cfg.header_timeout_s = 10;
    f->cfg.idle_timeout_s = 60;
    berth_error_t err;
    f->w = bd_worker_new(f->base, &f->cfg, &err);
    if (f->w == NULL) {
        fprintf(stderr, "bd_worker_new: %s\n", err.message);
        event_base_free(f->base);
        free(f);
        return -1;
    }
    f->api.w = f->w;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    /* The worker first: it answers the replies it holds while the server
     * still has them. */
    bd_worker_free(f->w);
    bd_server_close(f->srv);
    berth_hostlink_close(f->link);
    if (f->sched_open)
        test_sched_close(&f->sched);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* ---- jobs: order, threads ------------------------------------------------------------- */

#define NJOBS 50

typedef struct order {
    pthread_mutex_t mu;
    int ran[NJOBS];
    int nran;
    pthread_t fn_thread[NJOBS];
    int done_order[NJOBS];
    atomic_int ndone;
    bool done_on_loop[NJOBS];
    int done_status[NJOBS];
} order_t;

typedef struct order_job {
    order_t *o;
    int i;
} order_job_t;

static void order_fn(bd_worker_ctx_t *ctx, void *arg)
{
    (void)ctx;
    order_job_t *j = arg;
    pthread_mutex_lock(&j->o->mu);
    j->o->ran[j->o->nran++] = j->i;
    j->o->fn_thread[j->i] = pthread_self();
    pthread_mutex_unlock(&j->o->mu);
}

static void order_done(int status, const berth_error_t *err, void *arg)
{
    (void)err;
    order_job_t *j = arg;
    int k = atomic_load(&j->o->ndone);
    j->o->done_order[k] = j->i;
    j->o->done_on_loop[j->i] = on_main();
    j->o->done_status[j->i] = status;
    atomic_store(&j->o->ndone, k + 1);
}

static bool all_done(void *data)
{
    return atomic_load(&((order_t *)data)->ndone) == NJOBS;
}

static void test_jobs_in_order_off_the_loop(void **state)
{
    fixture_t *f = *state;
    static order_t o;
    memset(&o, 0, sizeof o);
    pthread_mutex_init(&o.mu, NULL);
    order_job_t jobs[NJOBS];
    for (int i = 0; i < NJOBS; i++) {
        jobs[i] = (order_job_t){&o, i};
        assert_int_equal(bd_worker_call(f->w, order_fn, order_done, &jobs[i]), 0);
    }
    assert_true(run_until(f->base, all_done, &o, WAIT_MS));
    assert_int_equal(o.nran, NJOBS);
    for (int i = 0; i < NJOBS; i++) {
        assert_int_equal(o.ran[i], i);
        assert_int_equal(o.done_order[i], i);
        assert_true(o.done_on_loop[i]);
        assert_int_equal(o.done_status[i], 0);
        /* One thread, not the loop's. */
        assert_false(pthread_equal(o.fn_thread[i], main_thread));
        assert_true(pthread_equal(o.fn_thread[i], o.fn_thread[0]));
    }
    /* No fn, no job. */
    assert_int_equal(bd_worker_call(f->w, NULL, order_done, NULL), BERTH_EINVAL);
    pthread_mutex_destroy(&o.mu);
}

/* ---- jobs: the loop runs while one blocks ------------------------------------------- */

static atomic_int sleeper_running, ticks_while_running, sleeper_done;

static void sleeper_fn(bd_worker_ctx_t *ctx, void *arg)
{
    (void)ctx, (void)arg;
    atomic_store(&sleeper_running, 1);
    struct timespec ts = {2, 0};
    while (nanosleep(&ts, &ts) != 0)
        ;
    atomic_store(&sleeper_running, 0);
}

static void sleeper_done_cb(int status, const berth_error_t *err, void *arg)
{
    (void)err, (void)arg;
    assert_int_equal(status, 0);
    atomic_store(&sleeper_done, 1);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    if (atomic_load(&sleeper_running))
        atomic_fetch_add(&ticks_while_running, 1);
}

static void test_blocking_job_leaves_the_loop_running(void **state)
{
    fixture_t *f = *state;
    atomic_store(&sleeper_running, 0);
    atomic_store(&ticks_while_running, 0);
    atomic_store(&sleeper_done, 0);
    struct event *tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10 * 1000};
    assert_int_equal(event_add(tick, &tv), 0);
    assert_int_equal(bd_worker_call(f->w, sleeper_fn, sleeper_done_cb, NULL), 0);
    assert_true(run_until(f->base, int_positive, &sleeper_done, WAIT_MS));
    event_free(tick);
    assert_true(atomic_load(&ticks_while_running) >= 1);
}

/* ---- freeing ------------------------------------------------------------------------------ */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started;
    bool open;
    bool saw_stop;
} gate_t;

static void gate_init(gate_t *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static void gate_destroy(gate_t *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

static void gate_started(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->started = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Waits (bounded) on the main thread until the gated job has started. */
static bool gate_wait_started(gate_t *g)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    pthread_mutex_lock(&g->mu);
    while (!g->started && test_now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    bool started = g->started;
    pthread_mutex_unlock(&g->mu);
    return started;
}

/* A job that starts, then waits until the gate opens (bounded). */
static void gated_fn(bd_worker_ctx_t *ctx, void *arg)
{
    (void)ctx;
    gate_t *g = arg;
    gate_started(g);
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    pthread_mutex_lock(&g->mu);
    while (!g->open && test_now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    pthread_mutex_unlock(&g->mu);
}

/* A job that starts, then waits (bounded) until the worker is being freed. */
static void until_stop_fn(bd_worker_ctx_t *ctx, void *arg)
{
    gate_t *g = arg;
    gate_started(g);
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (!bd_worker_stopping(ctx) && test_now_ms() < end)
        test_sleep_ms(1);
    pthread_mutex_lock(&g->mu);
    g->saw_stop = bd_worker_stopping(ctx);
    pthread_mutex_unlock(&g->mu);
}

typedef struct tally {
    atomic_int ran;
    atomic_int done;
    int status;
    char name[BERTH_ERROR_NAME_MAX];
    bool on_loop;
} tally_t;

static void tally_fn(bd_worker_ctx_t *ctx, void *arg)
{
    (void)ctx;
    atomic_fetch_add(&((tally_t *)arg)->ran, 1);
}

static void tally_done(int status, const berth_error_t *err, void *arg)
{
    tally_t *t = arg;
    t->status = status;
    snprintf(t->name, sizeof t->name, "%s", err != NULL ? err->name : "");
    t->on_loop = on_main();
    atomic_fetch_add(&t->done, 1);
}

/* The job that was running when the free came reports 0: it ran. */
static atomic_int gated_status_seen;

static void gated_done(int status, const berth_error_t *err, void *arg)
{
    (void)err, (void)arg;
    atomic_store(&gated_status_seen, status == 0 && on_main() ? 1 : -1);
}

static void test_free_completes_queued_jobs(void **state)
{
    fixture_t *f = *state;
    static gate_t g;
    gate_init(&g);
    atomic_store(&gated_status_seen, 0);
    static tally_t queued[3];
    memset(queued, 0, sizeof queued);
    assert_int_equal(bd_worker_call(f->w, until_stop_fn, gated_done, &g), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(bd_worker_call(f->w, tally_fn, tally_done, &queued[i]), 0);
    assert_true(gate_wait_started(&g));
    bd_worker_free(f->w);
    f->w = NULL;
    assert_true(g.saw_stop);            /* it was asked to stop, and did */
    assert_int_equal(atomic_load(&gated_status_seen), 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&queued[i].ran), 0);
        assert_int_equal(atomic_load(&queued[i].done), 1);
        assert_int_equal(queued[i].status, BERTH_EIO);
        assert_string_equal(queued[i].name, "Closed");
        assert_true(queued[i].on_loop);
    }
    gate_destroy(&g);
}

/* Freed from a done callback: the others are still completed exactly once. */
static fixture_t *freeing_fixture;
static atomic_int freed_from_done;

static void free_in_done(int status, const berth_error_t *err, void *arg)
{
    (void)status, (void)err, (void)arg;
    bd_worker_free(freeing_fixture->w);
    freeing_fixture->w = NULL;
    atomic_store(&freed_from_done, 1);
}

static void test_free_from_a_done_callback(void **state)
{
    fixture_t *f = *state;
    freeing_fixture = f;
    atomic_store(&freed_from_done, 0);
    static tally_t t[4];
    memset(t, 0, sizeof t);
    static tally_t first;
    memset(&first, 0, sizeof first);
    assert_int_equal(bd_worker_call(f->w, tally_fn, free_in_done, &first), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(bd_worker_call(f->w, tally_fn, tally_done, &t[i]), 0);
    assert_true(run_until(f->base, int_positive, &freed_from_done, WAIT_MS));
    assert_null(f->w);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(atomic_load(&t[i].done), 1);
        assert_true(t[i].status == 0 || (t[i].status == BERTH_EIO &&
                                         strcmp(t[i].name, "Closed") == 0));
        assert_int_equal(atomic_load(&t[i].ran), t[i].status == 0 ? 1 : 0);
    }
    /* The loop has nothing of the worker's left to run. */
    assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 1);
}

/* ---- the bound ------------------------------------------------------------------------- */

static atomic_int noop_ran, noop_done;

static void noop_fn(bd_worker_ctx_t *ctx, void *arg)
{
    (void)ctx, (void)arg;
    atomic_fetch_add(&noop_ran, 1);
}

static void noop_done_cb(int status, const berth_error_t *err, void *arg)
{
    (void)err, (void)arg;
    if (status == 0)
        atomic_fetch_add(&noop_done, 1);
}

typedef struct count_goal {
    atomic_int *counter;
    int goal;
} count_goal_t;

static bool reached(void *data)
{
    count_goal_t *c = data;
    return atomic_load(c->counter) >= c->goal;
}

static void test_queue_bound(void **state)
{
    fixture_t *f = *state;
    static gate_t g;
    gate_init(&g);
    atomic_store(&noop_ran, 0);
    atomic_store(&noop_done, 0);
    assert_int_equal(bd_worker_call(f->w, gated_fn, noop_done_cb, &g), 0);
    assert_true(gate_wait_started(&g));
    int accepted = 0, rc = 0;
    while ((rc = bd_worker_call(f->w, noop_fn, noop_done_cb, NULL)) == 0)
        accepted++;
    assert_int_equal(rc, BERTH_EBUSY);
    /* The gated job counts among those outstanding. */
    assert_int_equal(accepted, BD_WORKER_QUEUE_MAX - 1);
    assert_int_equal(bd_worker_call(f->w, noop_fn, noop_done_cb, NULL), BERTH_EBUSY);
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    count_goal_t goal = {&noop_done, accepted + 1};
    assert_true(run_until(f->base, reached, &goal, WAIT_MS * 4));
    assert_int_equal(atomic_load(&noop_ran), accepted); /* refused calls queued nothing */
    assert_int_equal(atomic_load(&noop_done), accepted + 1);
    /* Room again. */
    assert_int_equal(bd_worker_call(f->w, noop_fn, noop_done_cb, NULL), 0);
    goal.goal = accepted + 2;
    assert_true(run_until(f->base, reached, &goal, WAIT_MS));
    gate_destroy(&g);
}

/* ---- captured replies over HTTP ------------------------------------------------------- */

typedef struct http_result {
    atomic_int done;
    int status;
    char *body;
    char content_type[128];
    char x_test[32];
    char retry_after[32];
    char request_id[64];
    char client_request_id[128];
} http_result_t;

static void copy_header(struct evkeyvalq *h, const char *name, char *out, size_t cap)
{
    const char *v = evhttp_find_header(h, name);
    snprintf(out, cap, "%s", v != NULL ? v : "");
}

static void http_cb(struct evhttp_request *req, void *arg)
{
    http_result_t *r = arg;
    if (req == NULL || evhttp_request_get_response_code(req) == 0) {
        r->status = -1;
    } else {
        r->status = evhttp_request_get_response_code(req);
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        copy_header(h, "Content-Type", r->content_type, sizeof r->content_type);
        copy_header(h, "X-Test", r->x_test, sizeof r->x_test);
        copy_header(h, "Retry-After", r->retry_after, sizeof r->retry_after);
        copy_header(h, "x-ms-request-id", r->request_id, sizeof r->request_id);
        copy_header(h, "x-ms-client-request-id", r->client_request_id,
                    sizeof r->client_request_id);
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(b);
        r->body = malloc(len + 1);
        if (r->body != NULL) {
            evbuffer_copyout(b, r->body, len);
            r->body[len] = '\0';
        }
    }
    atomic_store(&r->done, 1);
}

/* Starts the server on a free port of 127.0.0.1, the test's API behind it. */
static void server_start(fixture_t *f)
{
    char why[512] = "";
    int port = test_free_port();
    assert_true(port > 0);
    f->cfg.listen_port = (uint16_t)port;
    assert_int_equal(bd_server_open(&f->cfg, f->base, &f->srv, why, sizeof why), 0);
    if (bd_server_start(f->srv, &f->api, why, sizeof why) != 0)
        fail_msg("server: %s", why);
}

/* One request through the server, run on the loop until its answer. */
static void http(fixture_t *f, enum evhttp_cmd_type method, const char *path, const char *body,
                 const char *crid, http_result_t *out)
{
    memset(out, 0, sizeof *out);
    struct evhttp_connection *c =
        evhttp_connection_base_new(f->base, NULL, "127.0.0.1", f->cfg.listen_port);
    assert_non_null(c);
    struct evhttp_request *req = evhttp_request_new(http_cb, out);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    if (crid != NULL)
        evhttp_add_header(h, "x-ms-client-request-id", crid);
    if (body != NULL) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
    assert_int_equal(evhttp_make_request(c, req, method, path), 0);
    bool answered = run_until(f->base, int_positive, &out->done, WAIT_MS);
    evhttp_connection_free(c);
    assert_true(answered);
}

static json_t *body_json(const http_result_t *r)
{
    json_t *j = r->body != NULL ? json_loads(r->body, 0, NULL) : NULL;
    if (j == NULL)
        fail_msg("not JSON: %s", r->body != NULL ? r->body : "(none)");
    return j;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

static void test_captured_replies_forwarded(void **state)
{
    fixture_t *f = *state;
    server_start(f);
    atomic_store(&handler_on_worker, 0);

    http_result_t r;
    http(f, EVHTTP_REQ_POST, "/subscriptions/sub1/test/echo?a=1&b=2", "{\"x\": [1, 2]}",
         "crid-42", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(r.x_test, "yes");
    assert_string_equal(r.retry_after, "7");
    assert_true(strlen(r.request_id) == 36);
    assert_string_equal(r.client_request_id, "crid-42");
    json_t *j = body_json(&r);
    assert_string_equal(jstr(j, "path"), "/subscriptions/sub1/test/echo");
    assert_string_equal(jstr(j, "query"), "a=1&b=2");
    assert_string_equal(jstr(j, "body"), "{\"x\": [1, 2]}");
    assert_int_equal(json_integer_value(json_object_get(j, "bodyLen")), 13);
    assert_int_equal(json_integer_value(json_object_get(j, "segments")), 4);
    assert_string_equal(jstr(j, "last"), "echo");
    assert_string_equal(jstr(j, "clientRequestId"), "crid-42");
    assert_true(json_is_true(json_object_get(j, "anySubscription")));
    json_decref(j);
    free(r.body);
    assert_int_equal(atomic_load(&handler_on_worker), 1);

    /* A plain-text answer; a second send through the capture is ignored. */
    http(f, EVHTTP_REQ_GET, "/subscriptions/sub1/test/text", NULL, NULL, &r);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.content_type, "text/x-test");
    assert_string_equal(r.body, "hello");
    free(r.body);

    /* A handler that sends nothing: 500 InternalServerError. */
    http(f, EVHTTP_REQ_GET, "/subscriptions/sub1/test/silent", NULL, NULL, &r);
    assert_int_equal(r.status, 500);
    j = body_json(&r);
    assert_string_equal(jstr(json_object_get(j, "error"), "code"), "InternalServerError");
    json_decref(j);
    free(r.body);

    /* A refusal naming the store key reaches the user with the name the
     * route gave (bd_reply_resource()), its target too. */
    http(f, EVHTTP_REQ_GET, "/subscriptions/sub1/test/keyed", NULL, NULL, &r);
    assert_int_equal(r.status, 409);
    j = body_json(&r);
    assert_string_equal(jstr(json_object_get(j, "error"), "message"),
                        "NGroup 'ng1' kept changing");
    assert_string_equal(jstr(json_object_get(j, "error"), "target"), "nGroupName");
    json_decref(j);
    free(r.body);

    /* The routes the handlers named reached the server's metrics. */
    http(f, EVHTTP_REQ_GET, "/metrics", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "route=\"Test_Echo\",method=\"POST\",status=\"201\"} 1"));
    assert_non_null(strstr(r.body, "route=\"Test_Text\",method=\"GET\",status=\"202\"} 1"));
    free(r.body);

    /* Captured replies freed without being forwarded (sent or not). */
    bd_reply_t *c = bd_reply_capture_new();
    assert_non_null(c);
    bd_reply_send(c, 200, json_pack("{s:s}", "a", "b"), NULL);
    bd_reply_capture_free(c);
    bd_reply_capture_free(bd_reply_capture_new());
    bd_reply_capture_free(NULL);
}

/* ---- the NGroup and pool routes on the worker ------------------------------------------ */

/* An ACI document: one container "app" running `image`, 1 core, 1 GB. */
static char *tdoc(const char *name, const char *image)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"name\": \"%s\", \"location\": \"westeurope\","
                 " \"properties\": {\"osType\": \"Linux\", \"restartPolicy\": \"Always\","
                 " \"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"%s\","
                 " \"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}",
                 name, image) < 0)
        abort();
    return out;
}

/* The test's own scheduler side, host h1 and its link (for members' views). */
static void cell_open(fixture_t *f)
{
    berth_error_t err;
    const berth_host_t h = {.name = "h1", .cores = 8, .memory_mib = 32768, .os = BERTH_OS_LINUX};
    assert_int_equal(test_sched_open(&f->sched, f->cfg.redis_url, f->cfg.cell), 0);
    f->sched_open = true;
    assert_int_equal(berth_store_host_put(f->sched.store, &h, &err), 0);
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = f->cfg.redis_url;
    o.cell = f->cfg.cell;
    assert_int_equal(berth_hostlink_open(&o, "h1", &f->link, &err), 0);
}

static void test_pool_and_ngroup_routes(void **state)
{
    fixture_t *f = *state;
    cell_open(f);
    server_start(f);
    const char *pool = "/subscriptions/sub1/resourceGroups/rg/providers/Microsoft.StandbyPool/"
                       "standbyContainerGroupPools/p1?api-version=2025-03-01";
    http_result_t r;
    http(f, EVHTTP_REQ_GET, pool, NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    json_t *j = body_json(&r);
    assert_string_equal(jstr(json_object_get(j, "error"), "code"), "ResourceNotFound");
    json_decref(j);
    free(r.body);

    /* The worker's side of a PUT: the job body pools_route.c prepares on
     * the loop (the resource read, the profile's document resolved). */
    char *doc = tdoc("tmpl", "busybox:latest");
    json_t *job = json_pack("{s:b,s:{s:s,s:{s:{s:i,s:s},s:{s:{s:s,s:i}}}},s:i,s:s,s:i}",
                            "patch", 0, "resource", "location", "westeurope", "properties",
                            "elasticityProfile", "maxReadyCapacity", 1, "refillPolicy",
                            "always", "containerGroupProperties", "containerGroupProfile",
                            "id", "/subscriptions/sub1/resourceGroups/rg/providers/"
                            "Microsoft.ContainerInstance/containerGroupProfiles/t", "revision",
                            1, "size", 1, "template", doc, "revision", 1);
    char *put = json_dumps(job, 0);
    json_decref(job);
    http(f, EVHTTP_REQ_PUT, pool, put, NULL, &r);
    assert_int_equal(r.status, 201);
    j = body_json(&r);
    assert_string_equal(jstr(j, "name"), "p1");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(j, "properties"), "elasticityProfile"),
                         "maxReadyCapacity")),
                     1);
    json_decref(j);
    free(r.body);
    http(f, EVHTTP_REQ_GET,
         "/subscriptions/sub1/resourceGroups/rg/providers/Microsoft.StandbyPool/"
         "standbyContainerGroupPools/p1/runtimeViews/latest?api-version=2025-03-01", NULL, NULL,
         &r);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    json_t *counts = json_object_get(json_array_get(json_object_get(json_object_get(j,
                                                                                    "properties"),
                                                                    "instanceCountSummary"), 0),
                                     "instanceCountsByState");
    /* One member placed (its agent has not reported it yet: Creating). */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(counts, 0), "count")), 1);
    json_decref(j);
    free(r.body);
    http(f, EVHTTP_REQ_GET, pool, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    http(f, EVHTTP_REQ_DELETE, pool, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    free(put);
    free(doc);

    http(f, EVHTTP_REQ_GET,
         "/subscriptions/sub1/resourceGroups/rg/providers/Microsoft.ContainerInstance/nGroups"
         "?api-version=2024-09-01-preview",
         NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_true(json_is_array(json_object_get(j, "value")));
    assert_int_equal(json_array_size(json_object_get(j, "value")), 0);
    json_decref(j);
    free(r.body);

    /* The routes' names went with the forwarded answers. */
    http(f, EVHTTP_REQ_GET, "/metrics", NULL, NULL, &r);
    assert_non_null(strstr(r.body, "route=\"StandbyContainerGroupPools_CreateOrUpdate\","
                                   "method=\"PUT\",status=\"201\"} 1"));
    free(r.body);
}

/* ---- pool claims with effects -------------------------------------------------------------- */

typedef struct claim_result {
    atomic_int done;
    int status;
    bool on_loop;
    berth_placement_t pl;
    bool has_pl;
    berth_error_t err;
} claim_result_t;

static void claim_cb(int status, const berth_placement_t *pl, const berth_error_t *err,
                     void *arg)
{
    claim_result_t *r = arg;
    r->status = status;
    r->on_loop = on_main();
    r->has_pl = pl != NULL;
    if (pl != NULL)
        r->pl = *pl;
    if (err != NULL)
        r->err = *err;
    atomic_store(&r->done, 1);
}

/* The request and canonical document of `doc`, in the test's engine. */
static void request_of(fixture_t *f, const char *doc, berth_request_t *req, char **spec)
{
    berth_group_t *g = NULL;
    berth_error_t err;
    assert_int_equal(berth_group_parse(doc, strlen(doc), &g, &err), 0);
    assert_int_equal(berth_engine_group_request(f->sched.engine, g, req, &err), 0);
    assert_int_equal(berth_group_to_json(g, 0, spec, NULL), 0);
    berth_group_free(g);
}

/* Claims `key` on the worker with effects whose strings are freed as soon
 * as the call returns (the worker must have copied them). */
static void claim_on_worker(fixture_t *f, const char *key, const char *doc,
                            const berth_effect_t *effects, size_t n, claim_result_t *out)
{
    berth_request_t req;
    char *spec = NULL;
    request_of(f, doc, &req, &spec);
    berth_effect_t *copy = calloc(n ? n : 1, sizeof *copy);
    assert_non_null(copy);
    for (size_t i = 0; i < n; i++) {
        copy[i] = effects[i];
        copy[i].key = effects[i].key ? strdup(effects[i].key) : NULL;
        copy[i].field = effects[i].field ? strdup(effects[i].field) : NULL;
        copy[i].value = effects[i].value ? strdup(effects[i].value) : NULL;
    }
    char *k = strdup(key);
    memset(out, 0, sizeof *out);
    assert_int_equal(bd_worker_pool_claim(f->w, k, &req, spec, NULL, false, copy, n, claim_cb, out), 0);
    for (size_t i = 0; i < n; i++) {
        free((char *)copy[i].key);
        free((char *)copy[i].field);
        free((char *)copy[i].value);
    }
    free(copy);
    free(k);
    berth_free(spec);
    assert_true(run_until(f->base, int_positive, &out->done, WAIT_MS));
    assert_true(out->on_loop);
}

/* HGET berth:{cell}:KEY FIELD, or NULL (free with free()). */
static char *hget(fixture_t *f, const char *key, const char *field)
{
    redisContext *c = berth_test_redis_connect(berth_test_redis_group);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "HGET berth:{%s}:%s %s", f->cfg.cell, key, field);
    assert_non_null(r);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

typedef struct member_keys {
    size_t n;
    char k[8][256];
} member_keys_t;

static member_keys_t members(fixture_t *f, const char *pool)
{
    member_keys_t m;
    memset(&m, 0, sizeof m);
    redisContext *c = berth_test_redis_connect(berth_test_redis_group);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "SORT berth:{%s}:poolmembers:%s ALPHA", f->cfg.cell, pool);
    assert_non_null(r);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && i < 8; i++)
        snprintf(m.k[m.n++], sizeof m.k[0], "%s", r->element[i]->str);
    freeReplyObject(r);
    redisFree(c);
    return m;
}

static void members_ready(fixture_t *f, const member_keys_t *m)
{
    berth_error_t err;
    for (size_t i = 0; i < m->n; i++)
        assert_int_equal(berth_hostlink_view_put(
                             f->link, m->k[i], 1,
                             "{\"host\": \"h1\", \"generation\": 1, \"digest\": "
                             "\"00000000000000ab\", \"provisioningState\": \"Succeeded\"}",
                             &err),
                         0);
}

static bool group_exists(fixture_t *f, const char *key)
{
    return berth_store_group_read(f->sched.store, key, NULL, NULL, NULL) == 0;
}

typedef struct async_result {
    atomic_int done;
    int status;
    berth_error_t err;
} async_result_t;

static void async_cb(int status, const berth_placement_t *pl, const berth_error_t *err,
                     void *arg)
{
    (void)pl;
    async_result_t *r = arg;
    r->status = status;
    if (err != NULL)
        r->err = *err;
    atomic_store(&r->done, 1);
}

/* What the asynchronous store answers the same effects with (a records
 * commit for `key`, which is not placed). */
static void async_refusal(fixture_t *f, const char *key, const berth_effect_t *effects, size_t n,
                          async_result_t *out)
{
    berth_store_options_t so;
    berth_store_options_init(&so);
    so.url = f->cfg.redis_url;
    so.cell = f->cfg.cell;
    berth_engine_t *e = NULL;
    berth_store_async_t *as = NULL;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &e, &err), 0);
    assert_int_equal(berth_store_async_open(&so, e, f->base, &as, &err), 0);
    memset(out, 0, sizeof *out);
    assert_int_equal(berth_store_async_records(as, key, 0, effects, n, async_cb, out, &err), 0);
    assert_true(run_until(f->base, int_positive, &out->done, WAIT_MS));
    berth_store_async_close(as);
    berth_engine_free(e);
}

static void test_pool_claim_with_effects(void **state)
{
    fixture_t *f = *state;
    cell_open(f);
    berth_error_t err;
    char *tmpl = tdoc("tmpl", "busybox:latest");
    assert_int_equal(
        berth_store_pool_put(f->sched.store, "sub1/rg/p", tmpl, strlen(tmpl), 2, &err), 0);
    uint32_t changes = 0;
    assert_int_equal(berth_store_pool_reconcile(f->sched.store, &changes, &err), 0);
    assert_int_equal(changes, 2);
    member_keys_t before = members(f, "sub1/rg/p");
    assert_int_equal(before.n, 2);
    members_ready(f, &before);

    /* A claim whose effects ride with it. */
    char *want = tdoc("web", "busybox:latest");
    const berth_effect_t fx[] = {
        {BERTH_EFFECT_CLAIM, "names", "sub1/rg/web", "op-1", 0, 0},
        {BERTH_EFFECT_HSET, "resources", "sub1/rg/web", "{\"rec\": 1}", 0, 0},
        {BERTH_EFFECT_HSET, "operations", "op-1", "{\"status\": \"Succeeded\"}", 0, 0},
    };
    claim_result_t r;
    claim_on_worker(f, "sub1/rg/web", want, fx, 3, &r);
    if (r.status != 0)
        fail_msg("claim: %d %s: %s", r.status, r.err.name, r.err.message);
    assert_true(r.has_pl);
    assert_string_equal(r.pl.host, "h1");
    assert_int_equal(r.pl.kind, BERTH_PLACED_NEW);
    assert_true(group_exists(f, "sub1/rg/web"));
    char *v = hget(f, "resources", "sub1/rg/web");
    assert_non_null(v);
    assert_string_equal(v, "{\"rec\": 1}");
    free(v);
    v = hget(f, "names", "sub1/rg/web");
    assert_string_equal(v, "op-1");
    free(v);
    v = hget(f, "operations", "op-1");
    assert_non_null(v);
    free(v);

    /* The claim queued a refill on the worker: the pool is whole again
     * (a member joins the set just before it is placed). */
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    member_keys_t now = members(f, "sub1/rg/p");
    while (!(now.n == 2 && group_exists(f, now.k[0]) && group_exists(f, now.k[1])) &&
           test_now_ms() < end) {
        test_sleep_ms(20);
        now = members(f, "sub1/rg/p");
    }
    assert_int_equal(now.n, 2);
    members_ready(f, &now);

    /* A guard that refuses: nothing changes, with the asynchronous store's
     * error.  EXPECT: the record is not the one read. */
    const berth_effect_t stale[] = {
        {BERTH_EFFECT_HSET, "resources", "sub1/rg/web2", "{\"rec\": 2}", 0, 0},
        {BERTH_EFFECT_EXPECT, "resources", "sub1/rg/web",
         "0000000000000000000000000000000000000000", 0, 0},
    };
    char *want2 = tdoc("web2", "busybox:latest");
    claim_on_worker(f, "sub1/rg/web2", want2, stale, 2, &r);
    assert_int_equal(r.status, BERTH_ESTALE);
    assert_false(r.has_pl);
    assert_string_equal(r.err.name, "RecordChanged");
    assert_string_equal(r.err.target, "effects[1]");
    async_result_t a;
    async_refusal(f, "sub1/rg/web2", stale, 2, &a);
    assert_int_equal(a.status, r.status);
    assert_string_equal(a.err.name, r.err.name);
    assert_string_equal(a.err.target, r.err.target);
    /* CLAIM: the name is held by another operation. */
    const berth_effect_t taken[] = {
        {BERTH_EFFECT_HSET, "resources", "sub1/rg/web2", "{\"rec\": 2}", 0, 0},
        {BERTH_EFFECT_CLAIM, "names", "sub1/rg/web", "op-2", 0, 0},
    };
    claim_on_worker(f, "sub1/rg/web2", want2, taken, 2, &r);
    assert_int_equal(r.status, BERTH_EEXIST);
    assert_string_equal(r.err.name, "RecordTaken");
    assert_string_equal(r.err.target, "effects[1]");
    async_refusal(f, "sub1/rg/web2", taken, 2, &a);
    assert_int_equal(a.status, r.status);
    assert_string_equal(a.err.name, r.err.name);
    assert_string_equal(a.err.target, r.err.target);
    /* An effect on one of the cell's own keys is refused before any I/O. */
    const berth_effect_t own[] = {{BERTH_EFFECT_HSET, "groups", "sub1/rg/web2", "x", 0, 0}};
    claim_on_worker(f, "sub1/rg/web2", want2, own, 1, &r);
    assert_int_equal(r.status, BERTH_EINVAL);
    /* Nothing of any of them was written; the members are untouched. */
    assert_false(group_exists(f, "sub1/rg/web2"));
    assert_null(hget(f, "resources", "sub1/rg/web2"));
    v = hget(f, "names", "sub1/rg/web");
    assert_string_equal(v, "op-1");
    free(v);
    member_keys_t after = members(f, "sub1/rg/p");
    assert_int_equal(after.n, now.n);
    for (size_t i = 0; i < now.n; i++) {
        assert_string_equal(after.k[i], now.k[i]);
        assert_true(group_exists(f, now.k[i]));
    }

    /* No pool matches: BERTH_ENOENT, and the effects are not written. */
    char *other = tdoc("web3", "nginx:1.25");
    const berth_effect_t fx3[] = {
        {BERTH_EFFECT_HSET, "resources", "sub1/rg/web3", "{\"rec\": 3}", 0, 0}};
    claim_on_worker(f, "sub1/rg/web3", other, fx3, 1, &r);
    assert_int_equal(r.status, BERTH_ENOENT);
    assert_null(hget(f, "resources", "sub1/rg/web3"));
    /* Another subscription's create never claims these pools. */
    claim_on_worker(f, "sub2/rg/web4", want2, NULL, 0, &r);
    assert_int_equal(r.status, BERTH_ENOENT);
    /* Without the refusing guard, the same claim goes through. */
    claim_on_worker(f, "sub1/rg/web2", want2, stale, 1, &r);
    assert_int_equal(r.status, 0);
    v = hget(f, "resources", "sub1/rg/web2");
    assert_string_equal(v, "{\"rec\": 2}");
    free(v);
    assert_int_equal(berth_store_fsck(f->sched.store, NULL, NULL, &err), 0);

    /* Refused at once: nothing queued, no callback. */
    berth_request_t req;
    char *spec = NULL;
    request_of(f, want, &req, &spec);
    assert_int_equal(bd_worker_pool_claim(f->w, "sub1/rg/x", &req, spec, NULL, false, NULL, 2,
                                          claim_cb, &r),
                     BERTH_EINVAL);
    assert_int_equal(bd_worker_pool_claim(f->w, "sub1/rg/x", &req, spec, NULL, false, fx,
                                          BERTH_EFFECTS_MAX + 1, claim_cb, &r),
                     BERTH_EINVAL);
    assert_int_equal(bd_worker_pool_claim(f->w, "sub1/rg/x", &req, spec, NULL, false, fx, 1, NULL, &r),
                     BERTH_EINVAL);
    berth_free(spec);
    free(tmpl);
    free(want);
    free(want2);
    free(other);
}

/* ---- Redis away --------------------------------------------------------------------------- */

typedef struct probe {
    atomic_int done;
    bool had_store;
    int err_code;
} probe_t;

static void probe_fn(bd_worker_ctx_t *ctx, void *arg)
{
    probe_t *p = arg;
    p->had_store = ctx->store != NULL && ctx->engine != NULL && ctx->pools != NULL;
    p->err_code = ctx->store_err.code;
}

static void probe_done(int status, const berth_error_t *err, void *arg)
{
    (void)status, (void)err;
    atomic_store(&((probe_t *)arg)->done, 1);
}

static void test_store_reopened_when_redis_returns(void **state)
{
    (void)state;
    berth_test_redis_t *rs = berth_test_redis_start(NULL);
    assert_non_null(rs);
    assert_int_equal(berth_test_redis_kill(rs), 0);
    struct event_base *base = event_base_new();
    bd_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.redis_url, sizeof cfg.redis_url, "%s", rs->url);
    snprintf(cfg.cell, sizeof cfg.cell, "away");
    berth_error_t err;
    bd_worker_t *w = bd_worker_new(base, &cfg, &err);
    assert_non_null(w);

    probe_t p;
    memset(&p, 0, sizeof p);
    assert_int_equal(bd_worker_call(w, probe_fn, probe_done, &p), 0);
    assert_true(run_until(base, int_positive, &p.done, WAIT_MS));
    assert_false(p.had_store);
    assert_int_equal(p.err_code, BERTH_EIO);
    /* A claim needs the store: BERTH_EIO. */
    const char *doc = "{\"name\": \"a\", \"location\": \"westeurope\", \"properties\": "
                      "{\"osType\": \"Linux\", \"containers\": []}}";
    berth_request_t req;
    memset(&req, 0, sizeof req);
    claim_result_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(bd_worker_pool_claim(w, "sub1/rg/a", &req, doc, NULL, false, NULL, 0, claim_cb, &r),
                     0);
    assert_true(run_until(base, int_positive, &r.done, WAIT_MS));
    assert_int_equal(r.status, BERTH_EIO);

    /* Redis returns: the worker opens its store (back-off, bounded wait). */
    assert_int_equal(berth_test_redis_restart(rs), 0);
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    bool opened = false;
    while (!opened && test_now_ms() < end) {
        memset(&p, 0, sizeof p);
        assert_int_equal(bd_worker_call(w, probe_fn, probe_done, &p), 0);
        assert_true(run_until(base, int_positive, &p.done, WAIT_MS));
        opened = p.had_store;
        if (!opened)
            test_sleep_ms(50);
    }
    assert_true(opened);
    bd_worker_free(w);
    event_base_free(base);
    berth_test_redis_stop(rs);
}

int main(void)
{
    main_thread = pthread_self();
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "evthread_use_pthreads failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_in_order_off_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_job_leaves_the_loop_running, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_completes_queued_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_a_done_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_captured_replies_forwarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_and_ngroup_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_claim_with_effects, setup, teardown),
        cmocka_unit_test(test_store_reopened_when_redis_returns),
    };
    return cmocka_run_group_tests(tests, berth_test_redis_group_setup,
                                  berth_test_redis_group_teardown);
}
