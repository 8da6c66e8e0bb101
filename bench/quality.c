/*
 * quality.c: berth-bench's `quality` scenario, offline packing quality:
 * its options and the walk over each workload's instances (instance.c
 * reads them, packing.c packs them).
 *
 *   berth-bench quality [--traces DIR] [--set bpplib|vector|alibaba-2017|
 *                       alibaba-2025|all] [--limit N] [--order file|shuffled]
 *                       [--csv DIR] [--seed S]
 *
 * Packs published bin-packing instances whose optimum (or a lower bound) is
 * known and reports how many hosts each packer used against that bound:
 *
 *  - "bpplib": the BPPLIB one-dimensional instances (<traces>/bpplib:
 *    instances/<family>/.../NAME.txt, optima and lower bounds in bounds.tsv,
 *    where lb == ub means the optimum is known);
 *  - "vector": the three-dimensional instances of the vector-packing set
 *    (<traces>/vector-packing-mommessin2024/instances/<set>/<class>/
 *    class<k>_<n>_3_<seed>.vbp; LB and OPT, -1 when unknown, in <set>_summary_known.tsv);
 *  - "alibaba-2017", "alibaba-2025", and the GPU workloads "gpu-spot2026",
 *    "gpu-pai2020", "gpu-spot2026-multi", "gpu-pai2020-multi": replayed by
 *    replay.c (bench_replay_run()), with their arrivals and departures;
 *  - "locality": image locality on against off (locality.c).
 *
 * Packers, all on the same items in file order (or, with --order shuffled,
 * in one random order per instance drawn from --seed: every BPPLIB file
 * lists its items largest first, so that in file order the online packers
 * see what first-fit decreasing sees):
 *  - binpack, spread, firstfit: Berth's policies as online packers.  Each
 *    item is one group placed with berth_engine_request_place(); identical hosts
 *    are opened on demand: a host is added only when no open host can take
 *    the item, which is what online bin packing does.  For binpack and
 *    firstfit this is the same as starting with as many empty hosts as
 *    items (neither prefers an empty host to an open one that fits); for
 *    spread it makes the policy worst fit over the open hosts rather than
 *    one item per host.
 *  - ffd: offline first-fit decreasing on the original instance, the
 *    reference (items by size, or by the sum of their sizes over the
 *    capacities in d dimensions, largest first).
 *  - ffd-mapped (vector only): first-fit decreasing on the instance as the
 *    engine sees it, which isolates what the mapping (packing.c) costs.
 *
 * Results (output.h, bench "quality"): one row per workload, family (the
 * instance's folder) and packer, and one with family "all" per workload
 * and packer: instances, items, hosts_used (sum), optimum_or_lb (sum of the
 * optimum when known, else of the lower bound), ratio_to_optimum (sum of
 * hosts over sum of optima, over instances with a known optimum),
 * instances_with_optimum, ratio_to_lower_bound (the same over the others,
 * against the larger of the published lower bound and the volume bound
 * max over dimensions of ceil(total size / capacity)),
 * instances_with_lower_bound, hosts_vs_firstfit (hosts over firstfit's
 * hosts), stranded_cpu/memory/gpu (free capacity of the used hosts at the
 * end over their capacity, in the original units of the dimension the
 * resource carried; 1-D instances report their one dimension as memory),
 * seconds (the packer's wall time, engines included), and instances_skipped,
 * instances_inexact, unplaced and infeasible, which are 0 unless something
 * is wrong.  Every packing is checked against the original instance; a
 * packing over capacity, or below a lower bound, is a bug reported on
 * stderr and makes the exit status 2.  Timings are measured, never judged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth.h"
#include "instance.h"
#include "locality.h"
#include "options.h"
#include "output.h"
#include "packing.h"
#include "quality.h"
#include "replay.h"

#define DEFAULT_LIMIT_BPPLIB 50     /* instances per family by default      */
#define DEFAULT_LIMIT_VECTOR 20

typedef struct quality_options {
    const char *traces;
    const char *set;
    size_t limit;                   /* 0: the default subset                */
    bool limit_given;
    bool shuffled;                  /* items in a seeded random order       */
    unsigned long long seed;
} quality_options_t;

