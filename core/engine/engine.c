/*
 * engine.c: the placement engine: hosts, groups, placing and releasing.
 *
 * An engine holds its tables (berth__config_t), its hosts (in the index of
 * index.c), the groups placed under their keys (an open-addressing hash
 * table of group records, table.h) and running totals for berth_engine_stats().
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
#include "subnets.h"
#include "table.h"

#define NIL BERTH__NIL
#define KEY_MAX 255u
#define GB 1024u

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
    uint8_t spot;                   /* 1: a Spot group, which preemption may evict */
    /* What a redeploy may not change (see berth_request_t); 0: unknown. */
    uint64_t cpu_digest, memory_digest, gpu_digest, ports_digest;
    char *previous;                 /* malloc'd host name after a move, else NULL */
} group_t;

struct berth_engine {
    berth__config_t cfg;
    berth__subnets_t subnets;              /* virtual network subnets (subnets.c) */
    berth_engine_options_t opts;
    berth__index_t idx;
    berth__table_t host_names;             /* name -> host slot                    */
    berth__table_t group_keys;             /* key -> group record                  */
    group_t *groups;
    uint32_t ngroups_slots, capgroups;
    uint32_t free_group;
    berth_engine_stats_t stats;
    /* Preemption (see berth.h, "Priority and preemption"): the number of
     * Spot groups held, so that a refusal with none costs nothing; the
     * victims of the last plan (ids while planning, keys once done); and
     * whether berth_engine_request_place() may preempt (a store's replica never
     * does: it commits preemptions through Redis). */
    uint32_t spot_groups;
    uint32_t nvictims, capvictims;
    uint32_t *victim_ids;
    char (*victim_keys)[KEY_MAX + 1];
    bool no_preempt;
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
    uint32_t pos = berth__table_find(&e->host_names, berth__table_hash(name, len), name, host_name_eq, e);
    return pos == NIL ? NIL : e->host_names.e[pos].id;
}

/* The table position of group `key` (len bytes), or NIL. */
static uint32_t group_pos(const berth_engine_t *e, const char *key, size_t len,
                          uint32_t hash)
{
    key_ref_t k = {key, len};
    return berth__table_find(&e->group_keys, hash, &k, group_key_eq, e);
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
    if ((unsigned)o.sandbox > BERTH_SANDBOX_ALL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidEngineOptions", "sandbox",
                                "unknown sandbox policy %d", (int)o.sandbox);
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
    e->cfg.sandbox = o.sandbox;
    berth__index_init(&e->idx, o.policy);
    e->idx.locality = o.image_locality != 0;
    e->idx.score = o.vector_score != 0 && o.policy == BERTH_POLICY_BINPACK;
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
    free(engine->victim_ids);
    free(engine->victim_keys);
    free(engine->host_names.e);
    free(engine->group_keys.e);
    berth__index_free(&engine->idx);
    berth__subnets_clear(&engine->subnets);
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

berth__subnets_t *berth__engine_subnets(berth_engine_t *engine)
{
    return &engine->subnets;
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

/* ---- requests: the model against the engine's tables ---------------------------- */

/* Validates the group against the engine's tables and computes its request
 * into *out; zone names new to the engine are registered, but only when the
 * call succeeds.  Returns 0, BERTH_EINVAL, BERTH_ELIMIT or BERTH_ENOMEM. */
int berth_engine_group_request(berth_engine_t *engine, const berth_group_t *group,
                               berth_request_t *out, berth_error_t *err)
{
    if (engine == NULL || group == NULL || out == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                                "berth_engine_group_request needs an engine, a group and an "
                                "output");
    uint64_t subnets;
    int rc = berth__subnets_request(&engine->subnets, group, &subnets, err);
    if (rc == 0 && (rc = berth__group_request(berth__engine_config(engine), group, out,
                                              err)) == 0)
        out->subnet_mask = subnets;
    return rc;
}

/* berth_engine_group_request() without the output and without registering zones:
 * the engine is not changed.  Returns 0, BERTH_EINVAL, BERTH_ELIMIT or
 * BERTH_ENOMEM. */
int berth_engine_group_validate(berth_engine_t *engine, const berth_group_t *group,
                                berth_error_t *err)
{
    if (engine == NULL || group == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                                "berth_engine_group_validate needs an engine and a group");
    /* Validation must change nothing, so zones are resolved in a copy of
     * the tables: a full zone table still fails as it would when placing. */
    uint64_t subnets;
    int rc = berth__subnets_request(&engine->subnets, group, &subnets, err);
    if (rc < 0)
        return rc;
    berth__config_t copy = *berth__engine_config(engine);
    berth_request_t unused;
    return berth__group_request(&copy, group, &unused, err);
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
                                  BERTH_HOST_HYPERV | BERTH_HOST_SANDBOX))
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
    attrs->subnets = berth__subnets_host_mask(&e->subnets, d->name);
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

int berth_engine_host_add(berth_engine_t *engine, const berth_host_t *host, berth_error_t *err)
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
    if (berth__table_reserve(&e->host_names) < 0 || berth__index_slot_alloc(&e->idx, &slot) < 0)
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
    berth__table_put(&e->host_names, berth__table_hash(h->name, len), slot);
    berth__index_link(&e->idx, slot);
    e->stats.hosts++;
    stats_capacity(e, h, +1);
    return 0;
}

