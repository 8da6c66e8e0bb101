/*
 * worker.c: berthd's worker thread: the work that still blocks on Redis,
 * run off the event loop on a thread with its own engine replica,
 * synchronous store: jobs in order, their
 * completions handed back to the loop, and periodic housekeeping
 * (worker.h has the contracts; worker_jobs.c the jobs berthd queues:
 * routes and pool claims).
 *
 * THREADS.  Two queues under one mutex join the threads: `todo` (jobs for
 * the worker, in order) and `finished` (jobs whose work is done, for the
 * loop).  The worker pops a job, runs it without the lock, appends it to
 * `finished` and, when that list was empty, activates the `wake` event,
 * from its own thread (libevent's threading must be on: main.c calls
 * evthread_use_pthreads()); the loop then runs each `done`.  Everything
 * the worker opens (engine, store, pools state) is
 * opened, used and closed on the worker thread; the loop's side touches
 * only the queues, its event and the callers' arguments.  The worker
 * thread blocks the asynchronous signals: the loop's signal events get
 * them.
 *
 * THE STORE.  Opened when the thread starts and, while that fails, again
 * after a back-off (100 ms doubling to 5 s), between jobs.  Once open, the
 * store reconnects by itself (store_conn.c).  A job that finds it closed fails
 * with BERTH_EIO (ctx->store_err).
 *
 * HOUSEKEEPING.  The periodic work whose library calls block: expired
 * hosts, pools and NGroups reconciled (and whether the cell holds a
 * pool, for creates).  A step runs on the worker between jobs when it is
 * due, so two never overlap.  The NGroups mid-rollout (ctx.ngroups_active:
 * left unsteady by a step, or changed by a route) also get a fast step
 * every BD_NGROUPS_FAST_MS between jobs, so that a rollout's next batch
 * starts about as soon as the last one is available, not a tick later.
 *
 * This file must never run a blocking call on the loop's thread (freeing
 * waits for the thread to end, which is why the worker stops after the
 * job it runs), never touch a libevent object of the loop from the worker
 * but the one event it activates, and never call a job's `done` twice or
 * off the loop.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "worker.h"
#include "lib/clock.h"

#define OPEN_BACKOFF_MIN_MS 100
#define OPEN_BACKOFF_MAX_MS 5000
#define REDIS_TIMEOUT_MS 5000

typedef struct job {
    bd_worker_fn fn;
    bd_worker_done_fn done;
    void *arg;
    bool internal;                  /* the worker's own (a refill): no done,
                                     * not counted against the bound       */
    struct job *next;
} job_t;

typedef struct job_list {
    job_t *head;
    job_t **tail;
} job_list_t;

struct bd_worker {
    /* Any thread: whether the cell may hold a standby pool (set by the
     * pools route and by each housekeeping step; creates skip the claim
     * while it is false). */
    atomic_bool pools_present;
    atomic_uint pools_seen;         /* bumped by each pools route           */
    struct event_base *loop;
    bd_config_t cfg;
    struct event *wake;             /* runs the finished jobs' done         */
    pthread_t thread;
    bool started;

    /* Under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cond;            /* the worker waits on it (CLOCK_MONOTONIC) */
    job_list_t todo;
    job_list_t finished;
    size_t outstanding;             /* callers' jobs whose done has not run */
    bool stop;                      /* the worker ends after its current job */
    uint32_t period_ms;             /* housekeeping; 0: none                */
    bool period_changed;

    /* The loop's thread only. */
    bool closing;                   /* bd_worker_free() began: calls refused */
    bool delivering;                /* inside on_wake                       */
    job_t *delivering_rest;         /* what on_wake has still to deliver    */
    bool free_deferred;             /* freed from a done: on_wake frees     */

