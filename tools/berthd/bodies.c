/*
 * bodies.c: berthd's readers of NGroup and standby-pool request bodies
 * (contracts in bodies.h).  Pure: bytes in, a spec or a berth_error_t out,
 * no I/O; they never look at the cell, so what depends on it (zones of
 * its hosts, the template against its engine) is left to the library's
 * put, whose targets bd_ngroup_error_map()/bd_pool_error_map() turn into
 * the body's paths.
 *
 * NGroup bodies are ACI's NGroup (2025-09-01).  Unknown members are
 * refused, at every level berthd reads (ACI's own members that Berth does
 * not implement would otherwise be silently ignored), and so are Berth's
 * former ones, naming what to use instead; read-only members a GET
 * answers (id, name, type, systemData, provisioningState, status) are
 * accepted and ignored, so that a GET body can be sent back.
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
#define ELASTIC_PATH "properties.elasticProfile"
#define DESIRED_PATH ELASTIC_PATH ".desiredCount"
#define NAMING_PATH ELASTIC_PATH ".containerGroupNamingPolicy"
#define PREFIX_PATH NAMING_PATH ".guidNamingPolicy.prefix"
#define UPDATE_PATH "properties.updateProfile"
#define ROLLING_PATH UPDATE_PATH ".rollingUpdateProfile"
#define PLACEMENT_PATH "properties.placementProfile"
#define FAULT_PATH PLACEMENT_PATH ".faultDomainCount"
#define PROFILES_PATH "properties.containerGroupProfiles"

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

/* Reads an ISO 8601 duration (PnW, or P[nD][T[nH][nM][n[.f]S]]; only the
 * last component may have a fraction) into *ms.  Years and months have
 * no fixed length and are refused.  Returns 0, or BERTH_EINVAL naming
 * `path`. */
static int duration_read(const char *text, const char *path, uint64_t *ms, berth_error_t *err)
{
    const char *p = text;
    double total = 0;
    bool in_time = false, any = false, fraction = false;
    const char *order = "WDHMS";
    const char *last = NULL;      /* the last designator seen, in `order` */
    if (*p++ != 'P')
        goto bad;
    while (*p != '\0') {
        if (*p == 'T') {
            if (in_time)
                goto bad;
            in_time = true;
            p++;
            if (*p == '\0')
                goto bad;
            continue;
        }
        if (fraction)
            goto bad;             /* a fraction only on the last component */
        char *end = NULL;
        if (*p < '0' || *p > '9')
            goto bad;
        double v = strtod(p, &end);
        if (end == p || v < 0 || v > 1e9)
            goto bad;
        for (const char *q = p; q < end; q++)
            if (*q == '.' || *q == ',')
                fraction = true;
            else if (*q < '0' || *q > '9')
                goto bad;         /* no exponents, no signs */
        char d = *end;
        if (d == 'Y' || (d == 'M' && !in_time))
            return berth_error_set(err, BERTH_EINVAL, "InvalidDuration", path,
                                   "%s: years and months have no fixed length; give the pause "
                                   "in weeks, days, hours, minutes or seconds (e.g. PT30S)",
                                   path);
        double unit = d == 'W' && !in_time ? 604800.0
                    : d == 'D' && !in_time ? 86400.0
                    : d == 'H' && in_time  ? 3600.0
                    : d == 'M' && in_time  ? 60.0
                    : d == 'S' && in_time  ? 1.0
                                           : -1;
        const char *at = d != '\0' ? strchr(order, d) : NULL;
        if (unit < 0 || at == NULL || (last != NULL && at <= last) ||
            (d == 'W' && any))
            goto bad;
        last = at;
        total += v * unit;
        any = true;
        p = end + 1;
        if (d == 'W' && *p != '\0')
            goto bad;
    }
    if (!any || total > 1e12)
        goto bad;
    *ms = (uint64_t)(total * 1000.0 + 0.5);
    return 0;
bad:
    return berth_error_set(err, BERTH_EINVAL, "InvalidDuration", path,
                           "%s must be an ISO 8601 duration such as PT30S, PT5M or P1DT2H, "
                           "not '%.40s'",
                           path, text);
}