int berth_engine_host_update(berth_engine_t *engine, const berth_host_t *host, berth_error_t *err)
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

int berth_engine_host_set_state(berth_engine_t *engine, const char *name, berth_host_state_t state,
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

int berth_engine_host_remove(berth_engine_t *engine, const char *name, berth_error_t *err)
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
    uint32_t pos = berth__table_find(&e->host_names, berth__table_hash(h->name, len), h->name,
                              host_name_eq, e);
    berth__table_delete(&e->host_names, pos);
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

int berth_engine_host_get(const berth_engine_t *engine, const char *name, berth_host_t *host,
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

/* The id of the lowest subnet in `mask`, for messages. */
static const char *subnet_name(const berth_engine_t *e, uint64_t mask)
{
    for (size_t i = 0; i < e->subnets.n; i++)
        if ((mask >> i) & 1u)
            return e->subnets.v[i].id;
    return "?";
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
    size_t n_os = 0, n_build = 0, n_gpu = 0, n_zone = 0, n_subnet = 0, n_feature = 0;
    size_t n_sandbox = 0;
    size_t n_ready = 0;
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
        if ((a->subnets & req->subnet_mask) != req->subnet_mask)
            continue;
        n_subnet++;
        bool dedicated = (a->features & BERTH_HOST_DEDICATED) != 0;
        if (dedicated != (req->sku == BERTH_SKU_DEDICATED) ||
            (req->sku == BERTH_SKU_CONFIDENTIAL && !(a->features & BERTH_HOST_CONFIDENTIAL)))
            continue;
        n_feature++;
        if (req->sandbox && !(a->features & BERTH_HOST_SANDBOX))
            continue;
        n_sandbox++;
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
    else if (n_subnet == 0)
        snprintf(reason, sizeof reason, "no %s host%s%s%s carries subnet '%.80s'", os, gpus,
                 build, zones, subnet_name(e, req->subnet_mask));
    else if (n_feature == 0)
        snprintf(reason, sizeof reason, "%s%s",
                 req->sku == BERTH_SKU_DEDICATED ? "no host with the dedicated feature"
                 : req->sku == BERTH_SKU_CONFIDENTIAL
                     ? "no host with the confidential feature"
                     : "no host outside the dedicated pool",
                 zones);
    else if (n_sandbox == 0)
        snprintf(reason, sizeof reason, "no host with the sandbox feature (the engine's "
                 "sandbox policy is 'all')%s", zones);
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
    uint64_t subnets = e->subnets.n >= 64 ? ~0ull : (1ull << e->subnets.n) - 1;
    if ((req->subnet_mask & ~subnets) || (req->subnet_mask & (req->subnet_mask - 1)))
        return berth__error_set(err, BERTH_EINVAL, "InvalidSubnetIds", "properties.subnetIds",
                                "the subnet mask must name one subnet the engine knows");
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
    } else if (old->spot != (req->priority == BERTH_PRIORITY_SPOT)) {
        what = "priority";
        target = "properties.priority";
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
    out->evicted = 0;
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

/* Refuses a forced host (berth_engine_request_assign) that cannot take `req`:
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

/* ---- preemption ----------------------------------------------------------------- */

/* A Spot group that could be evicted for a request, with its demand in
 * whole cores, MiB and GPUs. */
typedef struct candidate {
    uint32_t id;                    /* group record                         */
    uint32_t host;                  /* its host's slot                      */
    uint32_t cores, memory, gpus;
} candidate_t;

/* The room a plan must free on one host, and the best set found so far. */
typedef struct host_search {
    const candidate_t *c;           /* the host's candidates, in plan order */
    uint32_t n;
    uint32_t need_cores, need_memory, need_gpus;
    uint32_t budget;                /* subsets left to look at              */
    uint32_t pick[64];              /* the set being built (exact search)   */
    uint32_t best[64];
    uint32_t k;                     /* the set size looked for              */
    bool found;
    uint64_t best_cores, best_memory, best_gpus;
    /* Bounds: prefix sums of cores (c is sorted by cores, descending) and
     * suffix minima of each dimension, so that a branch that cannot free
     * enough cores, or cannot beat the best set (this host's, or another
     * host's of the same size), is cut. */
    const uint64_t *prefix_cores;
    const uint32_t *min_cores, *min_memory, *min_gpus;
    bool bounded;                   /* another host's plan of size k to beat */
    bool ties_lose;                 /* ... and an equal one wins (its name is smaller) */
    uint64_t bound_cores, bound_memory, bound_gpus;
} host_search_t;

/* Lexicographic comparison of (cores, memory, GPUs) triples. */
static int triple_cmp(uint64_t c1, uint64_t m1, uint64_t g1, uint64_t c2, uint64_t m2,
                      uint64_t g2)
{
    if (c1 != c2)
        return c1 < c2 ? -1 : 1;
    if (m1 != m2)
        return m1 < m2 ? -1 : 1;
    if (g1 != g2)
        return g1 < g2 ? -1 : 1;
    return 0;
}

/* Plan order on one host: largest first (cores, memory, GPUs), then key,
 * so that equal plans resolve the same way in every engine. */
static int candidate_cmp_ctx(const berth_engine_t *e, const candidate_t *a,
                             const candidate_t *b)
{
    if (a->host != b->host)
        return a->host < b->host ? -1 : 1;
    if (a->cores != b->cores)
        return a->cores > b->cores ? -1 : 1;
    if (a->memory != b->memory)
        return a->memory > b->memory ? -1 : 1;
    if (a->gpus != b->gpus)
        return a->gpus > b->gpus ? -1 : 1;
    return strcmp(group_key(&e->groups[a->id]), group_key(&e->groups[b->id]));
}

/* qsort has no context argument in C11: the engine being planned on. */
static _Thread_local const berth_engine_t *sort_engine;

static int candidate_cmp(const void *x, const void *y)
{
    return candidate_cmp_ctx(sort_engine, x, y);
}

/* Exact search for the least (cores, memory, GPUs) set of q->k candidates
 * covering the need: depth-first over index combinations, from `from`,
 * with `depth` picks made and (cores, memory, gpus) freed so far.  Each
 * node costs one unit of q->budget; returns false when it ran out. */
static bool search_k(host_search_t *q, uint32_t from, uint32_t depth, uint64_t cores,
                     uint64_t memory, uint64_t gpus)
{
    if (depth == q->k) {
        if (cores < q->need_cores || memory < q->need_memory || gpus < q->need_gpus)
            return true;
        if (!q->found ||
            triple_cmp(cores, memory, gpus, q->best_cores, q->best_memory, q->best_gpus) < 0) {
            q->found = true;
            q->best_cores = cores;
            q->best_memory = memory;
            q->best_gpus = gpus;
            memcpy(q->best, q->pick, q->k * sizeof q->pick[0]);
        }
        return true;
    }
    uint32_t r = q->k - depth;
    for (uint32_t i = from; i + r <= q->n; i++) {
        /* The r largest cores left cannot free enough: nor can later ones. */
        if (cores + (q->prefix_cores[i + r] - q->prefix_cores[i]) < q->need_cores)
            break;
        /* A lower bound on every set from here on (suffix minima only grow
         * with i): cut when it cannot beat the best known set. */
        uint64_t lc = cores + (uint64_t)r * q->min_cores[i];
        uint64_t lm = memory + (uint64_t)r * q->min_memory[i];
        uint64_t lg = gpus + (uint64_t)r * q->min_gpus[i];
        if (q->found) {
            if (triple_cmp(lc, lm, lg, q->best_cores, q->best_memory, q->best_gpus) >= 0)
                break;
        } else if (q->bounded) {
            int c = triple_cmp(lc, lm, lg, q->bound_cores, q->bound_memory, q->bound_gpus);
            if (c > 0 || (c == 0 && q->ties_lose))
                break;
        }
        if (q->budget == 0)
            return false;
        q->budget--;
        q->pick[depth] = i;
        if (!search_k(q, i + 1, depth + 1, cores + q->c[i].cores, memory + q->c[i].memory,
                      gpus + q->c[i].gpus))
            return false;
    }
    return true;
}

/* The fallback past the exact budget: repeatedly take the candidate that
 * covers the largest share of what is still missing (summed over the
 * dimensions still short, each as a fraction of its need), then drop every
 * victim the set can spare, smallest first.  Fills `best` (q->k entries,
 * in plan order) and returns true, or false when even every candidate
 * together does not free enough.  `taken` is scratch of q->n bytes. */
static bool search_greedy(host_search_t *q, uint32_t *best, uint8_t *taken)
{
    uint64_t rc = q->need_cores, rm = q->need_memory, rg = q->need_gpus;
    memset(taken, 0, q->n);
    uint32_t k = 0;
    while (rc > 0 || rm > 0 || rg > 0) {
        double top = 0.0;
        uint32_t bi = UINT32_MAX;
        for (uint32_t i = 0; i < q->n; i++) {
            if (taken[i])
                continue;
            double v = 0.0;
            if (rc > 0)
                v += (double)(q->c[i].cores < rc ? q->c[i].cores : rc) / (double)q->need_cores;
            if (rm > 0)
                v += (double)(q->c[i].memory < rm ? q->c[i].memory : rm) / (double)q->need_memory;
            if (rg > 0)
                v += (double)(q->c[i].gpus < rg ? q->c[i].gpus : rg) / (double)q->need_gpus;
            if (v > top) {
                top = v;
                bi = i;
            }
        }
        if (bi == UINT32_MAX)
            return false;
        taken[bi] = 1;
        k++;
        rc -= q->c[bi].cores < rc ? q->c[bi].cores : rc;
        rm -= q->c[bi].memory < rm ? q->c[bi].memory : rm;
        rg -= q->c[bi].gpus < rg ? q->c[bi].gpus : rg;
    }
    /* Drop what the set can spare, smallest (last in plan order) first. */
    uint64_t fc = 0, fm = 0, fg = 0;
    for (uint32_t i = 0; i < q->n; i++)
        if (taken[i]) {
            fc += q->c[i].cores;
            fm += q->c[i].memory;
            fg += q->c[i].gpus;
        }
    for (uint32_t i = q->n; i-- > 0;) {
        if (!taken[i])
            continue;
        if (fc - q->c[i].cores >= q->need_cores && fm - q->c[i].memory >= q->need_memory &&
            fg - q->c[i].gpus >= q->need_gpus) {
            taken[i] = 0;
            k--;
            fc -= q->c[i].cores;
            fm -= q->c[i].memory;
            fg -= q->c[i].gpus;
        }
    }
    for (uint32_t i = 0, j = 0; i < q->n; i++)
        if (taken[i])
            best[j++] = i;
    q->k = k;
    q->found = true;
    q->best_cores = fc;
    q->best_memory = fm;
    q->best_gpus = fg;
    return true;
}

/* True when plan (k, cores, memory, gpus, host) beats the best so far. */
static bool plan_better(uint32_t k, uint64_t c, uint64_t m, uint64_t g, const char *host,
                        uint32_t bk, uint64_t bc, uint64_t bm, uint64_t bg, const char *bhost)
{
    if (bhost == NULL || k != bk)
        return bhost == NULL || k < bk;
    if (c != bc)
        return c < bc;
    if (m != bm)
        return m < bm;
    if (g != bg)
        return g < bg;
    return strcmp(host, bhost) < 0;
}

/* Makes room for `n` victims in the engine's victim arrays.  0 or
 * BERTH_ENOMEM (arrays unchanged). */
static int victims_reserve(berth_engine_t *e, uint32_t n)
{
    if (n <= e->capvictims)
        return 0;
    uint32_t *ids = malloc((size_t)n * sizeof *ids);
    char(*keys)[KEY_MAX + 1] = malloc((size_t)n * sizeof *keys);
    if (ids == NULL || keys == NULL) {
        free(ids);
        free(keys);
        return BERTH_ENOMEM;
    }
    free(e->victim_ids);
    free(e->victim_keys);
    e->victim_ids = ids;
    e->victim_keys = keys;
    e->capvictims = n;
    e->nvictims = 0;
    return 0;
}

/* Computes the preemption plan for `req` (berth.h): on success stores the
 * host's slot in *slot, the isolation in *iso, the victims' ids and keys in
 * the engine's victim arrays (e->nvictims of them) and their summed demand
 * in *evicted.  `only` NIL: any ready host; else only that host (a
 * redeploy's own, whose allocation the caller has released; it may be
 * cordoned).  Changes no placement.  Returns 0, BERTH_ENOSPC (no plan;
 * explained in *err when given) or BERTH_ENOMEM. */
static int preempt_plan(berth_engine_t *e, const berth_request_t *req, uint32_t only,
                        uint32_t *slot, berth_isolation_t *iso, berth_demand_t *evicted,
                        berth_error_t *err)
{
    if (req->priority == BERTH_PRIORITY_SPOT)
        return berth__error_set(err, BERTH_ENOSPC, "ResourceNotAvailable", "properties.priority",
                                "no host has room for the Spot container group, and a Spot "
                                "container group never preempts another");
    if (e->spot_groups == 0)
        return explain_no_host(e, req, err);
    candidate_t *cs = malloc((size_t)e->spot_groups * sizeof *cs);
    if (cs == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory to plan a preemption");
    uint32_t n = 0;
    for (uint32_t id = 0; id < e->ngroups_slots && n < e->spot_groups; id++) {
        const group_t *g = &e->groups[id];
        if (g->keylen == 0 || !g->spot || (only != NIL && g->host != only))
            continue;
        const berth__host_t *h = berth__index_host(&e->idx, g->host);
        berth_isolation_t hi;
        unsigned tier;
        bool open = h->state == BERTH_HOST_READY ||
                    (only != NIL && h->state == BERTH_HOST_CORDONED);
        if (!open || !berth__host_matches(&h->attrs, req, &hi, &tier))
            continue;
        cs[n++] = (candidate_t){id, g->host, g->demand.millicores / 1000u, g->demand.memory_mib,
                                g->demand.gpu_count};
    }
    sort_engine = e;
    qsort(cs, n, sizeof *cs, candidate_cmp);
    uint32_t *scratch = malloc((size_t)(n ? n : 1) * sizeof *scratch);
    uint8_t *taken = malloc(n ? n : 1);
    uint64_t *prefix = malloc((size_t)(n + 1) * sizeof *prefix);
    uint32_t *mins = malloc((size_t)(n ? n : 1) * 3 * sizeof *mins);
    /* The best plan's set (its host slot and first candidate below). */
    uint32_t *best_set = malloc((size_t)(n ? n : 1) * sizeof *best_set);
    if (scratch == NULL || taken == NULL || prefix == NULL || mins == NULL || best_set == NULL) {
        free(cs);
        free(scratch);
        free(taken);
        free(prefix);
        free(mins);
        free(best_set);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory to plan a preemption");
    }
    const berth_demand_t *d = &req->demand;
    uint32_t best_host = NIL, best_k = 0, best_from = 0;
    uint64_t bc = 0, bm = 0, bg = 0;
    for (uint32_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && cs[b].host == cs[a].host; b++)
            ;
        const berth__host_t *h = berth__index_host(&e->idx, cs[a].host);
        uint32_t count = b - a;
        bool dedicated = (h->attrs.features & BERTH_HOST_DEDICATED) != 0;
        /* A Dedicated host takes one group: every group it holds must go,
         * and they must all be Spot. */
        if (dedicated && h->groups != count)
            continue;
        if (h->cores < d->millicores / 1000u || h->memory_mib < d->memory_mib ||
            h->gpus < d->gpu_count)
            continue;
        uint32_t fc = h->cores - h->used_millicores / 1000u;
        uint32_t fm = h->memory_mib - h->used_memory_mib;
        uint32_t fg = h->gpus - h->used_gpus;
        host_search_t q;
        q.c = &cs[a];
        q.n = count;
        q.need_cores = d->millicores / 1000u > fc ? d->millicores / 1000u - fc : 0;
        q.need_memory = d->memory_mib > fm ? d->memory_mib - fm : 0;
        q.need_gpus = d->gpu_count > fg ? d->gpu_count - fg : 0;
        q.found = false;
        uint32_t *set = scratch;
        if (dedicated) {
            q.k = count;
            q.found = true;
            q.best_cores = h->used_millicores / 1000u;
            q.best_memory = h->used_memory_mib;
            q.best_gpus = h->used_gpus;
            for (uint32_t i = 0; i < count; i++)
                set[i] = i;
        } else {
            uint64_t sc = 0, sm = 0, sg = 0;
            for (uint32_t i = a; i < b; i++) {
                sc += cs[i].cores;
                sm += cs[i].memory;
                sg += cs[i].gpus;
            }
            if (sc < q.need_cores || sm < q.need_memory || sg < q.need_gpus)
                continue;
            if (q.need_cores == 0 && q.need_memory == 0 && q.need_gpus == 0)
                continue;   /* fits as is: the chooser's to take, not ours */
            /* Bounds over this host's candidates (relative to cs[a]). */
            uint32_t *mc = mins, *mm = mins + count, *mg = mins + 2 * (size_t)count;
            prefix[0] = 0;
            for (uint32_t i = 0; i < count; i++)
                prefix[i + 1] = prefix[i] + cs[a + i].cores;
            for (uint32_t i = count; i-- > 0;) {
                const candidate_t *x = &cs[a + i];
                bool last = i + 1 == count;
                mc[i] = last || x->cores < mc[i + 1] ? x->cores : mc[i + 1];
                mm[i] = last || x->memory < mm[i + 1] ? x->memory : mm[i + 1];
                mg[i] = last || x->gpus < mg[i + 1] ? x->gpus : mg[i + 1];
            }
            q.prefix_cores = prefix;
            q.min_cores = mc;
            q.min_memory = mm;
            q.min_gpus = mg;
            q.budget = BERTH_PREEMPT_EXACT_NODES;
            bool exhausted = false;
            uint32_t kmax = best_host == NIL ? count : (best_k < count ? best_k : count);
            uint32_t found_k = 0;
            for (q.k = 1; q.k <= kmax && q.k <= 64; q.k++) {
                q.bounded = best_host != NIL && q.k == best_k;
                q.ties_lose = q.bounded &&
                    strcmp(h->name, berth__index_host(&e->idx, best_host)->name) > 0;
                q.bound_cores = bc;
                q.bound_memory = bm;
                q.bound_gpus = bg;
                bool done = search_k(&q, 0, 0, 0, 0, 0);
                if (q.found) {
                    found_k = q.k;
                    break;
                }
                if (!done) {
                    exhausted = true;
                    break;
                }
            }
            if (q.found) {
                q.k = found_k;
                for (uint32_t i = 0; i < q.k; i++)
                    set[i] = q.best[i];
            } else if (exhausted || count > 64) {
                if (!search_greedy(&q, set, taken))
                    continue;
            } else {
                continue;   /* no set within the best plan's size */
            }
        }
        if (!plan_better(q.k, q.best_cores, q.best_memory, q.best_gpus, h->name, best_k, bc, bm,
                         bg, best_host == NIL ? NULL : berth__index_host(&e->idx, best_host)->name))
            continue;
        best_host = cs[a].host;
        best_k = q.k;
        best_from = a;
        bc = q.best_cores;
        bm = q.best_memory;
        bg = q.best_gpus;
        memcpy(best_set, set, q.k * sizeof *set);
    }
    int rc = 0;
    if (best_host == NIL) {
        rc = explain_no_host(e, req, err);
        if (err != NULL) {
            size_t used = strlen(err->message);
            snprintf(err->message + used, sizeof err->message - used,
                     " (evicting Spot container groups would not make room either)");
        }
    } else if ((rc = victims_reserve(e, best_k)) < 0) {
        berth__error_set(err, rc, "OutOfMemory", "", "no memory to plan a preemption");
    } else {
        for (uint32_t i = 0; i < best_k; i++) {
            const group_t *g = &e->groups[cs[best_from + best_set[i]].id];
            e->victim_ids[i] = cs[best_from + best_set[i]].id;
            memcpy(e->victim_keys[i], group_key(g), g->keylen + 1);
        }
        e->nvictims = best_k;
        unsigned tier;
        berth__host_matches(&berth__index_host(&e->idx, best_host)->attrs, req, iso, &tier);
        *slot = best_host;
        memset(evicted, 0, sizeof *evicted);
        evicted->millicores = (uint32_t)(bc * 1000u);
        evicted->memory_mib = (uint32_t)bm;
        evicted->gpu_count = (uint32_t)bg;
    }
    free(cs);
    free(scratch);
    free(taken);
    free(prefix);
    free(mins);
    free(best_set);
    return rc;
}

/* Releases group `id`'s allocation and frees its record (the table entry at
 * `pos` too). */
static void group_drop(berth_engine_t *e, uint32_t pos, uint32_t id);

/* Evicts the victims of the plan just made (e->victim_ids): each released
 * as by berth_engine_group_release(). */
static void victims_evict(berth_engine_t *e)
{
    for (uint32_t i = 0; i < e->nvictims; i++) {
        const char *key = e->victim_keys[i];
        size_t len = strlen(key);
        uint32_t pos = group_pos(e, key, len, berth__table_hash(key, len));
        group_drop(e, pos, e->victim_ids[i]);
    }
}

int berth_engine_preemption_plan(berth_engine_t *engine, const berth_request_t *request,
                                 berth_preemption_t *out, berth_error_t *err)
{
    int rc = request_check(engine, request, err);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof *out);
    uint32_t slot;
    berth_isolation_t iso;
    if (berth__index_choose(&engine->idx, request, &slot, &iso) == 0) {
        const char *name = berth__index_host(&engine->idx, slot)->name;
        memcpy(out->host, name, strlen(name) + 1);
        return 0;
    }
    rc = preempt_plan(engine, request, NIL, &slot, &iso, &out->evicted, err);
    if (rc < 0)
        return rc;
    const char *name = berth__index_host(&engine->idx, slot)->name;
    memcpy(out->host, name, strlen(name) + 1);
    out->victims = engine->nvictims;
    return 0;
}

const char *berth_engine_victim_get(const berth_engine_t *engine, size_t i)
{
    return i < engine->nvictims ? engine->victim_keys[i] : NULL;
}

size_t berth_engine_spot_count(const berth_engine_t *engine)
{
    return engine->spot_groups;
}

/* Contract: store.h (the store's files are its only callers). */
void berth__engine_preempt_set(berth_engine_t *engine, bool on);
int berth__engine_redeploy_preemption(berth_engine_t *engine, const char *key,
                                      const berth_request_t *request,
                                      berth_preemption_t *out, berth_error_t *err);

void berth__engine_preempt_set(berth_engine_t *engine, bool on)
{
    engine->no_preempt = !on;
}

/* Places a new group: on `forced` when it is not NIL, else on the host the
 * policy chooses; when none fits, a Regular group preempts Spot groups
 * (berth.h) unless the engine's preemption is off. */
static int place_new(berth_engine_t *e, const char *key, size_t len, uint32_t hash,
                     const berth_request_t *req, uint32_t forced, berth_placement_t *out,
                     berth_error_t *err)
{
    uint32_t slot = forced;
    uint32_t nvictims = 0;
    berth_isolation_t iso;
    if (forced != NIL) {
        int rc = forced_check(e, forced, req, &iso, err);
        if (rc < 0)
            return rc;
    } else if ((berth__index_note_request(&e->idx, req),
                berth__index_choose(&e->idx, req, &slot, &iso)) < 0) {
        /* Only a Regular group preempts, and only when a Spot group
         * exists: every other refusal stays as cheap and as worded as
         * without preemption. */
        if (e->no_preempt || req->priority == BERTH_PRIORITY_SPOT || e->spot_groups == 0)
            return explain_no_host(e, req, err);
        berth_demand_t freed;
        int rc = preempt_plan(e, req, NIL, &slot, &iso, &freed, err);
        if (rc < 0)
            return rc;
        nvictims = e->nvictims;
    }
    /* Image locality's figure: did the policy's host hold every image? */
    bool images_counted = forced == NIL && req->nimages > 0;
    bool images_cached = images_counted &&
        berth__host_images_held(berth__index_host(&e->idx, slot), req) >=
            (req->nimages < BERTH_REQUEST_IMAGES_MAX ? req->nimages : BERTH_REQUEST_IMAGES_MAX);
    uint32_t id;
    char *copy = NULL;
    if (len >= KEY_INLINE && (copy = malloc(len + 1)) == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory to place container group '%s'", key);
    if (berth__table_reserve(&e->group_keys) < 0 || (nvictims == 0 && group_reserve(e, &id) < 0)) {
        free(copy);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory to place container group '%s'", key);
    }
    if (nvictims > 0) {
        /* Nothing can fail from here: the victims go first, and one of their
         * records is the new group's (so group_reserve() does not grow). */
        victims_evict(e);
        group_reserve(e, &id);
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
    g->spot = req->priority == BERTH_PRIORITY_SPOT;
    e->spot_groups += g->spot;
    g->previous = NULL;
    berth__table_put(&e->group_keys, hash, id);
    host_charge(e, slot, &req->demand, +1);
    e->stats.groups++;
    e->stats.placements_with_images += images_counted;
    e->stats.placements_images_cached += images_cached;
    placement_fill(e, g, out);
    if (out != NULL)
        out->evicted = nvictims;
    return 0;
}

/* The preemption plan of a redeploy that fits nowhere, its own allocation
 * on `own` already released: Spot groups of `own` only, for a Regular
 * request on a host that is not down and still matches it.  Returns 0
 * (e->nvictims victims planned) or a negative code (BERTH_ENOSPC
 * explained). */
static int redeploy_plan(berth_engine_t *e, const berth_request_t *req, uint32_t own,
                         berth_error_t *err)
{
    const berth__host_t *h = berth__index_host(&e->idx, own);
    berth_isolation_t iso;
    unsigned tier;
    if (req->priority == BERTH_PRIORITY_SPOT || e->spot_groups == 0 ||
        h->state == BERTH_HOST_DOWN || !berth__host_matches(&h->attrs, req, &iso, &tier))
        return explain_no_host(e, req, err);
    uint32_t slot;
    berth_demand_t freed;
    return preempt_plan(e, req, own, &slot, &iso, &freed, err);
}

/* Where a redeploy of a group on `own`, its allocation already released,
 * goes by the semantics of berth_engine_request_place(): its host when it still
 * fits there, else the policy's choice, else (with `preempt`) its host by
 * evicting e->nvictims Spot groups there (*nvictims; 0 otherwise).
 * Returns 0 or a negative code (BERTH_ENOSPC explained). */
static int redeploy_target(berth_engine_t *e, const berth_request_t *req, uint32_t own,
                           bool preempt, uint32_t *slot, berth_isolation_t *iso,
                           uint32_t *nvictims, berth_error_t *err)
{
    const berth__host_t *h = berth__index_host(&e->idx, own);
    unsigned tier;
    *slot = own;
    *nvictims = 0;
    if (h->state != BERTH_HOST_DOWN && berth__host_matches(&h->attrs, req, iso, &tier) &&
        berth__host_fits(h, req))
        return 0;
    if (berth__index_choose(&e->idx, req, slot, iso) == 0)
        return 0;
    int rc = preempt ? redeploy_plan(e, req, own, err) : explain_no_host(e, req, err);
    if (rc < 0)
        return rc;
    *slot = own;
    berth__host_matches(&h->attrs, req, iso, &tier);
    *nvictims = e->nvictims;
    return 0;
}

/* Redeploys group `id`: onto `forced` when it is not NIL, else where the
 * semantics of berth_engine_request_place() put it. */
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
    uint32_t slot = old;
    uint32_t nvictims = 0;
    berth_placement_kind_t kind = BERTH_PLACED_STAYED;
    char *previous = NULL;
    rc = forced != NIL
        ? forced_check(e, forced, req, &iso, err)
        : redeploy_target(e, req, old, !e->no_preempt, &slot, &iso, &nvictims, err);
    if (rc < 0) {
        host_charge(e, old, &g->demand, +1);
        return rc;
    }
    if (forced != NIL)
        slot = forced;
    if (slot != old) {
        previous = berth__strdup(h->name);
        if (previous == NULL) {
            host_charge(e, old, &g->demand, +1);
            return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                    "no memory to move container group '%s'", key);
        }
        kind = BERTH_PLACED_MOVED;
    }
    if (nvictims > 0)
        victims_evict(e);       /* nothing fails from here on */
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
    if (out != NULL)
        out->evicted = nvictims;
    return 0;
}

int berth__engine_redeploy_preemption(berth_engine_t *engine, const char *key,
                                      const berth_request_t *request,
                                      berth_preemption_t *out, berth_error_t *err)
{
    berth_engine_t *e = engine;
    memset(out, 0, sizeof *out);
    int rc = request_check(e, request, err);
    if (rc < 0)
        return rc;
    size_t len = key != NULL ? strlen(key) : 0;
    uint32_t pos = key != NULL ? group_pos(e, key, len, berth__table_hash(key, len)) : NIL;
    if (pos == NIL)
        return berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                                "container group '%s' is not placed", key ? key : "");
    group_t *g = &e->groups[e->group_keys.e[pos].id];
    if ((rc = update_check(key, g, request, err)) < 0)
        return rc;
    /* Judged as redeploy() judges it: without the group's own allocation. */
    uint32_t own = g->host, slot, nvictims;
    berth_isolation_t iso;
    host_charge(e, own, &g->demand, -1);
    rc = redeploy_target(e, request, own, true, &slot, &iso, &nvictims, err);
    out->victims = nvictims;
    for (uint32_t i = 0; rc == 0 && i < nvictims; i++) {
        const group_t *v = &e->groups[e->victim_ids[i]];
        out->evicted.millicores += v->demand.millicores;
        out->evicted.memory_mib += v->demand.memory_mib;
        out->evicted.gpu_count += v->demand.gpu_count;
    }
    host_charge(e, own, &g->demand, +1);
    if (rc < 0)
        return rc;
    const char *name = berth__index_host(&e->idx, slot)->name;
    memcpy(out->host, name, strlen(name) + 1);
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

/* berth_engine_request_place() and berth_engine_request_assign(): `host` NULL lets the
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
    uint32_t hash = berth__table_hash(key, len);
    uint32_t pos = group_pos(engine, key, len, hash);
    if (pos == NIL)
        return place_new(engine, key, len, hash, request, forced, out, err);
    return redeploy(engine, key, engine->group_keys.e[pos].id, request, forced, out, err);
}

int berth_engine_request_place(berth_engine_t *engine, const char *key,
                               const berth_request_t *request, berth_placement_t *out,
                               berth_error_t *err)
{
    return request_apply(engine, key, request, NULL, out, err);
}

int berth_engine_request_assign(berth_engine_t *engine, const char *key,
                                const berth_request_t *request, const char *host,
                                berth_placement_t *out, berth_error_t *err)
{
    if (host == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "host",
                                "no host given");
    return request_apply(engine, key, request, host, out, err);
}

int berth_engine_group_place(berth_engine_t *engine, const char *key, const berth_group_t *group,
                             berth_placement_t *out, berth_error_t *err)
{
    size_t len = 0;
    int rc = key_check(key, &len, err);
    if (rc < 0)
        return rc;
    berth_request_t req;
    rc = berth_engine_group_request(engine, group, &req, err);
    if (rc < 0)
        return rc;
    return berth_engine_request_place(engine, key, &req, out, err);
}

int berth_engine_group_release(berth_engine_t *engine, const char *key, berth_error_t *err)
{
    berth_engine_t *e = engine;
    size_t len = 0;
    int rc = key_check(key, &len, err);
    if (rc < 0)
        return rc;
    uint32_t pos = group_pos(e, key, len, berth__table_hash(key, len));
    if (pos == NIL)
        return berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                                "container group '%s' is not placed", key);
    group_drop(e, pos, e->group_keys.e[pos].id);
    return 0;
}

static void group_drop(berth_engine_t *e, uint32_t pos, uint32_t id)
{
    group_t *g = &e->groups[id];
    host_charge(e, g->host, &g->demand, -1);
    berth__table_delete(&e->group_keys, pos);
    if (g->keylen >= KEY_INLINE)
        free(g->key.heap);
    free(g->previous);
    g->previous = NULL;
    g->keylen = 0;
    e->spot_groups -= g->spot;
    g->spot = 0;
    g->host = e->free_group;
    e->free_group = id;
    e->stats.groups--;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int berth_engine_host_images_set(berth_engine_t *engine, const char *host,
                                 const char *const *images, size_t n, berth_error_t *err)
{
    uint32_t slot = host_find(engine, host);
    if (slot == NIL)
        return berth__error_set(err, BERTH_ENOENT, "HostNotFound", "host",
                                "host '%.*s' does not exist", BERTH_NAME_MAX,
                                host != NULL ? host : "");
    if (n > BERTH_HOST_IMAGES_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "images",
                                "a host holds at most %u images, not %zu",
                                BERTH_HOST_IMAGES_MAX, n);
    for (size_t i = 0; i < n; i++)
        if (images == NULL || berth_image_hash(images[i]) == 0)
            return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "images",
                                    "image %zu is not an image reference", i);
    uint64_t *set = NULL;
    size_t m = 0;
    if (n > 0) {
        if ((set = malloc(n * sizeof *set)) == NULL)
            return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                    "no memory for the images of host '%s'", host);
        for (size_t i = 0; i < n; i++)
            set[i] = berth_image_hash(images[i]);
        qsort(set, n, sizeof *set, u64_cmp);
        for (size_t i = 0; i < n; i++)
            if (m == 0 || set[m - 1] != set[i])
                set[m++] = set[i];
    }
    berth__index_images_take(&engine->idx, slot, set, (uint32_t)m);
    return 0;
}

int berth_engine_host_images_count(const berth_engine_t *engine, const char *host)
{
    uint32_t slot = host_find(engine, host);
    if (slot == NIL)
        return BERTH_ENOENT;
    return (int)berth__index_host(&engine->idx, slot)->nimages;
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
        int rc = berth_engine_group_release(e, key, NULL);
        (void)rc; /* the key was just read from the table: always found */
    }
    while (e->idx.nhosts > 0) {
        const berth__host_t *h = berth__index_host(&e->idx, e->idx.order[e->idx.nhosts - 1]);
        char name[BERTH_NAME_MAX + 1];
        memcpy(name, h->name, strlen(h->name) + 1);
        int rc = berth_engine_host_remove(e, name, NULL);
        (void)rc; /* every group is gone, so no host is busy */
    }
}

