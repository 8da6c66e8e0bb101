/*
 * packing.c: the packers of berth-bench's `quality` scenario (packing.h).
 *
 * Mapping instances onto the engine's resources (whole CPU cores, at most
 * 4096 a host; memory in MiB; at most 63 GPUs a host, a group may take 0).
 * Sizes are first divided by the gcd g of the capacity and all sizes of
 * that dimension; P bounds the items one host can hold (per dimension, the
 * number of smallest items that fit; the least over dimensions).
 *  - 1-D: when C/g <= 4096, the size is CPU cores (s/g of C/g), and each
 *    item takes 1 MiB of a host's P MiB, which never binds: binpack is then
 *    exactly best fit.  Otherwise the size is memory (s of C MiB) and each
 *    item takes 1 + floor(s * M / C) of 4096 cores, M = 4096 - P: cores
 *    never bind (a set that fits takes at most P + M cores) but follow the
 *    size, so that binpack, which compares free cores before free memory,
 *    still orders hosts by their fill.  Both are exact.
 *  - 3-D: each dimension goes to one resource, choosing among the six
 *    assignments the one that keeps most dimensions exact, then the one
 *    that enlarges items least.  Per resource: "plain" (s/g of C/g: CPU
 *    when C/g <= 4096 and no size is 0, memory when no size is 0, GPUs when
 *    C/g <= 63), "shifted" (K*s/g + 1 of K*C/g + K - 1 with K = P + 1: exact
 *    because at most P items share a host, and never 0, for CPU and
 *    memory), else "rounded up" (ceil(s * R / C) of R = 4096 cores or 63
 *    GPUs, at least 1 core): items only grow, so every packing the engine
 *    finds is valid for the original instance and the bounds still hold,
 *    but the engine packs a harder instance.  Such instances are counted
 *    in instances_inexact.  An instance that fits no mapping is skipped
 *    and counted in instances_skipped.
 *
 * Every packing is checked against the original instance; it never
 * decides anything on a timing, and it never reads a file.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "berth.h"
#include "output.h"
#include "packing.h"

#define HOST_CORES_MAX 4096u
#define HOST_GPUS_MAX 63u

static const char *const packer_names[P_COUNT] = {"binpack", "spread", "firstfit",
                                                  "binpack-vector", "ffd",
                                                  "ffd-mapped"};

/* The instance as the engine sees it. */
typedef struct mapping {
    int src[R_COUNT];               /* instance dimension per resource, -1: none */
    uint64_t cap[R_COUNT];          /* host cores, MiB, GPUs                */
    uint64_t *size;                 /* n x R_COUNT                          */
    bool exact;
} mapping_t;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The most items one host can hold: per dimension, how many of the
 * smallest sizes fit; the least over dimensions.  0 on allocation failure. */
static uint64_t items_per_host_max(const instance_t *in)
{
    uint64_t *col = malloc(in->n * sizeof *col);
    if (col == NULL)
        return 0;
    uint64_t best = in->n;
    for (unsigned k = 0; k < in->d; k++) {
        for (size_t i = 0; i < in->n; i++)
            col[i] = in->size[i * in->d + k];
        qsort(col, in->n, sizeof *col, u64_cmp);
        uint64_t sum = 0, count = 0;
        for (size_t i = 0; i < in->n && sum + col[i] <= in->cap[k]; i++) {
            sum += col[i];
            count++;
        }
        if (count < best)
            best = count;
    }
    free(col);
    return best;
}

/* ---- mapping onto the engine -------------------------------------------- */

enum { M_NONE = -1, M_PLAIN, M_SHIFT, M_ROUND };

typedef struct dimplan {
    int kind;
    uint64_t g, k, cap;
    double inflation;               /* summed growth of items, in capacities */
} dimplan_t;

static uint64_t plan_apply(const dimplan_t *p, int r, uint64_t s, uint64_t c)
{
    switch (p->kind) {
    case M_PLAIN:
        return s / p->g;
    case M_SHIFT:
        return p->k * (s / p->g) + 1;
    default: {
        uint64_t v = (s * p->cap + c - 1) / c;
        return v == 0 && r != R_GPU ? 1 : v;
    }
    }
}

