/*
 * engine.c: the placement engine: hosts, groups, placing and releasing.
 *
 * An engine holds its tables (berth__config_t), its hosts (in the index of
 * index.c), the groups placed under their keys (an open-addressing hash
 * table of group records) and running totals for berth_engine_stats().
 *
 * Every public call here validates first, reserves whatever memory it needs
 * second, and only then changes state, so that a call that fails changes
 * nothing.  Choosing a host (berth__index_choose) must stay free of I/O and
 * heap allocation; the explanation of a refusal is computed only on the
 * failure path and only when the caller asked for an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"

#define NIL BERTH__NIL
#define KEY_MAX 255u
#define GB 1024u

/* ---- hash tables -------------------------------------------------------------- */

/* Open addressing with linear probing and backward-shift deletion (no
 * tombstones), mapping a 32-bit hash and an id; the caller compares keys. */
typedef struct table_entry {
    uint32_t hash;
    uint32_t id;                    /* NIL: empty                           */
} table_entry_t;

typedef struct table {
    table_entry_t *e;
    uint32_t cap;                   /* a power of two, or 0                 */
    uint32_t n;
} table_t;

typedef bool (*table_eq_fn)(const void *ctx, uint32_t id, const void *key);

static uint32_t hash_bytes(const void *key, size_t len)
{
    uint64_t h = berth__mix64(berth__fnv1a(BERTH__FNV_INIT, key, len));
    return (uint32_t)(h ^ (h >> 32));
}

/* The position of `key` in the table, or NIL. */
static uint32_t table_find(const table_t *t, uint32_t hash, const void *key,
                           table_eq_fn eq, const void *ctx)
{
    if (t->cap == 0)
        return NIL;
    uint32_t mask = t->cap - 1;
    for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
        const table_entry_t *e = &t->e[i];
        if (e->id == NIL)
            return NIL;
        if (e->hash == hash && eq(ctx, e->id, key))
            return i;
    }
}

static void table_put(table_t *t, uint32_t hash, uint32_t id)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = hash & mask;
    while (t->e[i].id != NIL)
        i = (i + 1) & mask;
    t->e[i].hash = hash;
    t->e[i].id = id;
    t->n++;
}

/* Makes room for one more entry (load stays at most one half).  Returns 0
 * or BERTH_ENOMEM, in which case the table is unchanged. */
static int table_reserve(table_t *t)
{
    if ((t->n + 1) * 2 <= t->cap)
        return 0;
    if (t->cap >= (1u << 31))
        return BERTH_ENOMEM;
    uint32_t cap = t->cap ? t->cap * 2 : 64;
    table_entry_t *e = malloc((size_t)cap * sizeof *e);
    if (e == NULL)
        return BERTH_ENOMEM;
    for (uint32_t i = 0; i < cap; i++)
        e[i].id = NIL;
    table_t old = *t;
    t->e = e;
    t->cap = cap;
    t->n = 0;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.e[i].id != NIL)
            table_put(t, old.e[i].hash, old.e[i].id);
    free(old.e);
    return 0;
}

/* Removes the entry at position `pos`, shifting later entries of the same
 * probe run back so that lookups never meet a hole. */
static void table_delete(table_t *t, uint32_t pos)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = pos;
    for (uint32_t j = (i + 1) & mask; t->e[j].id != NIL; j = (j + 1) & mask) {
        uint32_t home = t->e[j].hash & mask;
        /* Move e[j] into the hole at i unless its home lies in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->e[i] = t->e[j];
            i = j;
        }
    }
    t->e[i].id = NIL;
    t->n--;
}

/* ---- the engine ---------------------------------------------------------------- */

/* Keys shorter than this live inside the group record, so that a lookup
 * touches one record and no separate string; with the host and the demand
 * they fill the record's first 64 bytes, all that a release reads. */
#define KEY_INLINE 32

typedef struct group {
    uint32_t keylen;                /* 0 when the record is free            */
    uint32_t host;                  /* slot; next free record when free     */
    union {
        char small[KEY_INLINE];     /* keylen < KEY_INLINE                  */
        char *heap;                 /* otherwise: a malloc'd copy           */
    } key;
    berth_demand_t demand;
    uint8_t os;                     /* berth_os_t                           */
    uint8_t restart;                /* berth_restart_policy_t, UNSET read as ALWAYS */
    uint8_t kind;                   /* berth_placement_kind_t               */
    uint8_t isolation;              /* berth_isolation_t                    */
    /* What a redeploy may not change (see berth_request_t); 0: unknown. */
    uint64_t cpu_digest, memory_digest, gpu_digest, ports_digest;
    char *previous;                 /* malloc'd host name after a move, else NULL */
} group_t;

struct berth_engine {
    berth__config_t cfg;
    berth_engine_options_t opts;
    berth__index_t idx;
    table_t host_names;             /* name -> host slot                    */
    table_t group_keys;             /* key -> group record                  */
    group_t *groups;
    uint32_t ngroups_slots, capgroups;
    uint32_t free_group;
    berth_engine_stats_t stats;
};

typedef struct key_ref {
    const char *s;
    size_t len;
} key_ref_t;

static bool host_name_eq(const void *ctx, uint32_t id, const void *key)
{
    const berth_engine_t *e = ctx;
    return strcmp(e->idx.hosts[id].name, key) == 0;
}

static const char *group_key(const group_t *g)
{
    return g->keylen < KEY_INLINE ? g->key.small : g->key.heap;
}

static bool group_key_eq(const void *ctx, uint32_t id, const void *key)
{
    const berth_engine_t *e = ctx;
    const key_ref_t *k = key;
    const group_t *g = &e->groups[id];
    return g->keylen == k->len && memcmp(group_key(g), k->s, k->len) == 0;
}

static uint32_t host_find(const berth_engine_t *e, const char *name)
{
    if (name == NULL)
        return NIL;
    size_t len = strnlen(name, BERTH_NAME_MAX + 1);
    if (len == 0 || len > BERTH_NAME_MAX)
        return NIL;
    uint32_t pos = table_find(&e->host_names, hash_bytes(name, len), name, host_name_eq, e);
    return pos == NIL ? NIL : e->host_names.e[pos].id;
}

/* The table position of group `key` (len bytes), or NIL. */
static uint32_t group_pos(const berth_engine_t *e, const char *key, size_t len,
                          uint32_t hash)
{
    key_ref_t k = {key, len};
    return table_find(&e->group_keys, hash, &k, group_key_eq, e);
}

int berth_engine_new(const berth_engine_options_t *opts, berth_engine_t **out,
                     berth_error_t *err)
{
    *out = NULL;
    berth_engine_options_t o;
    berth_engine_options_init(&o);
    if (opts != NULL) {
        if (opts->size < sizeof o.size)
            return berth__error_set(err, BERTH_EINVAL, "InvalidEngineOptions", "size",
                                    "engine options need their size (call "
                                    "berth_engine_options_init first)");
        /* Members the caller's version does not have keep their defaults. */
        size_t n = opts->size < sizeof o ? opts->size : sizeof o;
        memcpy(&o, opts, n);
        o.size = sizeof o;
    }
    if ((unsigned)o.policy > BERTH_POLICY_FIRSTFIT)
        return berth__error_set(err, BERTH_EINVAL, "InvalidEngineOptions", "policy",
                                "unknown placement policy %d", (int)o.policy);
    const berth_limits_t *l = &o.limits;
    if (l->max_millicores == 0 || l->max_memory_mib == 0 || l->max_containers == 0 ||
        l->max_volumes == 0 || l->max_ip_ports == 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidEngineOptions", "limits",
                                "every per-group limit must be above zero");
    berth_engine_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a new engine");
    e->opts = o;
    berth__config_init(&e->cfg, &o.limits);
    berth__index_init(&e->idx, o.policy);
    e->free_group = NIL;
    if (o.expected_hosts > 0 && berth__index_reserve(&e->idx, o.expected_hosts) < 0) {
        berth_engine_free(e);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "expected_hosts",
                                "no memory for %u hosts", o.expected_hosts);
    }
    *out = e;
    return 0;
}

