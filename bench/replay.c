/*
 * replay.c: the Alibaba workloads of berth-bench's `quality` scenario
 * (replay.h), replayed with their arrivals and departures as events on a
 * fixed cluster built from Alibaba's host lists.
 *
 * The workloads and how their traces are read: trace.c.
 *
 * Plain best fit (policy "bestfit-plain", every workload): a GPU-unaware
 * baseline computed here by a linear scan over the hosts' free capacity:
 * among hosts with the request's GPU model (any host for a CPU-only group,
 * GPU or not) that fit, the fewest free cores, then the least free memory,
 * then the first in the list; the choice is forced with
 * berth_engine_request_assign().
 *
 * FGD (policy "fgd", the GPU workloads): a reference, after the
 * fragmentation-gradient idea of FGD (Weng et al., USENIX ATC '23) adapted
 * to whole GPUs, computed here by a linear scan like plain best fit.  The
 * workload's GPU task types (GPUs, cores, memory and model of every GPU
 * group, weighted by how many groups arrive with each; the FGD_TYPES most
 * frequent) are its expected request mix: known in advance, as FGD assumes.
 * A host's fragmentation is the expected number of its free GPUs that a
 * request drawn from that mix cannot use: for each type of the host's
 * model, its free GPUs when the type does not fit in its free cores, memory
 * and GPUs, else none (whole GPUs leave no partial GPU behind).  A group
 * goes to the fitting host whose fragmentation it raises least, then to the
 * fewest free GPUs, cores and memory after it (best fit), then the first.
 * Types of other models and CPU-only types change every candidate's
 * fragmentation alike, so they are left out.
 *
 * The floor: the groups no policy could place, those that fit no host of
 * the empty cluster (too many cores, memory or GPUs for every host, or GPUs
 * of a model no host has); every row reports it (floor) and its rejections
 * above it (rejected_above_floor).  first_reject_cpu/mem/gpu: the cluster's
 * allocation on each dimension (over its capacity) when the first group
 * above the floor was rejected (null when none was).
 *
 * GPU figures: gpu_groups (GPU groups arriving), gpu_rejected;
 * gpu_unplaced_at_90 and gpu_unplaced_at_100: when the GPUs requested so
 * far (every arriving GPU group's, placed or not) first reach 90% and 100%
 * of the cluster's GPUs, the share of them left unplaced (null when the
 * requests never reach that much);
 * stranded_gpu_min_frac: at each sample, the free GPUs on hosts whose free
 * cores or free memory are below the workload's smallest GPU group (the
 * least cores and the least memory over its GPU groups, per GPU), over the
 * cluster's GPUs, averaged over the samples; stranded_gpu_min_peak: the
 * largest such sample.
 *
 * Cluster size: the workload's peak concurrent demand (sum of the live
 * groups' requests, assuming every one is placed) is computed on each of
 * CPU, memory and GPUs; the binding dimension is the one with the largest
 * peak / host-list capacity ratio, and the host list is scaled by the
 * factor f = CLUSTER_FACTOR * that ratio, so that the cluster's capacity on
 * the binding dimension equals the peak demand: a perfect packer could just
 * hold the peak, so rejections measure fragmentation.  Host j of the list
 * is taken floor((j+1)f) - floor(jf) times (a fraction keeps the list's mix
 * of hosts; a factor above 1 repeats it).
 *
 * Replay: tasks in arrival order (ties broken by a hash of the seed and
 * the task's line), cut at the first opts->limit tasks (a 2017 task is
 * many groups, a 2025 one is one group); events sorted by time,
 * departures before arrivals at the same time.  Each policy (binpack,
 * spread) and the firstfit baseline replays the same event sequence on a
 * new engine; a group no host fits at its arrival is rejected and its
 * departure ignored.
 *
 * Stranding: about SAMPLES_TARGET times per replay (every K events) every
 * host's free capacity is read (berth_engine_host_at).  A host whose free
 * cores or memory cannot fit the workload's median request (median cores
 * and median memory over all its groups) strands its free cores and
 * memory; a host that cannot fit the median GPU request (median cores and
 * memory of the GPU groups, one GPU) strands its free GPUs.  The strands,
 * summed over hosts and divided by the cluster's capacity, are averaged
 * over the samples.  Allocation averages use the same samples; peaks are
 * exact (tracked at every event).
 */
#define _GNU_SOURCE
#include "replay.h"

#include <errno.h>
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
#include "trace.h"
#include "util.h"

#define CLUSTER_FACTOR 1.0
#define SAMPLES_TARGET 1000
#define NO_HOST UINT32_MAX
#define FGD_TYPES 16

/* Who chooses the host: the engine, or a chooser of the bench's own that
 * forces its choice with berth_engine_request_assign(). */
typedef enum { CHOOSE_ENGINE, CHOOSE_PLAIN, CHOOSE_FGD } chooser_t;