    /* The worker thread only. */
    bd_worker_ctx_t ctx;
    int64_t open_at_ms;             /* the next try to open the store       */
    uint32_t open_backoff_ms;
    unsigned open_failures;         /* tries failed in a row                */
    int64_t tick_at_ms;             /* the next housekeeping step           */
    int64_t fast_at_ms;             /* the next step of the NGroups mid-rollout */
    bool refill_queued;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static void list_init(job_list_t *l)
{
    l->head = NULL;
    l->tail = &l->head;
}

static void list_push(job_list_t *l, job_t *j)
{
    j->next = NULL;
    *l->tail = j;
    l->tail = &j->next;
}

static job_t *list_pop(job_list_t *l)
{
    job_t *j = l->head;
    if (j != NULL) {
        l->head = j->next;
        if (l->head == NULL)
            l->tail = &l->head;
        j->next = NULL;
    }
    return j;
}

/* Takes the whole list. */
static job_t *list_take(job_list_t *l)
{
    job_t *head = l->head;
    list_init(l);
    return head;
}

static const char *cell_of(const bd_config_t *cfg)
{
    return cfg->cell[0] != '\0' ? cfg->cell : "default";
}

/* ---- the loop's side: completions ----------------------------------------------------- */

/* Runs j's done (when it has one) and frees j; on the loop. */
static void deliver(bd_worker_t *w, job_t *j, int status, const berth_error_t *err)
{
    bool counted = !j->internal;
    if (j->done != NULL)
        j->done(status, status == 0 ? NULL : err, j->arg);
    free(j);
    if (counted) {
        pthread_mutex_lock(&w->mu);
        w->outstanding--;
        pthread_mutex_unlock(&w->mu);
    }
}

static void destroy(bd_worker_t *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    json_decref(w->ctx.ngroups_active);
    free(w);
}

/* The wake event: runs the done of every job finished so far, in order.
 * A done may free the worker; the rest are then delivered by the free. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_worker_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->delivering_rest = list_take(&w->finished);
    pthread_mutex_unlock(&w->mu);
    w->delivering = true;
    while (w->delivering_rest != NULL && !w->free_deferred) {
        job_t *j = w->delivering_rest;
        w->delivering_rest = j->next;
        deliver(w, j, 0, NULL);
    }
    w->delivering = false;
    if (w->free_deferred)
        destroy(w);
}

/* ---- the worker's side ---------------------------------------------------------------- */

/* Puts j at the end of the queue (the lock held) and wakes the worker. */
static void enqueue_locked(bd_worker_t *w, job_t *j)
{
    list_push(&w->todo, j);
    pthread_cond_signal(&w->cond);
}

static void refill_run(bd_worker_ctx_t *ctx, void *arg)
{
    (void)arg;
    ctx->worker->refill_queued = false;
    if (ctx->pools != NULL)
        bd_pools_reconcile(ctx->pools);
}

/* pools.c's refill request after a claim, on the worker: one refill job
 * queued behind the claim's (so its reply goes out first). */
static void want_refill(void *arg)
{
    bd_worker_t *w = arg;
    if (w->refill_queued)
        return;
    job_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return; /* housekeeping's next step refills instead */
    j->fn = refill_run;
    j->internal = true;
    w->refill_queued = true;
    pthread_mutex_lock(&w->mu);
    enqueue_locked(w, j);
    pthread_mutex_unlock(&w->mu);
}

/* One try to open the engine, store and pools state; on failure the next
 * try is due after the back-off. */
static void store_try_open(bd_worker_t *w)
{
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    bd_pools_t *pools = NULL;
    berth_error_t err;
    berth_error_clear(&err);
    int rc = berth_engine_new(&eo, &engine, &err);
    if (rc == 0) {
        berth_store_options_t so;
        berth_store_options_init(&so);
        so.url = w->cfg.redis_url;
        so.cell = cell_of(&w->cfg);
        bd_store_options_durable(&w->cfg, &so);
        rc = berth_store_open(&so, engine, &store, &err);
    }
    if (rc == 0) {
        pools = bd_pools_new_detached(store, want_refill, w);
        if (pools == NULL)
            rc = berth_error_set(&err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    if (rc != 0) {
        berth_store_close(store);
        berth_engine_free(engine);
        berth_error_set(&w->ctx.store_err, BERTH_EIO,
                        err.name[0] != '\0' ? err.name : "RedisUnavailable", err.target,
                        "the worker's store is not open: %s", err.message);
        if (w->open_failures++ == 0)
            bd_log("warn", "worker: cannot open the store (%s); trying again with back-off",
                   err.message);
        w->open_at_ms = berth__clock_monotonic_ms() + w->open_backoff_ms;
        w->open_backoff_ms = w->open_backoff_ms * 2 > OPEN_BACKOFF_MAX_MS
                                 ? OPEN_BACKOFF_MAX_MS
                                 : w->open_backoff_ms * 2;
        return;
    }
    w->ctx.store = store;
    w->ctx.engine = engine;
    w->ctx.pools = pools;
    berth_error_clear(&w->ctx.store_err);
    /* Whether the cell holds a pool, known before the first step. */
    unsigned seen = atomic_load(&w->pools_seen);
    int npools = berth_store_pool_list(store, NULL, NULL, NULL);
    if (npools == 0 && atomic_load(&w->pools_seen) == seen)
        atomic_store(&w->pools_present, false);
    if (w->open_failures > 0)
        bd_log("info", "worker: store open after %u tries", w->open_failures + 1);
    w->open_failures = 0;
    w->open_backoff_ms = OPEN_BACKOFF_MIN_MS;
}

static void on_expired(const char *host, const char *key, const char *new_host, int status,
                       void *data)
{
    (void)data;
    if (key == NULL)
        bd_log("warn", "host %s missed its heartbeat: marked down", host);
    else if (status == 0)
        bd_log("info", "container group %s moved from down host %s to %s", key, host, new_host);
    else
        bd_log("warn", "container group %s stays on down host %s: %s", key, host,
               berth_strerror(status));
}

/* One housekeeping step; it ends early when the worker is being freed. */
static void housekeeping_step(bd_worker_t *w)
{
    bd_worker_ctx_t *ctx = &w->ctx;
    if (ctx->store == NULL || bd_worker_stopping(ctx))
        return;
    /* Hosts whose agent went quiet are marked down; their groups move. */
    berth_error_t err;
    if (berth_store_hosts_expire(ctx->store, on_expired, NULL, &err) < 0)
        bd_log("warn", "host heartbeats not checked: %s", err.message);
    if (bd_worker_stopping(ctx))
        return;
    /* Standby pools refilled (pools.c). */
    /* A pools route that ran since the count began may have made one:
     * only a count with no route in between may say there is none. */
    unsigned seen = atomic_load(&w->pools_seen);
    bd_pools_reconcile(ctx->pools);
    int npools = berth_store_pool_list(ctx->store, NULL, NULL, NULL);
    if (npools > 0)
        atomic_store(&w->pools_present, true);
    else if (npools == 0 && atomic_load(&w->pools_seen) == seen)
        atomic_store(&w->pools_present, false);
    if (bd_worker_stopping(ctx))
        return;
    /* Every NGroup of the cell, one step towards its goal (ngroups.c);
     * those left mid-rollout get the fast steps. */
    bd_ngroups_reconcile(ctx->store, ctx->ngroups_active);
}

/* Whether a fast step of the NGroups mid-rollout is wanted (at all). */
static bool fast_wanted(bd_worker_t *w)
{
    return w->ctx.store != NULL && json_object_size(w->ctx.ngroups_active) > 0;
}

static void close_all(bd_worker_t *w)
{
    bd_pools_free(w->ctx.pools);
    berth_store_close(w->ctx.store);
    berth_engine_free(w->ctx.engine);
    w->ctx.pools = NULL;
    w->ctx.store = NULL;
    w->ctx.engine = NULL;
}

/* Waits on the condition until `at_ms` (monotonic; -1: until signalled). */
static void wait_until(bd_worker_t *w, int64_t at_ms)
{
    if (at_ms < 0) {
        pthread_cond_wait(&w->cond, &w->mu);
        return;
    }
    struct timespec ts = {(time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000L};
    pthread_cond_timedwait(&w->cond, &w->mu, &ts);
}

static void *worker_main(void *arg)
{
    bd_worker_t *w = arg;
    store_try_open(w);
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        int64_t now = berth__clock_monotonic_ms();
        if (w->period_changed) {
            w->period_changed = false;
            w->tick_at_ms = now + w->period_ms;
        }
        if (w->ctx.store == NULL && now >= w->open_at_ms) {
            pthread_mutex_unlock(&w->mu);
            store_try_open(w);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        if (w->period_ms > 0 && now >= w->tick_at_ms) {
            uint32_t period = w->period_ms;
            pthread_mutex_unlock(&w->mu);
            housekeeping_step(w);
            pthread_mutex_lock(&w->mu);
            /* Steps missed while this one ran long are skipped. */
            int64_t end = berth__clock_monotonic_ms();
            if (!w->period_changed)
                w->tick_at_ms = now + period > end ? now + period : end + period;
            continue;
        }
        if (fast_wanted(w) && now >= w->fast_at_ms) {
            pthread_mutex_unlock(&w->mu);
            bd_ngroups_reconcile_active(w->ctx.store, w->ctx.ngroups_active);
            pthread_mutex_lock(&w->mu);
            w->fast_at_ms = berth__clock_monotonic_ms() + BD_NGROUPS_FAST_MS;
            continue;
        }
        job_t *j = list_pop(&w->todo);
        if (j != NULL) {
            pthread_mutex_unlock(&w->mu);
            j->fn(&w->ctx, j->arg);
            pthread_mutex_lock(&w->mu);
            if (j->internal) {
                free(j);
                continue;
            }
            bool was_empty = w->finished.head == NULL;
            list_push(&w->finished, j);
            if (was_empty) {
                /* Activated without the lock: the loop's side takes it in
                 * on_wake.  The event outlives the thread (freed after
                 * the join). */
                pthread_mutex_unlock(&w->mu);
                event_active(w->wake, EV_TIMEOUT, 0);
                pthread_mutex_lock(&w->mu);
            }
            continue;
        }
        int64_t at = -1;
        if (w->ctx.store == NULL)
            at = w->open_at_ms;
        if (w->period_ms > 0 && (at < 0 || w->tick_at_ms < at))
            at = w->tick_at_ms;
        if (fast_wanted(w) && (at < 0 || w->fast_at_ms < at))
            at = w->fast_at_ms;
        wait_until(w, at);
    }
    pthread_mutex_unlock(&w->mu);
    close_all(w);
    return NULL;
}

/* ---- the API ---------------------------------------------------------------------------- */

bd_worker_t *bd_worker_new(struct event_base *loop, const bd_config_t *cfg, berth_error_t *err)
{
    bd_worker_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        return NULL;
    }
    w->loop = loop;
    w->cfg = *cfg;
    /* Until the first housekeeping step counts them, a pool may exist. */
    atomic_init(&w->pools_present, true);
    atomic_init(&w->pools_seen, 0);
    list_init(&w->todo);
    list_init(&w->finished);
    w->ctx.cfg = &w->cfg;
    w->ctx.worker = w;
    /* Without it (no memory), NGroups are reconciled per tick only. */
    w->ctx.ngroups_active = json_object();
    berth_error_set(&w->ctx.store_err, BERTH_EIO, "RedisUnavailable", "",
                    "the worker's store is not open yet");
    w->open_backoff_ms = OPEN_BACKOFF_MIN_MS;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int e1 = pthread_mutex_init(&w->mu, NULL);
    int e2 = pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (e1 != 0 || e2 != 0) {
        if (e1 == 0)
            pthread_mutex_destroy(&w->mu);
        if (e2 == 0)
            pthread_cond_destroy(&w->cond);
        json_decref(w->ctx.ngroups_active);
        free(w);
        berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "cannot make the worker's lock");
        return NULL;
    }
    w->wake = event_new(loop, -1, 0, on_wake, w);
    if (w->wake == NULL) {
        destroy(w);
        berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "cannot make the worker's event");
        return NULL;
    }
    /* The thread starts with the asynchronous signals blocked (the mask is
     * inherited): they are the loop's.  A fault's signals stay open, for
     * they cannot be blocked usefully. */
    sigset_t all, old;
    sigfillset(&all);
    const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        pthread_setname_np(w->thread, "berthd-worker");
    if (rc != 0) {
        event_free(w->wake);
        destroy(w);
        berth_error_set(err, BERTH_EIO, "ThreadUnavailable", "",
                        "cannot start the worker thread: %s", strerror(rc));
        return NULL;
    }
    w->started = true;
    return w;
}

void bd_worker_free(bd_worker_t *w)
{
    if (w == NULL || w->closing)
        return;
    w->closing = true;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    if (w->started)
        pthread_join(w->thread, NULL);
    /* The thread is gone: nothing else touches w now. */
    event_free(w->wake);
    w->wake = NULL;
    berth_error_t closed;
    berth_error_set(&closed, BERTH_EIO, "Closed", "",
                    "berthd's worker stopped before the job could run");
    /* In order: what ran (an on_wake under way first), then what did not. */
    while (w->delivering_rest != NULL) {
        job_t *j = w->delivering_rest;
        w->delivering_rest = j->next;
        deliver(w, j, 0, NULL);
    }
    for (job_t *j = list_take(&w->finished), *next; j != NULL; j = next) {
        next = j->next;
        deliver(w, j, 0, NULL);
    }
    for (job_t *j = list_take(&w->todo), *next; j != NULL; j = next) {
        next = j->next;
        deliver(w, j, BERTH_EIO, &closed);
    }
    if (w->delivering) {
        w->free_deferred = true; /* on_wake frees it once its done returns */
        return;
    }
    destroy(w);
}

int bd_worker_call(bd_worker_t *w, bd_worker_fn fn, bd_worker_done_fn done, void *arg)
{
    if (w == NULL || fn == NULL)
        return BERTH_EINVAL;
    if (w->closing)
        return BERTH_EIO;
    job_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return BERTH_ENOMEM;
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&w->mu);
    if (w->outstanding >= BD_WORKER_QUEUE_MAX) {
        pthread_mutex_unlock(&w->mu);
        free(j);
        return BERTH_EBUSY;
    }
    w->outstanding++;
    enqueue_locked(w, j);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

bool bd_worker_stopping(const bd_worker_ctx_t *ctx)
{
    bd_worker_t *w = ctx->worker;
    pthread_mutex_lock(&w->mu);
    bool stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    return stop;
}

/* Contract: worker.h. */
bool bd_worker_pools_present(bd_worker_t *w)
{
    return atomic_load(&w->pools_present);
}

/* Contract: worker.h. */
void bd_worker_pools_seen(bd_worker_t *w)
{
    atomic_fetch_add(&w->pools_seen, 1);
    atomic_store(&w->pools_present, true);
}

void bd_worker_housekeeping_start(bd_worker_t *w, uint32_t period_ms)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->period_ms = period_ms;
    w->period_changed = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}
