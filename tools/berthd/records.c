/*
 * records.c: berthd's own records in Redis (records.h): non-blocking
 * reads on a hiredis connection of this module's own, and the effects that
 * write them with a commit.
 *
 * The connection is made on first use and again after it was lost.  Redis
 * answers a connection's commands in order, so the oldest command still
 * waiting is the first in the module's FIFO; one timer watches it, and
 * past the timeout the connection is dropped: every command in flight then
 * fails with BERTH_EIO (hiredis calls each callback with no reply).
 * Callbacks run from an event of their own (never from inside hiredis),
 * so a callback may queue more reads or free the module.
 *
 * On a Redis Cluster a command may be answered "MOVED <slot> <host>:<port>"
 * (the slot is served elsewhere, or moved after a failover): the module
 * then points itself at that node, lets the old connection finish what it
 * has in flight (each of those commands is redirected the same way) and
 * sends the command again on the new one, at most REDIRECTS_MAX times.  A
 * command keeps its encoded form for that.  A node that refuses or drops
 * the connection (a master killed, before its replica is promoted) is left
 * for the next node of the URL list the module was given
 * ("redis://A:1,redis://B:2"), whose MOVED then names the new master.
 *
 * This file must never block, never write a resource record outside a
 * commit's effects, and never touch the library's keys (but for the
 * eviction record the library lets a caller drop).  Its only writes
 * outside commits: exec sessions (a TTL'd key, taken once) and the
 * removal of operation records past their day.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "digest.h"
#include "records.h"
#include "resource.h"
#include "lib/clock.h"

#define REDIRECTS_MAX 3

typedef enum read_kind { RK_RECORD = 1, RK_TEXT, RK_LIST, RK_SCAN } read_kind_t;

/* One read, from its queueing to its callback. */
typedef struct rd {
    struct rd *next;                /* FIFO of reads in flight / done list  */
    bd_records_t *r;
    read_kind_t kind;
    int64_t sent_ms;
    int status;
    redisReply *reply;              /* owned once answered (taken from hiredis) */
    int stage;                      /* RK_LIST: 0 range, 1 records          */
    size_t want;                    /* RK_LIST: count asked                 */
    redisReply *range;              /* RK_LIST: the keys                    */
    char hash[32];                  /* RK_LIST: the hash of their records   */
    char *cmd;                      /* the command as sent (RESP), for a
                                     * redirection                          */
    size_t cmdlen;
    int redirects;                  /* MOVED answers followed so far        */
    union {
        bd_record_cb record;
        bd_text_cb text;
        bd_list_cb list;
        bd_scan_cb scan;
    } cb;
    void *data;
} rd_t;

struct bd_records {
    struct event_base *base;
    char url[512];                  /* the node connected to (or next)      */
    char seeds[512];                /* the nodes given, comma-separated     */
    unsigned next_seed;             /* the seed tried after a failed node   */
    char prefix[96];                /* "berth:{CELL}:"                      */
    uint32_t timeout_ms;
    redisAsyncContext *ac;
    redisAsyncContext *moving;      /* the connection a MOVED left: it
                                     * answers what it still has in flight,
                                     * then closes (NULL: none)             */
    rd_t *head, *tail;              /* in flight, oldest first              */
    rd_t *done_head, *done_tail;    /* answered, callbacks due              */
    struct event *timer;            /* the oldest read's deadline           */
    struct event *kick;             /* runs the callbacks due               */
    bool freeing;
};

static void key_of(const bd_records_t *r, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", r->prefix, name);
}

/* ---- the connection ----------------------------------------------------------------------- */

/* Points r at the next node of its seed list (the first after the last),
 * after the node it used failed. */