void berth_engine_free(berth_engine_t *engine)
{
    if (engine == NULL)
        return;
    for (uint32_t i = 0; i < engine->ngroups_slots; i++) {
        group_t *g = &engine->groups[i];
        if (g->keylen >= KEY_INLINE)
            free(g->key.heap);
        if (g->keylen > 0)
            free(g->previous);
    }
    free(engine->groups);
    free(engine->host_names.e);
    free(engine->group_keys.e);
    berth__index_free(&engine->idx);
    free(engine);
}

berth__config_t *berth__engine_config(berth_engine_t *engine)
{
    return &engine->cfg;
}

berth__index_t *berth__engine_index(berth_engine_t *engine)
{
    return &engine->idx;
}

int berth_engine_gpu_sku_add(berth_engine_t *engine, const berth_gpu_sku_t *sku,
                             berth_error_t *err)
{
    if (sku == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "", "no GPU SKU given");
    return berth__config_sku_add(&engine->cfg, sku, err);
}

const berth_gpu_sku_t *berth_engine_gpu_sku_find(const berth_engine_t *engine,
                                                 const char *name, uint32_t *id)
{
    int i = berth__config_sku_find(&engine->cfg, name);
    if (i < 0)
        return NULL;
    if (id != NULL)
        *id = (uint32_t)i;
    return &engine->cfg.skus[i];
}

const char *berth_engine_gpu_sku_name(const berth_engine_t *engine, uint32_t id)
{
    return id < engine->cfg.nskus ? engine->cfg.skus[id].name : NULL;
}

int berth_engine_zone_id(berth_engine_t *engine, const char *name)
{
    return berth__config_zone_id(&engine->cfg, name, true);
}

/* ---- hosts ------------------------------------------------------------------------ */

/* Checks a host description and resolves it into attributes.  The zone is
 * looked up, not registered: a new zone gets the id it will have once
 * registered, and *new_zone says so.  Returns 0, BERTH_EINVAL or
 * BERTH_ELIMIT (zone table full). */
