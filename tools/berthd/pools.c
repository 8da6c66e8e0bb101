/*
 * pools.c: berthd's standby pools on the worker thread: the
 * Microsoft.StandbyPool/standbyContainerGroupPools resource once its
 * request is ready (pools_route.c reads the body and resolves the
 * container group profile on the loop first), the claim a new container
 * group tries, and the refill.
 *
 * RESOURCE.  A pool is the library's pool "<subscription>/<resource
 * group>/<name>" (lowercase); its template is the referenced profile
 * revision's document (named after the pool, under the pool's location
 * when it names none), its size elasticityProfile.maxReadyCapacity, and
 * the ARM resource as given (location, tags, elasticityProfile,
 * containerGroupProperties {containerGroupProfile {id, revision},
 * subnetIds}, zones) is the pool record's annotation, written in the same
 * step (berth_store_pool_put_annotated()).  Its members are ordinary groups
 * of the cell (core/services/pool.c), not ACI resources.  A PUT answers 200
 * (201 when new), a PATCH 200 (404 when absent), DELETE 200 (members
 * released) or 204; the lists answer {"value": [...]} in name order.  The
 * runtime view "latest" counts the members: Running (ready), Creating
 * (placed, not ready yet).  A pool is no request-stream operation: a PUT,
 * PATCH or DELETE takes effect at once, so a client retries one that got
 * no answer.
 *
 * CLAIMS.  A PUT of a new container group first tries
 * berth_store_pool_claim_with() (among its subscription's pools by
 * template digest) or, when it names properties.standbyPoolProfile,
 * berth_store_pool_claim_from() (that pool alone); a ready member becomes
 * the group on its host.  A claim asks for a refill: on a state made on an
 * event loop (bd_pools_new()) a timer runs it 50 ms later (after the reply
 * is on its way); on a detached state (bd_pools_new_detached(), the
 * worker's) the owner's refill callback queues it.  Periodic housekeeping
 * runs one reconciliation step too.
 *
 * Everything here blocks on Redis: it belongs on berthd's worker thread
 * (worker.c), which owns a detached state and its store.  It never touches
 * the loop, but for the refill timer of a state made with bd_pools_new().
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "berthd.h"
#include "bodies.h"
#include "query.h"
#include "resource.h"

#define REFILL_DELAY_MS 50

struct bd_pools {
    berth_store_t *store;
    struct event *refill;           /* one-shot: a reconciliation step; NULL
                                     * on a detached state                  */
    void (*refill_cb)(void *arg);   /* a detached state's refill request    */
    void *refill_arg;
};

static void on_refill(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_pools_reconcile(arg);
}

