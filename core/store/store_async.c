/*
 * store_async.c: the Redis store's asynchronous side, for a scheduler
 * daemon that runs a libevent loop.
 *
 * An asynchronous store binds a synchronous one (store.c): open() loads the
 * replica through it once, blocking, and from then on every commit goes
 * over a non-blocking hiredis connection attached to the caller's
 * event_base.  The steps are the store's: the engine chooses, the choice is
 * rolled back, FCALL berth_place commits it with the group's generation and
 * the host's epoch, and the replica applies the change from the reply while
 * its seq is the next one, else from the log.
 *
 * Calls queue their work; the queue is served in ROUNDS, one in flight at a
 * time: catch the replica up (XRANGE after the last entry, or the snapshot in
 * MULTI/EXEC when it is stale), choose every queued placement in the engine
 * so that they see one another, roll them all back in reverse, pipeline
 * their commits, read the replies in order, catch up again unless every
 * commit applied from its reply, and only then run the round's callbacks.
 * A conflict goes back to the head of the queue for the next round, at most
 * max_retries times.  A round ends after a release, so a placement queued
 * after a release sees the room it freed.  A key met twice in one round
 * waits for the next: its second commit needs the first one's generation.
 *
 * Callbacks run from a libevent event of their own, never from inside
 * hiredis or from the call that queued the work, so a callback may queue
 * more work or close the store.
 *
 * This file must never block after open, never own or run the event loop,
 * never report success for a commit whose reply it did not read, never let
 * the engine hold anything the log does not say, and never let a write to a
 * dead Redis raise SIGPIPE in the caller.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "store.h"

typedef enum job_op { JOB_PLACE = 1, JOB_RELEASE, JOB_RESTART, JOB_RECORDS, JOB_SYNC } job_op_t;

/* One call's work, from queueing to its callback; freed after it. */
typedef struct job {
    struct job *next;               /* in the queue, retry or done list     */
    berth_store_async_t *s;
    job_op_t op;
    char *key;
    char *spec;
    char *prefer;                   /* a new group's preferred host, or NULL */
    berth_request_t request;
    berth__pending_t p;
    berth__effects_t *fx;           /* the caller's effects, or NULL        */
    char expect[24];                /* JOB_RECORDS: the generation expected */
    bool pinned;                    /* with effects: the group must still be at
                                     * pin_gen (0: not placed) when committed */
    uint64_t pin_gen;
    bool keep;                      /* JOB_RELEASE: keep the group's document
                                     * (BERTH_RELEASE_KEEP_DOCUMENT)        */
    bool preempt;                   /* a Regular placement that found no room:
                                     * planned and committed in a round alone */
    uint32_t attempts;              /* commits refused so far               */
    bool reloaded;                  /* the Functions were reloaded for it   */
    bool done;                      /* in the done list                     */
    bool retrying;                  /* in the retry list                    */
    int status;
    berth_error_t err;
    berth_store_done_cb cb;
    void *data;
} job_t;

typedef struct job_list {
    job_t *head, *tail;
} job_list_t;

typedef enum phase {
    PHASE_IDLE = 0,
    PHASE_SYNC,                     /* catching up before choosing          */
    PHASE_COMMIT,                   /* commits in flight                    */
    PHASE_CATCH_UP                  /* catching up after the commits        */
} phase_t;

struct berth_store_async {
    berth_store_t *store;           /* the replica and its key names        */
    struct event_base *base;
    redisAsyncContext *ac;          /* NULL: not connected                  */
    struct event *kick;             /* runs callbacks, then the next round  */
    struct event *timer;            /* bounds each phase by timeout_ms      */
    job_list_t queue, retry, done;
    job_t **round;                  /* the current round's jobs             */
    size_t nround, round_cap;
    phase_t phase;
    size_t outstanding;             /* commit replies still awaited         */
    bool caught_up;                 /* every commit applied from its reply  */
    bool lost;                      /* the connection died in this round    */
    bool redirected;                /* a MOVED pointed elsewhere: reconnect */
    bool snapshot_moved;            /* a snapshot read inside MULTI got MOVED */
    bool need_functions;            /* load the Functions before the round  */
    bool unconfirmed;               /* the round's WAIT fell short (or failed) */
    bool delivering, close_requested, closing;
    void *ext[BERTH__ASYNC_EXTS];   /* what is built on the store, or NULL  */
    berth__async_ext_free_fn ext_free[BERTH__ASYNC_EXTS];
};