static int host_desc_check(const berth_engine_t *e, const berth_host_t *d,
                           berth__attrs_t *attrs, bool *new_zone, berth_error_t *err)
{
    static const char *const kind = "InvalidHost";
    if (d == NULL)
        return berth__error_set(err, BERTH_EINVAL, kind, "", "no host given");
    if (!berth__host_name_is_valid(d->name))
        return berth__error_set(err, BERTH_EINVAL, "InvalidHostName", "name",
                                "a host name has 1 to %d characters among letters, digits, "
                                "'-', '_' and '.'", BERTH_NAME_MAX);
    if (d->cores == 0 || d->cores > BERTH__HOST_CORES_MAX)
        return berth__error_set(err, BERTH_EINVAL, kind, "cores",
                                "host '%s' needs 1 to %u cores", d->name,
                                BERTH__HOST_CORES_MAX);
    if (d->memory_mib == 0)
        return berth__error_set(err, BERTH_EINVAL, kind, "memory_mib",
                                "host '%s' needs memory", d->name);
    bool has_sku = d->gpu_sku != NULL && d->gpu_sku[0] != '\0';
    int sku = -1;
    if (d->gpu_count > 0) {
        if (d->gpu_count > BERTH__HOST_GPUS_MAX)
            return berth__error_set(err, BERTH_EINVAL, kind, "gpu_count",
                                    "host '%s' has more than %u GPUs", d->name,
                                    BERTH__HOST_GPUS_MAX);
        if (!has_sku)
            return berth__error_set(err, BERTH_EINVAL, kind, "gpu_sku",
                                    "host '%s' has GPUs but no GPU SKU", d->name);
        sku = berth__config_sku_find(&e->cfg, d->gpu_sku);
        if (sku < 0)
            return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "gpu_sku",
                                    "host '%s': GPU SKU '%s' is not in the engine's table",
                                    d->name, d->gpu_sku);
    } else if (has_sku) {
        return berth__error_set(err, BERTH_EINVAL, kind, "gpu_count",
                                "host '%s' names GPU SKU '%s' but has no GPUs", d->name,
                                d->gpu_sku);
    }
    if (d->os != BERTH_OS_LINUX && d->os != BERTH_OS_WINDOWS)
        return berth__error_set(err, BERTH_EINVAL, kind, "os",
                                "host '%s' needs an OS (Linux or Windows)", d->name);
    if (d->os == BERTH_OS_WINDOWS && d->os_build == 0)
        return berth__error_set(err, BERTH_EINVAL, kind, "os_build",
                                "Windows host '%s' needs its OS build", d->name);
    if (d->os == BERTH_OS_LINUX && d->os_build != 0)
        return berth__error_set(err, BERTH_EINVAL, kind, "os_build",
                                "Linux host '%s' has no Windows OS build", d->name);
    if (d->features & ~(uint32_t)(BERTH_HOST_CONFIDENTIAL | BERTH_HOST_DEDICATED |
                                  BERTH_HOST_HYPERV))
        return berth__error_set(err, BERTH_EINVAL, kind, "features",
                                "host '%s' has unknown feature bits 0x%x", d->name,
                                d->features);
    if ((unsigned)d->state > BERTH_HOST_DOWN)
        return berth__error_set(err, BERTH_EINVAL, kind, "state",
                                "host '%s' has an unknown state %d", d->name, (int)d->state);
    int zone = -1;
    *new_zone = false;
    if (d->zone != NULL && d->zone[0] != '\0') {
        if (strnlen(d->zone, BERTH_NAME_MAX + 1) > BERTH_NAME_MAX)
            return berth__error_set(err, BERTH_EINVAL, kind, "zone",
                                    "host '%s': a zone name has at most %d characters",
                                    d->name, BERTH_NAME_MAX);
        zone = berth__config_zone_id((berth__config_t *)&e->cfg, d->zone, false);
        if (zone < 0) {
            if (e->cfg.nzones == BERTH_ZONES_MAX)
                return berth__error_set(err, BERTH_ELIMIT, "TooManyZones", "zone",
                                        "the zone table already holds %d zones",
                                        BERTH_ZONES_MAX);
            zone = (int)e->cfg.nzones;
            *new_zone = true;
        }
    }
    attrs->os = (uint8_t)d->os;
    attrs->build = d->os_build;
    attrs->sku = (int8_t)sku;
    attrs->zone = (int8_t)zone;
    attrs->features = (uint8_t)d->features;
    return 0;
}

/* Adds (sign > 0) or removes (sign < 0) a host's capacity in the totals. */
static void stats_capacity(berth_engine_t *e, const berth__host_t *h, int sign)
{
    uint64_t cpu = (uint64_t)h->cores * 1000u, mem = h->memory_mib, gpu = h->gpus;
    if (sign > 0) {
        e->stats.capacity_millicores += cpu;
        e->stats.capacity_memory_mib += mem;
        e->stats.capacity_gpus += gpu;
    } else {
        e->stats.capacity_millicores -= cpu;
        e->stats.capacity_memory_mib -= mem;
        e->stats.capacity_gpus -= gpu;
    }
}

int berth_host_add(berth_engine_t *engine, const berth_host_t *host, berth_error_t *err)
{
    berth_engine_t *e = engine;
    berth__attrs_t attrs;
    bool new_zone;
    int rc = host_desc_check(e, host, &attrs, &new_zone, err);
    if (rc < 0)
        return rc;
    if (host_find(e, host->name) != NIL)
        return berth__error_set(err, BERTH_EEXIST, "HostAlreadyExists", "name",
                                "host '%s' already exists", host->name);
    /* Reserve everything first: a failure past this point leaves only
     * spare capacity behind. */
    uint32_t slot, cls;
    if (table_reserve(&e->host_names) < 0 || berth__index_slot_alloc(&e->idx, &slot) < 0)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for host '%s'",
                                host->name);
    if (berth__index_class_reserve(&e->idx, &attrs, host->cores, host->gpu_count, &cls) < 0) {
        berth__index_slot_free(&e->idx, slot);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for host '%s'",
                                host->name);
    }
    berth__host_t *h = berth__index_host(&e->idx, slot);
    size_t len = strlen(host->name);
    if ((h->name = malloc(len + 1)) == NULL) {
        berth__index_slot_free(&e->idx, slot);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for host '%s'",
                                host->name);
    }
    memcpy(h->name, host->name, len + 1);
    if (new_zone)
        berth__config_zone_id(&e->cfg, host->zone, true);
    berth__index_set_tie(&e->idx, slot,
                         berth__mix64(e->opts.seed ^ berth__fnv1a(BERTH__FNV_INIT, h->name, len)));
    h->attrs = attrs;
    h->cores = host->cores;
    h->memory_mib = host->memory_mib;
    h->gpus = host->gpu_count;
    h->state = (uint8_t)host->state;
    h->cls = cls;
    berth__index_order_push(&e->idx, slot);
    table_put(&e->host_names, hash_bytes(h->name, len), slot);
    berth__index_link(&e->idx, slot);
    e->stats.hosts++;
    stats_capacity(e, h, +1);
    return 0;
}

