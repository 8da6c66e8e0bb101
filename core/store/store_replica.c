/*
 * store_replica.c: the replica: the engine a store binds, kept equal to the
 * cell.  Records to engine descriptions and back, the snapshot (read and
 * loaded), the change log (read and applied in order), a commit's own
 * change applied from its reply, and the maps of what the replica holds
 * (group key -> generation and request, host name -> epoch).
 *
 * REPLICAS.  The engine a store binds mirrors the cell: berth__store_open()
 * loads a snapshot read in one MULTI/EXEC, and every later call first
 * applies the log entries after the last one applied (sequence numbers must
 * follow one another; a gap -- the log was trimmed past this replica -- or
 * an entry that does not apply reloads the snapshot).  The engine must only
 * ever hold what the log says, in log order: a commit chooses its host in
 * the engine, rolls the choice back, commits, and lets the log bring the
 * change back, so the engine never holds an allocation Redis refused.  A
 * commit's reply names its log entry (seq and stream id): while that entry
 * is the very next one the replica needs, the replica applies the change
 * it committed straight from the reply -- the same change the entry holds,
 * at the same place in the log -- instead of reading it back; once another
 * writer's entry comes between, the rest is read from the log in order.
 *
 * This file must never let the engine disagree with the log it has
 * applied: an op that does not apply marks the store stale (reload at the
 * next sync), and nothing here writes to the cell.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store-internal.h"

#define SYNC_COUNT "1000"
#define SYNC_COUNT_N 1000u

/* ---- a small string map: group key -> generation and request ------------------ */

/* Dense entries found through the table (table.h) by position; a deleted
 * entry's place is taken by the last one (the types: store-internal.h). */
typedef struct map_key {
    const char *s;
    size_t len;
} map_key_t;

static bool map_eq(const void *ctx, uint32_t id, const void *key)
{
    const berth__map_entry_t *e = &((const berth__map_t *)ctx)->e[id];
    const map_key_t *k = key;
    return e->keylen == k->len && memcmp(e->key, k->s, k->len) == 0;
}

berth__map_entry_t *berth__map_find(const berth__map_t *m, const char *key, size_t len)
{
    map_key_t k = {key, len};
    uint32_t pos = berth__table_find(&m->index, berth__table_hash(key, len), &k, map_eq, m);
    return pos == BERTH__TABLE_NIL ? NULL : &m->e[m->index.e[pos].id];
}

berth__map_entry_t *berth__map_put(berth__map_t *m, const char *key, size_t len)
{
    berth__map_entry_t *found = berth__map_find(m, key, len);
    if (found != NULL)
        return found;
    if (len > UINT32_MAX - 1 || m->n == BERTH__TABLE_NIL - 1)
        return NULL;
    if (m->n == m->cap) {
        uint32_t cap = m->cap ? 2 * m->cap : 64;
        berth__map_entry_t *es = realloc(m->e, (size_t)cap * sizeof *es);
        if (es == NULL)
            return NULL;
        m->e = es;
        m->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL || berth__table_reserve(&m->index) != 0) {
        free(copy);
        return NULL;
    }
    memcpy(copy, key, len);
    copy[len] = '\0';
    berth__map_entry_t *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    e->key = copy;
    e->keylen = (uint32_t)len;
    e->hash = berth__table_hash(key, len);
    berth__table_put(&m->index, e->hash, m->n);
    m->n++;
    return e;
}

void berth__map_del(berth__map_t *m, const char *key, size_t len)
{
    map_key_t k = {key, len};
    uint32_t pos = berth__table_find(&m->index, berth__table_hash(key, len), &k, map_eq, m);
    if (pos == BERTH__TABLE_NIL)
        return;
    uint32_t id = m->index.e[pos].id, last = m->n - 1;
    free(m->e[id].key);
    berth__table_delete(&m->index, pos);
    if (id != last) {
        /* The last entry moves into the hole; its table entry follows. */
        uint32_t lp = berth__table_find_id(&m->index, m->e[last].hash, last);
        m->e[id] = m->e[last];
        if (lp != BERTH__TABLE_NIL)
            m->index.e[lp].id = id;
    }
    m->n--;
}

