/*
 * request.c: everything placement needs to know about a container group
 * (berth_request_t): the rules that depend on an engine's tables
 * (berth__group_check_engine()), the fingerprints of what a redeploy must
 * not change, the Windows build its images agree on, its images for
 * locality, and its zones (berth__group_request()).
 *
 * The top of the model: it uses the rules (validate.c), the accounting
 * (demand.c) and image references (image_ref.c), and is used by the engine
 * (engine.c's berth_engine_group_request()).  A failing call changes nothing: in
 * particular, zone names are registered only when the whole request
 * succeeds.  It never reads an engine, a store or a clock.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "model-internal.h"

/* ------------------------------------------------------------------------ */
/* Fingerprints                                                             */
/* ------------------------------------------------------------------------ */

static uint64_t hash_str(uint64_t h, const char *s)
{
    if (s == NULL)
        s = "";
    /* The terminating NUL separates fields: ("ab","c") != ("a","bc"). */
    return berth__fnv1a(h, s, strlen(s) + 1);
}

static uint64_t hash_u32(uint64_t h, uint32_t v)
{
    const unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                                (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    return berth__fnv1a(h, b, sizeof b);
}

/* Digests are sums of mixed per-item hashes, so that reordering containers
 * (or ports) does not change them; a digest is never 0, which means
 * "unknown" in berth_request_t. */
static uint64_t finish(uint64_t sum, const char *kind)
{
    uint64_t d = berth__mix64(hash_str(BERTH__FNV_INIT, kind) ^ sum);
    return d != 0 ? d : 1;
}

static berth_protocol_t protocol_of(berth_protocol_t p)
{
    return p == BERTH_PROTOCOL_UNSET ? BERTH_PROTOCOL_TCP : p;
}

static void digests(const berth_group_t *g, berth_request_t *r)
{
    uint64_t cpu = 0, memory = 0, gpu = 0, ports = 0;
    for (size_t i = 0; i < g->ncontainers; i++) {
        const berth_container_t *c = &g->containers[i];
        uint64_t base = hash_str(BERTH__FNV_INIT, c->name);
        cpu += berth__mix64(hash_u32(hash_u32(base, c->requests.cpu_millicores),
                                     c->limits.cpu_millicores));
        memory += berth__mix64(hash_u32(hash_u32(base, c->requests.memory_milli_gb),
                                        c->limits.memory_milli_gb));
        uint64_t h = hash_str(hash_u32(base, c->requests.gpu.count), c->requests.gpu.sku);
        gpu += berth__mix64(hash_str(hash_u32(h, c->limits.gpu.count), c->limits.gpu.sku));
        for (size_t k = 0; k < c->nports; k++)
            ports += berth__mix64(hash_u32(hash_u32(hash_str(base, "port"), c->ports[k].port),
                                           protocol_of(c->ports[k].protocol)));
    }
    if (g->ip_address != NULL) {
        uint64_t base = hash_str(BERTH__FNV_INIT, "ipAddress");
        for (size_t k = 0; k < g->ip_address->nports; k++)
            ports += berth__mix64(hash_u32(hash_u32(base, g->ip_address->ports[k].port),
                                           protocol_of(g->ip_address->ports[k].protocol)));
    }
    r->cpu_digest = finish(cpu, "cpu");
    r->memory_digest = finish(memory, "memory");
    r->gpu_digest = finish(gpu, "gpu");
    r->ports_digest = finish(ports, "ports");
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

/* The memory the group's containers request, in GB as documents state it. */
static double group_memory_gb(const berth_group_t *g)
{
    uint64_t milli_gb = 0;
    for (size_t i = 0; i < g->ncontainers; i++)
        milli_gb += g->containers[i].requests.memory_milli_gb;
    return (double)milli_gb / 1000.0;
}

/* Rules against the engine's tables; see model-internal.h.  Reads cfg only;
 * returns the number of violations appended to *err. */
size_t berth__group_check_engine(const berth__config_t *cfg, const berth_group_t *g,
                                 berth_error_t *err)
{
    size_t n = 0;
    berth_demand_t d;
    berth__group_demand(g, &d);
    uint32_t max_millicores = cfg->limits.max_millicores;
    uint32_t max_memory_mib = cfg->limits.max_memory_mib;
    const char *limit_source = "the per-group limit";
    bool check_size = true;
    berth__path_t path;
    const char *sku = berth__group_gpu_sku(g, &path);
    if (sku != NULL) {
        int id = berth__config_sku_find(cfg, sku);
        const berth_gpu_offer_t *offer = NULL;
        if (id < 0) {
            char list[BERTH_GPU_SKUS_MAX * (BERTH_GPU_SKU_NAME_MAX + 2) + 1] = "";
            for (size_t i = 0; i < cfg->nskus; i++) {
                if (i > 0)
                    strcat(list, ", ");
                strcat(list, cfg->skus[i].name);
            }
            n += berth__report(err, "UnsupportedGpuSku", path.buf,
                        "The GPU SKU '%.15s' is not supported; supported SKUs are: %.300s.",
                        sku, cfg->nskus > 0 ? list : "none");
        } else if (d.gpu_count > 0 &&
                   (offer = berth__config_sku_offer(cfg, (uint32_t)id, d.gpu_count)) == NULL) {
            char list[BERTH_GPU_OFFERS_MAX * 12 + 1] = "";
            const berth_gpu_sku_t *s = &cfg->skus[id];
            for (size_t i = 0; i < s->noffers; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%u",
                         i > 0 ? ", " : "", s->offers[i].count);
            n += berth__report(err, "UnsupportedGpuCount", "properties.containers",
                        "The group requests %u '%s' GPUs; that SKU is offered in counts of %s.",
                        d.gpu_count, s->name, list);
        }
        if (offer != NULL) {
            /* GPU groups take their CPU and memory limits from the offer. */
            max_millicores = offer->max_millicores;
            max_memory_mib = offer->max_memory_mib;
            limit_source = "the GPU offer's limit";
        } else if (d.gpu_count > 0) {
            /* Without an offer there is no size to check against. */
            check_size = false;
        }
    }
    /* Stated as ACI states them: CPU in cores, memory in GB (of 1024 MiB). */
    if (check_size && d.millicores > max_millicores)
        n += berth__report(err, "CpuLimitExceeded", "properties.containers",
                    "The group requests %g CPU cores (%u when rounded up to whole cores); "
                    "%s is %g cores.",
                    d.requested_millicores / 1000.0, d.millicores / 1000, limit_source,
                    max_millicores / 1000.0);
    if (check_size && d.memory_mib > max_memory_mib)
        n += berth__report(err, "MemoryLimitExceeded", "properties.containers",
                    "The group requests %g GB of memory; %s is %g GB.",
                    group_memory_gb(g), limit_source, max_memory_mib / 1024.0);
    size_t containers = g->ncontainers + g->ninit_containers;
    if (containers > cfg->limits.max_containers)
        n += berth__report(err, "TooManyContainers", "properties.containers",
                    "The group holds %zu containers and init containers; the limit is %u.",
                    containers, cfg->limits.max_containers);
    if (g->nvolumes > cfg->limits.max_volumes)
        n += berth__report(err, "TooManyVolumes", "properties.volumes",
                    "The group defines %zu volumes; the limit is %u.", g->nvolumes,
                    cfg->limits.max_volumes);
    if (g->ip_address != NULL && g->ip_address->nports > cfg->limits.max_ip_ports)
        n += berth__report(err, "TooManyIpAddressPorts", "properties.ipAddress.ports",
                    "The IP address opens %zu ports; the limit is %u.", g->ip_address->nports,
                    cfg->limits.max_ip_ports);
    return n;
}



/* The Windows build all the group's images agree on (0: any); reports
 * images that name different builds. */
static size_t windows_build(const berth_group_t *g, uint32_t *out, berth_error_t *err)
{
    size_t n = 0;
    *out = 0;
    const berth_container_t *lists[2] = {g->containers, g->init_containers};
    const size_t counts[2] = {g->ncontainers, g->ninit_containers};
    static const char *const keys[2] = {"containers", "initContainers"};
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < counts[l]; i++) {
            uint32_t b = berth__image_windows_build(lists[l][i].image);
            if (b == 0)
                continue;
            if (*out == 0) {
                *out = b;
            } else if (b != *out) {
                char t[BERTH_ERROR_TARGET_MAX];
                snprintf(t, sizeof t, "properties.%s[%zu].properties.image", keys[l], i);
                n += berth__report(err, "ConflictingWindowsBuilds", t,
                            "The image '%.200s' needs Windows build %u, but another image of "
                            "the group needs build %u.", lists[l][i].image, b, *out);
            }
        }
    }
    return n;
}

