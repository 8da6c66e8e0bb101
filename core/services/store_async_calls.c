/*
 * store_async_calls.c: the asynchronous store's reads and agent calls
 * (berth.h, "The Redis store, asynchronous: reads and agent calls"): the
 * synchronous store's reads of instance views, usage metrics, group records, evictions
 * and image sets, and its logs and exec calls to agents, for a daemon's
 * libevent loop.
 *
 * Every call becomes an OP that moves through STEPS: one command on the
 * command connection (HGET, XADD, LPOP, or a MULTI of SMEMBERS for a slice
 * of hosts) or, for an agent call, a wait for its answer.  Steps are sent
 * only by the PUMP, which runs from the kick event after the callbacks
 * due: never from inside hiredis or from the call that queued the op, so a
 * connection is made, dropped or replaced only where hiredis allows it.  A
 * reply moves its op to its next step (back on the queue) or completes it
 * (on the done list).  Each op has one timer: the store's timeout_ms while
 * a step waits on Redis, the call's own timeout_ms while an agent call
 * waits for its answer.
 *
 * Agent calls never block a connection.  A second connection SUBSCRIBEs to
 * berth:{C}:replies, on which an agent announces every answer it writes
 * (calls.c), and no call's XADD is sent before that subscription is
 * confirmed.  From its XADD on, an agent call sits in a table by its reply
 * key; an announcement naming it queues an LPOP of the key, and an LPOP
 * that finds nothing (an announcement heard twice) goes back to waiting.
 * When the call's time is up one last LPOP decides, and every call still
 * waiting when a lost subscription is made again makes one, so an answer
 * whose announcement was missed is still read.
 *
 * A lost connection completes each op with a command in flight on it with
 * BERTH_EIO; a step that outlives its timeout drops the connection (Redis
 * hangs), which does the same for the ops behind it.  A subscription lost
 * is made again at once while calls wait; one that cannot be made fails
 * them.  A MOVED reply points the store at the node named; nothing more is
 * sent until every command in flight is answered, then the command
 * connection is replaced and the op sent again (once per op, as
 * berth__store_command() does, store_conn.c).
 *
 * This file must never block, never own or run the event loop, never send
 * a blocking command (BLPOP), never run a callback from inside the call
 * that queued it or from inside hiredis, never complete an op while
 * hiredis still holds a callback for it, and never let a write to a dead
 * Redis raise SIGPIPE (redis_async.c's handlers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "store.h"

#define SLICE_HOSTS 256u            /* hosts whose image sets one round trip reads */
#define TABLE_SIZE 256u             /* buckets of the table of waiting calls */

typedef enum op_kind {
    OP_VIEW = 1,
    OP_METRICS,
    OP_GROUP,
    OP_DOCUMENT,                    /* a group read, else the kept document */
    OP_EVICTION,
    OP_LOGS,
    OP_EXEC,
    OP_IMAGES_LIST,
    OP_IMAGES_SYNC
} op_kind_t;

typedef enum op_step {
    STEP_READ = 1,                  /* HGET: a view, an eviction, a group
                                     * record (a group read's, or the host of
                                     * an agent call) or a kept document    */
    STEP_ADD,                       /* XADD to the host's call stream       */
    STEP_WAIT,                      /* until the answer is announced        */
    STEP_FETCH,                     /* LPOP of the reply key                */
    STEP_SLICE                      /* MULTI of SMEMBERS, a slice of hosts  */
} op_step_t;

typedef struct berth__async_calls berth__async_calls_t;
typedef struct op op_t;

typedef struct op_list {
    op_t *head, *tail;
} op_list_t;

/* One call, from its queueing to its callback; freed after it. */
struct op {
    op_t *prev, *next;              /* in `list`                            */
    op_list_t *list;                /* the queue, the done list, or NULL    */
    op_t *tprev, *tnext;            /* in the table of waiting calls        */
    bool in_table;
    berth__async_calls_t *c;
    op_kind_t kind;
    op_step_t step;
    struct event *timer;
    bool agent_timer;               /* the timer bounds the agent's answer  */
    bool expired;                   /* the agent's time is up: last LPOP    */
    bool announced;                 /* announced while a command was out   */
    bool timed_out;                 /* its own timer dropped the connection */
    bool redirected;                /* a MOVED was followed for it          */
    bool slice_moved, slice_failed; /* a SMEMBERS inside MULTI was refused  */
    bool kept;                      /* OP_DOCUMENT: no record, so the read
                                     * of the documents hash is out         */
    char *key, *container, *argv_json;
    uint32_t tail, timeout_ms;
    bool timestamps;
    char host[BERTH_NAME_MAX + 1];
    berth__call_add_t add;          /* an agent call's XADD and reply key   */
    char (*hosts)[BERTH_NAME_MAX + 1]; /* image reads: the engine's hosts  */
    size_t nhosts, next_host, nslice;
    char **images;                  /* images_list: sorted, each once       */
    size_t nimages, images_cap;
    int status;
    berth_error_t err;
    char *text;                     /* a view, a document or an output      */
    size_t len;
    int exit_code;
    uint64_t generation;
    berth_eviction_t eviction;
    union {
        berth_store_read_cb read;
        berth_store_group_cb group;
        berth_store_eviction_cb eviction;
        berth_store_call_cb call;
        berth_store_images_cb images;
    } cb;
    void *data;
};

struct berth__async_calls {
    berth_store_t *sync;            /* key names, endpoint, options, engine */
    struct event_base *base;
    struct event *kick;             /* runs the callbacks, then the pump    */
    redisAsyncContext *cmd;         /* commands; NULL: not connected        */
    redisAsyncContext *sub;         /* the subscription; NULL: none         */
    bool subscribed;                /* SUBSCRIBE confirmed on sub           */
    bool sub_broken;                /* sub answered an error: drop it       */
    bool moved;                     /* replace cmd once nothing is in flight */
    size_t inflight;                /* commands on cmd not yet answered     */
    char why[160];                  /* why cmd's commands got no reply      */
    char sub_why[160];              /* why sub ended                        */
    op_list_t queue, done;
    op_t *table[TABLE_SIZE];
    bool delivering, closing, dead;
    char channel[BERTH__KEYNAME_MAX];
};