void berth__map_clear(berth__map_t *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        free(m->e[i].key);
    m->n = 0;
    berth__table_clear(&m->index);
}

void berth__map_free(berth__map_t *m)
{
    berth__map_clear(m);
    free(m->e);
    m->e = NULL;
    m->cap = 0;
    berth__table_free(&m->index);
}

/* ---- records <-> engine ------------------------------------------------------------ */

/* Copies borrowed bytes into a NUL-terminated buffer of `cap`; false when
 * they do not fit. */
bool berth__bytes_cstr(berth__bytes_t b, char *out, size_t cap)
{
    if (b.ptr == NULL || b.len >= cap)
        return false;
    memcpy(out, b.ptr, b.len);
    out[b.len] = '\0';
    return true;
}

berth__bytes_t berth__cstr_bytes(const char *s)
{
    return s != NULL && s[0] != '\0' ? (berth__bytes_t){s, strlen(s)}
                                     : (berth__bytes_t){NULL, 0};
}

static int host_from_record(const berth__host_record_t *r, berth_host_t *d,
                            berth__host_strings_t *hs, berth_error_t *err)
{
    memset(d, 0, sizeof *d);
    if (!berth__bytes_cstr(r->name, hs->name, sizeof hs->name))
        return berth__error_set(err, BERTH_EINVAL, "CorruptRecord", "name",
                                "host record has no usable name");
    d->name = hs->name;
    d->cores = r->cores;
    d->memory_mib = r->memory_mib;
    d->gpu_count = r->gpu_count;
    d->gpu_sku = berth__bytes_cstr(r->gpu_sku, hs->sku, sizeof hs->sku) ? hs->sku : NULL;
    d->os = (berth_os_t)r->os;
    d->os_build = r->os_build;
    d->zone = berth__bytes_cstr(r->zone, hs->zone, sizeof hs->zone) ? hs->zone : NULL;
    d->features = r->features;
    d->state = (berth_host_state_t)r->state;
    return 0;
}

/* Turns a group record into this engine's request (zone and SKU names to
 * ids, registering zones the engine has not seen). */
static int request_from_record(berth_engine_t *engine, const berth__group_record_t *r,
                               berth_request_t *req, berth_error_t *err)
{
    memset(req, 0, sizeof *req);
    req->demand.millicores = r->millicores;
    req->demand.requested_millicores = r->requested_millicores;
    req->demand.memory_mib = r->memory_mib;
    req->demand.gpu_count = r->gpu_count;
    if (r->gpu_count > 0) {
        char sku[BERTH_GPU_SKU_NAME_MAX + 1];
        uint32_t id;
        if (!berth__bytes_cstr(r->gpu_sku, sku, sizeof sku) ||
            berth_engine_gpu_sku_find(engine, sku, &id) == NULL)
            return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "gpu_sku",
                                    "container group '%.*s' uses GPU SKU '%.*s', which this "
                                    "engine's table lacks", (int)r->key.len, r->key.ptr,
                                    (int)r->gpu_sku.len, r->gpu_sku.ptr ? r->gpu_sku.ptr : "");
        req->demand.gpu_sku = id;
    }
    req->os = (berth_os_t)r->os;
    req->os_build = r->os_build;
    for (size_t i = 0; i < r->nzones; i++) {
        char zone[BERTH_NAME_MAX + 1];
        berth__bytes_cstr(r->zones[i], zone, sizeof zone);
        int id = berth_engine_zone_id(engine, zone);
        if (id < 0)
            return berth__error_set(err, id, "TooManyZones", "zones",
                                    "zone '%s' does not fit the engine's zone table", zone);
        req->zone_mask |= 1ull << id;
    }
    req->sku = (berth_sku_t)r->sku;
    req->priority = (berth_priority_t)r->priority;
    req->restart_policy = (berth_restart_policy_t)r->restart;
    req->cpu_digest = r->cpu_digest;
    req->memory_digest = r->memory_digest;
    req->gpu_digest = r->gpu_digest;
    req->ports_digest = r->ports_digest;
    return 0;
}