static void list_push(job_list_t *l, job_t *j)
{
    j->next = NULL;
    if (l->tail != NULL)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static job_t *list_pop(job_list_t *l)
{
    job_t *j = l->head;
    if (j != NULL) {
        l->head = j->next;
        if (l->head == NULL)
            l->tail = NULL;
        j->next = NULL;
    }
    return j;
}

/* Puts `front` before the jobs of `l`, emptying `front`. */
static void list_prepend(job_list_t *l, job_list_t *front)
{
    if (front->head == NULL)
        return;
    front->tail->next = l->head;
    if (l->tail == NULL)
        l->tail = front->tail;
    l->head = front->head;
    front->head = front->tail = NULL;
}

static void job_free(job_t *j)
{
    berth__effects_free(j->fx);
    free(j->prefer);
    free(j->key);
    free(j->spec);
    free(j);
}

/* Records the job's outcome; its callback runs at the end of the round. */
static void job_complete(job_t *j, int status)
{
    j->done = true;
    j->status = status;
    if (status == 0)
        berth_error_clear(&j->err);
    list_push(&j->s->done, j);
}

/* Completes the job with BERTH_EIO and a message naming why; `sent` when
 * its commit had gone to Redis, which may then have applied it or not. */
static void job_fail_io(job_t *j, const char *name, const char *why, bool sent)
{
    const char *url, *host;
    int port;
    berth__store_endpoint(j->s->store, &host, &port, &url);
    berth__error_set(&j->err, BERTH_EIO, name, "", "Redis at %s: %s%s", url, why,
                     sent ? "; the change may or may not have been applied" : "");
    job_complete(j, BERTH_EIO);
}

/* Sends the job round again (the retry list joins the queue's head). */
static void job_again(job_t *j)
{
    j->retrying = true;
    list_push(&j->s->retry, j);
}

/* ---- connection -------------------------------------------------------------- */

/* hiredis calls these with the context's data pointing at the store.  After
 * a failed connect or a disconnect hiredis frees the context itself. */
static void on_connect(const redisAsyncContext *ac, int status)
{
    berth_store_async_t *s = ac->data;
    if (status != REDIS_OK && s != NULL && s->ac == ac)
        s->ac = NULL;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    berth_store_async_t *s = ac->data;
    if (s != NULL && s->ac == ac)
        s->ac = NULL;
}

/* Drops the connection now: every command in flight gets its callback with
 * no reply.  Never called from inside a hiredis callback. */
static void drop_connection(berth_store_async_t *s)
{
    redisAsyncContext *ac = s->ac;
    if (ac == NULL)
        return;
    berth__redis_async_free(ac);
    s->ac = NULL;
}

static void functions_reply(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac, (void)reply, (void)data;
    /* A failure shows in the commits that follow ("Function not found"). */
}

/* A new connection (non-blocking connect) with the Functions loading first.
 * Returns 0, or -1 with `why` naming the failure. */
static int connect_start(berth_store_async_t *s, char *why, size_t cap)
{
    redisAsyncContext *ac = berth__redis_async_connect(s->store, s->base, s, why, cap);
    if (ac == NULL)
        return -1;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    s->ac = ac;
    s->need_functions = true;
    return 0;
}

/* ---- rounds ---------------------------------------------------------------------- */

static void end_round(berth_store_async_t *s);
static void commit_round(berth_store_async_t *s);
static void sync_start(berth_store_async_t *s);

static void arm_timer(berth_store_async_t *s)
{
    uint32_t ms = berth__store_options(s->store)->timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(s->timer, &tv);
}

static void kick(berth_store_async_t *s)
{
    event_active(s->kick, 0, 0);
}

/* Fails every job of the round not yet completed or sent round again. */
static void round_fail(berth_store_async_t *s, const char *name, const char *why, bool sent)
{
    for (size_t i = 0; i < s->nround; i++)
        if (!s->round[i]->done && !s->round[i]->retrying)
            job_fail_io(s->round[i], name, why, sent);
}

/* Whether `key` is already in the round. */
static bool key_seen(const berth_store_async_t *s, const char *key)
{
    for (size_t i = 0; i < s->nround; i++)
        if (strcmp(s->round[i]->key, key) == 0)
            return true;
    return false;
}

/* Takes the queue's jobs into a new round and starts it with a catch-up. */
static void start_round(berth_store_async_t *s)
{
    if (s->phase != PHASE_IDLE || s->queue.head == NULL || s->closing)
        return;
    s->nround = 0;
    while (s->queue.head != NULL) {
        if (s->nround == s->round_cap) {
            size_t cap = s->round_cap ? s->round_cap * 2 : 64;
            job_t **r = realloc(s->round, cap * sizeof *r);
            if (r == NULL)
                break; /* the rest waits for the next round */
            s->round = r;
            s->round_cap = cap;
        }
        job_t *j = list_pop(&s->queue);
        if ((j->op != JOB_SYNC && key_seen(s, j->key)) || (j->preempt && s->nround > 0)) {
            job_again(j); /* not an attempt: it waits for the first's outcome */
            continue;
        }
        j->retrying = false;
        s->round[s->nround++] = j;
        if (j->op == JOB_RELEASE || j->preempt)
            break;
    }
    if (s->nround == 0)
        return; /* no memory even for a round: the kick after the next call retries */
    s->lost = false;
    s->caught_up = true;
    if (s->redirected) {
        s->redirected = false;
        drop_connection(s);
    }
    char why[200];
    if (s->ac == NULL && connect_start(s, why, sizeof why) < 0) {
        round_fail(s, "RedisUnavailable", why, false);
        end_round(s);
        return;
    }
    if (s->need_functions) {
        s->need_functions = false;
        redisAsyncCommand(s->ac, functions_reply, NULL, "FUNCTION LOAD REPLACE %s",
                          berth__functions_source);
    }
    s->phase = PHASE_SYNC;
    sync_start(s);
}

/* After a catch-up: choose and commit, or finish the round. */
static void sync_done(berth_store_async_t *s)
{
    if (s->phase == PHASE_SYNC)
        commit_round(s);
    else
        end_round(s);
}

/* A catch-up that failed: before the commits the round fails; after them
 * the outcomes stand (Redis applied them) and the next round catches up. */
static void sync_failed(berth_store_async_t *s, const char *name, const char *why)
{
    if (s->phase == PHASE_SYNC)
        round_fail(s, name, why, false);
    end_round(s);
}

static void log_reply(redisAsyncContext *ac, void *reply, void *data);
static void snapshot_queued_reply(redisAsyncContext *ac, void *reply, void *data);
static void snapshot_reply(redisAsyncContext *ac, void *reply, void *data);

static void sync_start(berth_store_async_t *s)
{
    int rc;
    arm_timer(s);
    if (berth__store_stale(s->store)) {
        berth__snapshot_call_t c;
        berth__store_snapshot_call(s->store, &c);
        s->snapshot_moved = false;
        rc = redisAsyncCommand(s->ac, NULL, NULL, "MULTI");
        for (int i = 0; rc == REDIS_OK && i < BERTH__SNAPSHOT_READS; i++)
            rc = redisAsyncCommandArgv(s->ac, snapshot_queued_reply, s, c.argcs[i], c.argv[i],
                                       NULL);
        if (rc == REDIS_OK)
            rc = redisAsyncCommand(s->ac, snapshot_reply, s, "EXEC");
    } else {
        berth__log_call_t c;
        berth__store_log_call(s->store, &c);
        rc = redisAsyncCommandArgv(s->ac, log_reply, s, 6, c.argv, NULL);
    }
    if (rc != REDIS_OK)
        sync_failed(s, "RedisUnavailable", "the connection is closing");
}

/* A catch-up sent to a node that no longer serves the cell: the store
 * already points at the node named, and the round ends. */
static void sync_moved(berth_store_async_t *s)
{
    s->redirected = true;
    /* Nothing was committed: the round's jobs go round again. */
    if (s->phase == PHASE_SYNC) {
        for (size_t i = 0; i < s->nround; i++)
            if (!s->round[i]->done && !s->round[i]->retrying)
                job_again(s->round[i]);
        s->nround = 0;
    }
    end_round(s);
}

/* A reply that is no answer: NULL (connection lost or store closing), MOVED,
 * or an error.  Returns true when it handled the reply. */
static bool sync_reply_bad(berth_store_async_t *s, const redisReply *r)
{
    if (s->closing)
        return true;
    if (r == NULL) {
        s->lost = true;
        sync_failed(s, "RedisUnavailable", "the connection was lost while catching up");
        return true;
    }
    if (berth__reply_is_moved(r)) {
        berth__store_redirect(s->store, r, NULL);
        sync_moved(s);
        return true;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "refused to read the change log: %.200s", r->str);
        sync_failed(s, "RedisError", why);
        return true;
    }
    return false;
}