/* ---- lists and the table -------------------------------------------------------- */

static void list_push(op_list_t *l, op_t *op)
{
    op->next = NULL;
    op->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
    op->list = l;
}

static void list_remove(op_t *op)
{
    op_list_t *l = op->list;
    if (l == NULL)
        return;
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->prev = op->next = NULL;
    op->list = NULL;
}

static op_t *list_pop(op_list_t *l)
{
    op_t *op = l->head;
    if (op != NULL)
        list_remove(op);
    return op;
}

static size_t table_slot(const char *reply, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)reply[i]) * 16777619u;
    return h % TABLE_SIZE;
}

static void table_add(op_t *op)
{
    op_t **b = &op->c->table[table_slot(op->add.reply, strlen(op->add.reply))];
    op->tprev = NULL;
    op->tnext = *b;
    if (*b != NULL)
        (*b)->tprev = op;
    *b = op;
    op->in_table = true;
}

static void table_remove(op_t *op)
{
    if (!op->in_table)
        return;
    if (op->tprev != NULL)
        op->tprev->tnext = op->tnext;
    else
        op->c->table[table_slot(op->add.reply, strlen(op->add.reply))] = op->tnext;
    if (op->tnext != NULL)
        op->tnext->tprev = op->tprev;
    op->tprev = op->tnext = NULL;
    op->in_table = false;
}

static op_t *table_find(berth__async_calls_t *c, const char *reply, size_t len)
{
    for (op_t *op = c->table[table_slot(reply, len)]; op != NULL; op = op->tnext)
        if (strlen(op->add.reply) == len && memcmp(op->add.reply, reply, len) == 0)
            return op;
    return NULL;
}

/* ---- outcomes ------------------------------------------------------------------------ */

static void kick(berth__async_calls_t *c)
{
    event_active(c->kick, 0, 0);
}

static uint32_t redis_ms(const berth__async_calls_t *c)
{
    return berth__store_options(c->sync)->timeout_ms;
}

static void arm(op_t *op, uint32_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(op->timer, &tv);
}

/* What the op's step is doing, in the words of the store and calls.c. */
static const char *op_what(const op_t *op)
{
    switch (op->step) {
    case STEP_READ:
        return op->kind == OP_VIEW ? "reading an instance view"
             : op->kind == OP_METRICS ? "reading usage metrics"
             : op->kind == OP_EVICTION ? "reading an eviction" : "reading a container group";
    case STEP_ADD:
        return "calling the agent";
    case STEP_WAIT:
    case STEP_FETCH:
        return "waiting for the agent";
    case STEP_SLICE:
        break;
    }
    return "reading the hosts' images";
}

/* Completes the op with `status` (its err already filled when negative);
 * its callback runs from the kick.  No command of it may be in flight. */
static void op_finish(op_t *op, int status)
{
    berth__async_calls_t *c = op->c;
    table_remove(op);
    list_remove(op);
    evtimer_del(op->timer);
    op->status = status;
    if (status == 0)
        berth_error_clear(&op->err);
    list_push(&c->done, op);
    if (!c->closing)
        kick(c);
}

static void op_unavailable(op_t *op, const char *why)
{
    const char *host, *url;
    int port;
    berth__store_endpoint(op->c->sync, &host, &port, &url);
    berth__error_set(&op->err, BERTH_EIO, "RedisUnavailable", "",
                     "Redis at %s is unavailable while %s: %s", url, op_what(op), why);
    op_finish(op, BERTH_EIO);
}

static void refused(op_t *op, const redisReply *r)
{
    berth__error_set(&op->err, BERTH_EIO, "RedisError", "", "Redis refused %s: %.*s",
                     op_what(op), (int)(r->len > 400 ? 400 : r->len), r->str);
}

static void op_closed(op_t *op)
{
    berth__error_set(&op->err, BERTH_EIO, "Closed", "", "the store was closed while %s%s",
                     op_what(op), op->kind == OP_EXEC && op->in_table
                         ? " (the command may or may not have run)" : "");
    op_finish(op, BERTH_EIO);
}

/* Puts the op on the queue for `step`; a new step may follow a MOVED
 * once more (berth__store_command() follows one per command). */
static void op_queue(op_t *op, op_step_t step)
{
    if (step != op->step)
        op->redirected = false;
    op->step = step;
    list_push(&op->c->queue, op);
    kick(op->c);
}

/* ---- replies -------------------------------------------------------------------------- */

/* An HGET's text (a view, or the document the cell keeps for a group
 * that is not placed) as the op's text: finishes the op either way. */
static void read_text(op_t *op, const redisReply *r, const char *missing)
{
    if (r->type != REDIS_REPLY_STRING) {
        op_finish(op, berth__error_set(&op->err, BERTH_ENOENT, "ResourceNotFound", "key",
                                       "container group '%s' %s", op->key, missing));
        return;
    }
    if ((op->text = malloc(r->len + 1)) == NULL) {
        op_finish(op, berth__error_set(&op->err, BERTH_ENOMEM, "OutOfMemory", "",
                                       "no memory for a text read"));
        return;
    }
    memcpy(op->text, r->str, r->len);
    op->text[r->len] = '\0';
    op->len = r->len;
    op->generation = 0;
    op_finish(op, 0);
}