/* Fills a group record from a request; strings borrow from the engine, the
 * key and host arguments. */
void berth__group_record_from_request(berth_engine_t *engine, const char *key, const char *host,
                                      uint64_t generation, const berth_request_t *req,
                                      const char *spec, berth__group_record_t *r)
{
    const berth__config_t *cfg = berth__engine_config(engine);
    r->key = berth__cstr_bytes(key);
    r->host = berth__cstr_bytes(host);
    r->generation = generation;
    r->millicores = req->demand.millicores;
    r->requested_millicores = req->demand.requested_millicores;
    r->memory_mib = req->demand.memory_mib;
    r->gpu_count = req->demand.gpu_count;
    r->gpu_sku = req->demand.gpu_count > 0
        ? berth__cstr_bytes(berth_engine_gpu_sku_name(engine, req->demand.gpu_sku))
        : (berth__bytes_t){NULL, 0};
    r->os = (uint32_t)req->os;
    r->os_build = req->os_build;
    r->nzones = 0;
    for (unsigned z = 0; z < 64 && z < cfg->nzones; z++)
        if ((req->zone_mask >> z) & 1u)
            r->zones[r->nzones++] = berth__cstr_bytes(cfg->zones[z]);
    r->sku = (uint32_t)req->sku;
    r->priority = (uint32_t)req->priority;
    r->restart = (uint32_t)req->restart_policy;
    r->cpu_digest = req->cpu_digest;
    r->memory_digest = req->memory_digest;
    r->gpu_digest = req->gpu_digest;
    r->ports_digest = req->ports_digest;
    r->spec = spec != NULL ? (berth__bytes_t){spec, strlen(spec)} : (berth__bytes_t){NULL, 0};
    r->runtime = (berth__bytes_t){NULL, 0}; /* the group's own runtime group */
    r->runtime_generation = r->runtime_digest = 0;
}

/* ---- applying records and log entries to the engine ---------------------------------- */

static int apply_host(berth_store_t *s, const char *data, size_t len, bool initial,
                      berth_error_t *err)
{
    berth__host_record_t r;
    int rc = berth__host_record_decode(data, len, &r, err);
    if (rc < 0)
        return rc;
    berth_host_t d;
    berth__host_strings_t hs;
    if ((rc = host_from_record(&r, &d, &hs, err)) < 0)
        return rc;
    berth__map_entry_t *e = berth__map_put(&s->hosts, d.name, strlen(d.name));
    if (e == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a host");
    if (initial)
        d.state = BERTH_HOST_READY; /* set after the groups: a down host takes none */
    if (berth_engine_host_get(s->engine, d.name, NULL, NULL) == 0)
        rc = berth_engine_host_update(s->engine, &d, err);
    else
        rc = berth_engine_host_add(s->engine, &d, err);
    if (rc < 0) {
        berth__map_del(&s->hosts, d.name, strlen(d.name));
        return rc;
    }
    e->value = r.epoch;
    return 0;
}

static int apply_group(berth_store_t *s, const char *key, const char *host, uint64_t gen,
                       const berth_request_t *req, berth_error_t *err);

/* Adds (or replaces) a GPU SKU of the cell in the engine's table. */
static int apply_sku(berth_store_t *s, const char *data, size_t len, berth_error_t *err)
{
    berth_gpu_sku_t sku;
    int rc = berth__sku_record_decode(data, len, &sku, err);
    if (rc < 0)
        return rc;
    return berth_engine_gpu_sku_add(s->engine, &sku, err);
}

/* The cell's per-group limits; an absent record (NULL) means the engine's
 * own, those it had when the store was opened. */
static int apply_limits(berth_store_t *s, const char *data, size_t len, berth_error_t *err)
{
    berth_limits_t limits = s->own_limits;
    if (data != NULL) {
        int rc = berth__limits_record_decode(data, len, &limits, err);
        if (rc < 0)
            return rc;
    }
    return berth_engine_limits_set(s->engine, &limits, err);
}

/* The cell's subnet table; an absent record (NULL) leaves the engine's. */
static int apply_subnets(berth_store_t *s, const char *data, size_t len, berth_error_t *err)
{
    return data != NULL ? berth_engine_subnets_load(s->engine, data, len, err) : 0;
}

/* The cell's sandbox policy (a name); an absent one (NULL) means the
 * engine's own, the one it had when the store was opened. */
static int apply_sandbox(berth_store_t *s, const char *data, size_t len, berth_error_t *err)
{
    berth_sandbox_policy_t policy = s->own_sandbox;
    if (data != NULL) {
        char name[16];
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, data, len);
        name[len] = '\0';
        if (berth_sandbox_policy_parse(name, &policy) != 0)
            return berth__error_set(err, BERTH_EIO, "CorruptCell", "",
                                    "the cell's sandbox policy '%s' is unknown", name);
    }
    return berth_engine_sandbox_set(s->engine, policy, err);
}

