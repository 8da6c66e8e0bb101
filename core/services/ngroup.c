/*
 * ngroup.c: NGroups -- a container-group template kept at a desired count,
 * spread across zones and hosts, with rolling updates (berth.h, "NGroups").
 *
 * Two parts here, besides the planner (ngroup_plan.c, pure: given the
 * members, the hosts and the goal it decides one step's actions):
 *
 *  - The records: an NGroup's goal is one JSON value in the cell's HASH
 *    berth:{C}:ngroups (store.c's KEY SCHEMA), written with a
 *    compare-and-set script so that two writers never lose each other's
 *    change; the last step's note sits in berth:{C}:ngroupnotes.
 *  - The store side: put (validate everything, then one write), get
 *    (members found through the engine replica, their records and views
 *    read in two HMGETs), reconcile (describe the cell to the planner and
 *    carry the actions out through berth_store_place*() and
 *    berth_store_release()), delete and list.
 *
 * Members are found by their deterministic keys, "<key>/<name>-<n>" for n
 * below BERTH_NGROUP_MEMBERS_MAX, in the engine replica: nothing but the
 * cell's own group records says which members exist, so a scheduler that
 * crashes between two actions leaves nothing another cannot see.  Which
 * revision a member runs is read from its document's tag
 * "berth-ngroup-revision".
 *
 * This file must never place or release a group other than an NGroup's
 * members, and never change an NGroup's record except by compare-and-set.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "store.h"
#include "lib/clock.h"

#define NG_RECORD_VERSION 1
#define NG_CAS_TRIES 8
#define NG_PAUSE_MAX_MS (24u * 3600u * 1000u)
#define TAG_NGROUP "berth-ngroup"
#define TAG_REVISION "berth-ngroup-revision"

/* ---- small helpers ------------------------------------------------------------------ */