static void next_node(bd_records_t *r)
{
    size_t n = 1;
    for (const char *p = r->seeds; *p != '\0'; p++)
        n += *p == ',';
    unsigned want = r->next_seed++ % (unsigned)n;
    const char *p = r->seeds;
    for (unsigned i = 0; i < want; i++)
        p = strchr(p, ',') + 1;
    size_t len = strcspn(p, ",");
    snprintf(r->url, sizeof r->url, "%.*s", (int)len, p);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    bd_records_t *r = ac->data;
    if (r != NULL && r->ac == ac) {
        r->ac = NULL;
        if (status != REDIS_OK && !r->freeing)
            next_node(r);   /* refused or lost: another node, then MOVED */
    }
    if (r != NULL && r->moving == ac)
        r->moving = NULL;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK)
        on_disconnect(ac, status);
}

/* Connects when there is no connection.  Returns 0 or -1. */
static int ensure_connected(bd_records_t *r)
{
    if (r->ac != NULL)
        return 0;
    char host[512];
    int port;
    int kind = bd_redis_url_parse(r->url, host, sizeof host, &port);
    redisAsyncContext *ac = kind < 0   ? NULL
                            : kind == 1 ? redisAsyncConnectUnix(host)
                                        : redisAsyncConnect(host, port);
    if (ac == NULL || ac->err != 0 || redisLibeventAttach(ac, r->base) != REDIS_OK) {
        if (ac != NULL)
            redisAsyncFree(ac);
        next_node(r);       /* refused at once: the next try goes elsewhere */
        return -1;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    return 0;
}

/* Drops the connections: hiredis answers every read in flight with NULL. */
static void drop(bd_records_t *r)
{
    redisAsyncContext *ac = r->ac, *old = r->moving;
    r->ac = NULL;
    r->moving = NULL;
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    if (old != NULL) {
        old->data = NULL;
        redisAsyncFree(old);
    }
}

/* ---- reads ---------------------------------------------------------------------------------- */

static void arm(bd_records_t *r)
{
    if (r->head == NULL) {
        event_del(r->timer);
        return;
    }
    int64_t left = r->head->sent_ms + r->timeout_ms - berth__clock_monotonic_ms();
    if (left < 0)
        left = 0;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    event_add(r->timer, &tv);
}

/* Takes q out of the FIFO of reads in flight, wherever it is (two
 * connections, while a MOVED is followed, answer in their own orders). */
static void unlink_sent(bd_records_t *r, rd_t *q)
{
    rd_t *prev = NULL;
    for (rd_t *p = r->head; p != NULL; prev = p, p = p->next) {
        if (p != q)
            continue;
        if (prev != NULL)
            prev->next = q->next;
        else
            r->head = q->next;
        if (r->tail == q)
            r->tail = prev;
        break;
    }
    q->next = NULL;
}

/* Moves a read in flight to the done list. */
static void finish(bd_records_t *r, rd_t *q, int status)
{
    unlink_sent(r, q);
    q->status = status;
    if (r->done_tail != NULL)
        r->done_tail->next = q;
    else
        r->done_head = q;
    r->done_tail = q;
    event_active(r->kick, 0, 0);
    arm(r);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *data);

/* Sends q's encoded command and puts it at the FIFO's tail.  Returns 0
 * or -1. */
static int send_cmd(bd_records_t *r, rd_t *q)
{
    if (ensure_connected(r) != 0 ||
        redisAsyncFormattedCommand(r->ac, on_reply, q, q->cmd, q->cmdlen) != REDIS_OK)
        return -1;
    q->sent_ms = berth__clock_monotonic_ms();
    if (q->next == NULL && r->tail != q) {
        if (r->tail != NULL)
            r->tail->next = q;
        else
            r->head = q;
        r->tail = q;
    }
    if (r->head == q)
        arm(r);
    return 0;
}

/* Encodes q's command (argv) and sends it.  Returns 0 or -1. */
static int send_argv(bd_records_t *r, rd_t *q, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0)
        return -1;
    redisFreeCommand(q->cmd);
    q->cmd = cmd;
    q->cmdlen = (size_t)len;
    return send_cmd(r, q);
}