static int apply_place(berth_store_t *s, const char *data, size_t len, berth_error_t *err)
{
    berth__group_record_t *r = s->rec;
    int rc = berth__group_record_decode(data, len, r, err);
    char key[BERTH__KEY_MAX + 1], host[BERTH_NAME_MAX + 1];
    berth_request_t req;
    if (rc == 0 && (!berth__bytes_cstr(r->key, key, sizeof key) ||
                    !berth__bytes_cstr(r->host, host, sizeof host)))
        rc = berth__error_set(err, BERTH_EINVAL, "CorruptRecord", "key",
                              "group record key or host is too long");
    if (rc == 0)
        rc = request_from_record(s->engine, r, &req, err);
    uint64_t gen = r->generation;
    if (rc < 0)
        return rc;
    return apply_group(s, key, host, gen, &req, err);
}

/* Records the group `key` at generation `gen` on `host` with request *req,
 * in the engine and in the group map, as a log entry placing it says. */
static int apply_group(berth_store_t *s, const char *key, const char *host, uint64_t gen,
                       const berth_request_t *req, berth_error_t *err)
{
    int rc;
    size_t klen = strlen(key);
    berth__map_entry_t *e = berth__map_put(&s->groups, key, klen);
    if (e == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a group");
    rc = berth_engine_request_assign(s->engine, key, req, host, NULL, err);
    if (rc < 0) {
        if (e->value == 0)
            berth__map_del(&s->groups, key, klen);
        return rc;
    }
    e->value = gen;
    e->request = *req;
    return 0;
}

static int apply_release(berth_store_t *s, const char *key, size_t len, berth_error_t *err)
{
    char k[BERTH__KEY_MAX + 1];
    if (!berth__bytes_cstr((berth__bytes_t){key, len}, k, sizeof k))
        return berth__error_set(err, BERTH_EINVAL, "CorruptLog", "", "release of a bad key");
    int rc = berth_engine_group_release(s->engine, k, err);
    if (rc < 0)
        return rc;
    berth__map_del(&s->groups, k, len);
    return 0;
}

/* A change-log entry's ops: an entry is 'seq' (its first op's number),
 * then for each op, in order, 'op', 'name' and 'rec' (a batch of
 * placements logs all of its ops in one entry; every other change one).
 * Sets *first and *count (0 when the entry is malformed) and points ops at
 * the first 'op' field's index in fields. */
static void entry_ops(const redisReply *fields, uint64_t *first, size_t *count, size_t *ops)
{
    *count = 0;
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY || fields->elements < 8 ||
        (fields->elements - 2) % 6 != 0 || fields->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(fields->element[0]->str, "seq") != 0 || !berth__reply_u64(fields->element[1], first))
        return;
    for (size_t i = 2; i < fields->elements; i += 6) {
        static const char *const names[] = {"op", "name", "rec"};
        for (size_t k = 0; k < 3; k++) {
            const redisReply *f = fields->element[i + 2 * k], *v = fields->element[i + 2 * k + 1];
            if (f->type != REDIS_REPLY_STRING || strcmp(f->str, names[k]) != 0 ||
                v->type != REDIS_REPLY_STRING)
                return;
        }
    }
    *ops = 2;
    *count = (fields->elements - 2) / 6;
}

