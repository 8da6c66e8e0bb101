/*
 * redeploy.c: berth-bench's `redeploy` scenario (redeploy.h): updates of
 * running groups.
 *
 *   berth-bench redeploy [--hosts N] [--groups M] [--updates U] [--seed S]
 *                        [--policy P[,P...]] [--csv DIR]
 *
 * For each policy (binpack, spread and the firstfit baseline) on the same
 * deterministic input: fills a cluster of N mixed Linux hosts with up to M
 * mixed groups, in order, until 80% of its cores are allocated; then
 * redeploys U running groups drawn at random (with replacement) under their
 * own keys through berth_engine_request_place(): 70% with the same demand, 20%
 * with 25% more memory, 10% with one more core.  The requests carry no
 * fingerprints (the digests are 0), so the engine accepts a changed demand
 * as an update; it keeps the group on its host when the new demand fits
 * there once the old allocation is released (BERTH_PLACED_STAYED), else
 * moves it (BERTH_PLACED_MOVED), else fails with the old placement kept.
 *
 * Latency percentiles time each update call alone with the monotonic
 * clock; updates_per_sec comes from a second, identical run (same fill,
 * same updates) timed only around the whole update loop, so that the
 * per-call clock readings do not distort it.  Nothing is asserted on a
 * timing.
 */
#define _GNU_SOURCE
#include "redeploy.h"

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
#include "options.h"
#include "output.h"
#include "util.h"

#define GIB 1024u
#define FILL_TARGET 0.80
#define KEY_LEN 24
#define SIZE_MAX_ARG 100000000ull

typedef struct options {
    size_t hosts;
    size_t groups;
    size_t updates;
    uint64_t seed;
    unsigned policies;              /* mask of 1 << berth_policy_t          */
} options_t;

/* One update: which running group (an index into the placed ones) and how
 * its demand changes. */
typedef enum change {
    CHANGE_SAME = 0,
    CHANGE_MEMORY,                  /* +25% memory                          */
    CHANGE_CPU,                     /* +1 core                              */
    CHANGE_KINDS
} change_t;

typedef struct update {
    uint32_t pick;                  /* drawn number; modulo the running groups */
    uint8_t change;
} update_t;

typedef struct input {
    berth_host_t *hosts;
    char (*host_names)[32];
    berth_request_t *requests;
    update_t *updates;
} input_t;

typedef struct result {
    size_t groups;                  /* running after the fill               */
    size_t fill_rejected;
    double cpu_fill;
    size_t stayed, moved, failed;
    size_t by_change[CHANGE_KINDS], stayed_by_change[CHANGE_KINDS];
    uint64_t p50, p99, p999;
    double per_sec;
} result_t;

static void usage(FILE *f)
{
    fputs("usage: berth-bench [--csv DIR] redeploy [--hosts N] [--groups M] [--updates U]\n"
          "                                        [--seed S] [--policy P[,P...]]\n"
          "\n"
          "Fills a cluster of N mixed Linux hosts (default 1000: 16-48 cores\n"
          "with 4 or 8 GiB per core; one in ten with 4 or 8 V100 GPUs) with up to M\n"
          "groups (default 10 per host: 1-4 cores, 0.5-2 GiB per core; 3% with 1 or 2\n"
          "V100 GPUs), in order, until 80% of the cores are allocated.  Then\n"
          "redeploys U running groups (default M) drawn at random, under their own\n"
          "keys with berth_engine_request_place(): 70% with the same demand, 20% with 25%\n"
          "more memory, 10% with one more core.  One result per policy (binpack,\n"
          "spread, firstfit; --policy picks some), on the same input.\n"
          "  --seed S     seed of the cluster, the groups, the updates and the\n"
          "               engine (default 1)\n"
          "  --csv DIR    also append each result to DIR/redeploy.csv\n"
          "Fields: groups (running after the fill), cpu_fill, fill_rejected;\n"
          "stayed_frac (updates kept on their host, BERTH_PLACED_STAYED, over U),\n"
          "moved (BERTH_PLACED_MOVED), failed (no host: the old placement stays);\n"
          "stayed_frac_same/_memory/_cpu per kind of change; p50_ns, p99_ns, p999_ns\n"
          "(each update call timed with the monotonic clock); updates_per_sec (a\n"
          "second identical run timed around the whole update loop).\n",
          f);
}