/* store_read.c's berth__store_eviction_read(), from its HGET's reply. */
static void read_eviction(op_t *op, const redisReply *r)
{
    if (r->type != REDIS_REPLY_STRING) {
        op_finish(op, berth__error_set(&op->err, BERTH_ENOENT, "ResourceNotFound", "key",
                                       "container group '%s' has no eviction record",
                                       op->key));
        return;
    }
    json_t *j = json_loadb(r->str, r->len, 0, NULL);
    const char *host = json_string_value(json_object_get(j, "host"));
    const char *by = json_string_value(json_object_get(j, "by"));
    const char *time = json_string_value(json_object_get(j, "time"));
    char *end = NULL;
    unsigned long long ms = time != NULL ? strtoull(time, &end, 10) : 0;
    berth_eviction_t *e = &op->eviction;
    int rc = 0;
    if (host == NULL || by == NULL || time == NULL || end == time || *end != '\0' ||
        strlen(host) > BERTH_NAME_MAX || strlen(by) >= sizeof e->by) {
        rc = berth__error_set(&op->err, BERTH_EINVAL, "CorruptRecord", "key",
                              "the eviction record of container group '%s' is malformed",
                              op->key);
    } else {
        memcpy(e->host, host, strlen(host) + 1);
        memcpy(e->by, by, strlen(by) + 1);
        e->time_ms = ms;
    }
    json_decref(j);
    op_finish(op, rc);
}

/* store_read.c's berth__store_group_record() from its HGET's reply: a
 * group read completes, an agent call goes on to its XADD on the record's host. */
static void read_group(op_t *op, const redisReply *r)
{
    if (r->type != REDIS_REPLY_STRING && op->kind == OP_DOCUMENT) {
        op->kept = true;            /* not placed: a kept document, maybe */
        op_queue(op, STEP_READ);
        return;
    }
    if (r->type != REDIS_REPLY_STRING) {
        op_finish(op, berth__error_set(&op->err, BERTH_ENOENT, "ResourceNotFound", "key",
                                       "container group '%s' is not in the cell", op->key));
        return;
    }
    berth__group_record_t g;
    int rc = berth__group_record_decode(r->str, r->len, &g, &op->err);
    if (rc < 0) {
        if (rc == BERTH_EINVAL) {
            rc = BERTH_EIO; /* a record Redis holds is unreadable: the store's fault */
            op->err.code = rc;
        }
        op_finish(op, rc);
        return;
    }
    if (op->kind == OP_DOCUMENT && g.spec.ptr == NULL) {
        op_finish(op, berth__error_set(&op->err, BERTH_ENOENT, "ResourceNotFound", "key",
                                       "container group '%s' has no document", op->key));
        return;
    }
    if (op->kind != OP_LOGS && op->kind != OP_EXEC && g.spec.ptr != NULL) {
        if ((op->text = malloc(g.spec.len + 1)) == NULL) {
            op_finish(op, berth__error_set(&op->err, BERTH_ENOMEM, "OutOfMemory", "",
                                           "no memory for a document"));
            return;
        }
        memcpy(op->text, g.spec.ptr, g.spec.len);
        op->text[g.spec.len] = '\0';
    }
    if (g.host.ptr == NULL || g.host.len >= sizeof op->host) {
        op_finish(op, berth__error_set(&op->err, BERTH_EIO, "UnreadableRecord", "key",
                                       "container group '%s' names an unreadable host",
                                       op->key));
        return;
    }
    memcpy(op->host, g.host.ptr, g.host.len);
    op->host[g.host.len] = '\0';
    op->generation = g.generation;
    if (op->kind == OP_GROUP || op->kind == OP_DOCUMENT) {
        op_finish(op, 0);
        return;
    }
    rc = berth__call_add_build(op->c->sync, &op->add, op->kind == OP_LOGS ? "logs" : "exec",
                               op->key, op->container, op->host, op->tail, op->timestamps,
                               op->argv_json, op->timeout_ms, &op->err);
    if (rc < 0) {
        op_finish(op, rc);
        return;
    }
    op_queue(op, STEP_ADD);
}

/* The call is on the host's stream: from now on its agent's time runs. */
static void added(op_t *op)
{
    op->agent_timer = true;
    arm(op, op->timeout_ms);
    if (op->announced) {
        op_queue(op, STEP_FETCH);
        return;
    }
    op->step = STEP_WAIT;
    kick(op->c); /* the pump makes the subscription again if it was lost */
}

static void fetched(op_t *op, const redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING) {
        char *out = NULL;
        size_t n = 0;
        int code = 0;
        int rc = berth__call_answer_parse(r->str, r->len, &out, &n, &code, &op->err);
        if (rc == 0) {
            op->text = out;
            op->len = n;
            op->exit_code = op->kind == OP_EXEC ? code : 0;
        }
        op_finish(op, rc);
        return;
    }
    /* Nothing there (yet): an announcement heard twice, or none at all. */
    if (op->expired) {
        op_finish(op, berth__call_unanswered(&op->err, op->host, op->timeout_ms));
        return;
    }
    if (op->announced) {
        op_queue(op, STEP_FETCH); /* announced while this LPOP was out */
        return;
    }
    op->step = STEP_WAIT;
    kick(op->c); /* the pump makes the subscription again if it was lost */
}

/* Members of a host's image set that are image references, at most
 * BERTH_HOST_IMAGES_MAX (store_images.c's rule: a set is data, never trusted).
 * Stores their count in *n and fills names (r->elements entries). */
