/*
 * inventory.c: loads a host inventory document (hosts, optionally with the
 * GPU SKUs they use, the per-group limits, the sandbox policy and the
 * virtual network subnets the hosts carry) into an engine, and sets or
 * reads the engine's per-group limits (berth_engine_limits_set()/_get())
 * and sandbox policy (berth_engine_sandbox_set()/_get()).
 *
 * The load is all or nothing: every entry is read and checked, including
 * duplicate names inside the file and against the engine's hosts, before
 * the engine is touched; if adding still fails midway (out of memory), the
 * hosts added are removed and the SKU, limits, sandbox and zone tables are
 * restored (the subnet table is set last, all or nothing, after the hosts).
 * This file must never leave an engine half-loaded, and never keep a
 * pointer into the document after the call returns (the engine copies host
 * strings).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "index.h"
#include "internal.h"
#include "subnets.h"

/* Inventories of 100,000 hosts are legitimate, so the size limit is far above
 * a single ACI document's; the shape is shallow (object > array > host >
 * gpu, or object > gpuSkus > sku > offers > offer, or object > limits), so
 * the depth limit is small. */
#define INVENTORY_MAX_BYTES ((size_t)64 << 20)
#define INVENTORY_MAX_DEPTH 8

/* A Windows build is a 16-bit number; 10240 is the first Windows 10 build. */
#define OS_BUILD_MIN 10240
#define OS_BUILD_MAX 65535

/* The largest container, volume and port counts a `limits` object may give:
 * far above anything a group document can hold, and a guard against typos. */
#define COUNT_LIMIT_MAX 100000u

/* Hosts and offers are checked against the engine's own per-host limits, so
 * that everything validated here is accepted by berth_engine_host_add(). */
#define CORES_MAX BERTH__HOST_CORES_MAX
#define GPUS_MAX BERTH__HOST_GPUS_MAX

typedef struct loader {
    berth_engine_t *engine;
    berth_error_t *err;
    berth__path_t path;
    int rc;                     /* first failure, 0 while none */
    /* SKUs declared by the document, in document order. */
    berth_gpu_sku_t *skus;
    size_t nskus;
    /* The per-group limits, when the document gives `limits`. */
    berth_limits_t limits;
    bool has_limits;
    /* The subnets, when the document gives `subnets`. */
    berth__subnets_doc_t subnets;
    bool has_subnets;
    /* The sandbox policy, when the document gives `sandbox`. */
    berth_sandbox_policy_t sandbox;
    bool has_sandbox;
    /* Hosts read from the document; strings point into the JSON tree. */
    berth_host_t *hosts;
    size_t nhosts;
    /* Zone names the document introduces (pointers into the JSON tree). */
    const char *new_zones[BERTH_ZONES_MAX + 1];
    size_t nnew_zones;
} loader_t;

/* Records one violation at the current path (plus `member`, when given) and
 * remembers the first failure's code.  Reading goes on, so that the caller
 * sees every violation at once. */
static void BERTH__PRINTF(5, 6)
fail(loader_t *ld, int code, const char *name, const char *member, const char *fmt, ...)
{
    size_t mark = member != NULL ? berth__path_key(&ld->path, member) : ld->path.len;
    va_list ap;
    va_start(ap, fmt);
    berth__error_addv(ld->err, code, name, ld->path.buf, fmt, ap);
    va_end(ap);
    berth__path_pop(&ld->path, mark);
    if (ld->rc == 0)
        ld->rc = code;
}

/* Refuses members of `obj` that are not in the NULL-terminated `known`. */
static void check_members(loader_t *ld, json_t *obj, const char *const *known,
                          const char *what)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        bool ok = false;
        for (size_t i = 0; known[i] != NULL && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok)
            fail(ld, BERTH_EINVAL, "InvalidRequestContent", key,
                 "'%s' is not a member of %s", key, what);
    }
}

/* Fetches a required member, reporting its absence. */
static json_t *required(loader_t *ld, json_t *obj, const char *member, const char *what)
{
    json_t *v = json_object_get(obj, member);
    if (v == NULL)
        fail(ld, BERTH_EINVAL, "InvalidRequestContent", member,
             "%s needs '%s'", what, member);
    return v;
}