/* Follows a "MOVED <slot> <host>:<port>" answer to q, sent on `ac`: the
 * module points itself at that node (the first such answer from `ac`
 * retires it) and sends q again there.  Returns 0 when q was sent again,
 * -1 when the answer is no redirection q may follow. */
static int follow_moved(bd_records_t *r, redisAsyncContext *ac, rd_t *q, const redisReply *rep)
{
    unsigned slot;
    char target[256];
    if (rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, "MOVED ", 6) != 0 ||
        q->redirects >= REDIRECTS_MAX || q->cmd == NULL ||
        sscanf(rep->str, "MOVED %u %255s", &slot, target) != 2)
        return -1;
    q->redirects++;
    if (r->ac == ac) {
        /* The connection finishes what it has in flight, then closes;
         * a connection retired before it is dropped now. */
        if (r->moving != NULL) {
            r->moving->data = NULL;
            redisAsyncFree(r->moving);
        }
        r->moving = ac;
        r->ac = NULL;
        redisAsyncDisconnect(ac);
        snprintf(r->url, sizeof r->url, "redis://%s", target);
    }
    unlink_sent(r, q);
    if (send_cmd(r, q) != 0)
        return -1;
    arm(r);
    return 0;
}

static rd_t *rd_new(bd_records_t *r, read_kind_t kind, void *data)
{
    rd_t *q = calloc(1, sizeof *q);
    if (q != NULL) {
        q->r = r;
        q->kind = kind;
        q->data = data;
    }
    return q;
}

/* A read that could not even be sent fails from the kick, like any other. */
static int queue_failed(bd_records_t *r, rd_t *q)
{
    q->next = NULL;
    q->status = BERTH_EIO;
    if (r->done_tail != NULL)
        r->done_tail->next = q;
    else
        r->done_head = q;
    r->done_tail = q;
    event_active(r->kick, 0, 0);
    return 0;
}

/* The list's second step: HMGET of the keys the range found. */
static int list_records(bd_records_t *r, rd_t *q)
{
    size_t n = q->range->elements < q->want ? q->range->elements : q->want;
    if (n == 0)
        return 1;
    const char **argv = malloc((n + 2) * sizeof *argv);
    size_t *lens = malloc((n + 2) * sizeof *lens);
    char k[128];
    key_of(r, q->hash, k, sizeof k);
    int rc = -1;
    if (argv != NULL && lens != NULL) {
        argv[0] = "HMGET";
        lens[0] = 5;
        argv[1] = k;
        lens[1] = strlen(k);
        for (size_t i = 0; i < n; i++) {
            argv[i + 2] = q->range->element[i]->str;
            lens[i + 2] = q->range->element[i]->len;
        }
        q->stage = 1;
        /* Still the oldest in order: re-sent at the FIFO's tail. */
        rc = send_argv(r, q, (int)(n + 2), argv, lens);
    }
    free(argv);
    free(lens);
    return rc;
}

static void free_reply_tree(redisReply *rep);
static redisReply *copy_reply(const redisReply *rep);

/* hiredis frees a reply when its callback returns, and the callbacks here
 * run later, from the kick: the reply is copied. */
static void on_reply(redisAsyncContext *ac, void *reply, void *data)
{
    rd_t *q = data;
    bd_records_t *r = q->r;
    const redisReply *rep = reply;
    if (rep != NULL && ac->data != NULL && follow_moved(r, ac, q, rep) == 0)
        return;
    if (rep == NULL || ac->data == NULL || rep->type == REDIS_REPLY_ERROR) {
        finish(r, q, BERTH_EIO);
        return;
    }
    redisReply *copy = copy_reply(rep);
    if (copy == NULL) {
        finish(r, q, BERTH_ENOMEM);
        return;
    }
    if (q->kind != RK_LIST || q->stage != 0) {
        q->reply = copy;
        finish(r, q, 0);
        return;
    }
    if (copy->type != REDIS_REPLY_ARRAY) {
        free_reply_tree(copy);
        finish(r, q, BERTH_EIO);
        return;
    }
    q->range = copy;
    /* Out of the FIFO: the HMGET goes to its tail. */
    unlink_sent(r, q);
    int rc = list_records(r, q);
    if (rc == 1) {
        finish(r, q, 0);
    } else if (rc != 0) {
        queue_failed(r, q);
        arm(r);
    }
}

