/*
 * ngroups.c: berthd's NGroups resources, on ACI's schema for
 * Microsoft.ContainerInstance/ngroups (the path segment is matched
 * without case), on top of libberth's NGroups (berth.h,
 * berth_store_ngroup_*()).
 *
 *   PUT    .../resourceGroups/{rg}/providers/Microsoft.ContainerInstance/ngroups/{name}
 *   PATCH  .../ngroups/{name}             ACI's NGroupPatch merged over the NGroup
 *   GET    .../ngroups/{name}             the NGroup, with Berth's status
 *   DELETE .../ngroups/{name}             releases the members, removes it
 *   POST   .../ngroups/{name}/start|stop|restart
 *   GET    .../resourceGroups/{rg}/providers/Microsoft.ContainerInstance/ngroups
 *   GET    /subscriptions/{sub}/providers/Microsoft.ContainerInstance/ngroups
 *
 * Bodies are ACI's NGroup (bodies.c reads them, pure): elasticProfile,
 * updateProfile, placementProfile, containerGroupProfiles (one at most:
 * resource.id names a container group profile, profiles.c), zones,
 * identity, tags.  The profile is resolved on the loop before the request
 * comes here (worker_jobs.c, bd_profile_resolve()): this file gets the
 * revision's document and lays the NGroup's containerGroupProperties over
 * it (bd_profile_merge()) to make the library's template.  How each field
 * maps onto the library's spec is docs/ngroups.md's; in short: Manual
 * updateMode is manual_update, Rolling bounds batches by maxBatchPercent,
 * inPlaceUpdate false is replace_on_update, the naming policy's prefix is
 * the members' prefix, faultDomainCount spreads members over hosts.
 *
 * The NGroup's record is the library's (berth:{C}:ngroups); berthd keeps
 * in the record's metadata the location, subscription, resource group, the
 * body as accepted (without its read-only members: what a GET shows and a
 * PATCH merges into) and the profile revision resolved.  A write is
 * answered once the record is in Redis and one reconcile step has run; the
 * NGroup is then in the worker's set of NGroups mid-rollout, reconciled
 * every BD_NGROUPS_FAST_MS until steady, and every NGroup of the cell is
 * reconciled per tick whichever berthd of the cell is alive.
 *
 * Secrets of the template are never answered: a GET shows the profile
 * reference and the NGroup's own properties, not the template.
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
#include "profiles.h"
#include "query.h"
#include "resource.h"
#include "secrets.h"

#define NG_TYPE "Microsoft.ContainerInstance/ngroups"

static int status_of(int rc)
{
    return rc == BERTH_EINVAL || rc == BERTH_ETOOBIG  ? 400
         : rc == BERTH_ENOENT                         ? 404
         : rc == BERTH_ECONFLICT || rc == BERTH_ENOSPC ? 409
                                                       : 500;
}

/* Names the NGroup by its name where the library's message has its key
 * ("sub/rg/name" is never shown to users). */
static void message_unkey(berth_error_t *err, const char *key, const char *name)
{
    char *at = strstr(err->message, key);
    if (at == NULL)
        return;
    char out[sizeof err->message];
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - err->message), err->message, name,
             at + strlen(key));
    memcpy(err->message, out, sizeof out);
}

static void reply_not_found(bd_reply_t *reply, const char *rg, const char *name)
{
    bd_reply_error(reply, 404, "ResourceNotFound", "",
                   "The Resource '" NG_TYPE "/%s' under resource group '%s' was not found.",
                   name, rg);
}

/* The NGroup's ARM body, shaped like ACI's NGroups_Get answer, with
 * Berth's status (properties.status) as an extension. */