/* A GPU task type of FGD's request mix, with its weight (groups). */
typedef struct fgd_type {
    uint32_t gpus, cores, memory_mib, model;
    double weight;
} fgd_type_t;

/* FGD's request mix: the workload's most frequent GPU task types. */
typedef struct fgd_mix {
    fgd_type_t type[FGD_TYPES];
    size_t n;
} fgd_mix_t;

typedef struct result {
    uint64_t events, placed, rejected, gpu_rejected, gpu_groups;
    uint64_t floor;                 /* groups no host of the empty cluster fits */
    double first_reject[3];         /* cpu, mem, gpu allocation; -1: none   */
    double gpu_unplaced[2];         /* at 90% and 100%; -1: not reached     */
    double stranded_gpu_min, stranded_gpu_min_peak;
    uint64_t peak_hosts_used;
    double stranded_cpu, stranded_mem, stranded_gpu;
    double cpu_avg, mem_avg, gpu_avg, cpu_peak, mem_peak, gpu_peak;
    double seconds;
    size_t samples;
    bool ok;
} result_t;

/* ---- preparation ---------------------------------------------------------- */

static int cmp_task_arrival(const void *a, const void *b)
{
    const task_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_event(const void *a, const void *b)
{
    const event_t *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->departure != y->departure)
        return x->departure ? -1 : 1;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return x->task < y->task ? -1 : x->task > y->task;
}

typedef struct weighted {
    uint32_t value;
    uint64_t weight;
} weighted_t;

static int cmp_weighted(const void *a, const void *b)
{
    const weighted_t *x = a, *y = b;
    return x->value < y->value ? -1 : x->value > y->value;
}

/* The weighted median of the tasks' values chosen by `which` (0 cores,
 * 1 memory) among tasks with (gpu_only ? GPUs : anything). */
static uint32_t median(const replay_workload_t *w, int which, bool gpu_only)
{
    weighted_t *v = malloc((w->ntasks ? w->ntasks : 1) * sizeof *v);
    if (v == NULL)
        return 0;
    size_t n = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < w->ntasks; i++) {
        const task_t *t = &w->tasks[i];
        if (gpu_only && t->gpus == 0)
            continue;
        v[n].value = which == 0 ? t->cores : t->memory_mib;
        v[n].weight = t->n;
        total += t->n;
        n++;
    }
    qsort(v, n, sizeof *v, cmp_weighted);
    uint32_t m = 0;
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += v[i].weight;
        if (2 * acc >= total) {
            m = v[i].value;
            break;
        }
    }
    free(v);
    return m;
}

