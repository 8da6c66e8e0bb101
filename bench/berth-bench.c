/*
 * berth-bench.c: Berth's benchmark harness: placement throughput, latency
 * and memory in memory, commits through Redis, creates through berthd's
 * REST API, packing quality and redeploys.
 *
 *   berth-bench [--csv DIR] SCENARIO [options]
 *
 * Every scenario prints its results as JSON lines on stdout, one flat
 * object per result whose first member, "bench", names the scenario
 * (output.h).  `--csv DIR` (anywhere on the command line, for every
 * scenario) also appends each result to DIR/<bench>.csv; main() takes the
 * pair out of argv before the scenario parses its options, so that no
 * scenario needs to know about it.
 *
 *   berth-bench incore --hosts N --groups M --seed S [--policy P[,P...]]
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
 * only when --policy names it, so that the default run stays bounded.
 *
 *   berth-bench redis --hosts N --schedulers K [--groups M] [--batch B]
 *                     [--appendfsync everysec|always] [--redis URL] [--seed S]
 *
 * Measures commits through the Redis store: N hosts in a fresh cell, K
 * forked scheduler processes (each its own engine and store) committing
 * their shares of M placements with berth_store_place_batch().  Then, in
 * the same run and against the same server, two redis-benchmark runs: the
 * ceiling, plain HSETs pipelined 32 deep over K connections (what the
 * server writes at most, whatever a commit does), and a second figure, a
 * Lua script doing the Redis work of one commit (how fast that work alone
 * goes).  Each is bounded in time, deletes its keys afterwards, and leaves
 * its figure null when it fails: the result never holds a made-up number.
 * Without --redis it runs its own redis-server (unix socket, AOF with
 * appendfsync everysec, or always with --appendfsync always) in a
 * temporary directory and removes both at the end.
 *
 *   berth-bench api --endpoint URL ...
 *
 * Creates container groups through berthd's REST API (api.c).
 *
 *   berth-bench pool --endpoint URL ...
 *
 * Create latency through berthd without and with a standby pool (pool.c).
 *
 *   berth-bench quality ...      packing quality (quality.c, replay.c)
 *   berth-bench redeploy ...     updates of running groups (redeploy.c)
 *
 * It uses the public API only, and it is a measurement tool: it never
 * decides pass or fail on a timing.  jemalloc is linked into this program
 * (never into the library) and its statistics give the engine's memory.
 * It never touches a Redis it was not pointed at, and every wait on a
 * child process or a server is bounded.  bench/run-bench.sh runs the
 * standard set and draws the figures (bench/plot.gp).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <jemalloc/jemalloc.h>

#include "api.h"
#include "berth.h"
#include "output.h"
#include "pool.h"
#include "quality.h"
#include "redeploy.h"
#include "util.h"
#include "lib/redis-server.h"
#include "lib/spawn.h"

#define GB 1024u
#define KEY_LEN 24
#define COUNT_MAX 100000000ull     /* largest --hosts, --groups ... */
/* Above this many hosts the default policy set leaves firstfit out: its
 * O(hosts) scan per request would take hours for 20 requests per host. */
#define FIRSTFIT_HOSTS_MAX 20000