static int run_workload(const quality_options_t *o, int w, runner_t *run)
{
    const char *wname = w == W_BPPLIB ? "bpplib" : "vector";
    char *root;
    if (asprintf(&root, "%s/%s/instances", o->traces,
                 w == W_BPPLIB ? "bpplib" : "vector-packing-mommessin2024") < 0)
        return -1;
    bounds_t bounds = {0};
    strvec_t files = {0};
    int rc = -1;
    if (bench_bounds_read(o->traces, w, &bounds) != 0)
        goto out;
    if (bench_instance_walk(root, "", 0, w == W_BPPLIB ? ".txt" : ".vbp", &files) != 0)
        goto out;
    if (w == W_VECTOR) {            /* the three-dimensional instances only */
        size_t kept = 0;
        for (size_t i = 0; i < files.n; i++) {
            if (bench_instance_vbp_d(files.v[i]) == 3)
                files.v[kept++] = files.v[i];
            else
                free(files.v[i]);
        }
        files.n = kept;
    }
    qsort(files.v, files.n, sizeof *files.v, bench_instance_path_cmp);
    size_t limit = o->limit_given ? o->limit
                                  : (w == W_BPPLIB ? DEFAULT_LIMIT_BPPLIB : DEFAULT_LIMIT_VECTOR);
    const char *order = o->shuffled ? "shuffled" : "file";
    uint64_t rng = o->seed;
    agg_t total[P_COUNT];
    memset(total, 0, sizeof total);
    rc = 0;
    for (size_t i = 0; i < files.n;) {
        size_t dl = bench_instance_dir_len(files.v[i]), j = i + 1;
        while (j < files.n && bench_instance_dir_len(files.v[j]) == dl &&
               strncmp(files.v[j], files.v[i], dl) == 0)
            j++;
        char family[256];
        snprintf(family, sizeof family, "%.*s", (int)dl, dl ? files.v[i] : ".");
        size_t m = j - i, take = limit == 0 || limit > m ? m : limit;
        agg_t agg[P_COUNT];
        memset(agg, 0, sizeof agg);
        for (size_t t = 0; t < take; t++) {
            const char *rel = files.v[i + t * m / take];
            char *path, key[512];
            if (asprintf(&path, "%s/%s", root, rel) < 0) {
                rc = -1;
                break;
            }
            instance_t in;
            if (bench_instance_load(path, w == W_VECTOR, &in) != 0) {
                for (int p = 0; p < P_COUNT; p++)
                    agg[p].skipped++;
                free(path);
                continue;
            }
            if (o->shuffled)
                bench_instance_shuffle(&in, &rng);
            bench_bound_key(w, rel, key, sizeof key);
            const bound_t *b = bench_bounds_find(&bounds, key);
            in.lb = bench_instance_volume_bound(&in);
            in.opt = -1;
            if (b != NULL) {
                if (b->lb > in.lb)
                    in.lb = b->lb;
                in.opt = b->opt;
            }
            bench_packing_run(run, rel, &in, w, agg);
            bench_instance_free(&in);
            free(path);
        }
        if (bench_packing_emit(wname, family, order, agg) != 0)
            rc = -1;
        for (int p = 0; p < P_COUNT; p++)
            bench_agg_add(&total[p], &agg[p]);
        i = j;
    }
    if (files.n == 0)
        fprintf(stderr, "berth-bench quality: no %s instances under %s\n", wname, root);
    else if (bench_packing_emit(wname, "all", order, total) != 0)
        rc = -1;
    if (files.n == 0)
        rc = -1;
out:
    bench_strvec_free(&files);
    bench_bounds_free(&bounds);
    free(root);
    return rc;
}

static void quality_usage(FILE *f)
{
    fputs("usage: berth-bench quality [--traces DIR] "
          "[--set bpplib|vector|alibaba-2017|alibaba-2025|gpu-spot2026|\n"
          "                           gpu-pai2020|gpu-spot2026-multi|gpu-pai2020-multi|locality|all]\n"
          "                           [--limit N] [--order file|shuffled] [--csv DIR] [--seed S]\n"
          "  --traces DIR  the traces folder (default: $BERTH_TRACES)\n"
          "  --set SET     the workload (default: all)\n"
          "  --limit N     instances per family, tasks per Alibaba workload; 0: all\n"
          "                (default: 50 per BPPLIB family, 20 per vector class, 20,000\n"
          "                tasks of Alibaba 2017, all of Alibaba 2025)\n"
          "  --order O     items in file order (default) or shuffled by the seed\n"
          "  --csv DIR     also write DIR/quality.csv (and DIR/replay.csv for Alibaba)\n"
          "  --seed S      the engines' tie-breaking seed and the shuffle's (default 0)\n",
          f);
}