static json_t *ngroup_body(const berth_ngroup_t *g)
{
    json_t *meta = g->metadata_json ? json_loads(g->metadata_json, 0, NULL) : NULL;
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    json_t *kept = json_object_get(meta, "body");
    const char *sub = json_string_value(json_object_get(meta, "subscription"));
    const char *rg = json_string_value(json_object_get(meta, "resourceGroup"));
    char id[512];
    snprintf(id, sizeof id, "/subscriptions/%s/resourceGroups/%s/providers/" NG_TYPE "/%s",
             sub ? sub : "", rg ? rg : "", g->name);
    json_t *body = json_pack("{s:s, s:s, s:s}", "id", id, "name", g->name, "type", NG_TYPE);
    json_t *loc = json_object_get(meta, "location");
    if (loc != NULL)
        json_object_set(body, "location", loc);
    json_t *tags = json_object_get(kept, "tags");
    if (json_is_object(tags) && json_object_size(tags) > 0)
        json_object_set(body, "tags", tags);
    if (g->nzones > 0) {
        json_t *zones = json_array();
        for (size_t i = 0; i < g->nzones; i++)
            json_array_append_new(zones, json_string(g->zones[i]));
        json_object_set_new(body, "zones", zones);
    }
    json_t *identity = json_object_get(kept, "identity");
    if (identity != NULL)
        json_object_set(body, "identity", identity);

    json_t *given = json_object_get(kept, "properties");
    json_t *props = json_object();
    /* elasticProfile: as given, with the count as it is now. */
    json_t *elastic = json_deep_copy(json_object_get(given, "elasticProfile"));
    if (!json_is_object(elastic)) {
        json_decref(elastic);
        elastic = json_object();
    }
    json_object_set_new(elastic, "desiredCount", json_integer(g->desired));
    if (json_object_get(elastic, "maintainDesiredCount") == NULL)
        json_object_set_new(elastic, "maintainDesiredCount", json_true());
    json_object_set_new(props, "elasticProfile", elastic);
    json_t *update = json_deep_copy(json_object_get(given, "updateProfile"));
    if (!json_is_object(update)) {
        json_decref(update);
        update = json_object();
    }
    json_object_set_new(update, "updateMode", json_string(g->manual_update ? "Manual" : "Rolling"));
    json_object_set_new(props, "updateProfile", update);
    json_t *placement = json_object_get(given, "placementProfile");
    if (placement != NULL)
        json_object_set(props, "placementProfile", placement);
    /* containerGroupProfiles: as given, with the revision resolved. */
    json_t *profiles = json_deep_copy(json_object_get(given, "containerGroupProfiles"));
    if (!json_is_array(profiles)) {
        json_decref(profiles);
        profiles = json_array();
    }
    /* Its secrets are never answered, sealed or not. */
    berth__redact_properties(
        json_object_get(json_array_get(profiles, 0), "containerGroupProperties"));
    json_t *rev = json_object_get(meta, "profileRevision");
    if (json_is_object(json_array_get(profiles, 0)) && json_integer_value(rev) > 0)
        json_object_set(json_array_get(profiles, 0), "revision", rev);
    json_object_set_new(props, "containerGroupProfiles", profiles);
    const char *prov = g->deleting ? "Deleting" : g->steady ? "Succeeded" : "Updating";
    json_object_set_new(props, "provisioningState", json_string(prov));

    json_t *members = json_array();
    for (size_t i = 0; i < g->nmembers; i++) {
        const berth_ngroup_member_t *m = &g->members[i];
        json_array_append_new(members,
                              json_pack("{s:s, s:s, s:s, s:I, s:s, s:b}", "name", m->name, "zone",
                                        m->zone, "host", m->host, "revision",
                                        (json_int_t)m->revision, "state", m->state,
                                        "available", m->available));
    }
    json_object_set_new(
        props, "status",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:s, s:o}", "revision",
                  (json_int_t)g->revision, "currentCount", (json_int_t)g->nmembers,
                  "runningCount", (json_int_t)g->running, "updatedCount",
                  (json_int_t)g->updated, "unhealthyCount", (json_int_t)g->unhealthy,
                  "stopped", g->stopped, "message", g->message, "members", members));
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

/* The template of an NGroup: the profile's document (without its zones:
 * the NGroup's place the members) under the NGroup's
 * containerGroupProperties.  A new string in *out (free()). */
static int template_make(const char *profile_doc, const char *overlay, char **out,
                         berth_error_t *err)
{
    *out = NULL;
    json_t *d = json_loads(profile_doc, 0, NULL);
    json_object_del(d, "zones");
    char *base = json_is_object(d) ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (base == NULL)
        return berth_error_set(err, BERTH_EIO, "InternalError", "",
                               "the container group profile's document could not be read");
    const char *o = overlay != NULL ? overlay : "{}";
    size_t len = 0;
    int rc = bd_profile_merge(base, o, strlen(o), out, &len, err);
    free(base);
    return rc;
}

/* What a PUT or PATCH of an NGroup works with (bd_ngroups_handle()'s
 * arguments). */
typedef struct bd_ngroup_ctx {
    berth_store_t *store;
    json_t *active;
    const char *profile_doc;
    uint64_t profile_rev;
    const berth__keyring_t *secrets;
} bd_ngroup_ctx_t;

/* Writes the NGroup from the body text[0..len-1]: the template is made
 * from profile_doc (at profile_rev) when there is one, else kept from
 * `old` (NULL: none), and one step is taken.  Answers `status`. */