typedef struct options {
    size_t hosts;
    size_t groups;
    uint64_t seed;
    unsigned policies;              /* bit 1 << berth_policy_t; 0: default  */
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

static void usage(FILE *f)
{
    fputs("usage: berth-bench [--csv DIR] incore [--hosts N] [--groups M] [--seed S]\n"
          "                                      [--policy P[,P...]]\n"
          "       berth-bench [--csv DIR] redis [--hosts N] [--schedulers K] [--groups M]\n"
          "                                     [--batch B] [--appendfsync everysec|always]\n"
          "                                     [--redis URL] [--seed S]\n"
          "       berth-bench [--csv DIR] api --endpoint URL [--groups N] [--connections C] ...\n"
          "       berth-bench [--csv DIR] quality ...      (quality --help)\n"
          "       berth-bench [--csv DIR] redeploy ...     (redeploy --help)\n"
          "\n"
          "Every scenario prints one JSON line per result, a flat object whose first\n"
          "member, \"bench\", names the scenario.\n"
          "  --csv DIR    also append each result to DIR/<bench>.csv (DIR must exist;\n"
          "               a new file gets a header line); accepted anywhere on the\n"
          "               command line, by every scenario\n"
          "\n"
          "incore: places M container groups on N simulated hosts, in memory, with\n"
          "each policy (binpack, spread and the naive firstfit baseline) on the same\n"
          "deterministic input, one result per policy.\n"
          "  --hosts N    hosts in the cluster (default 10000): CPU-only Linux of\n"
          "               8-64 cores, K80/P100/V100 hosts with 4 or 8 GPUs, Windows\n"
          "               ltsc2019/ltsc2022 hosts (some with Hyper-V), 3 zones, a few\n"
          "               confidential and dedicated hosts\n"
          "  --groups M   placement requests (default 20 per host): mostly small\n"
          "               CPU-only Linux groups of 1-4 cores, some GPU, some Windows,\n"
          "               some pinned to a zone\n"
          "  --seed S     seed of the cluster, the workload and the engine (default 1)\n"
          "  --policy P   binpack, spread or firstfit, or several separated by commas\n"
          "               (default: all three; above 20000 hosts binpack and spread\n"
          "               only, as firstfit's linear scan would take hours)\n"
          "  --help       this text\n"
          "\n"
          "The loop places requests in order; once 85% of the cluster's CPU is\n"
          "allocated it releases a random placed group after every placement.\n"
          "Fields: placed, rejected (no host), released; placements_per_sec (place\n"
          "calls over the whole loop's monotonic time, releases included); p50_ns,\n"
          "p99_ns, p999_ns (a second run timing each place call with the monotonic\n"
          "clock); hosts_used and utilization at the end; index_bytes_per_host\n"
          "(heap bytes the engine holds per host once the hosts are loaded: host\n"
          "records, name table and index, from jemalloc's per-thread counters);\n"
          "speedup_vs_firstfit (placements_per_sec over firstfit's in the same run;\n"
          "null when firstfit did not run).\n"
          "\n"
          "redis: loads the N hosts (default 10000) into a fresh cell of a Redis\n"
          "store, forks K scheduler processes (default 1), each with its own engine\n"
          "and store, and has them commit their shares of M placements (default 5\n"
          "per host, same workload) with berth_store_place_batch in batches of B\n"
          "(default 256).  Then, against the same server, redis-benchmark measures\n"
          "the ceiling: 500000 HSETs of a 96-byte value into one hash (M fields at\n"
          "most) over K connections pipelined 32 deep, plain writes, the most the\n"
          "server takes whatever a commit does.  A second run calls, M times over K\n"
          "connections pipelined B deep, a Lua script doing one commit's Redis work\n"
          "(HGET and HSET of a msgpack host record, HSET, SADD, two XADD, INCR, keys\n"
          "in one hash slot).  Both delete their keys afterwards.  One result:\n"
          "redis (private or given), appendfsync (the server's AOF fsync policy;\n"
          "\"no AOF\", or null when a given server does not say), committed, rejected\n"
          "(no host), failed (other errors), commit_calls (FCALLs Redis ran, from\n"
          "INFO commandstats; above committed by the conflicts retried and the\n"
          "commits refused), seconds (from the start signal to the last scheduler's\n"
          "end), committed_per_sec; ceiling_per_sec (pipelined HSETs per second) and\n"
          "ratio (committed_per_sec over it); same_work_per_sec (the Lua script's\n"
          "calls per second) and same_work_ratio.  A figure redis-benchmark did not\n"
          "give (missing, failed, or still running after 600 s) is null, and so is\n"
          "its ratio.\n"
          "  --appendfsync P  everysec (default) or always: the private\n"
          "               redis-server's AOF fsync policy; ignored, with a note (on\n"
          "               stderr and in the redis member), when --redis is given\n"
          "  --redis URL  redis://HOST:PORT or unix:///PATH; without it, a private\n"
          "               redis-server (unix socket, AOF) in a temporary directory.\n"
          "               A given Redis keeps the cell bench-PID (the\n"
          "               berth-bench:{ceiling-PID}:* keys are deleted): use a\n"
          "               scratch one.\n"
          "\n"
          "api: creates groups through berthd's REST API (api --help).\n"
          "pool: create latency without and with a standby pool (pool --help).\n"
          "quality: packing quality on packing benchmarks and replayed workloads.\n"
          "redeploy: updates of running groups.\n"
          "\n"
          "bench/run-bench.sh OUTDIR runs the standard set and draws its figures.\n",
          f);
}

/* Takes the option at argv[*i] and its value (advancing *i past both), for
 * the scenarios' option loops, which all take "--name value" pairs.
 * Returns 0, 1 after printing the help for --help, or 2 after a message
 * when the value is missing. */
static int option_next(int argc, char **argv, int *i, const char **name, const char **value)
{
    const char *a = argv[*i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        usage(stdout);
        return 1;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "berth-bench: %s needs a value\n", a);
        return 2;
    }
    *name = a;
    *value = argv[++*i];
    return 0;
}

