/*
 * profiles.c: container group profiles (profiles.h): their routes -- PUT,
 * PATCH (tags), GET, DELETE, lists by resource group and subscription,
 * revisions -- the resolver other routes call with a profile reference,
 * and the merge of a profile's document with a container group's PUT.
 *
 * A request reads the profile record (records.c, without blocking), then
 * what it needs of the revisions, decides in memory, and makes one commit
 * whose effects carry every write (profiles.h, WRITES).  Bodies show a
 * revision's document as container groups show theirs: parsed and written
 * back with BERTH_JSON_REDACT, so no secret (secure values, secret
 * volumes, storage, workspace and registry keys) ever leaves in a body.
 *
 * This file must never block the loop, never write outside a commit's
 * effects, never answer success before the commit's outcome is known, and
 * never touch keys other than the three profiles.h lists.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "api-internal.h"
#include "digest.h"
#include "profiles.h"
#include "query.h"
#include "secrets.h"

#define PROFILE_TYPE "Microsoft.ContainerInstance/containerGroupProfiles"
#define PROFILE_PAGE 100            /* records read per listing step        */
#define PROFILE_FX_MAX 6

typedef enum pkind {
    P_GET = 1, P_PUT, P_PATCH, P_DELETE, P_REVS, P_REV, P_LIST, P_RESOLVE
} pkind_t;

/* One profile request (a route's or a resolve), from its read to its end. */
typedef struct preq {
    bd_api_t *api;
    bd_reply_t *reply;              /* NULL for a resolve                   */
    pkind_t kind;
    char sub[BD_SUB_MAX + 1];
    char rg[BD_RG_MAX + 1];
    char name[64];
    char key[BD_KEY_MAX + 1];       /* "<sub>/<rg>/<name>" lowercase        */
    char revs[16 + BD_SHA1_HEX];    /* "profilerevs:<sha1 of key>"          */
    uint64_t revision;              /* asked for (P_REV, P_RESOLVE; 0: latest) */
    int attempts;
    /* a PUT's document, checked before any I/O */
    char *doc;                      /* canonical text, secrets sealed       */
    char location[BD_LOCATION_MAX + 1];
    json_t *tags;                   /* PUT, PATCH (NULL: none given)        */
    json_t *zones;                  /* PUT (NULL: none)                     */
    /* what the read found */
    json_t *rec;
    char sha1[BD_SHA1_HEX + 1];
    char *latest;                   /* the latest revision's document       */
    /* the commit */
    berth_effect_t fx[PROFILE_FX_MAX];
    size_t nfx;
    char *rectext;
    char field[24];
    json_t *newrec;
    int ok_status;
    uint64_t answer_rev;
    /* lists (P_LIST, P_REVS) */
    char prefix[BD_KEY_MAX + 2];
    json_t *recs;                   /* P_LIST: the records found            */
    json_t *value;                  /* the bodies, in order                 */
    size_t pending;
    int failed;
    /* a resolve */
    bd_profile_cb cb;
    void *data;
    int status;
    berth_error_t err;
} preq_t;

/* One revision read of a list. */
typedef struct pslot {
    preq_t *p;
    size_t index;
    json_t *rec;                    /* the record it describes (borrowed)   */
    uint64_t revision;
} pslot_t;

static void read_record(preq_t *p);

static void preq_free(preq_t *p)
{
    if (p == NULL)
        return;
    free(p->doc);
    free(p->latest);
    free(p->rectext);
    json_decref(p->tags);
    json_decref(p->zones);
    json_decref(p->rec);
    json_decref(p->newrec);
    json_decref(p->recs);
    json_decref(p->value);
    free(p);
}

/* ---- names and api-versions -------------------------------------------------------------- */

/* Contract: profiles.h. */
bool bd_profile_api_version_ok(const char *v)
{
    /* YYYY-MM-DD or YYYY-MM-DD-preview */
    size_t len = strlen(v);
    if (len != 10 && !(len == 18 && strcmp(v + 10, "-preview") == 0))
        return false;
    for (size_t i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? v[i] != '-' : (v[i] < '0' || v[i] > '9'))
            return false;
    }
    if (len == 18)
        return strncmp(v, "2024-05-01", 10) >= 0;
    return strcmp(v, "2025-09-01") >= 0;
}

/* ARM's rule for a profile's name: 1-63 letters, digits, '-' or '_',
 * beginning and ending with a letter or digit. */
static bool valid_profile_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && ((c != '-' && c != '_') || i == 0 || i == n - 1))
            return false;
    }
    return true;
}

/* Fills p's names and keys from sub, rg and name (already checked). */
static void set_names(preq_t *p, const char *sub, const char *rg, const char *name)
{
    snprintf(p->sub, sizeof p->sub, "%s", sub);
    snprintf(p->rg, sizeof p->rg, "%s", rg);
    snprintf(p->name, sizeof p->name, "%s", name);
    char lname[64];
    bd_lower(name, lname, sizeof lname);
    bd_resource_key(sub, rg, lname, p->key, sizeof p->key);
    char h[BD_SHA1_HEX + 1];
    bd_sha1_hex(p->key, strlen(p->key), h);
    snprintf(p->revs, sizeof p->revs, "profilerevs:%s", h);
}