/* The group's distinct images for image locality: containers, then init
 * containers, in document order, the first BERTH_REQUEST_IMAGES_MAX (by
 * normalized reference, berth_image_hash()). */
static void images_of(const berth_group_t *g, berth_request_t *r)
{
    const berth_container_t *lists[2] = {g->containers, g->init_containers};
    const size_t counts[2] = {g->ncontainers, g->ninit_containers};
    r->nimages = 0;
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < counts[l] && r->nimages < BERTH_REQUEST_IMAGES_MAX; i++) {
            uint64_t h = berth_image_hash(lists[l][i].image);
            bool seen = h == 0;
            for (uint32_t k = 0; k < r->nimages && !seen; k++)
                seen = r->images[k] == h;
            if (!seen)
                r->images[r->nimages++] = h;
        }
    }
}

/* Validates the group (its own rules and cfg's tables) and computes its
 * request into *out.  Zones new to cfg are registered only when the whole
 * call succeeds; on failure neither cfg nor *out changes.  Returns 0,
 * BERTH_EINVAL (every violation in *err), BERTH_ELIMIT (zone table full) or
 * BERTH_ENOMEM. */
int berth__group_request(berth__config_t *cfg, const berth_group_t *g, berth_request_t *out,
                         berth_error_t *err)
{
    berth_error_clear(err);
    size_t n = 0;
    /* A group may be built by hand rather than parsed: the rules a parse
     * enforces by shape are checked again here. */
    if (g->ncontainers == 0)
        n += berth__report(err, "MissingRequiredProperty", "properties.containers",
                    "A container group needs at least one container.");
    if (g->os_type == BERTH_OS_UNSET)
        n += berth__report(err, "MissingRequiredProperty", "properties.osType",
                    "The required property 'osType' is missing.");
    int rc_check = berth__group_check(g, err);
    if (rc_check == BERTH_ENOMEM)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "out of memory while validating the container group");
    n += rc_check != 0;
    n += berth__group_check_engine(cfg, g, err);
    uint32_t build = 0;
    if (g->os_type == BERTH_OS_WINDOWS)
        n += windows_build(g, &build, err);
    if (n > 0)
        return BERTH_EINVAL;

    berth_request_t r;
    memset(&r, 0, sizeof r);
    berth__group_demand(g, &r.demand);
    const char *sku = berth__group_gpu_sku(g, NULL);
    if (sku != NULL && r.demand.gpu_count > 0)
        r.demand.gpu_sku = (uint32_t)berth__config_sku_find(cfg, sku);
    r.os = g->os_type;
    r.os_build = build;
    /* Absent means ACI's default; normalising here makes "absent" and the
     * default compare equal when an update is checked. */
    r.sku = g->sku != BERTH_SKU_UNSET ? g->sku : BERTH_SKU_STANDARD;
    r.priority = g->priority != BERTH_PRIORITY_UNSET ? g->priority : BERTH_PRIORITY_REGULAR;
    r.sandbox = cfg->sandbox == BERTH_SANDBOX_ALL;
    r.restart_policy = g->restart_policy != BERTH_RESTART_UNSET ? g->restart_policy
                                                                 : BERTH_RESTART_ALWAYS;
    digests(g, &r);
    images_of(g, &r);

    /* Zones last, on a copy of the table, committed only on success. */
    if (g->nzones > 0) {
        berth__config_t zones;
        memcpy(zones.zones, cfg->zones, sizeof zones.zones);
        zones.nzones = cfg->nzones;
        for (size_t i = 0; i < g->nzones; i++) {
            char t[BERTH_ERROR_TARGET_MAX];
            snprintf(t, sizeof t, "zones[%zu]", i);
            int id = berth__config_zone_id(&zones, g->zones[i], true);
            if (id == BERTH_ELIMIT)
                return berth__error_set(err, BERTH_ELIMIT, "TooManyZones", t,
                                        "The engine already knows %d zones; zone '%.63s' "
                                        "cannot be added.", BERTH_ZONES_MAX,
                                        g->zones[i] != NULL ? g->zones[i] : "");
            if (id < 0)
                return berth__error_set(err, BERTH_EINVAL, "InvalidZone", t,
                                        "A zone name must have 1 to %d characters.",
                                        BERTH_NAME_MAX);
            r.zone_mask |= UINT64_C(1) << id;
        }
        memcpy(cfg->zones, zones.zones, sizeof zones.zones);
        cfg->nzones = zones.nzones;
    }
    *out = r;
    return 0;
}