static void log_reply(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac;
    berth_store_async_t *s = data;
    if (sync_reply_bad(s, reply))
        return;
    bool more = false;
    if (berth__store_log_apply(s->store, reply, &more) != 0 || more)
        sync_start(s); /* the snapshot (stale), or the log's next page */
    else
        sync_done(s);
}

/* A snapshot read's answer to its queueing in MULTI.  In a Cluster whose
 * slot moved, the reads are refused here with MOVED and EXEC only says
 * EXECABORT, so the redirection must be taken from this reply; otherwise a
 * stale store would keep asking the old node forever. */
static void snapshot_queued_reply(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac;
    berth_store_async_t *s = data;
    const redisReply *r = reply;
    if (s->closing || r == NULL || s->snapshot_moved || !berth__reply_is_moved(r))
        return;
    if (berth__store_redirect(s->store, r, NULL) == 0)
        s->snapshot_moved = true;
}

static void snapshot_reply(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac;
    berth_store_async_t *s = data;
    if (s->snapshot_moved && !s->closing && reply != NULL) {
        s->snapshot_moved = false;
        sync_moved(s);
        return;
    }
    if (sync_reply_bad(s, reply))
        return;
    berth_error_t err;
    if (berth__store_snapshot_apply(s->store, reply, &err) < 0)
        sync_failed(s, err.name, err.message);
    else
        sync_done(s);
}

static void commit_reply(redisAsyncContext *ac, void *reply, void *data);
static void many_reply(redisAsyncContext *ac, void *reply, void *data);
static void wait_reply(redisAsyncContext *ac, void *reply, void *data);

/* The jobs of one batch call (FCALL berth_place_many), in its order. */
typedef struct many_jobs {
    berth_store_async_t *s;
    size_t n;
    job_t *jobs[BERTH__PLACE_MANY_MAX];
} many_jobs_t;


/* Sends FCALL words c (freed here) for j: REDIS_OK or REDIS_ERR. */
static int fcall_send(berth_store_async_t *s, job_t *j, berth__fcall_t *c)
{
    int rc = redisAsyncCommandArgv(s->ac, commit_reply, j, c->argc, c->argv, c->lens);
    berth__fcall_free(c);
    return rc;
}

/* Whether pinned job j's group moved past the generation its effects were
 * built for: then the job completes with BERTH_ESTALE and true. */
