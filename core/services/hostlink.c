/*
 * hostlink.c: a host agent's side of the Redis store.
 *
 * The link reads the host's assignment stream through the consumer group
 * "agents" with the host's name as consumer, so that Redis remembers what
 * the host read and did not acknowledge: after a restart the link first
 * reads those entries again (XREADGROUP ... 0), then new ones (">").  An
 * acknowledged entry is also deleted, so the stream holds only work not yet
 * done.  One entry may carry several assignments (a batch of placements
 * writes one entry per host: op, key, gen, then op, key, gen again ...):
 * the link hands them out one by one, in order, and acknowledges and
 * deletes the entry once every one of them is acknowledged.  Instance
 * views and heartbeats are plain keys (store.c's schema); views go through
 * the berth_view_put / berth_view_del Functions, which check that the host
 * still holds the group; so do the usage metrics (berth:{C}:metrics), which
 * follow a view's life.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "store.h"

#define BATCH 32u                   /* entries read per XREADGROUP          */
#define BATCH_TEXT "32"
#define ENTRY_OPS_MAX 1024u         /* assignments one entry may carry      */

/* An entry handed out in part or whole and not yet acknowledged whole:
 * `left` of its assignments are still to be acknowledged. */
typedef struct open_entry {
    char id[BERTH_ASSIGNMENT_ID_MAX + 1];
    size_t left;
} open_entry_t;

struct berth_hostlink {
    berth_store_t *s;
    char host[BERTH_NAME_MAX + 1];
    char k_assign[BERTH__KEYNAME_MAX];
    char k_alive[BERTH__KEYNAME_MAX];
    char k_hostgroups[BERTH__KEYNAME_MAX];
    char k_groups[BERTH__KEYNAME_MAX];
    char k_views[BERTH__KEYNAME_MAX];
    char k_metrics[BERTH__KEYNAME_MAX];
    char k_meta[BERTH__KEYNAME_MAX];
    char k_images[BERTH__KEYNAME_MAX];
    char k_calls[BERTH__KEYNAME_MAX];
    char calls_last[BERTH_ASSIGNMENT_ID_MAX + 1]; /* the last call entry read */
    uint64_t opened_ms;             /* Redis's clock when the link opened   */
    bool pending_done;              /* the entries read before a restart are all read */
    berth_assignment_t *queue;      /* what the last read brought, in order */
    size_t qhead, qlen, qcap;
    open_entry_t *open;             /* entries read, not acknowledged whole */
    size_t nopen, opencap;
};

