/*
 * records_fsck.c: berthd's records checked against the cell's placements
 * (records_fsck.h), for `berthctl fsck`.
 *
 * It reads berthd's resource records (HSCAN of berth:{C}:resources) on a
 * blocking connection of its own, and the placements through the library
 * (the store's replica, berth_store_group_read()).  It is part of the
 * records module: the one place besides records.c that knows the record's
 * shape (records.h).
 *
 * It also reports every secret a stored document holds in clear (lib/
 * seal.h): berthd seals each before it stores a document, so one in clear
 * was stored by a berthd without --secrets-key or written around berthd.
 *
 * This file must never write, and never print a secret's value.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "digest.h"
#include "lib/seal.h"
#include "records_fsck.h"
#include "resource.h"

typedef struct check {
    berth_store_t *store;
    berth_engine_t *engine;
    redisContext *c;
    char prefix[96];
    bd_records_fsck_cb cb;
    void *data;
    int violations;
    size_t resources;
} check_t;

static void violation(check_t *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(check_t *k, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    k->violations++;
    if (k->cb != NULL)
        k->cb(msg, k->data);
}

static redisContext *connect_url(const char *url)
{
    struct timeval tv = {5, 0};
    char host[512];
    int port;
    int kind = bd_redis_url_parse(url, host, sizeof host, &port);
    return kind < 0    ? NULL
           : kind == 1 ? redisConnectUnixWithTimeout(host, tv)
                       : redisConnectWithTimeout(host, port, tv);
}

/* Whether `key` names a container-group resource ("<sub>/<rg>/<name>"):
 * NGroup members ("<sub>/<rg>/<ngroup>/<name>-<n>") and standby-pool
 * members ("pool:...") are groups no resource record owns. */
static bool resource_key(const char *key)
{
    if (strncmp(key, "pool:", 5) == 0)
        return false;
    int slashes = 0;
    for (const char *p = key; *p; p++)
        slashes += *p == '/';
    return slashes == 2;
}

static int clear_secret(const char *path, void *data)
{
    void **kv = data;
    violation(kv[0], "container group %s stores a secret in clear at %s", (const char *)kv[1],
              path);
    return 0;
}

/* Each secret of the document `spec` of group `key` that is not sealed
 * (lib/seal.h) is a violation naming its JSON path, never its value. */
static void check_secrets(check_t *k, const char *key, const char *spec)
{
    berth_group_t *g = NULL;
    if (spec == NULL || berth_group_parse(spec, strlen(spec), &g, NULL) != 0) {
        if (spec != NULL)
            violation(k, "container group %s: its document does not parse", key);
        return;
    }
    void *kv[2] = {k, (void *)key};
    if (berth__secrets_clear(g, clear_secret, kv) < 0)
        violation(k, "container group %s: its document could not be searched for secrets",
                  key);
    berth_group_free(g);
}