static bool pin_moved(berth_store_async_t *s, job_t *j)
{
    uint64_t gen = 0;
    if (!j->pinned)
        return false;
    if (berth__store_generation(s->store, j->key, &gen) < 0)
        gen = 0;
    if (gen == j->pin_gen || (gen == 0 && j->op != JOB_PLACE))
        return false;   /* a release or restart of a group gone: ENOENT */
    berth__error_set(&j->err, BERTH_ESTALE, "RecordChanged", "generation",
                     "container group '%s' is at generation %llu, not %llu", j->key,
                     (unsigned long long)gen, (unsigned long long)j->pin_gen);
    job_complete(j, BERTH_ESTALE);
    return true;
}

/* Lays out and sends job j's commit, with its effects.  Returns REDIS_OK
 * (sent), REDIS_ERR (the connection is closing) or 1 (the job is completed,
 * or goes round again, without a commit). */
static int commit_send(berth_store_async_t *s, job_t *j)
{
    /* f points into these (and into the preemption's arrays) until it is
     * sent, so they live as long as this call, not one branch. */
    berth__fcall_t f;
    berth__preempt_call_t pc = {0};
    berth__place_call_t place;
    berth__release_call_t release;
    berth__restart_call_t restart;
    char groups[BERTH__KEYNAME_MAX];
    const char *keys[1], *args[2];
    int rc;
    if (j->op == JOB_SYNC) {
        job_complete(j, 0);     /* the round's catch-up was the work */
        return 1;
    }
    if (j->op != JOB_RECORDS && j->op != JOB_PLACE && pin_moved(s, j))
        return 1;
    if (j->op == JOB_PLACE && j->preempt) {
        if (pin_moved(s, j))
            return 1;
        bool existed = berth_engine_group_get(berth__store_engine(s->store), j->key, NULL) == 0;
        rc = berth__store_preempt_call(s->store, j->key, existed, &j->request, j->spec, &pc,
                                       &j->err);
        if (rc <= 0) {
            j->preempt = false;
            if (rc == 0)
                job_again(j); /* room appeared: choose again */
            else
                job_complete(j, rc);
            return 1;
        }
        memset(&j->p, 0, sizeof j->p);
        memcpy(j->p.choice.host, pc.host, sizeof j->p.choice.host);
        j->p.choice.kind = existed ? BERTH_PLACED_STAYED : BERTH_PLACED_NEW;
        j->p.choice.demand = j->request.demand;
        j->p.choice.evicted = pc.victims;
        rc = berth__effects_fcall(j->fx ? "berth_preempt_fx" : "berth_preempt", 8, pc.argv + 3,
                                  pc.argc - 11, pc.argv + 11, pc.lens + 11, j->fx, &f, &j->err);
    } else if (j->op == JOB_PLACE) {
        if ((rc = berth__store_place_call(s->store, &j->p, &place, &j->err)) < 0) {
            job_complete(j, rc);
            return 1;
        }
        rc = berth__effects_fcall(j->fx ? "berth_place_fx" : "berth_place", 9, place.argv + 3,
                                  BERTH__PLACE_ARGC - 12, place.argv + 12, place.lens + 12, j->fx,
                                  &f, &j->err);
    } else if (j->op == JOB_RELEASE) {
        if ((rc = berth__store_release_call(s->store, j->key, j->keep, &release, &j->err)) < 0) {
            job_complete(j, rc);
            return 1;
        }
        rc = berth__effects_fcall(j->fx ? "berth_release_fx" : "berth_release", 7,
                                  release.argv + 3, 4, release.argv + 10, NULL, j->fx, &f,
                                  &j->err);
    } else if (j->op == JOB_RESTART) {
        if ((rc = berth__store_restart_call(s->store, j->key, &restart, &j->err)) < 0) {
            job_complete(j, rc);
            return 1;
        }
        rc = berth__effects_fcall("berth_restart_fx", 2, restart.keys, 3, restart.args, NULL,
                                  j->fx, &f, &j->err);
    } else {
        berth__store_key(s->store, groups, sizeof groups, "groups", "");
        keys[0] = groups;
        args[0] = j->key;
        args[1] = j->expect;
        rc = berth__effects_fcall("berth_records", 1, keys, 2, args, NULL, j->fx, &f, &j->err);
    }
    if (rc < 0) {
        berth__preempt_call_free(&pc);
        job_complete(j, rc);
        return 1;
    }
    rc = fcall_send(s, j, &f);
    berth__preempt_call_free(&pc);
    return rc;
}

/* Sends jobs[0..n-1] (chosen placements, n at most BERTH__PLACE_MANY_MAX)
 * as one batch call, counted in s->outstanding; a job that cannot go is
 * completed here.  Returns n. */