/* How dimension k of `in` goes onto resource r; kind M_NONE when it can't. */
static dimplan_t plan_dim(const instance_t *in, unsigned k, int r, uint64_t per_host)
{
    dimplan_t p = {.kind = M_NONE, .g = in->cap[k]};
    bool zero = false;
    for (size_t i = 0; i < in->n; i++) {
        uint64_t s = in->size[i * in->d + k];
        p.g = gcd64(p.g, s);
        zero |= s == 0;
    }
    uint64_t c = in->cap[k] / p.g;
    uint64_t limit = r == R_CPU ? HOST_CORES_MAX : r == R_GPU ? HOST_GPUS_MAX : UINT32_MAX;
    p.k = per_host + 1;
    if (c <= limit && (!zero || r == R_GPU)) {
        p.kind = M_PLAIN;
        p.cap = c;
    } else if (r != R_GPU && p.k <= limit / (c + 1) && p.k * c + p.k - 1 <= limit) {
        p.kind = M_SHIFT;
        p.cap = p.k * c + p.k - 1;
    } else if (r != R_MEM) {
        p.kind = M_ROUND;
        p.cap = limit;
        for (size_t i = 0; i < in->n; i++) {
            uint64_t s = in->size[i * in->d + k];
            p.inflation += (double)plan_apply(&p, r, s, in->cap[k]) / (double)p.cap -
                (double)s / (double)in->cap[k];
        }
    }
    return p;
}

/* Maps `in` onto the engine's resources (the file comment says how).
 * Returns 0, or -1 when no mapping represents the instance. */
static int map_instance(const instance_t *in, mapping_t *m)
{
    memset(m, 0, sizeof *m);
    for (int r = 0; r < R_COUNT; r++)
        m->src[r] = -1;
    uint64_t per_host = items_per_host_max(in);
    if (per_host == 0 || per_host >= HOST_CORES_MAX)
        return -1;
    m->size = calloc(in->n * R_COUNT, sizeof *m->size);
    if (m->size == NULL)
        return -1;
    m->exact = true;
    if (in->d == 1) {
        uint64_t g = in->cap[0];
        bool zero = false;
        for (size_t i = 0; i < in->n; i++) {
            g = gcd64(g, in->size[i]);
            zero |= in->size[i] == 0;
        }
        if (zero)
            goto fail;
        m->src[R_MEM] = 0;          /* reported as memory (file comment)    */
        if (in->cap[0] / g <= HOST_CORES_MAX) {
            m->cap[R_CPU] = in->cap[0] / g;
            m->cap[R_MEM] = per_host;
            for (size_t i = 0; i < in->n; i++) {
                m->size[i * R_COUNT + R_CPU] = in->size[i] / g;
                m->size[i * R_COUNT + R_MEM] = 1;
            }
        } else {
            uint64_t scale = HOST_CORES_MAX - per_host;
            m->cap[R_CPU] = HOST_CORES_MAX;
            m->cap[R_MEM] = in->cap[0];
            for (size_t i = 0; i < in->n; i++) {
                m->size[i * R_COUNT + R_CPU] = 1 + in->size[i] * scale / in->cap[0];
                m->size[i * R_COUNT + R_MEM] = in->size[i];
            }
        }
        return 0;
    }
    if (in->d != 3)
        goto fail;
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    dimplan_t plan[3][R_COUNT];
    for (unsigned k = 0; k < 3; k++)
        for (int r = 0; r < R_COUNT; r++)
            plan[k][r] = plan_dim(in, k, r, per_host);
    int best = -1, best_inexact = 4;
    double best_inflation = 0;
    for (int p = 0; p < 6; p++) {
        int inexact = 0;
        double inflation = 0;
        bool ok = true;
        for (int r = 0; r < R_COUNT; r++) {
            const dimplan_t *dp = &plan[perms[p][r]][r];
            ok &= dp->kind != M_NONE;
            inexact += dp->kind == M_ROUND;
            inflation += dp->inflation;
        }
        if (ok && (inexact < best_inexact ||
                   (inexact == best_inexact && inflation < best_inflation))) {
            best = p;
            best_inexact = inexact;
            best_inflation = inflation;
        }
    }
    if (best < 0)
        goto fail;
    m->exact = best_inexact == 0;
    for (int r = 0; r < R_COUNT; r++) {
        unsigned k = (unsigned)perms[best][r];
        const dimplan_t *dp = &plan[k][r];
        m->src[r] = (int)k;
        m->cap[r] = dp->cap;
        for (size_t i = 0; i < in->n; i++)
            m->size[i * R_COUNT + r] = plan_apply(dp, r, in->size[i * 3 + k], in->cap[k]);
    }
    return 0;
fail:
    free(m->size);
    m->size = NULL;
    return -1;
}

