/*
 * ngroups.c: berthd's NGroups resources, modeled on ACI's
 * Microsoft.ContainerInstance/nGroups, on top of libberth's NGroups
 * (berth.h, berth_store_ngroup_*()).
 *
 *   PUT    .../resourceGroups/{rg}/providers/Microsoft.ContainerInstance/nGroups/{name}
 *   PATCH  .../nGroups/{name}       desiredCount, maxUnavailable, tags; the
 *                                   template stays
 *   GET    .../nGroups/{name}       the NGroup with its members' status
 *   DELETE .../nGroups/{name}       releases the members, removes the NGroup
 *   GET    .../nGroups              every NGroup of the resource group
 *
 * A PUT body is ACI's shape, with the container-group template inline:
 *   {"location", "tags"?, "zones"?,
 *    "properties": {"elasticProfile": {"desiredCount"},
 *                   "updateProfile"?: {"updateMode": "Rolling",
 *                                      "rollingUpdateProfile": {"maxUnavailable"}},
 *                   "zones"?, "containerGroupProfile": {"properties": {...}}}}
 * The template is {"location", "properties": containerGroupProfile.properties}:
 * an ACI container-group document that every member runs.  The bodies are
 * read by bodies.c (pure, fuzzed); errors name the member of this body at
 * fault (the library's targets are mapped there too).
 *
 * The NGroup's record is the library's (berth:{C}:ngroups); berthd keeps
 * its own attributes (location, tags, where the zones were given) in the
 * record's metadata.  A PUT is answered once the record is in Redis and
 * one reconcile step has run; berthd's housekeeping (worker.c, on the
 * worker thread) then reconciles every NGroup of the cell one step per
 * tick, so the members converge -- and a rollout proceeds -- whichever
 * berthd of the cell is alive.  The record is the whole request, written
 * atomically, and reconciling is idempotent.
 *
 * Secrets in the template (secureValue, secret volumes, passwords) are
 * never answered: the template is rendered with BERTH_JSON_REDACT.
 *
 * Every call here blocks on the store it is given: it runs on berthd's
 * worker thread (worker.c), never on the loop, and touches nothing of the
 * loop's (replies go through captured replies).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiversions.h"
#include "berthd.h"
#include "bodies.h"
#include "query.h"
#include "resource.h"

#define NG_PROVIDER "Microsoft.ContainerInstance/nGroups"

static int status_of(int rc)
{
    return rc == BERTH_EINVAL || rc == BERTH_ETOOBIG  ? 400
         : rc == BERTH_ENOENT                         ? 404
         : rc == BERTH_ECONFLICT || rc == BERTH_ENOSPC ? 409
                                                       : 500;
}

static void reply_not_found(bd_reply_t *reply, const char *rg, const char *name)
{
    bd_reply_error(reply, 404, "ResourceNotFound", "",
                   "The Resource '" NG_PROVIDER "/%s' under resource group '%s' was not found.",
                   name, rg);
}

/* The NGroup's ARM body: goal, template (redacted) and status. */
static json_t *ngroup_body(const berth_ngroup_t *g)
{
    json_t *meta = g->metadata_json ? json_loads(g->metadata_json, 0, NULL) : NULL;
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    const char *sub = json_string_value(json_object_get(meta, "subscription"));
    const char *rg = json_string_value(json_object_get(meta, "resourceGroup"));
    char id[512];
    snprintf(id, sizeof id,
             "/subscriptions/%s/resourceGroups/%s/providers/" NG_PROVIDER "/%s",
             sub ? sub : "", rg ? rg : "", g->name);
    json_t *body = json_pack("{s:s, s:s, s:s}", "id", id, "name", g->name, "type", NG_PROVIDER);
    json_t *loc = json_object_get(meta, "location");
    if (loc != NULL)
        json_object_set(body, "location", loc);
    json_t *tags = json_object_get(meta, "tags");
    if (json_is_object(tags) && json_object_size(tags) > 0)
        json_object_set(body, "tags", tags);
    json_t *zones = json_array();
    for (size_t i = 0; i < g->nzones; i++)
        json_array_append_new(zones, json_string(g->zones[i]));
    bool zin = json_is_true(json_object_get(meta, "zonesInProperties"));

    json_t *tprops = NULL;
    berth_group_t *t = NULL;
    char *text = NULL;
    if (berth_group_parse(g->template_json, strlen(g->template_json), &t, NULL) == 0 &&
        berth_group_to_json(t, BERTH_JSON_REDACT, &text, NULL) == 0) {
        json_t *doc = json_loads(text, 0, NULL);
        tprops = json_incref(json_object_get(doc, "properties"));
        json_decref(doc);
    }
    berth_free(text);
    berth_group_free(t);

    json_t *members = json_array();
    for (size_t i = 0; i < g->nmembers; i++) {
        const berth_ngroup_member_t *m = &g->members[i];
        json_array_append_new(members,
                              json_pack("{s:s, s:s, s:s, s:I, s:s, s:b}", "name", m->name, "zone",
                                        m->zone, "host", m->host, "revision",
                                        (json_int_t)m->revision, "state", m->state,
                                        "available", m->available));
    }
    const char *prov = g->deleting ? "Deleting" : g->steady ? "Succeeded" : "Updating";
    json_t *props = json_pack(
        "{s:s, s:{s:I}, s:{s:s, s:{s:I}}, s:{s:I, s:o}, s:{s:I, s:I, s:I, s:I, s:s, s:o}}",
        "provisioningState", prov, "elasticProfile", "desiredCount", (json_int_t)g->desired,
        "updateProfile", "updateMode", "Rolling", "rollingUpdateProfile", "maxUnavailable",
        (json_int_t)g->max_unavailable, "containerGroupProfile", "revision",
        (json_int_t)g->revision, "properties", tprops ? tprops : json_object(), "status",
        "revision", (json_int_t)g->revision, "currentCount", (json_int_t)g->nmembers,
        "runningCount", (json_int_t)g->running, "updatedCount", (json_int_t)g->updated,
        "message", g->message, "members", members);
    if (zin) {
        json_object_set_new(props, "zones", zones);
    } else if (g->nzones > 0) {
        json_object_set_new(body, "zones", zones);
    } else {
        json_decref(zones);
    }
    json_object_set_new(body, "properties", props);
    json_decref(meta);
    return body;
}