static size_t many_send(berth_store_async_t *s, job_t **jobs, size_t n)
{
    berth__many_call_t *m = calloc(1, sizeof *m);
    many_jobs_t *mj = calloc(1, sizeof *mj);
    if (m == NULL || mj == NULL) {
        for (size_t i = 0; i < n; i++) {
            berth__error_set(&jobs[i]->err, BERTH_ENOMEM, "OutOfMemory", "",
                             "no memory for a batch of commits");
            job_complete(jobs[i], BERTH_ENOMEM);
        }
        free(m);
        free(mj);
        return n;
    }
    mj->s = s;
    for (size_t i = 0; i < n; i++) {
        job_t *j = jobs[i];
        int rc = berth__many_add(s->store, m, &j->p, j->fx, &j->err);
        if (rc < 0)
            job_complete(j, rc);
        else
            mj->jobs[mj->n++] = j;
    }
    int rc = mj->n > 0 ? berth__many_finish(s->store, m, &mj->jobs[0]->err) : 0;
    if (mj->n > 0 && rc == 0 &&
        redisAsyncCommandArgv(s->ac, many_reply, mj, m->argc, m->argv, m->lens) == REDIS_OK) {
        s->outstanding++;
        mj = NULL;                  /* many_reply() frees it */
    } else {
        for (size_t i = 0; mj != NULL && i < mj->n; i++) {
            if (rc < 0)
                job_complete(mj->jobs[i], rc);
            else
                job_fail_io(mj->jobs[i], "RedisUnavailable", "the connection is closing", false);
        }
    }
    berth__many_clear(m);
    free(m);
    free(mj);
    return n;
}

/* Chooses every placement of the round in the engine, rolls them back in
 * reverse, and pipelines the commits. */
static void commit_round(berth_store_async_t *s)
{
    s->phase = PHASE_COMMIT;
    size_t n = s->nround, nchosen = 0, nothers = 0;
    job_t **others = malloc((n ? n : 1) * sizeof *others);
    if (others == NULL) {
        round_fail(s, "OutOfMemory", "no memory for a round of commits", false);
        end_round(s);
        return;
    }
    /* The placements chosen move to the front of the round array, in
     * order (a slot is only rewritten after it was read), so that the undo
     * can walk them back; releases follow them. */
    for (size_t i = 0; i < n; i++) {
        job_t *j = s->round[i];
        if (j->op != JOB_PLACE) {
            others[nothers++] = j;
            continue;
        }
        if (j->preempt) {
            others[nothers++] = j; /* alone in its round: planned below */
            continue;
        }
        memset(&j->p, 0, sizeof j->p);
        j->p.key = j->key;
        j->p.request = &j->request;
        j->p.spec = j->spec;
        j->p.prefer = j->prefer;
        if (pin_moved(s, j))
            continue;
        int rc = berth__store_choose(s->store, &j->p, &j->err);
        if (rc == BERTH_ENOSPC && j->request.priority != BERTH_PRIORITY_SPOT &&
            berth_engine_spot_count(berth__store_engine(s->store)) > 0 &&
            ++j->attempts <= berth__store_options(s->store)->max_retries + 1) {
            j->preempt = true; /* Regular: evict Spot groups, in a round alone */
            job_again(j);
            continue;
        }
        if (rc < 0) {
            job_complete(j, rc);
            continue;
        }
        s->round[nchosen++] = j;
    }
    for (size_t i = nchosen; i-- > 0;)
        berth__store_unchoose(s->store, &s->round[i]->p);
    memcpy(s->round + nchosen, others, nothers * sizeof *others);
    free(others);
    s->nround = nchosen + nothers;
    s->outstanding = 0;
    arm_timer(s);
    /* The placements chosen go in batch calls, each its own commit within
     * (berth_place_many); releases and the rest one call each. */
    for (size_t i = 0; i < nchosen;) {
        size_t take = nchosen - i < BERTH__PLACE_MANY_MAX ? nchosen - i : BERTH__PLACE_MANY_MAX;
        i += many_send(s, s->round + i, take);
    }
    for (size_t i = nchosen; i < s->nround; i++) {
        job_t *j = s->round[i];
        int rc = commit_send(s, j);
        if (rc == 1)
            continue;   /* completed or sent round again */
        if (rc != REDIS_OK)
            job_fail_io(j, "RedisUnavailable", "the connection is closing", false);
        else
            s->outstanding++;
    }
    /* The replicas the options ask for confirm the round's commits: one
     * WAIT after them on the same connection, answered after them. */
    if (s->outstanding > 0 && berth__store_options(s->store)->wait_replicas > 0) {
        berth__wait_words_t w;
        berth__wait_words(s->store, &w);
        if (redisAsyncCommandArgv(s->ac, wait_reply, s, 3, w.argv, NULL) == REDIS_OK)
            s->outstanding++;
        else
            s->unconfirmed = true;
    }
    if (s->outstanding == 0)
        end_round(s);
}

/* A refused commit: back to the queue while attempts remain. */
static void job_retry(job_t *j, const char *message)
{
    berth_store_async_t *s = j->s;
    uint32_t max = berth__store_options(s->store)->max_retries;
    if (++j->attempts <= max) {
        job_again(j);
        return;
    }
    if (j->op == JOB_PLACE)
        berth__error_set(&j->err, BERTH_ENOSPC, "ResourceNotAvailable", "",
                         "container group '%s' was not placed: the cell kept changing under "
                         "%u attempts (other schedulers took the room chosen): %s",
                         j->key, max + 1, message);
    else
        berth__error_set(&j->err, BERTH_EIO, "Conflict", "",
                         "container group '%s' was not %s: the cell kept changing "
                         "under %u attempts", j->key,
                         j->op == JOB_RELEASE ? "released" : j->op == JOB_RESTART
                             ? "restarted" : "changed", max + 1);
    job_complete(j, j->err.code);
}

/* Job j's commit answered r (a whole reply, or one answer of a batch
 * call's): the job completes or goes round again. */