static int image_members(const redisReply *r, const char *host, const char **names, size_t *n,
                         berth_error_t *err)
{
    *n = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        return berth__error_set(err, BERTH_EIO, "RedisError", "images",
                                "the images of host '%s' are not a set", host);
    for (size_t i = 0; i < r->elements && *n < BERTH_HOST_IMAGES_MAX; i++) {
        const redisReply *x = r->element[i];
        if (x->type == REDIS_REPLY_STRING && strlen(x->str) == x->len &&
            berth_image_hash(x->str) != 0)
            names[(*n)++] = x->str;
    }
    return 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds a host's images to the list, which stays sorted and each once. */
static int images_collect(op_t *op, const char *const *names, size_t n)
{
    if (op->nimages + n > op->images_cap) {
        size_t cap = op->images_cap ? op->images_cap : 64;
        while (cap < op->nimages + n)
            cap *= 2;
        char **v = realloc(op->images, cap * sizeof *v);
        if (v == NULL)
            return berth__error_set(&op->err, BERTH_ENOMEM, "OutOfMemory", "",
                                    "no memory for the hosts' images");
        op->images = v;
        op->images_cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        if ((op->images[op->nimages] = strdup(names[i])) == NULL)
            return berth__error_set(&op->err, BERTH_ENOMEM, "OutOfMemory", "",
                                    "no memory for the hosts' images");
        op->nimages++;
    }
    qsort(op->images, op->nimages, sizeof *op->images, compare_strings);
    size_t kept = 0;
    for (size_t i = 0; i < op->nimages; i++) {
        if (kept > 0 && strcmp(op->images[kept - 1], op->images[i]) == 0)
            free(op->images[i]);
        else
            op->images[kept++] = op->images[i];
    }
    op->nimages = kept;
    return 0;
}

/* EXEC's reply for a slice of hosts (berth__store_transaction()'s checks,
 * then store_images.c's loading, or the list's collecting). */
static void sliced(op_t *op, const redisReply *x)
{
    size_t m = op->nslice;
    if (x->type != REDIS_REPLY_ARRAY || x->elements != m) {
        op_finish(op, berth__error_set(&op->err, BERTH_EIO, "RedisError", "",
                                       "Redis aborted the transaction while %s", op_what(op)));
        return;
    }
    for (size_t i = 0; i < m; i++)
        if (x->element[i]->type == REDIS_REPLY_ERROR) {
            refused(op, x->element[i]);
            op_finish(op, BERTH_EIO);
            return;
        }
    size_t most = 1;
    for (size_t i = 0; i < m; i++)
        if (x->element[i]->type == REDIS_REPLY_ARRAY && x->element[i]->elements > most)
            most = x->element[i]->elements;
    const char **names = malloc(most * sizeof *names);
    if (names == NULL) {
        op_finish(op, berth__error_set(&op->err, BERTH_ENOMEM, "OutOfMemory", "",
                                       "no memory for the images of a host"));
        return;
    }
    berth_engine_t *e = berth__store_engine(op->c->sync);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m; i++) {
        const char *host = op->hosts[op->next_host + i];
        size_t n;
        rc = image_members(x->element[i], host, names, &n, &op->err);
        if (rc == 0 && op->kind == OP_IMAGES_SYNC) {
            rc = berth_engine_host_images_set(e, host, names, n, &op->err);
            if (rc == BERTH_ENOENT)
                rc = 0; /* a host removed meanwhile */
        } else if (rc == 0) {
            rc = images_collect(op, names, n);
        }
    }
    free(names);
    op->next_host += m;
    if (rc < 0 || op->next_host >= op->nhosts) {
        op_finish(op, rc);
        return;
    }
    op->redirected = false;
    op_queue(op, STEP_SLICE);
}

/* A MOVED reply: the store now points at the node named, and the op goes
 * again once the command connection is replaced; a second one is refused,
 * as berth__store_command() does. */
static void follow(op_t *op, const redisReply *r)
{
    if (op->redirected) {
        refused(op, r);
        op_finish(op, BERTH_EIO);
        return;
    }
    int rc = berth__store_redirect(op->c->sync, r, &op->err);
    if (rc < 0) {
        op_finish(op, rc);
        return;
    }
    op->redirected = true;
    op->c->moved = true;
    op_queue(op, op->step);
}

/* Every command's reply that ends a step.  reply NULL: the connection is
 * going away (hiredis frees it after its callbacks). */
static void on_reply(redisAsyncContext *ac, void *reply, void *data)
{
    op_t *op = data;
    berth__async_calls_t *c = op->c;
    const redisReply *r = reply;
    c->inflight--;
    if (r == NULL && c->cmd == ac)
        c->cmd = NULL;
    if (c->closing) {
        op_closed(op);
        return;
    }
    if (c->moved && c->inflight == 0)
        kick(c); /* the connection can be replaced now */
    if (r == NULL) {
        char why[200];
        if (op->timed_out)
            snprintf(why, sizeof why, "no answer within %u ms", redis_ms(c));
        op_unavailable(op, op->timed_out ? why : c->why);
        return;
    }
    if (op->step == STEP_SLICE && op->slice_failed) {
        op_finish(op, op->err.code);
        return;
    }
    if (op->step == STEP_SLICE && op->slice_moved) {
        op->redirected = true;
        op_queue(op, STEP_SLICE);
        return;
    }
    if (berth__reply_is_moved(r)) {
        follow(op, r);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        refused(op, r);
        op_finish(op, BERTH_EIO);
        return;
    }
    switch (op->step) {
    case STEP_READ:
        if (op->kind == OP_VIEW)
            read_text(op, r, "has no instance view");
        else if (op->kind == OP_METRICS)
            read_text(op, r, "has no usage metrics");
        else if (op->kind == OP_EVICTION)
            read_eviction(op, r);
        else if (op->kind == OP_DOCUMENT && op->kept)
            read_text(op, r, "is not in the cell");
        else
            read_group(op, r);
        break;
    case STEP_ADD:
        added(op);
        break;
    case STEP_FETCH:
        fetched(op, r);
        break;
    case STEP_SLICE:
        sliced(op, r);
        break;
    case STEP_WAIT:
        break;
    }
}

/* The replies to MULTI and to the SMEMBERS queued inside it.  In a Cluster
 * whose slot moved the reads are refused here with MOVED and EXEC only
 * says EXECABORT, so the redirection is taken from these. */
static void on_queued(redisAsyncContext *ac, void *reply, void *data)
{
    op_t *op = data;
    berth__async_calls_t *c = op->c;
    const redisReply *r = reply;
    c->inflight--;
    if (r == NULL && c->cmd == ac)
        c->cmd = NULL;
    if (c->closing || r == NULL || op->slice_moved || op->slice_failed ||
        !berth__reply_is_moved(r))
        return;
    if (op->redirected) {
        refused(op, r);
        op->slice_failed = true;
    } else if (berth__store_redirect(c->sync, r, &op->err) < 0) {
        op->slice_failed = true;
    } else {
        op->slice_moved = true;
        c->moved = true;
    }
}

