/*
 * fuzz_inventory.c: libFuzzer target for host inventory documents
 * (core/engine/inventory.c, berth_engine_inventory_load()).
 *
 * The input is one inventory's bytes, loaded into an engine that already
 * holds a host ("pre-1", in zone "pre") so that names are checked against
 * the engine as well as inside the document.  The load must be all or
 * nothing: a refusal (with its code in the error) leaves the engine's
 * hosts, GPU SKU table and per-group limits exactly as they were; an
 * accepted document adds hosts that are all found by name afterwards, and
 * loading it a second time (when it added hosts) is refused, again without
 * a change.  Any leak, sanitizer report or broken invariant is a crash.
 */
#include <string.h>

#include "berth.h"
#include "fuzz.h"

/* Everything a load may change, as text: the hosts in order with their
 * descriptions, the SKU table and the limits.  Freed by the caller. */
static char *snapshot(const berth_engine_t *engine)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    FUZZ_CHECK(f != NULL);
    size_t n = berth_engine_host_count(engine);
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        FUZZ_CHECK(berth_engine_host_at(engine, i, &h, NULL) == 0);
        fprintf(f, "host %s %u %u %s %u %d %u %s %u %d\n", h.name, h.cores, h.memory_mib,
                h.gpu_sku != NULL ? h.gpu_sku : "-", h.gpu_count, (int)h.os, h.os_build,
                h.zone != NULL ? h.zone : "-", h.features, (int)h.state);
    }
    for (uint32_t id = 0; id < BERTH_GPU_SKUS_MAX; id++) {
        const char *name = berth_engine_gpu_sku_name(engine, id);
        if (name == NULL)
            continue;
        const berth_gpu_sku_t *sku = berth_engine_gpu_sku_find(engine, name, NULL);
        FUZZ_CHECK(sku != NULL && sku->noffers <= BERTH_GPU_OFFERS_MAX);
        fprintf(f, "sku %u %s", id, sku->name);
        for (size_t o = 0; o < sku->noffers; o++)
            fprintf(f, " %u/%u/%u", sku->offers[o].count, sku->offers[o].max_millicores,
                    sku->offers[o].max_memory_mib);
        fputc('\n', f);
    }
    berth_limits_t l;
    berth_engine_limits_get(engine, &l);
    fprintf(f, "limits %u %u %u %u %u\n", l.max_millicores, l.max_memory_mib, l.max_containers,
            l.max_volumes, l.max_ip_ports);
    FUZZ_CHECK(fclose(f) == 0 && text != NULL);
    return text;
}

/* Loads `data` into `engine`; returns the result, having checked that a
 * refusal changed nothing and carries its code. */
static int load(berth_engine_t *engine, const uint8_t *data, size_t size)
{
    char *before = snapshot(engine);
    berth_error_t err;
    int rc = berth_engine_inventory_load(engine, (const char *)data, size, &err);
    FUZZ_CHECK(rc == 0 || rc == BERTH_EINVAL || rc == BERTH_ETOOBIG || rc == BERTH_EEXIST ||
               rc == BERTH_ELIMIT);
    if (rc != 0) {
        FUZZ_CHECK(err.code == rc && err.name[0] != '\0');
        char *after = snapshot(engine);
        FUZZ_CHECK(strcmp(before, after) == 0);
        free(after);
    }
    free(before);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    berth_engine_t *engine = NULL;
    berth_error_t err;
    FUZZ_CHECK(berth_engine_new(NULL, &engine, &err) == 0);
    berth_host_t pre = {.name = "pre-1", .cores = 8, .memory_mib = 32768, .os = BERTH_OS_LINUX,
                        .zone = "pre"};
    FUZZ_CHECK(berth_engine_host_add(engine, &pre, &err) == 0);

    if (load(engine, data, size) == 0) {
        size_t n = berth_engine_host_count(engine);
        FUZZ_CHECK(n >= 1);
        /* Every host is found under its own name, "pre-1" unchanged. */
        for (size_t i = 0; i < n; i++) {
            berth_host_t h, again;
            FUZZ_CHECK(berth_engine_host_at(engine, i, &h, NULL) == 0);
            FUZZ_CHECK(berth_engine_host_get(engine, h.name, &again, NULL) == 0);
            FUZZ_CHECK(strcmp(h.name, again.name) == 0 && h.cores > 0 && h.memory_mib > 0);
        }
        berth_host_t h;
        FUZZ_CHECK(berth_engine_host_get(engine, "pre-1", &h, NULL) == 0 && h.cores == 8 &&
                   h.memory_mib == 32768 && strcmp(h.zone, "pre") == 0);
        /* The same hosts again: refused, nothing changed. */
        if (n > 1)
            FUZZ_CHECK(load(engine, data, size) != 0);
    }
    berth_engine_free(engine);
    return 0;
}
