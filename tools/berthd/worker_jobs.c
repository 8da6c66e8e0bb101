/*
 * worker_jobs.c: the jobs berthd hands its worker thread (worker.c):
 * blocking route handlers whose replies are captured on the worker and
 * forwarded on the loop (the NGroup and standby-pool routes among them),
 * and standby claims with the API's records as effects.
 *
 * Everything a job needs on the worker is copied on the loop first (the
 * request and its path's segments, the claim's key, document and effects
 * with every byte they point at), so the caller's memory may go as soon
 * as the call returns; results come back through the job, read on the
 * loop in its done callback.  This file uses only worker.h's calls: it
 * must never reach into the worker's state, and never answer a reply off
 * the loop but through a captured one.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bodies.h"
#include "profiles.h"
#include "worker.h"

/* ---- routes ------------------------------------------------------------------------------ */

typedef struct route_job {
    bd_route_fn handler;
    bd_request_copy_t rc;           /* the request (rc.req)                 */
    char **seg;
    int n;
    bd_reply_t *captured;
    bd_reply_t *real;
    bool ngroup;                    /* an NGroups route: handler unused     */
    char *profile;                  /* its profile's document, or NULL      */
    uint64_t profile_rev;
    bd_worker_t *w;                 /* while the profile is resolved        */
} route_job_t;

static void route_job_free(route_job_t *j)
{
    if (j == NULL)
        return;
    bd_request_copy_free(&j->rc);
    for (int i = 0; j->seg != NULL && i < j->n; i++)
        free(j->seg[i]);
    free(j->seg);
    bd_reply_capture_free(j->captured);
    free(j->profile);
    free(j);
}

/* strdup() of s, with NULL for NULL; *ok turns false when memory ran out. */
static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

/* Contract: berthd.h. */
bool bd_request_copy(bd_request_copy_t *c, const bd_request_t *src)
{
    bool ok = true;
    memset(c, 0, sizeof *c);
    c->req = *src;
    c->path = dup_or_null(src->path, &ok);
    c->query = dup_or_null(src->query, &ok);
    c->base_url = dup_or_null(src->base_url, &ok);
    c->client_request_id = dup_or_null(src->client_request_id, &ok);
    /* The body may hold NUL bytes: body_len of them, then a NUL. */
    if (src->body != NULL) {
        c->body = malloc(src->body_len + 1);
        if (c->body != NULL) {
            memcpy(c->body, src->body, src->body_len);
            c->body[src->body_len] = '\0';
        }
        ok = ok && c->body != NULL;
    }
    c->req.nsubscriptions = 0;
    if (src->subscriptions != NULL && src->nsubscriptions > 0) {
        c->subscriptions = calloc(src->nsubscriptions, sizeof *c->subscriptions);
        ok = ok && c->subscriptions != NULL;
        for (size_t i = 0; ok && i < src->nsubscriptions; i++) {
            c->subscriptions[i] = dup_or_null(src->subscriptions[i], &ok);
            c->req.nsubscriptions = i + 1;
        }
    }
    c->req.path = c->path;
    c->req.query = c->query;
    c->req.body = c->body;
    c->req.base_url = c->base_url;
    c->req.client_request_id = c->client_request_id;
    c->req.subscriptions = (const char *const *)c->subscriptions;
    return ok;
}

/* Contract: berthd.h. */
void bd_request_copy_free(bd_request_copy_t *c)
{
    free(c->path);
    free(c->query);
    free(c->body);
    free(c->base_url);
    free(c->client_request_id);
    for (size_t i = 0; c->subscriptions != NULL && i < c->req.nsubscriptions; i++)
        free(c->subscriptions[i]);
    free(c->subscriptions);
    memset(c, 0, sizeof *c);
}

/* Copies *src and seg[0..n-1] into j, every byte they point at.  Returns
 * false when memory ran out (j then holds what was copied). */