/* ---- connections -------------------------------------------------------------------- */

/* A new non-blocking connection to where the store points now.  Returns
 * 0, or -1 with `why` naming the failure. */
static int connect_new(berth__async_calls_t *c, redisAsyncContext **out, char *why, size_t cap)
{
    redisAsyncContext *ac = berth__redis_async_connect(c->sync, c->base, c, why, cap);
    if (ac == NULL)
        return -1;
    *out = ac;
    return 0;
}

/* After a failed connect hiredis frees the context itself, without a
 * disconnect callback: the pointer must be forgotten here. */
static void on_cmd_connect(const redisAsyncContext *ac, int status)
{
    berth__async_calls_t *c = ac->data;
    if (status == REDIS_OK)
        return;
    snprintf(c->why, sizeof c->why, "cannot connect: %s", ac->errstr ? ac->errstr : "?");
    if (c->cmd == ac)
        c->cmd = NULL;
}

static void on_cmd_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    berth__async_calls_t *c = ac->data;
    if (c->cmd == ac)
        c->cmd = NULL;
}

static int cmd_start(berth__async_calls_t *c)
{
    redisAsyncContext *ac;
    if (connect_new(c, &ac, c->why, sizeof c->why) < 0)
        return -1;
    redisAsyncSetConnectCallback(ac, on_cmd_connect);
    redisAsyncSetDisconnectCallback(ac, on_cmd_disconnect);
    c->cmd = ac;
    snprintf(c->why, sizeof c->why, "the connection was lost");
    return 0;
}

/* Drops the command connection now: every command in flight gets its
 * callback with no reply.  Never called from inside a hiredis callback. */
static void drop_cmd(berth__async_calls_t *c, const char *why)
{
    redisAsyncContext *ac = c->cmd;
    if (ac == NULL)
        return;
    snprintf(c->why, sizeof c->why, "%s", why);
    c->cmd = NULL;
    berth__redis_async_free(ac);
}

/* The calls that cannot go on without a subscription: those whose XADD
 * waits for one, and those waiting for an announcement. */
static void sub_failed(berth__async_calls_t *c, const char *why)
{
    for (op_t *op = c->queue.head, *next; op != NULL; op = next) {
        next = op->next;
        if (op->step == STEP_ADD) {
            char msg[240];
            snprintf(msg, sizeof msg, "cannot subscribe to the agents' answers: %s", why);
            op_unavailable(op, msg);
        }
    }
    for (size_t i = 0; i < TABLE_SIZE; i++)
        for (op_t *op = c->table[i], *next; op != NULL; op = next) {
            next = op->tnext;
            if (op->step == STEP_WAIT && op->list == NULL)
                op_unavailable(op, why);
        }
}

static bool sub_needed(const berth__async_calls_t *c)
{
    for (const op_t *op = c->queue.head; op != NULL; op = op->next)
        if (op->step == STEP_ADD)
            return true;
    for (size_t i = 0; i < TABLE_SIZE; i++)
        for (const op_t *op = c->table[i]; op != NULL; op = op->tnext)
            if (op->step == STEP_WAIT && op->list == NULL)
                return true;
    return false;
}

/* Confirmed (again): every call waiting looks once, in case its answer
 * was announced while nobody listened. */
static void subscribed(berth__async_calls_t *c)
{
    c->subscribed = true;
    for (size_t i = 0; i < TABLE_SIZE; i++)
        for (op_t *op = c->table[i]; op != NULL; op = op->tnext)
            if (op->step == STEP_WAIT && op->list == NULL)
                op_queue(op, STEP_FETCH);
    kick(c);
}

static void announced(berth__async_calls_t *c, const redisReply *name)
{
    op_t *op = table_find(c, name->str, name->len);
    if (op == NULL)
        return; /* another caller's answer, or one already read */
    if (op->step == STEP_WAIT && op->list == NULL)
        op_queue(op, STEP_FETCH);
    else
        op->announced = true; /* its XADD or LPOP is out: look again after it */
}

/* The SUBSCRIBE's callback: its confirmation, then every message.  NULL:
 * the connection is going away. */
static void on_sub(redisAsyncContext *ac, void *reply, void *data)
{
    berth__async_calls_t *c = data;
    const redisReply *r = reply;
    if (r == NULL) {
        if (c->sub != ac)
            return;
        bool was = c->subscribed;
        c->sub = NULL;
        c->subscribed = false;
        c->sub_broken = false;
        if (c->closing)
            return;
        if (!was)
            sub_failed(c, c->sub_why); /* it never worked: no retry */
        kick(c);                       /* else the pump makes it again */
        return;
    }
    if (c->closing || c->sub != ac)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(c->sub_why, sizeof c->sub_why, "Redis refused the subscription: %.100s",
                 r->str);
        c->sub_broken = true;
        kick(c);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcasecmp(r->element[0]->str, "subscribe") == 0)
        subscribed(c);
    else if (strcasecmp(r->element[0]->str, "message") == 0 &&
             r->element[2]->type == REDIS_REPLY_STRING)
        announced(c, r->element[2]);
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
    berth__async_calls_t *c = ac->data;
    if (status != REDIS_OK && c->sub == ac)
        snprintf(c->sub_why, sizeof c->sub_why, "cannot connect: %s",
                 ac->errstr ? ac->errstr : "?");
    /* on_sub() runs next with no reply and forgets the context. */
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    berth__async_calls_t *c = ac->data;
    if (c->sub == ac)
        c->sub = NULL;
}

static void sub_start(berth__async_calls_t *c)
{
    char why[160];
    redisAsyncContext *ac;
    if (connect_new(c, &ac, why, sizeof why) < 0) {
        sub_failed(c, why);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_sub_connect);
    redisAsyncSetDisconnectCallback(ac, on_sub_disconnect);
    const char *argv[] = {"SUBSCRIBE", c->channel};
    if (redisAsyncCommandArgv(ac, on_sub, c, 2, argv, NULL) != REDIS_OK) {
        berth__redis_async_free(ac);
        sub_failed(c, "no memory to subscribe");
        return;
    }
    c->sub = ac;
    c->subscribed = false;
    snprintf(c->sub_why, sizeof c->sub_why, "the connection was lost");
}

