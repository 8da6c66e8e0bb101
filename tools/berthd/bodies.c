/*
 * bodies.c: berthd's readers of NGroup and standby-pool request bodies
 * (contracts in bodies.h).  Pure: bytes in, a spec or a berth_error_t out,
 * no I/O; they never look at the cell, so what depends on it (zones of
 * its hosts, the template against its engine) is left to the library's
 * put, whose targets bd_ngroup_error_map()/bd_pool_error_map() turn into
 * the body's paths.
 *
 * Unknown members of an NGroup body are refused, at every level berthd
 * reads (ACI's own members that Berth does not implement would otherwise
 * be silently ignored); read-only members a GET answers (id, name, type,
 * provisioningState, status, containerGroupProfile.revision) are accepted
 * and ignored, so that a GET body can be sent back.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bodies.h"
#include "resource.h"

#define PROFILE_PATH "properties.containerGroupProperties.containerGroupProfile"
#define DESIRED_PATH "properties.elasticProfile.desiredCount"
#define MU_PATH "properties.updateProfile.rollingUpdateProfile.maxUnavailable"

/* ---- shared ---------------------------------------------------------------------- */

/* Parses `len` bytes as one JSON object into *out.  Rejects NUL bytes in
 * strings (JSON_ALLOW_NUL is not given), so every string read from it is
 * a C string of its full length. */
static int object_load(const char *text, size_t len, json_t **out, berth_error_t *err)
{
    json_error_t je;
    *out = json_loadb(text != NULL ? text : "", text != NULL ? len : 0, 0, &je);
    if (*out == NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", "",
                               "the request body is not JSON: %s (line %d, column %d)", je.text,
                               je.line, je.column);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", "",
                               "the request body must be a JSON object");
    }
    return 0;
}

/* The first member of object `o` not among the NULL-terminated `known`, or
 * NULL. */
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

/* Refuses a member of object `o` (at JSON path `path`, "" for the body)
 * that is not in `known`.  Returns 0 or BERTH_EINVAL. */
static int members_check(json_t *o, const char *path, const char *const *known,
                         const char *what, berth_error_t *err)
{
    const char *bad = unknown_member(o, known);
    if (bad == NULL)
        return 0;
    char t[BERTH_ERROR_TARGET_MAX];
    snprintf(t, sizeof t, "%s%s%.100s", path, *path ? "." : "", bad);
    return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", t,
                           "'%s' is not a member of %s", t, what);
}

/* Refuses a member at `path` that is present but not an object. */
static int object_check(json_t *v, const char *path, berth_error_t *err)
{
    if (v == NULL || json_is_object(v))
        return 0;
    return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", path,
                           "%s must be an object", path);
}

/* Reads an integer count at `path` from `v` into *out: it must be an
 * integer (not a number with a fraction, a string or a boolean) from min
 * to max. */
static int count_read(json_t *v, const char *path, const char *name, int64_t min, int64_t max,
                      int64_t *out, berth_error_t *err)
{
    if (!json_is_integer(v))
        return berth_error_set(err, BERTH_EINVAL, name, path,
                               "%s must be an integer from %lld to %lld", path, (long long)min,
                               (long long)max);
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return berth_error_set(err, BERTH_EINVAL, name, path,
                               "%s must be an integer from %lld to %lld, not %lld", path,
                               (long long)min, (long long)max, (long long)n);
    *out = (int64_t)n;
    return 0;
}

/* Replaces `t` (a target, BERTH_ERROR_TARGET_MAX bytes) by `prefix` then
 * the part of t after its first `skip` bytes, cut to fit. */
static void target_rewrite(char *t, const char *prefix, size_t skip)
{
    char out[2 * BERTH_ERROR_TARGET_MAX];
    snprintf(out, sizeof out, "%s%s", prefix, t + skip);
    size_t len = strnlen(out, BERTH_ERROR_TARGET_MAX - 1);
    memcpy(t, out, len);
    t[len] = '\0';
}

/* ---- NGroups: PUT --------------------------------------------------------------------- */

