/*
 * demand.c: resource accounting for a container group: what it takes from
 * a host (berth_demand_t) and how its rounded cores are shared among its
 * containers.
 *
 * Accounting is integer arithmetic only: a document's quantities were turned
 * into thousandths when parsed, and every rounding here is an explicit
 * ceiling or a largest-remainder share.  It uses nothing of the model above
 * the group's own fields (request.c builds on it, never the reverse) and
 * never allocates.
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