int berth_host_update(berth_engine_t *engine, const berth_host_t *host, berth_error_t *err)
{
    berth_engine_t *e = engine;
    berth__attrs_t attrs;
    bool new_zone;
    int rc = host_desc_check(e, host, &attrs, &new_zone, err);
    if (rc < 0)
        return rc;
    uint32_t slot = host_find(e, host->name);
    if (slot == NIL)
        return berth__error_set(err, BERTH_ENOENT, "HostNotFound", "name",
                                "host '%s' does not exist", host->name);
    berth__host_t *h = berth__index_host(&e->idx, slot);
    if (h->groups > 0) {
        const char *what = NULL;
        const char *target = "";
        if (attrs.os != h->attrs.os) {
            what = "OS";
            target = "os";
        } else if (attrs.build != h->attrs.build) {
            what = "OS build";
            target = "os_build";
        } else if (attrs.sku != h->attrs.sku) {
            what = "GPU SKU";
            target = "gpu_sku";
        }
        if (what != NULL)
            return berth__error_set(err, BERTH_EBUSY, "HostBusy", target,
                                    "host '%s' holds %u container groups: its %s cannot "
                                    "change until they are released or moved",
                                    h->name, h->groups, what);
    }
    if ((uint64_t)host->cores * 1000u < h->used_millicores ||
        host->memory_mib < h->used_memory_mib || host->gpu_count < h->used_gpus) {
        const char *target = (uint64_t)host->cores * 1000u < h->used_millicores ? "cores"
            : host->memory_mib < h->used_memory_mib ? "memory_mib" : "gpu_count";
        return berth__error_set(err, BERTH_EBUSY, "HostBusy", target,
                                "host '%s' cannot shrink below what its container groups "
                                "use (%u CPU, %u MiB memory, %u GPUs)", h->name,
                                h->used_millicores / 1000u, h->used_memory_mib,
                                h->used_gpus);
    }
    uint32_t cls;
    if (berth__index_class_reserve(&e->idx, &attrs, host->cores, host->gpu_count, &cls) < 0)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory to update host '%s'", host->name);
    if (new_zone)
        berth__config_zone_id(&e->cfg, host->zone, true);
    berth__index_unlink(&e->idx, slot);
    stats_capacity(e, h, -1);
    h->attrs = attrs;
    h->cores = host->cores;
    h->memory_mib = host->memory_mib;
    h->gpus = host->gpu_count;
    h->state = (uint8_t)host->state;
    h->cls = cls;
    stats_capacity(e, h, +1);
    berth__index_link(&e->idx, slot);
    return 0;
}

int berth_host_set_state(berth_engine_t *engine, const char *name, berth_host_state_t state,
                         berth_error_t *err)
{
    if ((unsigned)state > BERTH_HOST_DOWN)
        return berth__error_set(err, BERTH_EINVAL, "InvalidHost", "state",
                                "unknown host state %d", (int)state);
    uint32_t slot = host_find(engine, name);
    if (slot == NIL)
        return berth__error_set(err, BERTH_ENOENT, "HostNotFound", "name",
                                "host '%s' does not exist", name ? name : "");
    berth__index_unlink(&engine->idx, slot);
    berth__index_host(&engine->idx, slot)->state = (uint8_t)state;
    berth__index_link(&engine->idx, slot);
    return 0;
}

int berth_host_remove(berth_engine_t *engine, const char *name, berth_error_t *err)
{
    berth_engine_t *e = engine;
    uint32_t slot = host_find(e, name);
    if (slot == NIL)
        return berth__error_set(err, BERTH_ENOENT, "HostNotFound", "name",
                                "host '%s' does not exist", name ? name : "");
    berth__host_t *h = berth__index_host(&e->idx, slot);
    if (h->groups > 0)
        return berth__error_set(err, BERTH_EBUSY, "HostBusy", "name",
                                "host '%s' still holds %u container groups", h->name,
                                h->groups);
    berth__index_unlink(&e->idx, slot);
    size_t len = strlen(h->name);
    uint32_t pos = table_find(&e->host_names, hash_bytes(h->name, len), h->name,
                              host_name_eq, e);
    table_delete(&e->host_names, pos);
    berth__index_order_remove(&e->idx, slot);
    stats_capacity(e, h, -1);
    e->stats.hosts--;
    berth__index_slot_free(&e->idx, slot);
    return 0;
}

/* Fills the public views of host `slot`; strings point into the engine. */
static void host_describe(const berth_engine_t *e, uint32_t slot, berth_host_t *d,
                          berth_host_usage_t *u)
{
    const berth__host_t *h = berth__index_host(&e->idx, slot);
    if (d != NULL) {
        d->name = h->name;
        d->cores = h->cores;
        d->memory_mib = h->memory_mib;
        d->gpu_sku = h->attrs.sku >= 0 ? e->cfg.skus[h->attrs.sku].name : NULL;
        d->gpu_count = h->gpus;
        d->os = (berth_os_t)h->attrs.os;
        d->os_build = h->attrs.build;
        d->zone = h->attrs.zone >= 0 ? e->cfg.zones[h->attrs.zone] : NULL;
        d->features = h->attrs.features;
        d->state = (berth_host_state_t)h->state;
    }
    if (u != NULL) {
        u->millicores = h->used_millicores;
        u->memory_mib = h->used_memory_mib;
        u->gpu_count = h->used_gpus;
        u->groups = h->groups;
    }
}

int berth_host_get(const berth_engine_t *engine, const char *name, berth_host_t *host,
                   berth_host_usage_t *usage)
{
    uint32_t slot = host_find(engine, name);
    if (slot == NIL)
        return BERTH_ENOENT;
    host_describe(engine, slot, host, usage);
    return 0;
}

size_t berth_engine_host_count(const berth_engine_t *engine)
{
    return engine->idx.nhosts;
}

int berth_engine_host_at(const berth_engine_t *engine, size_t i, berth_host_t *host,
                         berth_host_usage_t *usage)
{
    if (i >= engine->idx.nhosts)
        return BERTH_ENOENT;
    host_describe(engine, engine->idx.order[i], host, usage);
    return 0;
}

/* ---- placement ------------------------------------------------------------------------ */

/* Charges (sign > 0) or refunds (sign < 0) a demand on host `slot`, keeping
 * the index and the totals in step.  The caller has checked it fits. */