/* ---- packers ------------------------------------------------------------ */

static const double *ffd_keys;

static int ffd_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (ffd_keys[x] != ffd_keys[y])
        return ffd_keys[x] > ffd_keys[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* First-fit decreasing of n items of d sizes (row-major) into bins of
 * capacities cap[0..d-1] (a 0 capacity dimension holds only 0 sizes).
 * Writes each item's bin to assign[] and returns the bins used, or
 * (size_t)-1 on allocation failure. */
static size_t ffd_pack(size_t n, unsigned d, const uint64_t *size, const uint64_t *cap,
                       long *assign)
{
    size_t *order = malloc(n * sizeof *order);
    double *key = malloc(n * sizeof *key);
    uint64_t *load = calloc(n * d, sizeof *load);
    size_t bins = 0;
    if (order == NULL || key == NULL || load == NULL) {
        bins = (size_t)-1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        key[i] = 0;
        for (unsigned k = 0; k < d; k++)
            if (cap[k] > 0)
                key[i] += (double)size[i * d + k] / (double)cap[k];
    }
    ffd_keys = key;
    qsort(order, n, sizeof *order, ffd_cmp);
    for (size_t j = 0; j < n; j++) {
        size_t i = order[j], b;
        const uint64_t *s = size + i * d;
        for (b = 0; b < bins; b++) {
            unsigned k = 0;
            while (k < d && load[b * d + k] + s[k] <= cap[k])
                k++;
            if (k == d)
                break;
        }
        if (b == bins)
            bins++;
        for (unsigned k = 0; k < d; k++)
            load[b * d + k] += s[k];
        assign[i] = (long)b;
    }
out:
    free(order);
    free(key);
    free(load);
    return bins;
}

/* Places the items one by one with engine e (reset first), opening hosts
 * on demand.  Writes each item's host number (-1: not placed) and returns
 * the hosts opened, or (size_t)-1 when the engine refused a host. */
static size_t engine_pack(runner_t *run, berth_engine_t *e, const mapping_t *m, size_t n,
                          long *assign)
{
    berth_engine_reset(e);
    size_t hosts = 0;
    char name[32], key[32];
    bool reported = false;
    for (size_t i = 0; i < n; i++) {
        const uint64_t *s = m->size + i * R_COUNT;
        berth_request_t req;
        memset(&req, 0, sizeof req);
        req.os = BERTH_OS_LINUX;
        req.demand.millicores = (uint32_t)(s[R_CPU] * 1000u);
        req.demand.requested_millicores = req.demand.millicores;
        req.demand.memory_mib = (uint32_t)s[R_MEM];
        req.demand.gpu_count = (uint32_t)s[R_GPU];
        req.demand.gpu_sku = req.demand.gpu_count > 0 ? run->v100 : 0;
        snprintf(key, sizeof key, "g%zu", i);
        berth_placement_t pl;
        berth_error_t err;
        int rc = berth_engine_request_place(e, key, &req, &pl, &err);
        if (rc == BERTH_ENOSPC && hosts < n) {
            snprintf(name, sizeof name, "h%zu", hosts);
            berth_host_t h = {
                .name = name,
                .cores = (uint32_t)m->cap[R_CPU],
                .memory_mib = (uint32_t)m->cap[R_MEM],
                .gpu_sku = m->cap[R_GPU] > 0 ? "V100" : NULL,
                .gpu_count = (uint32_t)m->cap[R_GPU],
                .os = BERTH_OS_LINUX,
                .state = BERTH_HOST_READY,
            };
            berth_error_t herr;
            if (berth_engine_host_add(e, &h, &herr) != 0) {
                fprintf(stderr, "berth-bench quality: adding a host: %s\n", herr.message);
                return (size_t)-1;
            }
            hosts++;
            rc = berth_engine_request_place(e, key, &req, &pl, &err);
        }
        if (rc != 0) {
            if (!reported)
                fprintf(stderr, "berth-bench quality: item %zu not placed: %s\n", i,
                        err.message);
            reported = true;
            assign[i] = -1;
            continue;
        }
        assign[i] = strtol(pl.host + 1, NULL, 10);
    }
    return hosts;
}

/* Checks a packing against the original instance and adds it to *a.
 * Returns false when it is over capacity or below a lower bound. */
static bool account(const instance_t *in, const mapping_t *m, const long *assign,
                    size_t bins, agg_t *a)
{
    uint64_t *load = calloc((bins + 1) * in->d, sizeof *load);
    size_t *count = calloc(bins + 1, sizeof *count);
    bool ok = load != NULL && count != NULL;
    size_t used = 0, unplaced = 0;
    for (size_t i = 0; ok && i < in->n; i++) {
        if (assign[i] < 0 || (size_t)assign[i] >= bins) {
            unplaced++;
            continue;
        }
        size_t b = (size_t)assign[i];
        used += count[b]++ == 0;
        for (unsigned k = 0; k < in->d; k++)
            load[b * in->d + k] += in->size[i * in->d + k];
    }
    bool feasible = true;
    for (size_t b = 0; ok && b < bins; b++) {
        if (count[b] == 0)
            continue;
        for (unsigned k = 0; k < in->d; k++)
            feasible &= load[b * in->d + k] <= in->cap[k];
        for (int r = 0; r < R_COUNT; r++) {
            int k = m->src[r];
            if (k < 0)
                continue;
            a->stranded[r] +=
                (double)(in->cap[k] - load[b * in->d + (unsigned)k]) / (double)in->cap[k];
            a->stranded_hosts[r]++;
        }
    }
    free(load);
    free(count);
    a->instances++;
    a->items += in->n;
    a->inexact += !m->exact;
    a->unplaced += unplaced;
    a->hosts += used;
    a->bound += (uint64_t)(in->opt > 0 ? in->opt : in->lb);
    if (in->opt > 0) {
        a->n_opt++;
        a->hosts_opt += used;
        a->opt += (uint64_t)in->opt;
    } else {
        a->n_lb++;
        a->hosts_lb += used;
        a->lb += (uint64_t)in->lb;
    }
    bool below = unplaced == 0 && (long long)used < (in->opt > 0 ? in->opt : in->lb);
    if (!ok || !feasible || below) {
        a->infeasible++;
        return false;
    }
    return true;
}

void bench_agg_add(agg_t *to, const agg_t *from)
{
    to->instances += from->instances;
    to->items += from->items;
    to->inexact += from->inexact;
    to->skipped += from->skipped;
    to->unplaced += from->unplaced;
    to->infeasible += from->infeasible;
    to->hosts += from->hosts;
    to->bound += from->bound;
    to->n_opt += from->n_opt;
    to->hosts_opt += from->hosts_opt;
    to->opt += from->opt;
    to->n_lb += from->n_lb;
    to->hosts_lb += from->hosts_lb;
    to->lb += from->lb;
    for (int r = 0; r < R_COUNT; r++) {
        to->stranded[r] += from->stranded[r];
        to->stranded_hosts[r] += from->stranded_hosts[r];
    }
    to->seconds += from->seconds;
}

/* Runs every packer on one instance, adding to agg[packer].  Returns 0, or
 * -1 when the instance was skipped. */
int bench_packing_run(runner_t *run, const char *name, instance_t *in, int workload,
                      agg_t *agg)
{
    mapping_t m;
    if (map_instance(in, &m) != 0) {
        for (int p = 0; p < P_COUNT; p++)
            agg[p].skipped++;
        return -1;
    }
    if (run->assign_cap < in->n) {
        long *a = realloc(run->assign, in->n * sizeof *a);
        if (a == NULL) {
            free(m.size);
            return -1;
        }
        run->assign = a;
        run->assign_cap = in->n;
    }
    for (int p = 0; p < P_COUNT; p++) {
        if (p == P_FFD_MAPPED && workload != W_VECTOR)
            continue;
        double t0 = now_seconds();
        size_t bins;
        if (p == P_FFD)
            bins = ffd_pack(in->n, in->d, in->size, in->cap, run->assign);
        else if (p == P_FFD_MAPPED)
            bins = ffd_pack(in->n, R_COUNT, m.size, m.cap, run->assign);
        else
            bins = engine_pack(run, run->engine[p], &m, in->n, run->assign);
        agg[p].seconds += now_seconds() - t0;
        if (bins == (size_t)-1) {
            run->status = 2;
            agg[p].infeasible++;
            continue;
        }
        if (p < P_FFD) {
            berth_engine_stats_t st;
            berth_engine_stats(run->engine[p], &st);
            if (st.hosts != bins)
                fprintf(stderr, "berth-bench quality: %s: the engine holds %zu hosts, %zu opened\n",
                        name, st.hosts, bins);
        }
        if (!account(in, &m, run->assign, bins, &agg[p])) {
            fprintf(stderr, "berth-bench quality: %s: %s's packing is over capacity or below "
                    "the lower bound %lld\n", name, packer_names[p],
                    in->opt > 0 ? in->opt : in->lb);
            run->status = 2;
        }
    }
    free(m.size);
    return 0;
}

/* ---- results ------------------------------------------------------------ */

static json_t *ratio(uint64_t num, uint64_t den)
{
    if (den == 0)
        return json_null();
    return json_real(round((double)num / (double)den * 10000.0) / 10000.0);
}

static json_t *fraction(double sum, uint64_t n)
{
    if (n == 0)
        return json_null();
    return json_real(round(sum / (double)n * 10000.0) / 10000.0);
}

int bench_packing_emit(const char *workload, const char *family, const char *order,
                       const agg_t *agg)
{
    int rc = 0;
    for (int p = 0; p < P_COUNT; p++) {
        const agg_t *a = &agg[p];
        if (a->instances == 0 && a->skipped == 0)
            continue;
        if (p == P_FFD_MAPPED && strcmp(workload, "vector") != 0)
            continue;
        json_t *row = json_object();
        json_object_set_new(row, "bench", json_string("quality"));
        json_object_set_new(row, "workload", json_string(workload));
        json_object_set_new(row, "family", json_string(family));
        json_object_set_new(row, "policy", json_string(packer_names[p]));
        json_object_set_new(row, "order", json_string(order));
        json_object_set_new(row, "instances", json_integer((json_int_t)a->instances));
        json_object_set_new(row, "items", json_integer((json_int_t)a->items));
        json_object_set_new(row, "hosts_used", json_integer((json_int_t)a->hosts));
        json_object_set_new(row, "optimum_or_lb", json_integer((json_int_t)a->bound));
        json_object_set_new(row, "ratio_to_optimum", ratio(a->hosts_opt, a->opt));
        json_object_set_new(row, "instances_with_optimum", json_integer((json_int_t)a->n_opt));
        json_object_set_new(row, "ratio_to_lower_bound", ratio(a->hosts_lb, a->lb));
        json_object_set_new(row, "instances_with_lower_bound",
                            json_integer((json_int_t)a->n_lb));
        json_object_set_new(row, "hosts_vs_firstfit",
                            ratio(a->hosts, agg[P_FIRSTFIT].hosts));
        json_object_set_new(row, "stranded_cpu",
                            fraction(a->stranded[R_CPU], a->stranded_hosts[R_CPU]));
        json_object_set_new(row, "stranded_memory",
                            fraction(a->stranded[R_MEM], a->stranded_hosts[R_MEM]));
        json_object_set_new(row, "stranded_gpu",
                            fraction(a->stranded[R_GPU], a->stranded_hosts[R_GPU]));
        json_object_set_new(row, "seconds", json_real(round(a->seconds * 1e6) / 1e6));
        json_object_set_new(row, "instances_skipped", json_integer((json_int_t)a->skipped));
        json_object_set_new(row, "instances_inexact", json_integer((json_int_t)a->inexact));
        json_object_set_new(row, "unplaced", json_integer((json_int_t)a->unplaced));
        json_object_set_new(row, "infeasible", json_integer((json_int_t)a->infeasible));
        if (bench_emit(row) != 0)
            rc = -1;
    }
    return rc;
}

/* ---- workloads ---------------------------------------------------------- */

int bench_runner_init(runner_t *run, unsigned long long seed)
{
    memset(run, 0, sizeof *run);
    static const berth_policy_t policies[P_FFD] = {BERTH_POLICY_BINPACK, BERTH_POLICY_SPREAD,
                                                   BERTH_POLICY_FIRSTFIT, BERTH_POLICY_BINPACK};
    for (int p = 0; p < P_FFD; p++) {
        berth_engine_options_t o;
        berth_engine_options_init(&o);
        o.policy = policies[p];
        o.vector_score = p == P_VECTOR;
        o.seed = seed;
        berth_error_t err;
        if (berth_engine_new(&o, &run->engine[p], &err) != 0) {
            fprintf(stderr, "berth-bench quality: engine: %s\n", err.message);
            return -1;
        }
    }
    if (berth_engine_gpu_sku_find(run->engine[0], "V100", &run->v100) == NULL) {
        fprintf(stderr, "berth-bench quality: the engine has no V100 GPU SKU\n");
        return -1;
    }
    return 0;
}

void bench_runner_free(runner_t *run)
{
    for (int p = 0; p < P_FFD; p++)
        berth_engine_free(run->engine[p]);
    free(run->assign);
}
