/*
 * options.c: berth-bench's usage text and the option reading its
 * scenarios share (options.h), over getopt_long().  It only reads argv
 * and prints: it never runs a scenario.
 */
#include <stdio.h>
#include <string.h>

#include "options.h"

/* See options.h. */
void bench_usage(FILE *f)
{
    fputs("usage: berth-bench [--csv DIR] incore [--hosts N] [--groups M] [--seed S]\n"
          "                                      [--policy P[,P...]] [--vector-score]\n"
          "       berth-bench [--csv DIR] redis [--hosts N] [--schedulers K] [--groups M]\n"
          "                                     [--batch B] [--appendfsync everysec|always]\n"
          "                                     [--redis URL] [--seed S]\n"
          "       berth-bench [--csv DIR] api --endpoint URL [--groups N] [--connections C] ...\n"
          "       berth-bench [--csv DIR] quality ...      (quality --help)\n"
          "       berth-bench [--csv DIR] redeploy ...     (redeploy --help)\n"
          "       berth-bench [--csv DIR] sandbox ...      (sandbox --help)\n"
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
          "  --vector-score  binpack with the engine option vector_score\n"
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

/* See options.h. */
int bench_option_next(int argc, char **argv, const char *shortopts,
                      const struct option *longopts, bench_option_t *opt)
{
    /* "-": stray arguments come back in order, as code 1; ":": a missing
     * value is ':', not '?'. */
    char spec[16];
    snprintf(spec, sizeof spec, "-:%s", shortopts);
    if (optind < 2)
        optind = 2;
    opterr = 0;
    int at = optind, index = -1;
    int c = getopt_long(argc, argv, spec, longopts, &index);
    opt->code = c;
    opt->value = optarg;
    opt->name = NULL;
    if (c == -1 && optind < argc) {
        /* What follows "--": the scenarios take no arguments. */
        at = optind;
        c = '?';
    }
    if (c == -1)
        return -1;
    if (c == 1 || c == '?') {
        opt->name = argv[at];
        opt->value = at + 1 < argc ? argv[at + 1] : NULL;
        opt->code = opt->value == NULL ? ':' : '?';
        optind = argc;
        return opt->code;
    }
    if (c == ':') {
        opt->name = argv[at];
        return c;
    }
    if (index >= 0)
        snprintf(opt->spelled, sizeof opt->spelled, "--%s", longopts[index].name);
    else
        snprintf(opt->spelled, sizeof opt->spelled, "-%c", c);
    opt->name = opt->spelled;
    return c;
}

/* See options.h. */
int bench_option_common(const bench_option_t *opt)
{
    switch (opt->code) {
    case 'h':
        bench_usage(stdout);
        return 1;
    case ':':
        fprintf(stderr, "berth-bench: %s needs a value\n", opt->name);
        return 2;
    case '?':
        fprintf(stderr, "berth-bench: unknown option %s (try --help)\n", opt->name);
        return 2;
    default:
        return 0;
    }
}

/* See options.h. */
bool bench_endpoint_option(int code, const char *value, bench_endpoint_t *e)
{
    switch (code) {
    case BENCH_OPT_ENDPOINT:
        e->endpoint = value;
        return true;
    case BENCH_OPT_TOKEN:
        e->token = value;
        return true;
    case BENCH_OPT_SUBSCRIPTION:
        e->subscription = value;
        return true;
    case BENCH_OPT_RESOURCE_GROUP:
        e->resource_group = value;
        return true;
    case BENCH_OPT_CACERT:
        e->cacert = value;
        return true;
    case BENCH_OPT_INSECURE:
        e->insecure = true;
        return true;
    default:
        return false;
    }
}