static int ngroup_update_read(json_t *update, int64_t *mu, berth_error_t *err)
{
    static const char *const uk[] = {"updateMode", "rollingUpdateProfile", NULL};
    static const char *const rk[] = {"maxUnavailable", NULL};
    *mu = 1;
    if (update == NULL)
        return 0;
    int rc = object_check(update, "properties.updateProfile", err);
    if (rc == 0)
        rc = members_check(update, "properties.updateProfile", uk, "an NGroup's updateProfile",
                           err);
    if (rc < 0)
        return rc;
    json_t *mode = json_object_get(update, "updateMode");
    if (mode != NULL && (!json_is_string(mode) || strcmp(json_string_value(mode), "Rolling") != 0))
        return berth_error_set(err, BERTH_EINVAL, "InvalidUpdateMode",
                               "properties.updateProfile.updateMode",
                               "Berth rolls template changes out: updateMode must be 'Rolling'");
    json_t *rolling = json_object_get(update, "rollingUpdateProfile");
    rc = object_check(rolling, "properties.updateProfile.rollingUpdateProfile", err);
    if (rc == 0 && rolling != NULL)
        rc = members_check(rolling, "properties.updateProfile.rollingUpdateProfile", rk,
                           "an NGroup's rollingUpdateProfile", err);
    if (rc < 0)
        return rc;
    json_t *v = json_object_get(rolling, "maxUnavailable");
    if (v == NULL)
        return 0;
    return count_read(v, MU_PATH, "InvalidMaxUnavailable", 1, BERTH_NGROUP_MEMBERS_MAX, mu, err);
}

static int ngroup_zones_read(json_t *body, json_t *props, bd_ngroup_body_t *out,
                             berth_error_t *err)
{
    json_t *z = json_object_get(body, "zones");
    json_t *pz = json_object_get(props, "zones");
    if (z != NULL && pz != NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidZones", "properties.zones",
                               "zones are given either at the top level or in properties, "
                               "not both");
    if (z == NULL && pz != NULL) {
        z = pz;
        out->zones_in_properties = true;
    }
    if (z == NULL)
        return 0;
    const char *path = out->zones_in_properties ? "properties.zones" : "zones";
    if (!json_is_array(z) || json_array_size(z) > BERTH_NGROUP_ZONES_MAX)
        return berth_error_set(err, BERTH_EINVAL, "InvalidZones", path,
                               "%s must be an array of at most %d zone names", path,
                               BERTH_NGROUP_ZONES_MAX);
    for (size_t i = 0; i < json_array_size(z); i++) {
        out->zones[i] = json_string_value(json_array_get(z, i));
        if (out->zones[i] == NULL) {
            char t[48];
            snprintf(t, sizeof t, "%s[%zu]", path, i);
            return berth_error_set(err, BERTH_EINVAL, "InvalidZone", t, "a zone is a string");
        }
    }
    out->nzones = json_array_size(z);
    return 0;
}