static int link_open(const berth_store_options_t *opts, const char *host,
                     berth_hostlink_t **out, berth_error_t *err)
{
    *out = NULL;
    if (host == NULL || !berth__host_name_is_valid(host))
        return berth__error_set(err, BERTH_EINVAL, "InvalidHostName", "host",
                                "'%s' is not a valid host name", host != NULL ? host : "");
    berth_hostlink_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a link");
    int rc = berth__store_open(opts, NULL, true, &l->s, err);
    if (rc < 0) {
        free(l);
        return rc;
    }
    snprintf(l->host, sizeof l->host, "%s", host);
    berth__store_key(l->s, l->k_assign, sizeof l->k_assign, "assign:", host);
    berth__store_key(l->s, l->k_alive, sizeof l->k_alive, "alive:", host);
    berth__store_key(l->s, l->k_hostgroups, sizeof l->k_hostgroups, "hostgroups:", host);
    berth__store_key(l->s, l->k_groups, sizeof l->k_groups, "groups", "");
    berth__store_key(l->s, l->k_views, sizeof l->k_views, "views", "");
    berth__store_key(l->s, l->k_metrics, sizeof l->k_metrics, "metrics", "");
    berth__store_key(l->s, l->k_meta, sizeof l->k_meta, "meta", "");
    berth__store_key(l->s, l->k_images, sizeof l->k_images, "images:", host);
    berth__store_key(l->s, l->k_calls, sizeof l->k_calls, "calls:", host);
    snprintf(l->calls_last, sizeof l->calls_last, "0-0");

    const char *argv[] = {"XGROUP", "CREATE", l->k_assign, "agents", "0", "MKSTREAM"};
    redisReply *r = berth__store_command(l->s, 6, argv, NULL, false,
                                         "creating the host's consumer group", NULL, &rc);
    if (r != NULL) {
        freeReplyObject(r);
    } else if (rc < 0) {
        /* BUSYGROUP (it exists) is the usual answer; anything else shows
         * on the first read.  Tell them apart by asking. */
        const char *info[] = {"XINFO", "GROUPS", l->k_assign};
        r = berth__store_command(l->s, 3, info, NULL, false, "reading the consumer group",
                                 err, &rc);
        if (r == NULL) {
            berth_hostlink_close(l);
            return rc;
        }
        freeReplyObject(r);
    }
    /* Calls whose caller gave up before this link opened are not answered:
     * read from ten seconds back (Redis's clock, which stream ids carry)
     * and skip those whose id time plus timeout is past. */
    const char *time_argv[] = {"TIME"};
    r = berth__store_command(l->s, 1, time_argv, NULL, false, "reading Redis's clock", err, &rc);
    if (r == NULL) {
        berth_hostlink_close(l);
        return rc;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING)
        l->opened_ms = strtoull(r->element[0]->str, NULL, 10) * 1000 +
                       strtoull(r->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(r);
    snprintf(l->calls_last, sizeof l->calls_last, "%llu-0",
             (unsigned long long)(l->opened_ms > 10000 ? l->opened_ms - 10000 : 0));
    *out = l;
    return 0;
}

int berth_hostlink_open(const berth_store_options_t *opts, const char *host,
                        berth_hostlink_t **out, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(link_open(opts, host, out, err));
}

void berth_hostlink_close(berth_hostlink_t *link)
{
    if (link == NULL)
        return;
    berth_store_close(link->s);
    free(link->queue);
    free(link->open);
    free(link);
}

static int link_heartbeat(berth_hostlink_t *l, uint32_t ttl_ms, berth_error_t *err)
{
    if (ttl_ms == 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "ttl_ms",
                                "a heartbeat needs a time to live above zero");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char now[24], ttl[16];
    snprintf(now, sizeof now, "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    snprintf(ttl, sizeof ttl, "%u", ttl_ms);
    char hosts[BERTH__KEYNAME_MAX], log[BERTH__KEYNAME_MAX], seq[BERTH__KEYNAME_MAX];
    char agents[BERTH__KEYNAME_MAX];
    berth__store_key(l->s, hosts, sizeof hosts, "hosts", "");
    berth__store_key(l->s, log, sizeof log, "log", "");
    berth__store_key(l->s, seq, sizeof seq, "seq", "");
    berth__store_key(l->s, agents, sizeof agents, "agents", "");
    char maxlen[24];
    snprintf(maxlen, sizeof maxlen, "%u", berth__store_options(l->s)->log_max_len);
    const char *argv[] = {"FCALL", "berth_heartbeat", "5", hosts, log, seq, l->k_alive, agents,
                          l->host, now, ttl, maxlen};
    int rc;
    redisReply *r = berth__store_command(l->s, 12, argv, NULL, false, "renewing the heartbeat",
                                         err, &rc);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    return 0;
}

int berth_hostlink_heartbeat(berth_hostlink_t *link, uint32_t ttl_ms, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(link_heartbeat(link, ttl_ms, err));
}

/* The operation named `op`, or 0. */
static berth_assign_op_t op_parse(const redisReply *op)
{
    if (op->type != REDIS_REPLY_STRING)
        return 0;
    if (strcmp(op->str, "place") == 0)
        return BERTH_ASSIGN_PLACE;
    if (strcmp(op->str, "release") == 0)
        return BERTH_ASSIGN_RELEASE;
    if (strcmp(op->str, "restart") == 0)
        return BERTH_ASSIGN_RESTART;
    return 0;
}

/* True when `r` is the string `name`. */
static bool field_is(const redisReply *r, const char *name)
{
    return r->type == REDIS_REPLY_STRING && strcmp(r->str, name) == 0;
}

/* Room in the queue for `more` assignments beyond qlen; false: no memory. */
static bool queue_reserve(berth_hostlink_t *l, size_t more)
{
    if (l->qlen + more <= l->qcap)
        return true;
    size_t cap = l->qcap > 0 ? l->qcap : BATCH;
    while (cap < l->qlen + more)
        cap *= 2;
    berth_assignment_t *q = realloc(l->queue, cap * sizeof *q);
    if (q == NULL)
        return false;
    l->queue = q;
    l->qcap = cap;
    return true;
}

/* Appends one stream entry's assignments (op, key, gen, repeated) to the
 * queue.  Returns how many, 0 when the entry is malformed (the queue then
 * as before), or -1 when out of memory. */
static int entry_parse(berth_hostlink_t *l, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[0]->len > BERTH_ASSIGNMENT_ID_MAX ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return 0;
    const redisReply *fv = e->element[1];
    size_t n = fv->elements / 6;
    if (n == 0 || n > ENTRY_OPS_MAX || fv->elements % 6 != 0)
        return 0;
    if (!queue_reserve(l, n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        redisReply *const *f = fv->element + 6 * i;
        berth_assignment_t *a = &l->queue[l->qlen + i];
        if (!field_is(f[0], "op") || !field_is(f[2], "key") || !field_is(f[4], "gen") ||
            f[3]->type != REDIS_REPLY_STRING || f[5]->type != REDIS_REPLY_STRING ||
            f[3]->len == 0 || f[3]->len > BERTH_GROUP_KEY_MAX)
            return 0;
        a->op = op_parse(f[1]);
        if (a->op == 0 || !berth__reply_u64(f[5], &a->generation))
            return 0;
        memcpy(a->id, e->element[0]->str, e->element[0]->len + 1);
        memcpy(a->key, f[3]->str, f[3]->len + 1);
    }
    return (int)n;
}

/* Remembers that entry `id` was handed out with `n` assignments; false:
 * no memory. */
static bool open_add(berth_hostlink_t *l, const char *id, size_t n)
{
    for (size_t i = 0; i < l->nopen; i++) {
        if (strcmp(l->open[i].id, id) == 0) {
            l->open[i].left = n;    /* read again (the pending pass)        */
            return true;
        }
    }
    if (l->nopen == l->opencap) {
        size_t cap = l->opencap > 0 ? 2 * l->opencap : BATCH;
        open_entry_t *o = realloc(l->open, cap * sizeof *o);
        if (o == NULL)
            return false;
        l->open = o;
        l->opencap = cap;
    }
    snprintf(l->open[l->nopen].id, sizeof l->open[l->nopen].id, "%s", id);
    l->open[l->nopen++].left = n;
    return true;
}

static int link_ack_id(berth_hostlink_t *l, const char *id, berth_error_t *err)
{
    const char *ack[] = {"XACK", l->k_assign, "agents", id};
    int rc;
    redisReply *r = berth__store_command(l->s, 4, ack, NULL, false,
                                         "acknowledging an assignment", err, &rc);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    const char *del[] = {"XDEL", l->k_assign, id};
    r = berth__store_command(l->s, 3, del, NULL, false, "dropping an assignment", err, &rc);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    return 0;
}

/* Reads one batch into the queue: pending entries (id "0") until none is
 * left, then new ones, blocking at most block_ms. */
static int fill(berth_hostlink_t *l, uint32_t block_ms, berth_error_t *err)
{
    char block[16];
    snprintf(block, sizeof block, "%u", block_ms);
    bool from_pending = !l->pending_done;
    /* XREADGROUP GROUP agents HOST COUNT n [BLOCK ms] STREAMS key id */
    const char *argv[11] = {"XREADGROUP", "GROUP", "agents", l->host, "COUNT", BATCH_TEXT};
    int argc = 6;
    if (!from_pending && block_ms > 0) {
        argv[argc++] = "BLOCK";
        argv[argc++] = block;
    }
    argv[argc++] = "STREAMS";
    argv[argc++] = l->k_assign;
    argv[argc++] = from_pending ? "0" : ">";
    int rc;
    redisReply *r = berth__store_command(l->s, argc, argv, NULL, false, "reading assignments",
                                         err, &rc);
    if (r == NULL)
        return rc;
    l->qhead = l->qlen = 0;
    /* Reply: [[stream, [[id, [f, v, ...]], ...]]] or nil. */
    const redisReply *entries = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
        entries = r->element[0]->element[1];
    size_t n = entries != NULL && entries->type == REDIS_REPLY_ARRAY ? entries->elements : 0;
    bool oom = false;
    for (size_t i = 0; i < n && !oom; i++) {
        const redisReply *e = entries->element[i];
        /* A pending entry deleted meanwhile comes back as [id, nil]. */
        int got = entry_parse(l, e);
        if (got > 0 && !open_add(l, l->queue[l->qlen].id, (size_t)got))
            got = -1;
        if (got < 0) {
            /* Out of memory: what is queued is handed out, then the entries
             * still pending are read again from the start ("0"). */
            l->pending_done = false;
            oom = true;
        } else if (got > 0) {
            l->qlen += (size_t)got;
        } else if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
                   e->element[0]->type == REDIS_REPLY_STRING) {
            char id[BERTH_ASSIGNMENT_ID_MAX + 1];
            snprintf(id, sizeof id, "%s", e->element[0]->str);
            (void)link_ack_id(l, id, NULL);
        }
    }
    if (from_pending && n == 0)
        l->pending_done = true;
    freeReplyObject(r);
    if (oom && l->qlen == 0)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for the assignments read");
    return from_pending && n > 0 && l->qlen == 0 ? fill(l, block_ms, err) : 0;
}

static int link_next(berth_hostlink_t *l, uint32_t block_ms, berth_assignment_t *out,
                     berth_error_t *err)
{
    if (l->qhead == l->qlen) {
        int rc = fill(l, block_ms, err);
        if (rc < 0)
            return rc;
        if (l->qlen == 0 && !l->pending_done)
            return 0;
        if (l->qlen == 0 && l->pending_done) {
            /* The pending pass just ended empty: read (or wait for) new
             * entries. */
            rc = fill(l, block_ms, err);
            if (rc < 0)
                return rc;
        }
        if (l->qlen == 0)
            return 0;
    }
    *out = l->queue[l->qhead++];
    return 1;
}

int berth_hostlink_next(berth_hostlink_t *link, uint32_t block_ms, berth_assignment_t *out,
                        berth_error_t *err)
{
    BERTH__RETURN_GUARDED(link_next(link, block_ms, out, err));
}

/* Acknowledges one assignment: its entry goes once none of the entry's
 * assignments is left; an entry the link does not know (acknowledged
 * already, or read by an earlier link) goes at once. */
static int link_ack(berth_hostlink_t *l, const berth_assignment_t *a, berth_error_t *err)
{
    for (size_t i = 0; i < l->nopen; i++) {
        open_entry_t *o = &l->open[i];
        if (strcmp(o->id, a->id) != 0)
            continue;
        if (o->left > 1) {
            o->left--;
            return 0;
        }
        int rc = link_ack_id(l, a->id, err);
        if (rc == 0)
            l->open[i] = l->open[--l->nopen];
        return rc;
    }
    return link_ack_id(l, a->id, err);
}

int berth_hostlink_ack(berth_hostlink_t *link, const berth_assignment_t *a,
                       berth_error_t *err)
{
    BERTH__RETURN_GUARDED(link_ack(link, a, err));
}

int berth_hostlink_group(berth_hostlink_t *link, const char *key, char **spec_json,
                         uint64_t *generation, char *host, berth_error_t *err)
{
    if (spec_json != NULL)
        *spec_json = NULL;
    if (berth__group_key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(berth__store_group_record(link->s, key, spec_json, generation, host,
                                                    BERTH_NAME_MAX + 1, err));
}

/* The runtime group a record names (standby-pool claims, pool.c). */
static int link_group_runtime(berth_hostlink_t *l, const char *key, char *runtime, size_t cap,
                              uint64_t *generation, uint64_t *digest, berth_error_t *err)
{
    redisReply *r;
    berth__group_record_t *g;
    int rc = berth__store_group_fetch(l->s, key, &r, &g, err);
    if (rc < 0)
        return rc;
    if (g->runtime.ptr != NULL && g->runtime.len > 0) {
        if (runtime != NULL && g->runtime.len >= cap) {
            rc = berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "runtime",
                                  "the runtime key of '%s' does not fit %zu bytes", key, cap);
        } else {
            if (runtime != NULL) {
                memcpy(runtime, g->runtime.ptr, g->runtime.len);
                runtime[g->runtime.len] = '\0';
            }
            if (generation != NULL)
                *generation = g->runtime_generation;
            if (digest != NULL)
                *digest = g->runtime_digest;
            rc = 1;
        }
    }
    free(g);
    freeReplyObject(r);
    return rc;
}

int berth_hostlink_group_runtime(berth_hostlink_t *link, const char *key, char *runtime,
                                 size_t cap, uint64_t *generation, uint64_t *digest,
                                 berth_error_t *err)
{
    if (runtime != NULL && cap > 0)
        runtime[0] = '\0';
    if (generation != NULL)
        *generation = 0;
    if (digest != NULL)
        *digest = 0;
    if (berth__group_key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(link_group_runtime(link, key, runtime, cap, generation, digest, err));
}

static int link_groups(berth_hostlink_t *l, berth_hostlink_key_cb cb, void *data,
                       berth_error_t *err)
{
    const char *argv[] = {"SMEMBERS", l->k_hostgroups};
    int rc;
    redisReply *r = berth__store_command(l->s, 2, argv, NULL, false,
                                         "reading the host's groups", err, &rc);
    if (r == NULL)
        return rc;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                cb(r->element[i]->str, data);
    freeReplyObject(r);
    return 0;
}

int berth_hostlink_groups(berth_hostlink_t *link, berth_hostlink_key_cb cb, void *data,
                          berth_error_t *err)
{
    BERTH__RETURN_GUARDED(link_groups(link, cb, data, err));
}

static int link_subnet_cidr(berth_hostlink_t *l, const char *id, char *cidr, size_t cap,
                            berth_error_t *err)
{
    const char *argv[] = {"HGET", l->k_meta, "subnets"};
    int rc;
    redisReply *r = berth__store_command(l->s, 3, argv, NULL, false,
                                         "reading the cell's subnets", err, &rc);
    if (r == NULL)
        return rc;
    json_t *table = r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : NULL;
    freeReplyObject(r);
    rc = berth__error_set(err, BERTH_ENOENT, "SubnetNotFound", "",
                          "subnet '%.200s' is not one of the cell's subnets", id);
    size_t i;
    json_t *s;
    json_array_foreach(table, i, s) {
        const char *sid = json_string_value(json_object_get(s, "id"));
        const char *c = json_string_value(json_object_get(s, "cidr"));
        if (sid != NULL && c != NULL && strcasecmp(sid, id) == 0 && strlen(c) < cap) {
            memcpy(cidr, c, strlen(c) + 1);
            berth_error_clear(err);
            rc = 0;
            break;
        }
    }
    json_decref(table);
    return rc;
}

int berth_hostlink_subnet_cidr(berth_hostlink_t *link, const char *id, char *cidr, size_t cap,
                               berth_error_t *err)
{
    if (id == NULL || cidr == NULL || cap == 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                                "a subnet lookup needs an id and a buffer");
    BERTH__RETURN_GUARDED(link_subnet_cidr(link, id, cidr, cap, err));
}

/* Calls a view Function; returns 1 (done), 0 (refused) or a negative code. */
static int view_fcall(berth_hostlink_t *l, int argc, const char **argv, const char *what,
                      berth_error_t *err)
{
    int rc;
    redisReply *r = berth__store_command(l->s, argc, argv, NULL, true, what, err, &rc);
    if (r == NULL)
        return rc;
    char reason[32], message[256];
    rc = berth__store_fcall_result(r, reason, sizeof reason, message, sizeof message, err);
    freeReplyObject(r);
    if (rc == 0)
        berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key", "%s", message);
    return rc;
}

/* Writes `json` under `key` in `hash` (the views or the metrics) through
 * the Function that checks the group is at `generation` on this host. */
static int link_owned_put(berth_hostlink_t *l, const char *hash, const char *what,
                          const char *key, uint64_t generation, const char *json,
                          berth_error_t *err)
{
    char gen[24];
    snprintf(gen, sizeof gen, "%llu", (unsigned long long)generation);
    const char *argv[] = {"FCALL", "berth_view_put", "2", l->k_groups, hash,
                          key, l->host, gen, json};
    int rc = view_fcall(l, 9, argv, what, err);
    return rc == 1 ? 0 : rc == 0 ? BERTH_ENOENT : rc;
}

/* The checks of a put of a view or metrics text. */
static int owned_put_check(const char *key, const char *json, const char *what,
                           berth_error_t *err)
{
    if (berth__group_key_check(key, err) < 0)
        return BERTH_EINVAL;
    if (json == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", what,
                                "%s needs a JSON text", what);
    return 0;
}

int berth_hostlink_view_put(berth_hostlink_t *link, const char *key, uint64_t generation,
                            const char *view_json, berth_error_t *err)
{
    if (owned_put_check(key, view_json, "view_json", err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(link_owned_put(link, link->k_views, "writing an instance view", key,
                                         generation, view_json, err));
}

int berth_hostlink_metrics_put(berth_hostlink_t *link, const char *key, uint64_t generation,
                               const char *metrics_json, berth_error_t *err)
{
    if (owned_put_check(key, metrics_json, "metrics_json", err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(link_owned_put(link, link->k_metrics, "writing usage metrics", key,
                                         generation, metrics_json, err));
}

int berth_hostlink_view_get(berth_hostlink_t *link, const char *key, char **view_json,
                            berth_error_t *err)
{
    return berth_store_view_read(link->s, key, view_json, err);
}

int berth_hostlink_metrics_get(berth_hostlink_t *link, const char *key, char **metrics_json,
                               berth_error_t *err)
{
    return berth_store_metrics_read(link->s, key, metrics_json, err);
}

/* Drops what this host wrote under `key` in `hash` (the views or the
 * metrics), unless the group is (again) on this host. */
static int link_owned_delete(berth_hostlink_t *l, const char *hash, const char *what,
                             const char *key, berth_error_t *err)
{
    const char *argv[] = {"FCALL", "berth_view_del", "2", l->k_groups, hash, key, l->host};
    int rc = view_fcall(l, 7, argv, what, err);
    /* Refused means the group is on this host again: nothing to drop. */
    return rc < 0 ? rc : 0;
}

/* Contract (store.h). */
berth_store_t *berth__hostlink_store(berth_hostlink_t *link)
{
    return link->s;
}

int berth_hostlink_view_delete(berth_hostlink_t *link, const char *key, berth_error_t *err)
{
    if (berth__group_key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(link_owned_delete(link, link->k_views, "dropping an instance view",
                                            key, err));
}

int berth_hostlink_metrics_delete(berth_hostlink_t *link, const char *key, berth_error_t *err)
{
    if (berth__group_key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(link_owned_delete(link, link->k_metrics, "dropping usage metrics",
                                            key, err));
}

static int link_images_put(berth_hostlink_t *l, const char *const *images, size_t n,
                           berth_error_t *err)
{
    /* DEL then SADD in one MULTI, so that a reader never sees half a set. */
    const char **sadd = malloc((n + 2) * sizeof *sadd);
    if (sadd == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for images");
    sadd[0] = "SADD";
    sadd[1] = l->k_images;
    for (size_t i = 0; i < n; i++)
        sadd[i + 2] = images[i];
    const char *del[] = {"DEL", l->k_images};
    const char *const *argvs[] = {del, sadd};
    const int argcs[] = {2, (int)(n + 2)};
    int rc;
    redisReply *r = berth__store_transaction(l->s, n > 0 ? 2 : 1, argvs, argcs,
                                             "writing the host's images", err, &rc);
    free(sadd);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    return 0;
}

int berth_hostlink_images_put(berth_hostlink_t *link, const char *const *images, size_t n,
                              berth_error_t *err)
{
    for (size_t i = 0; i < n; i++)
        if (images == NULL || images[i] == NULL || images[i][0] == '\0')
            return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "images",
                                    "image %zu has no name", i);
    BERTH__RETURN_GUARDED(link_images_put(link, images, n, err));
}

static int link_call_next(berth_hostlink_t *l, berth_call_t **out, berth_error_t *err)
{
    *out = NULL;
    /* Each round reads one entry; malformed ones are dropped and skipped. */
    for (int round = 0; round < 16; round++) {
        const char *argv[] = {"XREAD", "COUNT", "1", "STREAMS", l->k_calls, l->calls_last};
        int rc;
        redisReply *r = berth__store_command(l->s, 6, argv, NULL, false, "reading calls", err,
                                             &rc);
        if (r == NULL)
            return rc;
        const redisReply *e = NULL;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
            r->element[0]->element[1]->type == REDIS_REPLY_ARRAY &&
            r->element[0]->element[1]->elements == 1)
            e = r->element[0]->element[1]->element[0];
        if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len > BERTH_ASSIGNMENT_ID_MAX) {
            freeReplyObject(r);
            return 0;
        }
        snprintf(l->calls_last, sizeof l->calls_last, "%s", e->element[0]->str);
        *out = berth__call_parse(e->element[1]);
        uint64_t made = strtoull(l->calls_last, NULL, 10);
        if (*out != NULL && made + (*out)->timeout_ms < l->opened_ms) {
            berth_call_free(*out);      /* its caller gave up before we came */
            *out = NULL;
        }
        const char *del[] = {"XDEL", l->k_calls, l->calls_last};
        freeReplyObject(r);
        r = berth__store_command(l->s, 3, del, NULL, false, "dropping a call", NULL, &rc);
        if (r != NULL)
            freeReplyObject(r);
        if (*out != NULL)
            return 1;
    }
    return 0;
}

int berth_hostlink_call_next(berth_hostlink_t *link, berth_call_t **out, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(link_call_next(link, out, err));
}

int berth_hostlink_call_reply(berth_hostlink_t *link, const berth_call_t *call,
                              const char *output, size_t len, int exit_code,
                              const berth_error_t *error, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__call_reply(link->s, call, output, len, exit_code, error, err));
}