static int parse_args(int argc, char **argv, options_t *o)
{
    o->hosts = 10000;
    o->groups = 0;
    o->seed = 1;
    o->policies = 0;
    for (int i = 2; i < argc; i++) {
        const char *a, *v;
        int rc = option_next(argc, argv, &i, &a, &v);
        if (rc != 0)
            return rc;
        int bad = 0;
        if (strcmp(a, "--hosts") == 0) {
            bad = bench_parse_size(v, COUNT_MAX, &o->hosts);
        } else if (strcmp(a, "--groups") == 0) {
            bad = bench_parse_size(v, COUNT_MAX, &o->groups);
        } else if (strcmp(a, "--seed") == 0) {
            bad = bench_parse_seed(v, &o->seed);
        } else if (strcmp(a, "--policy") == 0) {
            bad = bench_parse_policies(v, &o->policies);
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
        h->zone = zones[bench_below(&s, 3)];
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
static void make_requests(workload_t *w, size_t m, uint64_t seed, const int *zone_ids)
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
    eo.expected_hosts = (uint32_t)o->hosts;    /* the cluster's size is known */
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

/* ---- redis: commits through the store ------------------------------------ */

#define REDIS_WAIT_MS 10000
#define SCHEDULER_WAIT_MS 600000
/* The bound on each redis-benchmark run. */
#define CEILING_WAIT_MS 600000
/* About the size of a group record without a document (codec.c). */
#define CEILING_RECORD_BYTES 96
/* The ceiling: this many HSETs, this many to a pipeline. */
#define CEILING_HSETS 500000
#define CEILING_PIPELINE 32

typedef struct redis_options {
    size_t hosts;
    size_t schedulers;
    size_t groups;
    size_t batch;
    uint64_t seed;
    const char *url;                /* NULL: a private redis-server         */
    const char *appendfsync;        /* the private server's: everysec, always */
    bool appendfsync_given;         /* --appendfsync was on the command line */
} redis_options_t;

/* Where Redis listens, as redis-cli and redis-benchmark take it. */
typedef struct endpoint {
    bool is_unix;
    char path[108];
    char host[256];
    char port[8];
} endpoint_t;

/* The private redis-server. */
typedef struct server {
    pid_t pid;
    char dir[64];
} server_t;

/* What one scheduler process reports through its pipe. */
typedef struct scheduler_report {
    uint64_t committed, rejected, failed;
    int open_failed;
} scheduler_report_t;

/* Parses redis://HOST:PORT or unix:///PATH into *ep.  Returns 0, or -1
 * when `url` is neither. */
static int parse_endpoint(const char *url, endpoint_t *ep)
{
    memset(ep, 0, sizeof *ep);
    if (strncmp(url, "unix://", 7) == 0) {
        ep->is_unix = true;
        return snprintf(ep->path, sizeof ep->path, "%s", url + 7) < (int)sizeof ep->path &&
                       ep->path[0] == '/' ? 0 : -1;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *hp = url + 8, *colon = strrchr(hp, ':');
    if (colon == NULL || colon == hp || (size_t)(colon - hp) >= sizeof ep->host)
        return -1;
    memcpy(ep->host, hp, (size_t)(colon - hp));
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    snprintf(ep->port, sizeof ep->port, "%ld", port);
    return 0;
}

/* A hiredis connection to the endpoint with a 5 s timeout, or NULL. */
static redisContext *endpoint_connect(const endpoint_t *ep)
{
    struct timeval tv = {5, 0};
    redisContext *c = ep->is_unix ? redisConnectUnixWithTimeout(ep->path, tv)
                                  : redisConnectWithTimeout(ep->host, atoi(ep->port), tv);
    if (c != NULL && c->err != 0) {
        redisFree(c);
        return NULL;
    }
    if (c != NULL)
        redisSetTimeout(c, tv);
    return c;
}

/* The text of a reply that is not an array (a nil's is NULL), and whether
 * it is an error. */
static const char *reply_text(const redisReply *r, size_t *len, bool *error)
{
    *error = r->type == REDIS_REPLY_ERROR;
    if (r->type == REDIS_REPLY_NIL) {
        *len = 0;
        return NULL;
    }
    *len = r->len;
    return r->str;
}

/* Sends one command and reads its reply, which must be a simple string, an
 * integer, a bulk string or a flat array of those; stores its text in *out
 * (free(); an array's elements joined by '\n', a nil element as nothing).
 * Returns 0, or -1 (I/O failure, a nil or nested reply, an error reply or
 * element: its text in *out when there is one). */
static int endpoint_command(const endpoint_t *ep, int argc, const char *const *argv, char **out)
{
    *out = NULL;
    redisContext *c = endpoint_connect(ep);
    if (c == NULL)
        return -1;
    redisReply *r = redisCommandArgv(c, argc, (const char **)argv, NULL);
    redisFree(c);
    if (r == NULL)
        return -1;
    bool is_array = r->type == REDIS_REPLY_ARRAY;
    size_t count = is_array ? r->elements : 1;
    /* First checked and sized, then copied. */
    size_t total = 0;
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        redisReply *e = is_array ? r->element[i] : r;
        if (e->type == REDIS_REPLY_ARRAY || (!is_array && e->type == REDIS_REPLY_NIL)) {
            freeReplyObject(r);
            return -1;
        }
        if (e->type == REDIS_REPLY_INTEGER) {
            char num[32];
            total += (size_t)snprintf(num, sizeof num, "%lld", e->integer) + 1;
        } else {
            total += (e->type == REDIS_REPLY_NIL ? 0 : e->len) + 1;
        }
    }
    char *text = malloc(total + 1);
    if (text == NULL) {
        freeReplyObject(r);
        return -1;
    }
    size_t w = 0;
    for (size_t i = 0; i < count; i++) {
        redisReply *e = is_array ? r->element[i] : r;
        if (i > 0)
            text[w++] = '\n';
        if (e->type == REDIS_REPLY_INTEGER) {
            w += (size_t)snprintf(text + w, total + 1 - w, "%lld", e->integer);
            continue;
        }
        bool error;
        size_t len;
        const char *body = reply_text(e, &len, &error);
        if (body != NULL)
            memcpy(text + w, body, len);
        w += len;
        if (error)
            rc = -1;
    }
    text[w] = '\0';
    freeReplyObject(r);
    *out = text;
    return rc;
}

/* Removes the private server's directory, and nothing that is not one
 * (a path under /tmp/berth-bench-).  Returns system()'s status, or -1. */
static int remove_dir(const char *dir)
{
    /* Only what this program put there: the socket, log, AOF directory. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return dir[0] != '\0' && strncmp(dir, "/tmp/berth-bench-", 17) == 0 ? system(cmd) : -1;
}

/* Waits (bounded) for a child; returns its exit status, or -1 when it died
 * of a signal or had to be killed after `wait_ms`. */
static int reap_child(pid_t pid, uint64_t wait_ms)
{
    int status = 0;
    int rc = berth__spawn_reap(pid, (int64_t)wait_ms, &status);
    if (rc < 0) {
        berth__spawn_stop(pid, SIGKILL, 0);
        return -1;
    }
    return rc == 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Stops the private redis-server (SIGTERM, then SIGKILL, each wait
 * bounded) and removes its directory; does nothing for a server_t that
 * holds neither. */
static void server_stop(server_t *sv)
{
    if (sv->pid > 0) {
        berth__spawn_stop(sv->pid, SIGTERM, REDIS_WAIT_MS);
        sv->pid = 0;
    }
    if (sv->dir[0] != '\0')
        remove_dir(sv->dir);
    sv->dir[0] = '\0';
}

/* Starts a private redis-server as a deployment would run it (AOF with
 * the given appendfsync policy, "everysec" or "always"; no RDB snapshots)
 * on a unix socket in a new temporary directory, and waits for PING.
 * Returns 0 with *ep set, or -1. */
static int server_start(server_t *sv, endpoint_t *ep, const char *appendfsync)
{
    memset(sv, 0, sizeof *sv);
    snprintf(sv->dir, sizeof sv->dir, "/tmp/berth-bench-XXXXXX");
    if (mkdtemp(sv->dir) == NULL) {
        fprintf(stderr, "berth-bench: mkdtemp: %s\n", strerror(errno));
        sv->dir[0] = '\0';
        return -1;
    }
    memset(ep, 0, sizeof *ep);
    ep->is_unix = true;
    snprintf(ep->path, sizeof ep->path, "%s/redis.sock", sv->dir);
    /* Never outlive the benchmark, however it ends. */
    berth__redis_server_options_t opts = {
        .dir = sv->dir,
        .socket_path = ep->path,
        .appendfsync = appendfsync,
        .death_signal = SIGKILL,
    };
    char err[256];
    pid_t pid = berth__redis_server_start(&opts, REDIS_WAIT_MS, err, sizeof err);
    if (pid < 0) {
        fprintf(stderr, "berth-bench: %s\n", err);
        server_stop(sv);
        return -1;
    }
    sv->pid = pid;
    return 0;
}

/* FCALLs Redis has run, from INFO commandstats; 0 when it does not say. */
static uint64_t fcall_count(const endpoint_t *ep)
{
    char *info = NULL;
    const char *argv[] = {"INFO", "commandstats"};
    uint64_t calls = 0;
    if (endpoint_command(ep, 2, argv, &info) == 0 && info != NULL) {
        const char *line = strstr(info, "cmdstat_fcall:calls=");
        if (line != NULL)
            calls = strtoull(line + strlen("cmdstat_fcall:calls="), NULL, 10);
    }
    free(info);
    return calls;
}

/* The AOF fsync policy a server runs with, into out[cap]: its appendfsync
 * ("everysec", "always", "no"), or "no AOF" when AOF is off.  Returns 0,
 * or -1 when the server does not say (CONFIG may be disabled). */
static int server_appendfsync(const endpoint_t *ep, char *out, size_t cap)
{
    char *info = NULL, *conf = NULL;
    const char *persistence[] = {"INFO", "persistence"};
    const char *get[] = {"CONFIG", "GET", "appendfsync"};
    int rc = -1;
    if (endpoint_command(ep, 2, persistence, &info) == 0 && info != NULL &&
        strstr(info, "aof_enabled:0") != NULL) {
        snprintf(out, cap, "no AOF");
        rc = 0;
    } else if (endpoint_command(ep, 3, get, &conf) == 0 && conf != NULL &&
               strncmp(conf, "appendfsync\n", 12) == 0 && conf[12] != '\0') {
        snprintf(out, cap, "%s", conf + 12);
        rc = 0;
    }
    free(info);
    free(conf);
    return rc;
}

/* Parses the redis scenario's options (from argv[2]) into *o, with their
 * defaults.  Returns 0, 1 after printing the help, or 2 after a message. */
static int parse_redis_args(int argc, char **argv, redis_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->hosts = 10000;
    o->schedulers = 1;
    o->batch = 256;
    o->seed = 1;
    o->appendfsync = "everysec";
    for (int i = 2; i < argc; i++) {
        const char *a, *v;
        int rc = option_next(argc, argv, &i, &a, &v);
        if (rc != 0)
            return rc;
        int bad = 0;
        if (strcmp(a, "--hosts") == 0) {
            bad = bench_parse_size(v, COUNT_MAX, &o->hosts);
        } else if (strcmp(a, "--schedulers") == 0) {
            bad = bench_parse_size(v, COUNT_MAX, &o->schedulers) || o->schedulers > 64;
        } else if (strcmp(a, "--groups") == 0) {
            bad = bench_parse_size(v, COUNT_MAX, &o->groups);
        } else if (strcmp(a, "--batch") == 0) {
            bad = bench_parse_size(v, COUNT_MAX, &o->batch) || o->batch > 100000;
        } else if (strcmp(a, "--seed") == 0) {
            bad = bench_parse_seed(v, &o->seed);
        } else if (strcmp(a, "--redis") == 0) {
            endpoint_t ep;
            o->url = v;
            bad = parse_endpoint(v, &ep);
        } else if (strcmp(a, "--appendfsync") == 0) {
            o->appendfsync = v;
            o->appendfsync_given = true;
            bad = strcmp(v, "everysec") != 0 && strcmp(v, "always") != 0;
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
        o->groups = o->hosts * 5;
    return 0;
}

/* An engine whose zone ids match the workload's (zones registered in the
 * order make_requests() assumes), opened as a replica of the cell. */
static int open_replica(const char *url, const char *cell, uint64_t seed,
                        berth_engine_t **engine, berth_store_t **store)
{
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    eo.seed = seed;
    berth_error_t err;
    *engine = NULL;
    *store = NULL;
    if (berth_engine_new(&eo, engine, &err) != 0)
        return -1;
    for (size_t z = 0; z < 3; z++)
        berth_engine_zone_id(*engine, zones[z]);
    berth_store_options_t so;
    berth_store_options_init(&so);
    so.url = url;
    so.cell = cell;
    so.timeout_ms = 30000;
    int rc = berth_store_open(&so, *engine, store, &err);
    if (rc != 0) {
        fprintf(stderr, "berth-bench: opening cell %s at %s: %s\n", cell, url, err.message);
        berth_engine_free(*engine);
        *engine = NULL;
        return -1;
    }
    return 0;
}

/* One scheduler process: opens its replica, says so on `ready`, waits for
 * `go` to close, commits requests k, k+K, k+2K ... in batches, and writes
 * its report on `report`. */
static void scheduler_main(const redis_options_t *o, const workload_t *w, const char *url,
                           const char *cell, size_t k, int ready, int go, int report)
    __attribute__((noreturn));
static void scheduler_main(const redis_options_t *o, const workload_t *w, const char *url,
                           const char *cell, size_t k, int ready, int go, int report)
{
    alarm(SCHEDULER_WAIT_MS / 1000);
    scheduler_report_t rep = {0};
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    if (open_replica(url, cell, o->seed + k, &engine, &store) != 0)
        rep.open_failed = 1;
    char byte = 'r';
    if (write(ready, &byte, 1) != 1)
        _exit(1);
    while (read(go, &byte, 1) < 0 && errno == EINTR) {
    }
    size_t mine = rep.open_failed ? 0 : (o->groups - k + o->schedulers - 1) / o->schedulers;
    const char **keys = malloc(o->batch * sizeof *keys);
    berth_request_t *reqs = malloc(o->batch * sizeof *reqs);
    int *results = malloc(o->batch * sizeof *results);
    if (keys == NULL || reqs == NULL || results == NULL)
        _exit(1);
    for (size_t done = 0; done < mine;) {
        size_t n = mine - done < o->batch ? mine - done : o->batch;
        for (size_t j = 0; j < n; j++) {
            size_t i = k + (done + j) * o->schedulers;
            keys[j] = w->keys[i];
            reqs[j] = w->requests[i];
        }
        berth_error_t err;
        if (berth_store_place_batch(store, n, keys, reqs, NULL, results, &err) != 0) {
            fprintf(stderr, "berth-bench: scheduler %zu: %s\n", k, err.message);
            rep.failed += n;
        } else {
            for (size_t j = 0; j < n; j++) {
                if (results[j] == 0)
                    rep.committed++;
                else if (results[j] == BERTH_ENOSPC)
                    rep.rejected++;
                else
                    rep.failed++;
            }
        }
        done += n;
    }
    berth_store_close(store);
    berth_engine_free(engine);
    if (write(report, &rep, sizeof rep) != (ssize_t)sizeof rep)
        _exit(1);
    _exit(0);
}

/* Runs redis-benchmark against `ep` with `args` (NULL-terminated, at most
 * 32, following the connection's own), collecting its standard output
 * within CEILING_WAIT_MS (then it is killed), and returns the requests per
 * second of its last test.  Returns a negative value, after a message,
 * when it could not run (not installed), failed or did not end in time:
 * never a figure it did not print. */
static double benchmark_run(const endpoint_t *ep, const char *const *args)
{
    const char *argv[40];
    int a = 0;
    argv[a++] = "redis-benchmark";
    if (ep->is_unix) {
        argv[a++] = "-s";
        argv[a++] = ep->path;
    } else {
        argv[a++] = "-h";
        argv[a++] = ep->host;
        argv[a++] = "-p";
        argv[a++] = ep->port;
    }
    for (size_t i = 0; args[i] != NULL && a < 39; i++)
        argv[a++] = args[i];
    argv[a] = NULL;

    /* Its output, progress lines included, within the bound. */
    size_t cap = 1 << 20;
    char *text = malloc(cap);
    if (text == NULL) {
        fputs("berth-bench: redis-benchmark: out of memory\n", stderr);
        return -1;
    }
    fflush(NULL);
    berth__spawn_options_t so = {.capture = BERTH__SPAWN_CAPTURE_STDOUT,
                                 .death_signal = SIGKILL};
    berth__spawn_result_t res;
    int rc = berth__spawn_run((char *const *)argv, &so, CEILING_WAIT_MS, text, cap, &res);
    bool ended = rc == 0;
    int status = ended ? res.exit_status : -1;
    if (!ended && !res.timed_out) {
        fprintf(stderr, "berth-bench: redis-benchmark: %s\n", res.message);
        free(text);
        return -1;
    }
    double rps = -1;
    /* "HSET ...: 123456.78 requests per second, p50=..." */
    char *at = NULL;
    for (char *p = strstr(text, " requests per second"); p != NULL;
         p = strstr(p + 1, " requests per second"))
        at = p;
    if (at != NULL && ended && status == 0) {
        char *start = at;
        while (start > text && (start[-1] == '.' || (start[-1] >= '0' && start[-1] <= '9')))
            start--;
        rps = start < at ? strtod(start, NULL) : -1;
    }
    if (rps <= 0) {
        rps = -1;
        fprintf(stderr, "berth-bench: redis-benchmark %s (status %d): %.300s\n",
                ended ? "failed" : "did not end in time", status, text);
    }
    free(text);
    return rps;
}

/* The ceiling: CEILING_HSETS HSETs of a CEILING_RECORD_BYTES value into the
 * hash <prefix>hset (fields f-<12 digits> below M, drawn at random) over K
 * connections, CEILING_PIPELINE to a pipeline: plain writes, the most the
 * server takes.  Returns HSETs per second, or a negative value
 * (benchmark_run()). */
static double hset_ceiling(const redis_options_t *o, const endpoint_t *ep, const char *prefix)
{
    char n[32], pipeline[32], clients[32], range[32], key[96];
    snprintf(n, sizeof n, "%d", CEILING_HSETS);
    snprintf(pipeline, sizeof pipeline, "%d", CEILING_PIPELINE);
    snprintf(clients, sizeof clients, "%zu", o->schedulers);
    snprintf(range, sizeof range, "%zu", o->groups);
    snprintf(key, sizeof key, "%shset", prefix);
    char record[CEILING_RECORD_BYTES + 1];
    memset(record, 'r', CEILING_RECORD_BYTES);
    record[CEILING_RECORD_BYTES] = '\0';
    const char *args[] = {"-q", "-n", n, "-P", pipeline, "-c", clients, "-r", range,
                          "HSET", key, "f-__rand_int__", record, NULL};
    return benchmark_run(ep, args);
}

/* The Lua script of one commit's Redis work, as same_work_rate() runs it. */
static const char same_work_script[] =
    "local raw = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local h = raw and cmsgpack.unpack(raw) or\n"
    "  {v = 1, name = ARGV[1], cores = 64, mem = 262144, os = 1, state = 0,\n"
    "   used_mc = 0, used_mem = 0, used_gpu = 0, groups = 0, epoch = 1}\n"
    "if h.used_mc + 1000 > h.cores * 1000 * 1000000 then return {0} end\n"
    "h.used_mc, h.used_mem, h.groups = h.used_mc + 1000, h.used_mem + 1024, h.groups + 1\n"
    "redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack(h))\n"
    "redis.call('HGET', KEYS[2], ARGV[2])\n"
    "redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])\n"
    "redis.call('SADD', KEYS[3], ARGV[2])\n"
    "redis.call('XADD', KEYS[4], '*', 'op', 'place', 'key', ARGV[2], 'gen', 1)\n"
    "local seq = redis.call('INCR', KEYS[6])\n"
    "redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'seq', seq, 'op', 'place',\n"
    "           'name', ARGV[2], 'rec', ARGV[3])\n"
    "return {1, seq}\n";

/* The second figure: M calls of same_work_script over K connections, B to
 * a pipeline, on keys under `prefix` (hosts, groups, log, seq, and hg:N and
 * as:N per host, N below the host count, drawn at random).  Returns calls
 * per second, or a negative value (benchmark_run(); SCRIPT LOAD failed). */
static double same_work_rate(const redis_options_t *o, const endpoint_t *ep, const char *prefix)
{
    char *sha = NULL;
    const char *load[] = {"SCRIPT", "LOAD", same_work_script};
    if (endpoint_command(ep, 3, load, &sha) != 0 || sha == NULL) {
        fprintf(stderr, "berth-bench: SCRIPT LOAD failed: %s\n", sha ? sha : "no reply");
        free(sha);
        return -1;
    }
    char n[32], pipeline[32], clients[32], range[32];
    snprintf(n, sizeof n, "%zu", o->groups);
    snprintf(pipeline, sizeof pipeline, "%zu", o->batch);
    snprintf(clients, sizeof clients, "%zu", o->schedulers);
    snprintf(range, sizeof range, "%zu", o->hosts);
    char k_hosts[96], k_groups[96], k_hg[96], k_assign[96], k_log[96], k_seq[96];
    snprintf(k_hosts, sizeof k_hosts, "%shosts", prefix);
    snprintf(k_groups, sizeof k_groups, "%sgroups", prefix);
    snprintf(k_hg, sizeof k_hg, "%shg:__rand_int__", prefix);
    snprintf(k_assign, sizeof k_assign, "%sas:__rand_int__", prefix);
    snprintf(k_log, sizeof k_log, "%slog", prefix);
    snprintf(k_seq, sizeof k_seq, "%sseq", prefix);
    char record[CEILING_RECORD_BYTES + 1];
    memset(record, 'r', CEILING_RECORD_BYTES);
    record[CEILING_RECORD_BYTES] = '\0';
    const char *args[] = {"-q", "-n", n, "-P", pipeline, "-c", clients, "-r", range,
                          "EVALSHA", sha, "6", k_hosts, k_groups, k_hg, k_assign, k_log, k_seq,
                          "h-__rand_int__", "g-__rand_int__", record, NULL};
    double rps = benchmark_run(ep, args);
    free(sha);
    return rps;
}

/* Deletes what hset_ceiling() and same_work_rate() can have written under
 * `prefix`, naming each key (redis-benchmark's __rand_int__ is 12 digits),
 * so that no other key is touched: the fixed ones, and hg:N and as:N for
 * every N below the host count.  Returns 0, or -1 after a message. */
static int ceiling_cleanup(const redis_options_t *o, const endpoint_t *ep, const char *prefix)
{
    static const char script[] =
        "local n = 0\n"
        "for _, k in ipairs(KEYS) do n = n + redis.call('UNLINK', k) end\n"
        "for i = 0, tonumber(ARGV[1]) - 1 do\n"
        "  for j = 2, #ARGV do\n"
        "    n = n + redis.call('UNLINK', string.format('%s%012d', ARGV[j], i))\n"
        "  end\n"
        "end\n"
        "return n\n";
    char keys[5][96], range[32], hg[96], as[96];
    static const char *const fixed[] = {"hset", "hosts", "groups", "log", "seq"};
    for (size_t i = 0; i < 5; i++)
        snprintf(keys[i], sizeof keys[i], "%s%s", prefix, fixed[i]);
    snprintf(range, sizeof range, "%zu", o->hosts);
    snprintf(hg, sizeof hg, "%shg:", prefix);
    snprintf(as, sizeof as, "%sas:", prefix);
    const char *argv[] = {"EVAL", script, "5", keys[0], keys[1], keys[2], keys[3], keys[4],
                          range, hg, as};
    char *reply = NULL;
    int rc = endpoint_command(ep, 11, argv, &reply);
    if (rc != 0)
        fprintf(stderr, "berth-bench: deleting the %s* keys failed: %s\n", prefix,
                reply != NULL ? reply : "no reply");
    free(reply);
    return rc;
}

/* The redis scenario (see the top of this file): the commits, then the
 * ceiling and the same-work figure against the same server, then one
 * result.  Returns the exit status: 0, 1 when the run failed (a figure
 * redis-benchmark did not give is null, not a failure), 2 on a usage
 * error. */
static int redis_main(int argc, char **argv)
{
    redis_options_t o;
    int rc = parse_redis_args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;

    server_t sv = {0};
    endpoint_t ep;
    char url[160], cell[32];
    if (o.url != NULL) {
        parse_endpoint(o.url, &ep);
        snprintf(url, sizeof url, "%s", o.url);
        /* A shared Redis may hold other cells: this run gets its own. */
        snprintf(cell, sizeof cell, "bench-%d", (int)getpid());
    } else {
        if (server_start(&sv, &ep, o.appendfsync) != 0)
            return 1;
        snprintf(url, sizeof url, "unix://%s", ep.path);
        snprintf(cell, sizeof cell, "bench");
    }
    /* The policy as the server says it (for the private one, what it was
     * started with), so that the result never names one it did not run. */
    char fsync_policy[32];
    bool fsync_known = server_appendfsync(&ep, fsync_policy, sizeof fsync_policy) == 0;
    if (o.url != NULL && o.appendfsync_given)
        fprintf(stderr, "berth-bench: --appendfsync %s ignored: --redis is given, whose "
                "server keeps its own policy (%s)\n", o.appendfsync,
                fsync_known ? fsync_policy : "unknown");

    workload_t w;
    w.hosts = calloc(o.hosts, sizeof *w.hosts);
    w.host_names = calloc(o.hosts, sizeof *w.host_names);
    w.requests = calloc(o.groups, sizeof *w.requests);
    w.keys = calloc(o.groups, sizeof *w.keys);
    if (!w.hosts || !w.host_names || !w.requests || !w.keys) {
        fputs("berth-bench: out of memory\n", stderr);
        server_stop(&sv);
        return 1;
    }
    make_hosts(&w, o.hosts, o.seed);
    int zone_ids[3] = {0, 1, 2};
    make_requests(&w, o.groups, o.seed, zone_ids);

    /* The cell: every host put through the store, as an operator would. */
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    rc = 1;
    pid_t pids[64] = {0};
    int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}; /* ready, go, report */
    if (open_replica(url, cell, o.seed, &engine, &store) != 0)
        goto done;
    for (size_t i = 0; i < o.hosts; i++) {
        berth_error_t err;
        if (berth_store_host_put(store, &w.hosts[i], &err) != 0) {
            fprintf(stderr, "berth-bench: host %s: %s\n", w.hosts[i].name, err.message);
            goto done;
        }
    }
    berth_store_close(store);
    store = NULL;
    berth_engine_free(engine);
    engine = NULL;

    for (int p = 0; p < 3; p++) {
        if (pipe(fds[p]) != 0)
            goto done;
    }
    uint64_t calls_before = fcall_count(&ep);
    fflush(NULL);
    for (size_t k = 0; k < o.schedulers; k++) {
        pids[k] = fork();
        if (pids[k] < 0)
            goto done;
        if (pids[k] == 0) {
            close(fds[0][0]);
            close(fds[1][1]);
            close(fds[2][0]);
            scheduler_main(&o, &w, url, cell, k, fds[0][1], fds[1][0], fds[2][1]);
        }
    }
    close(fds[0][1]);
    fds[0][1] = -1;
    close(fds[1][0]);
    fds[1][0] = -1;
    close(fds[2][1]);
    fds[2][1] = -1;
    /* Every scheduler has loaded its replica before the clock starts. */
    for (size_t k = 0; k < o.schedulers; k++) {
        struct pollfd pfd = { fds[0][0], POLLIN, 0 };
        char byte;
        if (poll(&pfd, 1, SCHEDULER_WAIT_MS) <= 0 || read(fds[0][0], &byte, 1) != 1) {
            fputs("berth-bench: a scheduler did not get ready\n", stderr);
            goto done;
        }
    }
    uint64_t t0 = bench_now_ns();
    close(fds[1][1]);
    fds[1][1] = -1;
    scheduler_report_t total = {0};
    size_t reports = 0;
    for (size_t k = 0; k < o.schedulers; k++) {
        scheduler_report_t rep;
        struct pollfd pfd = { fds[2][0], POLLIN, 0 };
        if (poll(&pfd, 1, SCHEDULER_WAIT_MS) <= 0 ||
            read(fds[2][0], &rep, sizeof rep) != (ssize_t)sizeof rep)
            break;
        total.committed += rep.committed;
        total.rejected += rep.rejected;
        total.failed += rep.failed;
        total.open_failed += rep.open_failed;
        reports++;
    }
    uint64_t t1 = bench_now_ns();
    for (size_t k = 0; k < o.schedulers; k++) {
        if (reap_child(pids[k], SCHEDULER_WAIT_MS) != 0)
            fprintf(stderr, "berth-bench: scheduler %zu failed\n", k);
        pids[k] = 0;
    }
    if (reports != o.schedulers || total.open_failed) {
        fputs("berth-bench: not every scheduler reported\n", stderr);
        goto done;
    }
    uint64_t calls = fcall_count(&ep) - calls_before;
    double seconds = (double)(t1 - t0) / 1e9;
    double per_sec = (double)total.committed / seconds;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "berth-bench:{ceiling-%d}:", (int)getpid());
    double ceiling = hset_ceiling(&o, &ep, prefix);
    double same_work = same_work_rate(&o, &ep, prefix);
    ceiling_cleanup(&o, &ep, prefix);
    json_t *row = json_object();
    json_object_set_new(row, "bench", json_string("redis"));
    json_object_set_new(row, "hosts", json_integer((json_int_t)o.hosts));
    json_object_set_new(row, "schedulers", json_integer((json_int_t)o.schedulers));
    json_object_set_new(row, "groups", json_integer((json_int_t)o.groups));
    json_object_set_new(row, "batch", json_integer((json_int_t)o.batch));
    json_object_set_new(row, "seed", json_integer((json_int_t)o.seed));
    json_object_set_new(row, "redis",
                        json_string(o.url == NULL ? "private unix socket, AOF"
                                    : o.appendfsync_given ? "given; --appendfsync ignored"
                                    : "given"));
    json_object_set_new(row, "appendfsync", fsync_known ? json_string(fsync_policy)
                                                        : json_null());
    json_object_set_new(row, "committed", json_integer((json_int_t)total.committed));
    json_object_set_new(row, "rejected", json_integer((json_int_t)total.rejected));
    json_object_set_new(row, "failed", json_integer((json_int_t)total.failed));
    json_object_set_new(row, "commit_calls", json_integer((json_int_t)calls));
    json_object_set_new(row, "seconds", json_real(bench_rounded(seconds, 3)));
    json_object_set_new(row, "committed_per_sec", json_integer(llround(per_sec)));
    json_object_set_new(row, "ceiling_per_sec",
                        ceiling > 0 ? json_integer(llround(ceiling)) : json_null());
    json_object_set_new(row, "ratio",
                        ceiling > 0 ? json_real(bench_rounded(per_sec / ceiling, 3)) : json_null());
    json_object_set_new(row, "same_work_per_sec",
                        same_work > 0 ? json_integer(llround(same_work)) : json_null());
    json_object_set_new(row, "same_work_ratio",
                        same_work > 0 ? json_real(bench_rounded(per_sec / same_work, 3))
                                      : json_null());
    bench_emit(row);
    rc = 0;

done:
    for (int p = 0; p < 3; p++)
        for (int e = 0; e < 2; e++)
            if (fds[p][e] >= 0)
                close(fds[p][e]);
    for (size_t k = 0; k < o.schedulers; k++) {
        if (pids[k] > 0) {
            /* Only a failed run gets here with schedulers still alive. */
            kill(pids[k], SIGKILL);
            reap_child(pids[k], SCHEDULER_WAIT_MS);
        }
    }
    berth_store_close(store);
    berth_engine_free(engine);
    server_stop(&sv);
    free(w.hosts);
    free(w.host_names);
    free(w.requests);
    free(w.keys);
    return rc;
}

/* Takes every "--csv DIR" pair out of argv (keeping the rest in order)
 * and hands DIR to output.c, so that each scenario parses only its own
 * options.  Returns 0, or 2 after a message when DIR is missing or is not
 * a directory. */
static int take_csv_option(int *argc, char **argv)
{
    const char *dir = NULL;
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--csv") != 0) {
            argv[kept++] = argv[i];
            continue;
        }
        if (i + 1 >= *argc) {
            fputs("berth-bench: --csv needs a directory\n", stderr);
            return 2;
        }
        dir = argv[++i];
    }
    argv[kept] = NULL;
    *argc = kept;
    if (dir != NULL) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "berth-bench: --csv %s: not a directory\n", dir);
            return 2;
        }
        bench_output_csv_dir(dir);
    }
    return 0;
}

static int incore_main(int argc, char **argv)
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

int main(int argc, char **argv)
{
    int rc = take_csv_option(&argc, argv);
    if (rc != 0)
        return rc;
    const char *scenario = argc >= 2 ? argv[1] : NULL;
    if (scenario == NULL || strcmp(scenario, "--help") == 0 || strcmp(scenario, "-h") == 0) {
        usage(scenario == NULL ? stderr : stdout);
        return scenario == NULL ? 2 : 0;
    }
    if (strcmp(scenario, "incore") == 0)
        return incore_main(argc, argv);
    if (strcmp(scenario, "redis") == 0)
        return redis_main(argc, argv);
    if (strcmp(scenario, "api") == 0)
        return bench_api_main(argc, argv);
    if (strcmp(scenario, "pool") == 0)
        return bench_pool_main(argc, argv);
    if (strcmp(scenario, "quality") == 0)
        return bench_quality_main(argc, argv);
    if (strcmp(scenario, "redeploy") == 0)
        return bench_redeploy_main(argc, argv);
    fprintf(stderr, "berth-bench: unknown scenario '%s' (incore, redis, api, quality or "
            "redeploy; try --help)\n", scenario);
    return 2;
}