static void host_charge(berth_engine_t *e, uint32_t slot, const berth_demand_t *d, int sign)
{
    berth__host_t *h = berth__index_host(&e->idx, slot);
    berth__index_unlink(&e->idx, slot);
    if (sign > 0) {
        h->used_millicores += d->millicores;
        h->used_memory_mib += d->memory_mib;
        h->used_gpus += d->gpu_count;
        if (h->groups++ == 0)
            e->stats.hosts_used++;
        e->stats.used_millicores += d->millicores;
        e->stats.used_memory_mib += d->memory_mib;
        e->stats.used_gpus += d->gpu_count;
    } else {
        h->used_millicores -= d->millicores;
        h->used_memory_mib -= d->memory_mib;
        h->used_gpus -= d->gpu_count;
        if (--h->groups == 0)
            e->stats.hosts_used--;
        e->stats.used_millicores -= d->millicores;
        e->stats.used_memory_mib -= d->memory_mib;
        e->stats.used_gpus -= d->gpu_count;
    }
    berth__index_link(&e->idx, slot);
}

static const char *os_name(berth_os_t os)
{
    return os == BERTH_OS_WINDOWS ? "Windows" : "Linux";
}

/* Writes `mib` as ACI writes memory: GB with up to two decimals. */
static void format_gb(char *buf, size_t cap, uint32_t mib)
{
    uint32_t whole = mib / GB;
    uint32_t hundredths = (uint32_t)(((uint64_t)(mib % GB) * 100u + GB / 2) / GB);
    if (hundredths == 100) {
        whole++;
        hundredths = 0;
    }
    if (hundredths == 0)
        snprintf(buf, cap, "%u", whole);
    else if (hundredths % 10 == 0)
        snprintf(buf, cap, "%u.%u", whole, hundredths / 10);
    else
        snprintf(buf, cap, "%u.%02u", whole, hundredths);
}

/* " in zone '1'" or " in zones '1', '2'" for a zone mask; "" for any. */
static void format_zones(const berth_engine_t *e, uint64_t mask, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (mask == 0)
        return;
    size_t len = (size_t)snprintf(buf, cap, " in zone%s ", (mask & (mask - 1)) ? "s" : "");
    bool first = true;
    for (unsigned z = 0; z < 64 && len < cap; z++) {
        if (((mask >> z) & 1u) == 0)
            continue;
        const char *name = z < e->cfg.nzones ? e->cfg.zones[z] : "?";
        len += (size_t)snprintf(buf + len, cap - len, "%s'%s'", first ? "" : ", ", name);
        first = false;
    }
}

/* Explains why no host can take `req`: scans every host, narrowing the set
 * constraint by constraint in the order a reader checks them, and names the
 * first constraint that leaves nothing.  Failure path only. */
static int explain_no_host(const berth_engine_t *e, const berth_request_t *req,
                           berth_error_t *err)
{
    if (err == NULL)
        return BERTH_ENOSPC;
    const berth_demand_t *d = &req->demand;
    const char *sku = d->gpu_count > 0 ? e->cfg.skus[d->gpu_sku].name : "";
    size_t n_os = 0, n_build = 0, n_gpu = 0, n_zone = 0, n_feature = 0, n_ready = 0;
    size_t n_open = 0;
    bool cpu = false, mem = false, gpu = false;
    for (uint32_t i = 0; i < e->idx.nhosts; i++) {
        const berth__host_t *h = berth__index_host(&e->idx, e->idx.order[i]);
        const berth__attrs_t *a = &h->attrs;
        if (a->os != (uint32_t)req->os)
            continue;
        n_os++;
        if (req->os == BERTH_OS_WINDOWS && req->os_build != 0 && a->build != req->os_build &&
            !(a->build > req->os_build && (a->features & BERTH_HOST_HYPERV)))
            continue;
        n_build++;
        if (d->gpu_count > 0 && a->sku != (int32_t)d->gpu_sku)
            continue;
        n_gpu++;
        if (req->zone_mask != 0 && (a->zone < 0 || ((req->zone_mask >> a->zone) & 1u) == 0))
            continue;
        n_zone++;
        bool dedicated = (a->features & BERTH_HOST_DEDICATED) != 0;
        if (dedicated != (req->sku == BERTH_SKU_DEDICATED) ||
            (req->sku == BERTH_SKU_CONFIDENTIAL && !(a->features & BERTH_HOST_CONFIDENTIAL)))
            continue;
        n_feature++;
        if (h->state != BERTH_HOST_READY)
            continue;
        n_ready++;
        if (dedicated && h->groups > 0)
            continue;
        n_open++;
        bool c = h->cores - h->used_millicores / 1000u >= d->millicores / 1000u;
        bool m = h->memory_mib - h->used_memory_mib >= d->memory_mib;
        bool g = h->gpus - h->used_gpus >= d->gpu_count;
        cpu |= c;
        mem |= m;
        gpu |= g;
    }
    char zones[160], gb[32], gpus[48] = "", reason[256];
    format_zones(e, req->zone_mask, zones, sizeof zones);
    format_gb(gb, sizeof gb, d->memory_mib);
    if (d->gpu_count > 0)
        snprintf(gpus, sizeof gpus, " with %s GPUs", sku);
    const char *os = os_name(req->os);
    /* Past the build step, name the build too: "no Windows host in zone '1'"
     * would be false when zone 1 has Windows hosts of another build. */
    char build[64] = "";
    if (req->os == BERTH_OS_WINDOWS && req->os_build != 0)
        snprintf(build, sizeof build, " able to run OS build %u", req->os_build);
    if (n_os == 0)
        snprintf(reason, sizeof reason, "no %s host", os);
    else if (n_build == 0)
        snprintf(reason, sizeof reason,
                 "no Windows host can run OS build %u (process isolation needs a host of "
                 "the same build, Hyper-V isolation a newer host with Hyper-V)",
                 req->os_build);
    else if (n_gpu == 0)
        snprintf(reason, sizeof reason, "no %s host%s%s", os, gpus, build);
    else if (n_zone == 0)
        snprintf(reason, sizeof reason, "no %s host%s%s%s", os, gpus, build, zones);
    else if (n_feature == 0)
        snprintf(reason, sizeof reason, "%s%s",
                 req->sku == BERTH_SKU_DEDICATED ? "no host with the dedicated feature"
                 : req->sku == BERTH_SKU_CONFIDENTIAL
                     ? "no host with the confidential feature"
                     : "no host outside the dedicated pool",
                 zones);
    else if (n_ready == 0)
        snprintf(reason, sizeof reason, "no ready host (every matching host is cordoned or "
                 "down)%s", zones);
    else if (n_open == 0)
        snprintf(reason, sizeof reason, "no empty dedicated host%s", zones);
    else if (!gpu)
        snprintf(reason, sizeof reason, "no host with %u free %s GPUs%s", d->gpu_count, sku,
                 zones);
    else if (!cpu)
        snprintf(reason, sizeof reason, "no host with %u free CPU cores%s",
                 d->millicores / 1000u, zones);
    else if (!mem)
        snprintf(reason, sizeof reason, "no host with %s GB of free memory%s", gb, zones);
    else
        snprintf(reason, sizeof reason,
                 "no host with %u free CPU cores and %s GB of free memory%s%s at once",
                 d->millicores / 1000u, gb, d->gpu_count > 0 ? " and free " : "",
                 d->gpu_count > 0 ? sku : "");
    char requested[128];
    if (d->gpu_count > 0)
        snprintf(requested, sizeof requested, "%u CPU, %s GB memory, %u %s GPU, %s",
                 d->millicores / 1000u, gb, d->gpu_count, sku, os);
    else
        snprintf(requested, sizeof requested, "%u CPU, %s GB memory, %s",
                 d->millicores / 1000u, gb, os);
    return berth__error_set(err, BERTH_ENOSPC, "ResourceNotAvailable", "",
                            "The requested resource is not available at this moment: %s. "
                            "Resource requested: %s. Please retry with a different resource "
                            "request or at another time.", reason, requested);
}