/* Runs one command; an error reply becomes BERTH_EIO.  NULL with *rc. */
static redisReply *ng_cmd(berth_store_t *s, int argc, const char **argv, const size_t *lens,
                          bool commit, const char *what, berth_error_t *err, int *rc)
{
    redisReply *r = berth__store_command(s, argc, argv, lens, commit, what, err, rc);
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        *rc = berth__error_set(err, BERTH_EIO, "RedisError", "", "Redis refused %s: %s", what,
                               r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int nomem(berth_error_t *err)
{
    return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
}

static int key_check(const char *key, berth_error_t *err)
{
    size_t n = key == NULL ? 0 : strnlen(key, BERTH_NGROUP_KEY_MAX + 1);
    if (n == 0 || n > BERTH_NGROUP_KEY_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidNGroupKey", "key",
                                "an NGroup key is 1 to %d bytes", BERTH_NGROUP_KEY_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
            return berth__error_set(err, BERTH_EINVAL, "InvalidNGroupKey", "key",
                                    "an NGroup key may not hold control characters");
    return 0;
}

static void member_name(const char *name, uint32_t i, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s-%" PRIu32, BERTH_NGROUP_NAME_MAX, name, i);
}

static void member_key(const char *key, const char *name, uint32_t i, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s-%" PRIu32, key, name, i);
}

/* Rewrites target (BERTH_ERROR_TARGET_MAX bytes) as "<prefix>.<target>",
 * truncated to fit. */
static void target_prefix(char *target, const char *prefix)
{
    char t[2 * BERTH_ERROR_TARGET_MAX];
    snprintf(t, sizeof t, "%s%s%s", prefix, target[0] ? "." : "", target);
    size_t len = strnlen(t, BERTH_ERROR_TARGET_MAX - 1);
    memcpy(target, t, len);
    target[len] = '\0';
}

/* Prefixes every target of *err with `prefix` (a failing nested check). */
static void error_prefix(berth_error_t *err, const char *prefix)
{
    if (err == NULL)
        return;
    target_prefix(err->target, prefix);
    for (size_t i = 0; i < err->ndetails && i < BERTH_ERROR_DETAILS_MAX; i++)
        target_prefix(err->details[i].target, prefix);
}

/* ---- the NGroup record ---------------------------------------------------------------- */

/* An NGroup's record as stored: JSON {v, key, name, template (the
 * canonical document text), desired, maxUnavailable, zones, revision,
 * deleting, metadata?, and, each absent in a record of before them (the
 * former behaviour): batchPercent, unhealthyPercent (-1: none), pauseMs,
 * replace, prefix, faultDomains, stopped}. */
typedef struct ng_record {
    char *raw;                      /* the record's bytes as read (for CAS)  */
    json_t *json;
    const char *key, *name, *template_json;
    uint32_t desired, max_unavailable;
    json_t *zones;                  /* borrowed from json                   */
    uint64_t revision;
    bool deleting;
    json_t *metadata;               /* borrowed, or NULL                    */
    uint32_t batch_percent, pause_ms, fault_domains;
    int32_t unhealthy_percent;
    bool replace, stopped, manual;
    const char *prefix;             /* "" for none                          */
    char stem[BERTH_NAME_MAX + 1];  /* prefix then name: members' names' stem */
} ng_record_t;

static void record_clear(ng_record_t *r)
{
    free(r->raw);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static int record_decode(ng_record_t *r, const char *key, berth_error_t *err)
{
    json_error_t je;
    r->json = json_loads(r->raw, 0, &je);
    json_t *j = r->json;
    const char *t = json_string_value(json_object_get(j, "template"));
    json_t *zones = json_object_get(j, "zones");
    if (j == NULL || json_integer_value(json_object_get(j, "v")) != NG_RECORD_VERSION ||
        json_string_value(json_object_get(j, "name")) == NULL || t == NULL ||
        !json_is_integer(json_object_get(j, "desired")) ||
        !json_is_integer(json_object_get(j, "maxUnavailable")) ||
        !json_is_integer(json_object_get(j, "revision")) || !json_is_array(zones))
        return berth__error_set(err, BERTH_EIO, "CorruptRecord", "key",
                                "the record of NGroup '%s' is not one this library reads", key);
    r->key = key;
    r->name = json_string_value(json_object_get(j, "name"));
    r->template_json = t;
    r->desired = (uint32_t)json_integer_value(json_object_get(j, "desired"));
    r->max_unavailable = (uint32_t)json_integer_value(json_object_get(j, "maxUnavailable"));
    r->zones = zones;
    r->revision = (uint64_t)json_integer_value(json_object_get(j, "revision"));
    r->deleting = json_is_true(json_object_get(j, "deleting"));
    r->metadata = json_object_get(j, "metadata");
    r->batch_percent = (uint32_t)json_integer_value(json_object_get(j, "batchPercent"));
    json_t *u = json_object_get(j, "unhealthyPercent");
    r->unhealthy_percent = json_is_integer(u) ? (int32_t)json_integer_value(u) : -1;
    r->pause_ms = (uint32_t)json_integer_value(json_object_get(j, "pauseMs"));
    r->replace = json_is_true(json_object_get(j, "replace"));
    r->prefix = json_string_value(json_object_get(j, "prefix"));
    if (r->prefix == NULL)
        r->prefix = "";
    r->fault_domains = (uint32_t)json_integer_value(json_object_get(j, "faultDomains"));
    r->stopped = json_is_true(json_object_get(j, "stopped"));
    r->manual = json_is_true(json_object_get(j, "manual"));
    snprintf(r->stem, sizeof r->stem, "%s%s", r->prefix, r->name);
    return 0;
}

/* Reads the record of `key`: 0 with *r filled, BERTH_ENOENT (r->raw NULL),
 * or another error. */
static int record_read(berth_store_t *s, const char *key, ng_record_t *r, berth_error_t *err)
{
    memset(r, 0, sizeof *r);
    char hk[BERTH__KEYNAME_MAX];
    berth__store_key(s, hk, sizeof hk, "ngroups", "");
    const char *argv[] = {"HGET", hk, key};
    int rc;
    redisReply *x = ng_cmd(s, 3, argv, NULL, false, "reading an NGroup", err, &rc);
    if (x == NULL)
        return rc;
    if (x->type != REDIS_REPLY_STRING) {
        freeReplyObject(x);
        return berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                                "NGroup '%s' was not found", key);
    }
    r->raw = strndup(x->str, x->len);
    freeReplyObject(x);
    if (r->raw == NULL)
        return nomem(err);
    rc = record_decode(r, key, err);
    if (rc != 0)
        record_clear(r);
    return rc;
}

/* Replaces the record of `key` with `value` (NULL: removes it) when it is
 * still `expect` (NULL: absent).  Returns 1 when written, 0 when another
 * writer came first, or a negative code. */
static int record_cas(berth_store_t *s, const char *key, const char *expect, const char *value,
                      berth_error_t *err)
{
    static const char script[] =
        "local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''\n"
        "if cur ~= ARGV[2] then return 0 end\n"
        "if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])\n"
        "else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end\n"
        "return 1\n";
    char hk[BERTH__KEYNAME_MAX];
    berth__store_key(s, hk, sizeof hk, "ngroups", "");
    const char *argv[] = {"EVAL", script, "1", hk, key, expect ? expect : "", value ? value : ""};
    int rc;
    redisReply *x = ng_cmd(s, 7, argv, NULL, true, "writing an NGroup", err, &rc);
    if (x == NULL)
        return rc;
    rc = x->type == REDIS_REPLY_INTEGER && x->integer == 1 ? 1 : 0;
    freeReplyObject(x);
    return rc;
}

/* Sets (or with "" clears) the NGroup's note. */
static int note_write(berth_store_t *s, const char *key, const char *note, berth_error_t *err)
{
    char hk[BERTH__KEYNAME_MAX];
    berth__store_key(s, hk, sizeof hk, "ngroupnotes", "");
    const char *set[] = {"HSET", hk, key, note};
    const char *del[] = {"HDEL", hk, key};
    int rc;
    redisReply *x = note[0] ? ng_cmd(s, 4, set, NULL, false, "writing an NGroup's note", err, &rc)
                            : ng_cmd(s, 3, del, NULL, false, "writing an NGroup's note", err, &rc);
    if (x == NULL)
        return rc;
    freeReplyObject(x);
    return 0;
}

/* The field of berth:{C}:ngroupnotes holding the pace of `key`'s rollout:
 * the key, then a unit separator (an NGroup key holds no control bytes). */
static void pace_key(const char *key, char *out, size_t cap)
{
    snprintf(out, cap, "%s\x1fpace", key);
}

/* Records the pace: a batch of `revision` started (since_ms 0), or it was
 * first seen available at since_ms. */
static int pace_write(berth_store_t *s, const char *key, uint64_t revision, int64_t since_ms,
                      berth_error_t *err)
{
    char hk[BERTH__KEYNAME_MAX], field[BERTH_NGROUP_KEY_MAX + 8], value[64];
    berth__store_key(s, hk, sizeof hk, "ngroupnotes", "");
    pace_key(key, field, sizeof field);
    snprintf(value, sizeof value, "%" PRIu64 " %" PRId64, revision, since_ms);
    const char *argv[] = {"HSET", hk, field, value};
    int rc;
    redisReply *x = ng_cmd(s, 4, argv, NULL, false, "writing an NGroup's pace", err, &rc);
    if (x == NULL)
        return rc;
    freeReplyObject(x);
    return 0;
}

/* Removes the pace of `key`'s rollout (the NGroup is gone). */
static int pace_drop(berth_store_t *s, const char *key, berth_error_t *err)
{
    char hk[BERTH__KEYNAME_MAX], field[BERTH_NGROUP_KEY_MAX + 8];
    berth__store_key(s, hk, sizeof hk, "ngroupnotes", "");
    pace_key(key, field, sizeof field);
    const char *argv[] = {"HDEL", hk, field};
    int rc;
    redisReply *x = ng_cmd(s, 3, argv, NULL, false, "writing an NGroup's pace", err, &rc);
    if (x == NULL)
        return rc;
    freeReplyObject(x);
    return 0;
}

/* ---- member documents ----------------------------------------------------------------- */

/* The document of member i: the template with its name, zone and tags.
 * A new string (free()), or NULL for want of memory or a template that is
 * not an object. */
static char *member_doc(const char *template_json, const char *key, const char *name,
                        uint32_t i, const char *zone, uint64_t revision)
{
    json_t *d = json_loads(template_json, 0, NULL);
    if (!json_is_object(d)) {
        json_decref(d);
        return NULL;
    }
    char mname[BERTH_NAME_MAX + 1], rev[24];
    member_name(name, i, mname, sizeof mname);
    snprintf(rev, sizeof rev, "%" PRIu64, revision);
    json_object_set_new(d, "name", json_string(mname));
    if (zone != NULL)
        json_object_set_new(d, "zones", json_pack("[s]", zone));
    json_t *tags = json_object_get(d, "tags");
    if (!json_is_object(tags)) {
        tags = json_object();
        json_object_set_new(d, "tags", tags);
    }
    json_object_set_new(tags, TAG_NGROUP, json_string(key));
    json_object_set_new(tags, TAG_REVISION, json_string(rev));
    char *out = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    return out;
}

/* The revision a member document's tag names, or 0. */
static uint64_t doc_revision(const char *spec, size_t len)
{
    if (spec == NULL)
        return 0;
    json_t *d = json_loadb(spec, len, 0, NULL);
    const char *v = json_string_value(json_object_get(json_object_get(d, "tags"), TAG_REVISION));
    uint64_t rev = v != NULL ? strtoull(v, NULL, 10) : 0;
    json_decref(d);
    return rev;
}

/* ---- put ----------------------------------------------------------------------------- */

static bool zone_known(berth_engine_t *e, const char *zone)
{
    size_t n = berth_engine_host_count(e);
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        if (berth_engine_host_at(e, i, &h, NULL) == 0 && h.zone != NULL &&
            strcmp(h.zone, zone) == 0)
            return true;
    }
    return false;
}

/* Checks every field of *spec but the template; each violation is added
 * to *err.  Returns 0 or BERTH_EINVAL. */
static int spec_check(berth_engine_t *e, const berth_ngroup_spec_t *spec, berth_error_t *err)
{
    int rc = 0;
    if (key_check(spec->key, err) < 0)
        rc = BERTH_EINVAL;
    if (spec->name == NULL || !berth__name_is_valid(spec->name, BERTH_NGROUP_NAME_MAX))
        rc = berth__error_add(err, BERTH_EINVAL, "InvalidNGroupName", "name",
                              "an NGroup's name is 1 to %d lowercase letters, digits or '-', "
                              "not starting or ending with '-'",
                              BERTH_NGROUP_NAME_MAX);
    if (spec->desired < 0 || spec->desired > BERTH_NGROUP_MEMBERS_MAX)
        rc = berth__error_add(err, BERTH_EINVAL, "InvalidDesiredCount", "desiredCount",
                              "desiredCount must be an integer from 0 to %d, not %" PRId64,
                              BERTH_NGROUP_MEMBERS_MAX, spec->desired);
    if (spec->max_unavailable < 1 || spec->max_unavailable > BERTH_NGROUP_MEMBERS_MAX)
        rc = berth__error_add(err, BERTH_EINVAL, "InvalidMaxUnavailable", "maxUnavailable",
                              "maxUnavailable must be an integer from 1 to %d, not %" PRId64,
                              BERTH_NGROUP_MEMBERS_MAX, spec->max_unavailable);
    if (spec->max_batch_percent > 100)
        rc = berth__error_add(err, BERTH_EINVAL, "InvalidMaxBatchPercent", "maxBatchPercent",
                              "maxBatchPercent must be an integer from 1 to 100, not %" PRIu32,
                              spec->max_batch_percent);
    if (spec->max_unhealthy_set && spec->max_unhealthy_percent > 100)
        rc = berth__error_add(err, BERTH_EINVAL, "InvalidMaxUnhealthyPercent",
                              "maxUnhealthyPercent",
                              "maxUnhealthyPercent must be an integer from 0 to 100, not %" PRIu32,
                              spec->max_unhealthy_percent);
    if (spec->pause_between_batches_ms > NG_PAUSE_MAX_MS)
        rc = berth__error_add(err, BERTH_EINVAL, "InvalidPauseTime", "pauseBetweenBatches",
                              "the pause between batches is at most one day");
    if (spec->replace_on_update && spec->max_batch_percent == 0)
        rc = berth__error_add(err, BERTH_EINVAL, "InvalidUpdateProfile", "replaceOnUpdate",
                              "replacing members on update needs max_batch_percent");
    if (spec->fault_domain_count > BERTH_NGROUP_MEMBERS_MAX)
        rc = berth__error_add(err, BERTH_EINVAL, "InvalidFaultDomainCount", "faultDomainCount",
                              "faultDomainCount must be an integer from 1 to %d, not %" PRIu32,
                              BERTH_NGROUP_MEMBERS_MAX, spec->fault_domain_count);
    if (spec->name != NULL && spec->member_prefix != NULL && spec->member_prefix[0] != '\0') {
        char stem[2 * BERTH_NAME_MAX];
        int len = snprintf(stem, sizeof stem, "%s%s", spec->member_prefix, spec->name);
        if (len < 0 || (size_t)len >= sizeof stem ||
            !berth__name_is_valid(stem, BERTH_NGROUP_NAME_MAX))
            rc = berth__error_add(err, BERTH_EINVAL, "InvalidNamePrefix", "memberPrefix",
                                  "a member name prefix is lowercase letters, digits or '-', "
                                  "not starting with '-', and with the NGroup's name at most "
                                  "%d characters",
                                  BERTH_NGROUP_NAME_MAX);
    }
    if (spec->nzones > BERTH_NGROUP_ZONES_MAX)
        rc = berth__error_add(err, BERTH_EINVAL, "InvalidZones", "zones",
                              "an NGroup spreads across at most %d zones", BERTH_NGROUP_ZONES_MAX);
    for (size_t i = 0; i < spec->nzones && i < BERTH_NGROUP_ZONES_MAX; i++) {
        char t[32];
        snprintf(t, sizeof t, "zones[%zu]", i);
        const char *z = spec->zones[i];
        size_t zl = z == NULL ? 0 : strnlen(z, BERTH_NAME_MAX + 1);
        if (zl == 0 || zl > BERTH_NAME_MAX) {
            rc = berth__error_add(err, BERTH_EINVAL, "InvalidZone", t,
                                  "a zone name is 1 to %d bytes", BERTH_NAME_MAX);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            if (spec->zones[j] != NULL && strcmp(spec->zones[j], z) == 0)
                dup = true;
        if (dup)
            rc = berth__error_add(err, BERTH_EINVAL, "DuplicateZone", t,
                                  "zone '%s' is listed twice", z);
        else if (!zone_known(e, z))
            rc = berth__error_add(err, BERTH_EINVAL, "UnknownZone", t,
                                  "no host of the cell is in zone '%s'", z);
    }
    if (spec->metadata_json != NULL) {
        json_t *m = json_loads(spec->metadata_json, 0, NULL);
        if (!json_is_object(m))
            rc = berth__error_add(err, BERTH_EINVAL, "InvalidMetadata", "metadata",
                                  "metadata must be a JSON object");
        json_decref(m);
    }
    return rc;
}

/* Parses and validates the template, then member 0's document; on success
 * stores the canonical template text in *canonical (berth_free()). */
static int template_check(berth_engine_t *e, const berth_ngroup_spec_t *spec, char **canonical,
                          berth_error_t *err)
{
    *canonical = NULL;
    if (spec->template_json == NULL) {
        /* None: stored as "". */
        *canonical = strdup("");
        return *canonical != NULL ? 0 : nomem(err);
    }
    berth_group_t *g = NULL;
    int rc = berth_group_parse(spec->template_json, strlen(spec->template_json), &g, err);
    if (rc == 0)
        rc = berth_engine_group_validate(e, g, err);
    if (rc == 0 && spec->nzones > 0 && g->has_zones)
        rc = berth__error_set(err, BERTH_EINVAL, "InvalidTemplate", "zones",
                              "the template may not name zones: the NGroup's zones place its "
                              "members");
    if (rc != 0) {
        error_prefix(err, "template");
        berth_group_free(g);
        return rc;
    }
    rc = berth_group_to_json(g, 0, canonical, NULL);
    berth_group_free(g);
    if (rc != 0)
        return nomem(err);
    /* The member documents carry more (name, zone, tags): check one. */
    char stem[2 * BERTH_NAME_MAX];
    snprintf(stem, sizeof stem, "%s%s", spec->member_prefix ? spec->member_prefix : "",
             spec->name);
    char *doc = member_doc(*canonical, spec->key, stem, BERTH_NGROUP_MEMBERS_MAX - 1,
                           spec->nzones > 0 ? spec->zones[0] : NULL, UINT32_MAX);
    if (doc == NULL) {
        berth_free(*canonical);
        *canonical = NULL;
        return nomem(err);
    }
    g = NULL;
    rc = berth_group_parse(doc, strlen(doc), &g, err);
    if (rc == 0)
        rc = berth_engine_group_validate(e, g, err);
    berth_group_free(g);
    free(doc);
    if (rc != 0) {
        error_prefix(err, "template");
        berth_free(*canonical);
        *canonical = NULL;
    }
    return rc;
}

static bool zones_equal(json_t *stored, const berth_ngroup_spec_t *spec)
{
    if (json_array_size(stored) != spec->nzones)
        return false;
    for (size_t i = 0; i < spec->nzones; i++) {
        const char *z = json_string_value(json_array_get(stored, i));
        if (z == NULL || strcmp(z, spec->zones[i]) != 0)
            return false;
    }
    return true;
}

/* berth_store_ngroup_put() once its arguments are there. */
static int ngroup_put(berth_store_t *store, const berth_ngroup_spec_t *spec, uint64_t *revision,
                      berth_error_t *err)
{
    berth_engine_t *e = berth__store_engine(store);
    char *canonical = NULL;
    int rc = berth_store_sync(store, err);
    if (rc == 0)
        rc = spec_check(e, spec, err);
    if (rc == 0)
        rc = template_check(e, spec, &canonical, err);
    for (int tries = 0; rc == 0; tries++) {
        if (tries == NG_CAS_TRIES) {
            rc = berth__error_set(err, BERTH_EIO, "Conflict", "key",
                                  "NGroup '%s' kept changing under this write", spec->key);
            break;
        }
        ng_record_t old;
        rc = record_read(store, spec->key, &old, err);
        if (rc == BERTH_ENOENT) {
            berth_error_clear(err);
            rc = 0;
        }
        if (rc != 0)
            break;
        uint64_t rev = 1;
        if (old.raw != NULL && old.deleting) {
            /* Its members go under its old goal: let the delete finish. */
            record_clear(&old);
            rc = berth__error_set(err, BERTH_ECONFLICT, "NGroupBeingDeleted", "key",
                                  "NGroup '%s' is being deleted; create it again once it is "
                                  "gone",
                                  spec->key);
            break;
        }
        if (old.raw != NULL) {
            if (!zones_equal(old.zones, spec)) {
                record_clear(&old);
                rc = berth__error_set(err, BERTH_ECONFLICT, "PropertyChangeNotAllowed", "zones",
                                      "the zones of NGroup '%s' cannot change: delete it first "
                                      "and then create it anew",
                                      spec->key);
                break;
            }
            if (strcmp(old.name, spec->name) != 0) {
                record_clear(&old);
                rc = berth__error_set(err, BERTH_ECONFLICT, "PropertyChangeNotAllowed", "name",
                                      "the name of NGroup '%s' cannot change", spec->key);
                break;
            }
            if (strcmp(old.prefix, spec->member_prefix ? spec->member_prefix : "") != 0) {
                record_clear(&old);
                rc = berth__error_set(err, BERTH_ECONFLICT, "PropertyChangeNotAllowed",
                                      "memberPrefix",
                                      "the member name prefix of NGroup '%s' cannot change: "
                                      "it is fixed when the NGroup is created",
                                      spec->key);
                break;
            }
            if (old.fault_domains != spec->fault_domain_count) {
                record_clear(&old);
                rc = berth__error_set(err, BERTH_ECONFLICT, "PropertyChangeNotAllowed",
                                      "faultDomainCount",
                                      "the fault domain count of NGroup '%s' cannot change: "
                                      "it is fixed when the NGroup is created",
                                      spec->key);
                break;
            }
            rev = old.revision + (strcmp(old.template_json, canonical) != 0 ? 1 : 0);
        }
        json_t *zones = json_array();
        for (size_t i = 0; i < spec->nzones; i++)
            json_array_append_new(zones, json_string(spec->zones[i]));
        json_t *rec = json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:o, s:I, s:b}", "v",
                                NG_RECORD_VERSION, "key", spec->key, "name", spec->name,
                                "template", canonical, "desired", (json_int_t)spec->desired,
                                "maxUnavailable", (json_int_t)spec->max_unavailable, "zones",
                                zones, "revision", (json_int_t)rev, "deleting", 0);
        if (rec != NULL && spec->metadata_json != NULL)
            json_object_set_new(rec, "metadata", json_loads(spec->metadata_json, 0, NULL));
        if (rec != NULL) {
            json_object_set_new(rec, "batchPercent", json_integer(spec->max_batch_percent));
            json_object_set_new(rec, "unhealthyPercent",
                                json_integer(spec->max_unhealthy_set
                                                 ? (json_int_t)spec->max_unhealthy_percent
                                                 : -1));
            json_object_set_new(rec, "pauseMs", json_integer(spec->pause_between_batches_ms));
            json_object_set_new(rec, "replace", json_boolean(spec->replace_on_update));
            json_object_set_new(rec, "prefix",
                                json_string(spec->member_prefix ? spec->member_prefix : ""));
            json_object_set_new(rec, "faultDomains", json_integer(spec->fault_domain_count));
            json_object_set_new(rec, "stopped", json_boolean(old.raw != NULL && old.stopped));
            json_object_set_new(rec, "manual", json_boolean(spec->manual_update));
        }
        char *text = rec != NULL ? json_dumps(rec, JSON_COMPACT) : NULL;
        json_decref(rec);
        if (text == NULL) {
            record_clear(&old);
            rc = nomem(err);
            break;
        }
        int w = record_cas(store, spec->key, old.raw, text, err);
        free(text);
        record_clear(&old);
        if (w < 0) {
            rc = w;
            break;
        }
        if (w == 1) {
            if (revision != NULL)
                *revision = rev;
            break;
        }
    }
    berth_free(canonical);
    return rc;
}

/* Contract (berth.h): validates everything, then writes the record by
 * compare-and-set (bounded retries); members are untouched. */
int berth_store_ngroup_put(berth_store_t *store, const berth_ngroup_spec_t *spec,
                           uint64_t *revision, berth_error_t *err)
{
    berth_error_clear(err);
    if (store == NULL || spec == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                                "a store and a spec are required");
    BERTH__RETURN_GUARDED(ngroup_put(store, spec, revision, err));
}

/* ---- reading the members ------------------------------------------------------------ */

/* What a step or a status needs to know of the members. */
typedef struct ng_members {
    size_t n;
    berth_ngroup_member_t *m;       /* by index                             */
    char note[BERTH_ERROR_MESSAGE_MAX];
    uint64_t pace_revision;         /* the pace: the revision of the last
                                     * batch started (0: none) ...          */
    int64_t pace_since_ms;          /* ... and when that batch was first seen
                                     * available (wall ms, 0: not yet)      */
} ng_members_t;

static void members_clear(ng_members_t *ms)
{
    free(ms->m);
    memset(ms, 0, sizeof *ms);
}

/* Fills *ms from the engine replica (which members exist and where), their
 * records (generation, revision) and views (state), and the NGroup's note:
 * two HMGETs and an HGET in one transaction. */
static int members_read(berth_store_t *s, const ng_record_t *r, ng_members_t *ms,
                        berth_error_t *err)
{
    memset(ms, 0, sizeof *ms);
    berth_engine_t *e = berth__store_engine(s);
    ms->m = calloc(BERTH_NGROUP_MEMBERS_MAX, sizeof *ms->m);
    if (ms->m == NULL)
        return nomem(err);
    for (uint32_t i = 0; i < BERTH_NGROUP_MEMBERS_MAX; i++) {
        berth_ngroup_member_t *m = &ms->m[ms->n];
        member_key(r->key, r->stem, i, m->key, sizeof m->key);
        berth_placement_t p;
        if (berth_engine_group_get(e, m->key, &p) != 0)
            continue;
        m->index = i;
        member_name(r->stem, i, m->name, sizeof m->name);
        snprintf(m->host, sizeof m->host, "%s", p.host);
        berth_host_t h;
        if (berth_engine_host_get(e, p.host, &h, NULL) == 0 && h.zone != NULL)
            snprintf(m->zone, sizeof m->zone, "%s", h.zone);
        snprintf(m->state, sizeof m->state, "Creating");
        ms->n++;
    }
    char kg[BERTH__KEYNAME_MAX], kv[BERTH__KEYNAME_MAX], kn[BERTH__KEYNAME_MAX];
    berth__store_key(s, kg, sizeof kg, "groups", "");
    berth__store_key(s, kv, sizeof kv, "views", "");
    berth__store_key(s, kn, sizeof kn, "ngroupnotes", "");
    const char **ag = malloc((ms->n + 2) * 2 * sizeof *ag);
    if (ag == NULL) {
        members_clear(ms);
        return nomem(err);
    }
    const char **av = ag + ms->n + 2;
    ag[0] = av[0] = "HMGET";
    ag[1] = kg;
    av[1] = kv;
    for (size_t i = 0; i < ms->n; i++)
        ag[i + 2] = av[i + 2] = ms->m[i].key;
    char pace_field[BERTH_NGROUP_KEY_MAX + 8];
    pace_key(r->key, pace_field, sizeof pace_field);
    const char *an[] = {"HMGET", kn, r->key, pace_field};
    const char *const *argvs[3] = {ag, av, an};
    int argcs[3] = {(int)ms->n + 2, (int)ms->n + 2, 4};
    int rc = 0;
    redisReply *x = ms->n > 0 ? berth__store_transaction(s, 3, argvs, argcs,
                                                         "reading an NGroup's members", err, &rc)
                              : berth__store_transaction(s, 1, argvs + 2, argcs + 2,
                                                         "reading an NGroup's note", err, &rc);
    free(ag);
    if (x == NULL) {
        members_clear(ms);
        return rc;
    }
    size_t want = ms->n > 0 ? 3 : 1;
    if (x->type != REDIS_REPLY_ARRAY || x->elements != want ||
        (ms->n > 0 && (x->element[0]->type != REDIS_REPLY_ARRAY ||
                       x->element[0]->elements != ms->n ||
                       x->element[1]->type != REDIS_REPLY_ARRAY ||
                       x->element[1]->elements != ms->n))) {
        freeReplyObject(x);
        members_clear(ms);
        return berth__error_set(err, BERTH_EIO, "RedisError", "",
                                "unexpected reply reading an NGroup's members");
    }
    redisReply *notes = x->element[want - 1];
    redisReply *note = notes->type == REDIS_REPLY_ARRAY && notes->elements == 2
                           ? notes->element[0] : NULL;
    redisReply *pace = note != NULL ? notes->element[1] : NULL;
    if (note != NULL && note->type == REDIS_REPLY_STRING)
        snprintf(ms->note, sizeof ms->note, "%.*s", (int)note->len, note->str);
    if (pace != NULL && pace->type == REDIS_REPLY_STRING) {
        unsigned long long prev = 0;
        long long since = 0;
        char text[64];
        snprintf(text, sizeof text, "%.*s", (int)pace->len, pace->str);
        if (sscanf(text, "%llu %lld", &prev, &since) == 2) {
            ms->pace_revision = prev;
            ms->pace_since_ms = since;
        }
    }
    for (size_t i = 0; i < ms->n; i++) {
        berth_ngroup_member_t *m = &ms->m[i];
        redisReply *g = x->element[0]->element[i];
        if (g->type == REDIS_REPLY_STRING) {
            berth__group_record_t rec;
            if (berth__group_record_decode(g->str, g->len, &rec, NULL) == 0) {
                m->generation = rec.generation;
                m->revision = doc_revision(rec.spec.ptr, rec.spec.len);
            }
        }
        redisReply *v = x->element[1]->element[i];
        if (v->type != REDIS_REPLY_STRING)
            continue;
        json_t *view = json_loadb(v->str, v->len, 0, NULL);
        if ((uint64_t)json_integer_value(json_object_get(view, "generation")) == m->generation &&
            m->generation != 0) {
            const char *prov = json_string_value(json_object_get(view, "provisioningState"));
            const char *st = json_string_value(
                json_object_get(json_object_get(view, "instanceView"), "state"));
            if (st != NULL)
                snprintf(m->state, sizeof m->state, "%s", st);
            else if (prov != NULL)
                snprintf(m->state, sizeof m->state, "%s", prov);
            m->available = prov != NULL && strcmp(prov, "Succeeded") == 0 && st != NULL &&
                           strcmp(st, "Running") == 0;
        }
        json_decref(view);
    }
    freeReplyObject(x);
    return 0;
}

/* Whether a member's state (members_read()) says it is unhealthy: its
 * view for its current generation reports it failed or stopped. */
static bool member_unhealthy(const berth_ngroup_member_t *m)
{
    return strcmp(m->state, "Failed") == 0 || strcmp(m->state, "Stopped") == 0 ||
           strcmp(m->state, "Terminated") == 0;
}

/* ---- get ------------------------------------------------------------------------------ */

void berth_ngroup_free(berth_ngroup_t *ngroup)
{
    if (ngroup == NULL)
        return;
    free(ngroup->key);
    free(ngroup->name);
    free(ngroup->template_json);
    free(ngroup->metadata_json);
    for (size_t i = 0; i < ngroup->nzones; i++)
        free(ngroup->zones[i]);
    free(ngroup->zones);
    free(ngroup->members);
    free(ngroup->member_prefix);
    free(ngroup);
}

static int status_build(const ng_record_t *r, ng_members_t *ms, berth_ngroup_t **out,
                        berth_error_t *err)
{
    berth_ngroup_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return nomem(err);
    g->key = strdup(r->key);
    g->name = strdup(r->name);
    g->template_json = strdup(r->template_json);
    g->metadata_json = r->metadata != NULL ? json_dumps(r->metadata, JSON_COMPACT) : NULL;
    g->member_prefix = strdup(r->prefix);
    g->nzones = json_array_size(r->zones);
    g->zones = calloc(g->nzones + 1, sizeof *g->zones);
    bool ok = g->key && g->name && g->template_json && g->zones && g->member_prefix &&
              (r->metadata == NULL || g->metadata_json != NULL);
    for (size_t i = 0; ok && i < g->nzones; i++)
        ok = (g->zones[i] = strdup(json_string_value(json_array_get(r->zones, i)))) != NULL;
    if (!ok) {
        berth_ngroup_free(g);
        return nomem(err);
    }
    g->desired = r->desired;
    g->max_unavailable = r->max_unavailable;
    g->revision = r->revision;
    g->deleting = r->deleting;
    g->members = ms->m;             /* taken */
    g->nmembers = ms->n;
    ms->m = NULL;
    ms->n = 0;
    g->max_batch_percent = r->batch_percent;
    g->max_unhealthy_percent = r->unhealthy_percent;
    g->pause_between_batches_ms = r->pause_ms;
    g->replace_on_update = r->replace;
    g->fault_domain_count = r->fault_domains;
    g->stopped = r->stopped;
    g->manual_update = r->manual;
    for (size_t i = 0; i < g->nmembers; i++) {
        g->running += g->members[i].available;
        g->updated += g->members[i].revision == g->revision;
        g->unhealthy += g->members[i].revision == g->revision &&
                        member_unhealthy(&g->members[i]);
    }
    snprintf(g->message, sizeof g->message, "%s", ms->note);
    uint32_t want = r->stopped ? 0 : g->desired;
    if (r->template_json[0] == '\0')
        g->steady = !g->deleting && (!r->stopped || g->nmembers == 0);
    else
        g->steady = !g->deleting && g->nmembers == want && g->running == want &&
                    (g->updated == want || r->manual);
    *out = g;
    return 0;
}

/* Reads NGroup `key` (after a sync) and its members into *r and *ms.
 * Returns 0, and the caller frees them with members_clear() and
 * record_clear(); or a negative code with nothing left to free. */
static int ngroup_read(berth_store_t *store, const char *key, ng_record_t *r,
                       ng_members_t *ms, berth_error_t *err)
{
    memset(ms, 0, sizeof *ms);
    int rc = berth_store_sync(store, err);
    if (rc == 0)
        rc = record_read(store, key, r, err);
    if (rc == 0) {
        rc = members_read(store, r, ms, err);
        if (rc != 0) {
            members_clear(ms);
            record_clear(r);
        }
    }
    return rc;
}

static int ngroup_get(berth_store_t *store, const char *key, berth_ngroup_t **out,
                      berth_error_t *err)
{
    ng_record_t r;
    ng_members_t ms;
    int rc = ngroup_read(store, key, &r, &ms, err);
    if (rc == 0) {
        rc = status_build(&r, &ms, out, err);
        members_clear(&ms);
        record_clear(&r);
    }
    return rc;
}

/* Contract (berth.h): the NGroup with its members' placement and state. */
int berth_store_ngroup_get(berth_store_t *store, const char *key, berth_ngroup_t **out,
                           berth_error_t *err)
{
    berth_error_clear(err);
    *out = NULL;
    if (key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(ngroup_get(store, key, out, err));
}

/* ---- reconcile ------------------------------------------------------------------------ */

/* Releases every member and removes the record while it is still the one
 * read (a put meanwhile revives the NGroup). */
static int finish_delete(berth_store_t *s, ng_record_t *r, ng_members_t *ms,
                         berth_ngroup_step_t *st, berth_error_t *err)
{
    for (size_t i = 0; i < ms->n; i++) {
        int rc = berth_store_release(s, ms->m[i].key, err);
        if (rc != 0 && rc != BERTH_ENOENT)
            return rc;
        if (rc == 0)
            st->removed++;
    }
    berth_error_clear(err);
    int w = record_cas(s, r->key, r->raw, NULL, err);
    if (w < 0)
        return w;
    if (w == 1) {
        st->deleted = true;
        int rc = note_write(s, r->key, "", err);
        return rc == 0 ? pace_drop(s, r->key, err) : rc;
    }
    return 0;
}

/* Whether host h meets the template's static constraints (the engine
 * checks them again when it commits: this only steers the choice). */
static bool host_eligible(berth_engine_t *e, const berth_host_t *h,
                          const berth_host_usage_t *u, const berth_request_t *req)
{
    if (h->state != BERTH_HOST_READY || h->os != req->os)
        return false;
    if (req->demand.gpu_count > 0) {
        const char *sku = berth_engine_gpu_sku_name(e, req->demand.gpu_sku);
        if (sku == NULL || h->gpu_sku == NULL || strcmp(sku, h->gpu_sku) != 0)
            return false;
    }
    bool dedicated = (h->features & BERTH_HOST_DEDICATED) != 0;
    if (req->sku == BERTH_SKU_DEDICATED)
        return dedicated && u->groups == 0;
    if (dedicated)
        return false;
    if (req->sku == BERTH_SKU_CONFIDENTIAL && !(h->features & BERTH_HOST_CONFIDENTIAL))
        return false;
    if (req->sandbox && !(h->features & BERTH_HOST_SANDBOX))
        return false;
    return true;
}

/* Places (or redeploys) member i at the record's revision in `zone`,
 * trying `prefer` first for a new member.  A redeploy the engine refuses
 * (a change that needs a delete) releases the member and returns
 * BERTH_ECONFLICT with *released set: the caller places a replacement
 * under another index, for a key placed again at once would start again
 * at generation 1, which an agent that has not yet seen the release
 * would take for the group it already runs. */
static int member_place(berth_store_t *s, const ng_record_t *r, uint32_t i, const char *zone,
                        const char *prefer, bool update, bool *released, berth_error_t *err)
{
    char key[BERTH_GROUP_KEY_MAX + 1];
    member_key(r->key, r->stem, i, key, sizeof key);
    char *doc = member_doc(r->template_json, r->key, r->stem, i, zone, r->revision);
    if (doc == NULL)
        return nomem(err);
    berth_group_t *g = NULL;
    berth_request_t req;
    int rc = berth_group_parse(doc, strlen(doc), &g, err);
    if (rc == 0)
        rc = berth_engine_group_request(berth__store_engine(s), g, &req, err);
    if (rc == 0 && update) {
        rc = berth_store_place(s, key, &req, doc, NULL, err);
        if (rc == BERTH_ECONFLICT) {
            berth_error_t conflict = *err;
            rc = berth_store_release(s, key, err);
            if (rc == 0 || rc == BERTH_ENOENT) {
                *released = true;
                *err = conflict;
                rc = BERTH_ECONFLICT;
            }
        }
    } else if (rc == 0) {
        rc = berth_store_place_prefer(s, key, &req, prefer, doc, NULL, err);
    }
    berth_group_free(g);
    free(doc);
    return rc;
}

/* The lowest member index that no member holds, no action of this step
 * names and that is not `also` (a member just released). */
static uint32_t free_index(const ng_members_t *ms, const berth__ng_action_t *acts, size_t n,
                           uint32_t also)
{
    for (uint32_t idx = 0; idx < BERTH_NGROUP_MEMBERS_MAX; idx++) {
        bool taken = idx == also;
        for (size_t i = 0; !taken && i < ms->n; i++)
            taken = ms->m[i].index == idx;
        for (size_t k = 0; !taken && k < n; k++)
            taken = acts[k].index == idx;
        if (!taken)
            return idx;
    }
    return BERTH_NGROUP_MEMBERS_MAX;
}

/* Appends a sentence to the step's note. */
static void note_add(char *note, size_t cap, const char *fmt, ...) BERTH__PRINTF(3, 4);
static void note_add(char *note, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(note);
    if (len + 2 >= cap)
        return;
    if (len > 0) {
        note[len++] = ' ';
        note[len] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note + len, cap - len, fmt, ap);
    va_end(ap);
}

/* One step for an NGroup without a template: nothing can be placed; a
 * stopped one has its members released. */
static int step_without_template(berth_store_t *s, const ng_record_t *r, ng_members_t *ms,
                                 berth_ngroup_step_t *st, berth_error_t *err)
{
    for (size_t i = 0; r->stopped && i < ms->n; i++) {
        int rc = berth_store_release(s, ms->m[i].key, err);
        if (rc != 0 && rc != BERTH_ENOENT)
            return rc;
        st->removed += rc == 0;
    }
    berth_error_clear(err);
    st->steady = true;
    const char *note = !r->stopped && r->desired > ms->n
                           ? "The NGroup has no container group profile: no member can be "
                             "placed."
                           : "";
    return strcmp(note, ms->note) != 0 ? note_write(s, r->key, note, err) : 0;
}

/* One step for a live NGroup: describe, plan, act. */
static int step(berth_store_t *s, const ng_record_t *r, ng_members_t *ms,
                berth_ngroup_step_t *st, berth_error_t *err)
{
    berth_engine_t *e = berth__store_engine(s);
    if (r->template_json[0] == '\0')
        return step_without_template(s, r, ms, st, err);
    size_t nzones = json_array_size(r->zones);
    size_t nz = nzones > 0 ? nzones : 1;
    /* The demand and static constraints of a member, from member 0's
     * document (every member's is the same but for its zone). */
    char *doc = member_doc(r->template_json, r->key, r->stem, 0, NULL, r->revision);
    if (doc == NULL)
        return nomem(err);
    berth_group_t *g = NULL;
    berth_request_t req;
    int rc = berth_group_parse(doc, strlen(doc), &g, err);
    if (rc == 0)
        rc = berth_engine_group_request(e, g, &req, err);
    berth_group_free(g);
    free(doc);
    if (rc != 0)
        return rc;

    size_t nhosts = berth_engine_host_count(e);
    berth__ng_host_t *hosts = calloc(nhosts + 1, sizeof *hosts);
    char(*hnames)[BERTH_NAME_MAX + 1] = calloc(nhosts + 1, sizeof *hnames);
    berth__ng_member_t *mem = calloc(ms->n + 1, sizeof *mem);
    uint32_t *scratch = calloc(BERTH__NG_SCRATCH(nhosts, nz, ms->n), sizeof *scratch);
    size_t cap = BERTH_NGROUP_MEMBERS_MAX + ms->n;
    berth__ng_action_t *acts = calloc(cap, sizeof *acts);
    if (hosts == NULL || hnames == NULL || mem == NULL || scratch == NULL || acts == NULL) {
        rc = nomem(err);
        goto done;
    }
    for (size_t h = 0; h < nhosts; h++) {
        berth_host_t d;
        berth_host_usage_t u;
        if (berth_engine_host_at(e, h, &d, &u) != 0)
            continue;
        snprintf(hnames[h], sizeof hnames[h], "%s", d.name);
        hosts[h].zone = nzones > 0 ? -1 : 0;
        for (size_t z = 0; z < nzones; z++)
            if (d.zone != NULL && strcmp(d.zone, json_string_value(json_array_get(r->zones, z))) == 0)
                hosts[h].zone = (int)z;
        hosts[h].eligible = host_eligible(e, &d, &u, &req);
        uint64_t cores = (uint64_t)d.cores * 1000u;
        hosts[h].free_millicores = cores > u.millicores ? (uint32_t)(cores - u.millicores) : 0;
        hosts[h].free_memory_mib = d.memory_mib > u.memory_mib ? d.memory_mib - u.memory_mib : 0;
        hosts[h].free_gpus = d.gpu_count > u.gpu_count ? d.gpu_count - u.gpu_count : 0;
    }
    for (size_t i = 0; i < ms->n; i++) {
        const berth_ngroup_member_t *m = &ms->m[i];
        mem[i].index = m->index;
        mem[i].revision = m->revision;
        mem[i].available = m->available;
        mem[i].unhealthy = member_unhealthy(m);
        mem[i].host = -1;
        mem[i].zone = -1;
        for (size_t h = 0; h < nhosts; h++)
            if (strcmp(hnames[h], m->host) == 0) {
                mem[i].host = (int)h;
                mem[i].zone = hosts[h].zone;
            }
    }
    uint32_t desired = r->stopped ? 0 : r->desired;
    uint32_t batch = 0;
    if (r->batch_percent > 0) {
        /* Rounded down, so that a batch never exceeds the percent. */
        batch = (uint32_t)((uint64_t)r->batch_percent * desired / 100);
        batch = batch > 0 ? batch : 1;
    }
    /* The pause: since the last batch of this revision was first seen
     * available (the pace the cell keeps); none before the first batch. */
    int64_t now = berth__clock_wall_ms();
    bool paused = r->pause_ms > 0 && ms->pace_revision == r->revision &&
                  (ms->pace_since_ms == 0 || now < ms->pace_since_ms + (int64_t)r->pause_ms);
    berth__ng_input_t in = {.members = mem, .nmembers = ms->n, .hosts = hosts,
                            .nhosts = nhosts, .nzones = nz, .desired = desired,
                            .max_unavailable = r->max_unavailable, .batch = batch,
                            .max_unhealthy_percent = r->unhealthy_percent, .paused = paused,
                            .replace = r->replace, .manual = r->manual,
                            .per_host_max = r->fault_domains > 0
                                                ? (desired + r->fault_domains - 1) /
                                                      r->fault_domains
                                                : 0,
                            .revision = r->revision,
                            .millicores = req.demand.millicores,
                            .memory_mib = req.demand.memory_mib,
                            .gpus = req.demand.gpu_count};
    berth__ng_outcome_t seen;
    size_t n = berth__ngroup_plan(&in, scratch, acts, cap, &seen);
    st->waiting = seen.waiting;
    st->halted = seen.halted;
    uint32_t coming = r->unhealthy_percent >= 0 ? seen.waiting - seen.unhealthy : seen.waiting;
    st->pausing = paused && coming == 0 && seen.outdated > 0 && !seen.halted;
    if (r->pause_ms > 0 && seen.batch_started) {
        rc = pace_write(s, r->key, r->revision, 0, err);
    } else if (r->pause_ms > 0 && st->pausing && ms->pace_since_ms == 0) {
        rc = pace_write(s, r->key, r->revision, now, err);
    }
    if (rc != 0)
        goto done;

    /* The note sums the step up: members placed outside the zone holding
     * the fewest, and actions that failed (the first reason given). */
    uint32_t fallbacks = 0;
    char last_fallback[BERTH_NAME_MAX + 80] = "", first_failure[200] = "";
    for (size_t k = 0; k < n; k++) {
        const berth__ng_action_t *a = &acts[k];
        char key[BERTH_GROUP_KEY_MAX + 1];
        member_key(r->key, r->stem, a->index, key, sizeof key);
        const char *zone = nzones > 0 && a->zone >= 0
                               ? json_string_value(json_array_get(r->zones, (size_t)a->zone))
                               : NULL;
        berth_error_t aerr;
        int arc;
        if (a->kind == BERTH__NG_REMOVE) {
            arc = berth_store_release(s, key, &aerr);
            if (arc == BERTH_ENOENT)
                arc = 0;
            if (arc == 0)
                st->removed++;
        } else if (a->kind == BERTH__NG_CREATE) {
            bool released = false;
            arc = member_place(s, r, a->index, zone, a->host >= 0 ? hnames[a->host] : NULL,
                               false, &released, &aerr);
            if (arc == 0) {
                st->created++;
                if (a->fallback) {
                    fallbacks++;
                    snprintf(last_fallback, sizeof last_fallback, "%s-%" PRIu32 " in zone '%s'",
                             r->stem, a->index, zone ? zone : "");
                }
            }
        } else {
            /* An update keeps the member in its zone. */
            bool released = false;
            arc = member_place(s, r, a->index, zone, NULL, true, &released, &aerr);
            if (arc == 0)
                st->updated++;
            if (released) {
                /* Needed a delete: a replacement under a free index. */
                st->removed++;
                uint32_t idx = free_index(ms, acts, n, a->index);
                arc = idx < BERTH_NGROUP_MEMBERS_MAX
                          ? member_place(s, r, idx, zone, NULL, false, &released, &aerr)
                          : berth__error_set(&aerr, BERTH_ENOSPC, "TooManyMembers", "",
                                             "no free member index is left");
                if (arc == 0) {
                    st->created++;
                    acts[k].index = idx; /* taken, for the next free_index() */
                }
            }
        }
        if (arc == BERTH_EIO || arc == BERTH_ENOMEM) {
            if (err != NULL)
                *err = aerr;
            rc = arc;
            break;
        }
        if (arc != 0) {
            if (st->failed++ == 0)
                snprintf(first_failure, sizeof first_failure, "%.58s-%" PRIu32 ": %.120s",
                         r->stem, a->index, aerr.message);
        }
    }
    char note[BERTH_ERROR_MESSAGE_MAX] = "";
    if (fallbacks > 0)
        note_add(note, sizeof note,
                 "%" PRIu32 " member(s) placed outside the zone holding the fewest, which has "
                 "no room (the last: %s).",
                 fallbacks, last_fallback);
    if (st->failed > 0)
        note_add(note, sizeof note, "%" PRIu32 " member(s) could not be placed or updated (%s)",
                 st->failed, first_failure);
    if (seen.halted)
        note_add(note, sizeof note,
                 "The rollout of revision %" PRIu64 " is stopped: %" PRIu32 " of the members "
                 "at that revision are unhealthy, more than the %" PRId32 "%% "
                 "maxUnhealthyPercent allows.",
                 r->revision, seen.unhealthy, r->unhealthy_percent);
    st->steady = n == 0 && st->waiting == 0 && (seen.outdated == 0 || r->manual) &&
                 ms->n == desired;
    if (rc == 0 && strcmp(note, ms->note) != 0 && (note[0] != '\0' || n > 0 || st->steady))
        rc = note_write(s, r->key, note, err);
done:
    free(hosts);
    free(hnames);
    free(mem);
    free(scratch);
    free(acts);
    return rc;
}

static int ngroup_reconcile(berth_store_t *store, const char *key, berth_ngroup_step_t *out,
                            berth_error_t *err)
{
    berth_ngroup_step_t st;
    memset(&st, 0, sizeof st);
    ng_record_t r;
    ng_members_t ms;
    int rc = ngroup_read(store, key, &r, &ms, err);
    if (rc == 0) {
        rc = r.deleting ? finish_delete(store, &r, &ms, &st, err)
                        : step(store, &r, &ms, &st, err);
        members_clear(&ms);
        record_clear(&r);
    }
    if (out != NULL)
        *out = st;
    return rc;
}

/* Contract (berth.h): one step towards the NGroup's goal. */
int berth_store_ngroup_reconcile(berth_store_t *store, const char *key, berth_ngroup_step_t *out,
                                 berth_error_t *err)
{
    berth_error_clear(err);
    berth_ngroup_step_t st;
    memset(&st, 0, sizeof st);
    if (out != NULL)
        *out = st;
    if (key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(ngroup_reconcile(store, key, out, err));
}

/* ---- delete and list ------------------------------------------------------------------ */

/* Marks the NGroup deleting by compare-and-set (bounded retries); 0 also
 * when it is marked already. */
static int mark_deleting(berth_store_t *store, const char *key, berth_error_t *err)
{
    int rc = 0;
    for (int tries = 0;; tries++) {
        if (tries == NG_CAS_TRIES) {
            rc = berth__error_set(err, BERTH_EIO, "Conflict", "key",
                                  "NGroup '%s' kept changing under this delete", key);
            break;
        }
        ng_record_t r;
        rc = record_read(store, key, &r, err);
        if (rc != 0)
            break;
        if (r.deleting) {
            record_clear(&r);
            break;
        }
        json_object_set_new(r.json, "deleting", json_true());
        char *text = json_dumps(r.json, JSON_COMPACT);
        int w = text != NULL ? record_cas(store, key, r.raw, text, err) : nomem(err);
        free(text);
        record_clear(&r);
        if (w < 0) {
            rc = w;
            break;
        }
        if (w == 1)
            break;
    }
    return rc;
}

static int ngroup_delete(berth_store_t *store, const char *key, berth_error_t *err)
{
    int rc = mark_deleting(store, key, err);
    if (rc != 0)
        return rc;
    /* The releases; a crash here leaves the mark for any reconcile. */
    berth_ngroup_step_t st;
    for (int tries = 0; tries < NG_CAS_TRIES; tries++) {
        rc = berth_store_ngroup_reconcile(store, key, &st, err);
        if (rc == BERTH_ENOENT) {
            berth_error_clear(err);
            return 0;
        }
        if (rc != 0 || st.deleted)
            return rc;
    }
    return berth__error_set(err, BERTH_EIO, "Conflict", "key",
                            "NGroup '%s' kept changing under this delete", key);
}

/* Contract (berth.h): marks the NGroup deleting, then releases its members
 * and removes its record. */
int berth_store_ngroup_delete(berth_store_t *store, const char *key, berth_error_t *err)
{
    berth_error_clear(err);
    if (key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(ngroup_delete(store, key, err));
}

/* Sets the record's "stopped" by compare-and-set (bounded retries), then
 * takes one reconcile step.  A record being deleted is not found. */
static int ngroup_set_stopped(berth_store_t *store, const char *key, bool stopped,
                              berth_error_t *err)
{
    int rc = berth_store_sync(store, err);
    for (int tries = 0; rc == 0; tries++) {
        if (tries == NG_CAS_TRIES) {
            rc = berth__error_set(err, BERTH_EIO, "Conflict", "key",
                                  "NGroup '%s' kept changing under this write", key);
            break;
        }
        ng_record_t r;
        rc = record_read(store, key, &r, err);
        if (rc != 0)
            break;
        if (r.deleting) {
            record_clear(&r);
            rc = berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                                  "NGroup '%s' is being deleted", key);
            break;
        }
        if (r.stopped == stopped) {
            record_clear(&r);
            break;
        }
        json_object_set_new(r.json, "stopped", json_boolean(stopped));
        char *text = json_dumps(r.json, JSON_COMPACT);
        int w = text != NULL ? record_cas(store, key, r.raw, text, err) : nomem(err);
        free(text);
        record_clear(&r);
        if (w < 0) {
            rc = w;
            break;
        }
        if (w == 1)
            break;
    }
    if (rc == 0)
        rc = ngroup_reconcile(store, key, NULL, err);
    return rc;
}

/* Contract (berth.h): records the NGroup stopped, then one step. */
int berth_store_ngroup_stop(berth_store_t *store, const char *key, berth_error_t *err)
{
    berth_error_clear(err);
    if (key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(ngroup_set_stopped(store, key, true, err));
}

/* Contract (berth.h): records the NGroup started, then one step. */
int berth_store_ngroup_start(berth_store_t *store, const char *key, berth_error_t *err)
{
    berth_error_clear(err);
    if (key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(ngroup_set_stopped(store, key, false, err));
}

static int ngroup_restart(berth_store_t *store, const char *key, uint32_t *restarted,
                          berth_error_t *err)
{
    ng_record_t r;
    ng_members_t ms;
    int rc = ngroup_read(store, key, &r, &ms, err);
    if (rc != 0)
        return rc;
    if (r.deleting) {
        rc = berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                              "NGroup '%s' is being deleted", key);
    } else if (r.stopped) {
        rc = berth__error_set(err, BERTH_ECONFLICT, "NGroupStopped", "key",
                              "NGroup '%s' is stopped: start it instead of restarting it", key);
    }
    for (size_t i = 0; rc == 0 && i < ms.n; i++) {
        int x = berth_store_group_restart(store, ms.m[i].key, err);
        if (x == 0 && restarted != NULL)
            (*restarted)++;
        else if (x == BERTH_ENOENT)
            berth_error_clear(err);  /* released meanwhile */
        else if (x != 0)
            rc = x;
    }
    members_clear(&ms);
    record_clear(&r);
    return rc;
}

/* Contract (berth.h): restarts every placed member. */
int berth_store_ngroup_restart(berth_store_t *store, const char *key, uint32_t *restarted,
                               berth_error_t *err)
{
    berth_error_clear(err);
    if (restarted != NULL)
        *restarted = 0;
    if (key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(ngroup_restart(store, key, restarted, err));
}

static int ngroup_list(berth_store_t *store, berth_store_ngroup_cb cb, void *data,
                       berth_error_t *err)
{
    char hk[BERTH__KEYNAME_MAX];
    berth__store_key(store, hk, sizeof hk, "ngroups", "");
    const char *argv[] = {"HKEYS", hk};
    int rc;
    redisReply *x = ng_cmd(store, 2, argv, NULL, false, "listing NGroups", err, &rc);
    if (x != NULL) {
        rc = 0;
        for (size_t i = 0; x->type == REDIS_REPLY_ARRAY && i < x->elements; i++) {
            if (x->element[i]->type != REDIS_REPLY_STRING)
                continue;
            if (cb != NULL)
                cb(x->element[i]->str, data);
            rc++;
        }
        freeReplyObject(x);
    }
    return rc;
}

/* Contract (berth.h): every NGroup key of the cell. */
int berth_store_ngroup_list(berth_store_t *store, berth_store_ngroup_cb cb, void *data,
                            berth_error_t *err)
{
    berth_error_clear(err);
    BERTH__RETURN_GUARDED(ngroup_list(store, cb, data, err));
}
