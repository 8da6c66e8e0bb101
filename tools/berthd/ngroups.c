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
 * an ACI container-group document that every member runs.  Errors name
 * the member of this body at fault (the library's targets are mapped).
 *
 * The NGroup's record is the library's (berth:{C}:ngroups); berthd keeps
 * its own attributes (location, tags, where the zones were given) in the
 * record's metadata.  A PUT is answered once the record is in Redis and
 * one reconcile step has run; berthd's timer (api.c's on_timer) then
 * reconciles every NGroup of the cell one step per tick, so the members
 * converge -- and a rollout proceeds -- whichever berthd of the cell is
 * alive.  These routes do not go through the request stream: the record
 * is the whole request, written atomically, and reconciling is
 * idempotent.
 *
 * Secrets in the template (secureValue, secret volumes, passwords) are
 * never answered: the template is rendered with BERTH_JSON_REDACT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berthd.h"
#include "resource.h"

#define NG_PROVIDER "Microsoft.ContainerInstance/nGroups"

/* NGroups came to ACI with these api-versions; the container groups' are
 * accepted as well. */
static bool ng_api_version_ok(const char *v)
{
    return bd_api_version_ok(v) || strcmp(v, "2024-09-01-preview") == 0 ||
           strcmp(v, "2024-11-01-preview") == 0 || strcmp(v, "2025-09-01") == 0;
}

/* Rewrites a library target into the body's path. */
static void map_target(char *t, bool zones_in_properties)
{
    char out[2 * BERTH_ERROR_TARGET_MAX];
    if (strcmp(t, "desiredCount") == 0)
        snprintf(out, sizeof out, "properties.elasticProfile.desiredCount");
    else if (strcmp(t, "maxUnavailable") == 0)
        snprintf(out, sizeof out, "properties.updateProfile.rollingUpdateProfile.maxUnavailable");
    else if (strncmp(t, "zones", 5) == 0)
        snprintf(out, sizeof out, "%s%s", zones_in_properties ? "properties." : "", t);
    else if (strcmp(t, "name") == 0)
        snprintf(out, sizeof out, "nGroupName");
    else if (strcmp(t, "template") == 0)
        snprintf(out, sizeof out, "properties.containerGroupProfile");
    else if (strncmp(t, "template.properties", 19) == 0)
        snprintf(out, sizeof out, "properties.containerGroupProfile.%s", t + 9);
    else if (strncmp(t, "template.", 9) == 0)
        snprintf(out, sizeof out, "%s", t + 9);
    else
        return;
    size_t len = strnlen(out, BERTH_ERROR_TARGET_MAX - 1);
    memcpy(t, out, len);
    t[len] = '\0';
}

static void map_error(berth_error_t *err, bool zones_in_properties)
{
    map_target(err->target, zones_in_properties);
    for (size_t i = 0; i < err->ndetails && i < BERTH_ERROR_DETAILS_MAX; i++)
        map_target(err->details[i].target, zones_in_properties);
}

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

/* Members of `o` that are not among the NULL-terminated `known`: the
 * first one's name, or NULL. */
static const char *unknown_member(json_t *o, const char *const *known)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (size_t i = 0; known[i] != NULL && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (!ok)
            return k;
    }
    return NULL;
}

/* Reads a PUT body into *spec (strings pointing into `body` and
 * `zones`); the template is a new string in *template (free()) and the
 * metadata one in *metadata.  Replies 400 and returns false when the body
 * is not one. */