static void job_answer(berth_store_async_t *s, job_t *j, const redisReply *r)
{
    if (r == NULL) {
        s->lost = true;
        s->caught_up = false;
        job_fail_io(j, "RedisUnavailable", "the connection was lost before the commit's reply",
                    true);
    } else if (berth__reply_is_moved(r)) {
        /* Not executed: follow the redirection on the next round. */
        berth__store_redirect(s->store, r, NULL);
        s->redirected = true;
        job_retry(j, "the cell moved to another Redis node");
    } else if (berth__reply_is_no_function(r) && !j->reloaded) {
        j->reloaded = true;
        s->need_functions = true;
        job_again(j);
    } else if (r->type == REDIS_REPLY_ERROR) {
        berth__error_set(&j->err, BERTH_EIO, "RedisError", "", "Redis refused a commit: %.400s",
                         r->str);
        job_complete(j, BERTH_EIO);
    } else {
        char reason[32], message[256];
        int f = berth__store_fcall_result(r, reason, sizeof reason, message, sizeof message,
                                          &j->err);
        if (f < 0) {
            job_complete(j, f);
        } else if (f == 1) {
            if (j->op == JOB_PLACE && !j->preempt)
                s->caught_up = s->caught_up && berth__store_own_apply(s->store, &j->p, r);
            else if (j->op == JOB_PLACE || j->op == JOB_RELEASE)
                s->caught_up = false;
            j->preempt = false;
            job_complete(j, 0);
        } else if ((f = berth__effects_refusal(r, reason, message, &j->err)) < 0) {
            job_complete(j, f);
        } else if ((j->op == JOB_RELEASE || j->op == JOB_RESTART) &&
                   strcmp(reason, "missing") == 0) {
            berth__error_set(&j->err, BERTH_ENOENT, "ResourceNotFound", "key", "%s", message);
            job_complete(j, BERTH_ENOENT);
        } else if ((j->op == JOB_RECORDS || j->pinned) && strcmp(reason, "generation") == 0) {
            berth__error_set(&j->err, BERTH_ESTALE, "RecordChanged", "generation", "%s",
                             message);
            job_complete(j, BERTH_ESTALE);
        } else if (strcmp(reason, "invalid") == 0) {
            char target[32] = "";
            if (r->elements > 3 && r->element[3]->type == REDIS_REPLY_INTEGER)
                snprintf(target, sizeof target, "effects[%lld]", r->element[3]->integer - 1);
            berth__error_set(&j->err, BERTH_EINVAL, "InvalidArgument", target, "%s", message);
            job_complete(j, BERTH_EINVAL);
        } else {
            s->caught_up = false; /* the retry's choice needs the cell's news */
            job_retry(j, message);
        }
    }
}

static void round_step(berth_store_async_t *s);

static void commit_reply(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac;
    job_t *j = data;
    berth_store_async_t *s = j->s;
    if (s->closing)
        return; /* close() completes the job */
    arm_timer(s);
    job_answer(s, j, reply);
    round_step(s);
}

static void many_reply(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac;
    many_jobs_t *mj = data;
    berth_store_async_t *s = mj->s;
    if (s->closing) {
        free(mj);   /* close() completes the jobs */
        return;
    }
    arm_timer(s);
    const redisReply *r = reply;
    /* A reply for the whole call (lost, MOVED, no Function, an error) is
     * every job's; else each job has its answer. */
    bool each = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == mj->n;
    for (size_t i = 0; i < mj->n; i++) {
        job_t *j = mj->jobs[i];
        if (each || r == NULL || r->type == REDIS_REPLY_ERROR) {
            job_answer(s, j, each ? r->element[i] : r);
        } else {
            berth__error_set(&j->err, BERTH_EIO, "RedisError", "",
                             "a batch of placements got a malformed answer");
            s->caught_up = false;
            job_complete(j, BERTH_EIO);
        }
    }
    free(mj);
    round_step(s);
}

/* One commit call of the round was answered. */
/* WAIT's answer for the round's commits: when the replicas did not all
 * confirm them, each commit the round applied is reported BERTH_EIO
 * ("NotReplicated") instead (the callbacks have not run yet). */
static void wait_reply(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac;
    berth_store_async_t *s = data;
    if (s->closing)
        return;
    arm_timer(s);
    berth_error_t err;
    if (!berth__wait_confirmed(s->store, reply, "the commit", &err))
        s->unconfirmed = true;
    round_step(s);
}

/* The round's applied commits, when their confirmation failed (WAIT's
 * answer short, lost or not sent), become BERTH_EIO. */
static void round_unconfirm(berth_store_async_t *s)
{
    if (!s->unconfirmed)
        return;
    s->unconfirmed = false;
    const berth_store_options_t *o = berth__store_options(s->store);
    for (size_t i = 0; i < s->nround; i++) {
        job_t *j = s->round[i];
        if (!j->done || j->status != 0 || j->op == JOB_SYNC)
            continue;
        berth__error_set(&j->err, BERTH_EIO, "NotReplicated", "",
                         "container group '%s': the change was applied by the Redis master, "
                         "but fewer than the %u replicas asked for confirmed it within %u ms; "
                         "it is not acknowledged (a master lost now could lose it): retry",
                         j->key, o->wait_replicas, o->wait_timeout_ms);
        j->status = BERTH_EIO;
    }
}