/* A positive whole number of cores.  Returns false (with the violation
 * recorded) when `v` is not one. */
static bool read_cores(loader_t *ld, json_t *v, const char *member, const char *ename,
                       uint32_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
        json_integer_value(v) > (json_int_t)CORES_MAX) {
        fail(ld, BERTH_EINVAL, ename, member,
             "'%s' must be a whole number of cores from 1 to %u", member, CORES_MAX);
        return false;
    }
    *out = (uint32_t)json_integer_value(v);
    return true;
}

/* A positive memory size in GB with at most three decimals, converted to MiB
 * rounding up (1 GB = 1024 MiB, as ACI counts).  The document's number is
 * scaled to thousandths first so that the conversion itself is exact
 * integer arithmetic. */
static bool read_memory(loader_t *ld, json_t *v, const char *member, const char *ename,
                        uint32_t *out)
{
    /* Thousandths of a GB whose MiB still fit in 32 bits. */
    const double max_milli = (double)UINT32_MAX * 1000.0 / 1024.0;
    double milli;
    if (json_is_integer(v))
        milli = (double)json_integer_value(v) * 1000.0;
    else if (json_is_real(v))
        milli = json_real_value(v) * 1000.0;
    else
        milli = -1.0;
    double whole = nearbyint(milli);
    /* Decimal fractions are inexact in binary; allow the representation
     * error of the double, never a fourth decimal. */
    if (!(milli > 0.0) || milli > max_milli || fabs(milli - whole) > 1e-12 * fmax(1.0, milli) ||
        whole < 1.0) {
        fail(ld, BERTH_EINVAL, ename, member,
             "'%s' must be a number of GB above 0 with at most 3 decimals", member);
        return false;
    }
    uint64_t m = (uint64_t)whole;
    uint64_t mib = (m * 1024u + 999u) / 1000u;
    if (mib > UINT32_MAX) {
        fail(ld, BERTH_EINVAL, ename, member, "'%s' is too large", member);
        return false;
    }
    *out = (uint32_t)mib;
    return true;
}

/* ---- GPU SKUs ------------------------------------------------------------ */

static void read_offer(loader_t *ld, json_t *o, berth_gpu_offer_t *offer)
{
    static const char *const known[] = {"count", "cpu", "memoryInGB", NULL};
    if (!json_is_object(o)) {
        fail(ld, BERTH_EINVAL, "InvalidGpuSku", NULL,
             "a GPU offer must be an object {\"count\", \"cpu\", \"memoryInGB\"}");
        return;
    }
    check_members(ld, o, known, "a GPU offer");
    json_t *count = required(ld, o, "count", "a GPU offer");
    json_t *cpu = required(ld, o, "cpu", "a GPU offer");
    json_t *mem = required(ld, o, "memoryInGB", "a GPU offer");
    if (count != NULL) {
        if (!json_is_integer(count) || json_integer_value(count) <= 0 ||
            json_integer_value(count) > GPUS_MAX)
            fail(ld, BERTH_EINVAL, "InvalidGpuSku", "count",
                 "'count' must be a whole number of GPUs from 1 to %u", GPUS_MAX);
        else
            offer->count = (uint32_t)json_integer_value(count);
    }
    uint32_t cores = 0;
    if (cpu != NULL && read_cores(ld, cpu, "cpu", "InvalidGpuSku", &cores))
        offer->max_millicores = cores * 1000u;
    if (mem != NULL)
        read_memory(ld, mem, "memoryInGB", "InvalidGpuSku", &offer->max_memory_mib);
}

