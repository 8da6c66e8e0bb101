/*
 * main.c: Berth's benchmark harness: placement throughput, latency
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
 *   berth-bench incore ...       placement in memory (incore.c)
 *   berth-bench redis ...        commits through Redis (redis.c)
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
 *   berth-bench sandbox ...      start time under gVisor against runc (sandbox.c)
 *
 * This file only dispatches: it reads --csv and the scenario's name, and
 * never measures anything itself.
 *
 * It uses the public API only, and it is a measurement tool: it never
 * decides pass or fail on a timing.  jemalloc is linked into this program
 * (never into the library) and its statistics give the engine's memory.
 * It never touches a Redis it was not pointed at, and every wait on a
 * child process or a server is bounded.  bench/run-bench.sh runs the
 * standard set and draws the figures (bench/plot.gp).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "incore.h"
#include "options.h"
#include "output.h"
#include "pool.h"
#include "quality.h"
#include "redeploy.h"
#include "redis.h"
#include "sandbox.h"

/* Takes every "--csv DIR" pair (or "--csv=DIR") out of argv (keeping the rest in order)
 * and hands DIR to output.c, so that each scenario parses only its own
 * options.  Returns 0, or 2 after a message when DIR is missing or is not
 * a directory. */
static int take_csv_option(int *argc, char **argv)
{
    const char *dir = NULL;
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        if (strncmp(argv[i], "--csv=", 6) == 0) {
            dir = argv[i] + 6;
            continue;
        }
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

int main(int argc, char **argv)
{
    int rc = take_csv_option(&argc, argv);
    if (rc != 0)
        return rc;
    const char *scenario = argc >= 2 ? argv[1] : NULL;
    if (scenario == NULL || strcmp(scenario, "--help") == 0 || strcmp(scenario, "-h") == 0) {
        bench_usage(scenario == NULL ? stderr : stdout);
        return scenario == NULL ? 2 : 0;
    }
    if (strcmp(scenario, "incore") == 0)
        return bench_incore_main(argc, argv);
    if (strcmp(scenario, "redis") == 0)
        return bench_redis_main(argc, argv);
    if (strcmp(scenario, "api") == 0)
        return bench_api_main(argc, argv);
    if (strcmp(scenario, "pool") == 0)
        return bench_pool_main(argc, argv);
    if (strcmp(scenario, "quality") == 0)
        return bench_quality_main(argc, argv);
    if (strcmp(scenario, "redeploy") == 0)
        return bench_redeploy_main(argc, argv);
    if (strcmp(scenario, "sandbox") == 0)
        return bench_sandbox_main(argc, argv);
    fprintf(stderr, "berth-bench: unknown scenario '%s' (incore, redis, api, quality, "
            "redeploy or sandbox; try --help)\n", scenario);
    return 2;
}