static void round_step(berth_store_async_t *s)
{
    if (--s->outstanding > 0)
        return;
    if (!s->caught_up && !s->lost && s->ac != NULL) {
        /* The engine holds every success before its callback runs. */
        s->phase = PHASE_CATCH_UP;
        sync_start(s);
        return;
    }
    end_round(s);
}

/* Finishes the round: retries go to the head of the queue, callbacks and
 * the next round run from the kick event. */
static void end_round(berth_store_async_t *s)
{
    round_unconfirm(s);
    event_del(s->timer);
    s->phase = PHASE_IDLE;
    s->nround = 0;
    s->outstanding = 0;
    list_prepend(&s->queue, &s->retry);
    kick(s);
}

/* A phase took longer than timeout_ms: Redis hangs or is unreachable.  The
 * connection is dropped, which answers everything in flight with nothing
 * (BERTH_EIO); the next round reconnects. */
static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    berth_store_async_t *s = arg;
    if (s->phase == PHASE_IDLE)
        return;
    s->lost = true;
    phase_t phase = s->phase;
    drop_connection(s);
    /* Dropping runs every callback in flight; a connect that never
     * finished, or a phase with nothing in flight, still needs ending. */
    if (s->phase == phase && s->phase != PHASE_IDLE) {
        round_fail(s, "RedisUnavailable", "no answer within the timeout",
                   phase != PHASE_SYNC);
        end_round(s);
    }
}

/* Runs the callbacks due, then the next round.  A callback may queue work
 * or close the store; close is finished here, after that callback. */
static void close_now(berth_store_async_t *s);

static void deliver(berth_store_async_t *s)
{
    s->delivering = true;
    job_t *j;
    while (!s->close_requested && (j = list_pop(&s->done)) != NULL) {
        j->cb(j->status, j->status == 0 && j->op == JOB_PLACE ? &j->p.choice : NULL,
              j->status == 0 ? NULL : &j->err, j->data);
        job_free(j);
    }
    s->delivering = false;
    if (s->close_requested) {
        close_now(s);
        return;
    }
    start_round(s);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    deliver(arg);
}

/* ---- public calls -------------------------------------------------------------- */

int berth_store_async_open(const berth_store_options_t *opts, berth_engine_t *engine,
                           struct event_base *base, berth_store_async_t **out,
                           berth_error_t *err)
{
    *out = NULL;
    if (base == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "base",
                                "no event_base given");
    berth_store_async_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a store");
    s->base = base;
    s->kick = event_new(base, -1, 0, on_kick, s);
    s->timer = evtimer_new(base, on_timeout, s);
    if (s->kick == NULL || s->timer == NULL) {
        berth_store_async_close(s);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for the store's events");
    }
    int rc = berth_store_open(opts, engine, &s->store, err);
    if (rc < 0) {
        berth_store_async_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Queues a job; the kick starts a round on the loop's next turn, so calls
 * made in one turn share a round. */
static int job_queue(berth_store_async_t *s, job_op_t op, const char *key,
                     const berth_request_t *request, const char *spec, const char *prefer,
                     const berth_effect_t *effects, size_t neffects, int64_t expect,
                     berth_store_done_cb cb, void *data, berth_error_t *err)
{
    if (s == NULL || cb == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                                "no store or no callback given");
    if (s->closing || s->close_requested)
        return berth__error_set(err, BERTH_EIO, "Closed", "", "the store is closing");
    if (op != JOB_SYNC && berth__group_key_check(key, err) < 0)
        return BERTH_EINVAL;
    if (op == JOB_PLACE && request == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "request",
                                "no request given");
    berth__effects_t *fx = NULL;
    int rc = berth__effects_copy(s->store, effects, neffects, &fx, err);
    if (rc < 0)
        return rc;
    job_t *j = calloc(1, sizeof *j);
    if (j == NULL) {
        berth__effects_free(fx);
    } else {
        j->fx = fx;
        j->key = strdup(key);
        j->spec = spec != NULL ? strdup(spec) : NULL;
        j->prefer = prefer != NULL ? strdup(prefer) : NULL;
        if (fx != NULL && op != JOB_RECORDS) {
            j->pinned = true;
            if (berth__store_generation(s->store, key, &j->pin_gen) < 0)
                j->pin_gen = 0;
        }
        if (expect >= 0)
            snprintf(j->expect, sizeof j->expect, "%lld", (long long)expect);
    }
    if (j == NULL || j->key == NULL || (spec != NULL && j->spec == NULL) ||
        (prefer != NULL && j->prefer == NULL)) {
        if (j != NULL)
            job_free(j);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a call");
    }
    j->s = s;
    j->op = op;
    if (request != NULL)
        j->request = *request;
    j->cb = cb;
    j->data = data;
    list_push(&s->queue, j);
    if (s->phase == PHASE_IDLE && !s->delivering)
        kick(s);
    return 0;
}

int berth_store_async_place(berth_store_async_t *s, const char *key,
                            const berth_request_t *request, const char *spec_json,
                            berth_store_done_cb cb, void *data, berth_error_t *err)
{
    return job_queue(s, JOB_PLACE, key, request, spec_json, NULL, NULL, 0, -1, cb, data, err);
}

int berth_store_async_release(berth_store_async_t *s, const char *key,
                              berth_store_done_cb cb, void *data, berth_error_t *err)
{
    return job_queue(s, JOB_RELEASE, key, NULL, NULL, NULL, NULL, 0, -1, cb, data, err);
}

int berth_store_async_place_with(berth_store_async_t *s, const char *key,
                                 const berth_request_t *request, const char *spec_json,
                                 const berth_effect_t *effects, size_t n,
                                 berth_store_done_cb cb, void *data, berth_error_t *err)
{
    return job_queue(s, JOB_PLACE, key, request, spec_json, NULL, effects, n, -1, cb, data, err);
}

int berth_store_async_place_prefer_with(berth_store_async_t *s, const char *key,
                                        const berth_request_t *request, const char *spec_json,
                                        const char *prefer_host, const berth_effect_t *effects,
                                        size_t n, berth_store_done_cb cb, void *data,
                                        berth_error_t *err)
{
    return job_queue(s, JOB_PLACE, key, request, spec_json, prefer_host, effects, n, -1, cb,
                     data, err);
}

int berth_store_async_release_with(berth_store_async_t *s, const char *key, unsigned flags,
                                   const berth_effect_t *effects, size_t n,
                                   berth_store_done_cb cb, void *data, berth_error_t *err)
{
    if (flags & ~BERTH_RELEASE_KEEP_DOCUMENT)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "flags",
                                "unknown release flags 0x%x", flags);
    int rc = job_queue(s, JOB_RELEASE, key, NULL, NULL, NULL, effects, n, -1, cb, data, err);
    if (rc == 0)    /* job_queue() appended the job to the queue's tail */
        s->queue.tail->keep = (flags & BERTH_RELEASE_KEEP_DOCUMENT) != 0;
    return rc;
}

int berth_store_async_restart(berth_store_async_t *s, const char *key,
                              const berth_effect_t *effects, size_t n, berth_store_done_cb cb,
                              void *data, berth_error_t *err)
{
    return job_queue(s, JOB_RESTART, key, NULL, NULL, NULL, effects, n, -1, cb, data, err);
}

int berth_store_async_records(berth_store_async_t *s, const char *key, int64_t generation,
                              const berth_effect_t *effects, size_t n, berth_store_done_cb cb,
                              void *data, berth_error_t *err)
{
    if (generation < -1)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "generation",
                                "a generation is -1 (any), 0 (not placed) or above");
    return job_queue(s, JOB_RECORDS, key, NULL, NULL, NULL, effects, n, generation, cb, data, err);
}