static redisReply *copy_reply(const redisReply *rep)
{
    redisReply *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->type = rep->type;
    c->integer = rep->integer;
    if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS ||
        rep->type == REDIS_REPLY_ERROR) {
        c->str = malloc(rep->len + 1);
        if (c->str == NULL) {
            free(c);
            return NULL;
        }
        memcpy(c->str, rep->str, rep->len);
        c->str[rep->len] = '\0';
        c->len = rep->len;
    } else if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0) {
        c->element = calloc(rep->elements, sizeof *c->element);
        if (c->element == NULL) {
            free(c);
            return NULL;
        }
        for (size_t i = 0; i < rep->elements; i++) {
            c->element[i] = copy_reply(rep->element[i]);
            if (c->element[i] == NULL) {
                c->elements = i;
                free_reply_tree(c);
                return NULL;
            }
        }
        c->elements = rep->elements;
    }
    return c;
}

static void free_reply_tree(redisReply *rep)
{
    if (rep == NULL)
        return;
    for (size_t i = 0; i < rep->elements; i++)
        free_reply_tree(rep->element[i]);
    free(rep->element);
    free(rep->str);
    free(rep);
}

/* ---- delivery ------------------------------------------------------------------------------ */

/* Runs one read's callback and frees it. */
static void deliver(rd_t *q)
{
    const redisReply *rep = q->reply;
    int st = q->status;
    switch (q->kind) {
    case RK_RECORD: {
        json_t *rec = NULL;
        char sha1[41] = "";
        if (st == 0 && rep->type == REDIS_REPLY_STRING) {
            rec = json_loadb(rep->str, rep->len, 0, NULL);
            if (!json_is_object(rec)) {
                json_decref(rec);
                rec = NULL;
                st = BERTH_EIO;
            } else {
                bd_sha1_hex(rep->str, rep->len, sha1);
            }
        } else if (st == 0 && rep->type != REDIS_REPLY_NIL) {
            st = BERTH_EIO;
        }
        q->cb.record(st, rec, sha1, q->data);
        json_decref(rec);
        break;
    }
    case RK_TEXT: {
        bool text = st == 0 && (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS);
        if (st == 0 && !text && rep->type != REDIS_REPLY_NIL && rep->type != REDIS_REPLY_INTEGER)
            st = BERTH_EIO;
        q->cb.text(st, text ? rep->str : NULL, text ? rep->len : 0, q->data);
        break;
    }
    case RK_LIST: {
        size_t n = 0;
        const char **keys = NULL;
        json_t **recs = NULL;
        bool more = false;
        if (st == 0 && q->range != NULL) {
            n = q->range->elements < q->want ? q->range->elements : q->want;
            more = q->range->elements > q->want;
            if (n > 0 && (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != n))
                st = BERTH_EIO;
        }
        if (st == 0 && n > 0) {
            keys = calloc(n, sizeof *keys);
            recs = calloc(n, sizeof *recs);
            if (keys == NULL || recs == NULL)
                st = BERTH_ENOMEM;
        }
        if (st != 0)
            n = 0;
        for (size_t i = 0; i < n; i++) {
            keys[i] = q->range->element[i]->str;
            const redisReply *e = rep->element[i];
            if (e->type == REDIS_REPLY_STRING) {
                recs[i] = json_loadb(e->str, e->len, 0, NULL);
                if (!json_is_object(recs[i])) {
                    json_decref(recs[i]);
                    recs[i] = NULL;
                }
            }
        }
        q->cb.list(st, keys, (json_t *const *)recs, n, more, q->data);
        for (size_t i = 0; i < n; i++)
            json_decref(recs[i]);
        free(keys);
        free(recs);
        break;
    }
    case RK_SCAN: {
        size_t n = 0;
        const char **ids = NULL, **texts = NULL;
        const char *next = "0";
        if (st == 0 && (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
                        rep->element[0]->type != REDIS_REPLY_STRING ||
                        rep->element[1]->type != REDIS_REPLY_ARRAY))
            st = BERTH_EIO;
        if (st == 0) {
            next = rep->element[0]->str;
            n = rep->element[1]->elements / 2;
            if (n > 0) {
                ids = calloc(n, sizeof *ids);
                texts = calloc(n, sizeof *texts);
                if (ids == NULL || texts == NULL) {
                    st = BERTH_ENOMEM;
                    n = 0;
                }
            }
            for (size_t i = 0; i < n; i++) {
                ids[i] = rep->element[1]->element[2 * i]->str;
                texts[i] = rep->element[1]->element[2 * i + 1]->str;
            }
        }
        q->cb.scan(st, ids, texts, n, next, q->data);
        free(ids);
        free(texts);
        break;
    }
    }
    free_reply_tree(q->reply);
    free_reply_tree(q->range);
    redisFreeCommand(q->cmd);
    free(q);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    bd_records_t *r = arg;
    /* Callbacks may queue reads (new kicks) or free the module. */
    rd_t *q = r->done_head;
    r->done_head = r->done_tail = NULL;
    while (q != NULL) {
        rd_t *next = q->next;
        deliver(q);
        q = next;
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    bd_records_t *r = arg;
    if (r->head != NULL && berth__clock_monotonic_ms() >= r->head->sent_ms + r->timeout_ms)
        drop(r);    /* every read in flight fails (on_reply with NULL) */
    else
        arm(r);
}

/* ---- public ---------------------------------------------------------------------------------- */

bd_records_t *bd_records_new(struct event_base *base, const char *url, const char *cell,
                             uint32_t timeout_ms)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "berth:{%s}:", cell);
    return bd_records_new_keyed(base, url, prefix, timeout_ms);
}

