/*
 * store_read.c: reads of the cell's records beside the replica: a group's
 * record (document, generation, host), its instance view, a kept document,
 * an eviction record, and forgetting an eviction (the record and the kept
 * document: plain HDELs, no part of the replicated state).
 *
 * This file must never change the placement state (no Function calls, no
 * engine changes) and never return bytes that point into a freed reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <hiredis/hiredis.h>

#include "store-internal.h"

/* ---- group records ------------------------------------------------------------------------- */

/* HGET of `key` in hash `hash`: the string reply, or NULL with *rc set
 * (BERTH_ENOENT "container group '<key>' <missing>" when absent). */
static redisReply *hash_field(berth_store_t *s, const char *hash, const char *key,
                              const char *what, const char *missing, berth_error_t *err,
                              int *rc)
{
    const char *argv[] = {"HGET", hash, key};
    redisReply *r = berth__store_command(s, 3, argv, NULL, false, what, err, rc);
    if (r == NULL)
        return NULL;
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        *rc = berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                               "container group '%s' %s", key, missing);
        return NULL;
    }
    return r;
}

/* hash_field()'s string as a NUL-terminated copy in *out (free()). */
static int hash_text(berth_store_t *s, const char *hash, const char *key, const char *what,
                     const char *missing, char **out, berth_error_t *err)
{
    *out = NULL;
    int rc;
    redisReply *r = hash_field(s, hash, key, what, missing, err, &rc);
    if (r == NULL)
        return rc;
    char *copy = malloc(r->len + 1);
    if (copy != NULL) {
        memcpy(copy, r->str, r->len);
        copy[r->len] = '\0';
    }
    freeReplyObject(r);
    if (copy == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory %s", what);
    *out = copy;
    return 0;
}

/* Contract (store.h): one group record, read and decoded. */
int berth__store_group_fetch(berth_store_t *s, const char *key, struct redisReply **reply,
                             berth__group_record_t **record, berth_error_t *err)
{
    *reply = NULL;
    *record = NULL;
    int rc;
    redisReply *r = hash_field(s, s->k_groups, key, "reading a container group",
                               "is not in the cell", err, &rc);
    if (r == NULL)
        return rc;
    berth__group_record_t *g = malloc(sizeof *g);
    if (g == NULL) {
        freeReplyObject(r);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a record");
    }
    rc = berth__group_record_decode(r->str, r->len, g, err);
    if (rc < 0) {
        if (rc == BERTH_EINVAL) {
            rc = BERTH_EIO; /* a record Redis holds is unreadable: the store's fault */
            if (err != NULL)
                err->code = rc;
        }
        free(g);
        freeReplyObject(r);
        return rc;
    }
    *reply = r;
    *record = g;
    return 0;
}

/* Reads a group record: its document, generation and host, each output
 * optional (host: `hcap` bytes). */
int berth__store_group_record(berth_store_t *store, const char *key, char **spec_json,
                              uint64_t *generation, char *host, size_t hcap,
                              berth_error_t *err)
{
    berth_store_t *s = store;
    if (spec_json != NULL)
        *spec_json = NULL;
    if (key == NULL || key[0] == '\0')
        return berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                                "no container group key given");
    redisReply *r;
    berth__group_record_t *g;
    int rc = berth__store_group_fetch(s, key, &r, &g, err);
    if (rc < 0)
        return rc;
    char *spec = NULL;
    if (g->spec.ptr != NULL && spec_json != NULL) {
        spec = malloc(g->spec.len + 1);
        if (spec == NULL) {
            rc = berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                  "no memory for a document");
        } else {
            memcpy(spec, g->spec.ptr, g->spec.len);
            spec[g->spec.len] = '\0';
        }
    }
    if (rc == 0) {
        if (spec_json != NULL)
            *spec_json = spec;
        if (generation != NULL)
            *generation = g->generation;
        if (host != NULL && !berth__bytes_cstr(g->host, host, hcap)) {
            free(spec);
            if (spec_json != NULL)
                *spec_json = NULL;
            rc = berth__error_set(err, BERTH_EIO, "UnreadableRecord", "key",
                                  "container group '%s' names an unreadable host", key);
        }
    }
    free(g);
    freeReplyObject(r);
    return rc;
}

/* ---- instance views and kept documents ------------------------------------------------------- */

int berth__store_view_read(berth_store_t *s, const char *key, char **json, berth_error_t *err)
{
    char views[BERTH__KEYNAME_MAX];
    berth__store_key(s, views, sizeof views, "views", "");
    return hash_text(s, views, key, "reading an instance view", "has no instance view", json,
                     err);
}

int berth__store_metrics_read(berth_store_t *s, const char *key, char **json,
                              berth_error_t *err)
{
    char metrics[BERTH__KEYNAME_MAX];
    berth__store_key(s, metrics, sizeof metrics, "metrics", "");
    return hash_text(s, metrics, key, "reading usage metrics", "has no usage metrics", json,
                     err);
}

/* The document the cell keeps for a group that is not placed. */
int berth__store_kept_read(berth_store_t *s, const char *key, char **spec_json,
                           berth_error_t *err)
{
    return hash_text(s, s->k_documents, key, "reading a document", "is not in the cell",
                     spec_json, err);
}

/* ---- evictions ------------------------------------------------------------------------ */

int berth__store_eviction_read(berth_store_t *s, const char *key, berth_eviction_t *out,
                               berth_error_t *err)
{
    char ev[BERTH__KEYNAME_MAX];
    berth__store_key(s, ev, sizeof ev, "evictions", "");
    int rc;
    redisReply *r = hash_field(s, ev, key, "reading an eviction", "has no eviction record", err,
                               &rc);
    if (r == NULL)
        return rc;
    json_t *j = json_loadb(r->str, r->len, 0, NULL);
    freeReplyObject(r);
    const char *host = json_string_value(json_object_get(j, "host"));
    const char *by = json_string_value(json_object_get(j, "by"));
    const char *time = json_string_value(json_object_get(j, "time"));
    char *end = NULL;
    unsigned long long ms = time != NULL ? strtoull(time, &end, 10) : 0;
    if (host == NULL || by == NULL || time == NULL || end == time || *end != '\0' ||
        strlen(host) > BERTH_NAME_MAX || strlen(by) >= sizeof out->by) {
        json_decref(j);
        return berth__error_set(err, BERTH_EINVAL, "CorruptRecord", "key",
                                "the eviction record of container group '%s' is malformed",
                                key);
    }
    memcpy(out->host, host, strlen(host) + 1);
    memcpy(out->by, by, strlen(by) + 1);
    out->time_ms = ms;
    json_decref(j);
    return 0;
}

int berth__store_eviction_forget(berth_store_t *s, const char *key, berth_error_t *err)
{
    char ev[BERTH__KEYNAME_MAX];
    berth__store_key(s, ev, sizeof ev, "evictions", "");
    /* The record, then the document kept beside it. */
    const char *hashes[] = {ev, s->k_documents};
    for (size_t i = 0; i < 2; i++) {
        const char *argv[] = {"HDEL", hashes[i], key};
        int rc;
        redisReply *r = berth__store_command(s, 3, argv, NULL, false,
                                             "dropping an eviction", err, &rc);
        if (r == NULL)
            return rc;
        bool ok = r->type == REDIS_REPLY_INTEGER;
        if (!ok)
            rc = berth__redis_error(err, r, "HDEL of an eviction");
        freeReplyObject(r);
        if (!ok)
            return rc;
    }
    return 0;
}