/* Sorts and cuts the tasks, builds the events, sizes the cluster. */
static int prepare(replay_workload_t *w, const replay_options_t *o)
{
    qsort(w->tasks, w->ntasks, sizeof *w->tasks, cmp_task_arrival);
    uint64_t groups = 0;
    size_t keep = 0;
    for (; keep < w->ntasks && (o->limit == 0 || keep < o->limit); keep++) {
        task_t *t = &w->tasks[keep];
        t->first = groups;
        groups += t->n;
    }
    w->ntasks = keep;
    w->groups = groups;
    if (groups == 0) {
        fprintf(stderr, "berth-bench: %s: no group to replay\n", w->name);
        return -1;
    }
    w->events = malloc(2 * w->ntasks * sizeof *w->events);
    if (w->events == NULL)
        return -1;
    for (size_t i = 0; i < w->ntasks; i++) {
        const task_t *t = &w->tasks[i];
        w->events[w->nevents++] = (event_t){t->start, t->order, (uint32_t)i, 0};
        if (t->end != NEVER)
            w->events[w->nevents++] = (event_t){t->end, t->order, (uint32_t)i, 1};
    }
    qsort(w->events, w->nevents, sizeof *w->events, cmp_event);

    /* peak concurrent demand, everything placed */
    uint64_t cur[3] = {0, 0, 0}, peak[3] = {0, 0, 0};
    for (size_t i = 0; i < w->nevents; i++) {
        const task_t *t = &w->tasks[w->events[i].task];
        uint64_t d[3] = {(uint64_t)t->n * t->cores, (uint64_t)t->n * t->memory_mib,
                         (uint64_t)t->n * t->gpus};
        for (int k = 0; k < 3; k++) {
            cur[k] = w->events[i].departure ? cur[k] - d[k] : cur[k] + d[k];
            if (cur[k] > peak[k])
                peak[k] = cur[k];
        }
    }
    uint64_t pool[3] = {0, 0, 0};
    for (size_t j = 0; j < w->nspecs; j++) {
        pool[0] += w->specs[j].cores;
        pool[1] += w->specs[j].memory_mib;
        pool[2] += w->specs[j].gpus;
    }
    static const char *const dims[3] = {"cpu", "memory", "gpu"};
    double ratio = 0;
    w->binding = dims[0];
    for (int k = 0; k < 3; k++) {
        if (pool[k] == 0)
            continue;
        double r = (double)peak[k] / (double)pool[k];
        if (r > ratio) {
            ratio = r;
            w->binding = dims[k];
        }
    }
    w->scale = CLUSTER_FACTOR * (ratio > 0 ? ratio : 1.0);
    size_t nhosts = 0;
    for (size_t j = 0; j < w->nspecs; j++)
        nhosts += (size_t)(floor((double)(j + 1) * w->scale) - floor((double)j * w->scale));
    if (nhosts == 0)
        nhosts = 1;
    w->hosts = malloc(nhosts * sizeof *w->hosts);
    if (w->hosts == NULL)
        return -1;
    for (size_t j = 0; j < w->nspecs && w->nhosts < nhosts; j++) {
        size_t copies = (size_t)(floor((double)(j + 1) * w->scale) -
                                 floor((double)j * w->scale));
        for (size_t c = 0; c < copies && w->nhosts < nhosts; c++)
            w->hosts[w->nhosts++] = w->specs[j];
    }
    if (w->nhosts == 0)
        w->hosts[w->nhosts++] = w->specs[0];
    for (size_t i = 0; i < w->nhosts; i++) {
        w->cap_cores += w->hosts[i].cores;
        w->cap_memory += w->hosts[i].memory_mib;
        w->cap_gpus += w->hosts[i].gpus;
    }
    w->med_cores = median(w, 0, false);
    w->med_memory = median(w, 1, false);
    for (size_t i = 0; i < w->ntasks && !w->has_gpu_groups; i++)
        w->has_gpu_groups = w->tasks[i].gpus > 0;
    if (w->has_gpu_groups) {
        w->med_gpu_cores = median(w, 0, true);
        w->med_gpu_memory = median(w, 1, true);
        w->min_gpu_cores = UINT32_MAX;
        w->min_gpu_memory = UINT32_MAX;
        for (size_t i = 0; i < w->ntasks; i++) {
            const task_t *t = &w->tasks[i];
            if (t->gpus == 0)
                continue;
            uint32_t c = (t->cores + t->gpus - 1) / t->gpus;
            uint32_t m = (t->memory_mib + t->gpus - 1) / t->gpus;
            if (c < w->min_gpu_cores)
                w->min_gpu_cores = c;
            if (m < w->min_gpu_memory)
                w->min_gpu_memory = m;
        }
    }
    uint64_t group_events = 0;
    for (size_t i = 0; i < w->nevents; i++)
        group_events += w->tasks[w->events[i].task].n;
    fprintf(stderr, "berth-bench: %s: %" PRIu64 " groups, %" PRIu64 " events, %zu hosts (host list "
            "x%.3f, binding %s; peak %" PRIu64 " cores, %" PRIu64 " MiB, %" PRIu64 " GPUs)\n",
            w->name, w->groups, group_events, w->nhosts, w->scale, w->binding, peak[0], peak[1],
            peak[2]);
    return 0;
}

/* ---- replay --------------------------------------------------------------- */

/* Writes the key of group `g`: "g" and its index in hex. */
static void group_key(uint64_t g, char *key)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[17];
    int n = 0;
    do {
        tmp[n++] = hex[g & 15];
        g >>= 4;
    } while (g != 0 && n < 16);
    key[0] = 'g';
    for (int i = 0; i < n; i++)
        key[1 + i] = tmp[n - 1 - i];
    key[1 + n] = '\0';
}

static berth_engine_t *build(const replay_workload_t *w, berth_policy_t policy, bool vector,
                             uint64_t seed, uint32_t *sku_ids)
{
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    eo.policy = policy;
    eo.vector_score = vector;
    eo.seed = seed;
    berth_engine_t *e;
    berth_error_t err;
    if (berth_engine_new(&eo, &e, &err) != 0) {
        fprintf(stderr, "berth-bench: engine: %s\n", err.message);
        return NULL;
    }
    for (size_t m = 0; m < w->nmodels; m++) {
        berth_gpu_sku_t sku;
        memset(&sku, 0, sizeof sku);
        snprintf(sku.name, sizeof sku.name, "%s", w->models[m]);
        static const uint32_t counts[] = {1, 2, 4, 8};
        for (size_t k = 0; k < 4; k++)
            sku.offers[sku.noffers++] = (berth_gpu_offer_t){counts[k], 1024u * 1000u,
                                                            8u * 1024u * 1024u};
        if (berth_engine_gpu_sku_add(e, &sku, &err) != 0 ||
            berth_engine_gpu_sku_find(e, sku.name, &sku_ids[m]) == NULL) {
            fprintf(stderr, "berth-bench: GPU SKU %s: %s\n", sku.name, err.message);
            berth_engine_free(e);
            return NULL;
        }
    }
    for (size_t i = 0; i < w->nhosts; i++) {
        char name[32];
        snprintf(name, sizeof name, "r%06zu", i);
        berth_host_t h;
        memset(&h, 0, sizeof h);
        h.name = name;
        h.cores = w->hosts[i].cores;
        h.memory_mib = w->hosts[i].memory_mib;
        h.gpu_count = w->hosts[i].gpus;
        h.gpu_sku = h.gpu_count > 0 ? w->models[w->hosts[i].model] : NULL;
        h.os = BERTH_OS_LINUX;
        if (berth_engine_host_add(e, &h, &err) != 0) {
            fprintf(stderr, "berth-bench: host %s: %s\n", name, err.message);
            berth_engine_free(e);
            return NULL;
        }
    }
    return e;
}

