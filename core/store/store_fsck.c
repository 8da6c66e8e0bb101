/*
 * store_fsck.c: checking a cell (berth_store_fsck()): the hosts, groups,
 * host group sets, seq counter and newest log entry, read in one
 * MULTI/EXEC so they are one point of the log, then checked against each
 * other (capacity, sums, set membership, the counter).
 *
 * This file must never write to the cell or the engine: it reports each
 * violation and repairs nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store-internal.h"

typedef struct fsck_host {
    berth__host_record_t rec;
    bool ok;
    uint64_t mc, mem, gpu, groups;  /* sums over the groups on it           */
} fsck_host_t;

typedef struct fsck {
    berth_store_fsck_cb cb;
    void *data;
    int count;
} fsck_t;

static void violation(fsck_t *f, const char *fmt, ...) BERTH__PRINTF(2, 3);

static void violation(fsck_t *f, const char *fmt, ...)
{
    char msg[BERTH_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    f->count++;
    if (f->cb != NULL)
        f->cb(msg, f->data);
}

/* Checks the records read in one transaction: x holds HGETALL hosts,
 * HGETALL groups, GET seq, XREVRANGE log, then one SMEMBERS per name in
 * `names`, in that order. */
static int fsck_check(fsck_t *f, const redisReply *x, const redisReply *names,
                      berth_error_t *err)
{
    const redisReply *hosts = x->element[0], *groups = x->element[1];
    size_t nh = hosts->elements / 2;
    fsck_host_t *hs = calloc(nh ? nh : 1, sizeof *hs);
    berth__map_t by_name = {0}, members = {0}, group_host = {0};
    int rc = 0;
    if (hs == NULL)
        rc = BERTH_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nh; i++) {
        const redisReply *k = hosts->element[2 * i], *v = hosts->element[2 * i + 1];
        berth_error_t e;
        if (berth__host_record_decode(v->str, v->len, &hs[i].rec, &e) < 0) {
            violation(f, "host '%s': its record is unreadable: %s", k->str, e.message);
            continue;
        }
        hs[i].ok = true;
        berth__map_entry_t *m = berth__map_put(&by_name, k->str, k->len);
        if (m == NULL)
            rc = BERTH_ENOMEM;
        else
            m->value = i;
    }
    /* Every member of every host set, as "HOST/KEY" (host names hold no '/'). */
    for (size_t h = 0; rc == 0 && h < names->elements; h++) {
        const redisReply *set = x->element[4 + h];
        for (size_t j = 0; rc == 0 && j < set->elements; j++) {
            char mk[BERTH_NAME_MAX + 2 + BERTH__KEY_MAX + 1];
            int len = snprintf(mk, sizeof mk, "%s/%s", names->element[h]->str,
                               set->element[j]->str);
            if (berth__map_put(&members, mk, (size_t)len) == NULL)
                rc = BERTH_ENOMEM;
        }
    }
    berth__group_record_t *g = malloc(sizeof *g);
    if (g == NULL)
        rc = BERTH_ENOMEM;
    for (size_t i = 0; rc == 0 && i + 1 < groups->elements; i += 2) {
        const redisReply *k = groups->element[i], *v = groups->element[i + 1];
        berth_error_t e;
        if (berth__group_record_decode(v->str, v->len, g, &e) < 0) {
            violation(f, "container group '%s': its record is unreadable: %s", k->str,
                      e.message);
            continue;
        }
        char host[BERTH_NAME_MAX + 1];
        berth__bytes_cstr(g->host, host, sizeof host);
        if (g->key.len != k->len || memcmp(g->key.ptr, k->str, k->len) != 0)
            violation(f, "container group '%s': its record names key '%.*s'", k->str,
                      (int)g->key.len, g->key.ptr);
        berth__map_entry_t *gh = berth__map_put(&group_host, k->str, k->len);
        if (gh == NULL) {
            rc = BERTH_ENOMEM;
            break;
        }
        berth__map_entry_t *he = berth__map_find(&by_name, host, strlen(host));
        if (he == NULL) {
            violation(f, "container group '%s' is on host '%s', which does not exist",
                      k->str, host);
            gh->value = UINT64_MAX;
            continue;
        }
        gh->value = he->value;
        fsck_host_t *fh = &hs[he->value];
        fh->mc += g->millicores;
        fh->mem += g->memory_mib;
        fh->gpu += g->gpu_count;
        fh->groups++;
        char mk[BERTH_NAME_MAX + 2 + BERTH__KEY_MAX + 1];
        int len = snprintf(mk, sizeof mk, "%s/%s", host, k->str);
        if (berth__map_find(&members, mk, (size_t)len) == NULL)
            violation(f, "container group '%s' is on host '%s' but not in its group set",
                      k->str, host);
    }
    free(g);
    for (size_t h = 0; rc == 0 && h < names->elements; h++) {
        const char *name = names->element[h]->str;
        const redisReply *set = x->element[4 + h];
        berth__map_entry_t *he = berth__map_find(&by_name, name, strlen(name));
        for (size_t j = 0; j < set->elements; j++) {
            const char *key = set->element[j]->str;
            berth__map_entry_t *gh = berth__map_find(&group_host, key, set->element[j]->len);
            if (gh == NULL)
                violation(f, "host '%s': its group set holds '%s', which has no record",
                          name, key);
            else if (he == NULL || gh->value != he->value)
                violation(f, "host '%s': its group set holds '%s', which is on another host",
                          name, key);
        }
    }
    for (size_t i = 0; rc == 0 && i < nh; i++) {
        const fsck_host_t *fh = &hs[i];
        const berth__host_record_t *r = &fh->rec;
        if (!fh->ok)
            continue;
        const char *name = hosts->element[2 * i]->str;
        if ((uint64_t)r->used_millicores > (uint64_t)r->cores * 1000u ||
            r->used_memory_mib > r->memory_mib || r->used_gpus > r->gpu_count)
            violation(f, "host '%s' is over capacity: %u of %u millicores, %u of %u MiB, "
                      "%u of %u GPUs allocated", name, r->used_millicores, r->cores * 1000u,
                      r->used_memory_mib, r->memory_mib, r->used_gpus, r->gpu_count);
        if (r->used_millicores != fh->mc || r->used_memory_mib != fh->mem ||
            r->used_gpus != fh->gpu || r->groups != fh->groups)
            violation(f, "host '%s' records %u millicores, %u MiB, %u GPUs and %u groups "
                      "allocated, but its groups add up to %llu, %llu, %llu and %llu", name,
                      r->used_millicores, r->used_memory_mib, r->used_gpus, r->groups,
                      (unsigned long long)fh->mc, (unsigned long long)fh->mem,
                      (unsigned long long)fh->gpu, (unsigned long long)fh->groups);
    }
    if (rc == 0) {
        uint64_t seq = 0, newest = 0;
        const char *id;
        bool has_seq = x->element[2]->type != REDIS_REPLY_NIL;
        if (has_seq && !berth__reply_u64(x->element[2], &seq))
            violation(f, "the cell's seq counter is not a number");
        else if (x->element[3]->type == REDIS_REPLY_ARRAY && x->element[3]->elements > 0 &&
                 (!berth__log_newest(x->element[3], &newest, &id) || newest != seq))
            violation(f, "the change log's newest entry has seq %llu but the counter is %llu",
                      (unsigned long long)newest, (unsigned long long)seq);
    }
    berth__map_free(&by_name);
    berth__map_free(&members);
    berth__map_free(&group_host);
    free(hs);
    if (rc < 0)
        return berth__error_set(err, rc, "OutOfMemory", "", "no memory to check the cell");
    return 0;
}