/* Applies one op of a change-log entry (the 'op' field at fields[at]). */
static int apply_entry(berth_store_t *s, const redisReply *fields, size_t at, berth_error_t *err)
{
    const redisReply *op = fields->element[at + 1];
    const redisReply *name = fields->element[at + 3];
    const redisReply *rec = fields->element[at + 5];
    if (strcmp(op->str, "host") == 0)
        return apply_host(s, rec->str, rec->len, false, err);
    if (strcmp(op->str, "sku") == 0)
        return apply_sku(s, rec->str, rec->len, err);
    if (strcmp(op->str, "limits") == 0)
        return apply_limits(s, rec->str, rec->len, err);
    if (strcmp(op->str, "sandbox") == 0)
        return apply_sandbox(s, rec->str, rec->len, err);
    if (strcmp(op->str, "subnets") == 0)
        return apply_subnets(s, rec->str, rec->len, err);
    if (strcmp(op->str, "place") == 0)
        return apply_place(s, rec->str, rec->len, err);
    if (strcmp(op->str, "release") == 0)
        return apply_release(s, name->str, name->len, err);
    if (strcmp(op->str, "hostdel") == 0) {
        int rc = berth_engine_host_remove(s->engine, name->str, err);
        if (rc == 0)
            berth__map_del(&s->hosts, name->str, name->len);
        return rc;
    }
    return berth__error_set(err, BERTH_EINVAL, "CorruptLog", "",
                            "a change-log entry has an unknown op '%.40s'", op->str);
}

/* ---- snapshot ------------------------------------------------------------------------ */

/* Reads the snapshot (hosts, groups, seq, newest log entry, GPU SKUs, the
 * cell's limits, sandbox policy and subnets) in one MULTI/EXEC, so it is
 * one point of the log. */
static redisReply *snapshot_read(berth_store_t *s, berth_error_t *err, int *rc)
{
    berth__snapshot_call_t c;
    berth__store_snapshot_call(s, &c);
    const char *const *argvs[BERTH__SNAPSHOT_READS];
    for (size_t i = 0; i < BERTH__SNAPSHOT_READS; i++)
        argvs[i] = c.argv[i];
    return berth__store_transaction(s, BERTH__SNAPSHOT_READS, argvs, c.argcs,
                                    "reading the cell's snapshot", err, rc);
}

/* The seq field of the newest log entry in an XREVRANGE reply, and its id. */
bool berth__log_newest(const redisReply *x, uint64_t *seq, const char **id)
{
    if (x->type != REDIS_REPLY_ARRAY || x->elements == 0)
        return false;
    const redisReply *e = x->element[0];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return false;
    *id = e->element[0]->str;
    uint64_t first;
    size_t count, at;
    entry_ops(e->element[1], &first, &count, &at);
    if (count == 0)
        return false;
    *seq = first + count - 1;       /* the entry's last op */
    return true;
}

/* Empties the engine and loads the cell's snapshot into it.  On failure the
 * engine is left empty and the store marked stale. */
static int snapshot_apply(berth_store_t *s, const redisReply *x, berth_error_t *err);