bd_pools_t *bd_pools_new(struct event_base *base, berth_store_t *store)
{
    bd_pools_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->store = store;
    p->refill = evtimer_new(base, on_refill, p);
    if (p->refill == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

bd_pools_t *bd_pools_new_detached(berth_store_t *store, void (*refill)(void *arg), void *arg)
{
    bd_pools_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->store = store;
    p->refill_cb = refill;
    p->refill_arg = arg;
    return p;
}

void bd_pools_free(bd_pools_t *pools)
{
    if (pools == NULL)
        return;
    if (pools->refill != NULL)
        event_free(pools->refill);
    free(pools);
}

void bd_pools_reconcile(bd_pools_t *pools)
{
    berth_error_t err;
    uint32_t changes = 0;
    if (berth_store_pool_reconcile(pools->store, &changes, &err) < 0)
        bd_log("warn", "standby pools not reconciled: %s", err.message);
}

/* A claim's success: the refill asked for. */
static void claimed(bd_pools_t *pools, const char *key, const berth_placement_t *pl)
{
    if (pools->refill != NULL) {
        struct timeval tv = {0, REFILL_DELAY_MS * 1000};
        if (!evtimer_pending(pools->refill, NULL))
            evtimer_add(pools->refill, &tv);
    } else if (pools->refill_cb != NULL) {
        pools->refill_cb(pools->refill_arg);
    }
    bd_log("info", "%s claimed a standby group on %s", key, pl->host);
}

int bd_pools_claim_from(bd_pools_t *pools, const char *key, const berth_request_t *req,
                        const char *spec, const char *pool, const berth_effect_t *effects,
                        size_t n, berth_placement_t *pl, berth_error_t *err)
{
    berth_placement_t local;
    if (pl == NULL)
        pl = &local;
    int rc = berth_store_pool_claim_from(pools->store, key, req, spec, pool, effects, n, pl, err);
    if (rc == 0)
        claimed(pools, key, pl);
    return rc;
}

int bd_pools_claim_with(bd_pools_t *pools, const char *key, const berth_request_t *req,
                        const char *spec, const char *pool_prefix,
                        const berth_effect_t *effects, size_t n, berth_placement_t *pl,
                        berth_error_t *err)
{
    /* A create claims only from its own subscription's pools: the pool
     * names and the group keys both begin "<subscription>/". */
    berth_placement_t local;
    if (pl == NULL)
        pl = &local;
    char prefix[BD_SUB_MAX + 2];
    if (pool_prefix == NULL) {
        size_t len = strcspn(key, "/");
        snprintf(prefix, sizeof prefix, "%.*s/", (int)(len < BD_SUB_MAX ? len : BD_SUB_MAX),
                 key);
        pool_prefix = prefix;
    }
    int rc = berth_store_pool_claim_with(pools->store, key, req, spec, pool_prefix, effects, n,
                                         pl, err);
    if (rc == 0)
        claimed(pools, key, pl);
    return rc;
}

int bd_pools_claim(bd_pools_t *pools, const char *key, const berth_request_t *req,
                   const char *spec, berth_placement_t *pl, berth_error_t *err)
{
    return bd_pools_claim_with(pools, key, req, spec, NULL, NULL, 0, pl, err);
}

/* ---- the resource ------------------------------------------------------------------- */

#define POOL_TYPE "Microsoft.StandbyPool/standbyContainerGroupPools"

/* The ARM id of pool `name` of sub/rg. */
static void pool_id(const char *sub, const char *rg, const char *name, char *out, size_t cap)
{
    snprintf(out, cap,
             "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.StandbyPool/"
             "standbyContainerGroupPools/%s",
             sub, rg, name);
}

/* The pool's resource body: its annotation (the resource as given) with
 * the members a GET adds.  A pool without one (made by the library's
 * caller directly) answers its size alone. */
static json_t *pool_body(const char *sub, const char *rg, const char *name,
                         const berth_pool_info_t *info, const char *annotation)
{
    char id[512];
    pool_id(sub, rg, name, id, sizeof id);
    json_t *body = annotation != NULL ? json_loads(annotation, 0, NULL) : NULL;
    if (!json_is_object(body)) {
        json_decref(body);
        body = json_object();
    }
    json_t *props = json_object_get(body, "properties");
    if (!json_is_object(props)) {
        props = json_object();
        json_object_set_new(body, "properties", props);
    }
    json_t *elastic = json_object_get(props, "elasticityProfile");
    if (!json_is_object(elastic)) {
        elastic = json_object();
        json_object_set_new(props, "elasticityProfile", elastic);
    }
    json_object_set_new(elastic, "maxReadyCapacity", json_integer((json_int_t)info->size));
    json_object_set_new(props, "provisioningState", json_string("Succeeded"));
    if (json_object_get(body, "tags") == NULL)
        json_object_set_new(body, "tags", json_object());
    json_object_set_new(body, "id", json_string(id));
    json_object_set_new(body, "name", json_string(name));
    json_object_set_new(body, "type", json_string(POOL_TYPE));
    return body;
}

/* The counts of one zone (or of a pool without zones) by state: members
 * not yet ready are Creating, ready ones Running; Berth releases members
 * in the step that decides it, so none is ever seen Deleting. */
static json_t *state_counts(uint32_t members, uint32_t ready)
{
    uint32_t creating = members > ready ? members - ready : 0;
    return json_pack("[{s:s,s:I},{s:s,s:I},{s:s,s:I}]", "state", "Creating", "count",
                     (json_int_t)creating, "state", "Running", "count", (json_int_t)ready,
                     "state", "Deleting", "count", (json_int_t)0);
}

/* The runtime view "latest" of a pool: what the cell holds now, per zone
 * when the pool has zones (`zones`, nz of them: "zone" is the zone's name
 * as a number when it is one, as the spec types it, else the name).  Berth
 * does not forecast, so "prediction" is left out. */
static json_t *runtime_view(const char *sub, const char *rg, const char *name,
                            const berth_pool_info_t *info, const berth_pool_zone_info_t *zones,
                            size_t nz)
{
    char id[600];
    pool_id(sub, rg, name, id, sizeof id - 20);
    strcat(id, "/runtimeViews/latest");
    bool healthy = info->ready >= info->size;
    json_t *summary = json_array();
    if (nz == 0)
        json_array_append_new(summary, json_pack("{s:o}", "instanceCountsByState",
                                                 state_counts(info->members, info->ready)));
    for (size_t z = 0; z < nz; z++) {
        char *end = NULL;
        long long num = strtoll(zones[z].zone, &end, 10);
        json_t *zone = end != NULL && *end == '\0' && end != zones[z].zone
                           ? json_integer(num) : json_string(zones[z].zone);
        json_array_append_new(summary,
                              json_pack("{s:o,s:o}", "zone", zone, "instanceCountsByState",
                                        state_counts(zones[z].members, zones[z].ready)));
    }
    return json_pack("{s:s,s:s,s:s,s:{s:o,s:s,s:{s:s,s:s+}}}", "id", id, "name", "latest",
                     "type", POOL_TYPE "/runtimeViews", "properties", "instanceCountSummary",
                     summary, "provisioningState", "Succeeded", "status",
                     "code", healthy ? "HealthState/healthy" : "HealthState/degraded",
                     "message", healthy ? "The pool is healthy: " : "The pool is refilling: ",
                     info->size == 0 ? "it keeps no member."
                                     : info->ready >= info->size ? "every member is ready."
                                                                 : "not every member is ready.");
}

static void not_found(bd_reply_t *reply, const char *name, const char *rg)
{
    bd_reply_error(reply, 404, "ResourceNotFound", "",
                   "The Resource 'Microsoft.StandbyPool/standbyContainerGroupPools/%s' under "
                   "resource group '%s' was not found.", name, rg);
}

/* Merges the members of `patch` into `base` (objects member by member,
 * anything else replaced). */
static void merge_into(json_t *base, json_t *patch)
{
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        json_t *b = json_object_get(base, k);
        if (json_is_object(v) && json_is_object(b) && strcmp(k, "tags") != 0 &&
            strcmp(k, "containerGroupProfile") != 0)
            merge_into(b, v);
        else
            json_object_set(base, k, v);
    }
}

/* The template a profile document makes for pool `name`: named after the
 * pool, under the pool's location when it names none.  NULL when out of
 * memory or not an object. */
static char *pool_template(const char *document, const char *name, const char *location)
{
    json_t *doc = json_loads(document, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    json_object_set_new(doc, "name", json_string(name));
    if (json_object_get(doc, "location") == NULL && location != NULL)
        json_object_set_new(doc, "location", json_string(location));
    char *t = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    return t;
}

/* PUT and PATCH: req->body is what pools_route.c prepared on the loop,
 * {"patch": bool, "resource": the body as bodies.c normalized it, "size":
 * N or null, "template": the profile revision's document or null,
 * "revision": the revision resolved}. */
static void pool_write(bd_pools_t *pools, const bd_request_t *req, bd_reply_t *reply,
                       const char *pool, const char *sub, const char *rg, const char *name)
{
    berth_error_t err;
    json_t *job = json_loadb(req->body, req->body_len, 0, NULL);
    bool patch = json_is_true(json_object_get(job, "patch"));
    json_t *given = json_object_get(job, "resource");
    const char *document = json_string_value(json_object_get(job, "template"));
    if (!json_is_object(given) || (!patch && document == NULL)) {
        json_decref(job);
        bd_reply_error(reply, 500, "InternalServerError", "", "a standby pool job is malformed");
        return;
    }
    berth_pool_info_t info;
    char *stored = NULL, *note = NULL;
    int rc = berth_store_pool_get_annotated(pools->store, pool, &info, &stored, &note, &err);
    bool existed = rc == 0;
    if (rc != 0 && rc != BERTH_ENOENT) {
        json_decref(job);
        bd_reply_berth_error(reply, 500, &err);
        return;
    }
    if (patch && !existed) {
        json_decref(job);
        not_found(reply, name, rg);
        return;
    }
    /* The resource: what a PATCH gives over what is kept; a PUT's whole. */
    json_t *res = patch && note != NULL ? json_loads(note, 0, NULL) : NULL;
    if (!json_is_object(res)) {
        json_decref(res);
        res = json_object();
    }
    if (patch)
        merge_into(res, given);
    else
        json_object_update(res, given);
    json_t *size_v = json_object_get(job, "size");
    uint32_t size = json_is_integer(size_v) ? (uint32_t)json_integer_value(size_v) : info.size;
    json_t *ref = json_object_get(json_object_get(json_object_get(res, "properties"),
                                                  "containerGroupProperties"),
                                  "containerGroupProfile");
    json_t *rev = json_object_get(job, "revision");
    if (document != NULL && json_is_object(ref) && json_is_integer(rev))
        json_object_set(ref, "revision", rev);
    char *tmpl = document != NULL
                     ? pool_template(document, name, json_string_value(json_object_get(res,
                                                                                      "location")))
                     : stored;
    char *annotation = json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(res);
    json_decref(job);
    if (tmpl == NULL || annotation == NULL) {
        if (tmpl != stored)
            free(tmpl);
        free(annotation);
        berth_free(stored);
        berth_free(note);
        bd_reply_error(reply, 500, "InternalServerError", "", "out of memory");
        return;
    }
    /* The pool's zones (bodies.c checked them: strings, at most
     * BERTH_POOL_ZONES_MAX): members spread across them. */
    json_t *res_zones = NULL;
    const char *zones[BERTH_POOL_ZONES_MAX];
    size_t nzones = 0;
    json_t *kept = json_loads(annotation, 0, NULL);
    res_zones = json_object_get(json_object_get(kept, "properties"), "zones");
    for (size_t z = 0; z < json_array_size(res_zones) && nzones < BERTH_POOL_ZONES_MAX; z++)
        if (json_is_string(json_array_get(res_zones, z)))
            zones[nzones++] = json_string_value(json_array_get(res_zones, z));
    berth_pool_spec_t spec = {.name = pool, .template_json = tmpl, .len = strlen(tmpl),
                              .size = size, .zones = zones, .nzones = nzones,
                              .annotation = annotation};
    rc = berth_store_pool_put_spec(pools->store, &spec, &err);
    json_decref(kept);
    if (tmpl != stored)
        free(tmpl);
    free(annotation);
    berth_free(stored);
    berth_free(note);
    if (rc != 0) {
        bd_pool_error_map(&err);
        bd_reply_berth_error(reply, rc == BERTH_EIO || rc == BERTH_ENOMEM ? 500 : 400, &err);
        return;
    }
    bd_pools_reconcile(pools);
    if (berth_store_pool_get_annotated(pools->store, pool, &info, NULL, &note, &err) != 0) {
        bd_reply_berth_error(reply, 500, &err);
        return;
    }
    bd_reply_send(reply, existed ? 200 : 201,
                  pool_body(sub, rg, name, &info, note), NULL);
    berth_free(note);
}

typedef struct list_ctx {
    const char *prefix;             /* "<sub>/<rg>/" or "<sub>/", lowercase */
    size_t plen;
    size_t slashes;                 /* in the rest of a name: 1 or 0       */
    json_t *names;
} list_ctx_t;

static void on_pool(const char *pool, void *data)
{
    list_ctx_t *c = data;
    if (strncmp(pool, c->prefix, c->plen) != 0)
        return;
    /* Only "<sub>/<rg>/<name>": the resource group's (or subscription's)
     * pools, named as the API names them. */
    const char *rest = pool + c->plen;
    size_t slashes = 0;
    for (const char *p = rest; *p != '\0'; p++)
        slashes += *p == '/';
    if (slashes == c->slashes)
        json_array_append_new(c->names, json_string(pool));
}

/* GET of a list: every pool under `prefix` ("<sub>/<rg>/" or "<sub>/"), in
 * name order, as a GET of each answers it. */
static void pools_list(bd_pools_t *pools, bd_reply_t *reply, const char *sub,
                       const char *prefix)
{
    size_t plen = strlen(prefix);
    list_ctx_t c = {prefix, plen, strchr(prefix, '/') == prefix + plen - 1 ? 1 : 0,
                    json_array()};
    berth_error_t err;
    if (c.names == NULL || berth_store_pool_list(pools->store, on_pool, &c, &err) < 0) {
        json_decref(c.names);
        bd_reply_berth_error(reply, 500, &err);
        return;
    }
    json_t *value = json_array();
    size_t i;
    json_t *k;
    json_array_foreach(c.names, i, k)
    {
        const char *pool = json_string_value(k);
        char rg[BD_KEY_MAX + 1];
        const char *r = strchr(pool, '/') + 1, *slash = strchr(r, '/');
        snprintf(rg, sizeof rg, "%.*s", (int)(slash - r), r);
        berth_pool_info_t info;
        char *note = NULL;
        /* A pool deleted since the listing is left out. */
        if (berth_store_pool_get_annotated(pools->store, pool, &info, NULL, &note, NULL) == 0)
            json_array_append_new(value, pool_body(sub, rg, slash + 1, &info, note));
        berth_free(note);
    }
    json_decref(c.names);
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

/* Contract: berthd.h.  The path is checked by pools_route.c; seg[1] the
 * subscription, n 5 (the subscription's list) or seg[3] the resource
 * group and seg[7] the pool. */
void bd_pools_handle(bd_pools_t *pools, const bd_request_t *req, bd_reply_t *reply, char **seg,
                     int n)
{
    char prefix[BD_KEY_MAX + 1];
    /* Named here too: the captured reply carries the name back. */
    static const char *const routes[] = {
        [BD_PUT] = "StandbyContainerGroupPools_CreateOrUpdate",
        [BD_PATCH] = "StandbyContainerGroupPools_Update",
        [BD_GET] = "StandbyContainerGroupPools_Get",
        [BD_DELETE] = "StandbyContainerGroupPools_Delete"};
    if (n == 5 || n == 7)
        bd_reply_route(reply, n == 5 ? "StandbyContainerGroupPools_ListBySubscription"
                                     : "StandbyContainerGroupPools_ListByResourceGroup");
    else if (n >= 9)
        bd_reply_route(reply, n == 9 ? "StandbyContainerGroupPoolRuntimeViews_ListByStandbyPool"
                                     : "StandbyContainerGroupPoolRuntimeViews_Get");
    else if ((size_t)req->method < sizeof routes / sizeof routes[0] &&
             routes[req->method] != NULL)
        bd_reply_route(reply, routes[req->method]);
    if (n == 5 || n == 7) {
        if (n == 5)
            snprintf(prefix, sizeof prefix, "%s/", seg[1]);
        else
            bd_resource_key(seg[1], seg[3], "", prefix, sizeof prefix);
        if (n == 5)
            bd_lower(prefix, prefix, sizeof prefix);
        pools_list(pools, reply, seg[1], prefix);
        return;
    }
    char pool[BD_KEY_MAX + 1];
    bd_resource_key(seg[1], seg[3], seg[7], pool, sizeof pool);
    berth_error_t err;
    if (n >= 9) {                   /* runtime views: "latest" */
        berth_pool_info_t info;
        int rc = berth_store_pool_get(pools->store, pool, &info, NULL, &err);
        if (rc == BERTH_ENOENT) {
            not_found(reply, seg[7], seg[3]);
            return;
        }
        if (rc != 0) {
            bd_reply_berth_error(reply, 500, &err);
            return;
        }
        berth_pool_zone_info_t zones[BERTH_POOL_ZONES_MAX];
        size_t nz = 0;
        rc = berth_store_pool_zones_get(pools->store, pool, zones, BERTH_POOL_ZONES_MAX, &nz,
                                        &err);
        if (rc != 0) {
            bd_reply_berth_error(reply, rc == BERTH_ENOENT ? 404 : 500, &err);
            return;
        }
        json_t *view = runtime_view(seg[1], seg[3], seg[7], &info, zones,
                                    nz < BERTH_POOL_ZONES_MAX ? nz : BERTH_POOL_ZONES_MAX);
        bd_reply_send(reply, 200, n == 10 ? view : json_pack("{s:[o]}", "value", view), NULL);
        return;
    }
    switch (req->method) {
    case BD_PUT:
    case BD_PATCH:
        pool_write(pools, req, reply, pool, seg[1], seg[3], seg[7]);
        return;
    case BD_GET: {
        berth_pool_info_t info;
        char *note = NULL;
        int rc = berth_store_pool_get_annotated(pools->store, pool, &info, NULL, &note, &err);
        if (rc == BERTH_ENOENT) {
            not_found(reply, seg[7], seg[3]);
            return;
        }
        if (rc != 0) {
            bd_reply_berth_error(reply, 500, &err);
            return;
        }
        bd_reply_send(reply, 200, pool_body(seg[1], seg[3], seg[7], &info, note), NULL);
        berth_free(note);
        return;
    }
    case BD_DELETE: {
        int rc = berth_store_pool_delete(pools->store, pool, &err);
        if (rc == BERTH_ENOENT) {
            bd_reply_send(reply, 204, NULL, NULL);
            return;
        }
        if (rc != 0) {
            bd_reply_berth_error(reply, 500, &err);
            return;
        }
        bd_reply_send(reply, 200, NULL, NULL);
        return;
    }
    default:
        bd_reply_error(reply, 405, "MethodNotAllowed", "", "the method is not allowed here");
        return;
    }
}