static int ngroup_put_read(json_t *body, const char *sub, const char *rg,
                           bd_ngroup_body_t *out, berth_error_t *err)
{
    static const char *const top[] = {"location", "tags", "zones", "properties", "id",
                                      "name",     "type", "identity", NULL};
    static const char *const pk[] = {"elasticProfile", "updateProfile", "zones",
                                     "containerGroupProfile", "provisioningState", "status",
                                     NULL};
    static const char *const ek[] = {"desiredCount", NULL};
    static const char *const ck[] = {"properties", "revision", "id", NULL};
    int rc = members_check(body, "", top, "an NGroup", err);
    if (rc < 0)
        return rc;
    const char *location = json_string_value(json_object_get(body, "location"));
    if (location == NULL || !bd_valid_location(location))
        return berth_error_set(err, BERTH_EINVAL, "LocationRequired", "location",
                               "an NGroup needs a location: letters, digits and spaces");
    json_t *tags = json_object_get(body, "tags");
    if (tags != NULL && !json_is_object(tags))
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", "tags",
                               "tags must be an object");
    json_t *props = json_object_get(body, "properties");
    if (!json_is_object(props))
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", "properties",
                               "an NGroup needs its properties (an object)");
    rc = members_check(props, "properties", pk, "an NGroup's properties", err);
    if (rc < 0)
        return rc;
    json_t *elastic = json_object_get(props, "elasticProfile");
    rc = object_check(elastic, "properties.elasticProfile", err);
    if (rc == 0 && elastic != NULL)
        rc = members_check(elastic, "properties.elasticProfile", ek,
                           "an NGroup's elasticProfile", err);
    if (rc == 0)
        rc = count_read(json_object_get(elastic, "desiredCount"), DESIRED_PATH,
                        "InvalidDesiredCount", 0, BERTH_NGROUP_MEMBERS_MAX, &out->desired, err);
    if (rc == 0)
        rc = ngroup_update_read(json_object_get(props, "updateProfile"), &out->max_unavailable,
                                err);
    if (rc == 0)
        rc = ngroup_zones_read(body, props, out, err);
    if (rc < 0)
        return rc;
    json_t *profile = json_object_get(props, "containerGroupProfile");
    rc = object_check(profile, "properties.containerGroupProfile", err);
    if (rc == 0 && profile != NULL)
        rc = members_check(profile, "properties.containerGroupProfile", ck,
                           "an NGroup's containerGroupProfile", err);
    if (rc < 0)
        return rc;
    json_t *tprops = json_object_get(profile, "properties");
    if (!json_is_object(tprops))
        return berth_error_set(err, BERTH_EINVAL, "InvalidContainerGroupProfile",
                               "properties.containerGroupProfile.properties",
                               "an NGroup needs containerGroupProfile.properties: the container "
                               "group's properties every member runs");
    json_t *tdoc = json_pack("{s:s, s:O}", "location", location, "properties", tprops);
    out->template_json = tdoc ? json_dumps(tdoc, JSON_COMPACT) : NULL;
    json_decref(tdoc);
    json_t *meta = json_pack("{s:s, s:s, s:s, s:b}", "location", location, "subscription", sub,
                             "resourceGroup", rg, "zonesInProperties",
                             out->zones_in_properties);
    if (meta != NULL && tags != NULL)
        json_object_set(meta, "tags", tags);
    out->metadata_json = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    if (out->template_json == NULL || out->metadata_json == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    return 0;
}

/* Contract: bodies.h. */
int bd_ngroup_body_read(const char *text, size_t len, const char *sub, const char *rg,
                        bd_ngroup_body_t *out, berth_error_t *err)
{
    memset(out, 0, sizeof *out);
    int rc = object_load(text, len, &out->doc, err);
    if (rc == 0)
        rc = ngroup_put_read(out->doc, sub != NULL ? sub : "", rg != NULL ? rg : "", out, err);
    if (rc < 0)
        bd_ngroup_body_free(out);
    return rc;
}

/* Contract: bodies.h. */
void bd_ngroup_body_free(bd_ngroup_body_t *body)
{
    if (body == NULL)
        return;
    free(body->template_json);
    free(body->metadata_json);
    json_decref(body->doc);
    memset(body, 0, sizeof *body);
}

/* ---- NGroups: PATCH -------------------------------------------------------------------- */