/* ---- sending ---------------------------------------------------------------------------- */

static bool command(berth__async_calls_t *c, redisCallbackFn *fn, op_t *op, int argc,
                    const char **argv)
{
    if (redisAsyncCommandArgv(c->cmd, fn, op, argc, argv, NULL) != REDIS_OK)
        return false;
    c->inflight++;
    return true;
}

/* The engine's hosts as they are when an image read starts.  False when
 * it completed the op (no hosts, or no memory). */
static bool slice_hosts(op_t *op)
{
    berth_engine_t *e = berth__store_engine(op->c->sync);
    size_t n = berth_engine_host_count(e);
    op->hosts = malloc((n ? n : 1) * sizeof *op->hosts);
    if (op->hosts == NULL) {
        op_finish(op, berth__error_set(&op->err, BERTH_ENOMEM, "OutOfMemory", "",
                                       "no memory to read the hosts' images"));
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        if (berth_engine_host_at(e, i, &h, NULL) == 0)
            snprintf(op->hosts[op->nhosts++], sizeof op->hosts[0], "%s", h.name);
    }
    if (op->nhosts == 0) {
        op_finish(op, 0);
        return false;
    }
    return true;
}

/* MULTI, one SMEMBERS per host of the next slice, EXEC. */
static void slice_send(op_t *op)
{
    berth__async_calls_t *c = op->c;
    if (op->hosts == NULL && !slice_hosts(op))
        return;
    size_t m = op->nhosts - op->next_host;
    op->nslice = m < SLICE_HOSTS ? m : SLICE_HOSTS;
    op->slice_moved = op->slice_failed = false;
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    bool ok = command(c, on_queued, op, 1, multi);
    for (size_t i = 0; ok && i < op->nslice; i++) {
        char key[BERTH__KEYNAME_MAX];
        berth__store_key(c->sync, key, sizeof key, "images:", op->hosts[op->next_host + i]);
        const char *argv[] = {"SMEMBERS", key};
        ok = command(c, on_queued, op, 2, argv);
    }
    if (ok && command(c, on_reply, op, 1, exec))
        return;
    /* A transaction left open would swallow the next commands: the
     * connection goes, with whatever this op had queued on it. */
    drop_cmd(c, "the connection was dropped: no memory for a command");
    op_finish(op, berth__error_set(&op->err, BERTH_ENOMEM, "OutOfMemory", "",
                                   "no memory for a command"));
}

/* Sends the op's step on the command connection (which the pump made).
 * The step's Redis timer starts here, except an LPOP's while the agent's
 * time still runs. */
static void op_send(op_t *op)
{
    berth__async_calls_t *c = op->c;
    if (!(op->step == STEP_FETCH && op->agent_timer))
        arm(op, redis_ms(c));
    if (op->step == STEP_SLICE) {
        slice_send(op);
        return;
    }
    char hash[BERTH__KEYNAME_MAX];
    const char *argv[3];
    int argc = 0;
    bool ok;
    switch (op->step) {
    case STEP_READ:
        berth__store_key(c->sync, hash, sizeof hash,
                         op->kind == OP_VIEW ? "views"
                         : op->kind == OP_METRICS ? "metrics"
                         : op->kind == OP_EVICTION ? "evictions"
                         : op->kind == OP_DOCUMENT && op->kept ? "documents" : "groups", "");
        argv[argc++] = "HGET";
        argv[argc++] = hash;
        argv[argc++] = op->key;
        ok = command(c, on_reply, op, argc, argv);
        break;
    case STEP_ADD:
        if (!op->in_table)
            table_add(op);
        ok = command(c, on_reply, op, BERTH__CALL_ADD_ARGC, op->add.argv);
        break;
    default:
        op->announced = false;
        argv[argc++] = "LPOP";
        argv[argc++] = op->add.reply;
        ok = command(c, on_reply, op, argc, argv);
        break;
    }
    if (!ok)
        op_finish(op, berth__error_set(&op->err, BERTH_ENOMEM, "OutOfMemory", "",
                                       "no memory for a command"));
}

/* Sends what is queued: replaces a connection that a MOVED left behind
 * once nothing is in flight on it, makes the subscription when a call
 * needs it and the command connection when anything is queued. */
static void pump(berth__async_calls_t *c)
{
    if (c->closing)
        return;
    if (c->sub_broken && c->sub != NULL)
        berth__redis_async_free(c->sub); /* on_sub() fails or retries */
    if (c->moved && c->inflight == 0) {
        drop_cmd(c, "the connection was lost");
        c->moved = false;
    }
    if (c->sub == NULL && sub_needed(c))
        sub_start(c);
    if (c->queue.head == NULL || c->moved)
        return;
    if (c->cmd == NULL && cmd_start(c) < 0) {
        op_t *op;
        while ((op = c->queue.head) != NULL)
            op_unavailable(op, c->why);
        return;
    }
    op_list_t held = {NULL, NULL};
    op_t *op;
    while ((op = list_pop(&c->queue)) != NULL) {
        bool dying = c->cmd == NULL || (c->cmd->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
        if (dying || (op->step == STEP_ADD && !c->subscribed))
            list_push(&held, op);
        else
            op_send(op);
    }
    while ((op = list_pop(&held)) != NULL)
        list_push(&c->queue, op);
}

/* ---- timers, callbacks, state ------------------------------------------------------ */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    op_t *op = arg;
    berth__async_calls_t *c = op->c;
    if (op->agent_timer) {
        /* The agent's time is up: one last LPOP, bounded like any read. */
        op->agent_timer = false;
        op->expired = true;
        arm(op, redis_ms(c));
        if (op->step == STEP_WAIT && op->list == NULL)
            op_queue(op, STEP_FETCH);
        return; /* an LPOP queued or out is now the last one */
    }
    if (op->list == &c->queue) {
        char why[80];
        snprintf(why, sizeof why, "no answer within %u ms", redis_ms(c));
        op_unavailable(op, why);
        return;
    }
    /* A command of it is out and Redis has not answered: drop the
     * connection, which answers it and every later one with nothing. */
    char why[160];
    snprintf(why, sizeof why, "the connection was dropped after a command got no answer "
             "within %u ms", redis_ms(c));
    op->timed_out = true;
    drop_cmd(c, why);
    kick(c);
}