static void not_found(bd_reply_t *reply, const char *rg, const char *name)
{
    bd_reply_error(reply, 404, "ResourceNotFound", "",
                   "The Resource '" PROFILE_TYPE "/%s' under resource group '%s' was not found.",
                   name, rg);
}

/* ---- bodies ------------------------------------------------------------------------------ */

/* The profile's ARM body from its record and revision `revision`'s
 * document (secrets redacted).  NULL when out of memory or the document
 * is unreadable. */
static json_t *profile_body(const json_t *rec, const char *doc, uint64_t revision)
{
    berth_group_t *g = NULL;
    berth_error_t err;
    char *text = NULL;
    json_t *parsed = NULL;
    if (doc != NULL && berth_group_parse(doc, strlen(doc), &g, &err) == 0 &&
        berth_group_to_json(g, BERTH_JSON_REDACT, &text, NULL) == 0)
        parsed = json_loads(text, 0, NULL);
    berth_free(text);
    berth_group_free(g);
    json_t *props = json_object_get(parsed, "properties");
    if (!json_is_object(props)) {
        json_decref(parsed);
        return NULL;
    }
    json_t *body = json_object();
    if (body == NULL) {
        json_decref(parsed);
        return NULL;
    }
    json_object_set(body, "id", json_object_get(rec, "id"));
    json_object_set(body, "name", json_object_get(rec, "name"));
    json_object_set_new(body, "type", json_string(PROFILE_TYPE));
    json_object_set(body, "location", json_object_get(rec, "location"));
    json_t *tags = json_object_get(rec, "tags");
    if (json_is_object(tags) && json_object_size(tags) > 0)
        json_object_set(body, "tags", tags);
    json_t *zones = json_object_get(parsed, "zones");
    if (json_is_array(zones) && json_array_size(zones) > 0)
        json_object_set(body, "zones", zones);
    json_object_set(body, "properties", props);
    props = json_object_get(body, "properties");
    if (json_object_get(props, "sku") == NULL)      /* ACI's default, answered */
        json_object_set_new(props, "sku", json_string("Standard"));
    if (json_object_get(props, "initContainers") == NULL)   /* as container groups */
        json_object_set_new(props, "initContainers", json_array());
    json_object_set_new(props, "revision", json_integer((json_int_t)revision));
    json_decref(parsed);
    return body;
}

/* Answers status with the body of record p->newrec (or p->rec) at
 * revision p->answer_rev, document p->latest; frees p. */
static void answer_body(preq_t *p, int status)
{
    json_t *rec = p->newrec != NULL ? p->newrec : p->rec;
    json_t *body = profile_body(rec, p->latest, p->answer_rev);
    if (body == NULL)
        bd_reply_error(p->reply, 500, "InternalServerError", "",
                       "the container group profile '%s' could not be read back", p->name);
    else
        bd_reply_send(p->reply, status, body, NULL);
    preq_free(p);
}

/* ---- the resolver's end ------------------------------------------------------------------ */

static void resolve_end(preq_t *p, int status, const char *doc, uint64_t revision)
{
    p->cb(status, doc, revision, &p->err, p->data);
    preq_free(p);
}

static void resolve_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    preq_t *p = arg;
    resolve_end(p, p->status, NULL, 0);
}

/* ---- the commit -------------------------------------------------------------------------- */

static berth_effect_t *fx_add(preq_t *p, berth_effect_op_t op, const char *key,
                              const char *field, const char *value)
{
    if (p->nfx >= PROFILE_FX_MAX)
        abort();                    /* above what any request adds */
    berth_effect_t *e = &p->fx[p->nfx++];
    memset(e, 0, sizeof *e);
    e->op = op;
    e->key = key;
    e->field = field;
    e->value = value;
    return e;
}

static void on_commit(int status, const berth_placement_t *placement, const berth_error_t *err,
                      void *data)
{
    (void)placement;
    preq_t *p = data;
    if (status == BERTH_ESTALE) {
        /* Another request changed the profile since it was read. */
        p->api->conflicts++;
        if (++p->attempts < PROFILE_ATTEMPTS) {
            read_record(p);
            return;
        }
        bd_reply_error(p->reply, 409, "Conflict", "",
                       "the container group profile '%s' kept changing while this request was "
                       "applied; try again", p->name);
        preq_free(p);
        return;
    }
    if (status != 0) {
        bd_log("error", "profile commit of %s failed: %s", p->key,
               err != NULL ? err->message : berth_strerror(status));
        bd_reply_error(p->reply, 500, "InternalServerError", "",
                       "the resource store is failing");
        preq_free(p);
        return;
    }
    if (p->kind == P_DELETE) {
        bd_reply_send(p->reply, 200, NULL, NULL);
        preq_free(p);
        return;
    }
    answer_body(p, p->ok_status);
}

/* Commits p's effects, guarded by the record as read; `rec` (NULL: the
 * record is dropped with its revisions) is written with its index entry,
 * and `revision_doc` (NULL: none) as revision p->answer_rev. */