static void read_sku(loader_t *ld, json_t *s, berth_gpu_sku_t *sku)
{
    static const char *const known[] = {"name", "offers", NULL};
    memset(sku, 0, sizeof *sku);
    if (!json_is_object(s)) {
        fail(ld, BERTH_EINVAL, "InvalidGpuSku", NULL,
             "a GPU SKU must be an object {\"name\", \"offers\"}");
        return;
    }
    check_members(ld, s, known, "a GPU SKU");
    json_t *name = required(ld, s, "name", "a GPU SKU");
    json_t *offers = required(ld, s, "offers", "a GPU SKU");
    if (name != NULL) {
        const char *n = json_string_value(name);
        size_t len = n != NULL ? strlen(n) : 0;
        if (n == NULL || len == 0 || len > BERTH_GPU_SKU_NAME_MAX)
            fail(ld, BERTH_EINVAL, "InvalidGpuSku", "name",
                 "a GPU SKU's name must be a string of 1 to %d characters",
                 BERTH_GPU_SKU_NAME_MAX);
        else
            memcpy(sku->name, n, len + 1);
    }
    if (offers == NULL)
        return;
    size_t n = json_array_size(offers);
    if (!json_is_array(offers) || n == 0 || n > BERTH_GPU_OFFERS_MAX) {
        fail(ld, BERTH_EINVAL, "InvalidGpuSku", "offers",
             "'offers' must be an array of 1 to %d offers", BERTH_GPU_OFFERS_MAX);
        return;
    }
    size_t mark = berth__path_key(&ld->path, "offers");
    for (size_t i = 0; i < n; i++) {
        size_t m = berth__path_index(&ld->path, i);
        read_offer(ld, json_array_get(offers, i), &sku->offers[i]);
        for (size_t j = 0; j < i && sku->offers[i].count != 0; j++)
            if (sku->offers[j].count == sku->offers[i].count)
                fail(ld, BERTH_EINVAL, "InvalidGpuSku", "count",
                     "GPU SKU '%s' offers %u GPUs twice", sku->name, sku->offers[i].count);
        berth__path_pop(&ld->path, m);
    }
    berth__path_pop(&ld->path, mark);
    sku->noffers = n;
}

static void read_skus(loader_t *ld, json_t *skus)
{
    size_t mark = berth__path_key(&ld->path, "gpuSkus");
    if (!json_is_array(skus)) {
        fail(ld, BERTH_EINVAL, "InvalidRequestContent", NULL,
             "'gpuSkus' must be an array of GPU SKUs");
        berth__path_pop(&ld->path, mark);
        return;
    }
    size_t n = json_array_size(skus);
    const berth__config_t *cfg = berth__engine_config(ld->engine);
    size_t table = cfg->nskus;
    ld->skus = calloc(n > 0 ? n : 1, sizeof *ld->skus);
    if (ld->skus == NULL) {
        fail(ld, BERTH_ENOMEM, "OutOfMemory", NULL, "out of memory reading GPU SKUs");
        berth__path_pop(&ld->path, mark);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t m = berth__path_index(&ld->path, i);
        berth_gpu_sku_t *sku = &ld->skus[i];
        read_sku(ld, json_array_get(skus, i), sku);
        bool dup = false;
        for (size_t j = 0; j < i && sku->name[0] != '\0' && !dup; j++)
            dup = strcmp(ld->skus[j].name, sku->name) == 0;
        if (dup)
            fail(ld, BERTH_EINVAL, "DuplicateGpuSku", "name",
                 "GPU SKU '%s' is declared twice", sku->name);
        else if (sku->name[0] != '\0' && berth__config_sku_find(cfg, sku->name) < 0 &&
                 ++table > BERTH_GPU_SKUS_MAX)
            fail(ld, BERTH_ELIMIT, "TooManyGpuSkus", "name",
                 "GPU SKU '%s' does not fit: the table holds at most %d SKUs",
                 sku->name, BERTH_GPU_SKUS_MAX);
        berth__path_pop(&ld->path, m);
    }
    ld->nskus = n;
    berth__path_pop(&ld->path, mark);
}

/* ---- per-group limits ----------------------------------------------------- */

/* A whole number from 1 to COUNT_LIMIT_MAX. */
static void read_count(loader_t *ld, json_t *v, const char *member, uint32_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
        json_integer_value(v) > (json_int_t)COUNT_LIMIT_MAX)
        fail(ld, BERTH_EINVAL, "InvalidLimits", member,
             "'%s' must be a whole number from 1 to %u", member, COUNT_LIMIT_MAX);
    else
        *out = (uint32_t)json_integer_value(v);
}