static bool request_copy(route_job_t *j, const bd_request_t *src, char **seg, int n)
{
    bool ok = bd_request_copy(&j->rc, src);
    if (ok && n > 0 && seg != NULL) {
        j->seg = calloc((size_t)n + 1, sizeof *j->seg);
        ok = j->seg != NULL;
        for (int i = 0; ok && i < n; i++) {
            j->seg[i] = dup_or_null(seg[i], &ok);
            j->n = i + 1;
        }
    }
    if (ok)
        j->n = n > 0 && seg != NULL ? n : 0;
    return ok;
}

/* A 503 CloudError with Retry-After: 1 (the queue is full, memory is
 * short, the worker is stopping). */
static void reply_unavailable(bd_reply_t *reply, const char *code, const char *message)
{
    berth_error_t err;
    berth_error_set(&err, BERTH_EIO, code, "", "%s", message);
    char *s = NULL;
    json_t *body = berth_error_to_json(&err, &s) == 0 ? json_loads(s, 0, NULL) : NULL;
    berth_free(s);
    static const char *const retry[] = {"Retry-After", "1", NULL};
    bd_reply_send(reply, 503, body, retry);
}

static bool store_ready(bd_worker_ctx_t *ctx, bd_reply_t *reply);

static void route_run(bd_worker_ctx_t *ctx, void *arg)
{
    route_job_t *j = arg;
    if (!j->ngroup)
        j->handler(ctx, &j->rc.req, j->captured, j->seg, j->n);
    else if (store_ready(ctx, j->captured))
        bd_ngroups_handle(ctx->store, ctx->ngroups_active, &j->rc.req, j->captured, j->seg, j->n,
                          j->profile, j->profile_rev, ctx->cfg->secrets);
}

static void route_done(int status, const berth_error_t *err, void *arg)
{
    route_job_t *j = arg;
    if (status == 0) {
        bd_reply_forward(j->captured, j->real);
        j->captured = NULL;
    } else {
        reply_unavailable(j->real, "ServiceUnavailable",
                          err != NULL ? err->message : "berthd is stopping");
    }
    route_job_free(j);
}

/* A route job with a copy of the request, or NULL (`reply` answered). */
static route_job_t *route_job_new(const bd_request_t *req, bd_reply_t *reply, char **seg, int n)
{
    route_job_t *j = calloc(1, sizeof *j);
    if (j == NULL || !request_copy(j, req, seg, n) ||
        (j->captured = bd_reply_capture_new()) == NULL) {
        route_job_free(j);
        reply_unavailable(reply, "ServerBusy", "berthd is short of memory; try again");
        return NULL;
    }
    j->real = reply;
    return j;
}

/* Queues j on the worker; answers and frees it when that fails. */
static void route_queue(bd_worker_t *w, route_job_t *j)
{
    int rc = bd_worker_call(w, route_run, route_done, j);
    if (rc != 0) {
        bd_reply_t *reply = j->real;
        route_job_free(j);
        if (rc == BERTH_EIO)
            reply_unavailable(reply, "ServiceUnavailable", "berthd is stopping");
        else
            reply_unavailable(reply, "ServerBusy",
                              "berthd has too much work queued; try again");
    }
}

void bd_worker_route(bd_worker_t *w, bd_route_fn handler, const bd_request_t *req,
                     bd_reply_t *reply, char **seg, int n)
{
    route_job_t *j = route_job_new(req, reply, seg, n);
    if (j == NULL)
        return;
    j->handler = handler;
    route_queue(w, j);
}

/* Whether the worker's store is open; otherwise answers 500 with why. */
static bool store_ready(bd_worker_ctx_t *ctx, bd_reply_t *reply)
{
    if (ctx->store != NULL)
        return true;
    bd_reply_berth_error(reply, 500, &ctx->store_err);
    return false;
}

/* The profile of an NGroup's PUT or PATCH, resolved (on the loop): the job
 * goes to the worker with its document, or the request is answered with
 * the reference's error at its path. */