static void commit(preq_t *p, json_t *rec, const char *revision_doc)
{
    p->nfx = 0;
    free(p->rectext);
    p->rectext = NULL;
    fx_add(p, BERTH_EFFECT_EXPECT, "profiles", p->key, p->sha1);
    if (rec != NULL) {
        p->rectext = json_dumps(rec, JSON_COMPACT);
        if (p->rectext == NULL) {
            bd_reply_error(p->reply, 503, "ServiceUnavailable", "", "out of memory");
            preq_free(p);
            return;
        }
        fx_add(p, BERTH_EFFECT_HSET, "profiles", p->key, p->rectext);
        fx_add(p, BERTH_EFFECT_ZADD, "profileindex", p->key, NULL);
        if (revision_doc != NULL) {
            snprintf(p->field, sizeof p->field, "%llu", (unsigned long long)p->answer_rev);
            fx_add(p, BERTH_EFFECT_HSET, p->revs, p->field, revision_doc);
        }
    } else {
        fx_add(p, BERTH_EFFECT_HDEL, "profiles", p->key, NULL);
        fx_add(p, BERTH_EFFECT_ZREM, "profileindex", p->key, NULL);
        fx_add(p, BERTH_EFFECT_DEL, p->revs, NULL, NULL);
    }
    berth_error_t err;
    int rc = berth_store_async_records(p->api->async, p->key, -1, p->fx, p->nfx, on_commit, p,
                                       &err);
    if (rc != 0)
        on_commit(rc, NULL, &err, p);
}

/* ---- deciding ---------------------------------------------------------------------------- */

static bool same_json(const json_t *a, const json_t *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return json_equal((json_t *)a, (json_t *)b) != 0;
}

static bool tags_equal(const json_t *a, const json_t *b)
{
    bool ea = !json_is_object(a) || json_object_size(a) == 0;
    bool eb = !json_is_object(b) || json_object_size(b) == 0;
    return ea && eb ? true : same_json(a, b);
}

static uint64_t latest_of(const json_t *rec)
{
    json_int_t n = json_integer_value(json_object_get(rec, "latest"));
    return n > 0 ? (uint64_t)n : 0;
}

/* The record a PUT or PATCH writes: the old one's created kept. */
static json_t *new_record(preq_t *p, uint64_t latest)
{
    int64_t now = berth__clock_wall_ms();
    json_t *rec = p->rec != NULL ? json_deep_copy(p->rec) : json_object();
    if (rec == NULL)
        return NULL;
    if (p->rec == NULL) {
        char id[512];
        snprintf(id, sizeof id,
                 "/subscriptions/%s/resourceGroups/%s/providers/" PROFILE_TYPE "/%s", p->sub,
                 p->rg, p->name);
        json_object_set_new(rec, "id", json_string(id));
        json_object_set_new(rec, "name", json_string(p->name));
        json_object_set_new(rec, "location", json_string(p->location));
        json_object_set_new(rec, "created", json_integer(now));
    }
    if (p->kind == P_PUT) {
        json_object_set_new(rec, "zones", p->zones != NULL ? json_incref(p->zones) : json_array());
        json_object_set_new(rec, "tags", p->tags != NULL ? json_incref(p->tags) : json_object());
    } else if (p->tags != NULL) {
        json_object_set(rec, "tags", p->tags);
    }
    json_object_set_new(rec, "latest", json_integer((json_int_t)latest));
    json_object_set_new(rec, "updated", json_integer(now));
    return rec;
}

static void decide_put(preq_t *p)
{
    uint64_t latest = latest_of(p->rec);
    p->ok_status = p->rec != NULL ? 200 : 201;
    bool same_doc = p->latest != NULL && strcmp(p->latest, p->doc) == 0;
    if (same_doc && tags_equal(json_object_get(p->rec, "tags"), p->tags)) {
        p->answer_rev = latest;     /* an identical PUT changes nothing */
        answer_body(p, 200);
        return;
    }
    uint64_t rev = same_doc ? latest : latest + 1;
    p->newrec = new_record(p, rev);
    if (p->newrec == NULL) {
        bd_reply_error(p->reply, 503, "ServiceUnavailable", "", "out of memory");
        preq_free(p);
        return;
    }
    p->answer_rev = rev;
    if (!same_doc) {
        /* The answer shows the new revision. */
        free(p->latest);
        p->latest = strdup(p->doc);
        if (p->latest == NULL) {
            bd_reply_error(p->reply, 503, "ServiceUnavailable", "", "out of memory");
            preq_free(p);
            return;
        }
    }
    commit(p, p->newrec, same_doc ? NULL : p->doc);
}

/* ---- reads ------------------------------------------------------------------------------- */

static void on_latest(int status, const char *text, size_t len, void *data);
static void start_list(preq_t *p, const char *after);
static void revisions_read(preq_t *p);

/* Reads revision n of p's profile for cb. */
static int read_revision(preq_t *p, uint64_t n, bd_text_cb cb, void *data)
{
    char field[24];
    snprintf(field, sizeof field, "%llu", (unsigned long long)n);
    return bd_records_read(p->api->records, p->revs, field, cb, data);
}