static int ngroup_patch_fill(json_t *body, bd_ngroup_patch_t *out, berth_error_t *err)
{
    static const char *const top[] = {"tags", "properties", NULL};
    static const char *const pk[] = {"elasticProfile", "updateProfile", NULL};
    static const char *const ek[] = {"desiredCount", NULL};
    static const char *const uk[] = {"rollingUpdateProfile", NULL};
    static const char *const rk[] = {"maxUnavailable", NULL};
    const char *what = "a PATCH of an NGroup (tags, properties.elasticProfile.desiredCount and "
                       "properties.updateProfile.rollingUpdateProfile.maxUnavailable)";
    int rc = members_check(body, "", top, what, err);
    json_t *tags = json_object_get(body, "tags");
    if (rc == 0 && tags != NULL && !json_is_object(tags))
        rc = berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", "tags",
                             "tags must be an object");
    json_t *props = json_object_get(body, "properties");
    if (rc == 0)
        rc = object_check(props, "properties", err);
    if (rc < 0 || props == NULL)
        goto done;
    json_t *elastic = json_object_get(props, "elasticProfile");
    json_t *update = json_object_get(props, "updateProfile");
    json_t *rolling = json_object_get(update, "rollingUpdateProfile");
    if ((rc = members_check(props, "properties", pk, what, err)) < 0 ||
        (rc = object_check(elastic, "properties.elasticProfile", err)) < 0 ||
        (rc = object_check(update, "properties.updateProfile", err)) < 0 ||
        (rc = object_check(rolling, "properties.updateProfile.rollingUpdateProfile", err)) < 0)
        goto done;
    if ((elastic != NULL &&
         (rc = members_check(elastic, "properties.elasticProfile", ek, what, err)) < 0) ||
        (update != NULL &&
         (rc = members_check(update, "properties.updateProfile", uk, what, err)) < 0) ||
        (rolling != NULL &&
         (rc = members_check(rolling, "properties.updateProfile.rollingUpdateProfile", rk, what,
                             err)) < 0))
        goto done;
    json_t *desired = json_object_get(elastic, "desiredCount");
    if (desired != NULL) {
        rc = count_read(desired, DESIRED_PATH, "InvalidDesiredCount", 0,
                        BERTH_NGROUP_MEMBERS_MAX, &out->desired, err);
        out->has_desired = rc == 0;
    }
    json_t *mu = json_object_get(rolling, "maxUnavailable");
    if (rc == 0 && mu != NULL) {
        rc = count_read(mu, MU_PATH, "InvalidMaxUnavailable", 1, BERTH_NGROUP_MEMBERS_MAX,
                        &out->max_unavailable, err);
        out->has_max_unavailable = rc == 0;
    }
done:
    if (rc == 0)
        out->tags = tags;
    return rc;
}

/* Contract: bodies.h. */
int bd_ngroup_patch_read(const char *text, size_t len, bd_ngroup_patch_t *out,
                         berth_error_t *err)
{
    memset(out, 0, sizeof *out);
    int rc = object_load(text, len, &out->doc, err);
    if (rc == 0)
        rc = ngroup_patch_fill(out->doc, out, err);
    if (rc < 0)
        bd_ngroup_patch_free(out);
    return rc;
}

/* Contract: bodies.h. */
void bd_ngroup_patch_free(bd_ngroup_patch_t *patch)
{
    if (patch == NULL)
        return;
    json_decref(patch->doc);
    memset(patch, 0, sizeof *patch);
}

/* Calls map(target, flag) on the error's target and on each detail's. */
static void targets_map(berth_error_t *err, void (*map)(char *target, bool flag), bool flag)
{
    if (err == NULL)
        return;
    map(err->target, flag);
    for (size_t i = 0; i < err->ndetails && i < BERTH_ERROR_DETAILS_MAX; i++)
        map(err->details[i].target, flag);
}

static void ngroup_target_map(char *t, bool zones_in_properties)
{
    if (strcmp(t, "desiredCount") == 0)
        target_rewrite(t, DESIRED_PATH, strlen(t));
    else if (strcmp(t, "maxUnavailable") == 0)
        target_rewrite(t, MU_PATH, strlen(t));
    else if (strncmp(t, "zones", 5) == 0 && zones_in_properties)
        target_rewrite(t, "properties.", 0);
    else if (strcmp(t, "name") == 0)
        target_rewrite(t, "nGroupName", strlen(t));
    else if (strcmp(t, "template") == 0)
        target_rewrite(t, "properties.containerGroupProfile", strlen(t));
    else if (strncmp(t, "template.properties", 19) == 0)
        target_rewrite(t, "properties.containerGroupProfile.", 9);
    else if (strncmp(t, "template.", 9) == 0)
        target_rewrite(t, "", 9);
}