static void reply_ngroup(berth_store_t *store, const char *key, int status, bd_reply_t *reply)
{
    berth_ngroup_t *g = NULL;
    berth_error_t err;
    int rc = berth_store_ngroup_get(store, key, &g, &err);
    if (rc != 0) {
        bd_reply_berth_error(reply, status_of(rc), &err);
        return;
    }
    bd_reply_send(reply, status, ngroup_body(g), NULL);
    berth_ngroup_free(g);
}

static void put_ngroup(berth_store_t *store, const bd_request_t *req, const char *sub,
                       const char *rg, const char *name, const char *key, bd_reply_t *reply)
{
    bd_ngroup_body_t body;
    berth_error_t err;
    int rc = bd_ngroup_body_read(req->body, req->body ? req->body_len : 0, sub, rg, &body, &err);
    if (rc != 0) {
        bd_reply_berth_error(reply, status_of(rc), &err);
        return;
    }
    berth_ngroup_spec_t spec = {.key = key, .name = name, .template_json = body.template_json,
                                .desired = body.desired, .zones = body.zones,
                                .nzones = body.nzones, .max_unavailable = body.max_unavailable,
                                .metadata_json = body.metadata_json};
    berth_ngroup_t *old = NULL;
    bool existed = berth_store_ngroup_get(store, key, &old, NULL) == 0 && !old->deleting;
    berth_ngroup_free(old);
    rc = berth_store_ngroup_put(store, &spec, NULL, &err);
    if (rc != 0) {
        bd_ngroup_error_map(&err, body.zones_in_properties);
        bd_reply_berth_error(reply, status_of(rc), &err);
        bd_ngroup_body_free(&body);
        return;
    }
    bd_ngroup_body_free(&body);
    berth_ngroup_step_t st;
    if (berth_store_ngroup_reconcile(store, key, &st, &err) != 0)
        bd_log("warn", "NGroup %s not reconciled: %s", key, err.message);
    reply_ngroup(store, key, existed ? 200 : 201, reply);
}

