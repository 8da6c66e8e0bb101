/*
 * redis.c: berth-bench's `redis` scenario: commits through the Redis store.
 *
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
 *
 * It never touches a Redis it was not pointed at, and every wait on a
 * child process or a server is bounded (endpoint.c holds the connection
 * and the private server).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "berth.h"
#include "endpoint.h"
#include "options.h"
#include "output.h"
#include "redis.h"
#include "schedulers.h"
#include "util.h"
#include "workload.h"
#include "lib/spawn.h"

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

/* Parses the redis scenario's options (from argv[2]) into *o, with their
 * defaults.  Returns 0, 1 after printing the help, or 2 after a message. */
static int parse_redis_args(int argc, char **argv, redis_options_t *o)
{
    enum { OPT_HOSTS = 256, OPT_SCHEDULERS, OPT_GROUPS, OPT_BATCH, OPT_SEED, OPT_REDIS,
           OPT_APPENDFSYNC };
    static const struct option longopts[] = {
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"schedulers", required_argument, NULL, OPT_SCHEDULERS},
        {"groups", required_argument, NULL, OPT_GROUPS},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"seed", required_argument, NULL, OPT_SEED},
        {"redis", required_argument, NULL, OPT_REDIS},
        {"appendfsync", required_argument, NULL, OPT_APPENDFSYNC},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->hosts = 10000;
    o->schedulers = 1;
    o->batch = 256;
    o->seed = 1;
    o->appendfsync = "everysec";
    bench_option_t opt;
    while (bench_option_next(argc, argv, "h", longopts, &opt) != -1) {
        int rc = bench_option_common(&opt);
        if (rc != 0)
            return rc;
        const char *v = opt.value;
        int bad = 0;
        switch (opt.code) {
        case OPT_HOSTS:
            bad = bench_parse_size(v, COUNT_MAX, &o->hosts);
            break;
        case OPT_SCHEDULERS:
            bad = bench_parse_size(v, COUNT_MAX, &o->schedulers) || o->schedulers > 64;
            break;
        case OPT_GROUPS:
            bad = bench_parse_size(v, COUNT_MAX, &o->groups);
            break;
        case OPT_BATCH:
            bad = bench_parse_size(v, COUNT_MAX, &o->batch) || o->batch > 100000;
            break;
        case OPT_SEED:
            bad = bench_parse_seed(v, &o->seed);
            break;
        case OPT_REDIS: {
            endpoint_t ep;
            o->url = v;
            bad = bench_endpoint_parse(v, &ep);
            break;
        }
        default:
            o->appendfsync = v;
            o->appendfsync_given = true;
            bad = strcmp(v, "everysec") != 0 && strcmp(v, "always") != 0;
            break;
        }
        if (bad) {
            fprintf(stderr, "berth-bench: bad value '%s' for %s\n", v, opt.name);
            return 2;
        }
    }
    if (o->groups == 0)
        o->groups = o->hosts * 5;
    return 0;
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
    if (bench_endpoint_command(ep, 3, load, &sha) != 0 || sha == NULL) {
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
    int rc = bench_endpoint_command(ep, 11, argv, &reply);
    if (rc != 0)
        fprintf(stderr, "berth-bench: deleting the %s* keys failed: %s\n", prefix,
                reply != NULL ? reply : "no reply");
    free(reply);
    return rc;
}

/* See redis.h.  The redis scenario (see the top of this file): the
 * commits, then the ceiling and the same-work figure against the same
 * server, then one result.  Returns the exit status: 0, 1 when the run failed (a figure
 * redis-benchmark did not give is null, not a failure), 2 on a usage
 * error. */
int bench_redis_main(int argc, char **argv)
{
    redis_options_t o;
    int rc = parse_redis_args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;

    server_t sv = {0};
    endpoint_t ep;
    char url[160], cell[32];
    if (o.url != NULL) {
        bench_endpoint_parse(o.url, &ep);
        snprintf(url, sizeof url, "%s", o.url);
        /* A shared Redis may hold other cells: this run gets its own. */
        snprintf(cell, sizeof cell, "bench-%d", (int)getpid());
    } else {
        if (bench_server_start(&sv, &ep, o.appendfsync) != 0)
            return 1;
        snprintf(url, sizeof url, "unix://%s", ep.path);
        snprintf(cell, sizeof cell, "bench");
    }
    /* The policy as the server says it (for the private one, what it was
     * started with), so that the result never names one it did not run. */
    char fsync_policy[32];
    bool fsync_known = bench_endpoint_appendfsync(&ep, fsync_policy, sizeof fsync_policy) == 0;
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
        bench_server_stop(&sv);
        return 1;
    }
    bench_workload_hosts_make(&w, o.hosts, o.seed);
    int zone_ids[3] = {0, 1, 2};
    bench_workload_requests_make(&w, o.groups, o.seed, zone_ids);

    /* The cell: every host put through the store, as an operator would. */
    rc = 1;
    if (bench_cell_hosts_put(url, cell, o.seed, &w, o.hosts) != 0)
        goto done;
    scheduler_share_t shares[64];
    for (size_t k = 0; k < o.schedulers; k++)
        shares[k] = (scheduler_share_t){
            .url = url, .cell = cell, .seed = o.seed + k, .w = &w, .first = k,
            .stride = o.schedulers, .count = (o.groups - k + o.schedulers - 1) / o.schedulers,
            .batch = o.batch,
        };
    scheduler_report_t reports[64];
    uint64_t ns;
    uint64_t calls_before = bench_endpoint_fcalls(&ep);
    if (bench_schedulers_run(shares, o.schedulers, reports, &ns) != 0)
        goto done;
    scheduler_report_t total = {0};
    for (size_t k = 0; k < o.schedulers; k++) {
        total.committed += reports[k].committed;
        total.rejected += reports[k].rejected;
        total.failed += reports[k].failed;
    }
    uint64_t calls = bench_endpoint_fcalls(&ep) - calls_before;
    double seconds = (double)ns / 1e9;
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
    bench_server_stop(&sv);
    free(w.hosts);
    free(w.host_names);
    free(w.requests);
    free(w.keys);
    return rc;
}