/* Contract: bodies.h. */
void bd_ngroup_error_map(berth_error_t *err, bool zones_in_properties)
{
    targets_map(err, ngroup_target_map, zones_in_properties);
}

/* ---- standby pools -------------------------------------------------------------------- */

/* The Microsoft.StandbyPool schema (standbypool.json, 2026-04-01):
 *   {"location", "tags",
 *    "properties": {"elasticityProfile": {"maxReadyCapacity", "refillPolicy",
 *                                         "dynamicSizing": {"enabled"}},
 *                   "containerGroupProperties": {
 *                       "containerGroupProfile": {"id", "revision"},
 *                       "subnetIds": [{"id"}]},
 *                   "zones": ["1", ...]}}
 * The resource is kept as read (normalized: only these members); a PATCH
 * (StandbyContainerGroupPoolResourceUpdate) carries tags and properties,
 * each optional. */

#define POOL_PROFILE_PATH "properties.containerGroupProperties.containerGroupProfile"
#define POOL_ELASTIC_PATH "properties.elasticityProfile"
#define PROFILE_TYPE "/providers/Microsoft.ContainerInstance/containerGroupProfiles/"

/* Whether `id` names a container group profile: "/subscriptions/S/
 * resourceGroups/RG/providers/Microsoft.ContainerInstance/
 * containerGroupProfiles/NAME", case-insensitively, nothing after NAME. */
static bool profile_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n > 1024 || strncasecmp(id, "/subscriptions/", 15) != 0)
        return false;
    const char *p = strcasestr(id, PROFILE_TYPE);
    if (p == NULL || strcasestr(id, "/resourceGroups/") == NULL)
        return false;
    const char *name = p + strlen(PROFILE_TYPE);
    return *name != '\0' && strchr(name, '/') == NULL;
}