int berth__store_snapshot_load(berth_store_t *s, berth_error_t *err)
{
    berth_engine_reset(s->engine);
    berth__map_clear(&s->groups);
    berth__map_clear(&s->hosts);
    s->stale = true;
    int rc;
    redisReply *x = snapshot_read(s, err, &rc);
    if (x == NULL)
        return rc;
    rc = snapshot_apply(s, x, err);
    freeReplyObject(x);
    return rc;
}

/* Loads the snapshot `x` (snapshot_read()'s EXEC reply: seven replies) into
 * the emptied engine.  On failure the engine is left empty and the store
 * marked stale. */
static int snapshot_apply(berth_store_t *s, const redisReply *x, berth_error_t *err)
{
    berth_engine_reset(s->engine);
    berth__map_clear(&s->groups);
    berth__map_clear(&s->hosts);
    s->stale = true;
    int rc = 0;
    const redisReply *hosts = x->element[0], *groups = x->element[1];
    uint64_t seq = 0, newest = 0;
    const char *id = "0-0";
    if (x->element[2]->type != REDIS_REPLY_NIL && !berth__reply_u64(x->element[2], &seq))
        rc = berth__error_set(err, BERTH_EIO, "CorruptCell", "", "the cell's seq is not a number");
    if (rc == 0 && berth__log_newest(x->element[3], &newest, &id) && newest != seq)
        rc = berth__error_set(err, BERTH_EIO, "CorruptCell", "",
                              "the change log ends at seq %llu but the counter is %llu",
                              (unsigned long long)newest, (unsigned long long)seq);
    /* The cell's limits (nil: none set), then SKUs: hosts name them. */
    const redisReply *limits = x->element[5];
    if (rc == 0 && limits->type != REDIS_REPLY_NIL && limits->type != REDIS_REPLY_STRING)
        rc = berth__error_set(err, BERTH_EIO, "CorruptCell", "",
                              "the cell's limits are not a record");
    if (rc == 0)
        rc = apply_limits(s, limits->type == REDIS_REPLY_STRING ? limits->str : NULL,
                          limits->type == REDIS_REPLY_STRING ? limits->len : 0, err);
    const redisReply *sandbox = x->element[6];
    if (rc == 0 && sandbox->type != REDIS_REPLY_NIL && sandbox->type != REDIS_REPLY_STRING)
        rc = berth__error_set(err, BERTH_EIO, "CorruptCell", "",
                              "the cell's sandbox policy is not a string");
    if (rc == 0)
        rc = apply_sandbox(s, sandbox->type == REDIS_REPLY_STRING ? sandbox->str : NULL,
                           sandbox->type == REDIS_REPLY_STRING ? sandbox->len : 0, err);
    const redisReply *subnets = x->element[7];
    if (rc == 0 && subnets->type != REDIS_REPLY_NIL && subnets->type != REDIS_REPLY_STRING)
        rc = berth__error_set(err, BERTH_EIO, "CorruptCell", "",
                              "the cell's subnets are not a record");
    if (rc == 0 && subnets->type == REDIS_REPLY_STRING)
        rc = apply_subnets(s, subnets->str, subnets->len, err);
    const redisReply *skus = x->element[4];
    for (size_t i = 1; rc == 0 && i < skus->elements; i += 2)
        rc = apply_sku(s, skus->element[i]->str, skus->element[i]->len, err);
    for (size_t i = 1; rc == 0 && i < hosts->elements; i += 2)
        rc = apply_host(s, hosts->element[i]->str, hosts->element[i]->len, true, err);
    for (size_t i = 1; rc == 0 && i < groups->elements; i += 2)
        rc = apply_place(s, groups->element[i]->str, groups->element[i]->len, err);
    /* Host states last: a down host takes no assignment, even a replayed one. */
    for (size_t i = 1; rc == 0 && i < hosts->elements; i += 2) {
        berth__host_record_t r;
        char name[BERTH_NAME_MAX + 1];
        berth__host_record_decode(hosts->element[i]->str, hosts->element[i]->len, &r, NULL);
        berth__bytes_cstr(r.name, name, sizeof name);
        if (r.state != BERTH_HOST_READY)
            rc = berth_engine_host_set_state(s->engine, name, (berth_host_state_t)r.state, err);
    }
    if (rc == 0) {
        s->seq = seq;
        snprintf(s->last_id, sizeof s->last_id, "%s", id);
        s->stale = false;
    } else {
        berth_engine_reset(s->engine);
        berth__map_clear(&s->groups);
        berth__map_clear(&s->hosts);
        if (rc != BERTH_EIO && rc != BERTH_ENOMEM)
            rc = berth__error_set(err, BERTH_EIO, err ? err->name : "CorruptCell", "",
                                  "the cell's snapshot does not load: %s",
                                  err ? err->message : "a record is unreadable");
    }
    return rc;
}