/* `limits`: each member optional; those absent keep the engine's value. */
static void read_limits(loader_t *ld, json_t *o)
{
    static const char *const known[] = {"cpu", "memoryInGB", "containers", "volumes",
                                        "ports", NULL};
    size_t mark = berth__path_key(&ld->path, "limits");
    if (!json_is_object(o)) {
        fail(ld, BERTH_EINVAL, "InvalidLimits", NULL,
             "'limits' must be an object {\"cpu\", \"memoryInGB\", \"containers\", "
             "\"volumes\", \"ports\"}");
        berth__path_pop(&ld->path, mark);
        return;
    }
    check_members(ld, o, known, "the limits");
    berth_limits_t *l = &ld->limits;
    berth_engine_limits_get(ld->engine, l);
    json_t *v;
    uint32_t cores = 0;
    if ((v = json_object_get(o, "cpu")) != NULL &&
        read_cores(ld, v, "cpu", "InvalidLimits", &cores))
        l->max_millicores = cores * 1000u;
    if ((v = json_object_get(o, "memoryInGB")) != NULL)
        read_memory(ld, v, "memoryInGB", "InvalidLimits", &l->max_memory_mib);
    if ((v = json_object_get(o, "containers")) != NULL)
        read_count(ld, v, "containers", &l->max_containers);
    if ((v = json_object_get(o, "volumes")) != NULL)
        read_count(ld, v, "volumes", &l->max_volumes);
    if ((v = json_object_get(o, "ports")) != NULL)
        read_count(ld, v, "ports", &l->max_ip_ports);
    ld->has_limits = true;
    berth__path_pop(&ld->path, mark);
}

/* The document's sandbox policy: "none" or "all". */
static void read_sandbox(loader_t *ld, json_t *v)
{
    size_t mark = berth__path_key(&ld->path, "sandbox");
    if (berth_sandbox_policy_parse(json_string_value(v), &ld->sandbox) != 0)
        fail(ld, BERTH_EINVAL, "InvalidSandboxPolicy", NULL,
             "'sandbox' must be \"none\" or \"all\"");
    else
        ld->has_sandbox = true;
    berth__path_pop(&ld->path, mark);
}

/* True when `name` is a GPU SKU the engine knows or the document declares. */
static bool sku_known(const loader_t *ld, const char *name)
{
    if (berth__config_sku_find(berth__engine_config(ld->engine), name) >= 0)
        return true;
    for (size_t i = 0; i < ld->nskus; i++)
        if (strcmp(ld->skus[i].name, name) == 0)
            return true;
    return false;
}

/* ---- hosts --------------------------------------------------------------- */

/* Notes a zone the engine has not registered yet, so that the zone table's
 * limit is checked before anything is added. */
static void note_zone(loader_t *ld, const char *zone)
{
    if (berth__config_zone_id(berth__engine_config(ld->engine), zone, false) >= 0)
        return;
    for (size_t i = 0; i < ld->nnew_zones; i++)
        if (strcmp(ld->new_zones[i], zone) == 0)
            return;
    if (berth__engine_config(ld->engine)->nzones + ld->nnew_zones >= BERTH_ZONES_MAX) {
        fail(ld, BERTH_ELIMIT, "TooManyZones", "zone",
             "zone '%s' does not fit: an engine knows at most %d zones", zone,
             BERTH_ZONES_MAX);
        return;
    }
    ld->new_zones[ld->nnew_zones++] = zone;
}