static int pool_profile_read(json_t *prof, bool patch, json_t *out_cgp, bd_pool_body_t *out,
                             berth_error_t *err)
{
    if (prof == NULL) {
        if (patch)
            return 0;
        return berth_error_set(err, BERTH_EINVAL, "InvalidContainerGroupProfile",
                               POOL_PROFILE_PATH,
                               "%s is required: {\"id\": the ARM id of a container group "
                               "profile, \"revision\": its revision (optional)}",
                               POOL_PROFILE_PATH);
    }
    if (!json_is_object(prof))
        return berth_error_set(err, BERTH_EINVAL, "InvalidContainerGroupProfile",
                               POOL_PROFILE_PATH,
                               "%s must be an object {\"id\", \"revision\"}", POOL_PROFILE_PATH);
    /* Berth's former form: the container-group document itself. */
    if (json_object_get(prof, "properties") != NULL || json_object_get(prof, "id") == NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidContainerGroupProfile",
                               POOL_PROFILE_PATH,
                               "%s must reference a container group profile "
                               "({\"id\": \"/subscriptions/.../providers/"
                               "Microsoft.ContainerInstance/containerGroupProfiles/NAME\", "
                               "\"revision\": N}), not hold a container group document: "
                               "create the profile and use a container group profile "
                               "reference", POOL_PROFILE_PATH);
    static const char *const pk[] = {"id", "revision", NULL};
    int rc = members_check(prof, POOL_PROFILE_PATH, pk, "a container group profile reference",
                           err);
    if (rc < 0)
        return rc;
    const char *id = json_string_value(json_object_get(prof, "id"));
    if (id == NULL || !profile_id_ok(id))
        return berth_error_set(err, BERTH_EINVAL, "InvalidContainerGroupProfile",
                               POOL_PROFILE_PATH ".id",
                               "%s.id must be the ARM id of a container group profile "
                               "(/subscriptions/S/resourceGroups/RG/providers/"
                               "Microsoft.ContainerInstance/containerGroupProfiles/NAME)",
                               POOL_PROFILE_PATH);
    json_t *rev = json_object_get(prof, "revision");
    int64_t revision = 0;
    if (rev != NULL && (rc = count_read(rev, POOL_PROFILE_PATH ".revision",
                                        "InvalidContainerGroupProfile", 1, INT32_MAX, &revision,
                                        err)) < 0)
        return rc;
    out->profile_id = strdup(id);
    out->revision = (uint64_t)revision;
    json_t *ref = json_pack("{s:s}", "id", id);
    if (out->profile_id == NULL || ref == NULL) {
        json_decref(ref);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    if (rev != NULL)
        json_object_set_new(ref, "revision", json_integer(revision));
    json_object_set_new(out_cgp, "containerGroupProfile", ref);
    return 0;
}

static int pool_subnets_read(json_t *subnets, json_t *out_cgp, berth_error_t *err)
{
    const char *path = "properties.containerGroupProperties.subnetIds";
    if (subnets == NULL)
        return 0;
    if (!json_is_array(subnets) || json_array_size(subnets) > 16)
        return berth_error_set(err, BERTH_EINVAL, "InvalidSubnetIds", path,
                               "%s must be an array of at most 16 {\"id\": subnet ARM id}",
                               path);
    static const char *const sk[] = {"id", NULL};
    size_t i;
    json_t *v;
    json_array_foreach(subnets, i, v)
    {
        char t[BERTH_ERROR_TARGET_MAX];
        snprintf(t, sizeof t, "%s[%zu]", path, i);
        int rc = object_check(v, t, err);
        if (rc == 0 && v == NULL)
            rc = berth_error_set(err, BERTH_EINVAL, "InvalidSubnetIds", t, "%s must be an "
                                 "object", t);
        if (rc == 0)
            rc = members_check(v, t, sk, "a subnet reference", err);
        if (rc < 0)
            return rc;
        const char *id = json_string_value(json_object_get(v, "id"));
        if (id == NULL || id[0] != '/' || strlen(id) > 1024 ||
            strcasestr(id, "/providers/Microsoft.Network/virtualNetworks/") == NULL ||
            strcasestr(id, "/subnets/") == NULL) {
            snprintf(t, sizeof t, "%s[%zu].id", path, i);
            return berth_error_set(err, BERTH_EINVAL, "InvalidSubnetIds", t,
                                   "%s must be the ARM id of a subnet (.../providers/"
                                   "Microsoft.Network/virtualNetworks/V/subnets/S)", t);
        }
    }
    json_object_set(out_cgp, "subnetIds", subnets);
    return 0;
}

static int pool_zones_read(json_t *zones, json_t *out_props, berth_error_t *err)
{
    if (zones == NULL)
        return 0;
    if (!json_is_array(zones) || json_array_size(zones) > BERTH_POOL_ZONES_MAX)
        return berth_error_set(err, BERTH_EINVAL, "InvalidZones", "properties.zones",
                               "properties.zones must be an array of at most %d zone names",
                               BERTH_POOL_ZONES_MAX);
    size_t i;
    json_t *z;
    json_array_foreach(zones, i, z)
    {
        const char *s = json_string_value(z);
        bool ok = s != NULL && s[0] != '\0' && strlen(s) <= BERTH_NAME_MAX;
        for (size_t c = 0; ok && s[c] != '\0'; c++)
            ok = s[c] > ' ' && s[c] < 0x7f && s[c] != '"';
        for (size_t j = 0; ok && j < i; j++)
            ok = strcmp(json_string_value(json_array_get(zones, j)), s) != 0;
        if (!ok) {
            char t[BERTH_ERROR_TARGET_MAX];
            snprintf(t, sizeof t, "properties.zones[%zu]", i);
            return berth_error_set(err, BERTH_EINVAL, "InvalidZones", t,
                                   "%s must be a zone name of 1 to %d printable characters, "
                                   "each zone named once", t, BERTH_NAME_MAX);
        }
    }
    json_object_set(out_props, "zones", zones);
    return 0;
}

static int pool_elastic_read(json_t *elastic, bool patch, json_t *out_props,
                             bd_pool_body_t *out, berth_error_t *err)
{
    static const char *const ek[] = {"maxReadyCapacity", "refillPolicy", "dynamicSizing", NULL};
    int rc = object_check(elastic, POOL_ELASTIC_PATH, err);
    if (rc == 0 && elastic == NULL && !patch)
        rc = berth_error_set(err, BERTH_EINVAL, "InvalidMaxReadyCapacity",
                             POOL_ELASTIC_PATH ".maxReadyCapacity",
                             POOL_ELASTIC_PATH ".maxReadyCapacity is required");
    if (rc < 0 || elastic == NULL)
        return rc;
    if ((rc = members_check(elastic, POOL_ELASTIC_PATH, ek, "a standby pool's elasticityProfile",
                            err)) < 0)
        return rc;
    json_t *refill = json_object_get(elastic, "refillPolicy");
    if (refill != NULL && (!json_is_string(refill) ||
                           strcasecmp(json_string_value(refill), "always") != 0))
        return berth_error_set(err, BERTH_EINVAL, "InvalidRefillPolicy",
                               POOL_ELASTIC_PATH ".refillPolicy",
                               "refillPolicy must be \"always\": Berth refills a pool as soon "
                               "as a member is claimed");
    json_t *dyn = json_object_get(elastic, "dynamicSizing");
    static const char *const dk[] = {"enabled", NULL};
    if ((rc = object_check(dyn, POOL_ELASTIC_PATH ".dynamicSizing", err)) < 0 ||
        (dyn != NULL && (rc = members_check(dyn, POOL_ELASTIC_PATH ".dynamicSizing", dk,
                                            "dynamicSizing", err)) < 0))
        return rc;
    json_t *enabled = json_object_get(dyn, "enabled");
    if (enabled != NULL && !json_is_boolean(enabled))
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent",
                               POOL_ELASTIC_PATH ".dynamicSizing.enabled",
                               POOL_ELASTIC_PATH ".dynamicSizing.enabled must be a boolean");
    json_t *cap = json_object_get(elastic, "maxReadyCapacity");
    int64_t size = 0;
    if (cap != NULL || !patch) {
        rc = count_read(cap, POOL_ELASTIC_PATH ".maxReadyCapacity", "InvalidMaxReadyCapacity",
                        0, BERTH_POOL_SIZE_MAX, &size, err);
        if (rc < 0)
            return rc;
        out->has_size = true;
        out->size = (uint32_t)size;
    }
    json_t *e = json_object();
    if (e == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    if (out->has_size)
        json_object_set_new(e, "maxReadyCapacity", json_integer(size));
    json_object_set_new(e, "refillPolicy", json_string("always"));
    if (dyn != NULL)
        json_object_set(e, "dynamicSizing", dyn);
    json_object_set_new(out_props, "elasticityProfile", e);
    return 0;
}

static int pool_body_parse(json_t *body, bool patch, bd_pool_body_t *out, berth_error_t *err)
{
    /* What a GET answers may come back in a PUT: read-only members are
     * accepted and ignored; members no pool has are refused. */
    static const char *const top[] = {"location", "tags", "properties", "id", "name", "type",
                                      "systemData", NULL};
    static const char *const ptop[] = {"tags", "properties", NULL};
    static const char *const pk[] = {"elasticityProfile", "containerGroupProperties", "zones",
                                     "provisioningState", NULL};
    static const char *const ck[] = {"containerGroupProfile", "subnetIds", NULL};
    int rc = members_check(body, "", patch ? ptop : top, "a standby pool", err);
    if (rc < 0)
        return rc;
    json_t *props = json_object_get(body, "properties");
    rc = object_check(props, "properties", err);
    if (rc == 0 && props == NULL && !patch)
        rc = berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", "properties",
                             "a standby pool needs properties");
    if (rc == 0 && props != NULL)
        rc = members_check(props, "properties", pk, "a standby pool's properties", err);
    if (rc < 0)
        return rc;
    json_t *loc = json_object_get(body, "location");
    const char *location = json_string_value(loc);
    if (loc != NULL && (location == NULL || !bd_valid_location(location)))
        return berth_error_set(err, BERTH_EINVAL, "InvalidLocation", "location",
                               "a location is 1 to %d letters, digits and spaces",
                               BD_LOCATION_MAX);
    if (!patch && loc == NULL)
        return berth_error_set(err, BERTH_EINVAL, "LocationRequired", "location",
                               "a standby pool needs a location");
    json_t *tags = json_object_get(body, "tags");
    if (tags != NULL) {
        const char *k;
        json_t *v;
        bool ok = json_is_object(tags) && json_object_size(tags) <= 50;
        json_object_foreach(tags, k, v) ok = ok && json_is_string(v) && strlen(k) <= 512 &&
                                             strlen(json_string_value(v)) <= 256;
        if (!ok)
            return berth_error_set(err, BERTH_EINVAL, "InvalidTags", "tags",
                                   "tags must be an object of at most 50 string values");
    }
    json_t *res = json_object(), *rprops = json_object(), *rcgp = json_object();
    if (res == NULL || rprops == NULL || rcgp == NULL) {
        json_decref(res), json_decref(rprops), json_decref(rcgp);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    if (location != NULL)
        json_object_set_new(res, "location", json_string(location));
    if (tags != NULL)
        json_object_set(res, "tags", tags);
    json_t *cgp = json_object_get(props, "containerGroupProperties");
    rc = pool_elastic_read(json_object_get(props, "elasticityProfile"), patch, rprops, out, err);
    if (rc == 0)
        rc = object_check(cgp, "properties.containerGroupProperties", err);
    if (rc == 0 && cgp == NULL && !patch)
        rc = pool_profile_read(NULL, false, rcgp, out, err);
    if (rc == 0 && cgp != NULL)
        rc = members_check(cgp, "properties.containerGroupProperties", ck,
                           "a standby pool's containerGroupProperties", err);
    if (rc == 0 && cgp != NULL)
        rc = pool_profile_read(json_object_get(cgp, "containerGroupProfile"), patch, rcgp, out,
                               err);
    if (rc == 0 && cgp != NULL)
        rc = pool_subnets_read(json_object_get(cgp, "subnetIds"), rcgp, err);
    if (rc == 0)
        rc = pool_zones_read(json_object_get(props, "zones"), rprops, err);
    if (rc == 0 && json_object_size(rcgp) > 0)
        json_object_set(rprops, "containerGroupProperties", rcgp);
    json_decref(rcgp);
    if (rc == 0 && (json_object_size(rprops) > 0 || !patch))
        json_object_set(res, "properties", rprops);
    json_decref(rprops);
    if (rc == 0 && (out->resource_json = json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER)) ==
                       NULL)
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    json_decref(res);
    return rc;
}

