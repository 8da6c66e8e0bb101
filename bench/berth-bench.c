/*
 * berth-bench.c: placement throughput and packing benchmark for libberth.
 *
 *   berth-bench incore --hosts N --groups M --seed S [--policy P]
 *
 * Builds a deterministic mixed cluster of N hosts and a deterministic
 * workload of M placement requests, then, for each policy on the same input,
 * runs a churn loop (place; once the cluster's CPU is 85% allocated, release
 * a random placed group after each placement so that it stays in a steady
 * state) and prints one JSON line per policy.  Throughput comes from one
 * monotonic clock reading around the whole loop; latency percentiles come
 * from a second, identical run that times each call on its own, so that the
 * timing calls do not distort the throughput figure.
 *
 * It uses the public API only, and it is a measurement tool: it never
 * decides pass or fail on a timing.  jemalloc is linked into this program
 * (never into the library) and its statistics give the engine's memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jemalloc/jemalloc.h>

#include "berth.h"

#define GB 1024u
#define KEY_LEN 24

typedef struct options {
    size_t hosts;
    size_t groups;
    uint64_t seed;
    int policy;                     /* -1: all three                        */
} options_t;

typedef struct workload {
    berth_host_t *hosts;
    char (*host_names)[32];
    berth_request_t *requests;
    char (*keys)[KEY_LEN];
} workload_t;

typedef struct result {
    size_t placed, rejected, released;
    double seconds;
    double per_sec;
    uint64_t p50, p99, p999;
    size_t hosts_used;
    double cpu_util, mem_util, gpu_util;
    double bytes_per_host;          /* < 0: unknown                         */
} result_t;

static uint64_t next(uint64_t *s)
{
    /* splitmix64: deterministic, so that runs are comparable */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(next(s) % n);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fputs("usage: berth-bench incore [--hosts N] [--groups M] [--seed S] [--policy P]\n"
          "\n"
          "Places M container groups on N simulated hosts, in memory, with each\n"
          "policy (binpack, spread and the naive firstfit baseline; --policy picks\n"
          "one) on the same deterministic input, and prints one JSON line per policy.\n"
          "\n"
          "  --hosts N    hosts in the cluster (default 10000): CPU-only Linux of\n"
          "               8-64 cores, K80/P100/V100 hosts with 4 or 8 GPUs, Windows\n"
          "               ltsc2019/ltsc2022 hosts (some with Hyper-V), 3 zones, a few\n"
          "               confidential and dedicated hosts\n"
          "  --groups M   placement requests (default 20 per host): mostly small\n"
          "               CPU-only Linux groups of 1-4 cores, some GPU, some Windows,\n"
          "               some pinned to a zone\n"
          "  --seed S     seed of the cluster, the workload and the engine (default 1)\n"
          "  --policy P   binpack, spread or firstfit (default: all three)\n"
          "  --help       this text\n"
          "\n"
          "The loop places requests in order; once 85% of the cluster's CPU is\n"
          "allocated it releases a random placed group after every placement.\n"
          "Fields: placed, rejected (no host), released; placements_per_sec (place\n"
          "calls over the whole loop's monotonic time, releases included); p50_ns,\n"
          "p99_ns, p999_ns (a second run timing each place call); hosts_used and\n"
          "utilization at the end; index_bytes_per_host (heap bytes the engine holds\n"
          "per host once the hosts are loaded: host records, name table and index,\n"
          "from jemalloc's per-thread counters); speedup_vs_firstfit (placements_per_sec\n"
          "over firstfit's; null when firstfit did not run).\n",
          f);
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0 || v > 100000000ull)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, options_t *o)
{
    o->hosts = 10000;
    o->groups = 0;
    o->seed = 1;
    o->policy = -1;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 1;
    }
    if (strcmp(argv[1], "incore") != 0) {
        fprintf(stderr, "berth-bench: unknown scenario '%s' (try --help)\n", argv[1]);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "berth-bench: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (strcmp(a, "--hosts") == 0) {
            bad = parse_size(v, &o->hosts);
        } else if (strcmp(a, "--groups") == 0) {
            bad = parse_size(v, &o->groups);
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            bad = errno != 0 || end == v || *end != '\0';
        } else if (strcmp(a, "--policy") == 0) {
            berth_policy_t p;
            bad = berth_policy_parse(v, &p);
            o->policy = (int)p;
        } else {
            fprintf(stderr, "berth-bench: unknown option %s (try --help)\n", a);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "berth-bench: bad value '%s' for %s\n", v, a);
            return 2;
        }
    }
    if (o->groups == 0)
        o->groups = o->hosts * 20;
    return 0;
}