static void read_gpu(loader_t *ld, json_t *gpu, berth_host_t *h)
{
    static const char *const known[] = {"sku", "count", NULL};
    size_t mark = berth__path_key(&ld->path, "gpu");
    if (!json_is_object(gpu)) {
        fail(ld, BERTH_EINVAL, "InvalidHostResource", NULL,
             "'gpu' must be an object {\"sku\", \"count\"}");
        berth__path_pop(&ld->path, mark);
        return;
    }
    check_members(ld, gpu, known, "a host's gpu");
    json_t *sku = required(ld, gpu, "sku", "a host's gpu");
    json_t *count = required(ld, gpu, "count", "a host's gpu");
    if (sku != NULL) {
        const char *s = json_string_value(sku);
        if (s == NULL || s[0] == '\0')
            fail(ld, BERTH_EINVAL, "InvalidHostResource", "sku",
                 "'sku' must be the name of a GPU SKU");
        else if (!sku_known(ld, s))
            fail(ld, BERTH_EINVAL, "UnknownGpuSku", "sku",
                 "GPU SKU '%s' is neither in the engine's table nor declared in 'gpuSkus'", s);
        else
            h->gpu_sku = s;
    }
    if (count != NULL) {
        if (!json_is_integer(count) || json_integer_value(count) <= 0 ||
            json_integer_value(count) > GPUS_MAX)
            fail(ld, BERTH_EINVAL, "InvalidHostResource", "count",
                 "'count' must be a whole number of GPUs from 1 to %u", GPUS_MAX);
        else
            h->gpu_count = (uint32_t)json_integer_value(count);
    }
    berth__path_pop(&ld->path, mark);
}

static void read_features(loader_t *ld, json_t *features, berth_host_t *h)
{
    static const struct {
        const char *name;
        uint32_t bit;
    } names[] = {
        {"confidential", BERTH_HOST_CONFIDENTIAL},
        {"dedicated", BERTH_HOST_DEDICATED},
        {"hyperv", BERTH_HOST_HYPERV},
        {"sandbox", BERTH_HOST_SANDBOX},
    };
    size_t mark = berth__path_key(&ld->path, "features");
    if (!json_is_array(features)) {
        fail(ld, BERTH_EINVAL, "InvalidHostFeature", NULL,
             "'features' must be an array of \"confidential\", \"dedicated\", \"hyperv\", "
             "\"sandbox\"");
        berth__path_pop(&ld->path, mark);
        return;
    }
    for (size_t i = 0; i < json_array_size(features); i++) {
        size_t m = berth__path_index(&ld->path, i);
        const char *f = json_string_value(json_array_get(features, i));
        uint32_t bit = 0;
        for (size_t k = 0; f != NULL && k < BERTH__ARRAY_LEN(names); k++)
            if (strcmp(f, names[k].name) == 0)
                bit = names[k].bit;
        if (bit == 0)
            fail(ld, BERTH_EINVAL, "InvalidHostFeature", NULL,
                 "a feature must be \"confidential\", \"dedicated\", \"hyperv\" or "
                 "\"sandbox\"");
        else if (h->features & bit)
            fail(ld, BERTH_EINVAL, "InvalidHostFeature", NULL,
                 "feature '%s' is listed twice", f);
        h->features |= bit;
        berth__path_pop(&ld->path, m);
    }
    berth__path_pop(&ld->path, mark);
}