/* Reads every host's free capacity and adds the sample's strands and
 * allocation to *r. */
static void sample(const replay_workload_t *w, const berth_engine_t *e, result_t *r)
{
    uint64_t s_cpu = 0, s_mem = 0, s_gpu = 0, s_gpu_min = 0, u_cpu = 0, u_mem = 0, u_gpu = 0;
    for (size_t i = 0; i < w->nhosts; i++) {
        berth_host_t h;
        berth_host_usage_t u;
        if (berth_engine_host_at(e, i, &h, &u) != 0)
            continue;
        uint32_t fc = h.cores - u.millicores / 1000u;
        uint32_t fm = h.memory_mib - u.memory_mib;
        uint32_t fg = h.gpu_count - u.gpu_count;
        u_cpu += u.millicores / 1000u;
        u_mem += u.memory_mib;
        u_gpu += u.gpu_count;
        if (fc < w->med_cores || fm < w->med_memory) {
            s_cpu += fc;
            s_mem += fm;
        }
        if (fg > 0 && (fc < w->med_gpu_cores || fm < w->med_gpu_memory))
            s_gpu += fg;
        if (fg > 0 && (fc < w->min_gpu_cores || fm < w->min_gpu_memory))
            s_gpu_min += fg;
    }
    if (w->cap_gpus > 0) {
        double x = (double)s_gpu_min / (double)w->cap_gpus;
        r->stranded_gpu_min += x;
        if (x > r->stranded_gpu_min_peak)
            r->stranded_gpu_min_peak = x;
    }
    r->stranded_cpu += (double)s_cpu / (double)w->cap_cores;
    r->stranded_mem += (double)s_mem / (double)w->cap_memory;
    if (w->cap_gpus > 0) {
        r->stranded_gpu += (double)s_gpu / (double)w->cap_gpus;
        r->gpu_avg += (double)u_gpu / (double)w->cap_gpus;
    }
    r->cpu_avg += (double)u_cpu / (double)w->cap_cores;
    r->mem_avg += (double)u_mem / (double)w->cap_memory;
    r->samples++;
}

/* Plain best fit: the host (index into w->hosts) with the request's GPU
 * model and room, fewest free cores then least free memory, GPU-unaware;
 * NO_HOST when none fits.  free_* mirror the engine's books. */
static uint32_t plain_best_fit(const replay_workload_t *w, const task_t *t, const uint32_t *free_c,
                               const uint32_t *free_m, const uint32_t *free_g)
{
    uint32_t best = NO_HOST;
    for (size_t i = 0; i < w->nhosts; i++) {
        if (free_c[i] < t->cores || free_m[i] < t->memory_mib || free_g[i] < t->gpus)
            continue;
        if (t->gpus > 0 && w->hosts[i].model != t->model)
            continue;
        if (best == NO_HOST || free_c[i] < free_c[best] ||
            (free_c[i] == free_c[best] && free_m[i] < free_m[best]))
            best = (uint32_t)i;
    }
    return best;
}

static int cmp_fgd_type(const void *a, const void *b)
{
    const fgd_type_t *x = a, *y = b;
    if (x->model != y->model)
        return x->model < y->model ? -1 : 1;
    if (x->gpus != y->gpus)
        return x->gpus < y->gpus ? -1 : 1;
    if (x->cores != y->cores)
        return x->cores < y->cores ? -1 : 1;
    return x->memory_mib < y->memory_mib ? -1 : x->memory_mib > y->memory_mib;
}

static int cmp_fgd_weight(const void *a, const void *b)
{
    const fgd_type_t *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    return cmp_fgd_type(a, b);
}

/* FGD's request mix of workload w into *mix: its GPU task types, the
 * FGD_TYPES most frequent.  Returns 0, or -1 when out of memory. */
static int fgd_mix_build(const replay_workload_t *w, fgd_mix_t *mix)
{
    memset(mix, 0, sizeof *mix);
    fgd_type_t *all = malloc((w->ntasks + 1) * sizeof *all);
    if (all == NULL)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < w->ntasks; i++) {
        const task_t *t = &w->tasks[i];
        if (t->gpus > 0)
            all[n++] = (fgd_type_t){t->gpus, t->cores, t->memory_mib, t->model, (double)t->n};
    }
    qsort(all, n, sizeof *all, cmp_fgd_type);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && cmp_fgd_type(&all[m - 1], &all[i]) == 0)
            all[m - 1].weight += all[i].weight;
        else
            all[m++] = all[i];
    }
    qsort(all, m, sizeof *all, cmp_fgd_weight);
    mix->n = m < FGD_TYPES ? m : FGD_TYPES;
    memcpy(mix->type, all, mix->n * sizeof *all);
    free(all);
    return 0;
}