static void on_profile(int status, const char *document, uint64_t revision,
                       const berth_error_t *err, void *data)
{
    route_job_t *j = data;
    if (status == 0) {
        j->profile = strdup(document);
        j->profile_rev = revision;
        if (j->profile == NULL) {
            bd_reply_t *reply = j->real;
            route_job_free(j);
            reply_unavailable(reply, "ServerBusy", "berthd is short of memory; try again");
            return;
        }
        route_queue(j->w, j);
        return;
    }
    berth_error_t e;
    if (err != NULL)
        e = *err;
    else
        berth_error_set(&e, status, "InvalidContainerGroupProfile", "", "%s",
                        "the container group profile could not be read");
    const char *path = strcmp(e.target, "revision") == 0
                           ? "properties.containerGroupProfiles[0].revision"
                           : "properties.containerGroupProfiles[0].resource.id";
    snprintf(e.target, sizeof e.target, "%s", path);
    bd_reply_berth_error(j->real,
                         status == BERTH_EINVAL ? 400 : status == BERTH_ENOENT ? 404 : 500, &e);
    route_job_free(j);
}

static void pools_route(bd_worker_ctx_t *ctx, const bd_request_t *req, bd_reply_t *reply,
                        char **seg, int n)
{
    if (store_ready(ctx, reply))
        bd_pools_handle(ctx->pools, req, reply, seg, n);
    /* After the route, on this thread: a housekeeping count that ran
     * before it cannot clear what it made. */
    bd_worker_pools_seen(ctx->worker);
}

void bd_worker_ngroups(bd_worker_t *w, bd_api_t *api, const bd_request_t *req,
                       bd_reply_t *reply, char **seg, int n)
{
    char *id = NULL;
    uint64_t rev = 0;
    berth_error_t err;
    int found = 0;
    if (n == 8 && (req->method == BD_PUT || req->method == BD_PATCH))
        found = bd_ngroup_profile_ref(req->body, req->body ? req->body_len : 0,
                                      req->method == BD_PATCH, &id, &rev, &err);
    if (found < 0) {
        bd_reply_berth_error(reply, found == BERTH_EINVAL ? 400 : 500, &err);
        return;
    }
    route_job_t *j = route_job_new(req, reply, seg, n);
    if (j == NULL) {
        free(id);
        return;
    }
    j->ngroup = true;
    if (found == 0) {
        route_queue(w, j);
        return;
    }
    j->w = w;
    /* The profile is read on the loop; the job is queued once it is. */
    if (bd_profile_resolve(api, j->seg[1], id, rev, on_profile, j) != 0) {
        route_job_free(j);
        reply_unavailable(reply, "ServerBusy", "berthd is short of memory; try again");
    }
    free(id);
}

void bd_worker_pools(bd_worker_t *w, const bd_request_t *req, bd_reply_t *reply, char **seg,
                     int n)
{
    bd_worker_pools_seen(w);
    bd_worker_route(w, pools_route, req, reply, seg, n);
}

/* ---- pool claims ------------------------------------------------------------------------- */

typedef struct claim_job {
    char *key;
    berth_request_t req;
    char *spec;
    char *pool_prefix;              /* NULL: the key's subscription's       */
    bool exact;                     /* pool_prefix is the one pool's name   */
    berth_effect_t *effects;        /* one allocation with their bytes      */
    size_t n;
    bd_claim_done_fn done;
    void *arg;
    int status;
    berth_placement_t pl;
    berth_error_t err;
} claim_job_t;

static void claim_job_free(claim_job_t *j)
{
    if (j == NULL)
        return;
    free(j->key);
    free(j->spec);
    free(j->pool_prefix);
    free(j->effects);
    free(j);
}

/* effects[0..n-1] and every byte they point at, in one allocation (free
 * with free()); NULL for n 0 or when memory ran out (*ok false). */