static void job_fail_closed(job_t *j)
{
    berth__error_set(&j->err, BERTH_EIO, "Closed", "",
                     "the store was closed before container group '%s' was %s", j->key,
                     j->op == JOB_PLACE ? "committed (it may or may not have been)"
                                        : "released (it may or may not have been)");
    job_complete(j, BERTH_EIO);
}

static void close_now(berth_store_async_t *s)
{
    s->closing = true;
    s->close_requested = false;
    drop_connection(s); /* the reply callbacks see `closing` and leave the jobs */
    for (size_t i = 0; i < s->nround; i++)
        if (!s->round[i]->done && !s->round[i]->retrying)
            job_fail_closed(s->round[i]);
    s->nround = 0;
    job_t *j;
    while ((j = list_pop(&s->retry)) != NULL)
        job_fail_closed(j);
    while ((j = list_pop(&s->queue)) != NULL)
        job_fail_closed(j);
    /* Outcomes already known keep their status; the rest say "Closed". */
    while ((j = list_pop(&s->done)) != NULL) {
        j->cb(j->status, j->status == 0 && j->op == JOB_PLACE ? &j->p.choice : NULL,
              j->status == 0 ? NULL : &j->err, j->data);
        job_free(j);
    }
    for (int i = BERTH__ASYNC_EXTS - 1; i >= 0; i--) {
        if (s->ext[i] != NULL && s->ext_free[i] != NULL)
            s->ext_free[i](s->ext[i]);
        s->ext[i] = NULL;
    }
    if (s->kick != NULL)
        event_free(s->kick);
    if (s->timer != NULL)
        event_free(s->timer);
    berth_store_close(s->store);
    free(s->round);
    free(s);
}

int berth_store_async_sync(berth_store_async_t *s, berth_store_done_cb cb, void *data,
                           berth_error_t *err)
{
    return job_queue(s, JOB_SYNC, "", NULL, NULL, NULL, NULL, 0, -1, cb, data, err);
}

int berth_store_async_generation(berth_store_async_t *s, const char *key,
                                 uint64_t *generation)
{
    return berth__store_generation(s->store, key, generation);
}

berth_engine_t *berth_store_async_engine(berth_store_async_t *s)
{
    return berth__store_engine(s->store);
}

berth_store_t *berth__store_async_sync(berth_store_async_t *s)
{
    return s->store;
}

struct event_base *berth__store_async_base(berth_store_async_t *s)
{
    return s->base;
}

void **berth__store_async_ext(berth_store_async_t *s, berth__async_ext_t which,
                             berth__async_ext_free_fn free_fn)
{
    s->ext_free[which] = free_fn;
    return &s->ext[which];
}

void berth_store_async_close(berth_store_async_t *s)
{
    if (s == NULL || s->closing)
        return;
    if (s->delivering) {
        s->close_requested = true; /* finished by deliver() after this callback */
        return;
    }
    close_now(s);
}
