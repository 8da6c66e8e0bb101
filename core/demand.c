/*
 * demand.c: resource accounting for a container group: what it takes from
 * a host (berth_demand_t), everything placement needs to know about it
 * (berth_request_t, with fingerprints of what a redeploy must not change),
 * how its rounded cores are shared among its containers, and which Windows
 * build its images need.
 *
 * Accounting is integer arithmetic only: a document's quantities were turned
 * into thousandths when parsed, and every rounding here is an explicit
 * ceiling or a largest-remainder share.  A failing call changes nothing: in
 * particular, zone names are registered only when the whole request
 * succeeds.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "model-internal.h"

static uint32_t saturate(uint64_t x)
{
    return x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

/* Sums the containers' requests into *out (see model-internal.h); pure. */
void berth__group_demand(const berth_group_t *g, berth_demand_t *out)
{
    uint64_t cpu = 0, memory = 0, gpus = 0;
    for (size_t i = 0; i < g->ncontainers; i++) {
        cpu += g->containers[i].requests.cpu_millicores;
        memory += g->containers[i].requests.memory_milli_gb;
        gpus += g->containers[i].requests.gpu.count;
    }
    memset(out, 0, sizeof *out);
    out->requested_millicores = saturate(cpu);
    /* ACI bills and places whole cores: 0.75 + 0.5 cores take 2. */
    out->millicores = saturate((cpu + 999) / 1000 * 1000);
    if (out->millicores % 1000 != 0)
        out->millicores = UINT32_MAX / 1000 * 1000;
    /* 1 GB in a document is 1024 MiB; thousandths of a GB round up. */
    out->memory_mib = saturate((memory * 1024 + 999) / 1000);
    out->gpu_count = saturate(gpus);
}

/* Writes each container's share of the group's rounded cores to
 * shares[0..ncontainers); they sum exactly to the rounded total.  Returns 0,
 * or BERTH_EINVAL (nothing written) when n is too small. */
int berth_group_cpu_shares(const berth_group_t *group, uint32_t *shares, size_t n)
{
    if (group == NULL)
        return BERTH_EINVAL;
    size_t count = group->ncontainers;
    if (shares == NULL || n < count)
        return BERTH_EINVAL;
    berth_demand_t d;
    berth__group_demand(group, &d);
    uint64_t total = d.millicores;
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += group->containers[i].requests.cpu_millicores;
    if (sum == 0) {
        for (size_t i = 0; i < count; i++)
            shares[i] = 0;
        return 0;
    }
    /* Largest remainder: every container gets the floor of its exact
     * share; the millicores left over go one each to the largest
     * remainders, earlier containers first on ties, so the shares sum to
     * the total exactly. */
    uint64_t given = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t exact = total * group->containers[i].requests.cpu_millicores;
        shares[i] = (uint32_t)(exact / sum);
        given += shares[i];
    }
    for (uint64_t left = total - given; left > 0; left--) {
        size_t best = count;
        uint64_t best_rem = 0;
        for (size_t i = 0; i < count; i++) {
            uint64_t exact = total * group->containers[i].requests.cpu_millicores;
            uint64_t rem = exact % sum;
            /* A container already topped up has used its remainder. */
            if (shares[i] > exact / sum)
                continue;
            if (best == count || rem > best_rem) {
                best = i;
                best_rem = rem;
            }
        }
        if (best == count)
            break;
        shares[best]++;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Windows builds                                                           */
/* ------------------------------------------------------------------------ */

static bool token_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* "10.0.<build>" or "10.0.<build>.<revision>": the build, else 0. */
static uint32_t version_build(const char *s, size_t n)
{
    if (n < 6 || strncmp(s, "10.0.", 5) != 0)
        return 0;
    uint64_t build = 0;
    size_t i = 5, digits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
        build = build * 10 + (uint64_t)(s[i] - '0');
    if (digits == 0 || digits > 9)
        return 0;
    if (i < n) {
        if (s[i] != '.' || i + 1 == n)
            return 0;
        for (i++; i < n; i++)
            if (s[i] < '0' || s[i] > '9')
                return 0;
    }
    return (uint32_t)build;
}

/* The Windows build an image's tag names (see internal.h), 0 for none.
 * Reads the tag only: the path and any digest are ignored. */
uint32_t berth__image_windows_build(const char *image)
{
    if (image == NULL)
        return 0;
    /* The tag belongs to the last path component ("host:5000/a/b:tag");
     * a digest ("@sha256:...") is not a tag. */
    const char *name = strrchr(image, '/');
    name = name != NULL ? name + 1 : image;
    size_t end = strcspn(name, "@");
    const char *colon = memchr(name, ':', end);
    if (colon == NULL)
        return 0;
    const char *tag = colon + 1;
    const char *stop = name + end;
    /* Windows tags carry the build as one '-'-separated word:
     * "ltsc2022", "4.8-windowsservercore-ltsc2019", "10.0.20348.1234". */
    while (tag < stop) {
        const char *dash = memchr(tag, '-', (size_t)(stop - tag));
        size_t n = dash != NULL ? (size_t)(dash - tag) : (size_t)(stop - tag);
        if (token_is(tag, n, "ltsc2019") || token_is(tag, n, "1809"))
            return BERTH_WINDOWS_LTSC2019;
        if (token_is(tag, n, "ltsc2022"))
            return BERTH_WINDOWS_LTSC2022;
        if (token_is(tag, n, "ltsc2025"))
            return BERTH_WINDOWS_LTSC2025;
        uint32_t build = version_build(tag, n);
        if (build != 0)
            return build;
        tag += n + 1;
    }
    return 0;
}

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