static bool body_parse(json_t *body, const char *sub, const char *rg, berth_ngroup_spec_t *spec,
                       const char **zones, char **template, char **metadata, bool *zin,
                       bd_reply_t *reply)
{
    static const char *const top[] = {"location", "tags", "zones", "properties", "id",
                                      "name",     "type", "identity", NULL};
    static const char *const pk[] = {"elasticProfile", "updateProfile", "zones",
                                     "containerGroupProfile", "provisioningState", "status",
                                     NULL};
    if (!json_is_object(body)) {
        bd_reply_error(reply, 400, "InvalidRequestContent", "",
                       "the request body must be a JSON object");
        return false;
    }
    const char *bad = unknown_member(body, top);
    if (bad != NULL) {
        bd_reply_error(reply, 400, "InvalidRequestContent", bad,
                       "'%s' is not a member of an NGroup", bad);
        return false;
    }
    const char *location = json_string_value(json_object_get(body, "location"));
    if (location == NULL || !bd_valid_location(location)) {
        bd_reply_error(reply, 400, "LocationRequired", "location",
                       "an NGroup needs a location: letters, digits and spaces");
        return false;
    }
    json_t *tags = json_object_get(body, "tags");
    if (tags != NULL && !json_is_object(tags)) {
        bd_reply_error(reply, 400, "InvalidRequestContent", "tags", "tags must be an object");
        return false;
    }
    json_t *props = json_object_get(body, "properties");
    if (!json_is_object(props)) {
        bd_reply_error(reply, 400, "InvalidRequestContent", "properties",
                       "an NGroup needs its properties");
        return false;
    }
    bad = unknown_member(props, pk);
    if (bad != NULL) {
        bd_reply_error(reply, 400, "InvalidRequestContent", "properties",
                       "'properties.%s' is not a member of an NGroup", bad);
        return false;
    }
    json_t *elastic = json_object_get(props, "elasticProfile");
    json_t *desired = json_object_get(elastic, "desiredCount");
    if (!json_is_integer(desired)) {
        bd_reply_error(reply, 400, "InvalidDesiredCount", "properties.elasticProfile.desiredCount",
                       "properties.elasticProfile.desiredCount must be an integer");
        return false;
    }
    spec->desired = (int64_t)json_integer_value(desired);
    spec->max_unavailable = 1;
    json_t *update = json_object_get(props, "updateProfile");
    if (update != NULL) {
        const char *mode = json_string_value(json_object_get(update, "updateMode"));
        if (!json_is_object(update) || (mode != NULL && strcmp(mode, "Rolling") != 0)) {
            bd_reply_error(reply, 400, "InvalidUpdateMode", "properties.updateProfile.updateMode",
                           "Berth rolls template changes out: updateMode must be 'Rolling'");
            return false;
        }
        json_t *mu = json_object_get(json_object_get(update, "rollingUpdateProfile"),
                                     "maxUnavailable");
        if (mu != NULL && !json_is_integer(mu)) {
            bd_reply_error(reply, 400, "InvalidMaxUnavailable",
                           "properties.updateProfile.rollingUpdateProfile.maxUnavailable",
                           "maxUnavailable must be an integer");
            return false;
        }
        if (mu != NULL)
            spec->max_unavailable = (int64_t)json_integer_value(mu);
    }
    json_t *z = json_object_get(body, "zones");
    *zin = false;
    if (z == NULL && json_object_get(props, "zones") != NULL) {
        z = json_object_get(props, "zones");
        *zin = true;
    }
    if (z != NULL) {
        if (!json_is_array(z) || json_array_size(z) > BERTH_NGROUP_ZONES_MAX) {
            bd_reply_error(reply, 400, "InvalidZones", *zin ? "properties.zones" : "zones",
                           "zones must be an array of at most %d zone names",
                           BERTH_NGROUP_ZONES_MAX);
            return false;
        }
        for (size_t i = 0; i < json_array_size(z); i++) {
            zones[i] = json_string_value(json_array_get(z, i));
            if (zones[i] == NULL) {
                char t[48];
                snprintf(t, sizeof t, "%szones[%zu]", *zin ? "properties." : "", i);
                bd_reply_error(reply, 400, "InvalidZones", t, "a zone is a string");
                return false;
            }
        }
        spec->zones = zones;
        spec->nzones = json_array_size(z);
    }
    json_t *profile = json_object_get(props, "containerGroupProfile");
    json_t *tprops = json_object_get(profile, "properties");
    if (!json_is_object(tprops)) {
        bd_reply_error(reply, 400, "InvalidContainerGroupProfile",
                       "properties.containerGroupProfile.properties",
                       "an NGroup needs containerGroupProfile.properties: the container "
                       "group's properties every member runs");
        return false;
    }
    json_t *tdoc = json_pack("{s:s, s:O}", "location", location, "properties", tprops);
    *template = tdoc ? json_dumps(tdoc, JSON_COMPACT) : NULL;
    json_decref(tdoc);
    json_t *meta = json_pack("{s:s, s:s, s:s, s:b}", "location", location, "subscription", sub,
                             "resourceGroup", rg, "zonesInProperties", *zin);
    if (meta != NULL && tags != NULL)
        json_object_set(meta, "tags", tags);
    *metadata = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    if (*template == NULL || *metadata == NULL) {
        bd_reply_error(reply, 500, "InternalServerError", "", "out of memory");
        return false;
    }
    spec->template_json = *template;
    spec->metadata_json = *metadata;
    return true;
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
    json_error_t je;
    json_t *body = json_loadb(req->body ? req->body : "", req->body ? req->body_len : 0, 0, &je);
    if (body == NULL) {
        bd_reply_error(reply, 400, "InvalidRequestContent", "",
                       "the request body is not JSON: %s (line %d, column %d)", je.text, je.line,
                       je.column);
        return;
    }
    berth_ngroup_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.key = key;
    spec.name = name;
    const char *zones[BERTH_NGROUP_ZONES_MAX];
    char *template = NULL, *metadata = NULL;
    bool zin = false;
    if (!body_parse(body, sub, rg, &spec, zones, &template, &metadata, &zin, reply))
        goto done;
    berth_ngroup_t *old = NULL;
    bool existed = berth_store_ngroup_get(store, key, &old, NULL) == 0 && !old->deleting;
    berth_ngroup_free(old);
    berth_error_t err;
    int rc = berth_store_ngroup_put(store, &spec, NULL, &err);
    if (rc != 0) {
        map_error(&err, zin);
        bd_reply_berth_error(reply, status_of(rc), &err);
        goto done;
    }
    berth_ngroup_step_t st;
    if (berth_store_ngroup_reconcile(store, key, &st, &err) != 0)
        bd_log("warn", "NGroup %s not reconciled: %s", key, err.message);
    reply_ngroup(store, key, existed ? 200 : 201, reply);
done:
    free(template);
    free(metadata);
    json_decref(body);
}