bd_records_t *bd_records_new_keyed(struct event_base *base, const char *url, const char *prefix,
                                   uint32_t timeout_ms)
{
    bd_records_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->base = base;
    snprintf(r->seeds, sizeof r->seeds, "%s", url);
    next_node(r);                   /* the first node of the list           */
    snprintf(r->prefix, sizeof r->prefix, "%s", prefix);
    r->timeout_ms = timeout_ms ? timeout_ms : 5000;
    r->timer = evtimer_new(base, on_timeout, r);
    r->kick = event_new(base, -1, 0, on_kick, r);
    if (r->timer == NULL || r->kick == NULL) {
        bd_records_free(r);
        return NULL;
    }
    return r;
}

void bd_records_free(bd_records_t *r)
{
    if (r == NULL || r->freeing)
        return;
    r->freeing = true;
    drop(r);                        /* in-flight reads move to the done list */
    /* A read never sent sits only on the done list; both fail now, and so
     * do the reads their callbacks queue meanwhile (start() fails them). */
    while (r->done_head != NULL) {
        rd_t *q = r->done_head;
        r->done_head = r->done_tail = NULL;
        while (q != NULL) {
            rd_t *next = q->next;
            if (q->status == 0 && q->reply == NULL && q->kind != RK_LIST)
                q->status = BERTH_EIO;
            deliver(q);
            q = next;
        }
    }
    if (r->timer != NULL)
        event_free(r->timer);
    if (r->kick != NULL)
        event_free(r->kick);
    free(r);
}