/* ---- sync -------------------------------------------------------------------------- */

/* Applies the entries of one XRANGE reply on the change log, in order.
 * Returns 0, or 1 when the replica must reload its snapshot (a gap: the log
 * was trimmed past it; an entry that does not apply; a malformed reply).
 * *n receives the number of entries the reply held. */
static int log_apply(berth_store_t *s, const redisReply *r, size_t *n)
{
    *n = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        return 1;
    *n = r->elements;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        uint64_t first = 0;
        size_t count = 0, at = 0;
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            return 1;
        entry_ops(e->element[1], &first, &count, &at);
        if (count == 0)
            return 1;
        for (size_t k = 0; k < count; k++, at += 6) {
            uint64_t seq = first + k;
            if (seq <= s->seq)
                continue;           /* applied already (the snapshot, or our own commit) */
            /* A gap means the log was trimmed past this replica. */
            if (seq != s->seq + 1 || apply_entry(s, e->element[1], at, NULL) < 0)
                return 1;
            s->seq = seq;
        }
        snprintf(s->last_id, sizeof s->last_id, "%s", e->element[0]->str);
    }
    return 0;
}

int berth__store_sync(berth_store_t *store, berth_error_t *err)
{
    berth_store_t *s = store;
    if (s->stale)
        return berth__store_snapshot_load(s, err);
    for (;;) {
        char start[80];
        snprintf(start, sizeof start, "(%s", s->last_id);
        const char *argv[] = {"XRANGE", s->k_log, start, "+", "COUNT", SYNC_COUNT};
        int rc;
        redisReply *r = berth__store_command(s, 6, argv, NULL, false,
                                             "reading the change log", err, &rc);
        if (r == NULL)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return berth__error_set(err, BERTH_EIO, "RedisError", "",
                                    "XRANGE on the change log answered no array");
        }
        size_t n;
        bool reload = log_apply(s, r, &n) != 0;
        freeReplyObject(r);
        if (reload)
            return berth__store_snapshot_load(s, err);
        if (n < SYNC_COUNT_N)
            return 0;
    }
}

/* ---- a commit of its own --------------------------------------------------------------------- */

/* Applies the placement p that Redis just committed, exactly as its log
 * entry would, when that entry is the next one this replica needs: the
 * reply names the entry's seq and stream id.  Saves reading back and
 * decoding the commits a replica made itself.  Returns true when applied;
 * false leaves the entry to the next sync (another writer's entries come
 * first, and the log must be applied in order).  A change that does not
 * apply marks the store stale, as it would from the log. */