static void store_failing(preq_t *p, int status)
{
    if (p->kind == P_RESOLVE) {
        berth_error_set(&p->err, BERTH_EIO, "InternalServerError", "",
                        "the container group profile could not be read: %s",
                        berth_strerror(status));
        resolve_end(p, BERTH_EIO, NULL, 0);
        return;
    }
    bd_reply_error(p->reply, status == BERTH_ENOMEM ? 503 : 500,
                   status == BERTH_ENOMEM ? "ServiceUnavailable" : "InternalServerError", "",
                   "the resource store is failing");
    preq_free(p);
}

static void on_record(int status, const char *text, size_t len, void *data)
{
    preq_t *p = data;
    json_decref(p->rec);
    p->rec = NULL;
    json_decref(p->newrec);
    p->newrec = NULL;
    free(p->latest);
    p->latest = NULL;
    p->sha1[0] = '\0';
    if (status != 0) {
        store_failing(p, status);
        return;
    }
    if (text != NULL) {
        p->rec = json_loadb(text, len, 0, NULL);
        if (!json_is_object(p->rec)) {
            store_failing(p, BERTH_EIO);
            return;
        }
        bd_sha1_hex(text, len, p->sha1);
    }
    uint64_t latest = latest_of(p->rec);
    if (p->rec == NULL) {
        switch (p->kind) {
        case P_PUT:
            decide_put(p);
            return;
        case P_DELETE:
            bd_reply_send(p->reply, 204, NULL, NULL);
            preq_free(p);
            return;
        case P_RESOLVE:
            berth_error_set(&p->err, BERTH_ENOENT, "ResourceNotFound", "id",
                            "The Resource '" PROFILE_TYPE "/%s' under resource group '%s' was "
                            "not found.", p->name, p->rg);
            resolve_end(p, BERTH_ENOENT, NULL, 0);
            return;
        default:
            not_found(p->reply, p->rg, p->name);
            preq_free(p);
            return;
        }
    }
    if (p->kind == P_PUT && strcmp(api_jstr(p->rec, "location"), p->location) != 0) {
        bd_reply_error(p->reply, 409, "InvalidResourceLocation", "location",
                       "the container group profile '%s' already exists in location '%s'; it "
                       "cannot move to '%s'", p->name, api_jstr(p->rec, "location"),
                       p->location);
        preq_free(p);
        return;
    }
    if (p->kind == P_DELETE) {
        commit(p, NULL, NULL);
        return;
    }
    if (p->kind == P_REVS) {
        revisions_read(p);
        return;
    }
    uint64_t want = latest;
    if (p->kind == P_REV || (p->kind == P_RESOLVE && p->revision != 0)) {
        if (p->revision > latest) {
            if (p->kind == P_RESOLVE) {
                berth_error_set(&p->err, BERTH_ENOENT, "RevisionNotFound", "revision",
                                "the container group profile '%s' has no revision %llu (its "
                                "latest is %llu)", p->name, (unsigned long long)p->revision,
                                (unsigned long long)latest);
                resolve_end(p, BERTH_ENOENT, NULL, 0);
            } else {
                bd_reply_error(p->reply, 404, "RevisionNotFound", "revisionNumber",
                               "the container group profile '%s' has no revision %llu (its "
                               "latest is %llu)", p->name, (unsigned long long)p->revision,
                               (unsigned long long)latest);
                preq_free(p);
            }
            return;
        }
        want = p->revision;
    }
    p->answer_rev = want;
    if (read_revision(p, want, on_latest, p) != 0)
        store_failing(p, BERTH_ENOMEM);
}

/* The revision a GET, PUT, PATCH or resolve wanted (p->answer_rev). */
static void on_latest(int status, const char *text, size_t len, void *data)
{
    preq_t *p = data;
    if (status != 0) {
        store_failing(p, status);
        return;
    }
    if (text != NULL && (p->latest = strndup(text, len)) == NULL) {
        store_failing(p, BERTH_ENOMEM);
        return;
    }
    if (p->latest == NULL && p->kind != P_PUT) {
        /* The record names a revision its hash lacks: a write in between
         * (a DELETE) or damage; a resolve says which. */
        if (p->kind == P_RESOLVE) {
            berth_error_set(&p->err, BERTH_ENOENT, "RevisionNotFound", "revision",
                            "the container group profile '%s' has no revision %llu", p->name,
                            (unsigned long long)p->answer_rev);
            resolve_end(p, BERTH_ENOENT, NULL, 0);
            return;
        }
        store_failing(p, BERTH_EIO);
        return;
    }
    switch (p->kind) {
    case P_RESOLVE:
        resolve_end(p, 0, p->latest, p->answer_rev);
        return;
    case P_PUT:
        decide_put(p);
        return;
    case P_PATCH:
        if (p->tags == NULL) {      /* nothing to change */
            answer_body(p, 200);
            return;
        }
        p->newrec = new_record(p, latest_of(p->rec));
        if (p->newrec == NULL) {
            store_failing(p, BERTH_ENOMEM);
            return;
        }
        p->ok_status = 200;
        commit(p, p->newrec, NULL);
        return;
    default:
        answer_body(p, 200);
        return;
    }
}