/* Sends a read or, when it cannot be sent, fails it from the kick. */
static int start(bd_records_t *r, rd_t *q, int argc, const char **argv, const size_t *lens)
{
    if (r->freeing || send_argv(r, q, argc, argv, lens) != 0)
        return queue_failed(r, q);
    return 0;
}

int bd_records_get(bd_records_t *r, const char *key, bd_record_cb cb, void *data)
{
    rd_t *q = rd_new(r, RK_RECORD, data);
    if (q == NULL)
        return BERTH_ENOMEM;
    q->cb.record = cb;
    char k[128];
    key_of(r, "resources", k, sizeof k);
    const char *argv[] = {"HGET", k, key};
    return start(r, q, 3, argv, NULL);
}

/* A command whose answer is text, an integer or nothing, for cb. */
static int text_command(bd_records_t *r, bd_text_cb cb, void *data, int argc,
                        const char **argv)
{
    rd_t *q = rd_new(r, RK_TEXT, data);
    if (q == NULL)
        return BERTH_ENOMEM;
    q->cb.text = cb;
    return start(r, q, argc, argv, NULL);
}

int bd_records_read(bd_records_t *r, const char *name, const char *field, bd_text_cb cb,
                    void *data)
{
    char k[512];
    key_of(r, name, k, sizeof k);
    const char *argv[] = {field != NULL ? "HGET" : "GET", k, field};
    return text_command(r, cb, data, field != NULL ? 3 : 2, argv);
}

int bd_records_take(bd_records_t *r, const char *name, bd_text_cb cb, void *data)
{
    char k[512];
    key_of(r, name, k, sizeof k);
    const char *argv[] = {"GETDEL", k};
    return text_command(r, cb, data, 2, argv);
}

int bd_records_count(bd_records_t *r, const char *name, uint32_t ttl_s, bd_text_cb cb,
                     void *data)
{
    static const char script[] = "local n = redis.call('INCR', KEYS[1]) "
                                 "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
                                 "return tostring(n)";
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%u", ttl_s);
    const char *args[] = {ttl};
    return bd_records_script(r, script, name, args, 1, cb, data);
}

int bd_records_script(bd_records_t *r, const char *script, const char *name,
                      const char *const *args, size_t nargs, bd_text_cb cb, void *data)
{
    if (nargs > 4)
        return BERTH_EINVAL;
    char k[512];
    key_of(r, name, k, sizeof k);
    const char *argv[8] = {"EVAL", script, "1", k};
    for (size_t i = 0; i < nargs; i++)
        argv[4 + i] = args[i];
    return text_command(r, cb, data, (int)(4 + nargs), argv);
}

int bd_records_set(bd_records_t *r, const char *name, const char *text, uint32_t ttl_s,
                   bd_text_cb cb, void *data)
{
    char k[512], ttl[16];
    key_of(r, name, k, sizeof k);
    snprintf(ttl, sizeof ttl, "%u", ttl_s);
    const char *argv[] = {"SET", k, text, "EX", ttl};
    return text_command(r, cb, data, 5, argv);
}

int bd_records_list(bd_records_t *r, const char *prefix, const char *after, size_t count,
                    bd_list_cb cb, void *data)
{
    return bd_records_list_in(r, "index", "resources", prefix, after, count, cb, data);
}

int bd_records_list_in(bd_records_t *r, const char *index, const char *hash, const char *prefix,
                       const char *after, size_t count, bd_list_cb cb, void *data)
{
    rd_t *q = rd_new(r, RK_LIST, data);
    if (q == NULL)
        return BERTH_ENOMEM;
    q->cb.list = cb;
    q->want = count;
    snprintf(q->hash, sizeof q->hash, "%s", hash);
    char k[128], lo[600], hi[600], limit[24];
    key_of(r, index, k, sizeof k);
    if (after != NULL && after[0] != '\0')
        snprintf(lo, sizeof lo, "(%s", after);
    else
        snprintf(lo, sizeof lo, "[%s", prefix);
    snprintf(hi, sizeof hi, "[%s\xff", prefix);
    snprintf(limit, sizeof limit, "%zu", count + 1);
    const char *argv[] = {"ZRANGEBYLEX", k, lo, hi, "LIMIT", "0", limit};
    return start(r, q, 7, argv, NULL);
}

