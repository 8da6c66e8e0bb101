/*
 * pools.c: berthd's standby pools: the route that manages them, the claim
 * a new container group tries first, and the refill.
 *
 * ROUTE.  PUT, GET and DELETE of
 *   /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.StandbyPool/
 *       standbyContainerGroupPools/{name}?api-version=YYYY-MM-DD
 * and GET of .../standbyContainerGroupPools (the resource group's pools,
 * {"value": [...]}, in name order),
 * modeled on Azure's standby pool resource, simplified: the body is
 *   {"location": "...",
 *    "properties": {"elasticityProfile": {"maxReadyCapacity": K},
 *                   "containerGroupProperties": {
 *                       "containerGroupProfile": <ACI container-group document>}}}
 * where Azure names a container-group profile resource, Berth takes the
 * document itself (the template).  The pool is the library's pool
 * "<subscription>/<resource group>/<name>" (lowercase); its members are
 * ordinary groups of the cell (pool.c), not ACI resources.  A PUT answers
 * 200 (201 when new) with the resource; its status.readyCapacity counts the
 * members running now.  A pool is no request-stream operation: a PUT or
 * DELETE is idempotent and takes effect at once, so a client simply
 * retries one that got no answer.  Templates keep their secrets, which a
 * GET never returns (the template is rendered with BERTH_JSON_REDACT).
 * The body is read by bodies.c (pure, fuzzed).
 *
 * CLAIMS.  A PUT of a new container group first tries
 * berth_store_pool_claim() (with the API's records as effects:
 * berth_store_pool_claim_with()): a ready member of a pool with the same
 * template digest becomes the group on its host; otherwise the group is
 * placed anew.  A claim asks for a refill: on a state made on an event
 * loop (bd_pools_new()) a timer runs it 50 ms later (after the reply is on
 * its way); on a detached state (bd_pools_new_detached(), the worker's)
 * the owner's refill callback queues it.  Periodic housekeeping runs one
 * reconciliation step too.
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
    if (rc == 0) {
        if (pools->refill != NULL) {
            struct timeval tv = {0, REFILL_DELAY_MS * 1000};
            if (!evtimer_pending(pools->refill, NULL))
                evtimer_add(pools->refill, &tv);
        } else if (pools->refill_cb != NULL) {
            pools->refill_cb(pools->refill_arg);
        }
        bd_log("info", "%s claimed a standby group on %s", key, pl->host);
    }
    return rc;
}

int bd_pools_claim(bd_pools_t *pools, const char *key, const berth_request_t *req,
                   const char *spec, berth_placement_t *pl, berth_error_t *err)
{
    return bd_pools_claim_with(pools, key, req, spec, NULL, NULL, 0, pl, err);
}

/* ---- the resource ------------------------------------------------------------------- */

/* The pool's resource body. */
static json_t *pool_body(const char *sub, const char *rg, const char *name,
                         const berth_pool_info_t *info, const char *template_json)
{
    char id[512];
    snprintf(id, sizeof id,
             "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.StandbyPool/"
             "standbyContainerGroupPools/%s",
             sub, rg, name);
    json_t *tmpl = NULL;
    berth_group_t *g = NULL;
    char *redacted = NULL;
    if (berth_group_parse(template_json, strlen(template_json), &g, NULL) == 0 &&
        berth_group_to_json(g, BERTH_JSON_REDACT, &redacted, NULL) == 0)
        tmpl = json_loads(redacted, 0, NULL);
    const char *location = g != NULL && g->location != NULL ? g->location : "";
    char loc[BD_LOCATION_MAX + 1];
    bd_location_norm(location, loc, sizeof loc);
    berth_free(redacted);
    berth_group_free(g);
    return json_pack("{s:s,s:s,s:s,s:s,s:{s:{s:I},s:{s:o},s:s,s:{s:I,s:I}}}", "id", id, "name",
                     name, "type", "Microsoft.StandbyPool/standbyContainerGroupPools",
                     "location", loc, "properties", "elasticityProfile", "maxReadyCapacity",
                     (json_int_t)info->size, "containerGroupProperties",
                     "containerGroupProfile", tmpl != NULL ? tmpl : json_object(),
                     "provisioningState", "Succeeded", "status", "readyCapacity",
                     (json_int_t)info->ready, "members", (json_int_t)info->members);
}

/* Whether the api-version query parameter is there and a date
 * (YYYY-MM-DD, optionally "-preview"): the standby pool API has its own
 * versions, which Berth serves alike. */
static bool api_version_ok(const bd_request_t *req, bd_reply_t *reply)
{
    char v[32];
    int q = bd_query_get(req->query, "api-version", v, sizeof v);
    if (q == 0) {
        bd_reply_error(reply, 400, "MissingApiVersionParameter", "api-version",
                       "The api-version query parameter (?api-version=) is required for all "
                       "requests.");
        return false;
    }
    bool ok = q > 0 && strlen(v) >= 10 && strspn(v, "0123456789") == 4 && v[4] == '-' &&
              strspn(v + 5, "0123456789") == 2 && v[7] == '-' &&
              strspn(v + 8, "0123456789") == 2 && (v[10] == '\0' || strcmp(v + 10, "-preview") == 0);
    if (!ok) {
        bd_reply_error(reply, 400, "InvalidApiVersionParameter", "api-version",
                       "The api-version '%s' is invalid: a date YYYY-MM-DD is expected.",
                       q < 0 ? "" : v);
        return false;
    }
    return true;
}