/* Reads a boolean at `path` (absent: *out unchanged). */
static int bool_read(json_t *v, const char *path, bool *out, berth_error_t *err)
{
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v))
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", path,
                               "%s must be true or false", path);
    *out = json_is_true(v);
    return 0;
}

static int ngroup_elastic_read(json_t *elastic, bd_ngroup_body_t *out, berth_error_t *err)
{
    static const char *const ek[] = {"desiredCount", "maintainDesiredCount",
                                     "containerGroupNamingPolicy", NULL};
    static const char *const nk[] = {"guidNamingPolicy", NULL};
    static const char *const gk[] = {"prefix", NULL};
    int rc = object_check(elastic, ELASTIC_PATH, err);
    if (rc == 0 && elastic != NULL)
        rc = members_check(elastic, ELASTIC_PATH, ek, "an NGroup's elasticProfile", err);
    if (rc < 0)
        return rc;
    json_t *desired = json_object_get(elastic, "desiredCount");
    if (desired != NULL &&
        (rc = count_read(desired, DESIRED_PATH, "InvalidDesiredCount", 0,
                         BERTH_NGROUP_MEMBERS_MAX, &out->desired, err)) < 0)
        return rc;
    out->maintain_desired_count = true;
    if ((rc = bool_read(json_object_get(elastic, "maintainDesiredCount"),
                        ELASTIC_PATH ".maintainDesiredCount", &out->maintain_desired_count,
                        err)) < 0)
        return rc;
    json_t *naming = json_object_get(elastic, "containerGroupNamingPolicy");
    json_t *guid = json_object_get(naming, "guidNamingPolicy");
    if ((rc = object_check(naming, NAMING_PATH, err)) < 0 ||
        (naming != NULL &&
         (rc = members_check(naming, NAMING_PATH, nk, "a containerGroupNamingPolicy", err)) < 0) ||
        (rc = object_check(guid, NAMING_PATH ".guidNamingPolicy", err)) < 0 ||
        (guid != NULL && (rc = members_check(guid, NAMING_PATH ".guidNamingPolicy", gk,
                                             "a guidNamingPolicy", err)) < 0))
        return rc;
    json_t *prefix = json_object_get(guid, "prefix");
    if (prefix != NULL) {
        const char *t = json_string_value(prefix);
        size_t len = t != NULL ? strlen(t) : 0;
        bool ok = t != NULL && len <= BERTH_NGROUP_NAME_MAX - 1;
        for (size_t i = 0; ok && i < len; i++)
            ok = (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') ||
                 (t[i] == '-' && i > 0);
        if (!ok)
            return berth_error_set(err, BERTH_EINVAL, "InvalidNamePrefix", PREFIX_PATH,
                                   "%s must be lowercase letters, digits and '-' (not first), "
                                   "at most %d characters",
                                   PREFIX_PATH, BERTH_NGROUP_NAME_MAX - 1);
        out->prefix = t;
    }
    return 0;
}

static int ngroup_update_read(json_t *update, bd_ngroup_body_t *out, berth_error_t *err)
{
    static const char *const uk[] = {"updateMode", "rollingUpdateProfile", NULL};
    static const char *const rk[] = {"maxBatchPercent", "maxUnhealthyPercent",
                                     "pauseTimeBetweenBatches", "inPlaceUpdate", NULL};
    out->manual = true;
    out->batch_percent = BD_NGROUP_BATCH_PERCENT_DEFAULT;
    if (update == NULL)
        return 0;
    int rc = object_check(update, UPDATE_PATH, err);
    if (rc == 0)
        rc = members_check(update, UPDATE_PATH, uk, "an NGroup's updateProfile", err);
    if (rc < 0)
        return rc;
    json_t *mode = json_object_get(update, "updateMode");
    const char *m = json_string_value(mode);
    if (mode != NULL && (m == NULL || (strcmp(m, "Rolling") != 0 && strcmp(m, "Manual") != 0)))
        return berth_error_set(err, BERTH_EINVAL, "InvalidUpdateMode", UPDATE_PATH ".updateMode",
                               UPDATE_PATH ".updateMode must be 'Manual' or 'Rolling'");
    out->manual = m == NULL || strcmp(m, "Manual") == 0;
    json_t *rolling = json_object_get(update, "rollingUpdateProfile");
    rc = object_check(rolling, ROLLING_PATH, err);
    if (rc == 0 && rolling != NULL && json_object_get(rolling, "maxUnavailable") != NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent",
                               ROLLING_PATH ".maxUnavailable",
                               "%s.maxUnavailable is not ACI's: bound a rollout with "
                               "maxBatchPercent (and maxUnhealthyPercent) instead",
                               ROLLING_PATH);
    if (rc == 0 && rolling != NULL)
        rc = members_check(rolling, ROLLING_PATH, rk, "an NGroup's rollingUpdateProfile", err);
    if (rc < 0)
        return rc;
    int64_t v = BD_NGROUP_BATCH_PERCENT_DEFAULT;
    json_t *x = json_object_get(rolling, "maxBatchPercent");
    if (x != NULL && (rc = count_read(x, ROLLING_PATH ".maxBatchPercent",
                                      "InvalidMaxBatchPercent", 1, 100, &v, err)) < 0)
        return rc;
    out->batch_percent = (uint32_t)v;
    x = json_object_get(rolling, "maxUnhealthyPercent");
    if (x != NULL) {
        if ((rc = count_read(x, ROLLING_PATH ".maxUnhealthyPercent",
                             "InvalidMaxUnhealthyPercent", 0, 100, &v, err)) < 0)
            return rc;
        out->has_unhealthy = true;
        out->unhealthy_percent = (uint32_t)v;
    }
    x = json_object_get(rolling, "pauseTimeBetweenBatches");
    if (x != NULL) {
        const char *path = ROLLING_PATH ".pauseTimeBetweenBatches";
        uint64_t ms = 0;
        if (!json_is_string(x))
            return berth_error_set(err, BERTH_EINVAL, "InvalidDuration", path,
                                   "%s must be an ISO 8601 duration (a string such as PT30S)",
                                   path);
        if ((rc = duration_read(json_string_value(x), path, &ms, err)) < 0)
            return rc;
        if (ms > BD_NGROUP_PAUSE_MAX_MS)
            return berth_error_set(err, BERTH_EINVAL, "InvalidDuration", path,
                                   "%s is at most one day (P1D)", path);
        out->pause_ms = (uint32_t)ms;
    }
    return bool_read(json_object_get(rolling, "inPlaceUpdate"), ROLLING_PATH ".inPlaceUpdate",
                     &out->in_place, err);
}

static int ngroup_zones_read(json_t *body, bd_ngroup_body_t *out, berth_error_t *err)
{
    json_t *z = json_object_get(body, "zones");
    if (z == NULL)
        return 0;
    if (!json_is_array(z) || json_array_size(z) > BERTH_NGROUP_ZONES_MAX)
        return berth_error_set(err, BERTH_EINVAL, "InvalidZones", "zones",
                               "zones must be an array of at most %d zone names",
                               BERTH_NGROUP_ZONES_MAX);
    for (size_t i = 0; i < json_array_size(z); i++) {
        out->zones[i] = json_string_value(json_array_get(z, i));
        if (out->zones[i] == NULL) {
            char t[48];
            snprintf(t, sizeof t, "zones[%zu]", i);
            return berth_error_set(err, BERTH_EINVAL, "InvalidZone", t, "a zone is a string");
        }
    }
    out->nzones = json_array_size(z);
    return 0;
}

static int ngroup_profiles_read(json_t *profiles, bd_ngroup_body_t *out, berth_error_t *err)
{
    static const char *const sk[] = {"resource", "revision", "containerGroupProperties",
                                     "networkProfile", "storageProfile", NULL};
    static const char *const rk[] = {"id", NULL};
    static const char *const ck[] = {"subnetIds", "volumes", "containers", NULL};
    if (profiles == NULL)
        return 0;
    if (!json_is_array(profiles))
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", PROFILES_PATH,
                               "%s must be an array", PROFILES_PATH);
    if (json_array_size(profiles) > 1)
        return berth_error_set(err, BERTH_EINVAL, "InvalidContainerGroupProfiles",
                               PROFILES_PATH "[1]",
                               "Berth runs one container group profile per NGroup: %s holds "
                               "at most one element",
                               PROFILES_PATH);
    json_t *stub = json_array_get(profiles, 0);
    if (stub == NULL)
        return 0;
    const char *p0 = PROFILES_PATH "[0]";
    int rc = object_check(stub, p0, err);
    if (rc == 0 && stub == NULL)
        return 0;
    if (rc == 0 && !json_is_object(stub))
        rc = berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", p0,
                             "%s must be an object", p0);
    if (rc == 0)
        rc = members_check(stub, p0, sk, "a containerGroupProfiles element", err);
    json_t *res = json_object_get(stub, "resource");
    if (rc == 0 && !json_is_object(res))
        rc = berth_error_set(err, BERTH_EINVAL, "InvalidContainerGroupProfiles",
                             PROFILES_PATH "[0].resource",
                             "%s[0].resource must be an object {\"id\": the ARM id of a "
                             "container group profile}",
                             PROFILES_PATH);
    if (rc == 0)
        rc = members_check(res, PROFILES_PATH "[0].resource", rk, "a profile reference", err);
    if (rc < 0)
        return rc;
    out->profile_id = json_string_value(json_object_get(res, "id"));
    if (out->profile_id == NULL || out->profile_id[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidContainerGroupProfiles",
                               PROFILES_PATH "[0].resource.id",
                               "%s[0].resource.id must be the ARM id of a container group "
                               "profile",
                               PROFILES_PATH);
    json_t *rev = json_object_get(stub, "revision");
    if (rev != NULL) {
        int64_t r = 0;
        if ((rc = count_read(rev, PROFILES_PATH "[0].revision", "InvalidRevision", 1, INT32_MAX,
                             &r, err)) < 0)
            return rc;
        out->profile_revision = (uint64_t)r;
    }
    const char *cp = PROFILES_PATH "[0].containerGroupProperties";
    json_t *cgp = json_object_get(stub, "containerGroupProperties");
    if ((rc = object_check(cgp, cp, err)) < 0 ||
        (cgp != NULL &&
         (rc = members_check(cgp, cp, ck, "an NGroup's containerGroupProperties", err)) < 0) ||
        (rc = object_check(json_object_get(stub, "networkProfile"),
                           PROFILES_PATH "[0].networkProfile", err)) < 0 ||
        (rc = object_check(json_object_get(stub, "storageProfile"),
                           PROFILES_PATH "[0].storageProfile", err)) < 0)
        return rc;
    if (cgp != NULL) {
        json_t *o = json_pack("{s:O}", "properties", cgp);
        out->overlay_json = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (out->overlay_json == NULL)
            return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    return 0;
}

static int ngroup_put_read(json_t *body, const char *sub, const char *rg,
                           bd_ngroup_body_t *out, berth_error_t *err)
{
    /* What a GET answers may come back: read-only members are accepted
     * and ignored. */
    static const char *const top[] = {"location", "tags", "zones", "properties", "identity",
                                      "id", "name", "type", "systemData", NULL};
    static const char *const pk[] = {"elasticProfile", "updateProfile", "placementProfile",
                                     "containerGroupProfiles", "provisioningState", "status",
                                     NULL};
    static const char *const plk[] = {"faultDomainCount", NULL};
    json_t *props = json_object_get(body, "properties");
    /* Berth's former members, refused with what to use instead. */
    if (json_object_get(props, "containerGroupProfile") != NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent",
                               "properties.containerGroupProfile",
                               "properties.containerGroupProfile (an inline template) is not "
                               "ACI's: name a container group profile in "
                               "properties.containerGroupProfiles[0].resource.id");
    if (json_object_get(props, "zones") != NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", "properties.zones",
                               "properties.zones is not ACI's: give the zones at the top "
                               "level (zones)");
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
    json_t *identity = json_object_get(body, "identity");
    if ((rc = object_check(identity, "identity", err)) < 0)
        return rc;
    if (!json_is_object(props))
        return berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", "properties",
                               "an NGroup needs its properties (an object)");
    rc = members_check(props, "properties", pk, "an NGroup's properties", err);
    if (rc == 0)
        rc = ngroup_elastic_read(json_object_get(props, "elasticProfile"), out, err);
    if (rc == 0)
        rc = ngroup_update_read(json_object_get(props, "updateProfile"), out, err);
    if (rc == 0)
        rc = ngroup_zones_read(body, out, err);
    json_t *placement = json_object_get(props, "placementProfile");
    if (rc == 0)
        rc = object_check(placement, PLACEMENT_PATH, err);
    if (rc == 0 && placement != NULL)
        rc = members_check(placement, PLACEMENT_PATH, plk, "an NGroup's placementProfile", err);
    json_t *fd = json_object_get(placement, "faultDomainCount");
    int64_t fdc = 0;
    if (rc == 0 && fd != NULL)
        rc = count_read(fd, FAULT_PATH, "InvalidFaultDomainCount", 1, BERTH_NGROUP_MEMBERS_MAX,
                        &fdc, err);
    out->fault_domains = (uint32_t)fdc;
    if (rc == 0)
        rc = ngroup_profiles_read(json_object_get(props, "containerGroupProfiles"), out, err);
    if (rc < 0)
        return rc;
    /* What is kept: the body without its read-only members. */
    json_t *kept = json_deep_copy(body);
    json_t *meta = json_pack("{s:s, s:s, s:s}", "location", location, "subscription", sub,
                             "resourceGroup", rg);
    if (kept != NULL && meta != NULL) {
        static const char *const ro[] = {"id", "name", "type", "systemData"};
        for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++)
            json_object_del(kept, ro[i]);
        json_object_del(json_object_get(kept, "properties"), "provisioningState");
        json_object_del(json_object_get(kept, "properties"), "status");
        json_object_set(meta, "body", kept);
    }
    json_decref(kept);
    out->metadata_json = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    if (out->metadata_json == NULL)
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
    free(body->overlay_json);
    free(body->metadata_json);
    json_decref(body->doc);
    memset(body, 0, sizeof *body);
}