static void read_record(preq_t *p)
{
    if (bd_records_read(p->api->records, "profiles", p->key, on_record, p) != 0)
        store_failing(p, BERTH_ENOMEM);
}

/* ---- lists: revisions, and profiles ------------------------------------------------------ */

static void list_done(preq_t *p)
{
    if (p->failed != 0) {
        store_failing(p, p->failed);
        return;
    }
    json_t *value = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(p->value, i, b)
    {
        if (json_is_object(b))
            json_array_append(value, b);
    }
    bd_reply_send(p->reply, 200, json_pack("{s:o}", "value", value), NULL);
    preq_free(p);
}

static void on_slot(int status, const char *text, size_t len, void *data)
{
    pslot_t *s = data;
    preq_t *p = s->p;
    if (status != 0 && p->failed == 0)
        p->failed = status;
    if (status == 0 && text != NULL) {
        char *doc = strndup(text, len);
        json_t *body = doc != NULL ? profile_body(s->rec, doc, s->revision) : NULL;
        free(doc);
        if (body != NULL)
            json_array_set_new(p->value, s->index, body);
    }
    free(s);
    if (--p->pending == 0)
        list_done(p);
}

/* Queues the read of one body of a list: revision `revision` of record
 * `rec` (revisions key `revs`), into p->value[index]. */
static void slot_read(preq_t *p, size_t index, json_t *rec, const char *revs, uint64_t revision)
{
    pslot_t *s = calloc(1, sizeof *s);
    char field[24];
    snprintf(field, sizeof field, "%llu", (unsigned long long)revision);
    p->pending++;
    if (s == NULL) {
        p->failed = BERTH_ENOMEM;
        p->pending--;
        return;
    }
    s->p = p;
    s->index = index;
    s->rec = rec;
    s->revision = revision;
    if (bd_records_read(p->api->records, revs, field, on_slot, s) != 0) {
        free(s);
        p->failed = BERTH_ENOMEM;
        p->pending--;
    }
}

/* Reads every body of the list (p->value holds one null per body), then
 * answers. */
static void slots_start(preq_t *p, size_t n, void (*queue)(preq_t *, size_t))
{
    p->pending = 1;                 /* held until every read is queued */
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(p->value, json_null());
        queue(p, i);
    }
    if (--p->pending == 0)
        list_done(p);
}

static void queue_revision(preq_t *p, size_t i)
{
    slot_read(p, i, p->rec, p->revs, (uint64_t)i + 1);
}

static void revisions_read(preq_t *p)
{
    p->value = json_array();
    if (p->value == NULL) {
        store_failing(p, BERTH_ENOMEM);
        return;
    }
    slots_start(p, (size_t)latest_of(p->rec), queue_revision);
}

static void queue_profile(preq_t *p, size_t i)
{
    json_t *rec = json_array_get(p->recs, i);
    json_t *key = json_object_get(rec, "_key");
    char h[BD_SHA1_HEX + 1], revs[16 + BD_SHA1_HEX];
    bd_sha1_hex(json_string_value(key), json_string_length(key), h);
    snprintf(revs, sizeof revs, "profilerevs:%s", h);
    slot_read(p, i, rec, revs, latest_of(rec));
}

static void on_list(int status, const char *const *keys, json_t *const *recs, size_t n,
                    bool more, void *data)
{
    preq_t *p = data;
    if (status != 0) {
        store_failing(p, status);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (recs[i] == NULL)
            continue;               /* deleted meanwhile */
        json_t *r = json_deep_copy(recs[i]);
        if (r == NULL || json_object_set_new(r, "_key", json_string(keys[i])) != 0 ||
            json_array_append_new(p->recs, r) != 0) {
            store_failing(p, BERTH_ENOMEM);
            return;
        }
    }
    if (more && n > 0) {
        start_list(p, keys[n - 1]);
        return;
    }
    slots_start(p, json_array_size(p->recs), queue_profile);
}

static void start_list(preq_t *p, const char *after)
{
    if (bd_records_list_in(p->api->records, "profileindex", "profiles", p->prefix, after,
                           PROFILE_PAGE, on_list, p) != 0)
        store_failing(p, BERTH_ENOMEM);
}

/* ---- a PUT's document (no I/O) ----------------------------------------------------------- */

/* Checks a PUT's body and prepares p->doc, p->location, p->tags and
 * p->zones.  0, or -1 with the reply sent (p left for the caller to free). */