/* Returns 0, 1 after --help, or 2 after a message. */
static int parse_args(int argc, char **argv, options_t *o)
{
    o->hosts = 1000;
    o->groups = 0;
    o->updates = 0;
    o->seed = 1;
    o->policies = 0;
    enum { OPT_HOSTS = 256, OPT_GROUPS, OPT_UPDATES, OPT_SEED, OPT_POLICY, OPT_CSV };
    static const struct option longopts[] = {
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"groups", required_argument, NULL, OPT_GROUPS},
        {"updates", required_argument, NULL, OPT_UPDATES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"csv", required_argument, NULL, OPT_CSV},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_option_t opt;
    while (bench_option_next(argc, argv, "h", longopts, &opt) != -1) {
        const char *v = opt.value;
        int bad = 0;
        switch (opt.code) {
        case 'h':
            usage(stdout);
            return 1;
        case ':':
            fprintf(stderr, "berth-bench: %s needs a value (try --help)\n", opt.name);
            return 2;
        case '?':
            fprintf(stderr, "berth-bench: unknown option %s (try --help)\n", opt.name);
            return 2;
        case OPT_HOSTS:
            bad = bench_parse_size(v, SIZE_MAX_ARG, &o->hosts);
            break;
        case OPT_GROUPS:
            bad = bench_parse_size(v, SIZE_MAX_ARG, &o->groups);
            break;
        case OPT_UPDATES:
            bad = bench_parse_size(v, SIZE_MAX_ARG, &o->updates);
            break;
        case OPT_SEED:
            bad = bench_parse_seed(v, &o->seed);
            break;
        case OPT_POLICY:
            bad = bench_parse_policies(v, &o->policies);
            break;
        default:
            bench_output_csv_dir(v);
            break;
        }
        if (bad) {
            fprintf(stderr, "berth-bench: bad value '%s' for %s\n", v, opt.name);
            return 2;
        }
    }
    if (o->groups == 0)
        o->groups = o->hosts * 10 > SIZE_MAX_ARG ? SIZE_MAX_ARG : o->hosts * 10;
    if (o->updates == 0)
        o->updates = o->groups;
    if (o->policies == 0)
        o->policies = 1u << BERTH_POLICY_BINPACK | 1u << BERTH_POLICY_SPREAD |
                      1u << BERTH_POLICY_FIRSTFIT;
    return 0;
}

/* The cluster: 90% CPU-only hosts of 16, 24, 32 or 48 cores with 4 or 8 GiB
 * per core, 10% V100 hosts of 4 or 8 GPUs (6 cores and 112 GiB each). */
static void make_hosts(input_t *in, size_t n, uint64_t seed)
{
    uint64_t s = seed ^ 0x7265686f737473ull;
    static const uint32_t cores[] = {16, 24, 32, 48};
    for (size_t i = 0; i < n; i++) {
        berth_host_t *h = &in->hosts[i];
        memset(h, 0, sizeof *h);
        snprintf(in->host_names[i], sizeof in->host_names[i], "rd-%07zu", i);
        h->name = in->host_names[i];
        h->os = BERTH_OS_LINUX;
        if (bench_below(&s, 100) < 90) {
            h->cores = cores[bench_below(&s, 4)];
            h->memory_mib = h->cores * (bench_below(&s, 2) ? 8u : 4u) * GIB;
        } else {
            h->gpu_sku = "V100";
            h->gpu_count = bench_below(&s, 2) ? 8 : 4;
            h->cores = h->gpu_count * 6;
            h->memory_mib = h->gpu_count * 112 * GIB;
        }
    }
}

/* The groups: 97% CPU-only of 1-4 cores with 0.5-2 GiB per core plus 0, 512
 * or 1024 MiB; 3% with 1 or 2 V100 GPUs (3 cores, 24 GiB per GPU). */
static void make_requests(input_t *in, size_t m, uint64_t seed, uint32_t v100)
{
    uint64_t s = seed ^ 0x72657175657374ull;
    for (size_t i = 0; i < m; i++) {
        berth_request_t *r = &in->requests[i];
        memset(r, 0, sizeof *r);
        r->os = BERTH_OS_LINUX;
        if (bench_below(&s, 100) < 97) {
            uint32_t cores = 1 + bench_below(&s, 4);
            r->demand.millicores = cores * 1000;
            r->demand.memory_mib = cores * (1 + bench_below(&s, 4)) * GIB / 2 + 512 * bench_below(&s, 3);
        } else {
            uint32_t n = 1 + bench_below(&s, 2);
            r->demand.gpu_count = n;
            r->demand.gpu_sku = v100;
            r->demand.millicores = n * 3000;
            r->demand.memory_mib = n * 24 * GIB;
        }
        r->demand.requested_millicores = r->demand.millicores;
    }
}