static const char *const gpu_skus[] = {"K80", "P100", "V100"};
static const char *const zones[] = {"1", "2", "3"};

/* The cluster: about 70% CPU-only Linux, 12% GPU, 12% Windows, 3%
 * confidential, 3% dedicated; zones drawn at random. */
static void make_hosts(workload_t *w, size_t n, uint64_t seed)
{
    uint64_t s = seed ^ 0x686f737473ull;
    for (size_t i = 0; i < n; i++) {
        berth_host_t *h = &w->hosts[i];
        memset(h, 0, sizeof *h);
        snprintf(w->host_names[i], sizeof w->host_names[i], "host-%06zu", i);
        h->name = w->host_names[i];
        h->os = BERTH_OS_LINUX;
        h->zone = zones[below(&s, 3)];
        uint32_t kind = below(&s, 100);
        static const uint32_t cpu_cores[] = {8, 16, 32, 48, 64};
        if (kind < 70) {
            h->cores = cpu_cores[below(&s, 5)];
            h->memory_mib = h->cores * (4 + 4 * below(&s, 2)) * GB;
        } else if (kind < 82) {
            h->gpu_sku = gpu_skus[below(&s, 3)];
            h->gpu_count = below(&s, 2) ? 8 : 4;
            h->cores = h->gpu_count * 6;
            h->memory_mib = h->gpu_count * 112 * GB;
        } else if (kind < 94) {
            h->os = BERTH_OS_WINDOWS;
            h->os_build = below(&s, 2) ? BERTH_WINDOWS_LTSC2019 : BERTH_WINDOWS_LTSC2022;
            if (h->os_build == BERTH_WINDOWS_LTSC2022 && below(&s, 2))
                h->features = BERTH_HOST_HYPERV;
            h->cores = cpu_cores[below(&s, 3)];
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
static void make_requests(workload_t *w, size_t m, uint64_t seed, const int *zone_ids)
{
    uint64_t s = seed ^ 0x67726f757073ull;
    for (size_t i = 0; i < m; i++) {
        berth_request_t *r = &w->requests[i];
        memset(r, 0, sizeof *r);
        r->os = BERTH_OS_LINUX;
        uint32_t kind = below(&s, 100);
        uint32_t cores = 1 + below(&s, 4);
        r->demand.millicores = cores * 1000;
        r->demand.memory_mib = cores * (1 + below(&s, 4)) * GB / 2 + 512 * below(&s, 3);
        if (kind < 80) {
            /* small CPU-only Linux */
        } else if (kind < 86) {
            static const uint32_t counts[] = {1, 1, 2, 4};
            uint32_t n = counts[below(&s, 4)];
            r->demand.gpu_count = n;
            r->demand.gpu_sku = below(&s, 3);
            r->demand.millicores = n * 3000;
            r->demand.memory_mib = n * 24 * GB;
        } else if (kind < 95) {
            r->os = BERTH_OS_WINDOWS;
            r->os_build = below(&s, 2) ? BERTH_WINDOWS_LTSC2019 : BERTH_WINDOWS_LTSC2022;
        } else if (kind < 98) {
            r->sku = BERTH_SKU_CONFIDENTIAL;
        } else {
            r->sku = BERTH_SKU_DEDICATED;
            r->demand.millicores = 32000;
            r->demand.memory_mib = 128 * GB;
        }
        r->demand.requested_millicores = r->demand.millicores;
        if (below(&s, 100) < 15)
            r->zone_mask = 1ull << zone_ids[below(&s, 3)];
        snprintf(w->keys[i], KEY_LEN, "cg-%010zu", i);
    }
}

/* Bytes this thread holds from the allocator (jemalloc's exact per-thread
 * counters, so that caches inside the allocator do not blur the figure);
 * 0 when jemalloc does not say. */
static uint64_t thread_allocated(void)
{
    uint64_t *alloc = NULL, *dealloc = NULL;
    size_t sz = sizeof alloc;
    if (mallctl("thread.allocatedp", &alloc, &sz, NULL, 0) != 0)
        return 0;
    sz = sizeof dealloc;
    if (mallctl("thread.deallocatedp", &dealloc, &sz, NULL, 0) != 0)
        return 0;
    return *alloc - *dealloc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Builds an engine for `policy` with the cluster loaded.  Stores the heap
 * bytes per host in *bytes_per_host (negative when unknown). */
static berth_engine_t *load(const options_t *o, const workload_t *w, berth_policy_t policy,
                            double *bytes_per_host)
{
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    eo.policy = policy;
    eo.seed = o->seed;
    uint64_t before = thread_allocated();
    berth_engine_t *e;
    berth_error_t err;
    if (berth_engine_new(&eo, &e, &err) != 0) {
        fprintf(stderr, "berth-bench: engine: %s\n", err.message);
        exit(1);
    }
    for (size_t z = 0; z < 3; z++)
        berth_engine_zone_id(e, zones[z]);
    for (size_t i = 0; i < o->hosts; i++) {
        if (berth_host_add(e, &w->hosts[i], &err) != 0) {
            fprintf(stderr, "berth-bench: host %s: %s\n", w->hosts[i].name, err.message);
            exit(1);
        }
    }
    uint64_t after = thread_allocated();
    *bytes_per_host = before && after >= before ? (double)(after - before) / (double)o->hosts
                                                : -1.0;
    return e;
}

/* One churn run.  With `lat` non-NULL, times each place call into it. */
static void churn(const options_t *o, const workload_t *w, berth_policy_t policy,
                  uint64_t *lat, result_t *res)
{
    double bytes;
    berth_engine_t *e = load(o, w, policy, &bytes);
    size_t *live = malloc(o->groups * sizeof *live);
    if (live == NULL) {
        fputs("berth-bench: out of memory\n", stderr);
        exit(1);
    }
    size_t nlive = 0;
    uint64_t rng = o->seed ^ 0x72656c65617365ull;
    berth_engine_stats_t st;
    berth_engine_stats(e, &st);
    /* 85% of the CPU, in integers */
    uint64_t threshold = st.capacity_millicores / 100u * 85u;
    size_t placed = 0, rejected = 0, released = 0;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < o->groups; i++) {
        int rc;
        if (lat != NULL) {
            uint64_t a = now_ns();
            rc = berth_request_place(e, w->keys[i], &w->requests[i], NULL, NULL);
            lat[i] = now_ns() - a;
        } else {
            rc = berth_request_place(e, w->keys[i], &w->requests[i], NULL, NULL);
        }
        if (rc == 0) {
            placed++;
            live[nlive++] = i;
        } else if (rc == BERTH_ENOSPC) {
            rejected++;
        } else {
            fprintf(stderr, "berth-bench: place %s: %s\n", w->keys[i], berth_strerror(rc));
            exit(1);
        }
        berth_engine_stats(e, &st);
        if (st.used_millicores >= threshold && nlive > 0) {
            size_t k = (size_t)(next(&rng) % nlive);
            if (berth_group_release(e, w->keys[live[k]], NULL) != 0) {
                fprintf(stderr, "berth-bench: release %s failed\n", w->keys[live[k]]);
                exit(1);
            }
            live[k] = live[--nlive];
            released++;
        }
    }
    uint64_t t1 = now_ns();
    berth_engine_stats(e, &st);
    res->placed = placed;
    res->rejected = rejected;
    res->released = released;
    res->seconds = (double)(t1 - t0) / 1e9;
    res->per_sec = (double)o->groups / res->seconds;
    res->hosts_used = st.hosts_used;
    res->cpu_util = st.capacity_millicores
        ? 100.0 * (double)st.used_millicores / (double)st.capacity_millicores : 0;
    res->mem_util = st.capacity_memory_mib
        ? 100.0 * (double)st.used_memory_mib / (double)st.capacity_memory_mib : 0;
    res->gpu_util = st.capacity_gpus
        ? 100.0 * (double)st.used_gpus / (double)st.capacity_gpus : 0;
    res->bytes_per_host = bytes;
    free(live);
    berth_engine_free(e);
}

static void run_policy(const options_t *o, const workload_t *w, berth_policy_t policy,
                       uint64_t *lat, result_t *res)
{
    churn(o, w, policy, NULL, res);
    result_t timed;
    churn(o, w, policy, lat, &timed);
    qsort(lat, o->groups, sizeof *lat, cmp_u64);
    res->p50 = lat[o->groups * 50 / 100];
    res->p99 = lat[o->groups * 99 / 100];
    res->p999 = lat[o->groups * 999 / 1000];
}

int main(int argc, char **argv)
{
    options_t o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    workload_t w;
    w.hosts = calloc(o.hosts, sizeof *w.hosts);
    w.host_names = calloc(o.hosts, sizeof *w.host_names);
    w.requests = calloc(o.groups, sizeof *w.requests);
    w.keys = calloc(o.groups, sizeof *w.keys);
    uint64_t *lat = calloc(o.groups, sizeof *lat);
    if (!w.hosts || !w.host_names || !w.requests || !w.keys || !lat) {
        fputs("berth-bench: out of memory\n", stderr);
        return 1;
    }
    make_hosts(&w, o.hosts, o.seed);
    /* Zone ids as every engine of this run registers them (in this order). */
    int zone_ids[3] = {0, 1, 2};
    make_requests(&w, o.groups, o.seed, zone_ids);

    static const berth_policy_t all[] = {BERTH_POLICY_FIRSTFIT, BERTH_POLICY_BINPACK,
                                         BERTH_POLICY_SPREAD};
    result_t res[3];
    bool ran[3] = {false, false, false};
    for (size_t p = 0; p < 3; p++) {
        if (o.policy >= 0 && (int)all[p] != o.policy)
            continue;
        run_policy(&o, &w, all[p], lat, &res[p]);
        ran[p] = true;
    }
    for (size_t p = 0; p < 3; p++) {
        if (!ran[p])
            continue;
        const result_t *r = &res[p];
        char speedup[32] = "null";
        if (ran[0] && res[0].per_sec > 0)
            snprintf(speedup, sizeof speedup, "%.2f", r->per_sec / res[0].per_sec);
        char bytes[32] = "null";
        if (r->bytes_per_host >= 0)
            snprintf(bytes, sizeof bytes, "%.1f", r->bytes_per_host);
        printf("{\"bench\":\"incore\",\"policy\":\"%s\",\"hosts\":%zu,\"groups\":%zu,"
               "\"seed\":%" PRIu64 ",\"placed\":%zu,\"rejected\":%zu,\"released\":%zu,"
               "\"seconds\":%.3f,\"placements_per_sec\":%.0f,\"p50_ns\":%" PRIu64
               ",\"p99_ns\":%" PRIu64 ",\"p999_ns\":%" PRIu64 ",\"hosts_used\":%zu,"
               "\"cpu_utilization\":%.1f,\"memory_utilization\":%.1f,"
               "\"gpu_utilization\":%.1f,\"index_bytes_per_host\":%s,"
               "\"speedup_vs_firstfit\":%s}\n",
               berth_policy_name(all[p]), o.hosts, o.groups, o.seed, r->placed, r->rejected,
               r->released, r->seconds, r->per_sec, r->p50, r->p99, r->p999, r->hosts_used,
               r->cpu_util, r->mem_util, r->gpu_util, bytes, speedup);
    }
    free(w.hosts);
    free(w.host_names);
    free(w.requests);
    free(w.keys);
    free(lat);
    return 0;
}