static int put_document(preq_t *p, const bd_request_t *req)
{
    bd_reply_t *reply = p->reply;
    if (req->body == NULL || req->body_len == 0) {
        bd_reply_error(reply, 400, "InvalidRequestContent", "",
                       "the request has no body: a container group profile is required");
        return -1;
    }
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        bd_reply_error(reply, 400, "InvalidRequestContent", "",
                       "the request body is not a JSON object");
        return -1;
    }
    int rc = -1;
    json_t *doc = NULL;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        static const char *const KNOWN[] = {"id", "name", "type", "location", "tags",
                                            "zones", "properties", "systemData"};
        bool known = false;
        for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++)
            known = known || strcmp(k, KNOWN[i]) == 0;
        if (!known) {
            bd_reply_error(reply, 400, "InvalidRequestContent", k,
                           "'%s' is not a member of a container group profile", k);
            goto out;
        }
    }
    json_t *name = json_object_get(body, "name");
    if (name != NULL && (!json_is_string(name) ||
                         strcasecmp(json_string_value(name), p->name) != 0)) {
        bd_reply_error(reply, 400, "ContainerGroupProfileNameMismatch", "name",
                       "the body's name differs from the name in the path '%s'", p->name);
        goto out;
    }
    const char *location = json_string_value(json_object_get(body, "location"));
    if (location == NULL || location[0] == '\0' || !bd_valid_location(location)) {
        bd_reply_error(reply, 400, "LocationRequired", "location",
                       "the container group profile needs a valid 'location'");
        goto out;
    }
    bd_location_norm(location, p->location, sizeof p->location);
    json_t *tags = json_object_get(body, "tags");
    if (tags != NULL && !json_is_null(tags)) {
        /* The same rules as a PATCH's tags. */
        json_t *t = json_pack("{s:O}", "tags", tags);
        char *text = json_dumps(t, JSON_COMPACT);
        json_decref(t);
        const char *target = "", *why = "";
        int bad = text == NULL ? -1 : bd_patch_body_parse(text, strlen(text), &p->tags, &target,
                                                         &why);
        free(text);
        if (bad != 0) {
            bd_reply_error(reply, 400, "InvalidRequestContent", "tags", "%s",
                           why[0] ? why : "out of memory");
            goto out;
        }
    }
    json_t *props = json_object_get(body, "properties");
    if (!json_is_object(props)) {
        bd_reply_error(reply, 400, "InvalidRequestContent", "properties",
                       "a container group profile needs its 'properties' object");
        goto out;
    }
    /* A body read back and sent again carries the read-only revision. */
    json_t *copy = json_deep_copy(props);
    if (json_is_integer(json_object_get(copy, "revision")))
        json_object_del(copy, "revision");
    doc = json_pack("{s:s, s:o}", "location", p->location, "properties", copy);
    json_t *zones = json_object_get(body, "zones");
    if (doc != NULL && zones != NULL && !json_is_null(zones))
        json_object_set(doc, "zones", zones);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (text == NULL) {
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        goto out;
    }
    berth_group_t *g = NULL;
    berth_error_t err;
    berth_error_clear(&err);
    int prc = berth_group_parse(text, strlen(text), &g, &err);
    free(text);
    if (prc != 0) {
        bd_reply_berth_error(reply, prc == BERTH_ETOOBIG ? 413 : 400, &err);
        goto out;
    }
    prc = bd_group_seal(p->api->cfg->secrets, g, &err);
    if (prc != 0) {
        berth_group_free(g);
        bd_reply_berth_error(reply, prc == BERTH_ENOMEM ? 503 : 400, &err);
        goto out;
    }
    size_t dlen = 0;
    if (berth_group_to_json(g, 0, &text, &dlen) != 0) {
        berth_group_free(g);
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        goto out;
    }
    berth_group_free(g);
    p->doc = strdup(text);
    berth_free(text);
    json_t *parsed = p->doc != NULL ? json_loads(p->doc, 0, NULL) : NULL;
    json_t *pz = json_object_get(parsed, "zones");
    p->zones = json_is_array(pz) ? json_incref(pz) : NULL;
    json_decref(parsed);
    if (p->doc == NULL) {
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_decref(doc);
    json_decref(body);
    return rc;
}

/* ---- routes ------------------------------------------------------------------------------ */

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static preq_t *preq_new(bd_api_t *api, bd_reply_t *reply, pkind_t kind)
{
    preq_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        if (reply != NULL)
            bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        return NULL;
    }
    p->api = api;
    p->reply = reply;
    p->kind = kind;
    return p;
}