bool berth__store_own_apply(berth_store_t *s, const berth__pending_t *p, const redisReply *r)
{
    uint64_t seq;
    if (s->stale || r->elements < 3 || !berth__reply_u64(r->element[1], &seq) ||
        seq != s->seq + 1 || r->element[2]->type != REDIS_REPLY_STRING ||
        r->element[2]->len >= sizeof s->last_id)
        return false;
    /* The request as the entry's record carries it (names, not ids). */
    berth_request_t req;
    uint64_t gen = p->generation + 1;
    berth__group_record_from_request(s->engine, p->key, p->choice.host, gen, &p->committed,
                                     NULL, s->rec);
    if (request_from_record(s->engine, s->rec, &req, NULL) < 0 ||
        apply_group(s, p->key, p->choice.host, gen, &req, NULL) < 0) {
        s->stale = true;
        return false;
    }
    s->seq = seq;
    /* An op that does not end its entry (a batch's): the replica moves
     * past the entry with its last op, so that a read of the log from
     * last_id meets the entry's other ops (and skips those applied). */
    if (r->elements < 4 || r->element[3]->type != REDIS_REPLY_INTEGER ||
        r->element[3]->integer == 1)
        memcpy(s->last_id, r->element[2]->str, r->element[2]->len + 1);
    return true;
}

/* ---- for the asynchronous store (store.h) ---------------------------------------------------- */

int berth__store_generation(berth_store_t *s, const char *key, uint64_t *generation)
{
    size_t len = key ? strnlen(key, BERTH__KEY_MAX + 1) : 0;
    berth__map_entry_t *e =
        len && len <= BERTH__KEY_MAX ? berth__map_find(&s->groups, key, len) : NULL;
    if (e == NULL)
        return BERTH_ENOENT;
    *generation = e->value;
    return 0;
}

void berth__store_log_call(const berth_store_t *s, berth__log_call_t *c)
{
    snprintf(c->start, sizeof c->start, "(%s", s->last_id);
    const char *argv[] = {"XRANGE", s->k_log, c->start, "+", "COUNT", SYNC_COUNT};
    memcpy(c->argv, argv, sizeof argv);
}

int berth__store_log_apply(berth_store_t *s, const redisReply *r, bool *more)
{
    size_t n;
    int rc = log_apply(s, r, &n);
    *more = rc == 0 && n >= SYNC_COUNT_N;
    if (rc != 0)
        s->stale = true;
    return rc;
}

bool berth__store_stale(const berth_store_t *s)
{
    return s->stale;
}

void berth__store_snapshot_call(const berth_store_t *s, berth__snapshot_call_t *c)
{
    const char *a[BERTH__SNAPSHOT_READS][6] = {{"HGETALL", s->k_hosts},
                                               {"HGETALL", s->k_groups},
                                               {"GET", s->k_seq},
                                               {"XREVRANGE", s->k_log, "+", "-", "COUNT", "1"},
                                               {"HGETALL", s->k_skus},
                                               {"HGET", s->k_meta, "limits"},
                                               {"HGET", s->k_meta, "sandbox"},
                                               {"HGET", s->k_meta, "subnets"}};
    const int n[BERTH__SNAPSHOT_READS] = {2, 2, 2, 6, 2, 3, 3, 3};
    memcpy(c->argv, a, sizeof a);
    memcpy(c->argcs, n, sizeof n);
}

int berth__store_snapshot_apply(berth_store_t *s, const redisReply *x, berth_error_t *err)
{
    berth_engine_reset(s->engine);
    berth__map_clear(&s->groups);
    berth__map_clear(&s->hosts);
    s->stale = true;
    if (x->type != REDIS_REPLY_ARRAY || x->elements != BERTH__SNAPSHOT_READS)
        return x->type == REDIS_REPLY_ERROR
            ? berth__redis_error(err, x, "reading the cell's snapshot")
            : berth__error_set(err, BERTH_EIO, "RedisError", "",
                               "Redis aborted the transaction reading the cell's snapshot");
    for (size_t i = 0; i < BERTH__SNAPSHOT_READS; i++)
        if (x->element[i]->type == REDIS_REPLY_ERROR)
            return berth__redis_error(err, x->element[i], "reading the cell's snapshot");
    return snapshot_apply(s, x, err);
}