/* The updates: which running group, and 70/20/10 same/memory/CPU. */
static void make_updates(input_t *in, size_t u, uint64_t seed)
{
    uint64_t s = seed ^ 0x7570646174657ull;
    for (size_t i = 0; i < u; i++) {
        in->updates[i].pick = (uint32_t)bench_next(&s);
        uint32_t k = bench_below(&s, 100);
        in->updates[i].change = k < 70 ? CHANGE_SAME : k < 90 ? CHANGE_MEMORY : CHANGE_CPU;
    }
}

static void key_of(size_t i, char *key)
{
    snprintf(key, KEY_LEN, "rg-%010zu", i);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of sorted v[0..n-1] (nearest rank). */
static uint64_t quantile(const uint64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)ceil(q * (double)n);
    return v[rank == 0 ? 0 : rank - 1];
}

/* One run: fill, then update.  With `lat` non-NULL, times each update call
 * into it; else times the whole update loop into res->per_sec.  Returns 0
 * or -1 after a message. */
static int run(const options_t *o, const input_t *in, berth_policy_t policy, uint64_t *lat,
               result_t *res)
{
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    eo.policy = policy;
    eo.seed = o->seed;
    berth_engine_t *e;
    berth_error_t err;
    if (berth_engine_new(&eo, &e, &err) != 0) {
        fprintf(stderr, "berth-bench: engine: %s\n", err.message);
        return -1;
    }
    uint64_t capacity = 0, used = 0;
    for (size_t i = 0; i < o->hosts; i++) {
        if (berth_engine_host_add(e, &in->hosts[i], &err) != 0) {
            fprintf(stderr, "berth-bench: host %s: %s\n", in->hosts[i].name, err.message);
            berth_engine_free(e);
            return -1;
        }
        capacity += in->hosts[i].cores;
    }
    /* running groups: request index, and its current demand */
    size_t *running = malloc(o->groups * sizeof *running);
    berth_request_t *current = malloc(o->groups * sizeof *current);
    if (running == NULL || current == NULL) {
        fputs("berth-bench: out of memory\n", stderr);
        free(running);
        free(current);
        berth_engine_free(e);
        return -1;
    }
    size_t nrun = 0;
    char key[KEY_LEN];
    memset(res, 0, sizeof *res);
    for (size_t i = 0; i < o->groups && (double)used < FILL_TARGET * (double)capacity; i++) {
        key_of(i, key);
        if (berth_engine_request_place(e, key, &in->requests[i], NULL, NULL) == 0) {
            running[nrun] = i;
            current[nrun] = in->requests[i];
            nrun++;
            used += in->requests[i].demand.millicores / 1000u;
        } else {
            res->fill_rejected++;
        }
    }
    res->groups = nrun;
    res->cpu_fill = capacity > 0 ? (double)used / (double)capacity : 0.0;
    int rc = 0;
    if (nrun == 0) {
        fputs("berth-bench: no group could be placed\n", stderr);
        rc = -1;
    }
    uint64_t t0 = bench_now_ns();
    for (size_t u = 0; u < o->updates && rc == 0; u++) {
        const update_t *up = &in->updates[u];
        size_t k = up->pick % nrun;
        berth_request_t req = current[k];
        if (up->change == CHANGE_MEMORY)
            req.demand.memory_mib += (req.demand.memory_mib + 3) / 4;
        else if (up->change == CHANGE_CPU) {
            req.demand.millicores += 1000;
            req.demand.requested_millicores = req.demand.millicores;
        }
        key_of(running[k], key);
        berth_placement_t pl;
        int r;
        if (lat != NULL) {
            uint64_t a = bench_now_ns();
            r = berth_engine_request_place(e, key, &req, &pl, NULL);
            lat[u] = bench_now_ns() - a;
        } else {
            r = berth_engine_request_place(e, key, &req, &pl, NULL);
        }
        res->by_change[up->change]++;
        if (r == 0) {
            current[k] = req;
            if (pl.kind == BERTH_PLACED_STAYED) {
                res->stayed++;
                res->stayed_by_change[up->change]++;
            } else {
                res->moved++;
            }
        } else {
            res->failed++;
            if (r != BERTH_ENOSPC && res->failed == 1) {
                berth_engine_request_place(e, key, &req, NULL, &err);
                fprintf(stderr, "berth-bench: redeploy of %s: %s\n", key, err.message);
            }
        }
    }
    uint64_t elapsed = bench_now_ns() - t0;
    if (lat == NULL)
        res->per_sec = elapsed > 0 ? (double)o->updates * 1e9 / (double)elapsed : 0.0;
    else if (rc == 0) {
        qsort(lat, o->updates, sizeof *lat, cmp_u64);
        res->p50 = quantile(lat, o->updates, 0.50);
        res->p99 = quantile(lat, o->updates, 0.99);
        res->p999 = quantile(lat, o->updates, 0.999);
    }
    free(running);
    free(current);
    berth_engine_free(e);
    return rc;
}

