/*
 * worker.h: berthd's worker thread (worker.c), where work that still
 * blocks on Redis runs off the event loop, and the jobs berthd hands it
 * (worker_jobs.c: route handlers with captured replies, pool claims).
 *
 * The worker is one thread with its own engine replica and synchronous
 * store, opened in that thread and reopened with back-off while Redis is away.  The loop hands
 * it jobs (bd_worker_call()); it runs them in order, one at a time, and
 * hands each one's completion back to the loop through a mutex-guarded
 * queue and a libevent event the worker activates.  The loop's event_base
 * must have been made after evthread_use_pthreads() (main.c does).
 *
 * Ownership: everything reachable from a bd_worker_ctx_t belongs to the
 * worker thread and is only ever touched there; everything a job's `arg`
 * points at is the caller's, and must stay valid until the job's `done`
 * has run.  Every function here is called on the loop's thread, but for
 * bd_worker_stopping(), which a job calls on the worker, and
 * bd_worker_pools_present() and bd_worker_pools_seen(), which any thread
 * may call.  Nothing here may block the loop's thread.
 */
#ifndef BERTHD_WORKER_H
#define BERTHD_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berthd.h"

#define BD_WORKER_QUEUE_MAX 10000   /* jobs outstanding: queued, running, or
                                     * waiting for their `done` on the loop */

typedef struct bd_worker bd_worker_t;

/* What a job sees on the worker thread.  Read it; never keep a pointer
 * from it past the job, and never free anything in it. */
typedef struct bd_worker_ctx {
    berth_store_t *store;           /* the worker's store; NULL while Redis
                                     * cannot be reached (store_err: why) */
    berth_engine_t *engine;         /* the store's replica; NULL with it    */
    bd_pools_t *pools;              /* pools.c's state on the store; NULL with it */
    const bd_config_t *cfg;         /* the worker's copy of the config      */
    berth_error_t store_err;        /* BERTH_EIO: why there is no store     */
    bd_worker_t *worker;
    json_t *ngroups_active;         /* keys of the NGroups mid-rollout (an
                                     * object used as a set): reconciled every
                                     * BD_NGROUPS_FAST_MS, not only per tick */
} bd_worker_ctx_t;

/* A job's work: runs on the worker thread.  Its outcome goes wherever it
 * puts it in `arg` (the caller's). */
typedef void (*bd_worker_fn)(bd_worker_ctx_t *ctx, void *arg);

/* A job's completion: runs on the loop thread, exactly once per queued
 * job.  `status` 0: fn ran (err NULL).  BERTH_EIO with err "Closed": the
 * worker was freed before fn could run, and it never will. */
typedef void (*bd_worker_done_fn)(int status, const berth_error_t *err, void *arg);

/* A route handler that runs on the worker: answers `req` through `reply`
 * (a captured reply, server_reply.c) exactly once before returning. */
typedef void (*bd_route_fn)(bd_worker_ctx_t *ctx, const bd_request_t *req, bd_reply_t *reply,
                            char **seg, int n);

/* A pool claim's outcome, on the loop thread, exactly once: berth_store_
 * done_cb's shape.  `placement` is where the group went when status is 0
 * (else NULL); `err` the detail when status is negative (else NULL).  Both
 * are valid only during the call. */
typedef void (*bd_claim_done_fn)(int status, const berth_placement_t *placement,
                                 const berth_error_t *err, void *arg);

/* Starts the worker: a thread that opens its own engine (default options)
 * and synchronous store on cfg->redis_url and cfg->cell, retrying with
 * back-off (100 ms doubling to 5 s) while that fails.  Nothing blocks the
 * caller: the store is opened in the thread.  `cfg` is copied (the strings
 * its pointers name are not read).  Completions run on `loop`, which must
 * outlive the worker.  Returns the worker (free with bd_worker_free()), or
 * NULL with err (BERTH_ENOMEM, or BERTH_EIO when no thread could start). */
bd_worker_t *bd_worker_new(struct event_base *loop, const bd_config_t *cfg, berth_error_t *err);

/* Stops the worker: asks the thread to stop after the job (or housekeeping
 * step) it is running, waits for it, and then, on the calling (loop)
 * thread, runs the `done` of every job: those that ran with their status,
 * every job still queued with BERTH_EIO "Closed".  Those callbacks may not
 * queue jobs (refused: BERTH_EIO).  May be called from a `done` callback.
 * Accepts NULL. */
void bd_worker_free(bd_worker_t *w);

/* Queues fn(ctx, arg) to run on the worker thread, after every job queued
 * before it, then done(status, err, arg) on the loop thread (done may be
 * NULL).  Returns 0 when queued; otherwise nothing is queued and done is
 * never called: BERTH_EINVAL (no fn), BERTH_EBUSY (BD_WORKER_QUEUE_MAX jobs
 * outstanding), BERTH_EIO (the worker is being freed) or BERTH_ENOMEM. */