int berth__store_fsck(berth_store_t *store, berth_store_fsck_cb cb, void *data,
                      berth_error_t *err)
{
    berth_store_t *s = store;
    const char *hk[] = {"HKEYS", s->k_hosts};
    int rc;
    redisReply *names = berth__store_command(s, 2, hk, NULL, false,
                                             "listing the cell's hosts", err, &rc);
    if (names == NULL)
        return rc;
    size_t nh = names->type == REDIS_REPLY_ARRAY ? names->elements : 0;
    size_t n = 4 + nh;
    const char ***argvs = calloc(n, sizeof *argvs);
    int *argcs = calloc(n, sizeof *argcs);
    char (*setkeys)[BERTH__KEYNAME_MAX] = calloc(nh ? nh : 1, sizeof *setkeys);
    const char **setargv = calloc(2 * (nh ? nh : 1), sizeof *setargv);
    redisReply *x = NULL;
    if (argvs == NULL || argcs == NULL || setkeys == NULL || setargv == NULL) {
        rc = berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory to check the cell");
    } else {
        const char *a0[] = {"HGETALL", s->k_hosts};
        const char *a1[] = {"HGETALL", s->k_groups};
        const char *a2[] = {"GET", s->k_seq};
        const char *a3[] = {"XREVRANGE", s->k_log, "+", "-", "COUNT", "1"};
        argvs[0] = a0, argcs[0] = 2;
        argvs[1] = a1, argcs[1] = 2;
        argvs[2] = a2, argcs[2] = 2;
        argvs[3] = a3, argcs[3] = 6;
        for (size_t i = 0; i < nh; i++) {
            berth__store_key(s, setkeys[i], BERTH__KEYNAME_MAX, "hostgroups:",
                             names->element[i]->str);
            setargv[2 * i] = "SMEMBERS";
            setargv[2 * i + 1] = setkeys[i];
            argvs[4 + i] = &setargv[2 * i];
            argcs[4 + i] = 2;
        }
        x = berth__store_transaction(s, n, (const char *const *const *)argvs, argcs,
                                     "reading the cell to check it", err, &rc);
        if (x != NULL) {
            fsck_t f = {cb, data, 0};
            rc = fsck_check(&f, x, names, err);
            if (rc == 0)
                rc = f.count;
        }
    }
    freeReplyObject(x);
    free(argvs);
    free(argcs);
    free(setkeys);
    free(setargv);
    freeReplyObject(names);
    return rc;
}
