/*
 * incore.c: berth-bench's `incore` scenario: placement throughput, latency
 * and memory of an engine in memory.
 *
 *   berth-bench incore --hosts N --groups M --seed S [--policy P[,P...]]
 *                      [--vector-score]
 *
 * Builds a deterministic mixed cluster of N hosts and a deterministic
 * workload of M placement requests, then, for each policy on the same input,
 * runs a churn loop (place; once the cluster's CPU is 85% allocated, release
 * a random placed group after each placement so that it stays in a steady
 * state) and emits one result per policy.  Throughput comes from one
 * monotonic clock reading around the whole loop; latency percentiles come
 * from a second, identical run that times each call on its own, so that the
 * timing calls do not distort the throughput figure.  The firstfit baseline
 * scans every host for every request: above FIRSTFIT_HOSTS_MAX hosts it runs
 *
 * jemalloc is linked into this program (never into the library) and its
 * statistics give the engine's memory.  It uses the public API only and
 * never decides pass or fail on a timing.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jemalloc/jemalloc.h>

#include "berth.h"
#include "incore.h"
#include "options.h"
#include "output.h"
#include "util.h"
#include "workload.h"

/* Above this many hosts the default policy set leaves firstfit out: its
 * O(hosts) scan per request would take hours for 20 requests per host. */
#define FIRSTFIT_HOSTS_MAX 20000

typedef struct options {
    size_t hosts;
    size_t groups;
    uint64_t seed;
    unsigned policies;              /* bit 1 << berth_policy_t; 0: default  */
    bool vector_score;              /* engine option vector_score (binpack) */
} options_t;

typedef struct result {
    size_t placed, rejected, released;
    double seconds;
    double per_sec;
    uint64_t p50, p99, p999;
    size_t hosts_used;
    double cpu_util, mem_util, gpu_util;
    double bytes_per_host;          /* < 0: unknown                         */
} result_t;

/* Parses the incore scenario's options (from argv[2]) into *o, with their
 * defaults.  Returns 0, 1 after printing the help, or 2 after a message. */