/* The fragmentation of a host of GPU model `model` with free cores c,
 * memory m and GPUs g: the expected free GPUs a request of the mix cannot
 * use (the weights are left unnormalised: only differences are compared). */
static double fgd_frag(const fgd_mix_t *mix, uint32_t model, uint32_t c, uint32_t m, uint32_t g)
{
    double f = 0;
    for (size_t i = 0; g > 0 && i < mix->n; i++) {
        const fgd_type_t *k = &mix->type[i];
        if (k->model == model && (k->gpus > g || k->cores > c || k->memory_mib > m))
            f += k->weight * (double)g;
    }
    return f;
}

/* FGD's choice for task t (index into w->hosts), NO_HOST when nothing
 * fits; frag[i] holds host i's fragmentation as it is (the caller keeps it
 * current: fgd_frag() of the host's free capacity). */
static uint32_t fgd_choose(const replay_workload_t *w, const fgd_mix_t *mix, const task_t *t,
                           const uint32_t *free_c, const uint32_t *free_m, const uint32_t *free_g,
                           const double *frag)
{
    uint32_t best = NO_HOST;
    double best_d = 0;
    for (size_t i = 0; i < w->nhosts; i++) {
        if (free_c[i] < t->cores || free_m[i] < t->memory_mib || free_g[i] < t->gpus)
            continue;
        if (t->gpus > 0 && w->hosts[i].model != t->model)
            continue;
        uint32_t c = free_c[i] - t->cores, m = free_m[i] - t->memory_mib;
        uint32_t g = free_g[i] - t->gpus;
        double d = fgd_frag(mix, w->hosts[i].model, c, m, g) - frag[i];
        if (best != NO_HOST) {
            uint32_t bg = free_g[best] - t->gpus, bc = free_c[best] - t->cores;
            uint32_t bm = free_m[best] - t->memory_mib;
            if (d != best_d ? d > best_d
                : g != bg   ? g > bg
                : c != bc   ? c > bc
                            : m >= bm)
                continue;
        }
        best = (uint32_t)i;
        best_d = d;
    }
    return best;
}

/* Whether task t fits some host of the empty cluster (the floor's test;
 * most tasks fit the first hosts, so the scan is short). */
static bool fits_empty(const replay_workload_t *w, const task_t *t)
{
    for (size_t i = 0; i < w->nhosts; i++) {
        const host_spec_t *h = &w->hosts[i];
        if (h->cores >= t->cores && h->memory_mib >= t->memory_mib && h->gpus >= t->gpus &&
            (t->gpus == 0 || h->model == t->model))
            return true;
    }
    return false;
}

/* Replays the workload's events on a new engine with `policy` (binpack
 * with the vector score when `vector`), or with the bench's own chooser
 * `who` (plain best fit or FGD with the request mix `mix`, on a firstfit
 * engine). */