static void read_host(loader_t *ld, json_t *o, berth_host_t *h)
{
    static const char *const known[] = {"name", "cpu", "memoryInGB", "gpu", "osType",
                                        "osBuild", "zone", "features", "state", NULL};
    memset(h, 0, sizeof *h);
    if (!json_is_object(o)) {
        fail(ld, BERTH_EINVAL, "InvalidRequestContent", NULL, "a host must be a JSON object");
        return;
    }
    check_members(ld, o, known, "a host");
    json_t *name = required(ld, o, "name", "a host");
    json_t *cpu = required(ld, o, "cpu", "a host");
    json_t *mem = required(ld, o, "memoryInGB", "a host");
    json_t *os = required(ld, o, "osType", "a host");
    json_t *build = json_object_get(o, "osBuild");
    json_t *v;

    if (name != NULL) {
        const char *n = json_string_value(name);
        if (n == NULL || !berth__host_name_is_valid(n))
            fail(ld, BERTH_EINVAL, "InvalidHostName", "name",
                 "a host's name must be 1 to %d letters, digits, '-', '_' or '.'",
                 BERTH_NAME_MAX);
        else
            h->name = n;
    }
    if (cpu != NULL)
        read_cores(ld, cpu, "cpu", "InvalidHostResource", &h->cores);
    if (mem != NULL)
        read_memory(ld, mem, "memoryInGB", "InvalidHostResource", &h->memory_mib);
    if ((v = json_object_get(o, "gpu")) != NULL)
        read_gpu(ld, v, h);
    if (os != NULL) {
        const char *s = json_string_value(os);
        if (s != NULL && strcmp(s, "Linux") == 0)
            h->os = BERTH_OS_LINUX;
        else if (s != NULL && strcmp(s, "Windows") == 0)
            h->os = BERTH_OS_WINDOWS;
        else
            fail(ld, BERTH_EINVAL, "InvalidOsType", "osType",
                 "'osType' must be \"Linux\" or \"Windows\"");
    }
    if (h->os == BERTH_OS_WINDOWS) {
        if (build == NULL)
            fail(ld, BERTH_EINVAL, "InvalidOsBuild", "osBuild",
                 "a Windows host needs 'osBuild' (17763 for ltsc2019, 20348 for ltsc2022, "
                 "26100 for ltsc2025)");
        else if (!json_is_integer(build) || json_integer_value(build) < OS_BUILD_MIN ||
                 json_integer_value(build) > OS_BUILD_MAX)
            fail(ld, BERTH_EINVAL, "InvalidOsBuild", "osBuild",
                 "'osBuild' must be a Windows build number from %d to %d (e.g. 20348)",
                 OS_BUILD_MIN, OS_BUILD_MAX);
        else
            h->os_build = (uint32_t)json_integer_value(build);
    } else if (h->os == BERTH_OS_LINUX && build != NULL) {
        fail(ld, BERTH_EINVAL, "InvalidOsBuild", "osBuild",
             "'osBuild' applies to Windows hosts only");
    }
    if ((v = json_object_get(o, "zone")) != NULL) {
        const char *z = json_string_value(v);
        if (z == NULL || z[0] == '\0' || strlen(z) > BERTH_NAME_MAX) {
            fail(ld, BERTH_EINVAL, "InvalidZone", "zone",
                 "'zone' must be a string of 1 to %d characters", BERTH_NAME_MAX);
        } else {
            h->zone = z;
            note_zone(ld, z);
        }
    }
    if ((v = json_object_get(o, "features")) != NULL)
        read_features(ld, v, h);
    if ((h->features & BERTH_HOST_HYPERV) && h->os == BERTH_OS_LINUX)
        fail(ld, BERTH_EINVAL, "InvalidHostFeature", "features",
             "'hyperv' applies to Windows hosts only");
    if ((v = json_object_get(o, "state")) != NULL) {
        const char *s = json_string_value(v);
        if (s != NULL && strcmp(s, "ready") == 0)
            h->state = BERTH_HOST_READY;
        else if (s != NULL && strcmp(s, "cordoned") == 0)
            h->state = BERTH_HOST_CORDONED;
        else if (s != NULL && strcmp(s, "down") == 0)
            h->state = BERTH_HOST_DOWN;
        else
            fail(ld, BERTH_EINVAL, "InvalidHostState", "state",
                 "'state' must be \"ready\", \"cordoned\" or \"down\"");
    }
}

/* Reports names seen twice in the document, or already in the engine.  A
 * hash set of indices keeps this linear for large inventories. */