static json_t *ratio(size_t num, size_t den)
{
    return den > 0 ? json_real(bench_rounded((double)num / (double)den, 4)) : json_null();
}

static void emit(const options_t *o, berth_policy_t policy, const result_t *r)
{
    json_t *row = json_object();
    json_object_set_new(row, "bench", json_string("redeploy"));
    json_object_set_new(row, "policy", json_string(berth_policy_name(policy)));
    json_object_set_new(row, "hosts", json_integer((json_int_t)o->hosts));
    json_object_set_new(row, "groups", json_integer((json_int_t)r->groups));
    json_object_set_new(row, "updates", json_integer((json_int_t)o->updates));
    json_object_set_new(row, "stayed_frac", ratio(r->stayed, o->updates));
    json_object_set_new(row, "moved", json_integer((json_int_t)r->moved));
    json_object_set_new(row, "failed", json_integer((json_int_t)r->failed));
    json_object_set_new(row, "p50_ns", json_integer((json_int_t)r->p50));
    json_object_set_new(row, "p99_ns", json_integer((json_int_t)r->p99));
    json_object_set_new(row, "p999_ns", json_integer((json_int_t)r->p999));
    json_object_set_new(row, "updates_per_sec", json_real(bench_rounded(r->per_sec, 0)));
    json_object_set_new(row, "cpu_fill", json_real(bench_rounded(r->cpu_fill, 4)));
    json_object_set_new(row, "fill_rejected", json_integer((json_int_t)r->fill_rejected));
    json_object_set_new(row, "stayed", json_integer((json_int_t)r->stayed));
    json_object_set_new(row, "stayed_frac_same",
                        ratio(r->stayed_by_change[CHANGE_SAME], r->by_change[CHANGE_SAME]));
    json_object_set_new(row, "stayed_frac_memory",
                        ratio(r->stayed_by_change[CHANGE_MEMORY], r->by_change[CHANGE_MEMORY]));
    json_object_set_new(row, "stayed_frac_cpu",
                        ratio(r->stayed_by_change[CHANGE_CPU], r->by_change[CHANGE_CPU]));
    json_object_set_new(row, "seed", json_integer((json_int_t)o->seed));
    bench_emit(row);
}

/* See redeploy.h. */
int bench_redeploy_main(int argc, char **argv)
{
    options_t o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    input_t in;
    memset(&in, 0, sizeof in);
    in.hosts = malloc(o.hosts * sizeof *in.hosts);
    in.host_names = malloc(o.hosts * sizeof *in.host_names);
    in.requests = malloc(o.groups * sizeof *in.requests);
    in.updates = malloc(o.updates * sizeof *in.updates);
    uint64_t *lat = malloc(o.updates * sizeof *lat);
    rc = 0;
    if (in.hosts == NULL || in.host_names == NULL || in.requests == NULL ||
        in.updates == NULL || lat == NULL) {
        fputs("berth-bench: out of memory\n", stderr);
        rc = 1;
    }
    if (rc == 0) {
        /* the V100's id in a fresh engine's table */
        berth_engine_t *e = NULL;
        uint32_t v100 = 0;
        if (berth_engine_new(NULL, &e, NULL) != 0 ||
            berth_engine_gpu_sku_find(e, "V100", &v100) == NULL) {
            fputs("berth-bench: no V100 in the default GPU SKU table\n", stderr);
            rc = 1;
        }
        berth_engine_free(e);
        make_hosts(&in, o.hosts, o.seed);
        make_requests(&in, o.groups, o.seed, v100);
        make_updates(&in, o.updates, o.seed);
    }
    static const berth_policy_t policies[3] = {BERTH_POLICY_BINPACK, BERTH_POLICY_SPREAD,
                                               BERTH_POLICY_FIRSTFIT};
    for (size_t p = 0; p < 3 && rc == 0; p++) {
        if (!(o.policies & 1u << policies[p]))
            continue;
        result_t timed, whole;
        if (run(&o, &in, policies[p], lat, &timed) != 0 ||
            run(&o, &in, policies[p], NULL, &whole) != 0) {
            rc = 1;
            break;
        }
        timed.per_sec = whole.per_sec;
        emit(&o, policies[p], &timed);
    }
    free(in.hosts);
    free(in.host_names);
    free(in.requests);
    free(in.updates);
    free(lat);
    return rc;
}