/* Contract: profiles.h. */
void bd_profiles_handle(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                        int n)
{
    char apiv[32];
    int q = bd_query_get(req->query, "api-version", apiv, sizeof apiv);
    if (q == 0) {
        bd_reply_error(reply, 400, "MissingApiVersionParameter", "api-version",
                       "The api-version query parameter (?api-version=) is required for all "
                       "requests. Container group profiles are served from api-version "
                       "2024-05-01-preview on.");
        return;
    }
    if (q < 0 || !bd_profile_api_version_ok(apiv)) {
        bd_reply_error(reply, 400, "InvalidApiVersionParameter", "api-version",
                       "The api-version '%s' is invalid for container group profiles. They are "
                       "served from api-version 2024-05-01-preview on (2025-09-01 stable).",
                       q < 0 ? "" : apiv);
        return;
    }
    if (n == 5) {
        bd_reply_route(reply, "CGProfiles_ListBySubscription");
        if (req->method != BD_GET) {
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
            return;
        }
        preq_t *p = preq_new(api, reply, P_LIST);
        if (p == NULL)
            return;
        bd_lower(seg[1], p->prefix, sizeof p->prefix - 1);
        strcat(p->prefix, "/");
        p->recs = json_array();
        p->value = json_array();
        start_list(p, NULL);
        return;
    }
    if (!bd_valid_resource_group(seg[3])) {
        bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                       "resource group names are 1-90 letters, digits, '-', '_', '.', '(' or "
                       "')', not ending with '.'");
        return;
    }
    if (n == 7) {
        bd_reply_route(reply, "CGProfiles_ListByResourceGroup");
        if (req->method != BD_GET) {
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
            return;
        }
        preq_t *p = preq_new(api, reply, P_LIST);
        if (p == NULL)
            return;
        bd_resource_key(seg[1], seg[3], "", p->prefix, sizeof p->prefix);
        p->recs = json_array();
        p->value = json_array();
        start_list(p, NULL);
        return;
    }
    if (!valid_profile_name(seg[7])) {
        bd_reply_error(reply, 400, "InvalidContainerGroupProfileName",
                       "containerGroupProfileName",
                       "container group profile names are 1-63 letters, digits, '-' or '_', "
                       "beginning and ending with a letter or digit");
        return;
    }
    pkind_t kind;
    uint64_t revision = 0;
    if (n == 8) {
        switch (req->method) {
        case BD_GET:
            kind = P_GET;
            bd_reply_route(reply, "CGProfile_Get");
            break;
        case BD_PUT:
            kind = P_PUT;
            bd_reply_route(reply, "CGProfile_CreateOrUpdate");
            break;
        case BD_PATCH:
            kind = P_PATCH;
            bd_reply_route(reply, "CGProfile_Update");
            break;
        case BD_DELETE:
            kind = P_DELETE;
            bd_reply_route(reply, "CGProfile_Delete");
            break;
        default:
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
            return;
        }
    } else if ((n == 9 || n == 10) && ieq(seg[8], "revisions")) {
        kind = n == 9 ? P_REVS : P_REV;
        bd_reply_route(reply, n == 9 ? "CGProfile_ListAllRevisions"
                                     : "CGProfile_GetByRevisionNumber");
        if (req->method != BD_GET) {
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
            return;
        }
        if (n == 10) {
            char *end = NULL;
            unsigned long long r = strtoull(seg[9], &end, 10);
            if (seg[9][0] < '0' || seg[9][0] > '9' || *end != '\0' || r == 0 ||
                r > (unsigned long long)INT32_MAX) {
                bd_reply_error(reply, 400, "InvalidRevisionNumber", "revisionNumber",
                               "a revision number is a whole number from 1");
                return;
            }
            revision = r;
        }
    } else {
        bd_reply_error(reply, 404, "NotFound", "", "no such resource or route");
        return;
    }
    preq_t *p = preq_new(api, reply, kind);
    if (p == NULL)
        return;
    set_names(p, seg[1], seg[3], seg[7]);
    p->revision = revision;
    if (kind == P_PUT && put_document(p, req) != 0) {
        preq_free(p);
        return;
    }
    if (kind == P_PATCH) {
        const char *target = "", *why = "";
        if (bd_patch_body_parse(req->body ? req->body : "", req->body ? req->body_len : 0,
                                &p->tags, &target, &why) != 0) {
            bd_reply_error(reply, 400, "InvalidRequestContent", target, "%s", why);
            preq_free(p);
            return;
        }
    }
    read_record(p);
}

/* ---- the resolver ------------------------------------------------------------------------ */

/* Contract: profiles.h. */
int bd_profile_resolve(bd_api_t *api, const char *sub, const char *id, uint64_t revision,
                       bd_profile_cb cb, void *data)
{
    preq_t *p = preq_new(api, NULL, P_RESOLVE);
    if (p == NULL)
        return BERTH_ENOMEM;
    p->cb = cb;
    p->data = data;
    p->revision = revision;
    char buf[1024];
    char *seg[10];
    int n = id != NULL ? bd_path_split(id, buf, sizeof buf, seg, 10) : -1;
    bool ok = n == 8 && ieq(seg[0], "subscriptions") && ieq(seg[2], "resourceGroups") &&
              ieq(seg[4], "providers") && ieq(seg[5], "Microsoft.ContainerInstance") &&
              ieq(seg[6], "containerGroupProfiles") && bd_valid_subscription(seg[1]) &&
              bd_valid_resource_group(seg[3]) && valid_profile_name(seg[7]);
    if (!ok) {
        berth_error_set(&p->err, BERTH_EINVAL, "InvalidContainerGroupProfileReference", "id",
                        "a container group profile reference is an ARM id '/subscriptions/"
                        "{subscription}/resourceGroups/{resourceGroup}/providers/"
                        "Microsoft.ContainerInstance/containerGroupProfiles/{name}'");
    } else if (!ieq(seg[1], sub)) {
        ok = false;
        berth_error_set(&p->err, BERTH_EINVAL, "InvalidContainerGroupProfileReference", "id",
                        "the container group profile must belong to subscription '%s'", sub);
    }
    if (!ok) {
        /* Never from inside this call: a zero timeout on the loop. */
        p->status = BERTH_EINVAL;
        struct timeval now = {0, 0};
        if (event_base_once(api->base, -1, EV_TIMEOUT, resolve_later, p, &now) != 0) {
            preq_free(p);
            return BERTH_ENOMEM;
        }
        return 0;
    }
    set_names(p, seg[1], seg[3], seg[7]);
    if (bd_records_read(api->records, "profiles", p->key, on_record, p) != 0) {
        preq_free(p);
        return BERTH_ENOMEM;
    }
    return 0;
}