static void write_ngroup(const bd_ngroup_ctx_t *c, const char *text, size_t len,
                         const char *sub, const char *rg, const char *name, const char *key,
                         const berth_ngroup_t *old, int status, bd_reply_t *reply)
{
    berth_store_t *store = c->store;
    json_t *active = c->active;
    const char *profile_doc = c->profile_doc;
    uint64_t profile_rev = c->profile_rev;
    bd_ngroup_body_t body;
    berth_error_t err;
    /* Sealed first: the body the NGroup keeps and the template made from
     * it hold no secret in clear. */
    char *sealed = NULL;
    int rc = bd_ngroup_body_seal(c->secrets, text, len, &sealed, &err);
    if (rc == 0 && sealed != NULL) {
        text = sealed;
        len = strlen(sealed);
    }
    if (rc == 0)
        rc = bd_ngroup_body_read(text, len, sub, rg, &body, &err);
    if (rc != 0) {
        free(sealed);
        bd_reply_berth_error(reply, status_of(rc), &err);
        return;
    }
    char *tmpl = NULL, *metadata = NULL;
    json_t *meta = json_loads(body.metadata_json, 0, NULL);
    json_t *old_meta = old && old->metadata_json ? json_loads(old->metadata_json, 0, NULL) : NULL;
    if (body.profile_id != NULL && profile_doc != NULL) {
        rc = template_make(profile_doc, body.overlay_json, &tmpl, &err);
        json_object_set_new(meta, "profileRevision", json_integer((json_int_t)profile_rev));
    } else if (body.profile_id != NULL && old != NULL && old->template_json[0] != '\0') {
        /* A PATCH that left the profile alone keeps the template. */
        tmpl = strdup(old->template_json);
        json_t *r = json_object_get(old_meta, "profileRevision");
        if (r != NULL)
            json_object_set(meta, "profileRevision", r);
        rc = tmpl != NULL ? 0 : berth_error_set(&err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    } else if (body.profile_id != NULL) {
        rc = berth_error_set(&err, BERTH_EIO, "InternalError", "properties.containerGroupProfiles",
                             "the container group profile was not resolved");
    }
    metadata = meta != NULL ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    json_decref(old_meta);
    if (rc == 0 && metadata == NULL)
        rc = berth_error_set(&err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    if (rc == 0) {
        bool rolling = !body.manual;
        berth_ngroup_spec_t spec = {
            .key = key, .name = name, .template_json = tmpl, .desired = body.desired,
            .zones = body.zones, .nzones = body.nzones, .max_unavailable = 1,
            .metadata_json = metadata, .max_batch_percent = body.batch_percent,
            .max_unhealthy_set = body.has_unhealthy,
            .max_unhealthy_percent = body.unhealthy_percent,
            .pause_between_batches_ms = body.pause_ms,
            .replace_on_update = rolling && !body.in_place, .member_prefix = body.prefix,
            .fault_domain_count = body.fault_domains, .manual_update = !rolling};
        rc = berth_store_ngroup_put(store, &spec, NULL, &err);
        if (rc != 0) {
            bd_ngroup_error_map(&err);
            message_unkey(&err, key, name);
        }
    }
    free(tmpl);
    free(metadata);
    bd_ngroup_body_free(&body);
    free(sealed);
    if (rc != 0) {
        bd_reply_berth_error(reply, status_of(rc), &err);
        return;
    }
    berth_ngroup_step_t st;
    if (berth_store_ngroup_reconcile(store, key, &st, &err) != 0)
        bd_log("warn", "NGroup %s not reconciled: %s", key, err.message);
    json_object_set_new(active, key, json_true());
    reply_ngroup(store, key, status, reply);
}

/* The NGroup `key` unless it is missing or being deleted (answered 404). */
static berth_ngroup_t *live_ngroup(berth_store_t *store, const char *rg, const char *name,
                                   const char *key, bd_reply_t *reply)
{
    berth_ngroup_t *g = NULL;
    berth_error_t err;
    int rc = berth_store_ngroup_get(store, key, &g, &err);
    if (rc == 0 && !g->deleting)
        return g;
    if (rc == BERTH_ENOENT || rc == 0)
        reply_not_found(reply, rg, name);
    else
        bd_reply_berth_error(reply, status_of(rc), &err);
    berth_ngroup_free(g);
    return NULL;
}

static void put_ngroup(const bd_ngroup_ctx_t *c, const bd_request_t *req, const char *sub,
                       const char *rg, const char *name, const char *key, bd_reply_t *reply)
{
    berth_ngroup_t *old = NULL;
    bool existed = berth_store_ngroup_get(c->store, key, &old, NULL) == 0 && !old->deleting;
    write_ngroup(c, req->body, req->body ? req->body_len : 0, sub, rg, name, key, NULL,
                 existed ? 200 : 201, reply);
    berth_ngroup_free(old);
}

/* PATCH: ACI's NGroupPatch merged over the body the NGroup keeps, then
 * written like a PUT; the template stays unless the patch names a profile. */
static void patch_ngroup(const bd_ngroup_ctx_t *c, const bd_request_t *req, const char *sub,
                         const char *rg, const char *name, const char *key, bd_reply_t *reply)
{
    berth_ngroup_t *g = live_ngroup(c->store, rg, name, key, reply);
    if (g == NULL)
        return;
    json_t *meta = g->metadata_json ? json_loads(g->metadata_json, 0, NULL) : NULL;
    char *stored = json_object_get(meta, "body") != NULL
                       ? json_dumps(json_object_get(meta, "body"), JSON_COMPACT)
                       : NULL;
    json_decref(meta);
    char *merged = NULL;
    berth_error_t err;
    int rc = bd_ngroup_patch_merge(stored, req->body, req->body ? req->body_len : 0, &merged,
                                   &err);
    if (rc != 0)
        bd_reply_berth_error(reply, status_of(rc), &err);
    else
        write_ngroup(c, merged, strlen(merged), sub, rg, name, key, g, 200, reply);
    free(merged);
    free(stored);
    berth_ngroup_free(g);
}

typedef struct list_ctx {
    const char *prefix;
    size_t plen;
    bool by_subscription;           /* prefix is "<sub>/"                   */
    json_t *keys;
} list_ctx_t;

static void on_key(const char *key, void *data)
{
    list_ctx_t *c = data;
    if (c->by_subscription) {
        /* "<sub>/<rg>/<name>", with no further '/'. */
        const char *rest = strncmp(key, c->prefix, c->plen) == 0 ? key + c->plen : NULL;
        const char *slash = rest != NULL ? strchr(rest, '/') : NULL;
        if (slash != NULL && slash != rest && slash[1] != '\0' && strchr(slash + 1, '/') == NULL)
            json_array_append_new(c->keys, json_string(key));
    } else if (bd_key_child(key, c->prefix, c->plen) != NULL) {
        json_array_append_new(c->keys, json_string(key));
    }
}

static void list_ngroups(berth_store_t *store, const char *prefix, bool by_subscription,
                         bd_reply_t *reply)
{
    list_ctx_t c = {prefix, strlen(prefix), by_subscription, json_array()};
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

/* POST .../start|stop|restart. */
static void act_ngroup(berth_store_t *store, json_t *active, const char *action,
                       const char *rg, const char *name, const char *key, bd_reply_t *reply)
{
    berth_ngroup_t *g = live_ngroup(store, rg, name, key, reply);
    if (g == NULL)
        return;
    berth_ngroup_free(g);
    berth_error_t err;
    int rc;
    if (strcmp(action, "stop") == 0) {
        bd_reply_route(reply, "NGroups_Stop");
        rc = berth_store_ngroup_stop(store, key, &err);
    } else if (strcmp(action, "start") == 0) {
        bd_reply_route(reply, "NGroups_Start");
        rc = berth_store_ngroup_start(store, key, &err);
    } else {
        bd_reply_route(reply, "NGroups_Restart");
        rc = berth_store_ngroup_restart(store, key, NULL, &err);
    }
    if (rc == BERTH_ENOENT) {
        reply_not_found(reply, rg, name);
        return;
    }
    if (rc != 0) {
        bd_ngroup_error_map(&err);
        message_unkey(&err, key, name);
        bd_reply_berth_error(reply, status_of(rc), &err);
        return;
    }
    json_object_set_new(active, key, json_true());
    bd_reply_send(reply, strcmp(action, "stop") == 0 ? 204 : 202, NULL, NULL);
}

/* Contract (berthd.h): answers one NGroups request. */
void bd_ngroups_handle(berth_store_t *store, json_t *active, const bd_request_t *req,
                       bd_reply_t *reply, char **seg, int n, const char *profile_doc,
                       uint64_t profile_rev, const berth__keyring_t *secrets)
{
    const bd_ngroup_ctx_t c = {store, active, profile_doc, profile_rev, secrets};
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
                       "The api-version '%s' is invalid for ngroups: ngroups are available "
                       "from api-version %s on.", q < 0 ? "" : apiv, bd_apiv_ngroups_first());
        return;
    }
    if (n == 5) {
        bd_reply_route(reply, "NGroups_List");
        if (req->method != BD_GET) {
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
            return;
        }
        char prefix[BD_KEY_MAX + 1];
        bd_lower(seg[1], prefix, sizeof prefix - 1);
        strcat(prefix, "/");
        list_ngroups(store, prefix, true, reply);
        return;
    }
    if (!bd_valid_resource_group(seg[3])) {
        bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                       "resource group names are 1-90 letters, digits, '-', '_', '.', '(' or "
                       "')', not ending with '.'");
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
        list_ngroups(store, prefix, false, reply);
        return;
    }
    if (n != 8 && n != 9) {
        bd_reply_error(reply, 404, "NotFound", "", "no such resource or route");
        return;
    }
    const char *name = seg[7];
    if (!bd_valid_group_name(name) || strlen(name) > BERTH_NGROUP_NAME_MAX) {
        bd_reply_error(reply, 400, "InvalidNGroupName", "ngroupsName",
                       "NGroup names are 1-%d lowercase letters, digits or '-', not starting "
                       "or ending with '-'",
                       BERTH_NGROUP_NAME_MAX);
        return;
    }
    char key[BD_KEY_MAX + 1];
    bd_resource_key(seg[1], seg[3], name, key, sizeof key);
    if (n == 9) {
        char action[16];
        bd_lower(seg[8], action, sizeof action);
        if (strcmp(action, "start") != 0 && strcmp(action, "stop") != 0 &&
            strcmp(action, "restart") != 0) {
            bd_reply_error(reply, 404, "NotFound", "", "no such resource or route");
            return;
        }
        if (req->method != BD_POST) {
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
            return;
        }
        act_ngroup(store, active, action, seg[3], name, key, reply);
        return;
    }
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
        put_ngroup(&c, req, seg[1], seg[3], name, key, reply);
        return;
    case BD_PATCH:
        bd_reply_route(reply, "NGroups_Update");
        patch_ngroup(&c, req, seg[1], seg[3], name, key, reply);
        return;
    case BD_DELETE: {
        bd_reply_route(reply, "NGroups_Delete");
        int rc = berth_store_ngroup_delete(store, key, &err);
        bd_ngroup_error_map(&err);
        message_unkey(&err, key, name);
        if (rc != 0 && rc != BERTH_ENOENT)
            bd_reply_berth_error(reply, status_of(rc), &err);
        else
            bd_reply_send(reply, 204, NULL, NULL);
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

/* One step of NGroup `key`, logged; whether it is left mid-rollout (not
 * steady, not deleted, still there). */
static bool reconcile_one(berth_store_t *store, const char *key)
{
    berth_ngroup_step_t st;
    berth_error_t err;
    int rc = berth_store_ngroup_reconcile(store, key, &st, &err);
    if (rc == BERTH_ENOENT)
        return false;
    if (rc != 0) {
        bd_log("warn", "NGroup %s not reconciled: %s", key, err.message);
        return true;
    }
    if (st.created + st.removed + st.updated > 0 || st.deleted)
        bd_log("info", "NGroup %s: %u created, %u removed, %u updated%s", key, st.created,
               st.removed, st.updated, st.deleted ? ", deleted" : "");
    return !st.steady && !st.deleted;
}

/* Contract (berthd.h): one step for at most BD_NGROUPS_FAST_MAX NGroups
 * of the set, oldest first (a json object keeps its insertion order). */
void bd_ngroups_reconcile_active(berth_store_t *store, json_t *active)
{
    json_t *keys = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(active, k, v)
    {
        if (json_array_size(keys) == BD_NGROUPS_FAST_MAX)
            break;
        json_array_append_new(keys, json_string(k));
    }
    size_t i;
    json_array_foreach(keys, i, v)
    {
        const char *key = json_string_value(v);
        /* Stepped keys go to the back, so that every one gets its turn. */
        bool still = key != NULL && reconcile_one(store, key);
        if (key != NULL)
            json_object_del(active, key);
        if (still)
            json_object_set_new(active, key, json_true());
    }
    json_decref(keys);
}

/* Contract (berthd.h): one reconcile step for every NGroup of the cell. */
void bd_ngroups_reconcile(berth_store_t *store, json_t *active)
{
    json_t *keys = json_array();
    berth_error_t err;
    if (berth_store_ngroup_list(store, on_reconcile_key, keys, &err) < 0) {
        bd_log("warn", "NGroups not listed: %s", err.message);
        json_decref(keys);
        return;
    }
    json_object_clear(active);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *key = json_string_value(k);
        if (reconcile_one(store, key))
            json_object_set_new(active, key, json_true());
    }
    json_decref(keys);
}