/* One resource record against the cell. */
static void check_record(check_t *k, const char *key, const char *text, size_t len)
{
    k->resources++;
    json_t *rec = json_loadb(text, len, 0, NULL);
    if (!json_is_object(rec)) {
        violation(k, "resource %s: its record is not a JSON object", key);
        json_decref(rec);
        return;
    }
    const char *state = json_string_value(json_object_get(rec, "state"));
    const char *digest = json_string_value(json_object_get(rec, "digest"));
    json_int_t gen = json_integer_value(json_object_get(rec, "generation"));
    bool stopped = state != NULL && strcmp(state, "Stopped") == 0;
    char *spec = NULL;
    uint64_t group_gen = 0;
    berth_error_t err;
    int rc = berth_store_document_read(k->store, key, &spec, &group_gen, &err);
    char have[41] = "";
    if (spec != NULL)
        bd_document_digest(spec, have);
    if (rc == 0 && group_gen > 0) {
        if (stopped)
            violation(k, "resource %s is Stopped but its group is placed (generation %llu)",
                      key, (unsigned long long)group_gen);
        if (gen > 0 && (uint64_t)gen > group_gen)
            violation(k, "resource %s is at generation %lld, ahead of its group's %llu", key,
                      (long long)gen, (unsigned long long)group_gen);
        if (!stopped && (digest == NULL || strcmp(digest, have) != 0))
            violation(k, "resource %s describes another document than its group runs "
                         "(resource generation %lld, group generation %llu)", key,
                      (long long)gen, (unsigned long long)group_gen);
    } else if (rc == 0 || rc == BERTH_ENOENT) {
        check_secrets(k, key, spec);    /* kept; a placed one is check_group's */
        berth_eviction_t ev;
        bool evicted = berth_store_eviction_read(k->store, key, &ev, NULL) == 0;
        if (!stopped && !evicted)
            violation(k, "resource %s is %s with no placement and no eviction: nothing will "
                         "ever run it", key, state != NULL ? state : "in no state");
        else if (rc == BERTH_ENOENT)
            violation(k, "resource %s is %s but the cell keeps no document for it: it can "
                         "never start again", key, stopped ? "Stopped" : "evicted");
        else if (digest == NULL || strcmp(digest, have) != 0)
            violation(k, "resource %s describes another document than the cell keeps for it",
                      key);
    } else {
        violation(k, "resource %s: its group could not be read: %s", key, err.message);
    }
    berth_free(spec);
    json_decref(rec);
}

typedef struct group_walk {
    check_t *k;
    int rc;
} group_walk_t;

/* A placed group's document holds no clear secret, and its resource
 * record must exist. */
static int check_group(const char *key, void *data)
{
    group_walk_t *w = data;
    char *spec = NULL;
    uint64_t gen = 0;
    berth_error_t err;
    int rc = berth_store_document_read(w->k->store, key, &spec, &gen, &err);
    if (rc == 0)
        check_secrets(w->k, key, spec);
    else if (rc != BERTH_ENOENT)
        violation(w->k, "container group %s: its document could not be read: %s", key,
                  err.message);
    berth_free(spec);
    if (!resource_key(key))
        return 0;
    redisReply *r = redisCommand(w->k->c, "HEXISTS %sresources %s", w->k->prefix, key);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        if (r != NULL)
            freeReplyObject(r);
        w->rc = BERTH_EIO;
        return 1;
    }
    if (r->integer == 0)
        violation(w->k, "container group %s is placed but has no resource record", key);
    freeReplyObject(r);
    return 0;
}

/* Contract: records_fsck.h. */
int bd_records_fsck(berth_store_t *store, berth_engine_t *engine, const char *url,
                    const char *cell, bd_records_fsck_cb cb, void *data, size_t *resources,
                    berth_error_t *err)
{
    check_t k = {.store = store, .engine = engine, .cb = cb, .data = data};
    snprintf(k.prefix, sizeof k.prefix, "berth:{%s}:", cell);
    k.c = connect_url(url);
    if (k.c == NULL || k.c->err != 0) {
        berth_error_set(err, BERTH_EIO, "RedisUnavailable", "", "cannot connect to %s: %s", url,
                        k.c != NULL ? k.c->errstr : "bad URL");
        if (k.c != NULL)
            redisFree(k.c);
        return BERTH_EIO;
    }
    int rc = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(k.c, "HSCAN %sresources %s COUNT 500", k.prefix, cursor);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r != NULL)
                freeReplyObject(r);
            rc = BERTH_EIO;
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *kv = r->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2)
            check_record(&k, kv->element[i]->str, kv->element[i + 1]->str,
                         kv->element[i + 1]->len);
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (rc == 0) {
        group_walk_t w = {&k, 0};
        berth_engine_group_keys(engine, NULL, check_group, &w);
        rc = w.rc;
    }
    if (rc != 0)
        berth_error_set(err, rc, "RedisUnavailable", "", "Redis failed while reading %s: %s",
                        url, k.c->err != 0 ? k.c->errstr : "an unexpected reply");
    redisFree(k.c);
    if (resources != NULL)
        *resources = k.resources;
    return rc != 0 ? rc : k.violations;
}