int bd_records_operations_scan(bd_records_t *r, const char *cursor, size_t count,
                               bd_scan_cb cb, void *data)
{
    rd_t *q = rd_new(r, RK_SCAN, data);
    if (q == NULL)
        return BERTH_ENOMEM;
    q->cb.scan = cb;
    char k[128], c[24];
    key_of(r, "operations", k, sizeof k);
    snprintf(c, sizeof c, "%zu", count);
    const char *argv[] = {"HSCAN", k, cursor, "COUNT", c};
    return start(r, q, 5, argv, NULL);
}

int bd_records_ping(bd_records_t *r, bd_text_cb cb, void *data)
{
    const char *argv[] = {"PING"};
    return text_command(r, cb, data, 1, argv);
}

int bd_records_operations_drop(bd_records_t *r, const char *const *ids, size_t n, bd_text_cb cb,
                               void *data)
{
    if (n == 0 || n > 1000)
        return BERTH_EINVAL;
    const char **argv = malloc((n + 2) * sizeof *argv);
    if (argv == NULL)
        return BERTH_ENOMEM;
    char k[128];
    key_of(r, "operations", k, sizeof k);
    argv[0] = "HDEL";
    argv[1] = k;
    for (size_t i = 0; i < n; i++)
        argv[i + 2] = ids[i];
    int rc = text_command(r, cb, data, (int)(n + 2), argv);
    free(argv);
    return rc;
}

/* ---- effects ------------------------------------------------------------------------------- */

void bd_fx_init(bd_fx_t *fx)
{
    memset(fx, 0, sizeof *fx);
}

void bd_fx_free(bd_fx_t *fx)
{
    for (size_t i = 0; i < fx->nowned; i++)
        free(fx->owned[i]);
    fx->nowned = 0;
    fx->n = 0;
}

/* The next effect, its field buffer prepared from fmt; NULL when full
 * (BD_FX_MAX is above what any request needs: a programming error). */
static berth_effect_t *fx_add(bd_fx_t *fx, berth_effect_op_t op, const char *key)
{
    if (fx->n >= BD_FX_MAX)
        abort();
    berth_effect_t *e = &fx->e[fx->n];
    memset(e, 0, sizeof *e);
    e->op = op;
    e->key = key;
    fx->n++;
    return e;
}

static const char *fx_text(bd_fx_t *fx, const char *text)
{
    snprintf(fx->fields[fx->n - 1], sizeof fx->fields[0], "%s", text);
    return fx->fields[fx->n - 1];
}

static char *fx_own(bd_fx_t *fx, char *text)
{
    if (text != NULL)
        fx->owned[fx->nowned++] = text;
    return text;
}

void bd_fx_expect(bd_fx_t *fx, const char *key, const char *sha1)
{
    berth_effect_t *e = fx_add(fx, BERTH_EFFECT_EXPECT, "resources");
    e->field = fx_text(fx, key);
    e->value = sha1;
}

int bd_fx_record(bd_fx_t *fx, const char *key, const json_t *rec)
{
    char *text = fx_own(fx, json_dumps(rec, JSON_COMPACT));
    if (text == NULL)
        return BERTH_ENOMEM;
    berth_effect_t *e = fx_add(fx, BERTH_EFFECT_HSET, "resources");
    e->field = fx_text(fx, key);
    e->value = text;
    e = fx_add(fx, BERTH_EFFECT_ZADD, "index");
    e->field = fx_text(fx, key);
    return 0;
}