int bd_worker_call(bd_worker_t *w, bd_worker_fn fn, bd_worker_done_fn done, void *arg);

/* For a long job, on the worker thread: whether the worker is being freed
 * (the job should end as soon as it can). */
bool bd_worker_stopping(const bd_worker_ctx_t *ctx);

/* Runs a blocking route handler on the worker: deep-copies the request and
 * the path's segments seg[0..n-1], runs handler(ctx, copy, captured, seg
 * copy, n) there and, on the loop, forwards the captured answer to `reply`
 * (bd_reply_forward()).  `reply` is answered exactly once in every case:
 * 503 "ServerBusy" (Retry-After: 1) when the queue is full or memory is
 * short, 503 "ServiceUnavailable" when the worker was freed first.  The
 * handler gets ctx->store as it is (NULL while Redis is away): it checks. */
void bd_worker_route(bd_worker_t *w, bd_route_fn handler, const bd_request_t *req,
                     bd_reply_t *reply, char **seg, int n);

/* bd_worker_route() of bd_ngroups_handle() and bd_pools_handle() on the
 * worker's store and pools (berthd.h's contracts for req, seg and n).
 * While the worker's store is not open they answer 500 with its error
 * (BERTH_EIO), as those routes answer Redis failing.  An NGroup PUT or
 * PATCH whose body names a container group profile has it resolved first,
 * on the loop (bd_profile_resolve() on `api`), and the job carries the
 * document; a bad body or reference is answered from the loop (400, 404
 * for a profile or revision that does not exist). */
void bd_worker_ngroups(bd_worker_t *w, bd_api_t *api, const bd_request_t *req,
                       bd_reply_t *reply, char **seg, int n);
void bd_worker_pools(bd_worker_t *w, const bd_request_t *req, bd_reply_t *reply, char **seg,
                     int n);

/* Whether the cell may hold a standby pool: false once a housekeeping step
 * found none (and no pools route ran since), so that a create then skips
 * the claim (a trip to the worker) altogether.  Any thread. */
bool bd_worker_pools_present(bd_worker_t *w);

/* Notes that a standby pool may exist now (a pools route ran). */
void bd_worker_pools_seen(bd_worker_t *w);

/* Runs housekeeping on the worker every period_ms (0: stops it), the first
 * time one period from now: hosts whose heartbeat expired are marked down
 * and their groups moved (berth_store_hosts_expire(), logged), one
 * reconciliation step of the standby pools and of the NGroups, and
 * berthd's operation records (berth:{C}:operations) older than a day are
 * dropped, a bounded number of fields a step (HSCAN resumes where the last
 * step stopped).  A step never overlaps the previous one (steps missed
 * while one ran long are skipped) and waits for the job running.  Besides
 * the steps, the NGroups a step left mid-rollout or a route changed
 * (ctx->ngroups_active) are reconciled every BD_NGROUPS_FAST_MS between
 * jobs (bd_ngroups_reconcile_active()), whatever period_ms is. */
void bd_worker_housekeeping_start(bd_worker_t *w, uint32_t period_ms);

/* Queues a standby claim for the new group `key` on the worker
 * (bd_pools_claim_with(): berth_store_pool_claim_with() among the pools
 * whose names begin with pool_prefix, NULL: the key's "<subscription>/";
 * exact: from the pool named pool_prefix alone, bd_pools_claim_from()),
 * writing effects[0..n-1] in the claim's atomic step, then done on the
 * loop.  key, *req, spec, pool_prefix and the effects with every byte they
 * point at are copied.  A request naming zones or GPUs is computed again
 * from spec in the worker's engine (zone and SKU ids are an engine's own);
 * when that fails the claim reports BERTH_ENOENT (place the group anew).
 * done's status: 0 (claimed), BERTH_ENOENT (no ready member matches:
 * place anew; nothing written), a guard's BERTH_ESTALE or BERTH_EEXIST,
 * BERTH_EEXIST for a key that exists, BERTH_EINVAL, BERTH_EIO (Redis, the
 * store not open, or "Closed").  Returns 0 when queued (done then runs
 * exactly once); else BERTH_EINVAL (NULL key, req, spec or done; exact
 * with a NULL pool_prefix; n over
 * BERTH_EFFECTS_MAX or effects NULL), bd_worker_call()'s codes, and done
 * is never called. */
int bd_worker_pool_claim(bd_worker_t *w, const char *key, const berth_request_t *req,
                         const char *spec, const char *pool_prefix, bool exact,
                         const berth_effect_t *effects, size_t n, bd_claim_done_fn done,
                         void *arg);

#endif /* BERTHD_WORKER_H */