/* PATCH: the count, the bound and the tags change; the template stays
 * (a client never sees its secrets, so it could not send them back). */
static void patch_ngroup(berth_store_t *store, const bd_request_t *req, const char *rg,
                         const char *name, const char *key, bd_reply_t *reply)
{
    bd_ngroup_patch_t patch;
    berth_error_t err;
    int rc = bd_ngroup_patch_read(req->body, req->body ? req->body_len : 0, &patch, &err);
    if (rc != 0) {
        bd_reply_berth_error(reply, status_of(rc), &err);
        return;
    }
    berth_ngroup_t *g = NULL;
    rc = berth_store_ngroup_get(store, key, &g, &err);
    if (rc != 0 || g->deleting) {
        if (rc == BERTH_ENOENT || rc == 0)
            reply_not_found(reply, rg, name);
        else
            bd_reply_berth_error(reply, status_of(rc), &err);
        berth_ngroup_free(g);
        bd_ngroup_patch_free(&patch);
        return;
    }
    json_t *meta = g->metadata_json ? json_loads(g->metadata_json, 0, NULL) : json_object();
    if (patch.tags != NULL && meta != NULL)
        json_object_set(meta, "tags", patch.tags);
    char *metadata = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    bool zin = json_is_true(json_object_get(meta, "zonesInProperties"));
    json_decref(meta);
    berth_ngroup_spec_t spec = {.key = key, .name = g->name, .template_json = g->template_json,
                                .desired = patch.has_desired ? patch.desired : g->desired,
                                .zones = (const char *const *)g->zones, .nzones = g->nzones,
                                .max_unavailable = patch.has_max_unavailable
                                                       ? patch.max_unavailable
                                                       : g->max_unavailable,
                                .metadata_json = metadata};
    rc = metadata != NULL ? berth_store_ngroup_put(store, &spec, NULL, &err)
                          : berth_error_set(&err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    if (rc != 0) {
        bd_ngroup_error_map(&err, zin);
        bd_reply_berth_error(reply, status_of(rc), &err);
    } else {
        berth_ngroup_step_t st;
        if (berth_store_ngroup_reconcile(store, key, &st, &err) != 0)
            bd_log("warn", "NGroup %s not reconciled: %s", key, err.message);
        reply_ngroup(store, key, 200, reply);
    }
    free(metadata);
    berth_ngroup_free(g);
    bd_ngroup_patch_free(&patch);
}

typedef struct list_ctx {
    const char *prefix;
    size_t plen;
    json_t *keys;
} list_ctx_t;

static void on_key(const char *key, void *data)
{
    list_ctx_t *c = data;
    /* Only "<sub>/<rg>/<name>": NGroups of this resource group. */
    if (bd_key_child(key, c->prefix, c->plen) != NULL)
        json_array_append_new(c->keys, json_string(key));
}

static void list_ngroups(berth_store_t *store, const char *prefix, bd_reply_t *reply)
{
    list_ctx_t c = {prefix, strlen(prefix), json_array()};
    berth_error_t err;
    int rc = berth_store_ngroup_list(store, on_key, &c, &err);
    if (rc < 0) {
        json_decref(c.keys);
        bd_reply_berth_error(reply, 500, &err);
        return;
    }
    json_t *value = json_array();
    size_t i;
    json_t *k;
    json_array_foreach(c.keys, i, k)
    {
        berth_ngroup_t *g = NULL;
        if (berth_store_ngroup_get(store, json_string_value(k), &g, NULL) == 0) {
            json_array_append_new(value, ngroup_body(g));
            berth_ngroup_free(g);
        }
    }
    json_decref(c.keys);
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

/* Contract (berthd.h): answers one NGroups request. */
void bd_ngroups_handle(berth_store_t *store, const bd_request_t *req, bd_reply_t *reply,
                       char **seg, int n)
{
    if (!bd_valid_resource_group(seg[3])) {
        bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                       "resource group names are 1-90 letters, digits, '-', '_', '.', '(' or "
                       "')', not ending with '.'");
        return;
    }
    char apiv[32];
    int q = bd_query_get(req->query, "api-version", apiv, sizeof apiv);
    if (q == 0) {
        bd_reply_error(reply, 400, "MissingApiVersionParameter", "api-version",
                       "The api-version query parameter (?api-version=) is required for all "
                       "requests.");
        return;
    }
    if (q < 0 || !bd_apiv_ngroups_ok(apiv)) {
        /* NGroups are in the specs from bd_apiv_ngroups_first() on. */
        bd_reply_error(reply, 400, "InvalidApiVersionParameter", "api-version",
                       "The api-version '%s' is invalid for nGroups: nGroups are available "
                       "from api-version %s on.", q < 0 ? "" : apiv, bd_apiv_ngroups_first());
        return;
    }
    if (n == 7) {
        bd_reply_route(reply, "NGroups_ListByResourceGroup");
        if (req->method != BD_GET) {
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
            return;
        }
        char prefix[BD_KEY_MAX + 1];
        bd_resource_key(seg[1], seg[3], "", prefix, sizeof prefix);
        list_ngroups(store, prefix, reply);
        return;
    }
    if (n != 8) {
        bd_reply_error(reply, 404, "NotFound", "", "no such resource or route");
        return;
    }
    const char *name = seg[7];
    if (!bd_valid_group_name(name) || strlen(name) > BERTH_NGROUP_NAME_MAX) {
        bd_reply_error(reply, 400, "InvalidNGroupName", "nGroupName",
                       "NGroup names are 1-%d lowercase letters, digits or '-', not starting "
                       "or ending with '-'",
                       BERTH_NGROUP_NAME_MAX);
        return;
    }
    char key[BD_KEY_MAX + 1];
    bd_resource_key(seg[1], seg[3], name, key, sizeof key);
    berth_error_t err;
    switch (req->method) {
    case BD_GET: {
        bd_reply_route(reply, "NGroups_Get");
        berth_ngroup_t *g = NULL;
        int rc = berth_store_ngroup_get(store, key, &g, &err);
        if (rc == BERTH_ENOENT)
            reply_not_found(reply, seg[3], name);
        else if (rc != 0)
            bd_reply_berth_error(reply, status_of(rc), &err);
        else
            bd_reply_send(reply, 200, ngroup_body(g), NULL);
        berth_ngroup_free(g);
        return;
    }
    case BD_PUT:
        bd_reply_route(reply, "NGroups_CreateOrUpdate");
        put_ngroup(store, req, seg[1], seg[3], name, key, reply);
        return;
    case BD_PATCH:
        bd_reply_route(reply, "NGroups_Update");
        patch_ngroup(store, req, seg[3], name, key, reply);
        return;
    case BD_DELETE: {
        bd_reply_route(reply, "NGroups_Delete");
        int rc = berth_store_ngroup_delete(store, key, &err);
        if (rc == BERTH_ENOENT)
            bd_reply_send(reply, 204, NULL, NULL);
        else if (rc != 0)
            bd_reply_berth_error(reply, status_of(rc), &err);
        else
            bd_reply_send(reply, 200, NULL, NULL);
        return;
    }
    default:
        bd_reply_error(reply, 405, "MethodNotAllowed", "",
                       "the method is not allowed on this resource");
        return;
    }
}

static void on_reconcile_key(const char *key, void *data)
{
    json_array_append_new(data, json_string(key));
}

/* Contract (berthd.h): one reconcile step for every NGroup of the cell. */
void bd_ngroups_reconcile(berth_store_t *store)
{
    json_t *keys = json_array();
    berth_error_t err;
    if (berth_store_ngroup_list(store, on_reconcile_key, keys, &err) < 0) {
        bd_log("warn", "NGroups not listed: %s", err.message);
        json_decref(keys);
        return;
    }
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        berth_ngroup_step_t st;
        const char *key = json_string_value(k);
        if (berth_store_ngroup_reconcile(store, key, &st, &err) != 0 && err.code != BERTH_ENOENT)
            bd_log("warn", "NGroup %s not reconciled: %s", key, err.message);
        else if (st.created + st.removed + st.updated > 0 || st.deleted)
            bd_log("info", "NGroup %s: %u created, %u removed, %u updated%s", key, st.created,
                   st.removed, st.updated, st.deleted ? ", deleted" : "");
    }
    json_decref(keys);
}