static void op_call(op_t *op)
{
    int st = op->status;
    const berth_error_t *e = st == 0 ? NULL : &op->err;
    switch (op->kind) {
    case OP_VIEW:
    case OP_METRICS:
        op->cb.read(st, st == 0 ? op->text : NULL, st == 0 ? op->len : 0, e, op->data);
        break;
    case OP_IMAGES_SYNC:
        op->cb.read(st, NULL, 0, e, op->data);
        break;
    case OP_GROUP:
    case OP_DOCUMENT:
        op->cb.group(st, st == 0 ? op->text : NULL, st == 0 ? op->generation : 0,
                     st == 0 && !op->kept ? op->host : NULL, e, op->data);
        break;
    case OP_EVICTION:
        op->cb.eviction(st, st == 0 ? &op->eviction : NULL, e, op->data);
        break;
    case OP_LOGS:
    case OP_EXEC:
        op->cb.call(st, st == 0 ? op->text : NULL, st == 0 ? op->len : 0,
                     st == 0 ? op->exit_code : 0, e, op->data);
        break;
    case OP_IMAGES_LIST:
        op->cb.images(st, st == 0 && op->nimages > 0 ? (const char *const *)op->images : NULL,
                      st == 0 ? op->nimages : 0, e, op->data);
        break;
    }
}

static void op_free(op_t *op)
{
    if (op == NULL)
        return;
    if (op->timer != NULL)
        event_free(op->timer);
    for (size_t i = 0; i < op->nimages; i++)
        free(op->images[i]);
    free(op->images);
    free(op->hosts);
    free(op->text);
    free(op->key);
    free(op->container);
    free(op->argv_json);
    free(op);
}

/* Runs the callbacks due.  One of them may close the store: then the
 * state is freed by whoever runs this outermost, after that callback. */
static void deliver(berth__async_calls_t *c)
{
    bool outer = !c->delivering;
    c->delivering = true;
    op_t *op;
    while (!c->dead && (op = list_pop(&c->done)) != NULL) {
        op_call(op);
        op_free(op);
    }
    if (outer)
        c->delivering = false;
}

static void destroy(berth__async_calls_t *c)
{
    event_free(c->kick);
    free(c);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    berth__async_calls_t *c = arg;
    deliver(c);
    if (c->dead) {
        destroy(c);
        return;
    }
    pump(c);
}

/* Contract (store.h): inside berth_store_async_close(). */
/* Completes every call still pending with BERTH_EIO "Closed" and frees the
 * state (at once, or from the outer deliver() when called inside one). */
static void calls_free(void *state)
{
    berth__async_calls_t *c = state;
    if (c == NULL || c->closing)
        return;
    c->closing = true;
    drop_cmd(c, "the store was closed"); /* on_reply() closes what was out */
    if (c->sub != NULL)
        berth__redis_async_free(c->sub);
    c->sub = NULL;
    for (size_t i = 0; i < TABLE_SIZE; i++)
        while (c->table[i] != NULL)
            op_closed(c->table[i]);
    while (c->queue.head != NULL)
        op_closed(c->queue.head);
    bool inside = c->delivering;
    deliver(c);
    if (inside) {
        c->dead = true; /* the outer deliver() stops and on_kick() frees */
        return;
    }
    destroy(c);
}

/* The store's state for these calls, made on first use; NULL: no memory. */
static berth__async_calls_t *calls_get(berth_store_async_t *s)
{
    void **slot = berth__store_async_ext(s, BERTH__ASYNC_EXT_CALLS, calls_free);
    if (*slot != NULL)
        return *slot;
    berth__async_calls_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->sync = berth__store_async_sync(s);
    c->base = berth__store_async_base(s);
    c->kick = event_new(c->base, -1, 0, on_kick, c);
    if (c->kick == NULL) {
        free(c);
        return NULL;
    }
    berth__store_key(c->sync, c->channel, sizeof c->channel, BERTH__CALL_CHANNEL, "");
    *slot = c;
    return c;
}

/* The checks every call makes first (store_async.c's order). */
static int begin(berth_store_async_t *s, bool have_cb, berth_error_t *err)
{
    if (s == NULL || !have_cb)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                                "no store or no callback given");
    berth__async_calls_t *c = *berth__store_async_ext(s, BERTH__ASYNC_EXT_CALLS, calls_free);
    if (c != NULL && c->closing)
        return berth__error_set(err, BERTH_EIO, "Closed", "", "the store is closing");
    return 0;
}

/* A new op with copies of key and container (each may be NULL), or NULL
 * with BERTH_ENOMEM in err. */
static op_t *op_new(berth_store_async_t *s, op_kind_t kind, const char *key,
                    const char *container, void *data, berth_error_t *err)
{
    berth__async_calls_t *c = calls_get(s);
    op_t *op = c != NULL ? calloc(1, sizeof *op) : NULL;
    if (op != NULL) {
        op->c = c;
        op->kind = kind;
        op->data = data;
        op->timer = evtimer_new(c->base, on_timer, op);
        op->key = key != NULL ? strdup(key) : NULL;
        op->container = container != NULL ? strdup(container) : NULL;
    }
    if (op == NULL || op->timer == NULL || (key != NULL && op->key == NULL) ||
        (container != NULL && op->container == NULL)) {
        op_free(op);
        berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a call");
        return NULL;
    }
    return op;
}

/* Queues the op's first step; the kick sends it. */
static void start(op_t *op, op_step_t step)
{
    arm(op, redis_ms(op->c));
    op_queue(op, step);
}

/* ---- public calls ---------------------------------------------------------------------- */