static int pool_read_any(const char *text, size_t len, bool patch, bd_pool_body_t *out,
                         berth_error_t *err)
{
    memset(out, 0, sizeof *out);
    json_t *body = NULL;
    int rc = object_load(text, len, &body, err);
    if (rc == 0)
        rc = pool_body_parse(body, patch, out, err);
    json_decref(body);
    if (rc < 0)
        bd_pool_body_free(out);
    return rc;
}

/* Contract: bodies.h. */
int bd_pool_body_read(const char *text, size_t len, bd_pool_body_t *out, berth_error_t *err)
{
    return pool_read_any(text, len, false, out, err);
}

/* Contract: bodies.h. */
int bd_pool_patch_read(const char *text, size_t len, bd_pool_body_t *out, berth_error_t *err)
{
    return pool_read_any(text, len, true, out, err);
}

/* Contract: bodies.h. */
void bd_pool_body_free(bd_pool_body_t *body)
{
    if (body == NULL)
        return;
    free(body->profile_id);
    free(body->resource_json);
    memset(body, 0, sizeof *body);
}

static void pool_target_map(char *t, bool unused)
{
    (void)unused;
    if (strncmp(t, "template", 8) == 0)
        target_rewrite(t, POOL_PROFILE_PATH, 8);
}

/* Contract: bodies.h. */
void bd_pool_error_map(berth_error_t *err)
{
    targets_map(err, pool_target_map, false);
}