/* Contract: bodies.h. */
int bd_ngroup_profile_ref(const char *text, size_t len, bool patch, char **id,
                          uint64_t *revision, berth_error_t *err)
{
    *id = NULL;
    *revision = 0;
    bd_ngroup_body_t b;
    int rc;
    if (!patch) {
        rc = bd_ngroup_body_read(text, len, "", "", &b, err);
    } else {
        json_t *doc = NULL;
        rc = object_load(text, len, &doc, err);
        json_t *props = json_object_get(doc, "properties");
        json_t *profiles = json_is_object(props)
                               ? json_object_get(props, "containerGroupProfiles")
                               : NULL;
        if (rc < 0 || profiles == NULL) {
            /* Nothing to resolve: the worker reads the rest. */
            json_decref(doc);
            berth_error_clear(err);
            return 0;
        }
        /* Read as a PUT body holding those profiles: the same paths. */
        json_t *put = json_pack("{s:s, s:{s:O}}", "location", "any", "properties",
                                "containerGroupProfiles", profiles);
        char *t = put != NULL ? json_dumps(put, JSON_COMPACT) : NULL;
        json_decref(put);
        json_decref(doc);
        if (t == NULL)
            return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        rc = bd_ngroup_body_read(t, strlen(t), "", "", &b, err);
        free(t);
    }
    if (rc < 0)
        return rc;
    if (b.profile_id != NULL) {
        *id = strdup(b.profile_id);
        *revision = b.profile_revision;
        rc = *id != NULL ? 1 : berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                               "out of memory");
    }
    bd_ngroup_body_free(&b);
    return rc;
}

