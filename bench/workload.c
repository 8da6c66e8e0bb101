/*
 * workload.c: the deterministic mixed cluster and placement workload of
 * berth-bench's `incore` and `redis` scenarios (workload.h).  Everything
 * here follows from the seed: it must never read a clock or the
 * environment, so that runs with one seed stay comparable.
 */
#include <stdio.h>
#include <string.h>

#include "util.h"
#include "workload.h"

static const char *const gpu_skus[] = {"K80", "P100", "V100"};
const char *const bench_workload_zones[3] = {"1", "2", "3"};

/* The cluster: about 70% CPU-only Linux, 12% GPU, 12% Windows, 3%
 * confidential, 3% dedicated; zones drawn at random. */
void bench_workload_hosts_make(workload_t *w, size_t n, uint64_t seed)
{
    uint64_t s = seed ^ 0x686f737473ull;
    for (size_t i = 0; i < n; i++) {
        berth_host_t *h = &w->hosts[i];
        memset(h, 0, sizeof *h);
        snprintf(w->host_names[i], sizeof w->host_names[i], "host-%06zu", i);
        h->name = w->host_names[i];
        h->os = BERTH_OS_LINUX;
        h->zone = bench_workload_zones[bench_below(&s, 3)];
        uint32_t kind = bench_below(&s, 100);
        static const uint32_t cpu_cores[] = {8, 16, 32, 48, 64};
        if (kind < 70) {
            h->cores = cpu_cores[bench_below(&s, 5)];
            h->memory_mib = h->cores * (4 + 4 * bench_below(&s, 2)) * GB;
        } else if (kind < 82) {
            h->gpu_sku = gpu_skus[bench_below(&s, 3)];
            h->gpu_count = bench_below(&s, 2) ? 8 : 4;
            h->cores = h->gpu_count * 6;
            h->memory_mib = h->gpu_count * 112 * GB;
        } else if (kind < 94) {
            h->os = BERTH_OS_WINDOWS;
            h->os_build = bench_below(&s, 2) ? BERTH_WINDOWS_LTSC2019 : BERTH_WINDOWS_LTSC2022;
            if (h->os_build == BERTH_WINDOWS_LTSC2022 && bench_below(&s, 2))
                h->features = BERTH_HOST_HYPERV;
            h->cores = cpu_cores[bench_below(&s, 3)];
            h->memory_mib = h->cores * 4 * GB;
        } else if (kind < 97) {
            h->features = BERTH_HOST_CONFIDENTIAL;
            h->cores = 32;
            h->memory_mib = 128 * GB;
        } else {
            h->features = BERTH_HOST_DEDICATED;
            h->cores = 64;
            h->memory_mib = 256 * GB;
        }
    }
}

/* The workload: about 80% small CPU-only Linux groups, 6% GPU, 9% Windows,
 * 3% confidential, 2% dedicated; 15% pinned to one zone. */
void bench_workload_requests_make(workload_t *w, size_t m, uint64_t seed, const int *zone_ids)
{
    uint64_t s = seed ^ 0x67726f757073ull;
    for (size_t i = 0; i < m; i++) {
        berth_request_t *r = &w->requests[i];
        memset(r, 0, sizeof *r);
        r->os = BERTH_OS_LINUX;
        uint32_t kind = bench_below(&s, 100);
        uint32_t cores = 1 + bench_below(&s, 4);
        r->demand.millicores = cores * 1000;
        r->demand.memory_mib = cores * (1 + bench_below(&s, 4)) * GB / 2 + 512 * bench_below(&s, 3);
        if (kind < 80) {
            /* small CPU-only Linux */
        } else if (kind < 86) {
            static const uint32_t counts[] = {1, 1, 2, 4};
            uint32_t n = counts[bench_below(&s, 4)];
            r->demand.gpu_count = n;
            r->demand.gpu_sku = bench_below(&s, 3);
            r->demand.millicores = n * 3000;
            r->demand.memory_mib = n * 24 * GB;
        } else if (kind < 95) {
            r->os = BERTH_OS_WINDOWS;
            r->os_build = bench_below(&s, 2) ? BERTH_WINDOWS_LTSC2019 : BERTH_WINDOWS_LTSC2022;
        } else if (kind < 98) {
            r->sku = BERTH_SKU_CONFIDENTIAL;
        } else {
            r->sku = BERTH_SKU_DEDICATED;
            r->demand.millicores = 32000;
            r->demand.memory_mib = 128 * GB;
        }
        r->demand.requested_millicores = r->demand.millicores;
        if (bench_below(&s, 100) < 15)
            r->zone_mask = 1ull << zone_ids[bench_below(&s, 3)];
        snprintf(w->keys[i], KEY_LEN, "cg-%010zu", i);
    }
}