int berth_engine_group_get(const berth_engine_t *engine, const char *key, berth_placement_t *out)
{
    size_t len = key == NULL ? 0 : strnlen(key, KEY_MAX + 1);
    if (len == 0 || len > KEY_MAX)
        return BERTH_ENOENT;
    uint32_t pos = group_pos(engine, key, len, berth__table_hash(key, len));
    if (pos == NIL)
        return BERTH_ENOENT;
    placement_fill(engine, &engine->groups[engine->group_keys.e[pos].id], out);
    return 0;
}

/* Contract: berth.h. */
int berth_engine_group_keys(const berth_engine_t *engine, const char *prefix,
                            berth_engine_key_cb cb, void *data)
{
    return berth__engine_group_keys(engine, prefix != NULL ? prefix : "",
                                    prefix != NULL ? strlen(prefix) : 0, cb, data);
}

/* Contract: internal.h. */
int berth__engine_group_keys(const berth_engine_t *engine, const char *prefix, size_t len,
                             berth__engine_key_cb cb, void *data)
{
    for (uint32_t i = 0; i < engine->ngroups_slots; i++) {
        const group_t *g = &engine->groups[i];
        if (g->keylen == 0 || g->keylen < len || memcmp(group_key(g), prefix, len) != 0)
            continue;
        int rc = cb(group_key(g), data);
        if (rc != 0)
            return rc;
    }
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