int bench_quality_main(int argc, char **argv)
{
    quality_options_t o = {.set = "all"};
    o.traces = getenv("BERTH_TRACES");
#ifdef BERTH_BENCH_TRACES
    if (o.traces == NULL || *o.traces == '\0')
        o.traces = BERTH_BENCH_TRACES;
#endif
    enum { OPT_TRACES = 256, OPT_SET, OPT_ORDER, OPT_CSV, OPT_LIMIT, OPT_SEED };
    static const struct option longopts[] = {
        {"traces", required_argument, NULL, OPT_TRACES},
        {"set", required_argument, NULL, OPT_SET},
        {"order", required_argument, NULL, OPT_ORDER},
        {"csv", required_argument, NULL, OPT_CSV},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"seed", required_argument, NULL, OPT_SEED},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_option_t opt;
    while (bench_option_next(argc, argv, "h", longopts, &opt) != -1) {
        const char *v = opt.value;
        char *end;
        switch (opt.code) {
        case 'h':
            quality_usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "berth-bench quality: %s needs a value (or is unknown)\n", opt.name);
            quality_usage(stderr);
            return 1;
        case '?':
            fprintf(stderr, "berth-bench quality: unknown option %s\n", opt.name);
            quality_usage(stderr);
            return 1;
        case OPT_TRACES:
            o.traces = v;
            break;
        case OPT_SET:
            o.set = v;
            break;
        case OPT_ORDER:
            if (strcmp(v, "file") != 0 && strcmp(v, "shuffled") != 0) {
                fprintf(stderr, "berth-bench quality: bad --order '%s'\n", v);
                return 1;
            }
            o.shuffled = v[0] == 's';
            break;
        case OPT_CSV:
            bench_output_csv_dir(v);
            break;
        default: {              /* --limit, --seed */
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0' || v[0] == '-') {
                fprintf(stderr, "berth-bench quality: bad %s '%s'\n", opt.name, v);
                return 1;
            }
            if (opt.code == OPT_LIMIT) {
                o.limit = (size_t)n;
                o.limit_given = true;
            } else {
                o.seed = n;
            }
            break;
        }
        }
    }
    static const char *const sets[] = {"bpplib", "vector", "alibaba-2017", "alibaba-2025",
                                       "gpu-spot2026", "gpu-pai2020", "gpu-spot2026-multi",
                                       "gpu-pai2020-multi", "locality"};
    bool all = strcmp(o.set, "all") == 0, known = all;
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++)
        known |= strcmp(o.set, sets[s]) == 0;
    if (!known) {
        fprintf(stderr, "berth-bench quality: unknown set '%s'\n", o.set);
        return 1;
    }
    if (o.traces == NULL || *o.traces == '\0') {
        fprintf(stderr, "berth-bench quality: no traces folder: give --traces DIR or set "
                "BERTH_TRACES\n");
        return 1;
    }
    runner_t run;
    if (bench_runner_init(&run, o.seed) != 0) {
        bench_runner_free(&run);
        return 1;
    }
    int status = 0;
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        if (!all && strcmp(o.set, sets[s]) != 0)
            continue;
        int rc;
        if (s < 2) {
            rc = run_workload(&o, s == 0 ? W_BPPLIB : W_VECTOR, &run);
        } else if (strcmp(sets[s], "locality") == 0) {
            rc = bench_locality_run(o.seed);
        } else {
            /* By default the 2017 batch trace is cut to its first 20,000
             * tasks (3.5M groups, about 30 s with the linear baseline);
             * --limit 0 replays all 80,553 (11M groups, minutes). */
            replay_options_t ro = {.traces_dir = o.traces,
                                   .limit = o.limit_given ? o.limit
                                          : strcmp(sets[s], "alibaba-2017") == 0 ? 20000 : 0,
                                   .seed = o.seed};
            rc = bench_replay_run(sets[s], &ro);
        }
        if (rc != 0 && status == 0)
            status = 1;
    }
    if (run.status != 0)
        status = run.status;
    bench_runner_free(&run);
    return status;
}