/* ---- a container group from a profile ---------------------------------------------------- */

/* Contract: profiles.h. */
int bd_profile_reference(const char *body, size_t len, char **id, uint64_t *revision,
                         berth_error_t *err)
{
    *id = NULL;
    *revision = 0;
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *ref = json_object_get(json_object_get(doc, "properties"), "containerGroupProfile");
    int rc = 0;
    if (ref == NULL || json_is_null(ref))
        goto out;
    rc = BERTH_EINVAL;
    if (!json_is_object(ref)) {
        berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent",
                        "properties.containerGroupProfile",
                        "containerGroupProfile is an object {id, revision}");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(ref, k, v)
    {
        if (strcmp(k, "id") != 0 && strcmp(k, "revision") != 0) {
            berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent",
                            "properties.containerGroupProfile", "'%s' is not a member of a "
                            "container group profile reference (id, revision)", k);
            goto out;
        }
    }
    const char *s = json_string_value(json_object_get(ref, "id"));
    if (s == NULL || s[0] == '\0') {
        berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent",
                        "properties.containerGroupProfile.id",
                        "containerGroupProfile.id is the profile's ARM id");
        goto out;
    }
    json_t *r = json_object_get(ref, "revision");
    if (r != NULL && !json_is_null(r)) {
        json_int_t x = json_integer_value(r);
        if (!json_is_integer(r) || x < 1 || x > INT32_MAX) {
            berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent",
                            "properties.containerGroupProfile.revision",
                            "containerGroupProfile.revision is a whole number from 1");
            goto out;
        }
        *revision = (uint64_t)x;
    }
    *id = strdup(s);
    rc = *id != NULL ? 1 : BERTH_ENOMEM;
    if (rc == BERTH_ENOMEM)
        berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
out:
    json_decref(doc);
    return rc;
}

/* Sets over `base` (an object) each member of `over`. */
static void merge_members(json_t *base, json_t *over)
{
    const char *k;
    json_t *v;
    json_object_foreach(over, k, v)
        json_object_set(base, k, v);
}

/* Merges the request's containers `over` into the profile's `base` (a
 * copy, changed in place), matched by name. */
static void merge_named(json_t *base, json_t *over)
{
    size_t i;
    json_t *c;
    json_array_foreach(over, i, c)
    {
        json_t *b = api_find_named(base, api_jstr(c, "name"));
        if (b == NULL || !json_is_object(c)) {
            json_array_append(base, c);
            continue;
        }
        json_t *bp = json_object_get(b, "properties"), *cp = json_object_get(c, "properties");
        const char *k;
        json_t *v;
        json_object_foreach(c, k, v)
        {
            if (strcmp(k, "properties") != 0 || !json_is_object(bp) || !json_is_object(cp))
                json_object_set(b, k, v);
        }
        if (json_is_object(bp) && json_is_object(cp))
            merge_members(bp, cp);
    }
}

/* Contract: profiles.h. */
int bd_profile_merge(const char *profile_doc, const char *body, size_t len, char **out,
                     size_t *out_len, berth_error_t *err)
{
    *out = NULL;
    *out_len = 0;
    json_t *base = json_loads(profile_doc, 0, NULL);
    json_t *req = json_loadb(body, len, 0, NULL);
    int rc = BERTH_EINVAL;
    if (!json_is_object(base) || !json_is_object(json_object_get(base, "properties"))) {
        berth_error_set(err, BERTH_EINVAL, "InvalidContainerGroupProfile", "", "the container "
                        "group profile's document could not be read");
        goto out;
    }
    if (!json_is_object(req)) {
        berth_error_set(err, BERTH_EINVAL, "InvalidRequestContent", "",
                        "the request body is not a JSON object");
        goto out;
    }
    json_t *bprops = json_object_get(base, "properties");
    const char *k;
    json_t *v;
    json_object_foreach(req, k, v)
    {
        if (strcmp(k, "properties") != 0 || !json_is_object(v)) {
            json_object_set(base, k, v);
            continue;
        }
        const char *pk;
        json_t *pv;
        json_object_foreach(v, pk, pv)
        {
            if (strcmp(pk, "containerGroupProfile") == 0)
                continue;
            json_t *bv = json_object_get(bprops, pk);
            if ((strcmp(pk, "containers") == 0 || strcmp(pk, "initContainers") == 0) &&
                json_is_array(bv) && json_is_array(pv))
                merge_named(bv, pv);
            else
                json_object_set(bprops, pk, pv);
        }
    }
    *out = json_dumps(base, JSON_COMPACT);
    if (*out == NULL) {
        rc = BERTH_ENOMEM;
        berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        goto out;
    }
    *out_len = strlen(*out);
    rc = 0;
out:
    json_decref(base);
    json_decref(req);
    return rc;
}