/* Checks a request the caller built (the document path has checked it
 * already, but the request API is public too). */
static int request_check(const berth_engine_t *e, const berth_request_t *req,
                         berth_error_t *err)
{
    if (req == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidRequestContent", "",
                                "no request given");
    if (req->os != BERTH_OS_LINUX && req->os != BERTH_OS_WINDOWS)
        return berth__error_set(err, BERTH_EINVAL, "InvalidOsType", "properties.osType",
                                "a container group needs an OS type (Linux or Windows)");
    const berth_demand_t *d = &req->demand;
    if (d->millicores == 0 || d->millicores % 1000u != 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidRequestedResource",
                                "properties.containers",
                                "a container group takes whole CPU cores (%u millicores)",
                                d->millicores);
    if (d->memory_mib == 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidRequestedResource",
                                "properties.containers", "a container group needs memory");
    if (d->gpu_count > 0 && d->gpu_sku >= e->cfg.nskus)
        return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "properties.containers",
                                "GPU SKU id %u is not in the engine's table", d->gpu_sku);
    if ((unsigned)req->sku > BERTH_SKU_CONFIDENTIAL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidSku", "properties.sku",
                                "unknown SKU %d", (int)req->sku);
    if ((unsigned)req->restart_policy > BERTH_RESTART_NEVER)
        return berth__error_set(err, BERTH_EINVAL, "InvalidRestartPolicy",
                                "properties.restartPolicy", "unknown restart policy %d",
                                (int)req->restart_policy);
    if ((unsigned)req->priority > BERTH_PRIORITY_SPOT)
        return berth__error_set(err, BERTH_EINVAL, "InvalidPriority", "properties.priority",
                                "unknown priority %d", (int)req->priority);
    uint64_t known = e->cfg.nzones >= 64 ? ~0ull : (1ull << e->cfg.nzones) - 1;
    if (req->zone_mask & ~known)
        return berth__error_set(err, BERTH_EINVAL, "InvalidZones", "zones",
                                "the zone mask names zones the engine does not know");
    return 0;
}

static berth_restart_policy_t restart_of(berth_restart_policy_t p)
{
    /* Absent means ACI's default. */
    return p == BERTH_RESTART_UNSET ? BERTH_RESTART_ALWAYS : p;
}

/* Refuses an update that changes a property ACI only changes by delete and
 * create. */
static int update_check(const char *key, const group_t *old, const berth_request_t *req,
                        berth_error_t *err)
{
    const char *what = NULL, *target = NULL;
#define DIGEST_DIFFERS(f) (old->f != 0 && req->f != 0 && old->f != req->f)
    if (old->os != (uint8_t)req->os) {
        what = "osType";
        target = "properties.osType";
    } else if (DIGEST_DIFFERS(cpu_digest)) {
        what = "CPU";
        target = "properties.containers";
    } else if (DIGEST_DIFFERS(memory_digest)) {
        what = "memory";
        target = "properties.containers";
    } else if (DIGEST_DIFFERS(gpu_digest)) {
        what = "GPU";
        target = "properties.containers";
    } else if (old->restart != (uint8_t)restart_of(req->restart_policy)) {
        what = "restartPolicy";
        target = "properties.restartPolicy";
    } else if (DIGEST_DIFFERS(ports_digest)) {
        what = "ports";
        target = "properties.ipAddress.ports";
    }
#undef DIGEST_DIFFERS
    if (what == NULL)
        return 0;
    return berth__error_set(err, BERTH_ECONFLICT, "InvalidContainerGroupUpdate", target,
                            "The updates on container group '%s' are invalid. If you are "
                            "going to update the %s of a container group, you must delete "
                            "it first and then create a new one.", key, what);
}

static void placement_fill(const berth_engine_t *e, const group_t *g, berth_placement_t *out)
{
    if (out == NULL)
        return;
    const char *name = berth__index_host(&e->idx, g->host)->name;
    memcpy(out->host, name, strlen(name) + 1);      /* at most BERTH_NAME_MAX + 1 */
    if (g->previous != NULL)
        memcpy(out->previous_host, g->previous, strlen(g->previous) + 1);
    else
        out->previous_host[0] = '\0';
    out->kind = (berth_placement_kind_t)g->kind;
    out->isolation = (berth_isolation_t)g->isolation;
    out->demand = g->demand;
}