static int replay(const replay_workload_t *w, berth_policy_t policy, bool vector, chooser_t who,
                  const fgd_mix_t *mix, uint64_t seed, uint32_t *where, result_t *r)
{
    memset(r, 0, sizeof *r);
    bool plain = who != CHOOSE_ENGINE;
    uint32_t sku_ids[MODELS_MAX];
    berth_engine_t *e = build(w, plain ? BERTH_POLICY_FIRSTFIT : policy, vector, seed, sku_ids);
    if (e == NULL)
        return -1;
    uint32_t *groups_on = calloc(w->nhosts, sizeof *groups_on);
    uint32_t *free_c = plain ? malloc(w->nhosts * sizeof *free_c) : NULL;
    uint32_t *free_m = plain ? malloc(w->nhosts * sizeof *free_m) : NULL;
    uint32_t *free_g = plain ? malloc(w->nhosts * sizeof *free_g) : NULL;
    double *frag = who == CHOOSE_FGD ? malloc(w->nhosts * sizeof *frag) : NULL;
    if (groups_on == NULL || (plain && (free_c == NULL || free_m == NULL || free_g == NULL)) ||
        (who == CHOOSE_FGD && frag == NULL)) {
        free(groups_on);
        free(free_c);
        free(free_m);
        free(free_g);
        free(frag);
        berth_engine_free(e);
        return -1;
    }
    for (size_t i = 0; plain && i < w->nhosts; i++) {
        free_c[i] = w->hosts[i].cores;
        free_m[i] = w->hosts[i].memory_mib;
        free_g[i] = w->hosts[i].gpus;
        if (frag != NULL)
            frag[i] = fgd_frag(mix, w->hosts[i].model, free_c[i], free_m[i], free_g[i]);
    }
    uint64_t total_events = 0;
    for (size_t i = 0; i < w->nevents; i++)
        total_events += w->tasks[w->events[i].task].n;
    uint64_t every = total_events / SAMPLES_TARGET;
    if (every == 0)
        every = 1;
    uint64_t used_hosts = 0, u_cpu = 0, u_mem = 0, u_gpu = 0;
    uint64_t asked_gpus = 0, lost_gpus = 0;
    bool beyond_floor = true;       /* the task's groups fit an empty host  */
    r->first_reject[0] = r->first_reject[1] = r->first_reject[2] = -1;
    r->gpu_unplaced[0] = r->gpu_unplaced[1] = -1;
    uint64_t p_cpu = 0, p_mem = 0, p_gpu = 0;
    uint64_t sampling_ns = 0, errors = 0;
    berth_request_t req;
    memset(&req, 0, sizeof req);
    req.os = BERTH_OS_LINUX;
    berth_placement_t pl;
    berth_error_t err;
    char key[24];
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < w->nevents; i++) {
        const event_t *ev = &w->events[i];
        const task_t *t = &w->tasks[ev->task];
        req.demand.millicores = t->cores * 1000u;
        req.demand.requested_millicores = req.demand.millicores;
        req.demand.memory_mib = t->memory_mib;
        req.demand.gpu_count = t->gpus;
        req.demand.gpu_sku = t->gpus > 0 ? sku_ids[t->model] : 0;
        for (uint32_t k = 0; k < t->n; k++) {
            uint64_t g = t->first + k;
            group_key(g, key);
            if (!ev->departure) {
                int rc;
                r->gpu_groups += t->gpus > 0;
                if (k == 0)
                    beyond_floor = fits_empty(w, t);
                r->floor += !beyond_floor;
                if (plain) {
                    uint32_t h = who == CHOOSE_FGD
                                     ? fgd_choose(w, mix, t, free_c, free_m, free_g, frag)
                                     : plain_best_fit(w, t, free_c, free_m, free_g);
                    char name[32];
                    snprintf(name, sizeof name, "r%06u", h);
                    rc = h == NO_HOST ? BERTH_ENOSPC
                                      : berth_engine_request_assign(e, key, &req, name, &pl, NULL);
                    if (rc == 0) {
                        free_c[h] -= t->cores;
                        free_m[h] -= t->memory_mib;
                        free_g[h] -= t->gpus;
                        if (frag != NULL)
                            frag[h] = fgd_frag(mix, w->hosts[h].model, free_c[h], free_m[h],
                                               free_g[h]);
                    }
                } else {
                    rc = berth_engine_request_place(e, key, &req, &pl, NULL);
                }
                if (rc == 0) {
                    uint32_t h = (uint32_t)strtoul(pl.host + 1, NULL, 10);
                    where[g] = h;
                    r->placed++;
                    if (h < w->nhosts && groups_on[h]++ == 0 && ++used_hosts > r->peak_hosts_used)
                        r->peak_hosts_used = used_hosts;
                    u_cpu += t->cores;
                    u_mem += t->memory_mib;
                    u_gpu += t->gpus;
                    if (u_cpu > p_cpu)
                        p_cpu = u_cpu;
                    if (u_mem > p_mem)
                        p_mem = u_mem;
                    if (u_gpu > p_gpu)
                        p_gpu = u_gpu;
                } else {
                    where[g] = NO_HOST;
                    r->rejected++;
                    if (beyond_floor && r->first_reject[0] < 0) {
                        r->first_reject[0] = w->cap_cores ? (double)u_cpu / w->cap_cores : -1;
                        r->first_reject[1] = w->cap_memory ? (double)u_mem / w->cap_memory : -1;
                        r->first_reject[2] = w->cap_gpus ? (double)u_gpu / w->cap_gpus : -1;
                    }
                    if (t->gpus > 0)
                        r->gpu_rejected++;
                    lost_gpus += t->gpus;
                    if (rc != BERTH_ENOSPC && errors++ == 0) {
                        berth_engine_request_place(e, key, &req, NULL, &err);
                        fprintf(stderr, "berth-bench: %s: place: %s\n", w->name, err.message);
                    }
                }
                /* The requested GPUs crossing 90% and 100% of the cluster's. */
                asked_gpus += t->gpus;
                for (int q = 0; q < 2 && t->gpus > 0 && w->cap_gpus > 0; q++) {
                    uint64_t mark = q == 0 ? (w->cap_gpus * 9 + 9) / 10 : w->cap_gpus;
                    if (r->gpu_unplaced[q] < 0 && asked_gpus >= mark)
                        r->gpu_unplaced[q] = (double)lost_gpus / (double)asked_gpus;
                }
            } else if (where[g] != NO_HOST) {
                if (berth_engine_group_release(e, key, NULL) != 0 && errors++ == 0)
                    fprintf(stderr, "berth-bench: %s: release of %s failed\n", w->name, key);
                uint32_t h = where[g];
                if (h < w->nhosts && --groups_on[h] == 0)
                    used_hosts--;
                if (plain && h < w->nhosts) {
                    free_c[h] += t->cores;
                    free_m[h] += t->memory_mib;
                    free_g[h] += t->gpus;
                    if (frag != NULL)
                        frag[h] = fgd_frag(mix, w->hosts[h].model, free_c[h], free_m[h],
                                           free_g[h]);
                }
                u_cpu -= t->cores;
                u_mem -= t->memory_mib;
                u_gpu -= t->gpus;
                where[g] = NO_HOST;
            }
            if (++r->events % every == 0) {
                uint64_t s0 = bench_now_ns();
                sample(w, e, r);
                sampling_ns += bench_now_ns() - s0;
            }
        }
    }
    uint64_t elapsed = bench_now_ns() - t0;
    r->seconds = (double)(elapsed - sampling_ns) / 1e9;
    if (r->samples > 0) {
        double n = (double)r->samples;
        r->stranded_cpu /= n;
        r->stranded_mem /= n;
        r->stranded_gpu /= n;
        r->stranded_gpu_min /= n;
        r->cpu_avg /= n;
        r->mem_avg /= n;
        r->gpu_avg /= n;
    }
    r->cpu_peak = (double)p_cpu / (double)w->cap_cores;
    r->mem_peak = (double)p_mem / (double)w->cap_memory;
    r->gpu_peak = w->cap_gpus > 0 ? (double)p_gpu / (double)w->cap_gpus : 0.0;

    /* the engine's books must match the replay's */
    uint64_t e_cpu = 0, e_mem = 0, e_gpu = 0;
    for (size_t i = 0; i < w->nhosts; i++) {
        berth_host_usage_t u;
        if (berth_engine_host_at(e, i, NULL, &u) == 0) {
            e_cpu += u.millicores / 1000u;
            e_mem += u.memory_mib;
            e_gpu += u.gpu_count;
        }
    }
    if (e_cpu != u_cpu || e_mem != u_mem || e_gpu != u_gpu) {
        fprintf(stderr, "berth-bench: %s/%s: engine usage (%" PRIu64 " cores, %" PRIu64
                " MiB, %" PRIu64 " GPUs) differs from the replay's (%" PRIu64 ", %" PRIu64
                ", %" PRIu64 ")\n", w->name, berth_policy_name(policy), e_cpu, e_mem, e_gpu,
                u_cpu, u_mem, u_gpu);
        errors++;
    }
    r->ok = errors == 0;
    free(free_c);
    free(free_m);
    free(free_g);
    free(frag);
    free(groups_on);
    berth_engine_free(e);
    return 0;
}