/* ---- NGroups: PATCH -------------------------------------------------------------------- */

/* Merges `patch` into `base` (objects member by member, recursively; any
 * other value replaces). */
static void merge_into(json_t *base, json_t *patch)
{
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        json_t *b = json_object_get(base, k);
        if (json_is_object(b) && json_is_object(v))
            merge_into(b, v);
        else
            json_object_set(base, k, v);
    }
}

/* Contract: bodies.h. */
int bd_ngroup_patch_merge(const char *stored, const char *text, size_t len, char **merged,
                          berth_error_t *err)
{
    static const char *const top[] = {"tags", "zones", "identity", "properties", "systemData",
                                      NULL};
    *merged = NULL;
    json_t *patch = NULL;
    int rc = object_load(text, len, &patch, err);
    if (rc == 0)
        rc = members_check(patch, "", top, "a PATCH of an NGroup", err);
    if (rc == 0)
        rc = object_check(json_object_get(patch, "properties"), "properties", err);
    json_t *base = rc == 0 ? json_loads(stored != NULL ? stored : "{}", 0, NULL) : NULL;
    if (rc == 0 && !json_is_object(base)) {
        json_decref(base);
        base = json_object();
    }
    if (rc == 0 && base != NULL) {
        json_object_del(patch, "systemData");
        merge_into(base, patch);
        *merged = json_dumps(base, JSON_COMPACT);
    }
    if (rc == 0 && *merged == NULL)
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    json_decref(base);
    json_decref(patch);
    return rc;
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

static void ngroup_target_map(char *t, bool unused)
{
    (void)unused;
    static const struct {
        const char *lib, *path;
    } plain[] = {
        {"desiredCount", DESIRED_PATH},
        {"maxBatchPercent", ROLLING_PATH ".maxBatchPercent"},
        {"maxUnhealthyPercent", ROLLING_PATH ".maxUnhealthyPercent"},
        {"pauseBetweenBatches", ROLLING_PATH ".pauseTimeBetweenBatches"},
        {"replaceOnUpdate", ROLLING_PATH ".inPlaceUpdate"},
        {"memberPrefix", PREFIX_PATH},
        {"faultDomainCount", FAULT_PATH},
        {"name", "ngroupsName"},
        {"template", PROFILES_PATH "[0]"},
        {"metadata", ""},
        {"key", ""},                /* the NGroup itself */
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (strcmp(t, plain[i].lib) == 0) {
            target_rewrite(t, plain[i].path, strlen(t));
            return;
        }
    /* The template is the profile's document under the NGroup's
     * containerGroupProperties. */
    if (strncmp(t, "template.properties.", 20) == 0)
        target_rewrite(t, PROFILES_PATH "[0].containerGroupProperties.", 20);
    else if (strncmp(t, "template.", 9) == 0)
        target_rewrite(t, PROFILES_PATH "[0].", 9);
}

/* Contract: bodies.h. */
void bd_ngroup_error_map(berth_error_t *err)
{
    targets_map(err, ngroup_target_map, false);
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