/* Takes a free group record (growing the array when needed).  Returns 0 or
 * BERTH_ENOMEM; the record is not yet in use. */
static int group_reserve(berth_engine_t *e, uint32_t *id)
{
    if (e->free_group != NIL) {
        *id = e->free_group;
        return 0;
    }
    if (e->ngroups_slots == e->capgroups) {
        if (e->capgroups >= (NIL - 1) / 2)
            return BERTH_ENOMEM;
        uint32_t cap = e->capgroups ? e->capgroups * 2 : 64;
        group_t *gs = realloc(e->groups, (size_t)cap * sizeof *gs);
        if (gs == NULL)
            return BERTH_ENOMEM;
        e->groups = gs;
        e->capgroups = cap;
    }
    *id = e->ngroups_slots;
    return 0;
}

/* Refuses a forced host (berth_request_assign) that cannot take `req`:
 * it must not be down, must meet the request's static constraints and must
 * have the free capacity.  A cordoned host is accepted: a replica replays
 * placements that were committed before the cordon.  Stores the isolation
 * the group runs with in *iso. */
static int forced_check(const berth_engine_t *e, uint32_t slot, const berth_request_t *req,
                        berth_isolation_t *iso, berth_error_t *err)
{
    const berth__host_t *h = berth__index_host(&e->idx, slot);
    unsigned tier;
    if (h->state == BERTH_HOST_DOWN)
        return berth__error_set(err, BERTH_ENOSPC, "ResourceNotAvailable", "host",
                                "host '%s' is down", h->name);
    if (!berth__host_matches(&h->attrs, req, iso, &tier))
        return berth__error_set(err, BERTH_ENOSPC, "ResourceNotAvailable", "host",
                                "host '%s' does not meet the group's constraints (OS, "
                                "build, GPU SKU, zone or SKU feature)", h->name);
    if (!berth__host_fits(h, req))
        return berth__error_set(err, BERTH_ENOSPC, "ResourceNotAvailable", "host",
                                "host '%s' lacks the free capacity for the group", h->name);
    return 0;
}

/* Places a new group: on `forced` when it is not NIL, else on the host the
 * policy chooses. */
static int place_new(berth_engine_t *e, const char *key, size_t len, uint32_t hash,
                     const berth_request_t *req, uint32_t forced, berth_placement_t *out,
                     berth_error_t *err)
{
    uint32_t slot = forced;
    berth_isolation_t iso;
    if (forced != NIL) {
        int rc = forced_check(e, forced, req, &iso, err);
        if (rc < 0)
            return rc;
    } else if (berth__index_choose(&e->idx, req, &slot, &iso) < 0) {
        return explain_no_host(e, req, err);
    }
    uint32_t id;
    char *copy = NULL;
    if (len >= KEY_INLINE && (copy = malloc(len + 1)) == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory to place container group '%s'", key);
    if (table_reserve(&e->group_keys) < 0 || group_reserve(e, &id) < 0) {
        free(copy);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory to place container group '%s'", key);
    }
    if (id == e->free_group)
        e->free_group = e->groups[id].host;
    else
        e->ngroups_slots++;
    group_t *g = &e->groups[id];
    char *dst = copy != NULL ? copy : g->key.small;
    memcpy(dst, key, len);
    dst[len] = '\0';
    if (copy != NULL)
        g->key.heap = copy;
    g->keylen = (uint32_t)len;
    g->host = slot;
    g->demand = req->demand;
    g->os = (uint8_t)req->os;
    g->restart = (uint8_t)restart_of(req->restart_policy);
    g->cpu_digest = req->cpu_digest;
    g->memory_digest = req->memory_digest;
    g->gpu_digest = req->gpu_digest;
    g->ports_digest = req->ports_digest;
    g->kind = BERTH_PLACED_NEW;
    g->isolation = (uint8_t)iso;
    g->previous = NULL;
    table_put(&e->group_keys, hash, id);
    host_charge(e, slot, &req->demand, +1);
    e->stats.groups++;
    placement_fill(e, g, out);
    return 0;
}

/* Redeploys group `id`: onto `forced` when it is not NIL, else where the
 * semantics of berth_request_place() put it. */
static int redeploy(berth_engine_t *e, const char *key, uint32_t id,
                    const berth_request_t *req, uint32_t forced, berth_placement_t *out,
                    berth_error_t *err)
{
    group_t *g = &e->groups[id];
    int rc = update_check(key, g, req, err);
    if (rc < 0)
        return rc;
    uint32_t old = g->host;
    /* Release the old allocation first: the new demand is judged on the
     * host as it would be without this group. */
    host_charge(e, old, &g->demand, -1);
    const berth__host_t *h = berth__index_host(&e->idx, old);
    berth_isolation_t iso;
    unsigned tier;
    uint32_t slot = old;
    berth_placement_kind_t kind = BERTH_PLACED_STAYED;
    char *previous = NULL;
    if (forced != NIL) {
        rc = forced_check(e, forced, req, &iso, err);
        if (rc < 0) {
            host_charge(e, old, &g->demand, +1);
            return rc;
        }
        slot = forced;
    } else if (h->state == BERTH_HOST_DOWN || !berth__host_matches(&h->attrs, req, &iso, &tier) ||
               !berth__host_fits(h, req)) {
        if (berth__index_choose(&e->idx, req, &slot, &iso) < 0) {
            rc = explain_no_host(e, req, err);
            host_charge(e, old, &g->demand, +1);
            return rc;
        }
    }
    if (slot != old) {
        previous = berth__strdup(h->name);
        if (previous == NULL) {
            host_charge(e, old, &g->demand, +1);
            return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                    "no memory to move container group '%s'", key);
        }
        kind = BERTH_PLACED_MOVED;
    }
    host_charge(e, slot, &req->demand, +1);
    g->demand = req->demand;
    g->restart = (uint8_t)restart_of(req->restart_policy);
    /* A redeploy that does not know a fingerprint keeps the one on record,
     * so that a later update is still compared against it. */
    if (req->cpu_digest != 0)
        g->cpu_digest = req->cpu_digest;
    if (req->memory_digest != 0)
        g->memory_digest = req->memory_digest;
    if (req->gpu_digest != 0)
        g->gpu_digest = req->gpu_digest;
    if (req->ports_digest != 0)
        g->ports_digest = req->ports_digest;
    g->kind = (uint8_t)kind;
    g->isolation = (uint8_t)iso;
    g->host = slot;
    free(g->previous);
    g->previous = previous;
    placement_fill(e, g, out);
    return 0;
}