static void pool_put(bd_pools_t *pools, const bd_request_t *req, bd_reply_t *reply,
                     const char *pool, const char *sub, const char *rg, const char *name)
{
    bd_pool_body_t body;
    berth_error_t err;
    int rc = bd_pool_body_read(req->body, req->body ? req->body_len : 0, name, &body, &err);
    if (rc != 0) {
        bd_reply_berth_error(reply, rc == BERTH_ENOMEM ? 500 : 400, &err);
        return;
    }
    bool existed = berth_store_pool_get(pools->store, pool, NULL, NULL, NULL) == 0;
    rc = berth_store_pool_put(pools->store, pool, body.template_json, strlen(body.template_json),
                              body.size, &err);
    bd_pool_body_free(&body);
    if (rc != 0) {
        bd_pool_error_map(&err);
        bd_reply_berth_error(reply, rc == BERTH_EIO || rc == BERTH_ENOMEM ? 500 : 400, &err);
        return;
    }
    bd_pools_reconcile(pools);
    berth_pool_info_t info;
    char *stored = NULL;
    if (berth_store_pool_get(pools->store, pool, &info, &stored, &err) != 0) {
        bd_reply_berth_error(reply, 500, &err);
        return;
    }
    bd_reply_send(reply, existed ? 200 : 201, pool_body(sub, rg, name, &info, stored), NULL);
    berth_free(stored);
}

typedef struct list_ctx {
    const char *prefix;             /* "<sub>/<rg>/", lowercase              */
    size_t plen;
    json_t *names;
} list_ctx_t;

static void on_pool(const char *pool, void *data)
{
    list_ctx_t *c = data;
    /* Only "<sub>/<rg>/<name>": pools of this resource group. */
    const char *name = bd_key_child(pool, c->prefix, c->plen);
    if (name != NULL)
        json_array_append_new(c->names, json_string(name));
}

/* GET .../standbyContainerGroupPools: every pool of the resource group, in
 * name order, as a GET of each answers it. */
static void pools_list(bd_pools_t *pools, bd_reply_t *reply, const char *sub, const char *rg,
                       const char *prefix)
{
    list_ctx_t c = {prefix, strlen(prefix), json_array()};
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
        char pool[BD_KEY_MAX + 1];
        snprintf(pool, sizeof pool, "%s%s", prefix, json_string_value(k));
        berth_pool_info_t info;
        char *stored = NULL;
        /* A pool deleted since the listing is left out. */
        if (berth_store_pool_get(pools->store, pool, &info, &stored, NULL) == 0)
            json_array_append_new(value,
                                  pool_body(sub, rg, json_string_value(k), &info, stored));
        berth_free(stored);
    }
    json_decref(c.names);
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

void bd_pools_handle(bd_pools_t *pools, const bd_request_t *req, bd_reply_t *reply, char **seg,
                     int n)
{
    if (n != 7 && n != 8) {
        bd_reply_error(reply, 404, "NoRegisteredProviderFound", "",
                       "no route for this standby pool path");
        return;
    }
    if (!bd_valid_resource_group(seg[3])) {
        bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                       "resource group names are 1-90 letters, digits, '-', '_', '.', '(' or "
                       "')', not ending with '.'");
        return;
    }
    if (n == 7) {
        bd_reply_route(reply, "StandbyContainerGroupPools_ListByResourceGroup");
        if (req->method != BD_GET) {
            bd_reply_error(reply, 405, "MethodNotAllowed", "", "the method is not allowed here");
            return;
        }
        if (!api_version_ok(req, reply))
            return;
        char prefix[BD_KEY_MAX + 1];
        bd_resource_key(seg[1], seg[3], "", prefix, sizeof prefix);
        pools_list(pools, reply, seg[1], seg[3], prefix);
        return;
    }
    if (!bd_valid_group_name(seg[7])) {
        bd_reply_error(reply, 400, "InvalidStandbyPoolName", "standbyContainerGroupPoolName",
                       "standby pool names are 1-63 lowercase letters, digits or '-', not "
                       "starting or ending with '-'");
        return;
    }
    if (!api_version_ok(req, reply))
        return;
    char pool[BD_KEY_MAX + 1];
    bd_resource_key(seg[1], seg[3], seg[7], pool, sizeof pool);
    berth_error_t err;
    switch (req->method) {
    case BD_PUT:
        bd_reply_route(reply, "StandbyContainerGroupPools_CreateOrUpdate");
        pool_put(pools, req, reply, pool, seg[1], seg[3], seg[7]);
        return;
    case BD_GET: {
        bd_reply_route(reply, "StandbyContainerGroupPools_Get");
        berth_pool_info_t info;
        char *stored = NULL;
        int rc = berth_store_pool_get(pools->store, pool, &info, &stored, &err);
        if (rc == BERTH_ENOENT) {
            bd_reply_error(reply, 404, "ResourceNotFound", "",
                           "The Resource 'Microsoft.StandbyPool/standbyContainerGroupPools/%s' "
                           "under resource group '%s' was not found.",
                           seg[7], seg[3]);
            return;
        }
        if (rc != 0) {
            bd_reply_berth_error(reply, 500, &err);
            return;
        }
        bd_reply_send(reply, 200, pool_body(seg[1], seg[3], seg[7], &info, stored), NULL);
        berth_free(stored);
        return;
    }
    case BD_DELETE: {
        bd_reply_route(reply, "StandbyContainerGroupPools_Delete");
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
