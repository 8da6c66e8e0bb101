/*
 * config.c: an engine's tables: per-group limits, the GPU SKU table and the
 * zone names.  They are data, so an operator can add GPU SKUs (T4, A100 ...)
 * or change limits without touching code (an inventory's `limits`, the
 * cell's: berth_engine_limits_set() in engine/inventory.c applies them).
 * Pure data handling; no I/O.
 */
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define GB 1024u /* MiB in one ACI "GB" */

void berth__limits_default(berth_limits_t *limits)
{
    /* ACI's standard per-group limits for groups without GPUs. */
    limits->max_millicores = 4000;
    limits->max_memory_mib = 16 * GB;
    limits->max_containers = 60;
    limits->max_volumes = 20;
    limits->max_ip_ports = 5;
}

/* ACI's GPU offers: K80 with 6/12/24 cores and 56/112/224 GB for 1/2/4 GPUs;
 * P100 and V100 with 6/12/24 cores and 112/224/448 GB. */
static const berth_gpu_sku_t default_skus[] = {
    {"K80", 3, {{1, 6000, 56 * GB}, {2, 12000, 112 * GB}, {4, 24000, 224 * GB}}},
    {"P100", 3, {{1, 6000, 112 * GB}, {2, 12000, 224 * GB}, {4, 24000, 448 * GB}}},
    {"V100", 3, {{1, 6000, 112 * GB}, {2, 12000, 224 * GB}, {4, 24000, 448 * GB}}},
};

void berth__config_init(berth__config_t *cfg, const berth_limits_t *limits)
{
    memset(cfg, 0, sizeof *cfg);
    if (limits != NULL)
        cfg->limits = *limits;
    else
        berth__limits_default(&cfg->limits);
    memcpy(cfg->skus, default_skus, sizeof default_skus);
    cfg->nskus = BERTH__ARRAY_LEN(default_skus);
}

int berth__limits_check(const berth_limits_t *limits, berth_error_t *err)
{
    if (limits == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidLimits", "", "no limits given");
    static const struct {
        size_t offset;
        const char *member;
    } members[] = {
        {offsetof(berth_limits_t, max_millicores), "cpu"},
        {offsetof(berth_limits_t, max_memory_mib), "memoryInGB"},
        {offsetof(berth_limits_t, max_containers), "containers"},
        {offsetof(berth_limits_t, max_volumes), "volumes"},
        {offsetof(berth_limits_t, max_ip_ports), "ports"},
    };
    for (size_t i = 0; i < BERTH__ARRAY_LEN(members); i++) {
        uint32_t v;
        memcpy(&v, (const char *)limits + members[i].offset, sizeof v);
        if (v == 0)
            return berth__error_set(err, BERTH_EINVAL, "InvalidLimits", members[i].member,
                                    "every per-group limit must be above zero ('%s' is 0)",
                                    members[i].member);
    }
    return 0;
}

int berth__config_sku_find(const berth__config_t *cfg, const char *name)
{
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < cfg->nskus; i++)
        if (strcmp(cfg->skus[i].name, name) == 0)
            return (int)i;
    return -1;
}

int berth__config_sku_add(berth__config_t *cfg, const berth_gpu_sku_t *sku,
                          berth_error_t *err)
{
    size_t n = strnlen(sku->name, sizeof sku->name);
    if (n == 0 || n >= sizeof sku->name)
        return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "name",
                                "a GPU SKU needs a name of 1 to %d characters",
                                BERTH_GPU_SKU_NAME_MAX);
    if (sku->noffers == 0 || sku->noffers > BERTH_GPU_OFFERS_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "offers",
                                "GPU SKU '%s' needs 1 to %d offers", sku->name,
                                BERTH_GPU_OFFERS_MAX);
    for (size_t i = 0; i < sku->noffers; i++) {
        const berth_gpu_offer_t *o = &sku->offers[i];
        if (o->count == 0 || o->max_millicores == 0 || o->max_memory_mib == 0)
            return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "offers",
                                    "GPU SKU '%s': every offer needs a non-zero count, "
                                    "CPU and memory", sku->name);
        for (size_t j = 0; j < i; j++)
            if (sku->offers[j].count == o->count)
                return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "offers",
                                        "GPU SKU '%s' offers %u GPUs twice", sku->name,
                                        o->count);
    }
    int id = berth__config_sku_find(cfg, sku->name);
    if (id < 0) {
        if (cfg->nskus == BERTH_GPU_SKUS_MAX)
            return berth__error_set(err, BERTH_ELIMIT, "TooManyGpuSkus", "name",
                                    "the GPU SKU table already holds %d SKUs",
                                    BERTH_GPU_SKUS_MAX);
        id = (int)cfg->nskus++;
    }
    cfg->skus[id] = *sku;
    cfg->skus[id].name[n] = '\0';
    return 0;
}

const berth_gpu_offer_t *berth__config_sku_offer(const berth__config_t *cfg,
                                                 uint32_t id, uint32_t count)
{
    if (id >= cfg->nskus)
        return NULL;
    const berth_gpu_sku_t *s = &cfg->skus[id];
    for (size_t i = 0; i < s->noffers; i++)
        if (s->offers[i].count == count)
            return &s->offers[i];
    return NULL;
}

int berth__config_zone_id(berth__config_t *cfg, const char *name, bool create)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > BERTH_NAME_MAX)
        return BERTH_EINVAL;
    for (size_t i = 0; i < cfg->nzones; i++)
        if (strcmp(cfg->zones[i], name) == 0)
            return (int)i;
    if (!create)
        return -1;
    if (cfg->nzones == BERTH_ZONES_MAX)
        return BERTH_ELIMIT;
    strcpy(cfg->zones[cfg->nzones], name);
    return (int)cfg->nzones++;
}

void berth_engine_options_init(berth_engine_options_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
    opts->policy = BERTH_POLICY_BINPACK;
    berth__limits_default(&opts->limits);
    opts->image_locality = 1;
}

static const char *const policy_names[] = {"binpack", "spread", "firstfit"};

int berth_policy_parse(const char *name, berth_policy_t *out)
{
    for (size_t i = 0; name != NULL && i < BERTH__ARRAY_LEN(policy_names); i++) {
        if (strcmp(name, policy_names[i]) == 0) {
            *out = (berth_policy_t)i;
            return 0;
        }
    }
    return BERTH_EINVAL;
}

const char *berth_policy_name(berth_policy_t policy)
{
    if ((unsigned)policy < BERTH__ARRAY_LEN(policy_names))
        return policy_names[policy];
    return "unknown";
}

static const char *const sandbox_policy_names[] = {"none", "all"};

int berth_sandbox_policy_parse(const char *name, berth_sandbox_policy_t *out)
{
    for (size_t i = 0; name != NULL && i < BERTH__ARRAY_LEN(sandbox_policy_names); i++) {
        if (strcmp(name, sandbox_policy_names[i]) == 0) {
            *out = (berth_sandbox_policy_t)i;
            return 0;
        }
    }
    return BERTH_EINVAL;
}

const char *berth_sandbox_policy_name(berth_sandbox_policy_t policy)
{
    if ((unsigned)policy < BERTH__ARRAY_LEN(sandbox_policy_names))
        return sandbox_policy_names[policy];
    return "unknown";
}