/* Checks a group key: 1..KEY_MAX bytes.  Stores its length in *len. */
static int key_check(const char *key, size_t *len, berth_error_t *err)
{
    size_t n = key == NULL ? 0 : strnlen(key, KEY_MAX + 1);
    if (n == 0 || n > KEY_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidRequestContent", "key",
                                "a container group key has 1 to %u bytes", KEY_MAX);
    *len = n;
    return 0;
}

/* berth_request_place() and berth_request_assign(): `host` NULL lets the
 * policy choose. */
static int request_apply(berth_engine_t *engine, const char *key,
                         const berth_request_t *request, const char *host,
                         berth_placement_t *out, berth_error_t *err)
{
    size_t len = 0;
    int rc = key_check(key, &len, err);
    if (rc < 0)
        return rc;
    rc = request_check(engine, request, err);
    if (rc < 0)
        return rc;
    uint32_t forced = NIL;
    if (host != NULL && (forced = host_find(engine, host)) == NIL)
        return berth__error_set(err, BERTH_ENOENT, "HostNotFound", "host",
                                "host '%.*s' does not exist", BERTH_NAME_MAX, host);
    uint32_t hash = hash_bytes(key, len);
    uint32_t pos = group_pos(engine, key, len, hash);
    if (pos == NIL)
        return place_new(engine, key, len, hash, request, forced, out, err);
    return redeploy(engine, key, engine->group_keys.e[pos].id, request, forced, out, err);
}

int berth_request_place(berth_engine_t *engine, const char *key,
                        const berth_request_t *request, berth_placement_t *out,
                        berth_error_t *err)
{
    return request_apply(engine, key, request, NULL, out, err);
}

int berth_request_assign(berth_engine_t *engine, const char *key,
                         const berth_request_t *request, const char *host,
                         berth_placement_t *out, berth_error_t *err)
{
    if (host == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "host",
                                "no host given");
    return request_apply(engine, key, request, host, out, err);
}

int berth_group_place(berth_engine_t *engine, const char *key, const berth_group_t *group,
                      berth_placement_t *out, berth_error_t *err)
{
    size_t len = 0;
    int rc = key_check(key, &len, err);
    if (rc < 0)
        return rc;
    berth_request_t req;
    rc = berth_group_request(engine, group, &req, err);
    if (rc < 0)
        return rc;
    return berth_request_place(engine, key, &req, out, err);
}

int berth_group_release(berth_engine_t *engine, const char *key, berth_error_t *err)
{
    berth_engine_t *e = engine;
    size_t len = 0;
    int rc = key_check(key, &len, err);
    if (rc < 0)
        return rc;
    uint32_t pos = group_pos(e, key, len, hash_bytes(key, len));
    if (pos == NIL)
        return berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                                "container group '%s' is not placed", key);
    uint32_t id = e->group_keys.e[pos].id;
    group_t *g = &e->groups[id];
    host_charge(e, g->host, &g->demand, -1);
    table_delete(&e->group_keys, pos);
    if (g->keylen >= KEY_INLINE)
        free(g->key.heap);
    free(g->previous);
    g->previous = NULL;
    g->keylen = 0;
    g->host = e->free_group;
    e->free_group = id;
    e->stats.groups--;
    return 0;
}

void berth_engine_reset(berth_engine_t *engine)
{
    berth_engine_t *e = engine;
    for (uint32_t pos = 0; pos < e->group_keys.cap;) {
        uint32_t id = e->group_keys.e[pos].id;
        if (id == NIL) {
            pos++;
            continue;
        }
        /* Releasing deletes this table position by backward shift, which
         * may move another entry into it: look at the same position again. */
        const group_t *g = &e->groups[id];
        char key[KEY_MAX + 1];
        memcpy(key, group_key(g), g->keylen);
        key[g->keylen] = '\0';
        int rc = berth_group_release(e, key, NULL);
        (void)rc; /* the key was just read from the table: always found */
    }
    while (e->idx.nhosts > 0) {
        const berth__host_t *h = berth__index_host(&e->idx, e->idx.order[e->idx.nhosts - 1]);
        char name[BERTH_NAME_MAX + 1];
        memcpy(name, h->name, strlen(h->name) + 1);
        int rc = berth_host_remove(e, name, NULL);
        (void)rc; /* every group is gone, so no host is busy */
    }
}

int berth_group_get(const berth_engine_t *engine, const char *key, berth_placement_t *out)
{
    size_t len = key == NULL ? 0 : strnlen(key, KEY_MAX + 1);
    if (len == 0 || len > KEY_MAX)
        return BERTH_ENOENT;
    uint32_t pos = group_pos(engine, key, len, hash_bytes(key, len));
    if (pos == NIL)
        return BERTH_ENOENT;
    placement_fill(engine, &engine->groups[engine->group_keys.e[pos].id], out);
    return 0;
}

size_t berth_engine_group_count(const berth_engine_t *engine)
{
    return engine->stats.groups;
}

void berth_engine_stats(const berth_engine_t *engine, berth_engine_stats_t *stats)
{
    *stats = engine->stats;
    stats->hosts = engine->idx.nhosts;
}