static json_t *frac(double x, bool present)
{
    return present ? json_real(bench_rounded(x, 4)) : json_null();
}

static void emit(const replay_workload_t *w, const char *policy, const result_t *r,
                 const result_t *ff)
{
    bool gpu = w->cap_gpus > 0;
    json_t *row = json_object();
    /* "replay": its own CSV file, as its members differ from the packing
     * benchmarks' rows of `quality`. */
    json_object_set_new(row, "bench", json_string("replay"));
    json_object_set_new(row, "workload", json_string(w->name));
    json_object_set_new(row, "policy", json_string(policy));
    json_object_set_new(row, "hosts", json_integer((json_int_t)w->nhosts));
    json_object_set_new(row, "events", json_integer((json_int_t)r->events));
    json_object_set_new(row, "placed", json_integer((json_int_t)r->placed));
    json_object_set_new(row, "rejected", json_integer((json_int_t)r->rejected));
    json_object_set_new(row, "peak_hosts_used", json_integer((json_int_t)r->peak_hosts_used));
    json_object_set_new(row, "stranded_cpu_frac", frac(r->stranded_cpu, true));
    json_object_set_new(row, "stranded_mem_frac", frac(r->stranded_mem, true));
    json_object_set_new(row, "stranded_gpu_frac", frac(r->stranded_gpu, gpu));
    json_object_set_new(row, "gpu_rejected", json_integer((json_int_t)r->gpu_rejected));
    json_object_set_new(row, "rejected_vs_firstfit",
                        ff != NULL && ff->rejected > 0
                            ? json_real(bench_rounded((double)r->rejected / (double)ff->rejected, 4))
                            : json_null());
    json_object_set_new(row, "seconds", json_real(bench_rounded(r->seconds, 3)));
    json_object_set_new(row, "groups", json_integer((json_int_t)w->groups));
    json_object_set_new(row, "cluster_scale", json_real(bench_rounded(w->scale, 4)));
    json_object_set_new(row, "cpu_alloc_avg", frac(r->cpu_avg, true));
    json_object_set_new(row, "cpu_alloc_peak", frac(r->cpu_peak, true));
    json_object_set_new(row, "mem_alloc_avg", frac(r->mem_avg, true));
    json_object_set_new(row, "mem_alloc_peak", frac(r->mem_peak, true));
    json_object_set_new(row, "gpu_alloc_avg", frac(r->gpu_avg, gpu));
    json_object_set_new(row, "gpu_alloc_peak", frac(r->gpu_peak, gpu));
    json_object_set_new(row, "placements_per_sec",
                        r->seconds > 0
                            ? json_real(bench_rounded((double)(r->placed + r->rejected) / r->seconds, 0))
                            : json_null());
    json_object_set_new(row, "samples", json_integer((json_int_t)r->samples));
    json_object_set_new(row, "gpu_groups", json_integer((json_int_t)r->gpu_groups));
    json_object_set_new(row, "stranded_gpu_min_frac", frac(r->stranded_gpu_min, gpu));
    json_object_set_new(row, "stranded_gpu_min_peak", frac(r->stranded_gpu_min_peak, gpu));
    json_object_set_new(row, "floor", json_integer((json_int_t)r->floor));
    json_object_set_new(row, "rejected_above_floor",
                        json_integer((json_int_t)(r->rejected - r->floor)));
    static const char *const dims[3] = {"first_reject_cpu", "first_reject_mem",
                                        "first_reject_gpu"};
    for (int d = 0; d < 3; d++)
        json_object_set_new(row, dims[d], frac(r->first_reject[d], r->first_reject[d] >= 0));
    json_object_set_new(row, "gpu_unplaced_at_90", frac(r->gpu_unplaced[0], r->gpu_unplaced[0] >= 0));
    json_object_set_new(row, "gpu_unplaced_at_100",
                        frac(r->gpu_unplaced[1], r->gpu_unplaced[1] >= 0));
    bench_emit(row);
}