/* PATCH: the count, the bound and the tags change; the template stays
 * (a client never sees its secrets, so it could not send them back). */
static void patch_ngroup(berth_store_t *store, const bd_request_t *req, const char *rg,
                         const char *name, const char *key, bd_reply_t *reply)
{
    static const char *const top[] = {"tags", "properties", NULL};
    static const char *const pk[] = {"elasticProfile", "updateProfile", NULL};
    json_t *body = json_loadb(req->body ? req->body : "", req->body ? req->body_len : 0, 0, NULL);
    json_t *props = json_object_get(body, "properties");
    json_t *tags = json_object_get(body, "tags");
    json_t *desired = json_object_get(json_object_get(props, "elasticProfile"), "desiredCount");
    json_t *mu = json_object_get(
        json_object_get(json_object_get(props, "updateProfile"), "rollingUpdateProfile"),
        "maxUnavailable");
    const char *bad = json_is_object(body) ? unknown_member(body, top) : "";
    char target[160];
    snprintf(target, sizeof target, "%s", bad ? bad : "");
    if (bad == NULL && props != NULL) {
        bad = json_is_object(props) ? unknown_member(props, pk) : "";
        if (bad != NULL)
            snprintf(target, sizeof target, "properties%s%.100s", *bad ? "." : "", bad);
    }
    if (bad != NULL) {
        bd_reply_error(reply, 400, "InvalidRequestContent", target,
                       "a PATCH of an NGroup may hold tags, properties.elasticProfile and "
                       "properties.updateProfile only");
        json_decref(body);
        return;
    }
    if ((tags != NULL && !json_is_object(tags)) || (desired != NULL && !json_is_integer(desired)) ||
        (mu != NULL && !json_is_integer(mu))) {
        bd_reply_error(reply, 400, "InvalidRequestContent",
                       tags != NULL && !json_is_object(tags) ? "tags"
                       : desired != NULL && !json_is_integer(desired)
                           ? "properties.elasticProfile.desiredCount"
                           : "properties.updateProfile.rollingUpdateProfile.maxUnavailable",
                       "tags must be an object, desiredCount and maxUnavailable integers");
        json_decref(body);
        return;
    }
    berth_ngroup_t *g = NULL;
    berth_error_t err;
    int rc = berth_store_ngroup_get(store, key, &g, &err);
    if (rc != 0 || g->deleting) {
        if (rc == BERTH_ENOENT || rc == 0)
            reply_not_found(reply, rg, name);
        else
            bd_reply_berth_error(reply, status_of(rc), &err);
        berth_ngroup_free(g);
        json_decref(body);
        return;
    }
    json_t *meta = g->metadata_json ? json_loads(g->metadata_json, 0, NULL) : json_object();
    if (tags != NULL && meta != NULL)
        json_object_set(meta, "tags", tags);
    char *metadata = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    bool zin = json_is_true(json_object_get(meta, "zonesInProperties"));
    json_decref(meta);
    berth_ngroup_spec_t spec = {.key = key, .name = g->name, .template_json = g->template_json,
                                .desired = desired ? json_integer_value(desired) : g->desired,
                                .zones = (const char *const *)g->zones, .nzones = g->nzones,
                                .max_unavailable = mu ? json_integer_value(mu)
                                                      : g->max_unavailable,
                                .metadata_json = metadata};
    rc = metadata != NULL ? berth_store_ngroup_put(store, &spec, NULL, &err)
                          : berth_error_set(&err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    if (rc != 0) {
        map_error(&err, zin);
        bd_reply_berth_error(reply, status_of(rc), &err);
    } else {
        berth_ngroup_step_t st;
        if (berth_store_ngroup_reconcile(store, key, &st, &err) != 0)
            bd_log("warn", "NGroup %s not reconciled: %s", key, err.message);
        reply_ngroup(store, key, 200, reply);
    }
    free(metadata);
    berth_ngroup_free(g);
    json_decref(body);
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
    if (strncmp(key, c->prefix, c->plen) == 0 && strchr(key + c->plen, '/') == NULL)
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
    if (q < 0 || !ng_api_version_ok(apiv)) {
        bd_reply_error(reply, 400, "InvalidApiVersionParameter", "api-version",
                       "The api-version '%s' is invalid for nGroups.", q < 0 ? "" : apiv);
        return;
    }
    char s[BD_SUB_MAX + 1], r[BD_RG_MAX + 1];
    bd_lower(seg[1], s, sizeof s);
    bd_lower(seg[3], r, sizeof r);
    if (n == 7) {
        bd_reply_route(reply, "NGroups_ListByResourceGroup");
        if (req->method != BD_GET) {
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
            return;
        }
        char prefix[BD_KEY_MAX + 1];
        snprintf(prefix, sizeof prefix, "%s/%s/", s, r);
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
    snprintf(key, sizeof key, "%s/%s/%s", s, r, name);
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