/* The checks a read of group `key` makes, then its op (the caller sets
 * its callback and starts it); NULL with *rc when nothing was queued. */
static op_t *read_op(berth_store_async_t *store, op_kind_t kind, const char *key, bool has_cb,
                     void *data, berth_error_t *err, int *rc)
{
    *rc = begin(store, has_cb, err);
    if (*rc < 0)
        return NULL;
    if (berth__group_key_check(key, err) < 0) {
        *rc = BERTH_EINVAL;
        return NULL;
    }
    op_t *op = op_new(store, kind, key, NULL, data, err);
    if (op == NULL)
        *rc = BERTH_ENOMEM;
    return op;
}

/* A read of one text under the group's key (a view, usage metrics). */
static int text_read(berth_store_async_t *store, op_kind_t kind, const char *key,
                     berth_store_read_cb cb, void *data, berth_error_t *err)
{
    int rc;
    op_t *op = read_op(store, kind, key, cb != NULL, data, err, &rc);
    if (op == NULL)
        return rc;
    op->cb.read = cb;
    start(op, STEP_READ);
    return 0;
}

int berth_store_async_view_read(berth_store_async_t *store, const char *key,
                                berth_store_read_cb cb, void *data, berth_error_t *err)
{
    return text_read(store, OP_VIEW, key, cb, data, err);
}

int berth_store_async_metrics_read(berth_store_async_t *store, const char *key,
                                   berth_store_read_cb cb, void *data, berth_error_t *err)
{
    return text_read(store, OP_METRICS, key, cb, data, err);
}

int berth_store_async_group_read(berth_store_async_t *store, const char *key,
                                 berth_store_group_cb cb, void *data, berth_error_t *err)
{
    int rc;
    op_t *op = read_op(store, OP_GROUP, key, cb != NULL, data, err, &rc);
    if (op == NULL)
        return rc;
    op->cb.group = cb;
    start(op, STEP_READ);
    return 0;
}

int berth_store_async_document_read(berth_store_async_t *store, const char *key,
                                    berth_store_group_cb cb, void *data, berth_error_t *err)
{
    int rc;
    op_t *op = read_op(store, OP_DOCUMENT, key, cb != NULL, data, err, &rc);
    if (op == NULL)
        return rc;
    op->cb.group = cb;
    start(op, STEP_READ);
    return 0;
}

int berth_store_async_eviction_read(berth_store_async_t *store, const char *key,
                                    berth_store_eviction_cb cb, void *data, berth_error_t *err)
{
    int rc;
    op_t *op = read_op(store, OP_EVICTION, key, cb != NULL, data, err, &rc);
    if (op == NULL)
        return rc;
    op->cb.eviction = cb;
    start(op, STEP_READ);
    return 0;
}

/* logs and exec: the group's host first, then the XADD. */
static int agent_call(berth_store_async_t *store, op_kind_t kind, const char *key,
                      const char *container, uint32_t tail, bool timestamps,
                      const char *const *argv, size_t argc, uint32_t timeout_ms,
                      berth_store_call_cb cb, void *data, berth_error_t *err)
{
    int rc = berth__call_check(key, container, timeout_ms, err);
    if (rc < 0)
        return rc;
    char *argv_json;
    if ((rc = berth__call_argv_json(argv, argc, &argv_json, err)) < 0)
        return rc;
    op_t *op = op_new(store, kind, key, container, data, err);
    if (op == NULL) {
        free(argv_json);
        return BERTH_ENOMEM;
    }
    op->argv_json = argv_json;
    op->tail = tail;
    op->timestamps = timestamps;
    op->timeout_ms = timeout_ms;
    op->cb.call = cb;
    start(op, STEP_READ);
    return 0;
}

int berth_store_async_container_logs(berth_store_async_t *store, const char *key,
                                     const char *container, uint32_t tail, bool timestamps,
                                     uint32_t timeout_ms, berth_store_call_cb cb, void *data,
                                     berth_error_t *err)
{
    int rc = begin(store, cb != NULL, err);
    if (rc < 0)
        return rc;
    return agent_call(store, OP_LOGS, key, container, tail, timestamps, NULL, 0, timeout_ms,
                      cb, data, err);
}

int berth_store_async_container_exec(berth_store_async_t *store, const char *key,
                                     const char *container, const char *const *argv,
                                     size_t argc, uint32_t timeout_ms, berth_store_call_cb cb,
                                     void *data, berth_error_t *err)
{
    int rc = begin(store, cb != NULL, err);
    if (rc < 0)
        return rc;
    if (argc == 0 || argv == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidCommand", "command",
                                "no command given");
    return agent_call(store, OP_EXEC, key, container, 0, false, argv, argc, timeout_ms, cb,
                      data, err);
}

/* An image read needs the engine whose hosts it reads. */
static int images_check(berth_store_async_t *store, berth_error_t *err)
{
    if (berth__store_engine(berth__store_async_sync(store)) == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "store",
                                "the store has no engine to load images into");
    return 0;
}

int berth_store_async_images_list(berth_store_async_t *store, berth_store_images_cb cb,
                                  void *data, berth_error_t *err)
{
    int rc = begin(store, cb != NULL, err);
    if (rc < 0 || (rc = images_check(store, err)) < 0)
        return rc;
    op_t *op = op_new(store, OP_IMAGES_LIST, NULL, NULL, data, err);
    if (op == NULL)
        return BERTH_ENOMEM;
    op->cb.images = cb;
    start(op, STEP_SLICE);
    return 0;
}

int berth_store_async_images_sync(berth_store_async_t *store, berth_store_read_cb cb,
                                  void *data, berth_error_t *err)
{
    int rc = begin(store, cb != NULL, err);
    if (rc < 0 || (rc = images_check(store, err)) < 0)
        return rc;
    op_t *op = op_new(store, OP_IMAGES_SYNC, NULL, NULL, data, err);
    if (op == NULL)
        return BERTH_ENOMEM;
    op->cb.read = cb;
    start(op, STEP_SLICE);
    return 0;
}