/* See replay.h. */
int bench_replay_run(const char *set, const replay_options_t *o)
{
    replay_workload_t w;
    memset(&w, 0, sizeof w);
    int rc;
    if (set != NULL && strcmp(set, "alibaba-2017") == 0) {
        w.name = "alibaba-2017";
        rc = bench_trace_load_2017(&w, o);
    } else if (set != NULL && strcmp(set, "alibaba-2025") == 0) {
        w.name = "alibaba-2025";
        rc = bench_trace_load_2025(&w, o, false, false);
    } else if (set != NULL && strncmp(set, "gpu-", 4) == 0 &&
               (strcmp(set + 4, "spot2026") == 0 || strcmp(set + 4, "pai2020") == 0 ||
                strcmp(set + 4, "spot2026-multi") == 0 || strcmp(set + 4, "pai2020-multi") == 0)) {
        w.name = set;
        rc = bench_trace_load_2025(&w, o, set[4] == 'p', strstr(set, "-multi") != NULL);
    } else {
        fprintf(stderr, "berth-bench: unknown workload '%s' (alibaba-2017, alibaba-2025, "
                "gpu-spot2026, gpu-pai2020, gpu-spot2026-multi or gpu-pai2020-multi)\n",
                set != NULL ? set : "(null)");
        return -1;
    }
    if (rc == 0)
        rc = prepare(&w, o);
    uint32_t *where = rc == 0 ? malloc(w.groups * sizeof *where) : NULL;
    if (rc == 0 && where == NULL) {
        fputs("berth-bench: out of memory\n", stderr);
        rc = -1;
    }
    static const struct {
        const char *name;
        berth_policy_t policy;
        bool vector;
        chooser_t who;
    } runs[] = {
        {"binpack", BERTH_POLICY_BINPACK, false, CHOOSE_ENGINE},
        {"spread", BERTH_POLICY_SPREAD, false, CHOOSE_ENGINE},
        {"firstfit", BERTH_POLICY_FIRSTFIT, false, CHOOSE_ENGINE},  /* res[2]: the reference */
        {"bestfit-plain", BERTH_POLICY_FIRSTFIT, false, CHOOSE_PLAIN},
        {"binpack-vector", BERTH_POLICY_BINPACK, true, CHOOSE_ENGINE},
        {"fgd", BERTH_POLICY_FIRSTFIT, false, CHOOSE_FGD},          /* GPU workloads only */
    };
    enum { NRUNS = sizeof runs / sizeof *runs };
    result_t res[NRUNS];
    fgd_mix_t mix;
    if (rc == 0 && fgd_mix_build(&w, &mix) != 0) {
        fputs("berth-bench: out of memory\n", stderr);
        rc = -1;
    }
    bool ran[NRUNS] = {false};
    for (size_t p = 0; p < NRUNS && rc == 0; p++) {
        if (runs[p].who == CHOOSE_FGD && !w.has_gpu_groups)
            continue;
        rc = replay(&w, runs[p].policy, runs[p].vector, runs[p].who, &mix, o->seed, where,
                    &res[p]);
        ran[p] = rc == 0;
    }
    for (size_t p = 0; p < NRUNS && rc == 0; p++)
        if (ran[p])
            emit(&w, runs[p].name, &res[p], &res[2]);
    for (size_t p = 0; p < NRUNS && rc == 0; p++)
        if (ran[p] && !res[p].ok)
            rc = -1;
    free(where);
    bench_trace_free(&w);
    return rc;
}