static berth_effect_t *effects_copy(const berth_effect_t *effects, size_t n, bool *ok)
{
    if (n == 0)
        return NULL;
    size_t bytes = n * sizeof *effects;
    for (size_t i = 0; i < n; i++) {
        const berth_effect_t *e = &effects[i];
        size_t vlen = e->value == NULL ? 0 : e->value_len ? e->value_len : strlen(e->value);
        bytes += (e->key ? strlen(e->key) + 1 : 0) + (e->field ? strlen(e->field) + 1 : 0) +
                 (e->value ? vlen + 1 : 0);
    }
    berth_effect_t *out = malloc(bytes);
    if (out == NULL) {
        *ok = false;
        return NULL;
    }
    char *p = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        const berth_effect_t *e = &effects[i];
        out[i] = *e;
        if (e->key != NULL) {
            out[i].key = strcpy(p, e->key);
            p += strlen(e->key) + 1;
        }
        if (e->field != NULL) {
            out[i].field = strcpy(p, e->field);
            p += strlen(e->field) + 1;
        }
        if (e->value != NULL) {
            size_t vlen = e->value_len ? e->value_len : strlen(e->value);
            memcpy(p, e->value, vlen);
            p[vlen] = '\0';
            out[i].value = p;
            out[i].value_len = vlen;
            p += vlen + 1;
        }
    }
    return out;
}

/* The group's request in the worker's engine: the caller's when it names
 * no zone, no GPU and no subnet (nothing in it is an engine's own), else
 * computed again from the document.  Returns 0 or a negative code with err. */
static int claim_request(bd_worker_ctx_t *ctx, claim_job_t *j, berth_request_t *out,
                         berth_error_t *err)
{
    *out = j->req;
    if (j->req.zone_mask == 0 && j->req.demand.gpu_count == 0 && j->req.subnet_mask == 0)
        return 0;
    /* The replica's SKU tables as Redis has them now. */
    berth_store_sync(ctx->store, NULL);
    berth_group_t *g = NULL;
    int rc = berth_group_parse(j->spec, strlen(j->spec), &g, err);
    if (rc == 0)
        rc = berth_engine_group_request(ctx->engine, g, out, err);
    berth_group_free(g);
    return rc;
}

static void claim_run(bd_worker_ctx_t *ctx, void *arg)
{
    claim_job_t *j = arg;
    if (ctx->store == NULL) {
        j->err = ctx->store_err;
        j->status = BERTH_EIO;
        return;
    }
    berth_request_t req;
    berth_error_t why;
    berth_error_clear(&why);
    if (claim_request(ctx, j, &req, &why) != 0) {
        bd_log("warn", "%s: no standby claim: the worker cannot compute its request: %s",
               j->key, why.message);
        j->status = berth_error_set(&j->err, BERTH_ENOENT, "NoStandbyMember", "",
                                    "no standby claim: %s", why.message);
        return;
    }
    if (j->exact)
        j->status = bd_pools_claim_from(ctx->pools, j->key, &req, j->spec, j->pool_prefix,
                                        j->effects, j->n, &j->pl, &j->err);
    else
        j->status = bd_pools_claim_with(ctx->pools, j->key, &req, j->spec, j->pool_prefix,
                                        j->effects, j->n, &j->pl, &j->err);
}

static void claim_done(int status, const berth_error_t *err, void *arg)
{
    claim_job_t *j = arg;
    if (status != 0)
        j->done(status, NULL, err, j->arg);
    else
        j->done(j->status, j->status == 0 ? &j->pl : NULL, j->status == 0 ? NULL : &j->err,
                j->arg);
    claim_job_free(j);
}

int bd_worker_pool_claim(bd_worker_t *w, const char *key, const berth_request_t *req,
                         const char *spec, const char *pool_prefix, bool exact,
                         const berth_effect_t *effects, size_t n, bd_claim_done_fn done,
                         void *arg)
{
    if (key == NULL || req == NULL || spec == NULL || done == NULL ||
        (exact && pool_prefix == NULL) ||
        n > BERTH_EFFECTS_MAX || (n > 0 && effects == NULL))
        return BERTH_EINVAL;
    claim_job_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return BERTH_ENOMEM;
    bool ok = true;
    j->key = dup_or_null(key, &ok);
    j->spec = dup_or_null(spec, &ok);
    j->pool_prefix = dup_or_null(pool_prefix, &ok);
    j->effects = effects_copy(effects, n, &ok);
    j->n = n;
    j->exact = exact;
    j->req = *req;
    j->done = done;
    j->arg = arg;
    if (!ok) {
        claim_job_free(j);
        return BERTH_ENOMEM;
    }
    int rc = bd_worker_call(w, claim_run, claim_done, j);
    if (rc != 0)
        claim_job_free(j);
    return rc;
}