static void check_names(loader_t *ld)
{
    size_t cap = 16;
    while (cap < 2 * ld->nhosts)
        cap *= 2;
    size_t *slots = malloc(cap * sizeof *slots);
    if (slots == NULL) {
        fail(ld, BERTH_ENOMEM, "OutOfMemory", NULL, "out of memory checking host names");
        return;
    }
    for (size_t i = 0; i < cap; i++)
        slots[i] = SIZE_MAX;
    size_t mark = berth__path_key(&ld->path, "hosts");
    for (size_t i = 0; i < ld->nhosts; i++) {
        const char *name = ld->hosts[i].name;
        if (name == NULL)
            continue;
        size_t m = berth__path_index(&ld->path, i);
        if (berth_engine_host_get(ld->engine, name, NULL, NULL) == 0) {
            fail(ld, BERTH_EEXIST, "HostAlreadyExists", "name",
                 "host '%s' is already in the engine", name);
        } else {
            size_t s = (size_t)berth__fnv1a(BERTH__FNV_INIT, name, strlen(name)) & (cap - 1);
            while (slots[s] != SIZE_MAX && strcmp(ld->hosts[slots[s]].name, name) != 0)
                s = (s + 1) & (cap - 1);
            if (slots[s] != SIZE_MAX)
                fail(ld, BERTH_EEXIST, "DuplicateHostName", "name",
                     "host '%s' is listed twice (first as hosts[%zu])", name, slots[s]);
            else
                slots[s] = i;
        }
        berth__path_pop(&ld->path, m);
    }
    berth__path_pop(&ld->path, mark);
    free(slots);
}

static void read_hosts(loader_t *ld, json_t *hosts)
{
    size_t mark = berth__path_key(&ld->path, "hosts");
    if (!json_is_array(hosts)) {
        fail(ld, BERTH_EINVAL, "InvalidRequestContent", NULL,
             "'hosts' must be an array of hosts");
        berth__path_pop(&ld->path, mark);
        return;
    }
    size_t n = json_array_size(hosts);
    ld->hosts = calloc(n > 0 ? n : 1, sizeof *ld->hosts);
    if (ld->hosts == NULL) {
        fail(ld, BERTH_ENOMEM, "OutOfMemory", NULL, "out of memory reading hosts");
        berth__path_pop(&ld->path, mark);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t m = berth__path_index(&ld->path, i);
        read_host(ld, json_array_get(hosts, i), &ld->hosts[i]);
        berth__path_pop(&ld->path, m);
    }
    ld->nhosts = n;
    berth__path_pop(&ld->path, mark);
}

/* ---- virtual network subnets --------------------------------------------------- */

/* `subnets`: read (shape and values) by subnets.c, which names the same
 * paths; applied after the hosts. */
static void read_subnets(loader_t *ld, json_t *subnets)
{
    int rc = berth__subnets_read(subnets, &ld->subnets, ld->err);
    if (rc < 0 && ld->rc == 0)
        ld->rc = rc;
    ld->has_subnets = true;
}

/* Applies what was read: SKUs first (hosts refer to them), the limits, then
 * hosts.  On a failure, removes the hosts added (newest first, so that no
 * other host changes position) and restores the engine's tables (the
 * limits among them). */
static int apply(loader_t *ld)
{
    berth__config_t *cfg = berth__engine_config(ld->engine);
    berth__config_t *saved = malloc(sizeof *saved);
    if (saved == NULL)
        return berth__error_set(ld->err, BERTH_ENOMEM, "OutOfMemory", "",
                                "out of memory loading the inventory");
    *saved = *cfg;
    int rc = 0;
    size_t added = 0;
    berth__path_init(&ld->path);
    for (size_t i = 0; i < ld->nskus && rc == 0; i++) {
        rc = berth_engine_gpu_sku_add(ld->engine, &ld->skus[i], ld->err);
        if (rc != 0) {
            berth__path_key(&ld->path, "gpuSkus");
            berth__path_index(&ld->path, i);
        }
    }
    if (rc == 0 && ld->has_sandbox)
        cfg->sandbox = ld->sandbox;
    if (rc == 0 && ld->has_limits) {
        rc = berth_engine_limits_set(ld->engine, &ld->limits, ld->err);
        if (rc != 0)
            berth__path_key(&ld->path, "limits");
    }
    while (rc == 0 && added < ld->nhosts) {
        rc = berth_engine_host_add(ld->engine, &ld->hosts[added], ld->err);
        if (rc != 0) {
            berth__path_key(&ld->path, "hosts");
            berth__path_index(&ld->path, added);
        } else {
            added++;
        }
    }
    /* Subnets last: they name hosts.  The call is all or nothing. */
    if (rc == 0 && ld->has_subnets)
        rc = berth_engine_subnets_set(ld->engine, ld->subnets.v, ld->subnets.n, ld->err);
    if (rc != 0) {
        /* The failing call reported paths relative to its entry; make them
         * whole document paths. */
        if (ld->err != NULL) {
            size_t n = ld->err->ndetails < BERTH_ERROR_DETAILS_MAX ? ld->err->ndetails
                                                                   : BERTH_ERROR_DETAILS_MAX;
            for (size_t i = 0; i < n; i++) {
                berth__path_t whole = ld->path;
                if (ld->err->details[i].target[0] != '\0')
                    berth__path_key(&whole, ld->err->details[i].target);
                memcpy(ld->err->details[i].target, whole.buf, sizeof whole.buf);
            }
            if (n > 0)
                memcpy(ld->err->target, ld->err->details[0].target, sizeof ld->err->target);
        }
        /* Newest first, so that no other host changes position. */
        while (added > 0)
            berth_engine_host_remove(ld->engine, ld->hosts[--added].name, NULL);
        *cfg = *saved;
    }
    free(saved);
    return rc;
}