void bd_fx_record_del(bd_fx_t *fx, const char *key)
{
    berth_effect_t *e = fx_add(fx, BERTH_EFFECT_HDEL, "resources");
    e->field = fx_text(fx, key);
    e = fx_add(fx, BERTH_EFFECT_ZREM, "index");
    e->field = fx_text(fx, key);
}

/* A claim (CLAIM) or its release (UNCLAIM) of `field` of hash `hash` for
 * `key`. */
static void fx_claim(bd_fx_t *fx, berth_effect_op_t op, const char *hash, const char *field,
                     const char *key)
{
    berth_effect_t *e = fx_add(fx, op, hash);
    e->field = fx_text(fx, field);
    e->value = key;
}

void bd_fx_dns_claim(bd_fx_t *fx, const char *field, const char *key)
{
    fx_claim(fx, BERTH_EFFECT_CLAIM, "dns", field, key);
}

void bd_fx_dns_release(bd_fx_t *fx, const char *field, const char *key)
{
    fx_claim(fx, BERTH_EFFECT_UNCLAIM, "dns", field, key);
}

void bd_fx_ip_claim(bd_fx_t *fx, const char *field, const char *key)
{
    fx_claim(fx, BERTH_EFFECT_CLAIM, "ips", field, key);
}

void bd_fx_ip_release(bd_fx_t *fx, const char *field, const char *key)
{
    fx_claim(fx, BERTH_EFFECT_UNCLAIM, "ips", field, key);
}

void bd_fx_usage(bd_fx_t *fx, const char *sub, const char *location, int delta)
{
    char f[320];
    snprintf(f, sizeof f, "%s/%s", sub, location);
    for (char *p = f; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    berth_effect_t *e = fx_add(fx, BERTH_EFFECT_HINCRBY, "usage");
    e->field = fx_text(fx, f);
    e->n = delta;
}

int bd_fx_operation(bd_fx_t *fx, const char *id, const json_t *op)
{
    char *text = fx_own(fx, json_dumps(op, JSON_COMPACT));
    if (text == NULL)
        return BERTH_ENOMEM;
    berth_effect_t *e = fx_add(fx, BERTH_EFFECT_HSET, "operations");
    e->field = fx_text(fx, id);
    e->value = text;
    return 0;
}

int bd_fx_done(bd_fx_t *fx, const char *crid, const json_t *answer, uint32_t ttl_s)
{
    char *text = fx_own(fx, json_dumps(answer, JSON_COMPACT));
    if (text == NULL)
        return BERTH_ENOMEM;
    char k[320];
    snprintf(k, sizeof k, "done:%s", crid);
    berth_effect_t *e = fx_add(fx, BERTH_EFFECT_SET, NULL);
    e->key = fx_text(fx, k);
    e->value = text;
    e->n = ttl_s;
    return 0;
}

void bd_fx_eviction_forget(bd_fx_t *fx, const char *key)
{
    berth_effect_t *e = fx_add(fx, BERTH_EFFECT_HDEL, "evictions");
    e->field = fx_text(fx, key);
}

void bd_fx_document_forget(bd_fx_t *fx, const char *key)
{
    berth_effect_t *e = fx_add(fx, BERTH_EFFECT_HDEL, "documents");
    e->field = fx_text(fx, key);
}

/* The index of the first claim of hash `hash` in fx, or -1. */
static int claim_index(const bd_fx_t *fx, const char *hash)
{
    for (size_t i = 0; i < fx->n; i++)
        if (fx->e[i].op == BERTH_EFFECT_CLAIM && strcmp(fx->e[i].key, hash) == 0)
            return (int)i;
    return -1;
}

int bd_fx_dns_index(const bd_fx_t *fx)
{
    return claim_index(fx, "dns");
}

int bd_fx_ip_index(const bd_fx_t *fx)
{
    return claim_index(fx, "ips");
}