static int parse_args(int argc, char **argv, options_t *o)
{
    enum { OPT_HOSTS = 256, OPT_GROUPS, OPT_SEED, OPT_POLICY, OPT_VECTOR };
    static const struct option longopts[] = {
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"groups", required_argument, NULL, OPT_GROUPS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"vector-score", no_argument, NULL, OPT_VECTOR},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    o->hosts = 10000;
    o->groups = 0;
    o->seed = 1;
    o->policies = 0;
    o->vector_score = false;
    bench_option_t opt;
    while (bench_option_next(argc, argv, "h", longopts, &opt) != -1) {
        int rc = bench_option_common(&opt);
        if (rc != 0)
            return rc;
        const char *v = opt.value;
        int bad = 0;
        if (opt.code == OPT_HOSTS)
            bad = bench_parse_size(v, COUNT_MAX, &o->hosts);
        else if (opt.code == OPT_GROUPS)
            bad = bench_parse_size(v, COUNT_MAX, &o->groups);
        else if (opt.code == OPT_SEED)
            bad = bench_parse_seed(v, &o->seed);
        else if (opt.code == OPT_VECTOR)
            o->vector_score = true;
        else
            bad = bench_parse_policies(v, &o->policies);
        if (bad) {
            fprintf(stderr, "berth-bench: bad value '%s' for %s\n", v, opt.name);
            return 2;
        }
    }
    if (o->groups == 0)
        o->groups = o->hosts * 20;
    if (o->policies == 0) {
        o->policies = 1u << BERTH_POLICY_BINPACK | 1u << BERTH_POLICY_SPREAD;
        if (o->hosts <= FIRSTFIT_HOSTS_MAX)
            o->policies |= 1u << BERTH_POLICY_FIRSTFIT;
        else
            fprintf(stderr, "berth-bench: %zu hosts: firstfit left out (--policy firstfit "
                    "runs it)\n", o->hosts);
    }
    return 0;
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
    eo.vector_score = o->vector_score;
    eo.seed = o->seed;
    eo.expected_hosts = (uint32_t)o->hosts;    /* the cluster's size is known */
    uint64_t before = thread_allocated();
    berth_engine_t *e;
    berth_error_t err;
    if (berth_engine_new(&eo, &e, &err) != 0) {
        fprintf(stderr, "berth-bench: engine: %s\n", err.message);
        exit(1);
    }
    for (size_t z = 0; z < 3; z++)
        berth_engine_zone_id(e, bench_workload_zones[z]);
    for (size_t i = 0; i < o->hosts; i++) {
        if (berth_engine_host_add(e, &w->hosts[i], &err) != 0) {
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
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < o->groups; i++) {
        int rc;
        if (lat != NULL) {
            uint64_t a = bench_now_ns();
            rc = berth_engine_request_place(e, w->keys[i], &w->requests[i], NULL, NULL);
            lat[i] = bench_now_ns() - a;
        } else {
            rc = berth_engine_request_place(e, w->keys[i], &w->requests[i], NULL, NULL);
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
            size_t k = (size_t)(bench_next(&rng) % nlive);
            if (berth_engine_group_release(e, w->keys[live[k]], NULL) != 0) {
                fprintf(stderr, "berth-bench: release %s failed\n", w->keys[live[k]]);
                exit(1);
            }
            live[k] = live[--nlive];
            released++;
        }
    }
    uint64_t t1 = bench_now_ns();
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


/* See incore.h. */
int bench_incore_main(int argc, char **argv)
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
    bench_workload_hosts_make(&w, o.hosts, o.seed);
    /* Zone ids as every engine of this run registers them (in this order). */
    int zone_ids[3] = {0, 1, 2};
    bench_workload_requests_make(&w, o.groups, o.seed, zone_ids);

    /* firstfit first: the others' speedups are measured against it. */
    static const berth_policy_t all[] = {BERTH_POLICY_FIRSTFIT, BERTH_POLICY_BINPACK,
                                         BERTH_POLICY_SPREAD};
    result_t res[3];
    bool ran[3] = {false, false, false};
    for (size_t p = 0; p < 3; p++) {
        if ((o.policies & 1u << all[p]) == 0)
            continue;
        run_policy(&o, &w, all[p], lat, &res[p]);
        ran[p] = true;
    }
    for (size_t p = 0; p < 3; p++) {
        if (!ran[p])
            continue;
        const result_t *r = &res[p];
        json_t *row = json_object();
        json_object_set_new(row, "bench", json_string("incore"));
        json_object_set_new(row, "policy", json_string(berth_policy_name(all[p])));
        json_object_set_new(row, "hosts", json_integer((json_int_t)o.hosts));
        json_object_set_new(row, "vector_score",
                            json_boolean(o.vector_score && all[p] == BERTH_POLICY_BINPACK));
        json_object_set_new(row, "groups", json_integer((json_int_t)o.groups));
        json_object_set_new(row, "seed", json_integer((json_int_t)o.seed));
        json_object_set_new(row, "placed", json_integer((json_int_t)r->placed));
        json_object_set_new(row, "rejected", json_integer((json_int_t)r->rejected));
        json_object_set_new(row, "released", json_integer((json_int_t)r->released));
        json_object_set_new(row, "seconds", json_real(bench_rounded(r->seconds, 3)));
        json_object_set_new(row, "placements_per_sec", json_integer(llround(r->per_sec)));
        json_object_set_new(row, "p50_ns", json_integer((json_int_t)r->p50));
        json_object_set_new(row, "p99_ns", json_integer((json_int_t)r->p99));
        json_object_set_new(row, "p999_ns", json_integer((json_int_t)r->p999));
        json_object_set_new(row, "hosts_used", json_integer((json_int_t)r->hosts_used));
        json_object_set_new(row, "cpu_utilization", json_real(bench_rounded(r->cpu_util, 1)));
        json_object_set_new(row, "memory_utilization", json_real(bench_rounded(r->mem_util, 1)));
        json_object_set_new(row, "gpu_utilization", json_real(bench_rounded(r->gpu_util, 1)));
        json_object_set_new(row, "index_bytes_per_host",
                            r->bytes_per_host >= 0 ? json_real(bench_rounded(r->bytes_per_host, 1))
                                                   : json_null());
        json_object_set_new(row, "speedup_vs_firstfit",
                            ran[0] && res[0].per_sec > 0
                                ? json_real(bench_rounded(r->per_sec / res[0].per_sec, 2))
                                : json_null());
        bench_emit(row);
    }
    free(w.hosts);
    free(w.host_names);
    free(w.requests);
    free(w.keys);
    free(lat);
    return 0;
}