int berth_engine_inventory_load(berth_engine_t *engine, const char *json, size_t len,
                                berth_error_t *err)
{
    berth_error_clear(err);
    json_t *root = NULL;
    int rc = berth__json_load(json, len, INVENTORY_MAX_BYTES, INVENTORY_MAX_DEPTH, &root, err);
    if (rc != 0)
        return rc;
    loader_t *ld = calloc(1, sizeof *ld);
    if (ld == NULL) {
        json_decref(root);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "out of memory loading the inventory");
    }
    ld->engine = engine;
    ld->err = err;
    berth__path_init(&ld->path);

    if (json_is_array(root)) {
        /* A bare array: paths still read "hosts[i]" so that messages are
         * the same for both forms. */
        read_hosts(ld, root);
    } else {
        static const char *const known[] = {"gpuSkus", "limits", "sandbox", "subnets",
                                            "hosts", NULL};
        check_members(ld, root, known, "an inventory");
        json_t *skus = json_object_get(root, "gpuSkus");
        json_t *limits = json_object_get(root, "limits");
        json_t *sandbox = json_object_get(root, "sandbox");
        json_t *hosts = required(ld, root, "hosts", "an inventory");
        if (skus != NULL)
            read_skus(ld, skus);
        if (limits != NULL)
            read_limits(ld, limits);
        if (sandbox != NULL)
            read_sandbox(ld, sandbox);
        if (hosts != NULL)
            read_hosts(ld, hosts);
        json_t *subnets = json_object_get(root, "subnets");
        if (subnets != NULL)
            read_subnets(ld, subnets);
    }
    if (ld->rc != BERTH_ENOMEM)
        check_names(ld);
    rc = ld->rc != 0 ? ld->rc : apply(ld);
    free(ld->skus);
    free(ld->hosts);
    berth__subnets_doc_free(&ld->subnets);
    free(ld);
    json_decref(root);
    return rc;
}

/* ---- the engine's per-group limits ------------------------------------------ */

int berth_engine_limits_set(berth_engine_t *engine, const berth_limits_t *limits,
                            berth_error_t *err)
{
    int rc = berth__limits_check(limits, err);
    if (rc < 0)
        return rc;
    berth__engine_config(engine)->limits = *limits;
    return 0;
}

void berth_engine_limits_get(const berth_engine_t *engine, berth_limits_t *out)
{
    /* Reads only: the engine's tables have no const accessor. */
    *out = berth__engine_config((berth_engine_t *)engine)->limits;
}

/* ---- the engine's sandbox policy ------------------------------------------ */

int berth_engine_sandbox_set(berth_engine_t *engine, berth_sandbox_policy_t policy,
                             berth_error_t *err)
{
    if ((unsigned)policy > BERTH_SANDBOX_ALL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidSandboxPolicy", "sandbox",
                                "unknown sandbox policy %d", (int)policy);
    berth__engine_config(engine)->sandbox = policy;
    return 0;
}

berth_sandbox_policy_t berth_engine_sandbox_get(const berth_engine_t *engine)
{
    return berth__engine_config((berth_engine_t *)engine)->sandbox;
}
